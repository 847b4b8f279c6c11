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

// --- Hostile guests built into the embedded kernel (`test=hostile_*`,
// guest/src/ktest/hostile.rs): long-mode kernels, so nothing depends on the
// host's instruction emulator beyond ordinary kernel code.

/// The bound asserted on the VMM's reaction to `--timeout` and QMP `quit`
/// while the guest misbehaves: the VMM measures the first itself (its
/// `--stats` run time against the timeout); QMP `quit` is timed by this
/// test from the request to the process's exit (measured: 5-12 ms with the
/// host's 2 CPUs at a load average of 24).
const STOP_WITHIN: Duration = Duration::from_millis(100);
const QUIT_WITHIN: Duration = Duration::from_millis(100);

/// `vmm` on the embedded guest with `cmdline` and `extra` flags.
fn hostile(cmdline: &str, extra: &[&str]) -> Command {
    require_kvm();
    let mut command = Command::new(vmm_binary());
    command
        .arg("--kernel")
        .arg(guest_elf())
        .args(["--cmdline", cmdline])
        .args(extra);
    command
}

/// The run time the VMM reports in `--stats` (`vmm stats: run time 3.006 s`).
fn stats_run_time(stderr: &str) -> Duration {
    let secs: f64 = stderr
        .lines()
        .find_map(|line| line.strip_prefix("vmm stats: run time "))
        .and_then(|rest| rest.trim_end_matches(" s").parse().ok())
        .unwrap_or_else(|| panic!("no run time in --stats:\n{stderr}"));
    Duration::from_secs_f64(secs)
}

/// Per thread of process `pid`: its name and CPU time (user + system).
fn thread_cpu(pid: u32) -> Vec<(String, Duration)> {
    // SAFETY: sysconf has no memory effects.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    let mut threads = Vec::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return threads;
    };
    for task in tasks.flatten() {
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
            continue;
        };
        // `tid (comm) state ...`: utime and stime are fields 14 and 15.
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let name = stat[open + 1..close].to_string();
        let fields: Vec<u64> = stat[close + 2..]
            .split_whitespace()
            .map(|f| f.parse().unwrap_or(0))
            .collect();
        let ticks = fields[11] + fields[12];
        threads.push((name, Duration::from_millis(ticks * 1000 / hz)));
    }
    threads
}

/// The VMM's resident set size now (VmRSS), in KiB.
fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches(" kB").trim().parse().ok())
}

/// An interrupt storm: PIT channel 0 in mode 2 with count 1 and IRQ0
/// unmasked. The PIT model spaces IRQ0 edges at least 100 µs apart, and a
/// tick is reinjected only after the previous one was taken, so the guest
/// takes interrupts as fast as it can while the VMM's other threads stay
/// nearly idle; `--timeout` stops it on time.
#[test]
fn pit_storm_leaves_the_vmm_responsive_and_bounded() {
    let timeout = Duration::from_secs(3);
    let command = hostile("test=hostile_pit_storm", &["--stats", "--timeout", "3"]);
    let started = Instant::now();
    let mut vm = Machine::spawn(command);
    vm.stdout
        .expect("halting with interrupts on", Duration::from_secs(20));
    let pid = vm.child.id();
    // CPU over one second of the storm, thread by thread.
    let before = thread_cpu(pid);
    let window_start = Instant::now();
    std::thread::sleep(Duration::from_secs(1));
    let after = thread_cpu(pid);
    let window = window_start.elapsed();
    let status = vm.wait(Duration::from_secs(30));
    let wall = started.elapsed();
    let stderr = vm.stderr.text();
    assert_eq!(
        status.code(),
        Some(shared::status::TIMEOUT),
        "stderr:\n{stderr}"
    );

    let used = |name: &str| -> Duration {
        let of = |list: &[(String, Duration)]| {
            list.iter()
                .filter(|(n, _)| n == name)
                .map(|(_, t)| *t)
                .sum::<Duration>()
        };
        of(&after).saturating_sub(of(&before))
    };
    let names: std::collections::BTreeSet<&String> = after.iter().map(|(n, _)| n).collect();
    let vcpu = used("vcpu0");
    let others: Duration = names
        .iter()
        .filter(|n| n.as_str() != "vcpu0")
        .map(|n| used(n))
        .sum();
    eprintln!(
        "storm: over {window:?}: vCPU thread {vcpu:?}, other threads {others:?} ({names:?}); \
         run time {:?} for a {timeout:?} timeout, {wall:?} from spawn to exit",
        stats_run_time(&stderr)
    );
    // The vCPU thread runs the guest (KVM's emulator) flat out: at most one
    // CPU. Everything else (time service, main thread, COM1 writer) must
    // stay small: a tick storm in the host would show here.
    assert!(
        vcpu <= window + Duration::from_millis(50),
        "vCPU {vcpu:?} in {window:?}"
    );
    assert!(
        others <= window / 5,
        "the VMM's own threads used {others:?} of CPU in {window:?}"
    );
    // The storm was real: thousands of IRQ0s delivered, the rest counted.
    let irq0 = stderr
        .lines()
        .find_map(|line| line.trim().strip_prefix("irq 0 "))
        .and_then(|n| n.trim().parse::<u64>().ok())
        .unwrap_or(0);
    assert!(irq0 > 1000, "only {irq0} IRQ0s injected:\n{stderr}");
    // --timeout acted on time.
    let run_time = stats_run_time(&stderr);
    assert!(
        // `--timeout` counts from before the machine starts and the run
        // time from its first `KVM_RUN`, so the run may be the set-up
        // shorter (2 ms seen under load).
        run_time + Duration::from_millis(100) >= timeout && run_time <= timeout + STOP_WITHIN,
        "stopped after {run_time:?} for a {timeout:?} timeout"
    );
}

