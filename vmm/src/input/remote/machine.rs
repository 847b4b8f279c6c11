//! [`RemoteMachine`]: a machine behind QMP (QEMU, or this VMM's `--qmp`) as
//! the script runner's [`MachineControl`], so `vmm keys` runs scripts with
//! the same runner, grammar and messages as `vmm --keys`.
//!
//! Keys: the runner hands over one character or combination at a time (key
//! events, then a settle); they go out together as one `input-send-event`,
//! which QEMU delivers to the keyboard at once and in order. Not
//! `send-key`: QEMU plays it from a timer-driven queue (a `hold-time` delay
//! after every key event) that `input-send-event` bypasses, so `press` and
//! `release` lines overtook the letters before them (seen with QEMU 7.2 on
//! a loaded host: `type stats` then `press ret` gave `stat`, Enter, `s`),
//! and a busy host that fires the timers late lets that queue grow to its
//! 1024 entries, beyond which QEMU drops keys.
//!
//! Pacing: a QMP machine does not say when the guest has read a key, so
//! after each character or combination the runner waits the gap
//! (`--gap`): QEMU's PS/2 keyboard holds 16 bytes and drops what comes
//! beyond, so the guest must read each one before too many follow.
use std::sync::mpsc::{channel, Receiver};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use serde_json::{json, Value};

use super::client::{QmpClient, QmpClientError};
use super::stop::{StopCause, StopState};
use crate::input::keycodes::Key;
use crate::input::MachineControl;
use crate::vm::{MachineEvent, SerialTap};

/// The default pause after each character or combination (`--gap`).
/// Measured with the guest in QEMU 7.2 `pc` + TCG: see the README
/// ("Scripts against QEMU or any QMP machine", "Pacing").
pub const DEFAULT_GAP: Duration = Duration::from_millis(2);

/// A machine driven through a QMP connection, its serial output in a tap.
pub struct RemoteMachine {
    qmp: QmpClient,
    tap: SerialTap,
    stop: Arc<StopState>,
    gap: Duration,
    /// Key events of the character or combination being typed.
    pending: Mutex<Vec<(Key, bool)>>,
}

impl RemoteMachine {
    /// The machine behind `qmp`; `tap` holds its serial output, `stop`
    /// gathers why it stopped; `gap` is the pause after each character or
    /// combination.
    pub fn new(qmp: QmpClient, tap: SerialTap, stop: Arc<StopState>, gap: Duration) -> Self {
        RemoteMachine {
            qmp,
            tap,
            stop,
            gap,
            pending: Mutex::new(Vec::new()),
        }
    }

    /// Sends the pending key events as one `input-send-event`; false if
    /// the machine went away or the command failed (recorded as the stop
    /// cause).
    fn flush(&self) -> bool {
        let events = std::mem::take(
            &mut *self
                .pending
                .lock()
                .unwrap_or_else(|poison| poison.into_inner()),
        );
        if events.is_empty() {
            return true;
        }
        let events: Vec<Value> = events
            .iter()
            .map(|(k, down)| {
                json!({"type": "key", "data": {"down": down,
                       "key": {"type": "qcode", "data": k.name()}}})
            })
            .collect();
        match self
            .qmp
            .execute("input-send-event", Some(json!({ "events": events })))
        {
            Ok(_) => true,
            // The machine went away (it may have exited in answer to the
            // previous key): that is a stop, reported as such.
            Err(QmpClientError::Closed(_)) => {
                self.stop.stop(StopCause::QmpClosed);
                false
            }
            Err(error) => {
                self.stop.stop(StopCause::Failed(error.to_string()));
                self.tap.close();
                false
            }
        }
    }

    /// Runs a QMP command for the control methods the runner does not use;
    /// a failure stops the run like a failed key.
    fn control(&self, command: &str) {
        if let Err(error) = self.qmp.execute(command, None) {
            self.stop.stop(StopCause::Failed(error.to_string()));
        }
    }
}

impl MachineControl for RemoteMachine {
    fn key_event(&self, key: Key, down: bool) {
        self.pending
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .push((key, down));
    }

    /// Sends the character or combination, then pauses for the gap.
    fn wait_input_drained(&self, _timeout: Duration) -> bool {
        if self.stop.is_stopped() {
            self.pending
                .lock()
                .unwrap_or_else(|poison| poison.into_inner())
                .clear();
            return false;
        }
        if !self.flush() {
            return false;
        }
        thread::sleep(self.gap);
        !self.stop.is_stopped()
    }

    fn serial_mark(&self) -> usize {
        self.tap.mark()
    }

    fn serial_wait_for(
        &self,
        from: usize,
        needle: &[u8],
        timeout: Duration,
    ) -> Result<usize, Vec<u8>> {
        self.tap.wait_for(from, needle, timeout)
    }

    fn pause(&self) {
        self.control("stop");
    }

    fn resume(&self) {
        self.control("cont");
    }

    fn is_paused(&self) -> bool {
        self.qmp
            .execute("query-status", None)
            .is_ok_and(|status| status["running"] == false)
    }

    fn can_reset(&self) -> bool {
        true
    }

    fn reset(&self) {
        self.control("system_reset");
    }

    fn shutdown(&self, _status: i32) {
        self.control("quit");
    }

    fn is_stopped(&self) -> bool {
        self.stop.is_stopped()
    }

    fn subscribe(&self) -> Receiver<MachineEvent> {
        // The script runner does not watch machine events (the QMP reader
        // turns `SHUTDOWN` into the stop); the subscription ends at once.
        channel().1
    }
}
