//! Machine-readable records of a run, for harnesses: the `--stats`
//! counters as one JSON object ([`StatsRecord`], `--stats=json`) and the
//! exit record ([`ExitRecord`], `--exit-record PATH`), which says why the VMM
//! stopped so that a guest's exit value can be told from the VMM's own
//! statuses (a guest may well `exit 124`).
use std::collections::BTreeMap;

use serde::Serialize;

use crate::vm::{ExitKind, ExitReason, HostStop, RunReport, VmExit};

/// The `--stats` counters as one JSON object (the same numbers as
/// [`RunReport::summary`], every counter present, zeros included).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StatsRecord {
    /// Wall time from [`crate::Vm::run`] to the stop, in seconds.
    pub run_time_s: f64,
    /// `KVM_RUN` returns by kind (`io-in`, `io-out`, `hlt`, ...).
    pub exits: BTreeMap<&'static str, u64>,
    /// All `KVM_RUN` returns.
    pub exits_total: u64,
    /// Interrupts injected, spurious ones included.
    pub interrupts_injected: u64,
    /// Interrupts injected per IRQ line 0-15.
    pub interrupts_per_irq: [u64; 16],
    /// Spurious vectors injected (IRQ 7 or 15 with no request behind it).
    pub interrupts_spurious: u64,
    /// Instructions KVM's emulator could not run that the VMM completed.
    pub instructions_completed: u64,
    /// Where the vCPU thread's time went, in seconds.
    pub vcpu_time_s: VcpuTime,
    /// KVM's own per-vCPU counters (`KVM_GET_STATS_FD`), zeros included;
    /// `null` when the host kernel does not offer them.
    pub kvm: Option<BTreeMap<String, u64>>,
    /// PIT ticks.
    pub timer_ticks: TimerTicks,
    /// Machine resets, guest- and host-requested.
    pub resets: u64,
    /// Accesses to ports no device claims.
    pub unclaimed_ports: UnclaimedPorts,
    /// COM1 output on its way to stdout; `null` when COM1 does not go to
    /// stdout (an embedder's machine).
    pub com1_stdout: Option<StdoutCounters>,
    /// COM1's UART: bytes transmitted, host bytes the guest read, overruns.
    pub com1: Com1Counters,
    /// The VMM's own key-to-echo times; `null` if no key press was
    /// answered by a COM1 byte.
    pub key_echo: Option<KeyEchoTimes>,
}

/// Host key press to the guest's next COM1 byte (`--stats`' `key to echo`
/// line), in microseconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyEchoTimes {
    /// Presses timed.
    pub count: u64,
    /// Median (10 µs resolution).
    pub p50_us: u64,
    /// 99th percentile (10 µs resolution).
    pub p99_us: u64,
    /// Mean.
    pub mean_us: u64,
    /// Longest.
    pub max_us: u64,
}

/// COM1's UART counters (`--stats`'s `com1:` line).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Com1Counters {
    /// Bytes the guest transmitted.
    pub tx_bytes: u64,
    /// Host input bytes the guest read from the receiver.
    pub rx_bytes: u64,
    /// Bytes lost to receiver overrun (loopback only: host input waits).
    pub rx_overruns: u64,
}

/// The vCPU thread's time, in seconds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VcpuTime {
    /// Inside `KVM_RUN`.
    pub kvm_run: f64,
    /// In the VMM between `KVM_RUN`s.
    pub vmm: f64,
    /// Parked: halted with nothing to deliver, or paused.
    pub parked: f64,
}

/// PIT ticks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TimerTicks {
    /// Delivered to the PIC.
    pub delivered: u64,
    /// Dropped because the backlog was full.
    pub dropped: u64,
    /// Discarded while the VM was paused.
    pub discarded_paused: u64,
    /// Owed ticks cancelled by a re-initialisation (ICW1) of their PIC.
    pub cancelled_pic_init: u64,
    /// Owed ticks forgotten because the guest unmasked their line.
    pub forgotten_at_unmask: u64,
}

/// Accesses to ports no device claims.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UnclaimedPorts {
    /// Reads.
    pub reads: u64,
    /// Writes.
    pub writes: u64,
}

/// COM1 bytes that did not reach stdout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StdoutCounters {
    /// Dropped because the queue was full.
    pub dropped: u64,
    /// Still queued when the VMM exited.
    pub unwritten: u64,
}

