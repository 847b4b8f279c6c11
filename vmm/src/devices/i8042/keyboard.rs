//! The PS/2 keyboard behind the i8042: its command interpreter (reset,
//! scanning, LEDs, typematic, scancode set, identify, echo, resend), its
//! replies, and the host key events it still has to send.
use std::collections::VecDeque;

use shared::ps2::{
    leds, reply, Command, SCANCODE_SET_1, SCANCODE_SET_2, SCANCODE_SET_3, SCANCODE_SET_GET,
    TYPEMATIC_DEFAULT, TYPEMATIC_MASK,
};

use super::scancodes::*;

/// Modifier bits the keyboard tracks, because Pause and Print Screen send
/// different sequences while modifiers are held (as QEMU does).
pub(super) const MOD_CTRL: u8 = 0x01;
pub(super) const MOD_SHIFT: u8 = 0x02;
pub(super) const MOD_ALT_L: u8 = 0x04;
pub(super) const MOD_ALT_R: u8 = 0x08;

/// A host key event waiting in the keyboard's host-side queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct HostKey {
    /// Set-2 make code (`0xE0xx` for extended keys, [`PAUSE`] for Pause).
    pub(super) code: u16,
    pub(super) down: bool,
}

/// The PS/2 keyboard: its command interpreter and its output queues.
#[derive(Debug)]
pub(super) struct Keyboard {
    /// Replies to the last command, sent before any keystroke byte.
    pub(super) replies: VecDeque<u8>,
    /// Host key events not encoded yet, in arrival order. Unbounded on
    /// purpose (see the module documentation). An event is encoded (in the
    /// scancode set and translation then in effect) only when the keyboard
    /// is listening and the controller wants its next byte.
    pub(super) held: VecDeque<HostKey>,
    /// The bytes of the one event being sent, already encoded. At most one
    /// event's bytes (8) are ever here.
    pub(super) keys: VecDeque<u8>,
    /// The guest has enabled scanning explicitly (0xF4) at least once since
    /// power-on. Sticky: until a driver activated the keyboard, nobody listens.
    pub(super) activated: bool,
    /// Command waiting for its argument byte (see [`Self::command`] for which).
    pub(super) awaiting_arg: Option<Command>,
    /// Scanning enabled (0xF4; 0xF5 disables it; reset re-enables it).
    pub(super) scanning: bool,
    /// Scancode set, 1 to 3.
    pub(super) set: u8,
    /// Mirror of the controller's command byte bit 6. As in QEMU the keyboard
    /// encodes directly in translated form, so a command reply inserted between
    /// a 0xF0 prefix and its code can never corrupt the translation.
    pub(super) translate: bool,
    /// LED state from the last 0xED (bit 0 Scroll, 1 Num, 2 Caps).
    pub(super) leds: u8,
    /// Typematic rate/delay from the last 0xF3 (stored only: the host repeats).
    pub(super) typematic: u8,
    /// Held modifiers (`MOD_*`), for Pause and Print Screen. Updated when an
    /// event is encoded, so it follows the order the guest sees.
    pub(super) modifiers: u8,
    /// Last byte handed to the controller, for the resend command.
    pub(super) last_sent: u8,
    /// The event whose bytes are being sent (valid while some of them are in
    /// `keys` or in the controller's output buffer), so a machine reset can
    /// hand it whole to the next guest.
    pub(super) sending: Option<HostKey>,
}

impl Keyboard {
    pub(super) fn new() -> Self {
        Self {
            replies: VecDeque::new(),
            held: VecDeque::new(),
            keys: VecDeque::new(),
            activated: false,
            awaiting_arg: None,
            scanning: true,
            set: SCANCODE_SET_2,
            translate: false,
            leds: 0,
            typematic: TYPEMATIC_DEFAULT,
            modifiers: 0,
            last_sent: 0,
            sending: None,
        }
    }

    /// Whether keystroke bytes may go to the controller now: a driver
    /// activated the keyboard (0xF4 once), scanning is on, and no command
    /// waits for its argument. The other conditions are structural: reply
    /// bytes always go first ([`Self::next_byte`]), so keystrokes never land
    /// inside a reply sequence, and the controller asks for a byte only while
    /// its keyboard interface is enabled.
    pub(super) fn listening(&self) -> bool {
        self.activated && self.scanning && self.awaiting_arg.is_none()
    }

