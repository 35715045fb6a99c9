//! Pieces shared by both engines: error mapping, claim owners, row decoding.

use keyhold_core::ports::{
    IndexEntry, IndexHit, IndexOwner, StoreError, StoredCustomKeyStore, StoredDocument, StoredKey,
    StoredKeyMaterial, UniqueClaim,
};
use sqlx::{ColumnIndex, Decode, Row, Type};

/// A backend failure that has no `sqlx` cause (misuse of the API, bad configuration).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct Message(pub(crate) String);

/// Wraps a database error, keeping it as the cause.
pub(crate) fn backend(e: sqlx::Error) -> StoreError {
    StoreError::Backend(Box::new(e))
}

/// A backend failure described by a message.
pub(crate) fn message(text: impl Into<String>) -> StoreError {
    StoreError::Backend(Box::new(Message(text.into())))
}

/// Maps a failed `INSERT`: a primary-key violation becomes a conflict in `pk_scope`, a
/// foreign-key violation `NotFound` (the parent row is missing), anything else a backend error.
pub(crate) fn insert_error(e: sqlx::Error, pk_scope: &str) -> StoreError {
    if let sqlx::Error::Database(db) = &e {
        if db.is_unique_violation() {
            return StoreError::Conflict {
                scope: pk_scope.to_owned(),
            };
        }
        if db.is_foreign_key_violation() {
            return StoreError::NotFound;
        }
    }
    backend(e)
}

/// The owner recorded on a key's claims.
pub(crate) fn key_owner(account_id: &str, region: &str, key_id: &str) -> String {
    format!("key:{account_id}/{region}/{key_id}")
}

/// The owner recorded on a custom key store's claims.
pub(crate) fn cks_owner(account_id: &str, region: &str, id: &str) -> String {
    format!("cks:{account_id}/{region}/{id}")
}

/// The owner recorded on a document's claims.
pub(crate) fn doc_owner(kind: &str, account_id: &str, region: &str, id: &str) -> String {
    format!("doc:{kind}/{account_id}/{region}/{id}")
}

/// The [`IndexOwner`] of a key row.
pub(crate) fn key_index_owner(account_id: &str, region: &str, key_id: &str) -> IndexOwner {
    IndexOwner::Key {
        account_id: account_id.to_owned(),
        region: region.to_owned(),
        key_id: key_id.to_owned(),
    }
}

/// The [`IndexOwner`] of a document row.
pub(crate) fn doc_index_owner(kind: &str, account_id: &str, region: &str, id: &str) -> IndexOwner {
    IndexOwner::Document {
        kind: kind.to_owned(),
        account_id: account_id.to_owned(),
        region: region.to_owned(),
        id: id.to_owned(),
    }
}

/// Collapses repeated `(scope, value)` pairs into one claim (exclusive if any of them is),
/// keeping the order of first appearance so the reported conflict is deterministic.
pub(crate) fn normalize_claims(claims: &[UniqueClaim]) -> Vec<UniqueClaim> {
    let mut out: Vec<UniqueClaim> = Vec::with_capacity(claims.len());
    for c in claims {
        match out
            .iter_mut()
            .find(|o| o.scope == c.scope && o.value == c.value)
        {
            Some(existing) => existing.exclusive |= c.exclusive,
            None => out.push(c.clone()),
        }
    }
    out
}

/// Drops repeated `(index, value)` pairs (the table's primary key would refuse them) and
/// orders the entries, so a row's entries are a set.
pub(crate) fn normalize_indexes(entries: &[IndexEntry]) -> Vec<IndexEntry> {
    let mut out = entries.to_vec();
    out.sort_unstable();
    out.dedup();
    out
}

/// Checks the arguments of `insert_key` that no constraint can check.
pub(crate) fn validate_new_key(
    key: &StoredKey,
    material: Option<&StoredKeyMaterial>,
) -> Result<(), StoreError> {
    if key.version != 1 {
        return Err(StoreError::VersionMismatch);
    }
    match material {
        Some(m) => validate_material_owner(key, m),
        None => Ok(()),
    }
}

/// Refuses a key material that belongs to another key than `key`.
pub(crate) fn validate_material_owner(
    key: &StoredKey,
    m: &StoredKeyMaterial,
) -> Result<(), StoreError> {
    if m.account_id != key.account_id || m.region != key.region || m.key_id != key.key_id {
        return Err(message("the key material belongs to another key"));
    }
    Ok(())
}

/// Milliseconds since the Unix epoch by the process clock.
pub(crate) fn now_ms() -> i64 {
    let now = time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000;
    i64::try_from(now).unwrap_or(i64::MAX)
}

/// Converts a page size to the `LIMIT` parameter.
pub(crate) fn sql_limit(limit: u32) -> i64 {
    i64::from(limit)
}

