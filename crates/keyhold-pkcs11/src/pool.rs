//! A bounded pool of PKCS#11 sessions.
//!
//! A PKCS#11 session runs one operation at a time (and cryptoki's `Session`
//! is `Send` but not `Sync`), so concurrent requests each need their own.
//! Opening a session per request is slow on network HSMs, so sessions are
//! kept and lent out; a request that finds none free waits a bounded time,
//! then gets [`Pkcs11Error::PoolExhausted`] rather than queueing forever
//! behind a hung device.

use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use cryptoki::session::Session;

use crate::error::Pkcs11Error;

/// A session plus what it was opened under.
pub(crate) struct PooledSession {
    pub(crate) session: Session,
    /// Module generation; a session from an older generation belongs to a
    /// finalized module and must be forgotten, not closed.
    pub(crate) generation: u64,
    /// Login epoch this session last logged in under (see `Token`).
    pub(crate) login_epoch: u64,
}

impl PooledSession {
    /// Gets rid of a session. A dead one (its handle invalid, or its module
    /// finalized) is leaked rather than closed: `C_CloseSession` on a stale
    /// handle number could close a live session that reused the number.
    pub(crate) fn dispose(self, dead: bool) {
        if dead {
            std::mem::forget(self.session);
        } else {
            drop(self.session);
        }
    }
}

pub(crate) struct Pool {
    state: Mutex<State>,
    freed: Condvar,
    size: usize,
    timeout: Duration,
}

struct State {
    idle: Vec<PooledSession>,
    /// Sessions lent out, plus permits to open one.
    out: usize,
    /// Threads waiting in [`Pool::acquire`]: a release wakes one only if there is one (a
    /// condition variable's notify is a system call even when nobody waits).
    waiting: usize,
}

/// What a checkout got: a session to reuse, or the right to open one.
pub(crate) enum Acquired {
    Idle(PooledSession),
    Open,
}

impl Pool {
    pub(crate) fn new(size: usize, timeout: Duration) -> Pool {
        Pool {
            state: Mutex::new(State {
                idle: Vec::new(),
                out: 0,
                waiting: 0,
            }),
            freed: Condvar::new(),
            size: size.max(1),
            timeout,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits up to the timeout for an idle session or a free place.
    pub(crate) fn acquire(&self) -> Result<Lease<'_>, Pkcs11Error> {
        let deadline = Instant::now() + self.timeout;
        let mut st = self.lock();
        loop {
            if let Some(lease) = self.take(&mut st) {
                return Ok(lease);
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(Pkcs11Error::PoolExhausted);
            }
            st.waiting += 1;
            st = self
                .freed
                .wait_timeout(st, deadline - now)
                .unwrap_or_else(|p| p.into_inner())
                .0;
            st.waiting -= 1;
        }
    }

    /// An idle session or a free place if there is one now; [`Pkcs11Error::SessionBusy`]
    /// rather than waiting.
    pub(crate) fn try_acquire(&self) -> Result<Lease<'_>, Pkcs11Error> {
        let mut st = self.lock();
        self.take(&mut st).ok_or(Pkcs11Error::SessionBusy)
    }

