//! State shared by the vCPU thread, the time service and [`super::VmHandle`]s:
//! the platform (devices) and the run control, under one lock.
use std::fmt;
use std::sync::{Condvar, Mutex, MutexGuard};

use vmm_sys_util::eventfd::EventFd;

use super::kick;
use super::platform::Platform;
use super::SerialTap;
use crate::device::Change;

/// Why the VM stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExitReason {
    /// The guest wrote this value to the debug-exit port.
    GuestExit(u32),
    /// The guest pulsed the reset line (i8042 command 0xFE) and the machine
    /// was built with [`super::VmConfig::no_reboot`], like QEMU with
    /// `-no-reboot`. (Otherwise the machine resets and runs on.)
    GuestReset,
    /// [`super::VmHandle::shutdown`] or [`super::VmHandle::shutdown_by`]
    /// was called: who asked.
    Host(HostStop),
    /// The guest triple-faulted (`KVM_EXIT_SHUTDOWN`); where the guest was
    /// (` at rip ...`, empty if unknown).
    TripleFault(String),
    /// KVM could not run the guest (internal error, failed entry, an exit
    /// this machine cannot handle), or the VMM's own machinery failed while
    /// running; the text says which.
    Crash(String),
}

impl fmt::Display for ExitReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::GuestExit(value) => {
                write!(f, "the guest exited with {value:#x} (debug-exit port)")
            }
            Self::GuestReset => {
                write!(f, "the guest requested a reset (i8042 0xFE); not rebooting")
            }
            Self::Host(by) => write!(f, "{by}"),
            Self::TripleFault(at) => {
                write!(f, "the guest triple-faulted (KVM_EXIT_SHUTDOWN){at}")
            }
            Self::Crash(what) => f.write_str(what),
        }
    }
}

/// Who stopped the machine from the host side ([`ExitReason::Host`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostStop {
    /// `--timeout` expired.
    Timeout,
    /// A QMP client sent `quit`.
    QmpQuit,
    /// Ctrl+A X on the interactive terminal.
    Terminal,
    /// A keystroke script failed (an `expect` timed out).
    Script,
    /// Anything else ([`super::VmHandle::shutdown`]).
    Other,
}

impl fmt::Display for HostStop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Timeout => "--timeout expired",
            Self::QmpQuit => "QMP quit stopped the machine",
            Self::Terminal => "Ctrl+A X stopped the machine",
            Self::Script => "the keystroke script stopped the machine",
            Self::Other => "stopped by the host",
        })
    }
}

/// Who asked for a machine reset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResetCause {
    /// The guest pulsed the reset line (i8042 command 0xFE or an output-port
    /// write with bit 0 clear).
    Guest,
    /// [`super::VmHandle::reset`] (QMP `system_reset`).
    Host,
}

/// How the VM ended: the process exit status and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmExit {
    /// Exit status for the VMM process.
    pub status: i32,
    /// What happened.
    pub reason: ExitReason,
}

/// Where the vCPU thread is, as far as waking it is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum VcpuPhase {
    /// Not started, or handling an exit while holding the lock.
    Outside,
    /// In (or about to enter) `KVM_RUN`: wake it with a signal.
    InGuest,
    /// Waiting on [`Shared::vcpu_wake`] (guest halted, or VM paused).
    Waiting,
}

/// Whether the machine runs, and how its vCPU thread is reached: everything
/// about running the machine that is not a device.
pub(crate) struct RunControl {
    /// `stop`/`cont`: the vCPU parks outside `KVM_RUN` while set.
    pub paused: bool,
    /// Set once, when the VM stops.
    pub exit: Option<VmExit>,
    /// What the vCPU thread is doing.
    pub vcpu_phase: VcpuPhase,
    /// The vCPU thread, while it runs (kick target).
    pub vcpu_thread: Option<libc::pthread_t>,
    /// A machine reset the vCPU thread has yet to carry out.
    pub reset_request: Option<ResetCause>,
    /// Machine resets carried out so far ([`Shared::events`] is notified
    /// after each).
    pub resets_done: u64,
}

