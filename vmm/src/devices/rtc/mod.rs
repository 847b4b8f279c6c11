//! Motorola MC146818A CMOS real-time clock, as a PC presents it: an index
//! port (offset [`INDEX_PORT`], 0x70) selecting one of 128 bytes of CMOS RAM
//! and a data port (offset [`DATA_PORT`], 0x71) reading or writing it. Bytes
//! 0-13 are the clock: time, alarm, and status registers A-D; byte 0x32 is
//! the century. The interrupt output is pin [`IRQ_PIN`] (wired to IRQ 8).
//!
//! # Time model
//!
//! Nothing here ticks. The guest's time of day is kept in nanoseconds since
//! the Unix epoch (UTC) as `base + clock.now() + offset`: `base` is the Unix
//! time at clock time zero (given to [`Rtc::new`]), `offset` what the guest
//! changed by setting the clock. Every guest-visible value is computed from
//! it on access:
//!
//! - the time registers are the calendar of that instant (civil-from-days,
//!   proleptic Gregorian, UTC, no leap seconds), encoded per register B: BCD
//!   or binary (DM), 24- or 12-hour (12-hour: 12 AM is 12, bit 7 is PM). A
//!   change of format therefore re-presents the same time;
//! - the once-per-second update happens when the guest time crosses a whole
//!   second; UIP (register A bit 7) reads 1 during the 244 µs before it
//!   (`8 / 32768` s, truncated to 244 140 ns as QEMU computes it);
//! - periodic interrupts fall every `2^(rate - 1)` cycles of the 32.768 kHz
//!   time base (rates 1 and 2 as 8 and 9, 0 off) on the same divider chain,
//!   so they are in phase with the update;
//! - the flags of register C (PF, AF, UF) are brought up to date lazily from
//!   the instant they were last computed up to now, on every access that
//!   needs them (a read of C, a write that changes what raises them) and on
//!   [`PortDevice::on_deadline`]. A flag is set whatever its enable bit, as
//!   the datasheet says; IRQF is `PF & PIE | AF & AIE | UF & UIE`, and the
//!   interrupt pin follows IRQF. Reading C returns it and clears it, which
//!   lowers the pin.
//!
//! [`PortDevice::next_deadline`] is the clock time of the next event that
//! would raise IRQF: the next periodic edge with PIE, the next update with
//! UIE, the next alarm match with AIE; none while IRQF is already up (nothing
//! can raise it further until C is read, and that read moves the deadline).
//!
//! # Setting the clock
//!
//! While SET (register B bit 7) is on, or the dividers are held in reset
//! (register A divider bits above 010), the clock is *stopped*: the time
//! registers hold the time of the moment it stopped, plain bytes the guest
//! may overwrite, no update happens (no UF, no AF) and UIP reads 0. When it
//! runs again, the time those registers hold (in the current format) becomes
//! the guest time and runs on from there: after SET is cleared the update
//! keeps its phase within the second, after the dividers leave reset the
//! first update comes half a second later (both as the datasheet and QEMU).
//! A time register written while the clock runs sets the time at once,
//! keeping the phase. Setting SET clears UIE (datasheet). Invalid dates
//! (February 30th, month 0, bad BCD digits) are normalised by the calendar
//! arithmetic when they become the time, as QEMU's `mktimegm` does.
//!
//! # Alarm
//!
//! AF is set at an update whose new seconds, minutes and hours bytes equal
//! the three alarm bytes, an alarm byte of 0xC0-0xFF matching any value (the
//! datasheet's comparison, byte for byte in the current format).
//!
//! # Where this differs from QEMU (`hw/rtc/mc146818rtc.c`)
//!
//! - PF is set at every periodic edge even with PIE off (the datasheet; QEMU
//!   runs its periodic timer only with PIE, so a poller never sees PF).
//! - No update while SET is on: no UF (QEMU may still raise UF once).
//! - The periodic edges are on the divider chain's grid (in phase with the
//!   update) rather than on QEMU's grid of its own clock; no "lost tick"
//!   reinjection (QEMU's default policy, discard, has none either).
//! - A change of DM or 24/12 while the clock is stopped re-encodes the held
//!   time registers, so they keep meaning the same time; the alarm bytes are
//!   kept as written (QEMU keeps both as written).
//! - Reset clears PIE, AIE, UIE and SQWE in B and every flag in C (the
//!   datasheet's RESET; QEMU keeps UIE) and keeps all of CMOS RAM (QEMU
//!   clears the shutdown status byte 0x0F unless it is 0xFE, for its BIOS).
//! - Dividers 011-101 (test modes) stop the clock like the reset values 11x
//!   (QEMU stops the time there but keeps its update timer).
//! - Register D always reads VRT; C and D ignore writes (as QEMU).
//! - The index port reads 0xFF (as QEMU); byte 0x37 (the IBM PS/2 century)
//!   selects the century byte 0x32 (as QEMU). Offsets other than the two
//!   ports read 0xFF and ignore writes.
use std::time::Duration;

