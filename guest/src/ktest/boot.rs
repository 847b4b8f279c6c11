//! `boot` (what the boot left: start info, heap, guard pages, interrupts)
//! and `bootinfo` (start-info validation and heap placement on synthetic
//! inputs).

use super::check;
use alloc::boxed::Box;

use crate::arch::paging;
use crate::bootinfo::BootInfo;
use core::future::Future;

use crate::task::timer;
use crate::{heap, stats, time};

pub(super) fn boot_test(boot_info: &BootInfo) {
    check!(
        boot_info.start_info != 0,
        "hvm_start_info found, magic valid, at {:#x}",
        boot_info.start_info
    );
    check!(
        boot_info.param(shared::boot::TEST_PARAM) == Some("boot"),
        "command line {:?} parsed: test=boot",
        boot_info.cmdline()
    );
    check!(
        !boot_info.memory_map().is_empty(),
        "memory map has {} entries",
        boot_info.memory_map().len()
    );
    let (heap_start, heap_size) = heap::bounds();
    check!(
        heap_start >= heap::kernel_end() && heap_size >= heap::HEAP_MIN,
        "heap {heap_size} bytes at {heap_start:#x}, above the kernel end {:#x}",
        heap::kernel_end()
    );
    check!(
        boot_info
            .memory_map()
            .iter()
            .any(|r| r.kind == shared::pvh::memmap_type::RAM
                && r.addr <= heap_start
                && heap_start + heap_size <= r.end()),
        "heap lies inside one RAM region of the memory map"
    );
    check!(
        !paging::is_mapped(0),
        "page 0 is unmapped (null pointer guard)"
    );
    check!(
        !paging::is_mapped(crate::arch::boot::stack_guard_page()),
        "stack guard page is unmapped"
    );
    check!(
        paging::is_mapped(heap_start) && paging::is_mapped(0x1000),
        "heap and low memory stay mapped"
    );

    check!(
        x86_64::instructions::interrupts::are_enabled(),
        "interrupts enabled"
    );
    // Calibration fails where no PIT channel 2 answers at port 0x61 (QEMU
    // microvm); the clock then runs at a guessed rate, which is reported.
    let source = time::clocksource();
    check!(
        source.is_some_and(|s| s.method == time::Method::Assumed
            || (100_000_000..100_000_000_000).contains(&s.clock.hz())),
        "clocksource: a plausible TSC frequency or an assumed one"
    );
    if let Some(source) = source {
        println!(
            "[info] clocksource: tsc {} kHz ({})",
            source.clock.hz() / 1000,
            source.method.describe()
        );
    }
    let t0 = time::now();
    time::spin(1);
    check!(
        time::now() - t0 >= time::ms_to_cycles(1),
        "the clock runs (spin 1 ms)"
    );

    // A short sleep's one-shot timer interrupt. Reported, not checked:
    // `boot` must pass on machines where the PIC's output does not reach the
    // CPU (QEMU microvm: the local APIC's LINT0 is not in virtual-wire mode
    // without a BIOS). The `timer` and `executor` tests depend on the timer
    // interrupt and check it. No executor runs here, so the timer is polled
    // by hand (registering arms the PIT) and the interrupt count watched.
    let irqs = stats::TIMER_IRQS.get();
    let mut sleep = core::pin::pin!(timer::sleep(10));
    let deadline = sleep.deadline();
    let mut cx = core::task::Context::from_waker(core::task::Waker::noop());
    let _ = sleep.as_mut().poll(&mut cx);
    let tsc_start = time::rdtsc();
    // (An earlier stray IRQ0, like the one QEMU's firmware counter may
    // still raise, re-arms the shot; the wait is for one at the deadline.)
    while !(stats::TIMER_IRQS.get() > irqs && time::now() >= deadline)
        && time::rdtsc() - tsc_start < 4_000_000_000
    {
        core::hint::spin_loop();
    }
    let arrived = time::now();
    if stats::TIMER_IRQS.get() > irqs {
        println!(
            "[info] a 10 ms sleep's one-shot timer interrupt came {} us after its deadline; the sleep is over: {}",
            time::cycles_to_us(arrived.saturating_sub(deadline)),
            sleep.as_mut().poll(&mut cx).is_ready()
        );
    } else {
        println!(
            "[info] no timer interrupt within 4e9 TSC cycles: the PIC does not reach the CPU here"
        );
    }
}

