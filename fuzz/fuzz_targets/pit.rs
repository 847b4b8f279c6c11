//! The 8254 on a manual clock that only moves forward, driven by a guest
//! (structured programming, latches and read-backs, and raw port accesses)
//! and by the machine's timer service (running to each deadline).
//!
//! Checked, on channels whose programming the target knows (programmed by a
//! `Program` step and never touched by a raw access since):
//! - a count read in modes 2 and 3 lies within 1..=reload (the reload read
//!   as 0 stands for 65536, or 10000 in BCD); in BCD mode every count read
//!   is valid BCD;
//! - a latched count (counter latch or read-back) does not change while
//!   time passes, and equals what the counter showed at the latch;
//! - the read-back status byte repeats the programmed access, mode and BCD
//!   bits;
//! - on every channel: after the edges up to now are taken, the next
//!   deadline is never in the past; a deadline always has at least one edge
//!   behind it; two successive deadlines with no guest write in between are
//!   at least `MIN_IRQ0_PERIOD` apart.
#![no_main]

use std::time::Duration;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use shared::ports::{PIT_CHANNEL0, PIT_COMMAND, PORT_B};
use vmm::clock::{Clock, ManualClock};
use vmm::device::{IrqOutput, PortDevice};
use vmm::devices::pit::{Pit, MIN_IRQ0_PERIOD};

#[derive(Arbitrary, Debug)]
enum Step {
    /// Control word for `channel` (access 1-3, mode, BCD), then the count
    /// bytes that access takes.
    Program {
        channel: u8,
        access: u8,
        mode: u8,
        bcd: bool,
        count: u16,
    },
    /// Counter latch, time passes, then read the count.
    Latch {
        channel: u8,
        micros: u16,
    },
    /// Read-back of count and status, time passes, then read both.
    ReadBack {
        channel: u8,
        micros: u16,
    },
    /// Channel 2's gate (port 0x61 bit 0).
    Gate(bool),
    /// Any port access, any value: the channel's programming becomes unknown.
    RawWrite(u8, u8),
    RawRead(u8),
    /// Time passes (nanoseconds, up to about 16 ms per step; cubed input so
    /// short steps are common).
    Advance(u16),
    /// The timer service: collect the edges up to now.
    Collect,
    /// The timer service: sleep until the next deadline and collect.
    RunToDeadline,
}

#[derive(Clone, Copy, Debug)]
struct Known {
    access: u8,
    mode_bits: u8,
    bcd: bool,
    /// The count a count of 0 stands for is the modulus.
    reload: u32,
}

const RAW_PORTS: [u16; 6] = [
    PIT_CHANNEL0,
    PIT_CHANNEL0 + 1,
    PIT_CHANNEL0 + 2,
    PIT_COMMAND,
    PORT_B,
    0x44,
];

/// The count as a number, from the 16-bit value the guest reads.
fn value(raw: u16, bcd: bool) -> u32 {
    if bcd {
        (0..4).fold(0, |acc, i| {
            acc * 10 + u32::from((raw >> (12 - 4 * i)) & 0xF)
        })
    } else {
        u32::from(raw)
    }
}

fn valid_bcd(raw: u16) -> bool {
    (0..4).all(|i| (raw >> (4 * i)) & 0xF <= 9)
}

/// Reads a count in the channel's access mode: the bytes it returns, as the
/// 16-bit value (the missing byte 0).
fn read_count(pit: &mut Pit<ManualClock>, channel: u16, access: u8) -> u16 {
    let port = PIT_CHANNEL0 + channel;
    match access {
        1 => u16::from(pit.read(port)),
        2 => u16::from(pit.read(port)) << 8,
        _ => {
            let low = pit.read(port);
            u16::from(low) | (u16::from(pit.read(port)) << 8)
        }
    }
}

fn check_count(channel: u16, raw: u16, known: &Known) {
    if known.bcd {
        assert!(
            valid_bcd(raw),
            "count {raw:#06x} of a BCD channel is not BCD"
        );
    }
    let mode = known.mode_bits & 3;
    // Channel 2's gate may hold the count of an earlier programming.
    if channel < 2 && known.access == 3 && (mode == 2 || mode == 3) {
        let count = value(raw, known.bcd);
        assert!(
            count <= known.reload
                && (count > 0
                    || known.reload == if known.bcd { 10_000 } else { 0x1_0000 }
                    || mode == 3),
            "channel {channel} count {count} outside 1..={} ({known:?})",
            known.reload
        );
    }
}

fn check_deadline(pit: &Pit<ManualClock>, clock: &ManualClock) {
    if let Some(deadline) = PortDevice::next_deadline(pit) {
        assert!(
            deadline > clock.now(),
            "deadline {deadline:?} in the past at {:?}",
            clock.now()
        );
    }
}

fn collect(pit: &mut Pit<ManualClock>) -> u64 {
    match PortDevice::on_deadline(pit).irq[0] {
        None => 0,
        Some(IrqOutput::Ticks(n)) => n,
        Some(other) => panic!("the PIT's IRQ0 is ticks, not {other:?}"),
    }
}

