//! Keystroke scripts (`--keys FILE`, `--type TEXT`): the grammar, the parser
//! and a runner that types into any [`MachineControl`] (the VMM, or QEMU
//! in the tests).
//!
//! One command per line:
//!
//! | line | meaning |
//! | --- | --- |
//! | `# ...`, blank | ignored |
//! | `type TEXT` | types TEXT on a US layout; escapes `\n` (Enter), `\t` (Tab), `\b` (Backspace), `\\` |
//! | `key COMBO...` | presses and releases each combination in turn; a combination is QKeyCode names joined by `-` as in QEMU's `sendkey` (`ctrl-c`, `shift-a`, `ctrl-alt-delete`) |
//! | `press NAME...` / `release NAME...` | holds / lets go of keys |
//! | `wait DURATION` | pauses: `250ms`, `2s`, `1.5s` |
//! | `expect TEXT [TIMEOUT]` | waits until the serial output since the previous `expect` contains TEXT (default timeout 5s); a `"quoted"` TEXT may end in a duration-like word; escapes as in `type` plus `\r` and `\"` |
//!
//! TEXT of `type` and `expect`: unquoted, it is trimmed of spaces and tabs
//! at both ends (escapes such as `\t` are kept); `"quoted"`, it is kept as
//! written between the quotes, where `\"` is a quote. Escapes work the same
//! either way. `--type TEXT` is typed as written, never trimmed.
//!
//! The whole script is parsed before the guest starts; errors name the file
//! and the line. The runner types each character or combination, then waits
//! until the guest has read every byte of it (see
//! [`MachineControl::wait_input_drained`])
//! before the next, so keys go as fast as the guest takes them and none is
//! lost.
use std::time::Duration;

