//! A logged-in token: session pool, recovery, key lookup by label.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use cryptoki::error::{Error as CkError, RvError};
use cryptoki::object::{Attribute, AttributeType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;

use crate::config::{Pin, TokenConfig};
use crate::error::{ck, Ckr, Pkcs11Error};
use crate::handles::{is_stale_handle, HandleCache};
use crate::module::{module, Module};
use crate::pool::{Acquired, Lease, Pool, PooledSession};

/// How a token's session pool is used (see [`Token::session_counts`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionCounts {
    /// Open sessions waiting in the pool.
    pub idle: usize,
    /// Sessions lent to operations (or being opened for one).
    pub in_use: usize,
    /// The most sessions the pool holds.
    pub capacity: usize,
}

/// An open, logged-in token. Cheap to clone; all clones share one pool.
///
/// Every method blocks on the device: call it from a blocking context
/// (`tokio::task::spawn_blocking`) in async code.
#[derive(Clone)]
pub struct Token {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) module: Arc<Module>,
    /// The token's slot and the module generation it was found under: a
    /// reset module may number its slots differently.
    slot: Mutex<(Slot, u64)>,
    pub(crate) config: TokenConfig,
    pin: Mutex<Pin>,
    pool: Pool,
    /// Bumped whenever the application's login may have been lost (after a
    /// failure, or `logout`): each session logs in again when its epoch is
    /// behind. Login is per application, so the extra `C_Login` calls just
    /// get `CKR_USER_ALREADY_LOGGED_IN`, which counts as success.
    login_epoch: AtomicU64,
    /// Recoveries run so far (exposed for metrics and tests).
    recoveries: AtomicU64,
    /// Makes "check label is free, then generate" atomic within the process.
    pub(crate) create_lock: Mutex<()>,
    /// Key handles by label (see [`crate::handles`]).
    pub(crate) handles: HandleCache,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Token")
            .field("token_label", &self.inner.config.token_label)
            .field("module", &self.inner.config.module_path)
            .finish_non_exhaustive()
    }
}

impl Token {
    /// Loads the module (once per process), finds the token by label, opens
    /// the session pool and logs in as the user. Fails with the token's
    /// `CKR_*` on a bad PIN, a locked or uninitialised user, etc.
    pub fn open(config: TokenConfig) -> Result<Token, Pkcs11Error> {
        let module = module(&config.module_path)?;
        let generation = module.generation();
        let slot = {
            let (_guard, slot) = module.locate(&config.token_label)?;
            slot
        };
        let token = Token {
            inner: Arc::new(Inner {
                module,
                slot: Mutex::new((slot, generation)),
                pin: Mutex::new(config.user_pin.clone()),
                pool: Pool::new(config.pool_size, config.checkout_timeout),
                login_epoch: AtomicU64::new(0),
                recoveries: AtomicU64::new(0),
                create_lock: Mutex::new(()),
                handles: HandleCache::default(),
                config,
            }),
        };
        // Open the whole pool now so a bad PIN or a missing device shows at
        // start-up, not on the first request (at least one session must open).
        let opened = {
            let _guard = token.inner.module.enter();
            let mut leases = Vec::new();
            let mut failure = None;
            for _ in 0..token.inner.config.pool_size.max(1) {
                match token.checkout() {
                    Ok(lease) => leases.push(lease),
                    // The HSM's session limit: make do with what opened; the
                    // pool grows when sessions free up.
                    Err(e) if e.is_session_exhaustion() && !leases.is_empty() => break,
                    Err(e) => {
                        failure = Some(e);
                        break;
                    }
                }
            }
            drop(leases);
            failure
        };
        // `token` is dropped (closing its sessions) only after the guard is
        // released: its `Drop` takes the guard itself.
        match opened {
            None => Ok(token),
            Some(e) => Err(e),
        }
    }

    /// The slot the token currently sits in.
    pub fn slot_id(&self) -> u64 {
        self.inner
            .slot
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .0
            .id()
    }

    /// The token's label.
    pub fn token_label(&self) -> &str {
        &self.inner.config.token_label
    }

    /// The token's slot under the current module generation, found again
    /// if the module was reset since. The caller holds the call guard.
    pub(crate) fn slot(&self) -> Result<Slot, Pkcs11Error> {
        let current = self.inner.module.generation();
        let mut slot = self.inner.slot.lock().unwrap_or_else(|p| p.into_inner());
        if slot.1 != current {
            *slot = (
                self.inner
                    .module
                    .find_slot(&self.inner.config.token_label)?,
                current,
            );
        }
        Ok(slot.0)
    }

    /// How many times this token recovered from a device or session
    /// failure; a rising count means a flaky HSM link.
    pub fn recoveries(&self) -> u64 {
        self.inner.recoveries.load(Ordering::Relaxed)
    }

