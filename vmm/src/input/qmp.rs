//! A QMP (QEMU Machine Protocol) server: JSON commands over a Unix socket,
//! compatible with QEMU's for the commands a keyboard-only machine has.
//!
//! [`QmpSession`] is the protocol as a pure state machine (bytes in, JSON
//! messages out, actions on a [`QmpBackend`]) so it can be unit-tested and
//! fuzzed; [`QmpServer`] does the socket I/O.
//!
//! Supported commands: `qmp_capabilities`, `send-key`, `input-send-event`
//! (key events), `query-status`, `stop`, `cont`, `system_reset` (when the
//! machine can reset), `quit`, `query-commands`, `query-version`. Events:
//! `STOP`, `RESUME`, `RESET`, `SHUTDOWN`.
//!
//! Errors follow QEMU: commands before `qmp_capabilities` and unknown commands
//! answer with class `CommandNotFound`; malformed JSON and bad arguments with
//! `GenericError`; the connection stays open and the machine is unaffected.
//! Input is a stream of JSON objects (newlines optional); after malformed JSON
//! the rest of that line is discarded, so the next line starts afresh.
//!
//! One client at a time: further clients wait in the listen backlog until
//! the current one disconnects, then get their greeting (QEMU's behaviour for a
//! monitor socket too).
use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{json, Map, Value};

use super::keycodes::Key;

/// Default `hold-time` of `send-key`, as QEMU.
pub const DEFAULT_HOLD_TIME: Duration = Duration::from_millis(100);

/// Longest accepted `hold-time` (QEMU takes any int; we cap at one minute).
pub const MAX_HOLD_TIME: Duration = Duration::from_secs(60);

/// Largest amount of buffered input without a complete JSON value.
pub const MAX_PENDING_INPUT: usize = 1 << 20;

/// What the QMP commands act on.
pub trait QmpBackend {
    /// `send-key`: press `keys` in order, hold for `hold`, release them in
    /// reverse order. Returns at once; the keys are delivered in order.
    fn send_keys(&self, keys: Vec<Key>, hold: Duration);
    /// One key event (`input-send-event`), delivered in order with the others.
    fn key_event(&self, key: Key, down: bool);
    /// Whether the vCPU is running (not paused by `stop`).
    fn is_running(&self) -> bool;
    /// Pauses the vCPU.
    fn stop(&self);
    /// Resumes the vCPU.
    fn cont(&self);
    /// Whether `system_reset` is available.
    fn can_reset(&self) -> bool;
    /// Resets the machine.
    fn reset(&self) -> Result<(), String>;
}

/// A side effect the server performs after writing the session's messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// `quit`: the answer and the `SHUTDOWN` event are written; stop the VMM.
    Quit,
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

/// The greeting QMP servers send on connection.
pub fn greeting() -> Value {
    json!({"QMP": {"version": version(), "capabilities": []}})
}

