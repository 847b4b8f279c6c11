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
mod tests {
    use super::*;
    use std::string::ToString;
    use std::vec::Vec;

    const BCD_24H: u8 = reg_b::HOUR_24;
    const BINARY_24H: u8 = reg_b::HOUR_24 | reg_b::DM_BINARY;
    const BCD_12H: u8 = 0;
    const BINARY_12H: u8 = reg_b::DM_BINARY;

    fn registers(
        status_b: u8,
        [century, year, month, day, hours, minutes, seconds]: [u8; 7],
    ) -> RtcRegisters {
        RtcRegisters {
            seconds,
            minutes,
            hours,
            day,
            month,
            year,
            century,
            status_b,
        }
    }

    fn iso(status_b: u8, fields: [u8; 7]) -> Option<std::string::String> {
        DateTime::from_registers(&registers(status_b, fields)).map(|t| t.to_string())
    }

    #[test]
    fn bcd_24_hour() {
        let fields = [0x20, 0x26, 0x12, 0x02, 0x01, 0x47, 0x15];
        assert_eq!(
            iso(BCD_24H, fields).as_deref(),
            Some("2026-12-02T01:47:15Z")
        );
        let fields = [0x19, 0x99, 0x12, 0x31, 0x23, 0x59, 0x59];
        assert_eq!(
            iso(BCD_24H, fields).as_deref(),
            Some("1999-12-31T23:59:59Z")
        );
    }

    #[test]
    fn binary_24_hour() {
        let fields = [20, 26, 12, 2, 1, 47, 15];
        assert_eq!(
            iso(BINARY_24H, fields).as_deref(),
            Some("2026-12-02T01:47:15Z")
        );
        // The same bytes read as BCD would be other numbers.
        let fields = [20, 0, 1, 10, 13, 5, 9];
        assert_eq!(
            iso(BINARY_24H, fields).as_deref(),
            Some("2000-01-10T13:05:09Z")
        );
    }

    #[test]
    fn twelve_hour_mode_in_bcd() {
        let at = |hours| iso(BCD_12H, [0x20, 0x26, 0x01, 0x01, hours, 0x00, 0x00]);
        assert_eq!(at(0x12).as_deref(), Some("2026-01-01T00:00:00Z"), "12 AM");
        assert_eq!(at(0x01).as_deref(), Some("2026-01-01T01:00:00Z"), "1 AM");
        assert_eq!(at(0x11).as_deref(), Some("2026-01-01T11:00:00Z"), "11 AM");
        assert_eq!(
            at(0x80 | 0x12).as_deref(),
            Some("2026-01-01T12:00:00Z"),
            "12 PM"
        );
        assert_eq!(
            at(0x80 | 0x01).as_deref(),
            Some("2026-01-01T13:00:00Z"),
            "1 PM"
        );
        assert_eq!(
            at(0x80 | 0x11).as_deref(),
            Some("2026-01-01T23:00:00Z"),
            "11 PM"
        );
        assert_eq!(at(0x00), None, "no hour 0 in 12-hour mode");
        assert_eq!(at(0x13), None, "no hour 13 in 12-hour mode");
    }

    #[test]
    fn twelve_hour_mode_in_binary() {
        let at = |hours| iso(BINARY_12H, [20, 26, 1, 1, hours, 30, 0]);
        assert_eq!(at(12).as_deref(), Some("2026-01-01T00:30:00Z"), "12 AM");
        assert_eq!(
            at(0x80 | 12).as_deref(),
            Some("2026-01-01T12:30:00Z"),
            "12 PM"
        );
        assert_eq!(
            at(0x80 | 7).as_deref(),
            Some("2026-01-01T19:30:00Z"),
            "7 PM"
        );
    }

    #[test]
    fn century_register_sets_the_century() {
        let fields = |century| [century, 0x05, 0x06, 0x07, 0x08, 0x09, 0x10];
        assert_eq!(
            iso(BCD_24H, fields(0x19)).as_deref(),
            Some("1905-06-07T08:09:10Z")
        );
        assert_eq!(
            iso(BCD_24H, fields(0x21)).as_deref(),
            Some("2105-06-07T08:09:10Z")
        );
        assert_eq!(iso(BCD_24H, fields(0x00)), None, "no century byte");
    }

