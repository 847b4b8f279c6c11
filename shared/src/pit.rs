//! The 8254 programmable interval timer: the control word written to port
//! 0x43, the read-back command and status byte, and the bits of port 0x61
//! ("port B") that belong to channel 2.
//!
//! Bit layout per the Intel 8254 datasheet. A control word is
//! `select | access | mode | bcd`, see [`control_word`].

/// Counter (channel) select, bits 6-7 of the control word.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Select {
    /// Channel 0 (IRQ0 on a PC).
    Channel0 = 0x00,
    /// Channel 1 (DRAM refresh on old PCs; unused).
    Channel1 = 0x40,
    /// Channel 2 (speaker; gated by port B bit 0).
    Channel2 = 0x80,
    /// Read-back command: the rest of the byte is laid out as [`read_back`].
    ReadBack = 0xC0,
}

impl Select {
    /// Bits 6-7 of a control word.
    pub const MASK: u8 = 0xC0;

    /// The select field of control word `value` (every value has one).
    pub const fn from_u8(value: u8) -> Self {
        match value & Self::MASK {
            0x00 => Self::Channel0,
            0x40 => Self::Channel1,
            0x80 => Self::Channel2,
            _ => Self::ReadBack,
        }
    }

    /// The channel a counter select names (0-2), `None` for read-back.
    pub const fn channel(self) -> Option<usize> {
        match self {
            Self::Channel0 => Some(0),
            Self::Channel1 => Some(1),
            Self::Channel2 => Some(2),
            Self::ReadBack => None,
        }
    }
}

/// Read/write (access) mode, bits 4-5 of the control word.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Counter latch command: freeze the count for reading; the channel's
    /// programming is unchanged.
    Latch = 0x00,
    /// Read/write the low byte only.
    LowByte = 0x10,
    /// Read/write the high byte only.
    HighByte = 0x20,
    /// Read/write the low byte, then the high byte.
    LowHigh = 0x30,
}

impl Access {
    /// Bits 4-5 of a control word.
    pub const MASK: u8 = 0x30;

    /// The access field of control word `value` (every value has one).
    pub const fn from_u8(value: u8) -> Self {
        match value & Self::MASK {
            0x00 => Self::Latch,
            0x10 => Self::LowByte,
            0x20 => Self::HighByte,
            _ => Self::LowHigh,
        }
    }
}

/// Operating mode, bits 1-3 of the control word (values 6 and 7 are modes
/// 2 and 3 again, see [`Mode::from_u8`]).
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Mode 0: interrupt on terminal count.
    InterruptOnTerminalCount = 0,
    /// Mode 1: hardware retriggerable one-shot.
    OneShot = 1,
    /// Mode 2: rate generator (periodic, OUT low for one clock).
    RateGenerator = 2,
    /// Mode 3: square wave generator.
    SquareWave = 3,
    /// Mode 4: software triggered strobe.
    SoftwareStrobe = 4,
    /// Mode 5: hardware triggered strobe.
    HardwareStrobe = 5,
}

impl Mode {
    /// Bits 1-3 of a control word.
    pub const MASK: u8 = 0x0E;
    /// Shift of the mode field in a control word.
    pub const SHIFT: u32 = 1;

    /// The mode field of control word `value`; 6 and 7 alias 2 and 3, as on
    /// the 8254 (bit 3 is "don't care" for those modes).
    pub const fn from_u8(value: u8) -> Self {
        match (value & Self::MASK) >> Self::SHIFT {
            0 => Self::InterruptOnTerminalCount,
            1 => Self::OneShot,
            2 | 6 => Self::RateGenerator,
            3 | 7 => Self::SquareWave,
            4 => Self::SoftwareStrobe,
            _ => Self::HardwareStrobe,
        }
    }

    /// The field as it sits in a control word.
    pub const fn bits(self) -> u8 {
        (self as u8) << Self::SHIFT
    }
}

/// Bit 0 of the control word: count in BCD (4 decades) instead of binary.
pub const BCD: u8 = 0x01;

/// A control word programming channel `select` (not [`Select::ReadBack`]).
pub const fn control_word(select: Select, access: Access, mode: Mode, bcd: bool) -> u8 {
    select as u8 | access as u8 | mode.bits() | if bcd { BCD } else { 0 }
}

/// The read-back command (control word with [`Select::ReadBack`]).
pub mod read_back {
    /// Bit 5 clear: latch the counts of the selected channels.
    pub const NO_COUNT: u8 = 0x20;
    /// Bit 4 clear: latch the status bytes of the selected channels.
    pub const NO_STATUS: u8 = 0x10;
    /// Bits 1-3: the channels the command applies to (see [`channel`]).
    pub const CHANNELS_MASK: u8 = 0x0E;

    /// The bit that selects `channel` (0-2) in a read-back command.
    pub const fn channel(channel: usize) -> u8 {
        2 << channel
    }
}

/// The status byte a read-back returns.
pub mod status {
    /// Bit 7: the channel's OUT pin is high.
    pub const OUTPUT: u8 = 0x80;
    /// Bit 6: null count, the last count written is not loaded yet.
    pub const NULL_COUNT: u8 = 0x40;
    /// Bits 0-5: the channel's control word (access, mode, BCD).
    pub const CONTROL_MASK: u8 = 0x3F;
}

/// Port 0x61 ("port B", NMI status and control), the PIT's bits.
pub mod port_b {
    /// Bit 0 (read/write): channel 2 gate.
    pub const GATE2: u8 = 0x01;
    /// Bit 1 (read/write): speaker data enable.
    pub const SPEAKER_DATA: u8 = 0x02;
    /// Bit 4 (read only): toggles with every DRAM refresh (15.085 µs).
    pub const REFRESH: u8 = 0x10;
    /// Bit 5 (read only): channel 2 OUT.
    pub const OUT2: u8 = 0x20;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_words_of_the_guest_one_shot_and_a_classic_tick() {
        let one_shot = control_word(
            Select::Channel0,
            Access::LowHigh,
            Mode::InterruptOnTerminalCount,
            false,
        );
        assert_eq!(one_shot, 0x30);
        let word = control_word(
            Select::Channel0,
            Access::LowHigh,
            Mode::RateGenerator,
            false,
        );
        assert_eq!(word, 0x34);
        assert_eq!(
            control_word(Select::Channel2, Access::LowHigh, Mode::SquareWave, true),
            0xB7
        );
    }

    #[test]
    fn fields_decode_from_control_words() {
        assert_eq!(Select::from_u8(0xB4), Select::Channel2);
        assert_eq!(Select::from_u8(0xE2), Select::ReadBack);
        assert_eq!(Select::Channel1.channel(), Some(1));
        assert_eq!(Access::from_u8(0x24), Access::HighByte);
        assert_eq!(Access::from_u8(0x04), Access::Latch);
        assert_eq!(Mode::from_u8(0x34), Mode::RateGenerator);
        assert_eq!(Mode::from_u8(0x0C), Mode::RateGenerator, "mode 6 is mode 2");
        assert_eq!(Mode::from_u8(0x0E), Mode::SquareWave, "mode 7 is mode 3");
        assert_eq!(Mode::from_u8(0x0A), Mode::HardwareStrobe);
    }

    #[test]
    fn read_back_channel_bits() {
        let all = read_back::channel(0) | read_back::channel(1) | read_back::channel(2);
        assert_eq!(all, read_back::CHANNELS_MASK);
    }
}
