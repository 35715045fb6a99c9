//! [`MetadataStore`] on PostgreSQL, shared by several Keyhold nodes.
//!
//! [`MetadataStore`]: keyhold_core::ports::MetadataStore

use keyhold_core::ports::{StoreError, StoredCustomKeyStore, StoredKeyMaterial};
use sqlx::{PgConnection, PgPool, Pool, Postgres, Transaction};

use crate::common::{backend, cks_from_row, decode_all};
use crate::shared::{metadata_store, Engine, Sql};

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
///
/// [`MetadataStore`]: keyhold_core::ports::MetadataStore
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
mod helpers;
mod sql;
#[cfg(test)]
mod tests;

use helpers::lock_id;

metadata_store!(PostgresStore);

impl Engine for PostgresStore {
    type Db = Postgres;

    const SQL: Sql = sql::SQL;

    /// A `READ COMMITTED` transaction that first takes the advisory locks named by `locks`.
    async fn begin_write(
        &self,
        locks: &[String],
    ) -> Result<Transaction<'static, Postgres>, StoreError> {
        let mut tx = self.pool.begin().await.map_err(backend)?;
        self.lock(&mut tx, locks).await?;
        Ok(tx)
    }

    fn reader(&self) -> &Pool<Postgres> {
        &self.pool
    }

    /// The one `INSERT` runs outside any transaction (it is atomic by itself; the foreign key
    /// checks that the key exists).
    async fn insert_lone_key_material(
        &self,
        material: &StoredKeyMaterial,
    ) -> Result<(), StoreError> {
        let mut conn = self.pool.acquire().await.map_err(backend)?;
        statements::insert_material(&mut conn, material).await
    }

    async fn select_custom_key_stores_in_states(
        &self,
        states: &[&str],
    ) -> Result<Vec<StoredCustomKeyStore>, StoreError> {
        let rows = sqlx::query(
            "SELECT account_id, region, id, name, store_type, connection_state, created_at_ms, \
             version, doc FROM custom_key_stores WHERE connection_state = ANY($1) \
             ORDER BY account_id, region, id",
        )
        .bind(states)
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        decode_all(&rows, cks_from_row)
    }

    async fn upsert_lease(
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

    async fn delete_lease(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM leases WHERE name = $1 AND holder = $2")
            .bind(name)
            .bind(holder)
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(())
    }
}
