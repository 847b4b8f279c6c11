//! The server's messages on the wire: the greeting, events, error answers.
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;
use serde_json::{json, Value};

/// The greeting QMP servers send on connection.
pub fn greeting() -> Value {
    json!({"QMP": {"version": version(), "capabilities": []}})
}

/// `query-version`'s answer, also in the greeting: this crate's version in
/// QEMU's shape.
pub(super) fn version() -> Value {
    let number = |s: &str| s.parse::<u64>().unwrap_or(0);
    let mut parts = env!("CARGO_PKG_VERSION").split(['.', '-']);
    json!({
        "qemu": {
            "major": number(parts.next().unwrap_or("0")),
            "minor": number(parts.next().unwrap_or("0")),
            "micro": number(parts.next().unwrap_or("0")),
        },
        "package": concat!("asyncos-vmm ", env!("CARGO_PKG_VERSION")),
    })
}

/// A QMP event message with the current time.
pub fn event(name: &str, data: Option<Value>) -> Value {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let mut message = json!({
        "event": name,
        "timestamp": {"seconds": now.as_secs(), "microseconds": now.subsec_micros()},
    });
    if let Some(data) = data {
        message["data"] = data;
    }
    message
}

/// The `SHUTDOWN` event: `guest` tells whether the guest asked for it;
/// `reason` is QEMU's `ShutdownCause` name (`guest-shutdown`, `host-qmp-quit`,
/// `host-signal`, `host-ui`, `guest-panic`, `guest-reset`).
pub fn shutdown_event(guest: bool, reason: &str) -> Value {
    event("SHUTDOWN", Some(json!({"guest": guest, "reason": reason})))
}

/// The `RESET` event; `reason` is QEMU's `ShutdownCause` name
/// (`guest-reset`, `host-qmp-system-reset`).
pub fn reset_event(guest: bool, reason: &str) -> Value {
    event("RESET", Some(json!({"guest": guest, "reason": reason})))
}

/// QEMU's error classes that this server answers with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum ErrorClass {
    /// Malformed input and bad arguments.
    GenericError,
    /// Unknown commands, and commands before capabilities negotiation.
    CommandNotFound,
    /// `input-send-event` naming a device.
    DeviceNotFound,
}

/// A command's failure: the `error` answer's class and text.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{desc}")]
pub struct QmpError {
    /// QEMU's error class.
    pub class: ErrorClass,
    /// The human-readable text, QEMU's where QEMU has one.
    pub desc: String,
}

impl QmpError {
    /// A `GenericError`.
    pub fn generic(desc: impl Into<String>) -> Self {
        Self {
            class: ErrorClass::GenericError,
            desc: desc.into(),
        }
    }

    /// A `CommandNotFound`.
    pub fn not_found(desc: impl Into<String>) -> Self {
        Self {
            class: ErrorClass::CommandNotFound,
            desc: desc.into(),
        }
    }

    /// The `error` answer.
    pub fn to_message(&self) -> Value {
        json!({"error": {"class": self.class, "desc": self.desc}})
    }
}
