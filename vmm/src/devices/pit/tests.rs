//! Unit tests of the 8254, one per datasheet behaviour.
use super::*;
use crate::clock::ManualClock;
use shared::ports::PIT_CHANNEL1;

const F: u128 = 1_193_182;

/// First instant (relative to a load) at which `k` input clocks have
/// elapsed: ceil(k * 1e9 / F) ns. Computed here independently.
fn t(k: u64) -> Duration {
    let ns = (u128::from(k) * 1_000_000_000).div_ceil(F);
    Duration::from_nanos(ns as u64)
}

/// Edges of a periodic reload `n` counted from a load at 0 up to `e`.
fn periodic_edges(e: Duration, n: u64) -> u64 {
    ((e.as_nanos() * F / 1_000_000_000) as u64) / n
}

fn pit_at(start: Duration) -> (ManualClock, Pit<ManualClock>) {
    let clock = ManualClock::new();
    clock.set(start);
    (clock.clone(), Pit::new(clock))
}

/// Control word for `channel`, lobyte/hibyte access, `mode`, binary.
fn program(pit: &mut Pit<ManualClock>, channel: u16, mode: u8, reload: u16) {
    pit.write(PIT_COMMAND, ((channel as u8) << 6) | 0x30 | (mode << 1));
    pit.write(PIT_CHANNEL0 + channel, reload as u8);
    pit.write(PIT_CHANNEL0 + channel, (reload >> 8) as u8);
}

/// Two-byte read (the channel must be in lobyte/hibyte access).
fn read16(pit: &mut Pit<ManualClock>, channel: u16) -> u16 {
    let lo = pit.read(PIT_CHANNEL0 + channel);
    let hi = pit.read(PIT_CHANNEL0 + channel);
    u16::from(lo) | (u16::from(hi) << 8)
}

/// Status byte of `channel` through the read-back command.
fn status(pit: &mut Pit<ManualClock>, channel: u16) -> u8 {
    pit.write(PIT_COMMAND, 0xE0 | (2 << channel));
    pit.read(PIT_CHANNEL0 + channel)
}

fn out_bit(pit: &mut Pit<ManualClock>, channel: u16) -> bool {
    status(pit, channel) & 0x80 != 0
}

fn out2(pit: &mut Pit<ManualClock>) -> bool {
    pit.read(PORT_B) & 0x20 != 0
}

#[test]
fn mode0_interrupt_on_terminal_count_is_one_shot() {
    let l = Duration::from_millis(1500);
    let (clock, mut pit) = pit_at(l);
    program(&mut pit, 0, 0, 100);
    assert_eq!(read16(&mut pit, 0), 100);
    assert!(!out_bit(&mut pit, 0), "OUT low after the count is written");
    assert_eq!(pit.next_irq0_edge(), Some(l + t(100)));
    for k in [1u64, 40, 99] {
        clock.set(l + t(k));
        assert_eq!(u64::from(read16(&mut pit, 0)), 100 - k);
        assert!(!out_bit(&mut pit, 0));
    }
    clock.set(l + t(100) - Duration::from_nanos(1));
    assert_eq!(pit.take_irq0_edges(), 0);
    clock.set(l + t(100));
    assert_eq!(read16(&mut pit, 0), 0);
    assert!(out_bit(&mut pit, 0), "OUT rises at terminal count");
    assert_eq!(pit.take_irq0_edges(), 1);
    assert_eq!(pit.next_irq0_edge(), None, "one-shot: no further edge");
    clock.set(l + t(101));
    assert_eq!(read16(&mut pit, 0), 0xFFFF, "the counter wraps and goes on");
    assert!(out_bit(&mut pit, 0), "OUT stays high");
    clock.set(l + t(100 + 65536 * 3));
    assert_eq!(pit.take_irq0_edges(), 0);
}

