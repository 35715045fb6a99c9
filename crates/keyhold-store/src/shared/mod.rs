//! The store logic both engines share, written once.
//!
//! SQLite and PostgreSQL run the same `MetadataStore` algorithm: check the claims, check the
//! quota, compare-and-set on `version`, replace the row's index entries, tell
//! `VersionMismatch` from `NotFound`, page by id, decode rows. What really differs between
//! them is small:
//!
//! * how a write transaction starts and what it locks ([`Engine::begin_write`]: SQLite's
//!   `BEGIN IMMEDIATE` versus PostgreSQL's advisory locks);
//! * the SQL text of each statement (placeholders `?` versus `$1`, `0/1` versus `BOOLEAN`,
//!   `$3::text` casts), collected in one [`Sql`] value per engine (`sqlite/sql.rs`,
//!   `postgres/sql.rs`), so the two dialects can be read side by side;
//! * the few operations with no common shape (leases, state lists, a lone key material
//!   insert), which each engine implements as [`Engine`] methods.
//!
//! The shared algorithm lives in the [`metadata_store!`] macro (`shared/store.rs`: the
//! methods, built of the [`statements!`] in `shared/statements.rs`), which each engine invokes
//! once, `metadata_store!(SqliteStore);`, to get its `impl MetadataStore`.
//!
//! Why a macro: its body is ordinary Rust, type-checked once per engine against that engine's
//! concrete `sqlx` types, so it reads like the code of one engine. Generic functions over
//! `sqlx::Database` would need the same long list of bounds on every function (`Executor`
//! for `&mut` connections, `Encode + Type` for each bound type, `Send` futures for
//! `async_trait`), and since `MetadataStore` is a foreign trait each engine would still need
//! its own impl forwarding every method. Shared pure functions over fetched rows would leave
//! the statements, the transactions and the order of checks written twice, which is where
//! the engines must not drift apart.
//!
//! To read one method for one engine: find it in `shared/store.rs`, then its statement in that
//! engine's `sql.rs` (each [`Sql`] field documents what it binds, in order).

use std::future::Future;

use keyhold_core::ports::{StoreError, StoredCustomKeyStore, StoredKeyMaterial, UniqueClaim};
use sqlx::{Database, Pool, Transaction};

mod statements;
mod store;

pub(crate) use statements::statements;
pub(crate) use store::metadata_store;

/// What an engine supplies to [`metadata_store!`] besides its [`Sql`].
pub(crate) trait Engine {
    /// The `sqlx` database driver.
    type Db: Database;

    /// The text of every shared statement in this engine's dialect.
    const SQL: Sql;

    /// Begins a write transaction in which the check-then-write of the caller cannot
    /// interleave with another writer touching any of the lock names `locks` (built with
    /// [`claim_lock`], [`quota_lock`] and [`cks_lock`]).
    fn begin_write(
        &self,
        locks: &[String],
    ) -> impl Future<Output = Result<Transaction<'static, Self::Db>, StoreError>> + Send;

    /// The pool that reads run on (they see the last committed state).
    fn reader(&self) -> &Pool<Self::Db>;

