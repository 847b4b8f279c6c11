//! Broken kernel ELF files, generated here, through the whole loading path
//! ([`load`]: inspection, placement, `linux-loader`, boot data): each must
//! give its own clear one-line error, and none may panic or load.
use super::*;

/// Guest RAM for the table: 16 MiB.
const MIB: u32 = 16;
const LOAD: u64 = 0x10_0000;
const EHDR: usize = 64;
const PHDR: usize = 56;

/// A loadable segment: physical address, file bytes, memory size.
struct Segment {
    paddr: u64,
    data: Vec<u8>,
    memsz: u64,
}

/// An ELF image to break: `PT_LOAD` segments, then one `PT_NOTE` segment
/// holding `notes` (raw bytes), in that program-header order.
struct Image {
    segments: Vec<Segment>,
    notes: Vec<u8>,
}

/// One note: name (NUL included), type, descriptor, each padded to 4.
fn note(name: &[u8], kind: u32, desc: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&(name.len() as u32).to_le_bytes());
    out.extend_from_slice(&(desc.len() as u32).to_le_bytes());
    out.extend_from_slice(&kind.to_le_bytes());
    out.extend_from_slice(name);
    out.resize(out.len().next_multiple_of(4), 0);
    out.extend_from_slice(desc);
    out.resize(out.len().next_multiple_of(4), 0);
    out
}

fn pvh(entry: u32) -> Vec<u8> {
    note(b"Xen\0", XEN_ELFNOTE_PHYS32_ENTRY, &entry.to_le_bytes())
}

impl Image {
    /// A good kernel: 16 bytes of code at 1 MiB with 4 KiB of `.bss`, and
    /// the PVH note pointing at it.
    fn good() -> Self {
        Image {
            segments: vec![Segment {
                paddr: LOAD,
                data: vec![0xf4; 16],
                memsz: 0x1000,
            }],
            notes: pvh(LOAD as u32),
        }
    }

    fn with(mut self, change: impl FnOnce(&mut Self)) -> Self {
        change(&mut self);
        self
    }

    /// The file: header, program headers, segment data, notes.
    fn build(&self) -> Vec<u8> {
        let phnum = self.segments.len() + 1;
        let mut elf = vec![0u8; EHDR + PHDR * phnum];
        elf[..4].copy_from_slice(b"\x7fELF");
        elf[4] = 2; // ELFCLASS64
        elf[5] = 1; // little-endian
        elf[6] = 1; // EV_CURRENT
        put16(&mut elf, 16, 2); // ET_EXEC
        put16(&mut elf, 18, 62); // EM_X86_64
        put32(&mut elf, 20, 1);
        put64(&mut elf, 24, LOAD); // e_entry
        put64(&mut elf, 32, EHDR as u64); // e_phoff
        put16(&mut elf, 52, EHDR as u16);
        put16(&mut elf, 54, PHDR as u16);
        put16(&mut elf, 56, phnum as u16);
        let mut offset = elf.len() as u64;
        let mut headers = Vec::new();
        for segment in &self.segments {
            let size = segment.data.len() as u64;
            headers.push((PT_LOAD, offset, segment.paddr, size, segment.memsz));
            offset += size;
        }
        let size = self.notes.len() as u64;
        headers.push((PT_NOTE, offset, 0, size, size));
        for (i, (kind, offset, paddr, filesz, memsz)) in headers.into_iter().enumerate() {
            let at = EHDR + PHDR * i;
            put32(&mut elf, at, kind);
            put32(&mut elf, at + 4, 7);
            put64(&mut elf, at + 8, offset);
            put64(&mut elf, at + 16, paddr);
            put64(&mut elf, at + 24, paddr);
            put64(&mut elf, at + 32, filesz);
            put64(&mut elf, at + 40, memsz);
            put64(&mut elf, at + 48, 4);
        }
        for segment in &self.segments {
            elf.extend_from_slice(&segment.data);
        }
        elf.extend_from_slice(&self.notes);
        elf
    }
}

