//! A small client for the QEMU Machine Protocol (JSON lines over a Unix
//! socket): greeting, `qmp_capabilities`, commands matched to their replies
//! by `id`, asynchronous events (which may arrive between a command and its
//! reply) kept aside, and `send-key` typing with QKeyCode names.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// How long a reply may take before the test fails.
const REPLY_TIMEOUT: Duration = Duration::from_secs(20);

/// A QMP session in command mode.
pub struct Qmp {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
    next_id: u64,
    /// Asynchronous events received so far, in order.
    pub events: Vec<Value>,
    /// Milliseconds QEMU holds each key down in [`Qmp::send_key`].
    pub hold_time_ms: u32,
}

impl Qmp {
    /// Connects to the socket at `path` (retrying until QEMU has created
    /// it, at most `timeout`), reads the greeting and enters command mode.
    pub fn connect(path: &Path, timeout: Duration) -> Qmp {
        let deadline = Instant::now() + timeout;
        let stream = loop {
            match UnixStream::connect(path) {
                Ok(stream) => break stream,
                Err(error) if Instant::now() < deadline => {
                    let _ = error;
                    thread::sleep(Duration::from_millis(10));
                }
                Err(error) => panic!("cannot connect to QMP socket {}: {error}", path.display()),
            }
        };
        stream
            .set_read_timeout(Some(REPLY_TIMEOUT))
            .expect("set QMP read timeout");
        let writer = stream.try_clone().expect("clone QMP socket");
        let mut qmp = Qmp {
            reader: BufReader::new(stream),
            writer,
            next_id: 0,
            events: Vec::new(),
            hold_time_ms: 10,
        };
        let greeting = qmp.read_message();
        assert!(
            greeting.get("QMP").is_some(),
            "expected the QMP greeting, got {greeting}"
        );
        qmp.execute("qmp_capabilities", None)
            .expect("qmp_capabilities");
        qmp
    }

    fn read_message(&mut self) -> Value {
        let mut line = String::new();
        let n = self
            .reader
            .read_line(&mut line)
            .unwrap_or_else(|e| panic!("reading from QMP: {e}"));
        assert!(n > 0, "QMP connection closed by QEMU");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("bad JSON from QMP ({e}): {line:?}"))
    }

    /// Runs `command`; returns its `return` value, or its `error` object.
    pub fn execute(&mut self, command: &str, arguments: Option<Value>) -> Result<Value, Value> {
        self.next_id += 1;
        let id = self.next_id;
        let mut message = json!({ "execute": command, "id": id });
        if let Some(arguments) = arguments {
            message["arguments"] = arguments;
        }
        let mut text = message.to_string();
        text.push('\n');
        self.writer
            .write_all(text.as_bytes())
            .expect("write to QMP");
        loop {
            let reply = self.read_message();
            if reply.get("event").is_some() {
                self.events.push(reply);
                continue;
            }
            if reply.get("id") != Some(&json!(id)) {
                panic!("QMP reply for another command: {reply} (waiting for id {id})");
            }
            if let Some(value) = reply.get("return") {
                return Ok(value.clone());
            }
            if let Some(error) = reply.get("error") {
                return Err(error.clone());
            }
            panic!("QMP reply without return or error: {reply}");
        }
    }

    /// Presses the keys together (in order), then releases them after
    /// [`Qmp::hold_time_ms`]. QEMU queues key events behind earlier ones, so
    /// successive calls type in order.
    pub fn send_key(&mut self, keys: &[&str]) {
        let keys: Vec<Value> = keys
            .iter()
            .map(|k| json!({ "type": "qcode", "data": k }))
            .collect();
        let arguments = json!({ "keys": keys, "hold-time": self.hold_time_ms });
        if let Err(error) = self.execute("send-key", Some(arguments)) {
            panic!("send-key {keys:?} failed: {error}");
        }
    }

    /// Types `text` (US layout) key by key; `\n` is Enter.
    pub fn type_text(&mut self, text: &str) {
        for c in text.chars() {
            let keys = char_keys(c).unwrap_or_else(|| panic!("no key for {c:?}"));
            self.send_key(&keys);
        }
    }
}

/// The QKeyCode combination typing `c` on a US keyboard.
pub fn char_keys(c: char) -> Option<Vec<&'static str>> {
    const LETTERS: [&str; 26] = [
        "a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l", "m", "n", "o", "p", "q", "r",
        "s", "t", "u", "v", "w", "x", "y", "z",
    ];
    const DIGITS: [&str; 10] = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];
    const SHIFTED_DIGITS: &str = ")!@#$%^&*(";
    let plain = |key: &'static str| Some(vec![key]);
    let shifted = |key: &'static str| Some(vec!["shift", key]);
    match c {
        'a'..='z' => plain(LETTERS[(c as u8 - b'a') as usize]),
        'A'..='Z' => shifted(LETTERS[(c as u8 - b'A') as usize]),
        '0'..='9' => plain(DIGITS[(c as u8 - b'0') as usize]),
        ' ' => plain("spc"),
        '\n' => plain("ret"),
        '\t' => plain("tab"),
        '\x08' => plain("backspace"),
        '-' => plain("minus"),
        '_' => shifted("minus"),
        '=' => plain("equal"),
        '+' => shifted("equal"),
        '[' => plain("bracket_left"),
        '{' => shifted("bracket_left"),
        ']' => plain("bracket_right"),
        '}' => shifted("bracket_right"),
        '\\' => plain("backslash"),
        '|' => shifted("backslash"),
        ';' => plain("semicolon"),
        ':' => shifted("semicolon"),
        '\'' => plain("apostrophe"),
        '"' => shifted("apostrophe"),
        '`' => plain("grave_accent"),
        '~' => shifted("grave_accent"),
        ',' => plain("comma"),
        '<' => shifted("comma"),
        '.' => plain("dot"),
        '>' => shifted("dot"),
        '/' => plain("slash"),
        '?' => shifted("slash"),
        _ => SHIFTED_DIGITS.find(c).map(|i| vec!["shift", DIGITS[i]]),
    }
}
