//! COM1: a 16550A UART (PC16550D datasheet), modelled as QEMU's
//! `hw/char/serial.c` does, with its transmitted bytes going to an output its
//! owner chooses and its received bytes coming from a host queue.
//!
//! Transmitter: the output never blocks (the machine gives the UART a writer
//! that only queues, see `vm::console`), so, as QEMU with a backend that
//! takes every byte, a byte written to THR is sent at once: with the FIFO
//! enabled it goes through the 16-byte TX FIFO and out, and LSR.THRE/TEMT are
//! set again before the guest's next access. The THR write first clears THRE
//! and the THRE interrupt, then the completed transmission sets them again,
//! so each write gives an enabled THRE interrupt a fresh edge (as in QEMU).
//! A driver may therefore write up to 16 bytes per THRE it sees (the FIFO's
//! depth); more would overwrite the oldest, as QEMU's TX FIFO does.
//!
//! Receiver: host input ([`Com1::host_input`]) waits in an unbounded queue
//! in front of the UART and enters it only as it has room, with QEMU's
//! `serial_can_receive` rule: without the FIFO, one byte when LSR.DR is
//! clear; with it, up to the trigger level at once and then one byte per
//! byte the guest reads, never beyond 16. So a slow guest loses nothing:
//! host bytes wait in the queue, not in the FIFO, and LSR.OE (overrun) only
//! happens in loopback mode, where the UART receives what it sends whatever
//! its room, as the datasheet says. Each received burst and each RBR read
//! that leaves bytes in the FIFO (re)starts the character timeout: 4
//! character times at the programmed baud rate and frame, after which a FIFO
//! holding fewer bytes than its trigger level raises the timeout interrupt
//! (IIR 0x0C), as QEMU's `fifo_timeout_int`.
//!
//! Interrupts, by the datasheet's priority: receiver line status (OE/BI with
//! IER.RLSI), character timeout and received data (IER.RDI; data at or above
//! the trigger level, or any with the FIFO off), THR empty (IER.THRI, cleared
//! by reading IIR or writing THR), modem status (IER.MSI). The UART's output
//! is a level on its pin (IRQ4 in the port map); like QEMU it is not gated by
//! MCR.OUT2.
use std::collections::VecDeque;
use std::io::Write;
use std::time::Duration;

use shared::uart::{fcr, ier, iir, lcr, lsr, mcr, reg, BAUD_BASE, FIFO_SIZE};

use crate::clock::Clock;
use crate::device::{Change, IrqOutput, PortDevice};

/// Where the UART's transmitted bytes go. It must not block: it is written
/// on the vCPU thread with the machine lock held.
pub type SerialOutput = Box<dyn Write + Send>;

/// MSR bits QEMU reports with nothing attached: carrier, data set ready and
/// clear to send.
const MSR_IDLE: u8 = 0xB0;
/// MSR's delta bits (any change since the last read).
const MSR_ANY_DELTA: u8 = 0x0F;
/// LSR bits that raise the receiver line status interrupt (OE, PE, FE, BI).
const LSR_INT_ANY: u8 = 0x1E;
/// Power-on divisor (9600 baud, as QEMU).
const RESET_DIVISOR: u16 = 0x0C;

/// Counters for `--stats`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SerialStats {
    /// Bytes the guest read from RBR that came from the host.
    pub rx_bytes: u64,
    /// Bytes lost to receiver overrun (loopback only: host input waits).
    pub rx_overruns: u64,
    /// Bytes transmitted.
    pub tx_bytes: u64,
}

/// The COM1 UART.
pub struct Com1 {
    output: SerialOutput,
    clock: Box<dyn Clock>,
    rbr: u8,
    ier: u8,
    /// The IIR's FIFO bits (6-7); the identification is computed.
    iir_fifo: u8,
    lcr: u8,
    mcr: u8,
    lsr: u8,
    msr: u8,
    scr: u8,
    /// FCR bits that stick (enable and trigger level).
    fcr: u8,
    divisor: u16,
    /// The THRE interrupt is pending (cleared by an IIR read naming it).
    thr_ipending: bool,
    /// The character timeout interrupt is pending (cleared by an RBR read).
    timeout_ipending: bool,
    rx_fifo: VecDeque<u8>,
    /// Receiver trigger level in bytes (1, 4, 8 or 14).
    rx_trigger: usize,
    /// When the character timeout fires, if armed.
    timeout_at: Option<Duration>,
    /// Host bytes not yet in the UART.
    host: VecDeque<u8>,
    /// The interrupt pin's level.
    pin: bool,
    stats: SerialStats,
}

/// How one access moved the interrupt pin.
struct PinTrack {
    before: bool,
    dropped: bool,
}

