//! Keystroke scripts (`--keys FILE`, `--type TEXT`): the grammar, the parser
//! and a runner generic over the machine it types into.
//!
//! One command per line:
//!
//! | line | meaning |
//! | --- | --- |
//! | `# ...`, blank | ignored |
//! | `type TEXT` | types the rest of the line (after one space) on a US layout; escapes `\n` (Enter), `\t` (Tab), `\b` (Backspace), `\\` |
//! | `key COMBO...` | presses and releases each combination in turn; a combination is QKeyCode names joined by `-` as in QEMU's `sendkey` (`ctrl-c`, `shift-a`, `ctrl-alt-delete`) |
//! | `press NAME...` / `release NAME...` | holds / lets go of keys |
//! | `wait DURATION` | pauses: `250ms`, `2s`, `1.5s` |
//! | `expect TEXT [TIMEOUT]` | waits until the serial output since the previous `expect` contains TEXT (default timeout 5s); TEXT may be `"quoted"` to keep spaces at its ends or to end in a duration-like word; escapes as in `type` plus `\r` and `\"` |
//!
//! The whole script is parsed before the guest starts; errors name the file
//! and the line. The runner types each character or combination, then waits
//! until the guest has read every byte of it (see [`ScriptTarget::settle`])
//! before the next, so keys go as fast as the guest takes them and none is
//! lost.
use std::fmt;
use std::time::Duration;

use super::keycodes::{us_char, Key, KeyNameError};

/// Default timeout of `expect`.
pub const DEFAULT_EXPECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Longest accepted duration (`wait`, `expect` timeouts): one day.
pub const MAX_DURATION: Duration = Duration::from_secs(86_400);

/// One parsed script line.
#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    /// Type characters on a US keyboard.
    Type(String),
    /// Press and release each combination in turn.
    Key(Vec<Vec<Key>>),
    /// Press and hold keys.
    Press(Vec<Key>),
    /// Release held keys.
    Release(Vec<Key>),
    /// Pause.
    Wait(Duration),
    /// Wait for text in the serial output.
    Expect {
        /// The text to find.
        text: String,
        /// How long to wait.
        timeout: Duration,
    },
}

/// A command with where it came from.
#[derive(Clone, Debug, PartialEq)]
pub struct Line {
    /// 1-based line number in the source.
    pub number: usize,
    /// The command.
    pub command: Command,
}

/// A parsed script.
#[derive(Clone, Debug, PartialEq)]
pub struct Script {
    /// Name of the source for messages (`FILE`, `<stdin>`, `--type`).
    pub source: String,
    /// The commands, in order.
    pub lines: Vec<Line>,
}

/// What is wrong with a script line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ParseErrorKind {
    /// The first word is not a command.
    UnknownCommand(String),
    /// A command that needs an argument has none.
    MissingArgument(&'static str),
    /// A command got arguments it does not take.
    ExtraArgument(&'static str),
    /// A key name is unknown or unsupported.
    Key(KeyNameError),
    /// A combination names the same key twice.
    RedundantKey(&'static str),
    /// A combination is empty or has an empty part (`ctrl--c`).
    EmptyCombo(String),
    /// `type` text holds a character a US keyboard cannot type.
    Untypeable(char),
    /// A backslash escape that is not defined.
    BadEscape(String),
    /// A quoted `expect` text is not closed.
    UnterminatedQuote,
    /// A duration is malformed or too long.
    BadDuration(String),
    /// The script is not valid UTF-8.
    NotUtf8,
}

/// A script error with its location.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    /// Source name.
    pub source: String,
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub kind: ParseErrorKind,
}

impl fmt::Display for ParseErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseErrorKind::UnknownCommand(word) => write!(
                f,
                "unknown command '{word}' (expected type, key, press, release, wait or expect)"
            ),
            ParseErrorKind::MissingArgument(what) => write!(f, "missing {what}"),
            ParseErrorKind::ExtraArgument(command) => {
                write!(f, "too many arguments to '{command}'")
            }
            ParseErrorKind::Key(error) => error.fmt(f),
            ParseErrorKind::RedundantKey(name) => {
                write!(f, "key '{name}' appears twice in one combination")
            }
            ParseErrorKind::EmptyCombo(combo) => write!(f, "malformed key combination '{combo}'"),
            ParseErrorKind::Untypeable(c) => {
                write!(f, "character {c:?} cannot be typed on a US keyboard")
            }
            ParseErrorKind::BadEscape(escape) => write!(
                f,
                "unknown escape '{escape}' (known: \\n \\t \\b \\\\, and \\r \\\" in expect)"
            ),
            ParseErrorKind::UnterminatedQuote => write!(f, "unterminated quoted text"),
            ParseErrorKind::BadDuration(text) => write!(
                f,
                "bad duration '{text}' (expected a number with unit ms or s, e.g. 250ms, 2s, at most 1 day)"
            ),
            ParseErrorKind::NotUtf8 => write!(f, "script is not valid UTF-8"),
        }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.source, self.line, self.kind)
    }
}

