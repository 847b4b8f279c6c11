//! Intel 8254 programmable interval timer (PIT), plus the two bits of port
//! 0x61 ("port B") that belong to it: channel 2's gate and output.
//!
//! # Time model
//!
//! Nothing here ticks. Each channel remembers *when* it started counting (in
//! the time of an injected [`Clock`]) and every guest-visible value (count,
//! OUT level, status, IRQ0 edges) is computed from the number of 1.193182 MHz
//! input clocks elapsed since then: `ticks = ns * 1_193_182 / 1e9`, in `u128`,
//! always from the start instant, so rounding never accumulates into drift.
//! Counting starts at the instant the count is written (as QEMU does; the real
//! part waits for the next CLK edge), so `ticks == 0` shows the initial count.
//! With [`crate::clock::ManualClock`] the model is fully deterministic, which is what the
//! unit tests and fuzzers use; the VMM uses [`crate::clock::MonotonicClock`].
//!
//! # Behaviour
//!
//! Three channels, control word (channel select, access mode latch / lobyte /
//! hibyte / lobyte-then-hibyte with separate read and write flip-flops, modes
//! 0-5 where 6 and 7 alias 2 and 3, BCD counting), counter latch command,
//! read-back command (count and/or status, status byte `OUT<<7 | null
//! count<<6 | RW<<4 | M<<1 | BCD`), reload 0 meaning 65536 (10000 in BCD).
//! Gates: channels 0 and 1 are tied high; channel 2's gate is port 0x61 bit 0.
//! A rising gate retriggers modes 1, 2, 3 and 5; a low gate stops counting in
//! modes 0, 2, 3 and 4 (and forces OUT high in modes 2 and 3).
//!
//! Port 0x61 reads `gate2 | speaker_data << 1 | refresh << 4 | out2 << 5`,
//! where `refresh` toggles every 15.085 us of clock time (`(ns / 15085) & 1`),
//! like the DRAM refresh request line it stands for; writes set bits 0-1.
//!
//! # IRQ0
//!
//! IRQ0 is a rising edge of channel 0's OUT: one per period in modes 2 and 3
//! (also for the illegal reload 1), one at terminal count in mode 0, one at
//! the end of the strobe in mode 4 (modes 1 and 5 need a gate trigger, and
//! channel 0's gate never rises, so they produce none). The caller arms a host
//! timer at [`Pit::next_irq0_edge`] and, when it fires, asks
//! [`Pit::take_irq0_edges`] how many edges happened since the last call; an
//! edge is counted exactly once even across reprogramming, because the
//! untaken edges of the old programming are kept until taken.
//!
//! # Tick storms: minimum IRQ0 period
//!
//! A guest may program channel 0 with a tiny reload (1 or 2 in mode 2 is
//! 0.8-1.7 us). Delivering that many interrupts would keep the host busy
//! forever, so the *interrupt* period of the periodic modes is clamped to
//! [`MIN_IRQ0_PERIOD`] (100 us, at most 10 kHz): when `reload / 1.193182 MHz`
//! is shorter, edges are reported every 100 us from the start of counting
//! instead. The counter the guest reads back, and OUT0 in the status byte,
//! still follow the real reload; only the edge stream is thinned out. Guests
//! that program sane rates (the classic 18.2 Hz to a few kHz) are unaffected.
//!
//! # Deviations from QEMU (hw/timer/i8254.c), on purpose
//!
//! - OUT levels follow the datasheet: modes 2, 4 and 5 idle high with a
//!   one-clock low pulse, mode 1 is low while the one-shot runs. QEMU reports
//!   the inverted level in these modes (its edges fall where the datasheet's
//!   rising edges are, except mode 4/5: the strobe's rising edge, and so IRQ0,
//!   comes one input clock (838 ns) after terminal count, not at it).
//! - A low gate stops counting in modes 0, 2, 3 and 4; QEMU keeps counting.
//! - Modes 1 and 5 wait for a gate rising edge before counting (QEMU starts on
//!   the count write). On channels 0 and 1 the gate is tied high, so these
//!   modes never start there, as on real hardware.
//! - Writing a control word stops the channel until a count is written: OUT
//!   takes its initial level (low in mode 0, high otherwise) and reads return
//!   the count held at that moment. In mode 0, writing the first byte of a
//!   lobyte/hibyte count stops counting too. QEMU changes the mode of a
//!   running counter instead.
//! - BCD mode is supported (QEMU ignores the bit); the null-count status bit
//!   is reported (QEMU always reads it as 0). Invalid BCD digits are taken at
//!   face value modulo 10000.
//! - Mode 3 with an odd reload follows the datasheet count sequence (load N,
//!   N-1, then by twos while OUT is high; N, N-3, then by twos while low).
//! - Like QEMU, a new count written in modes 2 and 3 takes effect at once
//!   (the datasheet waits for the end of the current period), and a pending
//!   count/status latch survives a new control word.
//! - Port 0x43 reads 0, as in QEMU (the register is write-only).
//! - Channel 0 starts unprogrammed: no IRQ0 until the guest programs it (QEMU
//!   resets it into a running mode 3, as a BIOS would have).
use std::time::Duration;

