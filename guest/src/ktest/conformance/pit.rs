//! The 8254 PIT and port 0x61 as Linux uses them: `pit_calibrate_tsc` and
//! `quick_pit_calibrate` (arch/x86/kernel/tsc.c: channel 2 gated through
//! port 0x61, OUT2 polled at bit 5, the MSB read back), the i8253
//! clockevent (`pit_set_periodic` 0x34, one-shot 0x38, shutdown 0x30) and
//! clocksource read (latch 0x00); then every mode 0-5 on channel 2 with
//! the gate, counter latches, the read-back command and each access mode.
//!
//! Counts depend on the time between two port accesses, which differs
//! between an emulated and a translated CPU: such values are logged with a
//! tolerance, and the checks that do not depend on it (a count within its
//! reload range, OUT after the count ran out) are logged exactly.

use shared::ports::{PIT_CHANNEL0, PIT_CHANNEL2, PIT_COMMAND, PORT_B};

use super::{delay_us, inb, outb, poll_until, us_since, Log};
use crate::time;

const DEV: &str = "pit";
const GATE2: u8 = 0x01;
const SPEAKER: u8 = 0x02;
const REFRESH: u8 = 0x10;
const OUT2: u8 = 0x20;
/// Counts read back soon after a start: within this many PIT clocks
/// (1.7 ms) of each other. An emulated port access costs 10-30 µs here, so
/// the difference is normally tens of clocks; the margin is for a host that
/// preempts the VMM for a while.
const COUNT_TOLERANCE: u64 = 2048;

/// Port 0x61 without the refresh bit, which toggles on its own.
fn port_b() -> u8 {
    inb(PORT_B) & !REFRESH
}

fn set_gate(high: bool) {
    let b = port_b() & !(SPEAKER | GATE2);
    outb(PORT_B, b | u8::from(high));
}

/// Latches channel 2's count (counter latch command) and reads it, low
/// byte first.
fn latch2() -> u16 {
    outb(PIT_COMMAND, 0x80);
    let low = inb(PIT_CHANNEL2);
    let high = inb(PIT_CHANNEL2);
    u16::from_le_bytes([low, high])
}

/// Read-back command: channel 2's status only.
fn status2() -> u8 {
    outb(PIT_COMMAND, 0xE8);
    inb(PIT_CHANNEL2)
}

