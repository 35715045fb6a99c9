//! Object handles of keys, cached by label.
//!
//! Finding a key by label (`C_FindObjectsInit` / `C_FindObjects` /
//! `C_FindObjectsFinal`) costs more than the AES-GCM it precedes: SoftHSMv2
//! re-reads its token index and walks every object, ~40 µs and a dozen file
//! opens per look-up. So [`Token`](crate::Token) keeps the handle it found.
//!
//! # Why a handle can be kept
//! PKCS#11 (v2.40 §6.7.5, "Session handles and object handles") makes an
//! object handle's visibility the same for every thread of an application, and
//! its session example uses a handle found in one session from another
//! session of the same application; a session that can use a handle keeps
//! being able to while the object exists and stays accessible. SoftHSMv2 gives
//! a token object one handle per process, shared by all sessions, and never
//! reuses a handle number within one initialisation of the module
//! (`HandleManager`). The tests in `keyhold-pkcs11-faults` check this against
//! the real SoftHSMv2.
//!
//! # When a handle stops being valid
//! * The module is finalized and initialised again: handle numbers restart,
//!   so an old number may name another object. Entries carry the module
//!   generation and are ignored once it moves.
//! * The application logs out (or its last session closes): SoftHSMv2
//!   forgets the handles of private objects. Every recovery, logout and login
//!   change [`HandleCache::clear`]s the cache.
//! * The key is destroyed, through Keyhold ([`Token::destroy_key`](crate::Token::destroy_key)
//!   evicts it) or behind its back (another process): the next operation
//!   fails with `CKR_OBJECT_HANDLE_INVALID` or `CKR_KEY_HANDLE_INVALID`, the
//!   entry is evicted and the key looked up again, once.
//!
//! # Session copies
//! With [`TokenConfig::session_key_copies`](crate::TokenConfig::session_key_copies) the
//! handle kept is not the token object's but a session-object copy of it (`C_CopyObject`
//! with `CKA_TOKEN` false): SoftHSMv2 re-reads a token object's file (a generation check
//! and the object itself: two opens, six `fcntl` locks) on every use, a session object
//! lives in memory. The entry remembers the original ([`Origin`]); at most once per
//! configured interval an operation first checks that the original still exists with the
//! same `CKA_ENCRYPT`/`CKA_DECRYPT`, so a key destroyed or changed behind Keyhold's back is
//! seen within that interval. A copy dies with the session that made it; its handle is then
//! refused and the key looked up (and copied) again.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use cryptoki::object::ObjectHandle;

use crate::error::{Ckr, Pkcs11Error};

/// Entries kept at most; past this the cache starts over (a token holding
/// more keys than this still works, with more look-ups).
const MAX_ENTRIES: usize = 100_000;

/// Label → handle, for one token. Generic over the handle so the
/// bookkeeping is testable without a token (cryptoki's handles cannot be
/// made by hand).
pub(crate) struct HandleCache<H = ObjectHandle> {
    state: Mutex<State<H>>,
}

impl<H> Default for HandleCache<H> {
    fn default() -> Self {
        HandleCache {
            state: Mutex::new(State {
                entries: HashMap::new(),
                epoch: 0,
            }),
        }
    }
}

struct State<H> {
    entries: HashMap<String, Entry<H>>,
    /// Bumped by [`HandleCache::clear`]; a look-up started under an older
    /// epoch does not store its result.
    epoch: u64,
}

/// A cached handle.
#[derive(Clone, Copy)]
pub(crate) struct Entry<H> {
    /// The handle operations use.
    pub(crate) handle: H,
    /// Module generation the handle was found under.
    generation: u64,
    /// Set when `handle` is a session copy: the token object it copies.
    pub(crate) origin: Option<Origin<H>>,
}

impl<H: Copy> Entry<H> {
    /// The handle if it is a session copy (for destroying it), `None` for a token object.
    pub(crate) fn copy(&self) -> Option<H> {
        self.origin.map(|_| self.handle)
    }
}

/// The token object a session copy was made from, and what was last seen of it.
#[derive(Clone, Copy)]
pub(crate) struct Origin<H> {
    /// The token object's handle.
    pub(crate) handle: H,
    /// Its `CKA_ENCRYPT` and `CKA_DECRYPT` when last checked.
    pub(crate) usage: (bool, bool),
    /// When it was last checked.
    pub(crate) checked: Instant,
}

