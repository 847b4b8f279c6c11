//! The PS/2 keyboard: commands the host sends it (through the i8042's
//! port 0x60) and the bytes it answers with.
//!
//! Values per the IBM PS/2 keyboard technical reference; QEMU's
//! `hw/input/ps2.c` is the behaviour the VMM matches.

/// Keyboard commands.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    /// Set the LEDs; the argument byte is [`leds`] bits.
    SetLeds = 0xED,
    /// Echo: the keyboard answers [`reply::ECHO`] (no ACK).
    Echo = 0xEE,
    /// Get or set the scancode set; the argument is 0 (get) or 1-3.
    ScancodeSet = 0xF0,
    /// Identify: ACK, then [`reply::ID`] and the second ID byte.
    Identify = 0xF2,
    /// Set the typematic rate and delay; an argument byte follows.
    SetTypematic = 0xF3,
    /// Enable scanning: the keyboard starts sending keys.
    EnableScanning = 0xF4,
    /// Disable scanning and restore the defaults.
    DisableScanning = 0xF5,
    /// Restore the defaults (scanning stays as it is).
    SetDefaults = 0xF6,
    /// Set 3: all keys typematic.
    AllKeysTypematic = 0xF7,
    /// Set 3: all keys make/break.
    AllKeysMakeBreak = 0xF8,
    /// Set 3: all keys make only.
    AllKeysMake = 0xF9,
    /// Set 3: all keys typematic and make/break.
    AllKeysTypematicMakeBreak = 0xFA,
    /// Set 3: one key typematic; a scancode follows.
    KeyTypematic = 0xFB,
    /// Set 3: one key make/break; a scancode follows.
    KeyMakeBreak = 0xFC,
    /// Set 3: one key make only; a scancode follows.
    KeyMake = 0xFD,
    /// Resend the last byte sent.
    Resend = 0xFE,
    /// Reset: ACK, then the self-test result ([`reply::SELF_TEST_PASSED`]).
    Reset = 0xFF,
}

impl Command {
    /// The command named by `value`, if any.
    pub const fn from_u8(value: u8) -> Option<Self> {
        Some(match value {
            0xED => Self::SetLeds,
            0xEE => Self::Echo,
            0xF0 => Self::ScancodeSet,
            0xF2 => Self::Identify,
            0xF3 => Self::SetTypematic,
            0xF4 => Self::EnableScanning,
            0xF5 => Self::DisableScanning,
            0xF6 => Self::SetDefaults,
            0xF7 => Self::AllKeysTypematic,
            0xF8 => Self::AllKeysMakeBreak,
            0xF9 => Self::AllKeysMake,
            0xFA => Self::AllKeysTypematicMakeBreak,
            0xFB => Self::KeyTypematic,
            0xFC => Self::KeyMakeBreak,
            0xFD => Self::KeyMake,
            0xFE => Self::Resend,
            0xFF => Self::Reset,
            _ => return None,
        })
    }

    /// Whether the command takes an argument byte (the keyboard ACKs the
    /// command, then waits for it).
    pub const fn takes_argument(self) -> bool {
        matches!(
            self,
            Self::SetLeds
                | Self::ScancodeSet
                | Self::SetTypematic
                | Self::KeyTypematic
                | Self::KeyMakeBreak
                | Self::KeyMake
        )
    }
}

/// The argument of [`Command::ScancodeSet`] that asks for the current set.
pub const SCANCODE_SET_GET: u8 = 0;
/// Scancode set 1 (the XT set, what the i8042's translation produces).
pub const SCANCODE_SET_1: u8 = 1;
/// Scancode set 2, every keyboard's default (the i8042 translates it to set 1).
pub const SCANCODE_SET_2: u8 = 2;
/// Scancode set 3 (one byte per key, `F0` breaks). The valid arguments of
/// [`Command::ScancodeSet`] are [`SCANCODE_SET_GET`] and
/// `SCANCODE_SET_1..=SCANCODE_SET_3`; the keyboard answers others with
/// [`reply::RESEND`].
pub const SCANCODE_SET_3: u8 = 3;

/// Bytes the keyboard sends that are not scancodes.
pub mod reply {
    /// Acknowledge: the command (or argument) was taken.
    pub const ACK: u8 = 0xFA;
    /// Self-test (BAT) passed, after reset or power-on.
    pub const SELF_TEST_PASSED: u8 = 0xAA;
    /// Self-test (BAT) failed.
    pub const SELF_TEST_FAILED: u8 = 0xFC;
    /// Resend: the last byte was not understood. Also what a port with no
    /// device answers.
    pub const RESEND: u8 = 0xFE;
    /// Answer to [`super::Command::Echo`].
    pub const ECHO: u8 = 0xEE;
    /// First byte of the identify answer.
    pub const ID: u8 = 0xAB;
    /// Second identify byte of an MF2 keyboard, untranslated.
    pub const ID_MF2: u8 = 0x83;
}

/// [`Command::SetLeds`] argument bits.
pub mod leds {
    /// Scroll Lock.
    pub const SCROLL_LOCK: u8 = 0x01;
    /// Num Lock.
    pub const NUM_LOCK: u8 = 0x02;
    /// Caps Lock.
    pub const CAPS_LOCK: u8 = 0x04;
    /// The bits that are LEDs; the keyboard ignores the others.
    pub const MASK: u8 = SCROLL_LOCK | NUM_LOCK | CAPS_LOCK;
}

/// Typematic setting after reset: 10.9 characters/s, 500 ms delay.
pub const TYPEMATIC_DEFAULT: u8 = 0x2B;
/// The bits of a [`Command::SetTypematic`] argument: delay in bits 5-6,
/// rate in bits 0-4; bit 7 must be 0 and is ignored.
pub const TYPEMATIC_MASK: u8 = 0x7F;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_named_command_round_trips() {
        let mut named = 0;
        for value in 0..=u8::MAX {
            if let Some(command) = Command::from_u8(value) {
                assert_eq!(command as u8, value);
                named += 1;
            }
        }
        assert_eq!(named, 17);
        assert_eq!(Command::from_u8(0xF1), None);
    }

    #[test]
    fn argument_commands() {
        assert!(Command::SetLeds.takes_argument());
        assert!(Command::ScancodeSet.takes_argument());
        assert!(!Command::EnableScanning.takes_argument());
        assert!(!Command::Reset.takes_argument());
    }

    #[test]
    fn argument_masks() {
        assert_eq!(leds::MASK, 0x07);
        assert_eq!(TYPEMATIC_DEFAULT & TYPEMATIC_MASK, TYPEMATIC_DEFAULT);
        assert!((SCANCODE_SET_1..=SCANCODE_SET_3).contains(&SCANCODE_SET_2));
        assert!(!(SCANCODE_SET_1..=SCANCODE_SET_3).contains(&SCANCODE_SET_GET));
    }
}