fn version() -> Value {
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

fn error(class: &str, desc: impl Into<String>) -> Value {
    json!({"error": {"class": class, "desc": desc.into()}})
}

fn generic(desc: impl Into<String>) -> Value {
    error("GenericError", desc)
}

const COMMANDS: &[&str] = &[
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
    /// actions to take after sending them.
    pub fn feed(&mut self, bytes: &[u8], backend: &dyn QmpBackend) -> (Vec<Value>, Vec<Action>) {
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
                Some(Ok(value)) => {
                    let used = stream.byte_offset();
                    self.buffer.drain(..used);
                    self.execute(value, backend, &mut out, &mut actions);
                }
                Some(Err(e)) if e.is_eof() => {
                    if self.buffer.len() > MAX_PENDING_INPUT {
                        out.push(generic(format!(
                            "JSON parse error, input exceeds {MAX_PENDING_INPUT} bytes"
                        )));
                        self.buffer.clear();
                        self.skipping = true;
                    }
                    break;
                }
                Some(Err(e)) => {
                    out.push(generic(format!("JSON parse error, {e}")));
                    self.skipping = true;
                }
            }
        }
        (out, actions)
    }

    fn execute(
        &mut self,
        request: Value,
        backend: &dyn QmpBackend,
        out: &mut Vec<Value>,
        actions: &mut Vec<Action>,
    ) {
        let Value::Object(mut request) = request else {
            out.push(generic("QMP input must be a JSON object"));
            return;
        };
        let id = request.remove("id");
        let with_id = |mut message: Value| {
            if let Some(id) = &id {
                message["id"] = id.clone();
            }
            message
        };
        if let Some(key) = request
            .keys()
            .find(|k| !matches!(k.as_str(), "execute" | "arguments"))
        {
            out.push(with_id(generic(format!(
                "QMP input member '{key}' is unexpected"
            ))));
            return;
        }
        let name = match request.get("execute") {
            Some(Value::String(name)) => name.clone(),
            Some(_) => {
                out.push(with_id(generic(
                    "QMP input member 'execute' must be a string",
                )));
                return;
            }
            None => {
                out.push(with_id(generic("QMP input lacks member 'execute'")));
                return;
            }
        };
        let arguments = match request.remove("arguments") {
            None => Map::new(),
            Some(Value::Object(arguments)) => arguments,
            Some(_) => {
                out.push(with_id(generic(
                    "QMP input member 'arguments' must be an object",
                )));
                return;
            }
        };
        if !self.negotiated && name != "qmp_capabilities" {
            out.push(with_id(error(
                "CommandNotFound",
                "Expecting capabilities negotiation with 'qmp_capabilities'",
            )));
            return;
        }
        let mut events = Vec::new();
        let result = self.dispatch(&name, &arguments, backend, &mut events);
        match result {
            Ok(value) => {
                // State-change events precede the answer, as in QEMU 7.2
                // (also `SHUTDOWN` before the answer to `quit`).
                if self.quit {
                    events.push(shutdown_event(false, "host-qmp-quit"));
                    actions.push(Action::Quit);
                }
                out.extend(events);
                out.push(with_id(json!({"return": value})));
            }
            Err(e) => out.push(with_id(e)),
        }
    }

    fn dispatch(
        &mut self,
        name: &str,
        args: &Map<String, Value>,
        backend: &dyn QmpBackend,
        events: &mut Vec<Value>,
    ) -> Result<Value, Value> {
        match name {
            "qmp_capabilities" => {
                if self.negotiated {
                    return Err(error(
                        "CommandNotFound",
                        "Capabilities negotiation is already complete, command ignored",
                    ));
                }
                check_args(args, &["enable"])?;
                if let Some(enable) = args.get("enable") {
                    let list = enable
                        .as_array()
                        .ok_or_else(|| bad_type("enable", "array"))?;
                    if let Some(capability) = list.first() {
                        let capability = capability.as_str().unwrap_or("?");
                        return Err(generic(format!("Capability '{capability}' not available")));
                    }
                }
                self.negotiated = true;
                Ok(json!({}))
            }
            "query-commands" => {
                check_args(args, &[])?;
                let names = COMMANDS
                    .iter()
                    .filter(|n| **n != "system_reset" || backend.can_reset())
                    .map(|n| json!({"name": n}));
                Ok(Value::Array(names.collect()))
            }
            "query-version" => {
                check_args(args, &[])?;
                Ok(version())
            }
            "query-status" => {
                check_args(args, &[])?;
                let running = backend.is_running();
                Ok(json!({
                    "status": if running { "running" } else { "paused" },
                    "singlestep": false,
                    "running": running,
                }))
            }
            "send-key" => {
                check_args(args, &["keys", "hold-time"])?;
                let keys = args.get("keys").ok_or_else(|| missing("keys"))?;
                let keys = keys.as_array().ok_or_else(|| bad_type("keys", "array"))?;
                let mut parsed: Vec<Key> = Vec::with_capacity(keys.len());
                for (i, value) in keys.iter().enumerate() {
                    let key = key_value(value, &format!("keys[{i}]"))?;
                    if parsed.iter().any(|k| k.set2() == key.set2()) {
                        return Err(generic(format!("Key '{}' is given twice", key.name())));
                    }
                    parsed.push(key);
                }
                let hold = match args.get("hold-time") {
                    None => DEFAULT_HOLD_TIME,
                    Some(v) => match v.as_u64() {
                        Some(ms) if Duration::from_millis(ms) <= MAX_HOLD_TIME => {
                            Duration::from_millis(ms)
                        }
                        _ => {
                            return Err(generic(format!(
                                "Parameter 'hold-time' expects an integer from 0 to {}",
                                MAX_HOLD_TIME.as_millis()
                            )))
                        }
                    },
                };
                if !parsed.is_empty() {
                    backend.send_keys(parsed, hold);
                }
                Ok(json!({}))
            }
            "input-send-event" => {
                check_args(args, &["device", "head", "events"])?;
                if let Some(device) = args.get("device") {
                    let device = device
                        .as_str()
                        .ok_or_else(|| bad_type("device", "string"))?;
                    return Err(error(
                        "DeviceNotFound",
                        format!("Device '{device}' not found"),
                    ));
                }
                if let Some(head) = args.get("head") {
                    head.as_i64().ok_or_else(|| bad_type("head", "integer"))?;
                }
                let events = args.get("events").ok_or_else(|| missing("events"))?;
                let events = events
                    .as_array()
                    .ok_or_else(|| bad_type("events", "array"))?;
                // Validate everything before sending anything.
                let mut parsed = Vec::with_capacity(events.len());
                for (i, event) in events.iter().enumerate() {
                    parsed.push(input_event(event, i)?);
                }
                for (key, down) in parsed {
                    backend.key_event(key, down);
                }
                Ok(json!({}))
            }
            "stop" => {
                check_args(args, &[])?;
                if backend.is_running() {
                    backend.stop();
                    events.push(event("STOP", None));
                }
                Ok(json!({}))
            }
            "cont" => {
                check_args(args, &[])?;
                if !backend.is_running() {
                    backend.cont();
                    events.push(event("RESUME", None));
                }
                Ok(json!({}))
            }
            "system_reset" if backend.can_reset() => {
                check_args(args, &[])?;
                backend.reset().map_err(generic)?;
                events.push(event(
                    "RESET",
                    Some(json!({"guest": false, "reason": "host-qmp-system-reset"})),
                ));
                Ok(json!({}))
            }
            "quit" => {
                check_args(args, &[])?;
                self.quit = true;
                Ok(json!({}))
            }
            _ => Err(error(
                "CommandNotFound",
                format!("The command {name} has not been found"),
            )),
        }
    }
}

