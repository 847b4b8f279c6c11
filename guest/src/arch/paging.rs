//! Small changes to the boot page tables: unmapped guard pages.
//!
//! `boot.rs` identity-maps 4 GiB with 2 MiB pages. Two 4 KiB holes are worth
//! a page table each: page 0, so a null-pointer access faults instead of
//! reading low memory, and the page below the boot stack, so a stack overflow
//! faults (and becomes a double fault on the IST stack, see `gdt.rs`) instead
//! of silently overwriting the page tables that sit below the stack in `.bss`.

use core::ptr::{addr_of_mut, read_volatile, write_volatile};
use x86_64::registers::control::Cr3;

const PRESENT: u64 = 1 << 0;
const WRITABLE: u64 = 1 << 1;
const HUGE: u64 = 1 << 7;
const ADDR_MASK: u64 = 0x000f_ffff_ffff_f000;
const PAGE: u64 = 4096;
const LARGE_PAGE: u64 = 2 << 20;

/// Page tables for split 2 MiB pages (the two guard pages may share one).
const SPARE_TABLES: usize = 2;

#[repr(C, align(4096))]
struct PageTable([u64; 512]);

static mut TABLES: [PageTable; SPARE_TABLES] = [const { PageTable([0; 512]) }; SPARE_TABLES];
static mut TABLES_USED: usize = 0;

/// Why a page could not be unmapped.
#[derive(Debug)]
pub enum PagingError {
    NotIdentityMapped(u64),
    OutOfTables,
}

impl core::fmt::Display for PagingError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::NotIdentityMapped(addr) => write!(f, "{addr:#x} is not in the boot identity map"),
            Self::OutOfTables => write!(f, "no spare page table left"),
        }
    }
}

/// Makes the 4 KiB page at `addr` not present, splitting its 2 MiB page if
/// needed.
///
/// # Safety
/// Nothing may need the page any more; must run before interrupts are enabled
/// (boot is single-threaded).
pub unsafe fn unmap_page(addr: u64) -> Result<(), PagingError> {
    let addr = addr & !(PAGE - 1);
    let (frame, _) = Cr3::read();
    let pml4 = frame.start_address().as_u64() as *mut u64;
    // SAFETY: the boot page tables lie in the identity-mapped 4 GiB, so
    // their physical addresses are valid pointers; only present entries are
    // followed, and the caller guarantees nothing uses the page (see `# Safety`).
    unsafe {
        let pml4e = read_volatile(pml4.add(((addr >> 39) & 511) as usize));
        if pml4e & PRESENT == 0 {
            return Err(PagingError::NotIdentityMapped(addr));
        }
        let pdpt = (pml4e & ADDR_MASK) as *mut u64;
        let pdpte = read_volatile(pdpt.add(((addr >> 30) & 511) as usize));
        if pdpte & PRESENT == 0 || pdpte & HUGE != 0 {
            return Err(PagingError::NotIdentityMapped(addr));
        }
        let pd = (pdpte & ADDR_MASK) as *mut u64;
        let pde_ptr = pd.add(((addr >> 21) & 511) as usize);
        let pde = read_volatile(pde_ptr);
        if pde & PRESENT == 0 {
            return Err(PagingError::NotIdentityMapped(addr));
        }
        let pt = if pde & HUGE != 0 {
            let used = &mut *addr_of_mut!(TABLES_USED);
            if *used == SPARE_TABLES {
                return Err(PagingError::OutOfTables);
            }
            let table = &mut (*addr_of_mut!(TABLES))[*used];
            *used += 1;
            let base = pde & ADDR_MASK & !(LARGE_PAGE - 1);
            for (i, entry) in table.0.iter_mut().enumerate() {
                *entry = (base + i as u64 * PAGE) | PRESENT | WRITABLE;
            }
            let pt = table.0.as_mut_ptr();
            // The kernel is linked at its physical address: virtual == physical.
            write_volatile(pde_ptr, pt as u64 | PRESENT | WRITABLE);
            pt
        } else {
            (pde & ADDR_MASK) as *mut u64
        };
        write_volatile(pt.add(((addr >> 12) & 511) as usize), 0);
    }
    // Drop every cached translation of the old 2 MiB page.
    x86_64::instructions::tlb::flush_all();
    Ok(())
}

/// Whether `addr` is mapped (for the tests).
pub fn is_mapped(addr: u64) -> bool {
    let (frame, _) = Cr3::read();
    let mut table = frame.start_address().as_u64() as *const u64;
    for shift in [39u64, 30, 21, 12] {
        // SAFETY: the tables lie in the identity-mapped 4 GiB and only present
        // entries are followed; reads only.
        let entry = unsafe { read_volatile(table.add(((addr >> shift) & 511) as usize)) };
        if entry & PRESENT == 0 {
            return false;
        }
        if shift == 12 || (entry & HUGE != 0 && shift != 39) {
            return true;
        }
        table = (entry & ADDR_MASK) as *const u64;
    }
    true
}

/// Physical memory read through the boot identity map, for
/// [`crate::bootinfo::BootInfo::parse`].
pub struct IdentityMapped {
    _private: (),
}

impl IdentityMapped {
    /// # Safety
    /// The boot identity map of the first 4 GiB must be in place, and nothing
    /// may write the memory read through this value while it is in use
    /// (single-threaded boot, interrupts off).
    pub unsafe fn new() -> Self {
        Self { _private: () }
    }
}

impl crate::bootinfo::PhysicalMemory for IdentityMapped {
    fn start_info(&self, paddr: u64) -> shared::pvh::HvmStartInfo {
        // SAFETY: `new`'s contract: physical = virtual and nobody writes the
        // memory; the read is unaligned because the loader need not align the
        // structure, and every bit pattern is a valid `HvmStartInfo`. An
        // address outside the map faults (a fatal report), it reads no
        // memory it should not.
        unsafe { core::ptr::read_unaligned(paddr as *const shared::pvh::HvmStartInfo) }
    }

    fn memmap_entry(&self, paddr: u64) -> shared::pvh::HvmMemmapEntry {
        // SAFETY: as in `start_info`; every bit pattern is a valid entry.
        unsafe { core::ptr::read_unaligned(paddr as *const shared::pvh::HvmMemmapEntry) }
    }

    fn byte(&self, paddr: u64) -> u8 {
        // SAFETY: as in `start_info`.
        unsafe { read_volatile(paddr as *const u8) }
    }
}
