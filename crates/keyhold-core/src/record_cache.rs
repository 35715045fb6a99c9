//! Records kept in memory for a bounded time, with local invalidation: the mechanism behind
//! the key cache (`keys::key_cache`) and the custom key store cache of the cryptographic path.
//!
//! - A change made through this node is visible at once: its writer calls
//!   [`RecordCache::invalidate`] after the write commits, and a read that raced with the write
//!   cannot put the old record back (entries are only inserted when no invalidation happened
//!   since the read began: a generation counter).
//! - A change made through another node is visible within the TTL: an entry older than it is
//!   read again. A TTL of zero caches nothing.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// (account, Region, id).
pub(crate) type RecordAddress = (String, String, String);

/// Most records kept before the cache is emptied (a crude bound; a deployment that uses more
/// records than this within one TTL reads them from the store, as without a cache).
const RECORD_CACHE_LIMIT: usize = 50_000;

struct Entry<V> {
    key: Arc<V>,
    loaded_at: Instant,
}

/// Records of type `V` by address; see the module documentation.
pub(crate) struct RecordCache<V> {
    /// The TTL in microseconds (atomic: set once the node is configured, read per request).
    ttl_micros: AtomicU64,
    entries: RwLock<HashMap<RecordAddress, Entry<V>>>,
    /// Bumped by every invalidation; a read inserts its result only if it is unchanged.
    generation: AtomicU64,
}

impl<V> RecordCache<V> {
    /// A cache keeping records for `ttl` (zero: none).
    pub(crate) fn new(ttl: Duration) -> Self {
        Self {
            ttl_micros: AtomicU64::new(micros(ttl)),
            entries: RwLock::default(),
            generation: AtomicU64::new(0),
        }
    }

    /// The TTL.
    pub(crate) fn ttl(&self) -> Duration {
        Duration::from_micros(self.ttl_micros.load(Ordering::Relaxed))
    }

    /// Changes the TTL and empties the cache.
    pub(crate) fn set_ttl(&self, ttl: Duration) {
        self.ttl_micros.store(micros(ttl), Ordering::Relaxed);
        self.clear();
    }

    /// The generation to pass to [`RecordCache::insert`] for a read starting now.
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// The record at `address` if it was read less than the TTL ago.
    pub(crate) fn get(&self, address: &RecordAddress) -> Option<Arc<V>> {
        let ttl = self.ttl();
        if ttl.is_zero() {
            return None;
        }
        let entries = self.entries.read().ok()?;
        let entry = entries.get(address)?;
        (entry.loaded_at.elapsed() < ttl).then(|| entry.key.clone())
    }

    /// Inserts `key`, read after the generation was `since`, unless something was
    /// invalidated meanwhile.
    pub(crate) fn insert(
        &self,
        address: RecordAddress,
        key: Arc<V>,
        since: u64,
        loaded_at: Instant,
    ) {
        if self.ttl().is_zero() {
            return;
        }
        let Ok(mut entries) = self.entries.write() else {
            return;
        };
        if self.generation.load(Ordering::Acquire) != since {
            return;
        }
        if entries.len() >= RECORD_CACHE_LIMIT {
            entries.clear();
        }
        entries.insert(address, Entry { key, loaded_at });
    }

    /// The record at (`account`, `region`, `id`): cached when fresh enough, otherwise
    /// `load`ed and cached. A missing record (`Ok(None)`) is never cached, so a record
    /// created through another node is found at once.
    pub(crate) async fn get_or_load<E, F>(
        &self,
        account: &str,
        region: &str,
        id: &str,
        load: F,
    ) -> Result<Option<Arc<V>>, E>
    where
        F: std::future::Future<Output = Result<Option<V>, E>>,
    {
        let address = (account.to_string(), region.to_string(), id.to_string());
        if let Some(hit) = self.get(&address) {
            return Ok(Some(hit));
        }
        let since = self.generation();
        let loaded_at = Instant::now();
        let Some(record) = load.await? else {
            return Ok(None);
        };
        let record = Arc::new(record);
        self.insert(address, record.clone(), since, loaded_at);
        Ok(Some(record))
    }

    /// Drops the record of (`account`, `region`, `id`); call after writing it.
    pub(crate) fn invalidate(&self, account: &str, region: &str, id: &str) {
        let mut entries = match self.entries.write() {
            Ok(e) => e,
            Err(poisoned) => poisoned.into_inner(),
        };
        // Under the lock, so an insert either sees the new generation or is removed here.
        self.generation.fetch_add(1, Ordering::AcqRel);
        entries.remove(&(account.to_string(), region.to_string(), id.to_string()));
    }

    /// Drops every record.
    pub(crate) fn clear(&self) {
        let mut entries = match self.entries.write() {
            Ok(e) => e,
            Err(poisoned) => poisoned.into_inner(),
        };
        self.generation.fetch_add(1, Ordering::AcqRel);
        entries.clear();
    }

    /// Makes every record look `by` older (tests of the staleness bound, without waiting).
    #[cfg(test)]
    pub(crate) fn age(&self, by: Duration) {
        if let Ok(mut entries) = self.entries.write() {
            for entry in entries.values_mut() {
                if let Some(earlier) = entry.loaded_at.checked_sub(by) {
                    entry.loaded_at = earlier;
                }
            }
        }
    }
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn address(key_id: &str) -> RecordAddress {
        ("111122223333".into(), "us-east-1".into(), key_id.into())
    }

    fn read(cache: &RecordCache<String>, key_id: &str) -> Option<String> {
        cache.get(&address(key_id)).map(|v| v.to_string())
    }

    #[test]
    fn a_read_that_raced_with_a_write_is_not_cached() {
        let cache = RecordCache::new(Duration::from_secs(3600));
        let since = cache.generation();
        // The write commits and invalidates while the read is on its way back.
        cache.invalidate("111122223333", "us-east-1", "k1");
        cache.insert(address("k1"), Arc::new("old".into()), since, Instant::now());
        assert_eq!(
            read(&cache, "k1"),
            None,
            "the old record must not be cached"
        );
        // A read that began after the write is cached.
        let since = cache.generation();
        cache.insert(address("k1"), Arc::new("new".into()), since, Instant::now());
        assert_eq!(read(&cache, "k1").as_deref(), Some("new"));
    }

    #[test]
    fn entries_expire_after_the_ttl_and_invalidation_removes_them() {
        let cache = RecordCache::new(Duration::from_secs(10));
        let since = cache.generation();
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
        let cache = RecordCache::new(Duration::ZERO);
        cache.insert(address("k"), Arc::new("x".into()), 0, Instant::now());
        assert_eq!(read(&cache, "k"), None);
    }
}