fuzz_target!(|steps: Vec<Step>| {
    let clock = ManualClock::new();
    let mut pit = Pit::new(clock.clone());
    let mut known: [Option<Known>; 3] = [None; 3];
    // Channels a raw access touched: unknown for the rest of the run (a
    // latch or a flip-flop state may be left over).
    let mut tainted = [false; 3];
    let mut last_deadline: Option<Duration> = None;
    // When the guest last changed a channel's programming: edges owed from
    // before it belong to the old programming and are not spaced against
    // the new one's.
    let mut programmed_at = Duration::ZERO;
    for step in steps.into_iter().take(1000) {
        match step {
            Step::Program {
                channel,
                access,
                mode,
                bcd,
                count,
            } => {
                let channel = channel % 3;
                let access = access % 3 + 1;
                let mode_bits = mode & 7;
                let control = channel << 6 | access << 4 | mode_bits << 1 | u8::from(bcd);
                pit.write(PIT_COMMAND, control);
                let port = PIT_CHANNEL0 + u16::from(channel);
                let [low, high] = count.to_le_bytes();
                let written = match access {
                    1 => {
                        pit.write(port, low);
                        u16::from(low)
                    }
                    2 => {
                        pit.write(port, low);
                        u16::from(low) << 8
                    }
                    _ => {
                        pit.write(port, low);
                        pit.write(port, high);
                        count
                    }
                };
                let modulus = if bcd { 10_000 } else { 0x1_0000 };
                let reload = match value(written, bcd) % modulus {
                    0 => modulus,
                    n => n,
                };
                let entry = Known {
                    access,
                    mode_bits,
                    bcd,
                    reload,
                };
                known[usize::from(channel)] = (!tainted[usize::from(channel)]).then_some(entry);
                last_deadline = None;
                programmed_at = clock.now();
            }
            Step::Latch { channel, micros } => {
                let channel = channel % 3;
                let Some(k) = known[usize::from(channel)] else {
                    continue;
                };
                pit.write(PIT_COMMAND, channel << 6);
                let at_latch = read_count(&mut pit.clone(), u16::from(channel), k.access);
                clock.advance(Duration::from_micros(u64::from(micros)));
                let read = read_count(&mut pit, u16::from(channel), k.access);
                assert_eq!(read, at_latch, "latched count moved with time");
                check_count(u16::from(channel), read, &k);
            }
            Step::ReadBack { channel, micros } => {
                let channel = channel % 3;
                let Some(k) = known[usize::from(channel)] else {
                    continue;
                };
                // Read-back, latch count and status (active low) of one channel.
                pit.write(PIT_COMMAND, 0xC0 | 2 << channel);
                let mut probe = pit.clone();
                clock.advance(Duration::from_micros(u64::from(micros)));
                let status = pit.read(PIT_CHANNEL0 + u16::from(channel));
                let _ = probe.read(PIT_CHANNEL0 + u16::from(channel));
                assert_eq!(
                    status & 0x3F,
                    k.access << 4 | k.mode_bits << 1 | u8::from(k.bcd),
                    "status byte {status:#04x} for {k:?}"
                );
                let read = read_count(&mut pit, u16::from(channel), k.access);
                assert_eq!(
                    read,
                    read_count(&mut probe, u16::from(channel), k.access),
                    "latched count moved with time"
                );
                check_count(u16::from(channel), read, &k);
            }
            Step::Gate(high) => {
                pit.write(PORT_B, u8::from(high));
                last_deadline = None;
                programmed_at = clock.now();
            }
            Step::RawWrite(port, value) => {
                let port = RAW_PORTS[usize::from(port) % RAW_PORTS.len()];
                let _ = PortDevice::write(&mut pit, port - PIT_CHANNEL0, &[value]);
                match port {
                    PIT_COMMAND => tainted = [true; 3],
                    p if p < PIT_COMMAND => tainted[usize::from(p - PIT_CHANNEL0)] = true,
                    _ => {}
                }
                for (k, t) in known.iter_mut().zip(tainted) {
                    if t {
                        *k = None;
                    }
                }
                last_deadline = None;
                programmed_at = clock.now();
            }
            Step::RawRead(port) => {
                let port = RAW_PORTS[usize::from(port) % RAW_PORTS.len()];
                let mut data = [0];
                let _ = PortDevice::read(&mut pit, port - PIT_CHANNEL0, &mut data);
                if port < PIT_COMMAND {
                    let channel = usize::from(port - PIT_CHANNEL0);
                    tainted[channel] = true;
                    known[channel] = None;
                }
            }
            Step::Advance(n) => {
                let n = u64::from(n >> 6);
                clock.advance(Duration::from_nanos(n * n * n / 16));
            }
            Step::Collect => {
                collect(&mut pit);
                check_deadline(&pit, &clock);
            }
            Step::RunToDeadline => {
                let Some(deadline) = PortDevice::next_deadline(&pit) else {
                    last_deadline = None;
                    programmed_at = clock.now();
                    continue;
                };
                if deadline > clock.now() {
                    clock.set(deadline);
                }
                assert!(
                    collect(&mut pit) >= 1,
                    "a deadline at {deadline:?} with no edge behind it"
                );
                check_deadline(&pit, &clock);
                if let Some(previous) = last_deadline {
                    assert!(
                        deadline >= previous + MIN_IRQ0_PERIOD,
                        "edges {previous:?} and {deadline:?} closer than {MIN_IRQ0_PERIOD:?}"
                    );
                }
                last_deadline = (deadline >= programmed_at).then_some(deadline);
            }
        }
    }
});
