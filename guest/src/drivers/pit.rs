//! The 8254 PIT: channel 0 as a one-shot timer interrupt (IRQ0, mode 0,
//! armed by `task::timer` for the earliest deadline), and channel 2, gated
//! through port 0x61, to calibrate the TSC at boot when CPUID does not give
//! its frequency.

use shared::pit::{control_word, port_b, Access, Mode, Select};
use shared::ports::{PIT_CHANNEL0, PIT_CHANNEL2, PIT_COMMAND, PORT_B};
use x86_64::instructions::port::Port;

use crate::time;

/// Channel 0 in mode 0 (interrupt on terminal count), count written low
/// byte first.
const ONE_SHOT_CONTROL_WORD: u8 = control_word(
    Select::Channel0,
    Access::LowHigh,
    Mode::InterruptOnTerminalCount,
    false,
);

/// Channel 2 as a square wave (mode 3), for the calibration: OUT2 rises
/// once per period, for as long as the gate stays high.
const CALIBRATION_CONTROL_WORD: u8 =
    control_word(Select::Channel2, Access::LowHigh, Mode::SquareWave, false);

/// Channel 2's period during the calibration: 65534 PIT clocks, 54.9 ms
/// (even, so OUT2 is high and low for equal halves).
const CALIBRATION_PERIOD: u16 = 65_534;
/// Periods one measurement spans: 109.9 ms.
const PERIODS_PER_SPAN: u64 = 2;
/// PIT input clocks one measurement spans.
pub const CALIBRATION_CLOCKS: u64 = CALIBRATION_PERIOD as u64 * PERIODS_PER_SPAN;
/// Measurements taken at most (see [`calibrate_tsc`]).
const MAX_SPANS: usize = 5;
/// TSC cycles to wait for an edge of OUT2 (a half period is 27.5 ms) before
/// giving up: over 2 s below a 2 GHz TSC.
const EDGE_GIVE_UP_CYCLES: u64 = 1 << 32;

/// Puts channel 0 in mode 0 without a count: stopped, OUT low, no IRQ0
/// until [`start_one_shot`] writes a count. (QEMU's model keeps running a
/// counter the firmware started until it ends; that gives at most one
/// stray IRQ0, which the handler treats like any early one.)
pub fn init() {
    // SAFETY: port I/O to the PIT's command port touches no memory; only
    // channel 0, which nothing else in the kernel uses, is reprogrammed.
    unsafe { Port::<u8>::new(PIT_COMMAND).write(ONE_SHOT_CONTROL_WORD) };
}

/// (Re)starts channel 0's one-shot: IRQ0 after `count` PIT input clocks
/// (`count` >= 1). In mode 0 writing the low byte stops the counter and the
/// high byte starts it again from `count`, so this also re-arms a running
/// shot. Two port writes, no control word: [`init`] selected low/high byte
/// access once.
///
/// The caller keeps interrupts disabled: the two writes must not be split
/// by an IRQ0 handler that writes its own pair (the PIT's byte flip-flop
/// would pair them wrongly).
pub fn start_one_shot(count: u16) {
    let [low, high] = count.to_le_bytes();
    let mut data = Port::<u8>::new(PIT_CHANNEL0);
    // SAFETY: channel 0's data port; see above for the pairing.
    unsafe {
        data.write(low);
        data.write(high);
    }
}

/// The TSC cycles that [`CALIBRATION_CLOCKS`] PIT input clocks last, timed
/// on channel 2; `None` if there is no channel 2 at port 0x61 or OUT2 does
/// not toggle.
///
/// Channel 2 runs as a square wave (gate: port 0x61 bit 0; the speaker, bit
/// 1, stays off) and its OUT reads back as port 0x61 bit 5. A measurement
/// is the time between two rising edges of OUT2 [`PERIODS_PER_SPAN`]
/// periods apart. Each edge is located between the TSC read before the
/// last poll that saw OUT2 low and the one after the first poll that saw it
/// high, and the midpoint taken: both ends of a measurement are found the
/// same way, so where in its bracket the PIT samples cancels out, and the
/// error is at most half a poll at each end: about 10-20 µs where every
/// port access exits or is emulated (a one-window calibration was seen
/// 0.025 % off there), under 1 µs under TCG.
///
/// A single measurement can still be far off: under TCG the TSC is the
/// host's, and a vCPU thread that moves to another host CPU mid-window
/// reads another CPU's TSC, which in a nested VM need not agree (seen here:
/// one boot in six 0.37 % off). So consecutive measurements are taken until
/// two agree to 1/20000 (their mean is taken), at most [`MAX_SPANS`], else
/// the median.
///
/// Call with interrupts disabled (boot does): an interrupt between two
/// polls delays the edge's detection.
pub fn calibrate_tsc() -> Option<u64> {
    let mut port_b_io = Port::<u8>::new(PORT_B);
    // SAFETY: PIT and port B accesses touch no memory; channel 2 and the
    // speaker belong to nothing else in the kernel.
    let present = unsafe {
        let b = port_b_io.read();
        port_b_io.write((b & !port_b::SPEAKER_DATA) | port_b::GATE2);
        // A missing port B reads 0xFF: its speaker bit would not read back 0.
        let present = port_b_io.read() & (port_b::GATE2 | port_b::SPEAKER_DATA) == port_b::GATE2;
        let [low, high] = CALIBRATION_PERIOD.to_le_bytes();
        Port::<u8>::new(PIT_COMMAND).write(CALIBRATION_CONTROL_WORD);
        let mut channel2 = Port::<u8>::new(PIT_CHANNEL2);
        channel2.write(low);
        channel2.write(high);
        present
    };
    let result = if present {
        measure(&mut port_b_io)
    } else {
        None
    };
    // SAFETY: gate 2 off again (channel 2 stops), speaker still off.
    unsafe {
        let b = port_b_io.read();
        port_b_io.write(b & !(port_b::GATE2 | port_b::SPEAKER_DATA));
    }
    result
}

/// The measurements of [`calibrate_tsc`], channel 2 running.
fn measure(port_b_io: &mut Port<u8>) -> Option<u64> {
    let mut edge = rising_edge(port_b_io)?;
    let mut spans = [0u64; MAX_SPANS];
    for n in 0..MAX_SPANS {
        let begin = edge;
        for _ in 0..PERIODS_PER_SPAN {
            edge = rising_edge(port_b_io)?;
        }
        let span = edge - begin;
        for &earlier in &spans[..n] {
            if earlier.abs_diff(span) <= span.max(earlier) / 20_000 {
                return Some(earlier / 2 + span / 2);
            }
        }
        spans[n] = span;
    }
    spans.sort_unstable();
    Some(spans[MAX_SPANS / 2])
}

/// Waits for OUT2 to go from low to high; returns the midpoint of the TSC
/// bracket around the rise, or `None` after [`EDGE_GIVE_UP_CYCLES`].
fn rising_edge(port_b_io: &mut Port<u8>) -> Option<u64> {
    let start = time::rdtsc();
    let mut last_low: Option<u64> = None;
    loop {
        let before = time::rdtsc();
        // SAFETY: reading port B.
        let b = unsafe { port_b_io.read() };
        let after = time::rdtsc();
        if b & port_b::OUT2 == 0 {
            last_low = Some(before);
        } else if let Some(low) = last_low {
            return Some(low / 2 + after / 2);
        }
        if after - start > EDGE_GIVE_UP_CYCLES {
            return None;
        }
        core::hint::spin_loop();
    }
}