    /// Sessions idle in the pool right now.
    pub fn idle_sessions(&self) -> usize {
        self.inner.pool.idle_len()
    }

    /// The pool's use right now, for metrics: one lock, no call to the token.
    pub fn session_counts(&self) -> SessionCounts {
        let (idle, in_use, capacity) = self.inner.pool.counts();
        SessionCounts {
            idle,
            in_use,
            capacity,
        }
    }

    fn pin(&self) -> Pin {
        self.inner
            .pin
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn login(&self, session: &Session) -> Result<(), Pkcs11Error> {
        match session.login(UserType::User, Some(&self.pin().auth())) {
            Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => Ok(()),
            Err(e) => Err(ck("C_Login")(e)),
        }
    }

    fn open_session(&self) -> Result<PooledSession, Pkcs11Error> {
        let (ctx, generation) = self.inner.module.ctx();
        let epoch = self.inner.login_epoch.load(Ordering::SeqCst);
        let session = ctx
            .open_rw_session(self.slot()?)
            .map_err(ck("C_OpenSession"))?;
        self.login(&session)?;
        Ok(PooledSession {
            session,
            generation,
            login_epoch: epoch,
        })
    }

    /// Lends a session: an idle one (logged in again if the login epoch
    /// moved), or a new one if the pool is not full.
    pub(crate) fn checkout(&self) -> Result<Lease<'_>, Pkcs11Error> {
        let mut lease = self.inner.pool.acquire()?;
        let mut ps = match lease.acquired.take() {
            Some(Acquired::Idle(s)) => s,
            _ => self.open_session()?,
        };
        if ps.generation != self.inner.module.generation() {
            ps.dispose(true);
            ps = self.open_session()?;
        }
        let epoch = self.inner.login_epoch.load(Ordering::SeqCst);
        if ps.login_epoch != epoch {
            self.login(&ps.session)?;
            ps.login_epoch = epoch;
        }
        lease.set(ps);
        Ok(lease)
    }

    /// Runs `f` on a pooled session. On a device/session failure (or a lost
    /// login) the session is dropped, the token recovered, and — if `retry`
    /// — `f` runs once more on a fresh session. A missing key or a general
    /// error may also mean the module lost its token (see [`Module::locate`]):
    /// then the token is looked up again, and `f` retried only if that took
    /// a reset of the module.
    pub(crate) fn run<T>(
        &self,
        retry: bool,
        f: impl Fn(&Session) -> Result<T, Pkcs11Error>,
    ) -> Result<T, Pkcs11Error> {
        let generation = self.inner.module.generation();
        let err = match self.attempt(&f) {
            Ok(v) => return Ok(v),
            Err(e) => e,
        };
        let recovered = match err.ckr() {
            Some(rv) if rv.is_device_failure() || rv == Ckr::UserNotLoggedIn => {
                tracing::warn!(token = %self.inner.config.token_label, error = %err, "PKCS#11 failure, recovering");
                self.recover(rv, generation).map(|()| true)
            }
            Some(Ckr::GeneralError) => self.revalidate(generation),
            None if matches!(
                err,
                Pkcs11Error::KeyNotFound { .. } | Pkcs11Error::TokenNotFound { .. }
            ) =>
            {
                self.revalidate(generation)
            }
            _ => return Err(err),
        };
        match recovered {
            Ok(true) if retry => self.attempt(&f),
            Ok(_) => Err(err),
            Err(e) => {
                tracing::warn!(token = %self.inner.config.token_label, error = %e, "recovery failed");
                // The token itself is gone: that says more than the symptom.
                if matches!(e, Pkcs11Error::TokenNotFound { .. }) || e.is_device_failure() {
                    Err(e)
                } else {
                    Err(err)
                }
            }
        }
    }

    fn attempt<T>(
        &self,
        f: &impl Fn(&Session) -> Result<T, Pkcs11Error>,
    ) -> Result<T, Pkcs11Error> {
        let _guard = self.inner.module.enter();
        let lease = self.checkout()?;
        let Some(ps) = lease.get() else {
            return Err(Pkcs11Error::Malformed("pool lent no session"));
        };
        match f(&ps.session) {
            Ok(v) => Ok(v),
            Err(e) => {
                match e.ckr() {
                    Some(rv) if rv.is_device_failure() => lease.discard(rv.session_is_dead()),
                    _ => drop(lease),
                }
                Err(e)
            }
        }
    }

