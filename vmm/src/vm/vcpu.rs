//! The vCPU thread: `KVM_RUN`, exit handling and interrupt injection.
//!
//! Interrupt delivery, for a machine without an in-kernel irqchip:
//! - Before each `KVM_RUN`, under the machine lock: if the PIC's INT output
//!   is asserted and KVM says the guest can take an interrupt now
//!   (`ready_for_interrupt_injection` and `if_flag`), acknowledge the PIC
//!   (INTA) and inject its vector with `KVM_INTERRUPT`. If an interrupt is
//!   still pending, set `request_interrupt_window` so KVM exits as soon as the
//!   guest can take it.
//! - On `HLT` the thread blocks on a condition variable until an interrupt
//!   it could deliver is pending (no polling: an idle guest costs nothing).
//! - A host thread that raises an interrupt while the vCPU is in guest mode
//!   kicks it out of `KVM_RUN` (see [`super::kick`]). The race between the
//!   kick and entering `KVM_RUN` is closed by the order of operations: the
//!   kicker raises the IRQ under the lock, then signals; the vCPU thread,
//!   after every return from `KVM_RUN`, first clears `immediate_exit`, then
//!   takes the lock and looks. A kick that lands before the clear is
//!   preceded by its IRQ, which the vCPU sees under the lock; one that lands
//!   after the clear leaves `immediate_exit` set, so the next `KVM_RUN`
//!   returns at once. Either way no interrupt waits for an unrelated exit.
use std::ptr::{addr_of, addr_of_mut};
use std::time::{Duration, Instant};

use kvm_bindings::{kvm_interrupt, kvm_run, KVMIO};
use kvm_ioctls::{VcpuExit, VcpuFd};
use vm_memory::Bytes;
use vmm_sys_util::ioctl::ioctl_with_ref;
use vmm_sys_util::ioctl_iow_nr;

use super::events::MachineEvent;
use super::kick::ImmediateExitGuard;
use super::state::{ExitReason, ResetCause, Shared, State, VcpuPhase, VmExit};
use super::BootSetup;
use crate::device::{Change, MachineRequest};

ioctl_iow_nr!(KVM_INTERRUPT, KVMIO, 0x86, kvm_interrupt);

/// Kinds of `KVM_RUN` returns, for statistics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(usize)]
pub enum ExitKind {
    /// Port input.
    IoIn,
    /// Port output.
    IoOut,
    /// `HLT`.
    Hlt,
    /// The interrupt window opened.
    IrqWindowOpen,
    /// Access to unbacked memory.
    Mmio,
    /// Interrupted by a kick (`EINTR`/`EAGAIN`, or `immediate_exit`).
    Kick,
    /// Anything else (ends the VM).
    Other,
}

impl ExitKind {
    /// Every kind, in report order.
    pub const ALL: [ExitKind; 7] = [
        Self::IoIn,
        Self::IoOut,
        Self::Hlt,
        Self::IrqWindowOpen,
        Self::Mmio,
        Self::Kick,
        Self::Other,
    ];

    /// Its name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Self::IoIn => "io-in",
            Self::IoOut => "io-out",
            Self::Hlt => "hlt",
            Self::IrqWindowOpen => "irq-window-open",
            Self::Mmio => "mmio",
            Self::Kick => "kick (EINTR)",
            Self::Other => "other",
        }
    }
}

/// What the vCPU thread counted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VcpuStats {
    /// `KVM_RUN` returns by [`ExitKind`] (indexed by `kind as usize`).
    pub exits: [u64; ExitKind::ALL.len()],
    /// Interrupts injected per IRQ line 0-15.
    pub injected: [u64; 16],
    /// Spurious vectors injected (IRQ 7 or 15 with no request behind it).
    pub injected_spurious: u64,
    /// Wall time inside `KVM_RUN`: the guest running (under `kvm_pvm`, KVM's
    /// instruction emulator running it).
    pub in_kvm_run: Duration,
    /// Wall time the vCPU thread spent in the VMM between `KVM_RUN`s:
    /// handling exits, injecting, taking the lock (parking excluded).
    pub in_vmm: Duration,
    /// Wall time parked outside `KVM_RUN`: the guest halted with nothing to
    /// deliver, or the VM paused.
    pub parked: Duration,
    /// Instructions KVM's emulator gave up on that the VMM completed
    /// (`INT3`, `INT n`, `CLAC`, ... see `complete.rs`).
    pub completed: u64,
    /// KVM's own cumulative counters for this vCPU at the end of the run
    /// (name, value), when the host kernel offers binary statistics.
    pub kvm: Vec<(String, u64)>,
}

