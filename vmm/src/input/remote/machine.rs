//! [`RemoteMachine`]: a machine behind QMP (QEMU, or this VMM's `--qmp`) as
//! the script runner's [`MachineControl`], so `vmm keys` runs scripts with
//! the same runner, grammar and messages as `vmm --keys`.
//!
//! Keys: the runner hands over one character or combination at a time (key
//! events, then a settle). A combination (keys pressed in order, released
//! in reverse) goes out as one `send-key` with `hold-time` [`HOLD`]; any
//! other group (`press`, `release` lines) as one `input-send-event`.
//!
//! Pacing: a QMP machine does not say when the guest has read a key, so
//! after each group the runner waits [`RemoteMachine`]'s gap, and at least
//! the time QEMU takes to play the group: QEMU's `send-key` queues a delay
//! of `hold-time` after every key event, and its input queue drops events
//! beyond 1024 entries, so sending faster than it plays would lose keys on
//! long lines.
use std::sync::mpsc::{channel, Receiver};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use serde_json::{json, Value};

use super::client::QmpClient;
use super::stop::{StopCause, StopState};
use crate::input::keycodes::Key;
use crate::input::MachineControl;
use crate::vm::{MachineEvent, SerialTap};

/// `send-key`'s `hold-time`: the shortest QEMU honours (0 means its
/// default, 10 ms).
pub const HOLD: Duration = Duration::from_millis(1);

/// The default pause after each character or combination (`--gap`).
/// Measured with the guest in QEMU 7.2 `pc` + TCG: see the README
/// ("Scripts against QEMU").
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

    /// Sends the pending key events as one command: how long the machine
    /// takes to play them, or `None` if the command failed (recorded as the
    /// stop cause).
    fn flush(&self) -> Option<Duration> {
        let events = std::mem::take(
            &mut *self
                .pending
                .lock()
                .unwrap_or_else(|poison| poison.into_inner()),
        );
        if events.is_empty() {
            return Some(Duration::ZERO);
        }
        let (command, arguments) = match combination(&events) {
            Some(keys) => {
                let keys: Vec<Value> = keys
                    .iter()
                    .map(|k| json!({"type": "qcode", "data": k.name()}))
                    .collect();
                (
                    "send-key",
                    json!({"keys": keys, "hold-time": HOLD.as_millis() as u64}),
                )
            }
            None => {
                let events: Vec<Value> = events
                    .iter()
                    .map(|(k, down)| {
                        json!({"type": "key", "data": {"down": down,
                               "key": {"type": "qcode", "data": k.name()}}})
                    })
                    .collect();
                ("input-send-event", json!({ "events": events }))
            }
        };
        match self.qmp.execute(command, Some(arguments)) {
            // QEMU plays a `send-key` with a `hold-time` delay after every
            // event; `input-send-event` at once.
            Ok(_) if command == "send-key" => Some(HOLD * events.len() as u32),
            Ok(_) => Some(Duration::ZERO),
            // The machine went away (it may have exited in answer to the
            // previous key): that is a stop, reported as such.
            Err(super::client::QmpClientError::Closed(_)) => {
                self.stop.stop(StopCause::QmpClosed);
                None
            }
            Err(error) => {
                self.stop.stop(StopCause::Failed(error.to_string()));
                self.tap.close();
                None
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

/// The keys of `events` if they are one combination: each key pressed in
/// order, then released in reverse order.
pub(super) fn combination(events: &[(Key, bool)]) -> Option<Vec<Key>> {
    let half = events.len() / 2;
    if events.len() % 2 != 0 || half == 0 {
        return None;
    }
    let (downs, ups) = events.split_at(half);
    let matches = downs.iter().all(|(_, down)| *down)
        && ups.iter().all(|(_, down)| !*down)
        && downs
            .iter()
            .zip(ups.iter().rev())
            .all(|((a, _), (b, _))| a == b);
    matches.then(|| downs.iter().map(|(k, _)| *k).collect())
}

impl MachineControl for RemoteMachine {
    fn key_event(&self, key: Key, down: bool) {
        self.pending
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .push((key, down));
    }

    /// Sends the character or combination, then pauses: the gap, or the
    /// time QEMU takes to play it if longer.
    fn wait_input_drained(&self, _timeout: Duration) -> bool {
        if self.stop.is_stopped() {
            self.pending
                .lock()
                .unwrap_or_else(|poison| poison.into_inner())
                .clear();
            return false;
        }
        let Some(playing) = self.flush() else {
            return false;
        };
        thread::sleep(self.gap.max(playing));
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