#[test]
fn mode1_hardware_retriggerable_one_shot_on_channel2() {
    let (clock, mut pit) = pit_at(Duration::from_secs(3));
    pit.write(PORT_B, 0); // gate 2 low
    program(&mut pit, 2, 1, 50);
    assert!(out2(&mut pit), "OUT idles high before the trigger");
    clock.advance(t(500));
    assert!(out2(&mut pit));
    // A rising gate triggers: OUT low for 50 clocks, count from 50.
    let g = clock.now();
    pit.write(PORT_B, 1);
    assert_eq!(read16(&mut pit, 2), 50);
    assert!(!out2(&mut pit));
    clock.set(g + t(49));
    assert_eq!(read16(&mut pit, 2), 1);
    assert!(!out2(&mut pit));
    clock.set(g + t(50));
    assert_eq!(read16(&mut pit, 2), 0);
    assert!(out2(&mut pit), "OUT high at terminal count");
    // Gate low does not stop mode 1; the next rising edge retriggers.
    pit.write(PORT_B, 0);
    clock.set(g + t(60));
    assert_eq!(read16(&mut pit, 2), 0xFFF6);
    let g2 = clock.now();
    pit.write(PORT_B, 1);
    assert_eq!(read16(&mut pit, 2), 50);
    assert!(!out2(&mut pit));
    clock.set(g2 + t(20));
    assert_eq!(read16(&mut pit, 2), 30);
    // Retrigger while running restarts the full count.
    pit.write(PORT_B, 0);
    let g3 = clock.now();
    pit.write(PORT_B, 1);
    clock.set(g3 + t(49));
    assert!(!out2(&mut pit));
    clock.set(g3 + t(50));
    assert!(out2(&mut pit));
}

#[test]
fn mode1_on_channel0_never_triggers() {
    let (clock, mut pit) = pit_at(Duration::ZERO);
    program(&mut pit, 0, 1, 10);
    clock.advance(Duration::from_secs(1));
    assert!(out_bit(&mut pit, 0));
    assert_eq!(pit.next_irq0_edge(), None);
    assert_eq!(pit.take_irq0_edges(), 0);
}

#[test]
fn mode2_rate_generator_counts_and_reloads() {
    let l = Duration::from_micros(777);
    let (clock, mut pit) = pit_at(l);
    program(&mut pit, 0, 2, 5);
    let expected = [5u16, 4, 3, 2, 1, 5, 4, 3, 2, 1, 5];
    for (k, &want) in expected.iter().enumerate() {
        clock.set(l + t(k as u64));
        assert_eq!(read16(&mut pit, 0), want, "tick {k}");
        assert_eq!(out_bit(&mut pit, 0), want != 1, "OUT low only at count 1");
    }
}

#[test]
fn mode2_periodic_edges_every_reload() {
    let l = Duration::from_millis(20);
    let (clock, mut pit) = pit_at(l);
    program(&mut pit, 0, 2, 1193);
    for k in 1..=5u64 {
        assert_eq!(pit.next_irq0_edge(), Some(l + t(1193 * k)));
        clock.set(l + t(1193 * k) - Duration::from_nanos(1));
        assert_eq!(pit.take_irq0_edges(), 0);
        clock.set(l + t(1193 * k));
        assert_eq!(pit.take_irq0_edges(), 1);
    }
}

#[test]
fn mode3_square_wave_even_and_odd() {
    let (clock, mut pit) = pit_at(Duration::ZERO);
    program(&mut pit, 0, 3, 6);
    let counts = [6u16, 4, 2, 6, 4, 2, 6];
    let outs = [true, true, true, false, false, false, true];
    for k in 0..counts.len() {
        clock.set(t(k as u64));
        assert_eq!(read16(&mut pit, 0), counts[k], "even, tick {k}");
        assert_eq!(out_bit(&mut pit, 0), outs[k], "even, tick {k}");
    }
    let l = Duration::from_secs(1);
    clock.set(l);
    program(&mut pit, 0, 3, 5);
    // Odd: high (5+1)/2 = 3 clocks (5, 4, 2), low 2 clocks (5, 2).
    let counts = [5u16, 4, 2, 5, 2, 5, 4];
    let outs = [true, true, true, false, false, true, true];
    for k in 0..counts.len() {
        clock.set(l + t(k as u64));
        assert_eq!(read16(&mut pit, 0), counts[k], "odd, tick {k}");
        assert_eq!(out_bit(&mut pit, 0), outs[k], "odd, tick {k}");
    }
    // One rising edge per period.
    let l = Duration::from_secs(2);
    clock.set(l);
    pit.take_irq0_edges(); // edges owed by the earlier programming
    program(&mut pit, 0, 3, 1000);
    clock.set(l + t(10_000));
    assert_eq!(pit.take_irq0_edges(), 10);
    assert_eq!(pit.next_irq0_edge(), Some(l + t(11_000)));
}

