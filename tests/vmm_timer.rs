//! Guest time on our VMM: the tickless timer (no timer interrupt while
//! nothing waits, one-shots re-armed while a timer is pending, also during
//! a busy loop), `sleep` against the guest's and the host's clocks, and
//! uptime against host time. In a test binary of their own, so that no
//! other guest competes for the host CPUs while they measure.
mod common;

use std::sync::{Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use common::guest::Guest;
use shared::boot;

/// Runs the measurements one at a time (cargo runs a binary's tests in
/// parallel): a busy guest next door would skew them.
fn alone() -> MutexGuard<'static, ()> {
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
    ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(|poison| poison.into_inner())
}

/// The longest PIT one-shot the guest arms: 65535 clocks of 1.193182 MHz.
const MAX_SHOT: Duration = Duration::from_nanos(54_925_416);

#[test]
fn an_idle_guest_takes_no_timer_interrupts() {
    let _alone = alone();
    let mut guest = Guest::boot();
    let (t0, h0) = guest.ticks();
    thread::sleep(Duration::from_secs(2)); // the idle window
    let (t1, h1) = guest.ticks();
    let taken = t1 - t0;
    eprintln!(
        "timer interrupts over {:?} idle at the prompt: {taken}",
        h1 - h0
    );
    // A command arms no timer; what a periodic tick would give is 2000.
    assert!(
        taken <= 2,
        "{taken} timer interrupts in 2 s with no timer pending"
    );
}

#[test]
fn sleep_1000_lasts_1000_ms() {
    let _alone = alone();
    let mut guest = Guest::boot();
    let (u0, s0, r0) = guest.uptime();
    guest.type_text("sleep 1000");
    guest.expect("sleep 1000", Duration::from_secs(5));
    let entered = Instant::now();
    guest.type_text("\n");
    guest.expect("\n", Duration::from_secs(5));
    guest.expect(boot::PROMPT, Duration::from_secs(5));
    let host = entered.elapsed();
    let (u1, s1, r1) = guest.uptime();
    // The host sees the prompt after the sleep plus the guest's work for
    // Enter and the prompt (emulated: a few ms) and its own latency.
    eprintln!("sleep 1000: {host:?} from Enter to the prompt (host)");
    assert!(
        host >= Duration::from_millis(1000) && host < Duration::from_millis(1100),
        "sleep 1000 took {host:?} by the host's clock"
    );
    // The guest's clock across it agrees with the host to the millisecond
    // (the window arithmetic of `uptime_follows_host_time`), and covers
    // the whole sleep.
    let guest_ms = u1 - u0;
    let earliest = (s1 - r0).as_millis() as u64 - 1;
    let latest = (r1 - s0).as_millis() as u64 + 1;
    eprintln!("guest {guest_ms} ms across the sleep; host window [{earliest}, {latest}] ms");
    assert!(
        guest_ms >= 1000 && (earliest..=latest).contains(&guest_ms),
        "guest uptime advanced {guest_ms} ms across sleep 1000; the host says between {earliest} and {latest} ms"
    );
}

#[test]
fn timer_interrupts_arrive_while_the_guest_spins() {
    let _alone = alone();
    let mut guest = Guest::boot();
    // A timer far out keeps one-shots coming, each at most 54.9 ms long.
    guest.command("timer 60000 much later");
    let (before, h0) = guest.ticks();
    let started = Instant::now();
    guest.command("spin 1000");
    let spun = started.elapsed();
    let (after, h1) = guest.ticks();
    let taken = after - before;
    assert!(
        spun >= Duration::from_millis(1000),
        "spin returned after {spun:?}"
    );
    // The spin alone lasts 18.2 capped shots; each shot is re-armed by the
    // interrupt handler after the last one's delivery, so a slow delivery
    // stretches it a little. Many more would be a tick storm.
    let window = h1 - h0;
    let most = (window.as_secs_f64() / MAX_SHOT.as_secs_f64()).ceil() as u64 + 2;
    eprintln!("{taken} timer interrupts over {window:?}, spin 1000 included");
    assert!(
        (15..=most).contains(&taken),
        "{taken} timer interrupts across spin 1000 (window {window:?}, at most {most})"
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
    // side for the guest's rounding down to whole milliseconds. The window
    // is only as wide as Enter and the answer take (a few ms), so this
    // checks the uptime to the millisecond over seconds.
    let guest_ms = u1 - u0;
    let earliest = (s1 - r0).as_millis() as u64 - 1;
    let latest = (r1 - s0).as_millis() as u64 + 1;
    eprintln!("guest {guest_ms} ms; host window [{earliest}, {latest}] ms");
    assert!(
        (earliest..=latest).contains(&guest_ms),
        "guest uptime advanced {guest_ms} ms; the host says between {earliest} and {latest} ms"
    );
}

/// A `timer`'s delay counts from its command, not from when its task first
/// runs: with `run=` lines the shell goes on to the next line at once, and
/// here that line busy-waits 250 ms. The 300 ms timer must still fire
/// during the following 100 ms sleep (ending at about 350 ms), not 300 ms
/// after the busy wait (about 550 ms, after the sleep and its `uptime`).
#[test]
fn a_timer_counts_from_its_command() {
    let _alone = alone();
    let output = std::process::Command::new(common::vmm_binary())
        .args([
            "--cmdline",
            "run=timer 300 fired; spin 250; sleep 100; echo slept; sleep 400; exit 0",
            "--timeout",
            "20",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    let fired = stdout.find("\nfired").expect("the timer fired");
    let slept = stdout.find("\nslept").expect("the sleep ended");
    assert!(fired < slept, "the timer fired after the sleep:\n{stdout}");
}