impl RunControl {
    fn new() -> Self {
        Self {
            paused: false,
            exit: None,
            vcpu_phase: VcpuPhase::Outside,
            vcpu_thread: None,
            reset_request: None,
            resets_done: 0,
        }
    }

    /// Whether the machine has stopped for good.
    pub fn stopped(&self) -> bool {
        self.exit.is_some()
    }
}

/// Everything behind the machine lock: the devices, and the run control.
pub(crate) struct State {
    /// The devices, the bus and the interrupt wiring.
    pub platform: Platform,
    /// Paused, stopped, reset requests, the vCPU's phase and kick target.
    pub run: RunControl,
}

/// The lock, its condition variables and the timer thread's doorbell.
pub(crate) struct Shared {
    state: Mutex<State>,
    /// Wakes the vCPU thread waiting in `HLT` or paused.
    pub vcpu_wake: Condvar,
    /// Wakes host threads: VM exit, keyboard input consumed.
    pub events: Condvar,
    /// Wakes the time service (a device deadline moved, pause changed, VM
    /// exit).
    pub timer_wake: EventFd,
    /// Serial output log.
    pub tap: SerialTap,
    /// Subscribers to machine events (resets, pause, resume, the stop).
    pub machine_events: super::events::EventHub,
    /// KVM's statistics files, read without the machine lock (`pread`).
    pub kvm_stats: KvmStatsFiles,
    /// The VMM's key-to-echo times (host key presses; the console reports
    /// the transmitted bytes).
    pub key_echo: std::sync::Arc<super::key_echo::Probe>,
}

/// KVM's binary statistics of the VM and of its vCPU, where the host has
/// them.
pub(crate) struct KvmStatsFiles {
    /// The VM's.
    pub vm: Option<super::kvm_stats::KvmStats>,
    /// The vCPU's.
    pub vcpu: Option<super::kvm_stats::KvmStats>,
}

impl Shared {
    pub fn new(
        platform: Platform,
        tap: SerialTap,
        kvm_stats: KvmStatsFiles,
        key_echo: std::sync::Arc<super::key_echo::Probe>,
    ) -> std::io::Result<Self> {
        Ok(Self {
            state: Mutex::new(State {
                platform,
                run: RunControl::new(),
            }),
            vcpu_wake: Condvar::new(),
            events: Condvar::new(),
            timer_wake: EventFd::new(libc::EFD_NONBLOCK | libc::EFD_CLOEXEC)?,
            tap,
            machine_events: Default::default(),
            kvm_stats,
            key_echo,
        })
    }

    /// Takes the machine lock. Device code does not panic on guest input; if
    /// a bug ever made it, the state is still the best there is, so poisoning
    /// is ignored rather than spreading the panic to every thread.
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// Gets the vCPU to look at the machine state soon.
    pub fn wake_vcpu(&self, run: &RunControl) {
        match run.vcpu_phase {
            VcpuPhase::InGuest => {
                if let Some(thread) = run.vcpu_thread {
                    kick::kick(thread);
                }
            }
            VcpuPhase::Waiting => self.vcpu_wake.notify_one(),
            VcpuPhase::Outside => {}
        }
    }

    /// Rings the time service's doorbell.
    pub fn wake_timer(&self) {
        if let Err(error) = self.timer_wake.write(1) {
            log::warn!("cannot wake the timer thread: {error}");
        }
    }

    /// After a host event changed device state (its interrupts already
    /// routed): wake the vCPU if an interrupt is now pending, the time
    /// service if a deadline moved, input waiters if input was consumed.
    pub fn after_host_event(&self, state: &State, change: Change) {
        if state.platform.interrupt_pending() {
            self.wake_vcpu(&state.run);
        }
        if change.deadline_moved {
            self.wake_timer();
        }
        if change.input_consumed {
            self.events.notify_all();
        }
    }

    /// Stops the VM with `exit` unless it already stopped; wakes everyone.
    pub fn request_exit(&self, state: &mut State, exit: VmExit) {
        if state.run.exit.is_none() {
            state.run.exit = Some(exit);
            self.wake_vcpu(&state.run);
            self.vcpu_wake.notify_all();
            self.events.notify_all();
            self.wake_timer();
        }
    }
}