fn check_args(args: &Map<String, Value>, allowed: &[&str]) -> Result<(), Value> {
    match args.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(key) => Err(generic(format!("Parameter '{key}' is unexpected"))),
        None => Ok(()),
    }
}

fn missing(name: &str) -> Value {
    generic(format!("Parameter '{name}' is missing"))
}

fn bad_type(name: &str, expected: &str) -> Value {
    generic(format!(
        "Invalid parameter type for '{name}', expected: {expected}"
    ))
}

/// A `KeyValue`: `{"type": "qcode", "data": NAME}` or `{"type": "number", "data": N}`.
fn key_value(value: &Value, path: &str) -> Result<Key, Value> {
    let object = value.as_object().ok_or_else(|| bad_type(path, "object"))?;
    let field = |name: &str| format!("{path}.{name}");
    if let Some(key) = object
        .keys()
        .find(|k| !matches!(k.as_str(), "type" | "data"))
    {
        return Err(generic(format!("Parameter '{}' is unexpected", field(key))));
    }
    let kind = object.get("type").ok_or_else(|| missing(&field("type")))?;
    let data = object.get("data").ok_or_else(|| missing(&field("data")))?;
    match kind.as_str() {
        Some("qcode") => {
            let name = data
                .as_str()
                .ok_or_else(|| bad_type(&field("data"), "string"))?;
            Key::from_name(name).map_err(|e| match e {
                super::keycodes::KeyNameError::Unknown(_) => generic(format!(
                    "Parameter '{}' does not accept value '{name}'",
                    field("data")
                )),
                unsupported => generic(unsupported.to_string()),
            })
        }
        Some("number") => {
            let number = data
                .as_i64()
                .ok_or_else(|| bad_type(&field("data"), "integer"))?;
            Key::from_qnum(number)
                .ok_or_else(|| generic(format!("Key number {number:#x} has no PS/2 scan code")))
        }
        Some(other) => Err(generic(format!(
            "Parameter '{}' does not accept value '{other}'",
            field("type")
        ))),
        None => Err(bad_type(&field("type"), "string")),
    }
}

