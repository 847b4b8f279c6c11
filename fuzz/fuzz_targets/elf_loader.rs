//! The kernel loading path (`vmm::vm::boot`: `inspect`, `check_placement`
//! and `load`, which also runs linux-loader) on arbitrary files, for guests
//! of a few RAM sizes.
//!
//! Checked: a file is either refused with a clean one-line error, or loaded
//! as a kernel whose every segment lies in guest RAM (one region: below
//! 640 KiB or from 1 MiB to the end of RAM) and clear of the boot data
//! (GDT, start info and memory map, command line), with the PVH start info
//! written; the placement decision agrees with a reference computed here
//! from the segments; what `inspect` reports is well formed.
#![no_main]

use std::cell::RefCell;
use std::ops::Range;

use libfuzzer_sys::fuzz_target;
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};
use vmm::vm::boot::{check_placement, inspect, load, BOOT_DATA, START_INFO_ADDR};
use vmm::vm::memory::{MemoryLayout, HIGH_RAM_START, LOW_RAM_END};

/// RAM sizes tried, in MiB (the smallest the VMM accepts, and a usual one).
const SIZES: [u32; 2] = [3, 16];

thread_local! {
    /// Guest memory per size, made once (loading need not start from fresh
    /// memory: the VMM reloads into used memory at every reset).
    static MEMORY: RefCell<Vec<GuestMemoryMmap>> = RefCell::new(
        SIZES.iter().map(|&mib| MemoryLayout::new(mib).unwrap().allocate().unwrap()).collect()
    );
}

/// The reference: `segment` lies in one RAM region and clear of the boot data.
fn placeable(segment: &Range<u64>, mib: u32) -> bool {
    let ram_end = u64::from(mib) << 20;
    let in_ram =
        (segment.end <= LOW_RAM_END) || (segment.start >= HIGH_RAM_START && segment.end <= ram_end);
    in_ram
        && segment.start < segment.end
        && BOOT_DATA
            .iter()
            .all(|b| segment.end <= b.start || b.end <= segment.start)
}

fn clean(error: &dyn std::fmt::Display) {
    let text = error.to_string();
    assert!(
        !text.is_empty() && !text.contains('\n'),
        "not a clean one-line error: {text:?}"
    );
}

fuzz_target!(|elf: &[u8]| {
    let info = match inspect(elf) {
        Ok(info) => {
            assert!(!info.segments.is_empty());
            for segment in &info.segments {
                assert!(
                    segment.start < segment.end,
                    "empty or reversed segment {segment:?}"
                );
            }
            for fill in &info.zero_fill {
                assert!(fill.start < fill.end);
                assert!(
                    info.segments
                        .iter()
                        .any(|s| s.start <= fill.start && fill.end <= s.end),
                    "zero fill {fill:?} outside every segment"
                );
            }
            Some(info)
        }
        Err(error) => {
            clean(&error);
            None
        }
    };
    for (index, &mib) in SIZES.iter().enumerate() {
        let layout = MemoryLayout::new(mib).unwrap();
        let placed = info.as_ref().map(|info| {
            let ok = check_placement(info, &layout);
            if let Err(error) = &ok {
                clean(error);
            }
            assert_eq!(
                ok.is_ok(),
                info.segments.iter().all(|s| placeable(s, mib)),
                "placement of {:x?} in {mib} MiB",
                info.segments
            );
            ok.is_ok()
        });
        MEMORY.with(|memory| {
            let memory = &memory.borrow()[index];
            match load(memory, &layout, elf, "console=fuzz", None) {
                Ok(entry) => {
                    assert_eq!(placed, Some(true), "loaded a kernel the checks refuse");
                    assert_eq!(u64::from(entry.start_info), START_INFO_ADDR);
                    let magic: u32 = memory.read_obj(GuestAddress(START_INFO_ADDR)).unwrap();
                    assert_eq!(
                        magic,
                        shared::pvh::START_MAGIC,
                        "no start info after a load"
                    );
                }
                Err(error) => clean(&error),
            }
        });
    }
});
