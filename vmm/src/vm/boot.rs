//! PVH boot: checks and loads the kernel ELF, then writes the boot
//! information the PVH ABI defines (`hvm_start_info`, the E820-style memory
//! map and the command line) into guest memory.
//!
//! Only the ELF and PVH standards are relied on: the kernel's `PT_LOAD`
//! segments are loaded at their physical addresses and the entry point is the
//! `XEN_ELFNOTE_PHYS32_ENTRY` note (type 18, name "Xen") of any `PT_NOTE`
//! segment. See <https://xenbits.xen.org/docs/unstable/misc/pvh.html>.
use std::io::Cursor;
use std::ops::Range;

use linux_loader::loader::elf::{Elf, PvhBootCapability};
use linux_loader::loader::KernelLoader;
use shared::pvh::{self, memmap_type, HvmMemmapEntry, HvmModlistEntry, HvmStartInfo};
use vm_memory::{ByteValued, Bytes, GuestAddress, GuestMemoryMmap};

use super::memory::{self, MemoryLayout};

/// Guest-physical address of the boot GDT (4 descriptors).
pub const GDT_ADDR: u64 = 0x500;
/// Guest-physical address of `hvm_start_info`.
pub const START_INFO_ADDR: u64 = 0x6000;
/// Guest-physical address of the memory map (right after `hvm_start_info`).
pub const MEMMAP_ADDR: u64 = START_INFO_ADDR + 0x40;
/// Guest-physical address of the module list (one `hvm_modlist_entry`, the
/// initrd), in the same page as `hvm_start_info`.
pub const MODLIST_ADDR: u64 = START_INFO_ADDR + 0x800;
/// Guest-physical address of the NUL-terminated command line.
pub const CMDLINE_ADDR: u64 = 0x2_0000;
/// Longest command line accepted, in bytes, without the terminating NUL
/// (the guest keeps one this long).
pub use shared::boot::CMDLINE_MAX;

/// Guest memory the VMM writes boot data to; the kernel may not load there.
pub const BOOT_DATA: [Range<u64>; 3] = [
    GDT_ADDR..GDT_ADDR + 0x20,
    START_INFO_ADDR..START_INFO_ADDR + 0x1000,
    CMDLINE_ADDR..CMDLINE_ADDR + CMDLINE_MAX as u64 + 1,
];

/// ELF note type of the PVH 32-bit entry point.
const XEN_ELFNOTE_PHYS32_ENTRY: u32 = 18;
const PT_LOAD: u32 = 1;
const PT_NOTE: u32 = 4;

/// Why a kernel cannot be booted.
#[derive(Debug, thiserror::Error)]
pub enum BootError {
    /// The file does not start with the ELF magic.
    #[error("not an ELF file")]
    NotElf,
    /// A header or segment extends past the end of the file.
    #[error("truncated ELF: {0} extends past the end of the file")]
    Truncated(&'static str),
    /// An ELF, but not one for this machine.
    #[error("unsupported ELF: {0}")]
    Unsupported(&'static str),
    /// A `PT_NOTE` segment's notes do not add up, or the PVH note's
    /// descriptor is too short for an address.
    #[error("malformed ELF note: {0}")]
    BadNote(&'static str),
    /// The PVH entry point is in no loadable segment, so nothing the kernel
    /// brings would run.
    #[error("the PVH entry point {0:#x} is outside every loadable segment")]
    EntryOutsideSegments(u32),
    /// Two loadable segments claim the same memory.
    #[error("kernel segments {0:#x}-{1:#x} and {2:#x}-{3:#x} overlap")]
    SegmentsOverlap(u64, u64, u64, u64),
    /// No `PT_NOTE` segment holds a Xen `PHYS32_ENTRY` note.
    #[error("no PVH entry note (XEN_ELFNOTE_PHYS32_ENTRY) in the ELF: not a PVH kernel")]
    NoPvhNote,
    /// A segment lies outside guest RAM.
    #[error(
        "the kernel does not fit in memory: segment {start:#x}-{end:#x} is outside guest RAM \
         (0-0x9ffff and 0x100000-{ram_end:#x}); try a larger --memory"
    )]
    DoesNotFit {
        /// First byte of the segment.
        start: u64,
        /// Byte after the segment.
        end: u64,
        /// Byte after the end of RAM.
        ram_end: u64,
    },
    /// A segment overlaps the VMM's boot data.
    #[error("the kernel segment {start:#x}-{end:#x} overlaps the boot data at {boot:#x}")]
    OverlapsBootData {
        /// First byte of the segment.
        start: u64,
        /// Byte after the segment.
        end: u64,
        /// Start of the boot data it overlaps.
        boot: u64,
    },
    /// The initrd does not fit in RAM above the kernel.
    #[error(
        "the initrd ({size} bytes) does not fit in guest RAM between the kernel's end \
         ({kernel_end:#x}) and the end of RAM ({ram_end:#x}); try a larger --memory"
    )]
    InitrdDoesNotFit {
        /// Size of the initrd in bytes.
        size: u64,
        /// First page-aligned byte after the kernel's segments.
        kernel_end: u64,
        /// Byte after the end of RAM.
        ram_end: u64,
    },
    /// The command line is longer than [`CMDLINE_MAX`].
    #[error("the kernel command line is {0} bytes long; the limit is {CMDLINE_MAX}")]
    CmdlineTooLong(usize),
    /// The command line contains a NUL byte.
    #[error("the kernel command line contains a NUL byte")]
    CmdlineNul,
    /// `linux-loader` rejected the image.
    #[error("cannot load the kernel: {0}")]
    Load(#[from] linux_loader::loader::Error),
    /// Writing boot data to guest memory failed.
    #[error("cannot write boot data to guest memory: {0}")]
    Memory(#[from] vm_memory::GuestMemoryError),
}

/// What [`inspect`] learnt from an ELF.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElfInfo {
    /// The PVH entry point (physical, 32-bit).
    pub pvh_entry: u32,
    /// Physical ranges of the loadable segments (`p_paddr`, `p_memsz`).
    pub segments: Vec<Range<u64>>,
    /// The parts of them the file does not fill (`p_filesz` to `p_memsz`):
    /// zero-filled memory such as `.bss`.
    pub zero_fill: Vec<Range<u64>>,
}

