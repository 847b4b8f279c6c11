//! Hand-built minimal PVH kernels for the VMM's loader and boot tests.

/// Xen's note type for the 32-bit PVH entry point.
const XEN_ELFNOTE_PHYS32_ENTRY: u32 = 18;

/// A minimal ELF64 for x86-64: one `PT_LOAD` holding `code` at the load
/// address (its entry point), optionally followed in memory by zero-filled
/// `.bss`, and one `PT_NOTE` holding the Xen `PHYS32_ENTRY` note that points
/// at the load address (unless left out) and then any extra notes. The code
/// runs in 32-bit protected mode per the PVH ABI.
///
/// ```ignore
/// let elf = PvhElf::new(0x10_0000, &code).bss(0x1000).build();
/// ```
pub struct PvhElf<'a> {
    load: u64,
    code: &'a [u8],
    bss: u64,
    pvh_note: bool,
    notes: Vec<(&'a [u8], u32, &'a [u8])>,
}

impl<'a> PvhElf<'a> {
    /// `code` loaded and entered at `load`, with the PVH note and no `.bss`.
    pub fn new(load: u64, code: &'a [u8]) -> Self {
        PvhElf {
            load,
            code,
            bss: 0,
            pvh_note: true,
            notes: Vec::new(),
        }
    }

    /// `bytes` of zero-filled memory after the code (memsz beyond filesz).
    pub fn bss(mut self, bytes: u64) -> Self {
        self.bss = bytes;
        self
    }

    /// Leaves out the PVH entry note.
    pub fn without_pvh_note(mut self) -> Self {
        self.pvh_note = false;
        self
    }

    /// Adds a note after the PVH one: `name` (without its NUL), type, and
    /// descriptor; name and descriptor are padded to 4 bytes.
    pub fn note(mut self, name: &'a [u8], kind: u32, desc: &'a [u8]) -> Self {
        self.notes.push((name, kind, desc));
        self
    }

    /// The ELF file's bytes: header, two program headers, code, notes.
    pub fn build(&self) -> Vec<u8> {
        let entry = (self.load as u32).to_le_bytes();
        let pvh = (
            b"Xen".as_slice(),
            XEN_ELFNOTE_PHYS32_ENTRY,
            entry.as_slice(),
        );
        let mut note = Vec::new();
        for (name, kind, desc) in self
            .pvh_note
            .then_some(pvh)
            .into_iter()
            .chain(self.notes.iter().copied())
        {
            note.extend_from_slice(&(name.len() as u32 + 1).to_le_bytes()); // namesz
            note.extend_from_slice(&(desc.len() as u32).to_le_bytes()); // descsz
            note.extend_from_slice(&kind.to_le_bytes());
            note.extend_from_slice(name);
            note.push(0);
            note.resize(note.len().next_multiple_of(4), 0);
            note.extend_from_slice(desc);
            note.resize(note.len().next_multiple_of(4), 0);
        }
        let phnum = 2usize;
        let code_offset = 64 + 56 * phnum;
        let note_offset = code_offset + self.code.len();
        let mut elf = vec![0u8; code_offset];
        elf[..4].copy_from_slice(b"\x7fELF");
        elf[4] = 2; // ELFCLASS64
        elf[5] = 1; // little-endian
        elf[6] = 1; // EV_CURRENT
        elf[16..18].copy_from_slice(&2u16.to_le_bytes()); // ET_EXEC
        elf[18..20].copy_from_slice(&62u16.to_le_bytes()); // EM_X86_64
        elf[20..24].copy_from_slice(&1u32.to_le_bytes()); // e_version
        elf[24..32].copy_from_slice(&self.load.to_le_bytes()); // e_entry
        elf[32..40].copy_from_slice(&64u64.to_le_bytes()); // e_phoff
        elf[52..54].copy_from_slice(&64u16.to_le_bytes()); // e_ehsize
        elf[54..56].copy_from_slice(&56u16.to_le_bytes()); // e_phentsize
        elf[56..58].copy_from_slice(&(phnum as u16).to_le_bytes());
        let code_len = self.code.len() as u64;
        let headers = [
            // (p_type, p_offset, p_vaddr = p_paddr, p_filesz, p_memsz)
            (1u32, code_offset, self.load, code_len, code_len + self.bss), // PT_LOAD
            (4, note_offset, 0, note.len() as u64, note.len() as u64),     // PT_NOTE
        ];
        for (i, (kind, offset, addr, filesz, memsz)) in headers.into_iter().enumerate() {
            let ph = &mut elf[64 + 56 * i..][..56];
            ph[0..4].copy_from_slice(&kind.to_le_bytes());
            ph[4..8].copy_from_slice(&7u32.to_le_bytes()); // RWX
            ph[8..16].copy_from_slice(&(offset as u64).to_le_bytes());
            ph[16..24].copy_from_slice(&addr.to_le_bytes());
            ph[24..32].copy_from_slice(&addr.to_le_bytes());
            ph[32..40].copy_from_slice(&filesz.to_le_bytes());
            ph[40..48].copy_from_slice(&memsz.to_le_bytes());
            ph[48..56].copy_from_slice(&4u64.to_le_bytes()); // p_align
        }
        elf.extend_from_slice(self.code);
        elf.extend_from_slice(&note);
        elf
    }
}
