//! What the guest's in-guest tests (`test=NAME` on the kernel command line)
//! must print, under QEMU (`pc`, TCG; `qemu_guest_tests.rs`) and in our VMM
//! (`vmm_guest_tests.rs`) alike. Lines that hold on one machine only stay in
//! that machine's test file, with the reason.

/// The report lines `test=NAME` must print, on either machine.
///
/// Panics for a test with no shared table.
pub fn expected_lines(name: &str) -> &'static [&'static str] {
    match name {
        // In our VMM on kvm_pvm, KVM's emulator cannot execute `int3`; the
        // VMM completes it (vmm/src/vm/complete.rs).
        "breakpoint" => &[
            "EXCEPTION: breakpoint at rip=0x",
            "[ok] a second int3 is reported too",
            "test breakpoint: passed",
        ],
        "boot" => &[
            "[ok] page 0 is unmapped",
            "[ok] stack guard page is unmapped",
            "[ok] clocksource: a plausible TSC frequency",
            "[ok] the clock runs (spin 1 ms)",
            // The PIC reaches the CPU on QEMU `pc` and in our VMM (not on
            // QEMU microvm): a sleep's one-shot interrupt arrives and ends it.
            "[info] a 10 ms sleep's one-shot timer interrupt came",
            "after its deadline; the sleep is over: true",
            "test boot: passed",
        ],
        "bootinfo" => &[
            "[ok] a wrong magic is rejected",
            "[ok] heap above the kernel end, capped",
            "test bootinfo: passed",
        ],
        "heap" => &[
            "[ok] large allocation of 16384 KiB",
            "[ok] freed memory is reused",
            "[ok] two large blocks alive at once are disjoint",
            "[ok] 32 allocate/free rounds",
            "[ok] everything freed",
            "test heap: passed",
        ],
        "should_panic" => &["[test] panicked as expected: index out of bounds"],
        "stack_overflow" => &[
            "EXCEPTION: double fault (#DF)",
            "[test] double fault handled on the IST stack: true; faulting rsp",
            "at the stack guard page",
        ],
        "executor" => &[
            "[ok] 10000 wakes before the first poll leave one queue entry",
            "[ok] a wake during the task's own poll queues it again",
            "[ok] task spawned from a task spawned from a task ran",
            "[ok] idle executor halted",
            "test executor: passed",
        ],
        "keyboard" => &[
            "[ok] left Ctrl+C is an interrupt",
            "[ok] a full queue drops and counts",
            "test keyboard: passed",
        ],
        "timer" => &[
            "[ok] timers fired in deadline order",
            "[ok] every timer fired within 60 ms of its deadline",
            "[ok] no timer interrupt over 100 ms with no timer pending (0)",
            "[ok] sleep(200) took",
            "test timer: passed",
        ],
        // Exits with `exit::CPU_EXCEPTION`, not `TEST_PASSED`.
        "fault_report" => &[
            "EXCEPTION: page fault (#PF) (vector 14)",
            "cr2=0x0: page not present on read in kernel mode",
            "null pointer dereference",
            "rip=0x",
        ],
        _ => panic!("no expected lines for test={name}"),
    }
}

/// The name given for an unknown test; the guest exits with
/// `exit::TEST_FAILED` and prints [`UNKNOWN_TEST_REPORT`].
pub const UNKNOWN_TEST: &str = "no_such_test";

/// What the guest prints for `test=`[`UNKNOWN_TEST`]: the start of its list.
pub const UNKNOWN_TEST_REPORT: &str =
    "unknown test: no_such_test; tests: boot bootinfo breakpoint heap";