fn put16(elf: &mut [u8], at: usize, value: u16) {
    elf[at..at + 2].copy_from_slice(&value.to_le_bytes());
}
fn put32(elf: &mut [u8], at: usize, value: u32) {
    elf[at..at + 4].copy_from_slice(&value.to_le_bytes());
}
fn put64(elf: &mut [u8], at: usize, value: u64) {
    elf[at..at + 8].copy_from_slice(&value.to_le_bytes());
}

/// Byte offset of field `field` of program header `index`.
fn ph(index: usize, field: usize) -> usize {
    EHDR + PHDR * index + field
}
const P_TYPE: usize = 0;
const P_OFFSET: usize = 8;
const P_PADDR: usize = 24;
const P_FILESZ: usize = 32;
const P_MEMSZ: usize = 40;

/// The good image with bytes changed by `change`.
fn patched(change: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut elf = Image::good().build();
    change(&mut elf);
    elf
}

/// The good image cut to `len` bytes.
fn cut(len: usize) -> Vec<u8> {
    let mut elf = Image::good().build();
    elf.truncate(len);
    elf
}

/// The table: what is broken, the file, and words its error must contain.
fn cases() -> Vec<(&'static str, Vec<u8>, &'static str)> {
    let good = Image::good().build();
    // Layout of the good file: header 0-63, program headers 64-175 (LOAD,
    // NOTE), code 176-191, note 192-211.
    let notes_at = good.len() - Image::good().notes.len();
    vec![
        ("empty file", Vec::new(), "not an ELF file"),
        (
            "a shell script",
            b"#!/bin/sh\nexit 0\n".to_vec(),
            "not an ELF file",
        ),
        (
            "cut inside e_ident",
            cut(10),
            "truncated ELF: the ELF header",
        ),
        (
            "cut inside the ELF header",
            cut(40),
            "truncated ELF: the ELF header",
        ),
        (
            "cut one byte short of the ELF header",
            cut(63),
            "truncated ELF: the ELF header",
        ),
        (
            "cut inside the first program header",
            cut(100),
            "truncated ELF: the program header table",
        ),
        (
            "cut inside the last program header",
            cut(170),
            "truncated ELF",
        ),
        ("cut inside the code", cut(185), "truncated ELF: a segment"),
        (
            "cut inside the note",
            cut(notes_at + 6),
            "truncated ELF: a segment",
        ),
        ("ELFCLASS32", patched(|e| e[4] = 1), "not a 64-bit ELF"),
        ("ELFCLASSNONE", patched(|e| e[4] = 0), "not a 64-bit ELF"),
        ("big-endian", patched(|e| e[5] = 2), "not little-endian"),
        (
            "no data encoding",
            patched(|e| e[5] = 0),
            "not little-endian",
        ),
        ("machine EM_386", patched(|e| put16(e, 18, 3)), "EM_X86_64"),
        (
            "machine EM_AARCH64",
            patched(|e| put16(e, 18, 183)),
            "EM_X86_64",
        ),
        ("type ET_REL", patched(|e| put16(e, 16, 1)), "ET_EXEC"),
        ("type ET_DYN", patched(|e| put16(e, 16, 3)), "ET_EXEC"),
        ("type ET_CORE", patched(|e| put16(e, 16, 4)), "ET_EXEC"),
        (
            "no PVH note (a GNU note only)",
            Image::good()
                .with(|i| i.notes = note(b"GNU\0", 3, &[0; 16]))
                .build(),
            "no PVH entry note",
        ),
        (
            "no PT_NOTE segment",
            patched(|e| put32(e, ph(1, P_TYPE), 6)), // PT_PHDR
            "no PVH entry note",
        ),
        (
            "PVH note named Xen without its NUL",
            Image::good()
                .with(|i| {
                    i.notes = note(
                        b"Xen",
                        XEN_ELFNOTE_PHYS32_ENTRY,
                        &(LOAD as u32).to_le_bytes(),
                    )
                })
                .build(),
            "no PVH entry note",
        ),
        (
            "PVH note with a 2-byte descriptor",
            Image::good()
                .with(|i| i.notes = note(b"Xen\0", XEN_ELFNOTE_PHYS32_ENTRY, &[0, 0x10]))
                .build(),
            "descriptor is shorter than 4 bytes",
        ),
        (
            "note whose namesz runs past the segment",
            patched(|e| put32(e, notes_at, 0x1000)),
            "run past the end of its PT_NOTE segment",
        ),
        (
            "note whose descsz runs past the segment",
            patched(|e| put32(e, notes_at + 4, 0x1000)),
            "run past the end of its PT_NOTE segment",
        ),
        (
            "note whose namesz overflows",
            patched(|e| put32(e, notes_at, u32::MAX)),
            "run past the end of its PT_NOTE segment",
        ),
        (
            "PVH entry outside RAM",
            Image::good().with(|i| i.notes = pvh(0xf000_0000)).build(),
            "entry point 0xf0000000 is outside every loadable segment",
        ),
        (
            "PVH entry in RAM but outside every segment",
            Image::good().with(|i| i.notes = pvh(0x20_0000)).build(),
            "entry point 0x200000 is outside every loadable segment",
        ),
        (
            "segments overlapping each other",
            Image::good()
                .with(|i| {
                    i.segments.push(Segment {
                        paddr: LOAD + 0x800,
                        data: vec![0; 8],
                        memsz: 0x1000,
                    })
                })
                .build(),
            "kernel segments 0x100000-0x101000 and 0x100800-0x101800 overlap",
        ),
        (
            "a segment over hvm_start_info",
            Image::good()
                .with(|i| {
                    i.segments.push(Segment {
                        paddr: 0x5000,
                        data: vec![0; 8],
                        memsz: 0x2000,
                    })
                })
                .build(),
            "overlaps the boot data at 0x6000",
        ),
        (
            "a segment over the command line",
            Image::good()
                .with(|i| {
                    i.segments.push(Segment {
                        paddr: CMDLINE_ADDR + 0x10,
                        data: vec![0; 8],
                        memsz: 8,
                    })
                })
                .build(),
            "overlaps the boot data at 0x20000",
        ),
        (
            "a segment over the boot GDT",
            Image::good()
                .with(|i| {
                    i.segments.push(Segment {
                        paddr: 0,
                        data: vec![0; 8],
                        memsz: 0x1000,
                    })
                })
                .build(),
            "overlaps the boot data at 0x500",
        ),
        (
            "a segment beyond RAM",
            Image::good()
                .with(|i| {
                    i.segments.push(Segment {
                        paddr: u64::from(MIB) << 20,
                        data: vec![0; 8],
                        memsz: 8,
                    })
                })
                .build(),
            "does not fit in memory: segment 0x1000000-0x1000008",
        ),
        (
            "a segment straddling the end of RAM",
            patched(|e| put64(e, ph(0, P_MEMSZ), u64::from(MIB) << 20)),
            "does not fit in memory",
        ),
        (
            "a segment in the VGA/ROM hole",
            Image::good()
                .with(|i| {
                    i.segments.push(Segment {
                        paddr: 0xb_8000,
                        data: vec![0; 8],
                        memsz: 8,
                    })
                })
                .build(),
            "does not fit in memory: segment 0xb8000-0xb8008",
        ),
        (
            "a segment at the top of the address space (p_paddr + p_memsz overflows)",
            patched(|e| put64(e, ph(0, P_PADDR), u64::MAX - 0xfff)),
            "wraps around the address space",
        ),
        (
            "a second segment just below 2^64",
            Image::good()
                .with(|i| {
                    i.segments.push(Segment {
                        paddr: 0u64.wrapping_sub(0x2000),
                        data: vec![0; 8],
                        memsz: 0x1000,
                    })
                })
                .build(),
            "does not fit in memory: segment 0xffffffffffffe000-0xfffffffffffff000",
        ),
        (
            "a second segment ending exactly at 2^64",
            Image::good()
                .with(|i| {
                    i.segments.push(Segment {
                        paddr: 0u64.wrapping_sub(0x1000),
                        data: vec![0; 8],
                        memsz: 0x1000,
                    })
                })
                .build(),
            "wraps around the address space",
        ),
        (
            "p_filesz > p_memsz",
            patched(|e| put64(e, ph(0, P_MEMSZ), 8)),
            "file size exceeds its memory size",
        ),
        (
            "p_filesz > p_memsz = 0",
            patched(|e| put64(e, ph(0, P_MEMSZ), 0)),
            "file size exceeds its memory size",
        ),
        (
            "huge p_memsz",
            patched(|e| put64(e, ph(0, P_MEMSZ), 1 << 62)),
            "does not fit in memory",
        ),
        (
            "program headers past the end of the file",
            patched(|e| put64(e, 32, 0x10_0000)),
            "truncated ELF: the program header table",
        ),
        (
            "e_phoff near 2^64 (offset + size overflows)",
            patched(|e| put64(e, 32, u64::MAX - 8)),
            "truncated ELF: the program header table",
        ),
        (
            "e_phnum PN_XNUM (65535 headers)",
            patched(|e| put16(e, 56, 0xffff)),
            "truncated ELF: the program header table",
        ),
        (
            "program header entries too small",
            patched(|e| put16(e, 54, 32)),
            "program header entries are too small",
        ),
        (
            "zero program headers",
            patched(|e| put16(e, 56, 0)),
            "no loadable segment",
        ),
        (
            "only an empty PT_LOAD",
            patched(|e| {
                put64(e, ph(0, P_FILESZ), 0);
                put64(e, ph(0, P_MEMSZ), 0);
            }),
            "no loadable segment",
        ),
        (
            "segment data past the end of the file",
            patched(|e| put64(e, ph(0, P_OFFSET), 0x10_0000)),
            "truncated ELF: a segment",
        ),
        (
            "segment offset near 2^64 (offset + size overflows)",
            patched(|e| put64(e, ph(0, P_OFFSET), u64::MAX - 4)),
            "truncated ELF: a segment",
        ),
        (
            "note data past the end of the file",
            patched(|e| put64(e, ph(1, P_FILESZ), 0x1000)),
            "truncated ELF: a segment",
        ),
    ]
}

