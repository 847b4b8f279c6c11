//! Hostile guests (`hostile_*`): kernels that attack the VMM on purpose.
//! `tests/vmm_hostile.rs` runs each in our VMM and checks that it ends with
//! its documented status while the VMM stays responsive and bounded:
//!
//! | test | what it does | how it ends |
//! | --- | --- | --- |
//! | `hostile_pit_storm` | PIT channel 0 in mode 2 with count 1, IRQ0 unmasked, `sti; hlt` forever | only `--timeout` (124) or QMP `quit` (0) |
//! | `hostile_pic_reinit` | re-initialises the PIC (ICW1-4) inside the IRQ0 handler, before its EOI, then relies on the timer | `TEST_PASSED` |
//! | `hostile_triple_fault` | loads an empty IDT, then touches the unmapped page 0 | triple fault: the VMM's 125 |
//! | `hostile_cli_hlt` | `cli; hlt` | only `--timeout` (124) or QMP `quit` (0) |
//! | `hostile_keyboard_deaf` | ignores the keyboard for `deaf_ms=` (3000), then polls it and counts the `a` keys typed until Enter; `keys=N` (100000) expected | `TEST_PASSED` if exactly N `a` makes and breaks came, nothing else |
//! | `hostile_serial_flood` | writes `kib=` (512) KiB to COM1 with `rep outsb`, never looking at the line status | `TEST_PASSED` |

use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU8, Ordering};

use futures_util::{FutureExt, StreamExt};

use shared::exit::TEST_PASSED;
use shared::irq::{KEYBOARD, TIMER};
use shared::ports::{COM1, I8042_COMMAND, I8042_DATA, PIT_CHANNEL0, PIT_COMMAND};
use x86_64::instructions::interrupts;
use x86_64::instructions::port::Port;

use super::check;
use crate::arch::interrupts as idt;
use crate::bootinfo::BootInfo;
use crate::drivers::{debug_exit, pic};
use crate::task::keyboard::ScancodeStream;
use crate::task::timer;
use crate::{stats, time};

fn outb(port: u16, value: u8) {
    // SAFETY: port I/O touches no memory; these tests own the devices they
    // program (the kernel's own drivers are idle while they run).
    unsafe { Port::<u8>::new(port).write(value) }
}

fn inb(port: u16) -> u8 {
    // SAFETY: as in `outb`.
    unsafe { Port::<u8>::new(port).read() }
}

