//! The boot sequence (`kernel_main`): serial console, PVH start info
//! (validated and copied), GDT/TSS and IDT, guard pages, heap from the
//! memory map, the clock (TSC), the i8042 keyboard (set up by polling),
//! PIC, PIT one-shot mode, COM1's receiver on IRQ4, the keyboard's IRQ1,
//! interrupts on, then either an in-guest test (`test=NAME` on the command
//! line, see `ktest`) or the shell (which first runs the command line's
//! `run=` lines).

use shared::exit;

use crate::arch::{boot, gdt, interrupts, paging};
use crate::bootinfo::BootInfo;
use crate::drivers::{debug_exit, i8042, pic, pit, serial};
use crate::heap;
use crate::ktest;
use crate::shell::console;
use crate::task::executor::{Executor, Spawner};
use crate::task::timer;
use crate::time;

static mut BOOT_INFO: BootInfo = BootInfo::empty();

fn boot_failure(message: core::fmt::Arguments) -> ! {
    emergency_println!("boot failure: {message}");
    debug_exit::exit(exit::BOOT_FAILURE)
}

/// Starts the clock (the TSC) with its frequency from CPUID, else calibrated
/// against PIT channel 2 (interrupts are still off, as the calibration
/// wants), and reports where the frequency came from.
fn start_clock() {
    let origin = time::rdtsc();
    let (hz, method) =
        time::frequency_from_this_cpu().unwrap_or_else(|| match pit::calibrate_tsc() {
            Some(cycles) => (
                time::clock::hz_from_pit_window(cycles, pit::CALIBRATION_CLOCKS),
                time::Method::Calibrated,
            ),
            None => (time::ASSUMED_HZ, time::Method::Assumed),
        });
    let source = time::init(origin, hz, method);
    println!(
        "clock: tsc {} kHz ({})",
        source.clock.hz() / 1000,
        source.method.describe()
    );
}

/// Rust entry point, called from the 64-bit part of [`crate::arch::boot`] with the
/// physical address of the PVH `hvm_start_info` structure.
pub extern "C" fn kernel_main(start_info: u32) -> ! {
    serial::init();
    println!("{}", shared::boot::BANNER);

    // SAFETY: the boot code's identity map is in place, interrupts are off
    // and nothing else runs.
    let memory = unsafe { paging::IdentityMapped::new() };
    let kernel = shared::boot::KERNEL_LOAD_ADDRESS..heap::kernel_end();
    // SAFETY: single-threaded boot; BOOT_INFO is written here only, before
    // any shared reference to it exists.
    let boot_info: &'static BootInfo = unsafe {
        let info = &mut *core::ptr::addr_of_mut!(BOOT_INFO);
        if let Err(error) = info.parse(u64::from(start_info), &memory, kernel) {
            boot_failure(format_args!("{error}"));
        }
        info
    };
    println!(
        "boot: hvm_start_info v{} at {:#x}, command line {:?}",
        boot_info.version,
        boot_info.start_info,
        boot_info.cmdline()
    );

    gdt::init();
    interrupts::init();
    // SAFETY: the start info has been copied; nothing uses page 0 or the
    // guard page; interrupts are off.
    unsafe {
        for page in [0, boot::stack_guard_page()] {
            if let Err(error) = paging::unmap_page(page) {
                boot_failure(format_args!("cannot unmap guard page {page:#x}: {error}"));
            }
        }
    }

    let ram: u64 = boot_info
        .memory_map()
        .iter()
        .filter(|region| region.kind == shared::pvh::memmap_type::RAM)
        .map(|region| region.size)
        .sum();
    let Some((heap_start, heap_size)) = heap::choose(boot_info.memory_map(), heap::kernel_end())
    else {
        boot_failure(format_args!(
            "no RAM above the kernel end {:#x} in the memory map ({} entries)",
            heap::kernel_end(),
            boot_info.memory_map().len()
        ));
    };
    if heap_size < heap::HEAP_MIN {
        boot_failure(format_args!(
            "largest free RAM region is {heap_size} bytes, need {}",
            heap::HEAP_MIN
        ));
    }
    // SAFETY: RAM per the memory map, above the kernel image, below 4 GiB
    // (identity-mapped), and used by nothing else.
    unsafe { heap::init(heap_start, heap_size) };
    println!(
        "memory: {} MiB RAM in {} map entries; heap {} KiB at {:#x}",
        ram >> 20,
        boot_info.memory_map().len(),
        heap_size >> 10,
        heap_start
    );

    start_clock();
    // Before the PICs: their initialisation forgets any IRQ1 edge the
    // controller's set-up raised (see `i8042::init_controller`).
    let keyboard = i8042::init_controller();
    pic::init();
    pit::init();
    pic::unmask(shared::irq::TIMER);
    pic::unmask(shared::irq::COM1);
    serial::start_input();
    if let Some(keyboard) = keyboard {
        pic::unmask(shared::irq::KEYBOARD);
        keyboard.enable_interrupt();
    }
    x86_64::instructions::interrupts::enable();

    if let Some(name) = boot_info.param(shared::boot::TEST_PARAM) {
        ktest::run(name, boot_info);
    }

    let spawner = Spawner;
    let spawned = spawner
        .spawn(timer::timer_task())
        .and_then(|_| spawner.spawn(console::shell(spawner, boot_info.cmdline())));
    if let Err(error) = spawned {
        panic!("cannot start the shell: {error}");
    }
    Executor::new().run();
    println!("all tasks finished");
    debug_exit::exit(exit::SUCCESS)
}