use shared::pit::{port_b, read_back, status, Access, Mode, Select, BCD};
use shared::ports::{PIT_CHANNEL0, PIT_CHANNEL2, PIT_COMMAND, PORT_B};
use shared::time::PIT_FREQUENCY_HZ;

use crate::clock::Clock;
use crate::device::{Change, IrqOutput, PortDevice};

/// Shortest interval between two IRQ0 edges reported in the periodic modes
/// (2 and 3); see the module documentation on tick storms.
pub const MIN_IRQ0_PERIOD: Duration = Duration::from_micros(100);

/// Half period of the port 0x61 bit 4 refresh toggle, in nanoseconds (as QEMU).
pub const REFRESH_TOGGLE_NS: u128 = 15_085;

const NANOS_PER_SEC: u128 = 1_000_000_000;
const PIT_HZ: u128 = PIT_FREQUENCY_HZ as u128;

/// Input clocks elapsed in `elapsed` (floor), saturating.
fn ticks(elapsed: Duration) -> u64 {
    let t = elapsed.as_nanos().saturating_mul(PIT_HZ) / NANOS_PER_SEC;
    u64::try_from(t).unwrap_or(u64::MAX)
}

/// The shortest duration that contains `t` input clocks, i.e. the first
/// instant at which [`ticks`] reaches `t`. Saturates at `Duration::MAX`.
fn ticks_to_duration(t: u128) -> Duration {
    let ns = t.saturating_mul(NANOS_PER_SEC).div_ceil(PIT_HZ);
    nanos_to_duration(ns)
}

fn nanos_to_duration(ns: u128) -> Duration {
    let secs = u64::try_from(ns / NANOS_PER_SEC).unwrap_or(u64::MAX);
    // The remainder is below 1e9, so it fits in u32.
    Duration::new(secs, (ns % NANOS_PER_SEC) as u32)
}

/// Whether `reload` input clocks are shorter than [`MIN_IRQ0_PERIOD`].
fn period_is_clamped(reload: u32) -> bool {
    u128::from(reload) * NANOS_PER_SEC < MIN_IRQ0_PERIOD.as_nanos() * PIT_HZ
}

/// Position of a read or write flip-flop, as in QEMU's RW_STATE_*.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ByteState {
    /// Access mode 01: always the low byte.
    Lsb,
    /// Access mode 10: always the high byte.
    Msb,
    /// Access mode 11, next byte is the low one.
    WordLow,
    /// Access mode 11, next byte is the high one.
    WordHigh,
}

impl ByteState {
    fn for_access(access: Access) -> Self {
        match access {
            Access::LowByte => Self::Lsb,
            Access::HighByte => Self::Msb,
            // `Latch` is a command, never a channel's access mode.
            Access::LowHigh | Access::Latch => Self::WordLow,
        }
    }
}

/// A latched count waiting to be read, in the access mode it was latched in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CountLatch {
    None,
    Lsb(u16),
    Msb(u16),
    /// Both bytes, low first; after the low byte it becomes `Msb`.
    Word(u16),
}

/// The status byte's null-count bit: 1 from a control word or count write
/// until the count register has been transferred into the counting element.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NullCount {
    Clear,
    /// No transfer scheduled yet (no count written, or modes 1/5 awaiting a
    /// gate trigger).
    Pending,
    /// Transferred on the first input clock after this instant.
    UntilTickAfter(Duration),
}

