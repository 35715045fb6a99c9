//! Custom key store records kept in memory for the cryptographic operations on their keys.
//!
//! Every Encrypt or Decrypt with a key in a custom key store needs the store's record (its
//! connection state, its proxy or cluster). Like the key cache (`keys::key_cache`, same TTL,
//! `key_cache_ttl_ms`), this cache serves only that use path: a store change made through
//! this node — connecting, disconnecting, updating, deleting, a worker reaching `FAILED` — is
//! seen at once (every write of a store record goes through [`StoreRecords`], which drops the
//! cached record after the write); a change made through another node is seen within the
//! TTL. The control plane (Describe, Update, Connect, the workers) always reads the store.

use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use crate::error::KmsResult;
use crate::ports::{MetadataStore, StoreError, StoredCustomKeyStore, UniqueClaim};
use crate::record_cache::RecordCache;

use super::model::LoadedStore;

/// The metadata store as the custom key store code sees it: every store method, with the
/// writes of custom key store records intercepted to keep the cache consistent (inherent
/// methods take precedence over the trait methods reached through `Deref`).
pub(crate) struct StoreRecords {
    store: Arc<dyn MetadataStore>,
    cache: RecordCache<LoadedStore>,
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
        }
    }

    /// How long a change made through another node may stay unseen.
    pub(crate) fn set_ttl(&self, ttl: Duration) {
        self.cache.set_ttl(ttl);
    }

    /// Drops every cached record (after a reset of the whole store).
    pub(crate) fn clear(&self) {
        self.cache.clear();
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
        self.cache
            .invalidate(&store.account_id, &store.region, &store.id);
        r
    }

    /// [`MetadataStore::update_custom_key_store`]; drops the cached record afterwards.
    pub(crate) async fn update_custom_key_store(
        &self,
        store: &StoredCustomKeyStore,
        claims: Option<&[UniqueClaim]>,
    ) -> Result<(), StoreError> {
        let r = self.store.update_custom_key_store(store, claims).await;
        self.cache
            .invalidate(&store.account_id, &store.region, &store.id);
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
        self.cache.invalidate(account_id, region, id);
        r
    }
}