    /// After a missing key or a general error: is the token still listed?
    /// [`Module::locate`] resets the module if listing fails as a whole.
    /// True when the module was reset since the failed attempt, so a retry
    /// may now succeed.
    fn revalidate(&self, generation: u64) -> Result<bool, Pkcs11Error> {
        let slot = {
            let (_guard, slot) = self.inner.module.locate(&self.inner.config.token_label)?;
            slot
        };
        let current = self.inner.module.generation();
        if current == generation {
            return Ok(false);
        }
        self.inner.recoveries.fetch_add(1, Ordering::Relaxed);
        *self.inner.slot.lock().unwrap_or_else(|p| p.into_inner()) = (slot, current);
        self.inner.login_epoch.fetch_add(1, Ordering::SeqCst);
        self.inner.handles.clear();
        Ok(true)
    }

    /// After a failure: re-initialise the module if it was finalized, find
    /// the token's slot again if it moved, drop idle sessions that no longer
    /// answer, and make every session log in again.
    fn recover(&self, rv: Ckr, generation: u64) -> Result<(), Pkcs11Error> {
        self.inner.recoveries.fetch_add(1, Ordering::Relaxed);
        if rv == Ckr::CryptokiNotInitialized {
            self.inner.module.reset(generation, true)?;
        }
        let _guard = if matches!(
            rv,
            Ckr::CryptokiNotInitialized | Ckr::TokenNotPresent | Ckr::DeviceRemoved
        ) {
            let (guard, slot) = self.inner.module.locate(&self.inner.config.token_label)?;
            let current = self.inner.module.generation();
            *self.inner.slot.lock().unwrap_or_else(|p| p.into_inner()) = (slot, current);
            guard
        } else {
            self.inner.module.enter()
        };
        let current = self.inner.module.generation();
        let idle = self.inner.pool.take_idle();
        let taken = idle.len();
        let mut kept = Vec::new();
        for ps in idle {
            if ps.generation != current {
                ps.dispose(true);
                continue;
            }
            match ps.session.get_session_info() {
                Ok(_) => kept.push(ps),
                Err(e) => {
                    let dead = ck("C_GetSessionInfo")(e)
                        .ckr()
                        .is_some_and(|c| c.session_is_dead());
                    ps.dispose(dead);
                }
            }
        }
        self.inner.pool.restore(taken, kept);
        self.inner.login_epoch.fetch_add(1, Ordering::SeqCst);
        // A lost login or a reset module took the handles with it.
        self.inner.handles.clear();
        Ok(())
    }

    /// Logs the application out of the token (`C_Logout`). Login state is
    /// per application, so this ends it for every session; the next
    /// operation logs in again with the configured PIN.
    pub fn logout(&self) -> Result<(), Pkcs11Error> {
        let res = self.run(false, |s| match s.logout() {
            Ok(()) | Err(CkError::Pkcs11(RvError::UserNotLoggedIn, _)) => Ok(()),
            Err(e) => Err(ck("C_Logout")(e)),
        });
        self.inner.login_epoch.fetch_add(1, Ordering::SeqCst);
        // SoftHSMv2 forgets the handles of private objects at logout.
        self.inner.handles.clear();
        res
    }

    /// Changes the user PIN (`C_SetPIN` in the logged-in session). Later
    /// logins of this `Token` use `new`.
    pub fn set_user_pin(&self, old: &Pin, new: &Pin) -> Result<(), Pkcs11Error> {
        self.run(false, |s| {
            s.set_pin(&old.auth(), &new.auth()).map_err(ck("C_SetPIN"))
        })?;
        *self.inner.pin.lock().unwrap_or_else(|p| p.into_inner()) = new.clone();
        Ok(())
    }

    /// `n` random bytes from the token's RNG (`C_GenerateRandom`).
    pub fn generate_random(&self, n: usize) -> Result<Vec<u8>, Pkcs11Error> {
        if n == 0 {
            return Ok(Vec::new());
        }
        let len = u32::try_from(n).map_err(|_| Pkcs11Error::InvalidArgument("random length"))?;
        self.run(true, |s| {
            s.generate_random_vec(len).map_err(ck("C_GenerateRandom"))
        })
    }
}

impl Token {
    /// Runs `op` on `s` with the handle of the key labelled `label`: the
    /// cached one, or one looked up now (and cached). When the token refuses
    /// a cached handle (`CKR_OBJECT_HANDLE_INVALID`, `CKR_KEY_HANDLE_INVALID`:
    /// the key was destroyed, perhaps re-created under the same label, or
    /// the module forgot its handles), the handle is evicted and the key
    /// looked up again, once. The caller holds the call guard (inside
    /// [`Token::run`]), so the module generation cannot move meanwhile.
    pub(crate) fn with_key<T>(
        &self,
        s: &Session,
        label: &str,
        op: impl Fn(ObjectHandle) -> Result<T, Pkcs11Error>,
    ) -> Result<T, Pkcs11Error> {
        let cache = &self.inner.handles;
        let generation = self.inner.module.generation();
        if let Some(handle) = cache.get(label, generation) {
            match op(handle) {
                Err(e) if is_stale_handle(&e) => {
                    tracing::debug!(token = %self.inner.config.token_label, error = %e, "cached key handle refused; looking the key up again");
                    cache.evict(label, Some(handle));
                }
                other => return other,
            }
        }
        let ticket = cache.ticket(generation);
        let handle = find_key(s, label)?;
        cache.put(label, handle, ticket);
        op(handle)
    }

