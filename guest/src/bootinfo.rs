//! The PVH `hvm_start_info` structure: validation and a private copy.
//!
//! The structure, the command line and the memory map live in guest memory
//! the loader chose, which may well be the RAM we later hand to the heap. So
//! everything we need is copied into the kernel image (`.bss`) first, and the
//! rest of the kernel only ever sees [`BootInfo`].
//!
//! Layout (Xen `arch-x86/hvm/start_info.h`): magic u32 @0, version u32 @4,
//! flags u32 @8, nr_modules u32 @12, modlist_paddr u64 @16, cmdline_paddr u64
//! @24, rsdp_paddr u64 @32, memmap_paddr u64 @40 and memmap_entries u32 @48
//! (version >= 1). A memory map entry is {addr u64, size u64, type u32,
//! reserved u32}.

use core::fmt;

/// `hvm_start_info.magic`: "xEn3" with bit 7 of the "E" cleared.
pub const START_INFO_MAGIC: u32 = 0x336e_c578;
/// Memory map entry type of usable RAM.
pub const MEMMAP_TYPE_RAM: u32 = 1;
/// Longest command line we keep; longer ones are rejected.
pub const CMDLINE_MAX: usize = 1024;
/// Most memory map entries we keep; more are rejected.
pub const MEMMAP_MAX: usize = 128;
/// Only the first 4 GiB are identity-mapped by `boot.rs`.
pub const MAPPED_LIMIT: u64 = 4 << 30;

/// One memory map entry.
#[derive(Clone, Copy, Debug, Default)]
pub struct MemoryRegion {
    pub addr: u64,
    pub size: u64,
    pub kind: u32,
}

impl MemoryRegion {
    pub fn end(&self) -> u64 {
        self.addr.saturating_add(self.size)
    }
}

/// What the kernel keeps of `hvm_start_info`.
pub struct BootInfo {
    /// Address of the structure (for reports).
    pub start_info: u64,
    /// `hvm_start_info.version`.
    pub version: u32,
    cmdline: [u8; CMDLINE_MAX],
    cmdline_len: usize,
    memmap: [MemoryRegion; MEMMAP_MAX],
    memmap_len: usize,
}

/// Why the boot information is unusable.
#[derive(Debug)]
pub enum BootInfoError {
    NullPointer,
    BadMagic(u32),
    NoMemoryMap { version: u32 },
    Unmapped { what: &'static str, addr: u64 },
    CmdlineTooLong,
    CmdlineNotUtf8,
    TooManyMemmapEntries(u32),
}

impl fmt::Display for BootInfoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NullPointer => write!(f, "no hvm_start_info (EBX = 0): not booted by PVH?"),
            Self::BadMagic(magic) => write!(
                f,
                "hvm_start_info magic is {magic:#010x}, expected {START_INFO_MAGIC:#010x}: not booted by PVH?"
            ),
            Self::NoMemoryMap { version } => {
                write!(f, "hvm_start_info version {version} carries no memory map (need version >= 1 and entries > 0)")
            }
            Self::Unmapped { what, addr } => {
                write!(f, "{what} at {addr:#x} lies above the identity-mapped 4 GiB")
            }
            Self::CmdlineTooLong => write!(f, "command line longer than {CMDLINE_MAX} bytes"),
            Self::CmdlineNotUtf8 => write!(f, "command line is not UTF-8"),
            Self::TooManyMemmapEntries(n) => {
                write!(f, "memory map has {n} entries, at most {MEMMAP_MAX} supported")
            }
        }
    }
}

impl BootInfo {
    pub const fn empty() -> Self {
        Self {
            start_info: 0,
            version: 0,
            cmdline: [0; CMDLINE_MAX],
            cmdline_len: 0,
            memmap: [MemoryRegion {
                addr: 0,
                size: 0,
                kind: 0,
            }; MEMMAP_MAX],
            memmap_len: 0,
        }
    }