/// Every broken file is refused by the whole loading path with its own
/// one-line error; memory is left untouched above the boot data.
#[test]
fn broken_elf_files_are_refused_with_one_line_each() {
    let layout = MemoryLayout::new(MIB).unwrap();
    let mem = layout.allocate().unwrap();
    // The table's base is good, so each case fails for its own reason.
    load(&mem, &layout, &Image::good().build(), "", None).expect("the good image loads");
    mem.write_slice(&[0xaa; 16], GuestAddress(LOAD)).unwrap();
    let cases = cases();
    assert!(cases.len() >= 25, "{} cases", cases.len());
    for (what, elf, expected) in cases {
        let result = std::panic::catch_unwind(|| load(&mem, &layout, &elf, "", None));
        let error = match result {
            Ok(Ok(_)) => panic!("{what}: loaded"),
            Ok(Err(error)) => error.to_string(),
            Err(_) => panic!("{what}: the loader panicked"),
        };
        assert!(
            error.contains(expected),
            "{what}: error {error:?} does not say {expected:?}"
        );
        assert!(
            !error.contains('\n') && !error.is_empty(),
            "{what}: {error:?}"
        );
        let mut code = [0u8; 16];
        mem.read_slice(&mut code, GuestAddress(LOAD)).unwrap();
        assert_eq!(code, [0xaa; 16], "{what}: memory was written");
    }
}

/// Every cut of the good file short of its end is refused, at every byte.
#[test]
fn every_truncation_is_refused() {
    let layout = MemoryLayout::new(MIB).unwrap();
    let mem = layout.allocate().unwrap();
    let good = Image::good().build();
    for len in 0..good.len() {
        let error = load(&mem, &layout, &good[..len], "", None)
            .err()
            .unwrap_or_else(|| panic!("cut at {len} loaded"));
        let text = error.to_string();
        assert!(
            text.contains("truncated") || text.contains("not an ELF"),
            "cut at {len}: {text}"
        );
    }
}
