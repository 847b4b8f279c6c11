//! `heap`: many and large allocations, reuse.

use super::check;
use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;

use crate::heap;

/// Bytes between two stamps of [`Block::stamp`].
const STAMP_STRIDE: usize = 64 << 10;

/// A heap block left uninitialised, freed on drop.
struct Block {
    ptr: *mut u8,
    layout: core::alloc::Layout,
}

impl Block {
    fn new(size: usize) -> Self {
        let layout = core::alloc::Layout::from_size_align(size.max(8), 8).unwrap();
        // SAFETY: non-zero size.
        let ptr = unsafe { alloc::alloc::alloc(layout) };
        assert!(!ptr.is_null(), "allocation of {size} bytes failed");
        Self { ptr, layout }
    }

    fn addr(&self) -> usize {
        self.ptr as usize
    }

    /// Offsets of the stamps: every [`STAMP_STRIDE`] bytes, and the last word.
    fn offsets(&self) -> impl Iterator<Item = usize> {
        let last = self.layout.size() - 8;
        (0..last).step_by(STAMP_STRIDE).chain([last])
    }

    /// Writes a distinct word every [`STAMP_STRIDE`] bytes and into the last
    /// word; [`Block::stamped`] checks them. Enough to show that a block is
    /// usable memory, distinct from other live blocks, without touching every
    /// byte or even every page: under kvm_pvm (see `guest/README.md`) every
    /// guest instruction is emulated (about 1 µs each) and the first touch of
    /// each 4 KiB page is a shadow-paging fault, so filling 8 MiB byte by
    /// byte took minutes there.
    fn stamp(&mut self, seed: u64) {
        for (n, offset) in self.offsets().enumerate() {
            // SAFETY: `offset + 8 <= size`, 8-aligned.
            unsafe { self.ptr.add(offset).cast::<u64>().write(seed ^ n as u64) };
        }
    }

    fn stamped(&self, seed: u64) -> bool {
        self.offsets().enumerate().all(|(n, offset)| {
            // SAFETY: as in `stamp`; only stamped words are read.
            unsafe { self.ptr.add(offset).cast::<u64>().read() == seed ^ n as u64 }
        })
    }
}

impl Drop for Block {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout.
        unsafe { alloc::alloc::dealloc(self.ptr, self.layout) };
    }
}

/// Many and large allocations, reuse. Sized for an emulated guest (see
/// [`Block::stamp`]): about a million instructions, not hundreds of millions.
pub(super) fn heap_test() {
    let (used_before, free_before) = heap::usage();
    let (_, heap_size) = heap::bounds();
    let heap_size = heap_size as usize;
    println!(
        "heap: {} KiB in use, {} KiB free",
        used_before >> 10,
        free_before >> 10
    );

    let boxed = Box::new(0x1234_5678_u64);
    check!(*boxed == 0x1234_5678, "Box holds its value");
    drop(boxed);

    let many: Vec<Box<u64>> = (0..1000u64).map(|i| Box::new(i * 3)).collect();
    check!(
        many.iter().enumerate().all(|(i, b)| **b == i as u64 * 3),
        "1000 small boxes keep their values"
    );
    drop(many);

    let mut map = BTreeMap::new();
    for i in (0..500u32).rev() {
        map.insert(i, String::from("value"));
    }
    check!(
        map.len() == 500 && map.keys().copied().eq(0..500) && map.values().all(|v| v == "value"),
        "BTreeMap with 500 entries, inserted in reverse, iterates in order"
    );
    drop(map);

    // A quarter of the heap in one piece (16 MiB of the usual 64 MiB).
    let large = heap_size / 4;
    let mut first = Block::new(large);
    first.stamp(0x1111);
    check!(
        first.stamped(0x1111),
        "large allocation of {} KiB, written and read back every 64 KiB",
        large >> 10
    );
    let first_addr = first.addr();
    drop(first);
    let mut second = Block::new(large);
    second.stamp(0x2222);
    check!(
        second.stamped(0x2222),
        "second large allocation after freeing the first"
    );
    check!(
        second.addr() == first_addr,
        "freed memory is reused ({first_addr:#x})"
    );

    // Two large blocks alive at once do not overlap.
    let mut third = Block::new(large);
    third.stamp(0x3333);
    let (a, b) = (second.addr(), third.addr());
    check!(
        second.stamped(0x2222) && third.stamped(0x3333) && (a + large <= b || b + large <= a),
        "two large blocks alive at once are disjoint ({a:#x}, {b:#x})"
    );
    drop(second);
    drop(third);

    // Twice the heap in total, so it only works with reuse.
    let block = heap_size / 16;
    let rounds = 32;
    let mut intact = true;
    for i in 0..rounds {
        let mut chunk = Block::new(block);
        chunk.stamp(i);
        intact &= chunk.stamped(i);
    }
    check!(
        intact,
        "{rounds} allocate/free rounds of {} KiB ({} MiB in total, twice the heap)",
        block >> 10,
        (rounds as usize * block) >> 20
    );

    // Mixed sizes freed out of order: holes get split and merged.
    let mut mixed: Vec<Vec<u8>> = (0..64usize)
        .map(|i| alloc::vec![i as u8; 16 + (i * 37) % 600])
        .collect();
    for i in (0..64).step_by(2) {
        mixed[i] = Vec::new();
    }
    let refilled: Vec<Vec<u8>> = (0..32usize)
        .map(|i| alloc::vec![0xEE; 8 + i * 19])
        .collect();
    check!(
        mixed
            .iter()
            .enumerate()
            .filter(|(i, _)| i % 2 == 1)
            .all(|(i, v)| v.len() == 16 + (i * 37) % 600 && v.iter().all(|&b| b == i as u8))
            && refilled.iter().all(|v| v.iter().all(|&b| b == 0xEE)),
        "mixed sizes freed out of order and reallocated keep their contents"
    );
    drop(mixed);
    drop(refilled);

    let mut growing = Vec::new();
    for i in 0..10_000u32 {
        growing.push(i);
    }
    check!(
        growing.iter().sum::<u32>() == (0..10_000u32).sum(),
        "Vec grown to 10000 elements by reallocation"
    );
    drop(growing);

    let layout = core::alloc::Layout::from_size_align(4096, 4096).unwrap();
    // SAFETY: non-zero size; freed right below with the same layout.
    unsafe {
        let page = alloc::alloc::alloc(layout);
        check!(
            !page.is_null() && (page as usize).is_multiple_of(4096),
            "4 KiB-aligned allocation at {page:#p}"
        );
        alloc::alloc::dealloc(page, layout);
    }

    let (used_after, _) = heap::usage();
    check!(
        used_after == used_before,
        "everything freed: {used_after} bytes in use, as before"
    );
}