impl std::error::Error for ParseError {}

impl Script {
    /// Parses a whole script. `source` names it in error messages.
    pub fn parse(source: &str, text: &str) -> Result<Script, ParseError> {
        let mut lines = Vec::new();
        for (index, raw) in text.split('\n').enumerate() {
            let number = index + 1;
            let raw = raw.strip_suffix('\r').unwrap_or(raw);
            match parse_line(raw) {
                Ok(Some(command)) => lines.push(Line { number, command }),
                Ok(None) => {}
                Err(kind) => {
                    return Err(ParseError {
                        source: source.to_string(),
                        line: number,
                        kind,
                    });
                }
            }
        }
        Ok(Script {
            source: source.to_string(),
            lines,
        })
    }

    /// Parses script bytes, rejecting invalid UTF-8 with the line it is on.
    pub fn parse_bytes(source: &str, bytes: &[u8]) -> Result<Script, ParseError> {
        match std::str::from_utf8(bytes) {
            Ok(text) => Script::parse(source, text),
            Err(error) => {
                let line = 1 + bytes[..error.valid_up_to()]
                    .iter()
                    .filter(|b| **b == b'\n')
                    .count();
                Err(ParseError {
                    source: source.to_string(),
                    line,
                    kind: ParseErrorKind::NotUtf8,
                })
            }
        }
    }

    /// A script of one `type` line typing `text` (with the `type` escapes),
    /// as `--type TEXT` builds it.
    pub fn type_text(source: &str, text: &str) -> Result<Script, ParseError> {
        let command = parse_type(text).map_err(|kind| ParseError {
            source: source.to_string(),
            line: 1,
            kind,
        })?;
        Ok(Script {
            source: source.to_string(),
            lines: vec![Line { number: 1, command }],
        })
    }

    /// Appends the lines of `other` (keeping their own line numbers).
    pub fn extend(&mut self, other: Script) {
        self.lines.extend(other.lines);
    }
}

fn parse_line(line: &str) -> Result<Option<Command>, ParseErrorKind> {
    let trimmed = line.trim_start();
    if trimmed.is_empty() || trimmed.starts_with('#') {
        return Ok(None);
    }
    let (word, rest) = match trimmed.find([' ', '\t']) {
        Some(i) => (&trimmed[..i], &trimmed[i + 1..]),
        None => (trimmed, ""),
    };
    let command = match word {
        "type" => {
            if rest.is_empty() {
                return Err(ParseErrorKind::MissingArgument("text after 'type'"));
            }
            parse_type(rest)?
        }
        "key" => {
            let combos: Vec<Vec<Key>> = rest
                .split_whitespace()
                .map(parse_combo)
                .collect::<Result<_, _>>()?;
            if combos.is_empty() {
                return Err(ParseErrorKind::MissingArgument(
                    "key combination after 'key'",
                ));
            }
            Command::Key(combos)
        }
        "press" | "release" => {
            let keys: Vec<Key> = rest
                .split_whitespace()
                .map(|name| Key::from_name(name).map_err(ParseErrorKind::Key))
                .collect::<Result<_, _>>()?;
            if keys.is_empty() {
                return Err(ParseErrorKind::MissingArgument("key name"));
            }
            if word == "press" {
                Command::Press(keys)
            } else {
                Command::Release(keys)
            }
        }
        "wait" => {
            let mut words = rest.split_whitespace();
            let duration = words
                .next()
                .ok_or(ParseErrorKind::MissingArgument("duration"))?;
            if words.next().is_some() {
                return Err(ParseErrorKind::ExtraArgument("wait"));
            }
            Command::Wait(parse_duration(duration)?)
        }
        "expect" => parse_expect(rest)?,
        other => return Err(ParseErrorKind::UnknownCommand(other.to_string())),
    };
    Ok(Some(command))
}

