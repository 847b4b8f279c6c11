//! Pure conversions between TSC cycles, nanoseconds, milliseconds and PIT
//! input clocks for a TSC of a known frequency. No hardware access, so the
//! host unit tests cover rounding, overflow and monotonicity.
//!
//! All products are taken in `u128` and divided once, so conversions are
//! exact (up to the stated rounding) and never accumulate error: uptime is
//! always computed from the cycles since boot, not summed.

use shared::time::PIT_FREQUENCY_HZ;

const NANOS_PER_SEC: u128 = 1_000_000_000;
const MILLIS_PER_SEC: u128 = 1_000;
/// The longest one-shot PIT channel 0 can time: a count of 65535 (0 would
/// mean 65536, which the 16-bit arithmetic here avoids).
pub const MAX_PIT_COUNT: u16 = u16::MAX;

/// A TSC running at `hz` cycles per second.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TscClock {
    hz: u64,
    /// Cycles that [`MAX_PIT_COUNT`] PIT input clocks last, rounded up:
    /// precomputed so that the IRQ0 path needs no `u128` division.
    max_shot_cycles: u64,
}

impl TscClock {
    /// A clock for a TSC of `hz` cycles per second (`hz > 0`).
    pub const fn new(hz: u64) -> Self {
        assert!(hz > 0, "a TSC frequency of 0");
        let max_shot = (MAX_PIT_COUNT as u128 * hz as u128).div_ceil(PIT_FREQUENCY_HZ as u128);
        Self {
            hz,
            max_shot_cycles: max_shot as u64,
        }
    }

    /// A clock for a TSC of `khz` kHz (CPUID leaf 0x40000010's unit).
    pub const fn from_khz(khz: u32) -> Self {
        Self::new(khz as u64 * 1000)
    }

    /// The TSC frequency in Hz.
    pub const fn hz(&self) -> u64 {
        self.hz
    }

    /// Nanoseconds that `cycles` last, rounded down.
    pub const fn cycles_to_ns(&self, cycles: u64) -> u64 {
        saturate(cycles as u128 * NANOS_PER_SEC / self.hz as u128)
    }

    /// Milliseconds that `cycles` last, rounded down (so a reading never
    /// runs ahead of the time really elapsed).
    pub const fn cycles_to_ms(&self, cycles: u64) -> u64 {
        saturate(cycles as u128 * MILLIS_PER_SEC / self.hz as u128)
    }

    /// The fewest cycles lasting at least `ms` milliseconds (rounded up, so
    /// a sleep never ends early); saturates at `u64::MAX`.
    pub const fn ms_to_cycles(&self, ms: u64) -> u64 {
        saturate((ms as u128 * self.hz as u128).div_ceil(MILLIS_PER_SEC))
    }

    /// The fewest cycles lasting at least `ns` nanoseconds; saturates.
    pub const fn ns_to_cycles(&self, ns: u64) -> u64 {
        saturate((ns as u128 * self.hz as u128).div_ceil(NANOS_PER_SEC))
    }

    /// The PIT channel 0 count for a one-shot that ends no earlier than
    /// `cycles` from now, at most [`MAX_PIT_COUNT`], at least 1; and whether
    /// it was capped (then the shot ends before `cycles`, after at least
    /// [`Self::max_shot_cycles`]).
    ///
    /// One `u64` division and no `u128` arithmetic: this runs in the IRQ0
    /// handler, where under an emulating KVM every instruction costs a
    /// microsecond.
    pub const fn pit_count(&self, cycles: u64) -> (u16, bool) {
        if cycles >= self.max_shot_cycles {
            return (MAX_PIT_COUNT, true);
        }
        // cycles < 65535 * hz / 1193182 + 1, so cycles * 1193182 < (65535 +
        // 1193182 / hz... ) * hz: below 2^16 * hz, no overflow for any hz
        // below 2^47 (140 THz).
        let count = (cycles * PIT_FREQUENCY_HZ).div_ceil(self.hz);
        if count == 0 {
            (1, false)
        } else if count >= MAX_PIT_COUNT as u64 {
            (MAX_PIT_COUNT, false)
        } else {
            (count as u16, false)
        }
    }

    /// Cycles that a capped one-shot ([`MAX_PIT_COUNT`] PIT clocks) lasts,
    /// rounded up.
    pub const fn max_shot_cycles(&self) -> u64 {
        self.max_shot_cycles
    }
}

/// The TSC frequency from `cycles` elapsed over `pit_clocks` PIT input
/// clocks (a calibration), rounded to the nearest Hz.
pub const fn hz_from_pit_window(cycles: u64, pit_clocks: u64) -> u64 {
    let num = cycles as u128 * PIT_FREQUENCY_HZ as u128;
    let den = pit_clocks as u128;
    saturate((num + den / 2) / den)
}