impl VcpuStats {
    fn count(&mut self, kind: ExitKind) {
        self.exits[kind as usize] += 1;
    }
}

/// Runs the vCPU until the VM stops. Sets the VM's exit when the guest or
/// KVM ends it.
pub(crate) fn run(shared: &Shared, mut vcpu: VcpuFd, boot: &BootSetup) -> VcpuStats {
    let run: *mut kvm_run = vcpu.get_kvm_run();
    // SAFETY: `run` is the vCPU's kvm_run mapping, alive as long as `vcpu`,
    // which outlives the guard (dropped at the end of this function, on this
    // thread).
    let _guard = unsafe { ImmediateExitGuard::new(addr_of_mut!((*run).immediate_exit)) };
    let mut stats = VcpuStats::default();
    {
        let mut state = shared.lock();
        // SAFETY: pthread_self has no preconditions.
        state.run.vcpu_thread = Some(unsafe { libc::pthread_self() });
    }
    // Withdraws the kick target however this function is left, a panic
    // included: once the thread is joined its id is dangling, and a kick
    // (`pthread_kill`) to it would be undefined behaviour.
    let _withdraw = WithdrawKickTarget(shared);
    // Set-up done (the vCPU fd and its kvm_run mapping are open, the
    // statistics fd too, by `Vm::new`): from here on only the vCPU's own
    // calls.
    crate::sandbox::confine_or_exit(crate::sandbox::Role::Vcpu);
    if crate::sandbox::self_test_requested() {
        crate::sandbox::forbidden_call();
    }
    let mut vcpu_loop = VcpuLoop {
        shared,
        boot,
        vcpu: &mut vcpu,
        run,
        stats: &mut stats,
    };
    let crash = vcpu_loop.run();
    if let Some(kvm_stats) = &shared.kvm_stats.vcpu {
        match kvm_stats.counters() {
            Ok(counters) => stats.kvm = counters,
            Err(error) => log::debug!("cannot read KVM's statistics: {error}"),
        }
    }
    let mut state = shared.lock();
    // Withdraw the kick target before the VM's exit wakes anyone.
    state.run.vcpu_thread = None;
    state.run.vcpu_phase = VcpuPhase::Outside;
    if let Some(exit) = crash {
        shared.request_exit(&mut state, exit);
    }
    stats
}

/// Clears [`super::state::RunControl::vcpu_thread`] when dropped (see [`run`]).
struct WithdrawKickTarget<'a>(&'a Shared);

impl Drop for WithdrawKickTarget<'_> {
    fn drop(&mut self) {
        let mut state = self.0.lock();
        state.run.vcpu_thread = None;
        state.run.vcpu_phase = VcpuPhase::Outside;
    }
}

struct VcpuLoop<'a> {
    shared: &'a Shared,
    boot: &'a BootSetup,
    vcpu: &'a mut VcpuFd,
    run: *mut kvm_run,
    stats: &'a mut VcpuStats,
}

fn crash(reason: ExitReason) -> Option<VmExit> {
    Some(VmExit {
        status: shared::status::GUEST_CRASH,
        reason,
    })
}

