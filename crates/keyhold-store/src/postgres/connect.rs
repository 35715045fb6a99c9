//! Connecting a [`PostgresStore`] and migrating its schema.

use std::str::FromStr;

use keyhold_core::ports::StoreError;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, Executor, PgConnection, PgPool};

use super::helpers::quote_schema;
use super::PostgresStore;
use crate::common::backend;
use crate::migrate::migrate_postgres;

impl PostgresStore {
    /// Connects to `url` (`postgres://...`) and migrates the first schema on its `search_path`
    /// (normally `public`).
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let options = PgConnectOptions::from_str(url).map_err(backend)?;
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .connect_with(options)
            .await
            .map_err(backend)?;
        Self::from_pool(pool).await
    }

    /// Connects to `url` and keeps all tables in `schema`, creating the schema if needed.
    ///
    /// Every pooled connection gets `search_path` set to `schema` at startup. The name must be
    /// a plain identifier (ASCII letters, digits and `_`, not starting with a digit, at most
    /// 63 bytes); it is used case-sensitively.
    pub async fn connect_with_schema(url: &str, schema: &str) -> Result<Self, StoreError> {
        let quoted = quote_schema(schema)?;
        let options = PgConnectOptions::from_str(url).map_err(backend)?;
        let mut conn = PgConnection::connect_with(&options)
            .await
            .map_err(backend)?;
        let created = conn
            .execute(format!("CREATE SCHEMA IF NOT EXISTS {quoted}").as_str())
            .await;
        if let Err(e) = created {
            // Another node may have created it at the same moment.
            let raced = matches!(&e, sqlx::Error::Database(d)
                if d.code().is_some_and(|c| c == "23505" || c == "42P06"));
            if !raced {
                return Err(backend(e));
            }
        }
        conn.close().await.map_err(backend)?;
        let options = options.options([("search_path", quoted)]);
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .connect_with(options)
            .await
            .map_err(backend)?;
        Self::from_pool(pool).await
    }

    /// Uses an existing pool (whose connections must all have the same `search_path`) and
    /// migrates the first schema on it.
    pub async fn from_pool(pool: PgPool) -> Result<Self, StoreError> {
        migrate_postgres(&pool).await?;
        let lock_namespace: Option<String> = sqlx::query_scalar("SELECT current_schema()")
            .fetch_one(&pool)
            .await
            .map_err(backend)?;
        Ok(Self {
            pool,
            lock_namespace: lock_namespace.unwrap_or_default(),
        })
    }
}
