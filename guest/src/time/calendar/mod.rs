//! Wall-clock time from the MC146818 RTC's registers, without touching the
//! hardware: a consistent sample of the registers ([`sample`], given a
//! register reader), their conversion to a calendar time
//! ([`DateTime::from_registers`]: BCD or binary, 12- or 24-hour, century
//! register) and its ISO 8601 form (`Display`: `2026-12-02T01:47:15Z`).
//!
//! The RTC keeps UTC here: QEMU's `-rtc base=utc` (its default) and our VMM.

use core::fmt;

use shared::rtc::{reg, reg_a, reg_b, HOURS_PM};

/// The time-keeping registers as read, before any conversion.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RtcRegisters {
    /// Register 0x00.
    pub seconds: u8,
    /// Register 0x02.
    pub minutes: u8,
    /// Register 0x04 (bit 7 = PM in 12-hour mode).
    pub hours: u8,
    /// Register 0x07.
    pub day: u8,
    /// Register 0x08.
    pub month: u8,
    /// Register 0x09: year within the century.
    pub year: u8,
    /// Register 0x32.
    pub century: u8,
    /// Status register B: data mode and hour format.
    pub status_b: u8,
}

/// Reads of register A, at most, waiting for an update to finish. An update
/// keeps UIP set for at most 2228 µs; this bound leaves room for a fast CPU
/// and still ends on a clock whose UIP never clears.
const MAX_UIP_POLLS: u32 = 1_000_000;
/// Samples taken, at most, to get two equal ones in a row.
const MAX_SAMPLES: u32 = 10;
/// What reads of a port with no device behind it return.
const FLOATING_BUS: u8 = 0xFF;

/// Reads the clock registers through `read` (register index to value) until
/// two consecutive reads, each started after an update ended, agree; so no
/// update ran between them and the value is not half old, half new. `None`
/// if there is no RTC, UIP never clears or the reads never agree.
pub fn sample(mut read: impl FnMut(u8) -> u8) -> Option<RtcRegisters> {
    // A machine without an RTC reads 0xFF, which no running clock's
    // register A holds (UIP set with the divider chain in reset): answer at
    // once instead of polling UIP to the bound (seconds under emulation).
    if read(reg::A) == FLOATING_BUS {
        return None;
    }
    let mut previous = None;
    for _ in 0..MAX_SAMPLES {
        if !(0..MAX_UIP_POLLS).any(|_| read(reg::A) & reg_a::UIP == 0) {
            return None;
        }
        let current = RtcRegisters {
            seconds: read(reg::SECONDS),
            minutes: read(reg::MINUTES),
            hours: read(reg::HOURS),
            day: read(reg::DAY_OF_MONTH),
            month: read(reg::MONTH),
            year: read(reg::YEAR),
            century: read(reg::CENTURY),
            status_b: read(reg::B),
        };
        if previous == Some(current) {
            return Some(current);
        }
        previous = Some(current);
    }
    None
}

/// A UTC calendar time, to the second.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DateTime {
    /// Year, e.g. 2026.
    pub year: u16,
    /// Month, 1-12.
    pub month: u8,
    /// Day of the month, 1-31.
    pub day: u8,
    /// Hour, 0-23.
    pub hour: u8,
    /// Minute, 0-59.
    pub minute: u8,
    /// Second, 0-59.
    pub second: u8,
}

/// `value` as binary: as it is in binary mode, decoded from two BCD digits
/// otherwise. `None` for a digit above 9.
fn decode(value: u8, binary: bool) -> Option<u8> {
    if binary {
        return Some(value);
    }
    let (tens, ones) = (value >> 4, value & 0x0F);
    (tens <= 9 && ones <= 9).then_some(tens * 10 + ones)
}

fn is_leap(year: u16) -> bool {
    year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400))
}

fn days_in_month(year: u16, month: u8) -> u8 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

impl DateTime {
    /// The time `registers` hold, per the data mode and hour format of their
    /// status register B. `None` if a field is out of range (bad BCD, hour
    /// 13 in 12-hour mode, February 30th, no century).
    pub fn from_registers(registers: &RtcRegisters) -> Option<Self> {
        let binary = registers.status_b & reg_b::DM_BINARY != 0;
        let hour = if registers.status_b & reg_b::HOUR_24 != 0 {
            decode(registers.hours, binary)?
        } else {
            // 12-hour mode: 12 AM is midnight (0), 12 PM is noon (12).
            let pm = registers.hours & HOURS_PM != 0;
            match (decode(registers.hours & !HOURS_PM, binary)?, pm) {
                (12, false) => 0,
                (12, true) => 12,
                (hour @ 1..=11, false) => hour,
                (hour @ 1..=11, true) => hour + 12,
                _ => return None,
            }
        };
        let century = decode(registers.century, binary)?;
        let year_in_century = decode(registers.year, binary)?;
        if !(1..=99).contains(&century) || year_in_century > 99 {
            return None;
        }
        let time = Self {
            year: u16::from(century) * 100 + u16::from(year_in_century),
            month: decode(registers.month, binary)?,
            day: decode(registers.day, binary)?,
            hour,
            minute: decode(registers.minutes, binary)?,
            second: decode(registers.seconds, binary)?,
        };
        let valid = (1..=12).contains(&time.month)
            && (1..=days_in_month(time.year, time.month)).contains(&time.day)
            && time.hour <= 23
            && time.minute <= 59
            && time.second <= 59;
        valid.then_some(time)
    }
}

/// ISO 8601 in UTC: `YYYY-MM-DDTHH:MM:SSZ`.
impl fmt::Display for DateTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )
    }
}

#[cfg(test)]
mod tests;
