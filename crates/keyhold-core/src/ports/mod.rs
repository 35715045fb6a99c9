//! Ports: the small traits through which the domain reaches its backends.
//!
//! The domain never names SQL, HTTP or PKCS#11. It hands rows to a [`MetadataStore`] that
//! stores a few indexed columns plus an opaque JSON document, and it asks the store to
//! enforce uniqueness through [`UniqueClaim`]s. Claims keep the store generic: the domain
//! decides *what* must be unique (a key store name per account and Region, an XKS endpoint
//! per Region, an `XksKeyId` per external key store, ...); the store makes the check and the
//! write one atomic step, so two racing requests — even on two Keyhold nodes sharing one
//! PostgreSQL database — can never both win.

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
/// identified by `(kind, account_id, region, id)`. For domain records that need no indexed
/// columns of their own; they get the same atomicity, claims and compare-and-set as keys.
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
/// Implemented by SQLite (embedded default) and PostgreSQL in `keyhold-store`; both pass one
/// conformance suite. All methods are atomic; none does read-then-write across calls.
#[async_trait]
pub trait MetadataStore: Send + Sync {
    /// Inserts a key, its first key material and its claims in one transaction.
    /// `key.version` must be 1.
    async fn insert_key(
        &self,
        key: &StoredKey,
        material: Option<&StoredKeyMaterial>,
        claims: &[UniqueClaim],
    ) -> Result<(), StoreError>;

    /// Reads one key.
    async fn get_key(
        &self,
        account_id: &str,
        region: &str,
        key_id: &str,
    ) -> Result<Option<StoredKey>, StoreError>;

    /// Replaces a key's `doc` and `custom_key_store_id` if its stored version equals
    /// `key.version - 1`; otherwise [`StoreError::VersionMismatch`] (or `NotFound`).
    async fn update_key(&self, key: &StoredKey) -> Result<(), StoreError>;

    /// Deletes a key, its materials and its claims.
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

    /// Deletes every row, documents included (test harnesses' `/moto-api/reset`).
    async fn reset(&self) -> Result<(), StoreError>;

    /// Inserts a document and its claims in one transaction. `doc.version` must be 1
    /// ([`StoreError::VersionMismatch`] otherwise); a document with the same kind, account,
    /// Region and id answers a conflict in the store's document-id scope.
    ///
    /// The default implementation (for stores without documents) fails with a backend error.
    async fn insert_document(
        &self,
        doc: &StoredDocument,
        claims: &[UniqueClaim],
    ) -> Result<(), StoreError> {
        let _ = (doc, claims);
        Err(documents_unsupported())
    }

    /// Reads one document.
    async fn get_document(
        &self,
        kind: &str,
        account_id: &str,
        region: &str,
        id: &str,
    ) -> Result<Option<StoredDocument>, StoreError> {
        let _ = (kind, account_id, region, id);
        Err(documents_unsupported())
    }

    /// Lists documents of one kind, account and Region ordered by id (byte order), starting
    /// after `after_id`, at most `limit` of them.
    async fn list_documents(
        &self,
        kind: &str,
        account_id: &str,
        region: &str,
        after_id: Option<&str>,
        limit: u32,
    ) -> Result<Vec<StoredDocument>, StoreError> {
        let _ = (kind, account_id, region, after_id, limit);
        Err(documents_unsupported())
    }

    /// Replaces a document's `doc` if its stored version equals `doc.version - 1`
    /// ([`StoreError::VersionMismatch`] or `NotFound` otherwise) and, when `claims` is `Some`,
    /// replaces its claims atomically (conflicts answer [`StoreError::Conflict`] and change
    /// nothing).
    async fn update_document(
        &self,
        doc: &StoredDocument,
        claims: Option<&[UniqueClaim]>,
    ) -> Result<(), StoreError> {
        let _ = (doc, claims);
        Err(documents_unsupported())
    }

    /// Deletes a document and its claims if its version equals `expected_version`
    /// ([`StoreError::VersionMismatch`] or `NotFound` otherwise).
    async fn delete_document(
        &self,
        kind: &str,
        account_id: &str,
        region: &str,
        id: &str,
        expected_version: i64,
    ) -> Result<(), StoreError> {
        let _ = (kind, account_id, region, id, expected_version);
        Err(documents_unsupported())
    }
}

/// The error of the default document methods.
fn documents_unsupported() -> StoreError {
    #[derive(Debug, thiserror::Error)]
    #[error("this metadata store does not support documents")]
    struct Unsupported;
    StoreError::Backend(Box::new(Unsupported))
}

pub mod cloudhsm;
pub mod xks;