impl VcpuLoop<'_> {
    // Reads and writes of the kvm_run fields go through the raw pointer: the
    // kick handler may write `immediate_exit` at any time on this thread, so
    // no long-lived `&mut kvm_run` is held here.
    fn if_flag(&self) -> bool {
        // SAFETY: `run` is valid (see `run`); plain byte read.
        unsafe { addr_of!((*self.run).if_flag).read() != 0 }
    }

    fn ready_for_injection(&self) -> bool {
        // SAFETY: as above.
        unsafe { addr_of!((*self.run).ready_for_interrupt_injection).read() != 0 }
    }

    fn set_request_interrupt_window(&self, on: bool) {
        // SAFETY: as above; plain byte write.
        unsafe { addr_of_mut!((*self.run).request_interrupt_window).write(u8::from(on)) }
    }

    /// Runs until the VM must stop; returns the exit to record when the stop
    /// comes from the guest or KVM rather than from the machine state.
    fn run(&mut self) -> Option<VmExit> {
        let shared = self.shared;
        let mut halted = false;
        // Where the thread's time goes: each stretch ends at the next mark.
        let mut mark = Instant::now();
        let mut state = shared.lock();
        loop {
            // Park while paused, or halted with nothing to wake the guest.
            loop {
                if state.run.stopped() {
                    return None;
                }
                // Before the pause check: a stopped VM is reset and stays
                // stopped, as with QEMU's system_reset.
                if let Some(cause) = state.run.reset_request.take() {
                    if let Err(error) = self.reset(&mut state) {
                        let what = format!("the machine reset failed: {error}");
                        return crash(ExitReason::Crash(what));
                    }
                    halted = false;
                    // Non-blocking (see vm/events.rs); under the lock so it
                    // is ordered with the pause/resume events.
                    shared.machine_events.publish(MachineEvent::Reset(cause));
                    continue;
                }
                let wakes_guest = self.if_flag() && state.platform.interrupt_pending();
                if !state.run.paused && (!halted || wakes_guest) {
                    break;
                }
                state.run.vcpu_phase = VcpuPhase::Waiting;
                let parking = Instant::now();
                self.stats.in_vmm += parking - mark;
                state = shared
                    .vcpu_wake
                    .wait(state)
                    .unwrap_or_else(|p| p.into_inner());
                mark = Instant::now();
                self.stats.parked += mark - parking;
            }
            halted = false;
            if let Err(error) = self.inject(&mut state) {
                let what = format!("KVM_INTERRUPT failed: {error}");
                return crash(self.describe(ExitReason::Crash(what)));
            }
            state.run.vcpu_phase = VcpuPhase::InGuest;
            drop(state);

            let entry = Instant::now();
            self.stats.in_vmm += entry - mark;
            let result = self.vcpu.run();
            mark = Instant::now();
            self.stats.in_kvm_run += mark - entry;
            // SAFETY: `run` is valid; volatile because the kick handler
            // writes it asynchronously. Must precede taking the lock.
            unsafe { addr_of_mut!((*self.run).immediate_exit).write_volatile(0) };
            // SAFETY: `run` is valid; reading the `io` member of the union is
            // only meaningful for I/O exits and a plain copy otherwise.
            let io_size =
                usize::from(unsafe { addr_of!((*self.run).__bindgen_anon_1.io).read().size });

            state = shared.lock();
            state.run.vcpu_phase = VcpuPhase::Outside;
            let mut fatal = None;
            match result {
                Ok(VcpuExit::IoIn(port, data)) => {
                    self.stats.count(ExitKind::IoIn);
                    let mut change = Change::NONE;
                    for chunk in data.chunks_mut(io_size.max(1)) {
                        change = change.then(state.platform.pio_read(port, chunk));
                    }
                    if self.act_on(&mut state, change) {
                        continue;
                    }
                }
                Ok(VcpuExit::IoOut(port, data)) => {
                    self.stats.count(ExitKind::IoOut);
                    let mut change = Change::NONE;
                    for chunk in data.chunks(io_size.max(1)) {
                        change = change.then(state.platform.pio_write(port, chunk));
                    }
                    if self.act_on(&mut state, change) {
                        continue;
                    }
                }
                Ok(VcpuExit::Hlt) => {
                    self.stats.count(ExitKind::Hlt);
                    halted = true;
                }
                Ok(VcpuExit::IrqWindowOpen) => self.stats.count(ExitKind::IrqWindowOpen),
                Ok(VcpuExit::MmioRead(address, data)) => {
                    self.stats.count(ExitKind::Mmio);
                    log::debug!("read of {} bytes at unbacked {address:#x}", data.len());
                    data.fill(0xff);
                }
                Ok(VcpuExit::MmioWrite(address, data)) => {
                    self.stats.count(ExitKind::Mmio);
                    log::debug!(
                        "write of {} bytes at unbacked {address:#x} ignored",
                        data.len()
                    );
                }
                Ok(VcpuExit::Intr) => self.stats.count(ExitKind::Kick),
                Ok(VcpuExit::Shutdown) => {
                    self.stats.count(ExitKind::Other);
                    fatal = Some(ExitReason::TripleFault(String::new()));
                }
                Ok(VcpuExit::FailEntry(reason, cpu)) => {
                    self.stats.count(ExitKind::Other);
                    fatal = Some(ExitReason::Crash(format!(
                        "KVM_EXIT_FAIL_ENTRY: hardware entry failure reason {reason:#x} on cpu {cpu}"
                    )));
                }
                Ok(VcpuExit::InternalError) => {
                    self.stats.count(ExitKind::Other);
                    // SAFETY: the exit reason says the `internal` member is valid.
                    let internal =
                        unsafe { addr_of!((*self.run).__bindgen_anon_1.internal).read() };
                    let data = &internal.data[..(internal.ndata as usize).min(internal.data.len())];
                    let completed = emulation_failure_bytes(internal.suberror, data)
                        .map(|bytes| self.complete_instruction(&bytes));
                    match &completed {
                        Some(Ok(())) => self.stats.completed += 1,
                        Some(Err(why)) => log::debug!("not completed: {why}"),
                        None => {}
                    }
                    if !matches!(completed, Some(Ok(()))) {
                        fatal = Some(ExitReason::Crash(describe_internal_error(
                            internal.suberror,
                            data,
                        )));
                    }
                }
                Ok(other) => {
                    self.stats.count(ExitKind::Other);
                    fatal = Some(ExitReason::Crash(format!("unexpected KVM exit {other:?}")));
                }
                Err(error) if matches!(error.errno(), libc::EINTR | libc::EAGAIN) => {
                    self.stats.count(ExitKind::Kick);
                }
                Err(error) => {
                    self.stats.count(ExitKind::Other);
                    fatal = Some(ExitReason::Crash(format!("KVM_RUN failed: {error}")));
                }
            }
            if let Some(reason) = fatal {
                return crash(self.describe(reason));
            }
        }
    }

    /// Acts on what a guest port access changed: wakes the time service if
    /// a deadline moved and input waiters if input was consumed; a guest
    /// request stops the VM, or asks for a reset (then returns true: the
    /// caller goes straight back to the top of its loop, which carries it
    /// out before the next `KVM_RUN`).
    fn act_on(&self, state: &mut State, change: Change) -> bool {
        if change.deadline_moved {
            self.shared.wake_timer();
        }
        if change.input_consumed {
            self.shared.events.notify_all();
        }
        let exit = match change.request {
            None => return false,
            Some(MachineRequest::Exit(value)) => VmExit {
                status: (value & 0xff) as i32,
                reason: ExitReason::GuestExit(value),
            },
            Some(MachineRequest::Reset) if !self.boot.no_reboot => {
                state.run.reset_request.get_or_insert(ResetCause::Guest);
                return true;
            }
            Some(MachineRequest::Reset) => VmExit {
                status: 0,
                reason: ExitReason::GuestReset,
            },
        };
        self.shared.request_exit(state, exit);
        false
    }

    /// A full machine reset, under the machine lock, outside `KVM_RUN`:
    /// devices to power-on, kernel and boot data reloaded, the vCPU back to
    /// its power-on state and at the PVH entry, no interrupt window
    /// requested. The timer thread is told (it re-arms from the new PIT), and
    /// waiters of [`super::VmHandle::reset`] are woken.
    fn reset(&mut self, state: &mut State) -> Result<(), super::Error> {
        state.platform.reset();
        self.set_request_interrupt_window(false);
        self.boot.apply(self.vcpu)?;
        state.run.resets_done += 1;
        self.shared.wake_timer();
        self.shared.events.notify_all();
        Ok(())
    }

    /// Completes an instruction KVM's emulator gave up on (`bytes` from the
    /// emulation-failure exit), as the architecture says (see
    /// [`super::complete`]): RIP and RFLAGS set, and an exception or
    /// interrupt queued with `KVM_SET_VCPU_EVENTS`, which KVM delivers
    /// through the guest's IDT on the next entry.
    fn complete_instruction(&mut self, bytes: &[u8]) -> Result<(), String> {
        use super::complete::{complete, Completion, CpuView, SseView};
        const CR0_PE: u64 = 1;
        const CR0_EM: u64 = 1 << 2;
        const CR0_TS: u64 = 1 << 3;
        const CR0_NE: u64 = 1 << 5;
        const CR4_OSFXSR: u64 = 1 << 9;
        const CR4_SMAP: u64 = 1 << 21;
        const EFER_LMA: u64 = 1 << 10;
        const FSW_ERROR_SUMMARY: u16 = 1 << 7;
        let kvm = |what: &str, error: kvm_ioctls::Error| format!("{what}: {error}");
        let mut regs = self.vcpu.get_regs().map_err(|e| kvm("KVM_GET_REGS", e))?;
        let sregs = self.vcpu.get_sregs().map_err(|e| kvm("KVM_GET_SREGS", e))?;
        if sregs.cr0 & CR0_PE == 0 {
            return Err("real mode: KVM's emulator handles it".into());
        }
        let fpu = self.vcpu.get_fpu().map_err(|e| kvm("KVM_GET_FPU", e))?;
        let cpu = CpuView {
            bitness: match (sregs.cs.l, sregs.cs.db) {
                (1, _) => 64,
                (_, 1) => 32,
                _ => 16,
            },
            cpl: (sregs.cs.selector & 3) as u8,
            rip: regs.rip,
            rflags: regs.rflags,
            smap: sregs.cr4 & CR4_SMAP != 0,
            numeric_error: sregs.cr0 & CR0_NE != 0,
            x87_exception_pending: fpu.fsw & FSW_ERROR_SUMMARY != 0,
            sse: SseView {
                osfxsr: sregs.cr4 & CR4_OSFXSR != 0,
                emulate: sregs.cr0 & CR0_EM != 0,
                task_switched: sregs.cr0 & CR0_TS != 0,
            },
        };
        let mut guest = GuestView {
            vcpu: self.vcpu,
            memory: &self.boot.memory,
            regs: &regs,
            sregs: &sregs,
            gate_size: if sregs.efer & EFER_LMA != 0 { 16 } else { 8 },
            xsave: std::cell::OnceCell::new(),
        };
        let completion = complete(bytes, &cpu, &guest).map_err(|e| e.to_string())?;
        log::debug!("completed {bytes:02x?} at {:#x}: {completion:?}", regs.rip);
        let mut events = self
            .vcpu
            .get_vcpu_events()
            .map_err(|e| kvm("KVM_GET_VCPU_EVENTS", e))?;
        match completion {
            Completion::Advance { len, rflags } => {
                regs.rip = regs.rip.wrapping_add(len);
                regs.rflags = rflags;
            }
            Completion::Trap { len, vector } => {
                regs.rip = regs.rip.wrapping_add(len);
                events.exception.injected = 1;
                events.exception.nr = vector;
                events.exception.has_error_code = 0;
            }
            Completion::SoftwareInterrupt { len, vector } => {
                regs.rip = regs.rip.wrapping_add(len);
                events.interrupt.injected = 1;
                events.interrupt.nr = vector;
                events.interrupt.soft = 0;
            }
            Completion::Update {
                len,
                rflags,
                registers,
                memory,
            } => {
                if let Some((address, bytes)) = memory {
                    if !guest.write(address, &bytes) {
                        return Err(format!(
                            "cannot write {} bytes at {address:#x}",
                            bytes.len()
                        ));
                    }
                }
                regs.rip = regs.rip.wrapping_add(len);
                regs.rflags = rflags;
                for (register, value) in registers {
                    *gpr_mut(&mut regs, register)
                        .ok_or_else(|| format!("cannot write {register:?}"))? = value;
                }
            }
            Completion::LoadMxcsr { len, mxcsr } => {
                // The image the completion read MXCSR_MASK from.
                let mut xsave = guest
                    .xsave
                    .take()
                    .flatten()
                    .ok_or("KVM_GET_XSAVE failed: MXCSR cannot be loaded")?;
                xsave.region[xsave_image::MXCSR] = mxcsr;
                // KVM loads MXCSR from the image only with the SSE (or
                // AVX) component marked present in XSTATE_BV; the XMM
                // registers it then also loads are the image's own.
                xsave.region[xsave_image::XSTATE_BV_LOW] |= xsave_image::XFEATURE_SSE;
                // SAFETY: the kernel reads at most the 4096 bytes of
                // `kvm_xsave`: the VMM enables no dynamic XSTATE feature
                // (no ARCH_REQ_XCOMP_GUEST_PERM), so the vCPU's XSAVE size
                // fits it, as the KVM_GET_XSAVE above (which fails when
                // it does not) confirmed.
                unsafe { self.vcpu.set_xsave(&xsave) }.map_err(|e| kvm("KVM_SET_XSAVE", e))?;
                regs.rip = regs.rip.wrapping_add(len);
            }
            Completion::Fault { vector, error_code } => {
                events.exception.injected = 1;
                events.exception.nr = vector;
                events.exception.has_error_code = u8::from(error_code.is_some());
                events.exception.error_code = error_code.unwrap_or(0);
            }
        }
        self.vcpu
            .set_regs(&regs)
            .map_err(|e| kvm("KVM_SET_REGS", e))?;
        self.vcpu
            .set_vcpu_events(&events)
            .map_err(|e| kvm("KVM_SET_VCPU_EVENTS", e))
    }

    /// Words a crash for the user, with where the guest was (RIP, mode).
    fn describe(&self, reason: ExitReason) -> ExitReason {
        let at = match (self.vcpu.get_regs(), self.vcpu.get_sregs()) {
            (Ok(regs), Ok(sregs)) => format!(
                " at rip {:#x} (cr0 {:#x}, efer {:#x}, cs.l {})",
                regs.rip, sregs.cr0, sregs.efer, sregs.cs.l
            ),
            _ => String::new(),
        };
        match reason {
            ExitReason::Crash(what) => ExitReason::Crash(format!("the guest crashed: {what}{at}")),
            ExitReason::TripleFault(_) => ExitReason::TripleFault(at),
            other => other,
        }
    }

    /// Injects the PIC's interrupt if the guest can take it now, and asks
    /// for an interrupt-window exit if one is (still) pending.
    fn inject(&mut self, state: &mut State) -> Result<(), std::io::Error> {
        let platform = &mut state.platform;
        if platform.interrupt_pending() && self.ready_for_injection() && self.if_flag() {
            let acknowledged = platform.acknowledge();
            let vector = acknowledged.vector;
            let request = kvm_interrupt {
                irq: u32::from(vector),
            };
            // SAFETY: KVM_INTERRUPT on a vCPU fd reads one kvm_interrupt,
            // which `request` is.
            let ret = unsafe { ioctl_with_ref(&*self.vcpu, KVM_INTERRUPT(), &request) };
            if ret < 0 {
                return Err(std::io::Error::last_os_error());
            }
            log::trace!("injected vector {vector} (irq {})", acknowledged.line);
            if acknowledged.spurious {
                self.stats.injected_spurious += 1;
            } else {
                self.stats.injected[usize::from(acknowledged.line)] += 1;
            }
        }
        self.set_request_interrupt_window(platform.interrupt_pending());
        Ok(())
    }
}

