//! The guest under QEMU, our reference machine: PVH boot, banner, debug exit.
mod common;

use std::time::Duration;

use common::*;
use shared::{boot::BANNER, exit};

#[test]
fn guest_elf_has_pvh_note_and_valid_entry() {
    let elf = std::fs::read(guest_elf()).unwrap();
    assert_eq!(&elf[..4], b"\x7fELF", "not an ELF");
    assert_eq!(elf[4], 2, "not ELF64");
    let entry = u64::from_le_bytes(elf[24..32].try_into().unwrap());
    assert!(
        entry >= shared::boot::KERNEL_LOAD_ADDRESS,
        "entry {entry:#x} below the load address"
    );

    // Walk the program headers for a PT_NOTE holding the Xen PHYS32_ENTRY note.
    let phoff = u64::from_le_bytes(elf[32..40].try_into().unwrap()) as usize;
    let phentsize = u16::from_le_bytes(elf[54..56].try_into().unwrap()) as usize;
    let phnum = u16::from_le_bytes(elf[56..58].try_into().unwrap()) as usize;
    let mut pvh_entry = None;
    for i in 0..phnum {
        let ph = &elf[phoff + i * phentsize..][..phentsize];
        let p_type = u32::from_le_bytes(ph[0..4].try_into().unwrap());
        if p_type != 4 {
            continue;
        }
        let offset = u64::from_le_bytes(ph[8..16].try_into().unwrap()) as usize;
        let size = u64::from_le_bytes(ph[32..40].try_into().unwrap()) as usize;
        let mut notes = &elf[offset..offset + size];
        while notes.len() >= 12 {
            let namesz = u32::from_le_bytes(notes[0..4].try_into().unwrap()) as usize;
            let descsz = u32::from_le_bytes(notes[4..8].try_into().unwrap()) as usize;
            let kind = u32::from_le_bytes(notes[8..12].try_into().unwrap());
            let name_end = 12 + namesz.next_multiple_of(4);
            let name = &notes[12..12 + namesz];
            let desc = &notes[name_end..name_end + descsz];
            if name == b"Xen\0" && kind == 18 {
                pvh_entry = Some(u32::from_le_bytes(desc[..4].try_into().unwrap()));
            }
            notes = &notes[(name_end + descsz.next_multiple_of(4)).min(notes.len())..];
        }
    }
    let pvh_entry = pvh_entry.expect("no XEN_ELFNOTE_PHYS32_ENTRY note");
    assert!(u64::from(pvh_entry) >= shared::boot::KERNEL_LOAD_ADDRESS);
}

fn boots_and_exits(machine: &str, accel: &str) {
    let mut command = qemu_command(machine, accel, guest_elf());
    command.args(["-append", "test=boot"]);
    let mut vm = Machine::spawn(command);
    vm.stdout.expect(BANNER, Duration::from_secs(20));
    let status = vm.wait(Duration::from_secs(30));
    assert_eq!(
        status.code(),
        Some(exit::qemu_exit_status(exit::TEST_PASSED)),
        "stdout:\n{}\nstderr:\n{}",
        vm.stdout.text(),
        vm.stderr.text()
    );
}

#[test]
fn boots_in_qemu_pc_tcg() {
    boots_and_exits("pc", "tcg");
}

#[test]
fn boots_in_qemu_microvm_kvm() {
    require_kvm();
    boots_and_exits("microvm", "kvm");
}

/// Shell lines from `-append 'run=...'` run before the prompt, with no
/// keyboard: `microvm` has none, and still exits through `run=`.
fn runs_command_line_lines(machine: &str, accel: &str) {
    let mut command = qemu_command(machine, accel, guest_elf());
    command.args(["-append", "run=echo from the command line; uptime; exit 3"]);
    let mut vm = Machine::spawn(command);
    let status = vm.wait(Duration::from_secs(30));
    let stdout = vm.stdout.text();
    assert_eq!(
        status.code(),
        Some(exit::qemu_exit_status(3)),
        "stdout:\n{stdout}\nstderr:\n{}",
        vm.stderr.text()
    );
    assert!(
        stdout.contains("> echo from the command line\r\nfrom the command line"),
        "{stdout}"
    );
    assert!(stdout.contains("uptime: "), "{stdout}");
}

#[test]
fn run_parameter_drives_qemu_pc_tcg() {
    runs_command_line_lines("pc", "tcg");
}

#[test]
fn run_parameter_drives_qemu_microvm_kvm() {
    require_kvm();
    runs_command_line_lines("microvm", "kvm");
}
