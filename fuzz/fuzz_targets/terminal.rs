//! The interactive terminal's escape decoder on arbitrary bytes, with
//! "input paused" timeouts (what tells a lone Esc from a sequence) at
//! arbitrary places.
//!
//! Checked: decoding the bytes byte by byte and in chunks gives the same events
//! as decoding them whole (with the same timeouts at the same places); no
//! key event is empty or names a key twice; a timeout only ever yields one
//! Esc, and only when an Esc was pending.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vmm::input::terminal::{TermDecoder, TermEvent};

fn decode(bytes: &[u8], pauses: &[usize], cuts: &[usize]) -> Vec<TermEvent> {
    let mut decoder = TermDecoder::new();
    let mut events = Vec::new();
    let mut marks: Vec<usize> = pauses.iter().chain(cuts).copied().collect();
    marks.push(bytes.len());
    marks.sort_unstable();
    marks.dedup();
    let mut from = 0;
    for mark in marks {
        events.extend(decoder.feed(&bytes[from..mark]));
        from = mark;
        if pauses.binary_search(&mark).is_ok() {
            let pending = decoder.escape_pending();
            let timed_out = decoder.timeout();
            assert!(timed_out.len() <= 1);
            assert_eq!(
                timed_out.is_empty(),
                !pending,
                "timeout events {timed_out:?}"
            );
            assert!(!decoder.escape_pending());
            events.extend(timed_out);
        }
    }
    events
}

// Input: a pause stride and a chunk size (one byte each), then the bytes
// the terminal sends. With stride `p`, the input pauses after every
// `p`th byte (0: never).
fuzz_target!(|data: &[u8]| {
    let [pause, chunk, bytes @ ..] = data else {
        return;
    };
    let len = bytes.len();
    let pauses: Vec<usize> = match *pause {
        0 => Vec::new(),
        p => (usize::from(p)..=len).step_by(usize::from(p)).collect(),
    };
    let whole = decode(bytes, &pauses, &[]);
    let bytewise = decode(bytes, &pauses, &(1..len).collect::<Vec<_>>());
    assert_eq!(whole, bytewise, "decoded byte by byte");
    let chunk = usize::from(*chunk).max(1);
    let chunked = decode(
        bytes,
        &pauses,
        &(chunk..len).step_by(chunk).collect::<Vec<_>>(),
    );
    assert_eq!(whole, chunked, "decoded in chunks of {chunk}");
    for event in &whole {
        if let TermEvent::Keys(keys) = event {
            assert!(!keys.is_empty(), "an empty key event");
            for (i, key) in keys.iter().enumerate() {
                assert!(!keys[..i].contains(key), "key {key} twice in {keys:?}");
            }
        }
    }
});