fn u16_at(bytes: &[u8], offset: usize) -> Option<u16> {
    Some(u16::from_le_bytes(
        bytes.get(offset..offset + 2)?.try_into().ok()?,
    ))
}
fn u32_at(bytes: &[u8], offset: usize) -> Option<u32> {
    Some(u32::from_le_bytes(
        bytes.get(offset..offset + 4)?.try_into().ok()?,
    ))
}
fn u64_at(bytes: &[u8], offset: usize) -> Option<u64> {
    Some(u64::from_le_bytes(
        bytes.get(offset..offset + 8)?.try_into().ok()?,
    ))
}

/// Checks that `elf` is a little-endian x86-64 ELF whose segments are all in
/// the file, and finds its loadable segments and PVH entry point.
///
/// Every `PT_NOTE` segment is searched (`linux-loader` keeps the result of
/// the last one only).
pub fn inspect(elf: &[u8]) -> Result<ElfInfo, BootError> {
    if elf.len() < 4 || &elf[..4] != b"\x7fELF" {
        return Err(BootError::NotElf);
    }
    const EHDR_SIZE: usize = 64;
    const PHDR_SIZE: usize = 56;
    if elf.len() < EHDR_SIZE {
        return Err(BootError::Truncated("the ELF header"));
    }
    if elf[4] != 2 {
        return Err(BootError::Unsupported("not a 64-bit ELF (ELFCLASS64)"));
    }
    if elf[5] != 1 {
        return Err(BootError::Unsupported("not little-endian"));
    }
    let header = |offset| u16_at(elf, offset).ok_or(BootError::Truncated("the ELF header"));
    if header(16)? != 2 {
        return Err(BootError::Unsupported("not an executable (ET_EXEC)"));
    }
    if header(18)? != 62 {
        return Err(BootError::Unsupported(
            "not an x86-64 executable (EM_X86_64)",
        ));
    }
    let phoff = u64_at(elf, 32).ok_or(BootError::Truncated("the ELF header"))?;
    let phentsize = usize::from(header(54)?);
    let phnum = usize::from(header(56)?);
    if phnum > 0 && phentsize < PHDR_SIZE {
        return Err(BootError::Unsupported(
            "program header entries are too small",
        ));
    }

    let mut segments = Vec::new();
    let mut zero_fill = Vec::new();
    let mut pvh_entry = None;
    for index in 0..phnum {
        let ph = usize::try_from(phoff)
            .ok()
            .and_then(|phoff| phoff.checked_add(index.checked_mul(phentsize)?))
            .and_then(|start| elf.get(start..start.checked_add(PHDR_SIZE)?))
            .ok_or(BootError::Truncated("the program header table"))?;
        let field = |offset| u64_at(ph, offset).unwrap_or_default();
        let p_type = u32_at(ph, 0).unwrap_or_default();
        let (p_offset, p_paddr, p_filesz, p_memsz) = (field(8), field(24), field(32), field(40));
        let file_range = usize::try_from(p_offset)
            .ok()
            .zip(usize::try_from(p_filesz).ok())
            .and_then(|(start, len)| Some(start..start.checked_add(len)?))
            .filter(|range| range.end <= elf.len())
            .ok_or(BootError::Truncated("a segment"))?;
        match p_type {
            // Checked whatever the memory size: the loader copies the file
            // bytes even of a segment with none.
            PT_LOAD if p_filesz > p_memsz => {
                return Err(BootError::Unsupported(
                    "a segment's file size exceeds its memory size",
                ));
            }
            PT_LOAD if p_memsz > 0 => {
                let end = p_paddr.checked_add(p_memsz).ok_or(BootError::Unsupported(
                    "a segment wraps around the address space",
                ))?;
                segments.push(p_paddr..end);
                if p_filesz < p_memsz {
                    zero_fill.push(p_paddr + p_filesz..end);
                }
            }
            PT_NOTE => {
                if let Some(entry) = find_pvh_note(&elf[file_range])? {
                    pvh_entry.get_or_insert(entry);
                }
            }
            _ => {}
        }
    }
    if segments.is_empty() {
        return Err(BootError::Unsupported("no loadable segment"));
    }
    let pvh_entry = pvh_entry.ok_or(BootError::NoPvhNote)?;
    if !segments.iter().any(|s| s.contains(&u64::from(pvh_entry))) {
        return Err(BootError::EntryOutsideSegments(pvh_entry));
    }
    for (i, a) in segments.iter().enumerate() {
        if let Some(b) = segments[i + 1..]
            .iter()
            .find(|b| a.start < b.end && b.start < a.end)
        {
            return Err(BootError::SegmentsOverlap(a.start, a.end, b.start, b.end));
        }
    }
    Ok(ElfInfo {
        pvh_entry,
        segments,
        zero_fill,
    })
}

