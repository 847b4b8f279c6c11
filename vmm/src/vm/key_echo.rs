//! The VMM's own key-to-echo time: from a host key press reaching the
//! keyboard model ([`crate::VmHandle::key_event`]) to the next byte the
//! guest transmits on COM1 (the UART hands it to the console). It is the
//! part of a keystroke's latency that the machine is responsible for (the
//! VMM's delivery, the guest's interrupt, wake, decode and echo), without
//! the host's QMP, socket and scheduling on either side, which a client
//! timing `send-key` to the echo also sees.
//!
//! One press is timed at a time: a press while an earlier one waits for its
//! byte is not timed (typing ahead would measure the queue, not the path),
//! and a release never is. Any COM1 byte ends the wait, so output that is
//! not an echo (a timer's text arriving just then) can end one early; the
//! benchmark types one key after the previous echo, where that cannot
//! happen.
//!
//! Pure code on the caller's clock readings; the machine holds it behind a
//! mutex shared by the key path and the console (both already run under the
//! machine lock, so it is never contended).
use std::time::Duration;

/// Width of a histogram bucket.
const BUCKET: Duration = Duration::from_micros(10);
/// Buckets: 10 µs each up to 50 ms; longer times go to the last one (and
/// `max` keeps the exact longest).
const BUCKETS: usize = 5000;

/// Key-to-echo times, in 10 µs buckets.
#[derive(Debug, Clone)]
pub struct KeyEcho {
    /// The clock time of the press waiting for the guest's next byte.
    pending: Option<Duration>,
    /// Counts per 10 µs bucket (allocated at the first sample: 20 KB).
    buckets: Vec<u32>,
    count: u64,
    total: Duration,
    max: Duration,
}

/// What [`KeyEcho`] measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyEchoSummary {
    /// Presses timed.
    pub count: u64,
    /// Median (the upper edge of its 10 µs bucket).
    pub p50: Duration,
    /// 99th percentile (the upper edge of its 10 µs bucket).
    pub p99: Duration,
    /// Mean.
    pub mean: Duration,
    /// Longest.
    pub max: Duration,
}

impl Default for KeyEcho {
    fn default() -> Self {
        Self::new()
    }
}

impl KeyEcho {
    /// Nothing measured yet.
    pub const fn new() -> Self {
        Self {
            pending: None,
            buckets: Vec::new(),
            count: 0,
            total: Duration::ZERO,
            max: Duration::ZERO,
        }
    }

    /// A host key event at clock time `now`: a press starts the wait unless
    /// one is already waiting.
    pub fn key(&mut self, down: bool, now: Duration) {
        if down && self.pending.is_none() {
            self.pending = Some(now);
        }
    }

    /// The guest transmitted a byte on COM1 at clock time `now`: ends the
    /// wait, if a press was waiting.
    pub fn transmitted(&mut self, now: Duration) {
        let Some(pressed) = self.pending.take() else {
            return;
        };
        let elapsed = now.saturating_sub(pressed);
        if self.buckets.is_empty() {
            self.buckets = vec![0; BUCKETS];
        }
        let bucket = ((elapsed.as_nanos() / BUCKET.as_nanos()) as usize).min(BUCKETS - 1);
        self.buckets[bucket] = self.buckets[bucket].saturating_add(1);
        self.count += 1;
        self.total += elapsed;
        self.max = self.max.max(elapsed);
    }

    /// The times so far; `None` before the first.
    pub fn summary(&self) -> Option<KeyEchoSummary> {
        if self.count == 0 {
            return None;
        }
        // The upper edge of the bucket holding the sample of rank `rank`
        // (1-based), never past the longest time seen.
        let at_rank = |rank: u64| {
            let mut seen = 0u64;
            for (index, &n) in self.buckets.iter().enumerate() {
                seen += u64::from(n);
                if seen >= rank && index + 1 < BUCKETS {
                    return (BUCKET * (index as u32 + 1)).min(self.max);
                }
            }
            self.max // in the open-ended last bucket
        };
        let rank = |percent: u64| (self.count * percent).div_ceil(100).max(1);
        Some(KeyEchoSummary {
            count: self.count,
            p50: at_rank(rank(50)),
            p99: at_rank(rank(99)),
            // No `Duration / u32`: a count past u32::MAX must not divide by 0.
            mean: Duration::from_nanos((self.total.as_nanos() / u128::from(self.count)) as u64),
            max: self.max,
        })
    }
}

