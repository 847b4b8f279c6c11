//! The PVH `hvm_start_info` structure: validation and a private copy.
//!
//! The structure, the command line and the memory map live in guest memory
//! the loader chose, which may well be the RAM we later hand to the heap. So
//! everything we need is copied into the kernel image (`.bss`) first, and the
//! rest of the kernel only ever sees [`BootInfo`].
//!
//! The layouts are `shared::pvh`'s. [`BootInfo::parse`] reads them through a
//! [`PhysicalMemory`], so the same validation runs on the loader's memory in
//! the kernel and on fabricated structures in tests.

use core::fmt;
use core::ops::Range;

use shared::boot::CMDLINE_MAX;
use shared::pvh::{HvmMemmapEntry, HvmStartInfo, START_MAGIC, VERSION_WITH_MEMMAP};

/// Most memory map entries we keep; more are rejected.
pub const MEMMAP_MAX: usize = 128;
/// Only the first 4 GiB are identity-mapped by the boot code.
pub const MAPPED_LIMIT: u64 = 4 << 30;

/// Where [`BootInfo::parse`] reads the loader's structures from.
pub trait PhysicalMemory {
    /// The `hvm_start_info` at physical address `paddr`.
    fn start_info(&self, paddr: u64) -> HvmStartInfo;
    /// The memory map entry at physical address `paddr`.
    fn memmap_entry(&self, paddr: u64) -> HvmMemmapEntry;
    /// The byte at physical address `paddr`.
    fn byte(&self, paddr: u64) -> u8;
}

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
    OverlapsKernel { what: &'static str, addr: u64 },
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
                "hvm_start_info magic is {magic:#010x}, expected {START_MAGIC:#010x}: not booted by PVH?"
            ),
            Self::NoMemoryMap { version } => {
                write!(f, "hvm_start_info version {version} carries no memory map (need version >= 1 and entries > 0)")
            }
            Self::Unmapped { what, addr } => {
                write!(f, "{what} at {addr:#x} lies above the identity-mapped 4 GiB")
            }
            Self::OverlapsKernel { what, addr } => {
                write!(f, "{what} at {addr:#x} lies inside the kernel image")
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

    /// Validates `hvm_start_info` at physical address `paddr` in `memory`
    /// and copies what the kernel needs into `self`. `kernel` is the kernel
    /// image's physical range: boot data there was overwritten by the load
    /// and the `.bss` clearing, so it is rejected.
    pub fn parse(
        &mut self,
        paddr: u64,
        memory: &impl PhysicalMemory,
        kernel: Range<u64>,
    ) -> Result<(), BootInfoError> {
        if paddr == 0 {
            return Err(BootInfoError::NullPointer);
        }
        let start_info_size = size_of::<HvmStartInfo>() as u64;
        check_readable("hvm_start_info", paddr, start_info_size, &kernel)?;
        let info = memory.start_info(paddr);
        if info.magic != START_MAGIC {
            return Err(BootInfoError::BadMagic(info.magic));
        }
        self.start_info = paddr;
        self.version = info.version;

        self.cmdline_len = 0;
        if info.cmdline_paddr != 0 {
            loop {
                let addr = info.cmdline_paddr + self.cmdline_len as u64;
                check_readable("command line", addr, 1, &kernel)?;
                let byte = memory.byte(addr);
                if byte == 0 {
                    break;
                }
                if self.cmdline_len == CMDLINE_MAX {
                    return Err(BootInfoError::CmdlineTooLong);
                }
                self.cmdline[self.cmdline_len] = byte;
                self.cmdline_len += 1;
            }
            if core::str::from_utf8(&self.cmdline[..self.cmdline_len]).is_err() {
                return Err(BootInfoError::CmdlineNotUtf8);
            }
        }

        let (memmap_paddr, entries) = if self.version >= VERSION_WITH_MEMMAP {
            (info.memmap_paddr, info.memmap_entries)
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
        let entry_size = size_of::<HvmMemmapEntry>() as u64;
        check_readable(
            "memory map",
            memmap_paddr,
            u64::from(entries) * entry_size,
            &kernel,
        )?;
        for (i, region) in self.memmap[..entries as usize].iter_mut().enumerate() {
            let entry = memory.memmap_entry(memmap_paddr + entry_size * i as u64);
            *region = MemoryRegion {
                addr: entry.addr,
                size: entry.size,
                kind: entry.kind,
            };
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

/// `len` bytes at `addr` are identity-mapped and clear of the kernel image.
fn check_readable(
    what: &'static str,
    addr: u64,
    len: u64,
    kernel: &Range<u64>,
) -> Result<(), BootInfoError> {
    let end = match addr.checked_add(len) {
        Some(end) if end <= MAPPED_LIMIT => end,
        _ => return Err(BootInfoError::Unmapped { what, addr }),
    };
    if addr < kernel.end && kernel.start < end {
        return Err(BootInfoError::OverlapsKernel { what, addr });
    }
    Ok(())
}

#[cfg(test)]
mod tests;
