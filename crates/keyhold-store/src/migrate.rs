//! A small versioned migrator (no `sqlx::migrate!`, so no proc-macro dependency): ordered SQL files embedded in the binary, applied once each and
//! recorded in `schema_migrations(version, description, applied_at_ms)`.
//!
//! All pending migrations run in one transaction together with their bookkeeping, so a crash
//! leaves either the old or the new schema. On SQLite the transaction is `BEGIN IMMEDIATE`;
//! on PostgreSQL it first takes an advisory lock named after the current schema, so several
//! nodes starting at once migrate one after the other.

use keyhold_core::ports::StoreError;
use sqlx::{Executor, PgConnection, PgPool, SqliteConnection, SqlitePool};

use crate::common::{backend, now_ms};

/// One schema version.
pub(crate) struct Migration {
    /// Version number; versions are applied in ascending order.
    pub(crate) version: i64,
    /// Short description, recorded with the version.
    pub(crate) description: &'static str,
    /// The SQL (several statements).
    pub(crate) sql: &'static str,
}

/// SQLite migrations, in order.
pub(crate) const SQLITE: &[Migration] = &[
    Migration {
        version: 1,
        description: "initial",
        sql: include_str!("../migrations/sqlite/0001_initial.sql"),
    },
    Migration {
        version: 2,
        description: "documents",
        sql: include_str!("../migrations/sqlite/0002_documents.sql"),
    },
    Migration {
        version: 3,
        description: "index entries",
        sql: include_str!("../migrations/sqlite/0003_index_entries.sql"),
    },
];

/// PostgreSQL migrations, in order.
pub(crate) const POSTGRES: &[Migration] = &[
    Migration {
        version: 1,
        description: "initial",
        sql: include_str!("../migrations/postgres/0001_initial.sql"),
    },
    Migration {
        version: 2,
        description: "documents",
        sql: include_str!("../migrations/postgres/0002_documents.sql"),
    },
    Migration {
        version: 3,
        description: "index entries",
        sql: include_str!("../migrations/postgres/0003_index_entries.sql"),
    },
];

/// Migrations of `all` not yet in `applied`; warns when the database is newer than this build.
fn pending<'a>(all: &'a [Migration], applied: &[i64]) -> Vec<&'a Migration> {
    let newest_known = all.iter().map(|m| m.version).max().unwrap_or(0);
    if let Some(newest) = applied.iter().copied().max().filter(|v| *v > newest_known) {
        tracing::warn!(
            database_version = newest,
            build_version = newest_known,
            "the metadata database has a newer schema than this build knows"
        );
    }
    all.iter()
        .filter(|m| !applied.contains(&m.version))
        .collect()
}

/// Brings a SQLite database to the newest schema.
pub(crate) async fn migrate_sqlite(pool: &SqlitePool) -> Result<(), StoreError> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.map_err(backend)?;
    apply_sqlite(&mut tx).await?;
    tx.commit().await.map_err(backend)
}

async fn apply_sqlite(conn: &mut SqliteConnection) -> Result<(), StoreError> {
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version       INTEGER NOT NULL PRIMARY KEY,
            description   TEXT    NOT NULL,
            applied_at_ms INTEGER NOT NULL
        ) STRICT",
    )
    .await
    .map_err(backend)?;
    let applied: Vec<i64> = sqlx::query_scalar("SELECT version FROM schema_migrations")
        .fetch_all(&mut *conn)
        .await
        .map_err(backend)?;
    for m in pending(SQLITE, &applied) {
        conn.execute(m.sql).await.map_err(backend)?;
        sqlx::query(
            "INSERT INTO schema_migrations (version, description, applied_at_ms) VALUES (?, ?, ?)",
        )
        .bind(m.version)
        .bind(m.description)
        .bind(now_ms())
        .execute(&mut *conn)
        .await
        .map_err(backend)?;
        tracing::info!(version = m.version, "applied SQLite migration");
    }
    Ok(())
}

/// Brings the PostgreSQL schema (the first one on the `search_path`) to the newest version.
pub(crate) async fn migrate_postgres(pool: &PgPool) -> Result<(), StoreError> {
    let mut tx = pool.begin().await.map_err(backend)?;
    apply_postgres(&mut tx).await?;
    tx.commit().await.map_err(backend)
}

async fn apply_postgres(conn: &mut PgConnection) -> Result<(), StoreError> {
    // Serializes concurrent migrators of the same schema; released at commit.
    sqlx::query(
        "SELECT pg_advisory_xact_lock(hashtextextended('keyhold.migrate.' || current_schema(), 0))",
    )
    .execute(&mut *conn)
    .await
    .map_err(backend)?;
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version       BIGINT NOT NULL PRIMARY KEY,
            description   TEXT   NOT NULL,
            applied_at_ms BIGINT NOT NULL
        )",
    )
    .await
    .map_err(backend)?;
    let applied: Vec<i64> = sqlx::query_scalar("SELECT version FROM schema_migrations")
        .fetch_all(&mut *conn)
        .await
        .map_err(backend)?;
    for m in pending(POSTGRES, &applied) {
        conn.execute(m.sql).await.map_err(backend)?;
        sqlx::query(
            "INSERT INTO schema_migrations (version, description, applied_at_ms) \
             VALUES ($1, $2, floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint)",
        )
        .bind(m.version)
        .bind(m.description)
        .execute(&mut *conn)
        .await
        .map_err(backend)?;
        tracing::info!(version = m.version, "applied PostgreSQL migration");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_ascend_and_engines_agree() {
        for list in [SQLITE, POSTGRES] {
            assert!(list.windows(2).all(|w| w[0].version < w[1].version));
        }
        let s: Vec<i64> = SQLITE.iter().map(|m| m.version).collect();
        let p: Vec<i64> = POSTGRES.iter().map(|m| m.version).collect();
        assert_eq!(s, p);
    }

    #[test]
    fn pending_skips_applied() {
        assert!(pending(SQLITE, &[1, 2, 3]).is_empty());
        assert_eq!(pending(SQLITE, &[1, 2]).len(), 1);
        assert_eq!(pending(SQLITE, &[]).len(), SQLITE.len());
    }
}
