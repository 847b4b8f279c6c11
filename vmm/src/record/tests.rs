use std::time::Duration;

use serde_json::{json, Value};

use super::*;
use crate::devices::serial::SerialStats;
use crate::vm::{PlatformStats, VcpuStats};

fn report(reason: ExitReason, status: i32) -> RunReport {
    let mut vcpu = VcpuStats::default();
    vcpu.exits[ExitKind::IoOut as usize] = 7;
    vcpu.exits[ExitKind::Hlt as usize] = 2;
    vcpu.injected[1] = 3;
    vcpu.injected_spurious = 1;
    vcpu.in_kvm_run = Duration::from_millis(250);
    vcpu.kvm = vec![("exits".into(), 9), ("insn_emulation".into(), 0)];
    RunReport {
        exit: VmExit { status, reason },
        run_time: Duration::from_millis(1500),
        vcpu,
        platform: PlatformStats {
            resets: 2,
            unknown_port_reads: 4,
            ..PlatformStats::default()
        },
        serial: SerialStats {
            tx_bytes: 11,
            ..SerialStats::default()
        },
        key_echo: Some(crate::vm::key_echo::KeyEchoSummary {
            count: 3,
            p50: Duration::from_micros(710),
            p99: Duration::from_micros(1250),
            mean: Duration::from_micros(802),
            max: Duration::from_micros(1243),
        }),
    }
}

fn json_of(value: &impl Serialize) -> Value {
    serde_json::to_value(value).unwrap()
}

#[test]
fn stats_carry_every_counter_zeros_included() {
    let stats = StatsRecord::new(
        &report(ExitReason::GuestExit(0), 0),
        Some(StdoutCounters {
            dropped: 0,
            unwritten: 5,
        }),
    );
    let value: Value = serde_json::from_str(&stats.to_json()).unwrap();
    assert_eq!(value["run_time_s"], json!(1.5));
    assert_eq!(
        value["exits"],
        json!({"io-in": 0, "io-out": 7, "hlt": 2, "irq-window-open": 0, "mmio": 0,
               "kick (EINTR)": 0, "other": 0})
    );
    assert_eq!(value["exits_total"], json!(9));
    assert_eq!(value["interrupts_injected"], json!(4));
    assert_eq!(value["interrupts_per_irq"][1], json!(3));
    assert_eq!(value["interrupts_spurious"], json!(1));
    assert_eq!(value["vcpu_time_s"]["kvm_run"], json!(0.25));
    assert_eq!(value["kvm"], json!({"exits": 9, "insn_emulation": 0}));
    assert_eq!(value["resets"], json!(2));
    assert_eq!(value["unclaimed_ports"], json!({"reads": 4, "writes": 0}));
    assert_eq!(value["com1_stdout"], json!({"dropped": 0, "unwritten": 5}));
    assert_eq!(
        value["key_echo"],
        json!({"count": 3, "p50_us": 710, "p99_us": 1250, "mean_us": 802, "max_us": 1243})
    );
}

#[test]
fn stats_without_kvm_counters_say_null() {
    let mut report = report(ExitReason::GuestExit(0), 0);
    report.vcpu.kvm.clear();
    report.key_echo = None;
    let value = json_of(&StatsRecord::new(&report, None));
    assert_eq!(value["kvm"], Value::Null);
    assert_eq!(value["key_echo"], Value::Null);
    assert_eq!(value["com1_stdout"], Value::Null);
}

#[test]
fn stop_reasons_by_exit_reason() {
    let cases = [
        (ExitReason::GuestExit(3), "guest-exit"),
        (ExitReason::GuestReset, "reset-with-no-reboot"),
        (ExitReason::TripleFault(" at rip 0x1".into()), "crash"),
        (ExitReason::Crash("KVM internal error".into()), "crash"),
        (ExitReason::Host(HostStop::Timeout), "timeout"),
        (ExitReason::Host(HostStop::QmpQuit), "quit"),
        (ExitReason::Host(HostStop::Terminal), "quit"),
        (ExitReason::Host(HostStop::Other), "quit"),
        (ExitReason::Host(HostStop::Script), "script-failed"),
    ];
    for (reason, name) in cases {
        assert_eq!(json_of(&StopReason::of(&reason)), json!(name), "{reason:?}");
    }
}

#[test]
fn guest_exit_record_keeps_the_whole_value() {
    let report = report(ExitReason::GuestExit(0x1_03), 3);
    let stats = StatsRecord::new(&report, None);
    let record = ExitRecord::from_run(&report.exit, 3, None, stats);
    let value: Value = serde_json::from_str(&record.to_json()).unwrap();
    assert_eq!(value["reason"], "guest-exit");
    assert_eq!(value["status"], 3);
    assert_eq!(value["guest_exit_value"], 0x103);
    assert_eq!(value["machine_stop"], Value::Null);
    assert_eq!(value["script"], Value::Null);
    assert_eq!(value["run_time_s"], json!(1.5));
    assert_eq!(value["stats"]["exits_total"], 9);
}

#[test]
fn pending_script_line_names_what_stopped_the_machine() {
    let report = report(ExitReason::GuestExit(0), 0);
    let stats = StatsRecord::new(&report, None);
    let line = ScriptLine {
        file: "s.keys".into(),
        line: 7,
        message: "expect \"done\": the guest exited with status 0 first".into(),
    };
    let value = json_of(&ExitRecord::from_run(&report.exit, 126, Some(line), stats));
    assert_eq!(value["reason"], "script-failed");
    assert_eq!(value["machine_stop"], "guest-exit");
    assert_eq!(value["guest_exit_value"], 0);
    assert_eq!(value["status"], 126);
    assert_eq!(
        value["script"],
        json!({"file": "s.keys", "line": 7,
               "message": "expect \"done\": the guest exited with status 0 first"})
    );
}

#[test]
fn expect_timeout_is_script_failed_without_machine_stop() {
    let report = report(ExitReason::Host(HostStop::Script), 126);
    let stats = StatsRecord::new(&report, None);
    let line = ScriptLine {
        file: "s.keys".into(),
        line: 1,
        message: "expect \"x\" timed out after 1s".into(),
    };
    let value = json_of(&ExitRecord::from_run(&report.exit, 126, Some(line), stats));
    assert_eq!(value["reason"], "script-failed");
    assert_eq!(value["machine_stop"], Value::Null);
}

#[test]
fn setup_error_has_no_run() {
    let value = json_of(&ExitRecord::setup_error(1, "cannot read kernel x".into()));
    assert_eq!(
        value,
        json!({"reason": "setup-error", "status": 1, "guest_exit_value": null,
               "machine_stop": null, "script": null, "message": "cannot read kernel x",
               "run_time_s": null, "stats": null})
    );
}