    /// Next byte for the controller: command replies first, then, while the
    /// keyboard is listening, the rest of the event being sent, then the next
    /// held event, encoded now. The flag tells whether the byte is a
    /// keystroke byte.
    pub(super) fn next_byte(&mut self) -> Option<(u8, bool)> {
        let next = match self.replies.pop_front() {
            Some(b) => Some((b, false)),
            None if self.listening() => {
                while self.keys.is_empty() {
                    let event = self.held.pop_front()?;
                    // Events that encode to nothing (Pause release, keys
                    // set 3 has no code for) just disappear.
                    let seq = self.encode(event);
                    self.keys.extend(seq.as_slice().iter().copied());
                    self.sending = Some(event);
                }
                self.keys.pop_front().map(|b| (b, true))
            }
            None => None,
        };
        if let Some((b, _)) = next {
            self.last_sent = b;
        }
        next
    }

    /// Reset to power-on defaults (0xFF, 0xF5, 0xF6). Unlike QEMU, queued
    /// keystrokes survive: they are host input we promised not to lose. The
    /// `activated` flag survives too: it records what the driver did.
    pub(super) fn set_defaults(&mut self) {
        self.set = SCANCODE_SET_2;
        self.leds = 0;
        self.typematic = TYPEMATIC_DEFAULT;
        self.scanning = true;
    }

    pub(super) fn reply(&mut self, bytes: &[u8]) {
        self.replies.extend(bytes.iter().copied());
    }

    /// A byte the guest wrote to port 0x60 for the keyboard.
    pub(super) fn command(&mut self, value: u8) {
        // A new command cancels whatever the guest left unread from the
        // previous one (QEMU's ps2_cqueue_reset); this also bounds `replies`.
        self.replies.clear();
        if let Some(cmd) = self.awaiting_arg.take() {
            self.argument(cmd, value);
            return;
        }
        let Some(cmd) = Command::from_u8(value) else {
            // QEMU acknowledges a zero byte as a harmless no-op; anything
            // else unnamed is not understood.
            let answer = if value == 0 {
                reply::ACK
            } else {
                reply::RESEND
            };
            self.reply(&[answer]);
            return;
        };
        match cmd {
            // The commands with an argument QEMU accepts (not
            // `Command::takes_argument`'s 0xFB and 0xFD, answered below).
            Command::SetLeds
            | Command::ScancodeSet
            | Command::SetTypematic
            | Command::KeyMakeBreak => {
                self.awaiting_arg = Some(cmd);
                self.reply(&[reply::ACK]);
            }
            Command::Echo => self.reply(&[reply::ECHO]),
            Command::Identify => {
                // An MF2 keyboard; the second ID byte goes through the
                // controller's translation like any other byte.
                let id2 = if self.translate {
                    translate_byte(reply::ID_MF2)
                } else {
                    reply::ID_MF2
                };
                self.reply(&[reply::ACK, reply::ID, id2]);
            }
            Command::EnableScanning => {
                self.scanning = true;
                self.activated = true;
                self.reply(&[reply::ACK]);
            }
            Command::DisableScanning => {
                self.set_defaults();
                self.scanning = false;
                self.reply(&[reply::ACK]);
            }
            Command::SetDefaults => {
                self.set_defaults();
                self.reply(&[reply::ACK]);
            }
            // Set 3 modes are not modelled; QEMU acknowledges this one only.
            Command::AllKeysTypematicMakeBreak => self.reply(&[reply::ACK]),
            Command::Resend => {
                let last = self.last_sent;
                self.reply(&[last]);
            }
            Command::Reset => {
                self.set_defaults();
                self.reply(&[reply::ACK, reply::SELF_TEST_PASSED]);
            }
            // As QEMU: not understood.
            Command::AllKeysTypematic
            | Command::AllKeysMakeBreak
            | Command::AllKeysMake
            | Command::KeyTypematic
            | Command::KeyMake => self.reply(&[reply::RESEND]),
        }
    }

