//! Input bytes to the keys the shell acts on: scancode set 1 bytes from the
//! keyboard (US 104-key layout), and bytes from a serial terminal on COM1.
//!
//! The i8042 translates the keyboard's scancode set 2 to set 1 (command
//! byte bit 6), so [`Decoder`] reads set 1. It is a table lookup per byte
//! and a handful of branches: it runs twice per typed character (make and
//! break code), and under an emulating hypervisor every guest instruction
//! costs a microsecond or more (a general decoder, `pc-keyboard`, took
//! about 200 instructions per character; its behaviour is kept exactly,
//! which a test checks against it on the host).
//! [`SerialDecoder`] reads what a terminal sends: printable ASCII, CR (or
//! LF, or CR LF) for Enter, DEL or BS for Backspace, ETX (Ctrl+C).

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

/// What a key (a set 1 code, with or without the E0 prefix) does.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Nothing the shell acts on (arrows, function keys, Tab, Escape, ...).
    Ignored,
    /// A letter: `plain` lower case, `shifted` upper case; Shift inverts
    /// Caps Lock; with Ctrl held only C means something (Ctrl+C).
    Letter,
    /// A symbol or digit key: `shifted` with Shift held (Caps Lock ignored).
    Symbol,
    /// A key whose character depends on no modifier (space, keypad * - + / 5).
    Plain,
    /// A keypad digit: its digit with Num Lock on, else a cursor key (ignored).
    KeypadDigit,
    /// The keypad's `.`/Del: `.` with Num Lock on; Ctrl+Alt+Del either way.
    KeypadPeriod,
    /// Delete (E0 53): Ctrl+Alt+Delete, else ignored.
    Delete,
    Enter,
    Backspace,
    /// Shift, Ctrl or Alt: the modifier bit in `plain`, held while pressed.
    Modifier,
    CapsLock,
    NumLock,
}

/// One entry of [`TABLE`].
#[derive(Clone, Copy)]
struct Entry {
    kind: Kind,
    plain: u8,
    shifted: u8,
}

const LSHIFT: u8 = 1 << 0;
const RSHIFT: u8 = 1 << 1;
const LCTRL: u8 = 1 << 2;
const RCTRL: u8 = 1 << 3;
const LALT: u8 = 1 << 4;
const RALT: u8 = 1 << 5;
const SHIFT: u8 = LSHIFT | RSHIFT;
const CTRL: u8 = LCTRL | RCTRL;
const ALT: u8 = LALT | RALT;

/// Index of an E0-prefixed code in [`TABLE`].
const EXTENDED: usize = 0x80;

const fn entry(kind: Kind, plain: u8, shifted: u8) -> Entry {
    Entry {
        kind,
        plain,
        shifted,
    }
}

/// Sets `keys` entries from code `first` on: letters (upper case derived)
/// or symbols (`shifted` gives the shifted characters).
const fn row(
    mut table: [Entry; 256],
    first: usize,
    kind: Kind,
    plain: &[u8],
    shifted: &[u8],
) -> [Entry; 256] {
    let mut i = 0;
    while i < plain.len() {
        let upper = if matches!(kind, Kind::Letter) {
            plain[i].to_ascii_uppercase()
        } else {
            shifted[i]
        };
        table[first + i] = entry(kind, plain[i], upper);
        i += 1;
    }
    table
}

