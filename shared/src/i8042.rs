//! The Intel 8042 keyboard controller: commands written to port 0x64, the
//! status register read there, the command byte (internal RAM byte 0), the
//! output port and the controller's own replies.
//!
//! Values per the IBM PC/AT technical reference; QEMU's `hw/input/pckbd.c`
//! is the behaviour the VMM matches. Keyboard commands (sent through port
//! 0x60) are in [`crate::ps2`].

/// Controller commands (writes to port 0x64).
///
/// Two ranges have no single name: [`READ_RAM`] and [`WRITE_RAM`] (internal
/// RAM bytes 0-31), and [`PULSE`] (pulse output lines).
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    /// Read the command byte (RAM byte 0); the answer comes on port 0x60.
    ReadCommandByte = 0x20,
    /// Write the command byte: the value follows on port 0x60.
    WriteCommandByte = 0x60,
    /// Disable the aux (mouse) interface (sets [`command_byte::AUX_DISABLE`]).
    DisableAux = 0xA7,
    /// Enable the aux interface.
    EnableAux = 0xA8,
    /// Test the aux interface; answers an [`interface_test`] value.
    TestAux = 0xA9,
    /// Controller self-test; answers [`SELF_TEST_PASSED`].
    SelfTest = 0xAA,
    /// Test the keyboard interface; answers an [`interface_test`] value.
    TestKeyboard = 0xAB,
    /// Disable the keyboard interface (sets [`command_byte::KBD_DISABLE`]).
    DisableKeyboard = 0xAD,
    /// Enable the keyboard interface.
    EnableKeyboard = 0xAE,
    /// Read the input port; the answer comes on port 0x60.
    ReadInputPort = 0xC0,
    /// Read the output port (see [`output_port`]).
    ReadOutputPort = 0xD0,
    /// Write the output port: the value follows on port 0x60.
    WriteOutputPort = 0xD1,
    /// The next byte written to port 0x60 comes back as if the keyboard sent it.
    WriteKeyboardOutput = 0xD2,
    /// The next byte written to port 0x60 comes back as if the mouse sent it.
    WriteAuxOutput = 0xD3,
    /// The next byte written to port 0x60 goes to the mouse.
    WriteToAux = 0xD4,
    /// Disable the A20 gate (clears [`output_port::A20`]).
    DisableA20 = 0xDD,
    /// Enable the A20 gate.
    EnableA20 = 0xDF,
    /// Pulse the reset line (the [`PULSE`] command that resets the CPU and
    /// nothing else).
    PulseReset = 0xFE,
}

impl Command {
    /// The command named by `value`, if it has a name here.
    pub const fn from_u8(value: u8) -> Option<Self> {
        Some(match value {
            0x20 => Self::ReadCommandByte,
            0x60 => Self::WriteCommandByte,
            0xA7 => Self::DisableAux,
            0xA8 => Self::EnableAux,
            0xA9 => Self::TestAux,
            0xAA => Self::SelfTest,
            0xAB => Self::TestKeyboard,
            0xAD => Self::DisableKeyboard,
            0xAE => Self::EnableKeyboard,
            0xC0 => Self::ReadInputPort,
            0xD0 => Self::ReadOutputPort,
            0xD1 => Self::WriteOutputPort,
            0xD2 => Self::WriteKeyboardOutput,
            0xD3 => Self::WriteAuxOutput,
            0xD4 => Self::WriteToAux,
            0xDD => Self::DisableA20,
            0xDF => Self::EnableA20,
            0xFE => Self::PulseReset,
            _ => return None,
        })
    }
}

/// Read internal RAM byte `command & RAM_INDEX_MASK` (0x20 is the command byte).
pub const READ_RAM: core::ops::RangeInclusive<u8> = 0x20..=0x3F;
/// Write internal RAM byte `command & RAM_INDEX_MASK`; the value follows on
/// port 0x60 (0x60 is the command byte).
pub const WRITE_RAM: core::ops::RangeInclusive<u8> = 0x60..=0x7F;
/// The RAM index in a [`READ_RAM`] or [`WRITE_RAM`] command.
pub const RAM_INDEX_MASK: u8 = 0x1F;
/// Pulse output lines 0-3 low for about 6 µs: a clear bit in the low
/// nibble pulses that line ([`PULSE_LINES_MASK`]); line 0 is the CPU reset.
pub const PULSE: core::ops::RangeInclusive<u8> = 0xF0..=0xFF;
/// The lines of a [`PULSE`] command: bit clear = pulse.
pub const PULSE_LINES_MASK: u8 = 0x0F;

