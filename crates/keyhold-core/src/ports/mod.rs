//! Ports: the small traits through which the domain reaches its backends.
//!
//! The domain never names SQL, HTTP or PKCS#11. It hands rows to a [`MetadataStore`] that
//! stores a few indexed columns plus an opaque JSON document, and it asks the store to
//! enforce uniqueness through [`UniqueClaim`]s. Claims keep the store generic: the domain
//! decides *what* must be unique (a key store name per account and Region, an XKS endpoint
//! per Region, an `XksKeyId` per external key store, ...); the store makes the check and the
//! write one atomic step, so two racing requests — even on two Keyhold nodes sharing one
//! PostgreSQL database — can never both win.
//!
//! Rows may also carry [`IndexEntry`]s: secondary-index entries (`"deletion-due" =
//! "000001700000000000"`, later `"grant-by-key" = "<key arn>"`, ...) written, replaced and
//! removed in the same transaction and under the same compare-and-set as the row that owns
//! them, and queried across all accounts with [`MetadataStore::list_index`]. That replaces
//! hand-made index documents written beside the row, which a crash or a lost race could leave
//! stale or missing.
//!
//! # Adding an entity
//!
//! New entities are [`StoredDocument`]s of a new `kind`; typed tables are kept only for keys,
//! key materials and custom key stores, the hot paths. An entity is three decisions:
//!
//! 1. **Its document**: a `kind` constant (e.g. `"grant"`) and a serde struct kept in `doc`,
//!    identified by `(kind, account, Region, id)`. Read-modify-write it with
//!    [`MetadataStore::update_document`] (compare-and-set on `version`; retry on
//!    [`StoreError::VersionMismatch`]).
//! 2. **Its claims**: one [`UniqueClaim`] per uniqueness rule (an alias name per account and
//!    Region, ...), passed on insert and, when they change, on update.
//! 3. **Its indexes**: one [`IndexEntry`] per lookup the entity needs besides its id ("grants
//!    of a key", "keys due for deletion"), with a value that sorts the way the lookup pages
//!    (zero-pad numbers). Pass them on insert and whenever they change on update (`None`
//!    keeps them); delete and `reset` remove them. Look up with [`MetadataStore::list_index`]
//!    (a range, or `min = max` for an exact value).
//!
//! No store code changes for a new entity. The conformance suite
//! (`crates/keyhold-store/tests/conformance`) already checks documents, claims and indexes on
//! every engine; add cases there only when an entity needs a new store capability.

use async_trait::async_trait;

/// A value that must be unique within a scope, checked and recorded atomically with the
/// write of the row that owns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UniqueClaim {
    /// What kind of uniqueness this is, e.g. `"cks-name"`. Returned in
    /// [`StoreError::Conflict`] so the domain can pick the matching AWS exception.
    pub scope: String,
    /// The unique value, already qualified by whatever partition applies
    /// (for example `"123456789012/us-east-1/my-store"`).
    pub value: String,
    /// An exclusive claim conflicts with any other claim on the same (scope, value);
    /// a shared claim conflicts only with an exclusive one. Shared claims model rules such as
    /// "public-endpoint stores may share an endpoint, but not with a VPC store".
    pub exclusive: bool,
}

impl UniqueClaim {
    /// An exclusive claim.
    pub fn exclusive(scope: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            scope: scope.into(),
            value: value.into(),
            exclusive: true,
        }
    }
    /// A shared claim.
    pub fn shared(scope: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            scope: scope.into(),
            value: value.into(),
            exclusive: false,
        }
    }
}

/// Scope of the [`StoreError::Conflict`] returned when a key with the same account, Region
/// and key id already exists.
pub const KEY_ID_SCOPE: &str = "key-id";

/// Scope of the [`StoreError::Conflict`] returned when the key already has a key material
/// with the same material id.
pub const KEY_MATERIAL_ID_SCOPE: &str = "key-material-id";

/// Scope of the [`StoreError::Conflict`] returned when a custom key store with the same
/// account, Region and id already exists.
pub const CUSTOM_KEY_STORE_ID_SCOPE: &str = "custom-key-store-id";

/// Scope of the [`StoreError::Conflict`] returned when a document with the same kind,
/// account, Region and id already exists.
pub const DOCUMENT_ID_SCOPE: &str = "document-id";

/// One secondary-index entry of a key or document row: the row can be found by `value` in
/// `index` through [`MetadataStore::list_index`], across all accounts and Regions.
///
/// Entries belong to their row: the store writes them in the row's insert, replaces them all
/// in an update that passes new ones (under the same compare-and-set), and removes them with
/// the row, so an index never points at a row that does not carry it. A row may have several
/// entries, also several values in one index; repeated `(index, value)` pairs count once.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IndexEntry {
    /// Which index, e.g. `"deletion-due"`. Names are global: every kind of row shares them,
    /// so prefix a name with its entity when it is not obviously one entity's.
    pub index: String,
    /// The value looked up. Queries compare values as bytes, so make them sort as the lookup
    /// pages (zero-padded numbers, `<key arn>/<grant id>` ...).
    pub value: String,
}

