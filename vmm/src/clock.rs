//! Time, as the machine's devices see it: a monotonic clock injected into
//! every device that keeps time, so device models stay deterministic under
//! test ([`ManualClock`]) and run on the host's clock in the VMM
//! ([`MonotonicClock`]); and the wall-clock time of day the machine started
//! at, for the real-time clock.
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// Source of monotonic time, injected so tests are deterministic.
pub trait Clock: Send {
    /// Time since an arbitrary fixed origin; must never go backwards (devices
    /// survive it, treating earlier times as "no time passed").
    fn now(&self) -> Duration;
}

/// The host's monotonic clock, counted from when it was made.
#[derive(Debug, Clone)]
pub struct MonotonicClock {
    origin: Instant,
}

impl Default for MonotonicClock {
    fn default() -> Self {
        Self {
            origin: Instant::now(),
        }
    }
}

impl MonotonicClock {
    /// A clock whose time zero is now.
    pub fn new() -> Self {
        Self::default()
    }

    /// The host instant at clock time `t` (for arming host timers).
    pub fn instant_at(&self, t: Duration) -> Instant {
        self.origin + t
    }
}

impl Clock for MonotonicClock {
    fn now(&self) -> Duration {
        self.origin.elapsed()
    }
}

/// A clock that only moves when told to, for tests and fuzzers.
///
/// Clones share the same time (an `Arc<AtomicU64>` of nanoseconds, so it is
/// `Send + Sync` and can live inside a machine shared between threads).
#[derive(Debug, Clone, Default)]
pub struct ManualClock {
    nanos: Arc<AtomicU64>,
}

impl ManualClock {
    /// A clock at time zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the time (saturating at `u64::MAX` nanoseconds, about 584 years).
    pub fn set(&self, t: Duration) {
        let ns = u64::try_from(t.as_nanos()).unwrap_or(u64::MAX);
        self.nanos.store(ns, Ordering::SeqCst);
    }

    /// Moves the time forward by `dt` (saturating).
    pub fn advance(&self, dt: Duration) {
        let dt = u64::try_from(dt.as_nanos()).unwrap_or(u64::MAX);
        let mut ns = self.nanos.load(Ordering::SeqCst);
        // A compare-exchange loop: another thread's advance between the load
        // and the exchange is retried, never lost.
        while let Err(now) = self.nanos.compare_exchange_weak(
            ns,
            ns.saturating_add(dt),
            Ordering::SeqCst,
            Ordering::SeqCst,
        ) {
            ns = now;
        }
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Duration {
        Duration::from_nanos(self.nanos.load(Ordering::SeqCst))
    }
}

/// Seconds since the Unix epoch (UTC) at the host's present moment, for the
/// real-time clock's starting point. A host clock set before 1970 reads as
/// the epoch.
pub fn unix_time_now() -> Duration {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
}
