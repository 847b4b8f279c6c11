//! Soak tests: the VMM binary (under its seccomp filter, the default) kept
//! busy for a long time, its memory sampled from `/proc/PID/status`.
//!
//! - keystrokes: lines of letters typed by a `--keys` script into the
//!   guest's shell, every scancode counted by the guest's `stats` (none
//!   lost, none dropped) while the VMM's resident set stays flat. The
//!   default suite types 20,000 keys; the full soak one million.
//! - idle plus timers: the guest at its prompt for ten minutes, with `timer`
//!   and `sleep` commands now and then over QMP; its `uptime` must follow
//!   the host's clock within 0.1 % and memory stay flat.
//!
//! The full soak (about an hour here): `cargo test --release --test soak -- --ignored --nocapture`.
mod common;

use std::path::Path;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use common::qmp::Qmp;
use common::*;

/// Letters per typed line: the guest's line editor keeps 4096 bytes, and
/// each line is abandoned with Ctrl+C, so lines stay well under that.
const LINE: usize = 1000;

/// Scancode bytes (scan code set 1, as the guest reads them through the
/// i8042's translation) per typed line: a make and a break per letter, and
/// Ctrl+C (Ctrl make, C make, C break, Ctrl break).
const BYTES_PER_LINE: u64 = 2 * LINE as u64 + 4;

/// How much the VMM's resident set may grow after the warm-up: the serial
/// tap keeps the last 1 MiB of output (`SerialTap::CAPACITY`), which fills
/// up during the run as the guest echoes every letter, plus 1 MiB for the
/// allocator's slack. A leak of even a few bytes per key in the million-key
/// run exceeds it.
const RSS_GROWTH_LIMIT_KIB: u64 = 2048;

/// `VmRSS` of process `pid` in KiB, or `None` once it is gone.
fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
}

/// Resident-set samples of a process, one per `period`, with when each was taken.
struct RssSamples {
    samples: Vec<(Duration, u64)>,
}

impl RssSamples {
    /// The largest sample taken at or after `from` (since the start).
    fn max_from(&self, from: Duration) -> u64 {
        self.samples
            .iter()
            .filter(|(at, _)| *at >= from)
            .map(|(_, kib)| *kib)
            .max()
            .unwrap_or(0)
    }

    /// The first sample taken at or after `at`.
    fn at(&self, at: Duration) -> u64 {
        self.samples
            .iter()
            .find(|(when, _)| *when >= at)
            .map(|(_, kib)| *kib)
            .unwrap_or_else(|| panic!("no RSS sample after {at:?}"))
    }

    /// Asserts that after the first `warm_up` of `total`, the resident set
    /// never rose more than [`RSS_GROWTH_LIMIT_KIB`] above its value then;
    /// prints the figures.
    fn assert_flat(&self, what: &str, warm_up: Duration) {
        let start = self.at(warm_up);
        let peak = self.max_from(warm_up);
        let last = self.samples.last().map(|(_, kib)| *kib).unwrap_or(0);
        eprintln!(
            "{what}: VmRSS {start} KiB after the warm-up ({warm_up:?}), peak {peak} KiB, last {last} KiB, {} samples",
            self.samples.len()
        );
        assert!(
            peak <= start + RSS_GROWTH_LIMIT_KIB,
            "{what}: VmRSS grew from {start} KiB to {peak} KiB (limit +{RSS_GROWTH_LIMIT_KIB} KiB)"
        );
    }
}

/// Samples the resident set of `machine`'s process once per `period` until
/// it exits or `timeout` passes (then it is killed and the test fails).
fn watch(machine: &mut Machine, period: Duration, timeout: Duration) -> (i32, RssSamples) {
    let pid = machine.child.id();
    let start = Instant::now();
    let mut samples = Vec::new();
    loop {
        if let Some(status) = machine.child.try_wait().expect("try_wait") {
            machine.stdout.wait_closed(Duration::from_secs(5));
            machine.stderr.wait_closed(Duration::from_secs(5));
            return (status.code().unwrap_or(-1), RssSamples { samples });
        }
        if start.elapsed() > timeout {
            let _ = machine.child.kill();
            panic!(
                "the VMM did not finish within {timeout:?}; stderr:\n{}",
                machine.stderr.text()
            );
        }
        if let Some(kib) = rss_kib(pid) {
            samples.push((start.elapsed(), kib));
        }
        thread::sleep(period);
    }
}