    /// The argument byte of a two-byte keyboard command.
    pub(super) fn argument(&mut self, cmd: Command, value: u8) {
        match cmd {
            Command::ScancodeSet => match value {
                SCANCODE_SET_GET => {
                    let set = if self.translate {
                        translate_byte(self.set)
                    } else {
                        self.set
                    };
                    self.reply(&[reply::ACK, set]);
                }
                SCANCODE_SET_1..=SCANCODE_SET_3 => {
                    self.set = value;
                    self.reply(&[reply::ACK]);
                }
                _ => self.reply(&[reply::RESEND]),
            },
            Command::SetLeds => {
                self.leds = value & leds::MASK;
                self.reply(&[reply::ACK]);
            }
            Command::SetTypematic => {
                self.typematic = value & TYPEMATIC_MASK;
                self.reply(&[reply::ACK]);
            }
            // KeyMakeBreak (set 3 per-key make/break, not modelled):
            // acknowledged.
            _ => self.reply(&[reply::ACK]),
        }
    }

    /// A host key event; `code` is the set-2 make code (0xE0xx when extended).
    /// It waits in `held` until the keyboard is listening, whatever the
    /// scanning state: see the module documentation.
    pub(super) fn queue_key(&mut self, code: u16, down: bool) {
        if is_key(code) {
            self.held.push_back(HostKey { code, down });
        }
    }

    /// The bytes of a key event in the current scancode set, translated when
    /// the controller translates; updates the modifier state.
    pub(super) fn encode(&mut self, event: HostKey) -> Seq {
        let HostKey { code, down } = event;
        let modifier = match code {
            0x14 | 0xE014 => MOD_CTRL,
            0x12 | 0x59 => MOD_SHIFT,
            0x11 => MOD_ALT_L,
            0xE011 => MOD_ALT_R,
            _ => 0,
        };
        if down {
            self.modifiers |= modifier;
        } else {
            self.modifiers &= !modifier;
        }
        let seq = match self.set {
            SCANCODE_SET_3 => match set3_code(code) {
                Some(c) if down => Seq::from(&[c]),
                Some(c) => Seq::from(&[0xF0, c]),
                None => Seq::default(),
            },
            SCANCODE_SET_1 => translate_seq(&self.set2_sequence(code, down)),
            _ => self.set2_sequence(code, down),
        };
        if self.translate {
            translate_seq(&seq)
        } else {
            seq
        }
    }

    /// The set-2 bytes a key event produces (none for codes that are not
    /// keys; [`is_key`] keeps those out of the queue).
    pub(super) fn set2_sequence(&self, code: u16, down: bool) -> Seq {
        let ctrl = self.modifiers & MOD_CTRL != 0;
        let shift_or_ctrl = self.modifiers & (MOD_CTRL | MOD_SHIFT) != 0;
        let alt = self.modifiers & (MOD_ALT_L | MOD_ALT_R) != 0;
        match (code, down) {
            // Pause sends its whole make+break sequence on press, nothing on
            // release; with Ctrl it is Break.
            (PAUSE | PAUSE_ALT, false) => Seq::default(),
            (PAUSE | PAUSE_ALT, true) if ctrl => Seq::from(&[0xE0, 0x7E, 0xE0, 0xF0, 0x7E]),
            (PAUSE | PAUSE_ALT, true) => {
                Seq::from(&[0xE1, 0x14, 0x77, 0xE1, 0xF0, 0x14, 0xF0, 0x77])
            }
            // Print Screen: SysRq with Alt, bare E0 7C with Shift or Ctrl, and
            // wrapped in a fake Shift otherwise.
            (PRINT, true) if alt => Seq::from(&[0x84]),
            (PRINT, false) if alt => Seq::from(&[0xF0, 0x84]),
            (PRINT, true) if shift_or_ctrl => Seq::from(&[0xE0, 0x7C]),
            (PRINT, false) if shift_or_ctrl => Seq::from(&[0xE0, 0xF0, 0x7C]),
            (PRINT, true) => Seq::from(&[0xE0, 0x12, 0xE0, 0x7C]),
            (PRINT, false) => Seq::from(&[0xE0, 0xF0, 0x7C, 0xE0, 0xF0, 0x12]),
            _ if is_key(code) => {
                let mut s = Seq::default();
                if code & 0xFF00 == 0xE000 {
                    s.push(0xE0);
                }
                if !down {
                    s.push(0xF0);
                }
                s.push((code & 0xFF) as u8);
                s
            }
            _ => Seq::default(),
        }
    }
}