use shared::ports::{RTC_DATA, RTC_INDEX};
use shared::rtc::{
    reg, reg_a, reg_b, reg_c, reg_d, ALARM_DONT_CARE, CMOS_SIZE, HOURS_PM, INDEX_MASK, TIME_BASE_HZ,
};

use crate::clock::Clock;
use crate::device::{Change, IrqOutput, PortDevice};

/// Offset of the index port (0x70, [`RTC_INDEX`]): the device's base.
pub const INDEX_PORT: u16 = 0;
/// Offset of the data port (0x71, [`RTC_DATA`]) from the device's base.
pub const DATA_PORT: u16 = RTC_DATA - RTC_INDEX;
/// The device's one interrupt pin (wired to IRQ 8).
pub const IRQ_PIN: usize = 0;

const NANOS_PER_SEC: i128 = 1_000_000_000;
const SECS_PER_DAY: i64 = 86_400;
const SECS_PER_HOUR: i64 = 3_600;
const SECS_PER_MIN: i64 = 60;
const TIME_BASE: i128 = TIME_BASE_HZ as i128;
/// How long UIP is up before each update: 8 cycles of the time base
/// (244.140625 µs), truncated to whole nanoseconds as QEMU does.
const UIP_HOLD_NS: i128 = 8 * NANOS_PER_SEC / TIME_BASE;
/// Half a second: the first update after the dividers leave reset.
const HALF_SECOND_NS: i128 = NANOS_PER_SEC / 2;
/// Guest seconds are kept within +/- this (about 35 million years), so the
/// calendar arithmetic never overflows whatever the base or the clock.
const MAX_GUEST_SECS: i64 = 1 << 50;
/// What a read of the index port (or of no port) returns.
const OPEN_BUS: u8 = 0xFF;
/// Register C flags with their enable bits in register B.
const FLAG_ENABLES: [(u8, u8); 3] = [
    (reg_c::PF, reg_b::PIE),
    (reg_c::AF, reg_b::AIE),
    (reg_c::UF, reg_b::UIE),
];
/// Register B bits reset clears.
const RESET_CLEARS_B: u8 = reg_b::PIE | reg_b::AIE | reg_b::UIE | reg_b::SQWE;
/// Register A's power-on value (QEMU's): 32.768 kHz time base, rate 6.
const POWER_ON_A: u8 = reg_a::DIVIDER_32KHZ | 0x06;
/// Register B's power-on value (QEMU's): 24-hour, BCD.
const POWER_ON_B: u8 = reg_b::HOUR_24;

/// The registers that hold the time (alarms excluded).
const TIME_REGISTERS: [u8; 8] = [
    reg::SECONDS,
    reg::MINUTES,
    reg::HOURS,
    reg::DAY_OF_WEEK,
    reg::DAY_OF_MONTH,
    reg::MONTH,
    reg::YEAR,
    reg::CENTURY,
];

