//! One test per datasheet behaviour, on a [`ManualClock`] with fixed bases.
use super::*;
use crate::clock::ManualClock;
use shared::rtc::INDEX_NMI_DISABLE;

/// 2026-12-02T01:47:15Z, a Wednesday.
const BASE: u64 = 1_796_176_035;
/// 2026-12-02T00:00:00Z.
const MIDNIGHT: u64 = 1_796_169_600;
/// 2026-12-02T11:59:59Z.
const BEFORE_NOON: u64 = 1_796_212_799;
/// 2000-02-28T23:59:59Z, a Monday.
const BEFORE_LEAP_DAY: u64 = 951_782_399;
/// 2099-12-31T23:59:59Z, a Thursday.
const BEFORE_2100: u64 = 4_102_444_799;
/// 2100-02-28T23:59:59Z, a Sunday.
const END_OF_FEB_2100: u64 = 4_107_542_399;

const H24: u8 = reg_b::HOUR_24;
const BIN: u8 = reg_b::DM_BINARY;

fn rtc_at(unix: u64) -> (ManualClock, Rtc<ManualClock>) {
    let clock = ManualClock::new();
    (clock.clone(), Rtc::new(clock, Duration::from_secs(unix)))
}

fn read_with_change(rtc: &mut Rtc<ManualClock>, index: u8) -> (u8, Change) {
    assert_eq!(rtc.write(INDEX_PORT, &[index]), Change::NONE);
    let mut data = [0];
    let change = rtc.read(DATA_PORT, &mut data);
    (data[0], change)
}

fn read(rtc: &mut Rtc<ManualClock>, index: u8) -> u8 {
    read_with_change(rtc, index).0
}

fn write(rtc: &mut Rtc<ManualClock>, index: u8, value: u8) -> Change {
    assert_eq!(rtc.write(INDEX_PORT, &[index]), Change::NONE);
    rtc.write(DATA_PORT, &[value])
}

/// Seconds, minutes, hours, day of week, day of month, month, year, century.
fn time(rtc: &mut Rtc<ManualClock>) -> [u8; 8] {
    TIME_REGISTERS.map(|index| read(rtc, index))
}

