//! Guest physical memory: the PC layout and its backing.
//!
//! ```text
//! 0x0000_0000 - 0x0009_FBFF  RAM (conventional memory)       E820 RAM
//! 0x0009_FC00 - 0x0009_FFFF  RAM, reported as EBDA           E820 reserved
//! 0x000A_0000 - 0x000F_FFFF  hole (VGA, option ROMs, BIOS)   E820 reserved, unbacked
//! 0x0010_0000 - size         RAM (extended memory)           E820 RAM
//! ```
//!
//! Everything stays below 3 GiB, so the layout needs no 32-bit PCI hole and
//! KVM's TSS pages near 4 GiB never collide with RAM.
use std::ops::Range;

use vm_memory::{GuestAddress, GuestMemoryMmap};

/// End of the low RAM slot (640 KiB).
pub const LOW_RAM_END: u64 = 0xA_0000;
/// Start of the EBDA the memory map reserves at the top of low RAM.
pub const EBDA_START: u64 = 0x9_FC00;
/// Start of extended memory (1 MiB).
pub const HIGH_RAM_START: u64 = 0x10_0000;
/// Default guest RAM size in MiB.
pub const DEFAULT_MIB: u32 = 128;
/// Smallest accepted RAM size in MiB: the smallest the embedded guest boots
/// in (it needs a free 1 MiB region above its image; with 2 MiB it stops with
/// `BOOT_FAILURE`).
pub const MIN_MIB: u32 = 3;
/// Largest accepted RAM size in MiB.
pub const MAX_MIB: u32 = 3072;

/// A RAM size the machine cannot have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("--memory: {0} is out of range, not in {MIN_MIB}..={MAX_MIB} MiB")]
pub struct SizeError(pub u32);

/// The guest's RAM layout for a given size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryLayout {
    ram_end: u64,
}

impl MemoryLayout {
    /// The layout of a machine with `mib` MiB of address space covered by RAM
    /// (the 384 KiB hole below 1 MiB included, as on a PC).
    pub fn new(mib: u32) -> Result<Self, SizeError> {
        if !(MIN_MIB..=MAX_MIB).contains(&mib) {
            return Err(SizeError(mib));
        }
        Ok(Self {
            ram_end: u64::from(mib) << 20,
        })
    }

    /// The byte after the last byte of RAM.
    pub fn ram_end(&self) -> u64 {
        self.ram_end
    }

    /// The backed regions: `(start, length)`.
    pub fn regions(&self) -> [(GuestAddress, usize); 2] {
        [
            (GuestAddress(0), LOW_RAM_END as usize),
            (
                GuestAddress(HIGH_RAM_START),
                (self.ram_end - HIGH_RAM_START) as usize,
            ),
        ]
    }

    /// Whether `range` lies entirely in one RAM region.
    pub fn ram_contains(&self, range: &Range<u64>) -> bool {
        self.regions()
            .iter()
            .any(|&(start, len)| range.start >= start.0 && range.end <= start.0 + len as u64)
    }

    /// The E820 map: `(start, length, is_ram)`.
    pub fn e820(&self) -> [(u64, u64, bool); 3] {
        [
            (0, EBDA_START, true),
            (EBDA_START, HIGH_RAM_START - EBDA_START, false),
            (HIGH_RAM_START, self.ram_end - HIGH_RAM_START, true),
        ]
    }

    /// Anonymous private memory for every region.
    pub fn allocate(&self) -> Result<GuestMemoryMmap, vm_memory::mmap::FromRangesError> {
        GuestMemoryMmap::from_ranges(&self.regions())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validates_size() {
        assert_eq!(MemoryLayout::new(1), Err(SizeError(1)));
        assert_eq!(MemoryLayout::new(MAX_MIB + 1), Err(SizeError(MAX_MIB + 1)));
        assert!(MemoryLayout::new(MIN_MIB).is_ok());
        assert!(MemoryLayout::new(MAX_MIB).is_ok());
    }

    #[test]
    fn e820_covers_the_address_space_without_gaps() {
        let layout = MemoryLayout::new(128).unwrap();
        let map = layout.e820();
        assert_eq!(map[0].0, 0);
        for pair in map.windows(2) {
            assert_eq!(pair[0].0 + pair[0].1, pair[1].0);
        }
        assert_eq!(map[2].0 + map[2].1, 128 << 20);
        assert!(layout.ram_contains(&(0..0x1000)));
        assert!(!layout.ram_contains(&(0x9_f000..0xa_1000)));
        assert!(!layout.ram_contains(&(0xa_0000..0xa_0001)));
    }
}
