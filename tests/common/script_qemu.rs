//! Runs a keystroke script (vmm's own parser and runner) against the guest in
//! QEMU, typing through QEMU's QMP socket (`input-send-event` with qcode
//! names), so the same script drives both machines.
use std::thread;
use std::time::Duration;

use serde_json::json;
use vmm::input::keycodes::Key;
use vmm::input::script::{ExpectError, ScriptTarget};

use crate::common::qmp::Qmp;
use crate::common::Output;

/// Pause after each character or combination typed into QEMU. QEMU has no
/// "guest read the keyboard" signal and its PS/2 queue holds only 16 bytes,
/// so the driver paces by time; at most four bytes are queued per step.
pub const QEMU_KEY_GAP: Duration = Duration::from_millis(4);

/// The guest in QEMU as a script target.
pub struct QemuTarget<'a> {
    /// QEMU's QMP connection.
    pub qmp: Qmp,
    /// QEMU's serial output (stdout).
    pub serial: &'a Output,
}

impl ScriptTarget for QemuTarget<'_> {
    fn key(&mut self, key: Key, down: bool) -> Result<(), String> {
        // Keys for a machine that has exited are moot (the guest's last
        // Enter ran `exit`, and QEMU quit before the key's release).
        if self.serial.wait_closed(Duration::ZERO) {
            return Ok(());
        }
        let event = json!({"type": "key", "data": {"down": down, "key": {"type": "qcode", "data": key.name()}}});
        let arguments = Some(json!({ "events": [event] }));
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.qmp.execute("input-send-event", arguments)
        }));
        match result {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(error)) => Err(format!("QEMU input-send-event {key}: {error}")),
            // The connection broke: fine only if QEMU exited.
            Err(_) if self.serial.wait_closed(Duration::from_secs(5)) => Ok(()),
            Err(_) => Err(format!("QMP connection to QEMU broke at {key}")),
        }
    }

    fn settle(&mut self) -> Result<(), String> {
        thread::sleep(QEMU_KEY_GAP);
        Ok(())
    }

    fn wait(&mut self, duration: Duration) -> Result<(), String> {
        thread::sleep(duration);
        Ok(())
    }

    fn expect(&mut self, text: &str, timeout: Duration) -> Result<(), ExpectError> {
        self.serial
            .try_expect(text, timeout)
            .map_err(ExpectError::Timeout)
    }
}
