//! [`MetadataStore`] on one SQLite file.

use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use keyhold_core::ports::{
    MetadataStore, StoreError, StoredCustomKeyStore, StoredDocument, StoredKey, StoredKeyMaterial,
    UniqueClaim,
};
use sqlx::{Sqlite, SqlitePool, Transaction};

use crate::common::{
    backend, cks_from_row, cks_owner, count_u64, decode_all, insert_error, key_from_row, key_owner,
    material_from_row, message, normalize_claims, now_ms, sql_limit, validate_new_key, CKS_COLUMNS,
    KEY_COLUMNS, MATERIAL_COLUMNS,
};
use crate::{CUSTOM_KEY_STORE_ID_SCOPE, KEY_ID_SCOPE};

/// How long a statement waits for another process's write lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);
/// Connections of the read pool of a file database.
const READERS: u32 = 4;

/// The embedded [`MetadataStore`]: one SQLite file in WAL mode with `synchronous=FULL`
/// (a commit is on disk when it returns) and foreign keys on.
///
/// Writes go through a pool of exactly one connection and each runs as one
/// `BEGIN IMMEDIATE` transaction, which takes SQLite's write lock up front: checks
/// (claims, quota, versions) and the writes they guard can never interleave with another
/// writer, in this process or in another one opening the same file (which waits up to the
/// busy timeout). Reads use a separate pool and see the last committed state.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    writer: SqlitePool,
    reader: SqlitePool,
    path: Option<PathBuf>,
}

impl SqliteStore {
    /// The database file, or `None` for an in-memory store.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Closes all connections, waiting for running operations to finish.
    pub async fn close(&self) {
        self.writer.close().await;
        self.reader.close().await;
    }

    async fn begin(&self) -> Result<Transaction<'static, Sqlite>, StoreError> {
        self.writer
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(backend)
    }
}

mod connect;
mod documents;
mod helpers;
#[cfg(test)]
mod tests;

use helpers::*;

#[async_trait]
impl MetadataStore for SqliteStore {
    async fn insert_key(
        &self,
        key: &StoredKey,
        material: Option<&StoredKeyMaterial>,
        claims: &[UniqueClaim],
    ) -> Result<(), StoreError> {
        validate_new_key(key, material)?;
        let claims = normalize_claims(claims);
        let owner = key_owner(&key.account_id, &key.region, &key.key_id);
        let mut tx = self.begin().await?;
        check_claims(&mut tx, &owner, &claims).await?;
        sqlx::query(
            "INSERT INTO keys \
             (account_id, region, key_id, custom_key_store_id, created_at_ms, version, doc) \
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&key.account_id)
        .bind(&key.region)
        .bind(&key.key_id)
        .bind(&key.custom_key_store_id)
        .bind(key.created_at_ms)
        .bind(key.version)
        .bind(&key.doc)
        .execute(&mut *tx)
        .await
        .map_err(|e| insert_error(e, KEY_ID_SCOPE))?;
        if let Some(m) = material {
            insert_material(&mut tx, m).await?;
        }
        replace_claims(&mut tx, &owner, &claims).await?;
        tx.commit().await.map_err(backend)
    }

    async fn get_key(
        &self,
        account_id: &str,
        region: &str,
        key_id: &str,
    ) -> Result<Option<StoredKey>, StoreError> {
        let sql = format!(
            "SELECT {KEY_COLUMNS} FROM keys WHERE account_id = ? AND region = ? AND key_id = ?"
        );
        let row = sqlx::query(&sql)
            .bind(account_id)
            .bind(region)
            .bind(key_id)
            .fetch_optional(&self.reader)
            .await
            .map_err(backend)?;
        row.as_ref().map(key_from_row).transpose().map_err(backend)
    }

    async fn update_key(&self, key: &StoredKey) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        let done = sqlx::query(
            "UPDATE keys SET custom_key_store_id = ?, doc = ?, version = ? \
             WHERE account_id = ? AND region = ? AND key_id = ? AND version = ?",
        )
        .bind(&key.custom_key_store_id)
        .bind(&key.doc)
        .bind(key.version)
        .bind(&key.account_id)
        .bind(&key.region)
        .bind(&key.key_id)
        .bind(key.version.wrapping_sub(1))
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        if done.rows_affected() == 0 {
            return Err(cas_failure(
                &mut tx,
                KEY_EXISTS,
                &key.account_id,
                &key.region,
                &key.key_id,
            )
            .await);
        }
        tx.commit().await.map_err(backend)
    }

