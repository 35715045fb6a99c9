//! Custom key store records kept in memory for the cryptographic operations on their keys.
//!
//! Every Encrypt or Decrypt with a key in a custom key store needs the store's record (its
//! connection state, its proxy or cluster). Like the key cache (`keys::key_cache`, same TTL,
//! `key_cache_ttl_ms`), this cache serves only that use path: a store change made through
//! this node — connecting, disconnecting, updating, deleting, a worker reaching `FAILED` — is
//! seen at once (every write of a store record goes through [`StoreRecords`], which drops the
//! cached record after the write); a change made through another node is seen within the
//! TTL. The control plane (Describe, Update, Connect, the workers) always reads the store.
//!
//! Beside the records, [`StoreRecords`] keeps each external key store's proxy target (its
//! secret access key unwrapped by the root key) with the record properties it was built from.
//! A target is handed out only for a record whose properties equal those, so it can never be
//! older than the record it is asked for; a record write drops it, and a changed record
//! replaces it. The secret is zeroized when the target is dropped.

use std::collections::HashMap;
use std::ops::Deref;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use crate::error::KmsResult;
use crate::ports::xks::XksTarget;
use crate::ports::{MetadataStore, StoreError, StoredCustomKeyStore, UniqueClaim};
use crate::record_cache::{RecordAddress, RecordCache};

use super::model::{LoadedStore, XksDoc};

/// Most proxy targets kept before all are dropped (as many stores as this, used within one
/// process lifetime, only cost an unwrap per call again).
const TARGET_CACHE_LIMIT: usize = 10_000;

/// A built proxy target and the record properties it was built from.
struct BuiltTarget {
    xks: XksDoc,
    target: Arc<XksTarget>,
}

/// The metadata store as the custom key store code sees it: every store method, with the
/// writes of custom key store records intercepted to keep the cache consistent (inherent
/// methods take precedence over the trait methods reached through `Deref`).
pub(crate) struct StoreRecords {
    store: Arc<dyn MetadataStore>,
    cache: RecordCache<LoadedStore>,
    /// Proxy targets by store address.
    targets: RwLock<HashMap<RecordAddress, BuiltTarget>>,
}

impl Deref for StoreRecords {
    type Target = dyn MetadataStore;
    fn deref(&self) -> &Self::Target {
        &*self.store
    }
}

impl StoreRecords {
    /// Store records of `store`, cached for at most `ttl` (zero: not cached).
    pub(crate) fn new(store: Arc<dyn MetadataStore>, ttl: Duration) -> Self {
        Self {
            store,
            cache: RecordCache::new(ttl),
            targets: RwLock::default(),
        }
    }

    /// The proxy target built for `row` when its external key store properties were `xks`,
    /// if that is what they still are.
    pub(crate) fn target(
        &self,
        row: &StoredCustomKeyStore,
        xks: &XksDoc,
    ) -> Option<Arc<XksTarget>> {
        let targets = self.targets.read().ok()?;
        let built = targets.get(&address(&row.account_id, &row.region, &row.id))?;
        (built.xks == *xks && built.target.region == row.region).then(|| Arc::clone(&built.target))
    }

    /// Keeps `target`, built for `row` with external key store properties `xks`.
    pub(crate) fn keep_target(
        &self,
        row: &StoredCustomKeyStore,
        xks: &XksDoc,
        target: Arc<XksTarget>,
    ) {
        let mut targets = self.targets.write().unwrap_or_else(|p| p.into_inner());
        if targets.len() >= TARGET_CACHE_LIMIT {
            targets.clear();
        }
        targets.insert(
            address(&row.account_id, &row.region, &row.id),
            BuiltTarget {
                xks: xks.clone(),
                target,
            },
        );
    }

