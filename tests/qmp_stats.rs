//! QMP `query-stats`: KVM's own counters of the vCPU and the VM, read while
//! the machine runs. Ours must offer what QEMU + KVM offers on the same host
//! (the same statistics, shaped the same), and the counters must show what
//! the guest does: nothing while it idles at its prompt (the guest is
//! tickless), exits and emulated instructions for a keystroke.
mod common;

use std::collections::BTreeMap;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use common::qmp::Qmp;
use common::*;
use serde_json::{json, Value};

/// The vCPU's statistics: name to value.
fn vcpu_stats(qmp: &mut Qmp, names: Option<&[&str]>) -> BTreeMap<String, Value> {
    let mut arguments = json!({ "target": "vcpu" });
    if let Some(names) = names {
        arguments["providers"] = json!([{ "provider": "kvm", "names": names }]);
    }
    let results = qmp.execute("query-stats", Some(arguments)).unwrap();
    let results = results.as_array().unwrap();
    assert_eq!(results.len(), 1, "{results:?}");
    assert_eq!(results[0]["provider"], "kvm");
    assert_eq!(results[0]["qom-path"], "/machine/unattached/device[0]");
    results[0]["stats"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["name"].as_str().unwrap().to_string(), s["value"].clone()))
        .collect()
}

/// The JSON kind of each statistic (number, boolean, list).
fn kinds(stats: &BTreeMap<String, Value>) -> BTreeMap<String, &'static str> {
    stats
        .iter()
        .map(|(name, value)| {
            let kind = match value {
                Value::Number(_) => "number",
                Value::Bool(_) => "boolean",
                Value::Array(_) => "list",
                _ => panic!("{name}: unexpected value {value}"),
            };
            (name.clone(), kind)
        })
        .collect()
}

fn exits(qmp: &mut Qmp) -> (u64, u64) {
    let stats = vcpu_stats(qmp, Some(&["exits", "insn_emulation"]));
    (
        stats["exits"].as_u64().unwrap(),
        stats["insn_emulation"].as_u64().unwrap(),
    )
}

#[test]
fn query_stats_offers_what_qemu_kvm_offers_and_counts_the_guests_work() {
    require_kvm();
    let socket = scratch_path("stats-ours.sock");
    let mut command = Command::new(vmm_binary());
    command
        .arg("--qmp")
        .arg(format!("unix:{}", socket.display()))
        .args(["--no-interactive", "--timeout", "120"]);
    let mut ours = Machine::spawn(command);
    let mut qmp = Qmp::connect(&socket, Duration::from_secs(20));
    ours.stdout
        .expect(shared::boot::PROMPT, Duration::from_secs(60));
    let all = vcpu_stats(&mut qmp, None);
    let vm = qmp
        .execute("query-stats", Some(json!({"target": "vm"})))
        .unwrap();
    assert!(
        vm[0]["stats"].as_array().is_some_and(|s| !s.is_empty()) && vm[0].get("qom-path").is_none(),
        "{vm}"
    );

    // Idle at the prompt: no timer is pending, so once the guest has
    // halted nothing runs: a 2 s window without a single exit must come
    // (polled every 100 ms; a guest tick would end every window).
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut window = (Instant::now(), exits(&mut qmp));
    loop {
        thread::sleep(Duration::from_millis(100));
        let now = exits(&mut qmp);
        if now != window.1 {
            window = (Instant::now(), now);
        } else if window.0.elapsed() >= Duration::from_secs(2) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the idle guest kept exiting: {now:?}"
        );
    }

    // One keystroke: the interrupt, the scancode reads, the echo, the halt.
    let before = exits(&mut qmp);
    qmp.send_key(&["x"]);
    ours.stdout.expect("x", Duration::from_secs(20));
    let after = exits(&mut qmp);
    assert!(
        after.0 > before.0 && after.1 > before.1,
        "{before:?} -> {after:?}"
    );
    qmp.execute("quit", None).unwrap();
    ours.wait(Duration::from_secs(20));

    // QEMU with KVM on this host: the same statistics, the same kinds.
    let socket = scratch_path("stats-qemu.sock");
    let mut command = qemu_command("pc", "kvm", guest_elf());
    command
        .arg("-qmp")
        .arg(format!("unix:{},server=on,wait=off", socket.display()));
    let mut qemu = Machine::spawn(command);
    let mut qemu_qmp = Qmp::connect(&socket, Duration::from_secs(20));
    let reference = vcpu_stats(&mut qemu_qmp, None);
    qemu_qmp.execute("quit", None).unwrap();
    qemu.wait(Duration::from_secs(20));
    assert_eq!(kinds(&all), kinds(&reference));
    assert!(all.contains_key("exits") && all.contains_key("halt_exits"));
}
