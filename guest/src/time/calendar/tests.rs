//! Unit tests of the RTC conversions and the calendar.
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