#[test]
fn mode4_software_triggered_strobe() {
    let l = Duration::from_millis(5);
    let (clock, mut pit) = pit_at(l);
    program(&mut pit, 0, 4, 10);
    assert!(out_bit(&mut pit, 0), "OUT idles high");
    clock.set(l + t(9));
    assert_eq!(read16(&mut pit, 0), 1);
    assert!(out_bit(&mut pit, 0));
    clock.set(l + t(10));
    assert_eq!(read16(&mut pit, 0), 0);
    assert!(
        !out_bit(&mut pit, 0),
        "one-clock low strobe at terminal count"
    );
    assert_eq!(pit.next_irq0_edge(), Some(l + t(11)));
    assert_eq!(pit.take_irq0_edges(), 0);
    clock.set(l + t(11));
    assert!(out_bit(&mut pit, 0));
    assert_eq!(read16(&mut pit, 0), 0xFFFF);
    assert_eq!(pit.take_irq0_edges(), 1);
    assert_eq!(pit.next_irq0_edge(), None);
    clock.set(l + t(70_000));
    assert_eq!(pit.take_irq0_edges(), 0);
    assert!(out_bit(&mut pit, 0), "no second strobe after wrap");
}

#[test]
fn mode5_hardware_triggered_strobe_on_channel2() {
    let (clock, mut pit) = pit_at(Duration::from_secs(1));
    pit.write(PORT_B, 1); // gate already high: writing the count is no trigger
    program(&mut pit, 2, 5, 10);
    clock.advance(t(50));
    assert!(out2(&mut pit));
    pit.write(PORT_B, 0);
    let g = clock.now();
    pit.write(PORT_B, 1);
    assert_eq!(read16(&mut pit, 2), 10);
    clock.set(g + t(9));
    assert!(out2(&mut pit));
    clock.set(g + t(10));
    assert!(!out2(&mut pit), "strobe at terminal count");
    clock.set(g + t(11));
    assert!(out2(&mut pit));
    // Retriggerable.
    pit.write(PORT_B, 0);
    let g2 = clock.now();
    pit.write(PORT_B, 1);
    clock.set(g2 + t(10));
    assert!(!out2(&mut pit));
}

#[test]
fn modes_6_and_7_alias_2_and_3() {
    let (clock, mut pit) = pit_at(Duration::ZERO);
    program(&mut pit, 1, 6, 4);
    assert_eq!(
        status(&mut pit, 1) & 0x0E,
        6 << 1,
        "status shows the bits written"
    );
    for (k, want) in [4u16, 3, 2, 1, 4].iter().enumerate() {
        clock.set(t(k as u64));
        assert_eq!(read16(&mut pit, 1), *want);
    }
    clock.set(Duration::from_secs(1));
    let l = clock.now();
    program(&mut pit, 1, 7, 4);
    for (k, want) in [4u16, 2, 4, 2, 4].iter().enumerate() {
        clock.set(l + t(k as u64));
        assert_eq!(read16(&mut pit, PIT_CHANNEL1 - PIT_CHANNEL0), *want);
    }
}

#[test]
fn access_mode_lobyte_only() {
    let (clock, mut pit) = pit_at(Duration::ZERO);
    pit.write(PIT_COMMAND, 0x14); // ch0, lobyte, mode 2
    pit.write(PIT_CHANNEL0, 200);
    clock.set(t(1));
    // Every read is the low byte; there is no flip-flop.
    assert_eq!(pit.read(PIT_CHANNEL0), 199);
    assert_eq!(pit.read(PIT_CHANNEL0), 199);
    // A second byte is a new count, not a high byte.
    let l = clock.now();
    pit.write(PIT_CHANNEL0, 3);
    clock.set(l + t(1));
    assert_eq!(pit.read(PIT_CHANNEL0), 2);
}

#[test]
fn access_mode_hibyte_only() {
    let (clock, mut pit) = pit_at(Duration::ZERO);
    pit.write(PIT_COMMAND, 0x24); // ch0, hibyte, mode 2
    pit.write(PIT_CHANNEL0, 0x02); // reload 0x0200
    assert_eq!(pit.read(PIT_CHANNEL0), 0x02);
    clock.set(t(1)); // 0x01FF
    assert_eq!(pit.read(PIT_CHANNEL0), 0x01);
    assert_eq!(pit.read(PIT_CHANNEL0), 0x01);
}