/// One counter of the 8254.
#[derive(Debug, Clone)]
struct Channel {
    /// Mode field M2-M0 in place in the control word ([`Mode::MASK`]), as
    /// written: the status byte reports 6 and 7 as such, while [`Self::mode`]
    /// decodes them as 2 and 3.
    mode_bits: u8,
    /// Access mode RW1-RW0 (never [`Access::Latch`]: that is a command).
    access: Access,
    bcd: bool,
    gate: bool,
    /// Count register: the last count written (1..=modulus; 0 was mapped).
    cr: u32,
    /// Count the current counting cycle runs with (1..=modulus).
    reload: u32,
    /// A count was written since the last control word.
    armed: bool,
    /// Modes 1 and 5: a gate rising edge started the current cycle.
    triggered: bool,
    /// When counting (re)started.
    start: Duration,
    /// Input clocks counted before `start` (gate pauses in modes 0 and 4).
    base: u64,
    /// Count shown while the channel does not count (after a control word,
    /// before a trigger): the counting element simply keeps its value.
    held: u32,
    read_state: ByteState,
    write_state: ByteState,
    write_latch: u8,
    count_latch: CountLatch,
    status_latch: Option<u8>,
    null_count: NullCount,
    /// Rising OUT edges of the current counting basis already accounted for.
    edges_taken: u64,
    /// Edges of earlier bases (before reprogramming) not yet taken.
    edges_pending: u64,
    /// When the earliest of `edges_pending` happened.
    pending_since: Option<Duration>,
}

impl Channel {
    fn new(gate: bool) -> Self {
        Self {
            // Unprogrammed: QEMU's reset mode, no count, nothing running.
            mode_bits: Mode::SquareWave.bits(),
            access: Access::LowHigh,
            bcd: false,
            gate,
            cr: 0x1_0000,
            reload: 0x1_0000,
            armed: false,
            triggered: false,
            start: Duration::ZERO,
            base: 0,
            held: 0,
            read_state: ByteState::WordLow,
            write_state: ByteState::WordLow,
            write_latch: 0,
            count_latch: CountLatch::None,
            status_latch: None,
            null_count: NullCount::Clear,
            edges_taken: 0,
            edges_pending: 0,
            pending_since: None,
        }
    }

    /// Effective mode: 6 and 7 are 2 and 3 with a don't-care bit.
    fn mode(&self) -> Mode {
        Mode::from_u8(self.mode_bits)
    }

    fn modulus(&self) -> u32 {
        if self.bcd {
            10_000
        } else {
            0x1_0000
        }
    }

    /// Whether the counting element is running (or paused by the gate) with
    /// `reload`, as opposed to waiting for a count or a trigger.
    fn counting(&self) -> bool {
        self.armed && (self.triggered || !waits_for_trigger(self.mode()))
    }

    /// A low gate disables counting in these modes.
    fn paused(&self) -> bool {
        !self.gate && gate_stops_counting(self.mode())
    }

    /// Input clocks counted in the current cycle.
    fn elapsed_ticks(&self, now: Duration) -> u64 {
        if self.paused() {
            self.base
        } else {
            self.base
                .saturating_add(ticks(now.saturating_sub(self.start)))
        }
    }

    /// The counting element's value (may equal the modulus for a reload of
    /// 0 at the start of a cycle; [`Self::encode`] wraps it).
    fn count(&self, now: Duration) -> u32 {
        if !self.counting() {
            return self.held;
        }
        let n = u64::from(self.reload.max(1));
        let d = self.elapsed_ticks(now);
        let value = match self.mode() {
            Mode::RateGenerator => n - d % n,
            Mode::SquareWave => square_wave_count(n, d % n),
            _ => {
                // One-shot modes keep decrementing past zero and wrap.
                let m = u64::from(self.modulus());
                (n % m + m - d % m) % m
            }
        };
        // value <= n <= 65536.
        value as u32
    }

    /// OUT level.
    fn out(&self, now: Duration) -> bool {
        let mode = self.mode();
        if !self.armed {
            // Initial level after a control word.
            return mode != Mode::InterruptOnTerminalCount;
        }
        if !self.counting() {
            // Modes 1 and 5 idle high until triggered.
            return true;
        }
        let n = u64::from(self.reload.max(1));
        let d = self.elapsed_ticks(now);
        match mode {
            Mode::InterruptOnTerminalCount | Mode::OneShot => d >= n,
            // Low for the one clock while the count is 1 (reload 1 is illegal
            // and keeps OUT high); a low gate forces OUT high.
            Mode::RateGenerator => self.paused() || n < 2 || d % n != n - 1,
            Mode::SquareWave => self.paused() || d % n < n.div_ceil(2),
            // Low for the one clock at terminal count.
            Mode::SoftwareStrobe | Mode::HardwareStrobe => d != n,
        }
    }

