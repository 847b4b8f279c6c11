//! The guest's in-guest tests (`test=NAME` on the kernel command line), each
//! booted under QEMU (`pc`, TCG): the exit value and the report lines.
mod common;

use std::time::Duration;

use common::guest_tests::{expected_lines, UNKNOWN_TEST, UNKNOWN_TEST_REPORT};
use common::*;
use shared::exit::{self, qemu_exit_status};

/// Boots `test=NAME`; returns QEMU's exit code and the serial output.
fn run_guest_test(name: &str) -> (Option<i32>, String) {
    let mut command = qemu_command("pc", "tcg", guest_elf());
    command
        .arg("-append")
        .arg(format!("{}={name}", shared::boot::TEST_PARAM));
    let mut vm = Machine::spawn(command);
    let status = vm.wait(Duration::from_secs(60));
    (status.code(), vm.stdout.text())
}

/// Boots `test=NAME`; checks it passes and prints its shared expected lines.
fn assert_passes(name: &str) {
    assert_passes_printing(name, expected_lines(name));
}

fn assert_passes_printing(name: &str, must_print: &[&str]) {
    let (code, output) = run_guest_test(name);
    assert_eq!(
        code,
        Some(qemu_exit_status(exit::TEST_PASSED)),
        "test={name} did not pass; output:\n{output}"
    );
    assert!(
        !output.contains("[FAIL]"),
        "test={name} reported a failed check:\n{output}"
    );
    for line in must_print {
        assert!(
            output.contains(line),
            "test={name} did not print {line:?}; output:\n{output}"
        );
    }
}

#[test]
fn boot() {
    // QEMU's TCG offers no TSC frequency in CPUID: the guest times its TSC
    // against PIT channel 2.
    let mut lines = expected_lines("boot").to_vec();
    lines.push(" kHz (calibrated against pit channel 2)");
    assert_passes_printing("boot", &lines);
}

#[test]
fn bootinfo() {
    assert_passes("bootinfo");
}

/// Under TCG here: QEMU with KVM cannot run it on kvm_pvm hosts (KVM's
/// instruction emulator cannot execute `int3` outside real mode); our VMM
/// can (`vmm_guest_tests.rs`).
#[test]
fn breakpoint() {
    assert_passes("breakpoint");
}

#[test]
fn heap() {
    assert_passes("heap");
}

#[test]
fn should_panic() {
    assert_passes("should_panic");
}

#[test]
fn stack_overflow() {
    assert_passes("stack_overflow");
}

#[test]
fn executor() {
    assert_passes("executor");
}

#[test]
fn keyboard() {
    assert_passes("keyboard");
}

#[test]
fn timer() {
    assert_passes("timer");
}

#[test]
fn fault_report_exits_with_cpu_exception() {
    let (code, output) = run_guest_test("fault_report");
    assert_eq!(
        code,
        Some(qemu_exit_status(exit::CPU_EXCEPTION)),
        "output:\n{output}"
    );
    for line in expected_lines("fault_report") {
        assert!(
            output.contains(line),
            "no {line:?} in the report:\n{output}"
        );
    }
}

#[test]
fn unknown_test_name_fails() {
    let (code, output) = run_guest_test(UNKNOWN_TEST);
    assert_eq!(
        code,
        Some(qemu_exit_status(exit::TEST_FAILED)),
        "output:\n{output}"
    );
    assert!(output.contains(UNKNOWN_TEST_REPORT), "output:\n{output}");
}
