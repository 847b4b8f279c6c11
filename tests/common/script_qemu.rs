//! Runs a keystroke script (vmm's own parser and runner) against the guest in
//! QEMU, typing through QEMU's QMP socket (`input-send-event` with qcode
//! names), so the same script drives both machines: QEMU implements the
//! front ends' [`MachineControl`] here.
use std::sync::mpsc::{channel, Receiver};
use std::sync::Mutex;
use std::thread;
use std::time::Duration;

use serde_json::json;
use vmm::input::keycodes::Key;
use vmm::input::MachineControl;
use vmm::vm::MachineEvent;

use crate::common::qmp::Qmp;
use crate::common::Output;

/// Pause after each character or combination typed into QEMU. QEMU has no
/// "guest read the keyboard" signal and its PS/2 queue holds only 16 bytes,
/// so the driver paces by time; at most four bytes are queued per step.
pub const QEMU_KEY_GAP: Duration = Duration::from_millis(4);

/// The guest in QEMU as a machine for the script runner.
pub struct QemuTarget<'a> {
    /// QEMU's QMP connection (one command at a time).
    qmp: Mutex<Qmp>,
    /// QEMU's serial output (stdout).
    serial: &'a Output,
}

impl<'a> QemuTarget<'a> {
    /// QEMU driven through `qmp`, its serial output in `serial`.
    pub fn new(qmp: Qmp, serial: &'a Output) -> Self {
        QemuTarget {
            qmp: Mutex::new(qmp),
            serial,
        }
    }

    /// Runs a QMP command; a failure panics (the test reports it).
    fn execute(&self, command: &str) {
        let mut qmp = self.qmp.lock().unwrap();
        if let Err(error) = qmp.execute(command, None) {
            panic!("QEMU {command}: {error}");
        }
    }
}

impl MachineControl for QemuTarget<'_> {
    fn key_event(&self, key: Key, down: bool) {
        // Keys for a machine that has exited are moot (the guest's last
        // Enter ran `exit`, and QEMU quit before the key's release).
        if self.serial.wait_closed(Duration::ZERO) {
            return;
        }
        let event = json!({"type": "key", "data": {"down": down, "key": {"type": "qcode", "data": key.name()}}});
        let arguments = Some(json!({ "events": [event] }));
        let mut qmp = self.qmp.lock().unwrap();
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            qmp.execute("input-send-event", arguments)
        }));
        match result {
            Ok(Ok(_)) => {}
            Ok(Err(error)) => panic!("QEMU input-send-event {key}: {error}"),
            // The connection broke: fine only if QEMU exited.
            Err(_) if self.serial.wait_closed(Duration::from_secs(5)) => {}
            Err(_) => panic!("QMP connection to QEMU broke at {key}"),
        }
    }

    fn wait_input_drained(&self, _timeout: Duration) -> bool {
        thread::sleep(QEMU_KEY_GAP);
        true
    }

    fn serial_mark(&self) -> usize {
        self.serial.len()
    }

    fn serial_wait_for(
        &self,
        from: usize,
        needle: &[u8],
        timeout: Duration,
    ) -> Result<usize, Vec<u8>> {
        self.serial.wait_for(from, needle, timeout)
    }

    fn pause(&self) {
        self.execute("stop");
    }

    fn resume(&self) {
        self.execute("cont");
    }

    fn is_paused(&self) -> bool {
        let status = self.qmp.lock().unwrap().execute("query-status", None);
        status.is_ok_and(|status| status["running"] == false)
    }

    fn can_reset(&self) -> bool {
        true
    }

    fn reset(&self) {
        self.execute("system_reset");
    }

    fn shutdown(&self, _status: i32) {
        // QEMU's exit status is the guest's; `quit` ends it with 0.
        self.execute("quit");
    }

    fn is_stopped(&self) -> bool {
        self.serial.wait_closed(Duration::ZERO)
    }

    fn subscribe(&self) -> Receiver<MachineEvent> {
        // The script runner does not watch events; QEMU's are not relayed
        // here, so the subscription ends at once.
        channel().1
    }
}