impl IndexEntry {
    /// An entry of `index` with `value`.
    pub fn new(index: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            index: index.into(),
            value: value.into(),
        }
    }
}

/// The row an [`IndexHit`] points at: a key or a document (the rows that may carry
/// [`IndexEntry`]s), by its full identity so the caller can read it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum IndexOwner {
    /// A key row.
    Key {
        /// Owning account.
        account_id: String,
        /// Region.
        region: String,
        /// Key id.
        key_id: String,
    },
    /// A document row.
    Document {
        /// Document kind.
        kind: String,
        /// Owning account.
        account_id: String,
        /// Region.
        region: String,
        /// Document id.
        id: String,
    },
}

impl IndexOwner {
    /// The owner's identity as the engines record it on its claims and index entries:
    /// `key:<account>/<Region>/<key id>` or `doc:<kind>/<account>/<Region>/<id>`. Index
    /// queries order entries with equal values by it, so paging is stable on every engine.
    pub fn identity(&self) -> String {
        match self {
            Self::Key {
                account_id,
                region,
                key_id,
            } => format!("key:{account_id}/{region}/{key_id}"),
            Self::Document {
                kind,
                account_id,
                region,
                id,
            } => format!("doc:{kind}/{account_id}/{region}/{id}"),
        }
    }
}

/// One answer of [`MetadataStore::list_index`]: an entry's value and the row that carries it.
/// Pass the last hit of a page as the next page's `after`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexHit {
    /// The entry's value.
    pub value: String,
    /// The row carrying the entry.
    pub owner: IndexOwner,
}

/// A KMS key row. The store indexes the scalar columns and keeps `doc` opaque.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredKey {
    /// 12-digit AWS account id that owns the key.
    pub account_id: String,
    /// Region the key lives in.
    pub region: String,
    /// The key id (a UUID, or `mrk-...` for multi-Region keys).
    pub key_id: String,
    /// The custom key store the key lives in, if any (used to count a store's keys).
    pub custom_key_store_id: Option<String>,
    /// Creation time, milliseconds since the Unix epoch.
    pub created_at_ms: i64,
    /// Optimistic-concurrency version, starting at 1 and bumped by every update.
    pub version: i64,
    /// The domain's JSON document (metadata only; never key material).
    pub doc: String,
}

/// Key material of one KMS key, wrapped by the root key. A key may have several
/// materials (rotation); ciphertexts name the one they were made with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredKeyMaterial {
    /// The owning key's account.
    pub account_id: String,
    /// The owning key's Region.
    pub region: String,
    /// The owning key's id.
    pub key_id: String,
    /// Identifier of this material, unique within the key.
    pub material_id: String,
    /// Creation time, milliseconds since the Unix epoch.
    pub created_at_ms: i64,
    /// The material wrapped by the root key (never plaintext).
    pub wrapped: Vec<u8>,
}

/// A custom key store row. Secrets inside `doc` are wrapped by the root key before they get here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCustomKeyStore {
    /// Owning account.
    pub account_id: String,
    /// Region.
    pub region: String,
    /// `cks-` id.
    pub id: String,
    /// The store's name (unique per account and Region, enforced through a claim).
    pub name: String,
    /// `AWS_CLOUDHSM` or `EXTERNAL_KEY_STORE`.
    pub store_type: String,
    /// The `ConnectionState` wire value, kept as a column so workers can find stores to drive.
    pub connection_state: String,
    /// Creation time, milliseconds since the Unix epoch.
    pub created_at_ms: i64,
    /// Optimistic-concurrency version.
    pub version: i64,
    /// The domain's JSON document.
    pub doc: String,
}

/// A generic document row: an opaque JSON `doc` of some `kind` (e.g. `"cloudhsm-cluster"`),
/// identified by `(kind, account_id, region, id)`. Every new entity is a document: it gets
/// the same atomicity, claims and compare-and-set as keys, and [`IndexEntry`]s for lookups
/// other than by id (see the module documentation, "Adding an entity").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredDocument {
    /// What the document is; documents of different kinds never collide.
    pub kind: String,
    /// Owning account.
    pub account_id: String,
    /// Region.
    pub region: String,
    /// Identifier, unique within `(kind, account_id, region)`.
    pub id: String,
    /// Creation time, milliseconds since the Unix epoch.
    pub created_at_ms: i64,
    /// Optimistic-concurrency version, starting at 1 and bumped by every update.
    pub version: i64,
    /// The domain's JSON document.
    pub doc: String,
}

