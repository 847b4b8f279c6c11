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

use kvm_bindings::{kvm_interrupt, kvm_run, KVMIO};
use kvm_ioctls::{VcpuExit, VcpuFd};
use vmm_sys_util::ioctl::ioctl_with_ref;
use vmm_sys_util::ioctl_iow_nr;

use super::events::MachineEvent;
use super::kick::ImmediateExitGuard;
use super::platform::GuestRequest;
use super::state::{ExitReason, ResetCause, Shared, State, VcpuPhase, VmExit};
use super::BootSetup;

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
    /// Injected vectors that map to no IRQ line (PIC not initialised).
    pub injected_unmapped: u64,
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
        state.vcpu_thread = Some(unsafe { libc::pthread_self() });
    }
    // Withdraws the kick target however this function is left, a panic
    // included: once the thread is joined its id is dangling, and a kick
    // (`pthread_kill`) to it would be undefined behaviour.
    let _withdraw = WithdrawKickTarget(shared);
    let mut vcpu_loop = VcpuLoop {
        shared,
        boot,
        vcpu: &mut vcpu,
        run,
        stats: &mut stats,
    };
    let crash = vcpu_loop.run();
    let mut state = shared.lock();
    // Withdraw the kick target before the VM's exit wakes anyone.
    state.vcpu_thread = None;
    state.vcpu_phase = VcpuPhase::Outside;
    if let Some(exit) = crash {
        shared.request_exit(&mut state, exit);
    }
    stats
}

/// Clears [`State::vcpu_thread`] when dropped (see [`run`]).
struct WithdrawKickTarget<'a>(&'a Shared);

impl Drop for WithdrawKickTarget<'_> {
    fn drop(&mut self) {
        let mut state = self.0.lock();
        state.vcpu_thread = None;
        state.vcpu_phase = VcpuPhase::Outside;
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
        let mut state = shared.lock();
        loop {
            // Park while paused, or halted with nothing to wake the guest.
            loop {
                if state.exit.is_some() {
                    return None;
                }
                // Before the pause check: a stopped VM is reset and stays
                // stopped, as with QEMU's system_reset.
                if let Some(cause) = state.reset_request.take() {
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
                let wakes_guest = self.if_flag() && state.devices.pic.interrupt_pending();
                if !state.paused && (!halted || wakes_guest) {
                    break;
                }
                state.vcpu_phase = VcpuPhase::Waiting;
                state = shared
                    .vcpu_wake
                    .wait(state)
                    .unwrap_or_else(|p| p.into_inner());
            }
            halted = false;
            if let Err(error) = self.inject(&mut state) {
                let what = format!("KVM_INTERRUPT failed: {error}");
                return crash(self.describe(ExitReason::Crash(what)));
            }
            state.vcpu_phase = VcpuPhase::InGuest;
            drop(state);

            let result = self.vcpu.run();
            // SAFETY: `run` is valid; volatile because the kick handler
            // writes it asynchronously. Must precede taking the lock.
            unsafe { addr_of_mut!((*self.run).immediate_exit).write_volatile(0) };
            // SAFETY: `run` is valid; reading the `io` member of the union is
            // only meaningful for I/O exits and a plain copy otherwise.
            let io_size =
                usize::from(unsafe { addr_of!((*self.run).__bindgen_anon_1.io).read().size });

            state = shared.lock();
            state.vcpu_phase = VcpuPhase::Outside;
            let mut fatal = None;
            match result {
                Ok(VcpuExit::IoIn(port, data)) => {
                    self.stats.count(ExitKind::IoIn);
                    for chunk in data.chunks_mut(io_size.max(1)) {
                        let effects = state.devices.pio_read(port, chunk);
                        if effects.keyboard_consumed {
                            shared.events.notify_all();
                        }
                    }
                }
                Ok(VcpuExit::IoOut(port, data)) => {
                    self.stats.count(ExitKind::IoOut);
                    for chunk in data.chunks(io_size.max(1)) {
                        let effects = state.devices.pio_write(port, chunk);
                        if effects.timer_changed {
                            shared.wake_timer();
                        }
                        if effects.keyboard_consumed {
                            shared.events.notify_all();
                        }
                    }
                    if let Some(request) = state.devices.take_guest_request() {
                        let exit = match request {
                            GuestRequest::Exit(value) => VmExit {
                                status: (value & 0xff) as i32,
                                reason: ExitReason::GuestExit(value),
                            },
                            GuestRequest::Reset if !self.boot.no_reboot => {
                                // Carried out at the top of the loop.
                                state.reset_request.get_or_insert(ResetCause::Guest);
                                continue;
                            }
                            GuestRequest::Reset => VmExit {
                                status: 0,
                                reason: ExitReason::GuestReset,
                            },
                        };
                        shared.request_exit(&mut state, exit);
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
                    fatal = Some(ExitReason::Crash(describe_internal_error(
                        internal.suberror,
                        data,
                    )));
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

    /// A full machine reset, under the machine lock, outside `KVM_RUN`:
    /// devices to power-on, kernel and boot data reloaded, the vCPU back to
    /// its power-on state and at the PVH entry, no interrupt window
    /// requested. The timer thread is told (it re-arms from the new PIT), and
    /// waiters of [`super::VmHandle::reset`] are woken.
    fn reset(&mut self, state: &mut State) -> Result<(), super::Error> {
        state.devices.reset();
        self.set_request_interrupt_window(false);
        self.boot.apply(self.vcpu)?;
        state.resets_done += 1;
        self.shared.wake_timer();
        self.shared.events.notify_all();
        Ok(())
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
        let devices = &mut state.devices;
        if devices.pic.interrupt_pending() && self.ready_for_injection() && self.if_flag() {
            let (vector, line) = devices.acknowledge();
            let request = kvm_interrupt {
                irq: u32::from(vector),
            };
            // SAFETY: KVM_INTERRUPT on a vCPU fd reads one kvm_interrupt,
            // which `request` is.
            let ret = unsafe { ioctl_with_ref(&*self.vcpu, KVM_INTERRUPT(), &request) };
            if ret < 0 {
                return Err(std::io::Error::last_os_error());
            }
            log::trace!("injected vector {vector} (irq {line:?})");
            match line {
                Some(line) => self.stats.injected[usize::from(line)] += 1,
                None => self.stats.injected_unmapped += 1,
            }
        }
        self.set_request_interrupt_window(devices.pic.interrupt_pending());
        Ok(())
    }
}

/// `KVM_INTERNAL_ERROR_EMULATION`: KVM's instruction emulator gave up.
const INTERNAL_ERROR_EMULATION: u32 = 1;
/// `KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES`.
const EMULATION_FLAG_INSTRUCTION_BYTES: u64 = 1;

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
