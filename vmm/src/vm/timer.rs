//! The PIT channel 0 timer thread: turns the PIT model's output edges into
//! IRQ0 at the right host time.
//!
//! The thread sleeps in `epoll` on a `timerfd` (CLOCK_MONOTONIC) armed for the
//! next rising edge of channel 0 ([`crate::devices::pit::Pit::next_irq0_edge`])
//! and on an eventfd doorbell rung when the guest reprograms the PIT, the VM
//! is paused or resumed, or the VM stops. On each wake-up it collects the
//! edges that happened and hands them to the platform, which delivers them
//! one per guest acknowledgement (see [`super::platform::MAX_TICK_BACKLOG`]).
//! The PIT model clamps tiny periods, and all edges that happened while the
//! thread slept are collected in one go, so a guest cannot make the host
//! spin: at most one wake-up per (clamped) PIT period.
use std::os::fd::AsRawFd;
use std::time::Duration;

use vmm_sys_util::epoll::{ControlOperation, Epoll, EpollEvent, EventSet};
use vmm_sys_util::timerfd::TimerFd;

use crate::devices::pit::{Clock, MonotonicClock};

use super::state::Shared;

const TIMER: u64 = 0;
const DOORBELL: u64 = 1;

/// Runs until the VM stops. `clock` must be a clone of the PIT's clock, so
/// that PIT times convert to host deadlines exactly.
pub(crate) fn run(shared: &Shared, clock: MonotonicClock) -> std::io::Result<()> {
    let mut timer = TimerFd::new().map_err(std::io::Error::from)?;
    let epoll = Epoll::new()?;
    epoll.ctl(
        ControlOperation::Add,
        timer.as_raw_fd(),
        EpollEvent::new(EventSet::IN, TIMER),
    )?;
    epoll.ctl(
        ControlOperation::Add,
        shared.timer_wake.as_raw_fd(),
        EpollEvent::new(EventSet::IN, DOORBELL),
    )?;
    let mut events = [EpollEvent::default(); 2];
    loop {
        let next_edge = {
            let mut state = shared.lock();
            if state.exit.is_some() {
                return Ok(());
            }
            let paused = state.paused;
            let pending_before = state.devices.pic.interrupt_pending();
            state.devices.collect_ticks(paused);
            if !pending_before && state.devices.pic.interrupt_pending() {
                shared.wake_vcpu(&state);
            }
            state.devices.next_timer_edge()
        };
        match next_edge {
            // A zero `it_value` would disarm the timer: an edge that is due
            // already fires after 1 ns.
            Some(at) => {
                let delay = at.saturating_sub(clock.now()).max(Duration::from_nanos(1));
                timer.reset(delay, None).map_err(std::io::Error::from)?;
            }
            None => timer.clear().map_err(std::io::Error::from)?,
        }
        let ready = match epoll.wait(-1, &mut events) {
            Ok(ready) => ready,
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(error),
        };
        for event in &events[..ready] {
            match event.data() {
                TIMER => {
                    timer.wait().map_err(std::io::Error::from)?;
                }
                _ => {
                    // Non-blocking: a racing reader may have emptied it.
                    let _ = shared.timer_wake.read();
                }
            }
        }
    }
}
