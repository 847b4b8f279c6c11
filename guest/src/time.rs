//! The clock: PIT channel 0 in rate-generator mode, one IRQ0 per tick.
//!
//! A tick is `TIMER_RELOAD` PIT input cycles: 1193 / 1193182 Hz = 0.99985 ms,
//! not 1 ms. Conversions use that exact period, so `uptime` does not drift
//! (1 ms per tick would lose 0.015%, 1.3 s a day).

use core::sync::atomic::{AtomicU64, Ordering};
use shared::pit::{control_word, Access, Mode, Select};
use shared::ports::{PIT_CHANNEL0, PIT_COMMAND};
use shared::time::{PIT_FREQUENCY_HZ, TIMER_RELOAD};
use x86_64::instructions::port::Port;

/// Channel 0 as a binary rate generator, reload written low byte first.
const TIMER_CONTROL_WORD: u8 = control_word(
    Select::Channel0,
    Access::LowHigh,
    Mode::RateGenerator,
    false,
);

static TICKS: AtomicU64 = AtomicU64::new(0);

/// Programs PIT channel 0 for a periodic interrupt every `TIMER_RELOAD` cycles.
pub fn init() {
    let [low, high] = TIMER_RELOAD.to_le_bytes();
    // SAFETY: the standard PIT ports; only channel 0 is touched.
    unsafe {
        Port::<u8>::new(PIT_COMMAND).write(TIMER_CONTROL_WORD);
        let mut data = Port::<u8>::new(PIT_CHANNEL0);
        data.write(low);
        data.write(high);
    }
}

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
