//! Text and keys as a serial terminal sends them, for `--console-input
//! serial`: what `type` lines and `key` combinations become on COM1's
//! receive line.
//!
//! A terminal sends bytes, not keys: Enter is CR (`\r`), Backspace is DEL
//! (0x7F), Ctrl+letter is the control character (Ctrl+C is 0x03), arrows
//! and Home/End/Delete are VT100/xterm escape sequences. A key with no byte
//! form (Shift alone, F13, `press`/`release` of a modifier, ...) cannot be
//! typed on a serial console; scripts that use one are rejected before the
//! guest starts.
use super::keycodes::{key, us_char, Key};
use super::machine::MachineControl;

/// Sends host text to the machine's serial console as a terminal would
/// ([`text_bytes`]): the one place text is routed to COM1. False if the
/// machine has no serial input.
pub fn send_text(machine: &dyn MachineControl, text: &str) -> bool {
    machine.serial_input(&text_bytes(text))
}

/// What `type TEXT` sends to a serial console: the text's bytes, with `\n`
/// (the script's Enter) sent as CR, the byte a terminal's Enter key sends.
pub fn text_bytes(text: &str) -> Vec<u8> {
    text.bytes()
        .map(|byte| if byte == b'\n' { b'\r' } else { byte })
        .collect()
}

/// The bytes a terminal sends for a key combination (keys pressed together),
/// or `None` if a terminal has none for it.
pub fn combo_bytes(keys: &[Key]) -> Option<Vec<u8>> {
    let ctrl = keys.iter().any(|k| matches!(k.name(), "ctrl" | "ctrl_r"));
    let shift = keys.iter().any(|k| matches!(k.name(), "shift" | "shift_r"));
    let others: Vec<Key> = keys
        .iter()
        .copied()
        .filter(|k| !matches!(k.name(), "ctrl" | "ctrl_r" | "shift" | "shift_r"))
        .collect();
    let [main] = others[..] else {
        return None;
    };
    let named: Option<&[u8]> = match main.name() {
        "ret" | "kp_enter" => Some(b"\r"),
        "backspace" => Some(b"\x7f"),
        "tab" => Some(b"\t"),
        "esc" => Some(b"\x1b"),
        "up" => Some(b"\x1b[A"),
        "down" => Some(b"\x1b[B"),
        "right" => Some(b"\x1b[C"),
        "left" => Some(b"\x1b[D"),
        "home" => Some(b"\x1b[H"),
        "end" => Some(b"\x1b[F"),
        "delete" => Some(b"\x1b[3~"),
        _ => None,
    };
    if let Some(bytes) = named {
        return (!ctrl && !shift).then(|| bytes.to_vec());
    }
    // A printable character: the one the US layout gives for this key
    // (with Shift if held).
    let c = (b' '..=b'~')
        .map(char::from)
        .find(|&c| us_char(c) == Some((main, shift)))?;
    if ctrl {
        // Ctrl+letter (either case) and Ctrl+Space as a terminal sends them.
        return match c {
            'a'..='z' | 'A'..='Z' => Some(vec![c.to_ascii_lowercase() as u8 - b'a' + 1]),
            ' ' => Some(vec![0]),
            _ => None,
        };
    }
    Some(vec![c as u8])
}

/// `ctrl-a` as a serial terminal's byte: the terminal's escape character,
/// sent through by `Ctrl+A Ctrl+A`.
pub fn ctrl_a() -> Vec<u8> {
    combo_bytes(&[key("ctrl"), key("a")]).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn combo(names: &[&str]) -> Option<Vec<u8>> {
        let keys: Vec<Key> = names.iter().map(|n| key(n)).collect();
        combo_bytes(&keys)
    }

    #[test]
    fn text_newlines_become_carriage_returns() {
        assert_eq!(text_bytes("ls\n"), b"ls\r");
        assert_eq!(text_bytes("a\tb\x08"), b"a\tb\x08");
    }

    #[test]
    fn keys_become_what_a_terminal_sends() {
        assert_eq!(combo(&["a"]), Some(b"a".to_vec()));
        assert_eq!(combo(&["shift", "a"]), Some(b"A".to_vec()));
        assert_eq!(combo(&["shift", "1"]), Some(b"!".to_vec()));
        assert_eq!(combo(&["ctrl", "c"]), Some(vec![3]));
        assert_eq!(combo(&["ret"]), Some(b"\r".to_vec()));
        assert_eq!(combo(&["backspace"]), Some(vec![0x7f]));
        assert_eq!(combo(&["up"]), Some(b"\x1b[A".to_vec()));
        assert_eq!(combo(&["spc"]), Some(b" ".to_vec()));
        assert_eq!(ctrl_a(), vec![1]);
    }

    #[test]
    fn keys_without_a_byte_form_are_refused() {
        assert_eq!(combo(&["shift"]), None);
        assert_eq!(combo(&["f1"]), None);
        assert_eq!(combo(&["ctrl", "alt", "delete"]), None);
        assert_eq!(combo(&["ctrl", "1"]), None);
        assert_eq!(combo(&["a", "b"]), None);
    }
}