impl Com1 {
    /// A UART in its reset state, transmitting to `output`; the character
    /// timeout runs on `clock`.
    pub fn new(output: SerialOutput, clock: impl Clock + 'static) -> Self {
        let mut uart = Self {
            output,
            clock: Box::new(clock),
            rbr: 0,
            ier: 0,
            iir_fifo: 0,
            lcr: 0,
            mcr: 0,
            lsr: 0,
            msr: 0,
            scr: 0,
            fcr: 0,
            divisor: RESET_DIVISOR,
            thr_ipending: false,
            timeout_ipending: false,
            rx_fifo: VecDeque::with_capacity(FIFO_SIZE),
            rx_trigger: 1,
            timeout_at: None,
            host: VecDeque::new(),
            pin: false,
            stats: SerialStats::default(),
        };
        uart.power_on();
        uart
    }

    /// The registers as after a reset (QEMU's `serial_reset`).
    fn power_on(&mut self) {
        self.rbr = 0;
        self.ier = 0;
        self.iir_fifo = 0;
        self.lcr = 0;
        self.lsr = lsr::TEMT | lsr::THRE;
        self.msr = MSR_IDLE;
        self.divisor = RESET_DIVISOR;
        self.mcr = mcr::OUT2;
        self.scr = 0;
        self.fcr = 0;
        self.rx_trigger = 1;
        self.rx_fifo.clear();
        self.thr_ipending = false;
        self.timeout_ipending = false;
        self.timeout_at = None;
        self.pin = false;
    }

    /// Host bytes for the guest: queued, and fed into the UART as it has
    /// room. Returns what changed (the interrupt pin, the timeout).
    pub fn host_input(&mut self, bytes: &[u8]) -> Change {
        let track = self.track();
        let timeout = self.timeout_at;
        self.host.extend(bytes);
        self.feed();
        self.finish(track, timeout, false)
    }

    /// Host bytes not yet read by the guest (queued or in the UART).
    pub fn pending_input(&self) -> usize {
        let held = if self.fifo_enabled() {
            self.rx_fifo.len()
        } else {
            usize::from(self.lsr & lsr::DR != 0)
        };
        self.host.len() + held
    }

    /// The UART's counters.
    pub fn stats(&self) -> SerialStats {
        self.stats
    }

    fn fifo_enabled(&self) -> bool {
        self.fcr & fcr::ENABLE != 0
    }

    fn loopback(&self) -> bool {
        self.mcr & mcr::LOOP != 0
    }

    /// How many bytes the receiver takes now (QEMU's `serial_can_receive`).
    fn can_receive(&self) -> usize {
        if self.fifo_enabled() {
            let held = self.rx_fifo.len();
            if held >= FIFO_SIZE {
                0
            } else if held <= self.rx_trigger {
                self.rx_trigger - held
            } else {
                1
            }
        } else {
            usize::from(self.lsr & lsr::DR == 0)
        }
    }

    /// Moves host bytes into the receiver while it has room (not in
    /// loopback, where the receiver hears only the transmitter).
    fn feed(&mut self) {
        if self.loopback() {
            return;
        }
        let room = self.can_receive().min(self.host.len());
        if room > 0 {
            let bytes: Vec<u8> = self.host.drain(..room).collect();
            self.receive(&bytes);
        }
    }

    /// Bytes arrive on the serial line (QEMU's `serial_receive1`).
    fn receive(&mut self, bytes: &[u8]) {
        if self.fifo_enabled() {
            for &byte in bytes {
                if self.rx_fifo.len() < FIFO_SIZE {
                    self.rx_fifo.push_back(byte);
                } else {
                    // Overruns do not overwrite the FIFO.
                    self.lsr |= lsr::OE;
                    self.stats.rx_overruns += 1;
                }
            }
            self.lsr |= lsr::DR;
            self.arm_timeout();
        } else if let Some(&byte) = bytes.last() {
            if self.lsr & lsr::DR != 0 || bytes.len() > 1 {
                self.lsr |= lsr::OE;
                self.stats.rx_overruns += 1;
            }
            self.rbr = byte;
            self.lsr |= lsr::DR;
        }
    }

    /// Time to send one frame at the programmed rate: start bit, data bits,
    /// parity, stop bits.
    fn char_time(&self) -> Duration {
        let data = u64::from(self.lcr & 0x03) + 5;
        let parity = u64::from(self.lcr & 0x08 != 0);
        let stop = if self.lcr & 0x04 != 0 { 2 } else { 1 };
        let bits = 1 + data + parity + stop;
        let divisor = u64::from(self.divisor.max(1));
        Duration::from_nanos(bits * divisor * 1_000_000_000 / u64::from(BAUD_BASE))
    }

    fn arm_timeout(&mut self) {
        self.timeout_at = Some(self.clock.now() + 4 * self.char_time());
    }