/// An `InputEvent` of type `key`.
fn input_event(event: &Value, index: usize) -> Result<(Key, bool), Value> {
    let path = format!("events[{index}]");
    let object = event.as_object().ok_or_else(|| bad_type(&path, "object"))?;
    let kind = object
        .get("type")
        .ok_or_else(|| missing(&format!("{path}.type")))?;
    match kind.as_str() {
        Some("key") => {}
        Some(other @ ("btn" | "rel" | "abs" | "mtt")) => {
            return Err(generic(format!(
                "Input event type '{other}' is not supported: this machine has only a keyboard"
            )))
        }
        Some(other) => {
            return Err(generic(format!(
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

/// Where a `--qmp` option asks the server to listen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QmpAddress {
    /// The socket path.
    pub path: PathBuf,
}

/// A `--qmp` value that is not understood.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum QmpAddressError {
    /// Not `unix:PATH`.
    NotUnix(String),
    /// `unix:` with no path.
    EmptyPath,
    /// An option other than `server`/`wait`, or with a value this VMM cannot honour.
    BadOption(String),
}

impl std::fmt::Display for QmpAddressError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            QmpAddressError::NotUnix(spec) => {
                write!(f, "--qmp '{spec}': only unix:PATH sockets are supported")
            }
            QmpAddressError::EmptyPath => write!(f, "--qmp unix: needs a socket path"),
            QmpAddressError::BadOption(option) => write!(
                f,
                "--qmp option '{option}' is not supported (accepted: server, server=on, wait=off, nowait)"
            ),
        }
    }
}

impl std::error::Error for QmpAddressError {}

impl std::str::FromStr for QmpAddress {
    type Err = QmpAddressError;

    /// Parses QEMU's syntax: `unix:PATH[,server=on][,wait=off]` (also the
    /// legacy `server`, `nowait`). The server always listens and never waits
    /// for a client before starting the guest.
    fn from_str(spec: &str) -> Result<Self, Self::Err> {
        let rest = spec
            .strip_prefix("unix:")
            .ok_or_else(|| QmpAddressError::NotUnix(spec.into()))?;
        let mut parts = rest.split(',');
        let path = parts.next().unwrap_or("");
        if path.is_empty() {
            return Err(QmpAddressError::EmptyPath);
        }
        for option in parts {
            match option {
                "server" | "server=on" | "wait=off" | "nowait" => {}
                other => return Err(QmpAddressError::BadOption(other.to_string())),
            }
        }
        Ok(QmpAddress {
            path: PathBuf::from(path),
        })
    }
}

/// Errors setting up the socket.
#[derive(Debug)]
pub enum QmpServerError {
    /// The path exists and is not a socket: refuse to replace it.
    PathInUse(PathBuf),
    /// `bind` failed.
    Bind(PathBuf, std::io::Error),
}

impl std::fmt::Display for QmpServerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            QmpServerError::PathInUse(path) => {
                write!(
                    f,
                    "QMP socket {}: path exists and is not a socket",
                    path.display()
                )
            }
            QmpServerError::Bind(path, e) => {
                write!(f, "QMP socket {}: cannot listen: {e}", path.display())
            }
        }
    }
}

impl std::error::Error for QmpServerError {}

/// The listening QMP socket and the connection currently served.
pub struct QmpServer {
    path: PathBuf,
    listener: UnixListener,
    events: EventSink,
}

/// Sends events to the connected, negotiated client (if any).
#[derive(Clone, Default)]
pub struct EventSink {
    inner: Arc<Mutex<SinkState>>,
}

#[derive(Default)]
struct SinkState {
    client: Option<UnixStream>,
    shutdown_sent: bool,
}

impl EventSink {
    /// Writes `message` to the current client, if it completed negotiation.
    pub fn send(&self, message: &Value) {
        let mut state = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(client) = state.client.as_mut() {
            if write_message(client, message).is_err() {
                state.client = None;
            }
        }
    }

    /// Sends the `SHUTDOWN` event once (later calls do nothing).
    pub fn shutdown(&self, guest: bool, reason: &str) {
        let mut state = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if state.shutdown_sent {
            return;
        }
        state.shutdown_sent = true;
        if let Some(client) = state.client.as_mut() {
            let _ = write_message(client, &shutdown_event(guest, reason));
        }
    }

    fn attach(&self, client: Option<UnixStream>) {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).client = client;
    }

    fn mark_shutdown_sent(&self) {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .shutdown_sent = true;
    }
}

fn write_message(stream: &mut UnixStream, message: &Value) -> std::io::Result<()> {
    let mut line = serde_json::to_vec(message).map_err(std::io::Error::other)?;
    line.extend_from_slice(b"\r\n");
    stream.write_all(&line)
}

