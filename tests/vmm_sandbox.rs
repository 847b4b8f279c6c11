//! The seccomp sandbox end to end: every thread of a running `vmm` is
//! confined by exactly one filter of its own, a forbidden system call ends
//! the VMM with status 159 and one line naming the thread and the call, and
//! `--no-seccomp` turns the filters off.
mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::qmp::Qmp;
use common::*;
use shared::{boot, status};

/// (thread name, `Seccomp:` mode, `Seccomp_filters:` count) of every thread
/// of process `pid`, from `/proc/PID/task/*/status`.
fn thread_filters(pid: u32) -> Vec<(String, u32, u32)> {
    let mut threads = Vec::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
        let status = std::fs::read_to_string(task.unwrap().path().join("status")).unwrap();
        let field = |name: &str| {
            status
                .lines()
                .find_map(|line| line.strip_prefix(name))
                .map(|value| value.trim().to_string())
                .unwrap_or_else(|| panic!("no {name} in\n{status}"))
        };
        threads.push((
            field("Name:"),
            field("Seccomp:").parse().unwrap(),
            field("Seccomp_filters:").parse().unwrap(),
        ));
    }
    threads.sort();
    threads
}

/// A VMM with every optional thread (QMP, script, timeout), at its prompt.
fn vmm_with_every_thread(extra: &[&str]) -> (Machine, std::path::PathBuf) {
    require_kvm();
    let socket = scratch_path("sandbox-qmp.sock");
    let script = scratch_path("sandbox.keys");
    std::fs::write(&script, "expect \"> \"\nwait 60s\n").unwrap();
    let mut command = Command::new(vmm_binary());
    command
        .arg("--qmp")
        .arg(format!("unix:{}", socket.display()))
        .arg("--keys")
        .arg(&script)
        .args(["--timeout", "60"])
        .args(extra);
    let vm = Machine::spawn(command);
    vm.stdout.expect(boot::PROMPT, Duration::from_secs(30));
    (vm, socket)
}

/// Waits until `pid` has `count` threads (the last ones start just after
/// the prompt may already be out).
fn wait_threads(pid: u32, count: usize) -> Vec<(String, u32, u32)> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let threads = thread_filters(pid);
        if threads.len() >= count || Instant::now() > deadline {
            return threads;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Every thread of a running VMM is in seccomp filter mode (2) with exactly
/// one filter: its own, none inherited from the thread that started it.
#[test]
fn every_thread_runs_under_its_own_filter() {
    let (mut vm, socket) = vmm_with_every_thread(&[]);
    let mut qmp = Qmp::connect(Path::new(&socket), Duration::from_secs(10));
    let threads = wait_threads(vm.child.id(), 10);
    let names: Vec<&str> = threads.iter().map(|(name, _, _)| name.as_str()).collect();
    // Names as the kernel keeps them (15 bytes); the main thread is `vmm`.
    for expected in [
        "vmm",
        "vcpu0",
        "time-service",
        "stdout-writer",
        "input-keys",
        "input-script",
        "input-qmp",
        "input-qmp-event",
        "timeout",
        "reset-log",
    ] {
        assert!(names.contains(&expected), "no {expected} thread: {names:?}");
    }
    for (name, mode, filters) in &threads {
        assert_eq!(
            (*mode, *filters),
            (2, 1),
            "thread {name}: seccomp mode {mode}, {filters} filters"
        );
    }
    qmp.execute("quit", None).unwrap();
    let status = vm.wait(Duration::from_secs(10));
    // The pending `wait 60s` line fails the run: the script is cut short.
    assert_eq!(
        status.code(),
        Some(status::EXPECT_FAILED),
        "{}",
        vm.stderr.text()
    );
    assert!(
        !vm.stderr.text().contains("seccomp"),
        "{}",
        vm.stderr.text()
    );
}

/// `--no-seccomp`: no thread is confined.
#[test]
fn no_seccomp_leaves_every_thread_unconfined() {
    let (vm, _socket) = vmm_with_every_thread(&["--no-seccomp"]);
    let threads = wait_threads(vm.child.id(), 10);
    assert!(threads.len() >= 10, "{threads:?}");
    for (name, mode, filters) in &threads {
        assert_eq!((*mode, *filters), (0, 0), "thread {name}");
    }
}

/// A forbidden call (the hidden self-test: `socket` on the vCPU thread once
/// confined) ends the VMM at once with 159 and one line naming the thread
/// and the call; without the filter the same run boots and exits normally.
#[test]
fn a_forbidden_call_ends_the_vmm_with_its_message() {
    require_kvm();
    let mut command = Command::new(vmm_binary());
    command.args([
        "--seccomp-self-test",
        "--cmdline",
        "run=exit 5",
        "--timeout",
        "30",
    ]);
    let mut vm = Machine::spawn(command);
    let status = vm.wait(Duration::from_secs(40));
    assert_eq!(
        status.code(),
        Some(status::SECCOMP_VIOLATION),
        "stderr:\n{}",
        vm.stderr.text()
    );
    assert_eq!(
        vm.stderr.text(),
        "vmm: seccomp: the vcpu0 thread made a forbidden system call: socket (41); stopping (status 159)\n"
    );
    // The guest never ran.
    assert!(!vm.stdout.text().contains(boot::BANNER));

    let mut command = Command::new(vmm_binary());
    command.args([
        "--seccomp-self-test",
        "--no-seccomp",
        "--cmdline",
        "run=exit 5",
        "--timeout",
        "30",
    ]);
    let mut vm = Machine::spawn(command);
    let status = vm.wait(Duration::from_secs(40));
    assert_eq!(status.code(), Some(5), "stderr:\n{}", vm.stderr.text());
}

/// The self-test flag is not advertised; `--no-seccomp` and status 159 are.
#[test]
fn help_documents_no_seccomp_and_status_159() {
    let output = Command::new(vmm_binary()).arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&output.stdout);
    assert!(help.contains("--no-seccomp"), "{help}");
    assert!(help.contains("\n  159 "), "{help}");
    assert!(!help.contains("self-test"), "{help}");
}
