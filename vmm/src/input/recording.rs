//! `--record PATH`: the interactive session written as a keystroke script
//! that `--keys` replays.
//!
//! [`Recorder`] turns the terminal's key combinations, with the time each
//! arrived, into script lines (a pure state machine; [`Recording`] writes
//! them to the file as they complete):
//!
//! * characters a `type` line can carry (printable ASCII, Enter as `\n`,
//!   Tab as `\t`, Backspace as `\b`) gather into one quoted `type` line,
//!   which ends after each Enter;
//! * any other combination is a `key` line (`key left`, `key ctrl-c`);
//! * a pause longer than [`PAUSE_THRESHOLD`] between two keys (or before
//!   the first, from the start) is a `wait` line of its length in
//!   milliseconds; shorter ones are dropped, since replay is paced by the
//!   guest anyway.
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::keycodes::{us_char, Key};

/// Pauses longer than this are recorded as `wait` lines.
pub const PAUSE_THRESHOLD: Duration = Duration::from_millis(500);

/// Turns timed key combinations into script lines.
#[derive(Debug)]
pub struct Recorder {
    /// The `type` text gathered so far (unescaped).
    text: String,
    /// When the last key (or the recording) started.
    last: Instant,
}

impl Recorder {
    /// A recording that starts at `start`.
    pub fn new(start: Instant) -> Self {
        Recorder {
            text: String::new(),
            last: start,
        }
    }

    /// One combination (pressed in order, released in reverse) typed at
    /// `at`: the script lines it completes.
    pub fn combo(&mut self, keys: &[Key], at: Instant) -> Vec<String> {
        let mut lines = Vec::new();
        let pause = at.saturating_duration_since(self.last);
        self.last = at;
        if pause > PAUSE_THRESHOLD {
            lines.extend(self.flush());
            lines.push(format!("wait {}ms", pause.as_millis()));
        }
        match typed_char(keys) {
            Some(c) => {
                self.text.push(c);
                if c == '\n' {
                    lines.extend(self.flush());
                }
            }
            None => {
                lines.extend(self.flush());
                let names: Vec<&str> = keys.iter().map(|k| k.name()).collect();
                lines.push(format!("key {}", names.join("-")));
            }
        }
        lines
    }

    /// The end of the session: the `type` line still open, if any.
    pub fn finish(&mut self) -> Option<String> {
        self.flush()
    }

    fn flush(&mut self) -> Option<String> {
        if self.text.is_empty() {
            return None;
        }
        let text = std::mem::take(&mut self.text);
        Some(format!("type \"{}\"", escape(&text)))
    }
}

/// The character a `type` line types with exactly these keys, if any.
fn typed_char(keys: &[Key]) -> Option<char> {
    let (key, shifted) = match keys {
        [key] => (*key, false),
        [shift, key] if shift.name() == "shift" => (*key, true),
        _ => return None,
    };
    // `\n` rather than `\r` for Enter; Esc has no `type` escape.
    let candidates = (' '..='~').chain(['\n', '\t', '\x08']);
    candidates
        .into_iter()
        .find(|c| us_char(*c) == Some((key, shifted)))
}

/// `type` text inside quotes: `\\`, `\"`, `\n`, `\t`, `\b`.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\x08' => out.push_str("\\b"),
            c => out.push(c),
        }
    }
    out
}

/// A [`Recorder`] writing its lines to a file as they complete, so a
/// session that ends abruptly keeps what was typed up to then.
pub struct Recording {
    recorder: Recorder,
    out: BufWriter<File>,
    path: PathBuf,
    /// A write failed (reported once); later lines are dropped.
    failed: bool,
}

impl Recording {
    /// Creates (truncates) the file and writes its header.
    pub fn create(path: &Path) -> io::Result<Recording> {
        let mut out = BufWriter::new(File::create(path)?);
        writeln!(
            out,
            "# recorded by vmm --record; replay with: vmm --keys {}",
            path.display()
        )?;
        out.flush()?;
        Ok(Recording {
            recorder: Recorder::new(Instant::now()),
            out,
            path: path.to_path_buf(),
            failed: false,
        })
    }

    /// Records one combination typed now.
    pub fn combo(&mut self, keys: &[Key]) {
        let lines = self.recorder.combo(keys, Instant::now());
        self.write(lines);
    }

    /// Ends the recording (the open `type` line is written).
    pub fn finish(&mut self) {
        let line = self.recorder.finish();
        self.write(line);
    }

    fn write(&mut self, lines: impl IntoIterator<Item = String>) {
        if self.failed {
            return;
        }
        let mut result = Ok(());
        for line in lines {
            result = result.and_then(|()| writeln!(self.out, "{line}"));
        }
        if let Err(error) = result.and_then(|()| self.out.flush()) {
            self.failed = true;
            eprintln!(
                "vmm: --record {}: {error}; the recording stops here",
                self.path.display()
            );
        }
    }
}

#[cfg(test)]
mod tests;
