//! Advisory-lock naming and statements shared by the PostgreSQL store's methods.

use keyhold_core::ports::{StoreError, StoredKeyMaterial, UniqueClaim};
use sqlx::PgConnection;

use crate::common::{backend, insert_error, message};
use crate::KEY_MATERIAL_ID_SCOPE;

/// Validates and double-quotes a schema name.
pub(super) fn quote_schema(schema: &str) -> Result<String, StoreError> {
    let mut chars = schema.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !first_ok || !rest_ok || schema.len() > 63 {
        return Err(message(format!(
            "invalid PostgreSQL schema name {schema:?}"
        )));
    }
    Ok(format!("\"{schema}\""))
}

/// A stable 64-bit id for an advisory lock (FNV-1a; identical on every node and build).
pub(super) fn lock_id(namespace: &str, name: &str) -> i64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in namespace.bytes().chain([0u8]).chain(name.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h as i64
}

pub(super) fn claim_lock(c: &UniqueClaim) -> String {
    format!("claim\u{0}{}\u{0}{}", c.scope, c.value)
}

pub(super) fn quota_lock(account_id: &str, region: &str) -> String {
    format!("quota\u{0}{account_id}\u{0}{region}")
}

pub(super) fn cks_lock(account_id: &str, region: &str, id: &str) -> String {
    format!("cks\u{0}{account_id}\u{0}{region}\u{0}{id}")
}

/// Fails with the scope of the first claim that conflicts with another owner's claim.
pub(super) async fn check_claims(
    conn: &mut PgConnection,
    owner: &str,
    claims: &[UniqueClaim],
) -> Result<(), StoreError> {
    for c in claims {
        let hit = sqlx::query(
            "SELECT 1 FROM unique_claims \
             WHERE scope = $1 AND value = $2 AND owner <> $3 AND ($4 OR exclusive) LIMIT 1",
        )
        .bind(&c.scope)
        .bind(&c.value)
        .bind(owner)
        .bind(c.exclusive)
        .fetch_optional(&mut *conn)
        .await
        .map_err(backend)?;
        if hit.is_some() {
            return Err(StoreError::Conflict {
                scope: c.scope.clone(),
            });
        }
    }
    Ok(())
}

/// Replaces every claim of `owner` by `claims` (already checked and normalized).
pub(super) async fn replace_claims(
    conn: &mut PgConnection,
    owner: &str,
    claims: &[UniqueClaim],
) -> Result<(), StoreError> {
    delete_claims(conn, owner).await?;
    for c in claims {
        sqlx::query(
            "INSERT INTO unique_claims (scope, value, owner, exclusive) VALUES ($1, $2, $3, $4)",
        )
        .bind(&c.scope)
        .bind(&c.value)
        .bind(owner)
        .bind(c.exclusive)
        .execute(&mut *conn)
        .await
        .map_err(backend)?;
    }
    Ok(())
}

pub(super) async fn delete_claims(conn: &mut PgConnection, owner: &str) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM unique_claims WHERE owner = $1")
        .bind(owner)
        .execute(&mut *conn)
        .await
        .map_err(backend)?;
    Ok(())
}

/// After a compare-and-set touched no row: `VersionMismatch` if the row exists, else `NotFound`.
pub(super) async fn cas_failure(
    conn: &mut PgConnection,
    sql: &'static str,
    account_id: &str,
    region: &str,
    id: &str,
) -> StoreError {
    let found = sqlx::query(sql)
        .bind(account_id)
        .bind(region)
        .bind(id)
        .fetch_optional(&mut *conn)
        .await;
    match found {
        Ok(Some(_)) => StoreError::VersionMismatch,
        Ok(None) => StoreError::NotFound,
        Err(e) => backend(e),
    }
}

pub(super) const KEY_EXISTS: &str =
    "SELECT 1 FROM keys WHERE account_id = $1 AND region = $2 AND key_id = $3";
pub(super) const CKS_EXISTS: &str =
    "SELECT 1 FROM custom_key_stores WHERE account_id = $1 AND region = $2 AND id = $3";

pub(super) async fn insert_material(
    conn: &mut PgConnection,
    m: &StoredKeyMaterial,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO key_materials \
         (account_id, region, key_id, material_id, created_at_ms, wrapped) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&m.account_id)
    .bind(&m.region)
    .bind(&m.key_id)
    .bind(&m.material_id)
    .bind(m.created_at_ms)
    .bind(&m.wrapped)
    .execute(&mut *conn)
    .await
    .map_err(|e| insert_error(e, KEY_MATERIAL_ID_SCOPE))?;
    Ok(())
}