#[test]
fn access_mode_lohi_flip_flops() {
    let (_clock, mut pit) = pit_at(Duration::ZERO);
    // Channel 2 with its gate low in mode 2 holds the reload: stable reads.
    pit.write(PIT_COMMAND, 0xB4); // ch2, lohi, mode 2
    pit.write(PIT_CHANNEL2, 0x34);
    pit.write(PIT_CHANNEL2, 0x12);
    assert_eq!(pit.read(PIT_CHANNEL2), 0x34);
    assert_eq!(pit.read(PIT_CHANNEL2), 0x12);
    assert_eq!(pit.read(PIT_CHANNEL2), 0x34);
    // Read flip-flop mid-way; a control word resets it to the low byte.
    pit.write(PIT_COMMAND, 0xB4);
    pit.write(PIT_CHANNEL2, 0x78);
    // Write flip-flop mid-way: a control word resets it as well.
    pit.write(PIT_COMMAND, 0xB4);
    pit.write(PIT_CHANNEL2, 0xCD);
    pit.write(PIT_CHANNEL2, 0xAB);
    assert_eq!(read16(&mut pit, 2), 0xABCD);
}

#[test]
fn counter_latch_holds_value_while_time_passes() {
    let l = Duration::from_millis(3);
    let (clock, mut pit) = pit_at(l);
    program(&mut pit, 0, 2, 1000);
    clock.set(l + t(100));
    pit.write(PIT_COMMAND, 0x00); // latch channel 0
    clock.set(l + t(200));
    pit.write(PIT_COMMAND, 0x00); // ignored: the first latch is unread
    clock.set(l + t(300));
    assert_eq!(pit.read(PIT_CHANNEL0), (900 & 0xFF) as u8);
    clock.set(l + t(400));
    assert_eq!(pit.read(PIT_CHANNEL0), (900 >> 8) as u8);
    // The latch is consumed: reads are live again.
    assert_eq!(read16(&mut pit, 0), 600);
    // Latching does not disturb the count or the mode.
    pit.write(PIT_COMMAND, 0x00);
    assert_eq!(status(&mut pit, 0) & 0x3F, 0x34);
    assert_eq!(read16(&mut pit, 0), 600);
}

#[test]
fn read_back_count_status_and_null_count() {
    let (clock, mut pit) = pit_at(Duration::from_secs(1));
    pit.write(PIT_COMMAND, 0x34);
    let s = status(&mut pit, 0);
    assert_eq!(s & 0x40, 0x40, "null count after a control word");
    assert_eq!(s & 0x3F, 0x34, "RW=3, mode 2, binary");
    pit.write(PIT_CHANNEL0, 0x10);
    pit.write(PIT_CHANNEL0, 0x27); // 10000
    let l = clock.now();
    assert_eq!(
        status(&mut pit, 0),
        0xC0 | 0x34,
        "OUT high, count not yet loaded"
    );
    clock.set(l + t(1));
    assert_eq!(status(&mut pit, 0), 0x80 | 0x34, "loaded after one clock");
    clock.set(l + t(250));
    // Count and status of channel 0: status first, then the count.
    pit.write(PIT_COMMAND, 0xC2);
    clock.set(l + t(400));
    assert_eq!(pit.read(PIT_CHANNEL0), 0xB4);
    assert_eq!(read16(&mut pit, 0), 9750);
    // Count only.
    pit.write(PIT_COMMAND, 0xD2);
    clock.set(l + t(500));
    assert_eq!(read16(&mut pit, 0), 9600);
    // Several channels at once; channel 1 and 2 unprogrammed (mode 3).
    program(&mut pit, 1, 0, 7);
    pit.write(PIT_COMMAND, 0xEE); // status of channels 0-2
    assert_eq!(pit.read(PIT_CHANNEL0), 0xB4);
    assert_eq!(pit.read(PIT_CHANNEL1), 0x70, "mode 0 OUT low, null count");
    assert_eq!(pit.read(PIT_CHANNEL2) & 0x0E, 3 << 1);
    // Status latched twice before reading keeps the first.
    pit.write(PIT_COMMAND, 0xE2);
    clock.set(l + t(9999));
    pit.write(PIT_COMMAND, 0xE2);
    assert_eq!(pit.read(PIT_CHANNEL0) & 0x80, 0x80);
    assert_eq!(status(&mut pit, 0) & 0x80, 0, "OUT low at count 1");
    // BCD bit.
    pit.write(PIT_COMMAND, 0x31);
    assert_eq!(status(&mut pit, 0) & 0x3F, 0x31);
}