    /// The pending interrupt with the highest priority (QEMU's
    /// `serial_update_irq`), as IIR's low bits.
    fn identify(&self) -> u8 {
        let rdi = self.ier & ier::RDI != 0;
        if self.ier & ier::RLSI != 0 && self.lsr & LSR_INT_ANY != 0 {
            iir::RLSI
        } else if rdi && self.timeout_ipending {
            // IER.RDI also masks the timeout: not in the datasheet, but what
            // QEMU does and what hardware is observed to do.
            iir::CTI
        } else if rdi
            && self.lsr & lsr::DR != 0
            && (!self.fifo_enabled() || self.rx_fifo.len() >= self.rx_trigger)
        {
            iir::RDI
        } else if self.ier & ier::THRI != 0 && self.thr_ipending {
            iir::THRI
        } else if self.ier & ier::MSI != 0 && self.msr & MSR_ANY_DELTA != 0 {
            iir::MSI
        } else {
            iir::NO_INT
        }
    }

    fn track(&self) -> PinTrack {
        PinTrack {
            before: self.pin,
            dropped: false,
        }
    }

    /// Sets the pin from the pending interrupts, noting a fall in `track`.
    fn update_irq(&mut self, track: &mut PinTrack) {
        let level = self.identify() != iir::NO_INT;
        if self.pin && !level {
            track.dropped = true;
        }
        self.pin = level;
    }

    /// The change of one access: the pin (a fall and rise within it is a
    /// fresh edge), whether the timeout moved, whether host input was read.
    fn finish(&mut self, mut track: PinTrack, timeout: Option<Duration>, consumed: bool) -> Change {
        self.update_irq(&mut track);
        let output = match (track.before, track.dropped, self.pin) {
            (_, true, true) => Some(IrqOutput::Reassert),
            (before, _, now) if before != now => Some(IrqOutput::Level(now)),
            _ => None,
        };
        let mut change = match output {
            Some(output) => Change::irq(0, output),
            None => Change::NONE,
        };
        change.deadline_moved = self.timeout_at != timeout;
        change.input_consumed = consumed;
        change
    }

    /// A transmitted byte (QEMU's `serial_xmit` with a backend that takes
    /// everything): out, or back into the receiver in loopback mode.
    fn transmit(&mut self, byte: u8) {
        if self.loopback() {
            self.receive(&[byte]);
        } else {
            self.stats.tx_bytes += 1;
            // Our outputs only queue; an error has nowhere to go.
            if let Err(error) = self.output.write_all(&[byte]) {
                log::debug!("serial: output failed: {error}");
            }
        }
    }

    /// Guest read of register `offset` (0-7).
    pub fn read(&mut self, offset: u16) -> (u8, Change) {
        let track = self.track();
        let timeout = self.timeout_at;
        let mut consumed = false;
        let value = match offset {
            reg::DATA if self.lcr & lcr::DLAB != 0 => self.divisor as u8,
            reg::DATA => {
                let value = if self.fifo_enabled() {
                    let value = self.rx_fifo.pop_front();
                    consumed = value.is_some();
                    if self.rx_fifo.is_empty() {
                        self.lsr &= !(lsr::DR | lsr::BI);
                        self.timeout_at = None;
                    } else {
                        self.arm_timeout();
                    }
                    self.timeout_ipending = false;
                    value.unwrap_or(0)
                } else {
                    consumed = self.lsr & lsr::DR != 0;
                    self.lsr &= !(lsr::DR | lsr::BI);
                    self.rbr
                };
                if consumed && !self.loopback() {
                    self.stats.rx_bytes += 1;
                }
                // The next host byte arrives in the same instant, before the
                // interrupt is re-evaluated: a driver reading while LSR.DR is
                // set takes a burst in one interrupt, with no stale edge left
                // latched in the 8259 behind it.
                self.feed();
                value
            }
            reg::IER if self.lcr & lcr::DLAB != 0 => (self.divisor >> 8) as u8,
            reg::IER => self.ier,
            reg::IIR_FCR => {
                let id = self.identify();
                if id == iir::THRI {
                    self.thr_ipending = false;
                }
                id | self.iir_fifo
            }
            reg::LCR => self.lcr,
            reg::MCR => self.mcr,
            reg::LSR => {
                let value = self.lsr;
                self.lsr &= !(lsr::BI | lsr::OE);
                value
            }
            reg::MSR if self.loopback() => {
                // The modem outputs wired back to the inputs.
                ((self.mcr & 0x0c) << 4) | ((self.mcr & 0x02) << 3) | ((self.mcr & 0x01) << 5)
            }
            reg::MSR => {
                let value = self.msr;
                self.msr &= !MSR_ANY_DELTA;
                value
            }
            _ => self.scr,
        };
        (value, self.finish(track, timeout, consumed))
    }

