//! The keystroke-script parser (`--keys FILE`, `--type TEXT`) on arbitrary
//! bytes.
//!
//! Checked:
//! - an error names a line that exists (1 to the number of lines), and for
//!   invalid UTF-8 the line holding the first bad byte; that line parsed on
//!   its own fails the same way, and every line before it parses;
//! - a parsed script keeps its lines in order with their own numbers, and
//!   each line parsed on its own gives the same command;
//! - `key`, `press` and `release` lines print (`describe`) to text that
//!   parses back to the same command;
//! - the strokes of `type` and `key` lines release every key they press,
//!   in reverse order.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vmm::input::script::{describe, strokes, Command, ParseErrorKind, Script, Stroke};

/// The one command `line` holds, if it holds one.
fn alone(line: &str) -> Result<Option<Command>, ParseErrorKind> {
    let script = Script::parse("line", line).map_err(|e| {
        assert_eq!(e.line, 1, "a line parsed alone failed on line {}", e.line);
        e.kind
    })?;
    assert!(script.lines.len() <= 1);
    Ok(script.lines.into_iter().next().map(|l| l.command))
}

fn check_strokes(command: &Command) {
    let all = strokes(command);
    if !matches!(command, Command::Type(_) | Command::Key(_)) {
        return;
    }
    // Each group between Settles presses keys and releases them in reverse.
    for group in all.split(|s| *s == Stroke::Settle) {
        let downs: Vec<_> = group
            .iter()
            .filter_map(|s| {
                if let Stroke::Down(k) = s {
                    Some(*k)
                } else {
                    None
                }
            })
            .collect();
        let ups: Vec<_> = group
            .iter()
            .filter_map(|s| {
                if let Stroke::Up(k) = s {
                    Some(*k)
                } else {
                    None
                }
            })
            .collect();
        let reversed: Vec<_> = downs.iter().rev().copied().collect();
        assert_eq!(ups, reversed, "strokes of {command:?}");
    }
}

fuzz_target!(|bytes: &[u8]| {
    let line_count = bytes.split(|b| *b == b'\n').count();
    match Script::parse_bytes("fuzz", bytes) {
        Err(error) => {
            assert!(
                (1..=line_count).contains(&error.line),
                "error on line {} of {line_count}",
                error.line
            );
            assert_eq!(error.script, "fuzz");
            assert!(
                !error.to_string().contains('\n'),
                "a multi-line error message"
            );
            if error.kind == ParseErrorKind::NotUtf8 {
                let valid = std::str::from_utf8(bytes).unwrap_err().valid_up_to();
                let line = 1 + bytes[..valid].iter().filter(|b| **b == b'\n').count();
                assert_eq!(error.line, line);
                return;
            }
            let text = std::str::from_utf8(bytes).expect("not a UTF-8 error, so UTF-8");
            let lines: Vec<&str> = text.split('\n').collect();
            for line in &lines[..error.line - 1] {
                assert!(
                    alone(line).is_ok(),
                    "line {line:?} fails alone but not in the script"
                );
            }
            assert_eq!(
                alone(lines[error.line - 1]).err(),
                Some(error.kind),
                "line {} alone",
                error.line
            );
        }
        Ok(script) => {
            let text = std::str::from_utf8(bytes).expect("parsed, so UTF-8");
            let lines: Vec<&str> = text.split('\n').collect();
            let mut previous = 0;
            for line in &script.lines {
                assert!(line.number > previous && line.number <= line_count);
                previous = line.number;
                assert_eq!(
                    alone(lines[line.number - 1]),
                    Ok(Some(line.command.clone()))
                );
                check_strokes(&line.command);
                if matches!(
                    line.command,
                    Command::Key(_) | Command::Press(_) | Command::Release(_)
                ) {
                    let printed = describe(&line.command);
                    assert_eq!(
                        alone(&printed),
                        Ok(Some(line.command.clone())),
                        "printed as {printed:?}"
                    );
                }
            }
        }
    }
    // `--type TEXT` builds a one-line script; its errors are on line 1.
    if let Ok(text) = std::str::from_utf8(bytes) {
        match Script::type_text("--type", text) {
            Ok(script) => {
                assert_eq!(script.lines.len(), 1);
                check_strokes(&script.lines[0].command);
            }
            Err(error) => assert_eq!(error.line, 1),
        }
    }
});
