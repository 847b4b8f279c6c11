//! The QMP session (`vmm::input::qmp::session`) fed commands and arbitrary
//! bytes, split anywhere, against a mock machine.
//!
//! Checked:
//! - every message is a JSON object (it serialises, and parses back to
//!   itself) that is an answer (`return` or `error`) or an `event`;
//! - one answer per complete command: each JSON value fed on its own line
//!   gets exactly one answer, until `quit` (after which nothing runs);
//! - the same bytes fed whole or split at arbitrary points give the same
//!   messages (timestamps aside), the same actions and the same calls on
//!   the machine;
//! - nothing reaches the machine before capabilities are negotiated.
#![no_main]

use std::sync::mpsc::Receiver;
use std::sync::Mutex;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use vmm::input::keycodes::Key;
use vmm::input::machine::MachineControl;
use vmm::input::qmp::{Action, QmpSession};
use vmm::vm::MachineEvent;

/// A machine that records what the session asked of it.
#[derive(Default)]
struct Mock {
    log: Mutex<Vec<String>>,
    paused: Mutex<bool>,
    resettable: bool,
}

impl MachineControl for Mock {
    fn key_event(&self, key: Key, down: bool) {
        self.log
            .lock()
            .unwrap()
            .push(format!("{}{key}", if down { "+" } else { "-" }));
    }
    fn wait_input_drained(&self, _: Duration) -> bool {
        true
    }
    fn serial_mark(&self) -> usize {
        0
    }
    fn serial_wait_for(&self, _: usize, _: &[u8], _: Duration) -> Result<usize, Vec<u8>> {
        Err(Vec::new())
    }
    fn pause(&self) {
        *self.paused.lock().unwrap() = true;
        self.log.lock().unwrap().push("stop".into());
    }
    fn resume(&self) {
        *self.paused.lock().unwrap() = false;
        self.log.lock().unwrap().push("cont".into());
    }
    fn is_paused(&self) -> bool {
        *self.paused.lock().unwrap()
    }
    fn can_reset(&self) -> bool {
        self.resettable
    }
    fn reset(&self) {
        self.log.lock().unwrap().push("reset".into());
    }
    fn shutdown(&self, status: i32) {
        self.log.lock().unwrap().push(format!("shutdown {status}"));
    }
    fn is_stopped(&self) -> bool {
        false
    }
    fn subscribe(&self) -> Receiver<MachineEvent> {
        std::sync::mpsc::channel().1
    }
}

/// The messages without what depends on the wall clock.
fn stable(messages: &[Value]) -> Vec<Value> {
    messages
        .iter()
        .map(|message| {
            let mut message = message.clone();
            if let Some(object) = message.as_object_mut() {
                object.remove("timestamp");
            }
            // Where serde_json notices a malformed value can depend on how
            // much of it was buffered ("number out of range" at the digit
            // that overflows, or at the end of the number): the position in
            // a parse error is not compared, its text is.
            if let Some(desc) = message.pointer_mut("/error/desc") {
                if let Some(text) = desc.as_str() {
                    if let Some(at) = text.find(" at line ") {
                        *desc = Value::String(text[..at].to_string());
                    }
                }
            }
            message
        })
        .collect()
}

fn check_message(message: &Value) {
    let text = serde_json::to_string(message).expect("a message serialises");
    let back: Value = serde_json::from_str(&text).expect("a message is valid JSON");
    assert_eq!(&back, message);
    let object = message.as_object().expect("a message is an object");
    let kinds = ["return", "error", "event"]
        .iter()
        .filter(|k| object.contains_key(**k))
        .count();
    assert_eq!(kinds, 1, "not one of return/error/event: {text}");
}

fn is_answer(message: &Value) -> bool {
    message.get("return").is_some() || message.get("error").is_some()
}

type Outcome = (Vec<Value>, Vec<Action>, Vec<String>, bool, bool);

/// Feeds `bytes` in the chunks `cuts` makes (offsets, sorted) to a new
/// session.
fn run(bytes: &[u8], cuts: impl IntoIterator<Item = usize>, resettable: bool) -> Outcome {
    let mock = Mock {
        resettable,
        ..Mock::default()
    };
    let mut session = QmpSession::new();
    let mut messages = Vec::new();
    let mut actions = Vec::new();
    let mut from = 0;
    for cut in cuts.into_iter().chain(std::iter::once(bytes.len())) {
        let (m, a) = session.feed(&bytes[from..cut], &mock);
        messages.extend(m);
        actions.extend(a);
        from = cut;
    }
    messages.iter().for_each(check_message);
    let log = mock.log.lock().unwrap().clone();
    (
        stable(&messages),
        actions,
        log,
        session.quit_requested(),
        session.negotiated(),
    )
}

// Input: one flags byte (bit 0: the machine can reset; the rest: a chunk
// size for the split run), then the bytes a client sends.
fuzz_target!(|data: &[u8]| {
    let Some((&flags, bytes)) = data.split_first() else {
        return;
    };
    let resettable = flags & 1 != 0;

    // One answer per complete command: while every line so far held
    // exactly one JSON value, each line fed alone gets exactly one answer
    // (none after `quit`), and nothing reaches the machine unnegotiated.
    let mock = Mock {
        resettable,
        ..Mock::default()
    };
    let mut session = QmpSession::new();
    for line in bytes.split_inclusive(|b| *b == b'\n') {
        let quit_before = session.quit_requested();
        let negotiated_before = session.negotiated();
        let log_before = mock.log.lock().unwrap().len();
        let (messages, _) = session.feed(line, &mock);
        messages.iter().for_each(check_message);
        let complete = line.ends_with(b"\n") && serde_json::from_slice::<Value>(line).is_ok();
        if !complete {
            break;
        }
        let answers = messages.iter().filter(|m| is_answer(m)).count();
        assert_eq!(
            answers,
            usize::from(!quit_before),
            "answers to {:?}: {messages:?}",
            String::from_utf8_lossy(line)
        );
        if !negotiated_before {
            assert_eq!(
                mock.log.lock().unwrap().len(),
                log_before,
                "reached the machine unnegotiated"
            );
        }
    }

    // The same bytes whole, one byte at a time, and in chunks.
    let whole = run(bytes, [], resettable);
    let bytewise = run(bytes, 1..bytes.len(), resettable);
    assert_eq!(
        whole, bytewise,
        "fed whole and byte by byte: different results"
    );
    let chunk = usize::from(flags >> 1) + 1;
    let chunked = run(bytes, (chunk..bytes.len()).step_by(chunk), resettable);
    assert_eq!(
        whole, chunked,
        "fed whole and in chunks of {chunk}: different results"
    );
});