#[test]
fn reload_zero_is_65536_and_10000_in_bcd() {
    let (clock, mut pit) = pit_at(Duration::ZERO);
    program(&mut pit, 0, 2, 0);
    assert_eq!(read16(&mut pit, 0), 0);
    clock.set(t(1));
    assert_eq!(read16(&mut pit, 0), 0xFFFF);
    assert_eq!(pit.next_irq0_edge(), Some(t(65536)));
    clock.set(t(65536));
    assert_eq!(pit.take_irq0_edges(), 1);
    let l = Duration::from_secs(1);
    clock.set(l);
    // 1 s of an 18.2 Hz timer, 1 edge already taken.
    assert_eq!(pit.take_irq0_edges(), periodic_edges(l, 65536) - 1);
    pit.write(PIT_COMMAND, 0x35); // mode 2, BCD
    pit.write(PIT_CHANNEL0, 0);
    pit.write(PIT_CHANNEL0, 0);
    clock.set(l + t(1));
    assert_eq!(read16(&mut pit, 0), 0x9999);
    assert_eq!(pit.next_irq0_edge(), Some(l + t(10_000)));
}

#[test]
fn bcd_counting_mode0() {
    let l = Duration::from_millis(9);
    let (clock, mut pit) = pit_at(l);
    pit.write(PIT_COMMAND, 0x31); // ch0, lohi, mode 0, BCD
    pit.write(PIT_CHANNEL0, 0x34);
    pit.write(PIT_CHANNEL0, 0x12); // 1234 decimal
    clock.set(l + t(35));
    assert_eq!(read16(&mut pit, 0), 0x1199);
    clock.set(l + t(1234));
    assert_eq!(read16(&mut pit, 0), 0x0000);
    assert_eq!(pit.take_irq0_edges(), 1);
    clock.set(l + t(1235));
    assert_eq!(read16(&mut pit, 0), 0x9999, "BCD wraps to 9999");
}

#[test]
fn counts_at_1_193182_mhz() {
    let l = Duration::from_nanos(123_456_789);
    let (clock, mut pit) = pit_at(l);
    program(&mut pit, 0, 2, 0); // 65536
    clock.set(l + Duration::from_secs(1));
    let expected = 65536 - (1_193_182 % 65536);
    assert_eq!(u32::from(read16(&mut pit, 0)), expected);
    clock.set(l + Duration::from_secs(1) - Duration::from_nanos(1));
    assert_eq!(u32::from(read16(&mut pit, 0)), expected + 1);
    // No drift over a long time: after exactly 1000 s.
    clock.set(l + Duration::from_secs(1000));
    let expected = 65536 - (1_193_182_000u64 % 65536) as u32;
    assert_eq!(u32::from(read16(&mut pit, 0)), expected);
}

#[test]
fn port_b_gate_speaker_refresh_and_out2() {
    let (clock, mut pit) = pit_at(Duration::ZERO);
    assert_eq!(
        pit.read(PORT_B),
        0x20,
        "gate low, speaker off, OUT2 idle high"
    );
    pit.write(PORT_B, 0xFF);
    assert_eq!(pit.read(PORT_B) & 0x0F, 0x03, "only bits 0-1 are stored");
    pit.write(PORT_B, 0x02);
    assert_eq!(pit.read(PORT_B) & 0x03, 0x02);
    clock.set(Duration::from_nanos(15_084));
    assert_eq!(pit.read(PORT_B) & 0x10, 0);
    clock.set(Duration::from_nanos(15_085));
    assert_eq!(
        pit.read(PORT_B) & 0x10,
        0x10,
        "refresh toggles every 15.085 us"
    );
    clock.set(Duration::from_nanos(30_170));
    assert_eq!(pit.read(PORT_B) & 0x10, 0);
    // OUT2 in mode 0 with the gate high: low, then high at terminal count.
    let l = Duration::from_secs(1);
    clock.set(l);
    pit.write(PORT_B, 0x01);
    program(&mut pit, 2, 0, 10);
    clock.set(l + t(9));
    assert_eq!(pit.read(PORT_B) & 0x21, 0x01);
    clock.set(l + t(10));
    assert_eq!(pit.read(PORT_B) & 0x21, 0x21);
    assert_eq!(pit.take_irq0_edges(), 0, "channel 2 is not IRQ0");
}

