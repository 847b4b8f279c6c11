//! The MC146818 as Linux's drivers/rtc/rtc-mc146818-lib.c and rtc-cmos.c
//! use it: `mc146818_avoid_UIP` / `mc146818_get_time` (UIP, the time
//! registers, register B's format), `cmos_do_probe` (registers B, C, D;
//! interrupts off), `mc146818_set_time` (SET, the divider held in reset,
//! the time written, both restored), the alarm (`cmos_set_alarm`: alarm
//! registers, AIE, AF), the periodic rates (`cmos_irq_set_freq`: register A's
//! rate, PIE, PF) and the update-ended flag; plus every register 0x0-0xD,
//! the century byte and CMOS RAM.

use shared::ports::{RTC_DATA, RTC_INDEX};

use super::{inb, outb, poll_until, us_since, Log};
use crate::time;

const DEV: &str = "rtc";
const A: u8 = 0x0A;
const B: u8 = 0x0B;
const C: u8 = 0x0C;
const D: u8 = 0x0D;
const UIP: u8 = 0x80;
const UF: u8 = 0x10;
const PF: u8 = 0x40;

fn read(index: u8) -> u8 {
    outb(RTC_INDEX, index);
    inb(RTC_DATA)
}

fn write(index: u8, value: u8) {
    outb(RTC_INDEX, index);
    outb(RTC_DATA, value);
}

fn bcd_valid(value: u8) -> bool {
    value & 0x0F <= 9 && value >> 4 <= 9
}

/// The time registers 0-9 and the century, as `mc146818_get_time` reads them.
fn log_time(log: &mut Log, item: &str) {
    for (name, index) in [
        ("seconds", 0x00),
        ("minutes", 0x02),
        ("hours", 0x04),
        ("weekday", 0x06),
        ("day", 0x07),
        ("month", 0x08),
        ("year", 0x09),
        ("century", 0x32),
    ] {
        let mut full = alloc::string::String::from(item);
        full.push('-');
        full.push_str(name);
        log.byte(DEV, &full, "read", read(index));
    }
}

/// Writes a time (BCD) the way `mc146818_set_time` does: SET on, divider in
/// reset, the registers, then register B and A restored.
fn set_time(regs: [(u8, u8); 8]) -> u64 {
    let save_b = read(B);
    write(B, save_b | 0x80);
    let save_a = read(A);
    write(A, save_a | 0x70);
    for (index, value) in regs {
        write(index, value);
    }
    write(B, save_b);
    write(A, save_a);
    time::now()
}

/// Waits for an update-ended flag (UF in register C, set whether or not
/// UIE is on); returns register C as read then, or `None` after 1.5 s.
fn wait_update() -> Option<u8> {
    let mut c = 0;
    poll_until(1500, || {
        c = read(C);
        c & UF != 0
    })
    .then_some(c)
}

