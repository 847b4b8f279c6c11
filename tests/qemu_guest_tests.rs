//! The guest's in-guest tests (`test=NAME` on the kernel command line), each
//! booted under QEMU (`pc`, TCG): the exit value and the report lines.
mod common;

use std::time::Duration;

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

fn assert_passes(name: &str, must_print: &[&str]) {
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
    assert_passes(
        "boot",
        &[
            "[ok] page 0 is unmapped",
            "[ok] stack guard page is unmapped",
            "[info] timer interrupts advance the clock",
            "test boot: passed",
        ],
    );
}

#[test]
fn bootinfo() {
    assert_passes(
        "bootinfo",
        &[
            "[ok] a wrong magic is rejected",
            "[ok] heap above the kernel end, capped",
            "test bootinfo: passed",
        ],
    );
}

/// TCG only, here and in `vmm_guest_tests.rs`: under kvm_pvm, KVM's
/// instruction emulator runs this guest and cannot execute `int3` outside
/// real mode (see `guest/README.md`, "Under kvm_pvm").
#[test]
fn breakpoint() {
    assert_passes(
        "breakpoint",
        &[
            "EXCEPTION: breakpoint at rip=0x",
            "[ok] a second int3 is reported too",
        ],
    );
}

#[test]
fn heap() {
    assert_passes(
        "heap",
        &[
            "[ok] freed memory is reused",
            "[ok] everything freed",
            "test heap: passed",
        ],
    );
}

#[test]
fn should_panic() {
    assert_passes(
        "should_panic",
        &["[test] panicked as expected: index out of bounds"],
    );
}

#[test]
fn stack_overflow() {
    assert_passes(
        "stack_overflow",
        &[
            "EXCEPTION: double fault (#DF)",
            "[test] double fault handled on the IST stack: true; faulting rsp",
            "at the stack guard page",
        ],
    );
}

#[test]
fn executor() {
    assert_passes(
        "executor",
        &[
            "[ok] 10000 wakes before the first poll leave one queue entry",
            "[ok] a wake during the task's own poll queues it again",
            "[ok] task spawned from a task spawned from a task ran",
            "[ok] idle executor halted",
            "test executor: passed",
        ],
    );
}

#[test]
fn keyboard() {
    assert_passes(
        "keyboard",
        &[
            "[ok] left Ctrl+C is an interrupt",
            "[ok] a full queue drops and counts",
            "test keyboard: passed",
        ],
    );
}

#[test]
fn timer() {
    assert_passes(
        "timer",
        &["[ok] timers fired in deadline order", "test timer: passed"],
    );
}

#[test]
fn fault_report_exits_with_cpu_exception() {
    let (code, output) = run_guest_test("fault_report");
    assert_eq!(
        code,
        Some(qemu_exit_status(exit::CPU_EXCEPTION)),
        "output:\n{output}"
    );
    for line in [
        "EXCEPTION: page fault (#PF) (vector 14)",
        "cr2=0x0: page not present on read in kernel mode",
        "null pointer dereference",
        "rip=0x",
    ] {
        assert!(
            output.contains(line),
            "no {line:?} in the report:\n{output}"
        );
    }
}

#[test]
fn unknown_test_name_fails() {
    let (code, output) = run_guest_test("no_such_test");
    assert_eq!(
        code,
        Some(qemu_exit_status(exit::TEST_FAILED)),
        "output:\n{output}"
    );
    assert!(
        output.contains("unknown test: no_such_test; tests: boot bootinfo breakpoint heap"),
        "output:\n{output}"
    );
}
