//! [`MachineControl`]: what every front end (the interactive terminal,
//! keystroke scripts, the QMP server) needs from a running machine, and its
//! implementation for the VMM's [`VmHandle`].
//!
//! One trait for all of them, so a front end depends on the machine only
//! through it and the tests drive the front ends with mock machines (and the
//! script runner drives QEMU in `tests/input_scripts.rs`).
use std::sync::mpsc::Receiver;
use std::time::Duration;

use super::keycodes::Key;
use crate::vm::{HostStop, KvmStatistic, MachineEvent, StatsTarget, VmHandle};

/// A running machine as the front ends see it.
///
/// Every method may be called from any thread at any time, also after the
/// machine stopped (then it does nothing or returns at once).
pub trait MachineControl: Send + Sync {
    /// Queues a key event on the machine's keyboard: `down` tells press from
    /// release. Queued keys are delivered in order; none is lost.
    fn key_event(&self, key: Key, down: bool);

    /// Queues `bytes` for the machine's serial console (COM1's receiver);
    /// they are delivered in order, none lost. Returns false if this machine
    /// offers no way to type into its serial console (then nothing is sent).
    fn serial_input(&self, bytes: &[u8]) -> bool {
        let _ = bytes;
        false
    }

    /// Waits until the guest has read every queued keyboard (and serial
    /// input) byte; false on timeout or when the machine stopped first.
    fn wait_input_drained(&self, timeout: Duration) -> bool;

    /// Absolute offset just past the serial output received so far.
    fn serial_mark(&self) -> usize;

    /// Waits for `needle` in the serial output at or after offset `from`:
    /// the offset just past the match, or the output received (from `from`
    /// on, possibly trimmed at the front) on timeout or when the machine
    /// stopped.
    fn serial_wait_for(
        &self,
        from: usize,
        needle: &[u8],
        timeout: Duration,
    ) -> Result<usize, Vec<u8>>;

    /// Pauses the vCPU (QMP `stop`); nothing happens if it is paused.
    fn pause(&self);

    /// Resumes the vCPU (QMP `cont`); nothing happens if it runs.
    fn resume(&self);

    /// Whether the vCPU is paused.
    fn is_paused(&self) -> bool;

    /// Whether [`MachineControl::reset`] is available (QMP lists and accepts
    /// `system_reset` only then).
    fn can_reset(&self) -> bool;

    /// Resets the machine as a PC's reset button and returns once it is done
    /// (or the machine stopped). Only called when
    /// [`MachineControl::can_reset`] says so.
    fn reset(&self);

    /// Stops the machine; the VMM exits with `status`.
    fn shutdown(&self, status: i32);

    /// [`MachineControl::shutdown`] saying who asked, so the VMM can name
    /// it (by default the same as `shutdown`).
    fn shutdown_by(&self, status: i32, by: HostStop) {
        let _ = by;
        self.shutdown(status);
    }

    /// Whether the machine has stopped (guest exit, crash, timeout, quit).
    fn is_stopped(&self) -> bool;

    /// KVM's statistics of the machine's VM or vCPU (QMP `query-stats`),
    /// those named in `names` or all; `None` when the machine has none.
    fn kvm_statistics(
        &self,
        target: StatsTarget,
        names: Option<&[String]>,
    ) -> Option<Vec<KvmStatistic>> {
        let _ = (target, names);
        None
    }

    /// A new subscription to the machine's events (resets, pause, resume and
    /// last the stop, see [`MachineEvent`]); dropping the receiver ends it.
    fn subscribe(&self) -> Receiver<MachineEvent>;
}

impl MachineControl for VmHandle {
    fn key_event(&self, key: Key, down: bool) {
        VmHandle::key_event(self, key.set2(), down);
    }

    fn serial_input(&self, bytes: &[u8]) -> bool {
        VmHandle::serial_input(self, bytes);
        true
    }

    fn wait_input_drained(&self, timeout: Duration) -> bool {
        VmHandle::wait_input_drained(self, timeout)
    }

    fn serial_mark(&self) -> usize {
        self.serial_output().mark()
    }

    fn serial_wait_for(
        &self,
        from: usize,
        needle: &[u8],
        timeout: Duration,
    ) -> Result<usize, Vec<u8>> {
        self.serial_output().wait_for(from, needle, timeout)
    }

    fn pause(&self) {
        VmHandle::pause(self);
    }

    fn resume(&self) {
        VmHandle::resume(self);
    }

    fn is_paused(&self) -> bool {
        VmHandle::is_paused(self)
    }

    fn can_reset(&self) -> bool {
        true
    }

    fn reset(&self) {
        VmHandle::reset(self);
    }

    fn shutdown(&self, status: i32) {
        VmHandle::shutdown(self, status);
    }

    fn shutdown_by(&self, status: i32, by: HostStop) {
        VmHandle::shutdown_by(self, status, by);
    }

    fn is_stopped(&self) -> bool {
        self.exit_state().is_some()
    }

    fn subscribe(&self) -> Receiver<MachineEvent> {
        VmHandle::subscribe(self)
    }

    fn kvm_statistics(
        &self,
        target: StatsTarget,
        names: Option<&[String]>,
    ) -> Option<Vec<KvmStatistic>> {
        VmHandle::kvm_statistics(self, target, names)
    }
}