impl QmpServer {
    /// Listens on `address`, replacing a stale socket file there (as QEMU).
    pub fn bind(address: &QmpAddress) -> Result<QmpServer, QmpServerError> {
        let path = address.path.clone();
        if let Ok(meta) = std::fs::symlink_metadata(&path) {
            if !meta.file_type().is_socket() {
                return Err(QmpServerError::PathInUse(path));
            }
            let _ = std::fs::remove_file(&path);
        }
        let listener =
            UnixListener::bind(&path).map_err(|e| QmpServerError::Bind(path.clone(), e))?;
        Ok(QmpServer {
            path,
            listener,
            events: EventSink::default(),
        })
    }

    /// The socket path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A handle to send asynchronous events (`SHUTDOWN` when the guest exits).
    pub fn events(&self) -> EventSink {
        self.events.clone()
    }

    /// Serves clients one after the other, forever (run it on its own
    /// thread). `quit` calls `on_quit` after the answer and the `SHUTDOWN`
    /// event are written.
    pub fn serve(self, backend: &dyn QmpBackend, on_quit: &dyn Fn()) {
        for stream in self.listener.incoming() {
            let stream = match stream {
                Ok(stream) => stream,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => {
                    log::warn!("QMP: accept failed: {e}");
                    continue;
                }
            };
            if let Err(e) = self.serve_client(stream, backend, on_quit) {
                log::debug!("QMP: client connection ended: {e}");
            }
            self.events.attach(None);
        }
    }

    fn serve_client(
        &self,
        mut stream: UnixStream,
        backend: &dyn QmpBackend,
        on_quit: &dyn Fn(),
    ) -> std::io::Result<()> {
        // A client that stops reading must not block event delivery forever.
        stream.set_write_timeout(Some(Duration::from_secs(5)))?;
        let mut writer = stream.try_clone()?;
        write_message(&mut writer, &greeting())?;
        let mut session = QmpSession::new();
        let mut buffer = [0u8; 4096];
        loop {
            let n = match stream.read(&mut buffer) {
                Ok(0) => return Ok(()),
                Ok(n) => n,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            let was_negotiated = session.negotiated();
            let (messages, actions) = session.feed(&buffer[..n], backend);
            {
                // Hold the sink while writing so events never interleave a message.
                let mut state = self.events.inner.lock().unwrap_or_else(|e| e.into_inner());
                for message in &messages {
                    write_message(&mut writer, message)?;
                }
                if !was_negotiated && session.negotiated() {
                    state.client = Some(writer.try_clone()?);
                }
            }
            for action in actions {
                match action {
                    Action::Quit => {
                        // The connection stays open (input is ignored) until
                        // the client hangs up or the process exits, as QEMU.
                        self.events.mark_shutdown_sent();
                        let _ = writer.flush();
                        on_quit();
                    }
                }
            }
        }
    }
}

impl Drop for QmpServer {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    #[derive(Default)]
    struct Mock {
        log: RefCell<Vec<String>>,
        paused: RefCell<bool>,
        resettable: bool,
    }

    impl QmpBackend for Mock {
        fn send_keys(&self, keys: Vec<Key>, hold: Duration) {
            let names: Vec<&str> = keys.iter().map(|k| k.name()).collect();
            self.log
                .borrow_mut()
                .push(format!("send {} {}ms", names.join("-"), hold.as_millis()));
        }
        fn key_event(&self, key: Key, down: bool) {
            self.log
                .borrow_mut()
                .push(format!("{}{key}", if down { "+" } else { "-" }));
        }
        fn is_running(&self) -> bool {
            !*self.paused.borrow()
        }
        fn stop(&self) {
            *self.paused.borrow_mut() = true;
            self.log.borrow_mut().push("stop".into());
        }
        fn cont(&self) {
            *self.paused.borrow_mut() = false;
            self.log.borrow_mut().push("cont".into());
        }
        fn can_reset(&self) -> bool {
            self.resettable
        }
        fn reset(&self) -> Result<(), String> {
            self.log.borrow_mut().push("reset".into());
            Ok(())
        }
    }

