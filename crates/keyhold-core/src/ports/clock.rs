//! The domain's wall clock: every date Keyhold stamps or compares (creation dates, deletion
//! dates, "is this scheduled deletion due") is read through a [`Clock`], so tests and
//! test-mode hooks can move time instead of waiting for it.
//!
//! The clock answers in **milliseconds since the Unix epoch** rather than an
//! `OffsetDateTime`: every domain date has millisecond precision (AWS returns dates in
//! seconds with three decimals, and the deletion-due index stores zero-padded milliseconds),
//! so reading milliseconds truncates once, in one place, and a [`ManualClock`] is a single
//! atomic integer with no lock and no rounding of its own.
//!
//! Lease TTLs, timeouts and rate limits are *not* domain time: they stay on
//! `tokio::time`/`std::time::Instant`, which is monotonic and must not jump when a test moves
//! the domain clock.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

/// A source of the current time for domain logic.
pub trait Clock: Send + Sync {
    /// Now, in milliseconds since the Unix epoch.
    fn now_millis(&self) -> i64;

    /// Now, in seconds since the Unix epoch with millisecond precision: the form AWS returns
    /// dates in and Keyhold stores them in.
    fn now_seconds(&self) -> f64 {
        self.now_millis() as f64 / 1000.0
    }
}

/// Adds `by` (millisecond precision) to `millis`, saturating: how both settable clocks move.
fn add_millis(millis: &AtomicI64, by: Duration) {
    let step = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
    // fetch_update never fails with a closure that always returns Some.
    let _ = millis.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |m| {
        Some(m.saturating_add(step))
    });
}

/// The system's real-time clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_millis(&self) -> i64 {
        let nanos = time::OffsetDateTime::now_utc().unix_timestamp_nanos();
        // Within i64 milliseconds until the year 292 million; saturate rather than wrap.
        i64::try_from(nanos / 1_000_000).unwrap_or(i64::MAX)
    }
}

/// A clock that only moves when told to: for tests and test-mode hooks.
#[derive(Debug)]
pub struct ManualClock {
    millis: AtomicI64,
}

impl ManualClock {
    /// A clock stopped at `millis` since the Unix epoch.
    pub fn at_millis(millis: i64) -> Self {
        Self {
            millis: AtomicI64::new(millis),
        }
    }

    /// A clock stopped at the system's current time.
    pub fn starting_now() -> Self {
        Self::at_millis(SystemClock.now_millis())
    }

    /// Sets the time to `millis` since the Unix epoch (may move backwards).
    pub fn set_millis(&self, millis: i64) {
        self.millis.store(millis, Ordering::SeqCst);
    }

    /// Moves the time forward by `by` (millisecond precision; saturating).
    pub fn advance(&self, by: Duration) {
        add_millis(&self.millis, by);
    }
}

impl Clock for ManualClock {
    fn now_millis(&self) -> i64 {
        self.millis.load(Ordering::SeqCst)
    }
}

/// The system clock plus an offset that only grows: test mode's clock, so a running server
/// can be told that days have passed (scheduled deletions and automatic rotations fall due)
/// while every date it stamps stays close to real time.
#[derive(Debug, Default)]
pub struct OffsetClock {
    offset_millis: AtomicI64,
}

impl OffsetClock {
    /// Moves the time forward by `by` (millisecond precision; saturating).
    pub fn advance(&self, by: Duration) {
        add_millis(&self.offset_millis, by);
    }

    /// How far ahead of the system clock this clock is, in milliseconds.
    pub fn offset_millis(&self) -> i64 {
        self.offset_millis.load(Ordering::SeqCst)
    }
}

impl Clock for OffsetClock {
    fn now_millis(&self) -> i64 {
        SystemClock
            .now_millis()
            .saturating_add(self.offset_millis())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let c = ManualClock::at_millis(1_700_000_000_123);
        assert_eq!(c.now_millis(), 1_700_000_000_123);
        assert_eq!(c.now_seconds(), 1_700_000_000.123);
        c.advance(Duration::from_secs(86_400));
        assert_eq!(c.now_millis(), 1_700_086_400_123);
        c.set_millis(5);
        assert_eq!(c.now_millis(), 5);
    }

    #[test]
    fn offset_clock_runs_ahead_by_what_it_was_told() {
        let c = OffsetClock::default();
        c.advance(Duration::from_secs(86_400));
        let ahead = c.now_millis() - SystemClock.now_millis();
        assert!((86_399_000..=86_400_000).contains(&ahead), "{ahead}");
        assert_eq!(c.offset_millis(), 86_400_000);
    }

    #[test]
    fn system_clock_matches_the_old_formula() {
        let before = time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000;
        let now = i128::from(SystemClock.now_millis());
        assert!(now >= before && now - before < 60_000);
    }
}