    /// Guest write of `value` to register `offset` (0-7).
    pub fn write(&mut self, offset: u16, value: u8) -> Change {
        let mut track = self.track();
        let timeout = self.timeout_at;
        match offset {
            reg::DATA if self.lcr & lcr::DLAB != 0 => {
                self.divisor = (self.divisor & 0xff00) | u16::from(value);
            }
            reg::DATA => {
                // Into the holding register / FIFO: not empty for a moment,
                // so the THRE interrupt drops...
                self.thr_ipending = false;
                self.lsr &= !(lsr::THRE | lsr::TEMT);
                self.update_irq(&mut track);
                // ... and the byte goes out at once: empty again.
                self.transmit(value);
                self.lsr |= lsr::THRE | lsr::TEMT;
                self.thr_ipending = true;
            }
            reg::IER if self.lcr & lcr::DLAB != 0 => {
                self.divisor = (self.divisor & 0x00ff) | (u16::from(value) << 8);
            }
            reg::IER => {
                self.ier = value & 0x0f;
                if self.lsr & lsr::THRE != 0 {
                    self.thr_ipending = true;
                }
            }
            reg::IIR_FCR => self.write_fcr(value),
            reg::LCR => self.lcr = value,
            reg::MCR => {
                let was_loop = self.loopback();
                self.mcr = value & 0x1f;
                if was_loop && !self.loopback() {
                    self.feed();
                }
            }
            reg::LSR | reg::MSR => {} // read-only (factory test registers)
            _ => self.scr = value,
        }
        self.finish(track, timeout, false)
    }

    /// FIFO control (QEMU's FCR write).
    fn write_fcr(&mut self, mut value: u8) {
        if value == self.fcr {
            return;
        }
        // Enabling or disabling the FIFOs clears them.
        if (value ^ self.fcr) & fcr::ENABLE != 0 {
            value |= fcr::CLEAR_RX | fcr::CLEAR_TX;
        }
        if value & fcr::CLEAR_RX != 0 {
            // What the guest had not read yet goes back to the host queue:
            // a cleared receiver must not lose host input.
            self.return_unread();
            self.timeout_at = None;
            self.timeout_ipending = false;
            self.lsr &= !(lsr::DR | lsr::BI);
        }
        // The TX FIFO is always empty here: bytes leave as they are written.
        if value & fcr::ENABLE != 0 {
            self.iir_fifo = iir::FIFO_ENABLED;
            self.rx_trigger = match value & 0xC0 {
                fcr::TRIGGER_1 => 1,
                fcr::TRIGGER_4 => 4,
                fcr::TRIGGER_8 => 8,
                _ => 14,
            };
        } else {
            self.iir_fifo = 0;
        }
        self.fcr = value & 0xC9;
        self.feed();
    }

    /// The character timeout is due: data left in the FIFO raises the
    /// timeout interrupt.
    fn on_timeout(&mut self) -> Change {
        let track = self.track();
        let timeout = self.timeout_at;
        match self.timeout_at {
            Some(at) if at <= self.clock.now() => {
                self.timeout_at = None;
                if !self.rx_fifo.is_empty() {
                    self.timeout_ipending = true;
                }
            }
            _ => {}
        }
        self.finish(track, timeout, false)
    }

    /// Machine reset: the registers as at power-on, the output still going
    /// where it went. Host input is kept, the bytes the guest had not read
    /// from the FIFO included, so a reset loses nothing typed.
    pub fn reset(&mut self) {
        self.return_unread();
        self.power_on();
        self.feed();
    }

    /// Puts the received bytes the guest has not read (the FIFO, or RBR
    /// without it; none in loopback, which are the guest's own) back in
    /// front of the host queue.
    fn return_unread(&mut self) {
        let mut unread: Vec<u8> = self.rx_fifo.drain(..).collect();
        if !self.fifo_enabled() && self.lsr & lsr::DR != 0 {
            unread.push(self.rbr);
        }
        self.lsr &= !lsr::DR;
        if self.loopback() {
            return;
        }
        for byte in unread.into_iter().rev() {
            self.host.push_front(byte);
        }
    }
}

impl PortDevice for Com1 {
    fn name(&self) -> &'static str {
        "com1"
    }

    fn read(&mut self, offset: u16, data: &mut [u8]) -> Change {
        // Offsets beyond the eight registers never reach us (the port map
        // registers eight ports).
        let (value, change) = Com1::read(self, offset & 7);
        data.fill(value);
        change
    }

    fn write(&mut self, offset: u16, data: &[u8]) -> Change {
        let mut change = Change::NONE;
        for &value in data {
            change = change.then(Com1::write(self, offset & 7, value));
        }
        change
    }

    fn reset(&mut self) {
        Com1::reset(self);
    }

    fn next_deadline(&self) -> Option<Duration> {
        self.timeout_at
    }

    fn on_deadline(&mut self) -> Change {
        self.on_timeout()
    }
}

#[cfg(test)]
mod tests;
