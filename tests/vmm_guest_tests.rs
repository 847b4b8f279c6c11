//! The guest's in-guest tests (`test=NAME` on the kernel command line), each
//! booted in our VMM on real KVM: `vmm --cmdline test=NAME --timeout N`, the
//! exit status (the value the guest wrote to the debug-exit port) and the
//! report lines. The same tests run under QEMU (`pc`, TCG) in
//! `qemu_guest_tests.rs`.
//!
//! `test=breakpoint` runs here too. On this project's CI hosts KVM is
//! `kvm_pvm`, which runs every instruction of a guest kernel that is not
//! PVM-enlightened through KVM's instruction emulator, and that emulator
//! cannot execute `int3` (or `int n`, `into`) outside real mode
//! (`emulate_int()` returns `X86EMUL_UNHANDLEABLE`): QEMU with KVM stops
//! there ("emulation failure"). Our VMM completes the instruction itself
//! (`vmm/src/vm/complete.rs`: RIP past it, #BP queued with
//! `KVM_SET_VCPU_EVENTS`), so the guest's handler runs and returns.
mod common;

use std::process::Command;
use std::time::Duration;

use common::guest_tests::{expected_lines, UNKNOWN_TEST, UNKNOWN_TEST_REPORT};
use common::*;
use shared::exit;

/// Guest-side limit, in seconds (`--timeout`: status 124 when it fires).
/// Every test takes under 2 s alone on the CI machine kind; the margin is for
/// tests running in parallel on two CPUs of an emulating KVM.
const GUEST_TIMEOUT_SECS: u64 = 60;

/// Boots `test=NAME`; returns the VMM's exit code, stdout (the guest's
/// serial output) and stderr (the VMM's messages).
fn run_guest_test(name: &str) -> (Option<i32>, String, String) {
    require_kvm();
    let mut command = Command::new(vmm_binary());
    command
        .arg("--no-interactive")
        .arg("--cmdline")
        .arg(format!("{}={name}", shared::boot::TEST_PARAM))
        .arg("--timeout")
        .arg(GUEST_TIMEOUT_SECS.to_string());
    let mut vm = Machine::spawn(command);
    let status = vm.wait(Duration::from_secs(GUEST_TIMEOUT_SECS + 30));
    (status.code(), vm.stdout.text(), vm.stderr.text())
}

fn assert_exits_with(name: &str, expected: u8, must_print: &[&str]) -> String {
    let (code, output, messages) = run_guest_test(name);
    let context = format!("output:\n{output}\nVMM messages:\n{messages}");
    assert_eq!(
        code,
        Some(i32::from(expected)),
        "test={name}: wrong exit status; {context}"
    );
    assert!(
        !output.contains("[FAIL]"),
        "test={name} reported a failed check; {context}"
    );
    for line in must_print {
        assert!(
            output.contains(line),
            "test={name} did not print {line:?}; {context}"
        );
    }
    output
}

/// Boots `test=NAME`; checks it passes and prints its shared expected lines.
fn assert_passes(name: &str) {
    assert_exits_with(name, exit::TEST_PASSED, expected_lines(name));
}

#[test]
fn boot() {
    // Our VMM states the TSC frequency in the hypervisor leaf 0x40000010.
    let mut lines = expected_lines("boot").to_vec();
    lines.push(" kHz (cpuid 0x40000010)");
    assert_exits_with("boot", exit::TEST_PASSED, &lines);
}

#[test]
fn bootinfo() {
    assert_passes("bootinfo");
}

#[test]
fn breakpoint() {
    let output = assert_exits_with(
        "breakpoint",
        exit::TEST_PASSED,
        expected_lines("breakpoint"),
    );
    assert_eq!(
        output.matches("EXCEPTION: breakpoint").count(),
        2,
        "{output}"
    );
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
    assert_exits_with(
        "fault_report",
        exit::CPU_EXCEPTION,
        expected_lines("fault_report"),
    );
}

#[test]
fn unknown_test_name_fails() {
    assert_exits_with(UNKNOWN_TEST, exit::TEST_FAILED, &[UNKNOWN_TEST_REPORT]);
}
