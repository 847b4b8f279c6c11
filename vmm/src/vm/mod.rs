//! The machine: a KVM VM with one vCPU, PC memory layout, the legacy devices
//! emulated in userspace, PVH boot.
//!
//! [`Vm::new`] builds everything and loads the kernel; [`Vm::run`] runs the
//! vCPU and time-service threads until the guest or a [`VmHandle`] stops the VM.
pub mod boot;
mod complete;
mod console;
mod cpu;
pub mod cpu_model;
mod events;
mod handle;
pub mod key_echo;
mod kick;
mod kvm_stats;
pub mod memory;
pub mod platform;
mod state;
mod tap;
mod time_service;
mod vcpu;

use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use kvm_bindings::kvm_userspace_memory_region;
use kvm_ioctls::{Kvm, VcpuFd, VmFd};
use vm_memory::{GuestMemoryBackend, GuestMemoryMmap, GuestMemoryRegion};

use crate::clock::MonotonicClock;
use crate::stdout_sink::StdoutSink;

pub use crate::devices::serial::SerialStats;
pub use boot::{BootError, CMDLINE_MAX};
pub use cpu_model::CpuModel;
pub use events::MachineEvent;
pub use handle::VmHandle;
pub use kick::kick_signal;
pub use kvm_stats::{KvmStatValue, KvmStatistic, StatsTarget};
pub use memory::SizeError;
pub use platform::{PlatformStats, MAX_TICK_BACKLOG};
pub use state::{ExitReason, HostStop, ResetCause, VmExit};
pub use tap::SerialTap;
pub use vcpu::{ExitKind, VcpuStats};

/// Where KVM puts the three pages of its real-mode TSS (Intel only): just
/// below the 4 GiB boundary, far above the highest RAM address.
const TSS_ADDRESS: usize = 0xfffb_d000;

/// How to build a machine. [`VmConfig::default`] is the embedded guest
/// with an empty command line and [`memory::DEFAULT_MIB`] of RAM, COM1 only
/// to the [`SerialTap`], guest resets rebooting; change what you need:
///
/// ```
/// let config = vmm::VmConfig {
///     cmdline: "run=exit 3".into(),
///     ..vmm::VmConfig::default()
/// };
/// assert_eq!(&*config.kernel, vmm::guest::ELF);
/// ```
#[derive(Debug, Clone)]
pub struct VmConfig {
    /// The kernel: an ELF with a PVH entry note.
    pub kernel: boot::Image,
    /// The kernel command line.
    pub cmdline: String,
    /// The CPU model: what CPUID the guest is given (`--cpu`).
    pub cpu: cpu_model::CpuModel,
    /// An initial RAM disk, passed as the PVH module (`--initrd`).
    pub initrd: Option<boot::Image>,
    /// Guest RAM in MiB.
    pub memory_mib: u32,
    /// Copy the guest's serial output to stdout (it always goes to the
    /// [`SerialTap`]).
    pub serial_to_stdout: bool,
    /// Another queue the guest's serial output is copied to (`--serial
    /// file:` or `unix:`); its writer thread does the I/O, the machine only
    /// queues. The embedder flushes it before it exits.
    pub serial_sink: Option<StdoutSink>,
    /// A guest reset request stops the VM ([`ExitReason::GuestReset`],
    /// status 0) instead of resetting the machine, like QEMU's `-no-reboot`.
    pub no_reboot: bool,
}

impl Default for VmConfig {
    fn default() -> Self {
        VmConfig {
            kernel: boot::Image::from_static(crate::guest::ELF),
            cmdline: String::new(),
            initrd: None,
            cpu: CpuModel::default(),
            memory_mib: memory::DEFAULT_MIB,
            serial_to_stdout: false,
            serial_sink: None,
            no_reboot: false,
        }
    }
}

/// What the first boot and every machine reset do to memory and the vCPU,
/// kept for the vCPU thread: load the kernel and write the boot data
/// ([`boot::load`]), return the vCPU to its power-on state and put it at the
/// PVH entry.
pub(crate) struct BootSetup {
    /// Guest RAM (also read when completing instructions: the IDT).
    pub memory: GuestMemoryMmap,
    layout: memory::MemoryLayout,
    kernel: boot::Image,
    cmdline: String,
    initrd: Option<boot::Image>,
    power_on: cpu::PowerOnState,
    /// See [`VmConfig::no_reboot`].
    pub no_reboot: bool,
}