    /// Validates `hvm_start_info` at physical address `paddr` and copies what
    /// the kernel needs into `self`.
    ///
    /// # Safety
    /// `paddr` must be the address the PVH loader passed in EBX, and memory
    /// must still be identity-mapped as `boot.rs` left it.
    pub unsafe fn parse(&mut self, paddr: u64) -> Result<(), BootInfoError> {
        if paddr == 0 {
            return Err(BootInfoError::NullPointer);
        }
        check_mapped("hvm_start_info", paddr, 56)?;
        let read_u32 =
            |offset: u64| unsafe { core::ptr::read_unaligned((paddr + offset) as *const u32) };
        let read_u64 =
            |offset: u64| unsafe { core::ptr::read_unaligned((paddr + offset) as *const u64) };

        let magic = read_u32(0);
        if magic != START_INFO_MAGIC {
            return Err(BootInfoError::BadMagic(magic));
        }
        self.start_info = paddr;
        self.version = read_u32(4);

        let cmdline_paddr = read_u64(24);
        self.cmdline_len = 0;
        if cmdline_paddr != 0 {
            check_mapped("command line", cmdline_paddr, 1)?;
            loop {
                if self.cmdline_len == CMDLINE_MAX {
                    return Err(BootInfoError::CmdlineTooLong);
                }
                let addr = cmdline_paddr + self.cmdline_len as u64;
                check_mapped("command line", addr, 1)?;
                // SAFETY: identity-mapped, checked above.
                let byte = unsafe { core::ptr::read_volatile(addr as *const u8) };
                if byte == 0 {
                    break;
                }
                self.cmdline[self.cmdline_len] = byte;
                self.cmdline_len += 1;
            }
            if core::str::from_utf8(&self.cmdline[..self.cmdline_len]).is_err() {
                return Err(BootInfoError::CmdlineNotUtf8);
            }
        }

        let (memmap_paddr, entries) = if self.version >= 1 {
            (read_u64(40), read_u32(48))
        } else {
            (0, 0)
        };
        if memmap_paddr == 0 || entries == 0 {
            return Err(BootInfoError::NoMemoryMap {
                version: self.version,
            });
        }
        if entries as usize > MEMMAP_MAX {
            return Err(BootInfoError::TooManyMemmapEntries(entries));
        }
        check_mapped("memory map", memmap_paddr, u64::from(entries) * 24)?;
        for i in 0..entries as usize {
            let entry = memmap_paddr + 24 * i as u64;
            // SAFETY: identity-mapped, checked above.
            unsafe {
                self.memmap[i] = MemoryRegion {
                    addr: core::ptr::read_unaligned(entry as *const u64),
                    size: core::ptr::read_unaligned((entry + 8) as *const u64),
                    kind: core::ptr::read_unaligned((entry + 16) as *const u32),
                };
            }
        }
        self.memmap_len = entries as usize;
        Ok(())
    }

    /// The kernel command line (empty if none was given).
    pub fn cmdline(&self) -> &str {
        // Validated as UTF-8 in `parse`.
        core::str::from_utf8(&self.cmdline[..self.cmdline_len]).unwrap_or("")
    }

    /// The value of `key=value` on the command line, if present.
    pub fn param(&self, key: &str) -> Option<&str> {
        param(self.cmdline(), key)
    }

    /// The memory map, as the loader gave it.
    pub fn memory_map(&self) -> &[MemoryRegion] {
        &self.memmap[..self.memmap_len]
    }
}

/// The value of the first whitespace-separated `key=value` token in `cmdline`.
pub fn param<'a>(cmdline: &'a str, key: &str) -> Option<&'a str> {
    cmdline.split_ascii_whitespace().find_map(|token| {
        token
            .strip_prefix(key)
            .and_then(|rest| rest.strip_prefix('='))
    })
}

fn check_mapped(what: &'static str, addr: u64, len: u64) -> Result<(), BootInfoError> {
    match addr.checked_add(len) {
        Some(end) if end <= MAPPED_LIMIT => Ok(()),
        _ => Err(BootInfoError::Unmapped { what, addr }),
    }
}
