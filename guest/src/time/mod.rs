//! The clock: one tick per IRQ0 from PIT channel 0 (programmed by
//! `drivers::pit`), and conversions between ticks and milliseconds.
//!
//! A tick is `TIMER_RELOAD` PIT input cycles: 1193 / 1193182 Hz = 0.99985 ms,
//! not 1 ms. Conversions use that exact period, so `uptime` does not drift
//! (1 ms per tick would lose 0.015%, 1.3 s a day).

pub mod calendar;

use core::sync::atomic::{AtomicU64, Ordering};
use shared::time::{PIT_FREQUENCY_HZ, TIMER_RELOAD};

static TICKS: AtomicU64 = AtomicU64::new(0);

/// Called by the IRQ0 handler; returns the new tick count.
pub fn on_tick() -> u64 {
    TICKS.fetch_add(1, Ordering::SeqCst) + 1
}

/// Timer interrupts since the PIT was programmed.
pub fn ticks() -> u64 {
    TICKS.load(Ordering::SeqCst)
}

/// Milliseconds (rounded down) that `ticks` timer periods last.
pub const fn ticks_to_ms(ticks: u64) -> u64 {
    (ticks as u128 * TIMER_RELOAD as u128 * 1000 / PIT_FREQUENCY_HZ as u128) as u64
}

/// The least number of ticks lasting at least `ms` milliseconds.
pub const fn ms_to_ticks(ms: u64) -> u64 {
    let cycles = ms as u128 * PIT_FREQUENCY_HZ as u128;
    let per_tick = TIMER_RELOAD as u128 * 1000;
    cycles.div_ceil(per_tick) as u64
}

/// Milliseconds since the timer started: monotonic, with tick resolution.
pub fn uptime_ms() -> u64 {
    ticks_to_ms(ticks())
}

/// Busy-waits (interrupts stay as they are; they must be enabled for time to
/// pass) until `ms` milliseconds have elapsed. Does not yield to other tasks.
pub fn spin(ms: u64) {
    let deadline = ticks() + ms_to_ticks(ms) + 1;
    while ticks() < deadline {
        core::hint::spin_loop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tick_is_slightly_under_a_millisecond() {
        assert_eq!(ticks_to_ms(0), 0);
        assert_eq!(ticks_to_ms(1), 0, "0.99985 ms rounds down");
        assert_eq!(ticks_to_ms(1000), 999, "999.85 ms");
        assert_eq!(ticks_to_ms(1001), 1000, "1000.85 ms");
        // 1193182 ticks are exactly 1193 s.
        assert_eq!(ticks_to_ms(PIT_FREQUENCY_HZ), 1_193_000);
    }

    #[test]
    fn ms_to_ticks_rounds_up() {
        assert_eq!(ms_to_ticks(0), 0);
        assert_eq!(ms_to_ticks(1), 2, "one tick is 0.99985 ms: short of 1 ms");
        assert_eq!(ms_to_ticks(999), 1000, "1000 ticks last 999.85 ms");
        assert_eq!(ms_to_ticks(1000), 1001);
        assert_eq!(ms_to_ticks(1_193_000), PIT_FREQUENCY_HZ, "exact");
    }

    #[test]
    fn ms_to_ticks_lasts_at_least_ms_and_one_tick_less_does_not() {
        for ms in [1, 2, 7, 100, 4_294_967_295] {
            let ticks = ms_to_ticks(ms);
            let cycles = |t: u64| u128::from(t) * u128::from(TIMER_RELOAD) * 1000;
            let wanted = u128::from(ms) * u128::from(PIT_FREQUENCY_HZ);
            assert!(cycles(ticks) >= wanted, "{ms} ms");
            assert!(cycles(ticks - 1) < wanted, "{ms} ms");
        }
    }

    #[test]
    fn no_overflow_at_the_largest_values() {
        assert_eq!(ticks_to_ms(u64::MAX), 18_443_930_330_775_602_612);
        assert!(ms_to_ticks(u64::from(u32::MAX)) > u64::from(u32::MAX));
    }
}