impl BootSetup {
    /// Loads the kernel and boot data and sets the vCPU's entry state.
    pub fn apply(&self, vcpu: &VcpuFd) -> Result<(), Error> {
        let entry = boot::load(
            &self.memory,
            &self.layout,
            &self.kernel,
            &self.cmdline,
            self.initrd.as_deref(),
        )?;
        self.power_on.restore(vcpu)?;
        cpu::configure_pvh_entry(vcpu, &self.memory, entry)?;
        Ok(())
    }
}

/// Why a machine could not be built or run.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `/dev/kvm` does not exist.
    #[error("/dev/kvm not found: KVM is not available (load kvm_intel or kvm_amd, or enable nested virtualisation)")]
    KvmMissing,
    /// `/dev/kvm` exists but may not be opened.
    #[error("permission denied opening /dev/kvm: add yourself to the 'kvm' group or run as root")]
    KvmPermission,
    /// `/dev/kvm` could not be opened for another reason.
    #[error("cannot open /dev/kvm: {0}")]
    KvmOpen(kvm_ioctls::Error),
    /// A KVM operation failed.
    #[error("KVM {0} failed: {1}")]
    Kvm(&'static str, kvm_ioctls::Error),
    /// The requested memory size is out of range.
    #[error(transparent)]
    MemorySize(#[from] SizeError),
    /// Guest memory could not be allocated.
    #[error("cannot allocate guest memory: {0}")]
    MemoryAllocation(vm_memory::mmap::FromRangesError),
    /// The kernel cannot be booted.
    #[error(transparent)]
    Boot(#[from] BootError),
    /// The CPU model could not be applied.
    #[error(transparent)]
    Cpuid(#[from] cpu::CpuidError),
    /// The vCPU could not be set up.
    #[error(transparent)]
    VcpuSetup(#[from] cpu::SetupError),
    /// Two devices of the port map claim the same port (a bug in the map).
    #[error("the machine's port map is invalid: {0}")]
    PortMap(platform::PortMapError),
    /// A host resource (thread, eventfd, timerfd, signal handler) failed.
    #[error("{0}: {1}")]
    Host(&'static str, std::io::Error),
}

/// How a run went.
#[derive(Debug, Clone)]
pub struct RunReport {
    /// The exit status and why.
    pub exit: VmExit,
    /// Wall time from [`Vm::run`] to the stop.
    pub run_time: Duration,
    /// vCPU counters.
    pub vcpu: VcpuStats,
    /// Device counters.
    pub platform: PlatformStats,
    /// COM1's counters.
    pub serial: SerialStats,
    /// The VMM's own key-to-echo times (see [`key_echo`]); `None` if no
    /// press was answered.
    pub key_echo: Option<key_echo::KeyEchoSummary>,
}

impl RunReport {
    /// A human-readable summary (the `--stats` output).
    pub fn summary(&self) -> String {
        use std::fmt::Write;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "vmm stats: run time {:.3} s",
            self.run_time.as_secs_f64()
        );
        let total: u64 = self.vcpu.exits.iter().sum();
        let _ = writeln!(out, "  exits: {total}");
        for kind in ExitKind::ALL {
            let count = self.vcpu.exits[kind as usize];
            if count > 0 {
                let _ = writeln!(out, "    {:<16} {count}", kind.name());
            }
        }
        let injected: u64 = self.vcpu.injected.iter().sum::<u64>() + self.vcpu.injected_spurious;
        let _ = writeln!(out, "  interrupts injected: {injected}");
        for (line, count) in self.vcpu.injected.iter().enumerate() {
            if *count > 0 {
                let _ = writeln!(out, "    irq {line:<12} {count}");
            }
        }
        if self.vcpu.injected_spurious > 0 {
            let _ = writeln!(
                out,
                "    {:<16} {}",
                "spurious", self.vcpu.injected_spurious
            );
        }
        let vcpu = &self.vcpu;
        if vcpu.completed > 0 {
            let _ = writeln!(
                out,
                "  instructions completed by the VMM (KVM's emulator could not): {}",
                vcpu.completed
            );
        }
        let _ = writeln!(
            out,
            "  vcpu thread: {:.3} s in KVM_RUN, {:.3} s in the VMM, {:.3} s parked (halted or paused)",
            vcpu.in_kvm_run.as_secs_f64(),
            vcpu.in_vmm.as_secs_f64(),
            vcpu.parked.as_secs_f64()
        );
        if vcpu.kvm.is_empty() {
            let _ = writeln!(out, "  kvm counters: not offered by this host kernel");
        } else {
            let _ = writeln!(out, "  kvm counters (KVM_GET_STATS_FD, non-zero):");
            for (name, value) in vcpu.kvm.iter().filter(|(_, value)| *value > 0) {
                let _ = writeln!(out, "    {name:<24} {value}");
            }
        }
        let p = &self.platform;
        let _ = writeln!(
            out,
            "  timer ticks: {} delivered, {} dropped (backlog full), {} discarded while paused, \
             {} cancelled by a PIC re-initialisation, {} forgotten at unmask",
            p.timer_ticks_delivered,
            p.timer_ticks_dropped,
            p.timer_ticks_paused,
            p.timer_ticks_cancelled,
            p.timer_ticks_unmasked
        );
        let _ = writeln!(out, "  resets: {}", p.resets);
        let _ = writeln!(
            out,
            "  com1: {} bytes transmitted, {} bytes of host input read by the guest, {} overruns",
            self.serial.tx_bytes, self.serial.rx_bytes, self.serial.rx_overruns
        );
        match &self.key_echo {
            Some(echo) => {
                let _ = writeln!(
                    out,
                    "  key to echo (host key press to the guest's next COM1 byte): {} keys, \
                     p50 {} µs, p99 {} µs, mean {} µs, max {} µs",
                    echo.count,
                    echo.p50.as_micros(),
                    echo.p99.as_micros(),
                    echo.mean.as_micros(),
                    echo.max.as_micros()
                );
            }
            None => {
                let _ = writeln!(out, "  key to echo: no key answered");
            }
        }
        let _ = write!(
            out,
            "  unclaimed ports: {} reads, {} writes",
            p.unknown_port_reads, p.unknown_port_writes
        );
        out
    }
}

/// A built machine, ready to run.
pub struct Vm {
    // Field order is drop order: the vCPU before the VM before the memory
    // KVM maps.
    vcpu: VcpuFd,
    _vm: VmFd,
    // The mapping is shared with `boot.memory` (the vCPU thread's); this
    // reference keeps it until after the VM fd is closed.
    _memory: GuestMemoryMmap,
    boot: BootSetup,
    shared: Arc<state::Shared>,
    clock: MonotonicClock,
}

impl Vm {
    /// Creates the VM, its memory and vCPU, and loads the kernel.
    pub fn new(config: &VmConfig) -> Result<Self, Error> {
        let layout = memory::MemoryLayout::new(config.memory_mib)?;
        // Check the kernel before touching KVM: a bad file is the likelier
        // mistake, and its error the more useful one.
        boot::check_placement(&boot::inspect(&config.kernel)?, &layout)?;

        let kvm = Kvm::new().map_err(|error| match error.errno() {
            libc::ENOENT => Error::KvmMissing,
            libc::EACCES | libc::EPERM => Error::KvmPermission,
            _ => Error::KvmOpen(error),
        })?;
        let vm = kvm.create_vm().map_err(|e| Error::Kvm("create VM", e))?;
        vm.set_tss_address(TSS_ADDRESS)
            .map_err(|e| Error::Kvm("set TSS address", e))?;

        let memory = layout.allocate().map_err(Error::MemoryAllocation)?;
        for (slot, region) in memory.iter().enumerate() {
            let region_desc = kvm_userspace_memory_region {
                slot: slot as u32,
                flags: 0,
                guest_phys_addr: region.start_addr().0,
                memory_size: region.len(),
                userspace_addr: region.as_ptr() as u64,
            };
            // SAFETY: the region is a live anonymous mapping of exactly this
            // size, owned by `memory`, which the `Vm` keeps until after the
            // VM fd is closed.
            unsafe { vm.set_user_memory_region(region_desc) }
                .map_err(|e| Error::Kvm("set memory region", e))?;
        }

        let vcpu = vm
            .create_vcpu(0)
            .map_err(|e| Error::Kvm("create vCPU", e))?;
        cpu::configure_cpuid(&kvm, &vcpu, &config.cpu)?;
        let boot = BootSetup {
            power_on: cpu::PowerOnState::capture(&kvm, &vcpu)?,
            memory: memory.clone(),
            layout,
            kernel: config.kernel.clone(),
            cmdline: config.cmdline.clone(),
            initrd: config.initrd.clone(),
            no_reboot: config.no_reboot,
        };
        boot.apply(&vcpu)?;

        let clock = MonotonicClock::default();
        let tap = SerialTap::new();
        let key_echo = Arc::new(key_echo::Probe::new(clock.clone()));
        let console = console::Console::new(
            tap.clone(),
            config.serial_to_stdout,
            config.serial_sink.clone(),
            key_echo.clone(),
        );
        let platform = platform::Platform::pc(&clock, Box::new(console)).map_err(Error::PortMap)?;
        // KVM's statistics files are opened here, before any thread is
        // confined; absent on kernels older than 5.14 (then `query-stats`
        // answers an empty list and `--stats` has no KVM counters).
        let kvm_stats = state::KvmStatsFiles {
            vm: open_kvm_stats(&vm),
            vcpu: open_kvm_stats(&vcpu),
        };
        let shared = state::Shared::new(platform, tap, kvm_stats, key_echo)
            .map_err(|e| Error::Host("eventfd", e))?;
        Ok(Self {
            vcpu,
            _vm: vm,
            _memory: memory,
            boot,
            shared: Arc::new(shared),
            clock,
        })
    }

    /// A handle to control the VM from other threads.
    pub fn handle(&self) -> VmHandle {
        VmHandle::new(self.shared.clone())
    }

    /// Runs the guest until it exits, crashes, or a [`VmHandle`] stops it.
    pub fn run(self) -> Result<RunReport, Error> {
        let Vm {
            vcpu,
            _vm: vm_fd,
            _memory: memory,
            boot,
            shared,
            clock,
        } = self;
        kick::install_handler()
            .map_err(|e| Error::Host("cannot install the kick signal handler", e))?;
        let started = Instant::now();

        let timer_shared = shared.clone();
        let timer = thread::Builder::new()
            .name("time-service".into())
            .spawn(move || {
                if let Err(error) = time_service::run(&timer_shared, clock) {
                    // Without its timers the guest would hang: stop it.
                    let mut state = timer_shared.lock();
                    let reason =
                        ExitReason::Crash(format!("the time service thread failed: {error}"));
                    let exit = VmExit {
                        status: shared::status::GUEST_CRASH,
                        reason,
                    };
                    timer_shared.request_exit(&mut state, exit);
                }
            })
            .map_err(|e| Error::Host("cannot start the time service thread", e))?;
        let vcpu_shared = shared.clone();
        let vcpu_thread = thread::Builder::new()
            .name("vcpu0".into())
            .spawn(move || vcpu::run(&vcpu_shared, vcpu, &boot));
        let vcpu_thread = match vcpu_thread {
            Ok(thread) => thread,
            Err(error) => {
                let handle = VmHandle::new(shared.clone());
                handle.shutdown(shared::status::SETUP_ERROR);
                let _ = timer.join();
                return Err(Error::Host("cannot start the vCPU thread", error));
            }
        };

        // Every thread of the run is started: the main thread, which now
        // only waits, reports and exits, confines itself (threads inherit
        // their creator's filter, so not before).
        crate::sandbox::confine_or_exit(crate::sandbox::Role::Main);
        let handle = VmHandle::new(shared.clone());
        let vcpu_stats = vcpu_thread.join().unwrap_or_else(|_| {
            let mut state = shared.lock();
            let reason = ExitReason::Crash("the vCPU thread panicked".into());
            shared.request_exit(
                &mut state,
                VmExit {
                    status: shared::status::GUEST_CRASH,
                    reason,
                },
            );
            VcpuStats::default()
        });
        let exit = handle.wait_exit();
        let run_time = started.elapsed();
        if timer.join().is_err() {
            log::error!("the time service thread panicked");
        }
        shared.tap.close();
        // Last: every event of the run (published before the threads
        // ended) precedes it in each subscriber's channel.
        shared
            .machine_events
            .publish(MachineEvent::Shutdown(exit.clone()));
        let (platform, serial) = {
            let state = shared.lock();
            (state.platform.stats(), state.platform.serial_stats())
        };
        // The VM before the memory it maps (the vCPU thread dropped the vCPU).
        drop(vm_fd);
        drop(memory);
        Ok(RunReport {
            exit,
            run_time,
            vcpu: vcpu_stats,
            platform,
            serial,
            key_echo: shared.key_echo.summary(),
        })
    }
}

/// KVM's binary statistics of a VM or vCPU fd, if the host kernel has them.
fn open_kvm_stats<F: std::os::fd::AsRawFd>(owner: &F) -> Option<kvm_stats::KvmStats> {
    kvm_stats::KvmStats::open(owner)
        .map_err(|error| log::debug!("no KVM binary statistics: {error}"))
        .ok()
}
