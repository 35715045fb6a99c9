//! [`MetadataStore`] on PostgreSQL, shared by several Keyhold nodes.

use async_trait::async_trait;
use keyhold_core::ports::{
    MetadataStore, StoreError, StoredCustomKeyStore, StoredDocument, StoredKey, StoredKeyMaterial,
    UniqueClaim,
};
use sqlx::{PgConnection, PgPool, Postgres, Transaction};

use crate::common::{
    backend, cks_from_row, cks_owner, count_u64, decode_all, insert_error, key_from_row, key_owner,
    material_from_row, normalize_claims, sql_limit, validate_new_key, CKS_COLUMNS, KEY_COLUMNS,
    MATERIAL_COLUMNS,
};
use crate::{CUSTOM_KEY_STORE_ID_SCOPE, KEY_ID_SCOPE};

/// Milliseconds since the Unix epoch by the database clock, fixed for the statement.
const DB_NOW_MS: &str = "floor(extract(epoch FROM statement_timestamp()) * 1000)::bigint";

/// [`MetadataStore`] on PostgreSQL; any number of Keyhold nodes may share one database.
///
/// Every write is one `READ COMMITTED` transaction that, before reading anything, takes
/// transaction-scoped advisory locks (`pg_advisory_xact_lock`) on what it is about to
/// check: each claimed `(scope, value)`, the `(account, Region)` whose custom key stores it
/// counts against a quota, and the custom key store a key is placed in (which
/// `delete_custom_key_store` also locks before looking for keys). Lock ids are 64-bit hashes
/// of those names, taken in ascending order, so two transactions never wait on each other in
/// a cycle; a hash collision only serializes two unrelated writes. Once a lock is granted,
/// the next statement's snapshot includes everything the previous holder committed, so the
/// check and the write are atomic across nodes.
///
/// Why not `SERIALIZABLE` with retries: shared-versus-exclusive claims and quotas are
/// predicates no unique index can express, and under `SERIALIZABLE` racing inserts fail with
/// serialization errors that every method would have to retry (16 racing nodes can need many
/// rounds); the locks make racers queue instead, and each gets a definite answer (`Conflict`,
/// `QuotaExceeded`) on the first attempt. Leases expire by the database clock, so the nodes'
/// clocks need not agree.
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
    /// Mixed into advisory-lock ids so stores in different schemas do not contend.
    lock_namespace: String,
}

impl PostgresStore {
    /// The connection pool.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Closes all connections, waiting for running operations to finish.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    async fn begin(&self) -> Result<Transaction<'static, Postgres>, StoreError> {
        self.pool.begin().await.map_err(backend)
    }

    /// Takes the advisory locks named by `names` (sorted by id, duplicates dropped).
    async fn lock(&self, conn: &mut PgConnection, names: &[String]) -> Result<(), StoreError> {
        let mut ids: Vec<i64> = names
            .iter()
            .map(|n| lock_id(&self.lock_namespace, n))
            .collect();
        ids.sort_unstable();
        ids.dedup();
        for id in ids {
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(id)
                .execute(&mut *conn)
                .await
                .map_err(backend)?;
        }
        Ok(())
    }
}

mod connect;
mod documents;
mod helpers;
#[cfg(test)]
mod tests;

use helpers::*;