    /// Drops the record and the proxy target of one store.
    fn forget(&self, account: &str, region: &str, id: &str) {
        self.cache.invalidate(account, region, id);
        self.targets
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&address(account, region, id));
    }

    /// How long a change made through another node may stay unseen.
    pub(crate) fn set_ttl(&self, ttl: Duration) {
        self.cache.set_ttl(ttl);
    }

    /// Drops every cached record and proxy target (after a reset of the whole store).
    pub(crate) fn clear(&self) {
        self.cache.clear();
        self.targets
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }

    /// A store record for a cryptographic operation: cached when fresh enough, otherwise
    /// read and cached. `None` when the store does not exist (never cached).
    pub(crate) async fn get_for_use(
        &self,
        account: &str,
        region: &str,
        id: &str,
    ) -> KmsResult<Option<Arc<LoadedStore>>> {
        self.cache
            .get_or_load(account, region, id, async {
                match self.store.get_custom_key_store(account, region, id).await? {
                    Some(row) => Ok(Some(LoadedStore::from_row(row)?)),
                    None => Ok(None),
                }
            })
            .await
    }

    /// [`MetadataStore::insert_custom_key_store`]; drops any cached record afterwards.
    pub(crate) async fn insert_custom_key_store(
        &self,
        store: &StoredCustomKeyStore,
        claims: &[UniqueClaim],
        quota: u32,
    ) -> Result<(), StoreError> {
        let r = self
            .store
            .insert_custom_key_store(store, claims, quota)
            .await;
        self.forget(&store.account_id, &store.region, &store.id);
        r
    }

    /// [`MetadataStore::update_custom_key_store`]; drops the cached record afterwards.
    pub(crate) async fn update_custom_key_store(
        &self,
        store: &StoredCustomKeyStore,
        claims: Option<&[UniqueClaim]>,
    ) -> Result<(), StoreError> {
        let r = self.store.update_custom_key_store(store, claims).await;
        self.forget(&store.account_id, &store.region, &store.id);
        r
    }

    /// [`MetadataStore::delete_custom_key_store`]; drops the cached record afterwards.
    pub(crate) async fn delete_custom_key_store(
        &self,
        account_id: &str,
        region: &str,
        id: &str,
        expected_version: i64,
    ) -> Result<(), StoreError> {
        let r = self
            .store
            .delete_custom_key_store(account_id, region, id, expected_version)
            .await;
        self.forget(account_id, region, id);
        r
    }
}

fn address(account: &str, region: &str, id: &str) -> RecordAddress {
    (account.to_string(), region.to_string(), id.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::memory::MemoryStore;
    use keyhold_crypto::SecretBytes;
    use keyhold_kms_model::enums::XksProxyConnectivityType;

    fn row() -> StoredCustomKeyStore {
        StoredCustomKeyStore {
            account_id: "111122223333".into(),
            region: "us-east-1".into(),
            id: "cks-0123456789abcdef0".into(),
            name: "xks".into(),
            store_type: "EXTERNAL_KEY_STORE".into(),
            connection_state: "CONNECTED".into(),
            created_at_ms: 0,
            version: 1,
            doc: String::new(),
        }
    }

    fn xks(wrapped_secret: &str) -> XksDoc {
        XksDoc {
            connectivity: XksProxyConnectivityType::PublicEndpoint,
            uri_endpoint: "https://xks.example".into(),
            uri_path: "/kms/xks/v1".into(),
            vpc_endpoint_service_name: None,
            vpc_endpoint_service_owner: None,
            access_key_id: "AKIAXKSPROXYTESTAAAA".into(),
            wrapped_secret: wrapped_secret.into(),
        }
    }

    fn records() -> StoreRecords {
        StoreRecords::new(Arc::new(MemoryStore::new()), Duration::from_secs(3600))
    }

    #[test]
    fn a_target_is_served_only_for_the_properties_it_was_built_from() {
        let records = records();
        let (row, old) = (row(), xks("wrapped-1"));
        let target = Arc::new(old.target(&row.region, SecretBytes::from_slice(b"secret-1")));
        records.keep_target(&row, &old, Arc::clone(&target));
        let hit = records.target(&row, &old).expect("kept");
        assert!(Arc::ptr_eq(&hit, &target));
        // A record with another credential (or any other proxy property) is not served it.
        assert!(records.target(&row, &xks("wrapped-2")).is_none());
        let mut moved = old.clone();
        moved.uri_path = "/other/kms/xks/v1".into();
        assert!(records.target(&row, &moved).is_none());
    }

    #[tokio::test]
    async fn a_store_write_through_this_node_drops_its_target() {
        let records = records();
        let (row, doc) = (row(), xks("wrapped-1"));
        let target = Arc::new(doc.target(&row.region, SecretBytes::from_slice(b"secret-1")));
        records.keep_target(&row, &doc, target);
        // The write itself fails (no such row), but the target is dropped all the same.
        let _ = records.update_custom_key_store(&row, None).await;
        assert!(records.target(&row, &doc).is_none());
        let target = Arc::new(doc.target(&row.region, SecretBytes::from_slice(b"secret-1")));
        records.keep_target(&row, &doc, target);
        records.clear();
        assert!(records.target(&row, &doc).is_none());
    }
}