/// A point in the cache's history, taken before a look-up, so that a
/// [`HandleCache::clear`] racing with it wins.
#[derive(Clone, Copy)]
pub(crate) struct Ticket {
    epoch: u64,
    generation: u64,
}

impl<H: Copy + PartialEq> HandleCache<H> {
    fn lock(&self) -> std::sync::MutexGuard<'_, State<H>> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The handle cached for `label` under module `generation`.
    #[cfg(test)]
    pub(crate) fn get(&self, label: &str, generation: u64) -> Option<H> {
        self.entry(label, generation).map(|e| e.handle)
    }

    /// The entry cached for `label` under module `generation`.
    pub(crate) fn entry(&self, label: &str, generation: u64) -> Option<Entry<H>> {
        let st = self.lock();
        st.entries
            .get(label)
            .filter(|e| e.generation == generation)
            .copied()
    }

    /// Records that the original of the copy `handle` cached for `label` was checked now.
    pub(crate) fn checked(&self, label: &str, handle: H, now: Instant) {
        let mut st = self.lock();
        if let Some(e) = st.entries.get_mut(label).filter(|e| e.handle == handle) {
            if let Some(o) = e.origin.as_mut() {
                o.checked = now;
            }
        }
    }

    /// What a look-up about to start stores its result under.
    pub(crate) fn ticket(&self, generation: u64) -> Ticket {
        Ticket {
            epoch: self.lock().epoch,
            generation,
        }
    }

    /// Remembers `handle` for `label`, unless the cache was cleared since
    /// `ticket` was taken.
    pub(crate) fn put(&self, label: &str, handle: H, ticket: Ticket) {
        self.put_copy(label, handle, None, ticket);
    }

    /// Remembers `handle` for `label`, a session copy of `origin` if that is set. False
    /// when the cache was cleared since `ticket` was taken (nothing is stored).
    pub(crate) fn put_copy(
        &self,
        label: &str,
        handle: H,
        origin: Option<Origin<H>>,
        ticket: Ticket,
    ) -> bool {
        let mut st = self.lock();
        if st.epoch != ticket.epoch {
            return false;
        }
        if st.entries.len() >= MAX_ENTRIES && !st.entries.contains_key(label) {
            st.entries.clear();
        }
        st.entries.insert(
            label.to_string(),
            Entry {
                handle,
                generation: ticket.generation,
                origin,
            },
        );
        true
    }

    /// Forgets `label`'s handle if it is still `handle` (another thread may
    /// have stored a fresh one meanwhile); `None` forgets it whatever it is.
    /// The entry removed, if any.
    pub(crate) fn evict(&self, label: &str, handle: Option<H>) -> Option<Entry<H>> {
        let mut st = self.lock();
        let e = st.entries.get(label)?;
        if handle.is_none_or(|h| h == e.handle) {
            st.entries.remove(label)
        } else {
            None
        }
    }

    /// Forgets every handle.
    pub(crate) fn clear(&self) {
        let mut st = self.lock();
        st.entries.clear();
        st.epoch += 1;
    }

    /// Handles cached right now.
    pub(crate) fn len(&self) -> usize {
        self.lock().entries.len()
    }
}

/// True when the token refused a handle as unknown: the object is gone, or
/// the module forgot the handle.
pub(crate) fn is_stale_handle(e: &Pkcs11Error) -> bool {
    matches!(
        e.ckr(),
        Some(Ckr::ObjectHandleInvalid | Ckr::KeyHandleInvalid)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn handle(n: u64) -> u64 {
        n
    }

    #[test]
    fn entries_follow_the_module_generation() {
        let c = HandleCache::<u64>::default();
        let t = c.ticket(3);
        c.put("k", handle(7), t);
        assert_eq!(c.get("k", 3), Some(handle(7)));
        assert_eq!(c.get("k", 4), None, "a reset module renumbers handles");
    }

    #[test]
    fn a_clear_racing_a_look_up_wins() {
        let c = HandleCache::<u64>::default();
        let t = c.ticket(0);
        c.clear();
        c.put("k", handle(7), t);
        assert_eq!(c.get("k", 0), None);
        assert_eq!(c.len(), 0);
    }

    #[test]
    fn eviction_spares_a_fresher_handle() {
        let c = HandleCache::<u64>::default();
        c.put("k", handle(7), c.ticket(0));
        c.put("k", handle(9), c.ticket(0));
        c.evict("k", Some(handle(7)));
        assert_eq!(c.get("k", 0), Some(handle(9)));
        c.evict("k", None);
        assert_eq!(c.get("k", 0), None);
    }
}