fn is_time_register(index: u8) -> bool {
    TIME_REGISTERS.contains(&index)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// `days_from_civil`). Out-of-range months and days give some nearby date,
/// never an overflow, for the small values registers hold.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if month > 2 { month - 3 } else { month + 9 };
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (Howard
/// Hinnant's `civil_from_days`): year, month 1-12, day 1-31.
fn civil_from_days(days: i64) -> (i64, u8, u8) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    // month is 1-12 and day 1-31 by construction.
    (year, month as u8, day as u8)
}

/// A calendar instant, UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct DateTime {
    year: i64,
    month: u8,
    day: u8,
    hour: u8,
    minute: u8,
    second: u8,
    /// Day of the week, 0 = Sunday.
    weekday: u8,
}

impl DateTime {
    fn from_unix(secs: i64) -> Self {
        let days = secs.div_euclid(SECS_PER_DAY);
        let tod = secs.rem_euclid(SECS_PER_DAY);
        let (year, month, day) = civil_from_days(days);
        // All below 256 by construction (rem_euclid of small moduli).
        DateTime {
            year,
            month,
            day,
            hour: (tod / SECS_PER_HOUR) as u8,
            minute: (tod / SECS_PER_MIN % 60) as u8,
            second: (tod % SECS_PER_MIN) as u8,
            // 1970-01-01 was a Thursday.
            weekday: (days + 4).rem_euclid(7) as u8,
        }
    }
}

/// How the time registers are encoded (register B's DM and 24/12 bits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Format {
    binary: bool,
    hour_24: bool,
}

impl Format {
    fn of(reg_b: u8) -> Self {
        Format {
            binary: reg_b & reg_b::DM_BINARY != 0,
            hour_24: reg_b & reg_b::HOUR_24 != 0,
        }
    }

    /// A value 0-99 as a register byte (larger values keep their last two
    /// decimal digits in BCD).
    fn encode(self, value: u8) -> u8 {
        if self.binary {
            value
        } else {
            ((value / 10 % 10) << 4) | (value % 10)
        }
    }

    /// A register byte as a value (bad BCD digits taken at face value).
    fn decode(self, byte: u8) -> u8 {
        if self.binary {
            byte
        } else {
            (byte >> 4) * 10 + (byte & 0x0F)
        }
    }

    /// An hour 0-23 as the hours byte.
    fn encode_hour(self, hour: u8) -> u8 {
        if self.hour_24 {
            self.encode(hour)
        } else {
            let h12 = match hour % 12 {
                0 => 12,
                h => h,
            };
            let pm = if hour >= 12 { HOURS_PM } else { 0 };
            self.encode(h12) | pm
        }
    }

    /// The hours byte as an hour (0-23 for valid bytes).
    fn decode_hour(self, byte: u8) -> u8 {
        let hour = self.decode(byte & !HOURS_PM);
        if self.hour_24 {
            hour
        } else if byte & HOURS_PM != 0 {
            hour % 12 + 12
        } else {
            hour % 12
        }
    }

    /// The byte register `index` holds at `time`.
    fn time_byte(self, index: u8, time: &DateTime) -> u8 {
        match index {
            reg::SECONDS => self.encode(time.second),
            reg::MINUTES => self.encode(time.minute),
            reg::HOURS => self.encode_hour(time.hour),
            reg::DAY_OF_WEEK => self.encode(time.weekday + 1),
            reg::DAY_OF_MONTH => self.encode(time.day),
            reg::MONTH => self.encode(time.month),
            // rem_euclid(100) is 0-99.
            reg::YEAR => self.encode(time.year.rem_euclid(100) as u8),
            reg::CENTURY => self.encode(time.year.div_euclid(100).rem_euclid(100) as u8),
            _ => 0,
        }
    }

    /// Register `index`'s `byte`, written in this format, in format `to`.
    fn convert(self, index: u8, byte: u8, to: Format) -> u8 {
        if index == reg::HOURS {
            to.encode_hour(self.decode_hour(byte))
        } else {
            to.encode(self.decode(byte))
        }
    }
}

