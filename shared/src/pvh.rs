//! The PVH boot ABI's structures, defined once for the loader (the VMM) and
//! the kernel (the guest): `struct hvm_start_info` and
//! `struct hvm_memmap_table_entry` of Xen's `public/arch-x86/hvm/start_info.h`.
//!
//! The loader passes the physical address of an [`HvmStartInfo`] in `EBX`.
//! Both structures are little-endian, `repr(C)` and without padding, so they
//! can be copied to and from guest memory as they are.

/// [`HvmStartInfo::magic`]: "xEn3" with bit 7 of the "E" set
/// (`XEN_HVM_START_MAGIC_VALUE`).
pub const START_MAGIC: u32 = 0x336e_c578;

/// The first version whose start info carries the memory map
/// ([`HvmStartInfo::memmap_paddr`], [`HvmStartInfo::memmap_entries`]).
pub const VERSION_WITH_MEMMAP: u32 = 1;

/// `struct hvm_start_info`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HvmStartInfo {
    /// Must be [`START_MAGIC`].
    pub magic: u32,
    /// Version of this structure; fields from `memmap_paddr` on exist from
    /// [`VERSION_WITH_MEMMAP`].
    pub version: u32,
    /// `SIF_*` flags (Xen's start-info flags; 0 outside Xen).
    pub flags: u32,
    /// Number of modules in the module list.
    pub nr_modules: u32,
    /// Physical address of the module list (`hvm_modlist_entry` array).
    pub modlist_paddr: u64,
    /// Physical address of the NUL-terminated command line, 0 if none.
    pub cmdline_paddr: u64,
    /// Physical address of the ACPI RSDP, 0 if none.
    pub rsdp_paddr: u64,
    /// Physical address of the memory map ([`HvmMemmapEntry`] array).
    pub memmap_paddr: u64,
    /// Number of entries in the memory map.
    pub memmap_entries: u32,
    /// Must be zero.
    pub reserved: u32,
}

/// `struct hvm_memmap_table_entry`: one range of the E820-style memory map.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HvmMemmapEntry {
    /// Physical start address.
    pub addr: u64,
    /// Length in bytes.
    pub size: u64,
    /// One of the [`memmap_type`] values.
    pub kind: u32,
    /// Must be zero.
    pub reserved: u32,
}

/// `struct hvm_modlist_entry`: one module (for Linux: the initrd) the loader
/// placed in memory, listed at [`HvmStartInfo::modlist_paddr`].
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HvmModlistEntry {
    /// Physical address of the module.
    pub paddr: u64,
    /// Size of the module in bytes.
    pub size: u64,
    /// Physical address of the module's NUL-terminated command line, 0 if none.
    pub cmdline_paddr: u64,
    /// Must be zero.
    pub reserved: u64,
}

/// Memory map entry types (`XEN_HVM_MEMMAP_TYPE_*`, the E820 types).
pub mod memmap_type {
    /// Usable RAM.
    pub const RAM: u32 = 1;
    /// Reserved: not to be used as RAM.
    pub const RESERVED: u32 = 2;
    /// ACPI tables, reclaimable after they are read.
    pub const ACPI: u32 = 3;
    /// ACPI non-volatile storage.
    pub const NVS: u32 = 4;
    /// RAM with errors.
    pub const UNUSABLE: u32 = 5;
    /// Disabled memory.
    pub const DISABLED: u32 = 6;
    /// Persistent memory.
    pub const PMEM: u32 = 7;
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::mem::{align_of, offset_of, size_of};

    // Offsets per `public/arch-x86/hvm/start_info.h`.
    #[test]
    fn start_info_layout() {
        assert_eq!(size_of::<HvmStartInfo>(), 56);
        assert_eq!(align_of::<HvmStartInfo>(), 8);
        assert_eq!(offset_of!(HvmStartInfo, magic), 0);
        assert_eq!(offset_of!(HvmStartInfo, version), 4);
        assert_eq!(offset_of!(HvmStartInfo, flags), 8);
        assert_eq!(offset_of!(HvmStartInfo, nr_modules), 12);
        assert_eq!(offset_of!(HvmStartInfo, modlist_paddr), 16);
        assert_eq!(offset_of!(HvmStartInfo, cmdline_paddr), 24);
        assert_eq!(offset_of!(HvmStartInfo, rsdp_paddr), 32);
        assert_eq!(offset_of!(HvmStartInfo, memmap_paddr), 40);
        assert_eq!(offset_of!(HvmStartInfo, memmap_entries), 48);
        assert_eq!(offset_of!(HvmStartInfo, reserved), 52);
    }

    #[test]
    fn modlist_entry_layout() {
        assert_eq!(size_of::<HvmModlistEntry>(), 32);
        assert_eq!(offset_of!(HvmModlistEntry, paddr), 0);
        assert_eq!(offset_of!(HvmModlistEntry, size), 8);
        assert_eq!(offset_of!(HvmModlistEntry, cmdline_paddr), 16);
        assert_eq!(offset_of!(HvmModlistEntry, reserved), 24);
    }

    #[test]
    fn memmap_entry_layout() {
        assert_eq!(size_of::<HvmMemmapEntry>(), 24);
        assert_eq!(offset_of!(HvmMemmapEntry, addr), 0);
        assert_eq!(offset_of!(HvmMemmapEntry, size), 8);
        assert_eq!(offset_of!(HvmMemmapEntry, kind), 16);
        assert_eq!(offset_of!(HvmMemmapEntry, reserved), 20);
    }

    #[test]
    fn magic_spells_xen3_with_bit_7_of_e_set() {
        assert_eq!(&START_MAGIC.to_le_bytes(), &[b'x', b'E' | 0x80, b'n', b'3']);
    }
}