/// The entry point in a Xen `PHYS32_ENTRY` note among `notes`, if any; an
/// error if a note's sizes run past the segment or the PVH note's
/// descriptor cannot hold an address. (Fewer than 12 bytes left over, too
/// few for a note header, are padding.)
fn find_pvh_note(mut notes: &[u8]) -> Result<Option<u32>, BootError> {
    const PAST_END: BootError =
        BootError::BadNote("a note's sizes run past the end of its PT_NOTE segment");
    while notes.len() >= 12 {
        let word = |offset| u32_at(notes, offset).map_or(0, |w| w as usize);
        let (namesz, descsz, kind) = (word(0), word(4), word(8) as u32);
        let name_end = namesz
            .checked_next_multiple_of(4)
            .and_then(|n| n.checked_add(12))
            .ok_or(PAST_END)?;
        let desc_end = name_end.checked_add(descsz).ok_or(PAST_END)?;
        let name = notes.get(12..12 + namesz).ok_or(PAST_END)?;
        let desc = notes.get(name_end..desc_end).ok_or(PAST_END)?;
        if kind == XEN_ELFNOTE_PHYS32_ENTRY && name == b"Xen\0" {
            return u32_at(desc, 0).map(Some).ok_or(BootError::BadNote(
                "the PVH entry note's descriptor is shorter than 4 bytes",
            ));
        }
        let next = descsz
            .checked_next_multiple_of(4)
            .and_then(|d| name_end.checked_add(d))
            .ok_or(PAST_END)?;
        // The last note's descriptor padding may be missing.
        notes = notes.get(next..).unwrap_or_default();
    }
    Ok(None)
}

/// Checks that every segment lies in guest RAM and clear of the boot data.
pub fn check_placement(info: &ElfInfo, layout: &MemoryLayout) -> Result<(), BootError> {
    for segment in &info.segments {
        let (start, end) = (segment.start, segment.end);
        if !layout.ram_contains(segment) {
            return Err(BootError::DoesNotFit {
                start,
                end,
                ram_end: layout.ram_end(),
            });
        }
        if let Some(boot) = BOOT_DATA.iter().find(|b| b.start < end && start < b.end) {
            return Err(BootError::OverlapsBootData {
                start,
                end,
                boot: boot.start,
            });
        }
    }
    Ok(())
}

/// Where the initrd goes: as high in RAM as it fits, page-aligned, above
/// every kernel segment (so clear of the kernel and of the boot data, which
/// is below 1 MiB). This is where QEMU's PVH loader puts `-initrd` too (the
/// top of RAM below 4 GiB), and it leaves the kernel the most room to grow
/// past its image (`.bss`, `brk`, early page tables) before reaching it.
pub fn place_initrd(info: &ElfInfo, layout: &MemoryLayout, size: u64) -> Result<u64, BootError> {
    const PAGE: u64 = 0x1000;
    let kernel_end = info
        .segments
        .iter()
        .map(|segment| segment.end)
        .fold(memory::HIGH_RAM_START, u64::max)
        .next_multiple_of(PAGE);
    let ram_end = layout.ram_end();
    let too_big = BootError::InitrdDoesNotFit {
        size,
        kernel_end,
        ram_end,
    };
    let start = ram_end.checked_sub(size).ok_or(too_big)? / PAGE * PAGE;
    if start < kernel_end {
        return Err(BootError::InitrdDoesNotFit {
            size,
            kernel_end,
            ram_end,
        });
    }
    Ok(start)
}