    fn strip_timestamps(mut values: Vec<Value>) -> Vec<Value> {
        for v in &mut values {
            if let Some(o) = v.as_object_mut() {
                let ts = o.remove("timestamp");
                if o.contains_key("event") {
                    assert!(ts.unwrap()["seconds"].as_u64().unwrap() > 0);
                }
            }
        }
        values
    }

    fn run(session: &mut QmpSession, mock: &Mock, input: &str) -> Vec<Value> {
        let (out, _) = session.feed(input.as_bytes(), mock);
        strip_timestamps(out)
    }

    fn ready(mock: &Mock) -> QmpSession {
        let mut session = QmpSession::new();
        assert_eq!(
            run(&mut session, mock, r#"{"execute":"qmp_capabilities"}"#),
            [json!({"return": {}})]
        );
        session
    }

    #[test]
    fn greeting_shape() {
        let g = greeting();
        assert_eq!(g["QMP"]["capabilities"], json!([]));
        assert!(g["QMP"]["version"]["qemu"]["major"].is_u64());
        assert!(g["QMP"]["version"]["package"].is_string());
    }

    #[test]
    fn negotiation_required_and_once() {
        let mock = Mock::default();
        let mut s = QmpSession::new();
        assert_eq!(
            run(&mut s, &mock, r#"{"execute":"query-status","id":1}"#),
            [
                json!({"error": {"class": "CommandNotFound", "desc": "Expecting capabilities negotiation with 'qmp_capabilities'"}, "id": 1})
            ]
        );
        assert_eq!(
            run(
                &mut s,
                &mock,
                r#"{"execute":"qmp_capabilities","arguments":{"enable":["oob"]}}"#
            ),
            [json!({"error": {"class": "GenericError", "desc": "Capability 'oob' not available"}})]
        );
        assert!(!s.negotiated());
        assert_eq!(
            run(
                &mut s,
                &mock,
                r#"{"execute":"qmp_capabilities","arguments":{"enable":[]},"id":"x"}"#
            ),
            [json!({"return": {}, "id": "x"})]
        );
        assert_eq!(
            run(&mut s, &mock, r#"{"execute":"qmp_capabilities"}"#),
            [
                json!({"error": {"class": "CommandNotFound", "desc": "Capabilities negotiation is already complete, command ignored"}})
            ]
        );
    }

    #[test]
    fn unknown_command_and_bad_requests() {
        let mock = Mock::default();
        let mut s = ready(&mock);
        assert_eq!(
            run(&mut s, &mock, r#"{"execute":"frobnicate","id":{"a":[1]}}"#),
            [
                json!({"error": {"class": "CommandNotFound", "desc": "The command frobnicate has not been found"}, "id": {"a": [1]}})
            ]
        );
        let cases = [
            ("[1,2]", "QMP input must be a JSON object"),
            (r#"{"arguments":{}}"#, "QMP input lacks member 'execute'"),
            (
                r#"{"execute":5}"#,
                "QMP input member 'execute' must be a string",
            ),
            (
                r#"{"execute":"stop","arguments":[]}"#,
                "QMP input member 'arguments' must be an object",
            ),
            (
                r#"{"execute":"stop","bogus":1}"#,
                "QMP input member 'bogus' is unexpected",
            ),
            (
                r#"{"execute":"stop","arguments":{"x":1}}"#,
                "Parameter 'x' is unexpected",
            ),
            (r#"{"execute":"send-key"}"#, "Parameter 'keys' is missing"),
            (
                r#"{"execute":"send-key","arguments":{"keys":"a"}}"#,
                "Invalid parameter type for 'keys', expected: array",
            ),
            (
                r#"{"execute":"send-key","arguments":{"keys":[{"type":"qcode","data":"nokey"}]}}"#,
                "Parameter 'keys[0].data' does not accept value 'nokey'",
            ),
            (
                r#"{"execute":"send-key","arguments":{"keys":[{"type":"qcode","data":"a"},{"type":"qcode","data":"a"}]}}"#,
                "Key 'a' is given twice",
            ),
            (
                r#"{"execute":"send-key","arguments":{"keys":[{"type":"qcode","data":"pause"}]}}"#,
                "key 'pause' has no PS/2 set-2 scan code on this keyboard",
            ),
            (
                r#"{"execute":"send-key","arguments":{"keys":[{"type":"number","data":999}]}}"#,
                "Key number 0x3e7 has no PS/2 scan code",
            ),
            (
                r#"{"execute":"send-key","arguments":{"keys":[{"type":"qcode"}]}}"#,
                "Parameter 'keys[0].data' is missing",
            ),
            (
                r#"{"execute":"send-key","arguments":{"keys":[{"type":"qcode","data":"a"}],"hold-time":-1}}"#,
                "Parameter 'hold-time' expects an integer from 0 to 60000",
            ),
            (
                r#"{"execute":"input-send-event","arguments":{"events":[{"type":"btn","data":{"down":true,"button":"left"}}]}}"#,
                "Input event type 'btn' is not supported: this machine has only a keyboard",
            ),
            (
                r#"{"execute":"input-send-event","arguments":{"events":[{"type":"key","data":{"key":{"type":"qcode","data":"a"}}}]}}"#,
                "Parameter 'events[0].data.down' is missing",
            ),
        ];
        for (input, desc) in cases {
            assert_eq!(
                run(&mut s, &mock, input),
                [json!({"error": {"class": "GenericError", "desc": desc}})],
                "{input}"
            );
        }
        // Nothing reached the machine.
        assert!(mock.log.borrow().is_empty(), "{:?}", mock.log.borrow());
    }

    #[test]
    fn malformed_json_recovers_at_next_line() {
        let mock = Mock::default();
        let mut s = ready(&mock);
        let out = run(
            &mut s,
            &mock,
            "{\"execute\": nope}\n{\"execute\":\"query-status\"}\n",
        );
        assert_eq!(out.len(), 2, "{out:?}");
        assert_eq!(out[0]["error"]["class"], "GenericError");
        assert!(out[0]["error"]["desc"]
            .as_str()
            .unwrap()
            .starts_with("JSON parse error"));
        assert_eq!(out[1]["return"]["status"], "running");
        // Garbage split across reads, then a good command.
        assert_eq!(run(&mut s, &mock, "}}}").len(), 1);
        assert!(run(&mut s, &mock, "more garbage").is_empty());
        let out = run(&mut s, &mock, "\n{\"execute\":\"query-status\"}");
        assert_eq!(
            out,
            [json!({"return": {"status": "running", "singlestep": false, "running": true}})]
        );
    }

    #[test]
    fn split_and_concatenated_input() {
        let mock = Mock::default();
        let mut s = QmpSession::new();
        let text = r#"{"execute":"qmp_capabilities"}{"execute":"query-status","id":2}  "#;
        let mut out = Vec::new();
        for b in text.as_bytes() {
            out.extend(run(&mut s, &mock, std::str::from_utf8(&[*b]).unwrap()));
        }
        assert_eq!(out.len(), 2);
        assert_eq!(out[1]["id"], 2);
    }

    #[test]
    fn oversized_input_is_rejected() {
        let mock = Mock::default();
        let mut s = ready(&mock);
        let mut big = String::from("{\"execute\":\"");
        big.push_str(&"x".repeat(MAX_PENDING_INPUT + 10));
        let out = run(&mut s, &mock, &big);
        assert_eq!(out.len(), 1);
        assert!(run(&mut s, &mock, "xxx\"}\n").is_empty());
        assert_eq!(run(&mut s, &mock, r#"{"execute":"query-status"}"#).len(), 1);
    }

    #[test]
    fn keys() {
        let mock = Mock::default();
        let mut s = ready(&mock);
        let out = run(
            &mut s,
            &mock,
            r#"{"execute":"send-key","arguments":{"keys":[{"type":"qcode","data":"ctrl"},{"type":"number","data":46}]}}
               {"execute":"send-key","arguments":{"keys":[{"type":"qcode","data":"ret"}],"hold-time":5}}
               {"execute":"send-key","arguments":{"keys":[]}}
               {"execute":"input-send-event","arguments":{"events":[
                   {"type":"key","data":{"down":true,"key":{"type":"qcode","data":"shift"}}},
                   {"type":"key","data":{"down":false,"key":{"type":"qcode","data":"shift"}}}]}}"#,
        );
        assert_eq!(out, vec![json!({"return": {}}); 4]);
        assert_eq!(
            *mock.log.borrow(),
            ["send ctrl-c 100ms", "send ret 5ms", "+shift", "-shift"]
        );
    }

    #[test]
    fn stop_cont_status_and_events() {
        let mock = Mock::default();
        let mut s = ready(&mock);
        assert_eq!(
            run(&mut s, &mock, r#"{"execute":"stop"}"#),
            [json!({"event": "STOP"}), json!({"return": {}})]
        );
        assert_eq!(
            run(&mut s, &mock, r#"{"execute":"query-status"}"#),
            [json!({"return": {"status": "paused", "singlestep": false, "running": false}})]
        );
        // Stopping a stopped machine changes nothing and sends no event.
        assert_eq!(
            run(&mut s, &mock, r#"{"execute":"stop"}"#),
            [json!({"return": {}})]
        );
        assert_eq!(
            run(&mut s, &mock, r#"{"execute":"cont"}"#),
            [json!({"event": "RESUME"}), json!({"return": {}})]
        );
        assert_eq!(
            run(&mut s, &mock, r#"{"execute":"cont"}"#),
            [json!({"return": {}})]
        );
        assert_eq!(*mock.log.borrow(), ["stop", "cont"]);
    }

    #[test]
    fn reset_only_when_supported() {
        let mock = Mock::default();
        let mut s = ready(&mock);
        assert_eq!(
            run(&mut s, &mock, r#"{"execute":"system_reset"}"#)[0]["error"]["class"],
            "CommandNotFound"
        );
        let list = run(&mut s, &mock, r#"{"execute":"query-commands"}"#);
        assert!(!list[0]["return"]
            .as_array()
            .unwrap()
            .contains(&json!({"name": "system_reset"})));
        let mock = Mock {
            resettable: true,
            ..Default::default()
        };
        let mut s = ready(&mock);
        assert_eq!(
            run(&mut s, &mock, r#"{"execute":"system_reset"}"#),
            [
                json!({"event": "RESET", "data": {"guest": false, "reason": "host-qmp-system-reset"}}),
                json!({"return": {}})
            ]
        );
        let list = run(&mut s, &mock, r#"{"execute":"query-commands"}"#);
        assert!(list[0]["return"]
            .as_array()
            .unwrap()
            .contains(&json!({"name": "send-key"})));
        assert!(list[0]["return"]
            .as_array()
            .unwrap()
            .contains(&json!({"name": "system_reset"})));
    }

    #[test]
    fn quit_sends_shutdown_then_answers_and_ignores_the_rest() {
        let mock = Mock::default();
        let mut s = ready(&mock);
        let (out, actions) = s.feed(br#"{"execute":"quit","id":7}{"execute":"stop"}"#, &mock);
        let out = strip_timestamps(out);
        assert_eq!(
            out,
            [
                json!({"event": "SHUTDOWN", "data": {"guest": false, "reason": "host-qmp-quit"}}),
                json!({"return": {}, "id": 7})
            ]
        );
        assert_eq!(actions, [Action::Quit]);
        assert!(mock.log.borrow().is_empty());
    }

    #[test]
    fn addresses() {
        let parse = |s: &str| s.parse::<QmpAddress>();
        assert_eq!(
            parse("unix:/tmp/q.sock").unwrap().path,
            PathBuf::from("/tmp/q.sock")
        );
        assert_eq!(
            parse("unix:q.sock,server=on,wait=off").unwrap().path,
            PathBuf::from("q.sock")
        );
        assert_eq!(
            parse("unix:q,server,nowait").unwrap().path,
            PathBuf::from("q")
        );
        assert_eq!(
            parse("tcp:localhost:4444"),
            Err(QmpAddressError::NotUnix("tcp:localhost:4444".into()))
        );
        assert_eq!(parse("unix:"), Err(QmpAddressError::EmptyPath));
        assert_eq!(
            parse("unix:q,wait=on"),
            Err(QmpAddressError::BadOption("wait=on".into()))
        );
    }

    /// Random bytes never panic and never reach the machine unnegotiated.
    #[test]
    fn fuzz_random_input() {
        let mock = Mock::default();
        let mut seed = 0x9e3779b97f4a7c15u64;
        let alphabet = br#"{}[]",:\ 	
abcdeilnoprstuxy01-execute"qmp_capabilities"send-key"#;
        for _ in 0..2000 {
            let mut s = QmpSession::new();
            let mut bytes = Vec::new();
            for _ in 0..64 {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                bytes.push(alphabet[(seed % alphabet.len() as u64) as usize]);
            }
            let _ = s.feed(&bytes, &mock);
        }
        assert!(mock.log.borrow().is_empty());
    }
}
