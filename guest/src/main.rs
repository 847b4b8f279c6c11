//! The kernel binary: the `guest` library, whose PVH entry code
//! (`guest::arch::boot`) calls `guest::kernel::kernel_main`, plus the panic
//! handler, which only a binary may define.
#![no_std]
#![no_main]

use core::panic::PanicInfo;

use guest::drivers::debug_exit;
use guest::{emergency_println, ktest};
use shared::exit;

#[panic_handler]
fn panic(info: &PanicInfo) -> ! {
    if ktest::panic_expected() {
        emergency_println!("[test] panicked as expected: {}", info.message());
        debug_exit::exit(exit::TEST_PASSED)
    }
    emergency_println!("kernel panic: {info}");
    debug_exit::exit(exit::PANIC)
}
