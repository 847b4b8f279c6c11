//! Scancode set 1 bytes to the keys the shell acts on (US 104-key layout).
//!
//! The i8042 translates the keyboard's scancode set 2 to set 1 (command
//! byte bit 6), so the decoder uses `pc_keyboard`'s `ScancodeSet1`.

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

#[cfg(test)]
mod tests {
    use super::Key::{self, *};
    use super::*;
    use std::vec::Vec;

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
