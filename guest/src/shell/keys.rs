//! Input bytes to the keys the shell acts on: scancode set 1 bytes from the
//! keyboard (US 104-key layout), and bytes from a serial terminal on COM1.
//!
//! The i8042 translates the keyboard's scancode set 2 to set 1 (command
//! byte bit 6), so [`Decoder`] uses `pc_keyboard`'s `ScancodeSet1`.
//! [`SerialDecoder`] reads what a terminal sends: printable ASCII, CR (or
//! LF, or CR LF) for Enter, DEL or BS for Backspace, ETX (Ctrl+C).

use pc_keyboard::{
    layouts::Us104Key, DecodedKey, HandleControl, KeyCode, PS2Keyboard, ScancodeSet1,
};

/// What a key press means to the shell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Key {
    /// A printable character (layout, Shift and Caps Lock applied).
    Char(char),
    Enter,
    Backspace,
    /// Ctrl+C.
    Interrupt,
    /// Ctrl+Alt+Delete: reset the machine, as on a PC.
    Reboot,
}

/// Scancode set 1 bytes -> [`Key`]s (US 104-key layout).
///
/// Keys without a meaning to the shell are ignored: arrows, Home/End,
/// function keys, Tab, Escape, Delete (but Ctrl+Alt+Delete) and Ctrl with
/// anything but C.
pub struct Decoder {
    keyboard: PS2Keyboard<Us104Key, ScancodeSet1>,
}

impl Default for Decoder {
    fn default() -> Self {
        Self::new()
    }
}

impl Decoder {
    pub const fn new() -> Self {
        Self {
            keyboard: PS2Keyboard::new(
                ScancodeSet1::new(),
                Us104Key,
                HandleControl::MapLettersToUnicode,
            ),
        }
    }

    /// Feeds one byte; returns the key it completes, if any.
    pub fn feed(&mut self, byte: u8) -> Option<Key> {
        // Unknown codes (e.g. a stray 0xFA acknowledge) are ignored.
        let event = self.keyboard.add_byte(byte).ok()??;
        let code = event.code;
        // Enter and Backspace by key, not by character: with Ctrl held,
        // `pc_keyboard` maps the letters to control characters, so Ctrl+M,
        // Ctrl+J and Ctrl+H would otherwise pass for Enter and Backspace.
        let decoded = self.keyboard.process_keyevent(event)?;
        let modifiers = self.keyboard.get_modifiers();
        let ctrl_alt = (modifiers.lctrl || modifiers.rctrl) && (modifiers.lalt || modifiers.ralt);
        match (code, decoded) {
            // The keypad's Del (`.` with Num Lock on) counts too, as on a PC.
            (KeyCode::Delete | KeyCode::NumpadPeriod, _) if ctrl_alt => Some(Key::Reboot),
            (KeyCode::Return | KeyCode::NumpadEnter, _) => Some(Key::Enter),
            (KeyCode::Backspace, _) => Some(Key::Backspace),
            (KeyCode::C, DecodedKey::Unicode('\u{3}')) => Some(Key::Interrupt),
            (_, DecodedKey::Unicode(c)) if !c.is_control() => Some(Key::Char(c)),
            (_, DecodedKey::Unicode(_) | DecodedKey::RawKey(_)) => None,
        }
    }
}

/// Where [`SerialDecoder`] is in the byte stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SerialState {
    Ground,
    /// Just after a CR: an LF now is the rest of the same Enter.
    AfterCr,
    /// After ESC.
    Escape,
    /// In a CSI or SS3 sequence (`ESC [` / `ESC O`), until its final byte.
    Sequence,
}

/// Serial terminal bytes -> [`Key`]s.
///
/// Enter is CR, LF or CR LF (a terminal sends CR, a pipe LF, some both);
/// Backspace is DEL (0x7F) or BS (0x08); Ctrl+C is ETX (0x03); printable
/// ASCII is a character. Escape sequences (arrows, function keys, Alt+key)
/// and other control bytes are ignored, as the keyboard's are.
pub struct SerialDecoder {
    state: SerialState,
}