/// Set 1 make codes (0x00-0x7F) and E0-prefixed make codes (0x80 + code)
/// to what the key does, US 104-key layout. Unlisted codes are ignored.
static TABLE: [Entry; 256] = {
    use Kind::*;
    let mut t = [entry(Ignored, 0, 0); 256];
    t = row(t, 0x02, Symbol, b"1234567890-=", b"!@#$%^&*()_+");
    t = row(t, 0x10, Letter, b"qwertyuiop", b"");
    t = row(t, 0x1A, Symbol, b"[]", b"{}");
    t = row(t, 0x1E, Letter, b"asdfghjkl", b"");
    t = row(t, 0x27, Symbol, b";'`", b":\"~");
    t = row(t, 0x2B, Symbol, b"\\", b"|");
    t = row(t, 0x2C, Letter, b"zxcvbnm", b"");
    t = row(t, 0x33, Symbol, b",./", b"<>?");
    t = row(t, 0x47, KeypadDigit, b"789", b"789");
    t = row(t, 0x4B, KeypadDigit, b"4", b"4");
    t = row(t, 0x4D, KeypadDigit, b"6", b"6");
    t = row(t, 0x4F, KeypadDigit, b"1230", b"1230");
    t[0x0E] = entry(Backspace, 0, 0);
    t[0x1C] = entry(Enter, 0, 0);
    t[0x1D] = entry(Modifier, LCTRL, 0);
    t[0x2A] = entry(Modifier, LSHIFT, 0);
    t[0x36] = entry(Modifier, RSHIFT, 0);
    t[0x37] = entry(Plain, b'*', b'*');
    t[0x38] = entry(Modifier, LALT, 0);
    t[0x39] = entry(Plain, b' ', b' ');
    t[0x3A] = entry(CapsLock, 0, 0);
    t[0x45] = entry(NumLock, 0, 0);
    t[0x4A] = entry(Plain, b'-', b'-');
    t[0x4C] = entry(Plain, b'5', b'5');
    t[0x4E] = entry(Plain, b'+', b'+');
    t[0x53] = entry(KeypadPeriod, b'.', b'.');
    t[EXTENDED + 0x1C] = entry(Enter, 0, 0); // keypad Enter
    t[EXTENDED + 0x1D] = entry(Modifier, RCTRL, 0);
    t[EXTENDED + 0x35] = entry(Plain, b'/', b'/'); // keypad /
    t[EXTENDED + 0x38] = entry(Modifier, RALT, 0);
    t[EXTENDED + 0x53] = entry(Delete, 0, 0);
    t
};

/// Where [`Decoder`] is in a multi-byte code.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Prefix {
    None,
    /// After E0: the next byte is an extended key.
    E0,
    /// After E1 (Pause: E1 1D 45 E1 9D C5): the next byte is E1-prefixed.
    E1,
}

/// Scancode set 1 bytes -> [`Key`]s (US 104-key layout).
///
/// Keys without a meaning to the shell are ignored: arrows, Home/End,
/// function keys, Tab, Escape, Delete (but Ctrl+Alt+Delete) and Ctrl with
/// any letter but C. Unknown codes (a stray 0xFA acknowledge) are ignored;
/// a prefix (E0, E1) applies to the one byte after it.
pub struct Decoder {
    prefix: Prefix,
    /// Shift, Ctrl and Alt keys held (`LSHIFT`... bits).
    held: u8,
    caps_lock: bool,
    /// On at power-on, as on a PC.
    num_lock: bool,
    /// Between Pause's E1 1D and E1 9D: its 45 is not Num Lock.
    in_pause: bool,
}

impl Default for Decoder {
    fn default() -> Self {
        Self::new()
    }
}

impl Decoder {
    pub const fn new() -> Self {
        Self {
            prefix: Prefix::None,
            held: 0,
            caps_lock: false,
            num_lock: true,
            in_pause: false,
        }
    }

