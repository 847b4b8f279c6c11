//! Hostile guests: small PVH kernels that attack the VMM's guest-facing
//! surfaces on real KVM. Each must end with its documented status while the
//! VMM stays whole (no panic, counters consistent).
mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use common::pvh_elf::PvhElf;
use common::*;

/// 32-bit code (hand-assembled; the source is in each test): for every port
/// 0x0000-0xFFFF, a byte, a word and a dword `out` of pseudo-random values
/// (an LCG), then a byte, word and dword `in`; then exit with 0x42.
///
/// Ports whose wide accesses would reach the i8042 command port (0x61-0x64:
/// a random value there can pulse the reset line) or the debug-exit port
/// (0xF1-0xF7: it would end the run with a random status) are skipped, so
/// the run has one outcome to check.
const PORT_SWEEP: &[u8] = &[
    0xbb, 0x78, 0x56, 0x34, 0x12, // mov ebx, 0x12345678
    0x31, 0xf6, // xor esi, esi
    // 1:
    0x8d, 0x46, 0x9f, // lea eax, [esi - 0x61]
    0x83, 0xf8, 0x03, // cmp eax, 3
    0x76, 0x23, // jbe 2f
    0x8d, 0x86, 0x0f, 0xff, 0xff, 0xff, // lea eax, [esi - 0xf1]
    0x83, 0xf8, 0x06, // cmp eax, 6
    0x76, 0x18, // jbe 2f
    0x69, 0xdb, 0x6d, 0x4e, 0xc6, 0x41, // imul ebx, ebx, 1103515245
    0x81, 0xc3, 0x39, 0x30, 0x00, 0x00, // add ebx, 12345
    0x89, 0xf2, // mov edx, esi
    0x89, 0xd8, // mov eax, ebx
    0xee, // out dx, al
    0x66, 0xef, // out dx, ax
    0xef, // out dx, eax
    0xec, // in al, dx
    0x66, 0xed, // in ax, dx
    0xed, // in eax, dx
    // 2:
    0x46, // inc esi
    0x81, 0xfe, 0x00, 0x00, 0x01, 0x00, // cmp esi, 0x10000
    0x72, 0xcc, // jb 1b
    0xb0, 0x42, // mov al, 0x42
    0xe6, 0xf4, // out 0xf4, al
    0xf4, 0xeb, 0xfd, // 3: hlt; jmp 3b
];

/// 32-bit code, paging off: a dword read at every MiB of the 4 GiB space,
/// and a write there too above the 128 MiB of RAM (unbacked memory: every
/// access is an MMIO exit to the VMM); then exit with 0x43.
const MEMORY_SWEEP: &[u8] = &[
    0x31, 0xff, // xor edi, edi
    // 1:
    0x8b, 0x07, // mov eax, [edi]
    0x81, 0xff, 0x00, 0x00, 0x00, 0x08, // cmp edi, 0x08000000
    0x72, 0x02, // jb 2f
    0x89, 0x3f, // mov [edi], edi
    // 2:
    0x81, 0xc7, 0x00, 0x00, 0x10, 0x00, // add edi, 0x00100000
    0x75, 0xec, // jnz 1b (until it wraps to 0)
    0xb0, 0x43, // mov al, 0x43
    0xe6, 0xf4, // out 0xf4, al
    0xf4, 0xeb, 0xfd, // 3: hlt; jmp 3b
];

fn kernel(name: &str, code: &[u8]) -> PathBuf {
    let path = scratch_path(name);
    std::fs::write(&path, PvhElf::new(0x10_0000, code).build()).unwrap();
    path
}

/// Runs the VMM on `kernel` with `--stats` and `--timeout SECS`; returns
/// (status, stderr, wall time).
fn run_stats(kernel: &PathBuf, timeout_secs: u32) -> (Option<i32>, String, Duration) {
    require_kvm();
    let mut command = Command::new(vmm_binary());
    command
        .arg("--kernel")
        .arg(kernel)
        .args(["--stats", "--timeout", &timeout_secs.to_string()]);
    let started = Instant::now();
    let mut vm = Machine::spawn(command);
    let status = vm.wait(Duration::from_secs(u64::from(timeout_secs) + 30));
    (status.code(), vm.stderr.text(), started.elapsed())
}

#[test]
fn every_port_with_every_width_leaves_the_vmm_whole() {
    let elf = kernel("hostile-ports.elf", PORT_SWEEP);
    let (status, stderr, _) = run_stats(&elf, 120);
    assert_eq!(status, Some(0x42), "stderr:\n{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let line = stderr
        .lines()
        .find(|line| line.contains("unclaimed ports:"))
        .unwrap_or_else(|| panic!("no unclaimed-ports line:\n{stderr}"));
    let counts: Vec<u64> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|word| word.parse().ok())
        .collect();
    // Most of the 64 Ki ports are unclaimed: each gets 1 + 2 + 4 bytes each
    // way (a wide access is split into bytes at consecutive ports).
    assert!(
        counts.len() == 2 && counts.iter().all(|&n| n > 7 * 60_000),
        "{line}"
    );
    // One exit per access, six accesses per swept port, plus the exit.
    let io =
        stats_value(&stderr, "io-in").unwrap_or(0) + stats_value(&stderr, "io-out").unwrap_or(0);
    let swept = 0x10000 - 4 - 7;
    assert_eq!(io, 6 * swept + 1, "{stderr}");
}

#[test]
fn unbacked_memory_everywhere_reads_ones_and_ignores_writes() {
    let elf = kernel("hostile-memory.elf", MEMORY_SWEEP);
    let (status, stderr, _) = run_stats(&elf, 120);
    assert_eq!(status, Some(0x43), "stderr:\n{stderr}");
    // 3968 MiB above RAM, each read and written once: 7936 MMIO exits.
    let unbacked = (4096 - 128) * 2;
    assert_eq!(stats_value(&stderr, "mmio"), Some(unbacked), "{stderr}");
}

/// A guest spinning with interrupts off (`cli; jmp $`) never exits to the
/// VMM by itself; QMP `quit` must still stop it promptly (the vCPU is kicked
/// out of `KVM_RUN`), with status 0 as QEMU.
#[test]
fn qmp_quit_stops_a_guest_spinning_with_interrupts_off() {
    require_kvm();
    let elf = kernel("hostile-spin.elf", &[0xfa, 0xeb, 0xfe]); // cli; jmp $
    let socket = scratch_path("hostile-spin.sock");
    let mut command = Command::new(vmm_binary());
    command
        .arg("--kernel")
        .arg(&elf)
        .arg("--qmp")
        .arg(format!("unix:{}", socket.display()))
        .args(["--timeout", "60"]);
    let mut vm = Machine::spawn(command);
    // The guest spins from its first instruction: by the time the QMP
    // greeting is read, the vCPU thread has long been inside `KVM_RUN`.
    let mut qmp = common::qmp::Qmp::connect(&socket, Duration::from_secs(20));
    let asked = Instant::now();
    let _ = qmp.execute("quit", None);
    let status = vm.wait(Duration::from_secs(30));
    let took = asked.elapsed();
    assert_eq!(status.code(), Some(0), "stderr:\n{}", vm.stderr.text());
    // Bounded generously for a loaded host; a VMM that could not kick the
    // vCPU would run into the 60 s --timeout (124) instead.
    assert!(took < Duration::from_secs(10), "quit took {took:?}");
}