    /// `MetadataStore::insert_key_material` (a material added to an existing key).
    fn insert_lone_key_material(
        &self,
        material: &StoredKeyMaterial,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// `MetadataStore::list_custom_key_stores_in_states`, for a non-empty `states`.
    fn select_custom_key_stores_in_states(
        &self,
        states: &[&str],
    ) -> impl Future<Output = Result<Vec<StoredCustomKeyStore>, StoreError>> + Send;

    /// `MetadataStore::try_acquire_lease`.
    fn upsert_lease(
        &self,
        name: &str,
        holder: &str,
        ttl_ms: i64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// `MetadataStore::release_lease`.
    fn delete_lease(
        &self,
        name: &str,
        holder: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// The SQL text of every statement the shared code runs, in one engine's dialect.
///
/// Each field says what the statement binds, in order; both dialects must bind the same
/// values in the same order. A paging statement uses its `after` parameter twice (`NULL` on
/// the first page) but binds it once.
pub(crate) struct Sql {
    /// Binds `scope, value, owner, exclusive`; returns a row when another owner holds a
    /// claim on `(scope, value)` that conflicts (either side exclusive).
    pub(crate) check_claim: &'static str,
    /// Binds `scope, value, owner, exclusive`.
    pub(crate) insert_claim: &'static str,
    /// Binds `owner`; deletes all its claims.
    pub(crate) delete_claims: &'static str,

    /// Binds the seven `keys` columns: `account_id, region, key_id, custom_key_store_id,
    /// created_at_ms, version, doc`.
    pub(crate) insert_key: &'static str,
    /// Binds `account_id, region, key_id`; selects the columns `key_from_row` decodes.
    pub(crate) get_key: &'static str,
    /// Binds `account_id, region, key_id`; returns a row if the key exists.
    pub(crate) key_exists: &'static str,
    /// Binds `custom_key_store_id, doc, version, account_id, region, key_id, expected version`.
    pub(crate) update_key: &'static str,
    /// Binds `account_id, region, key_id`; run before [`Sql::delete_key`] where the engine
    /// does not leave this to `ON DELETE CASCADE`.
    pub(crate) delete_key_materials: Option<&'static str>,
    /// Binds `account_id, region, key_id`.
    pub(crate) delete_key: &'static str,
    /// Binds `account_id, region, after key id (or NULL), limit`.
    pub(crate) list_keys: &'static str,

    /// Binds `account_id, region, key_id, material_id, created_at_ms, wrapped`.
    pub(crate) insert_key_material: &'static str,
    /// Binds `account_id, region, key_id, material_id`; selects the columns
    /// `material_from_row` decodes.
    pub(crate) get_key_material: &'static str,
    /// Binds `account_id, region, key_id, material_id`; deletes that one material.
    pub(crate) delete_key_material: &'static str,

    /// Binds `account_id, region`; selects `COUNT(*)` of that Region's custom key stores.
    pub(crate) count_custom_key_stores: &'static str,
    /// Binds the nine `custom_key_stores` columns: `account_id, region, id, name,
    /// store_type, connection_state, created_at_ms, version, doc`.
    pub(crate) insert_custom_key_store: &'static str,
    /// Binds `account_id, region, id`; selects the columns `cks_from_row` decodes.
    pub(crate) get_custom_key_store: &'static str,
    /// Binds `account_id, region, id`; returns a row if the custom key store exists.
    pub(crate) custom_key_store_exists: &'static str,
    /// Binds `name, store_type, connection_state, doc, version, account_id, region, id,
    /// expected version`.
    pub(crate) update_custom_key_store: &'static str,
    /// Binds `account_id, region, id, expected version`.
    pub(crate) delete_custom_key_store: &'static str,
    /// Binds `account_id, region, id`; returns a row if a key is placed in that store.
    pub(crate) custom_key_store_has_keys: &'static str,
    /// Binds `account_id, region, id`; selects `COUNT(*)` of the keys placed in that store.
    pub(crate) count_keys_in_custom_key_store: &'static str,
    /// Binds `account_id, region, after id (or NULL), limit`.
    pub(crate) list_custom_key_stores: &'static str,

    /// Binds the seven `documents` columns: `kind, account_id, region, id, created_at_ms,
    /// version, doc`.
    pub(crate) insert_document: &'static str,
    /// Binds `kind, account_id, region, id`; selects the columns `doc_from_row` decodes.
    pub(crate) get_document: &'static str,
    /// Binds `kind, account_id, region, id`; returns a row if the document exists.
    pub(crate) document_exists: &'static str,
    /// Binds `doc, version, kind, account_id, region, id, expected version`.
    pub(crate) update_document: &'static str,
    /// Binds `kind, account_id, region, id, expected version`.
    pub(crate) delete_document: &'static str,
    /// Binds `kind, account_id, region, after id (or NULL), limit`.
    pub(crate) list_documents: &'static str,

    /// Binds the seven `index_entries` columns: `index_name, value, owner, doc_kind (NULL for
    /// a key), account_id, region, id`.
    pub(crate) insert_index_entry: &'static str,
    /// Binds `owner`; deletes all its index entries.
    pub(crate) delete_index_entries: &'static str,
    /// Binds `index_name, min value, max value (or NULL), after value (or NULL), after owner
    /// (or NULL), limit`; selects the columns `index_hit_from_row` decodes, ordered by
    /// `(value, owner)`.
    pub(crate) list_index: &'static str,
}

/// The tables `MetadataStore::reset` empties, children first.
pub(crate) const TABLES: [&str; 7] = [
    "index_entries",
    "key_materials",
    "keys",
    "custom_key_stores",
    "documents",
    "unique_claims",
    "leases",
];

/// The lock name guarding a claimed `(scope, value)`.
pub(crate) fn claim_lock(c: &UniqueClaim) -> String {
    format!("claim\u{0}{}\u{0}{}", c.scope, c.value)
}

/// The lock names guarding `claims`.
pub(crate) fn claim_locks(claims: &[UniqueClaim]) -> Vec<String> {
    claims.iter().map(claim_lock).collect()
}

/// The lock name guarding the custom key store quota of an `(account, Region)`.
pub(crate) fn quota_lock(account_id: &str, region: &str) -> String {
    format!("quota\u{0}{account_id}\u{0}{region}")
}

/// The lock name guarding the set of keys placed in one custom key store.
pub(crate) fn cks_lock(account_id: &str, region: &str, id: &str) -> String {
    format!("cks\u{0}{account_id}\u{0}{region}\u{0}{id}")
}
