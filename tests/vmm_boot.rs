//! The VMM as a program: boots the embedded guest and hand-made PVH kernels
//! on real KVM, stops at `--timeout`, and refuses bad kernels and arguments
//! with one clear line and a non-zero status.
mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use common::pvh_elf::PvhElf;
use common::*;
use shared::{boot, exit, status};

/// A PVH kernel whose `code` loads and starts at 1 MiB, in 32-bit protected
/// mode per the PVH ABI. Without `pvh`, a GNU build-id note replaces the PVH
/// entry note.
fn tiny_elf(code: &[u8], pvh: bool) -> Vec<u8> {
    tiny_elf_at(0x10_0000, code, pvh)
}

fn tiny_elf_at(load: u64, code: &[u8], pvh: bool) -> Vec<u8> {
    let elf = PvhElf::new(load, code);
    if pvh {
        elf.build()
    } else {
        elf.without_pvh_note()
            .note(b"GNU", 3, &[1, 2, 3, 4]) // NT_GNU_BUILD_ID
            .build()
    }
}

/// 32-bit code: `out 0xf4, al` with `al = value`, then halt forever.
fn exit_code(value: u8) -> Vec<u8> {
    vec![0xb0, value, 0xe6, 0xf4, 0xf4, 0xeb, 0xfd]
}

