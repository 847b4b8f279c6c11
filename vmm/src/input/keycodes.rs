//! Key names and codes: QEMU's `QKeyCode` names, PS/2 scan code set 2 make
//! codes, QEMU's "qnum" numbers, and the US layout (character -> keys).
//!
//! The names are exactly QEMU's (`qapi/ui.json`, enum `QKeyCode`), so a key
//! that QMP `send-key`, HMP `sendkey` or a `--keys` script names means the same
//! key in QEMU and here. Set-2 codes of extended keys carry their `0xE0`
//! prefix in the high byte (`left` is `0xE06B`), which is what
//! [`crate::devices::i8042::I8042::key_event`] takes.
//!
//! A few QKeyCode names have no single set-2 make code on a PC keyboard
//! (`pause` sends an eight-byte sequence with no break code; `again`, `props`,
//! `copy` and friends are Sun keys; `lang1`/`lang2` have no break codes):
//! [`Key::from_name`] rejects those with [`KeyNameError::Unsupported`] rather
//! than sending something wrong.

use std::fmt;

/// One key of the emulated keyboard.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Key {
    name: &'static str,
    set2: u16,
    qnum: u16,
}

/// Why a key name was not accepted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KeyNameError {
    /// Not a QEMU QKeyCode name; the message suggests the nearest known
    /// name or combination, if one is close (see [`suggest`]).
    #[error("unknown key name '{0}'{hint}", hint = did_you_mean(.0))]
    Unknown(String),
    /// A QKeyCode name that has no single PS/2 set-2 make code.
    #[error("key '{0}' has no PS/2 set-2 scan code on this keyboard")]
    Unsupported(&'static str),
}

/// Common names that are not QEMU's, and QEMU's name for the key.
const ALIASES: &[(&str, &str)] = &[
    ("enter", "ret"),
    ("return", "ret"),
    ("space", "spc"),
    ("escape", "esc"),
    ("control", "ctrl"),
    ("del", "delete"),
    ("ins", "insert"),
    ("pageup", "pgup"),
    ("pagedown", "pgdn"),
];

/// The nearest known key name (or combination, for `ctrl+c`) to an unknown
/// `name`, if one is close: the same name in lower case (`RET` -> `ret`),
/// `+` written for `-` (`ctrl+c` -> `ctrl-c`), a common alias (`enter` ->
/// `ret`), or a name one edit or swap away (`shfit` -> `shift`, `dleete` ->
/// `delete`); none for names shorter than 3 characters or further away.
pub fn suggest(name: &str) -> Option<String> {
    let known = |n: &str| Key::from_name(n).is_ok();
    let lower = name.to_ascii_lowercase();
    if lower != name && known(&lower) {
        return Some(lower);
    }
    if lower.contains('+') {
        let combo = lower.replace('+', "-");
        if combo
            .split('-')
            .all(|part| known(part) || aliased(part).is_some())
        {
            let parts: Vec<&str> = combo
                .split('-')
                .map(|part| aliased(part).unwrap_or(part))
                .collect();
            return Some(parts.join("-"));
        }
    }
    if let Some(alias) = aliased(&lower) {
        return Some(alias.to_string());
    }
    // A single edit (insertion, deletion, substitution or swap) away, for
    // names long enough that one edit is a typo rather than another key.
    if lower.chars().count() < 3 {
        return None;
    }
    Key::all()
        .map(|key| key.name())
        .find(|candidate| edit_distance(&lower, candidate) <= 1)
        .map(str::to_string)
}

/// QEMU's name for a common alias.
fn aliased(name: &str) -> Option<&'static str> {
    ALIASES.iter().find(|(a, _)| *a == name).map(|(_, n)| *n)
}

/// ` (did you mean 'ret'?)` for an unknown name with a [`suggest`]ion.
fn did_you_mean(name: &str) -> String {
    suggest(name).map_or(String::new(), |s| format!(" (did you mean '{s}'?)"))
}

/// Optimal string alignment distance: insertions, deletions, substitutions
/// and swaps of neighbours each count 1.
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