/// Errors of a [`MetadataStore`]. Backend failures keep their cause.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A [`UniqueClaim`] conflicted with an existing one; carries the claim's scope.
    #[error("unique claim conflict in scope {scope}")]
    Conflict {
        /// The scope of the claim that conflicted.
        scope: String,
    },
    /// Creating the row would exceed the given per-account-and-Region quota.
    #[error("quota of {limit} exceeded")]
    QuotaExceeded {
        /// The quota that applied.
        limit: u32,
    },
    /// The row changed since it was read (its version differs); re-read and retry.
    #[error("concurrent modification")]
    VersionMismatch,
    /// The row does not exist.
    #[error("not found")]
    NotFound,
    /// A custom key store still holds KMS keys and cannot be deleted.
    #[error("custom key store still has keys")]
    HasKeys,
    /// The database failed; the cause is kept.
    #[error("storage backend failure")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// Persistent metadata of Keyhold: keys, key material (wrapped), custom key stores, leases,
/// and generic [`StoredDocument`]s (e.g. CloudHSM clusters).
///
/// Implemented by SQLite (embedded default) and PostgreSQL in `keyhold-store` and by
/// [`memory::MemoryStore`] here; all three pass one conformance suite. All methods are
/// atomic; none does read-then-write across calls.
#[async_trait]
pub trait MetadataStore: Send + Sync {
    /// Inserts a key, its first key material, its claims and its index entries in one
    /// transaction. `key.version` must be 1.
    async fn insert_key(
        &self,
        key: &StoredKey,
        material: Option<&StoredKeyMaterial>,
        claims: &[UniqueClaim],
        indexes: &[IndexEntry],
    ) -> Result<(), StoreError>;

    /// Reads one key.
    async fn get_key(
        &self,
        account_id: &str,
        region: &str,
        key_id: &str,
    ) -> Result<Option<StoredKey>, StoreError>;

    /// Replaces a key's `doc` and `custom_key_store_id` if its stored version equals
    /// `key.version - 1`; otherwise [`StoreError::VersionMismatch`] (or `NotFound`) and
    /// nothing changes. When `indexes` is `Some`, they replace all of the key's index entries
    /// in the same transaction; `None` keeps them.
    async fn update_key(
        &self,
        key: &StoredKey,
        indexes: Option<&[IndexEntry]>,
    ) -> Result<(), StoreError>;

    /// As [`MetadataStore::update_key`] (compare-and-set on the version, index entries replaced
    /// when `indexes` is `Some`), and in the same transaction deletes the key's materials named
    /// in `remove` (absent ones are ignored) and then inserts `add` (a material with the same
    /// id answers [`StoreError::Conflict`] in [`KEY_MATERIAL_ID_SCOPE`]); on any error nothing
    /// changes. Imported key material comes and goes with the key document recording it, so
    /// the document and the material rows never disagree, whatever races or crashes.
    async fn update_key_and_materials(
        &self,
        key: &StoredKey,
        indexes: Option<&[IndexEntry]>,
        add: Option<&StoredKeyMaterial>,
        remove: &[String],
    ) -> Result<(), StoreError>;

    /// Deletes a key, its materials, its claims and its index entries.
    async fn delete_key(
        &self,
        account_id: &str,
        region: &str,
        key_id: &str,
    ) -> Result<(), StoreError>;

    /// Lists keys of an account and Region ordered by key id, starting after `after_key_id`.
    async fn list_keys(
        &self,
        account_id: &str,
        region: &str,
        after_key_id: Option<&str>,
        limit: u32,
    ) -> Result<Vec<StoredKey>, StoreError>;

    /// Adds a key material to an existing key.
    async fn insert_key_material(&self, material: &StoredKeyMaterial) -> Result<(), StoreError>;

    /// Reads one key material.
    async fn get_key_material(
        &self,
        account_id: &str,
        region: &str,
        key_id: &str,
        material_id: &str,
    ) -> Result<Option<StoredKeyMaterial>, StoreError>;

    /// Creates a custom key store with its claims, refusing with
    /// [`StoreError::QuotaExceeded`] when the account and Region already has `quota` stores.
    async fn insert_custom_key_store(
        &self,
        store: &StoredCustomKeyStore,
        claims: &[UniqueClaim],
        quota: u32,
    ) -> Result<(), StoreError>;

    /// Reads a custom key store by id.
    async fn get_custom_key_store(
        &self,
        account_id: &str,
        region: &str,
        id: &str,
    ) -> Result<Option<StoredCustomKeyStore>, StoreError>;

    /// Replaces a custom key store (compare-and-set on `version - 1`, as in
    /// [`MetadataStore::update_key`]) and, when `claims` is `Some`, replaces its claims
    /// atomically (conflicts answer [`StoreError::Conflict`] and change nothing).
    async fn update_custom_key_store(
        &self,
        store: &StoredCustomKeyStore,
        claims: Option<&[UniqueClaim]>,
    ) -> Result<(), StoreError>;

