//! Text to keystrokes: what the VMM types when its stdin is a pipe or a
//! file (`printf 'exit 3\n' | vmm`).
//!
//! [`TextDecoder`] is a pure function of the bytes read, kept apart from
//! where they go: each character becomes one key combination of a US
//! keyboard ([`Typed::Keys`]), so another consumer (a serial console
//! input) can take the same bytes without the keyboard. The rules, as a
//! terminal would type the text:
//!
//! * printable ASCII: its key, with Shift for capitals and shifted symbols
//!   (as `type` in scripts);
//! * `\n`, `\r` and `\r\n`: one Enter; `\t` Tab; `\x08` and `DEL` (0x7F)
//!   Backspace; `\x1b` Esc;
//! * other control bytes 0x01-0x1A: Ctrl+letter (`\x03` is `ctrl-c`);
//! * anything else (non-ASCII, the remaining control bytes, invalid
//!   UTF-8): [`Typed::Untypeable`], skipped by the caller.
//!
//! Characters split between two reads are put together.
use super::keycodes::{key, us_char, Key};

/// One character of the text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Typed {
    /// Press these keys in order, release them in reverse order.
    Keys(Vec<Key>),
    /// A character a US keyboard cannot type (U+FFFD for invalid UTF-8).
    Untypeable(char),
}

/// Decodes a byte stream of text into key combinations; a pure state
/// machine.
#[derive(Debug, Default)]
pub struct TextDecoder {
    /// The start of a UTF-8 sequence cut off by the end of the last read.
    partial: Vec<u8>,
    /// The last character was `\r`: a `\n` right after it is the same Enter.
    after_cr: bool,
}

impl TextDecoder {
    /// A decoder at the start of the text.
    pub fn new() -> Self {
        Self::default()
    }

    /// Decodes the next bytes of the text.
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<Typed> {
        let mut data = std::mem::take(&mut self.partial);
        data.extend_from_slice(bytes);
        let mut out = Vec::new();
        let mut rest = &data[..];
        while !rest.is_empty() {
            match std::str::from_utf8(rest) {
                Ok(text) => {
                    self.chars(text, &mut out);
                    break;
                }
                Err(error) => {
                    let (valid, after) = rest.split_at(error.valid_up_to());
                    // Checked by `from_utf8` just now.
                    self.chars(std::str::from_utf8(valid).unwrap_or_default(), &mut out);
                    match error.error_len() {
                        Some(bad) => {
                            self.after_cr = false;
                            out.push(Typed::Untypeable(char::REPLACEMENT_CHARACTER));
                            rest = &after[bad..];
                        }
                        // A sequence cut off at the end: wait for the rest.
                        None => {
                            self.partial = after.to_vec();
                            break;
                        }
                    }
                }
            }
        }
        out
    }

    /// The end of the text: a cut-off UTF-8 sequence is untypeable.
    pub fn finish(&mut self) -> Vec<Typed> {
        if std::mem::take(&mut self.partial).is_empty() {
            Vec::new()
        } else {
            vec![Typed::Untypeable(char::REPLACEMENT_CHARACTER)]
        }
    }

    fn chars(&mut self, text: &str, out: &mut Vec<Typed>) {
        for c in text.chars() {
            let after_cr = std::mem::replace(&mut self.after_cr, c == '\r');
            if c == '\n' && after_cr {
                continue;
            }
            out.push(match char_keys(c) {
                Some(keys) => Typed::Keys(keys),
                None => Typed::Untypeable(c),
            });
        }
    }
}

/// The key combination that types `c` on a US keyboard (see the module's
/// rules), or `None`.
pub fn char_keys(c: char) -> Option<Vec<Key>> {
    if let Some((k, shift)) = us_char(c) {
        return Some(if shift {
            vec![key("shift"), k]
        } else {
            vec![k]
        });
    }
    match c {
        '\x7f' => Some(vec![key("backspace")]),
        '\x01'..='\x1a' => {
            let letter = char::from(b'a' + (c as u8 - 1));
            let (k, _) = us_char(letter)?;
            Some(vec![key("ctrl"), k])
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests;