/// Reply to [`Command::SelfTest`]: the controller works.
pub const SELF_TEST_PASSED: u8 = 0x55;

/// Replies to [`Command::TestKeyboard`] and [`Command::TestAux`].
pub mod interface_test {
    /// No error.
    pub const OK: u8 = 0x00;
    /// Clock line stuck low.
    pub const CLOCK_STUCK_LOW: u8 = 0x01;
    /// Clock line stuck high.
    pub const CLOCK_STUCK_HIGH: u8 = 0x02;
    /// Data line stuck low.
    pub const DATA_STUCK_LOW: u8 = 0x03;
    /// Data line stuck high.
    pub const DATA_STUCK_HIGH: u8 = 0x04;
}

/// Status register bits (read of port 0x64).
pub mod status {
    /// Output buffer full: a byte waits on port 0x60.
    pub const OBF: u8 = 0x01;
    /// Input buffer full: the controller has not taken the last byte written.
    pub const IBF: u8 = 0x02;
    /// System flag: set by the self-test (or by [`super::command_byte::SYS`]).
    pub const SYS: u8 = 0x04;
    /// The last write went to port 0x64 (a command), not to 0x60 (data).
    pub const CMD: u8 = 0x08;
    /// Keyboard not inhibited by the keylock switch.
    pub const UNLOCKED: u8 = 0x10;
    /// The byte in the output buffer comes from the aux (mouse) port.
    pub const AUX_OBF: u8 = 0x20;
    /// Timeout talking to a device.
    pub const TIMEOUT: u8 = 0x40;
    /// Parity error in the last byte from a device.
    pub const PARITY: u8 = 0x80;
}

/// Command byte bits (internal RAM byte 0).
pub mod command_byte {
    /// Keyboard bytes raise IRQ1.
    pub const KBD_INT: u8 = 0x01;
    /// Aux bytes raise IRQ12.
    pub const AUX_INT: u8 = 0x02;
    /// System flag, mirrored into [`super::status::SYS`].
    pub const SYS: u8 = 0x04;
    /// Keyboard interface disabled (clock held low): keyboard bytes stay in
    /// the keyboard.
    pub const KBD_DISABLE: u8 = 0x10;
    /// Aux interface disabled.
    pub const AUX_DISABLE: u8 = 0x20;
    /// Translate the keyboard's scancode set 2 to set 1.
    pub const XLATE: u8 = 0x40;
}

/// Output port (P2) bits, read with [`Command::ReadOutputPort`].
pub mod output_port {
    /// Low means "hold the CPU in reset".
    pub const RESET: u8 = 0x01;
    /// Gate A20.
    pub const A20: u8 = 0x02;
    /// Output buffer full with a keyboard byte.
    pub const KBD_OBF: u8 = 0x10;
    /// Output buffer full with an aux byte.
    pub const AUX_OBF: u8 = 0x20;
    /// Lines 2-3 (unused) and 6-7 (keyboard clock and data): they read as
    /// ones when idle, so they are set in the power-on value (QEMU's
    /// `KBD_OUT_ONES`).
    pub const ONES: u8 = 0xCC;
}

/// Input port (P1) bits, read with [`Command::ReadInputPort`].
pub mod input_port {
    /// Keyboard not inhibited (keylock open).
    pub const KBD_NOT_INHIBITED: u8 = 0x80;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_named_command_round_trips() {
        for value in 0..=u8::MAX {
            if let Some(command) = Command::from_u8(value) {
                assert_eq!(command as u8, value);
            }
        }
        assert_eq!(
            Command::from_u8(0x21),
            None,
            "a RAM read has no single name"
        );
    }

    #[test]
    fn named_ram_and_pulse_commands_sit_in_their_ranges() {
        assert!(READ_RAM.contains(&(Command::ReadCommandByte as u8)));
        assert!(WRITE_RAM.contains(&(Command::WriteCommandByte as u8)));
        let reset = Command::PulseReset as u8;
        assert!(PULSE.contains(&reset));
        assert_eq!(reset & PULSE_LINES_MASK & output_port::RESET, 0);
    }

    #[test]
    fn output_port_ones_are_the_other_lines() {
        use output_port::*;
        let named = RESET | A20 | KBD_OBF | AUX_OBF;
        assert_eq!(ONES & named, 0);
        assert_eq!(ONES | named, 0xFF);
    }
}
