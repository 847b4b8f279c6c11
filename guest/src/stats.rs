//! Event counters, shown by the shell's `stats` command.
//!
//! Plain atomics: interrupt handlers bump them without locks. (The clock is
//! the TSC, in `time`; timer interrupts are only counted here.)

use core::sync::atomic::{AtomicU64, Ordering};

/// A monotonically increasing event counter.
pub struct Counter(AtomicU64);

impl Default for Counter {
    fn default() -> Self {
        Self::new()
    }
}

impl Counter {
    pub const fn new() -> Self {
        Self(AtomicU64::new(0))
    }
    pub fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// IRQ0 handler invocations: timer interrupts taken (`timer_ticks` in
/// `stats`, a name kept from the periodic tick). The PIT runs one-shots for
/// pending timers only, so an idle guest with no timer adds none.
pub static TIMER_IRQS: Counter = Counter::new();
/// IRQ1 handler invocations.
pub static KEYBOARD_IRQS: Counter = Counter::new();
/// Bytes read from the i8042 data port in the IRQ1 handler (including dropped ones).
pub static SCANCODES: Counter = Counter::new();
/// Scancodes lost because the scancode queue was full.
pub static SCANCODES_DROPPED: Counter = Counter::new();
/// IRQ4 (COM1) handler invocations.
pub static SERIAL_IRQS: Counter = Counter::new();
/// Bytes read from COM1's receiver (including dropped ones).
pub static SERIAL_RX: Counter = Counter::new();
/// Received bytes lost because the serial queue was full.
pub static SERIAL_RX_DROPPED: Counter = Counter::new();
/// Receiver overruns COM1 reported (LSR.OE: bytes lost in the UART).
pub static SERIAL_OVERRUNS: Counter = Counter::new();
/// IRQ7/IRQ15 taken (lines we keep masked: spurious, see `drivers::pic`).
pub static SPURIOUS_IRQS: Counter = Counter::new();
/// Interrupts on lines we keep masked (should stay 0).
pub static UNEXPECTED_IRQS: Counter = Counter::new();
/// Breakpoint exceptions (`int3`), which report and resume.
pub static BREAKPOINTS: Counter = Counter::new();
/// Waker invocations (`wake`/`wake_by_ref` on task wakers).
pub static WAKES: Counter = Counter::new();
/// Task polls by the executor.
pub static POLLS: Counter = Counter::new();
/// Times the executor halted the CPU waiting for an interrupt.
pub static HALTS: Counter = Counter::new();
