//! Derived signing keys, kept for the calls that follow.
//!
//! A signing key depends only on (secret, date, Region, service), so it changes once a day per
//! credential, yet deriving it costs four HMACs: as much as the rest of signing or verifying a
//! small request. Keys are kept per (access key id, date, Region, service) with the secret they
//! were derived from; a key is used only when the secret asked for is the same (compared in
//! constant time), so a changed secret is never signed or checked with an old key. Secrets and
//! keys are zeroized when dropped; the cache is bounded and emptied when full.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::{OnceLock, RwLock};

use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::sign::signing_key;

/// Most keys kept before the cache is emptied.
const LIMIT: usize = 1024;

struct Entry {
    access_key_id: String,
    date: String,
    region: String,
    service: String,
    secret: Zeroizing<Vec<u8>>,
    key: Zeroizing<[u8; 32]>,
}

impl Entry {
    fn matches(&self, scope: &Scope<'_>, secret: &str) -> bool {
        self.access_key_id == scope.access_key_id
            && self.date == scope.date
            && self.region == scope.region
            && self.service == scope.service
            && bool::from(self.secret.as_slice().ct_eq(secret.as_bytes()))
    }
}

/// What a signing key is kept under.
pub(crate) struct Scope<'a> {
    pub(crate) access_key_id: &'a str,
    pub(crate) date: &'a str,
    pub(crate) region: &'a str,
    pub(crate) service: &'a str,
}

struct Cache {
    hasher: std::hash::RandomState,
    entries: RwLock<HashMap<u64, Entry>>,
}

fn cache() -> &'static Cache {
    static CACHE: OnceLock<Cache> = OnceLock::new();
    CACHE.get_or_init(|| Cache {
        hasher: std::hash::RandomState::new(),
        entries: RwLock::new(HashMap::new()),
    })
}

/// The signing key of `secret` for `scope`: kept from an earlier call when it was derived from
/// the same secret, else derived (and kept).
pub(crate) fn cached_signing_key(scope: &Scope<'_>, secret: &str) -> Zeroizing<[u8; 32]> {
    let cache = cache();
    let slot =
        cache
            .hasher
            .hash_one((scope.access_key_id, scope.date, scope.region, scope.service));
    if let Ok(entries) = cache.entries.read() {
        if let Some(e) = entries.get(&slot).filter(|e| e.matches(scope, secret)) {
            return e.key.clone();
        }
    }
    let key = Zeroizing::new(signing_key(secret, scope.date, scope.region, scope.service));
    let mut entries = cache.entries.write().unwrap_or_else(|p| p.into_inner());
    if entries.len() >= LIMIT {
        entries.clear();
    }
    entries.insert(
        slot,
        Entry {
            access_key_id: scope.access_key_id.to_string(),
            date: scope.date.to_string(),
            region: scope.region.to_string(),
            service: scope.service.to_string(),
            secret: Zeroizing::new(secret.as_bytes().to_vec()),
            key: key.clone(),
        },
    );
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope<'a>(access_key_id: &'a str, date: &'a str) -> Scope<'a> {
        Scope {
            access_key_id,
            date,
            region: "us-east-1",
            service: "kms-xks-proxy",
        }
    }

    #[test]
    fn a_kept_key_is_the_derived_key_and_follows_the_secret_and_date() {
        let s = scope("AKIDKEYCACHETEST0001", "20250101");
        let first = cached_signing_key(&s, "secret-one");
        assert_eq!(
            *first,
            signing_key("secret-one", "20250101", "us-east-1", "kms-xks-proxy")
        );
        // Served from the cache: still the same key.
        assert_eq!(*cached_signing_key(&s, "secret-one"), *first);
        // A changed secret under the same access key id gets its own key at once.
        let rotated = cached_signing_key(&s, "secret-two");
        assert_eq!(
            *rotated,
            signing_key("secret-two", "20250101", "us-east-1", "kms-xks-proxy")
        );
        assert_ne!(*rotated, *first);
        // And going back is not served the rotated key either.
        assert_eq!(*cached_signing_key(&s, "secret-one"), *first);
        // The next day is another key.
        let next_day = cached_signing_key(&scope("AKIDKEYCACHETEST0001", "20250102"), "secret-one");
        assert_eq!(
            *next_day,
            signing_key("secret-one", "20250102", "us-east-1", "kms-xks-proxy")
        );
    }
}
