//! One connection's protocol as a pure state machine: bytes in, JSON
//! messages and [`Action`]s out, state changes on a [`MachineControl`]. No
//! I/O and no threads, so it can be unit-tested and fuzzed.
use std::time::Duration;

use serde::de::IgnoredAny;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::args::decode_request;

use super::commands::{Command, COMMANDS};
use super::hmp::{self, HmpCommand};
use super::messages::{event, reset_event, shutdown_event, version, QmpError};
use super::MAX_PENDING_INPUT;
use crate::input::keycodes::Key;
use crate::input::machine::MachineControl;
use crate::vm::{KvmStatValue, StatsTarget};

/// Something the server does after writing the session's messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// `send-key`: press `keys` in order, hold them `hold`, release them in
    /// reverse order, in order with the other key actions.
    SendKeys {
        /// The keys (at least one).
        keys: Vec<Key>,
        /// How long they are held.
        hold: Duration,
    },
    /// One key event of `input-send-event`, in order with the others.
    KeyEvent {
        /// The key.
        key: Key,
        /// Press or release.
        down: bool,
    },
    /// `quit`: the answer and the `SHUTDOWN` event are written; stop the VMM.
    Quit,
}

/// A request: `{"execute": NAME, "arguments": {...}, "id": ANY}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Request {
    execute: String,
    arguments: Option<Map<String, Value>>,
    /// Echoed in the answer; taken from the raw request.
    #[serde(rename = "id")]
    _id: Option<IgnoredAny>,
}

/// One connection's protocol state.
#[derive(Debug, Default)]
pub struct QmpSession {
    buffer: Vec<u8>,
    negotiated: bool,
    /// After malformed JSON: drop input up to the next newline.
    skipping: bool,
    quit: bool,
}

impl QmpSession {
    /// A new connection (before capabilities negotiation).
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether `qmp_capabilities` succeeded (events are sent only then).
    pub fn negotiated(&self) -> bool {
        self.negotiated
    }

    /// Whether the client asked to `quit`.
    pub fn quit_requested(&self) -> bool {
        self.quit
    }

    /// Consumes input bytes; returns the messages to send, in order, and the
    /// actions to take after sending them. `stop`, `cont` and `system_reset`
    /// act on `machine` at once (their events precede their answer).
    pub fn feed(
        &mut self,
        bytes: &[u8],
        machine: &dyn MachineControl,
    ) -> (Vec<Value>, Vec<Action>) {
        let mut out = Vec::new();
        let mut actions = Vec::new();
        self.buffer.extend_from_slice(bytes);
        loop {
            if self.quit {
                // Nothing after `quit` is executed.
                self.buffer.clear();
                break;
            }
            if self.skipping {
                match self.buffer.iter().position(|b| *b == b'\n') {
                    Some(i) => {
                        self.buffer.drain(..=i);
                        self.skipping = false;
                    }
                    None => {
                        self.buffer.clear();
                        break;
                    }
                }
            }
            let start = self.buffer.iter().position(|b| !b.is_ascii_whitespace());
            let Some(start) = start else {
                self.buffer.clear();
                break;
            };
            self.buffer.drain(..start);
            let mut stream =
                serde_json::Deserializer::from_slice(&self.buffer).into_iter::<Value>();
            match stream.next() {
                None => break,
                // A number or literal that ends where the input ends may go
                // on in the next bytes ("12" then "34", "true" then "x"): as
                // QEMU's lexer, wait for the byte that ends it, so how the
                // input is split does not change what is parsed. Objects,
                // arrays and strings end with their own closing byte.
                Some(Ok(Value::Number(_) | Value::Bool(_) | Value::Null))
                    if stream.byte_offset() == self.buffer.len() =>
                {
                    break
                }
                Some(Ok(value)) => {
                    let used = stream.byte_offset();
                    self.buffer.drain(..used);
                    self.execute(value, machine, &mut out, &mut actions);
                }
                Some(Err(e)) if e.is_eof() => {
                    if self.buffer.len() > MAX_PENDING_INPUT {
                        out.push(
                            QmpError::generic(format!(
                                "JSON parse error, input exceeds {MAX_PENDING_INPUT} bytes"
                            ))
                            .to_message(),
                        );
                        self.buffer.clear();
                        self.skipping = true;
                    }
                    break;
                }
                Some(Err(e)) => {
                    out.push(QmpError::generic(format!("JSON parse error, {e}")).to_message());
                    self.skipping = true;
                }
            }
        }
        (out, actions)
    }

    /// Runs one request (any JSON value) and appends its messages.
    fn execute(
        &mut self,
        request: Value,
        machine: &dyn MachineControl,
        out: &mut Vec<Value>,
        actions: &mut Vec<Action>,
    ) {
        // The answer carries the request's `id` whatever else is wrong with
        // it (`get` finds nothing in a non-object).
        let id = request.get("id");
        let with_id = |mut message: Value| {
            if let Some(id) = id {
                message["id"] = id.clone();
            }
            message
        };
        match self.run(&request, machine, actions) {
            Ok((events, value)) => {
                out.extend(events);
                out.push(with_id(json!({ "return": value })));
            }
            Err(error) => out.push(with_id(error.to_message())),
        }
    }