/// The guest as instruction completion reads it: registers, segment bases,
/// the IDT and memory at linear addresses (translated by the guest's page
/// tables with `KVM_TRANSLATE`, page by page).
struct GuestView<'a> {
    vcpu: &'a VcpuFd,
    memory: &'a vm_memory::GuestMemoryMmap,
    regs: &'a kvm_bindings::kvm_regs,
    sregs: &'a kvm_bindings::kvm_sregs,
    /// Bytes per IDT gate: 16 in long mode, 8 otherwise.
    gate_size: u64,
    /// The vCPU's XSAVE image, read at the first need (`None`: the read
    /// failed). MXCSR comes from there, not from `kvm_fpu`: on this host
    /// KVM_GET_FPU reports MXCSR as 0 and KVM_SET_FPU does not load it
    /// (measured: the FXSAVE image said 0x1f80 meanwhile). Only
    /// `LDMXCSR`/`STMXCSR` need it, so the other completions skip the 4 KiB
    /// copy.
    xsave: std::cell::OnceCell<Option<Box<kvm_bindings::kvm_xsave>>>,
}

/// 32-bit word indices into `kvm_xsave::region` (SDM vol. 1, 10.5.1 and
/// 13.4: the FXSAVE legacy area, then the XSAVE header at byte 512).
mod xsave_image {
    /// MXCSR, at byte 24.
    pub const MXCSR: usize = 6;
    /// MXCSR_MASK, at byte 28.
    pub const MXCSR_MASK: usize = 7;
    /// The low half of XSTATE_BV, at byte 512.
    pub const XSTATE_BV_LOW: usize = 128;
    /// XSTATE_BV's SSE bit.
    pub const XFEATURE_SSE: u32 = 1 << 1;
}