#[async_trait]
impl MetadataStore for PostgresStore {
    async fn insert_key(
        &self,
        key: &StoredKey,
        material: Option<&StoredKeyMaterial>,
        claims: &[UniqueClaim],
    ) -> Result<(), StoreError> {
        validate_new_key(key, material)?;
        let claims = normalize_claims(claims);
        let owner = key_owner(&key.account_id, &key.region, &key.key_id);
        let mut locks: Vec<String> = claims.iter().map(claim_lock).collect();
        if let Some(cks) = &key.custom_key_store_id {
            locks.push(cks_lock(&key.account_id, &key.region, cks));
        }
        let mut tx = self.begin().await?;
        self.lock(&mut tx, &locks).await?;
        check_claims(&mut tx, &owner, &claims).await?;
        sqlx::query(
            "INSERT INTO keys \
             (account_id, region, key_id, custom_key_store_id, created_at_ms, version, doc) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
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
            "SELECT {KEY_COLUMNS} FROM keys WHERE account_id = $1 AND region = $2 AND key_id = $3"
        );
        let row = sqlx::query(&sql)
            .bind(account_id)
            .bind(region)
            .bind(key_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        row.as_ref().map(key_from_row).transpose().map_err(backend)
    }

    async fn update_key(&self, key: &StoredKey) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        if let Some(cks) = &key.custom_key_store_id {
            self.lock(&mut tx, &[cks_lock(&key.account_id, &key.region, cks)])
                .await?;
        }
        let done = sqlx::query(
            "UPDATE keys SET custom_key_store_id = $1, doc = $2, version = $3 \
             WHERE account_id = $4 AND region = $5 AND key_id = $6 AND version = $7",
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
        let done =
            sqlx::query("DELETE FROM keys WHERE account_id = $1 AND region = $2 AND key_id = $3")
                .bind(account_id)
                .bind(region)
                .bind(key_id)
                .execute(&mut *tx)
                .await
                .map_err(backend)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        // Key materials go with the key (ON DELETE CASCADE).
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
            "SELECT {KEY_COLUMNS} FROM keys WHERE account_id = $1 AND region = $2 \
             AND ($3::text IS NULL OR key_id > $3) ORDER BY key_id LIMIT $4"
        );
        let rows = sqlx::query(&sql)
            .bind(account_id)
            .bind(region)
            .bind(after_key_id)
            .bind(sql_limit(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?;
        decode_all(&rows, key_from_row)
    }

    async fn insert_key_material(&self, material: &StoredKeyMaterial) -> Result<(), StoreError> {
        let mut conn = self.pool.acquire().await.map_err(backend)?;
        insert_material(&mut conn, material).await
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
             WHERE account_id = $1 AND region = $2 AND key_id = $3 AND material_id = $4"
        );
        let row = sqlx::query(&sql)
            .bind(account_id)
            .bind(region)
            .bind(key_id)
            .bind(material_id)
            .fetch_optional(&self.pool)
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
        let mut locks: Vec<String> = claims.iter().map(claim_lock).collect();
        locks.push(quota_lock(&store.account_id, &store.region));
        let mut tx = self.begin().await?;
        self.lock(&mut tx, &locks).await?;
        check_claims(&mut tx, &owner, &claims).await?;
        let count: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM custom_key_stores WHERE account_id = $1 AND region = $2",
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
             connection_state, created_at_ms, version, doc) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
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
             WHERE account_id = $1 AND region = $2 AND id = $3"
        );
        let row = sqlx::query(&sql)
            .bind(account_id)
            .bind(region)
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        row.as_ref().map(cks_from_row).transpose().map_err(backend)
    }

    async fn update_custom_key_store(
        &self,
        store: &StoredCustomKeyStore,
        claims: Option<&[UniqueClaim]>,
    ) -> Result<(), StoreError> {
        let claims = claims.map(normalize_claims);
        let mut tx = self.begin().await?;
        if let Some(claims) = &claims {
            let locks: Vec<String> = claims.iter().map(claim_lock).collect();
            self.lock(&mut tx, &locks).await?;
        }
        let done = sqlx::query(
            "UPDATE custom_key_stores SET name = $1, store_type = $2, connection_state = $3, \
             doc = $4, version = $5 \
             WHERE account_id = $6 AND region = $7 AND id = $8 AND version = $9",
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
        if let Some(claims) = &claims {
            let owner = cks_owner(&store.account_id, &store.region, &store.id);
            check_claims(&mut tx, &owner, claims).await?;
            replace_claims(&mut tx, &owner, claims).await?;
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
        // Keeps keys from being placed in this store while we look for them.
        self.lock(&mut tx, &[cks_lock(account_id, region, id)])
            .await?;
        let done = sqlx::query(
            "DELETE FROM custom_key_stores \
             WHERE account_id = $1 AND region = $2 AND id = $3 AND version = $4",
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
             WHERE account_id = $1 AND region = $2 AND custom_key_store_id = $3 LIMIT 1",
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
            "SELECT {CKS_COLUMNS} FROM custom_key_stores WHERE account_id = $1 AND region = $2 \
             AND ($3::text IS NULL OR id > $3) ORDER BY id LIMIT $4"
        );
        let rows = sqlx::query(&sql)
            .bind(account_id)
            .bind(region)
            .bind(after_id)
            .bind(sql_limit(limit))
            .fetch_all(&self.pool)
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
        let sql = format!(
            "SELECT {CKS_COLUMNS} FROM custom_key_stores WHERE connection_state = ANY($1) \
             ORDER BY account_id, region, id"
        );
        let rows = sqlx::query(&sql)
            .bind(states)
            .fetch_all(&self.pool)
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
             WHERE account_id = $1 AND region = $2 AND custom_key_store_id = $3",
        )
        .bind(account_id)
        .bind(region)
        .bind(id)
        .fetch_one(&self.pool)
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
        // Expiry follows the database clock so nodes with skewed clocks agree. The upsert
        // takes the row only if it is ours or has expired; racing upserts on one name are
        // serialized by the primary key.
        let sql = format!(
            "INSERT INTO leases AS l (name, holder, expires_at_ms) \
             VALUES ($1, $2, LEAST(GREATEST({DB_NOW_MS}::numeric + $3, \
             -9223372036854775808), 9223372036854775807)::bigint) \
             ON CONFLICT (name) DO UPDATE \
             SET holder = EXCLUDED.holder, expires_at_ms = EXCLUDED.expires_at_ms \
             WHERE l.holder = EXCLUDED.holder OR l.expires_at_ms <= {DB_NOW_MS} \
             RETURNING l.holder"
        );
        let row = sqlx::query(&sql)
            .bind(name)
            .bind(holder)
            .bind(ttl_ms)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        Ok(row.is_some())
    }

    async fn release_lease(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM leases WHERE name = $1 AND holder = $2")
            .bind(name)
            .bind(holder)
            .execute(&self.pool)
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
