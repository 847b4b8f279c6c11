//! The commands this server knows, as typed values, and their decoding from
//! a request's `arguments` with QEMU 7.2's error texts.
use std::time::Duration;

use serde_json::{Map, Value};

use super::messages::QmpError;
use super::{DEFAULT_HOLD_TIME, MAX_HOLD_TIME};
use crate::input::keycodes::{Key, KeyNameError};

/// The commands' names, in `query-commands` order.
pub(super) const COMMANDS: &[&str] = &[
    "qmp_capabilities",
    "query-commands",
    "query-version",
    "query-status",
    "send-key",
    "input-send-event",
    "stop",
    "cont",
    "system_reset",
    "quit",
];

/// A decoded command with checked arguments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// `qmp_capabilities` (no capability is available, so `enable` is empty).
    QmpCapabilities,
    /// `query-commands`.
    QueryCommands,
    /// `query-version`.
    QueryVersion,
    /// `query-status`.
    QueryStatus,
    /// `send-key`: press in order, hold, release in reverse.
    SendKey {
        /// The keys, none twice.
        keys: Vec<Key>,
        /// `hold-time`.
        hold: Duration,
    },
    /// `input-send-event` with key events only.
    InputSendEvent {
        /// (key, down) in order.
        events: Vec<(Key, bool)>,
    },
    /// `stop`.
    Stop,
    /// `cont`.
    Cont,
    /// `system_reset`.
    SystemReset,
    /// `quit`.
    Quit,
}

impl Command {
    /// Decodes command `name` with `args`. `can_reset` tells whether
    /// `system_reset` exists on this machine.
    pub fn decode(
        name: &str,
        args: &Map<String, Value>,
        can_reset: bool,
    ) -> Result<Command, QmpError> {
        let command = match name {
            "qmp_capabilities" => {
                check_args(args, &["enable"])?;
                if let Some(enable) = args.get("enable") {
                    let list = enable
                        .as_array()
                        .ok_or_else(|| bad_type("enable", "array"))?;
                    if let Some(capability) = list.first() {
                        let capability = capability.as_str().unwrap_or("?");
                        return Err(QmpError::generic(format!(
                            "Capability '{capability}' not available"
                        )));
                    }
                }
                Command::QmpCapabilities
            }
            "query-commands" => no_args(args, Command::QueryCommands)?,
            "query-version" => no_args(args, Command::QueryVersion)?,
            "query-status" => no_args(args, Command::QueryStatus)?,
            "send-key" => send_key(args)?,
            "input-send-event" => input_send_event(args)?,
            "stop" => no_args(args, Command::Stop)?,
            "cont" => no_args(args, Command::Cont)?,
            "system_reset" if can_reset => no_args(args, Command::SystemReset)?,
            "quit" => no_args(args, Command::Quit)?,
            _ => {
                return Err(QmpError::not_found(format!(
                    "The command {name} has not been found"
                )))
            }
        };
        Ok(command)
    }
}

fn no_args(args: &Map<String, Value>, command: Command) -> Result<Command, QmpError> {
    check_args(args, &[])?;
    Ok(command)
}

fn send_key(args: &Map<String, Value>) -> Result<Command, QmpError> {
    check_args(args, &["keys", "hold-time"])?;
    let keys = args.get("keys").ok_or_else(|| missing("keys"))?;
    let keys = keys.as_array().ok_or_else(|| bad_type("keys", "array"))?;
    let mut parsed: Vec<Key> = Vec::with_capacity(keys.len());
    for (i, value) in keys.iter().enumerate() {
        let key = key_value(value, &format!("keys[{i}]"))?;
        if parsed.iter().any(|k| k.set2() == key.set2()) {
            return Err(QmpError::generic(format!(
                "Key '{}' is given twice",
                key.name()
            )));
        }
        parsed.push(key);
    }
    let hold = match args.get("hold-time") {
        None => DEFAULT_HOLD_TIME,
        Some(v) => match v.as_u64() {
            Some(ms) if Duration::from_millis(ms) <= MAX_HOLD_TIME => Duration::from_millis(ms),
            _ => {
                return Err(QmpError::generic(format!(
                    "Parameter 'hold-time' expects an integer from 0 to {}",
                    MAX_HOLD_TIME.as_millis()
                )))
            }
        },
    };
    Ok(Command::SendKey { keys: parsed, hold })
}

