//! Unit tests of SQLite specifics the conformance suite cannot see.

use super::*;
use crate::migrate::migrate_sqlite;

#[tokio::test]
async fn file_connections_are_durable_wal_with_foreign_keys() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("nested").join("db.sqlite"))
        .await
        .unwrap();
    for pool in [&store.writer, &store.reader] {
        let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(pool)
            .await
            .unwrap();
        assert_eq!(mode, "wal");
        let sync: i64 = sqlx::query_scalar("PRAGMA synchronous")
            .fetch_one(pool)
            .await
            .unwrap();
        assert_eq!(sync, 2, "synchronous=FULL");
        let fk: i64 = sqlx::query_scalar("PRAGMA foreign_keys")
            .fetch_one(pool)
            .await
            .unwrap();
        assert_eq!(fk, 1);
    }
    store.close().await;
}

#[tokio::test]
async fn migrations_are_recorded_once() {
    let store = SqliteStore::open_in_memory().await.unwrap();
    migrate_sqlite(&store.writer).await.unwrap();
    let versions: Vec<i64> =
        sqlx::query_scalar("SELECT version FROM schema_migrations ORDER BY version")
            .fetch_all(&store.reader)
            .await
            .unwrap();
    assert_eq!(versions, vec![1, 2, 3]);
}