/// `(QKeyCode name, set-2 make code, QEMU qnum)`.
///
/// qnum is QEMU's numeric key code (`{"type": "number"}` in `send-key`):
/// the XT (set-1) make code, with `0x80` added for `0xE0`-prefixed keys.
const KEYS: &[(&str, u16, u16)] = &[
    ("shift", 0x12, 0x2a),
    ("shift_r", 0x59, 0x36),
    ("alt", 0x11, 0x38),
    ("alt_r", 0xe011, 0xb8),
    ("ctrl", 0x14, 0x1d),
    ("ctrl_r", 0xe014, 0x9d),
    ("menu", 0xe02f, 0xdd),
    ("esc", 0x76, 0x01),
    ("1", 0x16, 0x02),
    ("2", 0x1e, 0x03),
    ("3", 0x26, 0x04),
    ("4", 0x25, 0x05),
    ("5", 0x2e, 0x06),
    ("6", 0x36, 0x07),
    ("7", 0x3d, 0x08),
    ("8", 0x3e, 0x09),
    ("9", 0x46, 0x0a),
    ("0", 0x45, 0x0b),
    ("minus", 0x4e, 0x0c),
    ("equal", 0x55, 0x0d),
    ("backspace", 0x66, 0x0e),
    ("tab", 0x0d, 0x0f),
    ("q", 0x15, 0x10),
    ("w", 0x1d, 0x11),
    ("e", 0x24, 0x12),
    ("r", 0x2d, 0x13),
    ("t", 0x2c, 0x14),
    ("y", 0x35, 0x15),
    ("u", 0x3c, 0x16),
    ("i", 0x43, 0x17),
    ("o", 0x44, 0x18),
    ("p", 0x4d, 0x19),
    ("bracket_left", 0x54, 0x1a),
    ("bracket_right", 0x5b, 0x1b),
    ("ret", 0x5a, 0x1c),
    ("a", 0x1c, 0x1e),
    ("s", 0x1b, 0x1f),
    ("d", 0x23, 0x20),
    ("f", 0x2b, 0x21),
    ("g", 0x34, 0x22),
    ("h", 0x33, 0x23),
    ("j", 0x3b, 0x24),
    ("k", 0x42, 0x25),
    ("l", 0x4b, 0x26),
    ("semicolon", 0x4c, 0x27),
    ("apostrophe", 0x52, 0x28),
    ("grave_accent", 0x0e, 0x29),
    ("backslash", 0x5d, 0x2b),
    ("z", 0x1a, 0x2c),
    ("x", 0x22, 0x2d),
    ("c", 0x21, 0x2e),
    ("v", 0x2a, 0x2f),
    ("b", 0x32, 0x30),
    ("n", 0x31, 0x31),
    ("m", 0x3a, 0x32),
    ("comma", 0x41, 0x33),
    ("dot", 0x49, 0x34),
    ("slash", 0x4a, 0x35),
    ("asterisk", 0x7c, 0x37),
    ("spc", 0x29, 0x39),
    ("caps_lock", 0x58, 0x3a),
    ("f1", 0x05, 0x3b),
    ("f2", 0x06, 0x3c),
    ("f3", 0x04, 0x3d),
    ("f4", 0x0c, 0x3e),
    ("f5", 0x03, 0x3f),
    ("f6", 0x0b, 0x40),
    ("f7", 0x83, 0x41),
    ("f8", 0x0a, 0x42),
    ("f9", 0x01, 0x43),
    ("f10", 0x09, 0x44),
    ("num_lock", 0x77, 0x45),
    ("scroll_lock", 0x7e, 0x46),
    ("kp_divide", 0xe04a, 0xb5),
    ("kp_multiply", 0x7c, 0x37),
    ("kp_subtract", 0x7b, 0x4a),
    ("kp_add", 0x79, 0x4e),
    ("kp_enter", 0xe05a, 0x9c),
    ("kp_decimal", 0x71, 0x53),
    ("sysrq", 0xe07c, 0xb7),
    ("kp_0", 0x70, 0x52),
    ("kp_1", 0x69, 0x4f),
    ("kp_2", 0x72, 0x50),
    ("kp_3", 0x7a, 0x51),
    ("kp_4", 0x6b, 0x4b),
    ("kp_5", 0x73, 0x4c),
    ("kp_6", 0x74, 0x4d),
    ("kp_7", 0x6c, 0x47),
    ("kp_8", 0x75, 0x48),
    ("kp_9", 0x7d, 0x49),
    ("less", 0x61, 0x56),
    ("f11", 0x78, 0x57),
    ("f12", 0x07, 0x58),
    ("print", 0xe07c, 0xb7),
    ("home", 0xe06c, 0xc7),
    ("pgup", 0xe07d, 0xc9),
    ("pgdn", 0xe07a, 0xd1),
    ("end", 0xe069, 0xcf),
    ("left", 0xe06b, 0xcb),
    ("up", 0xe075, 0xc8),
    ("down", 0xe072, 0xd0),
    ("right", 0xe074, 0xcd),
    ("insert", 0xe070, 0xd2),
    ("delete", 0xe071, 0xd3),
    ("stop", 0xe028, 0xe8),
    ("meta_l", 0xe01f, 0xdb),
    ("meta_r", 0xe027, 0xdc),
    ("compose", 0xe02f, 0xdd),
    ("ro", 0x51, 0x73),
    ("hiragana", 0x62, 0x77),
    ("henkan", 0x64, 0x79),
    ("yen", 0x6a, 0x7d),
    ("muhenkan", 0x67, 0x7b),
    ("katakanahiragana", 0x13, 0x70),
    ("kp_comma", 0x6d, 0x7e),
    ("kp_equals", 0x0f, 0x59),
    ("power", 0xe037, 0xde),
    ("sleep", 0xe03f, 0xdf),
    ("wake", 0xe05e, 0xe3),
    ("audionext", 0xe04d, 0x99),
    ("audioprev", 0xe015, 0x90),
    ("audiostop", 0xe03b, 0xa4),
    ("audioplay", 0xe034, 0xa2),
    ("audiomute", 0xe023, 0xa0),
    ("volumeup", 0xe032, 0xb0),
    ("volumedown", 0xe021, 0xae),
    ("mediaselect", 0xe050, 0xed),
    ("mail", 0xe048, 0xec),
    ("calculator", 0xe02b, 0xa1),
    ("computer", 0xe040, 0xeb),
    ("ac_home", 0xe03a, 0xb2),
    ("ac_back", 0xe038, 0xea),
    ("ac_forward", 0xe030, 0xe9),
    ("ac_refresh", 0xe020, 0xe7),
    ("ac_bookmarks", 0xe018, 0xe6),
];

