//! `conformance`: replays, register by register, the probe and set-up
//! sequences of Linux's drivers for our legacy devices (i8042 + atkbd,
//! 8259, 8254 + port 0x61, MC146818 rtc-cmos) plus reads of each device's
//! documented registers, and logs every value read, one line each:
//!
//! ```text
//! conf DEV ITEM OP VALUE          exact: must match the reference
//! conf DEV ITEM OP VALUE ~TOL     depends on elapsed time: |ours - QEMU| <= TOL
//! conf DEV ITEM OP VALUE ~TOL =N  a duration: also each within TOL of N
//! conf DEV ITEM OP VALUE ?        exact, but a stalled vCPU can change it
//! ```
//!
//! `tests/conformance.rs` runs this kernel in our VMM and in QEMU `pc` + TCG
//! (the reference) and compares the two logs line by line. Everything runs
//! with interrupts off and polls: no interrupt handler touches a device
//! meanwhile, and nothing depends on the host's instruction emulator beyond
//! plain port I/O (no `int3`, no XSAVE; long mode as every test kernel).
//! Each device's sequence ends by putting the device back where the boot
//! left it, as far as later sections need.

use core::fmt;

use x86_64::instructions::port::Port;

use super::check;
use crate::time;

mod i8042;
mod pic;
mod pit;
mod rtc;

/// Runs every section in order.
pub(super) fn conformance_test() {
    x86_64::instructions::interrupts::disable();
    let mut log = Log::default();
    i8042::run(&mut log);
    pit::run(&mut log);
    pic::run(&mut log);
    rtc::run(&mut log);
    println!("conf end lines {}", log.lines);
    check!(log.lines > 0, "conformance: {} values logged", log.lines);
    // The boot's own set-up, so the test ends on a machine as it found it.
    crate::drivers::pic::init();
}

/// The log: one line per value read.
#[derive(Default)]
struct Log {
    lines: u32,
}

impl Log {
    /// An exact byte value.
    fn byte(&mut self, dev: &str, item: &str, op: &str, value: u8) {
        self.lines += 1;
        println!("conf {dev} {item} {op} {value:#04x}");
    }

    /// An exact value that is not a byte (a flag, a count of events).
    fn value(&mut self, dev: &str, item: &str, op: &str, value: impl fmt::Display) {
        self.lines += 1;
        println!("conf {dev} {item} {op} {value}");
    }

    /// An exact value that a long enough stall of the vCPU thread (the host
    /// preempting it) can change: a difference makes the test run both
    /// machines again rather than fail at once.
    fn timing(&mut self, dev: &str, item: &str, op: &str, value: impl fmt::Display) {
        self.lines += 1;
        println!("conf {dev} {item} {op} {value} ?");
    }

    /// A value that depends on elapsed time: compared within `tolerance`.
    fn approx(&mut self, dev: &str, item: &str, op: &str, value: u64, tolerance: u64) {
        self.lines += 1;
        println!("conf {dev} {item} {op} {value} ~{tolerance}");
    }

    /// A duration with a datasheet value: each machine's within `tolerance`
    /// of `nominal`, and of each other.
    fn timed(&mut self, dev: &str, item: &str, op: &str, value: u64, tolerance: u64, nominal: u64) {
        self.lines += 1;
        println!("conf {dev} {item} {op} {value} ~{tolerance} ={nominal}");
    }
}

fn inb(port: u16) -> u8 {
    // SAFETY: port I/O touches no memory; this test owns every legacy device
    // while it runs (interrupts are off, no handler runs).
    unsafe { Port::<u8>::new(port).read() }
}

fn outb(port: u16, value: u8) {
    // SAFETY: as in `inb`.
    unsafe { Port::<u8>::new(port).write(value) }
}

/// Busy-waits `us` microseconds by the TSC.
fn delay_us(us: u64) {
    let deadline = time::now() + time::ms_to_cycles(1) * us / 1000;
    while time::now() < deadline {
        core::hint::spin_loop();
    }
}

/// Microseconds since `start` (a `time::now()` value).
fn us_since(start: u64) -> u64 {
    time::cycles_to_us(time::now() - start)
}

/// Polls `ready` until it holds or `timeout_ms` passed; whether it held.
fn poll_until(timeout_ms: u64, mut ready: impl FnMut() -> bool) -> bool {
    let deadline = time::now() + time::ms_to_cycles(timeout_ms);
    loop {
        if ready() {
            return true;
        }
        if time::now() >= deadline {
            return ready();
        }
        core::hint::spin_loop();
    }
}
