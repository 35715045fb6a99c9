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

use std::collections::HashMap;
use std::ops::Deref;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use crate::ports::{IndexEntry, MetadataStore, StoreError, StoredKey, StoredKeyMaterial};

use super::KeyDoc;

/// (account, Region, key id).
type KeyAddress = (String, String, String);

/// Most key records kept before the cache is emptied (a crude bound; a deployment that uses
/// more keys than this within one TTL reads them from the store, as without a cache).
const KEY_CACHE_LIMIT: usize = 50_000;

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

struct Entry<V> {
    key: Arc<V>,
    loaded_at: Instant,
}

/// The cache proper (generic so that its rules can be tested on plain values); see the
/// module documentation.
struct KeyCache<V> {
    ttl: Duration,
    entries: RwLock<HashMap<KeyAddress, Entry<V>>>,
    /// Bumped by every invalidation; a read inserts its result only if it is unchanged.
    generation: AtomicU64,
}

impl<V> KeyCache<V> {
    fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            entries: RwLock::default(),
            generation: AtomicU64::new(0),
        }
    }

    fn get(&self, address: &KeyAddress) -> Option<Arc<V>> {
        if self.ttl.is_zero() {
            return None;
        }
        let entries = self.entries.read().ok()?;
        let entry = entries.get(address)?;
        (entry.loaded_at.elapsed() < self.ttl).then(|| entry.key.clone())
    }

    /// Inserts `key`, read after the generation was `since`, unless something was
    /// invalidated meanwhile.
    fn insert(&self, address: KeyAddress, key: Arc<V>, since: u64, loaded_at: Instant) {
        if self.ttl.is_zero() {
            return;
        }
        let Ok(mut entries) = self.entries.write() else {
            return;
        };
        if self.generation.load(Ordering::Acquire) != since {
            return;
        }
        if entries.len() >= KEY_CACHE_LIMIT {
            entries.clear();
        }
        entries.insert(address, Entry { key, loaded_at });
    }

    fn invalidate(&self, account: &str, region: &str, key_id: &str) {
        let mut entries = match self.entries.write() {
            Ok(e) => e,
            Err(poisoned) => poisoned.into_inner(),
        };
        // Under the lock, so an insert either sees the new generation or is removed here.
        self.generation.fetch_add(1, Ordering::AcqRel);
        entries.remove(&(account.to_string(), region.to_string(), key_id.to_string()));
    }

    fn clear(&self) {
        let mut entries = match self.entries.write() {
            Ok(e) => e,
            Err(poisoned) => poisoned.into_inner(),
        };
        self.generation.fetch_add(1, Ordering::AcqRel);
        entries.clear();
    }
}

/// The metadata store as the key operations see it: every store method, with the writes of
/// key records intercepted to keep [`KeyRecords::get_key_for_use`]'s cache consistent.
///
/// The interception works by name: the inherent methods below take precedence over the
/// store's trait methods reached through `Deref`, so `self.store.update_key(..)` in the key
/// operations cannot bypass the cache.
pub(crate) struct KeyRecords {
    store: Arc<dyn MetadataStore>,
    cache: KeyCache<CachedKey>,
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
            cache: KeyCache::new(ttl),
        }
    }

    /// How long a change made through another node may stay unseen.
    pub(crate) fn set_ttl(&mut self, ttl: Duration) {
        self.cache.ttl = ttl;
        self.cache.clear();
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
        let address = (account.to_string(), region.to_string(), key_id.to_string());
        if let Some(hit) = self.cache.get(&address) {
            return Ok(Some(hit));
        }
        let since = self.cache.generation.load(Ordering::Acquire);
        let loaded_at = Instant::now();
        let Some(row) = self.store.get_key(account, region, key_id).await? else {
            return Ok(None);
        };
        let doc = parse(&row)?;
        let key = Arc::new(CachedKey { row, doc });
        self.cache.insert(address, key.clone(), since, loaded_at);
        Ok(Some(key))
    }

    /// Makes every cached record look `by` older (tests of the staleness bound, without
    /// waiting for it).
    #[cfg(test)]
    pub(crate) fn age(&self, by: Duration) {
        if let Ok(mut entries) = self.cache.entries.write() {
            for entry in entries.values_mut() {
                if let Some(earlier) = entry.loaded_at.checked_sub(by) {
                    entry.loaded_at = earlier;
                }
            }
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn address(key_id: &str) -> KeyAddress {
        ("111122223333".into(), "us-east-1".into(), key_id.into())
    }

    fn read(cache: &KeyCache<String>, key_id: &str) -> Option<String> {
        cache.get(&address(key_id)).map(|v| v.to_string())
    }

    #[test]
    fn a_read_that_raced_with_a_write_is_not_cached() {
        let cache = KeyCache::new(Duration::from_secs(3600));
        let since = cache.generation.load(Ordering::Acquire);
        // The write commits and invalidates while the read is on its way back.
        cache.invalidate("111122223333", "us-east-1", "k1");
        cache.insert(address("k1"), Arc::new("old".into()), since, Instant::now());
        assert_eq!(
            read(&cache, "k1"),
            None,
            "the old record must not be cached"
        );
        // A read that began after the write is cached.
        let since = cache.generation.load(Ordering::Acquire);
        cache.insert(address("k1"), Arc::new("new".into()), since, Instant::now());
        assert_eq!(read(&cache, "k1").as_deref(), Some("new"));
    }

    #[test]
    fn entries_expire_after_the_ttl_and_invalidation_removes_them() {
        let cache = KeyCache::new(Duration::from_secs(10));
        let since = cache.generation.load(Ordering::Acquire);
        let long_ago = Instant::now()
            .checked_sub(Duration::from_secs(11))
            .expect("the monotonic clock is older than 11 s");
        cache.insert(address("old"), Arc::new("x".into()), since, long_ago);
        cache.insert(address("new"), Arc::new("y".into()), since, Instant::now());
        assert_eq!(read(&cache, "old"), None);
        assert_eq!(read(&cache, "new").as_deref(), Some("y"));
        cache.invalidate("111122223333", "us-east-1", "new");
        assert_eq!(read(&cache, "new"), None);
    }

    #[test]
    fn a_zero_ttl_caches_nothing() {
        let cache = KeyCache::new(Duration::ZERO);
        cache.insert(address("k"), Arc::new("x".into()), 0, Instant::now());
        assert_eq!(read(&cache, "k"), None);
    }
}