/// Whether an alarm byte matches a time byte.
fn alarm_matches(alarm: u8, byte: u8) -> bool {
    alarm & ALARM_DONT_CARE == ALARM_DONT_CARE || alarm == byte
}

/// Guest nanoseconds as whole seconds (floor), within [`MAX_GUEST_SECS`].
fn whole_secs(guest_ns: i128) -> i64 {
    let secs = guest_ns.div_euclid(NANOS_PER_SEC);
    let limit = i128::from(MAX_GUEST_SECS);
    // Clamped into i64 range just above.
    secs.clamp(-limit, limit) as i64
}

/// Time-base cycles elapsed at guest time `guest_ns` (floor).
fn cycles(guest_ns: i128) -> i128 {
    guest_ns.saturating_mul(TIME_BASE).div_euclid(NANOS_PER_SEC)
}

/// Guest time of periodic edge number `k` of a `period`-cycle rate: the
/// first instant at which [`cycles`] reaches `k * period`.
fn periodic_edge(k: i128, period: i128) -> i128 {
    let n = k.saturating_mul(period).saturating_mul(NANOS_PER_SEC);
    let q = n.div_euclid(TIME_BASE);
    if n.rem_euclid(TIME_BASE) == 0 {
        q
    } else {
        q.saturating_add(1)
    }
}

/// The MC146818A real-time clock and its CMOS RAM; see the module
/// documentation. Reads its time from the injected clock `C`.
#[derive(Debug)]
pub struct Rtc<C: Clock> {
    clock: C,
    /// Unix time at clock time zero, in nanoseconds.
    base_ns: i128,
    /// What the guest's setting of the clock added, in nanoseconds.
    offset_ns: i128,
    /// CMOS RAM. The time registers hold the time only while the clock is
    /// stopped (or after a read); register A without UIP; register C with
    /// the flags as of `synced_ns`; register D unused (reads VRT).
    cmos: [u8; CMOS_SIZE],
    /// The byte the index port selected (0-127).
    index: u8,
    /// Guest time up to which register C's flags are computed.
    synced_ns: i128,
    /// Level of the interrupt pin the machine last heard of.
    pin: bool,
}

impl<C: Clock> Rtc<C> {
    /// A clock reading `clock`, whose time of day at clock time zero is
    /// `base` after the Unix epoch (UTC); the VMM passes a fresh clock and
    /// [`crate::clock::unix_time_now`]. Registers as QEMU powers them on:
    /// A = 0x26 (32.768 kHz, rate 6), B = 0x02 (24-hour, BCD, no
    /// interrupts), C = 0, D = VRT; the rest of CMOS RAM zero.
    pub fn new(clock: C, base: Duration) -> Rtc<C> {
        let base_ns = i128::try_from(base.as_nanos()).unwrap_or(i128::MAX);
        let mut cmos = [0; CMOS_SIZE];
        cmos[usize::from(reg::A)] = POWER_ON_A;
        cmos[usize::from(reg::B)] = POWER_ON_B;
        let mut rtc = Rtc {
            clock,
            base_ns,
            offset_ns: 0,
            cmos,
            index: 0,
            synced_ns: 0,
            pin: false,
        };
        rtc.synced_ns = rtc.guest_ns();
        rtc.store_time_registers();
        rtc
    }

    fn get(&self, index: u8) -> u8 {
        self.cmos[usize::from(index & INDEX_MASK)]
    }

    fn set(&mut self, index: u8, value: u8) {
        self.cmos[usize::from(index & INDEX_MASK)] = value;
    }

    fn now_ns(&self) -> i128 {
        i128::try_from(self.clock.now().as_nanos()).unwrap_or(i128::MAX)
    }

    /// The guest's time of day now, in nanoseconds since the Unix epoch.
    fn guest_ns(&self) -> i128 {
        self.base_ns
            .saturating_add(self.now_ns())
            .saturating_add(self.offset_ns)
    }