impl GuestView<'_> {
    /// 32-bit word `index` of the vCPU's XSAVE image.
    fn xsave_word(&self, index: usize) -> Option<u32> {
        self.xsave
            .get_or_init(|| self.vcpu.get_xsave().ok().map(Box::new))
            .as_ref()
            .map(|xsave| xsave.region[index])
    }

    /// Calls `each(guest physical address, range in the buffer)` for the
    /// page-sized pieces of `len` bytes at linear `address`; false if a
    /// page is not mapped.
    fn pieces(
        &self,
        address: u64,
        len: usize,
        mut each: impl FnMut(u64, std::ops::Range<usize>) -> bool,
    ) -> bool {
        const PAGE: u64 = 4096;
        let mut done = 0;
        while done < len {
            let linear = address.wrapping_add(done as u64);
            let in_page = (PAGE - linear % PAGE) as usize;
            let take = in_page.min(len - done);
            let Ok(translation) = self.vcpu.translate_gva(linear) else {
                return false;
            };
            if translation.valid == 0 || !each(translation.physical_address, done..done + take) {
                return false;
            }
            done += take;
        }
        true
    }

    /// Writes guest memory at linear `address`.
    fn write(&self, address: u64, bytes: &[u8]) -> bool {
        self.pieces(address, bytes.len(), |physical, range| {
            self.memory
                .write_slice(&bytes[range], vm_memory::GuestAddress(physical))
                .is_ok()
        })
    }
}

