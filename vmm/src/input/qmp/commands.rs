//! The commands this server knows, as typed values, and their arguments as
//! `Deserialize` types decoded by `args.rs` (QEMU 7.2's error texts).
use std::fmt;
use std::time::Duration;

use serde::de::{self, IgnoredAny, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

use super::args::{decode_arguments, ArgError};
use super::messages::{ErrorClass, QmpError};
use super::{DEFAULT_HOLD_TIME, MAX_HOLD_TIME};
use crate::input::keycodes::{Key, KeyNameError};
use crate::vm::StatsTarget;

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
    "human-monitor-command",
    "query-stats",
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
    /// `human-monitor-command`: one HMP command line (see `hmp.rs`).
    HumanMonitor {
        /// `command-line`.
        command_line: String,
    },
    /// `query-stats`: KVM's statistics of the VM or the vCPU.
    QueryStats {
        /// `target`.
        target: StatsTarget,
        /// `providers`: one entry per `kvm` request, with its `names` (all
        /// statistics when absent); absent means one request for all.
        requests: Option<Vec<Option<Vec<String>>>>,
        /// `vcpus` (target `vcpu` only): the QOM paths asked for.
        vcpus: Option<Vec<String>>,
    },
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
                let arguments: Capabilities = decode_arguments(args)?;
                if let Some(capability) = arguments.enable.as_ref().and_then(|list| list.first()) {
                    let capability = capability.as_str().unwrap_or("?");
                    return Err(QmpError::generic(format!(
                        "Capability '{capability}' not available"
                    )));
                }
                Command::QmpCapabilities
            }
            "query-commands" => no_arguments(args, Command::QueryCommands)?,
            "query-version" => no_arguments(args, Command::QueryVersion)?,
            "query-status" => no_arguments(args, Command::QueryStatus)?,
            "send-key" => {
                let arguments: SendKey = decode_arguments(args)?;
                Command::SendKey {
                    keys: arguments.keys.0,
                    hold: arguments.hold_time.map_or(DEFAULT_HOLD_TIME, |h| h.0),
                }
            }
            "input-send-event" => {
                // The device is checked before the events, as QEMU's handler
                // rejects it before looking at them.
                let target: InputTarget = decode_arguments(args)?;
                if let Some(device) = target.device {
                    return Err(QmpError {
                        class: ErrorClass::DeviceNotFound,
                        desc: format!("Device '{device}' not found"),
                    });
                }
                let arguments: InputSendEvent = decode_arguments(args)?;
                let events = arguments
                    .events
                    .into_iter()
                    .map(|event| (event.data.key.0, event.data.down))
                    .collect();
                Command::InputSendEvent { events }
            }
            "stop" => no_arguments(args, Command::Stop)?,
            "cont" => no_arguments(args, Command::Cont)?,
            "system_reset" if can_reset => no_arguments(args, Command::SystemReset)?,
            "quit" => no_arguments(args, Command::Quit)?,
            "human-monitor-command" => {
                let arguments: HumanMonitor = decode_arguments(args)?;
                // One vCPU: index 0 is the only CPU (QEMU's error otherwise).
                if arguments.cpu_index.is_some_and(|index| index != 0) {
                    return Err(QmpError::generic(
                        "Parameter 'cpu-index' expects a CPU number",
                    ));
                }
                Command::HumanMonitor {
                    command_line: arguments.command_line,
                }
            }
            "query-stats" => {
                let arguments: QueryStats = decode_arguments(args)?;
                let target = match arguments.target {
                    TargetName::Vm => StatsTarget::Vm,
                    TargetName::Vcpu => StatsTarget::Vcpu,
                };
                // `StatsFilter` is a union on `target`: only `vcpu` has
                // `vcpus`.
                if target == StatsTarget::Vm && arguments.vcpus.is_some() {
                    return Err(QmpError::generic("Parameter 'vcpus' is unexpected"));
                }
                Command::QueryStats {
                    target,
                    requests: arguments
                        .providers
                        .map(|list| list.into_iter().map(|request| request.names).collect()),
                    vcpus: arguments.vcpus,
                }
            }
            _ => {
                return Err(QmpError::not_found(format!(
                    "The command {name} has not been found"
                )))
            }
        };
        Ok(command)
    }
}

impl From<ArgError> for QmpError {
    fn from(error: ArgError) -> Self {
        QmpError::generic(error.to_string())
    }
}

/// Commands without arguments.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NoArguments {}

fn no_arguments(args: &Map<String, Value>, command: Command) -> Result<Command, QmpError> {
    let NoArguments {} = decode_arguments(args)?;
    Ok(command)
}

/// `qmp_capabilities`: `enable` lists capabilities (QMPCapability); this
/// server has none, so any entry is refused.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Capabilities {
    enable: Option<Vec<Value>>,
}

/// `human-monitor-command`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HumanMonitor {
    #[serde(rename = "command-line")]
    command_line: String,
    #[serde(rename = "cpu-index")]
    cpu_index: Option<i64>,
}

/// `query-stats` (QEMU 7.2's `StatsFilter`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct QueryStats {
    target: TargetName,
    providers: Option<Vec<StatsRequest>>,
    vcpus: Option<Vec<String>>,
}