pub(super) fn run(log: &mut Log) {
    // Port B: speaker off, gate off, channel 2 in mode 0 with a 55 ms count
    // (OUT2 low, whatever the boot left there); the refresh bit must toggle
    // (BIOS delay loops count its edges).
    set_gate(false);
    outb(PIT_COMMAND, 0xB0);
    outb(PIT_CHANNEL2, 0xFF);
    outb(PIT_CHANNEL2, 0xFF);
    log.byte(DEV, "port61", "read", port_b());
    let mut toggled = false;
    let first = inb(PORT_B) & REFRESH;
    poll_until(5, || {
        toggled = inb(PORT_B) & REFRESH != first;
        toggled
    });
    log.value(DEV, "port61-refresh", "toggles", u8::from(toggled));
    outb(PORT_B, SPEAKER);
    log.byte(DEV, "port61", "speaker-on", port_b());
    outb(PORT_B, 0);

    // pit_calibrate_tsc: gate high, speaker off; channel 2 mode 0, binary,
    // 50 ms (latch 59659 = 0xE90B); OUT2 rises when it runs out.
    outb(PORT_B, (port_b() & !SPEAKER) | GATE2);
    outb(PIT_COMMAND, 0xB0);
    outb(PIT_CHANNEL2, 0x0B);
    outb(PIT_CHANNEL2, 0xE9);
    let start = time::now();
    log.byte(DEV, "calibrate-out2", "at-start", port_b() & OUT2);
    let rose = poll_until(200, || port_b() & OUT2 != 0);
    log.timed(
        DEV,
        "calibrate-50ms",
        "elapsed_us",
        us_since(start),
        5000,
        50_000,
    );
    log.timing(DEV, "calibrate-out2", "rose", u8::from(rose));

    // quick_pit_calibrate: mode 0 with 0xFFFF, then MSB-only polls through
    // low/high reads (its pit_verify_msb reads both bytes, keeps the MSB).
    outb(PIT_COMMAND, 0xB0);
    outb(PIT_CHANNEL2, 0xFF);
    outb(PIT_CHANNEL2, 0xFF);
    let _lsb = inb(PIT_CHANNEL2);
    let msb = inb(PIT_CHANNEL2);
    log.approx(DEV, "quick-calibrate", "msb", u64::from(msb), 8);
    delay_us(2000);
    let _ = inb(PIT_CHANNEL2);
    let later = inb(PIT_CHANNEL2);
    log.timing(
        DEV,
        "quick-calibrate",
        "msb-decreased",
        u8::from(later < msb),
    );
    set_gate(false);

    // i8253 clockevent on channel 0: periodic (0x34, LATCH 1193 = 0x04A9),
    // read as the clocksource does (latch 0x00, low, high), one-shot (0x38),
    // shutdown (0x30, count 0).
    outb(PIT_COMMAND, 0x34);
    outb(PIT_CHANNEL0, 0xA9);
    outb(PIT_CHANNEL0, 0x04);
    delay_us(100);
    outb(PIT_COMMAND, 0x00);
    let low = inb(PIT_CHANNEL0);
    let high = inb(PIT_CHANNEL0);
    let count = u16::from_le_bytes([low, high]);
    log.value(
        DEV,
        "ch0-periodic",
        "count-in-range",
        u8::from((1..=0x04A9).contains(&count)),
    );
    outb(PIT_COMMAND, 0xE2); // read-back: channel 0 status
    log.byte(DEV, "ch0-periodic", "status", inb(PIT_CHANNEL0) & 0x7F);
    outb(PIT_COMMAND, 0x38);
    outb(PIT_CHANNEL0, 0xFF);
    outb(PIT_CHANNEL0, 0xFF);
    outb(PIT_COMMAND, 0xE2);
    log.byte(DEV, "ch0-oneshot", "status", inb(PIT_CHANNEL0) & 0x7F);
    outb(PIT_COMMAND, 0x30);
    outb(PIT_CHANNEL0, 0);
    outb(PIT_CHANNEL0, 0);
    outb(PIT_COMMAND, 0xE2);
    log.byte(DEV, "ch0-shutdown", "status", inb(PIT_CHANNEL0) & 0x7F);

    // Channel 1 (the DRAM refresh timer): untouched since power-on, a state
    // the datasheet leaves undefined.
    outb(PIT_COMMAND, 0xE4);
    log.byte(DEV, "ch1", "status", inb(shared::ports::PIT_CHANNEL1));

    for mode in 0..=5u8 {
        modes(log, mode);
    }
    access_modes(log);
    latches(log);
    set_gate(false);
}

/// Channel 2 in `mode` with a count of 0x2000 (6.9 ms), started by the gate.
fn modes(log: &mut Log, mode: u8) {
    let name = |what: &str| alloc::format!("mode{mode}-{what}");
    const COUNT: u16 = 0x2000;
    set_gate(false);
    outb(PIT_COMMAND, 0xB0 | (mode << 1));
    log.byte(DEV, name("after-control").as_str(), "status", status2());
    log.byte(DEV, name("after-control").as_str(), "out2", port_b() & OUT2);
    outb(PIT_CHANNEL2, COUNT as u8);
    outb(PIT_CHANNEL2, (COUNT >> 8) as u8);
    delay_us(50);
    log.byte(DEV, name("after-count").as_str(), "status", status2());
    set_gate(true);
    // Both read before either is logged: a line to COM1 takes milliseconds
    // where every port access exits.
    let count = latch2();
    let out = port_b() & OUT2;
    log.approx(
        DEV,
        name("running").as_str(),
        "count",
        u64::from(count),
        COUNT_TOLERANCE,
    );
    // OUT while the count runs, unless the vCPU stalled for half the count
    // between the write and the read: then OUT may have changed on one
    // machine and not the other, and the line says so (the test runs both
    // again).
    if !(COUNT / 2..=COUNT).contains(&count) {
        log.value(DEV, name("running").as_str(), "out2", "stalled");
    } else {
        log.byte(DEV, name("running").as_str(), "out2", out);
    }
    // Past the count: 10 ms.
    delay_us(10_000);
    let count = latch2();
    let in_range = count <= COUNT && count != 0;
    log.timing(
        DEV,
        name("expired").as_str(),
        "count-within-reload",
        u8::from(in_range),
    );
    if mode != 3 {
        // Mode 3's OUT is a square wave: high or low by when it is read.
        log.byte(DEV, name("expired").as_str(), "out2", port_b() & OUT2);
        log.byte(DEV, name("expired").as_str(), "status", status2());
    } else {
        // Whether it toggles within 50 ms (7 periods). Its period is not
        // timed here: OUT2 is only seen by polling, and a vCPU thread the
        // host preempts for longer than the 3.4 ms half period misses
        // edges; the period is the count's business, checked above.
        let (mut high, mut low) = (false, false);
        poll_until(50, || {
            if port_b() & OUT2 != 0 {
                high = true;
            } else {
                low = true;
            }
            high && low
        });
        log.timing(
            DEV,
            name("expired").as_str(),
            "out2-toggles",
            u8::from(high && low),
        );
    }
    // Gate low: modes 2 and 3 force OUT high at once (datasheet); the
    // others keep it.
    set_gate(false);
    delay_us(50);
    log.byte(DEV, name("gate-low").as_str(), "out2", port_b() & OUT2);
}