/// Converts a `COUNT(*)` result.
pub(crate) fn count_u64(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// Decodes a `keys` row, read by column name (the statement selects them all).
pub(crate) fn key_from_row<R>(row: &R) -> Result<StoredKey, sqlx::Error>
where
    R: Row,
    &'static str: ColumnIndex<R>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
{
    Ok(StoredKey {
        account_id: row.try_get("account_id")?,
        region: row.try_get("region")?,
        key_id: row.try_get("key_id")?,
        custom_key_store_id: row.try_get("custom_key_store_id")?,
        created_at_ms: row.try_get("created_at_ms")?,
        version: row.try_get("version")?,
        doc: row.try_get("doc")?,
    })
}

/// Decodes a `key_materials` row, read by column name (the statement selects them all).
pub(crate) fn material_from_row<R>(row: &R) -> Result<StoredKeyMaterial, sqlx::Error>
where
    R: Row,
    &'static str: ColumnIndex<R>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> Vec<u8>: Decode<'r, R::Database> + Type<R::Database>,
{
    Ok(StoredKeyMaterial {
        account_id: row.try_get("account_id")?,
        region: row.try_get("region")?,
        key_id: row.try_get("key_id")?,
        material_id: row.try_get("material_id")?,
        created_at_ms: row.try_get("created_at_ms")?,
        wrapped: row.try_get("wrapped")?,
    })
}

/// Decodes a `custom_key_stores` row, read by column name (the statement selects them all).
pub(crate) fn cks_from_row<R>(row: &R) -> Result<StoredCustomKeyStore, sqlx::Error>
where
    R: Row,
    &'static str: ColumnIndex<R>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
{
    Ok(StoredCustomKeyStore {
        account_id: row.try_get("account_id")?,
        region: row.try_get("region")?,
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        store_type: row.try_get("store_type")?,
        connection_state: row.try_get("connection_state")?,
        created_at_ms: row.try_get("created_at_ms")?,
        version: row.try_get("version")?,
        doc: row.try_get("doc")?,
    })
}

/// Decodes a `documents` row, read by column name (the statement selects them all).
pub(crate) fn doc_from_row<R>(row: &R) -> Result<StoredDocument, sqlx::Error>
where
    R: Row,
    &'static str: ColumnIndex<R>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
{
    Ok(StoredDocument {
        kind: row.try_get("kind")?,
        account_id: row.try_get("account_id")?,
        region: row.try_get("region")?,
        id: row.try_get("id")?,
        created_at_ms: row.try_get("created_at_ms")?,
        version: row.try_get("version")?,
        doc: row.try_get("doc")?,
    })
}

/// Decodes an `index_entries` row of `list_index` (a `NULL` `doc_kind` marks a key).
pub(crate) fn index_hit_from_row<R>(row: &R) -> Result<IndexHit, sqlx::Error>
where
    R: Row,
    &'static str: ColumnIndex<R>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
{
    let kind: Option<String> = row.try_get("doc_kind")?;
    let account_id = row.try_get("account_id")?;
    let region = row.try_get("region")?;
    let id = row.try_get("id")?;
    let owner = match kind {
        None => IndexOwner::Key {
            account_id,
            region,
            key_id: id,
        },
        Some(kind) => IndexOwner::Document {
            kind,
            account_id,
            region,
            id,
        },
    };
    Ok(IndexHit {
        value: row.try_get("value")?,
        owner,
    })
}

/// Decodes every row with `f`, mapping decode failures to backend errors.
pub(crate) fn decode_all<R, T>(
    rows: &[R],
    f: impl Fn(&R) -> Result<T, sqlx::Error>,
) -> Result<Vec<T>, StoreError> {
    rows.iter().map(|r| f(r).map_err(backend)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_merges_duplicates() {
        let claims = [
            UniqueClaim::shared("a", "1"),
            UniqueClaim::shared("b", "1"),
            UniqueClaim::exclusive("a", "1"),
        ];
        assert_eq!(
            normalize_claims(&claims),
            vec![
                UniqueClaim::exclusive("a", "1"),
                UniqueClaim::shared("b", "1")
            ]
        );
    }

    #[test]
    fn claim_owners_are_index_owner_identities() {
        // Claims and index entries of one row must name the same owner.
        let key = IndexOwner::Key {
            account_id: "1".into(),
            region: "r".into(),
            key_id: "x".into(),
        };
        assert_eq!(key.identity(), key_owner("1", "r", "x"));
        let doc = IndexOwner::Document {
            kind: "k".into(),
            account_id: "1".into(),
            region: "r".into(),
            id: "x".into(),
        };
        assert_eq!(doc.identity(), doc_owner("k", "1", "r", "x"));
    }

    #[test]
    fn normalize_indexes_makes_a_set() {
        let a = IndexEntry::new("i", "2");
        let b = IndexEntry::new("i", "1");
        assert_eq!(
            normalize_indexes(&[a.clone(), b.clone(), a.clone()]),
            vec![b, a]
        );
    }

    #[test]
    fn owners_are_distinct_per_kind() {
        assert_ne!(key_owner("1", "r", "x"), cks_owner("1", "r", "x"));
        assert!(doc_owner("k", "1", "r", "x").starts_with("doc:"));
    }
}
