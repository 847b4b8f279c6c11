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

/// Channel 2 in mode 0, for the calibration.
const CALIBRATION_CONTROL_WORD: u8 = control_word(
    Select::Channel2,
    Access::LowHigh,
    Mode::InterruptOnTerminalCount,
    false,
);

/// PIT input clocks of the calibration window: the longest count, 54.9 ms.
pub const CALIBRATION_CLOCKS: u16 = u16::MAX;

/// Windows timed at most (see [`calibrate_tsc`]).
const CALIBRATION_WINDOWS: usize = 5;

/// TSC cycles after which a calibration that has not seen OUT2 rise gives
/// up (a machine without channel 2): several seconds at any real TSC rate.
const CALIBRATION_GIVE_UP_CYCLES: u64 = 1 << 34;

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
/// on channel 2; `None` if OUT2 never rose.
///
/// Each window's ends are located to within one port access (see
/// [`time_window`]): about 10-20 µs where every port access exits to the
/// VMM, under 1 µs under TCG. A single window can still be far off: under
/// TCG the TSC is the host's, and a vCPU thread that moves to another host
/// CPU mid-window reads another CPU's TSC, which in a nested VM need not
/// agree (seen here: one boot in six 0.37 % off). So windows are timed until
/// two agree to 1/20000 (their mean is taken), at most
/// [`CALIBRATION_WINDOWS`] of them, else the median.
pub fn calibrate_tsc() -> Option<u64> {
    let mut windows = [0u64; CALIBRATION_WINDOWS];
    for n in 0..CALIBRATION_WINDOWS {
        let cycles = time_window()?;
        for &earlier in &windows[..n] {
            if earlier.abs_diff(cycles) <= cycles.max(earlier) / 20_000 {
                return Some(earlier / 2 + cycles / 2);
            }
        }
        windows[n] = cycles;
    }
    windows.sort_unstable();
    Some(windows[CALIBRATION_WINDOWS / 2])
}

/// Times one window of [`CALIBRATION_CLOCKS`] PIT input clocks with the TSC:
/// returns the cycles it lasted, or `None` if OUT2 never rose.
///
/// Channel 2's gate is port 0x61 bit 0 and its OUT reads back as bit 5; the
/// speaker (bit 1) stays off. The gate goes high before the count is
/// written, so counting starts at the count's high byte on every model (a
/// real 8254, our VMM, QEMU, which ignores the gate in mode 0). The start
/// lies between the TSC reads around that write, the end between the read
/// before the last poll that saw OUT2 low and the read after the first that
/// saw it high; the midpoints of both brackets are used.
///
/// Call with interrupts disabled (boot does): an interrupt inside a bracket
/// only widens it, but one elsewhere could delay the poll that sees the end.
fn time_window() -> Option<u64> {
    let mut port_b_io = Port::<u8>::new(PORT_B);
    let mut command = Port::<u8>::new(PIT_COMMAND);
    let mut channel2 = Port::<u8>::new(PIT_CHANNEL2);
    let [low, high] = CALIBRATION_CLOCKS.to_le_bytes();
    // SAFETY: PIT and port B accesses touch no memory; channel 2 and the
    // speaker belong to nothing else in the kernel.
    let (start_before, start_after) = unsafe {
        let b = port_b_io.read();
        port_b_io.write((b & !port_b::SPEAKER_DATA) | port_b::GATE2);
        command.write(CALIBRATION_CONTROL_WORD);
        channel2.write(low);
        let before = time::rdtsc();
        channel2.write(high);
        (before, time::rdtsc())
    };
    let mut last_low: Option<u64> = None;
    loop {
        let before = time::rdtsc();
        // SAFETY: reading port B.
        let b = unsafe { port_b_io.read() };
        let after = time::rdtsc();
        if b & port_b::OUT2 != 0 {
            // SAFETY: gate 2 off again, speaker still off.
            unsafe { port_b_io.write(b & !(port_b::GATE2 | port_b::SPEAKER_DATA)) };
            // OUT2 is low while a mode 0 count runs: high at the first look
            // means no channel 2 behind port 0x61 (QEMU microvm has no PIT
            // there, and a missing port reads 0xFF).
            let last_low = last_low?;
            let start = start_before / 2 + start_after / 2;
            let end = last_low / 2 + after / 2;
            return Some(end.saturating_sub(start));
        }
        last_low = Some(before);
        if after - start_after > CALIBRATION_GIVE_UP_CYCLES {
            return None;
        }
        core::hint::spin_loop();
    }
}