fn parse_type(text: &str) -> Result<Command, ParseErrorKind> {
    let text = unescape(text, false)?;
    if let Some(c) = text.chars().find(|c| us_char(*c).is_none()) {
        return Err(ParseErrorKind::Untypeable(c));
    }
    Ok(Command::Type(text))
}

/// A combination such as `ctrl-alt-delete`.
pub fn parse_combo(combo: &str) -> Result<Vec<Key>, ParseErrorKind> {
    let mut keys: Vec<Key> = Vec::new();
    for part in combo.split('-') {
        if part.is_empty() {
            return Err(ParseErrorKind::EmptyCombo(combo.to_string()));
        }
        let key = Key::from_name(part).map_err(ParseErrorKind::Key)?;
        if keys.iter().any(|k| k.set2() == key.set2()) {
            return Err(ParseErrorKind::RedundantKey(key.name()));
        }
        keys.push(key);
    }
    Ok(keys)
}

fn parse_expect(rest: &str) -> Result<Command, ParseErrorKind> {
    let rest = rest.trim_start();
    if rest.is_empty() {
        return Err(ParseErrorKind::MissingArgument("text after 'expect'"));
    }
    if let Some(quoted) = rest.strip_prefix('"') {
        // Find the closing quote, skipping escaped characters.
        let mut end = None;
        let mut chars = quoted.char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => {
                    chars.next();
                }
                '"' => {
                    end = Some(i);
                    break;
                }
                _ => {}
            }
        }
        let end = end.ok_or(ParseErrorKind::UnterminatedQuote)?;
        let text = unescape(&quoted[..end], true)?;
        let after = quoted[end + 1..].trim();
        let timeout = match after {
            "" => DEFAULT_EXPECT_TIMEOUT,
            _ if after.contains(char::is_whitespace) => {
                return Err(ParseErrorKind::ExtraArgument("expect"))
            }
            _ => parse_duration(after)?,
        };
        if text.is_empty() {
            return Err(ParseErrorKind::MissingArgument("text after 'expect'"));
        }
        return Ok(Command::Expect { text, timeout });
    }
    // Unquoted: a last word that is a duration is the timeout.
    let trimmed = rest.trim_end();
    let (text, timeout) = match trimmed.rfind([' ', '\t']) {
        Some(i) => match parse_duration(&trimmed[i + 1..]) {
            Ok(timeout) => (&trimmed[..i], timeout),
            Err(_) => (rest, DEFAULT_EXPECT_TIMEOUT),
        },
        None => (rest, DEFAULT_EXPECT_TIMEOUT),
    };
    let text = unescape(text, true)?;
    if text.is_empty() {
        return Err(ParseErrorKind::MissingArgument("text after 'expect'"));
    }
    Ok(Command::Expect { text, timeout })
}

fn unescape(text: &str, expect: bool) -> Result<String, ParseErrorKind> {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('b') => out.push('\x08'),
            Some('\\') => out.push('\\'),
            Some('r') if expect => out.push('\r'),
            Some('"') if expect => out.push('"'),
            Some(other) => return Err(ParseErrorKind::BadEscape(format!("\\{other}"))),
            None => return Err(ParseErrorKind::BadEscape("\\".to_string())),
        }
    }
    Ok(out)
}

/// Parses `250ms`, `2s`, `1.5s`, `0ms`.
pub fn parse_duration(text: &str) -> Result<Duration, ParseErrorKind> {
    let bad = || ParseErrorKind::BadDuration(text.to_string());
    let (number, scale_ms) = if let Some(n) = text.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = text.strip_suffix('s') {
        (n, 1000.0)
    } else {
        return Err(bad());
    };
    if number.is_empty() || !number.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return Err(bad());
    }
    if number.starts_with('.') || number.ends_with('.') || number.matches('.').count() > 1 {
        return Err(bad());
    }
    let value: f64 = number.parse().map_err(|_| bad())?;
    let ms = value * scale_ms;
    if !ms.is_finite() || ms > MAX_DURATION.as_millis() as f64 {
        return Err(bad());
    }
    Ok(Duration::from_micros((ms * 1000.0).round() as u64))
}

/// One elementary action of a script.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stroke {
    /// Key down.
    Down(Key),
    /// Key up.
    Up(Key),
    /// End of one character or combination: pace before the next.
    Settle,
}

