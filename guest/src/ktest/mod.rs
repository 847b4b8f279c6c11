//! In-guest tests, selected with `test=NAME` on the kernel command line.
//!
//! Each prints what it checks (`[ok] ...` / `[FAIL] ...`) and leaves through
//! the debug-exit port with TEST_PASSED or TEST_FAILED. Tests:
//! `boot`, `bootinfo`, `breakpoint`, `heap`, `should_panic`, `stack_overflow`, `executor`, `keyboard`,
//! `timer`; and `fault_report`, whose expected outcome is the fatal
//! page-fault report and exit value CPU_EXCEPTION; `conformance`, the
//! device-conformance log compared with QEMU's (`conformance/`); and the
//! hostile guests `hostile_*` (`hostile.rs`). One submodule per
//! subject; this one runs them and keeps the score.

use core::future::{poll_fn, Future};
use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use core::task::Poll;

use shared::exit::{TEST_FAILED, TEST_PASSED};

use crate::bootinfo::BootInfo;
use crate::drivers::debug_exit;
use crate::task::executor::{Executor, Spawner};
use crate::task::timer;

/// Names accepted by `test=`.
pub const TESTS: &[&str] = &[
    "boot",
    "bootinfo",
    "breakpoint",
    "heap",
    "should_panic",
    "stack_overflow",
    "executor",
    "keyboard",
    "timer",
    "fault_report",
    "conformance",
    "hostile_pit_storm",
    "hostile_pic_reinit",
    "hostile_triple_fault",
    "hostile_cli_hlt",
    "hostile_keyboard_deaf",
    "hostile_serial_flood",
];

static PANIC_EXPECTED: AtomicBool = AtomicBool::new(false);

/// Whether a panic is the expected outcome of the running test.
pub fn panic_expected() -> bool {
    PANIC_EXPECTED.load(Ordering::SeqCst)
}

static CHECKS: AtomicU32 = AtomicU32::new(0);
static FAILURES: AtomicU32 = AtomicU32::new(0);

fn check(ok: bool, what: core::fmt::Arguments) {
    CHECKS.fetch_add(1, Ordering::SeqCst);
    if ok {
        println!("[ok] {what}");
    } else {
        FAILURES.fetch_add(1, Ordering::SeqCst);
        println!("[FAIL] {what}");
    }
}

macro_rules! check {
    ($cond:expr, $($what:tt)*) => { check($cond, format_args!($($what)*)) };
}

mod boot;
mod conformance;
mod executor;
mod faults;
mod heap;
mod hostile;
mod keyboard;
mod timer_test;

fn finish(name: &str) -> ! {
    let failures = FAILURES.load(Ordering::SeqCst);
    let checks = CHECKS.load(Ordering::SeqCst);
    if failures == 0 && checks > 0 {
        println!("test {name}: passed ({checks} checks)");
        debug_exit::exit(TEST_PASSED)
    }
    println!("test {name}: FAILED ({failures} of {checks} checks failed)");
    debug_exit::exit(TEST_FAILED)
}

/// Runs test `name` and exits.
pub fn run(name: &str, boot_info: &BootInfo) -> ! {
    println!("test {name}: running");
    match name {
        "boot" => boot::boot_test(boot_info),
        "breakpoint" => faults::breakpoint_test(),
        "bootinfo" => boot::bootinfo_test(),
        "heap" => heap::heap_test(),
        "should_panic" => faults::should_panic_test(),
        "stack_overflow" => faults::stack_overflow_test(),
        "executor" => run_async(executor::executor_test()),
        "keyboard" => run_async(keyboard::keyboard_test()),
        "timer" => run_async(timer_test::timer_test()),
        "fault_report" => faults::fault_report_test(),
        "conformance" => conformance::conformance_test(),
        "hostile_pit_storm" => hostile::pit_storm(),
        "hostile_pic_reinit" => run_async(hostile::pic_reinit()),
        "hostile_triple_fault" => hostile::triple_fault(),
        "hostile_cli_hlt" => hostile::cli_hlt(),
        "hostile_keyboard_deaf" => hostile::keyboard_deaf(boot_info),
        "hostile_serial_flood" => hostile::serial_flood(boot_info),
        _ => {
            println!("unknown test: {name}; tests: {}", TESTS.join(" "));
            debug_exit::exit(TEST_FAILED)
        }
    }
    finish(name)
}

/// Runs `test` as a task next to the timer task, until it returns.
fn run_async(test: impl Future<Output = ()> + Send + 'static) {
    static DONE: AtomicBool = AtomicBool::new(false);
    let spawner = Spawner;
    spawner
        .spawn(timer::timer_task())
        .expect("spawn timer task");
    spawner
        .spawn(async move {
            test.await;
            DONE.store(true, Ordering::SeqCst);
        })
        .expect("spawn test task");
    // The timer task never ends: run until the test task has.
    Executor::new().run_until(|| DONE.load(Ordering::SeqCst));
}

/// Returns `Pending` once after waking itself, so other ready tasks run.
async fn yield_now() {
    let mut yielded = false;
    poll_fn(|cx| {
        if yielded {
            Poll::Ready(())
        } else {
            yielded = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    })
    .await
}

/// Yields until `done()` or `rounds` yields passed.
async fn yield_until(rounds: u32, done: impl Fn() -> bool) -> bool {
    for _ in 0..rounds {
        if done() {
            return true;
        }
        yield_now().await;
    }
    done()
}