    /// Deletes a custom key store and its claims if its version matches and no key row names
    /// it ([`StoreError::HasKeys`] otherwise).
    async fn delete_custom_key_store(
        &self,
        account_id: &str,
        region: &str,
        id: &str,
        expected_version: i64,
    ) -> Result<(), StoreError>;

    /// Lists custom key stores of an account and Region ordered by id, after `after_id`.
    async fn list_custom_key_stores(
        &self,
        account_id: &str,
        region: &str,
        after_id: Option<&str>,
        limit: u32,
    ) -> Result<Vec<StoredCustomKeyStore>, StoreError>;

    /// Lists custom key stores in any of the given connection states, across all accounts
    /// (for workers that drive CONNECTING/DISCONNECTING stores to a final state).
    async fn list_custom_key_stores_in_states(
        &self,
        states: &[&str],
    ) -> Result<Vec<StoredCustomKeyStore>, StoreError>;

    /// Counts the keys that live in a custom key store (keys pending deletion included).
    async fn count_keys_in_custom_key_store(
        &self,
        account_id: &str,
        region: &str,
        id: &str,
    ) -> Result<u64, StoreError>;

    /// Takes or renews a lease on `name` for `holder` for `ttl_ms` milliseconds. Returns true
    /// when `holder` now holds it (it was free, expired, or already held by `holder`).
    /// Used so exactly one worker among several Keyhold nodes owns a store's connection.
    async fn try_acquire_lease(
        &self,
        name: &str,
        holder: &str,
        ttl_ms: i64,
    ) -> Result<bool, StoreError>;

    /// Releases a lease held by `holder` (no-op if someone else holds it).
    async fn release_lease(&self, name: &str, holder: &str) -> Result<(), StoreError>;

    /// Deletes every row, documents and index entries included (test harnesses'
    /// `/moto-api/reset`).
    async fn reset(&self) -> Result<(), StoreError>;

    /// Inserts a document, its claims and its index entries in one transaction.
    /// `doc.version` must be 1 ([`StoreError::VersionMismatch`] otherwise); a document with
    /// the same kind, account, Region and id answers a conflict in [`DOCUMENT_ID_SCOPE`].
    async fn insert_document(
        &self,
        doc: &StoredDocument,
        claims: &[UniqueClaim],
        indexes: &[IndexEntry],
    ) -> Result<(), StoreError>;

    /// Reads one document.
    async fn get_document(
        &self,
        kind: &str,
        account_id: &str,
        region: &str,
        id: &str,
    ) -> Result<Option<StoredDocument>, StoreError>;

    /// Lists documents of one kind, account and Region ordered by id (byte order), starting
    /// after `after_id`, at most `limit` of them.
    async fn list_documents(
        &self,
        kind: &str,
        account_id: &str,
        region: &str,
        after_id: Option<&str>,
        limit: u32,
    ) -> Result<Vec<StoredDocument>, StoreError>;

    /// Replaces a document's `doc` if its stored version equals `doc.version - 1`
    /// ([`StoreError::VersionMismatch`] or `NotFound` otherwise) and, in the same transaction,
    /// replaces its claims when `claims` is `Some` (conflicts answer [`StoreError::Conflict`]
    /// and change nothing) and its index entries when `indexes` is `Some`.
    async fn update_document(
        &self,
        doc: &StoredDocument,
        claims: Option<&[UniqueClaim]>,
        indexes: Option<&[IndexEntry]>,
    ) -> Result<(), StoreError>;

    /// Deletes a document, its claims and its index entries if its version equals
    /// `expected_version` ([`StoreError::VersionMismatch`] or `NotFound` otherwise).
    async fn delete_document(
        &self,
        kind: &str,
        account_id: &str,
        region: &str,
        id: &str,
        expected_version: i64,
    ) -> Result<(), StoreError>;

    /// Lists the entries of `index` whose value lies in `min_value..=max_value` (byte order;
    /// `None` leaves the top open), across all accounts and Regions, in value order (equal
    /// values by [`IndexOwner::identity`]), starting after `after` (the previous page's last
    /// hit), at most `limit` of them.
    ///
    /// One query serves range scans ("keys whose deletion is due by now": `""..=now`) and
    /// exact lookups ("grants of this key": `min_value == max_value`). It reads committed
    /// state only: an entry is listed exactly while the row version that carries it is.
    async fn list_index(
        &self,
        index: &str,
        min_value: &str,
        max_value: Option<&str>,
        after: Option<&IndexHit>,
        limit: u32,
    ) -> Result<Vec<IndexHit>, StoreError>;
}

pub mod clock;
pub mod cloudhsm;
pub mod memory;
pub mod xks;
mod xks_cause;