    fn null_count(&self, now: Duration) -> bool {
        match self.null_count {
            NullCount::Clear => false,
            NullCount::Pending => true,
            NullCount::UntilTickAfter(t) => ticks(now.saturating_sub(t)) == 0,
        }
    }

    fn status(&self, now: Duration) -> u8 {
        // The low six bits repeat the control word's access, mode and BCD.
        bit(self.out(now), status::OUTPUT)
            | bit(self.null_count(now), status::NULL_COUNT)
            | ((self.access as u8 | self.mode_bits | bit(self.bcd, BCD)) & status::CONTROL_MASK)
    }

    /// The 16-bit value the guest reads for count `value`.
    fn encode(&self, value: u32) -> u16 {
        if self.bcd {
            let v = value % 10_000;
            let digits = [v / 1000, v / 100 % 10, v / 10 % 10, v % 10];
            digits.iter().fold(0u16, |acc, &d| (acc << 4) | d as u16)
        } else {
            (value & 0xFFFF) as u16
        }
    }

    /// The count a written 16-bit value stands for: 1..=modulus.
    fn decode(&self, raw: u16) -> u32 {
        let value = if self.bcd {
            // Digits above 9 are not valid BCD; take them at face value.
            let v = (0..4).fold(0u32, |acc, i| {
                acc * 10 + u32::from((raw >> (12 - 4 * i)) & 0xF)
            });
            v % 10_000
        } else {
            u32::from(raw)
        };
        if value == 0 {
            self.modulus()
        } else {
            value
        }
    }

    // --- IRQ edge accounting -------------------------------------------

    /// Rising OUT edges since the current basis (start/base/reload) began.
    fn edges_since_basis(&self, now: Duration) -> u64 {
        if !self.counting() || self.paused() {
            return 0;
        }
        let n = u64::from(self.reload.max(1));
        match self.mode() {
            Mode::RateGenerator | Mode::SquareWave => {
                if period_is_clamped(self.reload) {
                    let ns = now.saturating_sub(self.start).as_nanos();
                    u64::try_from(ns / MIN_IRQ0_PERIOD.as_nanos()).unwrap_or(u64::MAX)
                } else {
                    // One edge at every multiple of n (period boundaries).
                    self.elapsed_ticks(now) / n - self.base / n
                }
            }
            mode => {
                let at = one_shot_edge_tick(mode, n);
                u64::from(self.base < at && self.elapsed_ticks(now) >= at)
            }
        }
    }

    /// Clock time of the `k`-th (1-based) rising edge of the current basis.
    fn edge_time(&self, k: u64) -> Option<Duration> {
        if !self.counting() || self.paused() || k == 0 {
            return None;
        }
        let n = u64::from(self.reload.max(1));
        let offset = match self.mode() {
            Mode::RateGenerator | Mode::SquareWave => {
                if period_is_clamped(self.reload) {
                    nanos_to_duration(u128::from(k).saturating_mul(MIN_IRQ0_PERIOD.as_nanos()))
                } else {
                    let target = (u128::from(self.base / n) + u128::from(k)) * u128::from(n);
                    ticks_to_duration(target - u128::from(self.base))
                }
            }
            mode => {
                let at = one_shot_edge_tick(mode, n);
                if k != 1 || self.base >= at {
                    return None;
                }
                ticks_to_duration(u128::from(at - self.base))
            }
        };
        self.start.checked_add(offset)
    }

    /// Moves the edges of the current basis up to `now` into the pending
    /// count. Must be followed by a change of basis that starts at `now`.
    fn settle(&mut self, now: Duration) {
        let total = self.edges_since_basis(now);
        let new = total.saturating_sub(self.edges_taken);
        if new > 0 {
            if self.pending_since.is_none() {
                self.pending_since = self.edge_time(self.edges_taken + 1);
            }
            self.edges_pending = self.edges_pending.saturating_add(new);
        }
        self.edges_taken = 0;
    }