/// A [`KeyEcho`] on the machine's clock, shared by the key path and the
/// console.
#[derive(Debug, Default)]
pub(crate) struct Probe {
    clock: crate::clock::MonotonicClock,
    echo: std::sync::Mutex<KeyEcho>,
}

impl Probe {
    /// Times on `clock`.
    pub fn new(clock: crate::clock::MonotonicClock) -> Self {
        Self {
            clock,
            echo: std::sync::Mutex::new(KeyEcho::new()),
        }
    }

    fn echo(&self) -> std::sync::MutexGuard<'_, KeyEcho> {
        // The data stays consistent whatever panicked while holding it.
        self.echo
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// A host key event now.
    pub fn key(&self, down: bool) {
        use crate::clock::Clock;
        let mut echo = self.echo();
        if down && echo.pending.is_none() {
            echo.key(down, self.clock.now());
        }
    }

    /// The guest transmitted a COM1 byte now. Called for every byte: the
    /// clock is read only when a press waits for one.
    pub fn transmitted(&self) {
        use crate::clock::Clock;
        let mut echo = self.echo();
        if echo.pending.is_some() {
            echo.transmitted(self.clock.now());
        }
    }

    /// See [`KeyEcho::summary`].
    pub fn summary(&self) -> Option<KeyEchoSummary> {
        self.echo().summary()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn us(n: u64) -> Duration {
        Duration::from_micros(n)
    }

    #[test]
    fn a_press_is_timed_to_the_next_transmitted_byte() {
        let mut echo = KeyEcho::new();
        echo.key(true, us(1000));
        echo.transmitted(us(1735));
        // The second byte of the same echo (or anything else) is not timed.
        echo.transmitted(us(1800));
        let summary = echo.summary().unwrap();
        assert_eq!(summary.count, 1);
        assert_eq!(summary.max, us(735));
        assert_eq!(summary.mean, us(735));
        // Bucket edges never exceed the longest time seen.
        assert_eq!(summary.p50, us(735));
    }

    #[test]
    fn releases_and_presses_typed_ahead_are_not_timed() {
        let mut echo = KeyEcho::new();
        echo.key(false, us(0));
        echo.transmitted(us(50));
        assert_eq!(echo.summary(), None);
        echo.key(true, us(100));
        echo.key(false, us(150));
        echo.key(true, us(200)); // typed ahead: the first press is timed
        echo.transmitted(us(600));
        let summary = echo.summary().unwrap();
        assert_eq!((summary.count, summary.max), (1, us(500)));
    }

    #[test]
    fn percentiles_come_from_the_ten_microsecond_buckets() {
        let mut echo = KeyEcho::new();
        // 100 presses: 1..=100 times 100 µs.
        for i in 1..=100u64 {
            let start = us(i * 1_000_000);
            echo.key(true, start);
            echo.transmitted(start + us(i * 100));
        }
        let summary = echo.summary().unwrap();
        assert_eq!(summary.count, 100);
        // The 50th sample is 5,000 µs, in the bucket [5000, 5010) µs.
        assert_eq!(summary.p50, us(5010));
        assert_eq!(summary.p99, us(9910));
        assert_eq!(summary.max, us(10_000));
        assert_eq!(summary.mean, us(5050));
    }

    #[test]
    fn times_past_the_last_bucket_count_there_and_keep_their_maximum() {
        let mut echo = KeyEcho::new();
        echo.key(true, us(0));
        echo.transmitted(Duration::from_secs(2));
        let summary = echo.summary().unwrap();
        assert_eq!(summary.p50, Duration::from_secs(2));
        assert_eq!(summary.max, Duration::from_secs(2));
    }

    #[test]
    fn a_clock_reading_before_the_press_counts_as_no_time() {
        let mut echo = KeyEcho::new();
        echo.key(true, us(500));
        echo.transmitted(us(400));
        assert_eq!(echo.summary().unwrap().max, Duration::ZERO);
    }
}