    async fn delete_key(
        &self,
        account_id: &str,
        region: &str,
        key_id: &str,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        sqlx::query("DELETE FROM key_materials WHERE account_id = ? AND region = ? AND key_id = ?")
            .bind(account_id)
            .bind(region)
            .bind(key_id)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        let done =
            sqlx::query("DELETE FROM keys WHERE account_id = ? AND region = ? AND key_id = ?")
                .bind(account_id)
                .bind(region)
                .bind(key_id)
                .execute(&mut *tx)
                .await
                .map_err(backend)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        delete_claims(&mut tx, &key_owner(account_id, region, key_id)).await?;
        tx.commit().await.map_err(backend)
    }

    async fn list_keys(
        &self,
        account_id: &str,
        region: &str,
        after_key_id: Option<&str>,
        limit: u32,
    ) -> Result<Vec<StoredKey>, StoreError> {
        let sql = format!(
            "SELECT {KEY_COLUMNS} FROM keys WHERE account_id = ? AND region = ? \
             AND (? IS NULL OR key_id > ?) ORDER BY key_id LIMIT ?"
        );
        let rows = sqlx::query(&sql)
            .bind(account_id)
            .bind(region)
            .bind(after_key_id)
            .bind(after_key_id)
            .bind(sql_limit(limit))
            .fetch_all(&self.reader)
            .await
            .map_err(backend)?;
        decode_all(&rows, key_from_row)
    }