/// The strokes of a key-sending command (`type`, `key`, `press`, `release`);
/// empty for `wait` and `expect`.
///
/// A character or combination presses its keys in order and releases them in
/// reverse order, then settles.
pub fn strokes(command: &Command) -> Vec<Stroke> {
    let mut out = Vec::new();
    let combo = |keys: &[Key], out: &mut Vec<Stroke>| {
        out.extend(keys.iter().map(|k| Stroke::Down(*k)));
        out.extend(keys.iter().rev().map(|k| Stroke::Up(*k)));
        out.push(Stroke::Settle);
    };
    match command {
        Command::Type(text) => {
            let shift = super::keycodes::key("shift");
            for c in text.chars() {
                // Parsing guarantees every character is typeable.
                if let Some((key, shifted)) = us_char(c) {
                    if shifted {
                        combo(&[shift, key], &mut out);
                    } else {
                        combo(&[key], &mut out);
                    }
                }
            }
        }
        Command::Key(combos) => {
            for keys in combos {
                combo(keys, &mut out);
            }
        }
        Command::Press(keys) => {
            out.extend(keys.iter().map(|k| Stroke::Down(*k)));
            out.push(Stroke::Settle);
        }
        Command::Release(keys) => {
            out.extend(keys.iter().map(|k| Stroke::Up(*k)));
            out.push(Stroke::Settle);
        }
        Command::Wait(_) | Command::Expect { .. } => {}
    }
    out
}

/// The machine a script types into: our VMM, or QEMU in the tests.
pub trait ScriptTarget {
    /// Sends one key event.
    fn key(&mut self, key: Key, down: bool) -> Result<(), String>;
    /// Called after each character or combination: returns once the guest
    /// has consumed what was sent (or the target's best approximation).
    fn settle(&mut self) -> Result<(), String>;
    /// Pauses for `duration` (`wait`).
    fn wait(&mut self, duration: Duration) -> Result<(), String>;
    /// Waits until the serial output since the previous `expect` contains
    /// `text`. On timeout, returns the tail of the output.
    fn expect(&mut self, text: &str, timeout: Duration) -> Result<(), ExpectError>;
}

/// Why an `expect` failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExpectError {
    /// The text did not appear in time; the output tail.
    Timeout(String),
    /// The target failed (the VM is gone, ...).
    Target(String),
}

/// Why a script run stopped early.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RunError {
    /// An `expect` timed out.
    ExpectTimeout {
        /// Script source name.
        source: String,
        /// Script line.
        line: usize,
        /// The text waited for.
        text: String,
        /// The timeout.
        timeout: Duration,
        /// Tail of the serial output.
        tail: String,
    },
    /// The target failed.
    Target {
        /// Script source name.
        source: String,
        /// Script line.
        line: usize,
        /// What failed.
        message: String,
    },
}

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunError::ExpectTimeout { source, line, text, timeout, tail } => write!(
                f,
                "{source}:{line}: expect {text:?} timed out after {timeout:?}; last serial output:\n{tail}"
            ),
            RunError::Target { source, line, message } => write!(f, "{source}:{line}: {message}"),
        }
    }
}

impl std::error::Error for RunError {}

