//! The shared keystroke scripts (`tests/scripts/*.keys`) run in our VMM
//! (`vmm --keys FILE`) and in QEMU (the same guest ELF, the same script run
//! by `vmm keys` through QEMU's QMP socket, COM1 in a file); the serial
//! transcripts must match once timing-dependent numbers are masked. Plus
//! the no-key-lost check: 20,000 characters in one `type` line.
mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::keys::{Serial, Target};
use common::*;
use shared::exit::qemu_exit_status;

fn script_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/scripts")
        .join(name)
}

/// The transcript from the first prompt on, with `\r` removed and every run
/// of digits replaced by `N` (uptime, stats and task counts vary).
fn normalise(text: &str) -> Vec<String> {
    let start = text.find(shared::boot::PROMPT).unwrap_or(text.len());
    let mut out = Vec::new();
    for line in text[start..].replace('\r', "").lines() {
        let mut masked = String::new();
        let mut in_digits = false;
        for c in line.chars() {
            if c.is_ascii_digit() {
                if !in_digits {
                    masked.push('N');
                }
                in_digits = true;
            } else {
                masked.push(c);
                in_digits = false;
            }
        }
        out.push(masked);
    }
    out
}

/// Runs the script in our VMM; returns the exit status and serial output.
fn run_vmm(path: &Path, timeout_secs: u64) -> (i32, String, Duration) {
    require_kvm();
    let start = Instant::now();
    let mut command = Command::new(vmm_binary());
    command
        .arg("--keys")
        .arg(path)
        .arg("--timeout")
        .arg(timeout_secs.to_string());
    let mut vm = Machine::spawn(command);
    let status = vm.wait(Duration::from_secs(timeout_secs + 30));
    let elapsed = start.elapsed();
    let code = status.code().unwrap_or(-1);
    assert!(
        vm.stderr.text().trim().is_empty() || code != shared::status::EXPECT_FAILED,
        "{}: an expect failed in our VMM:\n{}",
        path.display(),
        vm.stderr.text()
    );
    (code, vm.stdout.text(), elapsed)
}

/// Runs the same script in QEMU (pc, TCG) with `vmm keys`.
fn run_qemu(path: &Path) -> (i32, String, Duration) {
    let start = Instant::now();
    let mut qemu = Target::qemu(Serial::File);
    let (status, stderr) = qemu.keys(path, &[]);
    assert_eq!(
        status,
        0,
        "vmm keys failed in QEMU: {stderr}\nQEMU's output:\n{}",
        qemu.transcript()
    );
    let exit = qemu.vm.wait(Duration::from_secs(60));
    (
        exit.code().unwrap_or(-1),
        qemu.transcript(),
        start.elapsed(),
    )
}

/// Runs `name` in both machines and compares.
fn same_in_vmm_and_qemu(name: &str, exit_value: u8) {
    let path = script_path(name);
    let (ours_status, ours, ours_time) = run_vmm(&path, 60);
    let (qemu_status, theirs, qemu_time) = run_qemu(&path);
    eprintln!("{name}: our VMM {ours_time:?}, QEMU {qemu_time:?}");
    assert_eq!(
        ours_status,
        i32::from(exit_value),
        "our VMM's exit status; output:\n{ours}"
    );
    assert_eq!(
        qemu_status,
        qemu_exit_status(exit_value),
        "QEMU's exit status; output:\n{theirs}"
    );
    let (a, b) = (normalise(&ours), normalise(&theirs));
    assert!(a.len() > 2, "transcript too short:\n{ours}");
    assert_eq!(
        a, b,
        "transcripts differ\n--- our VMM:\n{ours}\n--- QEMU:\n{theirs}"
    );
}

#[test]
fn shift_and_symbols() {
    same_in_vmm_and_qemu("shift_symbols.keys", 3);
}

#[test]
fn backspace_ctrl_c_and_ignored_keys() {
    same_in_vmm_and_qemu("editing.keys", 4);
}

#[test]
fn caps_lock() {
    same_in_vmm_and_qemu("caps_lock.keys", 5);
}

#[test]
fn arrows_and_function_keys_are_ignored() {
    same_in_vmm_and_qemu("arrows.keys", 6);
}

#[test]
fn timers_fire_while_the_shell_serves_commands() {
    same_in_vmm_and_qemu("timer.keys", 7);
}

#[test]
fn keys_typed_during_sleep_and_spin_are_kept() {
    same_in_vmm_and_qemu("sleep_spin.keys", 8);
}

#[test]
fn normalise_masks_numbers_and_skips_boot_lines() {
    assert_eq!(
        normalise("memory: 127 MiB\r\n> uptime\r\nuptime: 1234 ms\r\n> "),
        ["> uptime", "uptime: N ms", "> "]
    );
}

/// Reads the `scancodes:` and `scancodes_dropped:` values of the last `stats`.
fn last_stats(text: &str) -> (u64, u64) {
    let value = |key: &str| {
        text.rmatch_indices(key)
            .next()
            .and_then(|(i, _)| {
                text[i + key.len()..]
                    .split_whitespace()
                    .next()
                    .and_then(|v| v.parse().ok())
            })
            .unwrap_or_else(|| panic!("no {key} in output:\n{text}"))
    };
    (value("\nscancodes: "), value("\nscancodes_dropped: "))
}

/// 20,000 characters in one `type` line reach the guest: every scancode
/// received, none dropped.
#[test]
fn twenty_thousand_characters_no_key_lost() {
    require_kvm();
    const N: usize = 20_000;
    // Enter stays down until `stats` has printed, so its break code is
    // certainly counted by the next `stats`, not this one.
    const STATS: &str = "type stats\npress ret\nexpect halts:\nrelease ret\nexpect \"> \"\n";
    let line: String = (0..N).map(|i| (b'a' + (i % 26) as u8) as char).collect();
    let script = format!(
        "expect \"> \"\n{STATS}type {line}\\n\nexpect \"unknown command: \"\nexpect \"> \"\n{STATS}type exit 9\\n\n"
    );
    let path = scratch_path("twenty-thousand.keys");
    std::fs::write(&path, script).unwrap();
    let start = Instant::now();
    // About 3 ms per character here (exit-bound), more when the CI machine's
    // two CPUs are shared with the other tests.
    let (status, output, _) = run_vmm(&path, 300);
    let elapsed = start.elapsed();
    assert_eq!(
        status,
        9,
        "output tail:\n{}",
        &output[output.len().saturating_sub(2000)..]
    );
    let before_end = output.rfind("> stats").unwrap();
    let (before, _) = last_stats(&output[..before_end]);
    let (after, dropped) = last_stats(&output);
    // Between the two reads: the first Enter's break, the line and its
    // Enter, `stats` and the second Enter's make; 2 bytes (make, break) per key.
    let expected = 1 + 2 * (N as u64 + 1 + 5) + 1;
    assert_eq!(after - before, expected, "scancodes received");
    assert_eq!(dropped, 0, "scancodes dropped");
    let rate = (N as f64 * 2.0) / elapsed.as_secs_f64();
    eprintln!("20,000 characters in {elapsed:?} (whole run): {rate:.0} scancodes/s");
}
