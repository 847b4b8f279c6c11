//! The machine driven in-process through `VmHandle`, as the keyboard, script
//! and QMP front ends drive it: the guest shell on real KVM, its timer rate,
//! ticks during a busy loop, pause/resume and shutdown.
mod common;

use std::borrow::Cow;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use common::*;
use shared::{boot, status, time};
use vmm::input::keycodes::us_char;
use vmm::{RunReport, SerialTap, Vm, VmConfig, VmHandle};

/// A running guest: its handle, its serial output, and the thread running it.
struct Guest {
    handle: VmHandle,
    tap: SerialTap,
    mark: usize,
    thread: Option<JoinHandle<RunReport>>,
}

impl Guest {
    /// Boots the embedded guest to its shell prompt.
    fn boot() -> Self {
        require_kvm();
        let config = VmConfig {
            kernel: Cow::Owned(std::fs::read(guest_elf()).unwrap()),
            cmdline: String::new(),
            memory_mib: 128,
            serial_to_stdout: false,
        };
        let vm = Vm::new(&config).expect("build the VM");
        let handle = vm.handle();
        let tap = handle.serial_output();
        let thread = thread::spawn(move || vm.run().expect("run the VM"));
        let mut guest = Guest {
            handle,
            tap,
            mark: 0,
            thread: Some(thread),
        };
        guest.expect(boot::PROMPT, Duration::from_secs(10));
        guest
    }

    /// Waits for `text` after the previous match; returns the output in between.
    fn expect(&mut self, text: &str, timeout: Duration) -> String {
        match self.tap.wait_for(self.mark, text.as_bytes(), timeout) {
            Ok(end) => {
                let seen = self.tap.since(self.mark);
                let upto = (end - self.mark).min(seen.len());
                self.mark = end;
                String::from_utf8_lossy(&seen[..upto]).into_owned()
            }
            Err(tail) => panic!(
                "timed out waiting for {text:?}; output:\n{}",
                String::from_utf8_lossy(&tail)
            ),
        }
    }

    /// Types `text` on the PS/2 keyboard, paced by the guest.
    fn type_text(&self, text: &str) {
        for c in text.chars() {
            let (key, shift) = us_char(c).unwrap_or_else(|| panic!("no key for {c:?}"));
            assert!(!shift, "test text needs no Shift");
            self.handle.key_event(key.set2(), true);
            self.handle.key_event(key.set2(), false);
            let drained = self.handle.wait_input_drained(Duration::from_secs(5));
            assert!(
                drained || self.handle.exit_state().is_some(),
                "guest stopped reading keys"
            );
        }
    }

    /// Runs a shell command and returns its output up to the next prompt.
    fn command(&mut self, line: &str) -> String {
        self.type_text(line);
        self.type_text("\n");
        self.expect(line, Duration::from_secs(5));
        self.expect("\n", Duration::from_secs(5));
        self.expect(boot::PROMPT, Duration::from_secs(30))
    }

    /// The `timer_ticks:` value of `stats`, and when the guest printed it.
    fn ticks(&mut self) -> (u64, Instant) {
        self.type_text("stats\n");
        self.expect("timer_ticks: ", Duration::from_secs(5));
        let value = self.expect("\n", Duration::from_secs(5));
        // The line is waited for, not polled: this is when it was printed,
        // give or take the wake-up latency.
        let at = Instant::now();
        self.expect(boot::PROMPT, Duration::from_secs(5));
        let ticks = value
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("bad timer_ticks {value:?}"));
        (ticks, at)
    }

    /// Waits for the VM to stop and returns its report.
    fn join(&mut self) -> RunReport {
        self.thread.take().unwrap().join().expect("VM thread")
    }
}

impl Drop for Guest {
    fn drop(&mut self) {
        if let Some(thread) = self.thread.take() {
            self.handle.shutdown(status::TIMEOUT);
            let _ = thread.join();
        }
    }
}

#[test]
fn exit_command_sets_the_status() {
    let mut guest = Guest::boot();
    guest.type_text("exit 5\n");
    let report = guest.join();
    assert_eq!(report.exit.status, 5, "{:?}", report.exit);
}

#[test]
fn timer_ticks_at_the_programmed_rate() {
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
    let mut guest = Guest::boot();
    let read = |guest: &mut Guest| -> u64 {
        let output = guest.command("uptime");
        output
            .lines()
            .find_map(|l| {
                l.strip_prefix("uptime: ")?
                    .strip_suffix(" ms")?
                    .parse()
                    .ok()
            })
            .unwrap_or_else(|| panic!("no uptime in {output:?}"))
    };
    let (u0, h0) = (read(&mut guest), Instant::now());
    thread::sleep(Duration::from_millis(500));
    let (u1, h1) = (read(&mut guest), Instant::now());
    let host_ms = (h1 - h0).as_millis() as i64;
    assert!(
        ((u1 - u0) as i64 - host_ms).abs() < 50,
        "guest {} ms vs host {host_ms} ms",
        u1 - u0
    );
}

#[test]
fn pause_stops_the_guest_and_resume_continues() {
    let mut guest = Guest::boot();
    guest.handle.pause();
    assert!(guest.handle.is_paused());
    let mark = guest.tap.mark();
    guest.handle.key_event(us_char('x').unwrap().0.set2(), true);
    guest
        .handle
        .key_event(us_char('x').unwrap().0.set2(), false);
    // A paused guest reads no keys and echoes nothing.
    assert!(!guest.handle.wait_input_drained(Duration::from_millis(300)));
    assert_eq!(guest.tap.mark(), mark);
    guest.handle.resume();
    assert!(!guest.handle.is_paused());
    assert!(guest.handle.wait_input_drained(Duration::from_secs(5)));
    guest.expect("x", Duration::from_secs(5));
    guest.type_text("\n");
    guest.expect(boot::PROMPT, Duration::from_secs(5));
    assert!(guest.ticks().0 > 0);
}

#[test]
fn shutdown_stops_a_running_guest() {
    let mut guest = Guest::boot();
    let waiter = guest.handle.clone();
    let observer = thread::spawn(move || waiter.wait_exit());
    guest.handle.shutdown(77);
    let report = guest.join();
    assert_eq!(report.exit.status, 77);
    assert_eq!(observer.join().unwrap().status, 77);
    assert_eq!(guest.handle.exit_state().map(|e| e.status), Some(77));
}
