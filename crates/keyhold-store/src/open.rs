//! Choosing the backend from configuration.

use std::path::Path;
use std::sync::Arc;

use keyhold_core::ports::{MetadataStore, StoreError};

use crate::common::message;
use crate::{PostgresStore, SqliteStore};

/// File name of the embedded database inside the data directory.
pub const DEFAULT_SQLITE_FILE: &str = "keyhold.sqlite";

/// Opens the metadata store named by `database_url`, running its migrations.
///
/// * `None` (or an empty string): SQLite at `data_dir/keyhold.sqlite`.
/// * `postgres://...` or `postgresql://...`: [`PostgresStore::connect`].
/// * `sqlite://PATH` or `sqlite:PATH`: SQLite at `PATH` (relative paths are relative to the
///   working directory); `sqlite::memory:` opens a private in-memory database.
///
/// Any other scheme is refused with [`StoreError::Backend`].
pub async fn open_store(
    database_url: Option<&str>,
    data_dir: &Path,
) -> Result<Arc<dyn MetadataStore>, StoreError> {
    let url = database_url.map(str::trim).filter(|u| !u.is_empty());
    Ok(match url.map(classify) {
        None => Arc::new(SqliteStore::open(&data_dir.join(DEFAULT_SQLITE_FILE)).await?),
        Some(Target::Postgres(url)) => Arc::new(PostgresStore::connect(url).await?),
        Some(Target::SqliteMemory) => Arc::new(SqliteStore::open_in_memory().await?),
        Some(Target::SqliteFile(path)) => Arc::new(SqliteStore::open(Path::new(path)).await?),
        Some(Target::Unsupported(scheme)) => {
            // The URL itself is not echoed: it may carry a password.
            return Err(message(format!(
                "unsupported database URL scheme {scheme:?}: use postgres://, postgresql:// or sqlite://"
            )));
        }
    })
}

#[derive(Debug, PartialEq, Eq)]
enum Target<'a> {
    Postgres(&'a str),
    SqliteFile(&'a str),
    SqliteMemory,
    Unsupported(String),
}

fn classify(url: &str) -> Target<'_> {
    let scheme = url
        .split_once(':')
        .map_or("", |(s, _)| s)
        .to_ascii_lowercase();
    match scheme.as_str() {
        "postgres" | "postgresql" if url[scheme.len()..].starts_with("://") => {
            Target::Postgres(url)
        }
        "sqlite" => {
            let rest = &url["sqlite:".len()..];
            let path = rest.strip_prefix("//").unwrap_or(rest);
            if path == ":memory:" || path.is_empty() {
                Target::SqliteMemory
            } else {
                Target::SqliteFile(path)
            }
        }
        _ => Target::Unsupported(scheme),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_pick_the_backend() {
        assert_eq!(
            classify("postgres://u@h/db"),
            Target::Postgres("postgres://u@h/db")
        );
        assert_eq!(
            classify("PostgreSQL://h/db"),
            Target::Postgres("PostgreSQL://h/db")
        );
        assert_eq!(
            classify("sqlite:///var/lib/k.sqlite"),
            Target::SqliteFile("/var/lib/k.sqlite")
        );
        assert_eq!(
            classify("sqlite://data/k.sqlite"),
            Target::SqliteFile("data/k.sqlite")
        );
        assert_eq!(classify("sqlite:k.sqlite"), Target::SqliteFile("k.sqlite"));
        assert_eq!(classify("sqlite::memory:"), Target::SqliteMemory);
        assert_eq!(
            classify("mysql://h/db"),
            Target::Unsupported("mysql".into())
        );
        assert_eq!(
            classify("postgres:db"),
            Target::Unsupported("postgres".into())
        );
        assert_eq!(classify("/plain/path"), Target::Unsupported(String::new()));
    }

    #[tokio::test]
    async fn default_is_sqlite_in_the_data_dir() {
        let dir = tempfile::tempdir().unwrap();
        let data_dir = dir.path().join("data");
        let store = open_store(None, &data_dir).await.unwrap();
        assert!(store.get_key("1", "r", "k").await.unwrap().is_none());
        assert!(data_dir.join(DEFAULT_SQLITE_FILE).exists());
        let err = open_store(Some("mysql://x"), &data_dir)
            .await
            .err()
            .unwrap();
        assert!(matches!(err, StoreError::Backend(_)));
    }

    /// The constructors' futures must be `Send` so they can run in spawned tasks (this test
    /// fails to compile otherwise; the futures are never polled).
    #[test]
    fn constructors_are_send() {
        fn check<T: Send>(_: T) {}
        check(open_store(None, Path::new(".")));
        check(PostgresStore::connect_with_schema("", ""));
        check(SqliteStore::open_in_memory());
    }
}
