//! Intel 8042 keyboard controller with a PS/2 keyboard attached (ports 0x60/0x64).
//!
//! Two devices live here, modelled after QEMU's `hw/input/pckbd.c` (the
//! controller) and `hw/input/ps2.c` (the keyboard):
//!
//! * the **controller**: status register, command byte (and the rest of its
//!   32-byte internal RAM), output port (reset line, A20), the single-byte output
//!   buffer that the guest reads on port 0x60, IRQ1/IRQ12;
//! * the **keyboard**: command set (reset, scanning, LEDs, typematic, scancode
//!   set, identify, echo, resend), scancode sets 1, 2 and 3, its command
//!   replies and the host key events it still has to send.
//!
//! There is no mouse: the aux port only carries bytes the guest writes itself
//! with 0xD3, and anything sent to the mouse with 0xD4 is answered with 0xFE
//! ("no device"), which drivers take as "no mouse".
//!
//! # Pacing and queueing policy
//!
//! A byte moves from the keyboard into the controller's output buffer only once
//! the guest has read the previous one (OBF clear), so no byte is ever
//! overwritten. Host key events wait in a **host-side queue of events**
//! (`VecDeque`, **unbounded**): a real keyboard buffers 16 bytes and QEMU's
//! PS/2 queue drops keys once its 16 bytes are full, but this VMM must never
//! lose a host keystroke (scripts type tens of thousands of characters faster
//! than the guest reads them). Hosts that want backpressure can watch
//! [`I8042::pending_input`], the number of events not completely read.
//! Guest-driven state is bounded: replies to keyboard commands are at most
//! three bytes (an unread reply is discarded by the next command, as in QEMU),
//! and controller replies use a single slot (the latest wins), so a guest
//! cannot make this model grow.
//!
//! # Keys typed before the guest listens: nothing lost, nothing early
//!
//! A held event is released (encoded and sent) only while the keyboard is
//! actually listening:
//!
//! 1. a driver has enabled scanning explicitly (keyboard command 0xF4) at least
//!    once since power-on: a sticky flag. Until a driver activated the
//!    keyboard nobody listens; drivers end their initialisation with 0xF4
//!    (Linux's atkbd, our guest, SeaBIOS, hence [`I8042::with_firmware_setup`]
//!    starts activated). A guest that never sends 0xF4 gets no keys;
//! 2. scanning is enabled now (not after 0xF5; reset 0xFF and 0xF6 re-enable
//!    it, as on a real keyboard and in QEMU);
//! 3. the controller's keyboard interface is enabled (command byte bit 4
//!    clear, i.e. not after 0xAD);
//! 4. no keyboard command is in progress: none waits for its argument, and
//!    no reply byte is left (replies always go first), so key bytes never
//!    interleave with a reply sequence such as the reset's FA AA.
//!
//! So keys typed while the guest boots reach it in order once its driver has
//! finished initialising, instead of being mixed into the initialisation's
//! replies (and flushed, or mistaken for them). The event is encoded when its
//! first byte goes out, in the scancode set and translation in effect then, so
//! the guest gets the set it selected before 0xF4. Only one event's bytes are
//! encoded at a time; the rest of them also wait while the gate is closed.
//! The one remaining overlap is the guest's own doing: a command written
//! while a multi-byte key sequence is half sent gets its reply between the
//! bytes already sent and the rest, as on a real keyboard.
//!
//! Replies to keyboard commands go ahead of keystroke bytes, as in QEMU's
//! `ps2_cqueue_*`; controller replies (0x20, 0xAA, ...) go ahead of both.

//! # Interrupts
//!
//! IRQ1 and IRQ12 are exposed as levels ([`I8042::irq1_level`]). The ISA PIC
//! latches IRQ1 on a *rising edge*, and when the guest reads a byte while another
//! is waiting the next one is loaded at once, so the level never visibly drops.
//! QEMU pulses the line in that case (lower, then raise); here the VMM asks
//! [`I8042::take_irq1_edge`] and, when it returns true, lowers the line before
//! applying the level again.
//!
//! The model does no I/O, has no threads and no clock: every guest input is
//! handled by plain state transitions and none of them can panic.
//!
//! # Differences from QEMU, on purpose
//!
//! * Keystrokes are never dropped: no queue limit, and a keyboard reset
//!   (0xFF, 0xF5, 0xF6) keeps keystrokes already queued (QEMU empties its
//!   queue). Key events that arrive while scanning is disabled (0xF5, or
//!   before the first 0xF4) are held, not dropped: a real keyboard (and QEMU)
//!   would not see them, as a real user's keys would not be typed at all
//!   while the machine boots, but our host queue is the user's intent.
//! * Keys are held until the first 0xF4 (see above); QEMU's keyboard scans
//!   from power-on, so keys typed early are there for whichever code reads
//!   first (and a driver's initial flush usually discards them).
//! * A controller reply (0x20, 0xAA, ...) issued while the output buffer is
//!   full waits for it instead of overwriting it; one slot, latest wins.
//! * Keyboard command 0xFE (resend) repeats the last byte the keyboard sent,
//!   as a real keyboard; QEMU answers 0xFE.
//! * No mouse: 0xD4 + byte is answered with 0xFE on the aux port. The aux
//!   interface test (0xA9) still passes and 0xD3 loops bytes back, so drivers
//!   find an aux port with nothing on it.
//! * Internal RAM bytes 0x01-0x1F are stored (0x61-0x7F write, 0x21-0x3F
//!   read back); QEMU ignores those commands. Other unknown controller
//!   commands are ignored, as in QEMU.
//! * A new controller command abandons one still waiting for its data byte.
//! * Alt+Print Screen sends plain SysRq (set 2 `84` / `F0 84`) without QEMU's
//!   extra Alt break/make around it.
//! * Set 3 sends `F0` breaks for every key (as QEMU) and drops the few
//!   extended keys it has no code for.

use std::collections::VecDeque;

use shared::ports::{I8042_COMMAND, I8042_DATA};

use crate::device::{Change, IrqOutput, MachineRequest, PortDevice};

// Status register (read of port 0x64).
/// Output buffer full: a byte waits on port 0x60.
const STATUS_OBF: u8 = 0x01;
/// System flag: set by the self-test (or by command byte bit 2), as in QEMU.
const STATUS_SYS: u8 = 0x04;
/// The last write went to port 0x64 (a command), not to 0x60 (data).
const STATUS_CMD: u8 = 0x08;
/// Keyboard not inhibited by the keylock switch; we have no keylock.
const STATUS_UNLOCKED: u8 = 0x10;
/// The byte in the output buffer comes from the aux (mouse) port.
const STATUS_AUX_OBF: u8 = 0x20;

// Controller command byte (internal RAM byte 0).
/// Keyboard bytes raise IRQ1.
const CB_KBD_INT: u8 = 0x01;
/// Aux bytes raise IRQ12.
const CB_AUX_INT: u8 = 0x02;
/// System flag, mirrored into the status register.
const CB_SYS: u8 = 0x04;
/// Keyboard interface disabled: keyboard bytes stay in the keyboard.
const CB_KBD_DISABLE: u8 = 0x10;
/// Aux interface disabled.
const CB_AUX_DISABLE: u8 = 0x20;
/// Translate the keyboard's set-2 bytes to set 1.
const CB_XLATE: u8 = 0x40;

// Output port (P2).
/// Low means "hold the CPU in reset".
const OUT_RESET: u8 = 0x01;
/// Gate A20.
const OUT_A20: u8 = 0x02;
/// Output buffer full with a keyboard byte (reported on 0xD0 reads).
const OUT_KBD_OBF: u8 = 0x10;
/// Output buffer full with an aux byte.
const OUT_AUX_OBF: u8 = 0x20;
/// Lines with no function that read as ones (QEMU's power-on value).
const OUT_ONES: u8 = 0xCC;

// Keyboard replies.
const KBD_ACK: u8 = 0xFA;
const KBD_RESEND: u8 = 0xFE;
const KBD_BAT_OK: u8 = 0xAA;
const KBD_ID: u8 = 0xAB;
/// Second identify byte of an MF2 keyboard, untranslated.
const KBD_ID_MF2: u8 = 0x83;
/// Typematic setting after reset: 10.9 characters/s, 500 ms delay.
const KBD_TYPEMATIC_DEFAULT: u8 = 0x2B;

/// Modifier bits the keyboard tracks, because Pause and Print Screen send
/// different sequences while modifiers are held (as QEMU does).
const MOD_CTRL: u8 = 0x01;
const MOD_SHIFT: u8 = 0x02;
const MOD_ALT_L: u8 = 0x04;
const MOD_ALT_R: u8 = 0x08;

