//! Scancode sets: the 8042's set 2 -> set 1 translation, set 3 codes, and
//! the short byte sequences a key event becomes.

/// The 8042's set 2 -> set 1 translation for bytes below 0x80 (the same table a
/// real controller applies with command byte bit 6). Bytes 0x80 and up pass
/// through unchanged except 0x83 (F7) and 0x84 (SysRq), see [`translate_byte`].
#[rustfmt::skip]
pub(super) const SET2_TO_SET1: [u8; 128] = [
    0xFF, 0x43, 0x41, 0x3F, 0x3D, 0x3B, 0x3C, 0x58, 0x64, 0x44, 0x42, 0x40, 0x3E, 0x0F, 0x29, 0x59, // 0x00
    0x65, 0x38, 0x2A, 0x70, 0x1D, 0x10, 0x02, 0x5A, 0x66, 0x71, 0x2C, 0x1F, 0x1E, 0x11, 0x03, 0x5B, // 0x10
    0x67, 0x2E, 0x2D, 0x20, 0x12, 0x05, 0x04, 0x5C, 0x68, 0x39, 0x2F, 0x21, 0x14, 0x13, 0x06, 0x5D, // 0x20
    0x69, 0x31, 0x30, 0x23, 0x22, 0x15, 0x07, 0x5E, 0x6A, 0x72, 0x32, 0x24, 0x16, 0x08, 0x09, 0x5F, // 0x30
    0x6B, 0x33, 0x25, 0x17, 0x18, 0x0B, 0x0A, 0x60, 0x6C, 0x34, 0x35, 0x26, 0x27, 0x19, 0x0C, 0x61, // 0x40
    0x6D, 0x73, 0x28, 0x74, 0x1A, 0x0D, 0x62, 0x6E, 0x3A, 0x36, 0x1C, 0x1B, 0x75, 0x2B, 0x63, 0x76, // 0x50
    0x55, 0x56, 0x77, 0x78, 0x79, 0x7A, 0x0E, 0x7B, 0x7C, 0x4F, 0x7D, 0x4B, 0x47, 0x7E, 0x7F, 0x6F, // 0x60
    0x52, 0x53, 0x50, 0x4C, 0x4D, 0x48, 0x01, 0x45, 0x57, 0x4E, 0x51, 0x4A, 0x37, 0x49, 0x46, 0x54, // 0x70
];

/// One byte through the controller's translation table.
pub(super) fn translate_byte(b: u8) -> u8 {
    match b {
        0x00..=0x7F => SET2_TO_SET1[usize::from(b)],
        0x83 => 0x41, // F7, the one set-2 make code above 0x7F
        0x84 => 0x54, // SysRq (Alt+Print Screen)
        _ => b,
    }
}

/// Translates a whole set-2 sequence to set 1: a 0xF0 break prefix is swallowed
/// and sets bit 7 of the next translated byte; 0xE0/0xE1 prefixes pass.
pub(super) fn translate_seq(seq: &Seq) -> Seq {
    let mut out = Seq::default();
    let mut released = false;
    for &b in seq.as_slice() {
        if b == 0xF0 {
            released = true;
            continue;
        }
        let t = translate_byte(b);
        out.push(if released { t | 0x80 } else { t });
        released = false;
    }
    out
}

/// Set-3 code of a set-2 key (codes as in QEMU's keycodemapdb), `None` for
/// keys we do not map (they are not sent).
/// Set 3 reuses the set-2 code for most of the main block; extended keys lose
/// their 0xE0 prefix and get codes of their own.
pub(super) fn set3_code(set2: u16) -> Option<u8> {
    let code = match set2 {
        0x76 => 0x08, // Esc
        0x05 => 0x07, // F1
        0x06 => 0x0F,
        0x04 => 0x17,
        0x0C => 0x1F,
        0x03 => 0x27,
        0x0B => 0x2F,
        0x83 => 0x37,
        0x0A => 0x3F,
        0x01 => 0x47,
        0x09 => 0x4F,
        0x78 => 0x56,
        0x07 => 0x5E, // F12
        0x14 => 0x11, // Left Ctrl
        0x11 => 0x19, // Left Alt
        0x58 => 0x14, // Caps Lock
        0x61 => 0x13, // 102nd key
        0x7E => 0x5F, // Scroll Lock
        0x77 => 0x76, // Num Lock
        0x7C => 0x7E, // Keypad *
        0x7B => 0x84, // Keypad -
        0x79 => 0x7C, // Keypad +
        0x84 => 0x57, // SysRq
        c @ 0x01..=0x7F => c as u8,
        0xE014 => 0x58, // Right Ctrl
        0xE011 => 0x39, // Right Alt
        0xE01F => 0x8B, // Left GUI
        0xE027 => 0x8C, // Right GUI
        0xE02F => 0x8D, // Menu
        0xE04A => 0x77, // Keypad /
        0xE05A => 0x79, // Keypad Enter
        0xE070 => 0x67, // Insert
        0xE06C => 0x6E, // Home
        0xE07D => 0x6F, // Page Up
        0xE071 => 0x64, // Delete
        0xE069 => 0x65, // End
        0xE07A => 0x6D, // Page Down
        0xE075 => 0x63, // Up
        0xE06B => 0x61, // Left
        0xE072 => 0x60, // Down
        0xE074 => 0x6A, // Right
        0xE07C => 0x57, // Print Screen
        PAUSE | PAUSE_ALT => 0x62,
        _ => return None,
    };
    Some(code)
}

/// Pause has no single make code; callers pass 0xE114 (the start of its set-2
/// sequence `E1 14 77 ...`). 0xE077 is accepted too, as some tables use it.
pub(super) const PAUSE: u16 = 0xE114;
/// Alternative spelling of [`PAUSE`].
pub(super) const PAUSE_ALT: u16 = 0xE077;
/// Print Screen's set-2 code.
pub(super) const PRINT: u16 = 0xE07C;

/// Whether `code` is a key the keyboard can send: a set-2 make code (plus
/// F7's 0x83 and SysRq's 0x84), an extended `0xE0xx` code (Pause's
/// alternative spelling [`PAUSE_ALT`] among them), or [`PAUSE`].
pub(super) fn is_key(code: u16) -> bool {
    matches!(code, 0x01..=0x7F | 0x83 | 0x84 | 0xE001..=0xE07F | PAUSE)
}

/// A short byte sequence (the longest, Pause in set 2, has 8 bytes) built
/// without allocating.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Seq {
    pub(super) bytes: [u8; 8],
    pub(super) len: usize,
}

impl Seq {
    pub(super) fn from(bytes: &[u8]) -> Self {
        let mut s = Self::default();
        for &b in bytes {
            s.push(b);
        }
        s
    }
    pub(super) fn push(&mut self, b: u8) {
        // Every sequence we build is at most 8 bytes; a longer one would be a
        // bug here, never guest input, but we still refuse to panic.
        if let Some(slot) = self.bytes.get_mut(self.len) {
            *slot = b;
            self.len += 1;
        }
    }
    pub(super) fn as_slice(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}
