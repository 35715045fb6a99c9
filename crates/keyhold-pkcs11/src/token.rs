//! A logged-in token: session pool, recovery, key lookup by label.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use cryptoki::error::{Error as CkError, RvError};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;

use crate::config::{Pin, TokenConfig};
use crate::error::{ck, Ckr, Pkcs11Error};
use crate::handles::HandleCache;
use crate::module::{module, Module};
use crate::pool::{Acquired, Lease, Pool, PooledSession};

/// Manufacturers (`C_GetInfo`) of modules that compute inside the process.
const IN_PROCESS_MODULES: &[&str] = &["SoftHSM"];

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
    /// Whether an operation waits for a free session (see [`Token::without_waiting`]).
    wait: bool,
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
    /// The module computes inside this process (SoftHSMv2): a call is CPU work, never a
    /// wait on a device or network (see [`Token::in_process`]).
    in_process: bool,
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
        let in_process = module
            .ctx()
            .0
            .get_library_info()
            .is_ok_and(|info| IN_PROCESS_MODULES.contains(&info.manufacturer_id().trim()));
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
                in_process,
                config,
            }),
            wait: true,
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

    /// True when the module does its work inside this process, with no device or network
    /// behind it (SoftHSMv2, by the manufacturer its `C_GetInfo` names): an operation on a
    /// cached key is then a few microseconds of CPU, less than handing it to another thread
    /// costs, and async callers may run it in place with [`Token::without_waiting`].
    pub fn in_process(&self) -> bool {
        self.inner.in_process
    }

    /// This token, but its operations fail with [`Pkcs11Error::SessionBusy`] instead of
    /// waiting when no session is free. For callers on an async worker thread, which must
    /// not block on other requests.
    pub fn without_waiting(&self) -> Token {
        Token {
            inner: Arc::clone(&self.inner),
            wait: false,
        }
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
        let mut lease = if self.wait {
            self.inner.pool.acquire()?
        } else {
            self.inner.pool.try_acquire()?
        };
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
    /// SoftHSMv2 names itself in `C_GetInfo`: its calls are CPU work in this process.
    #[test]
    fn softhsm_computes_in_process() {
        let Some(env) = TestEnv::get() else { return };
        let cfg = env.token("t-in-process", "user-pin-1234").expect("init");
        assert!(Token::open(cfg).expect("open").in_process());
    }

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
        // A caller that must not wait is told at once.
        match t.without_waiting().aes_gcm_encrypt("k", b"", b"x") {
            Err(Pkcs11Error::SessionBusy) => {}
            other => panic!("expected SessionBusy, got {other:?}"),
        }
        drop(held);
        t.without_waiting()
            .aes_gcm_encrypt("k", b"", b"x")
            .expect("a free session is used without waiting");
        t.aes_gcm_encrypt("k", b"", b"x")
            .expect("the session is back in the pool");
        assert!(Pkcs11Error::PoolExhausted.is_device_failure());
    }
}