fn write_temp(name: &str, bytes: &[u8]) -> PathBuf {
    let path = scratch_path(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

fn vmm() -> Command {
    Command::new(vmm_binary())
}

/// Runs the VMM to completion; returns (status, stdout, stderr).
fn run(command: Command, timeout: Duration) -> (Option<i32>, String, String) {
    let mut vm = Machine::spawn(command);
    let status = vm.wait(timeout);
    (status.code(), vm.stdout.text(), vm.stderr.text())
}

#[test]
fn embedded_guest_prints_banner_and_prompt() {
    require_kvm();
    let mut command = vmm();
    command.args(["--timeout", "20"]);
    let started = Instant::now();
    let vm = Machine::spawn(command);
    vm.stdout.expect(boot::BANNER, Duration::from_secs(10));
    let banner_after = started.elapsed();
    vm.stdout.expect(boot::PROMPT, Duration::from_secs(10));
    eprintln!(
        "banner after {banner_after:?}, prompt after {:?}",
        started.elapsed()
    );
}

#[test]
fn boot_test_passes() {
    require_kvm();
    let mut command = vmm();
    command.args(["--cmdline", "test=boot", "--timeout", "20"]);
    let (status, stdout, stderr) = run(command, Duration::from_secs(30));
    assert_eq!(
        status,
        Some(i32::from(exit::TEST_PASSED)),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(stdout.contains(boot::BANNER));
}

/// 32-bit code: `cpuid` with `eax = leaf`, then the bits `shift..shift+8`
/// of EAX out to the debug-exit port.
fn cpuid_eax_byte(leaf: u32, shift: u8) -> Vec<u8> {
    let mut code = vec![0xb8]; // mov eax, leaf
    code.extend_from_slice(&leaf.to_le_bytes());
    code.extend_from_slice(&[0x31, 0xc9, 0x0f, 0xa2]); // xor ecx, ecx; cpuid
    code.extend_from_slice(&[0xc1, 0xe8, shift]); // shr eax, shift
    code.extend_from_slice(&[0xe6, 0xf4, 0xf4, 0xeb, 0xfd]); // out 0xf4, al; hlt
    code
}

/// The guest finds the TSC frequency in the hypervisor timing leaf
/// 0x40000010 (announced by leaf 0x40000000), equal to what KVM runs the
/// vCPU's TSC at (`KVM_GET_TSC_KHZ`), so it needs no calibration.
#[test]
fn cpuid_timing_leaf_gives_the_tsc_frequency() {
    require_kvm();
    let kvm = kvm_ioctls::Kvm::new().unwrap();
    let vm = kvm.create_vm().unwrap();
    let khz = vm.create_vcpu(0).unwrap().get_tsc_khz().unwrap();
    let leaf_byte = |name: &str, leaf: u32, shift: u8| {
        let elf = write_temp(name, &tiny_elf(&cpuid_eax_byte(leaf, shift), true));
        let mut command = vmm();
        command.arg("--kernel").arg(&elf).args(["--timeout", "10"]);
        let (status, _, stderr) = run(command, Duration::from_secs(20));
        status.unwrap_or_else(|| panic!("no status; stderr:\n{stderr}"))
    };
    assert_eq!(leaf_byte("cpuid-max.elf", 0x4000_0000, 0), 0x10);
    for shift in [0u8, 8, 16] {
        let name = format!("cpuid-khz-{shift}.elf");
        let expected = ((khz >> shift) & 0xff) as i32;
        assert_eq!(
            leaf_byte(&name, 0x4000_0010, shift),
            expected,
            "TSC {khz} kHz, bits {shift}+"
        );
    }
}

/// Boots a tiny PVH kernel of 32-bit `code` (written to `name`) with
/// `--stats`: its exit status and stderr.
fn run_with_stats(name: &str, code: &[u8]) -> (Option<i32>, String) {
    let elf = write_temp(name, &tiny_elf(code, true));
    let mut command = vmm();
    command
        .arg("--kernel")
        .arg(&elf)
        .args(["--timeout", "10", "--stats"]);
    let (status, _, stderr) = run(command, Duration::from_secs(20));
    (status, stderr)
}

/// `popcnt` is one of the instructions KVM's emulator on this project's
/// hosts cannot run; the VMM completes it (vmm/src/vm/complete), so a guest
/// that counts bits gets the count.
#[test]
fn popcnt_is_completed_by_the_vmm() {
    require_kvm();
    // mov eax, 0x0f0f00ff; popcnt ebx, eax; mov al, bl; out 0xf4, al; hlt
    let code = [
        0xb8, 0xff, 0x00, 0x0f, 0x0f, 0xf3, 0x0f, 0xb8, 0xd8, 0x88, 0xd8, 0xe6, 0xf4, 0xf4, 0xeb,
        0xfd,
    ];
    let (status, stderr) = run_with_stats("popcnt.elf", &code);
    assert_eq!(status, Some(16), "stderr:\n{stderr}");
    assert!(
        stderr.contains("instructions completed by the VMM (KVM's emulator could not): 1"),
        "{stderr}"
    );
}

/// `ldmxcsr` is another: every Linux `kernel_fpu_begin` runs it. The VMM
/// completes it through the vCPU's XSAVE image (`KVM_SET_XSAVE`), so MXCSR
/// holds the loaded value: `stmxcsr` (completed or emulated) reads it back.
#[test]
fn ldmxcsr_is_completed_by_the_vmm() {
    require_kvm();
    let code = [
        0x0f, 0x20, 0xe0, // mov eax, cr4
        0x0d, 0x00, 0x02, 0x00, 0x00, // or eax, 0x200 (CR4.OSFXSR)
        0x0f, 0x22, 0xe0, // mov cr4, eax
        0xc7, 0x05, 0x00, 0x08, 0x10, 0x00, 0x80, 0x7f, 0x00,
        0x00, // mov dword [0x100800], 0x7f80
        0x0f, 0xae, 0x15, 0x00, 0x08, 0x10, 0x00, // ldmxcsr [0x100800]
        0x0f, 0xae, 0x1d, 0x04, 0x08, 0x10, 0x00, // stmxcsr [0x100804]
        0xa1, 0x04, 0x08, 0x10, 0x00, // mov eax, [0x100804]
        0xc1, 0xe8, 0x08, // shr eax, 8
        0xe6, 0xf4, 0xf4, 0xeb, 0xfd, // out 0xf4, al; hlt; jmp $-1
    ];
    let (status, stderr) = run_with_stats("ldmxcsr.elf", &code);
    // MXCSR 0x7f80: the default 0x1f80 with rounding toward zero.
    assert_eq!(status, Some(0x7f), "stderr:\n{stderr}");
    let completed = stderr
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("instructions completed by the VMM (KVM's emulator could not): ")
        })
        .and_then(|n| n.trim().parse::<u32>().ok())
        .unwrap_or(0);
    assert!(completed >= 1, "{stderr}");
}

/// `--stats` shows where the vCPU thread's time went and KVM's own
/// counters for the vCPU (`KVM_GET_STATS_FD`, which the kernels of this
/// project's machines offer): every guest port access is a KVM exit, so
/// KVM's exit count is at least the VMM's I/O exit count.
#[test]
fn stats_show_kvm_counters_and_vcpu_time() {
    require_kvm();
    let mut command = vmm();
    command.args(["--cmdline", "test=boot", "--timeout", "20", "--stats"]);
    let (status, stdout, stderr) = run(command, Duration::from_secs(30));
    assert_eq!(
        status,
        Some(i32::from(exit::TEST_PASSED)),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(stderr.contains("s in KVM_RUN,"), "{stderr}");
    let counter = |name: &str| stats_value(&stderr, name);
    let kvm_exits = counter("exits").unwrap_or_else(|| panic!("no KVM exits counter:\n{stderr}"));
    let io = counter("io-in").unwrap_or(0) + counter("io-out").unwrap_or(0);
    assert!(
        io > 0 && kvm_exits >= io,
        "KVM exits {kvm_exits}, I/O exits {io}:\n{stderr}"
    );
    assert!(counter("irq_injections").unwrap_or(0) > 0, "{stderr}");
}

/// `run=` on the command line: shell lines before the prompt, no keyboard
/// needed, each shown after a prompt; `exit` ends the run with its value.
#[test]
fn run_parameter_runs_shell_lines_before_the_prompt() {
    require_kvm();
    let mut command = vmm();
    command.args(["--no-interactive", "--timeout", "20", "--cmdline"]);
    command.arg("quiet run=echo one two; uptime;; exit 9");
    let (status, stdout, stderr) = run(command, Duration::from_secs(30));
    assert_eq!(status, Some(9), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(
        stdout.contains("> echo one two\r\none two\r\n> uptime\r\nuptime: "),
        "{stdout}"
    );
}

/// The VMM's command-line limit is the guest's too: a command line of
/// exactly `CMDLINE_MAX` bytes boots and arrives whole.
#[test]
fn longest_command_line_reaches_the_guest_whole() {
    require_kvm();
    let mut cmdline = String::from("test=boot pad=");
    cmdline.push_str(&"x".repeat(boot::CMDLINE_MAX - cmdline.len()));
    assert_eq!(cmdline.len(), 4095);
    let mut command = vmm();
    command.args(["--cmdline", &cmdline, "--timeout", "20"]);
    let (status, stdout, stderr) = run(command, Duration::from_secs(30));
    assert_eq!(
        status,
        Some(i32::from(exit::TEST_PASSED)),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    // The boot line prints the command line the guest copied.
    assert!(
        stdout.contains(&format!("command line {cmdline:?}")),
        "stdout:\n{stdout}"
    );
}

/// `reboot` and Ctrl+Alt+Delete reset the machine through the i8042 (0xFE):
/// the guest boots again each time; with `--no-reboot` the VMM exits with 0.
#[test]
fn reboot_and_ctrl_alt_delete_reset_the_machine() {
    require_kvm();
    let script = write_temp(
        "reboot.keys",
        b"expect \"> \"\ntype reboot\\n\nexpect \"> \"\nkey ctrl-alt-delete\nexpect \"> \"\ntype exit 5\\n\n",
    );
    let mut command = vmm();
    command.arg("--keys").arg(&script).args(["--timeout", "30"]);
    let (status, stdout, stderr) = run(command, Duration::from_secs(40));
    assert_eq!(status, Some(5), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert_eq!(stdout.matches(boot::BANNER).count(), 3, "{stdout}");
    assert!(stdout.contains("reboot (Ctrl+Alt+Delete)"), "{stdout}");
    assert_eq!(stderr.matches("vmm: guest reset").count(), 2, "{stderr}");

    let mut command = vmm();
    command.args(["--no-reboot", "--timeout", "30", "--cmdline", "run=reboot"]);
    let (status, stdout, stderr) = run(command, Duration::from_secs(40));
    assert_eq!(status, Some(0), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert_eq!(stdout.matches(boot::BANNER).count(), 1, "{stdout}");
    assert!(stderr.contains("not rebooting"), "{stderr}");
}

#[test]
fn idle_shell_stops_at_timeout_with_124() {
    require_kvm();
    let mut command = vmm();
    command.args(["--timeout", "1"]);
    // The bound leaves room for a host loaded by other tests.
    let stderr = assert_stops_at_timeout(command, Some(Duration::from_secs(12)));
    assert!(stderr.contains("timeout"), "stderr: {stderr}");
}

#[test]
fn any_pvh_elf_boots_and_exits_with_its_value() {
    require_kvm();
    let elf = write_temp("exit42.elf", &tiny_elf(&exit_code(42), true));
    let mut command = vmm();
    command.arg("--kernel").arg(&elf).args(["--timeout", "10"]);
    let (status, stdout, stderr) = run(command, Duration::from_secs(20));
    assert_eq!(status, Some(42), "stdout:\n{stdout}\nstderr:\n{stderr}");
}

#[test]
fn pvh_entry_state_follows_the_abi() {
    require_kvm();
    // EBX -> hvm_start_info with the magic, version 1, a command line, three
    // memory-map entries of which the first starts at 0; write "ok" on COM1;
    // exit 0x10 when everything matched, 0x11 otherwise.
    #[rustfmt::skip]
    let mut code = vec![
        0x81, 0x3b, 0x78, 0xc5, 0x6e, 0x33,       // cmp dword [ebx], 0x336ec578
        0x75, 0x00,                               // jne fail
        0x83, 0x7b, 0x04, 0x01,                   // cmp dword [ebx+4], 1
        0x75, 0x00,                               // jne fail
        0x83, 0x7b, 0x30, 0x03,                   // cmp dword [ebx+0x30], 3 (memmap_entries)
        0x75, 0x00,                               // jne fail
        0x8b, 0x73, 0x28,                         // mov esi, [ebx+0x28] (memmap_paddr)
        0x83, 0x3e, 0x00,                         // cmp dword [esi], 0
        0x75, 0x00,                               // jne fail
        0x8b, 0x73, 0x18,                         // mov esi, [ebx+0x18] (cmdline_paddr)
        0x80, 0x3e, b'h',                         // cmp byte [esi], 'h'
        0x75, 0x00,                               // jne fail
        0x0f, 0x20, 0xc0,                         // mov eax, cr0
        0xa8, 0x01,                               // test al, 1 (PE)
        0x74, 0x00,                               // jz fail
        0x66, 0xba, 0xf8, 0x03,                   // mov dx, 0x3f8
        0xb0, b'o', 0xee,                         // mov al, 'o'; out dx, al
        0xb0, b'k', 0xee,                         // mov al, 'k'; out dx, al
        0xb0, 0x10, 0xe6, 0xf4,                   // mov al, 0x10; out 0xf4, al
    ];
    let fail = code.len();
    code.extend_from_slice(&[0xb0, 0x11, 0xe6, 0xf4, 0xf4]); // fail: exit 0x11
                                                             // Patch every `jne/jz fail` (0x75/0x74 00) with its displacement.
    let mut i = 0;
    while i + 1 < fail {
        if matches!(code[i], 0x74 | 0x75) && code[i + 1] == 0 {
            code[i + 1] = (fail - (i + 2)) as u8;
            i += 2;
        } else {
            i += 1;
        }
    }
    let elf = write_temp("abi.elf", &tiny_elf(&code, true));
    let mut command = vmm();
    command
        .arg("--kernel")
        .arg(&elf)
        .args(["--cmdline", "hello", "--timeout", "10"]);
    let (status, stdout, stderr) = run(command, Duration::from_secs(20));
    assert_eq!(status, Some(0x10), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert_eq!(stdout, "ok");
}

#[test]
fn guest_spinning_with_interrupts_off_stops_at_timeout() {
    require_kvm();
    // cli; jmp $ : the vCPU never exits by itself; the timeout must kick it.
    let elf = write_temp("spin.elf", &tiny_elf(&[0xfa, 0xeb, 0xfe], true));
    let mut command = vmm();
    command.arg("--kernel").arg(&elf).args(["--timeout", "0.5"]);
    assert_stops_at_timeout(command, Some(Duration::from_secs(12)));
}

#[test]
fn guest_halted_forever_stops_at_timeout() {
    require_kvm();
    let elf = write_temp("halt.elf", &tiny_elf(&[0xfa, 0xf4, 0xeb, 0xfd], true));
    let mut command = vmm();
    command.arg("--kernel").arg(&elf).args(["--timeout", "0.5"]);
    assert_stops_at_timeout(command, None);
}

#[test]
fn triple_fault_is_a_crash() {
    require_kvm();
    // ud2 with an empty IDT: #UD -> #GP -> #DF -> shutdown.
    let elf = write_temp("ud2.elf", &tiny_elf(&[0x0f, 0x0b], true));
    let mut command = vmm();
    command.arg("--kernel").arg(&elf).args(["--timeout", "10"]);
    let (status, stdout, stderr) = run(command, Duration::from_secs(20));
    assert_eq!(
        status,
        Some(status::GUEST_CRASH),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(stderr.contains("triple-fault"), "stderr: {stderr}");
    // As for every crash, the message names where the guest was.
    assert!(stderr.contains(" at rip 0x"), "stderr: {stderr}");
}

/// Runs `command` (which sets `--timeout`) expecting exit status 124 within
/// `bound` (a VM the timeout failed to stop is killed at 20 s); returns
/// stderr.
fn assert_stops_at_timeout(command: Command, bound: Option<Duration>) -> String {
    let started = Instant::now();
    let (status, stdout, stderr) = run(command, Duration::from_secs(20));
    assert_eq!(
        status,
        Some(status::TIMEOUT),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    if let Some(bound) = bound {
        assert!(started.elapsed() < bound, "took {:?}", started.elapsed());
    }
    stderr
}

/// Runs the VMM expecting a setup error; returns its one-line message.
fn setup_error(args: &[&str], kernel: Option<&PathBuf>) -> String {
    let mut command = vmm();
    if let Some(kernel) = kernel {
        command.arg("--kernel").arg(kernel);
    }
    command.args(args).args(["--timeout", "10"]);
    let (status, stdout, stderr) = run(command, Duration::from_secs(20));
    assert_eq!(
        status,
        Some(status::SETUP_ERROR),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(!stdout.contains(boot::BANNER));
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "expected one line, got:\n{stderr}");
    assert!(lines[0].starts_with("vmm: "), "{stderr}");
    lines[0].to_string()
}

#[test]
fn elf_without_pvh_note_is_refused() {
    let elf = write_temp("nopvh.elf", &tiny_elf(&exit_code(0), false));
    let message = setup_error(&[], Some(&elf));
    assert!(message.contains("no PVH entry note"), "{message}");
}

#[test]
fn truncated_elf_is_refused() {
    let guest = std::fs::read(guest_elf()).unwrap();
    // In the ELF header, in the program headers, in the last loaded byte.
    for cut in [40, 100, loaded_end(&guest) - 1] {
        let elf = write_temp("truncated.elf", &guest[..cut]);
        let message = setup_error(&[], Some(&elf));
        assert!(message.contains("truncated ELF"), "cut at {cut}: {message}");
    }
}

/// The end of the last segment's bytes in the file.
fn loaded_end(elf: &[u8]) -> usize {
    let u64_at = |at: usize| u64::from_le_bytes(elf[at..at + 8].try_into().unwrap()) as usize;
    let u16_at = |at: usize| u16::from_le_bytes(elf[at..at + 2].try_into().unwrap()) as usize;
    let (phoff, phentsize, phnum) = (u64_at(32), u16_at(54), u16_at(56));
    (0..phnum)
        .map(|i| phoff + i * phentsize)
        .map(|ph| u64_at(ph + 8) + u64_at(ph + 32))
        .max()
        .unwrap()
}

#[test]
fn non_elf_file_is_refused() {
    let file = write_temp("script.sh", b"#!/bin/sh\necho hello\n");
    let message = setup_error(&[], Some(&file));
    assert!(message.contains("not an ELF file"), "{message}");
}

#[test]
fn missing_kernel_file_is_refused() {
    let missing = scratch_path("does-not-exist.elf");
    let message = setup_error(&[], Some(&missing));
    assert!(
        message.contains("cannot read kernel") && message.contains("No such file"),
        "{message}"
    );
}

#[test]
fn kernel_larger_than_memory_is_refused() {
    // Loads at 64 MiB: fits the default 128 MiB, not 16 MiB.
    let elf = write_temp("high.elf", &tiny_elf_at(0x400_0000, &exit_code(7), true));
    let message = setup_error(&["--memory", "16"], Some(&elf));
    assert!(message.contains("does not fit in memory"), "{message}");
    require_kvm();
    let mut command = vmm();
    command.arg("--kernel").arg(&elf).args(["--timeout", "10"]);
    let (status, _, stderr) = run(command, Duration::from_secs(20));
    assert_eq!(status, Some(7), "{stderr}");
}

#[test]
fn memory_size_is_validated() {
    for size in ["1", "100000"] {
        let message = setup_error(&["--memory", size], None);
        assert!(message.contains("out of range"), "{message}");
    }
}

/// Negative numbers reach the flags' own one-line errors (status 1), not
/// the argument parser's; the `--memory` error names the documented range.
#[test]
fn negative_numbers_reach_the_flags_own_errors() {
    let message = setup_error(&["--memory", "-5"], None);
    assert_eq!(
        message,
        "vmm: --memory: -5 is out of range, not in 3..=3072 MiB"
    );
    let output = vmm().args(["--timeout", "-1"]).output().unwrap();
    assert_eq!(output.status.code(), Some(status::SETUP_ERROR));
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        "vmm: --timeout -1: expected a positive number of seconds\n"
    );
}

/// The documented minimum, 3 MiB, is one the embedded guest boots in; 2 is
/// refused before the boot.
#[test]
fn embedded_guest_boots_in_the_minimum_memory() {
    require_kvm();
    let mut command = vmm();
    command.args(["--no-interactive", "--timeout", "20", "--memory", "3"]);
    command.args(["--cmdline", "run=exit 7"]);
    let (status, stdout, stderr) = run(command, Duration::from_secs(30));
    assert_eq!(status, Some(7), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(!stderr.contains("BOOT_FAILURE"), "{stderr}");
    let message = setup_error(&["--memory", "2"], None);
    assert!(message.contains("3..=3072"), "{message}");
}

/// Status 20 is the embedded guest's `BOOT_FAILURE` only: another kernel's
/// 20 gets no added line.
#[test]
fn boot_failure_hint_is_for_the_embedded_guest_only() {
    require_kvm();
    let elf = write_temp(
        "exit20.elf",
        &tiny_elf(&exit_code(exit::BOOT_FAILURE), true),
    );
    let mut command = vmm();
    command.arg("--kernel").arg(&elf).args(["--timeout", "10"]);
    let (status, _, stderr) = run(command, Duration::from_secs(20));
    assert_eq!(status, Some(20), "{stderr}");
    assert!(!stderr.contains("BOOT_FAILURE"), "{stderr}");
}

/// `--export-guest -` writes the same ELF to stdout as to a file.
#[test]
fn export_guest_to_stdout() {
    let path = scratch_path("exported-guest.elf");
    let status = vmm().arg("--export-guest").arg(&path).status().unwrap();
    assert_eq!(status.code(), Some(0));
    let output = vmm().args(["--export-guest", "-"]).output().unwrap();
    assert_eq!(output.status.code(), Some(0));
    assert!(output.stderr.is_empty());
    assert!(output.stdout.starts_with(b"\x7fELF"));
    assert_eq!(output.stdout, std::fs::read(&path).unwrap());
}

/// The README's synopsis (under "The VMM") names every flag `--help` lists.
#[test]
fn readme_synopsis_lists_every_flag() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
    let section = &readme[readme.find("## The VMM").expect("README section")..];
    let synopsis: String = section
        .lines()
        .skip_while(|l| !l.starts_with("    vmm "))
        .take_while(|l| l.starts_with("    "))
        .collect::<Vec<_>>()
        .join("\n");
    let output = vmm().arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&output.stdout);
    let flags: Vec<&str> = help
        .lines()
        .map(str::trim_start)
        .filter(|l| l.starts_with('-'))
        .filter_map(|l| l.split([' ', ',', '[', '=']).find(|w| w.starts_with("--")))
        .collect();
    assert!(flags.len() >= 14, "{flags:?}");
    // `vmm keys` has its own line in the synopsis, with its own flags.
    let output = vmm().args(["keys", "--help"]).output().unwrap();
    let keys_help = String::from_utf8_lossy(&output.stdout);
    let keys_line = synopsis
        .lines()
        .find(|l| l.trim_start().starts_with("vmm keys "))
        .expect("a `vmm keys` line in the README synopsis");
    let keys_flags: Vec<&str> = keys_help
        .lines()
        .map(str::trim_start)
        .filter(|l| l.starts_with('-'))
        .filter_map(|l| l.split([' ', ',']).find(|w| w.starts_with("--")))
        .filter(|f| *f != "--help")
        .collect();
    assert!(keys_flags.len() >= 4, "{keys_flags:?}");
    for flag in keys_flags {
        let named = keys_line
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
            .any(|w| w == flag);
        assert!(named, "{flag} missing from `{keys_line}`");
    }
    for flag in flags {
        let named = synopsis
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
            .any(|w| w == flag);
        assert!(
            named,
            "{flag} missing from the README synopsis:\n{synopsis}"
        );
    }
}

/// `--help` lists every exit status and the terminal's Ctrl+A keys.
#[test]
fn help_lists_the_exit_statuses() {
    let output = vmm().arg("--help").output().unwrap();
    assert_eq!(output.status.code(), Some(0));
    let help = String::from_utf8_lossy(&output.stdout);
    for line in [
        "Exit statuses:",
        "\n  1 ",
        "\n  2 ",
        "\n  124 ",
        "\n  125 ",
        "\n  126 ",
        "20 boot failure",
    ] {
        assert!(help.contains(line), "{line:?} not in:\n{help}");
    }
    for key in ["Ctrl+A X", "Ctrl+A H", "Ctrl+A Ctrl+A"] {
        assert!(help.contains(key), "{key:?} not in:\n{help}");
    }
    let output = vmm().arg("--no-such-flag").output().unwrap();
    assert_eq!(output.status.code(), Some(2));
}

#[test]
fn shell_exit_command_sets_the_status() {
    require_kvm();
    // Needs the keystroke scripts of `--keys` (issue 5).
    let script = write_temp("exit5.keys", b"expect >\ntype exit 5\\n\n");
    let mut command = vmm();
    command.arg("--keys").arg(&script).args(["--timeout", "20"]);
    let (status, stdout, stderr) = run(command, Duration::from_secs(30));
    assert_eq!(status, Some(5), "stdout:\n{stdout}\nstderr:\n{stderr}");
}

#[test]
fn keys_typed_at_boot_reach_the_shell_in_order() {
    require_kvm();
    // No `expect`: the keys are queued before the guest runs and the
    // keyboard holds them until the guest's driver enables scanning (F4).
    let mut command = vmm();
    command.args([
        "--no-interactive",
        "--type",
        "echo early bird\\n",
        "--type",
        "exit 3\\n",
        "--timeout",
        "20",
    ]);
    let started = Instant::now();
    let (status, stdout, stderr) = run(command, Duration::from_secs(30));
    eprintln!("exited after {:?}", started.elapsed());
    let context = format!("stdout:\n{stdout}\nstderr:\n{stderr}");
    assert_eq!(status, Some(3), "{context}");
    let lines: Vec<&str> = stdout.lines().map(|l| l.trim_end_matches('\r')).collect();
    assert!(lines.contains(&"early bird"), "{context}");
    let echo = format!("{}echo early bird", boot::PROMPT);
    assert!(lines.contains(&echo.as_str()), "{context}");
    assert!(!stdout.contains("i8042: warning"), "{context}");
    assert!(!stdout.contains("unknown command"), "{context}");
}

/// A pipe whose read end the test holds but never reads, shrunk to one page
/// so a few KiB of guest output fill it. Returns (read end, write end).
fn stuck_pipe() -> (std::os::fd::OwnedFd, std::os::fd::OwnedFd) {
    use std::os::fd::FromRawFd;
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: pipe2 just created these descriptors and nothing else owns them.
    let (read, write) = unsafe {
        (
            std::os::fd::OwnedFd::from_raw_fd(fds[0]),
            std::os::fd::OwnedFd::from_raw_fd(fds[1]),
        )
    };
    // SAFETY: F_SETPIPE_SZ on a pipe we own; the minimum is one page.
    let size = unsafe { libc::fcntl(fds[0], libc::F_SETPIPE_SZ, 4096) };
    assert!(
        size >= 4096,
        "F_SETPIPE_SZ: {}",
        std::io::Error::last_os_error()
    );
    (read, write)
}

/// The guest prints far more than stdout takes (a pipe nobody reads): the
/// vCPU must not block on stdout while it holds the machine lock, so
/// `--timeout` still stops the VMM, promptly, with 124.
#[test]
fn stdout_nobody_reads_does_not_stop_the_timeout() {
    require_kvm();
    let (read_end, write_end) = stuck_pipe();
    let mut command = vmm();
    // About 600 bytes per `help`: some 30 KiB against a 4 KiB pipe.
    // From the command line, not typed: typing speed depends on the host's
    // load, and a `type` line still pending at the timeout would fail the
    // run (126) instead of showing the timeout.
    command.args(["--no-interactive", "--timeout", "3", "--stats", "--cmdline"]);
    command.arg(format!("run={}", ["help"; 50].join("; ")));
    command
        .stdin(std::process::Stdio::null())
        .stdout(write_end)
        .stderr(std::process::Stdio::piped());
    let started = Instant::now();
    let mut child = command.spawn().unwrap();
    let stderr = Output::collect(child.stderr.take().unwrap());
    // Blocked on stdout, the VMM would never exit: it is killed at 40 s.
    let status = wait_or_kill(&mut child, Duration::from_secs(40), &stderr);
    let elapsed = started.elapsed();
    stderr.wait_closed(Duration::from_secs(2));
    drop(read_end);
    let stderr = stderr.text();
    assert_eq!(status.code(), Some(status::TIMEOUT), "stderr:\n{stderr}");
    // 3 s of run time and at most about 1 s spent trying to flush stdout:
    // 4 s here, with ample room for a host loaded by other tests (13.7 s
    // seen with both CPUs busy and other VMs starting).
    assert!(
        elapsed < Duration::from_secs(25),
        "took {elapsed:?}\nstderr:\n{stderr}"
    );
    // stdout really was stuck: output was left over (and none dropped: the
    // queue holds far more than this).
    let line = stderr
        .lines()
        .find(|line| line.contains("COM1 to stdout:"))
        .unwrap_or_else(|| panic!("no stdout line in --stats:\n{stderr}"));
    let numbers: Vec<u64> = line
        .split_whitespace()
        .filter_map(|word| word.parse().ok())
        .collect();
    assert_eq!(numbers.len(), 2, "{line}");
    assert_eq!(numbers[0], 0, "{line}");
    assert!(numbers[1] > 0, "{line}");
}

/// A slow but live reader of stdout gets every byte of a run that ends
/// while much output is still queued: the exit waits for a writer that
/// makes progress.
#[test]
fn slow_stdout_reader_gets_all_output_before_the_exit() {
    use std::io::Read;
    require_kvm();
    let (read_end, write_end) = stuck_pipe();
    let mut command = vmm();
    command.args(["--no-interactive", "--timeout", "30", "--type"]);
    command.arg(format!("{}exit 7\\n", "help\\n".repeat(50)));
    command
        .stdin(std::process::Stdio::null())
        .stdout(write_end)
        .stderr(std::process::Stdio::piped());
    let mut child = command.spawn().unwrap();
    drop(command); // our copy of the write end: EOF once the VMM exits
    let stderr = Output::collect(child.stderr.take().unwrap());
    let reader = std::thread::spawn(move || {
        let mut pipe = std::fs::File::from(read_end);
        let mut bytes = Vec::new();
        // About 16 KiB/s, in bursts a quarter of a second apart: the guest
        // exits while some of its output is still queued in the VMM.
        let mut buffer = [0u8; 4096];
        loop {
            std::thread::sleep(Duration::from_millis(250));
            match pipe.read(&mut buffer) {
                Ok(0) | Err(_) => return bytes,
                Ok(n) => bytes.extend_from_slice(&buffer[..n]),
            }
        }
    });
    let status = wait_or_kill(&mut child, Duration::from_secs(40), &stderr);
    let stdout = String::from_utf8_lossy(&reader.join().unwrap()).into_owned();
    stderr.wait_closed(Duration::from_secs(2));
    let context = format!("stdout:\n{stdout}\nstderr:\n{}", stderr.text());
    assert_eq!(status.code(), Some(7), "{context}");
    assert!(stdout.contains(boot::BANNER), "{context}");
    assert_eq!(stdout.matches("commands:").count(), 50, "{context}");
    assert!(stdout.contains("> exit 7"), "{context}");
}

/// Waits for `child` to exit; kills it and fails after `timeout`.
fn wait_or_kill(
    child: &mut std::process::Child,
    timeout: Duration,
    stderr: &Output,
) -> std::process::ExitStatus {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "vmm did not exit within {timeout:?} (killed)\nstderr:\n{}",
                stderr.text()
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}