impl super::complete::GuestAccess for GuestView<'_> {
    fn gate_dpl(&self, vector: u8) -> Option<u8> {
        let offset = u64::from(vector) * self.gate_size;
        if offset + 7 > u64::from(self.sregs.idt.limit) {
            return None;
        }
        let mut descriptor = [0u8; 8];
        // The guest sets the IDT base: a linear address, wrapping as the
        // CPU's do (a plain `+` would panic in a debug build).
        self.read(self.sregs.idt.base.wrapping_add(offset), &mut descriptor)
            .then(|| ((u64::from_le_bytes(descriptor) >> 45) & 3) as u8)
    }

    fn register(&self, register: iced_x86::Register) -> u64 {
        use iced_x86::Register as R;
        let s = self.sregs;
        match register {
            R::ES => s.es.base,
            R::CS => s.cs.base,
            R::SS => s.ss.base,
            R::DS => s.ds.base,
            R::FS => s.fs.base,
            R::GS => s.gs.base,
            other => {
                let mut regs = *self.regs;
                gpr_mut(&mut regs, other).map_or(0, |value| *value)
            }
        }
    }

    fn read(&self, address: u64, bytes: &mut [u8]) -> bool {
        self.pieces(address, bytes.len(), |physical, range| {
            self.memory
                .read_slice(&mut bytes[range], vm_memory::GuestAddress(physical))
                .is_ok()
        })
    }

    fn mxcsr(&self) -> Option<u32> {
        self.xsave_word(xsave_image::MXCSR)
    }

    fn mxcsr_mask(&self) -> Option<u32> {
        self.xsave_word(xsave_image::MXCSR_MASK)
    }
}