/// Start-info validation and heap placement on synthetic inputs.
pub(super) fn bootinfo_test() {
    use crate::bootinfo::{BootInfoError, MemoryRegion};
    use shared::pvh::{HvmMemmapEntry, HvmStartInfo, START_MAGIC};

    // A fake hvm_start_info with its command line and memory map, on the heap.
    #[repr(C, align(8))]
    struct Fake {
        info: HvmStartInfo,
        cmdline: [u8; 32],
        memmap: [HvmMemmapEntry; 3],
    }
    let entry = |addr, size, kind| HvmMemmapEntry {
        addr,
        size,
        kind,
        reserved: 0,
    };
    let mut fake = Box::new(Fake {
        info: HvmStartInfo::default(),
        cmdline: [0; 32],
        memmap: [
            entry(0, 0x9fc00, 1),
            entry(0x100000, 0x7f00000, 1),
            entry(0xfeffc000, 0x4000, 2),
        ],
    });
    let base = &raw const *fake as u64;
    let cmdline = b"console=ttyS0 test=bootinfo x=1\0";
    fake.cmdline[..cmdline.len()].copy_from_slice(cmdline);
    fake.info = HvmStartInfo {
        magic: START_MAGIC,
        version: 1,
        cmdline_paddr: &raw const fake.cmdline as u64,
        memmap_paddr: &raw const fake.memmap as u64,
        memmap_entries: 3,
        ..HvmStartInfo::default()
    };

    // SAFETY: the identity map is in place; the fake is not written while
    // `parse` reads it.
    let memory = unsafe { paging::IdentityMapped::new() };
    let kernel = shared::boot::KERNEL_LOAD_ADDRESS..heap::kernel_end();
    let mut info = Box::new(BootInfo::empty());
    let parsed = info.parse(base, &memory, kernel.clone());
    check!(parsed.is_ok(), "a valid start info parses: {parsed:?}");
    check!(
        info.cmdline() == "console=ttyS0 test=bootinfo x=1",
        "command line copied: {:?}",
        info.cmdline()
    );
    check!(
        info.param("test") == Some("bootinfo") && info.param("x") == Some("1"),
        "key=value parameters"
    );
    check!(
        info.param("console=ttyS0").is_none() && info.param("tes").is_none(),
        "only whole keys match"
    );
    let map = info.memory_map();
    check!(
        map.len() == 3 && map[1].addr == 0x100000 && map[1].size == 0x7f00000 && map[2].kind == 2,
        "memory map copied: {map:?}"
    );

    fake.info.magic ^= 0xff;
    let bad = info.parse(base, &memory, kernel.clone());
    check!(
        matches!(bad, Err(BootInfoError::BadMagic(_))),
        "a wrong magic is rejected: {bad:?}"
    );
    fake.info.magic ^= 0xff;
    fake.info.version = 0;
    let old = info.parse(base, &memory, kernel.clone());
    check!(
        matches!(old, Err(BootInfoError::NoMemoryMap { version: 0 })),
        "version 0 (no memory map) is rejected"
    );
    let null = info.parse(0, &memory, kernel.clone());
    check!(
        matches!(null, Err(BootInfoError::NullPointer)),
        "a null start info is rejected"
    );
    let high = info.parse(0x1_0000_0000, &memory, kernel);
    check!(
        matches!(high, Err(BootInfoError::Unmapped { .. })),
        "a start info above 4 GiB is rejected"
    );

    let ram = |addr: u64, size: u64| MemoryRegion {
        addr,
        size,
        kind: shared::pvh::memmap_type::RAM,
    };
    let kernel_end = 0x141d38;
    let chosen = heap::choose(&[ram(0, 0x9fc00), ram(0x100000, 0x7f00000)], kernel_end);
    check!(
        chosen == Some((0x142000, heap::HEAP_MAX)),
        "heap above the kernel end, capped: {chosen:x?}"
    );
    let chosen = heap::choose(
        &[ram(0x100000, 0x100000), ram(0x1000000, 0x300000)],
        kernel_end,
    );
    check!(
        chosen == Some((0x1000000, 0x300000)),
        "the largest region wins: {chosen:x?}"
    );
    let reserved = MemoryRegion {
        addr: 0x1000000,
        size: 0x10000000,
        kind: 2,
    };
    let chosen = heap::choose(&[ram(0, 0x9fc00), reserved], kernel_end);
    check!(chosen.is_none(), "no heap without RAM above the kernel");
    let chosen = heap::choose(&[ram(0xffff0000, 0x20000000)], kernel_end);
    check!(
        chosen == Some((0xffff0000, 0x10000)),
        "the heap stays below 4 GiB: {chosen:x?}"
    );
}
