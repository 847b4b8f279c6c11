use super::*;
use crate::input::keycodes::key;
use crate::input::script::{Command, Script};
use crate::input::text::{TextDecoder, Typed};

/// The combinations of `text` as the terminal would send them.
fn combos(text: &str) -> Vec<Vec<Key>> {
    TextDecoder::new()
        .feed(text.as_bytes())
        .into_iter()
        .map(|typed| match typed {
            Typed::Keys(keys) => keys,
            Typed::Untypeable(c) => panic!("{c:?}"),
        })
        .collect()
}

fn record(steps: &[(u64, Vec<Key>)]) -> Vec<String> {
    let start = Instant::now();
    let mut recorder = Recorder::new(start);
    let mut lines = Vec::new();
    for (ms, keys) in steps {
        lines.extend(recorder.combo(keys, start + Duration::from_millis(*ms)));
    }
    lines.extend(recorder.finish());
    lines
}

#[test]
fn printable_runs_become_type_lines_ending_at_enter() {
    let steps: Vec<(u64, Vec<Key>)> = combos("echo \"Hi\" \\o/\nls")
        .into_iter()
        .map(|keys| (10, keys))
        .collect();
    assert_eq!(
        record(&steps),
        ["type \"echo \\\"Hi\\\" \\\\o/\\n\"", "type \"ls\""]
    );
}

#[test]
fn other_keys_become_key_lines() {
    let steps = vec![
        (0, vec![key("a")]),
        (1, vec![key("left")]),
        (2, vec![key("ctrl"), key("c")]),
        (3, vec![key("tab")]),
        (4, vec![key("backspace")]),
        (5, vec![key("esc")]),
        (6, vec![key("ctrl"), key("alt"), key("delete")]),
    ];
    assert_eq!(
        record(&steps),
        [
            "type \"a\"",
            "key left",
            "key ctrl-c",
            "type \"\\t\\b\"",
            "key esc",
            "key ctrl-alt-delete"
        ]
    );
}

#[test]
fn long_pauses_become_waits_short_ones_vanish() {
    let steps = vec![
        (800, vec![key("a")]),
        (900, vec![key("b")]),
        (1400, vec![key("c")]),
        (2000, vec![key("ret")]),
    ];
    // 500 ms is not longer than the threshold.
    assert_eq!(
        record(&steps),
        ["wait 800ms", "type \"abc\"", "wait 600ms", "type \"\\n\""]
    );
}

/// What is recorded parses back to the same keys.
#[test]
fn recording_replays_to_the_same_keys() {
    let text = "x=\"a\\b\"\t~!@#$%^&*()_+{}|:<>?\n";
    let steps: Vec<(u64, Vec<Key>)> = combos(text).into_iter().map(|k| (0, k)).collect();
    let lines = record(&steps);
    let script = Script::parse("rec.keys", &lines.join("\n")).unwrap();
    let typed: String = script
        .lines
        .iter()
        .map(|line| match &line.command {
            Command::Type(text) => text.clone(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(typed, text);
}