use super::keycodes::{us_char, Key, KeyNameError};
use super::machine::MachineControl;
use super::serial_text;
use super::worker::settle;
use super::ConsoleInput;

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
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParseErrorKind {
    /// The first word is not a command.
    #[error("unknown command '{0}' (expected type, key, press, release, wait or expect)")]
    UnknownCommand(String),
    /// A command that needs an argument has none.
    #[error("missing {0}")]
    MissingArgument(&'static str),
    /// A command got arguments it does not take.
    #[error("too many arguments to '{0}'")]
    ExtraArgument(&'static str),
    /// A key name is unknown or unsupported.
    #[error(transparent)]
    Key(KeyNameError),
    /// A combination names the same key twice.
    #[error("key '{0}' appears twice in one combination")]
    RedundantKey(&'static str),
    /// A combination is empty or has an empty part (`ctrl--c`).
    #[error("malformed key combination '{0}'")]
    EmptyCombo(String),
    /// `type` text holds a character a US keyboard cannot type.
    #[error("character {0:?} cannot be typed on a US keyboard")]
    Untypeable(char),
    /// A backslash escape that is not defined.
    #[error("unknown escape '{0}' (known: \\n \\t \\b \\\\, and \\r \\\" in expect)")]
    BadEscape(String),
    /// A quoted `expect` text is not closed.
    #[error("unterminated quoted text")]
    UnterminatedQuote,
    /// A duration is malformed or too long.
    #[error(
        "bad duration '{0}' (expected a number with unit ms or s, e.g. 250ms, 2s, at most 1 day)"
    )]
    BadDuration(String),
    /// The script is not valid UTF-8.
    #[error("script is not valid UTF-8")]
    NotUtf8,
    /// A key line that a serial terminal cannot send (`--console-input serial`).
    #[error("{0}: a serial terminal has no bytes for it (--console-input serial)")]
    NotOnSerial(String),
}

/// A script error with its location.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{script}:{line}: {kind}")]
pub struct ParseError {
    /// Source name (file, `<stdin>`, `--type`).
    pub script: String,
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub kind: ParseErrorKind,
}

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
                        script: source.to_string(),
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
                    script: source.to_string(),
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
            script: source.to_string(),
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

    /// Checks that every line can be sent to a serial console
    /// (`--console-input serial`): `key` combinations need a byte form (see
    /// [`serial_text::combo_bytes`]); `press` and `release` have none.
    pub fn check_serial(&self) -> Result<(), ParseError> {
        for line in &self.lines {
            let bad = match &line.command {
                Command::Key(combos) => combos
                    .iter()
                    .find(|keys| serial_text::combo_bytes(keys).is_none())
                    .map(|keys| {
                        let names: Vec<&str> = keys.iter().map(|k| k.name()).collect();
                        names.join("-")
                    }),
                Command::Press(_) | Command::Release(_) => {
                    Some(describe(&line.command).replacen(' ', " of ", 1))
                }
                _ => None,
            };
            if let Some(what) = bad {
                return Err(ParseError {
                    script: self.source.clone(),
                    line: line.number,
                    kind: ParseErrorKind::NotOnSerial(what),
                });
            }
        }
        Ok(())
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
        "type" => parse_type_line(rest)?,
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

/// Spaces and tabs: what unquoted text is trimmed of.
const BLANKS: [char; 2] = [' ', '\t'];

/// `type TEXT`: unquoted text is trimmed of spaces and tabs at both ends;
/// `"quoted"` text is kept as written (with `\"` for a quote).
fn parse_type_line(rest: &str) -> Result<Command, ParseErrorKind> {
    let rest = rest.trim_matches(BLANKS);
    let missing = ParseErrorKind::MissingArgument("text after 'type'");
    let text = match split_quoted(rest, false)? {
        Some((text, after)) => {
            if !after.trim_matches(BLANKS).is_empty() {
                return Err(ParseErrorKind::ExtraArgument("type"));
            }
            text
        }
        None => unescape(rest, false)?,
    };
    if text.is_empty() {
        return Err(missing);
    }
    typeable(text)
}

/// For `"quoted"` text: the text between the quotes (unescaped, with `\"`
/// allowed, and `\r` for `expect`) and what follows the closing quote; `None` if `text` does not
/// start with a quote.
fn split_quoted(text: &str, expect: bool) -> Result<Option<(String, &str)>, ParseErrorKind> {
    let Some(quoted) = text.strip_prefix('"') else {
        return Ok(None);
    };
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
    Ok(Some((
        unescape_with(&quoted[..end], expect, true)?,
        &quoted[end + 1..],
    )))
}

/// `--type TEXT`: typed as written (escapes as in `type`).
fn parse_type(text: &str) -> Result<Command, ParseErrorKind> {
    typeable(unescape(text, false)?)
}

/// A `type` command, if a US keyboard can type every character.
fn typeable(text: String) -> Result<Command, ParseErrorKind> {
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
    let rest = rest.trim_matches(BLANKS);
    if rest.is_empty() {
        return Err(ParseErrorKind::MissingArgument("text after 'expect'"));
    }
    if let Some((text, after)) = split_quoted(rest, true)? {
        let after = after.trim_matches(BLANKS);
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
    // Unquoted: a last word that is a duration is the timeout; the text is
    // trimmed at both ends.
    let (text, timeout) = match rest.rfind(BLANKS) {
        Some(i) => match parse_duration(&rest[i + 1..]) {
            Ok(timeout) => (rest[..i].trim_matches(BLANKS), timeout),
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

/// Unescapes unquoted text: `\n \t \b \\`, and `\r \"` for `expect`.
fn unescape(text: &str, expect: bool) -> Result<String, ParseErrorKind> {
    unescape_with(text, expect, expect)
}

/// Unescapes text: `\n \t \b \\`, `\r` with `cr` (`expect`), `\"` with
/// `quote` (`expect`, and any quoted text).
fn unescape_with(text: &str, cr: bool, quote: bool) -> Result<String, ParseErrorKind> {
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
            Some('r') if cr => out.push('\r'),
            Some('"') if quote => out.push('"'),
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

/// Why a script run stopped early.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RunError {
    /// An `expect` timed out.
    #[error(
        "{script}:{line}: expect {text:?} timed out after {timeout:?}; last serial output:\n{tail}"
    )]
    ExpectTimeout {
        /// Script source name.
        script: String,
        /// Script line.
        line: usize,
        /// The text waited for.
        text: String,
        /// The timeout.
        timeout: Duration,
        /// Tail of the serial output.
        tail: String,
    },
    /// The machine offers no serial input (`--console-input serial`).
    #[error("{script}:{line}: this machine cannot be typed into through its serial console")]
    NoSerialInput {
        /// Script source name.
        script: String,
        /// Script line.
        line: usize,
    },
    /// The machine stopped (guest exit, crash, reset, timeout, quit...)
    /// before this line was done.
    #[error("{script}:{line}: {what}: the machine stopped first")]
    Stopped {
        /// Script source name.
        script: String,
        /// Script line.
        line: usize,
        /// The line, as [`describe`] gives it (`expect "done"`).
        what: String,
    },
}

/// A command as messages name it: `expect "done"`, `type "ls\n"`,
/// `key ctrl-c`, `press shift`, `wait 2s`.
pub fn describe(command: &Command) -> String {
    let names = |keys: &[Key]| keys.iter().map(|k| k.name()).collect::<Vec<_>>().join("-");
    match command {
        Command::Type(text) => format!("type {text:?}"),
        Command::Expect { text, .. } => format!("expect {text:?}"),
        Command::Key(combos) => {
            let combos: Vec<String> = combos.iter().map(|c| names(c)).collect();
            format!("key {}", combos.join(" "))
        }
        Command::Press(keys) => {
            let keys: Vec<&str> = keys.iter().map(|k| k.name()).collect();
            format!("press {}", keys.join(" "))
        }
        Command::Release(keys) => {
            let keys: Vec<&str> = keys.iter().map(|k| k.name()).collect();
            format!("release {}", keys.join(" "))
        }
        Command::Wait(duration) => format!("wait {duration:?}"),
    }
}

/// How often an interrupted `wait` checks whether the machine stopped.
const WAIT_POLL: Duration = Duration::from_millis(20);

/// Runs `script` against `machine`, line by line, on the calling thread:
/// after each character or combination it waits until the guest has read
/// every keyboard byte; `expect` looks at the serial output after the
/// previous match (the first one from the start of the output).
///
/// When the machine stops, the line in progress (or the next one) fails
/// with [`RunError::Stopped`]; `wait` lines end early then. A key-sending
/// line whose keys were all queued before the stop counts as done (the
/// guest may stop in answer to its last key, as `type exit\n` does), so a
/// script whose last line is such a line finishes.
pub fn run(script: &Script, machine: &dyn MachineControl) -> Result<(), RunError> {
    run_on(script, machine, ConsoleInput::Keyboard)
}

/// [`run`], with `type` and `key` lines going to `console`: the keyboard,
/// or the serial console as a terminal's bytes (a whole line at a time,
/// then paced as keys are: the line is done when the guest read it all).
/// Check the script with [`Script::check_serial`] first.
pub fn run_on(
    script: &Script,
    machine: &dyn MachineControl,
    console: ConsoleInput,
) -> Result<(), RunError> {
    run_with_sleep(script, machine, console, &mut |duration| {
        let deadline = std::time::Instant::now() + duration;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() || machine.is_stopped() {
                return;
            }
            std::thread::sleep(left.min(WAIT_POLL));
        }
    })
}

/// [`run`] with `wait` lines passed to `sleep` (tests record them).
fn run_with_sleep(
    script: &Script,
    machine: &dyn MachineControl,
    console: ConsoleInput,
    sleep: &mut dyn FnMut(Duration),
) -> Result<(), RunError> {
    // Serial offset just past the previous `expect` match.
    let mut mark = 0;
    for line in &script.lines {
        let stopped = || RunError::Stopped {
            script: script.source.clone(),
            line: line.number,
            what: describe(&line.command),
        };
        if machine.is_stopped() {
            return Err(stopped());
        }
        match &line.command {
            Command::Wait(duration) => {
                sleep(*duration);
                if machine.is_stopped() {
                    return Err(stopped());
                }
            }
            Command::Expect { text, timeout } => {
                match machine.serial_wait_for(mark, text.as_bytes(), *timeout) {
                    Ok(end) => mark = end,
                    Err(_) if machine.is_stopped() => return Err(stopped()),
                    Err(tail) => {
                        return Err(RunError::ExpectTimeout {
                            script: script.source.clone(),
                            line: line.number,
                            text: text.clone(),
                            timeout: *timeout,
                            tail: tail_text(&tail),
                        })
                    }
                }
            }
            command if console == ConsoleInput::Serial => {
                let bytes = match command {
                    Command::Type(text) => serial_text::text_bytes(text),
                    Command::Key(combos) => combos
                        .iter()
                        .filter_map(|keys| serial_text::combo_bytes(keys))
                        .flatten()
                        .collect(),
                    // Refused by `check_serial`.
                    _ => Vec::new(),
                };
                if !machine.serial_input(&bytes) {
                    return Err(RunError::NoSerialInput {
                        script: script.source.clone(),
                        line: line.number,
                    });
                }
                // Queued whole: done even if the guest stops meanwhile.
                settle(machine);
            }
            command => {
                let strokes = strokes(command);
                let last = strokes.len().saturating_sub(1);
                for (index, stroke) in strokes.into_iter().enumerate() {
                    match stroke {
                        Stroke::Down(key) => machine.key_event(key, true),
                        Stroke::Up(key) => machine.key_event(key, false),
                        // After the last settle every key of the line is
                        // queued: the line is done even if the guest stopped.
                        Stroke::Settle => {
                            if !settle(machine) && index != last {
                                return Err(stopped());
                            }
                        }
                    }
                }
            }
        }
    }
    Ok(())
}

/// The last lines of output, for error messages.
fn tail_text(bytes: &[u8]) -> String {
    const MAX: usize = 2000;
    let start = bytes.len().saturating_sub(MAX);
    let text = String::from_utf8_lossy(&bytes[start..]);
    if start > 0 {
        format!("...{text}")
    } else {
        text.into_owned()
    }
}

#[cfg(test)]
mod tests;