/// Reads `key`'s value in the last `stats` of `text` before `end`.
fn stat(text: &str, key: &str) -> u64 {
    let needle = format!("\n{key}: ");
    text.rmatch_indices(&needle)
        .next()
        .and_then(|(i, _)| {
            text[i + needle.len()..]
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("no {key} in the output"))
}

/// Types `lines` lines of [`LINE`] letters, each abandoned with Ctrl+C,
/// between two `stats`; checks the guest counted every scancode and dropped
/// none, and that the VMM's memory stayed flat.
fn keystroke_soak(lines: usize, timeout: Duration) {
    require_kvm();
    // Enter stays down until `stats` has printed, so its break code is
    // certainly counted by the next `stats`, not this one.
    const STATS: &str = "type stats\npress ret\nexpect halts:\nrelease ret\nexpect \"> \"\n";
    let mut script = format!("expect \"> \"\n{STATS}");
    for n in 0..lines {
        let line: String = (0..LINE)
            .map(|i| (b'a' + ((i + n) % 26) as u8) as char)
            .collect();
        script.push_str(&format!("type {line}\nkey ctrl-c\n"));
    }
    script.push_str(&format!("{STATS}type exit 9\\n\n"));
    let path = scratch_path("soak.keys");
    std::fs::write(&path, script).unwrap();

    let mut command = Command::new(vmm_binary());
    command.arg("--keys").arg(&path);
    command.arg("--timeout").arg(timeout.as_secs().to_string());
    let start = Instant::now();
    let mut vm = Machine::spawn(command);
    let (status, rss) = watch(
        &mut vm,
        Duration::from_millis(500),
        timeout + Duration::from_secs(30),
    );
    let elapsed = start.elapsed();
    let output = vm.stdout.text();
    assert_eq!(
        status,
        9,
        "stderr:\n{}\noutput tail:\n{}",
        vm.stderr.text(),
        &output[output.len().saturating_sub(2000)..]
    );
    let before_end = output.rfind("> stats").unwrap();
    let before = stat(&output[..before_end], "scancodes");
    let after = stat(&output, "scancodes");
    let dropped = stat(&output, "scancodes_dropped");
    // Between the two reads: the first Enter's break, the lines, `stats`
    // (5 keys) and the second Enter's make.
    let expected = 1 + lines as u64 * BYTES_PER_LINE + 2 * 5 + 1;
    let keys = lines * (LINE + 1);
    eprintln!(
        "{keys} keystrokes ({} scancodes) in {elapsed:?}: {:.0} keys/s",
        after - before,
        keys as f64 / elapsed.as_secs_f64()
    );
    assert_eq!(after - before, expected, "scancodes received");
    assert_eq!(dropped, 0, "scancodes dropped");
    // Warm-up: the first tenth of the run (boot, first lines).
    rss.assert_flat("keystroke soak", elapsed / 10);
}

/// 20,000 keys (20 lines of 1000 letters and Ctrl+C): a short soak for the
/// default suite.
#[test]
fn twenty_thousand_keystrokes_none_lost_memory_flat() {
    keystroke_soak(20, Duration::from_secs(600));
}

/// One million keys (1000 lines of 1000 letters and Ctrl+C): the full soak.
#[test]
#[ignore = "the full soak, about an hour: cargo test --release --test soak -- --ignored"]
fn one_million_keystrokes_none_lost_memory_flat() {
    keystroke_soak(1000, Duration::from_secs(4 * 3600));
}

/// Runs one shell command over QMP and returns the output up to the prompt.
fn shell(qmp: &mut Qmp, output: &Output, line: &str) -> String {
    let from = output.len();
    qmp.type_text(line);
    qmp.type_text("\n");
    let end = output
        .wait_for(from, b"\r\n> ", Duration::from_secs(30))
        .unwrap_or_else(|tail| {
            panic!(
                "no prompt after {line:?}: {}",
                String::from_utf8_lossy(&tail)
            )
        });
    let text = output.text();
    text[from..end].to_string()
}

/// The guest's `uptime` in ms, and the host instant halfway between
/// pressing Enter and the answer.
fn uptime(qmp: &mut Qmp, output: &Output) -> (u64, Instant) {
    qmp.type_text("uptime");
    let from = output.len();
    let before = Instant::now();
    qmp.type_text("\n");
    let end = output
        .wait_for(from, b" ms", Duration::from_secs(30))
        .expect("uptime answer");
    let after = Instant::now();
    let text = output.text();
    let ms = text[from..end]
        .rsplit("uptime: ")
        .next()
        .and_then(|rest| rest.trim_end_matches(" ms").trim().parse().ok())
        .unwrap_or_else(|| panic!("bad uptime answer {:?}", &text[from..end]));
    output
        .wait_for(end, b"> ", Duration::from_secs(30))
        .expect("prompt");
    (ms, before + (after - before) / 2)
}

/// The guest idles at its prompt for `duration`, with a `timer` and a
/// `sleep` every `every`; its uptime follows the host's clock within 0.1 %
/// and the VMM's memory stays flat.
fn idle_soak(duration: Duration, every: Duration) {
    require_kvm();
    let socket = scratch_path("soak-qmp.sock");
    let mut command = Command::new(vmm_binary());
    command
        .arg("--qmp")
        .arg(format!("unix:{}", socket.display()))
        .arg("--no-interactive")
        .arg("--timeout")
        .arg((duration + Duration::from_secs(300)).as_secs().to_string());
    let mut vm = Machine::spawn(command);
    let output = vm.stdout.clone();
    output
        .wait_for(0, b"> ", Duration::from_secs(30))
        .expect("the prompt");
    let mut qmp = Qmp::connect(Path::new(&socket), Duration::from_secs(10));
    qmp.hold_time_ms = 0;
    let pid = vm.child.id();
    let (guest_start, host_start) = uptime(&mut qmp, &output);
    let mut samples = Vec::new();
    let mut round = 0;
    while host_start.elapsed() < duration {
        round += 1;
        let text = format!("soak-timer-{round}");
        let from = output.len();
        shell(&mut qmp, &output, &format!("timer 300 {text}"));
        let slept = Instant::now();
        shell(&mut qmp, &output, "sleep 500");
        let sleep = slept.elapsed();
        assert!(
            sleep >= Duration::from_millis(500),
            "sleep 500 took {sleep:?}"
        );
        output
            .wait_for(from, text.as_bytes(), Duration::from_secs(10))
            .unwrap_or_else(|_| panic!("timer {round} never fired"));
        let idle_until = Instant::now() + every;
        while Instant::now() < idle_until {
            if let Some(kib) = rss_kib(pid) {
                samples.push((host_start.elapsed(), kib));
            }
            thread::sleep(Duration::from_secs(1));
        }
    }
    let (guest_end, host_end) = uptime(&mut qmp, &output);
    let host_ms = (host_end - host_start).as_secs_f64() * 1000.0;
    let guest_ms = (guest_end - guest_start) as f64;
    let drift = (guest_ms - host_ms) / host_ms;
    eprintln!(
        "idle soak: {round} timer+sleep rounds; guest {guest_ms:.0} ms, host {host_ms:.1} ms: drift {:+.4} %",
        drift * 100.0
    );
    shell(&mut qmp, &output, "stats");
    qmp.type_text("exit 5\n");
    let status = vm.wait(Duration::from_secs(30));
    assert_eq!(status.code(), Some(5), "stderr:\n{}", vm.stderr.text());
    assert!(
        drift.abs() < 0.001,
        "guest uptime drifted {:+.4} % from the host clock",
        drift * 100.0
    );
    RssSamples { samples }.assert_flat("idle soak", duration / 10);
}

/// Ten minutes idle at the prompt with timers: the full soak.
#[test]
#[ignore = "the full soak, ten minutes: cargo test --release --test soak -- --ignored"]
fn ten_minutes_idle_with_timers_no_drift_memory_flat() {
    idle_soak(Duration::from_secs(600), Duration::from_secs(20));
}