    fn take_edges(&mut self, now: Duration) -> u64 {
        let total = self.edges_since_basis(now);
        let new = total.saturating_sub(self.edges_taken);
        self.edges_taken = self.edges_taken.max(total);
        self.pending_since = None;
        std::mem::take(&mut self.edges_pending).saturating_add(new)
    }

    fn next_edge(&self) -> Option<Duration> {
        self.pending_since
            .or_else(|| self.edge_time(self.edges_taken.saturating_add(1)))
    }

    // --- guest accesses ----------------------------------------------------

    /// Control word for this channel whose access is not [`Access::Latch`].
    fn program(&mut self, value: u8, now: Duration) {
        self.held = self.count(now);
        self.settle(now);
        self.armed = false;
        self.triggered = false;
        self.access = Access::from_u8(value);
        self.mode_bits = value & Mode::MASK;
        self.bcd = value & BCD != 0;
        self.read_state = ByteState::for_access(self.access);
        self.write_state = ByteState::for_access(self.access);
        self.null_count = NullCount::Pending;
    }

    /// Stops counting (control word semantics without the mode change).
    fn hold(&mut self, now: Duration) {
        if self.armed {
            self.held = self.count(now);
            self.settle(now);
            self.armed = false;
        }
    }

    fn latch_count(&mut self, now: Duration) {
        // A second latch before the first is read is ignored (datasheet).
        if self.count_latch == CountLatch::None {
            let v = self.encode(self.count(now));
            self.count_latch = match self.access {
                Access::LowByte => CountLatch::Lsb(v),
                Access::HighByte => CountLatch::Msb(v),
                // `Latch` is a command, never a channel's access mode.
                Access::LowHigh | Access::Latch => CountLatch::Word(v),
            };
        }
    }

    fn latch_status(&mut self, now: Duration) {
        if self.status_latch.is_none() {
            self.status_latch = Some(self.status(now));
        }
    }

    fn write_byte(&mut self, value: u8, now: Duration) {
        match self.write_state {
            ByteState::Lsb => self.load(u16::from(value), now),
            ByteState::Msb => self.load(u16::from(value) << 8, now),
            ByteState::WordLow => {
                self.write_latch = value;
                self.write_state = ByteState::WordHigh;
                // Mode 0: the first byte stops the count (and OUT is low).
                if self.mode() == Mode::InterruptOnTerminalCount {
                    self.hold(now);
                }
            }
            ByteState::WordHigh => {
                let raw = u16::from(self.write_latch) | (u16::from(value) << 8);
                self.write_state = ByteState::WordLow;
                self.load(raw, now);
            }
        }
    }

    /// A complete count was written.
    fn load(&mut self, raw: u16, now: Duration) {
        self.cr = self.decode(raw);
        if waits_for_trigger(self.mode()) {
            // Takes effect at the next gate trigger; a running one-shot goes on.
            self.armed = true;
            self.null_count = NullCount::Pending;
            return;
        }
        self.settle(now);
        self.reload = self.cr;
        self.armed = true;
        self.start = now;
        self.base = 0;
        self.null_count = NullCount::UntilTickAfter(now);
    }

    fn read_byte(&mut self, now: Duration) -> u8 {
        if let Some(status) = self.status_latch.take() {
            return status;
        }
        match self.count_latch {
            CountLatch::Lsb(v) => {
                self.count_latch = CountLatch::None;
                v as u8
            }
            CountLatch::Msb(v) => {
                self.count_latch = CountLatch::None;
                (v >> 8) as u8
            }
            CountLatch::Word(v) => {
                self.count_latch = CountLatch::Msb(v);
                v as u8
            }
            CountLatch::None => {
                let v = self.encode(self.count(now));
                match self.read_state {
                    ByteState::Lsb => v as u8,
                    ByteState::Msb => (v >> 8) as u8,
                    ByteState::WordLow => {
                        self.read_state = ByteState::WordHigh;
                        v as u8
                    }
                    ByteState::WordHigh => {
                        self.read_state = ByteState::WordLow;
                        (v >> 8) as u8
                    }
                }
            }
        }
    }