/// Low-byte-only and high-byte-only access, and BCD counting.
fn access_modes(log: &mut Log) {
    set_gate(true);
    // LSB only, mode 2: count 0x80; reads give the low byte only.
    outb(PIT_COMMAND, 0x94);
    log.byte(DEV, "lsb-only", "status", status2());
    outb(PIT_CHANNEL2, 0x80);
    delay_us(20);
    outb(PIT_COMMAND, 0x80);
    let low = inb(PIT_CHANNEL2);
    log.value(
        DEV,
        "lsb-only",
        "count-within-reload",
        u8::from(low <= 0x80 && low != 0),
    );
    // MSB only, mode 0: count 0x1000; the read is the high byte.
    outb(PIT_COMMAND, 0xA0);
    log.byte(DEV, "msb-only", "status", status2());
    outb(PIT_CHANNEL2, 0x10);
    outb(PIT_COMMAND, 0x80);
    let high = inb(PIT_CHANNEL2);
    log.approx(DEV, "msb-only", "count-msb", u64::from(high), 8);
    // BCD, mode 2, count 1000 (0x1000 in BCD): every digit stays 0-9.
    outb(PIT_COMMAND, 0xB5);
    log.byte(DEV, "bcd", "status", status2());
    outb(PIT_CHANNEL2, 0x00);
    outb(PIT_CHANNEL2, 0x10);
    let mut valid = true;
    for _ in 0..16 {
        let count = latch2();
        valid &= (0..4).all(|digit| (count >> (4 * digit)) & 0xF <= 9);
        delay_us(37);
    }
    log.value(DEV, "bcd", "digits-valid", u8::from(valid));
}

/// A latched count holds until read; a second latch before the read is
/// ignored; the read-back command latches status and count together.
fn latches(log: &mut Log) {
    set_gate(true);
    outb(PIT_COMMAND, 0xB4); // mode 2, 0xFFFF
    outb(PIT_CHANNEL2, 0xFF);
    outb(PIT_CHANNEL2, 0xFF);
    outb(PIT_COMMAND, 0x80);
    delay_us(2000);
    outb(PIT_COMMAND, 0x80); // ignored: the first latch is unread
    let held = u16::from_le_bytes([inb(PIT_CHANNEL2), inb(PIT_CHANNEL2)]);
    let fresh = latch2();
    // 2 ms is 2386 clocks: the held value is the older, larger one.
    log.timing(
        DEV,
        "latch",
        "held-until-read",
        u8::from(held > fresh + 1000),
    );
    // Read-back of status and count together: status first, then the count.
    outb(PIT_COMMAND, 0xC8);
    log.byte(DEV, "readback-both", "status", inb(PIT_CHANNEL2));
    let count = u16::from_le_bytes([inb(PIT_CHANNEL2), inb(PIT_CHANNEL2)]);
    log.value(DEV, "readback-both", "count-nonzero", u8::from(count != 0));
    // Half a 16-bit read of a latch, then a new control word and count: is
    // the next latched read the new count (the latch gone with the control
    // word) or the rest of the old latch?
    outb(PIT_COMMAND, 0x80);
    let _ = inb(PIT_CHANNEL2);
    outb(PIT_COMMAND, 0xB4);
    outb(PIT_CHANNEL2, 0x00);
    outb(PIT_CHANNEL2, 0x80);
    let count = latch2();
    log.value(
        DEV,
        "half-read-latch",
        "new-count-after-control-word",
        u8::from(count <= 0x8000 && count > 0x4000),
    );
}