/// [`HvmModlistEntry`] as guest memory takes it.
#[repr(transparent)]
#[derive(Clone, Copy)]
struct ModlistEntryBytes(HvmModlistEntry);

// SAFETY: `HvmModlistEntry` is `repr(C)`, four `u64`s, no padding (32
// bytes): every byte pattern is valid and all bytes are initialised.
unsafe impl ByteValued for ModlistEntryBytes {}

/// [`HvmStartInfo`] as guest memory takes it (`ByteValued` is foreign to
/// `shared`, so it is implemented on this wrapper).
#[repr(transparent)]
#[derive(Clone, Copy)]
struct StartInfoBytes(HvmStartInfo);

// SAFETY: `HvmStartInfo` is `repr(C)` and made of integers only, without
// padding (56 bytes, checked by `shared`'s layout tests and below): every
// byte pattern is a valid value and none of its bytes is uninitialised.
unsafe impl ByteValued for StartInfoBytes {}

/// [`HvmMemmapEntry`] as guest memory takes it.
#[repr(transparent)]
#[derive(Clone, Copy)]
struct MemmapEntryBytes(HvmMemmapEntry);

// SAFETY: `HvmMemmapEntry` is `repr(C)`, integers only, no padding (24
// bytes): every byte pattern is valid and all bytes are initialised.
unsafe impl ByteValued for MemmapEntryBytes {}

/// Where the vCPU starts: the values of the PVH entry state that vary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BootEntry {
    /// `EIP`: the PVH entry point.
    pub entry: u32,
    /// `EBX`: the physical address of `hvm_start_info`.
    pub start_info: u32,
}

/// The bytes a machine boots from (a kernel or an initrd), shared and never
/// copied: the VMM keeps them for every machine reset, and a copy would make
/// resident what [`read_kernel`] left unread (a clone of a `Vec` writes
/// every byte, zero or not, into fresh pages).
#[derive(Debug, Clone)]
pub struct Image(std::sync::Arc<std::borrow::Cow<'static, [u8]>>);

impl Image {
    /// An image of bytes that live as long as the program (the embedded
    /// guest).
    pub fn from_static(bytes: &'static [u8]) -> Self {
        Self(std::sync::Arc::new(std::borrow::Cow::Borrowed(bytes)))
    }
}

impl From<Vec<u8>> for Image {
    fn from(bytes: Vec<u8>) -> Self {
        Self(std::sync::Arc::new(std::borrow::Cow::Owned(bytes)))
    }
}

impl std::ops::Deref for Image {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.0
    }
}

/// Reads a kernel file for [`load`], keeping only what loading reads: the
/// ELF header, the program header table and the file bytes of the
/// `PT_LOAD` and `PT_NOTE` segments, each at its offset in a buffer as
/// long as the file. The rest (symbols and debug information: 1.8 of the
/// exported guest's 2 MiB, most of a Linux `vmlinux`) stays zero in a
/// zero-filled allocation, which the allocator maps fresh for a buffer this
/// size, so those pages never become resident: the VMM keeps the image for
/// machine resets without holding the whole file in memory. A file that is
/// not a 64-bit little-endian ELF is read whole, for [`inspect`]'s error.
pub fn read_kernel(path: &std::path::Path) -> std::io::Result<Vec<u8>> {
    use std::os::unix::fs::FileExt;
    const EHDR_SIZE: u64 = 64;
    const PHDR_SIZE: u64 = 56;
    let file = std::fs::File::open(path)?;
    let len = file.metadata()?.len();
    let mut image = vec![0u8; usize::try_from(len).map_err(std::io::Error::other)?];
    // Reads `range` of the file, clipped to its length, into the image.
    let read = |image: &mut [u8], start: u64, size: u64| -> std::io::Result<()> {
        let end = start.saturating_add(size).min(len);
        if start < end {
            file.read_exact_at(&mut image[start as usize..end as usize], start)?;
        }
        Ok(())
    };
    read(&mut image, 0, EHDR_SIZE)?;
    if len < EHDR_SIZE || &image[..6] != b"\x7fELF\x02\x01" {
        read(&mut image, 0, len)?;
        return Ok(image);
    }
    let phoff = u64_at(&image, 32).unwrap_or_default();
    let phentsize = u64::from(u16_at(&image, 54).unwrap_or_default());
    let phnum = u64::from(u16_at(&image, 56).unwrap_or_default());
    read(&mut image, phoff, phentsize.saturating_mul(phnum))?;
    if phentsize < PHDR_SIZE {
        return Ok(image); // inspect() refuses it
    }
    for index in 0..phnum {
        let Some(ph) = phoff
            .checked_add(index * phentsize)
            .and_then(|start| usize::try_from(start).ok())
            .and_then(|start| image.get(start..start + PHDR_SIZE as usize))
        else {
            break; // past the file: inspect() says truncated
        };
        let p_type = u32_at(ph, 0).unwrap_or_default();
        let (p_offset, p_filesz) = (
            u64_at(ph, 8).unwrap_or_default(),
            u64_at(ph, 32).unwrap_or_default(),
        );
        if p_type == PT_LOAD || p_type == PT_NOTE {
            read(&mut image, p_offset, p_filesz)?;
        }
    }
    Ok(image)
}