    /// Checks the request's envelope and runs its command: the events that
    /// precede the answer, and the answer's value.
    fn run(
        &mut self,
        request: &Value,
        machine: &dyn MachineControl,
        actions: &mut Vec<Action>,
    ) -> Result<(Vec<Value>, Value), QmpError> {
        let Request {
            execute: name,
            arguments,
            _id,
        } = decode_request(request).map_err(QmpError::generic)?;
        let arguments = arguments.unwrap_or_default();
        if !self.negotiated && name != "qmp_capabilities" {
            return Err(QmpError::not_found(
                "Expecting capabilities negotiation with 'qmp_capabilities'",
            ));
        }
        if self.negotiated && name == "qmp_capabilities" {
            return Err(QmpError::not_found(
                "Capabilities negotiation is already complete, command ignored",
            ));
        }
        let command = Command::decode(&name, &arguments, machine.can_reset())?;
        // State-change events precede the answer, as in QEMU 7.2 (also
        // `SHUTDOWN` before the answer to `quit`).
        let mut events = Vec::new();
        let value = match command {
            Command::QmpCapabilities => {
                self.negotiated = true;
                json!({})
            }
            Command::QueryCommands => {
                let names = COMMANDS
                    .iter()
                    .filter(|n| **n != "system_reset" || machine.can_reset())
                    .map(|n| json!({ "name": n }));
                Value::Array(names.collect())
            }
            Command::QueryVersion => version(),
            Command::QueryStatus => {
                let running = !machine.is_paused();
                json!({
                    "status": if running { "running" } else { "paused" },
                    "singlestep": false,
                    "running": running,
                })
            }
            Command::SendKey { keys, hold } => {
                if !keys.is_empty() {
                    actions.push(Action::SendKeys { keys, hold });
                }
                json!({})
            }
            Command::InputSendEvent { events: keys } => {
                actions.extend(
                    keys.into_iter()
                        .map(|(key, down)| Action::KeyEvent { key, down }),
                );
                json!({})
            }
            Command::Stop => {
                stop(machine, &mut events);
                json!({})
            }
            Command::Cont => {
                cont(machine, &mut events);
                json!({})
            }
            Command::SystemReset => {
                system_reset(machine, &mut events);
                json!({})
            }
            Command::Quit => {
                self.quit(&mut events, actions);
                json!({})
            }
            Command::HumanMonitor { command_line } => {
                let printed = match hmp::parse(&command_line, machine.can_reset()) {
                    HmpCommand::SendKey { keys, hold } => {
                        actions.push(Action::SendKeys { keys, hold });
                        String::new()
                    }
                    HmpCommand::InfoStatus => {
                        let status = if machine.is_paused() {
                            "paused"
                        } else {
                            "running"
                        };
                        format!("VM status: {status}\n")
                    }
                    HmpCommand::Stop => {
                        stop(machine, &mut events);
                        String::new()
                    }
                    HmpCommand::Cont => {
                        cont(machine, &mut events);
                        String::new()
                    }
                    HmpCommand::SystemReset => {
                        system_reset(machine, &mut events);
                        String::new()
                    }
                    HmpCommand::Quit => {
                        self.quit(&mut events, actions);
                        String::new()
                    }
                    HmpCommand::Print(text) => text,
                };
                Value::String(hmp::output(&printed))
            }
            Command::QueryStats {
                target,
                requests,
                vcpus,
            } => query_stats(machine, target, requests, vcpus),
        };
        Ok((events, value))
    }

    /// `quit`: the `SHUTDOWN` event precedes the answer; nothing after it
    /// is executed.
    fn quit(&mut self, events: &mut Vec<Value>, actions: &mut Vec<Action>) {
        self.quit = true;
        events.push(shutdown_event(false, "host-qmp-quit"));
        actions.push(Action::Quit);
    }
}

/// `stop`: pauses a running machine (`STOP` event).
fn stop(machine: &dyn MachineControl, events: &mut Vec<Value>) {
    if !machine.is_paused() {
        machine.pause();
        events.push(event("STOP", None));
    }
}

/// `cont`: resumes a paused machine (`RESUME` event).
fn cont(machine: &dyn MachineControl, events: &mut Vec<Value>) {
    if machine.is_paused() {
        machine.resume();
        events.push(event("RESUME", None));
    }
}

/// `system_reset` (`RESET` event).
fn system_reset(machine: &dyn MachineControl, events: &mut Vec<Value>) {
    machine.reset();
    events.push(reset_event(false, "host-qmp-system-reset"));
}

/// The QOM path QEMU gives the first (here the only) vCPU of a `pc` or
/// `microvm` machine; `query-stats` names it.
const VCPU_QOM_PATH: &str = "/machine/unattached/device[0]";

/// `query-stats`'s answer, as QEMU 7.2 builds it: one result per request
/// (all statistics when there is none), each with the statistics found (a
/// result with none is left out); QEMU prepends as it goes, so the results
/// and the statistics in each come in reverse order.
fn query_stats(
    machine: &dyn MachineControl,
    target: StatsTarget,
    requests: Option<Vec<Option<Vec<String>>>>,
    vcpus: Option<Vec<String>>,
) -> Value {
    if vcpus.is_some_and(|paths| !paths.iter().any(|path| path == VCPU_QOM_PATH)) {
        return json!([]);
    }
    let mut results = Vec::new();
    for names in requests.unwrap_or_else(|| vec![None]).iter().rev() {
        let Some(statistics) = machine.kvm_statistics(target, names.as_deref()) else {
            continue;
        };
        if statistics.is_empty() {
            continue;
        }
        let stats: Vec<Value> = statistics
            .iter()
            .rev()
            .map(|statistic| {
                let value = match &statistic.value {
                    KvmStatValue::Number(n) => json!(n),
                    KvmStatValue::Boolean(b) => json!(b),
                    KvmStatValue::List(values) => json!(values),
                };
                json!({ "name": statistic.name, "value": value })
            })
            .collect();
        let mut result = json!({ "provider": "kvm", "stats": stats });
        if target == StatsTarget::Vcpu {
            result["qom-path"] = json!(VCPU_QOM_PATH);
        }
        results.push(result);
    }
    Value::Array(results)
}