/// QKeyCode names QEMU knows that have no single set-2 make code here.
const UNSUPPORTED: &[&str] = &[
    "unmapped", "pause", "again", "props", "undo", "front", "copy", "open", "paste", "find", "cut",
    "lf", "help", "lang1", "lang2", "f13", "f14", "f15", "f16", "f17", "f18", "f19", "f20", "f21",
    "f22", "f23", "f24",
];

impl Key {
    /// The key QEMU calls `name` (a `QKeyCode` name such as `a`, `ret`,
    /// `shift_r`, `kp_enter`). Names are case-sensitive, as in QMP.
    pub fn from_name(name: &str) -> Result<Key, KeyNameError> {
        if let Some(&(name, set2, qnum)) = KEYS.iter().find(|(n, _, _)| *n == name) {
            return Ok(Key { name, set2, qnum });
        }
        match UNSUPPORTED.iter().find(|n| **n == name) {
            Some(name) => Err(KeyNameError::Unsupported(name)),
            None => Err(KeyNameError::Unknown(name.to_string())),
        }
    }

    /// The key with QEMU's numeric code `qnum` (set-1 make code, `+0x80` for
    /// `0xE0`-prefixed keys), as `{"type": "number"}` in QMP `send-key`.
    pub fn from_qnum(qnum: i64) -> Option<Key> {
        KEYS.iter()
            .find(|(_, _, q)| i64::from(*q) == qnum)
            .map(|&(name, set2, qnum)| Key { name, set2, qnum })
    }