#[test]
fn gate_low_pauses_mode0_and_resumes() {
    let l = Duration::from_secs(2);
    let (clock, mut pit) = pit_at(l);
    pit.write(PORT_B, 1);
    program(&mut pit, 2, 0, 100);
    clock.set(l + t(30));
    pit.write(PORT_B, 0);
    clock.set(l + t(500));
    assert_eq!(
        read16(&mut pit, 2),
        70,
        "count frozen while the gate is low"
    );
    assert!(!out2(&mut pit));
    let h = clock.now();
    pit.write(PORT_B, 1); // resumes, no retrigger in mode 0
    clock.set(h + t(69));
    assert_eq!(read16(&mut pit, 2), 1);
    clock.set(h + t(70));
    assert!(out2(&mut pit));
}

#[test]
fn gate_low_stops_mode2_and_3_and_rising_retriggers() {
    let l = Duration::from_secs(2);
    let (clock, mut pit) = pit_at(l);
    pit.write(PORT_B, 1);
    program(&mut pit, 2, 2, 10);
    clock.set(l + t(9));
    assert!(!out2(&mut pit));
    pit.write(PORT_B, 0);
    assert!(out2(&mut pit), "a low gate forces OUT high");
    clock.set(l + t(100));
    assert_eq!(read16(&mut pit, 2), 1, "frozen");
    let h = clock.now();
    pit.write(PORT_B, 1);
    assert_eq!(read16(&mut pit, 2), 10, "rising gate reloads");
    clock.set(h + t(3));
    assert_eq!(read16(&mut pit, 2), 7);
    // Mode 3: same.
    let l = Duration::from_secs(3);
    clock.set(l);
    program(&mut pit, 2, 3, 10);
    clock.set(l + t(6));
    assert!(!out2(&mut pit));
    pit.write(PORT_B, 0);
    assert!(out2(&mut pit));
    clock.set(l + t(60));
    assert_eq!(read16(&mut pit, 2), 8);
    pit.write(PORT_B, 1);
    assert_eq!(read16(&mut pit, 2), 10);
}

#[test]
fn mode0_first_byte_of_lohi_stops_counting() {
    let l = Duration::from_secs(1);
    let (clock, mut pit) = pit_at(l);
    program(&mut pit, 0, 0, 100);
    clock.set(l + t(50));
    pit.write(PIT_CHANNEL0, 0x20); // first byte of a new count
    clock.set(l + t(200));
    assert_eq!(pit.take_irq0_edges(), 0, "terminal count never reached");
    assert_eq!(pit.next_irq0_edge(), None);
    assert!(!out_bit(&mut pit, 0));
    assert_eq!(read16(&mut pit, 0), 50);
    let h = clock.now();
    pit.write(PIT_CHANNEL0, 0x00); // 0x0020 = 32
    assert_eq!(pit.next_irq0_edge(), Some(h + t(32)));
}

#[test]
fn take_irq0_edges_exact_over_two_seconds() {
    let l = Duration::from_nanos(500_000_123);
    let (clock, mut pit) = pit_at(l);
    program(&mut pit, 0, 2, 1193);
    clock.set(l + Duration::from_secs(2));
    let whole = periodic_edges(Duration::from_secs(2), 1193);
    assert_eq!(whole, 2000);
    assert_eq!(pit.take_irq0_edges(), whole);
    // With an arbitrary phase and many small takes: no edge lost or doubled.
    let l = Duration::from_secs(10);
    clock.set(l);
    pit.take_irq0_edges(); // edges owed by the earlier programming
    program(&mut pit, 0, 2, 1193);
    let phase = Duration::from_micros(700);
    clock.set(l + phase);
    let before = pit.take_irq0_edges();
    assert_eq!(before, periodic_edges(phase, 1193));
    let mut total = 0;
    let end = l + phase + Duration::from_secs(2);
    while clock.now() < end {
        clock.advance(Duration::from_nanos(333_331));
        if clock.now() > end {
            clock.set(end);
        }
        total += pit.take_irq0_edges();
        if let Some(next) = pit.next_irq0_edge() {
            assert!(next > clock.now(), "nothing untaken is in the past");
        }
    }
    let expected = periodic_edges(phase + Duration::from_secs(2), 1193) - before;
    assert_eq!(total, expected);
    assert!((1999..=2001).contains(&total));
}