    /// The clock time at which the guest time is `guest_ns` (zero if past).
    fn clock_time_of(&self, guest_ns: i128) -> Duration {
        let ns = guest_ns
            .saturating_sub(self.base_ns)
            .saturating_sub(self.offset_ns)
            .max(0);
        let secs = u64::try_from(ns / NANOS_PER_SEC).unwrap_or(u64::MAX);
        // The remainder is below 1e9, so it fits in u32.
        Duration::new(secs, (ns % NANOS_PER_SEC) as u32)
    }

    fn format(&self) -> Format {
        Format::of(self.get(reg::B))
    }

    /// The divider chain counts (divider bits 000-010, as QEMU).
    fn dividers_run(&self) -> bool {
        self.get(reg::A) & reg_a::DIVIDER_MASK <= reg_a::DIVIDER_32KHZ
    }

    /// The time runs and updates: dividers counting and SET off.
    fn running(&self) -> bool {
        self.dividers_run() && self.get(reg::B) & reg_b::SET == 0
    }

    /// The periodic period in time-base cycles, if periodic edges happen.
    fn periodic_period(&self) -> Option<i128> {
        if !self.dividers_run() {
            return None;
        }
        let rate = self.get(reg::A) & reg_a::RATE_MASK;
        let rate = match rate {
            0 => return None,
            1 | 2 => rate + 7,
            _ => rate,
        };
        Some(1 << (rate - 1))
    }

    /// Whether UIP reads 1 now.
    fn update_in_progress(&self) -> bool {
        self.running() && self.guest_ns().rem_euclid(NANOS_PER_SEC) >= NANOS_PER_SEC - UIP_HOLD_NS
    }

    /// Writes the present guest time into the time registers.
    fn store_time_registers(&mut self) {
        let time = DateTime::from_unix(whole_secs(self.guest_ns()));
        let format = self.format();
        for index in TIME_REGISTERS {
            self.set(index, format.time_byte(index, &time));
        }
    }

    /// The Unix time (seconds) the time registers hold.
    fn registers_time(&self) -> i64 {
        let f = self.format();
        let value = |index| i64::from(f.decode(self.get(index)));
        let year = value(reg::CENTURY) * 100 + value(reg::YEAR);
        let days = days_from_civil(year, value(reg::MONTH), value(reg::DAY_OF_MONTH));
        days * SECS_PER_DAY
            + i64::from(f.decode_hour(self.get(reg::HOURS))) * SECS_PER_HOUR
            + value(reg::MINUTES) * SECS_PER_MIN
            + value(reg::SECONDS)
    }

    /// Makes the guest time `secs` plus `phase_ns`; flags start afresh from
    /// there.
    fn set_guest_time(&mut self, secs: i64, phase_ns: i128) {
        let target = i128::from(secs)
            .saturating_mul(NANOS_PER_SEC)
            .saturating_add(phase_ns);
        self.offset_ns = target
            .saturating_sub(self.base_ns)
            .saturating_sub(self.now_ns());
        self.synced_ns = self.guest_ns();
    }

    /// The first second after `after` (guest Unix seconds) at whose update
    /// the alarm matches, if any.
    fn next_alarm(&self, after: i64) -> Option<i64> {
        let f = self.format();
        let sec_alarm = self.get(reg::SECONDS_ALARM);
        let min_alarm = self.get(reg::MINUTES_ALARM);
        let hour_alarm = self.get(reg::HOURS_ALARM);
        let can_match = (0..60).any(|v| alarm_matches(sec_alarm, f.encode(v)))
            && (0..60).any(|v| alarm_matches(min_alarm, f.encode(v)))
            && (0..24).any(|h| alarm_matches(hour_alarm, f.encode_hour(h)));
        if !can_match {
            return None;
        }
        // Every matching time of day comes within a day; skip whole hours
        // and minutes that cannot match.
        let mut t = after.checked_add(1)?;
        let end = after.saturating_add(SECS_PER_DAY + 1);
        while t <= end {
            let tod = t.rem_euclid(SECS_PER_DAY);
            // All below 256 (rem_euclid of a day).
            let (hour, minute, second) = (
                (tod / SECS_PER_HOUR) as u8,
                (tod / SECS_PER_MIN % 60) as u8,
                (tod % SECS_PER_MIN) as u8,
            );
            if !alarm_matches(hour_alarm, f.encode_hour(hour)) {
                t = t.checked_add(SECS_PER_HOUR - tod % SECS_PER_HOUR)?;
            } else if !alarm_matches(min_alarm, f.encode(minute)) {
                t = t.checked_add(SECS_PER_MIN - tod % SECS_PER_MIN)?;
            } else if !alarm_matches(sec_alarm, f.encode(second)) {
                t = t.checked_add(1)?;
            } else {
                return Some(t);
            }
        }
        None
    }

