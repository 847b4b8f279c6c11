//! `--exit-record PATH` and `--stats=json`: one JSON object per run saying
//! why the VMM stopped, for every stop reason that can be produced end to
//! end (guest exit, timeout, crash, script failure, `--no-reboot` reset,
//! QMP quit, setup error); the JSON is parsed here.
mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use common::pvh_elf::PvhElf;
use common::qmp::Qmp;
use common::*;
use serde_json::Value;
use shared::status;

/// A tiny PVH kernel running `code` (32-bit) at 1 MiB.
fn tiny_kernel(name: &str, code: &[u8]) -> PathBuf {
    let path = scratch_path(name);
    std::fs::write(&path, PvhElf::new(0x10_0000, code).build()).unwrap();
    path
}

/// The VMM, not interactive, writing its exit record to the returned path.
fn vmm(name: &str) -> (Command, PathBuf) {
    require_kvm();
    let record = scratch_path(name);
    let mut command = Command::new(vmm_binary());
    command
        .arg("--no-interactive")
        .arg("--exit-record")
        .arg(&record);
    (command, record)
}

/// Runs `command` to its end: the status, stderr and the parsed record.
fn run(command: Command, record: &PathBuf) -> (i32, String, Value) {
    let mut vm = Machine::spawn(command);
    let code = vm
        .wait(Duration::from_secs(60))
        .code()
        .expect("exit status");
    let stderr = vm.stderr.text();
    let text = std::fs::read_to_string(record)
        .unwrap_or_else(|e| panic!("no exit record ({e}); stderr:\n{stderr}"));
    assert!(
        text.ends_with('\n') && text.trim_end().lines().count() == 1,
        "{text}"
    );
    let value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    (code, stderr, value)
}

/// The fields every record of a run that started has.
fn assert_ran(record: &Value) {
    assert!(record["run_time_s"].as_f64().unwrap() > 0.0, "{record}");
    let stats = &record["stats"];
    assert!(stats["exits_total"].as_u64().unwrap() > 0, "{record}");
    assert_eq!(stats["run_time_s"], record["run_time_s"]);
}

#[test]
fn guest_exit_record_and_stats_json() {
    let (mut command, path) = vmm("exit.json");
    command.args(["--cmdline", "run=exit 3", "--timeout", "30", "--stats=json"]);
    let (code, stderr, record) = run(command, &path);
    assert_eq!(code, 3, "stderr:\n{stderr}");
    assert_eq!(record["reason"], "guest-exit");
    assert_eq!(record["status"], 3);
    assert_eq!(record["guest_exit_value"], 3);
    assert_eq!(record["machine_stop"], Value::Null);
    assert_eq!(record["script"], Value::Null);
    assert_ran(&record);
    // `--stats=json` is the same counters as one JSON object, the last line
    // on stderr.
    let stats: Value = serde_json::from_str(stderr.trim_end().lines().last().unwrap())
        .unwrap_or_else(|e| panic!("{e}; stderr:\n{stderr}"));
    assert_eq!(stats, record["stats"]);
    assert!(stats["exits"]["io-out"].as_u64().unwrap() > 0, "{stats}");
    // The guest printed its boot banner and prompt through COM1.
    assert!(stats["com1_stdout"]["unwritten"].is_u64(), "{stats}");
    // Where the host offers KVM's counters they are all there.
    if let Some(kvm) = stats["kvm"].as_object() {
        assert!(kvm.contains_key("exits"), "{stats}");
    }
    // No key was pressed: no key-to-echo time.
    assert_eq!(stats["key_echo"], Value::Null, "{stats}");
}

/// Typed keys are timed inside the VMM, from the press to the guest's next
/// byte on COM1 (its echo): `key_echo` in the record's stats.
#[test]
fn typed_keys_are_timed_to_their_echo() {
    let (mut command, path) = vmm("key-echo.json");
    command.args([
        "--type",
        "abcdefghij\n",
        "--type",
        "exit 0\n",
        "--timeout",
        "30",
    ]);
    let (code, stderr, record) = run(command, &path);
    assert_eq!(code, 0, "stderr:\n{stderr}");
    let echo = &record["stats"]["key_echo"];
    let count = echo["count"].as_u64().unwrap_or(0);
    // 18 presses (the letters, the two Enters and "exit 0"); a press the
    // worker sends before the previous echo left is not timed.
    assert!((1..=18).contains(&count), "{echo}");
    let p50 = echo["p50_us"].as_u64().unwrap();
    let max = echo["max_us"].as_u64().unwrap();
    assert!(p50 > 0 && p50 <= max, "{echo}");
    assert!(echo["p99_us"].as_u64().unwrap() <= max, "{echo}");
}

#[test]
fn timeout_record() {
    let (mut command, path) = vmm("timeout.json");
    command.args(["--timeout", "0.5"]);
    let (code, stderr, record) = run(command, &path);
    assert_eq!(code, status::TIMEOUT, "stderr:\n{stderr}");
    assert_eq!(record["reason"], "timeout");
    assert_eq!(record["status"], status::TIMEOUT);
    assert_eq!(record["guest_exit_value"], Value::Null);
    assert_ran(&record);
}