/// Loads `elf` into `mem` and writes the PVH boot information: the whole
/// boot-time memory set-up, done the same way at the first boot and at every
/// machine reset. Memory need not be fresh: the part of each segment the file
/// does not fill (`p_filesz` to `p_memsz`, which `linux-loader` leaves alone)
/// is zeroed here. An `initrd` is copied to [`place_initrd`]'s address and
/// announced as the one PVH module, as QEMU's `-initrd` does for PVH kernels.
pub fn load(
    mem: &GuestMemoryMmap,
    layout: &MemoryLayout,
    elf: &[u8],
    cmdline: &str,
    initrd: Option<&[u8]>,
) -> Result<BootEntry, BootError> {
    if cmdline.len() > CMDLINE_MAX {
        return Err(BootError::CmdlineTooLong(cmdline.len()));
    }
    if cmdline.contains('\0') {
        return Err(BootError::CmdlineNul);
    }
    let info = inspect(elf)?;
    check_placement(&info, layout)?;
    let initrd_at = initrd
        .map(|initrd| place_initrd(&info, layout, initrd.len() as u64))
        .transpose()?;

    // No kernel offset: with one, linux-loader ignores the PVH note.
    let loaded = Elf::load(mem, None, &mut Cursor::new(elf), None)?;
    let entry = match loaded.pvh_boot_cap {
        PvhBootCapability::PvhEntryPresent(address) => {
            u32::try_from(address.0).map_err(|_| BootError::NoPvhNote)?
        }
        // linux-loader reports only the last PT_NOTE; ours saw them all.
        _ => info.pvh_entry,
    };
    let zeros = vec![0u8; 64 << 10];
    for range in &info.zero_fill {
        let mut at = range.start;
        while at < range.end {
            let len = (range.end - at).min(zeros.len() as u64) as usize;
            mem.write_slice(&zeros[..len], GuestAddress(at))?;
            at += len as u64;
        }
    }

    let mut with_nul = Vec::with_capacity(cmdline.len() + 1);
    with_nul.extend_from_slice(cmdline.as_bytes());
    with_nul.push(0);
    mem.write_slice(&with_nul, GuestAddress(CMDLINE_ADDR))?;

    let map = layout.e820();
    for (index, &(addr, size, ram)) in map.iter().enumerate() {
        let entry = HvmMemmapEntry {
            addr,
            size,
            kind: if ram {
                memmap_type::RAM
            } else {
                memmap_type::RESERVED
            },
            reserved: 0,
        };
        let at = MEMMAP_ADDR + (index * std::mem::size_of::<HvmMemmapEntry>()) as u64;
        mem.write_obj(MemmapEntryBytes(entry), GuestAddress(at))?;
    }
    let mut start_info = HvmStartInfo {
        magic: pvh::START_MAGIC,
        version: pvh::VERSION_WITH_MEMMAP,
        cmdline_paddr: CMDLINE_ADDR,
        memmap_paddr: MEMMAP_ADDR,
        memmap_entries: map.len() as u32,
        ..Default::default()
    };
    if let (Some(initrd), Some(at)) = (initrd, initrd_at) {
        mem.write_slice(initrd, GuestAddress(at))?;
        let module = HvmModlistEntry {
            paddr: at,
            size: initrd.len() as u64,
            ..Default::default()
        };
        mem.write_obj(ModlistEntryBytes(module), GuestAddress(MODLIST_ADDR))?;
        start_info.nr_modules = 1;
        start_info.modlist_paddr = MODLIST_ADDR;
    }
    mem.write_obj(StartInfoBytes(start_info), GuestAddress(START_INFO_ADDR))?;
    Ok(BootEntry {
        entry,
        start_info: START_INFO_ADDR as u32,
    })
}

const _: () = {
    assert!(std::mem::size_of::<StartInfoBytes>() == 56);
    assert!(std::mem::size_of::<MemmapEntryBytes>() == 24);
    assert!(MEMMAP_ADDR + 3 * 24 <= MODLIST_ADDR);
    assert!(MODLIST_ADDR + 32 <= START_INFO_ADDR + 0x1000);
    assert!(CMDLINE_ADDR + (CMDLINE_MAX as u64) < memory::LOW_RAM_END);
};

