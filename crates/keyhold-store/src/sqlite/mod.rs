//! [`MetadataStore`] on one SQLite file.
//!
//! [`MetadataStore`]: keyhold_core::ports::MetadataStore

use std::path::{Path, PathBuf};
use std::time::Duration;

use keyhold_core::ports::{StoreError, StoredCustomKeyStore, StoredKeyMaterial};
use sqlx::{Pool, Sqlite, SqlitePool, Transaction};

use crate::common::{backend, cks_from_row, decode_all, message, now_ms};
use crate::shared::{metadata_store, Engine, Sql};

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
///
/// [`MetadataStore`]: keyhold_core::ports::MetadataStore
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
}

mod connect;
mod sql;
#[cfg(test)]
mod tests;

metadata_store!(SqliteStore);

impl Engine for SqliteStore {
    type Db = Sqlite;

    const SQL: Sql = sql::SQL;

    /// `BEGIN IMMEDIATE` on the single writer connection: SQLite's write lock excludes every
    /// other writer, so it covers all of `locks`, which need no lock of their own.
    async fn begin_write(
        &self,
        _locks: &[String],
    ) -> Result<Transaction<'static, Sqlite>, StoreError> {
        self.writer
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(backend)
    }

    fn reader(&self) -> &Pool<Sqlite> {
        &self.reader
    }

    async fn insert_lone_key_material(
        &self,
        material: &StoredKeyMaterial,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write(&[]).await?;
        statements::insert_material(&mut tx, material).await?;
        tx.commit().await.map_err(backend)
    }

    async fn select_custom_key_stores_in_states(
        &self,
        states: &[&str],
    ) -> Result<Vec<StoredCustomKeyStore>, StoreError> {
        let states = serde_json::to_string(states)
            .map_err(|e| message(format!("cannot encode states: {e}")))?;
        let rows = sqlx::query(
            "SELECT account_id, region, id, name, store_type, connection_state, created_at_ms, \
             version, doc FROM custom_key_stores \
             WHERE connection_state IN (SELECT value FROM json_each(?)) \
             ORDER BY account_id, region, id",
        )
        .bind(states)
        .fetch_all(&self.reader)
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

    async fn delete_lease(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM leases WHERE name = ? AND holder = ?")
            .bind(name)
            .bind(holder)
            .execute(&self.writer)
            .await
            .map_err(backend)?;
        Ok(())
    }
}