    async fn insert_key_material(&self, material: &StoredKeyMaterial) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        insert_material(&mut tx, material).await?;
        tx.commit().await.map_err(backend)
    }

    async fn get_key_material(
        &self,
        account_id: &str,
        region: &str,
        key_id: &str,
        material_id: &str,
    ) -> Result<Option<StoredKeyMaterial>, StoreError> {
        let sql = format!(
            "SELECT {MATERIAL_COLUMNS} FROM key_materials \
             WHERE account_id = ? AND region = ? AND key_id = ? AND material_id = ?"
        );
        let row = sqlx::query(&sql)
            .bind(account_id)
            .bind(region)
            .bind(key_id)
            .bind(material_id)
            .fetch_optional(&self.reader)
            .await
            .map_err(backend)?;
        row.as_ref()
            .map(material_from_row)
            .transpose()
            .map_err(backend)
    }

    async fn insert_custom_key_store(
        &self,
        store: &StoredCustomKeyStore,
        claims: &[UniqueClaim],
        quota: u32,
    ) -> Result<(), StoreError> {
        let claims = normalize_claims(claims);
        let owner = cks_owner(&store.account_id, &store.region, &store.id);
        let mut tx = self.begin().await?;
        check_claims(&mut tx, &owner, &claims).await?;
        let count: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM custom_key_stores WHERE account_id = ? AND region = ?",
        )
        .bind(&store.account_id)
        .bind(&store.region)
        .fetch_one(&mut *tx)
        .await
        .map_err(backend)?;
        if count_u64(count) >= u64::from(quota) {
            return Err(StoreError::QuotaExceeded { limit: quota });
        }
        sqlx::query(
            "INSERT INTO custom_key_stores (account_id, region, id, name, store_type, \
             connection_state, created_at_ms, version, doc) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&store.account_id)
        .bind(&store.region)
        .bind(&store.id)
        .bind(&store.name)
        .bind(&store.store_type)
        .bind(&store.connection_state)
        .bind(store.created_at_ms)
        .bind(store.version)
        .bind(&store.doc)
        .execute(&mut *tx)
        .await
        .map_err(|e| insert_error(e, CUSTOM_KEY_STORE_ID_SCOPE))?;
        replace_claims(&mut tx, &owner, &claims).await?;
        tx.commit().await.map_err(backend)
    }

    async fn get_custom_key_store(
        &self,
        account_id: &str,
        region: &str,
        id: &str,
    ) -> Result<Option<StoredCustomKeyStore>, StoreError> {
        let sql = format!(
            "SELECT {CKS_COLUMNS} FROM custom_key_stores \
             WHERE account_id = ? AND region = ? AND id = ?"
        );
        let row = sqlx::query(&sql)
            .bind(account_id)
            .bind(region)
            .bind(id)
            .fetch_optional(&self.reader)
            .await
            .map_err(backend)?;
        row.as_ref().map(cks_from_row).transpose().map_err(backend)
    }

    async fn update_custom_key_store(
        &self,
        store: &StoredCustomKeyStore,
        claims: Option<&[UniqueClaim]>,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        let done = sqlx::query(
            "UPDATE custom_key_stores SET name = ?, store_type = ?, connection_state = ?, \
             doc = ?, version = ? WHERE account_id = ? AND region = ? AND id = ? AND version = ?",
        )
        .bind(&store.name)
        .bind(&store.store_type)
        .bind(&store.connection_state)
        .bind(&store.doc)
        .bind(store.version)
        .bind(&store.account_id)
        .bind(&store.region)
        .bind(&store.id)
        .bind(store.version.wrapping_sub(1))
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        if done.rows_affected() == 0 {
            return Err(cas_failure(
                &mut tx,
                CKS_EXISTS,
                &store.account_id,
                &store.region,
                &store.id,
            )
            .await);
        }
        if let Some(claims) = claims {
            let claims = normalize_claims(claims);
            let owner = cks_owner(&store.account_id, &store.region, &store.id);
            check_claims(&mut tx, &owner, &claims).await?;
            replace_claims(&mut tx, &owner, &claims).await?;
        }
        tx.commit().await.map_err(backend)
    }

    async fn delete_custom_key_store(
        &self,
        account_id: &str,
        region: &str,
        id: &str,
        expected_version: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        let done = sqlx::query(
            "DELETE FROM custom_key_stores \
             WHERE account_id = ? AND region = ? AND id = ? AND version = ?",
        )
        .bind(account_id)
        .bind(region)
        .bind(id)
        .bind(expected_version)
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        if done.rows_affected() == 0 {
            return Err(cas_failure(&mut tx, CKS_EXISTS, account_id, region, id).await);
        }
        let has_keys = sqlx::query(
            "SELECT 1 FROM keys \
             WHERE account_id = ? AND region = ? AND custom_key_store_id = ? LIMIT 1",
        )
        .bind(account_id)
        .bind(region)
        .bind(id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(backend)?;
        if has_keys.is_some() {
            return Err(StoreError::HasKeys);
        }
        delete_claims(&mut tx, &cks_owner(account_id, region, id)).await?;
        tx.commit().await.map_err(backend)
    }

    async fn list_custom_key_stores(
        &self,
        account_id: &str,
        region: &str,
        after_id: Option<&str>,
        limit: u32,
    ) -> Result<Vec<StoredCustomKeyStore>, StoreError> {
        let sql = format!(
            "SELECT {CKS_COLUMNS} FROM custom_key_stores WHERE account_id = ? AND region = ? \
             AND (? IS NULL OR id > ?) ORDER BY id LIMIT ?"
        );
        let rows = sqlx::query(&sql)
            .bind(account_id)
            .bind(region)
            .bind(after_id)
            .bind(after_id)
            .bind(sql_limit(limit))
            .fetch_all(&self.reader)
            .await
            .map_err(backend)?;
        decode_all(&rows, cks_from_row)
    }

    async fn list_custom_key_stores_in_states(
        &self,
        states: &[&str],
    ) -> Result<Vec<StoredCustomKeyStore>, StoreError> {
        if states.is_empty() {
            return Ok(Vec::new());
        }
        let states = serde_json::to_string(states)
            .map_err(|e| message(format!("cannot encode states: {e}")))?;
        let sql = format!(
            "SELECT {CKS_COLUMNS} FROM custom_key_stores \
             WHERE connection_state IN (SELECT value FROM json_each(?)) \
             ORDER BY account_id, region, id"
        );
        let rows = sqlx::query(&sql)
            .bind(states)
            .fetch_all(&self.reader)
            .await
            .map_err(backend)?;
        decode_all(&rows, cks_from_row)
    }

    async fn count_keys_in_custom_key_store(
        &self,
        account_id: &str,
        region: &str,
        id: &str,
    ) -> Result<u64, StoreError> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM keys \
             WHERE account_id = ? AND region = ? AND custom_key_store_id = ?",
        )
        .bind(account_id)
        .bind(region)
        .bind(id)
        .fetch_one(&self.reader)
        .await
        .map_err(backend)?;
        Ok(count_u64(n))
    }

    async fn try_acquire_lease(
        &self,
        name: &str,
        holder: &str,
        ttl_ms: i64,
    ) -> Result<bool, StoreError> {
        // SQLite is shared only by processes on one machine, so the process clock is the
        // database clock. The upsert takes the row only if it is ours or has expired.
        let now = now_ms();
        let row = sqlx::query(
            "INSERT INTO leases (name, holder, expires_at_ms) VALUES (?, ?, ?) \
             ON CONFLICT (name) DO UPDATE \
             SET holder = excluded.holder, expires_at_ms = excluded.expires_at_ms \
             WHERE leases.holder = excluded.holder OR leases.expires_at_ms <= ? \
             RETURNING holder",
        )
        .bind(name)
        .bind(holder)
        .bind(now.saturating_add(ttl_ms))
        .bind(now)
        .fetch_optional(&self.writer)
        .await
        .map_err(backend)?;
        Ok(row.is_some())
    }

    async fn release_lease(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM leases WHERE name = ? AND holder = ?")
            .bind(name)
            .bind(holder)
            .execute(&self.writer)
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn reset(&self) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        for table in [
            "key_materials",
            "keys",
            "custom_key_stores",
            "documents",
            "unique_claims",
            "leases",
        ] {
            sqlx::query(&format!("DELETE FROM {table}"))
                .execute(&mut *tx)
                .await
                .map_err(backend)?;
        }
        tx.commit().await.map_err(backend)
    }

    async fn insert_document(
        &self,
        doc: &StoredDocument,
        claims: &[UniqueClaim],
    ) -> Result<(), StoreError> {
        self.doc_insert(doc, claims).await
    }

    async fn get_document(
        &self,
        kind: &str,
        account_id: &str,
        region: &str,
        id: &str,
    ) -> Result<Option<StoredDocument>, StoreError> {
        self.doc_get(kind, account_id, region, id).await
    }

    async fn list_documents(
        &self,
        kind: &str,
        account_id: &str,
        region: &str,
        after_id: Option<&str>,
        limit: u32,
    ) -> Result<Vec<StoredDocument>, StoreError> {
        self.doc_list(kind, account_id, region, after_id, limit)
            .await
    }

    async fn update_document(
        &self,
        doc: &StoredDocument,
        claims: Option<&[UniqueClaim]>,
    ) -> Result<(), StoreError> {
        self.doc_update(doc, claims).await
    }

    async fn delete_document(
        &self,
        kind: &str,
        account_id: &str,
        region: &str,
        id: &str,
        expected_version: i64,
    ) -> Result<(), StoreError> {
        self.doc_delete(kind, account_id, region, id, expected_version)
            .await
    }
}
