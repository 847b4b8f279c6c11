//! The kernel heap: `linked_list_allocator` on the largest RAM region above
//! the kernel image, as the PVH memory map describes it.
//!
//! Interrupt handlers never allocate or free (see `executor.rs` for how
//! wakers avoid freeing), so the allocator's spinlock is only ever taken in
//! task context and cannot deadlock against an interrupt handler.

use crate::bootinfo::{MemoryRegion, MAPPED_LIMIT};
use linked_list_allocator::LockedHeap;
use shared::pvh::memmap_type;

#[global_allocator]
static ALLOCATOR: LockedHeap = LockedHeap::empty();

/// Upper bound of the heap: plenty for this kernel, and it bounds the time a
/// runaway allocation loop takes to hit the out-of-memory report.
pub const HEAP_MAX: u64 = 64 << 20;
/// Lower bound: below this the kernel refuses to start.
pub const HEAP_MIN: u64 = 1 << 20;

extern "C" {
    /// End of the kernel image (`.bss` included), from `linker.ld`.
    static __kernel_end: u8;
}

/// First byte after the kernel image.
pub fn kernel_end() -> u64 {
    core::ptr::addr_of!(__kernel_end) as u64
}

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