#[test]
fn one_shot_gives_exactly_one_edge() {
    let (clock, mut pit) = pit_at(Duration::ZERO);
    program(&mut pit, 0, 0, 5000);
    let mut total = 0;
    for _ in 0..100 {
        clock.advance(Duration::from_micros(100));
        total += pit.take_irq0_edges();
    }
    assert_eq!(total, 1);
    assert_eq!(pit.next_irq0_edge(), None);
}

#[test]
fn unprogrammed_channel0_never_interrupts() {
    let (clock, mut pit) = pit_at(Duration::ZERO);
    assert_eq!(pit.next_irq0_edge(), None);
    clock.advance(Duration::from_secs(10));
    assert_eq!(pit.take_irq0_edges(), 0);
    // A control word alone does not start anything either.
    pit.write(PIT_COMMAND, 0x34);
    clock.advance(Duration::from_secs(10));
    assert_eq!(pit.next_irq0_edge(), None);
    assert_eq!(pit.take_irq0_edges(), 0);
}

#[test]
fn tiny_reload_is_clamped_to_min_period() {
    let l = Duration::from_secs(1);
    let (clock, mut pit) = pit_at(l);
    program(&mut pit, 0, 2, 2);
    assert_eq!(pit.next_irq0_edge(), Some(l + MIN_IRQ0_PERIOD));
    clock.set(l + Duration::from_secs(1));
    assert_eq!(pit.take_irq0_edges(), 10_000);
    assert_eq!(
        pit.next_irq0_edge(),
        Some(l + Duration::from_secs(1) + MIN_IRQ0_PERIOD)
    );
    // The guest still reads the real counter.
    let l = clock.now();
    program(&mut pit, 0, 2, 2);
    clock.set(l + t(1));
    assert_eq!(read16(&mut pit, 0), 1);
    // Reload 1 (illegal in mode 2) and mode 3 are clamped the same way.
    program(&mut pit, 0, 2, 1);
    let l = clock.now();
    clock.set(l + Duration::from_millis(1));
    assert_eq!(pit.take_irq0_edges(), 10);
    program(&mut pit, 0, 3, 3);
    let l = clock.now();
    clock.set(l + Duration::from_millis(1));
    assert_eq!(pit.take_irq0_edges(), 10);
    // 119 clocks (99.7 us) are clamped, 120 clocks (100.6 us) are not.
    program(&mut pit, 0, 2, 119);
    assert_eq!(pit.next_irq0_edge(), Some(clock.now() + MIN_IRQ0_PERIOD));
    program(&mut pit, 0, 2, 120);
    assert_eq!(pit.next_irq0_edge(), Some(clock.now() + t(120)));
}

#[test]
fn reprogramming_keeps_untaken_edges() {
    let l = Duration::from_secs(1);
    let (clock, mut pit) = pit_at(l);
    program(&mut pit, 0, 2, 1193);
    clock.set(l + t(1193 * 3 + 500));
    program(&mut pit, 0, 2, 2386);
    let l2 = clock.now();
    assert_eq!(
        pit.next_irq0_edge(),
        Some(l + t(1193)),
        "past edge still owed"
    );
    assert_eq!(pit.take_irq0_edges(), 3);
    assert_eq!(pit.next_irq0_edge(), Some(l2 + t(2386)));
    // A control word stopping the channel keeps owed edges too.
    clock.set(l2 + t(2386));
    pit.write(PIT_COMMAND, 0x30);
    assert_eq!(pit.next_irq0_edge(), Some(l2 + t(2386)));
    clock.advance(Duration::from_secs(1));
    assert_eq!(pit.take_irq0_edges(), 1);
    assert_eq!(pit.next_irq0_edge(), None);
    // A new count without a control word (mode 2 reloads at once).
    program(&mut pit, 0, 2, 1193);
    let l3 = clock.now();
    clock.set(l3 + t(1193 * 2 + 5));
    pit.write(PIT_CHANNEL0, 0x00);
    pit.write(PIT_CHANNEL0, 0x10);
    let l4 = clock.now();
    assert_eq!(pit.next_irq0_edge(), Some(l3 + t(1193)));
    assert_eq!(pit.take_irq0_edges(), 2);
    assert_eq!(pit.next_irq0_edge(), Some(l4 + t(0x1000)));
}