const fn saturate(value: u128) -> u64 {
    if value > u64::MAX as u128 {
        u64::MAX
    } else {
        value as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The TSC of the CI machines as KVM reports it.
    const EPYC: TscClock = TscClock::from_khz(1_996_248);

    #[test]
    fn conversions_round_down_to_time_and_up_to_cycles() {
        let clock = TscClock::new(3_000_000_000);
        assert_eq!(clock.cycles_to_ms(2_999_999), 0, "just short of 1 ms");
        assert_eq!(clock.cycles_to_ms(3_000_000), 1);
        assert_eq!(clock.cycles_to_ns(1), 0, "a third of a nanosecond");
        assert_eq!(clock.cycles_to_ns(3), 1);
        assert_eq!(clock.ms_to_cycles(1), 3_000_000);
        assert_eq!(clock.ns_to_cycles(1), 3, "exact");
        let odd = TscClock::new(7);
        assert_eq!(odd.ms_to_cycles(1), 1, "0.007 cycles round up to 1");
        assert_eq!(odd.ns_to_cycles(1), 1);
        assert_eq!(odd.ms_to_cycles(0), 0);
    }

    #[test]
    fn a_sleep_lasts_at_least_its_milliseconds_and_not_a_cycle_more() {
        for clock in [EPYC, TscClock::new(2_400_000_001), TscClock::new(1_193_182)] {
            for ms in [1, 2, 7, 999, 1000, 54_925, 4_294_967_295] {
                let cycles = clock.ms_to_cycles(ms);
                assert!(clock.cycles_to_ms(cycles) >= ms, "{clock:?} {ms} ms");
                assert!(clock.cycles_to_ms(cycles - 1) < ms, "{clock:?} {ms} ms");
            }
        }
    }

    #[test]
    fn no_overflow_over_years() {
        // 100 years of a 5 GHz TSC still fit in u64 cycles and convert exactly.
        let clock = TscClock::new(5_000_000_000);
        let century_ms: u64 = 100 * 365 * 24 * 3600 * 1000;
        let cycles = clock.ms_to_cycles(century_ms);
        assert_eq!(cycles, century_ms * 5_000_000);
        assert_eq!(clock.cycles_to_ms(cycles), century_ms);
        assert_eq!(clock.cycles_to_ns(cycles), century_ms * 1_000_000);
        // The extremes saturate or stay exact instead of wrapping.
        assert_eq!(EPYC.ms_to_cycles(u64::MAX), u64::MAX);
        assert_eq!(TscClock::new(1).cycles_to_ns(u64::MAX), u64::MAX);
        assert_eq!(EPYC.cycles_to_ms(u64::MAX), 9_240_707_604_320);
    }

    #[test]
    fn time_is_monotonic_in_cycles() {
        let clock = TscClock::new(2_400_000_001);
        let mut last = (0, 0);
        for cycles in (0..10_000_000u64).step_by(9_973) {
            let now = (clock.cycles_to_ms(cycles), clock.cycles_to_ns(cycles));
            assert!(now >= last, "{cycles}");
            last = now;
        }
    }

    #[test]
    fn pit_counts_cover_the_wait_and_cap_at_65535() {
        let clock = EPYC;
        assert_eq!(
            clock.pit_count(0),
            (1, false),
            "a count of 0 would mean 65536"
        );
        assert_eq!(clock.pit_count(1), (1, false));
        // 1 ms: 1193.182 PIT clocks, rounded up.
        assert_eq!(clock.pit_count(clock.ms_to_cycles(1)), (1194, false));
        assert_eq!(clock.pit_count(u64::MAX), (MAX_PIT_COUNT, true));
        assert_eq!(
            clock.pit_count(clock.max_shot_cycles()),
            (MAX_PIT_COUNT, true)
        );
        assert_eq!(
            clock.pit_count(clock.max_shot_cycles() - 1).0,
            MAX_PIT_COUNT
        );
        // 65535 PIT clocks are 54.925 ms.
        assert_eq!(clock.cycles_to_ms(clock.max_shot_cycles()), 54);
        for cycles in [1, 999, 1_672, 2_000_000, clock.max_shot_cycles() - 1] {
            let (count, capped) = clock.pit_count(cycles);
            assert!(!capped);
            // The shot lasts at least `cycles`, and one PIT clock less would not.
            let lasts = |count: u64| u128::from(count) * u128::from(clock.hz());
            let wanted = u128::from(cycles) * u128::from(PIT_FREQUENCY_HZ);
            assert!(lasts(count.into()) >= wanted, "{cycles}");
            assert!(
                count == 1 || lasts(u64::from(count) - 1) < wanted,
                "{cycles}"
            );
        }
    }

    #[test]
    fn calibration_rounds_to_the_nearest_hz() {
        // 59659 PIT clocks (50 ms) of a 2 GHz TSC.
        let cycles = 59_659u64 * 2_000_000_000 / PIT_FREQUENCY_HZ;
        let hz = hz_from_pit_window(cycles, 59_659);
        assert!(hz.abs_diff(2_000_000_000) < 40_000, "{hz}");
        assert_eq!(
            hz_from_pit_window(3, 2),
            1_789_773,
            "1.5 * 1193182 = 1789773"
        );
        assert_eq!(hz_from_pit_window(u64::MAX, 1), u64::MAX);
    }
}