#[cfg(test)]
mod malformed;

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A minimal ELF64 for x86-64: one PT_LOAD of `code` at `load`, and the
    /// given notes segments (each a list of `(name, type, desc)`).
    /// One ELF note: name (with NUL), type, descriptor.
    type Note<'a> = (&'a [u8], u32, &'a [u8]);

    pub(crate) fn build_elf(load: u64, code: &[u8], notes: &[&[Note]]) -> Vec<u8> {
        let phnum = 1 + notes.len();
        let mut note_blobs = Vec::new();
        for segment in notes {
            let mut blob = Vec::new();
            for (name, kind, desc) in *segment {
                blob.extend_from_slice(&(name.len() as u32).to_le_bytes());
                blob.extend_from_slice(&(desc.len() as u32).to_le_bytes());
                blob.extend_from_slice(&kind.to_le_bytes());
                blob.extend_from_slice(name);
                blob.resize(blob.len().next_multiple_of(4), 0);
                blob.extend_from_slice(desc);
                blob.resize(blob.len().next_multiple_of(4), 0);
            }
            note_blobs.push(blob);
        }
        let mut elf = vec![0u8; 64 + 56 * phnum];
        elf[..4].copy_from_slice(b"\x7fELF");
        elf[4] = 2; // ELFCLASS64
        elf[5] = 1; // little-endian
        elf[6] = 1; // EV_CURRENT
        elf[16..18].copy_from_slice(&2u16.to_le_bytes()); // ET_EXEC
        elf[18..20].copy_from_slice(&62u16.to_le_bytes()); // EM_X86_64
        elf[20..24].copy_from_slice(&1u32.to_le_bytes());
        elf[24..32].copy_from_slice(&load.to_le_bytes()); // e_entry
        elf[32..40].copy_from_slice(&64u64.to_le_bytes()); // e_phoff
        elf[52..54].copy_from_slice(&64u16.to_le_bytes()); // e_ehsize
        elf[54..56].copy_from_slice(&56u16.to_le_bytes()); // e_phentsize
        elf[56..58].copy_from_slice(&(phnum as u16).to_le_bytes());
        let mut phdr = |index: usize, kind: u32, offset: usize, addr: u64, size: usize| {
            let ph = &mut elf[64 + 56 * index..][..56];
            ph[0..4].copy_from_slice(&kind.to_le_bytes());
            ph[4..8].copy_from_slice(&5u32.to_le_bytes()); // R+X
            ph[8..16].copy_from_slice(&(offset as u64).to_le_bytes());
            ph[16..24].copy_from_slice(&addr.to_le_bytes());
            ph[24..32].copy_from_slice(&addr.to_le_bytes());
            ph[32..40].copy_from_slice(&(size as u64).to_le_bytes());
            ph[40..48].copy_from_slice(&(size as u64).to_le_bytes());
            ph[48..56].copy_from_slice(&4u64.to_le_bytes());
        };
        let mut offset = 64 + 56 * phnum;
        phdr(0, PT_LOAD, offset, load, code.len());
        offset += code.len();
        for (i, blob) in note_blobs.iter().enumerate() {
            phdr(1 + i, PT_NOTE, offset, 0, blob.len());
            offset += blob.len();
        }
        elf.extend_from_slice(code);
        for blob in &note_blobs {
            elf.extend_from_slice(blob);
        }
        elf
    }

    fn pvh_note(entry: u32) -> (&'static [u8], u32, Vec<u8>) {
        (
            b"Xen\0",
            XEN_ELFNOTE_PHYS32_ENTRY,
            entry.to_le_bytes().to_vec(),
        )
    }

    #[test]
    fn finds_the_pvh_entry_in_any_note_segment() {
        let (name, kind, desc) = pvh_note(0x10_0000);
        let gnu: Note = (b"GNU\0", 3, &[1, 2, 3, 4, 5, 6, 7, 8]);
        let elf = build_elf(0x10_0000, &[0xf4], &[&[(name, kind, &desc)], &[gnu]]);
        let info = inspect(&elf).unwrap();
        assert_eq!(info.pvh_entry, 0x10_0000);
        assert_eq!(info.segments, vec![0x10_0000..0x10_0001]);
    }

    /// `read_kernel` keeps what loading reads: the exported guest (2 MiB
    /// with its debug information) loads into the same guest memory from
    /// the sparse image as from the whole file, and the image holds zeroes
    /// where the file has its debug information.
    #[test]
    fn read_kernel_keeps_the_loaded_segments_and_drops_the_rest() {
        let elf = crate::guest::ELF;
        let path = std::env::temp_dir().join(format!("vmm-read-kernel-{}.elf", std::process::id()));
        std::fs::write(&path, elf).unwrap();
        let image = read_kernel(&path);
        std::fs::remove_file(&path).unwrap();
        let image = image.unwrap();
        assert_eq!(image.len(), elf.len());
        let info = inspect(elf).unwrap();
        assert_eq!(inspect(&image).unwrap(), info);
        let layout = MemoryLayout::new(8).unwrap();
        let loaded = |bytes: &[u8]| {
            let mem = layout.allocate().unwrap();
            load(&mem, &layout, bytes, "", None).unwrap();
            info.segments
                .iter()
                .map(|range| {
                    let mut bytes = vec![0u8; (range.end - range.start) as usize];
                    mem.read_slice(&mut bytes, GuestAddress(range.start))
                        .unwrap();
                    bytes
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(loaded(&image), loaded(elf));
        // The section header table and the debug sections sit after the
        // segments, in the last 1.5 MiB of the file: zeroes in the image.
        let tail = elf.len() - (1 << 20)..elf.len();
        assert!(elf[tail.clone()].iter().any(|&b| b != 0));
        assert!(image[tail].iter().all(|&b| b == 0));
    }

    /// A file that is not an ELF is read whole, so that `inspect` names
    /// what is wrong with it.
    #[test]
    fn read_kernel_reads_a_non_elf_file_whole() {
        let bytes: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8 + 1).collect();
        let path = std::env::temp_dir().join(format!("vmm-read-kernel-{}.bin", std::process::id()));
        std::fs::write(&path, &bytes).unwrap();
        let image = read_kernel(&path);
        std::fs::remove_file(&path).unwrap();
        assert_eq!(image.unwrap(), bytes);
        assert!(matches!(inspect(&bytes), Err(BootError::NotElf)));
    }

    /// Loading again over used memory gives the first boot's memory: the
    /// segments' file bytes, zeroes up to `p_memsz`, the boot data.
    #[test]
    fn reload_over_used_memory_matches_the_first_load() {
        let (name, kind, desc) = pvh_note(0x10_0000);
        let mut elf = build_elf(0x10_0000, &[0x90, 0x90, 0xf4], &[&[(name, kind, &desc)]]);
        elf[64 + 40..64 + 48].copy_from_slice(&0x1000u64.to_le_bytes()); // p_memsz
        let layout = MemoryLayout::new(4).unwrap();
        let mem = layout.allocate().unwrap();
        let image = |mem: &GuestMemoryMmap| {
            let mut segment = vec![0u8; 0x1000];
            mem.read_slice(&mut segment, GuestAddress(0x10_0000))
                .unwrap();
            // hvm_start_info (56 bytes) and the 3 memory-map entries.
            let mut boot = vec![0u8; 56];
            mem.read_slice(&mut boot, GuestAddress(START_INFO_ADDR))
                .unwrap();
            let mut map = vec![0u8; 3 * 24];
            mem.read_slice(&mut map, GuestAddress(MEMMAP_ADDR)).unwrap();
            boot.extend(map);
            let mut cmdline = vec![0u8; 4];
            mem.read_slice(&mut cmdline, GuestAddress(CMDLINE_ADDR))
                .unwrap();
            (segment, boot, cmdline)
        };
        let entry = load(&mem, &layout, &elf, "a=b", None).unwrap();
        let first = image(&mem);
        assert_eq!(&first.0[..4], &[0x90, 0x90, 0xf4, 0]);
        assert_eq!(&first.2, b"a=b\0");
        // The guest ran: code, bss, boot data and command line overwritten.
        mem.write_slice(&[0xaa; 0x1000], GuestAddress(0x10_0000))
            .unwrap();
        mem.write_slice(&[0xbb; 0x100], GuestAddress(START_INFO_ADDR))
            .unwrap();
        mem.write_slice(&[0xcc; 8], GuestAddress(CMDLINE_ADDR))
            .unwrap();
        assert_eq!(load(&mem, &layout, &elf, "a=b", None).unwrap(), entry);
        assert!(
            image(&mem) == first,
            "the reload differs from the first load"
        );
    }

    fn kernel_at(range: Range<u64>) -> ElfInfo {
        ElfInfo {
            pvh_entry: 0,
            segments: vec![0x10_0000..0x10_1000, range],
            zero_fill: Vec::new(),
        }
    }

    /// The initrd ends at the end of RAM, starts on a page, and an initrd
    /// that would reach into the kernel's last page is refused.
    #[test]
    fn initrd_goes_to_the_top_of_ram_clear_of_the_kernel() {
        let layout = MemoryLayout::new(16).unwrap();
        let ram_end = 16 << 20;
        let kernel = kernel_at(0x20_0000..0x30_0123);
        assert_eq!(
            place_initrd(&kernel, &layout, 0x1000).ok(),
            Some(ram_end - 0x1000)
        );
        assert_eq!(
            place_initrd(&kernel, &layout, 0x1001).ok(),
            Some(ram_end - 0x2000)
        );
        assert_eq!(
            place_initrd(&kernel, &layout, 1).ok(),
            Some(ram_end - 0x1000)
        );
        // The kernel ends at 0x300123: its page ends at 0x301000.
        let room = ram_end - 0x30_1000;
        assert_eq!(place_initrd(&kernel, &layout, room).ok(), Some(0x30_1000));
        let error = place_initrd(&kernel, &layout, room + 1).unwrap_err();
        assert_eq!(
            error.to_string(),
            "the initrd (13627393 bytes) does not fit in guest RAM between the kernel's end \
             (0x301000) and the end of RAM (0x1000000); try a larger --memory"
        );
        assert!(place_initrd(&kernel, &layout, u64::MAX).is_err());
        // A kernel only in low memory still leaves the initrd above 1 MiB.
        let low_segment = 0x8000..0x9000;
        let low = ElfInfo {
            pvh_entry: 0,
            segments: vec![low_segment],
            zero_fill: Vec::new(),
        };
        assert_eq!(
            place_initrd(&low, &layout, ram_end - 0x10_0000).ok(),
            Some(0x10_0000)
        );
        assert!(place_initrd(&low, &layout, ram_end - 0x10_0000 + 1).is_err());
    }

    /// The initrd's bytes land where the module list says, and
    /// `hvm_start_info` counts one module; without one, none.
    #[test]
    fn initrd_is_the_one_pvh_module() {
        let (name, kind, desc) = pvh_note(0x10_0000);
        let elf = build_elf(0x10_0000, &[0xf4], &[&[(name, kind, &desc)]]);
        let layout = MemoryLayout::new(8).unwrap();
        let mem = layout.allocate().unwrap();
        let initrd: Vec<u8> = (0..5000u32).map(|i| i as u8).collect();
        load(&mem, &layout, &elf, "", Some(&initrd)).unwrap();
        let info: StartInfoBytes = mem.read_obj(GuestAddress(START_INFO_ADDR)).unwrap();
        assert_eq!(info.0.nr_modules, 1);
        assert_eq!(info.0.modlist_paddr, MODLIST_ADDR);
        let module: ModlistEntryBytes = mem.read_obj(GuestAddress(MODLIST_ADDR)).unwrap();
        assert_eq!(module.0.size, 5000);
        assert_eq!(module.0.paddr, (8 << 20) - 0x2000);
        assert_eq!(module.0.cmdline_paddr, 0);
        let mut copy = vec![0u8; 5000];
        mem.read_slice(&mut copy, GuestAddress(module.0.paddr))
            .unwrap();
        assert!(copy == initrd, "the initrd's bytes differ in guest memory");

        let mem = layout.allocate().unwrap();
        load(&mem, &layout, &elf, "", None).unwrap();
        let info: StartInfoBytes = mem.read_obj(GuestAddress(START_INFO_ADDR)).unwrap();
        assert_eq!((info.0.nr_modules, info.0.modlist_paddr), (0, 0));

        let huge = vec![0u8; 8 << 20];
        assert!(matches!(
            load(&mem, &layout, &elf, "", Some(&huge)),
            Err(BootError::InitrdDoesNotFit { .. })
        ));
    }

    #[test]
    fn rejects_bad_images() {
        assert!(matches!(inspect(b"#!/bin/sh\n"), Err(BootError::NotElf)));
        assert!(matches!(inspect(b""), Err(BootError::NotElf)));
        let (name, kind, desc) = pvh_note(0x10_0000);
        let elf = build_elf(0x10_0000, &[0xf4; 64], &[&[(name, kind, &desc)]]);
        for cut in [10, 63, 100, elf.len() - 1] {
            assert!(
                matches!(inspect(&elf[..cut]), Err(BootError::Truncated(_))),
                "cut at {cut}"
            );
        }
        let gnu: Note = (b"GNU\0", 3, &[0; 4]);
        let no_pvh = build_elf(0x10_0000, &[0xf4], &[&[gnu]]);
        assert!(matches!(inspect(&no_pvh), Err(BootError::NoPvhNote)));
        let mut elf32 = elf.clone();
        elf32[4] = 1;
        assert!(matches!(inspect(&elf32), Err(BootError::Unsupported(_))));
    }

    #[test]
    fn placement_checks_ram_and_boot_data() {
        let layout = MemoryLayout::new(16).unwrap();
        let info = |range: Range<u64>| ElfInfo {
            pvh_entry: 0,
            segments: vec![range],
            zero_fill: Vec::new(),
        };
        assert!(check_placement(&info(0x10_0000..0x20_0000), &layout).is_ok());
        assert!(check_placement(&info(0x8000..0x9000), &layout).is_ok());
        assert!(matches!(
            check_placement(&info(0x10_0000..0x100_0001), &layout),
            Err(BootError::DoesNotFit { .. })
        ));
        assert!(matches!(
            check_placement(&info(0x9_f000..0x10_1000), &layout),
            Err(BootError::DoesNotFit { .. })
        ));
        assert!(matches!(
            check_placement(&info(0x6000..0x6001), &layout),
            Err(BootError::OverlapsBootData { .. })
        ));
    }
}