    /// Brings register C's flags up to the present guest time.
    fn catch_up(&mut self) {
        let now = self.guest_ns();
        let from = self.synced_ns;
        if now <= from {
            return;
        }
        let mut flags = 0;
        if let Some(period) = self.periodic_period() {
            if cycles(now).div_euclid(period) > cycles(from).div_euclid(period) {
                flags |= reg_c::PF;
            }
        }
        if self.running() {
            let (from_secs, now_secs) = (whole_secs(from), whole_secs(now));
            if now_secs > from_secs {
                flags |= reg_c::UF;
                if self.next_alarm(from_secs).is_some_and(|s| s <= now_secs) {
                    flags |= reg_c::AF;
                }
            }
        }
        self.synced_ns = now;
        self.set(reg::C, self.get(reg::C) | flags);
    }

    /// Recomputes IRQF from the flags and enables; the pin follows it. The
    /// returned change reports the pin if it moved since `pin_before`.
    fn settle(&mut self, pin_before: bool) -> Change {
        let b = self.get(reg::B);
        let flags = self.get(reg::C) & !reg_c::IRQF;
        let irqf = FLAG_ENABLES
            .iter()
            .any(|&(flag, enable)| flags & flag != 0 && b & enable != 0);
        self.set(reg::C, if irqf { flags | reg_c::IRQF } else { flags });
        self.pin = irqf;
        if irqf == pin_before {
            Change::NONE
        } else {
            Change::irq(IRQ_PIN, IrqOutput::Level(irqf))
        }
    }

    /// The byte register `index` reads now.
    fn read_register(&mut self, index: u8) -> u8 {
        match index {
            _ if is_time_register(index) => {
                if self.running() {
                    self.store_time_registers();
                }
                self.get(index)
            }
            reg::A => {
                let uip = if self.update_in_progress() {
                    reg_a::UIP
                } else {
                    0
                };
                self.get(reg::A) | uip
            }
            reg::C => {
                let value = self.get(reg::C);
                self.set(reg::C, 0);
                value
            }
            reg::D => reg_d::VRT,
            _ => self.get(index),
        }
    }

    fn write_register(&mut self, index: u8, value: u8) {
        match index {
            _ if is_time_register(index) => {
                if self.running() {
                    // The other registers keep the present time; the new
                    // time runs on in the same phase of the second.
                    self.store_time_registers();
                    self.set(index, value);
                    let phase = self.guest_ns().rem_euclid(NANOS_PER_SEC);
                    self.set_guest_time(self.registers_time(), phase);
                } else {
                    self.set(index, value);
                }
            }
            reg::A => {
                let was_running = self.running();
                let dividers_ran = self.dividers_run();
                if was_running {
                    self.store_time_registers();
                }
                self.set(reg::A, value & !reg_a::UIP);
                if !dividers_ran && self.dividers_run() {
                    // The chain restarts: the first update half a second on.
                    let secs = if self.running() {
                        self.registers_time()
                    } else {
                        whole_secs(self.guest_ns())
                    };
                    self.set_guest_time(secs, HALF_SECOND_NS);
                } else if !was_running && self.running() {
                    let phase = self.guest_ns().rem_euclid(NANOS_PER_SEC);
                    self.set_guest_time(self.registers_time(), phase);
                }
            }
            reg::B => {
                let was_running = self.running();
                if was_running {
                    self.store_time_registers();
                }
                let mut value = value;
                if value & reg_b::SET != 0 {
                    value &= !reg_b::UIE;
                }
                let (old, new) = (self.format(), Format::of(value));
                if old != new {
                    for index in TIME_REGISTERS {
                        let byte = old.convert(index, self.get(index), new);
                        self.set(index, byte);
                    }
                }
                self.set(reg::B, value);
                if !was_running && self.running() {
                    let phase = self.guest_ns().rem_euclid(NANOS_PER_SEC);
                    self.set_guest_time(self.registers_time(), phase);
                }
            }
            reg::C | reg::D => {}
            _ => self.set(index, value),
        }
    }