    /// Feeds one byte; returns the key it completes, if any.
    pub fn feed(&mut self, byte: u8) -> Option<Key> {
        let prefix = self.prefix;
        self.prefix = Prefix::None;
        let make = byte & 0x80 == 0;
        let code = usize::from(byte & 0x7F);
        let entry = match prefix {
            Prefix::None => match byte {
                0xE0 => {
                    self.prefix = Prefix::E0;
                    return None;
                }
                0xE1 => {
                    self.prefix = Prefix::E1;
                    return None;
                }
                _ => TABLE[code],
            },
            Prefix::E0 => TABLE[EXTENDED | code],
            Prefix::E1 => {
                // E1 1D / E1 9D bracket Pause's Num Lock code.
                if code == 0x1D {
                    self.in_pause = make;
                }
                return None;
            }
        };
        if entry.kind == Kind::Modifier {
            if make {
                self.held |= entry.plain;
            } else {
                self.held &= !entry.plain;
            }
            return None;
        }
        if !make {
            return None;
        }
        let shift = self.held & SHIFT != 0;
        let ctrl = self.held & CTRL != 0;
        let ctrl_alt = ctrl && self.held & ALT != 0;
        let char = |c: u8| Some(Key::Char(char::from(c)));
        match entry.kind {
            Kind::Letter if ctrl => (entry.plain == b'c').then_some(Key::Interrupt),
            Kind::Letter if shift != self.caps_lock => char(entry.shifted),
            Kind::Letter | Kind::Plain => char(entry.plain),
            Kind::Symbol if shift => char(entry.shifted),
            Kind::Symbol => char(entry.plain),
            Kind::KeypadDigit => self.num_lock.then_some(Key::Char(char::from(entry.plain))),
            Kind::KeypadPeriod if ctrl_alt => Some(Key::Reboot),
            Kind::KeypadPeriod => self.num_lock.then_some(Key::Char('.')),
            Kind::Delete => ctrl_alt.then_some(Key::Reboot),
            Kind::Enter => Some(Key::Enter),
            Kind::Backspace => Some(Key::Backspace),
            Kind::CapsLock => {
                self.caps_lock = !self.caps_lock;
                None
            }
            Kind::NumLock => {
                if !self.in_pause {
                    self.num_lock = !self.num_lock;
                }
                None
            }
            Kind::Ignored | Kind::Modifier => None,
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
    fn num_lock_toggles_the_keypad_digits() {
        let mut d = Decoder::new();
        // Num Lock is on at start: keypad 7, 0, `.`, `*`, `-`, `+`, E0 35 `/`.
        let keypad = [0x47, 0xC7, 0x52, 0xD2, 0x53, 0xD3, 0x37, 0xB7, 0x4A, 0xCA];
        assert_eq!(
            decode(&mut d, &keypad),
            [Char('7'), Char('0'), Char('.'), Char('*'), Char('-')]
        );
        assert_eq!(
            decode(&mut d, &[0x4E, 0xCE, 0xE0, 0x35]),
            [Char('+'), Char('/')]
        );
        // Off: the digits are Home, Insert, ... and ignored; 5, `-`, `+`
        // remain. Each make code toggles, typematic repeats too (as
        // `pc_keyboard` did): three makes leave it off.
        assert_eq!(decode(&mut d, &[0x45, 0x45, 0x45, 0xC5]), []);
        assert_eq!(
            decode(&mut d, &[0x47, 0xC7, 0x52, 0x53, 0x4C, 0x4A, 0x4E]),
            [Char('5'), Char('-'), Char('+')]
        );
        assert_eq!(decode(&mut d, &[0x45, 0xC5, 0x4F]), [Char('1')]);
    }

    #[test]
    fn caps_lock_toggles_on_each_make_code() {
        let mut d = Decoder::new();
        assert_eq!(decode(&mut d, &[0x3A, 0x3A, 0xBA, 0x10]), [Char('q')]);
        assert_eq!(decode(&mut d, &[0x3A, 0xBA, 0x10]), [Char('Q')]);
    }

    #[test]
    fn print_screen_fake_shifts_and_pause_change_nothing() {
        let mut d = Decoder::new();
        // Print Screen: E0 2A E0 37, released E0 B7 E0 AA.
        let print_screen = [0xE0, 0x2A, 0xE0, 0x37, 0xE0, 0xB7, 0xE0, 0xAA];
        assert_eq!(decode(&mut d, &print_screen), []);
        assert_eq!(decode(&mut d, &[0x1E]), [Char('a')], "no Shift held");
        // Pause: E1 1D 45 E1 9D C5; its 1D is not Ctrl, its 45 not Num Lock.
        assert_eq!(decode(&mut d, &[0xE1, 0x1D, 0x45, 0xE1, 0x9D, 0xC5]), []);
        assert_eq!(decode(&mut d, &[0x2E, 0x47]), [Char('c'), Char('7')]);
    }

    #[test]
    fn ctrl_with_digits_and_symbols_types_them_and_alt_changes_nothing() {
        let mut d = Decoder::new();
        assert_eq!(
            decode(&mut d, &[0x1D, 0x02, 0x0C, 0x9D]),
            [Char('1'), Char('-')]
        );
        assert_eq!(decode(&mut d, &[0xE0, 0x38, 0x1E, 0xE0, 0xB8]), [Char('a')]);
    }

    /// The decoder it replaced: `pc_keyboard` with the same key mapping.
    struct Reference {
        keyboard:
            pc_keyboard::PS2Keyboard<pc_keyboard::layouts::Us104Key, pc_keyboard::ScancodeSet1>,
    }

    impl Reference {
        fn new() -> Self {
            Self {
                keyboard: pc_keyboard::PS2Keyboard::new(
                    pc_keyboard::ScancodeSet1::new(),
                    pc_keyboard::layouts::Us104Key,
                    pc_keyboard::HandleControl::MapLettersToUnicode,
                ),
            }
        }

        fn feed(&mut self, byte: u8) -> Option<Key> {
            use pc_keyboard::{DecodedKey, KeyCode};
            let event = self.keyboard.add_byte(byte).ok()??;
            let code = event.code;
            let decoded = self.keyboard.process_keyevent(event)?;
            let m = self.keyboard.get_modifiers();
            let ctrl_alt = (m.lctrl || m.rctrl) && (m.lalt || m.ralt);
            match (code, decoded) {
                (KeyCode::Delete | KeyCode::NumpadPeriod, _) if ctrl_alt => Some(Reboot),
                (KeyCode::Return | KeyCode::NumpadEnter, _) => Some(Enter),
                (KeyCode::Backspace, _) => Some(Backspace),
                (KeyCode::C, DecodedKey::Unicode('\u{3}')) => Some(Interrupt),
                (_, DecodedKey::Unicode(c)) if !c.is_control() => Some(Char(c)),
                (_, DecodedKey::Unicode(_) | DecodedKey::RawKey(_)) => None,
            }
        }
    }

    #[test]
    fn decodes_as_pc_keyboard_did_for_random_typing() {
        // Every key of the US 104-key board that set 1 codes in one or two
        // bytes (Pause and Print Screen are tested above): the main block,
        // modifiers, locks, keypad, E0 keys.
        let mut keys: Vec<(bool, u8)> = (0x01..=0x58).map(|c| (false, c)).collect();
        keys.retain(|&(_, c)| !(0x54..=0x56).contains(&c)); // not on a 104-key board
        for c in [
            0x1C, 0x1D, 0x35, 0x38, 0x47, 0x48, 0x49, 0x4B, 0x4D, 0x4F, 0x50, 0x51, 0x52, 0x53,
            0x5B, 0x5C, 0x5D,
        ] {
            keys.push((true, c));
        }
        let mut held = std::collections::BTreeSet::new();
        let (mut ours, mut reference) = (Decoder::new(), Reference::new());
        let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut keys_decoded = 0;
        for step in 0..200_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let key = keys[(seed % keys.len() as u64) as usize];
            let (extended, code) = key;
            // Press a key, or release a held one; a held key pressed again
            // is a typematic repeat.
            let make = !(held.contains(&key) && (seed >> 40).is_multiple_of(2));
            let mut bytes = Vec::new();
            if extended {
                bytes.push(0xE0);
            }
            bytes.push(if make { code } else { code | 0x80 });
            if make {
                held.insert(key);
            } else {
                held.remove(&key);
            }
            for byte in bytes {
                let (got, want) = (ours.feed(byte), reference.feed(byte));
                assert_eq!(got, want, "step {step}: byte {byte:#04x}, held {held:?}");
                keys_decoded += usize::from(want.is_some());
            }
        }
        assert!(
            keys_decoded > 20_000,
            "only {keys_decoded} keys: the walk is too narrow"
        );
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
