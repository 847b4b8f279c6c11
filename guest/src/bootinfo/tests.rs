//! Unit tests of PVH start-info validation and the command line.
use super::*;
use shared::pvh::memmap_type;
use std::boxed::Box;
use std::vec;
use std::vec::Vec;

const START_INFO: u64 = 0x6000;
const MEMMAP: u64 = 0x6040;
const CMDLINE: u64 = 0x2_0000;
const KERNEL: Range<u64> = 0x10_0000..0x20_0000;

/// The loader's memory as a PVH loader (our VMM) lays it out.
struct FakeMemory {
    info: HvmStartInfo,
    memmap: Vec<HvmMemmapEntry>,
    cmdline: Vec<u8>,
}

impl FakeMemory {
    fn new(cmdline: &str) -> Self {
        let memmap = vec![
            entry(0, 0x9_fc00, memmap_type::RAM),
            entry(0x9_fc00, 0x400, memmap_type::RESERVED),
            entry(0x10_0000, 0x7f0_0000, memmap_type::RAM),
        ];
        let mut bytes = cmdline.as_bytes().to_vec();
        bytes.push(0);
        Self {
            info: HvmStartInfo {
                magic: START_MAGIC,
                version: 1,
                cmdline_paddr: CMDLINE,
                memmap_paddr: MEMMAP,
                memmap_entries: memmap.len() as u32,
                ..HvmStartInfo::default()
            },
            memmap,
            cmdline: bytes,
        }
    }

    fn parse(&self, paddr: u64) -> Result<Box<BootInfo>, BootInfoError> {
        let mut info = Box::new(BootInfo::empty());
        info.parse(paddr, self, KERNEL).map(|()| info)
    }
}

fn entry(addr: u64, size: u64, kind: u32) -> HvmMemmapEntry {
    HvmMemmapEntry {
        addr,
        size,
        kind,
        reserved: 0,
    }
}

impl PhysicalMemory for FakeMemory {
    fn start_info(&self, paddr: u64) -> HvmStartInfo {
        assert_eq!(paddr, START_INFO, "read outside the fake");
        self.info
    }

    fn memmap_entry(&self, paddr: u64) -> HvmMemmapEntry {
        let offset = paddr - self.info.memmap_paddr;
        assert_eq!(offset % 24, 0);
        self.memmap[(offset / 24) as usize]
    }

    fn byte(&self, paddr: u64) -> u8 {
        self.cmdline[(paddr - self.info.cmdline_paddr) as usize]
    }
}

#[test]
fn a_valid_start_info_is_copied() {
    let info = FakeMemory::new("console=ttyS0 test=boot")
        .parse(START_INFO)
        .unwrap();
    assert_eq!(info.start_info, START_INFO);
    assert_eq!(info.version, 1);
    assert_eq!(info.cmdline(), "console=ttyS0 test=boot");
    assert_eq!(info.param("test"), Some("boot"));
    let map = info.memory_map();
    assert_eq!(map.len(), 3);
    assert_eq!(
        (map[2].addr, map[2].size, map[2].kind),
        (0x10_0000, 0x7f0_0000, 1)
    );
    assert_eq!(map[2].end(), 0x800_0000);
}

#[test]
fn bad_magic_is_rejected() {
    let mut memory = FakeMemory::new("");
    memory.info.magic = 0x336e_c579;
    assert!(matches!(
        memory.parse(START_INFO),
        Err(BootInfoError::BadMagic(0x336e_c579))
    ));
}

#[test]
fn null_and_unmapped_start_info_are_rejected_before_any_read() {
    let memory = FakeMemory::new("");
    assert!(matches!(memory.parse(0), Err(BootInfoError::NullPointer)));
    assert!(matches!(
        memory.parse(MAPPED_LIMIT - 8),
        Err(BootInfoError::Unmapped { .. })
    ));
    assert!(matches!(
        memory.parse(u64::MAX - 4),
        Err(BootInfoError::Unmapped { .. })
    ));
}

#[test]
fn boot_data_inside_the_kernel_image_is_rejected() {
    let memory = FakeMemory::new("");
    let inside = KERNEL.start + 0x1000;
    let mut info = Box::new(BootInfo::empty());
    let result = info.parse(START_INFO, &memory, 0x5000..0x6001);
    assert!(matches!(
        result,
        Err(BootInfoError::OverlapsKernel {
            what: "hvm_start_info",
            ..
        })
    ));
    let mut memory = FakeMemory::new("x");
    memory.info.cmdline_paddr = KERNEL.end - 1;
    assert!(matches!(
        memory.parse(START_INFO),
        Err(BootInfoError::OverlapsKernel {
            what: "command line",
            ..
        })
    ));
    let mut memory = FakeMemory::new("");
    // The last entry's end touches the kernel's first byte.
    memory.info.memmap_paddr = KERNEL.start - 3 * 24 + 1;
    assert!(matches!(
        memory.parse(START_INFO),
        Err(BootInfoError::OverlapsKernel {
            what: "memory map",
            ..
        })
    ));
    memory.info.memmap_paddr = KERNEL.start - 3 * 24;
    assert!(memory.parse(START_INFO).is_ok(), "adjacent is fine");
    memory.info.memmap_paddr = inside;
    assert!(memory.parse(START_INFO).is_err());
}

#[test]
fn version_0_or_an_empty_memory_map_is_rejected() {
    let mut memory = FakeMemory::new("");
    memory.info.version = 0;
    assert!(matches!(
        memory.parse(START_INFO),
        Err(BootInfoError::NoMemoryMap { version: 0 })
    ));
    let mut memory = FakeMemory::new("");
    memory.info.memmap_entries = 0;
    assert!(matches!(
        memory.parse(START_INFO),
        Err(BootInfoError::NoMemoryMap { version: 1 })
    ));
    let mut memory = FakeMemory::new("");
    memory.info.memmap_entries = MEMMAP_MAX as u32 + 1;
    assert!(matches!(
        memory.parse(START_INFO),
        Err(BootInfoError::TooManyMemmapEntries(129))
    ));
}

#[test]
fn the_longest_command_line_fits_and_one_byte_more_does_not() {
    let longest = "x".repeat(CMDLINE_MAX);
    let info = FakeMemory::new(&longest).parse(START_INFO).unwrap();
    assert_eq!(info.cmdline().len(), 4095);
    let too_long = "x".repeat(CMDLINE_MAX + 1);
    assert!(matches!(
        FakeMemory::new(&too_long).parse(START_INFO),
        Err(BootInfoError::CmdlineTooLong)
    ));
}

#[test]
fn no_command_line_is_an_empty_one_and_bad_utf8_is_rejected() {
    let mut memory = FakeMemory::new("ignored");
    memory.info.cmdline_paddr = 0;
    assert_eq!(memory.parse(START_INFO).unwrap().cmdline(), "");
    let mut memory = FakeMemory::new("");
    memory.cmdline = vec![b'a', 0xff, 0];
    assert!(matches!(
        memory.parse(START_INFO),
        Err(BootInfoError::CmdlineNotUtf8)
    ));
}

#[test]
fn params_match_whole_keys_only() {
    let line = "console=ttyS0 test=bootinfo x=1 empty=";
    assert_eq!(param(line, "test"), Some("bootinfo"));
    assert_eq!(param(line, "x"), Some("1"));
    assert_eq!(param(line, "empty"), Some(""));
    assert_eq!(param(line, "tes"), None);
    assert_eq!(param(line, "console=ttyS0"), None);
    assert_eq!(param("", "test"), None);
}
