//! [`VmHandle`]: controls a running VM from other threads (keyboard input,
//! keystroke scripts, the QMP server, timeouts).
use std::sync::mpsc::Receiver;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::events::MachineEvent;
use super::state::{ExitReason, HostStop, ResetCause, Shared, VmExit};
use super::SerialTap;

/// A cheap, clonable handle on a VM. Every method is safe to call from any
/// thread at any time, also before [`super::Vm::run`] and after the VM stopped
/// (then it does nothing or returns at once).
#[derive(Clone)]
pub struct VmHandle {
    shared: Arc<Shared>,
}

impl VmHandle {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        Self { shared }
    }

    /// Queues a PS/2 key event: `set2_code` is the scancode set 2 make code
    /// (`0xE0xx` for extended keys), `down` tells press from release. The
    /// keyboard holds it until the guest's driver listens (it enabled scanning
    /// with 0xF4) and delivers the bytes as the guest reads them; nothing is
    /// lost, so keys may be queued from the start, before the guest boots.
    pub fn key_event(&self, set2_code: u16, down: bool) {
        let mut state = self.shared.lock();
        if state.run.stopped() {
            return;
        }
        let change = state.platform.key_event(set2_code, down);
        // Under the machine lock, so the guest cannot answer before the
        // press is stamped.
        self.shared.key_echo.key(down);
        self.shared.after_host_event(&state, change);
    }

    /// Queues `bytes` for COM1's receiver, as if they arrived on the serial
    /// line. The UART takes them as it has room (see `devices::serial`), so
    /// nothing is lost however slowly the guest reads: this is the one way
    /// host text reaches the guest's serial console (the terminal and
    /// scripts with `--console-input serial`, the `--serial unix:` socket).
    pub fn serial_input(&self, bytes: &[u8]) {
        let mut state = self.shared.lock();
        if state.run.stopped() {
            return;
        }
        let change = state.platform.serial_input(bytes);
        self.shared.after_host_event(&state, change);
    }

    /// Waits until the guest has read every queued keyboard and COM1 byte.
    /// Returns false on timeout, or when the VM stops first.
    pub fn wait_input_drained(&self, timeout: Duration) -> bool {
        let deadline = Instant::now().checked_add(timeout);
        let mut state = self.shared.lock();
        loop {
            if !state.platform.keyboard_input_pending() && !state.platform.serial_input_pending() {
                return true;
            }
            if state.run.stopped() {
                return false;
            }
            let remaining = match deadline {
                Some(deadline) => match deadline.checked_duration_since(Instant::now()) {
                    Some(remaining) if !remaining.is_zero() => remaining,
                    _ => return false,
                },
                None => Duration::from_secs(3600),
            };
            state = self
                .shared
                .events
                .wait_timeout(state, remaining)
                .unwrap_or_else(|poison| poison.into_inner())
                .0;
        }
    }

    /// The guest's serial output (COM1), waitable.
    pub fn serial_output(&self) -> SerialTap {
        self.shared.tap.clone()
    }

    /// Stops running guest code (QMP `stop`): the vCPU parks outside
    /// `KVM_RUN`, timer ticks are discarded until [`VmHandle::resume`].
    /// Subscribers get [`MachineEvent::Stop`] if the VM was running.
    pub fn pause(&self) {
        let mut state = self.shared.lock();
        if !state.run.paused {
            state.run.paused = true;
            self.shared.wake_vcpu(&state.run);
            self.shared.wake_timer();
            // Under the machine lock, so concurrent pause/resume calls reach
            // subscribers in the order they took effect; publishing never
            // blocks (vm/events.rs).
            self.shared.machine_events.publish(MachineEvent::Stop);
        }
    }

    /// Resumes a paused VM (QMP `cont`); subscribers get
    /// [`MachineEvent::Resume`] if it was paused.
    pub fn resume(&self) {
        let mut state = self.shared.lock();
        if state.run.paused {
            state.run.paused = false;
            self.shared.vcpu_wake.notify_all();
            self.shared.wake_timer();
            // Under the lock for ordering, as in `pause`.
            self.shared.machine_events.publish(MachineEvent::Resume);
        }
    }

    /// PIT channel-0 ticks that happened but the guest has not been given
    /// yet. They are delivered one at a time as the guest acknowledges IRQ0,
    /// so after a stretch with interrupts off (a busy boot) a tick-counting
    /// guest clock runs behind by this many ticks until it has caught up.
    pub fn timer_ticks_owed(&self) -> u64 {
        self.shared.lock().platform.timer_ticks_owed()
    }

    /// KVM's own statistics of the VM or of its vCPU as they are now (all
    /// of them, or those named in `names`), in the kernel's order; `None`
    /// when the host kernel has no binary statistics (before Linux 5.14) or
    /// reading them failed. Reads without the machine lock, so it never
    /// waits for the vCPU.
    pub fn kvm_statistics(
        &self,
        target: super::StatsTarget,
        names: Option<&[String]>,
    ) -> Option<Vec<super::KvmStatistic>> {
        let files = &self.shared.kvm_stats;
        let file = match target {
            super::StatsTarget::Vm => files.vm.as_ref(),
            super::StatsTarget::Vcpu => files.vcpu.as_ref(),
        }?;
        file.statistics(names)
            .map_err(|error| log::debug!("cannot read KVM's statistics: {error}"))
            .ok()
    }

    /// Whether the VM is paused.
    pub fn is_paused(&self) -> bool {
        self.shared.lock().run.paused
    }

    /// Resets the machine (QMP `system_reset`), as a PC's reset button:
    /// devices back to power-on (keys queued for the guest are kept), the
    /// kernel reloaded and its boot data rewritten, the vCPU back at the PVH
    /// entry. The vCPU thread does it, outside `KVM_RUN`; this waits until it
    /// has (or the VM stopped, or it does not run yet: then the reset happens
    /// when it starts). A paused VM is reset and stays paused.
    pub fn reset(&self) {
        let mut state = self.shared.lock();
        if state.run.stopped() {
            return;
        }
        // A reset already requested and not yet done covers this one too.
        let target = state.run.resets_done + 1;
        state.run.reset_request.get_or_insert(ResetCause::Host);
        self.shared.wake_vcpu(&state.run);
        self.shared.vcpu_wake.notify_all();
        while state.run.resets_done < target
            && !state.run.stopped()
            && state.run.vcpu_thread.is_some()
        {
            state = self
                .shared
                .events
                .wait(state)
                .unwrap_or_else(|poison| poison.into_inner());
        }
    }

    /// Subscribes to the machine's events: every reset (guest- or
    /// host-requested, once done and before the guest runs again), pause,
    /// resume, and last the stop ([`MachineEvent::Shutdown`], when
    /// [`super::Vm::run`] returns), after which the channel closes. Any
    /// number of subscribers; events are never held back for a slow one (the
    /// channel is unbounded), and dropping the receiver unsubscribes.
    pub fn subscribe(&self) -> Receiver<MachineEvent> {
        self.shared.machine_events.subscribe()
    }

    /// Stops the VM: [`super::Vm::run`] returns promptly with `status`
    /// (unless the VM already stopped for another reason).
    pub fn shutdown(&self, status: i32) {
        self.shutdown_by(status, HostStop::Other);
    }

    /// [`Self::shutdown`] saying who asked ([`ExitReason::Host`] carries it).
    pub fn shutdown_by(&self, status: i32, by: HostStop) {
        let mut state = self.shared.lock();
        self.shared.request_exit(
            &mut state,
            VmExit {
                status,
                reason: ExitReason::Host(by),
            },
        );
    }

    /// How the VM stopped, if it has.
    pub fn exit_state(&self) -> Option<VmExit> {
        self.shared.lock().run.exit.clone()
    }

    /// Waits until the VM stops.
    pub fn wait_exit(&self) -> VmExit {
        loop {
            if let Some(exit) = self.wait_exit_timeout(Duration::from_secs(3600)) {
                return exit;
            }
        }
    }

    /// Waits until the VM stops, at most `timeout`.
    pub fn wait_exit_timeout(&self, timeout: Duration) -> Option<VmExit> {
        let state = self.shared.lock();
        let (state, _) = self
            .shared
            .events
            .wait_timeout_while(state, timeout, |state| !state.run.stopped())
            .unwrap_or_else(|poison| poison.into_inner());
        state.run.exit.clone()
    }
}
