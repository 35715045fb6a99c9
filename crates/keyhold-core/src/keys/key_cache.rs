//! Key records kept in memory for the cryptographic operations, with explicit consistency.
//!
//! Encrypt, Decrypt, GenerateDataKey, Sign and the other operations that *use* a key read its
//! record (row and parsed document) on every call. Reading it through the metadata store costs
//! a database round trip (on SQLite, a hand-off to sqlx's worker thread) and a JSON decode of
//! the key document; this cache saves both, under two rules:
//!
//! - **A change made through this node is visible at once.** Every write of a key record in
//!   this process goes through [`KeyRecords`], which drops the key's entry after the write
//!   commits. A read that raced with the write cannot put the old record back: entries are
//!   only inserted when no invalidation happened since the read began (a generation counter).
//! - **A change made through another node is visible within the TTL** (`key_cache_ttl_ms`,
//!   1 s by default; 0 turns the cache off). Nodes sharing PostgreSQL do not tell each other
//!   about writes; an entry older than the TTL is read again. AWS KMS documents the same
//!   kind of eventual consistency for its own API ("the change typically takes less than a
//!   few seconds to propagate throughout the system, but in some cases it can take several
//!   minutes"); the default keeps Keyhold well inside the first half of that sentence.
//!
//! Operations that change a key (and DescribeKey, ListKeys and the other management reads)
//! always read the store: the cache serves only the use path, so a compare-and-set never
//! starts from a cached version.

use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use crate::ports::{IndexEntry, MetadataStore, StoreError, StoredKey, StoredKeyMaterial};
use crate::record_cache::RecordCache;

use super::KeyDoc;

/// AWS-like default staleness bound for changes made through another node.
pub const DEFAULT_KEY_CACHE_TTL: Duration = Duration::from_secs(1);

/// A cached key record: the row and its parsed document.
#[derive(Debug)]
pub(crate) struct CachedKey {
    /// The row as read.
    pub row: StoredKey,
    /// The row's document, parsed.
    pub doc: KeyDoc,
}

/// The metadata store as the key operations see it: every store method, with the writes of
/// key records intercepted to keep [`KeyRecords::get_key_for_use`]'s cache consistent.
///
/// The interception works by name: the inherent methods below take precedence over the
/// store's trait methods reached through `Deref`, so `self.store.update_key(..)` in the key
/// operations cannot bypass the cache.
pub(crate) struct KeyRecords {
    store: Arc<dyn MetadataStore>,
    cache: RecordCache<CachedKey>,
}

impl Deref for KeyRecords {
    type Target = dyn MetadataStore;
    fn deref(&self) -> &Self::Target {
        &*self.store
    }
}

impl KeyRecords {
    /// Key records of `store`, cached for at most `ttl` (zero: not cached).
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

    /// The key record for a cryptographic operation: from the cache when fresh enough,
    /// otherwise read (and parsed by `parse`) and cached. `None` when the key does not exist
    /// (never cached, so a key created on another node is found at once).
    pub(crate) async fn get_key_for_use<E>(
        &self,
        account: &str,
        region: &str,
        key_id: &str,
        parse: impl FnOnce(&StoredKey) -> Result<KeyDoc, E>,
    ) -> Result<Option<Arc<CachedKey>>, E>
    where
        E: From<StoreError>,
    {
        self.cache
            .get_or_load(account, region, key_id, async {
                match self.store.get_key(account, region, key_id).await? {
                    Some(row) => {
                        let doc = parse(&row)?;
                        Ok(Some(CachedKey { row, doc }))
                    }
                    None => Ok(None),
                }
            })
            .await
    }

    /// Makes every cached record look `by` older (tests of the staleness bound).
    #[cfg(test)]
    pub(crate) fn age(&self, by: Duration) {
        self.cache.age(by);
    }

    /// [`MetadataStore::insert_key`]; drops any cached record of the key afterwards.
    pub(crate) async fn insert_key(
        &self,
        key: &StoredKey,
        material: Option<&StoredKeyMaterial>,
        claims: &[crate::ports::UniqueClaim],
        indexes: &[IndexEntry],
    ) -> Result<(), StoreError> {
        let r = self.store.insert_key(key, material, claims, indexes).await;
        self.cache
            .invalidate(&key.account_id, &key.region, &key.key_id);
        r
    }

    /// [`MetadataStore::update_key`]; drops the key's cached record afterwards.
    pub(crate) async fn update_key(
        &self,
        key: &StoredKey,
        indexes: Option<&[IndexEntry]>,
    ) -> Result<(), StoreError> {
        let r = self.store.update_key(key, indexes).await;
        self.cache
            .invalidate(&key.account_id, &key.region, &key.key_id);
        r
    }

    /// [`MetadataStore::update_key_and_materials`]; drops the key's cached record afterwards.
    pub(crate) async fn update_key_and_materials(
        &self,
        key: &StoredKey,
        indexes: Option<&[IndexEntry]>,
        add: Option<&StoredKeyMaterial>,
        remove: &[String],
    ) -> Result<(), StoreError> {
        let r = self
            .store
            .update_key_and_materials(key, indexes, add, remove)
            .await;
        self.cache
            .invalidate(&key.account_id, &key.region, &key.key_id);
        r
    }

    /// [`MetadataStore::delete_key`]; drops the key's cached record afterwards.
    pub(crate) async fn delete_key(
        &self,
        account_id: &str,
        region: &str,
        key_id: &str,
    ) -> Result<(), StoreError> {
        let r = self.store.delete_key(account_id, region, key_id).await;
        self.cache.invalidate(account_id, region, key_id);
        r
    }

    /// [`MetadataStore::reset`] (test harnesses); empties the cache too.
    pub(crate) async fn reset(&self) -> Result<(), StoreError> {
        let r = self.store.reset().await;
        self.cache.clear();
        r
    }
}
