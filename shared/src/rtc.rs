//! The MC146818 CMOS real-time clock as a PC presents it: an index port and
//! a data port in front of 128 bytes of CMOS RAM, the first 14 of which are
//! the clock's registers.
//!
//! Register layout and bits per the Motorola MC146818A datasheet; QEMU's
//! `hw/rtc/mc146818rtc.c` is the behaviour the VMM matches.

/// Bit 7 of a write to the index port: NMI disable (kept, has no effect on
/// the register selected by bits 0-6).
pub const INDEX_NMI_DISABLE: u8 = 0x80;
/// Bits 0-6 of a write to the index port: the CMOS RAM byte selected.
pub const INDEX_MASK: u8 = 0x7F;
/// Bytes of CMOS RAM, registers included.
pub const CMOS_SIZE: usize = 128;

/// Register indices (bytes 0-13 of CMOS RAM).
pub mod reg {
    /// Seconds, 0-59.
    pub const SECONDS: u8 = 0x00;
    /// Seconds alarm.
    pub const SECONDS_ALARM: u8 = 0x01;
    /// Minutes, 0-59.
    pub const MINUTES: u8 = 0x02;
    /// Minutes alarm.
    pub const MINUTES_ALARM: u8 = 0x03;
    /// Hours: 0-23, or 1-12 with bit 7 = PM in 12-hour mode.
    pub const HOURS: u8 = 0x04;
    /// Hours alarm.
    pub const HOURS_ALARM: u8 = 0x05;
    /// Day of the week, 1-7 (Sunday = 1).
    pub const DAY_OF_WEEK: u8 = 0x06;
    /// Day of the month, 1-31.
    pub const DAY_OF_MONTH: u8 = 0x07;
    /// Month, 1-12.
    pub const MONTH: u8 = 0x08;
    /// Year within the century, 0-99.
    pub const YEAR: u8 = 0x09;
    /// Status register A: update in progress, divider, rate select.
    pub const A: u8 = 0x0A;
    /// Status register B: SET, interrupt enables, data mode, 24/12 hour.
    pub const B: u8 = 0x0B;
    /// Status register C: interrupt flags, read-only, cleared on read.
    pub const C: u8 = 0x0C;
    /// Status register D: valid RAM and time, read-only.
    pub const D: u8 = 0x0D;
    /// Century, 19 or 20 (the PC/AT and ACPI location).
    pub const CENTURY: u8 = 0x32;
    /// The IBM PS/2 century byte: QEMU makes it an alias of [`CENTURY`]
    /// (an access selects [`CENTURY`] from then on).
    pub const PS2_CENTURY: u8 = 0x37;
}

/// Frequency of the time base the divider chain counts (a 32.768 kHz
/// crystal): the unit of the periodic-interrupt period.
pub const TIME_BASE_HZ: u64 = 32_768;

/// A value in an alarm register that matches every value ("don't care").
pub const ALARM_DONT_CARE: u8 = 0xC0;

/// Status register A bits.
pub mod reg_a {
    /// Update in progress: the time registers are about to change (set
    /// 244 µs before each update, for the update's duration).
    pub const UIP: u8 = 0x80;
    /// Divider chain select (bits 4-6); 010 is the 32.768 kHz time base.
    pub const DIVIDER_MASK: u8 = 0x70;
    /// The divider value of a running clock with a 32.768 kHz crystal.
    pub const DIVIDER_32KHZ: u8 = 0x20;
    /// Periodic-interrupt rate select (bits 0-3): 0 off, otherwise a period
    /// of `2^(rate - 1)` cycles of 32.768 kHz (rates 1 and 2 as 8 and 9).
    pub const RATE_MASK: u8 = 0x0F;
}

/// Status register B bits.
pub mod reg_b {
    /// SET: the update cycle is stopped so software can set the time.
    pub const SET: u8 = 0x80;
    /// Periodic interrupt enable.
    pub const PIE: u8 = 0x40;
    /// Alarm interrupt enable.
    pub const AIE: u8 = 0x20;
    /// Update-ended interrupt enable.
    pub const UIE: u8 = 0x10;
    /// Square-wave enable (no pin on a PC; stored only).
    pub const SQWE: u8 = 0x08;
    /// Data mode: 1 binary, 0 BCD.
    pub const DM_BINARY: u8 = 0x04;
    /// Hour format: 1 24-hour, 0 12-hour.
    pub const HOUR_24: u8 = 0x02;
    /// Daylight saving enable (stored only, as QEMU).
    pub const DSE: u8 = 0x01;
}

/// Status register C bits.
pub mod reg_c {
    /// Interrupt request flag: one of the enabled flags below is set.
    pub const IRQF: u8 = 0x80;
    /// Periodic interrupt flag.
    pub const PF: u8 = 0x40;
    /// Alarm interrupt flag.
    pub const AF: u8 = 0x20;
    /// Update-ended interrupt flag.
    pub const UF: u8 = 0x10;
}

/// Status register D bits.
pub mod reg_d {
    /// Valid RAM and time: the battery is good.
    pub const VRT: u8 = 0x80;
}

/// Hours register bit 7 in 12-hour mode: PM.
pub const HOURS_PM: u8 = 0x80;
