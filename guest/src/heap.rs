//! The kernel heap: `linked_list_allocator` on the largest RAM region above
//! the kernel image, as the PVH memory map describes it ([`choose`]).
//!
//! Interrupt handlers never allocate or free (see `task/executor.rs` for how
//! wakers avoid freeing), so the allocator's spinlock is only ever taken in
//! task context and cannot deadlock against an interrupt handler.

use crate::bootinfo::{MemoryRegion, MAPPED_LIMIT};
use shared::pvh::memmap_type;

#[cfg(target_os = "none")]
pub use allocator::{bounds, init, kernel_end, usage};

/// Upper bound of the heap: plenty for this kernel, and it bounds the time a
/// runaway allocation loop takes to hit the out-of-memory report.
pub const HEAP_MAX: u64 = 64 << 20;
/// Lower bound: below this the kernel refuses to start.
pub const HEAP_MIN: u64 = 1 << 20;

/// Picks the heap: the largest piece of RAM above `kernel_end` and below the
/// identity-mapped limit, 4 KiB aligned, at most [`HEAP_MAX`] bytes.
pub fn choose(memory_map: &[MemoryRegion], kernel_end: u64) -> Option<(u64, u64)> {
    let floor = kernel_end.next_multiple_of(4096);
    memory_map
        .iter()
        .filter(|region| region.kind == memmap_type::RAM)
        .filter_map(|region| {
            let start = region.addr.max(floor).next_multiple_of(4096);
            let end = region.end().min(MAPPED_LIMIT) & !4095;
            (end > start).then(|| (start, (end - start).min(HEAP_MAX)))
        })
        .max_by_key(|&(_, size)| size)
}

/// The global allocator and the kernel image's end, from the linker script.
#[cfg(target_os = "none")]
mod allocator {
    use linked_list_allocator::LockedHeap;

    #[global_allocator]
    static ALLOCATOR: LockedHeap = LockedHeap::empty();

    extern "C" {
        /// End of the kernel image (`.bss` included), from `linker.ld`.
        static __kernel_end: u8;
    }

    /// First byte after the kernel image.
    pub fn kernel_end() -> u64 {
        core::ptr::addr_of!(__kernel_end) as u64
    }

    /// Hands `size` bytes at `start` to the allocator.
    ///
    /// # Safety
    /// The range must be unused RAM, identity-mapped and writable, and
    /// nothing else may ever use it.
    pub unsafe fn init(start: u64, size: u64) {
        // SAFETY: as the caller promises.
        unsafe { ALLOCATOR.lock().init(start as *mut u8, size as usize) };
    }

    /// (bytes in use, bytes free).
    pub fn usage() -> (usize, usize) {
        let heap = ALLOCATOR.lock();
        (heap.used(), heap.free())
    }

    /// (start address, size) of the heap.
    pub fn bounds() -> (u64, u64) {
        let heap = ALLOCATOR.lock();
        (heap.bottom() as u64, heap.size() as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn region(addr: u64, size: u64, kind: u32) -> MemoryRegion {
        MemoryRegion { addr, size, kind }
    }

    const KERNEL_END: u64 = 0x14_1d38;

    #[test]
    fn heap_starts_page_aligned_above_the_kernel_and_is_capped() {
        let map = [
            region(0, 0x9_fc00, memmap_type::RAM),
            region(0x10_0000, 0x7f0_0000, memmap_type::RAM),
        ];
        assert_eq!(choose(&map, KERNEL_END), Some((0x14_2000, HEAP_MAX)));
    }

    #[test]
    fn the_largest_ram_region_wins_and_reserved_ones_never_do() {
        let map = [
            region(0x10_0000, 0x10_0000, memmap_type::RAM),
            region(0x100_0000, 0x30_0000, memmap_type::RAM),
            region(0x200_0000, 0x1000_0000, memmap_type::RESERVED),
        ];
        assert_eq!(choose(&map, KERNEL_END), Some((0x100_0000, 0x30_0000)));
        assert_eq!(choose(&map[2..], KERNEL_END), None);
    }

    #[test]
    fn the_heap_stays_below_4_gib() {
        let map = [region(0xffff_0000, 0x2000_0000, memmap_type::RAM)];
        assert_eq!(choose(&map, KERNEL_END), Some((0xffff_0000, 0x1_0000)));
    }
}
