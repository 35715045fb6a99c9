//! Keyhold's [`MetadataStore`] on SQLite (the embedded default) and PostgreSQL.
//!
//! * [`SqliteStore`] keeps everything in one file (WAL journal, `synchronous=FULL`, foreign
//!   keys on). All writes go through one writer connection and run as `BEGIN IMMEDIATE`
//!   transactions, so every check-and-write is serialized even across processes sharing the
//!   file.
//! * [`PostgresStore`] lets several Keyhold nodes share one database. Each write runs in one
//!   `READ COMMITTED` transaction that first takes transaction-scoped advisory locks
//!   (`pg_advisory_xact_lock`) on everything it is about to check: every claimed
//!   `(scope, value)`, the `(account, Region)` quota, and the custom key store a key is
//!   placed in. See [`PostgresStore`] for why this beats `SERIALIZABLE` with retries here.
//! * [`open_store`] picks the backend from a database URL.
//! * [`MemoryStore`], the in-memory engine for tests and ephemeral use, lives in
//!   `keyhold-core` (so the domain's unit tests can use it) and is re-exported here so all
//!   three engines are in one place.
//!
//! The two SQL engines share one implementation of the trait's logic (claims, index entries,
//! quotas, compare-and-set, paging, row decoding); each supplies only its SQL text, how a
//! write transaction starts and locks, and leases.
//!
//! Index entries ([`IndexEntry`]) live in one table, `index_entries(index_name, value,
//! owner, ...)`, keyed by `(index_name, value, owner)` so `list_index` is a range scan in
//! `(value, owner)` order. A row's entries are deleted and re-inserted by owner inside the
//! row's write transaction, after its compare-and-set succeeded, so they commit or roll back
//! with it; on PostgreSQL the row lock of that `UPDATE` serializes racing writers of one row.
//!
//! Both SQL engines run versioned migrations (the SQL files under `migrations/sqlite` and
//! `migrations/postgres`, embedded in the binary) recorded in a `schema_migrations` table.
//! All three engines pass one conformance suite (`tests/conformance`).
//!
//! Besides the errors the trait documents, the stores answer [`StoreError::Conflict`] with
//! the scopes [`KEY_ID_SCOPE`], [`KEY_MATERIAL_ID_SCOPE`], [`CUSTOM_KEY_STORE_ID_SCOPE`] and
//! [`DOCUMENT_ID_SCOPE`]
//! when a row with the same primary key already exists, and [`StoreError::NotFound`] when a
//! key material names a key that does not exist or a delete finds no row.
//!
//! [`MetadataStore`]: keyhold_core::ports::MetadataStore
//! [`IndexEntry`]: keyhold_core::ports::IndexEntry
//! [`StoreError::Conflict`]: keyhold_core::ports::StoreError::Conflict
//! [`StoreError::NotFound`]: keyhold_core::ports::StoreError::NotFound
#![warn(missing_docs)]

mod common;
mod migrate;
mod open;
mod postgres;
mod shared;
mod sqlite;

/// The in-memory engine (defined in `keyhold-core`; see the crate documentation).
pub use keyhold_core::ports::memory::MemoryStore;
pub use open::{open_store, DEFAULT_SQLITE_FILE};
pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;

/// The [`StoreError::Conflict`] scopes of duplicate primary keys, defined in the port so the
/// in-memory engine answers the same ones.
///
/// [`StoreError::Conflict`]: keyhold_core::ports::StoreError::Conflict
pub use keyhold_core::ports::{
    CUSTOM_KEY_STORE_ID_SCOPE, DOCUMENT_ID_SCOPE, KEY_ID_SCOPE, KEY_MATERIAL_ID_SCOPE,
};