/// The `kvm_regs` field of a 64-bit general-purpose register.
fn gpr_mut(regs: &mut kvm_bindings::kvm_regs, register: iced_x86::Register) -> Option<&mut u64> {
    use iced_x86::Register as R;
    Some(match register {
        R::RAX => &mut regs.rax,
        R::RBX => &mut regs.rbx,
        R::RCX => &mut regs.rcx,
        R::RDX => &mut regs.rdx,
        R::RSI => &mut regs.rsi,
        R::RDI => &mut regs.rdi,
        R::RSP => &mut regs.rsp,
        R::RBP => &mut regs.rbp,
        R::R8 => &mut regs.r8,
        R::R9 => &mut regs.r9,
        R::R10 => &mut regs.r10,
        R::R11 => &mut regs.r11,
        R::R12 => &mut regs.r12,
        R::R13 => &mut regs.r13,
        R::R14 => &mut regs.r14,
        R::R15 => &mut regs.r15,
        _ => return None,
    })
}

/// `KVM_INTERNAL_ERROR_EMULATION`: KVM's instruction emulator gave up.
const INTERNAL_ERROR_EMULATION: u32 = 1;
/// `KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES`.
const EMULATION_FLAG_INSTRUCTION_BYTES: u64 = 1;

/// The instruction bytes of an emulation-failure internal error, when KVM
/// gives them (`struct kvm_emulation_failure`: `data[0]` flags, then
/// `insn_size` and 15 instruction bytes packed into `data[1..3]`).
fn emulation_failure_bytes(suberror: u32, data: &[u64]) -> Option<Vec<u8>> {
    if suberror != INTERNAL_ERROR_EMULATION
        || data.len() < 3
        || data[0] & EMULATION_FLAG_INSTRUCTION_BYTES == 0
    {
        return None;
    }
    let packed: Vec<u8> = data[1..3].iter().flat_map(|w| w.to_le_bytes()).collect();
    let size = usize::from(packed[0]).min(15);
    Some(packed[1..=size].to_vec())
}