/// QMP `quit` in the middle of the storm.
#[test]
fn pit_storm_stops_on_qmp_quit() {
    quit_during("test=hostile_pit_storm", "halting with interrupts on");
}

/// `cli; hlt`: no interrupt can wake the vCPU; only the host can end it.
#[test]
fn cli_hlt_ends_by_timeout_on_time() {
    // Long enough for the guest to boot to its `cli; hlt` on a loaded host
    // (its boot is emulated instruction by instruction).
    let timeout = Duration::from_secs(5);
    let command = hostile("test=hostile_cli_hlt", &["--stats", "--timeout", "5"]);
    let started = Instant::now();
    let mut vm = Machine::spawn(command);
    let status = vm.wait(Duration::from_secs(30));
    let wall = started.elapsed();
    let stderr = vm.stderr.text();
    assert_eq!(
        status.code(),
        Some(shared::status::TIMEOUT),
        "stderr:\n{stderr}"
    );
    assert!(
        vm.stdout.text().contains("hostile_cli_hlt: cli; hlt"),
        "the guest did not reach cli; hlt in {timeout:?}:\n{}",
        vm.stdout.text()
    );
    let run_time = stats_run_time(&stderr);
    eprintln!("cli; hlt: run time {run_time:?} for {timeout:?}, {wall:?} from spawn to exit");
    assert!(
        // `--timeout` counts from before the machine starts and the run
        // time from its first `KVM_RUN`, so the run may be the set-up
        // shorter (2 ms seen under load).
        run_time + Duration::from_millis(100) >= timeout && run_time <= timeout + STOP_WITHIN,
        "stopped after {run_time:?} for a {timeout:?} timeout"
    );
    // The halted vCPU does not spin: it sleeps in the VMM until stopped.
    assert!(
        stats_value(&stderr, "hlt").unwrap_or(0) <= 2,
        "halted more than once:\n{stderr}"
    );
}

#[test]
fn cli_hlt_stops_on_qmp_quit() {
    quit_during("test=hostile_cli_hlt", "hostile_cli_hlt: cli; hlt");
}

/// Runs `cmdline` with a QMP socket, waits for `marker` on COM1 and half
/// a second more, then asks `quit` and times it to the process's exit.
fn quit_during(cmdline: &str, marker: &str) {
    let socket = scratch_path("hostile-quit.sock");
    let qmp_arg = format!("unix:{}", socket.display());
    let command = hostile(cmdline, &["--qmp", &qmp_arg, "--timeout", "60"]);
    let mut vm = Machine::spawn(command);
    let mut qmp = common::qmp::Qmp::connect(&socket, Duration::from_secs(20));
    vm.stdout.expect(marker, Duration::from_secs(20));
    std::thread::sleep(Duration::from_millis(500));
    let asked = Instant::now();
    let _ = qmp.execute("quit", None);
    let replied = asked.elapsed();
    let status = vm.wait(Duration::from_secs(30));
    let took = asked.elapsed();
    eprintln!("{cmdline}: QMP quit answered in {replied:?}, process gone after {took:?}");
    assert_eq!(status.code(), Some(0), "stderr:\n{}", vm.stderr.text());
    assert!(took < QUIT_WITHIN, "quit took {took:?}");
}

/// A triple fault (no IDT, then a page fault) ends the VMM with 125 and a
/// message naming it, whatever `--no-reboot` says.
#[test]
fn triple_fault_is_a_crash() {
    let mut vm = Machine::spawn(hostile("test=hostile_triple_fault", &["--timeout", "60"]));
    let status = vm.wait(Duration::from_secs(90));
    let stderr = vm.stderr.text();
    assert_eq!(
        status.code(),
        Some(shared::status::GUEST_CRASH),
        "stderr:\n{stderr}"
    );
    assert!(stderr.contains("triple-faulted"), "{stderr}");
    assert!(!vm.stdout.text().contains("still running"));
}

/// The PIC re-initialised (ICW1-4) inside the IRQ0 handler, before its
/// EOI: the in-service bit goes, and timer interrupts keep coming.
#[test]
fn pic_reinitialised_inside_an_interrupt() {
    let mut vm = Machine::spawn(hostile("test=hostile_pic_reinit", &["--timeout", "60"]));
    let status = vm.wait(Duration::from_secs(90));
    let out = vm.stdout.text();
    assert_eq!(
        status.code(),
        Some(i32::from(shared::exit::TEST_PASSED)),
        "{out}\nstderr:\n{}",
        vm.stderr.text()
    );
    for line in [
        "[ok] the PIC was re-initialised inside IRQ0 (1 time)",
        "[ok] IRQ0 was in service before ICW1 (ISR 0x01)",
        "[ok] ICW1 cleared the in-service register (ISR 0x00)",
        "[ok] five 10 ms sleeps after the re-initialisation took",
        "[ok] no unexpected or spurious interrupt (0 and 0 more)",
    ] {
        assert!(out.contains(line), "missing {line:?} in:\n{out}");
    }
}

