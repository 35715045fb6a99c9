//! Engines under test: how each conformance case gets a fresh, isolated store.
//!
//! * SQLite: a new file in a temporary directory; the second "node" opens the same file
//!   (its own pools, so its writes contend for SQLite's write lock like another process).
//! * SQLite in memory: one private database; the second "node" is the same store.
//! * The in-memory engine ([`MemoryStore`]): a new store; the second "node" is the same store.
//! * PostgreSQL: the URL comes from `KEYHOLD_TEST_DATABASE_URL`. Each test creates its own
//!   schema `kh_test_<pid>_<time>_<n>`, connects two independent [`PostgresStore`]s (two pools,
//!   two "nodes") to it and drops it afterwards, so tests run in parallel and repeat. Without
//!   the variable the PostgreSQL cases fail when `CI=true` and are skipped otherwise.

use std::io::Write;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Once};

use keyhold_core::ports::MetadataStore;
use keyhold_store::{MemoryStore, PostgresStore, SqliteStore};
use sqlx::{Connection, Executor, PgConnection};

/// Environment variable naming the PostgreSQL test database.
pub const PG_URL_VAR: &str = "KEYHOLD_TEST_DATABASE_URL";

/// What a conformance case gets.
pub struct Ctx {
    /// The store under test.
    pub store: Arc<dyn MetadataStore>,
    /// A second handle on the same database, as another Keyhold node would have.
    pub node2: Arc<dyn MetadataStore>,
}

/// A store plus what must be cleaned up after the case.
pub struct Harness {
    /// Handed to the case.
    pub ctx: Ctx,
    cleanup: Cleanup,
}

enum Cleanup {
    Sqlite(Vec<SqliteStore>, tempfile::TempDir),
    Memory,
    Postgres(Vec<PostgresStore>, PgSchema),
}

impl Harness {
    /// Closes the stores and removes the database.
    pub async fn finish(self) {
        match self.cleanup {
            Cleanup::Sqlite(stores, dir) => {
                for s in stores {
                    s.close().await;
                }
                drop(dir);
            }
            Cleanup::Memory => {}
            Cleanup::Postgres(stores, mut schema) => {
                for s in stores {
                    s.close().await;
                }
                schema.drop_now().await;
            }
        }
    }
}

/// A fresh SQLite file, opened twice.
pub async fn sqlite() -> Option<Harness> {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("data").join("keyhold.sqlite");
    let a = SqliteStore::open(&path).await.expect("open SQLite");
    let b = SqliteStore::open(&path).await.expect("open SQLite again");
    Some(Harness {
        ctx: Ctx {
            store: Arc::new(a.clone()),
            node2: Arc::new(b.clone()),
        },
        cleanup: Cleanup::Sqlite(vec![a, b], dir),
    })
}

/// A private in-memory SQLite database.
pub async fn sqlite_memory() -> Option<Harness> {
    let store: Arc<dyn MetadataStore> = Arc::new(
        SqliteStore::open_in_memory()
            .await
            .expect("open in-memory SQLite"),
    );
    Some(Harness {
        ctx: Ctx {
            store: store.clone(),
            node2: store,
        },
        cleanup: Cleanup::Memory,
    })
}

/// A new in-memory engine.
pub async fn memory() -> Option<Harness> {
    let store: Arc<dyn MetadataStore> = Arc::new(MemoryStore::new());
    Some(Harness {
        ctx: Ctx {
            store: store.clone(),
            node2: store,
        },
        cleanup: Cleanup::Memory,
    })
}

/// The PostgreSQL test URL, or `None` (after a visible SKIP line) when it is not configured.
/// Panics when it is not configured but `CI=true`.
pub fn pg_url() -> Option<String> {
    if let Ok(url) = std::env::var(PG_URL_VAR) {
        if !url.trim().is_empty() {
            return Some(url);
        }
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!(
            "{PG_URL_VAR} is unset but CI=true: the PostgreSQL conformance suite must run in CI \
             (set it, e.g. {PG_URL_VAR}=postgres://postgres@127.0.0.1:5432/test)"
        );
    }
    static SKIP: Once = Once::new();
    SKIP.call_once(|| {
        // Straight to the process's stderr, past the test harness's output capture.
        let _ = writeln!(
            std::io::stderr(),
            "SKIP: PostgreSQL conformance ({PG_URL_VAR} unset)"
        );
    });
    None
}

/// A fresh schema in the PostgreSQL test database, with two stores on it.
pub async fn postgres() -> Option<Harness> {
    let url = pg_url()?;
    let schema = PgSchema::new(&url);
    let a = PostgresStore::connect_with_schema(&url, &schema.name)
        .await
        .unwrap_or_else(|e| panic!("connect to {PG_URL_VAR}: {e:?}"));
    let b = PostgresStore::connect_with_schema(&url, &schema.name)
        .await
        .unwrap_or_else(|e| panic!("connect to {PG_URL_VAR} again: {e:?}"));
    Some(Harness {
        ctx: Ctx {
            store: Arc::new(a.clone()),
            node2: Arc::new(b.clone()),
        },
        cleanup: Cleanup::Postgres(vec![a, b], schema),
    })
}

/// A test schema, dropped by [`PgSchema::drop_now`] or, if the test panicked first, on drop.
pub struct PgSchema {
    url: String,
    /// The schema name.
    pub name: String,
    dropped: bool,
}

impl PgSchema {
    /// Names a new schema (created by whoever connects first).
    pub fn new(url: &str) -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let name = format!(
            "kh_test_{}_{nanos}_{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        Self {
            url: url.to_owned(),
            name,
            dropped: false,
        }
    }

    /// Drops the schema and everything in it.
    pub async fn drop_now(&mut self) {
        drop_schema(&self.url, &self.name).await;
        self.dropped = true;
    }
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        if self.dropped {
            return;
        }
        // A panicking test: drop the schema from a thread with its own runtime.
        let (url, name) = (self.url.clone(), self.name.clone());
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            if let Ok(rt) = rt {
                rt.block_on(drop_schema(&url, &name));
            }
        })
        .join();
    }
}

async fn drop_schema(url: &str, name: &str) {
    let Ok(mut conn) = PgConnection::connect(url).await else {
        return;
    };
    let _ = conn.execute("SET lock_timeout = '10s'").await;
    let _ = conn
        .execute(format!("DROP SCHEMA IF EXISTS \"{name}\" CASCADE").as_str())
        .await;
    let _ = conn.close().await;
}