fn ns(n: u64) -> Duration {
    Duration::from_nanos(n)
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn pin(level: bool) -> Option<IrqOutput> {
    Some(IrqOutput::Level(level))
}

#[test]
fn power_on_reads_utc_time_in_bcd_24_hour_and_qemu_status_registers() {
    let (_, mut rtc) = rtc_at(BASE);
    assert_eq!(
        time(&mut rtc),
        [0x15, 0x47, 0x01, 0x04, 0x02, 0x12, 0x26, 0x20]
    );
    assert_eq!(read(&mut rtc, reg::A), 0x26);
    assert_eq!(read(&mut rtc, reg::B), 0x02);
    assert_eq!(read(&mut rtc, reg::C), 0x00);
    assert_eq!(read(&mut rtc, reg::D), 0x80);
}

#[test]
fn binary_data_mode_reads_plain_numbers() {
    let (_, mut rtc) = rtc_at(BASE);
    let _ = write(&mut rtc, reg::B, H24 | BIN);
    assert_eq!(time(&mut rtc), [15, 47, 1, 4, 2, 12, 26, 20]);
}

#[test]
fn twelve_hour_mode_has_12_am_12_pm_and_pm_in_bit_7() {
    let (clock, mut rtc) = rtc_at(MIDNIGHT);
    let _ = write(&mut rtc, reg::B, 0);
    assert_eq!(read(&mut rtc, reg::HOURS), 0x12, "00:00 is 12 AM");
    clock.set(secs(3600));
    assert_eq!(read(&mut rtc, reg::HOURS), 0x01, "1 AM");
    clock.set(secs(12 * 3600));
    assert_eq!(read(&mut rtc, reg::HOURS), 0x92, "12 PM");
    clock.set(secs(13 * 3600));
    assert_eq!(read(&mut rtc, reg::HOURS), 0x81, "1 PM");
    clock.set(secs(23 * 3600));
    assert_eq!(read(&mut rtc, reg::HOURS), 0x91, "11 PM");
    let _ = write(&mut rtc, reg::B, BIN);
    clock.set(secs(12 * 3600));
    assert_eq!(read(&mut rtc, reg::HOURS), 0x8C, "12 PM in binary");
}

#[test]
fn switching_format_re_presents_the_same_time() {
    let (clock, mut rtc) = rtc_at(BEFORE_NOON);
    assert_eq!(read(&mut rtc, reg::HOURS), 0x11);
    let _ = write(&mut rtc, reg::B, BIN);
    assert_eq!(time(&mut rtc), [59, 59, 11, 4, 2, 12, 26, 20]);
    clock.set(secs(1));
    assert_eq!(read(&mut rtc, reg::HOURS), 12 | HOURS_PM);
    let _ = write(&mut rtc, reg::B, H24 | BIN);
    assert_eq!(read(&mut rtc, reg::HOURS), 12);
    let _ = write(&mut rtc, reg::B, H24);
    assert_eq!(
        time(&mut rtc),
        [0x00, 0x00, 0x12, 0x04, 0x02, 0x12, 0x26, 0x20]
    );
}

#[test]
fn the_clock_runs_on_across_minutes_and_days() {
    let (clock, mut rtc) = rtc_at(BASE);
    clock.set(secs(45));
    assert_eq!(
        time(&mut rtc),
        [0x00, 0x48, 0x01, 0x04, 0x02, 0x12, 0x26, 0x20]
    );
    // To 2026-12-03T00:00:00Z, a Thursday.
    clock.set(secs(22 * 3600 + 12 * 60 + 45));
    assert_eq!(
        time(&mut rtc),
        [0x00, 0x00, 0x00, 0x05, 0x03, 0x12, 0x26, 0x20]
    );
}

#[test]
fn leap_day_of_2000_comes_and_goes() {
    let (clock, mut rtc) = rtc_at(BEFORE_LEAP_DAY);
    assert_eq!(
        time(&mut rtc),
        [0x59, 0x59, 0x23, 0x02, 0x28, 0x02, 0x00, 0x20]
    );
    clock.set(secs(1));
    assert_eq!(
        time(&mut rtc),
        [0x00, 0x00, 0x00, 0x03, 0x29, 0x02, 0x00, 0x20]
    );
    clock.set(secs(1 + 86_400));
    assert_eq!(
        time(&mut rtc),
        [0x00, 0x00, 0x00, 0x04, 0x01, 0x03, 0x00, 0x20]
    );
}

#[test]
fn century_rolls_over_to_2100_which_is_no_leap_year() {
    let (clock, mut rtc) = rtc_at(BEFORE_2100);
    assert_eq!(
        time(&mut rtc),
        [0x59, 0x59, 0x23, 0x05, 0x31, 0x12, 0x99, 0x20]
    );
    clock.set(secs(1));
    assert_eq!(
        time(&mut rtc),
        [0x00, 0x00, 0x00, 0x06, 0x01, 0x01, 0x00, 0x21]
    );
    let (clock, mut rtc) = rtc_at(END_OF_FEB_2100);
    clock.set(secs(1));
    assert_eq!(
        time(&mut rtc),
        [0x00, 0x00, 0x00, 0x02, 0x01, 0x03, 0x00, 0x21]
    );
}

#[test]
fn set_holds_the_time_and_the_written_time_runs_on_after_it() {
    let (clock, mut rtc) = rtc_at(BASE);
    let _ = write(&mut rtc, reg::B, reg_b::SET | H24);
    clock.set(secs(5));
    assert_eq!(read(&mut rtc, reg::SECONDS), 0x15, "stopped while SET");
    // 2030-06-15 12:00:00, a Saturday; a wrong day of week is recomputed.
    for (index, value) in TIME_REGISTERS
        .into_iter()
        .zip([0x00, 0x00, 0x12, 0x01, 0x15, 0x06, 0x30, 0x20])
    {
        let _ = write(&mut rtc, index, value);
    }
    clock.set(secs(8));
    assert_eq!(read(&mut rtc, reg::DAY_OF_WEEK), 0x01, "held as written");
    let _ = write(&mut rtc, reg::B, H24);
    assert_eq!(
        time(&mut rtc),
        [0x00, 0x00, 0x12, 0x07, 0x15, 0x06, 0x30, 0x20]
    );
    clock.set(secs(9) - ns(1));
    assert_eq!(read(&mut rtc, reg::SECONDS), 0x00);
    clock.set(secs(9));
    assert_eq!(read(&mut rtc, reg::SECONDS), 0x01, "phase kept");
}

#[test]
fn writing_a_time_register_while_running_sets_the_time() {
    let (clock, mut rtc) = rtc_at(BASE);
    let _ = write(&mut rtc, reg::MINUTES, 0x30);
    assert_eq!(
        time(&mut rtc),
        [0x15, 0x30, 0x01, 0x04, 0x02, 0x12, 0x26, 0x20]
    );
    clock.set(secs(45));
    assert_eq!(read(&mut rtc, reg::SECONDS), 0x00);
    assert_eq!(read(&mut rtc, reg::MINUTES), 0x31);
}

#[test]
fn leaving_divider_reset_puts_the_first_update_half_a_second_later() {
    let (clock, mut rtc) = rtc_at(BASE);
    clock.set(ns(300_000_000));
    // As Linux sets the clock: SET, dividers in reset, time, restore B, A.
    let _ = write(&mut rtc, reg::B, reg_b::SET | H24);
    let _ = write(&mut rtc, reg::A, reg_a::DIVIDER_MASK | 0x06);
    let _ = write(&mut rtc, reg::SECONDS, 0x40);
    let _ = write(&mut rtc, reg::B, H24);
    clock.set(secs(2));
    assert_eq!(read(&mut rtc, reg::SECONDS), 0x40, "dividers in reset");
    assert_eq!(read(&mut rtc, reg::A), 0x76, "no UIP in reset");
    let _ = write(&mut rtc, reg::A, 0x26);
    clock.set(secs(2) + ns(499_999_999));
    assert_eq!(read(&mut rtc, reg::SECONDS), 0x40);
    clock.set(secs(2) + ns(500_000_000));
    assert_eq!(read(&mut rtc, reg::SECONDS), 0x41);
}

#[test]
fn uip_is_set_during_the_244_us_before_each_update() {
    let (clock, mut rtc) = rtc_at(BASE);
    assert_eq!(read(&mut rtc, reg::A), 0x26);
    clock.set(ns(1_000_000_000 - 244_141));
    assert_eq!(read(&mut rtc, reg::A), 0x26);
    clock.set(ns(1_000_000_000 - 244_140));
    assert_eq!(read(&mut rtc, reg::A), 0xA6);
    clock.set(ns(1_000_000_000 - 1));
    assert_eq!(read(&mut rtc, reg::A), 0xA6);
    assert_eq!(read(&mut rtc, reg::SECONDS), 0x15, "not updated yet");
    clock.set(secs(1));
    assert_eq!(read(&mut rtc, reg::A), 0x26);
    assert_eq!(read(&mut rtc, reg::SECONDS), 0x16);
}

#[test]
fn uip_reads_0_and_nothing_updates_while_set() {
    let (clock, mut rtc) = rtc_at(BASE);
    let _ = write(&mut rtc, reg::B, reg_b::SET | H24);
    clock.set(ns(1_000_000_000 - 1));
    assert_eq!(read(&mut rtc, reg::A), 0x26);
    clock.set(secs(3));
    // The periodic flag runs on (SET does not stop the dividers).
    assert_eq!(read(&mut rtc, reg::C), reg_c::PF, "no update, no UF");
    assert_eq!(read(&mut rtc, reg::SECONDS), 0x15);
}

#[test]
fn set_clears_uie() {
    let (_, mut rtc) = rtc_at(BASE);
    let _ = write(&mut rtc, reg::B, reg_b::SET | reg_b::UIE | reg_b::PIE | H24);
    assert_eq!(read(&mut rtc, reg::B), reg_b::SET | reg_b::PIE | H24);
}

#[test]
fn register_a_keeps_divider_and_rate_and_uip_is_read_only() {
    let (_, mut rtc) = rtc_at(BASE);
    let _ = write(&mut rtc, reg::A, reg_a::UIP | reg_a::DIVIDER_32KHZ | 0x0F);
    assert_eq!(read(&mut rtc, reg::A), 0x2F);
    let _ = write(&mut rtc, reg::A, 0x13);
    assert_eq!(read(&mut rtc, reg::A), 0x13);
}

#[test]
fn rate_select_gives_the_periodic_period() {
    // First edge, in ns after a whole second: ceil(2^(r-1) / 32768 s),
    // rates 1 and 2 as 8 and 9.
    let expected: [(u8, u64); 15] = [
        (1, 3_906_250),
        (2, 7_812_500),
        (3, 122_071),
        (4, 244_141),
        (5, 488_282),
        (6, 976_563),
        (7, 1_953_125),
        (8, 3_906_250),
        (9, 7_812_500),
        (10, 15_625_000),
        (11, 31_250_000),
        (12, 62_500_000),
        (13, 125_000_000),
        (14, 250_000_000),
        (15, 500_000_000),
    ];
    for (rate, first) in expected {
        let (_, mut rtc) = rtc_at(BASE);
        let _ = write(&mut rtc, reg::A, reg_a::DIVIDER_32KHZ | rate);
        let _ = write(&mut rtc, reg::B, reg_b::PIE | H24);
        assert_eq!(rtc.next_deadline(), Some(ns(first)), "rate {rate}");
    }
    let (clock, mut rtc) = rtc_at(BASE);
    let _ = write(&mut rtc, reg::A, reg_a::DIVIDER_32KHZ);
    let _ = write(&mut rtc, reg::B, reg_b::PIE | H24);
    assert_eq!(rtc.next_deadline(), None, "rate 0 is off");
    clock.set(secs(2));
    assert_eq!(read(&mut rtc, reg::C), reg_c::UF, "updates, no PF");
    // The second edge of rate 6 (1024 Hz) is exactly 1/512 s.
    let _ = write(&mut rtc, reg::A, 0x26);
    clock.set(secs(2) + ns(976_563));
    assert_eq!(read(&mut rtc, reg::C), reg_c::IRQF | reg_c::PF);
    assert_eq!(rtc.next_deadline(), Some(secs(2) + ns(1_953_125)));
}

#[test]
fn periodic_edge_sets_pf_irqf_and_raises_the_pin() {
    let (clock, mut rtc) = rtc_at(BASE);
    let _ = write(&mut rtc, reg::A, 0x2F);
    let _ = write(&mut rtc, reg::B, reg_b::PIE | H24);
    assert_eq!(rtc.next_deadline(), Some(ns(500_000_000)));
    clock.set(ns(499_999_999));
    assert_eq!(rtc.on_deadline(), Change::NONE);
    clock.set(ns(500_000_000));
    let change = rtc.on_deadline();
    assert_eq!(change.irq[IRQ_PIN], pin(true));
    assert!(change.deadline_moved);
    assert_eq!(rtc.next_deadline(), None, "IRQF is up already");
    let (c, change) = read_with_change(&mut rtc, reg::C);
    assert_eq!(c, reg_c::IRQF | reg_c::PF);
    assert_eq!(change.irq[IRQ_PIN], pin(false));
    assert_eq!(rtc.next_deadline(), Some(secs(1)));
}

#[test]
fn pf_is_set_without_pie_for_a_poller_but_raises_no_interrupt() {
    let (clock, mut rtc) = rtc_at(BASE);
    assert_eq!(rtc.next_deadline(), None);
    clock.set(ns(976_563));
    assert_eq!(rtc.on_deadline().irq[IRQ_PIN], None);
    assert_eq!(read(&mut rtc, reg::C), reg_c::PF);
    assert_eq!(read(&mut rtc, reg::C), 0x00);
}

#[test]
fn uf_is_set_once_per_second_after_each_update() {
    let (clock, mut rtc) = rtc_at(BASE);
    let _ = write(&mut rtc, reg::A, reg_a::DIVIDER_32KHZ);
    let _ = write(&mut rtc, reg::B, reg_b::UIE | H24);
    assert_eq!(rtc.next_deadline(), Some(secs(1)));
    clock.set(secs(1) - ns(1));
    assert_eq!(rtc.on_deadline(), Change::NONE);
    clock.set(secs(1));
    assert_eq!(rtc.on_deadline().irq[IRQ_PIN], pin(true));
    assert_eq!(read(&mut rtc, reg::C), reg_c::IRQF | reg_c::UF);
    assert_eq!(rtc.next_deadline(), Some(secs(2)));
    clock.set(ns(1_500_000_000));
    assert_eq!(read(&mut rtc, reg::C), 0x00, "no update within the second");
    clock.set(ns(5_500_000_000));
    assert_eq!(read(&mut rtc, reg::C), reg_c::IRQF | reg_c::UF);
    assert_eq!(read(&mut rtc, reg::C), 0x00);
    assert_eq!(rtc.next_deadline(), Some(secs(6)));
}

#[test]
fn uf_is_seen_by_a_poller_without_uie() {
    let (clock, mut rtc) = rtc_at(BASE);
    let _ = write(&mut rtc, reg::A, reg_a::DIVIDER_32KHZ);
    clock.set(secs(1));
    assert_eq!(rtc.on_deadline().irq[IRQ_PIN], None);
    assert_eq!(rtc.next_deadline(), None);
    assert_eq!(read(&mut rtc, reg::C), reg_c::UF);
}

#[test]
fn alarm_fires_at_the_update_to_the_alarm_time() {
    let (clock, mut rtc) = rtc_at(BASE);
    let _ = write(&mut rtc, reg::A, reg_a::DIVIDER_32KHZ);
    let _ = write(&mut rtc, reg::SECONDS_ALARM, 0x20);
    let _ = write(&mut rtc, reg::MINUTES_ALARM, 0x47);
    let _ = write(&mut rtc, reg::HOURS_ALARM, 0x01);
    let _ = write(&mut rtc, reg::B, reg_b::AIE | H24);
    assert_eq!(rtc.next_deadline(), Some(secs(5)));
    clock.set(secs(4));
    assert_eq!(rtc.on_deadline().irq[IRQ_PIN], None);
    assert_eq!(read(&mut rtc, reg::C), reg_c::UF, "not yet");
    clock.set(secs(5));
    assert_eq!(rtc.on_deadline().irq[IRQ_PIN], pin(true));
    assert_eq!(read(&mut rtc, reg::C), reg_c::IRQF | reg_c::AF | reg_c::UF);
    assert_eq!(rtc.next_deadline(), Some(secs(5 + 86_400)), "next day");
}

#[test]
fn alarm_bytes_c0_to_ff_match_any_value() {
    let (clock, mut rtc) = rtc_at(BASE);
    let _ = write(&mut rtc, reg::A, reg_a::DIVIDER_32KHZ);
    let _ = write(&mut rtc, reg::SECONDS_ALARM, 0x30);
    let _ = write(&mut rtc, reg::MINUTES_ALARM, ALARM_DONT_CARE);
    let _ = write(&mut rtc, reg::HOURS_ALARM, 0xFF);
    let _ = write(&mut rtc, reg::B, reg_b::AIE | H24);
    assert_eq!(rtc.next_deadline(), Some(secs(15)), "at 01:47:30");
    clock.set(secs(15));
    assert_eq!(read(&mut rtc, reg::C), reg_c::IRQF | reg_c::AF | reg_c::UF);
    assert_eq!(rtc.next_deadline(), Some(secs(75)), "at 01:48:30");
    let _ = write(&mut rtc, reg::SECONDS_ALARM, 0xD5);
    assert_eq!(rtc.next_deadline(), Some(secs(16)), "every second");
}

#[test]
fn alarm_compares_hours_in_12_hour_format() {
    let (clock, mut rtc) = rtc_at(BEFORE_NOON);
    let _ = write(&mut rtc, reg::A, reg_a::DIVIDER_32KHZ);
    let _ = write(&mut rtc, reg::SECONDS_ALARM, 0x00);
    let _ = write(&mut rtc, reg::MINUTES_ALARM, 0x00);
    let _ = write(&mut rtc, reg::HOURS_ALARM, 0x12 | HOURS_PM);
    let _ = write(&mut rtc, reg::B, reg_b::AIE);
    assert_eq!(rtc.next_deadline(), Some(secs(1)), "12:00:00 PM");
    clock.set(secs(1));
    assert_eq!(read(&mut rtc, reg::C), reg_c::IRQF | reg_c::AF | reg_c::UF);
}

#[test]
fn irqf_only_for_enabled_flags_and_at_once_when_a_set_flag_is_enabled() {
    let (clock, mut rtc) = rtc_at(BASE);
    let _ = write(&mut rtc, reg::A, 0x26);
    let _ = write(&mut rtc, reg::SECONDS_ALARM, 0x00);
    let _ = write(&mut rtc, reg::MINUTES_ALARM, 0x00);
    let _ = write(&mut rtc, reg::HOURS_ALARM, 0x00);
    let _ = write(&mut rtc, reg::B, reg_b::AIE | H24);
    clock.set(secs(1));
    assert_eq!(rtc.on_deadline().irq[IRQ_PIN], None);
    assert_eq!(read(&mut rtc, reg::C), reg_c::PF | reg_c::UF);
    clock.set(secs(2));
    let change = write(&mut rtc, reg::B, reg_b::UIE | H24);
    assert_eq!(change.irq[IRQ_PIN], pin(true), "UF was set already");
    let change = write(&mut rtc, reg::B, H24);
    assert_eq!(change.irq[IRQ_PIN], pin(false), "and no longer enabled");
    assert_eq!(read(&mut rtc, reg::C), reg_c::PF | reg_c::UF);
}

#[test]
fn reading_c_clears_it_and_lowers_the_pin() {
    let (clock, mut rtc) = rtc_at(BASE);
    let _ = write(&mut rtc, reg::B, reg_b::UIE | H24);
    clock.set(secs(1));
    assert_eq!(rtc.on_deadline().irq[IRQ_PIN], pin(true));
    let (c, change) = read_with_change(&mut rtc, reg::C);
    assert_eq!(c, reg_c::IRQF | reg_c::PF | reg_c::UF);
    assert_eq!(change.irq[IRQ_PIN], pin(false));
    assert!(change.deadline_moved);
    let (c, change) = read_with_change(&mut rtc, reg::C);
    assert_eq!(c, 0x00);
    assert_eq!(change.irq[IRQ_PIN], None);
}

#[test]
fn c_and_d_are_read_only_and_d_reads_vrt() {
    let (_, mut rtc) = rtc_at(BASE);
    let _ = write(&mut rtc, reg::A, reg_a::DIVIDER_32KHZ);
    let _ = write(&mut rtc, reg::C, 0xFF);
    let _ = write(&mut rtc, reg::D, 0x00);
    assert_eq!(read(&mut rtc, reg::C), 0x00);
    assert_eq!(read(&mut rtc, reg::D), reg_d::VRT);
}

#[test]
fn nmi_bit_of_the_index_is_ignored_and_the_index_port_reads_ff() {
    let (_, mut rtc) = rtc_at(BASE);
    assert_eq!(read(&mut rtc, INDEX_NMI_DISABLE | reg::SECONDS), 0x15);
    let _ = write(&mut rtc, INDEX_NMI_DISABLE | 0x0E, 0x5A);
    assert_eq!(read(&mut rtc, 0x0E), 0x5A);
    let mut data = [0];
    assert_eq!(rtc.read(INDEX_PORT, &mut data), Change::NONE);
    assert_eq!(data, [0xFF]);
}

#[test]
fn cmos_ram_bytes_are_plain_storage() {
    let (_, mut rtc) = rtc_at(BASE);
    let ram = (0x0E..0x80u8).filter(|&i| i != reg::CENTURY && i != reg::PS2_CENTURY);
    for index in ram.clone() {
        let _ = write(&mut rtc, index, index ^ 0xA5);
    }
    for index in ram {
        assert_eq!(read(&mut rtc, index), index ^ 0xA5, "byte {index:#x}");
    }
    // Alarm bytes are plain storage too.
    let _ = write(&mut rtc, reg::HOURS_ALARM, 0x42);
    assert_eq!(read(&mut rtc, reg::HOURS_ALARM), 0x42);
    // The PS/2 century byte is the century.
    assert_eq!(read(&mut rtc, reg::PS2_CENTURY), 0x20);
}

#[test]
fn reset_clears_interrupt_enables_and_flags_and_keeps_time_and_ram() {
    let (clock, mut rtc) = rtc_at(BASE);
    let _ = write(&mut rtc, 0x40, 0x12);
    let enables = reg_b::PIE | reg_b::AIE | reg_b::UIE | reg_b::SQWE;
    let _ = write(&mut rtc, reg::B, enables | H24);
    clock.set(secs(1));
    assert_eq!(rtc.on_deadline().irq[IRQ_PIN], pin(true));
    rtc.reset();
    assert_eq!(read(&mut rtc, reg::B), H24);
    assert_eq!(read(&mut rtc, reg::C), 0x00);
    assert_eq!(read(&mut rtc, reg::A), 0x26);
    assert_eq!(rtc.next_deadline(), None);
    assert_eq!(read(&mut rtc, reg::SECONDS), 0x16);
    assert_eq!(read(&mut rtc, 0x40), 0x12);
    // The pin is low after reset: the next interrupt is a fresh rise.
    let _ = write(&mut rtc, reg::B, reg_b::UIE | H24);
    clock.set(secs(2));
    assert_eq!(rtc.on_deadline().irq[IRQ_PIN], pin(true));
}

#[test]
fn any_guest_access_leaves_a_valid_device() {
    let (clock, mut rtc) = rtc_at(BASE);
    let values = [0x00, 0x01, 0x0F, 0x59, 0x7F, 0x80, 0x99, 0x9A, 0xC0, 0xFF];
    let mut step = 0u64;
    for offset in [0u16, 1, 2, 3, 0x70, 0xFFFF] {
        for index in 0..=255u8 {
            for &value in &values {
                let _ = rtc.write(INDEX_PORT, &[index]);
                let _ = rtc.write(offset, &[value]);
                let _ = rtc.write(offset, &[]);
                let _ = rtc.write(DATA_PORT, &[value, index]);
                let mut wide = [0u8; 4];
                let _ = rtc.read(offset, &mut wide);
                let _ = rtc.read(DATA_PORT, &mut []);
                step = step.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                clock.advance(ns(step >> 40));
                let _ = rtc.next_deadline();
                let _ = rtc.on_deadline();
            }
        }
    }
    for t in [Duration::MAX, Duration::ZERO] {
        clock.set(t);
        let _ = rtc.on_deadline();
        let _ = rtc.next_deadline();
        let _ = time(&mut rtc);
    }
    // It still keeps time once set again properly.
    clock.set(secs(100));
    let _ = write(&mut rtc, reg::B, reg_b::SET | H24);
    let _ = write(&mut rtc, reg::A, 0x26);
    for (index, value) in TIME_REGISTERS
        .into_iter()
        .zip([0x15, 0x47, 0x01, 0x04, 0x02, 0x12, 0x26, 0x20])
    {
        let _ = write(&mut rtc, index, value);
    }
    let _ = write(&mut rtc, reg::B, H24);
    assert_eq!(
        time(&mut rtc),
        [0x15, 0x47, 0x01, 0x04, 0x02, 0x12, 0x26, 0x20]
    );
    // Extreme bases and clocks do not overflow.
    for base in [Duration::ZERO, Duration::MAX] {
        let clock = ManualClock::new();
        let mut rtc = Rtc::new(clock.clone(), base);
        let _ = write(&mut rtc, reg::B, reg_b::PIE | reg_b::AIE | reg_b::UIE | H24);
        clock.set(Duration::MAX);
        let _ = rtc.next_deadline();
        let _ = rtc.on_deadline();
        let _ = time(&mut rtc);
        let _ = read(&mut rtc, reg::C);
    }
    let (_, mut epoch) = rtc_at(0);
    assert_eq!(
        time(&mut epoch),
        [0x00, 0x00, 0x00, 0x05, 0x01, 0x01, 0x70, 0x19]
    );
}

#[test]
fn civil_calendar_round_trips() {
    for days in [-719_468i64, -1, 0, 10_956, 11_016, 47_482, 2_932_896] {
        let (y, m, d) = civil_from_days(days);
        assert_eq!(days_from_civil(y, i64::from(m), i64::from(d)), days);
    }
    assert_eq!(civil_from_days(11_016), (2000, 2, 29));
    assert_eq!(civil_from_days(47_482), (2100, 1, 1));
}

#[test]
fn set_time_is_read_in_the_format_of_register_b() {
    let (clock, mut rtc) = rtc_at(BASE);
    // Binary, 12-hour: 11:30:05 PM on 2027-01-09 (a Saturday).
    let _ = write(&mut rtc, reg::B, reg_b::SET | BIN);
    for (index, value) in TIME_REGISTERS
        .into_iter()
        .zip([5, 30, 11 | HOURS_PM, 1, 9, 1, 27, 20])
    {
        let _ = write(&mut rtc, index, value);
    }
    let _ = write(&mut rtc, reg::B, BIN);
    clock.set(secs(1));
    let _ = write(&mut rtc, reg::B, H24);
    assert_eq!(
        time(&mut rtc),
        [0x06, 0x30, 0x23, 0x07, 0x09, 0x01, 0x27, 0x20]
    );
}

#[test]
fn a_poller_sees_the_alarm_after_days_without_reading() {
    let (clock, mut rtc) = rtc_at(BASE);
    let _ = write(&mut rtc, reg::A, reg_a::DIVIDER_32KHZ);
    let _ = write(&mut rtc, reg::SECONDS_ALARM, 0x14);
    let _ = write(&mut rtc, reg::MINUTES_ALARM, 0x47);
    let _ = write(&mut rtc, reg::HOURS_ALARM, 0x01);
    // 01:47:13 the next day: the alarm time has not come round yet.
    clock.set(secs(86_398));
    assert_eq!(read(&mut rtc, reg::C), reg_c::UF);
    clock.set(secs(3 * 86_400));
    assert_eq!(read(&mut rtc, reg::C), reg_c::AF | reg_c::UF);
}
