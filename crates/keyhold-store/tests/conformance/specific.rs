//! Engine-specific behavior outside the shared suite: durability of the SQLite file,
//! `open_store` URL handling, and PostgreSQL schema isolation.

use std::path::Path;

use keyhold_core::ports::{MetadataStore, UniqueClaim};
use keyhold_store::{open_store, PostgresStore, SqliteStore, DEFAULT_SQLITE_FILE};
use sqlx::{Connection, Row, SqliteConnection};

use crate::fixtures::*;
use crate::harness::{pg_url, PgSchema};

async fn write_sample(s: &dyn MetadataStore) {
    let mut k = key("k1");
    k.custom_key_store_id = Some("cks-1".into());
    s.insert_key(
        &k,
        Some(&material("k1", "m1")),
        &[UniqueClaim::exclusive("alias", "a")],
        &[],
    )
    .await
    .unwrap();
    s.insert_custom_key_store(&cks("cks-1", "one"), &[name_claim("one")], 10)
        .await
        .unwrap();
    let mut v2 = cks("cks-1", "one");
    v2.version = 2;
    v2.connection_state = "CONNECTED".into();
    s.update_custom_key_store(&v2, None).await.unwrap();
}

async fn check_sample(s: &dyn MetadataStore) {
    let mut k = key("k1");
    k.custom_key_store_id = Some("cks-1".into());
    assert_eq!(s.get_key(ACCT, REGION, "k1").await.unwrap(), Some(k));
    assert_eq!(
        s.get_key_material(ACCT, REGION, "k1", "m1").await.unwrap(),
        Some(material("k1", "m1"))
    );
    let mut v2 = cks("cks-1", "one");
    v2.version = 2;
    v2.connection_state = "CONNECTED".into();
    assert_eq!(
        s.get_custom_key_store(ACCT, REGION, "cks-1").await.unwrap(),
        Some(v2)
    );
    // The claims persisted as well.
    assert_conflict(
        s.insert_custom_key_store(&cks("cks-2", "one"), &[name_claim("one")], 10)
            .await,
        NAME_SCOPE,
    );
}

#[tokio::test]
async fn sqlite_file_holds_what_was_written() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a").join("b").join("meta.sqlite");
    let store = SqliteStore::open(&path).await.unwrap();
    assert_eq!(store.path(), Some(path.as_path()));
    write_sample(&store).await;
    store.close().await;

    // Read the file with a plain connection: exactly the rows written, byte for byte.
    let mut conn = SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    let rows = sqlx::query("SELECT key_id, custom_key_store_id, version, doc FROM keys")
        .fetch_all(&mut conn)
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].get::<String, _>("key_id"), "k1");
    assert_eq!(
        rows[0]
            .get::<Option<String>, _>("custom_key_store_id")
            .as_deref(),
        Some("cks-1")
    );
    assert_eq!(rows[0].get::<i64, _>("version"), 1);
    assert_eq!(rows[0].get::<String, _>("doc"), key("k1").doc);
    let wrapped: Vec<u8> = sqlx::query_scalar("SELECT wrapped FROM key_materials")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(wrapped, material("k1", "m1").wrapped);
    let claims: Vec<(String, String, bool)> =
        sqlx::query_as("SELECT scope, owner, exclusive FROM unique_claims ORDER BY scope")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    assert_eq!(
        claims,
        vec![
            ("alias".into(), format!("key:{ACCT}/{REGION}/k1"), true),
            (
                NAME_SCOPE.into(),
                format!("cks:{ACCT}/{REGION}/cks-1"),
                true
            ),
        ]
    );
    let versions: Vec<i64> =
        sqlx::query_scalar("SELECT version FROM schema_migrations ORDER BY version")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    assert_eq!(versions, vec![1, 2, 3]);
    conn.close().await.unwrap();

    // Reopen (migrations are not re-applied) and read everything back.
    let store = SqliteStore::open(&path).await.unwrap();
    check_sample(&store).await;
    store.close().await;
}

#[tokio::test]
async fn open_store_sqlite_urls() {
    let dir = tempfile::tempdir().unwrap();
    let default = open_store(None, dir.path()).await.unwrap();
    write_sample(default.as_ref()).await;
    drop(default);
    assert!(dir.path().join(DEFAULT_SQLITE_FILE).exists());

    let url = format!(
        "sqlite://{}",
        dir.path().join(DEFAULT_SQLITE_FILE).display()
    );
    let same = open_store(Some(&url), Path::new("/nonexistent"))
        .await
        .unwrap();
    check_sample(same.as_ref()).await;

    let memory = open_store(Some("sqlite::memory:"), dir.path())
        .await
        .unwrap();
    assert_eq!(memory.get_key(ACCT, REGION, "k1").await.unwrap(), None);
}

#[tokio::test]
async fn postgres_schemas_are_isolated_and_open_store_connects() {
    let Some(url) = pg_url() else { return };
    let mut one = PgSchema::new(&url);
    let mut two = PgSchema::new(&url);
    let a = PostgresStore::connect_with_schema(&url, &one.name)
        .await
        .unwrap();
    let b = PostgresStore::connect_with_schema(&url, &two.name)
        .await
        .unwrap();
    write_sample(&a).await;
    assert_eq!(b.get_key(ACCT, REGION, "k1").await.unwrap(), None);
    // The same claims are free in the other schema.
    write_sample(&b).await;
    b.close().await;

    // open_store with a search_path in the URL reaches schema one; reconnecting migrates
    // nothing twice.
    let sep = if url.contains('?') { '&' } else { '?' };
    let with_path = format!("{url}{sep}options=-c%20search_path%3D{}", one.name);
    let store = open_store(Some(&with_path), Path::new("/nonexistent"))
        .await
        .unwrap();
    check_sample(store.as_ref()).await;
    let versions: Vec<i64> =
        sqlx::query_scalar("SELECT version FROM schema_migrations ORDER BY version")
            .fetch_all(a.pool())
            .await
            .unwrap();
    assert_eq!(versions, vec![1, 2, 3]);
    drop(store);
    a.close().await;
    one.drop_now().await;
    two.drop_now().await;
}

#[tokio::test]
async fn postgres_bad_schema_name_is_refused() {
    let Some(url) = pg_url() else { return };
    assert!(PostgresStore::connect_with_schema(&url, "bad\"name")
        .await
        .is_err());
}
