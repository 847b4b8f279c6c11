//! The MC146818 real-time clock on our VMM, end to end: the guest's `date`
//! reads it through ports 0x70/0x71 and must agree with the host's UTC clock.
mod common;

use std::time::{SystemTime, UNIX_EPOCH};

use common::guest::Guest;

/// Days from 1970-01-01 to the civil date (proleptic Gregorian), computed
/// here independently of the device model.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_index = (month + 9) % 12;
    let day_of_year = (153 * month_index + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// Seconds since the epoch of an ISO 8601 UTC time `YYYY-MM-DDTHH:MM:SSZ`.
fn parse_iso8601(text: &str) -> Option<i64> {
    let bytes = text.as_bytes();
    if bytes.len() != 20 || bytes[4] != b'-' || bytes[10] != b'T' || bytes[19] != b'Z' {
        return None;
    }
    let number = |range: std::ops::Range<usize>| text.get(range)?.parse::<i64>().ok();
    let days = days_from_civil(number(0..4)?, number(5..7)?, number(8..10)?);
    Some(days * 86_400 + number(11..13)? * 3600 + number(14..16)? * 60 + number(17..19)?)
}

fn host_utc() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("host clock after 1970")
        .as_secs() as i64
}

#[test]
fn iso8601_parser_agrees_with_known_dates() {
    assert_eq!(parse_iso8601("1970-01-01T00:00:00Z"), Some(0));
    assert_eq!(parse_iso8601("2000-03-01T00:00:00Z"), Some(951_868_800));
    assert_eq!(parse_iso8601("2026-12-02T01:47:15Z"), Some(1_796_176_035));
    assert_eq!(parse_iso8601("2026-12-02 01:47:15"), None);
}

/// `date` prints the RTC's time, which the VMM takes from the host's clock
/// (UTC): within 2 s of the host, read before and after.
#[test]
fn date_matches_the_host_clock() {
    let mut guest = Guest::boot();
    let before = host_utc();
    let output = guest.command("date");
    let after = host_utc();
    let stamp = output
        .lines()
        .find_map(|line| line.trim().strip_prefix("date: "))
        .unwrap_or_else(|| panic!("no date line in {output:?}"));
    let guest_time =
        parse_iso8601(stamp.trim()).unwrap_or_else(|| panic!("not ISO 8601 UTC: {stamp:?}"));
    assert!(
        guest_time >= before - 2 && guest_time <= after + 2,
        "guest {stamp} ({guest_time}) outside host [{before}, {after}] +- 2 s"
    );
}
