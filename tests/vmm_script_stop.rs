//! A keystroke script line still pending when the machine stops fails the
//! run: status 126 and one line naming the script line, what it waited for
//! and why the machine stopped, for every way of stopping (guest exit, crash,
//! `--no-reboot` reset, `--timeout`, QMP `quit`). A script that finished
//! keeps the guest's status.
mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use common::pvh_elf::PvhElf;
use common::qmp::Qmp;
use common::*;
use shared::status;

fn write_temp(name: &str, bytes: &[u8]) -> PathBuf {
    let path = scratch_path(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

/// A tiny PVH kernel running `code` (32-bit) at 1 MiB.
fn tiny_kernel(name: &str, code: &[u8]) -> PathBuf {
    write_temp(name, &PvhElf::new(0x10_0000, code).build())
}

/// The VMM with the script `keys` (written to `name`), not interactive.
fn vmm_with_script(name: &str, keys: &str) -> (Command, PathBuf) {
    require_kvm();
    let script = write_temp(name, keys.as_bytes());
    let mut command = Command::new(vmm_binary());
    command.arg("--no-interactive").arg("--keys").arg(&script);
    (command, script)
}

/// Runs `command`; asserts status 126 and the one script line on stderr.
fn assert_pending(command: Command, message: &str) {
    let mut vm = Machine::spawn(command);
    let code = vm.wait(Duration::from_secs(40)).code();
    let (stdout, stderr) = (vm.stdout.text(), vm.stderr.text());
    assert_eq!(
        code,
        Some(status::EXPECT_FAILED),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    let lines: Vec<&str> = stderr.lines().filter(|l| l.contains(" first")).collect();
    assert_eq!(lines, [message], "stderr:\n{stderr}");
}

#[test]
fn guest_exit_under_a_pending_expect_fails_the_run() {
    let (mut command, script) = vmm_with_script("exit.keys", "# waits\nexpect \"done\" 30s\n");
    command.args(["--timeout", "30", "--cmdline", "run=exit 0"]);
    assert_pending(
        command,
        &format!(
            "vmm: {}:2: expect \"done\": the guest exited with status 0 first",
            script.display()
        ),
    );
}

#[test]
fn crash_under_a_pending_expect_fails_the_run() {
    // ud2 with an empty IDT: #UD -> #GP -> #DF -> shutdown.
    let kernel = tiny_kernel("stop-ud2.elf", &[0x0f, 0x0b]);
    let (mut command, script) = vmm_with_script("crash.keys", "expect \"done\" 30s\n");
    command
        .arg("--kernel")
        .arg(&kernel)
        .args(["--timeout", "30"]);
    let mut vm = Machine::spawn(command);
    let code = vm.wait(Duration::from_secs(40)).code();
    let stderr = vm.stderr.text();
    assert_eq!(code, Some(status::EXPECT_FAILED), "stderr:\n{stderr}");
    let prefix = format!(
        "vmm: {}:1: expect \"done\": the guest crashed (triple fault at rip 0x",
        script.display()
    );
    assert!(
        stderr
            .lines()
            .any(|l| l.starts_with(&prefix) && l.ends_with(") first")),
        "stderr:\n{stderr}"
    );
}

#[test]
fn no_reboot_reset_under_a_pending_line_fails_the_run() {
    // mov al, 0xfe; out 0x64, al (i8042 reset pulse); then halt forever.
    let kernel = tiny_kernel(
        "stop-reset.elf",
        &[0xb0, 0xfe, 0xe6, 0x64, 0xf4, 0xeb, 0xfd],
    );
    let (mut command, script) = vmm_with_script("reset.keys", "wait 30s\n");
    command
        .arg("--kernel")
        .arg(&kernel)
        .args(["--no-reboot", "--timeout", "30"]);
    assert_pending(
        command,
        &format!(
            "vmm: {}:1: wait 30s: the guest reset the machine (--no-reboot) first",
            script.display()
        ),
    );
}

#[test]
fn timeout_under_a_pending_expect_fails_the_run() {
    let (mut command, script) = vmm_with_script("timeout.keys", "expect nothing-like-this 60s\n");
    command.args(["--timeout", "1"]);
    assert_pending(
        command,
        &format!(
            "vmm: {}:1: expect \"nothing-like-this\": --timeout expired first",
            script.display()
        ),
    );
}

#[test]
fn qmp_quit_under_a_pending_wait_fails_the_run() {
    let socket = scratch_path("stop-quit.sock");
    let (mut command, script) = vmm_with_script("quit.keys", "wait 60s\n");
    command
        .arg("--qmp")
        .arg(format!("unix:{}", socket.display()))
        .args(["--timeout", "60"]);
    let mut vm = Machine::spawn(command);
    let mut qmp = Qmp::connect(&socket, Duration::from_secs(20));
    let _ = qmp.execute("quit", None);
    let code = vm.wait(Duration::from_secs(20)).code();
    let stderr = vm.stderr.text();
    assert_eq!(code, Some(status::EXPECT_FAILED), "stderr:\n{stderr}");
    let message = format!(
        "vmm: {}:1: wait 60s: QMP quit stopped the machine first",
        script.display()
    );
    assert!(stderr.lines().any(|l| l == message), "stderr:\n{stderr}");
}

#[test]
fn a_finished_script_keeps_the_guest_status() {
    let (mut command, _) = vmm_with_script("finished.keys", "expect \"> \"\ntype exit 5\\n\n");
    command.args(["--timeout", "30"]);
    let mut vm = Machine::spawn(command);
    let code = vm.wait(Duration::from_secs(40)).code();
    let stderr = vm.stderr.text();
    assert_eq!(code, Some(5), "stderr:\n{stderr}");
    assert!(!stderr.contains(" first"), "stderr:\n{stderr}");
}