    fn set_gate(&mut self, gate: bool, now: Duration) {
        if gate == self.gate {
            return;
        }
        let mode = self.mode();
        if !gate {
            // Falling: pause modes 0/2/3/4 where they are.
            if self.counting() && gate_stops_counting(mode) {
                let d = self.elapsed_ticks(now);
                self.settle(now);
                self.base = d;
                self.start = now;
            }
            self.gate = false;
            return;
        }
        // Rising (settle first: while paused there are no new edges).
        self.settle(now);
        self.gate = true;
        match mode {
            // Resume where the count stopped.
            Mode::InterruptOnTerminalCount | Mode::SoftwareStrobe => self.start = now,
            // Retrigger: a fresh cycle from the count register.
            _ if self.armed => {
                self.reload = self.cr;
                self.start = now;
                self.base = 0;
                if waits_for_trigger(mode) {
                    self.triggered = true;
                    if self.null_count == NullCount::Pending {
                        self.null_count = NullCount::UntilTickAfter(now);
                    }
                }
            }
            _ => {}
        }
    }
}

/// Modes 1 and 5 count only after a gate rising edge (hardware trigger).
fn waits_for_trigger(mode: Mode) -> bool {
    matches!(mode, Mode::OneShot | Mode::HardwareStrobe)
}

/// A low gate stops counting in these modes (in 1 and 5 it only matters as
/// the trigger's rising edge).
fn gate_stops_counting(mode: Mode) -> bool {
    matches!(
        mode,
        Mode::InterruptOnTerminalCount
            | Mode::RateGenerator
            | Mode::SquareWave
            | Mode::SoftwareStrobe
    )
}

/// `mask` if `flag` is set, else 0: one bit of a status or port byte.
fn bit(flag: bool, mask: u8) -> u8 {
    if flag {
        mask
    } else {
        0
    }
}

/// Input clock at which a one-shot mode's OUT rises: terminal count for
/// modes 0 and 1, the end of the one-clock strobe for modes 4 and 5.
fn one_shot_edge_tick(mode: Mode, n: u64) -> u64 {
    if matches!(mode, Mode::SoftwareStrobe | Mode::HardwareStrobe) {
        n + 1
    } else {
        n
    }
}

/// Mode 3 count `p` clocks into a period of `n` (datasheet): even `n` counts
/// down by two from `n` in each half; odd `n` loads `n`, then `n - 1` and by
/// twos while OUT is high ((n+1)/2 clocks), then `n`, `n - 3` and by twos
/// while OUT is low ((n-1)/2 clocks).
fn square_wave_count(n: u64, p: u64) -> u64 {
    if n.is_multiple_of(2) {
        n - 2 * (p % (n / 2))
    } else {
        let high = n.div_ceil(2);
        if p < high {
            if p == 0 {
                n
            } else {
                n + 1 - 2 * p
            }
        } else {
            let q = p - high;
            if q == 0 {
                n
            } else {
                n - 1 - 2 * q
            }
        }
    }
}

/// The 8254 with its three channels and the port-B bits it owns.
///
/// A clone shares the clock (a clone of `C`) and copies every channel's
/// state, latches included: a probe can read a clone without disturbing the
/// original.
#[derive(Debug, Clone)]
pub struct Pit<C: Clock> {
    clock: C,
    channels: [Channel; 3],
    /// Port 0x61 bit 1: speaker data enable (stored, nothing to drive).
    speaker_data: bool,
}

impl<C: Clock> Pit<C> {
    /// A PIT in its power-on state: no channel programmed (so no IRQ0),
    /// channel 2's gate low.
    pub fn new(clock: C) -> Self {
        Self {
            clock,
            channels: [Channel::new(true), Channel::new(true), Channel::new(false)],
            speaker_data: false,
        }
    }

    /// The injected clock.
    pub fn clock(&self) -> &C {
        &self.clock
    }

    /// OUT level of `channel` (0-2) now; `false` for other channel numbers.
    pub fn out(&self, channel: usize) -> bool {
        let now = self.clock.now();
        self.channels.get(channel).is_some_and(|c| c.out(now))
    }

    /// Guest read of 0x40-0x43 or 0x61. Other ports read as 0xFF.
    pub fn read(&mut self, port: u16) -> u8 {
        let now = self.clock.now();
        match port {
            PIT_CHANNEL0..=PIT_CHANNEL2 => {
                self.channels[usize::from(port - PIT_CHANNEL0)].read_byte(now)
            }
            // Write-only; QEMU reads it as 0.
            PIT_COMMAND => 0,
            PORT_B => {
                let ch2 = &self.channels[2];
                let refresh = (now.as_nanos() / REFRESH_TOGGLE_NS) & 1 == 1;
                bit(ch2.gate, port_b::GATE2)
                    | bit(self.speaker_data, port_b::SPEAKER_DATA)
                    | bit(refresh, port_b::REFRESH)
                    | bit(ch2.out(now), port_b::OUT2)
            }
            _ => 0xFF,
        }
    }