fn input_send_event(args: &Map<String, Value>) -> Result<Command, QmpError> {
    check_args(args, &["device", "head", "events"])?;
    if let Some(device) = args.get("device") {
        let device = device
            .as_str()
            .ok_or_else(|| bad_type("device", "string"))?;
        return Err(QmpError {
            class: super::messages::ErrorClass::DeviceNotFound,
            desc: format!("Device '{device}' not found"),
        });
    }
    if let Some(head) = args.get("head") {
        head.as_i64().ok_or_else(|| bad_type("head", "integer"))?;
    }
    let events = args.get("events").ok_or_else(|| missing("events"))?;
    let events = events
        .as_array()
        .ok_or_else(|| bad_type("events", "array"))?;
    let events = events
        .iter()
        .enumerate()
        .map(|(i, event)| input_event(event, i))
        .collect::<Result<_, _>>()?;
    Ok(Command::InputSendEvent { events })
}

fn check_args(args: &Map<String, Value>, allowed: &[&str]) -> Result<(), QmpError> {
    match args.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(key) => Err(QmpError::generic(format!(
            "Parameter '{key}' is unexpected"
        ))),
        None => Ok(()),
    }
}

fn missing(name: &str) -> QmpError {
    QmpError::generic(format!("Parameter '{name}' is missing"))
}

fn bad_type(name: &str, expected: &str) -> QmpError {
    QmpError::generic(format!(
        "Invalid parameter type for '{name}', expected: {expected}"
    ))
}

/// A `KeyValue`: `{"type": "qcode", "data": NAME}` or `{"type": "number", "data": N}`.
fn key_value(value: &Value, path: &str) -> Result<Key, QmpError> {
    let object = value.as_object().ok_or_else(|| bad_type(path, "object"))?;
    let field = |name: &str| format!("{path}.{name}");
    if let Some(key) = object
        .keys()
        .find(|k| !matches!(k.as_str(), "type" | "data"))
    {
        return Err(QmpError::generic(format!(
            "Parameter '{}' is unexpected",
            field(key)
        )));
    }
    let kind = object.get("type").ok_or_else(|| missing(&field("type")))?;
    let data = object.get("data").ok_or_else(|| missing(&field("data")))?;
    match kind.as_str() {
        Some("qcode") => {
            let name = data
                .as_str()
                .ok_or_else(|| bad_type(&field("data"), "string"))?;
            Key::from_name(name).map_err(|e| match e {
                KeyNameError::Unknown(_) => QmpError::generic(format!(
                    "Parameter '{}' does not accept value '{name}'",
                    field("data")
                )),
                unsupported => QmpError::generic(unsupported.to_string()),
            })
        }
        Some("number") => {
            let number = data
                .as_i64()
                .ok_or_else(|| bad_type(&field("data"), "integer"))?;
            Key::from_qnum(number).ok_or_else(|| {
                QmpError::generic(format!("Key number {number:#x} has no PS/2 scan code"))
            })
        }
        Some(other) => Err(QmpError::generic(format!(
            "Parameter '{}' does not accept value '{other}'",
            field("type")
        ))),
        None => Err(bad_type(&field("type"), "string")),
    }
}

/// An `InputEvent` of type `key`.
fn input_event(event: &Value, index: usize) -> Result<(Key, bool), QmpError> {
    let path = format!("events[{index}]");
    let object = event.as_object().ok_or_else(|| bad_type(&path, "object"))?;
    let kind = object
        .get("type")
        .ok_or_else(|| missing(&format!("{path}.type")))?;
    match kind.as_str() {
        Some("key") => {}
        Some(other @ ("btn" | "rel" | "abs" | "mtt")) => {
            return Err(QmpError::generic(format!(
                "Input event type '{other}' is not supported: this machine has only a keyboard"
            )))
        }
        Some(other) => {
            return Err(QmpError::generic(format!(
                "Parameter '{path}.type' does not accept value '{other}'"
            )))
        }
        None => return Err(bad_type(&format!("{path}.type"), "string")),
    }
    let data = object
        .get("data")
        .ok_or_else(|| missing(&format!("{path}.data")))?;
    let data = data
        .as_object()
        .ok_or_else(|| bad_type(&format!("{path}.data"), "object"))?;
    let down = data
        .get("down")
        .ok_or_else(|| missing(&format!("{path}.data.down")))?;
    let down = down
        .as_bool()
        .ok_or_else(|| bad_type(&format!("{path}.data.down"), "boolean"))?;
    let key = data
        .get("key")
        .ok_or_else(|| missing(&format!("{path}.data.key")))?;
    Ok((key_value(key, &format!("{path}.data.key"))?, down))
}
