//! Opening a [`SqliteStore`] (a file or private memory) and migrating it.

use std::path::Path;

use keyhold_core::ports::StoreError;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use super::{SqliteStore, BUSY_TIMEOUT, READERS};
use crate::common::{backend, message};
use crate::migrate::migrate_sqlite;

impl SqliteStore {
    /// Opens (creating the file and its parent directories if needed) and migrates the
    /// database at `path`.
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            tokio::fs::create_dir_all(parent).await.map_err(|e| {
                message(format!("cannot create directory {}: {e}", parent.display()))
            })?;
        }
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT);
        let writer = SqlitePoolOptions::new()
            // A local file's connection cannot go away under us: skip sqlx's ping before every
            // acquire, which costs a thread round trip per query.
            .test_before_acquire(false)
            .max_connections(1)
            .connect_with(options.clone())
            .await
            .map_err(backend)?;
        migrate_sqlite(&writer).await?;
        let reader = SqlitePoolOptions::new()
            // A local file's connection cannot go away under us: skip sqlx's ping before every
            // acquire, which costs a thread round trip per query.
            .test_before_acquire(false)
            .max_connections(READERS)
            .connect_with(options)
            .await
            .map_err(backend)?;
        Ok(Self {
            writer,
            reader,
            path: Some(path.to_owned()),
        })
    }

    /// Opens a private in-memory database (for tests). It lives as long as this store.
    pub async fn open_in_memory() -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::new()
            .in_memory(true)
            .foreign_keys(true);
        // One connection that is never recycled: closing it would drop the database.
        let pool = SqlitePoolOptions::new()
            // A local file's connection cannot go away under us: skip sqlx's ping before every
            // acquire, which costs a thread round trip per query.
            .test_before_acquire(false)
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options)
            .await
            .map_err(backend)?;
        migrate_sqlite(&pool).await?;
        Ok(Self {
            writer: pool.clone(),
            reader: pool,
            path: None,
        })
    }
}
