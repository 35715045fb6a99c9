//! Upgrading a database of an earlier release: schema migration 3 rebuilds the key deletion
//! index from the key rows and drops the index documents the earlier release wrote.

use keyhold_core::keys::DELETION_DUE_INDEX;
use keyhold_core::ports::{IndexHit, IndexOwner, MetadataStore};
use keyhold_store::{PostgresStore, SqliteStore};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{Connection, Executor, PgConnection, SqliteConnection};

use crate::fixtures::*;
use crate::harness::{pg_url, PgSchema};

/// The kind of the index documents of releases before schema version 3.
const OLD_INDEX_KIND: &str = "keyhold-pending-key-deletion";

/// Schema versions 1 and 2 and rows as the previous release left them: two keys pending
/// deletion (one due at a fractional second), one enabled key with a stale index document,
/// and a document of another kind. The same text runs on both engines.
const SEED: &str = r#"
INSERT INTO schema_migrations (version, description, applied_at_ms)
    VALUES (1, 'initial', 0), (2, 'documents', 0);
INSERT INTO keys (account_id, region, key_id, custom_key_store_id, created_at_ms, version, doc)
VALUES
  ('111122223333', 'us-east-1', 'k-pending', NULL, 1, 2,
   '{"description":"","key_state":"PendingDeletion","creation_date":1.0,"deletion_date":1700000000.5,"pending_deletion_window_in_days":7}'),
  ('222233334444', 'eu-west-1', 'k-earlier', NULL, 1, 2,
   '{"description":"","key_state":"PendingDeletion","creation_date":1.0,"deletion_date":1690000000,"pending_deletion_window_in_days":30}'),
  ('111122223333', 'us-east-1', 'k-enabled', NULL, 1, 3,
   '{"description":"","key_state":"Enabled","creation_date":1.0,"deletion_date":null}');
INSERT INTO documents (kind, account_id, region, id, created_at_ms, version, doc)
VALUES
  ('keyhold-pending-key-deletion', '*', '*', '001700000000500/111122223333/us-east-1/k-pending', 1, 1, '{}'),
  ('keyhold-pending-key-deletion', '*', '*', '001690000000000/222233334444/eu-west-1/k-earlier', 1, 1, '{}'),
  ('keyhold-pending-key-deletion', '*', '*', '001600000000000/111122223333/us-east-1/k-enabled', 1, 1, '{}'),
  ('cloudhsm-cluster', '111122223333', 'us-east-1', 'c-1', 1, 1, '{}');
"#;

async fn check_upgraded(s: &dyn MetadataStore) {
    let key = |a: &str, r: &str, k: &str| IndexOwner::Key {
        account_id: a.into(),
        region: r.into(),
        key_id: k.into(),
    };
    let hits = s
        .list_index(DELETION_DUE_INDEX, "", None, None, 10)
        .await
        .unwrap();
    assert_eq!(
        hits,
        [
            IndexHit {
                value: "001690000000000".into(),
                owner: key("222233334444", "eu-west-1", "k-earlier"),
            },
            IndexHit {
                value: "001700000000500".into(),
                owner: key(ACCT, REGION, "k-pending"),
            },
        ]
    );
    assert!(s
        .list_documents(OLD_INDEX_KIND, "*", "*", None, 10)
        .await
        .unwrap()
        .is_empty());
    assert!(s
        .get_document("cloudhsm-cluster", ACCT, REGION, "c-1")
        .await
        .unwrap()
        .is_some());
}

#[tokio::test]
async fn sqlite_upgrade_rebuilds_the_deletion_index() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.sqlite");
    let options = SqliteConnectOptions::new()
        .filename(&path)
        .create_if_missing(true);
    let mut conn = SqliteConnection::connect_with(&options).await.unwrap();
    conn.execute(include_str!("../../migrations/sqlite/0001_initial.sql"))
        .await
        .unwrap();
    conn.execute(include_str!("../../migrations/sqlite/0002_documents.sql"))
        .await
        .unwrap();
    conn.execute(
        "CREATE TABLE schema_migrations (version INTEGER NOT NULL PRIMARY KEY, \
         description TEXT NOT NULL, applied_at_ms INTEGER NOT NULL) STRICT",
    )
    .await
    .unwrap();
    conn.execute(SEED).await.unwrap();
    conn.close().await.unwrap();

    let store = SqliteStore::open(&path).await.unwrap();
    check_upgraded(&store).await;
    store.close().await;
}

#[tokio::test]
async fn postgres_upgrade_rebuilds_the_deletion_index() {
    let Some(url) = pg_url() else { return };
    let mut schema = PgSchema::new(&url);
    let mut conn = PgConnection::connect(&url).await.unwrap();
    let name = &schema.name;
    conn.execute(format!("CREATE SCHEMA \"{name}\"; SET search_path TO \"{name}\"").as_str())
        .await
        .unwrap();
    conn.execute(include_str!("../../migrations/postgres/0001_initial.sql"))
        .await
        .unwrap();
    conn.execute(include_str!("../../migrations/postgres/0002_documents.sql"))
        .await
        .unwrap();
    conn.execute(
        "CREATE TABLE schema_migrations (version BIGINT NOT NULL PRIMARY KEY, \
         description TEXT NOT NULL, applied_at_ms BIGINT NOT NULL)",
    )
    .await
    .unwrap();
    conn.execute(SEED).await.unwrap();
    conn.close().await.unwrap();

    let store = PostgresStore::connect_with_schema(&url, &schema.name)
        .await
        .unwrap();
    check_upgraded(&store).await;
    store.close().await;
    schema.drop_now().await;
}