/// Peak resident set size asserted for the VMM while a script types into a
/// guest that does not read (128 MiB of guest RAM, mostly never touched).
const TYPING_RSS_LIMIT_KIB: u64 = 64 * 1024;

/// 100,000 keys typed by `--type` into a guest that ignores the keyboard
/// for 3 s, then polls it: every key arrives exactly once. Scripts are
/// paced (each key waits until the guest has read the previous one), so
/// while the guest does not read, the script waits with one key in the
/// keyboard: the host holds nothing more and loses nothing.
#[test]
fn keys_typed_while_the_guest_does_not_read_are_all_delivered() {
    const KEYS: usize = 100_000;
    let mut text = "a".repeat(KEYS);
    text.push('\n');
    let cmdline = format!("test=hostile_keyboard_deaf keys={KEYS} deaf_ms=3000");
    let mut command = hostile(&cmdline, &["--timeout", "1200", "--type"]);
    command.arg(&text);
    let started = Instant::now();
    let mut vm = Machine::spawn(command);
    let pid = vm.child.id();
    let mut peak = 0;
    let mut samples = 0;
    while vm.child.try_wait().expect("try_wait").is_none() {
        if let Some(kib) = rss_kib(pid) {
            peak = peak.max(kib);
            samples += 1;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let status = vm.wait(Duration::from_secs(10));
    let out = vm.stdout.text();
    eprintln!(
        "{KEYS} keys in {:?}, peak RSS {peak} KiB over {samples} samples",
        started.elapsed()
    );
    assert_eq!(
        status.code(),
        Some(i32::from(shared::exit::TEST_PASSED)),
        "{out}\nstderr:\n{}",
        vm.stderr.text()
    );
    assert!(
        out.contains(
            "[ok] 100000 presses and 100000 releases of a (expected 100000), 0 other bytes"
        ),
        "{out}"
    );
    assert!(samples > 10 && peak > 0, "RSS not sampled");
    assert!(peak <= TYPING_RSS_LIMIT_KIB, "peak RSS {peak} KiB");
}

/// A guest that floods COM1 (`rep outsb`, never looking at the line
/// status) into a stdout nobody reads: the guest is never held up, the
/// VMM's memory stays bounded, and what could not be written is counted in
/// `--stats`. (512 KiB: every byte is an exit here, about 40 µs, so the
/// 16 MiB queue bound itself is reached only in `stdout_sink`'s unit test
/// `a_full_queue_drops_and_counts_the_newest_bytes`.)
#[test]
fn serial_flood_into_a_stuck_stdout_is_bounded_and_counted() {
    const KIB: u64 = 512;
    let cmdline = format!("test=hostile_serial_flood kib={KIB}");
    let mut command = hostile(&cmdline, &["--stats", "--timeout", "600"]);
    command
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = command.spawn().expect("spawn vmm");
    // Keep the pipe open and never read it.
    let _stdout = child.stdout.take();
    let stderr = Output::collect(child.stderr.take().unwrap());
    let pid = child.id();
    let started = Instant::now();
    let mut peak = 0;
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if let Some(kib) = rss_kib(pid) {
            peak = peak.max(kib);
        }
        assert!(
            started.elapsed() < Duration::from_secs(700),
            "the flood did not end"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    stderr.wait_closed(Duration::from_secs(5));
    let stderr = stderr.text();
    eprintln!(
        "flood of {KIB} KiB: {:?}, peak RSS {peak} KiB",
        started.elapsed()
    );
    assert_eq!(
        status.code(),
        Some(i32::from(shared::exit::TEST_PASSED)),
        "stderr:\n{stderr}"
    );
    let line = stderr
        .lines()
        .find(|line| line.contains("COM1 to stdout:"))
        .unwrap_or_else(|| panic!("no COM1 line in --stats:\n{stderr}"));
    let counts: Vec<u64> = line
        .split("stdout:")
        .nth(1)
        .unwrap_or("")
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|word| word.parse().ok())
        .collect();
    let [dropped, unwritten] = counts[..] else {
        panic!("unexpected COM1 line {line:?}");
    };
    // At most a pipe's worth (64 KiB, Linux's default capacity) reached
    // stdout; the rest is counted as not written (nothing dropped: the
    // queue's 16 MiB were never reached).
    assert_eq!(dropped, 0, "{line}");
    assert!(
        (KIB * 1024 - 64 * 1024..=KIB * 1024 + 4096).contains(&unwritten),
        "{line}"
    );
    assert!(peak <= TYPING_RSS_LIMIT_KIB, "peak RSS {peak} KiB");
}