impl StatsRecord {
    /// The counters of `report`; `stdout` the COM1-to-stdout counters when
    /// COM1 went to stdout.
    pub fn new(report: &RunReport, stdout: Option<StdoutCounters>) -> Self {
        let vcpu = &report.vcpu;
        let platform = &report.platform;
        let exits = ExitKind::ALL
            .iter()
            .map(|kind| (kind.name(), vcpu.exits[*kind as usize]))
            .collect();
        StatsRecord {
            run_time_s: report.run_time.as_secs_f64(),
            exits,
            exits_total: vcpu.exits.iter().sum(),
            interrupts_injected: vcpu.injected.iter().sum::<u64>() + vcpu.injected_spurious,
            interrupts_per_irq: vcpu.injected,
            interrupts_spurious: vcpu.injected_spurious,
            instructions_completed: vcpu.completed,
            vcpu_time_s: VcpuTime {
                kvm_run: vcpu.in_kvm_run.as_secs_f64(),
                vmm: vcpu.in_vmm.as_secs_f64(),
                parked: vcpu.parked.as_secs_f64(),
            },
            kvm: (!vcpu.kvm.is_empty()).then(|| vcpu.kvm.iter().cloned().collect()),
            timer_ticks: TimerTicks {
                delivered: platform.timer_ticks_delivered,
                dropped: platform.timer_ticks_dropped,
                discarded_paused: platform.timer_ticks_paused,
                cancelled_pic_init: platform.timer_ticks_cancelled,
                forgotten_at_unmask: platform.timer_ticks_unmasked,
            },
            resets: platform.resets,
            unclaimed_ports: UnclaimedPorts {
                reads: platform.unknown_port_reads,
                writes: platform.unknown_port_writes,
            },
            com1_stdout: stdout,
            com1: Com1Counters {
                tx_bytes: report.serial.tx_bytes,
                rx_bytes: report.serial.rx_bytes,
                rx_overruns: report.serial.rx_overruns,
            },
            key_echo: report.key_echo.map(|echo| KeyEchoTimes {
                count: echo.count,
                p50_us: echo.p50.as_micros() as u64,
                p99_us: echo.p99.as_micros() as u64,
                mean_us: echo.mean.as_micros() as u64,
                max_us: echo.max.as_micros() as u64,
            }),
        }
    }

    /// One line of JSON.
    pub fn to_json(&self) -> String {
        // Plain data with string keys: serialising cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// Why the VMM stopped, as the exit record names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum StopReason {
    /// The guest wrote its exit value to the debug-exit port.
    GuestExit,
    /// `--timeout` fired.
    Timeout,
    /// The guest crashed: triple fault, KVM internal error, failed entry, or
    /// the VMM's machinery failed.
    Crash,
    /// A keystroke script failed: an `expect` timed out, or a line was still
    /// pending when the machine stopped.
    ScriptFailed,
    /// The guest asked for a reset under `--no-reboot`.
    ResetWithNoReboot,
    /// QMP `quit`, Ctrl+A X, or another host request.
    Quit,
    /// The VMM could not start the guest (bad flag value, kernel, KVM, ...).
    SetupError,
}

impl StopReason {
    /// The reason for a machine's exit (before any script failure is
    /// considered).
    pub fn of(reason: &ExitReason) -> Self {
        match reason {
            ExitReason::GuestExit(_) => Self::GuestExit,
            ExitReason::GuestReset => Self::ResetWithNoReboot,
            ExitReason::TripleFault(_) | ExitReason::Crash(_) => Self::Crash,
            ExitReason::Host(HostStop::Timeout) => Self::Timeout,
            ExitReason::Host(HostStop::Script) => Self::ScriptFailed,
            ExitReason::Host(HostStop::QmpQuit | HostStop::Terminal | HostStop::Other) => {
                Self::Quit
            }
        }
    }
}

/// The keystroke script line that failed the run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScriptLine {
    /// The script's name (its path, `<stdin>`, `--type`, `--type #2`).
    pub file: String,
    /// 1-based line number.
    pub line: usize,
    /// What went wrong, as on stderr without the `FILE:LINE: ` prefix.
    pub message: String,
}

/// What `--exit-record PATH` writes when the VMM stops: one JSON object.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExitRecord {
    /// Why the VMM stopped.
    pub reason: StopReason,
    /// The VMM's exit status.
    pub status: i32,
    /// The value the guest wrote to the debug-exit port, whole (the status
    /// keeps its low 8 bits); `null` unless the guest exited that way (also
    /// under a failed script).
    pub guest_exit_value: Option<u32>,
    /// What stopped the machine when the run failed on a pending script line
    /// (`guest-exit`, `timeout`, ...); `null` otherwise.
    pub machine_stop: Option<StopReason>,
    /// The failing script line, for `script-failed`.
    pub script: Option<ScriptLine>,
    /// The VMM's one-line message for a crash or a setup error, or the
    /// machine's stop reason in words.
    pub message: String,
    /// Wall time of the run in seconds (`null` for a setup error).
    pub run_time_s: Option<f64>,
    /// The `--stats` counters (`null` for a setup error).
    pub stats: Option<StatsRecord>,
}

impl ExitRecord {
    /// The record of a run that stopped with `exit`; `script` is the
    /// script line that failed it, if any (the status is then 126).
    pub fn from_run(
        exit: &VmExit,
        status: i32,
        script: Option<ScriptLine>,
        stats: StatsRecord,
    ) -> Self {
        let machine = StopReason::of(&exit.reason);
        let (reason, machine_stop) = match (&script, machine) {
            (Some(_), StopReason::ScriptFailed) | (None, _) => (machine, None),
            (Some(_), machine) => (StopReason::ScriptFailed, Some(machine)),
        };
        let guest_exit_value = match exit.reason {
            ExitReason::GuestExit(value) => Some(value),
            _ => None,
        };
        ExitRecord {
            reason,
            status,
            guest_exit_value,
            machine_stop,
            script,
            message: exit.reason.to_string(),
            run_time_s: Some(stats.run_time_s),
            stats: Some(stats),
        }
    }

    /// The record of a VMM that could not start the guest.
    pub fn setup_error(status: i32, message: String) -> Self {
        ExitRecord {
            reason: StopReason::SetupError,
            status,
            guest_exit_value: None,
            machine_stop: None,
            script: None,
            message,
            run_time_s: None,
            stats: None,
        }
    }

    /// The record as one line of JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests;
