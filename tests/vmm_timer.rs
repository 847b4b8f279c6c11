//! Guest time on our VMM: the PIT's IRQ0 rate, ticks during a busy loop, and
//! uptime against host time. In a test binary of their own, so that no other
//! guest competes for the host CPUs while they measure.
mod common;

use std::sync::{Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use common::guest::Guest;
use shared::time;

/// Runs the measurements one at a time (cargo runs a binary's tests in
/// parallel): a busy guest next door would skew them.
fn alone() -> MutexGuard<'static, ()> {
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
    ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(|poison| poison.into_inner())
}

#[test]
fn timer_ticks_at_the_programmed_rate() {
    let _alone = alone();
    let mut guest = Guest::boot();
    let (t0, h0) = guest.ticks();
    thread::sleep(Duration::from_secs(2)); // the measurement window
    let (t1, h1) = guest.ticks();
    let expected_hz = time::PIT_FREQUENCY_HZ as f64 / f64::from(time::TIMER_RELOAD);
    let rate = (t1 - t0) as f64 / (h1 - h0).as_secs_f64();
    eprintln!("guest timer: {rate:.1} Hz (expected {expected_hz:.1} Hz)");
    assert!(
        (rate / expected_hz - 1.0).abs() < 0.01,
        "rate {rate:.1} Hz, expected {expected_hz:.1} Hz"
    );
}

#[test]
fn ticks_arrive_while_the_guest_spins() {
    let _alone = alone();
    let mut guest = Guest::boot();
    let (before, _) = guest.ticks();
    let started = Instant::now();
    guest.command("spin 300");
    let spun = started.elapsed();
    let (after, _) = guest.ticks();
    assert!(
        spun >= Duration::from_millis(300),
        "spin returned after {spun:?}"
    );
    assert!(
        after - before >= 300,
        "only {} ticks across spin 300",
        after - before
    );
}

#[test]
fn uptime_follows_host_time() {
    let _alone = alone();
    let mut guest = Guest::boot();
    let (u0, s0, r0) = guest.uptime();
    thread::sleep(Duration::from_secs(3));
    let (u1, s1, r1) = guest.uptime();
    // Each reading happened between its two host timestamps, so the guest's
    // elapsed time must lie in [s1 - r0, r1 - s0]; one more millisecond each
    // side for the guest's rounding down to whole milliseconds and ticks.
    // The window is only as wide as Enter and the answer take (a few ms), so
    // this checks the uptime to the millisecond over seconds. (Each reading
    // is taken once the guest has its owed ticks: while it is busy with
    // interrupts off its tick clock runs behind by the ticks the VMM still
    // owes it, a few ms here, until it takes them.)
    let guest_ms = u1 - u0;
    let earliest = (s1 - r0).as_millis() as u64 - 1;
    let latest = (r1 - s0).as_millis() as u64 + 1;
    eprintln!("guest {guest_ms} ms; host window [{earliest}, {latest}] ms");
    assert!(
        (earliest..=latest).contains(&guest_ms),
        "guest uptime advanced {guest_ms} ms; the host says between {earliest} and {latest} ms"
    );
}