/// The 8042's set 2 -> set 1 translation for bytes below 0x80 (the same table a
/// real controller applies with command byte bit 6). Bytes 0x80 and up pass
/// through unchanged except 0x83 (F7) and 0x84 (SysRq), see [`translate_byte`].
#[rustfmt::skip]
const SET2_TO_SET1: [u8; 128] = [
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
fn translate_byte(b: u8) -> u8 {
    match b {
        0x00..=0x7F => SET2_TO_SET1[usize::from(b)],
        0x83 => 0x41, // F7, the one set-2 make code above 0x7F
        0x84 => 0x54, // SysRq (Alt+Print Screen)
        _ => b,
    }
}

/// Translates a whole set-2 sequence to set 1: a 0xF0 break prefix is swallowed
/// and sets bit 7 of the next translated byte; 0xE0/0xE1 prefixes pass.
fn translate_seq(seq: &Seq) -> Seq {
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
fn set3_code(set2: u16) -> Option<u8> {
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
const PAUSE: u16 = 0xE114;
/// Alternative spelling of [`PAUSE`].
const PAUSE_ALT: u16 = 0xE077;
/// Print Screen's set-2 code.
const PRINT: u16 = 0xE07C;

/// Whether `code` is a key the keyboard can send: a set-2 make code (plus
/// F7's 0x83 and SysRq's 0x84), an extended `0xE0xx` code (Pause's
/// alternative spelling [`PAUSE_ALT`] among them), or [`PAUSE`].
fn is_key(code: u16) -> bool {
    matches!(code, 0x01..=0x7F | 0x83 | 0x84 | 0xE001..=0xE07F | PAUSE)
}

/// A short byte sequence (the longest, Pause in set 2, has 8 bytes) built
/// without allocating.
#[derive(Clone, Copy, Debug, Default)]
struct Seq {
    bytes: [u8; 8],
    len: usize,
}

impl Seq {
    fn from(bytes: &[u8]) -> Self {
        let mut s = Self::default();
        for &b in bytes {
            s.push(b);
        }
        s
    }
    fn push(&mut self, b: u8) {
        // Every sequence we build is at most 8 bytes; a longer one would be a
        // bug here, never guest input, but we still refuse to panic.
        if let Some(slot) = self.bytes.get_mut(self.len) {
            *slot = b;
            self.len += 1;
        }
    }
    fn as_slice(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

/// A host key event waiting in the keyboard's host-side queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct HostKey {
    /// Set-2 make code (`0xE0xx` for extended keys, [`PAUSE`] for Pause).
    code: u16,
    down: bool,
}

/// The PS/2 keyboard: its command interpreter and its output queues.
#[derive(Debug)]
struct Keyboard {
    /// Replies to the last command, sent before any keystroke byte.
    replies: VecDeque<u8>,
    /// Host key events not encoded yet, in arrival order. Unbounded on
    /// purpose (see the module documentation). An event is encoded (in the
    /// scancode set and translation then in effect) only when the keyboard
    /// is listening and the controller wants its next byte.
    held: VecDeque<HostKey>,
    /// The bytes of the one event being sent, already encoded. At most one
    /// event's bytes (8) are ever here.
    keys: VecDeque<u8>,
    /// The guest has enabled scanning explicitly (0xF4) at least once since
    /// power-on. Sticky: until a driver activated the keyboard, nobody listens.
    activated: bool,
    /// Command waiting for its argument byte (0xED, 0xF0, 0xF3, 0xFC).
    awaiting_arg: Option<u8>,
    /// Scanning enabled (0xF4; 0xF5 disables it; reset re-enables it).
    scanning: bool,
    /// Scancode set, 1 to 3.
    set: u8,
    /// Mirror of the controller's command byte bit 6. As in QEMU the keyboard
    /// encodes directly in translated form, so a command reply inserted between
    /// a 0xF0 prefix and its code can never corrupt the translation.
    translate: bool,
    /// LED state from the last 0xED (bit 0 Scroll, 1 Num, 2 Caps).
    leds: u8,
    /// Typematic rate/delay from the last 0xF3 (stored only: the host repeats).
    typematic: u8,
    /// Held modifiers (`MOD_*`), for Pause and Print Screen. Updated when an
    /// event is encoded, so it follows the order the guest sees.
    modifiers: u8,
    /// Last byte handed to the controller, for the resend command.
    last_sent: u8,
    /// The event whose bytes are being sent (valid while some of them are in
    /// `keys` or in the controller's output buffer), so a machine reset can
    /// hand it whole to the next guest.
    sending: Option<HostKey>,
}

impl Keyboard {
    fn new() -> Self {
        Self {
            replies: VecDeque::new(),
            held: VecDeque::new(),
            keys: VecDeque::new(),
            activated: false,
            awaiting_arg: None,
            scanning: true,
            set: 2,
            translate: false,
            leds: 0,
            typematic: KBD_TYPEMATIC_DEFAULT,
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
    fn listening(&self) -> bool {
        self.activated && self.scanning && self.awaiting_arg.is_none()
    }

    /// Next byte for the controller: command replies first, then, while the
    /// keyboard is listening, the rest of the event being sent, then the next
    /// held event, encoded now. The flag tells whether the byte is a
    /// keystroke byte.
    fn next_byte(&mut self) -> Option<(u8, bool)> {
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
    fn set_defaults(&mut self) {
        self.set = 2;
        self.leds = 0;
        self.typematic = KBD_TYPEMATIC_DEFAULT;
        self.scanning = true;
    }

    fn reply(&mut self, bytes: &[u8]) {
        self.replies.extend(bytes.iter().copied());
    }

    /// A byte the guest wrote to port 0x60 for the keyboard.
    fn command(&mut self, value: u8) {
        // A new command cancels whatever the guest left unread from the
        // previous one (QEMU's ps2_cqueue_reset); this also bounds `replies`.
        self.replies.clear();
        if let Some(cmd) = self.awaiting_arg.take() {
            self.argument(cmd, value);
            return;
        }
        match value {
            0xED | 0xF0 | 0xF3 | 0xFC => {
                self.awaiting_arg = Some(value);
                self.reply(&[KBD_ACK]);
            }
            0xEE => self.reply(&[0xEE]),
            0xF2 => {
                // An MF2 keyboard; the second ID byte goes through the
                // controller's translation like any other byte.
                let id2 = if self.translate {
                    translate_byte(KBD_ID_MF2)
                } else {
                    KBD_ID_MF2
                };
                self.reply(&[KBD_ACK, KBD_ID, id2]);
            }
            0xF4 => {
                self.scanning = true;
                self.activated = true;
                self.reply(&[KBD_ACK]);
            }
            0xF5 => {
                self.set_defaults();
                self.scanning = false;
                self.reply(&[KBD_ACK]);
            }
            0xF6 => {
                self.set_defaults();
                self.reply(&[KBD_ACK]);
            }
            // "All keys typematic" (set 3) and QEMU's harmless no-op 0x00.
            0xFA | 0x00 => self.reply(&[KBD_ACK]),
            0xFE => {
                let last = self.last_sent;
                self.reply(&[last]);
            }
            0xFF => {
                self.set_defaults();
                self.reply(&[KBD_ACK, KBD_BAT_OK]);
            }
            _ => self.reply(&[KBD_RESEND]),
        }
    }

    /// The argument byte of a two-byte keyboard command.
    fn argument(&mut self, cmd: u8, value: u8) {
        match cmd {
            0xF0 => match value {
                0 => {
                    let set = if self.translate {
                        translate_byte(self.set)
                    } else {
                        self.set
                    };
                    self.reply(&[KBD_ACK, set]);
                }
                1..=3 => {
                    self.set = value;
                    self.reply(&[KBD_ACK]);
                }
                _ => self.reply(&[KBD_RESEND]),
            },
            0xED => {
                self.leds = value & 0x07;
                self.reply(&[KBD_ACK]);
            }
            0xF3 => {
                self.typematic = value & 0x7F;
                self.reply(&[KBD_ACK]);
            }
            // 0xFC (set 3 per-key make/break) and anything else: acknowledged.
            _ => self.reply(&[KBD_ACK]),
        }
    }

    /// A host key event; `code` is the set-2 make code (0xE0xx when extended).
    /// It waits in `held` until the keyboard is listening, whatever the
    /// scanning state: see the module documentation.
    fn queue_key(&mut self, code: u16, down: bool) {
        if is_key(code) {
            self.held.push_back(HostKey { code, down });
        }
    }

    /// The bytes of a key event in the current scancode set, translated when
    /// the controller translates; updates the modifier state.
    fn encode(&mut self, event: HostKey) -> Seq {
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
            3 => match set3_code(code) {
                Some(c) if down => Seq::from(&[c]),
                Some(c) => Seq::from(&[0xF0, c]),
                None => Seq::default(),
            },
            1 => translate_seq(&self.set2_sequence(code, down)),
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
    fn set2_sequence(&self, code: u16, down: bool) -> Seq {
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

/// A byte in the controller's output buffer, with where it came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct OutByte {
    value: u8,
    /// From the aux port: sets status bit 5 and raises IRQ12 instead of IRQ1.
    aux: bool,
    /// A host keystroke byte (counted by `pending_input`).
    keystroke: bool,
}

impl OutByte {
    fn controller(value: u8) -> Self {
        Self {
            value,
            aux: false,
            keystroke: false,
        }
    }
    fn aux(value: u8) -> Self {
        Self {
            value,
            aux: true,
            keystroke: false,
        }
    }
}

/// The controller and its keyboard.
#[derive(Debug)]
pub struct I8042 {
    /// Internal RAM: byte 0 is the command byte, the other 31 bytes are only
    /// stored (commands 0x21-0x3F read them, 0x61-0x7F write them).
    ram: [u8; 32],
    /// Status bit 2. Sticky like QEMU's: set by the self-test or by a command
    /// byte with bit 2, never cleared by the guest.
    sys_flag: bool,
    /// Status bit 3.
    last_write_was_command: bool,
    /// Output port P2 as last written (bits 4/5 are computed on reads).
    output_port: u8,
    /// Controller command whose data byte the guest writes next to port 0x60.
    awaiting_data: Option<u8>,
    /// The output buffer: what the guest reads on port 0x60.
    output: Option<OutByte>,
    /// Last byte read from port 0x60; a read with OBF clear returns it again,
    /// as QEMU does.
    last_output: u8,
    /// A reply of the controller itself waiting for the output buffer. One slot,
    /// the latest wins; it goes ahead of keyboard bytes.
    controller_reply: Option<OutByte>,
    /// The guest pulsed the reset line.
    reset_requested: bool,
    /// A keyboard (controller) byte was loaded into the output buffer since the
    /// last `take_irq1_edge`.
    irq1_edge: bool,
    /// Same for aux bytes.
    irq12_edge: bool,
    kbd: Keyboard,
}

impl Default for I8042 {
    fn default() -> Self {
        Self::new()
    }
}

impl I8042 {
    /// Power-on state, as QEMU's reset: command byte 0x03 (IRQ1 and IRQ12
    /// enabled, no translation), status "command, unlocked", A20 on, the
    /// keyboard scanning in set 2.
    pub fn new() -> Self {
        let mut ram = [0; 32];
        ram[0] = CB_KBD_INT | CB_AUX_INT;
        Self {
            ram,
            sys_flag: false,
            last_write_was_command: true,
            output_port: OUT_RESET | OUT_A20 | OUT_ONES,
            awaiting_data: None,
            output: None,
            last_output: 0,
            controller_reply: None,
            reset_requested: false,
            irq1_edge: false,
            irq12_edge: false,
            kbd: Keyboard::new(),
        }
    }

    /// The state a PC BIOS (SeaBIOS, as QEMU runs it before a PVH kernel)
    /// leaves: self-test passed (SYS set), command byte 0x61 (IRQ1 on,
    /// translation on, aux disabled), keyboard reset and scanning in set 2,
    /// activated by the firmware's 0xF4. Use it to match QEMU for guests that
    /// do not initialise the i8042.
    pub fn with_firmware_setup() -> Self {
        let mut s = Self::new();
        s.sys_flag = true;
        s.kbd.activated = true;
        s.set_command_byte(CB_KBD_INT | CB_AUX_DISABLE | CB_XLATE);
        s
    }

    /// Guest read of 0x60 (the output buffer) or 0x64 (the status register).
    /// Other ports read as 0xFF.
    pub fn read(&mut self, port: u16) -> u8 {
        match port {
            I8042_DATA => match self.output.take() {
                Some(b) => {
                    self.last_output = b.value;
                    // The buffer is free: the next byte may move in now.
                    self.fill_output();
                    b.value
                }
                None => self.last_output,
            },
            I8042_COMMAND => self.status(),
            _ => 0xFF,
        }
    }

    /// Guest write of 0x60 (data: a controller command's argument or a byte for
    /// the keyboard) or 0x64 (a controller command). Other ports are ignored.
    pub fn write(&mut self, port: u16, value: u8) {
        match port {
            I8042_DATA => {
                self.last_write_was_command = false;
                match self.awaiting_data.take() {
                    Some(cmd) => self.controller_data(cmd, value),
                    None => self.kbd.command(value),
                }
            }
            I8042_COMMAND => {
                self.last_write_was_command = true;
                // A new command abandons one still waiting for its data byte.
                self.awaiting_data = None;
                self.controller_command(value);
            }
            _ => return,
        }
        self.fill_output();
    }

    /// Host key event: a set-2 make code (with `0xE0` prefix for extended keys
    /// as `0xE0xx`), pressed or released. Pause is `0xE114` (or `0xE077`).
    /// The event joins the host-side queue; it is encoded in the scancode set
    /// in effect (translated to set 1 when the command byte asks for it) when
    /// the keyboard is listening and its turn comes (see the module
    /// documentation). Only codes that are not keys are dropped.
    pub fn key_event(&mut self, set2_code: u16, down: bool) {
        self.kbd.queue_key(set2_code, down);
        self.fill_output();
    }

    /// Level of IRQ1: the output buffer holds a keyboard (or controller) byte
    /// and command byte bit 0 is set.
    pub fn irq1_level(&self) -> bool {
        self.ram[0] & CB_KBD_INT != 0 && matches!(self.output, Some(b) if !b.aux)
    }

    /// Level of IRQ12: the output buffer holds an aux byte and command byte
    /// bit 1 is set.
    pub fn irq12_level(&self) -> bool {
        self.ram[0] & CB_AUX_INT != 0 && matches!(self.output, Some(b) if b.aux)
    }

    /// Whether a new byte for IRQ1 entered the output buffer since the last
    /// call. Each such byte is a new interrupt (a rising edge for the PIC): if
    /// this returns true, lower IRQ1 before applying [`Self::irq1_level`], or a
    /// byte loaded right after the guest read the previous one goes unnoticed.
    pub fn take_irq1_edge(&mut self) -> bool {
        std::mem::take(&mut self.irq1_edge)
    }

    /// Same as [`Self::take_irq1_edge`] for IRQ12.
    pub fn take_irq12_edge(&mut self) -> bool {
        std::mem::take(&mut self.irq12_edge)
    }

    /// Machine reset: the controller and the keyboard go back to their
    /// power-on state ([`Self::new`]: command byte 0x03, scanning in set 2,
    /// not activated, so keys wait for the next driver's 0xF4), but host key
    /// events still queued are kept: nothing typed is lost. An event whose
    /// bytes were being delivered (some still in the keyboard or the output
    /// buffer) goes back to the front of the queue, to be sent whole to the
    /// next guest; an event the old guest read completely is gone with it.
    /// The held modifiers stay (the keys are still down on the host side).
    pub fn reset(&mut self) {
        let in_flight = matches!(self.output, Some(b) if b.keystroke) || !self.kbd.keys.is_empty();
        let mut held = std::mem::take(&mut self.kbd.held);
        if in_flight {
            if let Some(event) = self.kbd.sending {
                held.push_front(event);
            }
        }
        let modifiers = self.kbd.modifiers;
        *self = Self::new();
        self.kbd.held = held;
        self.kbd.modifiers = modifiers;
    }

    /// Whether the guest asked for a CPU reset (command 0xFE, any pulse command
    /// 0xF0-0xFE with bit 0 clear, or an output-port write with bit 0 clear)
    /// since the last call.
    pub fn take_reset_request(&mut self) -> bool {
        std::mem::take(&mut self.reset_requested)
    }

    /// Host key events the guest has not completely read: those still held
    /// (not listening yet, or waiting their turn) plus the one whose bytes are
    /// being delivered, if any. Zero means every key event so far has been
    /// consumed; the count never grows but by [`Self::key_event`].
    pub fn pending_input(&self) -> usize {
        // The buffer only ever holds a byte of the event whose remaining
        // bytes are in `keys` (they are encoded when the buffer is free), so
        // the two together are one event.
        let in_buffer = matches!(self.output, Some(b) if b.keystroke);
        self.kbd.held.len() + usize::from(in_buffer || !self.kbd.keys.is_empty())
    }

    /// State of the A20 gate (output port bit 1). No effect on our memory map;
    /// exposed for tracing.
    pub fn a20_enabled(&self) -> bool {
        self.output_port & OUT_A20 != 0
    }

    /// The controller command byte (internal RAM byte 0).
    pub fn command_byte(&self) -> u8 {
        self.ram[0]
    }

    /// The status register, as a read of port 0x64 returns it.
    fn status(&self) -> u8 {
        let mut s = STATUS_UNLOCKED;
        if let Some(b) = self.output {
            s |= STATUS_OBF;
            if b.aux {
                s |= STATUS_AUX_OBF;
            }
        }
        if self.sys_flag {
            s |= STATUS_SYS;
        }
        if self.last_write_was_command {
            s |= STATUS_CMD;
        }
        s
    }

    fn set_command_byte(&mut self, value: u8) {
        self.ram[0] = value;
        if value & CB_SYS != 0 {
            self.sys_flag = true;
        }
        self.kbd.translate = value & CB_XLATE != 0;
    }

    /// Output port as 0xD0 reports it, with the live buffer-full bits.
    fn output_port_value(&self) -> u8 {
        let mut v = self.output_port & !(OUT_KBD_OBF | OUT_AUX_OBF);
        match self.output {
            Some(b) if b.aux => v |= OUT_AUX_OBF,
            Some(_) => v |= OUT_KBD_OBF,
            None => {}
        }
        v
    }

    fn write_output_port(&mut self, value: u8) {
        self.output_port = value;
        if value & OUT_RESET == 0 {
            self.reset_requested = true;
        }
    }

    /// A controller command (write to port 0x64). Unknown commands are
    /// ignored, as in QEMU (which only logs them).
    fn controller_command(&mut self, cmd: u8) {
        match cmd {
            // Read internal RAM; 0x20 is the command byte.
            0x20..=0x3F => {
                self.controller_reply = Some(OutByte::controller(self.ram[usize::from(cmd & 0x1F)]))
            }
            // Write internal RAM: the byte follows on port 0x60. So do the
            // arguments of 0xD1-0xD4.
            0x60..=0x7F | 0xD1..=0xD4 => self.awaiting_data = Some(cmd),
            0xA7 => self.ram[0] |= CB_AUX_DISABLE,
            0xA8 => self.ram[0] &= !CB_AUX_DISABLE,
            // Interface tests: 0x00 means "no error" (for aux too, as QEMU).
            0xA9 | 0xAB => self.controller_reply = Some(OutByte::controller(0x00)),
            0xAA => {
                self.sys_flag = true;
                self.controller_reply = Some(OutByte::controller(0x55));
            }
            0xAD => self.ram[0] |= CB_KBD_DISABLE,
            0xAE => self.ram[0] &= !CB_KBD_DISABLE,
            // Input port: bit 7 "keyboard not inhibited", as QEMU.
            0xC0 => self.controller_reply = Some(OutByte::controller(0x80)),
            0xD0 => self.controller_reply = Some(OutByte::controller(self.output_port_value())),
            0xDD => self.output_port &= !OUT_A20,
            0xDF => self.output_port |= OUT_A20,
            // Pulse output lines 0-3 low for a moment: bit clear = pulse. Only
            // line 0 (CPU reset) matters; the port keeps its value afterwards.
            0xF0..=0xFF if cmd & 0x01 == 0 => self.reset_requested = true,
            _ => {}
        }
    }

    /// The data byte of a controller command (write to port 0x60 after it).
    fn controller_data(&mut self, cmd: u8, value: u8) {
        match cmd {
            0x60 => self.set_command_byte(value),
            0x61..=0x7F => self.ram[usize::from(cmd & 0x1F)] = value,
            0xD1 => self.write_output_port(value),
            // Loop the byte back as if the keyboard or the mouse had sent it.
            0xD2 => self.controller_reply = Some(OutByte::controller(value)),
            0xD3 => self.controller_reply = Some(OutByte::aux(value)),
            // No mouse is attached: answer as a PS/2 port with nothing on it.
            0xD4 => self.controller_reply = Some(OutByte::aux(KBD_RESEND)),
            _ => {}
        }
    }

    /// Moves the next byte into the output buffer if it is free: a controller
    /// reply first, then the keyboard's bytes unless its interface is disabled
    /// (they wait in the keyboard, nothing is lost).
    fn fill_output(&mut self) {
        if self.output.is_some() {
            return;
        }
        let next = match self.controller_reply.take() {
            Some(b) => Some(b),
            None if self.ram[0] & CB_KBD_DISABLE == 0 => {
                self.kbd.next_byte().map(|(value, keystroke)| OutByte {
                    value,
                    aux: false,
                    keystroke,
                })
            }
            None => None,
        };
        if let Some(b) = next {
            if b.aux {
                self.irq12_edge = true;
            } else {
                self.irq1_edge = true;
            }
            self.output = Some(b);
        }
    }
}

/// Register offsets from the controller's base port (0x60), as registered
/// in the machine's port map.
pub mod offset {
    use shared::ports::{I8042_COMMAND, I8042_DATA};

    /// Data port (0x60).
    pub const DATA: u16 = 0;
    /// Status register / command port (0x64).
    pub const COMMAND: u16 = I8042_COMMAND - I8042_DATA;
}

/// Interrupt pins, in the order the machine's port map wires them.
pub mod pin {
    /// Keyboard interrupt, IRQ1.
    pub const KEYBOARD: usize = 0;
    /// Auxiliary (mouse) interrupt, IRQ12.
    pub const AUX: usize = 1;
}

impl I8042 {
    /// Host key event (see [`Self::key_event`]), with what the machine must
    /// do about it.
    pub fn host_key_event(&mut self, set2_code: u16, down: bool) -> Change {
        let before = self.pending_input();
        self.key_event(set2_code, down);
        self.change_since(before)
    }

    /// The interrupt pins, host input consumed since `pending_before`
    /// ([`Self::pending_input`] before the access), and a reset request.
    fn change_since(&mut self, pending_before: usize) -> Change {
        // Each byte loaded into the output buffer is a new interrupt: a byte
        // loaded right after the guest read the previous one keeps the line
        // high, so it must drop and rise again for an edge-triggered PIC.
        let pin = |edge: bool, level: bool| match (edge, level) {
            (true, true) => IrqOutput::Reassert,
            (_, level) => IrqOutput::Level(level),
        };
        let mut change = Change::NONE;
        change.irq[pin::KEYBOARD] = Some(pin(self.take_irq1_edge(), self.irq1_level()));
        change.irq[pin::AUX] = Some(pin(self.take_irq12_edge(), self.irq12_level()));
        change.input_consumed = self.pending_input() < pending_before;
        if self.take_reset_request() {
            change.request = Some(MachineRequest::Reset);
        }
        change
    }
}

impl PortDevice for I8042 {
    fn name(&self) -> &'static str {
        "i8042"
    }

    fn read(&mut self, offset: u16, data: &mut [u8]) -> Change {
        let before = self.pending_input();
        data.fill(I8042::read(self, I8042_DATA.wrapping_add(offset)));
        self.change_since(before)
    }

    /// A write can also release held key events (0xF4, 0xAE, ...), whose
    /// first byte then raises IRQ1.
    fn write(&mut self, offset: u16, data: &[u8]) -> Change {
        let before = self.pending_input();
        for &value in data {
            I8042::write(self, I8042_DATA.wrapping_add(offset), value);
        }
        self.change_since(before)
    }

    fn reset(&mut self) {
        I8042::reset(self);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DATA: u16 = I8042_DATA;
    const CMD: u16 = I8042_COMMAND;

    /// Reads every byte the controller has, one at a time, as a polling guest.
    fn drain(k: &mut I8042) -> Vec<u8> {
        let mut out = Vec::new();
        while k.read(CMD) & STATUS_OBF != 0 {
            out.push(k.read(DATA));
            assert!(out.len() < 100_000, "output never runs dry");
        }
        out
    }

    fn kbd_cmd(k: &mut I8042, bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        for &b in bytes {
            k.write(DATA, b);
            out.extend(drain(k));
        }
        out
    }

    fn set_command_byte(k: &mut I8042, value: u8) {
        k.write(CMD, 0x60);
        k.write(DATA, value);
    }

    /// The keyboard after a driver's initialisation ended with 0xF4: it
    /// listens, so host keys go out at once.
    fn activated() -> I8042 {
        let mut k = I8042::new();
        assert_eq!(kbd_cmd(&mut k, &[0xF4]), vec![KBD_ACK]);
        k
    }

    fn press_release(k: &mut I8042, code: u16) -> Vec<u8> {
        k.key_event(code, true);
        k.key_event(code, false);
        drain(k)
    }

    #[test]
    fn power_on_status_and_command_byte() {
        let mut k = I8042::new();
        assert_eq!(k.read(CMD), STATUS_UNLOCKED | STATUS_CMD);
        k.write(CMD, 0x20);
        assert_eq!(k.read(CMD) & STATUS_OBF, STATUS_OBF);
        assert_eq!(k.read(DATA), 0x03);
        assert_eq!(k.read(CMD) & STATUS_OBF, 0);
        assert!(!k.irq1_level() && !k.irq12_level());
        assert!(!k.take_reset_request());
        assert_eq!(k.pending_input(), 0);
    }

    #[test]
    fn command_byte_write_and_read_back() {
        let mut k = I8042::new();
        set_command_byte(&mut k, 0x65);
        assert_eq!(k.command_byte(), 0x65);
        // Write to the data port clears the CMD status bit.
        assert_eq!(k.read(CMD) & STATUS_CMD, 0);
        // Bit 2 of the command byte sets the SYS flag.
        assert_ne!(k.read(CMD) & STATUS_SYS, 0);
        k.write(CMD, 0x20);
        assert_ne!(k.read(CMD) & STATUS_CMD, 0);
        assert_eq!(drain(&mut k), vec![0x65]);
    }

    #[test]
    fn internal_ram_is_stored() {
        let mut k = I8042::new();
        k.write(CMD, 0x75);
        k.write(DATA, 0x5A);
        k.write(CMD, 0x35);
        assert_eq!(drain(&mut k), vec![0x5A]);
        k.write(CMD, 0x3F);
        assert_eq!(drain(&mut k), vec![0x00]);
        // Writing RAM byte 5 did not touch the command byte.
        assert_eq!(k.command_byte(), 0x03);
    }

    #[test]
    fn self_test_sets_sys_and_answers_55() {
        let mut k = I8042::new();
        assert_eq!(k.read(CMD) & STATUS_SYS, 0);
        k.write(CMD, 0xAA);
        assert_ne!(k.read(CMD) & STATUS_SYS, 0);
        assert_eq!(drain(&mut k), vec![0x55]);
        // Sticky: a command byte without bit 2 does not clear it (QEMU).
        set_command_byte(&mut k, 0x01);
        assert_ne!(k.read(CMD) & STATUS_SYS, 0);
    }

    #[test]
    fn interface_tests_and_ports() {
        let mut k = I8042::new();
        k.write(CMD, 0xAB);
        assert_eq!(drain(&mut k), vec![0x00]);
        k.write(CMD, 0xA9);
        assert_eq!(drain(&mut k), vec![0x00]);
        k.write(CMD, 0xC0);
        assert_eq!(drain(&mut k), vec![0x80]);
        k.write(CMD, 0xD0);
        // Reset line high, A20 on, unused lines high; the buffer was empty
        // when the command ran.
        assert_eq!(drain(&mut k), vec![0xCF]);
        assert!(k.a20_enabled());
        k.write(CMD, 0xDD);
        assert!(!k.a20_enabled());
        k.write(CMD, 0xDF);
        assert!(k.a20_enabled());
    }

    #[test]
    fn enable_disable_aux_and_keyboard() {
        let mut k = activated();
        k.write(CMD, 0xA7);
        assert_eq!(k.command_byte() & CB_AUX_DISABLE, CB_AUX_DISABLE);
        k.write(CMD, 0xA8);
        assert_eq!(k.command_byte() & CB_AUX_DISABLE, 0);
        k.write(CMD, 0xAD);
        assert_eq!(k.command_byte() & CB_KBD_DISABLE, CB_KBD_DISABLE);
        // Keys typed meanwhile wait in the keyboard.
        k.key_event(0x1C, true);
        assert_eq!(k.read(CMD) & STATUS_OBF, 0);
        assert_eq!(k.pending_input(), 1);
        // Controller replies still come through.
        k.write(CMD, 0x20);
        assert_eq!(drain(&mut k), vec![0x13]);
        k.write(CMD, 0xAE);
        assert_eq!(k.command_byte() & CB_KBD_DISABLE, 0);
        assert_eq!(drain(&mut k), vec![0x1C]);
        assert_eq!(k.pending_input(), 0);
    }

    #[test]
    fn output_port_write_is_not_a_keyboard_command() {
        let mut k = I8042::new();
        k.write(CMD, 0xD1);
        // 0xFF would be a keyboard reset (FA AA) if it reached the keyboard.
        k.write(DATA, 0xFF);
        assert_eq!(drain(&mut k), Vec::<u8>::new());
        assert!(!k.take_reset_request());
        k.write(CMD, 0xD0);
        assert_eq!(drain(&mut k), vec![0xCF]);
        // A20 off through the output port.
        k.write(CMD, 0xD1);
        k.write(DATA, 0xDD);
        assert!(!k.a20_enabled());
        assert!(!k.take_reset_request());
        // Bit 0 clear holds the CPU in reset.
        k.write(CMD, 0xD1);
        k.write(DATA, 0xFE);
        assert!(k.take_reset_request());
        assert!(!k.take_reset_request());
    }

    #[test]
    fn pulse_reset() {
        let mut k = I8042::new();
        k.write(CMD, 0xFF);
        assert!(!k.take_reset_request());
        k.write(CMD, 0xFE);
        assert!(k.take_reset_request());
        assert!(!k.take_reset_request());
        k.write(CMD, 0xF0);
        assert!(k.take_reset_request());
        k.write(CMD, 0xF1);
        assert!(!k.take_reset_request());
    }

    #[test]
    fn write_output_buffers() {
        let mut k = I8042::new();
        k.write(CMD, 0xD2);
        k.write(DATA, 0x42);
        assert_eq!(k.read(CMD) & (STATUS_OBF | STATUS_AUX_OBF), STATUS_OBF);
        assert!(k.irq1_level() && !k.irq12_level());
        assert_eq!(k.read(DATA), 0x42);
        k.write(CMD, 0xD3);
        k.write(DATA, 0x5A);
        assert_eq!(
            k.read(CMD) & (STATUS_OBF | STATUS_AUX_OBF),
            STATUS_OBF | STATUS_AUX_OBF
        );
        assert!(k.irq12_level() && !k.irq1_level());
        assert!(k.take_irq12_edge());
        assert_eq!(k.read(DATA), 0x5A);
        assert!(!k.irq12_level());
    }

    #[test]
    fn write_to_aux_without_mouse_answers_fe() {
        let mut k = I8042::new();
        k.write(CMD, 0xD4);
        k.write(DATA, 0xF2);
        assert_ne!(k.read(CMD) & STATUS_AUX_OBF, 0);
        assert_eq!(k.read(DATA), 0xFE);
        // The byte after it is a keyboard command again.
        assert_eq!(kbd_cmd(&mut k, &[0xEE]), vec![0xEE]);
    }

    #[test]
    fn unknown_controller_commands_are_ignored() {
        let mut k = I8042::new();
        for cmd in [0x00, 0x10, 0xA1, 0xB0, 0xC1, 0xE0] {
            k.write(CMD, cmd);
        }
        assert_eq!(drain(&mut k), Vec::<u8>::new());
        assert_eq!(k.command_byte(), 0x03);
        assert!(!k.take_reset_request());
    }

    #[test]
    fn keyboard_reset_and_scanning() {
        let mut k = activated();
        assert_eq!(kbd_cmd(&mut k, &[0xFF]), vec![0xFA, 0xAA]);
        assert_eq!(kbd_cmd(&mut k, &[0xF5]), vec![0xFA]);
        // Scanning disabled: host keys wait (a real keyboard would not see
        // them; ours keeps the user's input).
        assert_eq!(press_release(&mut k, 0x1C), Vec::<u8>::new());
        assert_eq!(k.pending_input(), 2);
        assert_eq!(kbd_cmd(&mut k, &[0xF4]), vec![0xFA, 0x1C, 0xF0, 0x1C]);
        assert_eq!(k.pending_input(), 0);
        assert_eq!(press_release(&mut k, 0x1C), vec![0x1C, 0xF0, 0x1C]);
        // Reset re-enables scanning and goes back to set 2.
        kbd_cmd(&mut k, &[0xF5]);
        kbd_cmd(&mut k, &[0xF0, 0x01]);
        assert_eq!(kbd_cmd(&mut k, &[0xFF]), vec![0xFA, 0xAA]);
        assert_eq!(press_release(&mut k, 0x1C), vec![0x1C, 0xF0, 0x1C]);
    }

    #[test]
    fn keyboard_set_defaults() {
        let mut k = activated();
        kbd_cmd(&mut k, &[0xF0, 0x03]);
        assert_eq!(kbd_cmd(&mut k, &[0xF6]), vec![0xFA]);
        assert_eq!(kbd_cmd(&mut k, &[0xF0, 0x00]), vec![0xFA, 0xFA, 0x02]);
        assert_eq!(press_release(&mut k, 0x1C), vec![0x1C, 0xF0, 0x1C]);
    }

    #[test]
    fn leds_typematic_echo_identify() {
        let mut k = I8042::new();
        assert_eq!(kbd_cmd(&mut k, &[0xED, 0x07]), vec![0xFA, 0xFA]);
        assert_eq!(k.kbd.leds, 0x07);
        assert_eq!(kbd_cmd(&mut k, &[0xF3, 0x20]), vec![0xFA, 0xFA]);
        assert_eq!(k.kbd.typematic, 0x20);
        assert_eq!(kbd_cmd(&mut k, &[0xEE]), vec![0xEE]);
        assert_eq!(kbd_cmd(&mut k, &[0xF2]), vec![0xFA, 0xAB, 0x83]);
        set_command_byte(&mut k, 0x41);
        assert_eq!(kbd_cmd(&mut k, &[0xF2]), vec![0xFA, 0xAB, 0x41]);
    }

    #[test]
    fn scancode_set_query_and_select() {
        let mut k = I8042::new();
        assert_eq!(kbd_cmd(&mut k, &[0xF0, 0x00]), vec![0xFA, 0xFA, 0x02]);
        for set in 1..=3u8 {
            assert_eq!(kbd_cmd(&mut k, &[0xF0, set]), vec![0xFA, 0xFA]);
            assert_eq!(kbd_cmd(&mut k, &[0xF0, 0x00]), vec![0xFA, 0xFA, set]);
        }
        // Out of range: resend, set unchanged.
        assert_eq!(kbd_cmd(&mut k, &[0xF0, 0x04]), vec![0xFA, 0xFE]);
        assert_eq!(kbd_cmd(&mut k, &[0xF0, 0x00]), vec![0xFA, 0xFA, 0x03]);
        // With translation the answer is translated, as in QEMU.
        set_command_byte(&mut k, 0x41);
        kbd_cmd(&mut k, &[0xF0, 0x02]);
        assert_eq!(kbd_cmd(&mut k, &[0xF0, 0x00]), vec![0xFA, 0xFA, 0x41]);
        kbd_cmd(&mut k, &[0xF0, 0x01]);
        assert_eq!(kbd_cmd(&mut k, &[0xF0, 0x00]), vec![0xFA, 0xFA, 0x43]);
    }

    #[test]
    fn unknown_keyboard_command_and_resend() {
        let mut k = I8042::new();
        assert_eq!(kbd_cmd(&mut k, &[0xE5]), vec![0xFE]);
        assert_eq!(kbd_cmd(&mut k, &[0xF7]), vec![0xFE]);
        assert_eq!(kbd_cmd(&mut k, &[0xEE]), vec![0xEE]);
        // Resend repeats the last byte the keyboard sent.
        assert_eq!(kbd_cmd(&mut k, &[0xFE]), vec![0xEE]);
    }

    #[test]
    fn unread_reply_is_replaced_by_next_command() {
        let mut k = I8042::new();
        // The guest does not read the identify bytes; FA is already in the
        // output buffer, AB 83 are discarded by the echo command.
        k.write(DATA, 0xF2);
        k.write(DATA, 0xEE);
        assert_eq!(drain(&mut k), vec![0xFA, 0xEE]);
    }

    #[test]
    fn untranslated_set2() {
        let mut k = activated();
        assert_eq!(press_release(&mut k, 0x1C), vec![0x1C, 0xF0, 0x1C]);
        assert_eq!(
            press_release(&mut k, 0xE074),
            vec![0xE0, 0x74, 0xE0, 0xF0, 0x74]
        );
        assert_eq!(press_release(&mut k, 0x83), vec![0x83, 0xF0, 0x83]);
    }

    #[test]
    fn translated_to_set1_by_controller() {
        let mut k = activated();
        set_command_byte(&mut k, 0x41);
        assert_eq!(press_release(&mut k, 0x1C), vec![0x1E, 0x9E]);
        assert_eq!(press_release(&mut k, 0xE074), vec![0xE0, 0x4D, 0xE0, 0xCD]);
        assert_eq!(press_release(&mut k, 0x83), vec![0x41, 0xC1]);
        // Left Shift, Enter, Escape.
        assert_eq!(press_release(&mut k, 0x12), vec![0x2A, 0xAA]);
        assert_eq!(press_release(&mut k, 0x5A), vec![0x1C, 0x9C]);
        assert_eq!(press_release(&mut k, 0x76), vec![0x01, 0x81]);
        // Turning translation off goes back to raw set 2.
        set_command_byte(&mut k, 0x01);
        assert_eq!(press_release(&mut k, 0x1C), vec![0x1C, 0xF0, 0x1C]);
    }

    #[test]
    fn set1_selected_directly() {
        let mut k = activated();
        kbd_cmd(&mut k, &[0xF0, 0x01]);
        assert_eq!(press_release(&mut k, 0x1C), vec![0x1E, 0x9E]);
        assert_eq!(press_release(&mut k, 0xE074), vec![0xE0, 0x4D, 0xE0, 0xCD]);
        assert_eq!(press_release(&mut k, 0x29), vec![0x39, 0xB9]);
    }

    #[test]
    fn set3_keys() {
        let mut k = activated();
        kbd_cmd(&mut k, &[0xF0, 0x03]);
        assert_eq!(press_release(&mut k, 0x1C), vec![0x1C, 0xF0, 0x1C]);
        assert_eq!(press_release(&mut k, 0x76), vec![0x08, 0xF0, 0x08]);
        assert_eq!(press_release(&mut k, 0xE074), vec![0x6A, 0xF0, 0x6A]);
        // An extended key without a set-3 code is not sent.
        assert_eq!(press_release(&mut k, 0xE037), Vec::<u8>::new());
    }

    #[test]
    fn pause_and_print_screen() {
        let mut k = activated();
        assert_eq!(
            press_release(&mut k, PAUSE),
            vec![0xE1, 0x14, 0x77, 0xE1, 0xF0, 0x14, 0xF0, 0x77]
        );
        assert_eq!(
            press_release(&mut k, PRINT),
            vec![0xE0, 0x12, 0xE0, 0x7C, 0xE0, 0xF0, 0x7C, 0xE0, 0xF0, 0x12]
        );
        set_command_byte(&mut k, 0x41);
        assert_eq!(
            press_release(&mut k, PAUSE),
            vec![0xE1, 0x1D, 0x45, 0xE1, 0x9D, 0xC5]
        );
        // Ctrl+Pause is Break.
        k.key_event(0x14, true);
        assert_eq!(
            press_release(&mut k, PAUSE),
            vec![0x1D, 0xE0, 0x46, 0xE0, 0xC6]
        );
    }

    #[test]
    fn invalid_key_codes_are_ignored() {
        let mut k = I8042::new();
        for code in [
            0x0000, 0x00F0, 0x00E0, 0x0085, 0x00FA, 0xE0F0, 0xE000, 0x1234, 0xFFFF,
        ] {
            k.key_event(code, true);
            k.key_event(code, false);
        }
        assert_eq!(drain(&mut k), Vec::<u8>::new());
        assert_eq!(k.pending_input(), 0);
    }

    #[test]
    fn irq1_follows_obf_and_command_byte() {
        let mut k = activated();
        assert!(!k.irq1_level());
        k.key_event(0x1C, true);
        assert!(k.irq1_level());
        assert!(k.take_irq1_edge());
        assert!(!k.take_irq1_edge());
        // Masking in the command byte drops the line, the byte stays.
        set_command_byte(&mut k, 0x00);
        assert!(!k.irq1_level());
        assert_ne!(k.read(CMD) & STATUS_OBF, 0);
        set_command_byte(&mut k, 0x01);
        assert!(k.irq1_level());
        assert_eq!(k.read(DATA), 0x1C);
        assert!(!k.irq1_level());
        // Reading the status does not consume anything.
        assert_eq!(k.read(CMD) & STATUS_OBF, 0);
        // A read with an empty buffer returns the last byte again.
        assert_eq!(k.read(DATA), 0x1C);
        assert!(!k.irq12_level());
    }

    #[test]
    fn each_loaded_byte_is_a_new_edge() {
        let mut k = activated();
        k.key_event(0x1C, true);
        k.key_event(0x1C, false);
        assert!(k.take_irq1_edge());
        // The level stays high across the read, but the edge flag tells the
        // VMM that a new byte (a new interrupt) arrived.
        assert_eq!(k.read(DATA), 0x1C);
        assert!(k.irq1_level());
        assert!(k.take_irq1_edge());
        assert_eq!(k.read(DATA), 0xF0);
        assert!(k.take_irq1_edge());
        assert_eq!(k.read(DATA), 0x1C);
        assert!(!k.take_irq1_edge());
        assert!(!k.irq1_level());
    }

    #[test]
    fn obf_pacing_loses_nothing() {
        let mut k = activated();
        set_command_byte(&mut k, 0x41);
        let mut expected = Vec::new();
        for i in 0..1000u32 {
            // Cycle through plain and extended keys.
            let code: u16 = match i % 3 {
                0 => 0x1C,
                1 => 0x32,
                _ => 0xE075,
            };
            let down = i % 2 == 0;
            k.key_event(code, down);
            let set1 = match code {
                0x1C => vec![0x1E],
                0x32 => vec![0x30],
                _ => vec![0xE0, 0x48],
            };
            for (j, b) in set1.iter().enumerate() {
                let last = j == set1.len() - 1;
                expected.push(if last && !down { b | 0x80 } else { *b });
            }
        }
        // One pending unit per key event until the guest has read all its
        // bytes; it never grows while the guest reads.
        assert_eq!(k.pending_input(), 1000);
        let mut got = Vec::new();
        let mut pending = k.pending_input();
        while k.read(CMD) & STATUS_OBF != 0 {
            assert!(k.irq1_level());
            assert!(pending > 0);
            got.push(k.read(DATA));
            assert!(k.pending_input() <= pending);
            pending = k.pending_input();
        }
        assert_eq!(got, expected);
        assert_eq!(k.pending_input(), 0);
    }

    #[test]
    fn command_replies_go_ahead_of_queued_keys() {
        let mut k = activated();
        k.key_event(0x1C, true);
        k.key_event(0x1B, true);
        // 0x1C is in the output buffer; the echo goes before 0x1B.
        k.write(DATA, 0xEE);
        assert_eq!(drain(&mut k), vec![0x1C, 0xEE, 0x1B]);
        // Controller replies go ahead of keyboard replies and keys.
        k.key_event(0x1C, true);
        k.key_event(0x1B, true);
        k.write(CMD, 0x20);
        assert_eq!(drain(&mut k), vec![0x1C, 0x03, 0x1B]);
    }

    #[test]
    fn keyboard_reset_keeps_host_keystrokes() {
        let mut k = activated();
        k.key_event(0x1C, true);
        k.key_event(0x1B, true);
        k.write(DATA, 0xFF);
        assert_eq!(drain(&mut k), vec![0x1C, 0xFA, 0xAA, 0x1B]);
    }

    /// A machine reset brings back the power-on state but keeps every host
    /// key event not completely read: the one in the output buffer goes out
    /// again whole, the queued ones follow, once the next driver sends F4.
    #[test]
    fn machine_reset_is_power_on_but_keeps_host_keys() {
        let mut k = activated();
        set_command_byte(&mut k, 0x61); // translation on, aux off
        k.key_event(0x1C, true); // 'a' down: set 1 0x1E
        k.key_event(0x1C, false); // 'a' up: set 1 0x9E
        k.key_event(0xE075, true); // Up: set 1 E0 48, two bytes
        assert_eq!(k.read(DATA), 0x1E);
        assert_eq!(k.read(DATA), 0x9E);
        assert_eq!(k.read(DATA), 0xE0); // Up half read
        k.write(CMD, 0xFE);
        assert!(k.take_reset_request());
        k.reset();
        assert_eq!(k.command_byte(), 0x03);
        assert_eq!(k.read(CMD), STATUS_CMD | STATUS_UNLOCKED);
        assert!(!k.irq1_level());
        assert!(!k.take_reset_request());
        // Up is pending again, whole; it waits for the new driver.
        assert_eq!(k.pending_input(), 1);
        assert_eq!(drain(&mut k), Vec::<u8>::new());
        k.key_event(0x1B, true);
        assert_eq!(kbd_cmd(&mut k, &[0xF4]), vec![KBD_ACK, 0xE0, 0x75, 0x1B]);
        assert_eq!(k.pending_input(), 0);
        // A reset with nothing in flight keeps nothing.
        k.reset();
        assert_eq!(k.pending_input(), 0);
    }

    /// "exit" pressed and released, key by key (set 2 codes).
    const EXIT: [u16; 4] = [0x24, 0x22, 0x43, 0x2C];

    fn type_keys(k: &mut I8042, codes: &[u16]) {
        for &code in codes {
            k.key_event(code, true);
            k.key_event(code, false);
        }
    }

    /// `codes` pressed and released, in set 2.
    fn set2_bytes(codes: &[u16]) -> Vec<u8> {
        codes
            .iter()
            .flat_map(|&c| [c as u8, 0xF0, c as u8])
            .collect()
    }

    #[test]
    fn keys_before_the_driver_enables_scanning_wait_for_f4() {
        let mut k = I8042::new();
        type_keys(&mut k, &EXIT);
        assert_eq!(k.pending_input(), 8);
        assert_eq!(k.read(CMD) & STATUS_OBF, 0);
        assert!(!k.irq1_level());
        // Our guest's initialisation, every reply checked: no key byte in
        // between, although scanning is on since power-on.
        k.write(CMD, 0xAD);
        k.write(CMD, 0xA7);
        assert_eq!(drain(&mut k), Vec::<u8>::new());
        k.write(CMD, 0x20);
        assert_eq!(drain(&mut k), vec![0x33]);
        set_command_byte(&mut k, 0x30);
        k.write(CMD, 0xAA);
        assert_eq!(drain(&mut k), vec![0x55]);
        k.write(CMD, 0xAB);
        assert_eq!(drain(&mut k), vec![0x00]);
        k.write(CMD, 0xAE);
        assert_eq!(drain(&mut k), Vec::<u8>::new());
        assert_eq!(kbd_cmd(&mut k, &[0xFF]), vec![0xFA, 0xAA]);
        assert_eq!(kbd_cmd(&mut k, &[0xF0, 0x02]), vec![0xFA, 0xFA]);
        assert_eq!(kbd_cmd(&mut k, &[0xED, 0x00]), vec![0xFA, 0xFA]);
        assert_eq!(k.pending_input(), 8);
        // F4 activates the keyboard: its ACK, then every key in order.
        let mut expected = vec![KBD_ACK];
        expected.extend(set2_bytes(&EXIT));
        assert_eq!(kbd_cmd(&mut k, &[0xF4]), expected);
        assert_eq!(k.pending_input(), 0);
    }

    #[test]
    fn activation_is_sticky_and_reset_enables_scanning() {
        let mut k = activated();
        // A later reset goes back to "scanning on" and the keyboard listens
        // again after FA AA, without a new F4 (a reset keyboard scans).
        k.key_event(0x1C, true);
        k.write(DATA, 0xFF);
        assert_eq!(drain(&mut k), vec![0x1C, 0xFA, 0xAA]);
        type_keys(&mut k, &[0x1B]);
        assert_eq!(drain(&mut k), set2_bytes(&[0x1B]));
    }

    #[test]
    fn release_on_f4_raises_an_irq1_edge_per_byte() {
        let mut k = I8042::new();
        k.key_event(0x1C, true);
        assert!(!k.take_irq1_edge());
        // The guest's F4 write loads the ACK (IRQ1 on in the power-on command
        // byte); reading it loads the held key, a new edge the VMM sees.
        k.write(DATA, 0xF4);
        assert!(k.take_irq1_edge());
        assert_eq!(k.read(DATA), KBD_ACK);
        assert!(k.take_irq1_edge());
        assert!(k.irq1_level());
        assert_eq!(k.read(DATA), 0x1C);
        assert!(!k.take_irq1_edge());
        assert!(!k.irq1_level());
    }

    #[test]
    fn keys_wait_while_the_keyboard_interface_is_disabled() {
        let mut k = I8042::new();
        type_keys(&mut k, &[0x1C]);
        k.write(CMD, 0xAD);
        // F4 is taken by the keyboard but even its ACK waits behind AD.
        k.write(DATA, 0xF4);
        assert_eq!(drain(&mut k), Vec::<u8>::new());
        type_keys(&mut k, &[0x1B]);
        assert_eq!(k.pending_input(), 4);
        k.write(CMD, 0xAE);
        let mut expected = vec![KBD_ACK];
        expected.extend(set2_bytes(&[0x1C, 0x1B]));
        assert_eq!(drain(&mut k), expected);
        // Again with the keyboard active: AD holds, AE releases, in order.
        k.write(CMD, 0xAD);
        type_keys(&mut k, &EXIT);
        assert_eq!(drain(&mut k), Vec::<u8>::new());
        set_command_byte(&mut k, 0x01);
        assert_eq!(drain(&mut k), set2_bytes(&EXIT));
    }

    #[test]
    fn f5_holds_keys_and_f4_releases_them() {
        let mut k = activated();
        assert_eq!(kbd_cmd(&mut k, &[0xF5]), vec![KBD_ACK]);
        type_keys(&mut k, &EXIT);
        assert_eq!(drain(&mut k), Vec::<u8>::new());
        assert_eq!(k.pending_input(), 8);
        // Other commands while disabled do not let them out either (0xF6,
        // like a reset, would enable scanning, as in QEMU).
        assert_eq!(kbd_cmd(&mut k, &[0xEE]), vec![0xEE]);
        assert_eq!(kbd_cmd(&mut k, &[0xED, 0x02]), vec![KBD_ACK, KBD_ACK]);
        assert_eq!(kbd_cmd(&mut k, &[0xF5]), vec![KBD_ACK]);
        let mut expected = vec![KBD_ACK];
        expected.extend(set2_bytes(&EXIT));
        assert_eq!(kbd_cmd(&mut k, &[0xF4]), expected);
    }

    #[test]
    fn keys_never_interleave_with_a_reply_sequence() {
        let mut k = activated();
        type_keys(&mut k, &EXIT);
        // The first key byte is in the output buffer; the reset's FA AA go
        // next, together, then the rest of the keys.
        k.write(DATA, 0xFF);
        let mut expected = vec![0x24, KBD_ACK, KBD_BAT_OK, 0xF0, 0x24];
        expected.extend(set2_bytes(&EXIT[1..]));
        assert_eq!(drain(&mut k), expected);
        // F0 02: nothing between the ACK of F0 and the argument, nothing
        // between the argument and its ACK.
        type_keys(&mut k, &EXIT);
        assert_eq!(
            [k.read(DATA), k.read(DATA), k.read(DATA)],
            [0x24, 0xF0, 0x24]
        );
        // The make code of the next key is in the buffer.
        k.write(DATA, 0xF0);
        assert_eq!(drain(&mut k), vec![0x22, KBD_ACK]);
        k.write(DATA, 0x02);
        let mut expected = vec![KBD_ACK, 0xF0, 0x22];
        expected.extend(set2_bytes(&EXIT[2..]));
        assert_eq!(drain(&mut k), expected);
        // Identify's three bytes stay together, even when the guest reads
        // them slowly.
        k.key_event(0x1C, true);
        k.key_event(0x1B, true);
        k.write(DATA, 0xF2);
        assert_eq!(k.read(DATA), 0x1C);
        assert_eq!(k.read(DATA), KBD_ACK);
        assert_eq!(k.read(DATA), KBD_ID);
        assert_eq!(k.read(DATA), KBD_ID_MF2);
        assert_eq!(drain(&mut k), vec![0x1B]);
    }

    #[test]
    fn an_extended_key_does_not_continue_into_a_command() {
        let mut k = activated();
        k.key_event(0xE074, true);
        // E0 is in the buffer, 74 waits; a command in progress holds it.
        k.write(DATA, 0xED);
        assert_eq!(drain(&mut k), vec![0xE0, KBD_ACK]);
        assert_eq!(k.pending_input(), 1);
        k.write(DATA, 0x02);
        assert_eq!(drain(&mut k), vec![KBD_ACK, 0x74]);
        assert_eq!(k.pending_input(), 0);
    }

    #[test]
    fn keys_are_encoded_in_the_set_in_effect_when_released() {
        // Set 1 selected directly before F4.
        let mut k = I8042::new();
        type_keys(&mut k, &[0x1C, 0xE074]);
        assert_eq!(kbd_cmd(&mut k, &[0xF0, 0x01]), vec![KBD_ACK, KBD_ACK]);
        assert_eq!(
            kbd_cmd(&mut k, &[0xF4]),
            vec![KBD_ACK, 0x1E, 0x9E, 0xE0, 0x4D, 0xE0, 0xCD]
        );
        // Translation turned on before F4 (our guest's order).
        let mut k = I8042::new();
        type_keys(&mut k, &[0x1C]);
        set_command_byte(&mut k, 0x40);
        assert_eq!(kbd_cmd(&mut k, &[0xF4]), vec![KBD_ACK, 0x1E, 0x9E]);
        // Set 3 chosen while scanning is off, after the keys were typed.
        let mut k = activated();
        kbd_cmd(&mut k, &[0xF5]);
        type_keys(&mut k, &[0x76]);
        kbd_cmd(&mut k, &[0xF0, 0x03]);
        assert_eq!(kbd_cmd(&mut k, &[0xF4]), vec![KBD_ACK, 0x08, 0xF0, 0x08]);
        // Modifiers follow the released order: Alt+Print Screen is SysRq.
        let mut k = I8042::new();
        k.key_event(0x11, true);
        k.key_event(PRINT, true);
        k.key_event(PRINT, false);
        k.key_event(0x11, false);
        assert_eq!(
            kbd_cmd(&mut k, &[0xF4]),
            vec![KBD_ACK, 0x11, 0x84, 0xF0, 0x84, 0xF0, 0x11]
        );
    }

    #[test]
    fn pending_input_counts_held_events() {
        let mut k = I8042::new();
        assert_eq!(k.pending_input(), 0);
        k.key_event(0xE074, true);
        k.key_event(0xE074, false);
        k.key_event(0x0000, true); // not a key: not queued
        assert_eq!(k.pending_input(), 2);
        k.write(DATA, 0xF4);
        assert_eq!(k.read(DATA), KBD_ACK);
        // E0 in the buffer, 74 in the keyboard: still two events.
        assert_eq!(k.pending_input(), 2);
        assert_eq!(k.read(DATA), 0xE0);
        assert_eq!(k.pending_input(), 2);
        assert_eq!(k.read(DATA), 0x74);
        assert_eq!(k.pending_input(), 1);
        assert_eq!(drain(&mut k), vec![0xE0, 0xF0, 0x74]);
        assert_eq!(k.pending_input(), 0);
        // An event that encodes to nothing (Pause release) is consumed when
        // its turn comes.
        kbd_cmd(&mut k, &[0xF5]);
        k.key_event(PAUSE, false);
        assert_eq!(k.pending_input(), 1);
        assert_eq!(kbd_cmd(&mut k, &[0xF4]), vec![KBD_ACK]);
        assert_eq!(k.pending_input(), 0);
    }

    #[test]
    fn command_then_data_command_cancels() {
        let mut k = I8042::new();
        k.write(CMD, 0x60);
        // A new command abandons the pending command-byte write; the data byte
        // then goes to the keyboard.
        k.write(CMD, 0xAE);
        k.write(DATA, 0xEE);
        assert_eq!(k.command_byte(), 0x03);
        assert_eq!(drain(&mut k), vec![0xEE]);
    }

    #[test]
    fn firmware_setup_state() {
        let mut k = I8042::with_firmware_setup();
        assert_eq!(k.command_byte(), 0x61);
        assert_ne!(k.read(CMD) & STATUS_SYS, 0);
        assert_eq!(press_release(&mut k, 0x1C), vec![0x1E, 0x9E]);
    }

    #[test]
    fn other_ports() {
        let mut k = I8042::new();
        assert_eq!(k.read(0x61), 0xFF);
        k.write(0x61, 0xFE);
        assert!(!k.take_reset_request());
        assert_eq!(drain(&mut k), Vec::<u8>::new());
    }

    #[test]
    fn garbage_never_panics_and_stays_bounded() {
        let mut k = I8042::new();
        // A small deterministic generator (xorshift) drives every port with
        // every kind of value, interleaved with host keys.
        let mut x: u32 = 0x1234_5678;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x
        };
        for _ in 0..200_000 {
            let r = next();
            let port = [DATA, CMD, 0x61, 0x65][(r & 3) as usize];
            let value = (r >> 8) as u8;
            match (r >> 16) % 4 {
                0 => {
                    k.read(port);
                }
                1 | 2 => k.write(port, value),
                _ => k.key_event((r >> 16) as u16, r & 0x100 != 0),
            }
            k.irq1_level();
            k.irq12_level();
            k.take_irq1_edge();
            k.take_reset_request();
            assert!(k.kbd.replies.len() <= 3);
        }
        // Exhaustive: every controller command followed by every data value.
        for cmd in 0..=255u8 {
            for value in 0..=255u8 {
                let mut k = I8042::new();
                k.write(CMD, cmd);
                k.write(DATA, value);
                k.write(DATA, value);
                k.key_event(0x1C, true);
                drain(&mut k);
            }
        }
    }
}