pub(super) fn run(log: &mut Log) {
    // Every register 0xA-0xD; UIP masked (it is set 244 µs a second).
    log.byte(DEV, "reg-a", "read", read(A) & !UIP);
    log.byte(DEV, "reg-b", "read", read(B));
    log.byte(DEV, "reg-d", "read", read(D));
    // The index port is write-only.
    log.byte(DEV, "index-port", "read", inb(RTC_INDEX));
    // NMI-disable bit set in the index: the same register.
    log.byte(DEV, "reg-d-nmi-off", "read", read(0x80 | D));
    // cmos_do_probe: interrupts off in B, then C read to clear the flags.
    let b = read(B);
    write(B, b & !0x70);
    read(C);
    log.byte(DEV, "reg-b-probe", "read", read(B));
    // The current time: valid BCD in every time register.
    let valid = [0x00, 0x02, 0x04, 0x06, 0x07, 0x08, 0x09, 0x32]
        .iter()
        .all(|&index| bcd_valid(read(index)));
    log.value(DEV, "time", "bcd-valid", u8::from(valid));
    // Alarm registers read back what was written.
    for (name, index, value) in [
        ("alarm-seconds", 0x01, 0x30),
        ("alarm-minutes", 0x03, 0x45),
        ("alarm-hours", 0x05, 0x12),
    ] {
        write(index, value);
        log.byte(DEV, name, "read-back", read(index));
    }

    // mc146818_avoid_UIP: UIP must be seen set (for the 244 µs before each
    // update) within 3.5 s: three chances for a poll to fall in the window.
    let seen = poll_until(3500, || read(A) & UIP != 0);
    log.timing(DEV, "uip", "seen", u8::from(seen));

    // mc146818_set_time to 2031-12-31 23:59:58 (a Wednesday, weekday 4 of
    // 1-7 from Sunday), BCD, 24-hour; the alarm at 23:59:59 with AIE.
    write(B, 0x02);
    let released = set_time([
        (0x00, 0x58),
        (0x02, 0x59),
        (0x04, 0x23),
        (0x06, 0x04),
        (0x07, 0x31),
        (0x08, 0x12),
        (0x09, 0x31),
        (0x32, 0x20),
    ]);
    write(0x01, 0x59);
    write(0x03, 0x59);
    write(0x05, 0x23);
    read(C);
    write(B, 0x02 | 0x20);
    log_time(log, "set");
    // The first update comes 500 ms after the divider leaves reset
    // (datasheet), then one a second: 23:59:59 and the alarm...
    let c = wait_update();
    log.timed(
        DEV,
        "first-update",
        "after_us",
        us_since(released),
        30_000,
        500_000,
    );
    log.byte(DEV, "first-update", "reg-c", c.unwrap_or(0) & !PF);
    log_time(log, "plus1s");
    log.byte(DEV, "reg-c-cleared", "read", read(C) & !PF);
    // ... then 2032-01-01 00:00:00: every field rolls over.
    let c = wait_update();
    log.byte(DEV, "second-update", "reg-c", c.unwrap_or(0) & !PF);
    log_time(log, "plus2s");

    // Binary mode, 12-hour: the whole time written in that format while SET
    // holds the clock (2031-12-31 11:59:59 PM, the century byte too), then
    // one update rolls every field over to 12 AM on 2032-01-01.
    write(B, 0x80 | 0x04);
    for (index, value) in [
        (0x00, 59),
        (0x02, 59),
        (0x04, 0x80 | 11),
        (0x07, 31),
        (0x08, 12),
        (0x09, 31),
        (0x32, 20),
    ] {
        write(index, value);
    }
    log.byte(DEV, "binary-12h-hours", "read-back", read(0x04));
    write(B, 0x04); // binary, 12-hour, running
    read(C);
    let c = wait_update();
    log.value(DEV, "binary-update", "seen", u8::from(c.is_some()));
    for (name, index) in [
        ("seconds", 0x00),
        ("minutes", 0x02),
        ("hours", 0x04),
        ("day", 0x07),
        ("month", 0x08),
        ("year", 0x09),
        ("century", 0x32),
    ] {
        log.byte(DEV, "binary-12h-after-update", name, read(index));
    }

    // Periodic rates (register A's RS bits, PIE on), within 10 %: the median time
    // between two PF flags seen by polling register C (a flag seen late, or
    // two periods merged into one flag while the vCPU was preempted, only
    // moves the extremes).
    write(B, 0x02 | 0x40);
    // Period: 2^(rate - 1) cycles of 32.768 kHz.
    for (rate, tolerance_us, nominal_us) in [
        (6u8, 100u64, 977u64),
        (10, 1600, 15_625),
        (13, 12_500, 125_000),
    ] {
        write(A, 0x20 | rate);
        read(C);
        poll_until(600, || read(C) & PF != 0);
        let mut last = time::now();
        let mut intervals = [0u64; 9];
        for interval in intervals.iter_mut() {
            poll_until(600, || read(C) & PF != 0);
            let now = time::now();
            *interval = time::cycles_to_us(now - last);
            last = now;
        }
        intervals.sort_unstable();
        let mut item = alloc::string::String::from("periodic-rate-");
        item.push(char::from(b'0' + rate / 10));
        item.push(char::from(b'0' + rate % 10));
        log.timed(
            DEV,
            &item,
            "period_us",
            intervals[4],
            tolerance_us,
            nominal_us,
        );
    }
    // Rate 3 (122 µs) is faster than a poll of register C where each port
    // access exits: only whether PF comes at all.
    write(A, 0x23);
    read(C);
    let seen = poll_until(100, || read(C) & PF != 0);
    log.timing(DEV, "periodic-rate-03", "pf-seen", u8::from(seen));
    // Rate 0: no periodic flag at all.
    write(A, 0x20);
    read(C);
    let none = !poll_until(20, || read(C) & PF != 0);
    log.value(DEV, "periodic-rate-00", "no-flag", u8::from(none));

    // CMOS RAM keeps what is written; register D stays valid.
    write(0x40, 0x5A);
    log.byte(DEV, "ram-0x40", "read-back", read(0x40));
    log.byte(DEV, "reg-d", "end", read(D));
    write(A, 0x26);
    write(B, 0x02);
    read(C);
}
