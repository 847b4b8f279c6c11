//! Intel 8254 programmable interval timer, plus port 0x61.
// API skeleton; the full model replaces this file.
use std::time::Duration;

/// Source of monotonic time for the PIT, injected so tests are deterministic.
pub trait Clock {
    /// Time since an arbitrary fixed origin.
    fn now(&self) -> Duration;
}

/// The host's monotonic clock.
#[derive(Debug, Clone)]
pub struct MonotonicClock {
    origin: std::time::Instant,
}

impl Default for MonotonicClock {
    fn default() -> Self {
        Self { origin: std::time::Instant::now() }
    }
}

impl Clock for MonotonicClock {
    fn now(&self) -> Duration {
        self.origin.elapsed()
    }
}

/// The 8254 with its three channels and the port-B bits it owns.
pub struct Pit<C: Clock> {
    clock: C,
}

impl<C: Clock> Pit<C> {
    /// A PIT in its power-on state.
    pub fn new(clock: C) -> Self {
        Self { clock }
    }
    /// Guest read of 0x40-0x43 or 0x61.
    pub fn read(&mut self, _port: u16) -> u8 {
        let _ = self.clock.now();
        0xff
    }
    /// Guest write of 0x40-0x43 or 0x61.
    pub fn write(&mut self, _port: u16, _value: u8) {}
    /// When channel 0's output next rises (in [`Clock`] time), if ever.
    pub fn next_irq0_edge(&self) -> Option<Duration> {
        None
    }
    /// Rising edges of channel 0's output since the last call, up to now.
    pub fn take_irq0_edges(&mut self) -> u64 {
        0
    }
}
