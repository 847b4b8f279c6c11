//! Time as a service of the machine: any device may have a next deadline
//! ([`crate::device::PortDevice::next_deadline`]); this thread sleeps until
//! the earliest one and lets the devices act on what happened by then
//! ([`super::platform::Platform::advance_time`]). PIT channel 0 is one user
//! of it (its edges become IRQ0 ticks, delivered one per guest
//! acknowledgement, see [`super::platform::MAX_TICK_BACKLOG`]), the RTC
//! another.
//!
//! The thread sleeps in `epoll` on a `timerfd` (CLOCK_MONOTONIC) armed for
//! exactly the earliest deadline, and on an eventfd doorbell rung when a
//! guest access moved a deadline, the VM is paused or resumed, or it stops.
//! No deadline, no wake-up: the thread never wakes periodically on its own.
//! Devices clamp their periods (the PIT's shortest is
//! [`crate::devices::pit::MIN_IRQ0_PERIOD`]) and report everything that
//! happened while the thread slept in one go, so a guest cannot make the
//! host spin: at most one wake-up per (clamped) device period.
use std::os::fd::AsRawFd;
use std::time::Duration;

use vmm_sys_util::epoll::{ControlOperation, Epoll, EpollEvent, EventSet};
use vmm_sys_util::timerfd::TimerFd;

use crate::clock::{Clock, MonotonicClock};

use super::state::Shared;

const TIMER: u64 = 0;
const DOORBELL: u64 = 1;

/// Runs until the VM stops. `clock` must be a clone of the devices' clock,
/// so that their deadlines convert to host times exactly.
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
    crate::sandbox::confine_or_exit(crate::sandbox::Role::TimeService);
    loop {
        let next_deadline = {
            let mut state = shared.lock();
            if state.run.stopped() {
                return Ok(());
            }
            let paused = state.run.paused;
            let pending_before = state.platform.interrupt_pending();
            let change = state.platform.advance_time(paused);
            if !pending_before && state.platform.interrupt_pending() {
                shared.wake_vcpu(&state.run);
            }
            if change.input_consumed {
                shared.events.notify_all();
            }
            state.platform.next_deadline()
        };
        match next_deadline {
            // A zero `it_value` would disarm the timer: a deadline that is
            // due already fires after 1 ns.
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