/// `StatsTarget`.
#[derive(Deserialize)]
enum TargetName {
    #[serde(rename = "vm")]
    Vm,
    #[serde(rename = "vcpu")]
    Vcpu,
}

/// `StatsRequest`: a provider and the statistics wanted from it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StatsRequest {
    #[serde(rename = "provider")]
    _provider: StatsProvider,
    names: Option<Vec<String>>,
}

/// `StatsProvider`: KVM is the only one (as in QEMU 7.2).
#[derive(Deserialize)]
enum StatsProvider {
    #[serde(rename = "kvm")]
    Kvm,
}

/// `send-key`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SendKey {
    keys: KeyList,
    #[serde(rename = "hold-time")]
    hold_time: Option<HoldTime>,
}

/// `input-send-event`'s target, decoded first.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InputTarget {
    device: Option<String>,
    #[serde(rename = "head")]
    _head: Option<IgnoredAny>,
    #[serde(rename = "events")]
    _events: Option<IgnoredAny>,
}

/// `input-send-event` (without a device).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InputSendEvent {
    #[serde(rename = "device")]
    _device: Option<IgnoredAny>,
    #[serde(rename = "head")]
    _head: Option<i64>,
    events: Vec<InputEvent>,
}

/// An `InputEvent`; only `key` events are accepted. Other members are
/// ignored, as before.
#[derive(Deserialize)]
struct InputEvent {
    #[serde(rename = "type")]
    _kind: EventKind,
    data: KeyEvent,
}

/// `InputKeyEvent`.
#[derive(Deserialize)]
struct KeyEvent {
    down: bool,
    key: KeyValueKey,
}

/// The type of an `InputEvent`: `key`, or a pointer event this machine
/// cannot take.
struct EventKind;

impl<'de> Deserialize<'de> for EventKind {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let kind = String::deserialize(deserializer)?;
        match kind.as_str() {
            "key" => Ok(EventKind),
            "btn" | "rel" | "abs" | "mtt" => Err(de::Error::custom(format!(
                "Input event type '{kind}' is not supported: this machine has only a keyboard"
            ))),
            other => Err(de::Error::invalid_value(
                de::Unexpected::Str(other),
                &"an InputEventKind",
            )),
        }
    }
}

/// A `KeyValue`: `{"type": "qcode", "data": NAME}` or
/// `{"type": "number", "data": N}`.
#[derive(Deserialize)]
#[serde(tag = "type", content = "data", deny_unknown_fields)]
enum KeyValue {
    #[serde(rename = "qcode")]
    Qcode(QKeyCode),
    #[serde(rename = "number")]
    Number(i64),
}

/// A QKeyCode name with a PS/2 set-2 code.
struct QKeyCode(Key);

impl<'de> Deserialize<'de> for QKeyCode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        match Key::from_name(&name) {
            Ok(key) => Ok(QKeyCode(key)),
            Err(KeyNameError::Unknown(_)) => Err(de::Error::invalid_value(
                de::Unexpected::Str(&name),
                &"a QKeyCode",
            )),
            Err(unsupported) => Err(de::Error::custom(unsupported)),
        }
    }
}

impl KeyValue {
    fn key<E: de::Error>(self) -> Result<Key, E> {
        match self {
            KeyValue::Qcode(QKeyCode(key)) => Ok(key),
            KeyValue::Number(number) => Key::from_qnum(number)
                .ok_or_else(|| E::custom(format!("Key number {number:#x} has no PS/2 scan code"))),
        }
    }
}

/// A `KeyValue` turned into a key.
struct KeyValueKey(Key);

impl<'de> Deserialize<'de> for KeyValueKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        KeyValue::deserialize(deserializer)?.key().map(KeyValueKey)
    }
}

/// `send-key`'s keys, none given twice (checked key by key, in order).
struct KeyList(Vec<Key>);

impl<'de> Deserialize<'de> for KeyList {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ListVisitor;
        impl<'de> Visitor<'de> for ListVisitor {
            type Value = KeyList;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an array of KeyValue")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<KeyList, A::Error> {
                let mut keys: Vec<Key> = Vec::with_capacity(seq.size_hint().unwrap_or(0));
                while let Some(KeyValueKey(key)) = seq.next_element()? {
                    if keys.iter().any(|k| k.set2() == key.set2()) {
                        return Err(de::Error::custom(format!(
                            "Key '{}' is given twice",
                            key.name()
                        )));
                    }
                    keys.push(key);
                }
                Ok(KeyList(keys))
            }
        }
        deserializer.deserialize_seq(ListVisitor)
    }
}

/// `send-key`'s `hold-time` in milliseconds, 0 to [`MAX_HOLD_TIME`].
struct HoldTime(Duration);

impl<'de> Deserialize<'de> for HoldTime {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Value::deserialize(deserializer)?
            .as_u64()
            .map(Duration::from_millis)
            .filter(|hold| *hold <= MAX_HOLD_TIME)
            .map(HoldTime)
            .ok_or_else(|| {
                de::Error::custom(format!(
                    "Parameter 'hold-time' expects an integer from 0 to {}",
                    MAX_HOLD_TIME.as_millis()
                ))
            })
    }
}