/// Runs `script` against `target`, line by line.
pub fn run(script: &Script, target: &mut dyn ScriptTarget) -> Result<(), RunError> {
    for line in &script.lines {
        let target_error = |message: String| RunError::Target {
            source: script.source.clone(),
            line: line.number,
            message,
        };
        match &line.command {
            Command::Wait(duration) => target.wait(*duration).map_err(target_error)?,
            Command::Expect { text, timeout } => match target.expect(text, *timeout) {
                Ok(()) => {}
                Err(ExpectError::Timeout(tail)) => {
                    return Err(RunError::ExpectTimeout {
                        source: script.source.clone(),
                        line: line.number,
                        text: text.clone(),
                        timeout: *timeout,
                        tail,
                    })
                }
                Err(ExpectError::Target(message)) => return Err(target_error(message)),
            },
            command => {
                for stroke in strokes(command) {
                    match stroke {
                        Stroke::Down(key) => target.key(key, true),
                        Stroke::Up(key) => target.key(key, false),
                        Stroke::Settle => target.settle(),
                    }
                    .map_err(target_error)?;
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::keycodes::key;

    fn parse(text: &str) -> Result<Vec<Command>, ParseError> {
        Script::parse("t.keys", text).map(|s| s.lines.into_iter().map(|l| l.command).collect())
    }

    fn error(text: &str) -> (usize, ParseErrorKind) {
        let e = Script::parse("t.keys", text).unwrap_err();
        (e.line, e.kind)
    }

    #[test]
    fn full_grammar() {
        let script = Script::parse(
            "t.keys",
            "# comment\n\n  # indented comment\ntype echo Hi!\\n\nkey ctrl-c ret\npress shift\nrelease shift\nwait 250ms\nexpect > \nexpect \"done \" 2s\nexpect uptime: 10s\r\n",
        )
        .unwrap();
        let numbers: Vec<usize> = script.lines.iter().map(|l| l.number).collect();
        assert_eq!(numbers, [4, 5, 6, 7, 8, 9, 10, 11]);
        let commands: Vec<Command> = script.lines.into_iter().map(|l| l.command).collect();
        assert_eq!(
            commands,
            [
                Command::Type("echo Hi!\n".into()),
                Command::Key(vec![vec![key("ctrl"), key("c")], vec![key("ret")]]),
                Command::Press(vec![key("shift")]),
                Command::Release(vec![key("shift")]),
                Command::Wait(Duration::from_millis(250)),
                Command::Expect {
                    text: "> ".into(),
                    timeout: DEFAULT_EXPECT_TIMEOUT
                },
                Command::Expect {
                    text: "done ".into(),
                    timeout: Duration::from_secs(2)
                },
                Command::Expect {
                    text: "uptime:".into(),
                    timeout: Duration::from_secs(10)
                },
            ]
        );
    }

    #[test]
    fn type_keeps_spaces_and_escapes() {
        assert_eq!(
            parse("type  a b  ").unwrap(),
            [Command::Type(" a b  ".into())]
        );
        assert_eq!(
            parse("type a\\tb\\bc\\\\d\\n").unwrap(),
            [Command::Type("a\tb\x08c\\d\n".into())]
        );
        assert_eq!(parse("type\t#x").unwrap(), [Command::Type("#x".into())]);
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("0ms"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("86400s"), Ok(MAX_DURATION));
        for bad in [
            "", "5", "ms", "s", "-1s", "1.s", ".5s", "1..5s", "1e3ms", "2m", "86401s", "1 s",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn every_error_has_its_line() {
        let cases: Vec<(&str, ParseErrorKind)> = vec![
            ("jump", ParseErrorKind::UnknownCommand("jump".into())),
            ("Type x", ParseErrorKind::UnknownCommand("Type".into())),
            ("type", ParseErrorKind::MissingArgument("text after 'type'")),
            ("type é", ParseErrorKind::Untypeable('é')),
            ("type a\\qb", ParseErrorKind::BadEscape("\\q".into())),
            ("type a\\", ParseErrorKind::BadEscape("\\".into())),
            ("type \\r", ParseErrorKind::BadEscape("\\r".into())),
            (
                "key",
                ParseErrorKind::MissingArgument("key combination after 'key'"),
            ),
            (
                "key ctrl-foo",
                ParseErrorKind::Key(KeyNameError::Unknown("foo".into())),
            ),
            (
                "key pause",
                ParseErrorKind::Key(KeyNameError::Unsupported("pause")),
            ),
            ("key ctrl--c", ParseErrorKind::EmptyCombo("ctrl--c".into())),
            ("key -", ParseErrorKind::EmptyCombo("-".into())),
            ("key a-a", ParseErrorKind::RedundantKey("a")),
            ("press", ParseErrorKind::MissingArgument("key name")),
            (
                "release Shift",
                ParseErrorKind::Key(KeyNameError::Unknown("Shift".into())),
            ),
            ("wait", ParseErrorKind::MissingArgument("duration")),
            ("wait 5", ParseErrorKind::BadDuration("5".into())),
            ("wait 1s 2s", ParseErrorKind::ExtraArgument("wait")),
            (
                "expect",
                ParseErrorKind::MissingArgument("text after 'expect'"),
            ),
            ("expect \"abc", ParseErrorKind::UnterminatedQuote),
            (
                "expect \"abc\" soon",
                ParseErrorKind::BadDuration("soon".into()),
            ),
            (
                "expect \"abc\" 1s 2s",
                ParseErrorKind::ExtraArgument("expect"),
            ),
            (
                "expect \"\"",
                ParseErrorKind::MissingArgument("text after 'expect'"),
            ),
            ("expect a\\z", ParseErrorKind::BadEscape("\\z".into())),
        ];
        for (line, kind) in cases {
            let text = format!("# first\ntype ok\n{line}\ntype after\n");
            assert_eq!(error(&text), (3, kind), "{line:?}");
        }
        let e = Script::parse("dir/s.keys", "\n\nkey foo").unwrap_err();
        assert_eq!(e.to_string(), "dir/s.keys:3: unknown key name 'foo'");
        let e = Script::parse_bytes("b.keys", b"type a\ntype \xff\n").unwrap_err();
        assert_eq!((e.line, e.kind), (2, ParseErrorKind::NotUtf8));
    }

    #[test]
    fn expect_forms() {
        assert_eq!(
            parse("expect \"a \\\"b\\\" 5s\"").unwrap(),
            [Command::Expect {
                text: "a \"b\" 5s".into(),
                timeout: DEFAULT_EXPECT_TIMEOUT
            }]
        );
        // A last word that is not a duration belongs to the text.
        assert_eq!(
            parse("expect timer fired").unwrap(),
            [Command::Expect {
                text: "timer fired".into(),
                timeout: DEFAULT_EXPECT_TIMEOUT
            }]
        );
        assert_eq!(
            parse("expect 5s").unwrap(),
            [Command::Expect {
                text: "5s".into(),
                timeout: DEFAULT_EXPECT_TIMEOUT
            }]
        );
        assert_eq!(
            parse("expect a\\r\\n 250ms").unwrap(),
            [Command::Expect {
                text: "a\r\n".into(),
                timeout: Duration::from_millis(250)
            }]
        );
    }

    #[test]
    fn type_text_shorthand() {
        let s = Script::type_text("--type", "exit 3\\n").unwrap();
        assert_eq!(s.lines[0].command, Command::Type("exit 3\n".into()));
        let e = Script::type_text("--type", "x\\y").unwrap_err();
        assert_eq!(
            e.to_string(),
            "--type:1: unknown escape '\\y' (known: \\n \\t \\b \\\\, and \\r \\\" in expect)"
        );
    }

    #[test]
    fn strokes_press_shift_and_release_in_reverse() {
        use Stroke::*;
        let (shift, h, i, ctrl, c) = (key("shift"), key("h"), key("i"), key("ctrl"), key("c"));
        assert_eq!(
            strokes(&Command::Type("Hi".into())),
            [
                Down(shift),
                Down(h),
                Up(h),
                Up(shift),
                Settle,
                Down(i),
                Up(i),
                Settle
            ]
        );
        assert_eq!(
            strokes(&Command::Key(vec![vec![ctrl, c]])),
            [Down(ctrl), Down(c), Up(c), Up(ctrl), Settle]
        );
        assert_eq!(strokes(&Command::Press(vec![shift])), [Down(shift), Settle]);
        assert_eq!(strokes(&Command::Release(vec![shift])), [Up(shift), Settle]);
        assert!(strokes(&Command::Wait(Duration::ZERO)).is_empty());
    }

    #[derive(Default)]
    struct Recorder {
        log: Vec<String>,
        output: String,
    }

    impl ScriptTarget for Recorder {
        fn key(&mut self, key: Key, down: bool) -> Result<(), String> {
            self.log
                .push(format!("{}{}", if down { "+" } else { "-" }, key));
            Ok(())
        }
        fn settle(&mut self) -> Result<(), String> {
            self.log.push("|".into());
            Ok(())
        }
        fn wait(&mut self, duration: Duration) -> Result<(), String> {
            self.log.push(format!("wait {duration:?}"));
            Ok(())
        }
        fn expect(&mut self, text: &str, _timeout: Duration) -> Result<(), ExpectError> {
            if self.output.contains(text) {
                Ok(())
            } else {
                Err(ExpectError::Timeout(self.output.clone()))
            }
        }
    }

    #[test]
    fn runner_executes_in_order_and_reports_expect_line() {
        let script = Script::parse(
            "r.keys",
            "type a\nwait 1s\nexpect > \nkey ret\nexpect nope 1s\ntype b",
        )
        .unwrap();
        let mut target = Recorder {
            output: "> ".into(),
            ..Default::default()
        };
        let error = run(&script, &mut target).unwrap_err();
        assert_eq!(
            target.log,
            ["+a", "-a", "|", "wait 1s", "+ret", "-ret", "|"]
        );
        assert_eq!(
            error,
            RunError::ExpectTimeout {
                source: "r.keys".into(),
                line: 5,
                text: "nope".into(),
                timeout: Duration::from_secs(1),
                tail: "> ".into()
            }
        );
        assert!(error
            .to_string()
            .starts_with("r.keys:5: expect \"nope\" timed out after 1s"));
    }
}
