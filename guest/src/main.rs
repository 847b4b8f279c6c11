//! asyncos: a tiny x86_64 kernel that boots by PVH and prints its banner.
#![no_std]
#![no_main]

mod boot;
mod debug_exit;
mod serial;

use core::panic::PanicInfo;

/// Rust entry point, called from the 64-bit part of [`boot`] with the
/// physical address of the PVH `hvm_start_info` structure.
pub extern "C" fn kernel_main(start_info: u32) -> ! {
    serial::init();
    println!("{}", shared::boot::BANNER);
    // hvm_start_info: magic at 0, cmdline_paddr at 24 (scaffold; replaced by the real kernel).
    let cmdline_paddr = unsafe { core::ptr::read_volatile((start_info as usize + 24) as *const u64) };
    let mut len = 0;
    if cmdline_paddr != 0 {
        while unsafe { *((cmdline_paddr as usize + len) as *const u8) } != 0 {
            len += 1;
        }
    }
    let cmdline = unsafe { core::slice::from_raw_parts(cmdline_paddr as *const u8, len) };
    if cmdline == b"test=boot" {
        debug_exit::exit(shared::exit::TEST_PASSED)
    }
    debug_exit::exit(shared::exit::SUCCESS)
}

#[panic_handler]
fn panic(info: &PanicInfo) -> ! {
    println!("kernel panic: {info}");
    debug_exit::exit(shared::exit::PANIC)
}