    /// Remembers `handle` as the key labelled `label` (just created).
    pub(crate) fn remember_key(&self, label: &str, handle: ObjectHandle) {
        let cache = &self.inner.handles;
        cache.put(label, handle, cache.ticket(self.inner.module.generation()));
    }

    /// Forgets the cached handle of the key labelled `label`, so that the
    /// next operation looks it up in the token again. For callers that learn
    /// of a change made outside this `Token` (a configuration reload, a key
    /// destroyed by another application); a handle the token refuses is
    /// forgotten without this.
    pub fn forget_key(&self, label: &str) {
        self.inner.handles.evict(label, None);
    }

    /// Forgets every cached key handle (see [`Token::forget_key`]).
    pub fn forget_key_handles(&self) {
        self.inner.handles.clear();
    }

    /// Key handles cached right now (for tests and metrics).
    pub fn cached_key_handles(&self) -> usize {
        self.inner.handles.len()
    }
}

/// The secret key labelled `label`, if exactly one exists.
pub(crate) fn find_key(s: &Session, label: &str) -> Result<ObjectHandle, Pkcs11Error> {
    let found = find_keys(s, label)?;
    match found.as_slice() {
        [] => Err(Pkcs11Error::KeyNotFound {
            label: label.to_string(),
        }),
        [one] => Ok(*one),
        many => Err(Pkcs11Error::AmbiguousKey {
            label: label.to_string(),
            count: many.len(),
        }),
    }
}

/// All persistent secret keys labelled `label`.
pub(crate) fn find_keys(s: &Session, label: &str) -> Result<Vec<ObjectHandle>, Pkcs11Error> {
    let template = [
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::Token(true),
        Attribute::Label(label.as_bytes().to_vec()),
    ];
    s.find_objects(&template).map_err(ck("C_FindObjects"))
}

/// Reads one boolean attribute the token may refuse to reveal.
pub(crate) fn bool_attr(attrs: &[Attribute], t: AttributeType) -> Option<bool> {
    attrs.iter().find_map(|a| match (a, t) {
        (Attribute::Encrypt(v), AttributeType::Encrypt)
        | (Attribute::Decrypt(v), AttributeType::Decrypt)
        | (Attribute::Extractable(v), AttributeType::Extractable)
        | (Attribute::Sensitive(v), AttributeType::Sensitive) => Some(*v),
        _ => None,
    })
}

impl Drop for Inner {
    /// Closes the idle sessions of the current module generation; older ones
    /// belong to a finalized module and are forgotten (their handle numbers
    /// may now name someone else's session). If a reset is under way (the
    /// call guard is not free), every session is forgotten: a small leak
    /// instead of a call racing `C_Finalize`.
    fn drop(&mut self) {
        let idle = self.pool.take_idle();
        let guard = self.module.try_enter();
        let current = self.module.generation();
        for ps in idle {
            let stale = guard.is_none() || ps.generation != current;
            ps.dispose(stale);
        }
    }
}

// `Token` is shared between request handlers and threads.
const _: fn() = || {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Token>();
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::softhsm::TestEnv;

    /// While the pool's only session is lent out, an operation waits `checkout_timeout` and
    /// then fails with the typed `PoolExhausted` (deterministic: the session is held here, not
    /// raced for by threads).
    #[test]
    fn an_operation_finding_every_session_in_use_fails_typed() {
        let Some(env) = TestEnv::get() else { return };
        let mut cfg = env.token("t-exhaust-held", "user-pin-1234").expect("init");
        cfg.pool_size = 1;
        cfg.checkout_timeout = std::time::Duration::from_millis(5);
        let t = Token::open(cfg).expect("open");
        t.generate_aes_key("k").expect("generate");
        let held = t.checkout().expect("the only session");
        match t.aes_gcm_encrypt("k", b"", b"x") {
            Err(Pkcs11Error::PoolExhausted) => {}
            other => panic!("expected PoolExhausted, got {other:?}"),
        }
        drop(held);
        t.aes_gcm_encrypt("k", b"", b"x")
            .expect("the session is back in the pool");
        assert!(Pkcs11Error::PoolExhausted.is_device_failure());
    }
}