#[test]
fn crash_record() {
    // ud2 with an empty IDT: #UD -> #GP -> #DF -> shutdown.
    let kernel = tiny_kernel("ud2.elf", &[0x0f, 0x0b]);
    let (mut command, path) = vmm("crash.json");
    command
        .arg("--kernel")
        .arg(&kernel)
        .args(["--timeout", "30"]);
    let (code, stderr, record) = run(command, &path);
    assert_eq!(code, status::GUEST_CRASH, "stderr:\n{stderr}");
    assert_eq!(record["reason"], "crash");
    let message = record["message"].as_str().unwrap();
    assert!(message.contains("triple-faulted"), "{record}");
    assert_ran(&record);
}

#[test]
fn reset_with_no_reboot_record() {
    // mov al, 0xfe; out 0x64, al (i8042 reset pulse); then halt forever.
    let kernel = tiny_kernel("reset.elf", &[0xb0, 0xfe, 0xe6, 0x64, 0xf4, 0xeb, 0xfd]);
    let (mut command, path) = vmm("reset.json");
    command
        .arg("--kernel")
        .arg(&kernel)
        .args(["--no-reboot", "--timeout", "30"]);
    let (code, stderr, record) = run(command, &path);
    assert_eq!(code, 0, "stderr:\n{stderr}");
    assert_eq!(record["reason"], "reset-with-no-reboot");
    assert_eq!(record["guest_exit_value"], Value::Null);
    assert_ran(&record);
}

#[test]
fn expect_timeout_record_names_the_script_line() {
    let script = scratch_path("timeout.keys");
    std::fs::write(&script, "# never there\nexpect nothing-like-this 300ms\n").unwrap();
    let (mut command, path) = vmm("script.json");
    command.arg("--keys").arg(&script).args(["--timeout", "30"]);
    let (code, stderr, record) = run(command, &path);
    assert_eq!(code, status::EXPECT_FAILED, "stderr:\n{stderr}");
    assert_eq!(record["reason"], "script-failed");
    assert_eq!(record["machine_stop"], Value::Null);
    assert_eq!(
        record["script"],
        serde_json::json!({
            "file": script.display().to_string(),
            "line": 2,
            "message": "expect \"nothing-like-this\" timed out after 300ms",
        })
    );
    assert_ran(&record);
}

#[test]
fn pending_line_record_keeps_the_guest_exit_value() {
    let script = scratch_path("pending.keys");
    std::fs::write(&script, "expect \"done\" 30s\n").unwrap();
    let (mut command, path) = vmm("pending.json");
    command
        .arg("--keys")
        .arg(&script)
        .args(["--cmdline", "run=exit 4", "--timeout", "30"]);
    let (code, stderr, record) = run(command, &path);
    assert_eq!(code, status::EXPECT_FAILED, "stderr:\n{stderr}");
    assert_eq!(record["reason"], "script-failed");
    assert_eq!(record["machine_stop"], "guest-exit");
    assert_eq!(record["guest_exit_value"], 4);
    assert_eq!(
        record["script"]["message"],
        "expect \"done\": the guest exited with status 4 first"
    );
    assert_eq!(record["script"]["line"], 1);
}

#[test]
fn qmp_quit_record() {
    let socket = scratch_path("quit.sock");
    let (mut command, path) = vmm("quit.json");
    command
        .arg("--qmp")
        .arg(format!("unix:{}", socket.display()))
        .args(["--timeout", "60"]);
    let mut vm = Machine::spawn(command);
    let mut qmp = Qmp::connect(&socket, Duration::from_secs(20));
    // The record of a run that started: quit once the guest is at its
    // prompt. (The QMP socket listens before the vCPU's first `KVM_RUN`,
    // so a quit sent at once could stop a machine that has not run yet:
    // seen in CI as a record with no exits.)
    vm.stdout
        .wait_for(0, shared::boot::PROMPT.as_bytes(), Duration::from_secs(20))
        .unwrap_or_else(|_| panic!("no prompt; stderr:\n{}", vm.stderr.text()));
    let _ = qmp.execute("quit", None);
    let code = vm.wait(Duration::from_secs(20)).code();
    let stderr = vm.stderr.text();
    assert_eq!(code, Some(0), "stderr:\n{stderr}");
    let record: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(record["reason"], "quit");
    assert_eq!(record["message"], "QMP quit stopped the machine");
    assert_ran(&record);
}

#[test]
fn setup_error_record() {
    let (mut command, path) = vmm("setup.json");
    command.args(["--kernel", "/nonexistent/kernel.elf"]);
    let (code, stderr, record) = run(command, &path);
    assert_eq!(code, status::SETUP_ERROR, "stderr:\n{stderr}");
    assert_eq!(record["reason"], "setup-error");
    assert_eq!(record["status"], status::SETUP_ERROR);
    assert_eq!(
        record["message"].as_str().unwrap(),
        stderr.trim_end().strip_prefix("vmm: ").unwrap()
    );
    assert_eq!(record["stats"], Value::Null);
    assert_eq!(record["run_time_s"], Value::Null);
}