    /// Guest write of 0x40-0x43 or 0x61. Other ports are ignored.
    pub fn write(&mut self, port: u16, value: u8) {
        let now = self.clock.now();
        match port {
            PIT_CHANNEL0..=PIT_CHANNEL2 => {
                self.channels[usize::from(port - PIT_CHANNEL0)].write_byte(value, now)
            }
            PIT_COMMAND => self.write_command(value, now),
            PORT_B => {
                // Bits 4 and 5 are read-only.
                self.speaker_data = value & port_b::SPEAKER_DATA != 0;
                self.channels[2].set_gate(value & port_b::GATE2 != 0, now);
            }
            _ => {}
        }
    }

    fn write_command(&mut self, value: u8, now: Duration) {
        let channel = match Select::from_u8(value) {
            Select::Channel0 => 0,
            Select::Channel1 => 1,
            Select::Channel2 => 2,
            Select::ReadBack => {
                // The latch bits are active low.
                for (i, ch) in self.channels.iter_mut().enumerate() {
                    if value & read_back::channel(i) == 0 {
                        continue;
                    }
                    if value & read_back::NO_COUNT == 0 {
                        ch.latch_count(now);
                    }
                    if value & read_back::NO_STATUS == 0 {
                        ch.latch_status(now);
                    }
                }
                return;
            }
        };
        let ch = &mut self.channels[channel];
        match Access::from_u8(value) {
            Access::Latch => ch.latch_count(now),
            Access::LowByte | Access::HighByte | Access::LowHigh => ch.program(value, now),
        }
    }

    /// Clock time of channel 0's next rising OUT edge not yet taken by
    /// [`Self::take_irq0_edges`], or `None` if none will come without
    /// reprogramming. It may lie in the past (edges happened, not taken
    /// yet): the caller should then fire at once. Periodic edges are spaced
    /// at least [`MIN_IRQ0_PERIOD`] apart.
    pub fn next_irq0_edge(&self) -> Option<Duration> {
        self.channels[0].next_edge()
    }

    /// Rising edges of channel 0's output since the last call, up to now:
    /// each edge is counted exactly once, including edges of an earlier
    /// programming that were not taken before the guest reprogrammed.
    pub fn take_irq0_edges(&mut self) -> u64 {
        let now = self.clock.now();
        self.channels[0].take_edges(now)
    }
}

/// Register offsets from the PIT's base port (0x40), as registered in the
/// machine's port map: channels and control word at 0x40-0x43, port B at 0x61.
pub mod offset {
    use shared::ports;

    /// Channel 0's data port; channels 1 and 2 and the control word follow.
    pub const CHANNEL0: u16 = 0;
    /// Port B (0x61): channel 2's gate and output, the speaker enable.
    pub const PORT_B: u16 = ports::PORT_B - ports::PIT_CHANNEL0;
}

impl<C: Clock + 'static> PortDevice for Pit<C> {
    fn name(&self) -> &'static str {
        "pit"
    }

    fn read(&mut self, offset: u16, data: &mut [u8]) -> Change {
        data.fill(Pit::read(self, PIT_CHANNEL0.wrapping_add(offset)));
        Change::NONE
    }

    fn write(&mut self, offset: u16, data: &[u8]) -> Change {
        let before = self.next_irq0_edge();
        for &value in data {
            Pit::write(self, PIT_CHANNEL0.wrapping_add(offset), value);
        }
        Change {
            deadline_moved: self.next_irq0_edge() != before,
            ..Change::NONE
        }
    }

    /// Power-on state on the same clock, so deadlines stay comparable.
    fn reset(&mut self) {
        self.channels = [Channel::new(true), Channel::new(true), Channel::new(false)];
        self.speaker_data = false;
    }

    fn next_deadline(&self) -> Option<Duration> {
        self.next_irq0_edge()
    }

    /// Channel 0's rising edges up to now, as timer ticks on IRQ0.
    fn on_deadline(&mut self) -> Change {
        match self.take_irq0_edges() {
            0 => Change::NONE,
            edges => Change::irq(0, IrqOutput::Ticks(edges)),
        }
    }
}

#[cfg(test)]
mod tests;