    /// The key whose set-2 make code is `set2` (`0xE0xx` for extended keys).
    /// Where QEMU has two names for one key, the first in QEMU's list wins.
    pub fn from_set2(set2: u16) -> Option<Key> {
        KEYS.iter()
            .find(|(_, s, _)| *s == set2)
            .map(|&(name, set2, qnum)| Key { name, set2, qnum })
    }

    /// The QKeyCode name.
    pub fn name(self) -> &'static str {
        self.name
    }

    /// The PS/2 set-2 make code, `0xE0xx` for extended keys.
    pub fn set2(self) -> u16 {
        self.set2
    }

    /// QEMU's numeric code (set-1 make code, `+0x80` when `0xE0`-prefixed).
    pub fn qnum(self) -> u16 {
        self.qnum
    }

    /// Whether this key is a modifier (Shift, Ctrl, Alt, Meta on either side).
    pub fn is_modifier(self) -> bool {
        matches!(
            self.name,
            "shift" | "shift_r" | "ctrl" | "ctrl_r" | "alt" | "alt_r" | "meta_l" | "meta_r"
        )
    }

    /// Every key of the table, in QEMU's QKeyCode order.
    pub fn all() -> impl Iterator<Item = Key> {
        KEYS.iter()
            .map(|&(name, set2, qnum)| Key { name, set2, qnum })
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)
    }
}

/// A key looked up at compile time; panics only on a typo in this crate.
pub(crate) fn key(name: &str) -> Key {
    match Key::from_name(name) {
        Ok(key) => key,
        Err(error) => unreachable!("built-in key table: {error}"),
    }
}

/// How a character is typed on a US keyboard: the key and whether Shift is
/// held. `None` for characters a US keyboard cannot type with one key
/// (non-ASCII, most control characters).
///
/// Control characters typed by keys of their own map to them: `\n` and `\r`
/// to `ret`, `\t` to `tab`, `\x08` to `backspace`, `\x1b` to `esc`.
/// Other control characters are typed as Ctrl combinations by the callers that
/// want that (the terminal); here they are `None`.
pub fn us_char(c: char) -> Option<(Key, bool)> {
    let (name, shift) = match c {
        'a'..='z' => return Some((letter(c), false)),
        'A'..='Z' => return Some((letter(c.to_ascii_lowercase()), true)),
        '0'..='9' => {
            let digits = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];
            (digits[c as usize - '0' as usize], false)
        }
        ' ' => ("spc", false),
        '\n' | '\r' => ("ret", false),
        '\t' => ("tab", false),
        '\x08' => ("backspace", false),
        '\x1b' => ("esc", false),
        '-' => ("minus", false),
        '=' => ("equal", false),
        '[' => ("bracket_left", false),
        ']' => ("bracket_right", false),
        '\\' => ("backslash", false),
        ';' => ("semicolon", false),
        '\'' => ("apostrophe", false),
        '`' => ("grave_accent", false),
        ',' => ("comma", false),
        '.' => ("dot", false),
        '/' => ("slash", false),
        '!' => ("1", true),
        '@' => ("2", true),
        '#' => ("3", true),
        '$' => ("4", true),
        '%' => ("5", true),
        '^' => ("6", true),
        '&' => ("7", true),
        '*' => ("8", true),
        '(' => ("9", true),
        ')' => ("0", true),
        '_' => ("minus", true),
        '+' => ("equal", true),
        '{' => ("bracket_left", true),
        '}' => ("bracket_right", true),
        '|' => ("backslash", true),
        ':' => ("semicolon", true),
        '"' => ("apostrophe", true),
        '~' => ("grave_accent", true),
        '<' => ("comma", true),
        '>' => ("dot", true),
        '?' => ("slash", true),
        _ => return None,
    };
    Some((key(name), shift))
}

fn letter(c: char) -> Key {
    let mut buf = [0u8; 4];
    key(c.encode_utf8(&mut buf))
}

#[cfg(test)]
mod tests;