    fn take(&self, st: &mut State) -> Option<Lease<'_>> {
        if let Some(s) = st.idle.pop() {
            st.out += 1;
            return Some(Lease::new(self, Acquired::Idle(s)));
        }
        if st.out < self.size {
            st.out += 1;
            return Some(Lease::new(self, Acquired::Open));
        }
        None
    }

    fn release(&self, session: Option<PooledSession>) {
        let mut st = self.lock();
        st.out = st.out.saturating_sub(1);
        if let Some(s) = session {
            st.idle.push(s);
        }
        let waiting = st.waiting > 0;
        drop(st);
        if waiting {
            self.freed.notify_one();
        }
    }

    /// Takes every idle session out (counted as lent) so they can be probed
    /// after a failure; give them back with [`Pool::restore`].
    pub(crate) fn take_idle(&self) -> Vec<PooledSession> {
        let mut st = self.lock();
        let idle = std::mem::take(&mut st.idle);
        st.out += idle.len();
        idle
    }

    /// Returns `kept` of `taken` sessions from [`Pool::take_idle`].
    pub(crate) fn restore(&self, taken: usize, kept: Vec<PooledSession>) {
        let mut st = self.lock();
        st.out = st.out.saturating_sub(taken);
        st.idle.extend(kept);
        drop(st);
        self.freed.notify_all();
    }

    /// Sessions idle right now (for tests and metrics).
    pub(crate) fn idle_len(&self) -> usize {
        self.lock().idle.len()
    }

    /// (idle, lent out or being opened, capacity), read under one lock (for metrics).
    pub(crate) fn counts(&self) -> (usize, usize, usize) {
        let st = self.lock();
        (st.idle.len(), st.out, self.size)
    }
}

/// A session lent by the pool; returned on drop unless discarded.
pub(crate) struct Lease<'a> {
    pool: &'a Pool,
    pub(crate) acquired: Option<Acquired>,
    session: Option<PooledSession>,
}

impl<'a> Lease<'a> {
    fn new(pool: &'a Pool, acquired: Acquired) -> Self {
        Lease {
            pool,
            acquired: Some(acquired),
            session: None,
        }
    }

    /// Installs the session this lease hands out.
    pub(crate) fn set(&mut self, s: PooledSession) {
        self.session = Some(s);
    }

    /// The leased session, if one was installed.
    pub(crate) fn get(&self) -> Option<&PooledSession> {
        self.session.as_ref()
    }

    /// Drops the session instead of returning it (see
    /// [`PooledSession::dispose`] for `dead`).
    pub(crate) fn discard(mut self, dead: bool) {
        if let Some(s) = self.session.take() {
            s.dispose(dead);
        }
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        self.pool.release(self.session.take());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_then_reports_exhaustion() {
        let pool = Pool::new(1, Duration::from_millis(20));
        let first = pool.acquire().expect("first");
        assert!(matches!(first.acquired, Some(Acquired::Open)));
        let started = Instant::now();
        assert!(matches!(pool.acquire(), Err(Pkcs11Error::PoolExhausted)));
        assert!(started.elapsed() >= Duration::from_millis(20));
        drop(first);
        assert!(pool.acquire().is_ok(), "place freed on drop");
    }

    #[test]
    fn a_waiter_gets_the_released_place() {
        let pool = std::sync::Arc::new(Pool::new(1, Duration::from_secs(5)));
        let first = pool.acquire().expect("first");
        let p2 = std::sync::Arc::clone(&pool);
        let waiter = std::thread::spawn(move || p2.acquire().map(|_| ()).is_ok());
        std::thread::sleep(Duration::from_millis(20));
        drop(first);
        assert!(waiter.join().expect("join"));
    }

    #[test]
    fn try_acquire_never_waits() {
        let pool = Pool::new(1, Duration::from_secs(60));
        let first = pool.try_acquire().expect("a free place");
        // A wait would end in PoolExhausted, a minute later.
        assert!(matches!(pool.try_acquire(), Err(Pkcs11Error::SessionBusy)));
        drop(first);
        assert!(pool.try_acquire().is_ok(), "place freed on drop");
    }

    #[test]
    fn take_and_restore_keep_the_count() {
        let pool = Pool::new(2, Duration::from_millis(1));
        let a = pool.acquire().expect("a");
        let b = pool.acquire().expect("b");
        drop((a, b));
        let taken = pool.take_idle();
        assert!(taken.is_empty(), "leases without sessions return nothing");
        pool.restore(0, Vec::new());
        let _a = pool.acquire().expect("a again");
        let _b = pool.acquire().expect("b again");
        assert!(matches!(pool.acquire(), Err(Pkcs11Error::PoolExhausted)));
    }
}