    /// The index an access to the data port uses (the PS/2 century byte
    /// selects the century for good, as in QEMU).
    fn data_index(&mut self) -> u8 {
        if self.index == reg::PS2_CENTURY {
            self.index = reg::CENTURY;
        }
        self.index
    }
}

impl<C: Clock + 'static> PortDevice for Rtc<C> {
    fn name(&self) -> &'static str {
        "rtc"
    }

    fn read(&mut self, offset: u16, data: &mut [u8]) -> Change {
        data.fill(OPEN_BUS);
        if offset != DATA_PORT {
            return Change::NONE;
        }
        let Some(first) = data.first_mut() else {
            return Change::NONE;
        };
        let pin_before = self.pin;
        let index = self.data_index();
        if index == reg::C {
            self.catch_up();
            // Bring IRQF up to date before the guest sees C.
            let _ = self.settle(pin_before);
        }
        *first = self.read_register(index);
        let mut change = self.settle(pin_before);
        if index == reg::C {
            change.deadline_moved = true;
        }
        change
    }

    fn write(&mut self, offset: u16, data: &[u8]) -> Change {
        let Some(&value) = data.first() else {
            return Change::NONE;
        };
        match offset {
            INDEX_PORT => {
                // Bit 7 (NMI disable) does not select.
                self.index = value & INDEX_MASK;
                Change::NONE
            }
            DATA_PORT => {
                let pin_before = self.pin;
                let index = self.data_index();
                // Flags up to now count under the old settings.
                self.catch_up();
                self.write_register(index, value);
                let mut change = self.settle(pin_before);
                change.deadline_moved = true;
                change
            }
            _ => Change::NONE,
        }
    }

    fn reset(&mut self) {
        self.set(reg::B, self.get(reg::B) & !RESET_CLEARS_B);
        self.set(reg::C, 0);
        self.synced_ns = self.guest_ns();
        self.pin = false;
    }

    fn next_deadline(&self) -> Option<Duration> {
        if self.get(reg::C) & reg_c::IRQF != 0 {
            return None;
        }
        let b = self.get(reg::B);
        let from = self.synced_ns;
        let mut next: Option<i128> = None;
        let mut consider = |t: i128| next = Some(next.map_or(t, |n| n.min(t)));
        if b & reg_b::PIE != 0 {
            if let Some(period) = self.periodic_period() {
                let k = cycles(from).div_euclid(period).saturating_add(1);
                consider(periodic_edge(k, period));
            }
        }
        if self.running() {
            let secs = whole_secs(from);
            if b & reg_b::UIE != 0 {
                consider(i128::from(secs).saturating_add(1) * NANOS_PER_SEC);
            }
            if b & reg_b::AIE != 0 {
                if let Some(alarm) = self.next_alarm(secs) {
                    consider(i128::from(alarm) * NANOS_PER_SEC);
                }
            }
        }
        next.map(|t| self.clock_time_of(t))
    }

    fn on_deadline(&mut self) -> Change {
        let pin_before = self.pin;
        let flags_before = self.get(reg::C);
        self.catch_up();
        let mut change = self.settle(pin_before);
        if self.get(reg::C) != flags_before {
            change.deadline_moved = true;
        }
        change
    }
}

#[cfg(test)]
mod tests;