fn param(boot_info: &BootInfo, key: &str, default: u64) -> u64 {
    boot_info
        .param(key)
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

/// An interrupt storm: IRQ0 as fast as the PIT allows, forever.
pub(super) fn pit_storm() -> ! {
    println!("hostile_pit_storm: PIT channel 0 mode 2 count 1, halting with interrupts on");
    interrupts::disable();
    outb(PIT_COMMAND, 0x34);
    outb(PIT_CHANNEL0, 1);
    outb(PIT_CHANNEL0, 0);
    pic::unmask(TIMER);
    loop {
        interrupts::enable_and_hlt();
    }
}

/// Interrupts off, halted: no interrupt can ever wake it.
pub(super) fn cli_hlt() -> ! {
    println!("hostile_cli_hlt: cli; hlt");
    loop {
        interrupts::disable();
        x86_64::instructions::hlt();
    }
}

/// No IDT at all, then a page fault: #PF cannot be delivered (#GP), nor
/// can that (#DF), so the CPU shuts down.
pub(super) fn triple_fault() -> ! {
    println!("hostile_triple_fault: empty IDT, then a read of the unmapped page 0");
    interrupts::disable();
    let empty = x86_64::structures::DescriptorTablePointer {
        limit: 0,
        base: x86_64::VirtAddr::new(0),
    };
    // SAFETY: deliberately fatal: with an empty IDT the read of page 0
    // (unmapped at boot) triple-faults; nothing runs after it.
    unsafe {
        x86_64::instructions::tables::lidt(&empty);
        core::arch::asm!("mov {0}, qword ptr [{1}]", out(reg) _, in(reg) 0u64);
    }
    println!("hostile_triple_fault: still running after the fault");
    loop {
        x86_64::instructions::hlt();
    }
}

static REINIT_ARMED: AtomicBool = AtomicBool::new(false);
static REINIT_RUNS: AtomicU32 = AtomicU32::new(0);
static ISR_BEFORE: AtomicU8 = AtomicU8::new(0);
static ISR_AFTER: AtomicU8 = AtomicU8::new(0xFF);

/// In IRQ0, before its EOI: the whole ICW1-4 sequence again.
fn reinit_in_irq0(line: u8) {
    if line != TIMER || !REINIT_ARMED.swap(false, Ordering::SeqCst) {
        return;
    }
    ISR_BEFORE.store(pic::master_isr(), Ordering::SeqCst);
    pic::init();
    ISR_AFTER.store(pic::master_isr(), Ordering::SeqCst);
    pic::unmask(TIMER);
    pic::unmask(KEYBOARD);
    pic::unmask(shared::irq::COM1);
    REINIT_RUNS.fetch_add(1, Ordering::SeqCst);
}

/// The PIC re-initialised in the middle of an interrupt; the guest must go
/// on taking timer interrupts as before.
pub(super) async fn pic_reinit() {
    idt::set_irq_hook(reinit_in_irq0);
    let unexpected = stats::UNEXPECTED_IRQS.get();
    let spurious = stats::SPURIOUS_IRQS.get();
    // Normal EOI mode first, so IRQ0 is still in service inside its
    // handler (the guest runs the PICs in AEOI mode, where nothing ever
    // is); the re-initialisation in the hook puts AEOI back.
    interrupts::without_interrupts(|| {
        pic::init_with_eoi();
        pic::unmask(TIMER);
        pic::unmask(KEYBOARD);
        pic::unmask(shared::irq::COM1);
        REINIT_ARMED.store(true, Ordering::SeqCst);
    });
    timer::sleep(20).await;
    check!(
        REINIT_RUNS.load(Ordering::SeqCst) == 1,
        "the PIC was re-initialised inside IRQ0 ({} time)",
        REINIT_RUNS.load(Ordering::SeqCst)
    );
    check!(
        ISR_BEFORE.load(Ordering::SeqCst) & 1 == 1,
        "IRQ0 was in service before ICW1 (ISR {:#04x})",
        ISR_BEFORE.load(Ordering::SeqCst)
    );
    check!(
        ISR_AFTER.load(Ordering::SeqCst) == 0,
        "ICW1 cleared the in-service register (ISR {:#04x})",
        ISR_AFTER.load(Ordering::SeqCst)
    );
    let ticks = stats::TIMER_IRQS.get();
    let start = time::now();
    for _ in 0..5 {
        timer::sleep(10).await;
    }
    let took = time::cycles_to_ms(time::now() - start);
    // Each sleep ends only through IRQ0 (the idle executor halts), though a
    // late one-shot may end more than one: at least one interrupt.
    check!(
        stats::TIMER_IRQS.get() > ticks,
        "five 10 ms sleeps after the re-initialisation took {took} ms, {} timer interrupts",
        stats::TIMER_IRQS.get() - ticks
    );
    check!(
        stats::UNEXPECTED_IRQS.get() == unexpected && stats::SPURIOUS_IRQS.get() == spurious,
        "no unexpected or spurious interrupt ({} and {} more)",
        stats::UNEXPECTED_IRQS.get() - unexpected,
        stats::SPURIOUS_IRQS.get() - spurious
    );
}

/// Ignores the keyboard for a while, then polls it and counts.
pub(super) fn keyboard_deaf(boot_info: &BootInfo) {
    let expected = param(boot_info, "keys", 100_000);
    let deaf_ms = param(boot_info, "deaf_ms", 3000);
    interrupts::disable();
    let (mut makes, mut breaks, mut other) = (0u64, 0u64, 0u64);
    let mut count = |byte: u8| -> bool {
        match byte {
            0x1E => makes += 1,  // a, set 1 (translated)
            0x9E => breaks += 1, // a released
            0x1C => return true, // Enter: the end
            _ => other += 1,
        }
        false
    };
    // What the boot's IRQ1 handler already took, before interrupts went off.
    let mut ended = false;
    if let Some(mut stream) = ScancodeStream::take() {
        while let Some(Some(byte)) = stream.next().now_or_never() {
            ended |= count(byte);
        }
    }
    println!("hostile_keyboard_deaf: ignoring the keyboard for {deaf_ms} ms");
    time::spin(deaf_ms);
    println!("hostile_keyboard_deaf: reading");
    let mut last = time::now();
    let quiet_limit = time::ms_to_cycles(10_000);
    let mut timed_out = false;
    while !ended {
        if inb(I8042_COMMAND) & 1 == 0 {
            if time::now() - last > quiet_limit {
                timed_out = true;
                break;
            }
            core::hint::spin_loop();
            continue;
        }
        last = time::now();
        ended = count(inb(I8042_DATA));
    }
    check!(!timed_out, "Enter came (no 10 s silence first)");
    check!(
        makes == expected && breaks == expected && other == 0,
        "{makes} presses and {breaks} releases of a (expected {expected}), {other} other bytes"
    );
}

/// Floods COM1: `kib=` KiB with `rep outsb`, 4 KiB at a time.
///
/// Each byte is its own exit to the VMM (KVM splits string I/O to a port
/// that is not in the kernel), about 40 µs here: 512 KiB take 20 s.
pub(super) fn serial_flood(boot_info: &BootInfo) -> ! {
    let kib = param(boot_info, "kib", 512);
    println!("hostile_serial_flood: writing {kib} KiB to COM1");
    let mut chunk = [b'x'; 4096];
    for line in chunk.chunks_mut(64) {
        line[63] = b'\n';
    }
    for _ in 0..kib / 4 {
        // SAFETY: `rep outsb` reads the 4096 bytes of `chunk` and writes
        // them to COM1's data port; DF is clear (the ABI guarantees it).
        unsafe {
            core::arch::asm!(
                "rep outsb",
                in("dx") COM1,
                inout("rsi") chunk.as_ptr() => _,
                inout("rcx") chunk.len() => _,
                options(nostack, readonly)
            );
        }
    }
    println!("hostile_serial_flood: done");
    debug_exit::exit(TEST_PASSED)
}