    #[test]
    fn invalid_fields_are_rejected() {
        assert_eq!(
            iso(BCD_24H, [0x20, 0x26, 0x1A, 0x01, 0, 0, 0]),
            None,
            "bad BCD digit"
        );
        assert_eq!(
            iso(BCD_24H, [0x20, 0x26, 0x13, 0x01, 0, 0, 0]),
            None,
            "month 13"
        );
        assert_eq!(
            iso(BCD_24H, [0x20, 0x26, 0x00, 0x01, 0, 0, 0]),
            None,
            "month 0"
        );
        assert_eq!(
            iso(BCD_24H, [0x20, 0x26, 0x04, 0x31, 0, 0, 0]),
            None,
            "April 31st"
        );
        assert_eq!(
            iso(BCD_24H, [0x20, 0x26, 0x01, 0x01, 0x24, 0, 0]),
            None,
            "hour 24"
        );
        assert_eq!(
            iso(BCD_24H, [0x20, 0x26, 0x01, 0x01, 0, 0x60, 0]),
            None,
            "minute 60"
        );
        assert_eq!(iso(BINARY_24H, [20, 100, 1, 1, 0, 0, 0]), None, "year 100");
    }

    #[test]
    fn february_29th_only_in_leap_years() {
        assert!(iso(BCD_24H, [0x20, 0x24, 0x02, 0x29, 0, 0, 0]).is_some());
        assert!(
            iso(BCD_24H, [0x20, 0x00, 0x02, 0x29, 0, 0, 0]).is_some(),
            "2000"
        );
        assert!(iso(BCD_24H, [0x20, 0x26, 0x02, 0x29, 0, 0, 0]).is_none());
        assert!(
            iso(BCD_24H, [0x21, 0x00, 0x02, 0x29, 0, 0, 0]).is_none(),
            "2100"
        );
    }

    /// A fake RTC: register values per read, in order, for the registers
    /// that change; a log of the registers read.
    struct FakeRtc {
        uip_reads: Vec<bool>,
        seconds: Vec<u8>,
        reads: Vec<u8>,
    }

    impl FakeRtc {
        fn read(&mut self, index: u8) -> u8 {
            self.reads.push(index);
            match index {
                reg::A => {
                    let uip = if self.uip_reads.is_empty() {
                        false
                    } else {
                        self.uip_reads.remove(0)
                    };
                    if uip {
                        reg_a::UIP
                    } else {
                        0
                    }
                }
                reg::SECONDS => {
                    if self.seconds.len() > 1 {
                        self.seconds.remove(0)
                    } else {
                        self.seconds[0]
                    }
                }
                reg::B => BCD_24H,
                reg::CENTURY => 0x20,
                _ => 0x01,
            }
        }
    }

    #[test]
    fn sample_waits_for_uip_to_clear_before_reading() {
        let mut rtc = FakeRtc {
            uip_reads: std::vec![false, true, true, false],
            seconds: std::vec![0x42],
            reads: Vec::new(),
        };
        let got = sample(|index| rtc.read(index)).unwrap();
        assert_eq!(got.seconds, 0x42);
        assert!(rtc.uip_reads.is_empty(), "every UIP reading was taken");
        // The presence check, then UIP polled until clear.
        assert_eq!(
            &rtc.reads[..5],
            &[reg::A, reg::A, reg::A, reg::A, reg::SECONDS]
        );
    }

    #[test]
    fn sample_reads_again_until_two_reads_agree() {
        // An update between the first and the second read.
        let mut rtc = FakeRtc {
            uip_reads: Vec::new(),
            seconds: std::vec![0x14, 0x15],
            reads: Vec::new(),
        };
        let got = sample(|index| rtc.read(index)).unwrap();
        assert_eq!(got.seconds, 0x15);
        let samples = rtc.reads.iter().filter(|&&r| r == reg::SECONDS).count();
        assert_eq!(samples, 3, "old, new, new again");
    }

    #[test]
    fn sample_gives_up_on_a_clock_that_never_settles() {
        let mut rtc = FakeRtc {
            uip_reads: Vec::new(),
            seconds: (0..=MAX_SAMPLES as u8).collect(),
            reads: Vec::new(),
        };
        assert_eq!(sample(|index| rtc.read(index)), None);
        let mut stuck = 0;
        assert_eq!(
            sample(|index| {
                stuck += 1;
                if index == reg::A {
                    reg_a::UIP
                } else {
                    0
                }
            }),
            None
        );
        assert_eq!(stuck, 1 + MAX_UIP_POLLS, "bounded wait for UIP");
    }

    #[test]
    fn no_rtc_is_noticed_at_the_first_read() {
        let mut reads = 0;
        let got = sample(|_| {
            reads += 1;
            FLOATING_BUS
        });
        assert_eq!(got, None);
        assert_eq!(reads, 1);
    }
}