impl Default for SerialDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl SerialDecoder {
    pub const fn new() -> Self {
        Self {
            state: SerialState::Ground,
        }
    }

    /// Feeds one byte; returns the key it completes, if any.
    pub fn feed(&mut self, byte: u8) -> Option<Key> {
        match self.state {
            SerialState::Escape => {
                self.state = match byte {
                    b'[' | b'O' => SerialState::Sequence,
                    _ => SerialState::Ground, // Alt+key: ignored
                };
                None
            }
            SerialState::Sequence => {
                if (0x40..=0x7E).contains(&byte) {
                    self.state = SerialState::Ground;
                }
                None
            }
            SerialState::Ground | SerialState::AfterCr => {
                let after_cr = self.state == SerialState::AfterCr;
                self.state = SerialState::Ground;
                match byte {
                    b'\r' => {
                        self.state = SerialState::AfterCr;
                        Some(Key::Enter)
                    }
                    b'\n' if after_cr => None,
                    b'\n' => Some(Key::Enter),
                    0x7F | 0x08 => Some(Key::Backspace),
                    0x03 => Some(Key::Interrupt),
                    0x1B => {
                        self.state = SerialState::Escape;
                        None
                    }
                    0x20..=0x7E => Some(Key::Char(char::from(byte))),
                    _ => None,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Key::{self, *};
    use super::*;
    use std::vec::Vec;

    fn serial(bytes: &[u8]) -> Vec<Key> {
        let mut d = SerialDecoder::new();
        bytes.iter().filter_map(|&b| d.feed(b)).collect()
    }

    #[test]
    fn serial_bytes_are_characters_and_edit_keys() {
        assert_eq!(serial(b"Hi!"), [Char('H'), Char('i'), Char('!')]);
        assert_eq!(
            serial(b"a\x7f\x08\x03"),
            [Char('a'), Backspace, Backspace, Interrupt]
        );
    }

    #[test]
    fn serial_enter_is_cr_lf_or_both_once() {
        assert_eq!(serial(b"a\rb"), [Char('a'), Enter, Char('b')]);
        assert_eq!(serial(b"a\nb"), [Char('a'), Enter, Char('b')]);
        assert_eq!(serial(b"a\r\nb"), [Char('a'), Enter, Char('b')]);
        assert_eq!(serial(b"\r\r\n\n"), [Enter, Enter, Enter]);
    }

    #[test]
    fn serial_escape_sequences_and_control_bytes_are_ignored() {
        // Up arrow, F1 (SS3), Delete, Alt+x, a tab, a NUL.
        assert_eq!(serial(b"\x1b[A\x1bOP\x1b[3~\x1bx\t\x00z"), [Char('z')]);
    }

    fn decode(decoder: &mut Decoder, bytes: &[u8]) -> Vec<Key> {
        bytes.iter().filter_map(|&b| decoder.feed(b)).collect()
    }

    #[test]
    fn make_codes_give_characters_and_breaks_nothing() {
        let mut d = Decoder::new();
        assert_eq!(decode(&mut d, &[0x1E]), [Char('a')]);
        assert_eq!(decode(&mut d, &[0x9E]), []);
    }

    #[test]
    fn shift_applies_while_held_only() {
        let mut d = Decoder::new();
        assert_eq!(
            decode(&mut d, &[0x2A, 0x23, 0xA3, 0xAA, 0x17, 0x97]),
            [Char('H'), Char('i')]
        );
        assert_eq!(decode(&mut d, &[0x36, 0x02, 0x82, 0xB6]), [Char('!')]);
    }

    #[test]
    fn caps_lock_toggles_letters_and_shift_inverts_it() {
        let mut d = Decoder::new();
        assert_eq!(
            decode(&mut d, &[0x3A, 0xBA, 0x1E, 0x9E, 0x02, 0x82]),
            [Char('A'), Char('1')]
        );
        assert_eq!(decode(&mut d, &[0x2A, 0x1E, 0x9E, 0xAA]), [Char('a')]);
        assert_eq!(decode(&mut d, &[0x3A, 0xBA, 0x1E, 0x9E]), [Char('a')]);
    }

    #[test]
    fn ctrl_c_on_either_side_is_an_interrupt() {
        let mut d = Decoder::new();
        assert_eq!(decode(&mut d, &[0x1D, 0x2E, 0xAE, 0x9D]), [Interrupt]);
        // Right Ctrl is E0-prefixed: E0 1D, E0 9D.
        assert_eq!(
            decode(&mut d, &[0xE0, 0x1D, 0x2E, 0xAE, 0xE0, 0x9D]),
            [Interrupt]
        );
        assert_eq!(decode(&mut d, &[0x2E, 0xAE]), [Char('c')], "Ctrl released");
    }

    #[test]
    fn ctrl_letters_that_are_control_characters_are_not_edit_keys() {
        let mut d = Decoder::new();
        // Ctrl+H, Ctrl+J, Ctrl+M, Ctrl+I.
        let bytes = [0x1D, 0x23, 0xA3, 0x24, 0xA4, 0x32, 0xB2, 0x17, 0x97, 0x9D];
        assert_eq!(decode(&mut d, &bytes), []);
    }

    #[test]
    fn enter_backspace_and_keypad_enter() {
        let mut d = Decoder::new();
        assert_eq!(
            decode(&mut d, &[0x0E, 0x8E, 0x1C, 0x9C, 0xE0, 0x1C, 0xE0, 0x9C]),
            [Backspace, Enter, Enter]
        );
    }

    #[test]
    fn e0_arrows_and_other_keys_are_ignored_without_losing_sync() {
        let mut d = Decoder::new();
        let ignored = [
            0xE0, 0x4B, 0xE0, 0xCB, // left arrow
            0xE0, 0x48, 0xE0, 0xC8, // up arrow
            0x0F, 0x8F, // Tab
            0x01, 0x81, // Escape
            0x3B, 0xBB, // F1
            0xE0, 0x53, 0xE0, 0xD3, // Delete
        ];
        assert_eq!(decode(&mut d, &ignored), []);
        // Ctrl+Delete and Alt+Delete alone mean nothing either.
        assert_eq!(decode(&mut d, &[0x1D, 0xE0, 0x53, 0xE0, 0xD3, 0x9D]), []);
        assert_eq!(decode(&mut d, &[0x38, 0xE0, 0x53, 0xE0, 0xD3, 0xB8]), []);
        assert_eq!(decode(&mut d, &[0x1E, 0x9E]), [Char('a')]);
    }

    #[test]
    fn a_stray_ack_is_skipped() {
        let mut d = Decoder::new();
        assert_eq!(decode(&mut d, &[0xFA, 0x1E, 0x9E]), [Char('a')]);
    }

    #[test]
    fn ctrl_alt_delete_reboots_with_either_ctrl_and_alt() {
        let mut d = Decoder::new();
        // Left Ctrl, left Alt, Delete (E0 53), released in turn.
        let left = [0x1D, 0x38, 0xE0, 0x53, 0xE0, 0xD3, 0xB8, 0x9D];
        assert_eq!(decode(&mut d, &left), [Reboot]);
        // Right Ctrl (E0 1D), right Alt (E0 38), and the keypad's Delete.
        let right = [0xE0, 0x1D, 0xE0, 0x38, 0x53, 0xD3, 0xE0, 0xB8, 0xE0, 0x9D];
        assert_eq!(decode(&mut d, &right), [Reboot]);
        assert_eq!(
            decode(&mut d, &[0x2E, 0xAE]),
            [Char('c')],
            "modifiers released"
        );
    }
}