#[test]
fn clock_going_backwards_is_harmless() {
    let (clock, mut pit) = pit_at(Duration::from_secs(5));
    program(&mut pit, 0, 2, 1193);
    clock.set(Duration::from_secs(6));
    let n = pit.take_irq0_edges();
    assert!(n > 0);
    clock.set(Duration::from_secs(1));
    assert_eq!(pit.take_irq0_edges(), 0);
    assert_eq!(read16(&mut pit, 0), 1193);
    clock.set(Duration::from_secs(6));
    assert_eq!(pit.take_irq0_edges(), 0, "no edge counted twice");
}

/// One step of a guest or of time, for the property below.
#[derive(Clone, Debug)]
enum Step {
    Write(u16, u8),
    Read(u16),
    Advance(u64),
}

fn step() -> impl proptest::strategy::Strategy<Value = Step> {
    use proptest::prelude::*;
    const PORTS: [u16; 8] = [0x40, 0x41, 0x42, 0x43, 0x61, 0x60, 0xFFFF, 0];
    prop_oneof![
        (0..PORTS.len(), any::<u8>()).prop_map(|(i, v)| Step::Write(PORTS[i], v)),
        (0..PORTS.len()).prop_map(|i| Step::Read(PORTS[i])),
        (0u64..5_000).prop_map(Step::Advance),
        (0u64..10_000_000_000).prop_map(Step::Advance),
    ]
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(500))]

    /// Whatever the guest writes, on a clock that only moves forward: an
    /// owed edge in the past is delivered, and after taking the edges
    /// nothing untaken lies in the past. (The `pit` fuzz target checks
    /// counts, latches and edge spacing too.)
    #[test]
    fn garbage_input_keeps_deadlines_ahead(start in 0u64..u64::MAX / 2, steps in proptest::collection::vec(step(), 1..400)) {
        let (clock, mut pit) = pit_at(Duration::from_nanos(start));
        for step in steps {
            match step {
                Step::Write(port, value) => pit.write(port, value),
                Step::Read(port) => {
                    pit.read(port);
                }
                Step::Advance(ns) => clock.advance(Duration::from_nanos(ns)),
            }
            let next = pit.next_irq0_edge();
            let taken = pit.take_irq0_edges();
            if next.is_some_and(|n| n <= clock.now()) {
                proptest::prop_assert!(taken >= 1);
            }
            if let Some(n) = pit.next_irq0_edge() {
                proptest::prop_assert!(n > clock.now());
            }
        }
    }
}

#[test]
fn extreme_clock_values_never_panic() {
    // Extreme clock values.
    let (clock, mut pit) = pit_at(Duration::MAX);
    program(&mut pit, 0, 2, 2);
    let _ = pit.next_irq0_edge();
    clock.set(Duration::ZERO);
    let _ = pit.read(PIT_CHANNEL0);
    let _ = pit.take_irq0_edges();
}

/// The conformance kernel's sequence (tests/conformance.rs, Linux's channel
/// 2 use): mode 0 programmed and loaded while the gate is low, then the gate
/// rises. Datasheet: OUT stays low until the count runs out.
#[test]
fn mode0_loaded_with_gate_low_keeps_out_low_until_terminal_count() {
    let (clock, mut pit) = pit_at(Duration::from_millis(7));
    // An earlier mode 0 count ran with the gate high, then the gate fell.
    pit.write(PORT_B, 0x01);
    program(&mut pit, 2, 0, 0xFFFF);
    clock.advance(Duration::from_millis(2));
    pit.write(PORT_B, 0x00);
    clock.advance(Duration::from_micros(100));
    program(&mut pit, 2, 0, 0x1000);
    clock.advance(Duration::from_micros(50));
    assert!(!out2(&mut pit), "OUT low after the count is written");
    pit.write(PORT_B, 0x01);
    clock.advance(Duration::from_micros(10));
    pit.write(PIT_COMMAND, 0x80);
    let count = read16(&mut pit, 2);
    assert!((0x0FF0..=0x1000).contains(&count), "count {count:#x}");
    assert!(!out2(&mut pit), "OUT low while counting");
    clock.advance(t(0x1000));
    assert!(out2(&mut pit), "OUT high at terminal count");
}
