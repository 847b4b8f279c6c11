//! QMP `human-monitor-command` and `query-version`, asked the same
//! questions of our VMM and of QEMU (the reference): the monitor's texts
//! must be the same byte for byte, `sendkey` must type.
mod common;

use std::process::Command;
use std::time::Duration;

use common::qmp::Qmp;
use common::*;
use serde_json::{json, Value};

fn hmp(qmp: &mut Qmp, line: &str) -> String {
    let answer = qmp
        .execute("human-monitor-command", Some(json!({"command-line": line})))
        .unwrap_or_else(|error| panic!("{line}: {error}"));
    answer
        .as_str()
        .unwrap_or_else(|| panic!("{line}: not a string: {answer}"))
        .to_string()
}

/// The same session on either machine: returns the monitor's answers.
fn session(mut vm: Machine, mut qmp: Qmp) -> (Vec<String>, Option<i32>) {
    vm.stdout
        .expect(shared::boot::PROMPT, Duration::from_secs(60));
    let version = qmp.execute("query-version", None).unwrap();
    let qemu = version["qemu"].as_object().unwrap();
    for part in ["major", "minor", "micro"] {
        assert!(qemu[part].is_u64(), "{version}");
    }
    assert!(version["package"].is_string(), "{version}");
    let mut answers = Vec::new();
    for line in [
        "info status",
        "sendkey nokey",
        "sendkey ctrl-",
        "frobnicate 1",
        "info frobnicate",
        "stop now",
        "s now",
        "info status x",
        "sendkey",
        "sendkey a 100ms",
        "sendkey a b",
        "help quit",
        "stop",
        "info status",
        "cont",
        "info status",
        "",
    ] {
        answers.push(hmp(&mut qmp, line));
    }
    let events: Vec<&Value> = qmp
        .events
        .iter()
        .filter(|e| e["event"] == "STOP" || e["event"] == "RESUME")
        .collect();
    assert_eq!(events.len(), 2, "{:?}", qmp.events);
    // `sendkey` types: `exit 8`, one key (or combination) per command.
    for combo in ["e", "x", "i", "t", "spc", "8", "ret"] {
        assert_eq!(hmp(&mut qmp, &format!("sendkey {combo} 20")), "");
    }
    let code = vm.wait(Duration::from_secs(60)).code();
    (answers, code)
}

#[test]
fn human_monitor_answers_as_qemu_does() {
    require_kvm();
    let socket = scratch_path("hmp-ours.sock");
    let mut command = Command::new(vmm_binary());
    command
        .arg("--qmp")
        .arg(format!("unix:{}", socket.display()))
        .args(["--no-interactive", "--timeout", "120"]);
    let vm = Machine::spawn(command);
    let qmp = Qmp::connect(&socket, Duration::from_secs(20));
    let (ours, code) = session(vm, qmp);
    assert_eq!(code, Some(8));

    let socket = scratch_path("hmp-qemu.sock");
    let mut command = qemu_command("pc", "tcg", guest_elf());
    command
        .arg("-qmp")
        .arg(format!("unix:{},server=on,wait=off", socket.display()));
    let vm = Machine::spawn(command);
    let qmp = Qmp::connect(&socket, Duration::from_secs(20));
    let (qemu, code) = session(vm, qmp);
    // isa-debug-exit: (8 << 1) | 1.
    assert_eq!(code, Some(17));

    assert_eq!(ours, qemu);
    assert_eq!(ours[0], "VM status: running\r\n");
    assert_eq!(ours[13], "VM status: paused\r\n");
}