/// Words a `KVM_EXIT_INTERNAL_ERROR`. For an emulation failure that carries
/// the instruction (`struct kvm_emulation_failure`: `data[0]` flags, then
/// `insn_size` and 15 instruction bytes packed into `data[1..3]`), names the
/// bytes, which identify the instruction the emulator could not handle.
fn describe_internal_error(suberror: u32, data: &[u64]) -> String {
    if suberror == INTERNAL_ERROR_EMULATION
        && data.len() >= 3
        && data[0] & EMULATION_FLAG_INSTRUCTION_BYTES != 0
    {
        let packed: Vec<u8> = data[1..3].iter().flat_map(|w| w.to_le_bytes()).collect();
        let size = usize::from(packed[0]).min(15);
        let bytes: Vec<String> = packed[1..=size]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let hint = match packed[1] {
            0xcc..=0xce => " (INT3/INT n/INTO: KVM's emulator cannot raise a software interrupt outside real mode)",
            _ => "",
        };
        return format!(
            "KVM internal error: emulation failure on instruction bytes [{}]{hint} (data {data:x?})",
            bytes.join(" ")
        );
    }
    format!("KVM internal error, suberror {suberror} (data {data:x?})")
}

#[cfg(test)]
mod tests {
    use super::describe_internal_error;

    #[test]
    fn emulation_failure_names_the_instruction_bytes() {
        // Seen on kvm_pvm for the guest's `int3` (test=breakpoint).
        let data = [
            1,
            0x03644c058b48cc0f,
            0x44c748014b8d4800,
            0x1000,
            0,
            0,
            0,
            0,
        ];
        let text = describe_internal_error(1, &data);
        assert!(
            text.contains("instruction bytes [cc 48 8b 05 4c 64 03 00 48 8d 4b 01 48 c7 44]"),
            "{text}"
        );
        assert!(text.contains("INT3"), "{text}");
        let other = describe_internal_error(3, &[7]);
        assert_eq!(other, "KVM internal error, suberror 3 (data [7])");
    }
}
