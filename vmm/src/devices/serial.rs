//! COM1: a 16550A UART (`vm-superio`) whose transmitted bytes go to an
//! output its owner chooses, and whose interrupt is a pulse on its pin.
//!
//! The UART runs on the vCPU thread under the machine lock, so its output
//! must never block on the host: the machine gives it a writer that only
//! queues (see `vm::console`: the serial tap for `expect`, and a queue that
//! a writer thread drains to stdout). The device knows nothing of either.
//!
//! `vm-superio` signals its interrupt through a [`Trigger`]; ours only sets a
//! flag, which the next [`Change`] reports as a pulse on pin 0 (IRQ4), so
//! this device stays a plain state machine.
use std::convert::Infallible;
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use vm_superio::{Serial, Trigger};

use crate::device::{Change, IrqOutput, PortDevice};

/// A [`Trigger`] that records that the UART raised its interrupt.
#[derive(Debug, Clone, Default)]
pub struct IrqLatch(Arc<AtomicBool>);

impl Trigger for IrqLatch {
    type E = Infallible;

    fn trigger(&self) -> Result<(), Infallible> {
        self.0.store(true, Ordering::Relaxed);
        Ok(())
    }
}

/// Where the UART's transmitted bytes go. It must not block: it is written
/// on the vCPU thread with the machine lock held.
pub type SerialOutput = Box<dyn Write + Send>;

/// Discards everything (the placeholder while the UART is rebuilt).
struct Discard;

impl Write for Discard {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The COM1 UART.
pub struct Com1 {
    uart: Serial<IrqLatch, vm_superio::serial::NoEvents, SerialOutput>,
    irq: IrqLatch,
}

impl Com1 {
    /// A UART in its reset state, transmitting to `output`.
    pub fn new(output: SerialOutput) -> Self {
        let irq = IrqLatch::default();
        Self {
            uart: Serial::new(irq.clone(), output),
            irq,
        }
    }

    /// Guest read of register `offset` (0-7).
    pub fn read(&mut self, offset: u8) -> u8 {
        self.uart.read(offset)
    }

    /// Guest write of register `offset` (0-7).
    pub fn write(&mut self, offset: u8, value: u8) {
        // Our trigger and writer never fail.
        if let Err(error) = self.uart.write(offset, value) {
            log::debug!("serial: write {offset}={value:#04x}: {error:?}");
        }
    }

    /// Machine reset: the UART back to its power-on registers, its output
    /// still going where it went. (`vm-superio` has no in-place reset: the
    /// UART is rebuilt around its writer, with a throwaway in between.)
    pub fn reset(&mut self) {
        let irq = IrqLatch::default();
        let placeholder: SerialOutput = Box::new(Discard);
        let old = std::mem::replace(&mut self.uart, Serial::new(irq.clone(), placeholder));
        self.uart = Serial::new(irq.clone(), old.into_writer());
        self.irq = irq;
    }

    /// Whether the UART raised its interrupt since the last call.
    pub fn take_irq(&mut self) -> bool {
        self.irq.0.swap(false, Ordering::Relaxed)
    }
}

impl PortDevice for Com1 {
    fn name(&self) -> &'static str {
        "com1"
    }

    fn read(&mut self, offset: u16, data: &mut [u8]) -> Change {
        // Offsets beyond the eight registers never reach us (the port map
        // registers eight ports); the truncation is only for the type.
        data.fill(Com1::read(self, offset as u8));
        self.irq_change()
    }

    fn write(&mut self, offset: u16, data: &[u8]) -> Change {
        for &value in data {
            Com1::write(self, offset as u8, value);
        }
        self.irq_change()
    }

    fn reset(&mut self) {
        Com1::reset(self);
    }
}

impl Com1 {
    /// The UART's interrupt as a pulse on pin 0, if it raised one.
    fn irq_change(&mut self) -> Change {
        if self.take_irq() {
            Change::irq(0, IrqOutput::Pulse)
        } else {
            Change::NONE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// An output that keeps what was transmitted.
    #[derive(Clone, Default)]
    struct Capture(Arc<Mutex<Vec<u8>>>);

    impl Write for Capture {
        fn write(&mut self, data: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(data);
            Ok(data.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn transmitted_bytes_reach_the_output_and_raise_thre_interrupt() {
        let out = Capture::default();
        let mut com1 = Com1::new(Box::new(out.clone()));
        com1.write(1, 0x02); // IER: transmitter holding register empty
        assert!(com1.take_irq());
        assert!(!com1.take_irq());
        // Reading IIR acknowledges THRE, so the next transmission raises it again.
        assert_eq!(com1.read(2) & 0x0f, 0x02);
        for byte in b"hi\n" {
            com1.write(0, *byte);
        }
        assert_eq!(*out.0.lock().unwrap(), b"hi\n");
        assert!(com1.take_irq());
        // Line status: transmitter empty.
        assert_ne!(com1.read(5) & 0x20, 0);
    }

    /// Through the device interface the interrupt is a pulse on pin 0, and a
    /// reset keeps the output.
    #[test]
    fn interrupt_is_a_pulse_and_reset_keeps_the_output() {
        let out = Capture::default();
        let mut com1 = Com1::new(Box::new(out.clone()));
        let change = PortDevice::write(&mut com1, 1, &[0x02]);
        assert_eq!(change.irq[0], Some(IrqOutput::Pulse));
        PortDevice::reset(&mut com1);
        let mut ier = [0xAA];
        assert_eq!(PortDevice::read(&mut com1, 1, &mut ier), Change::NONE);
        assert_eq!(ier, [0], "IER at power-on");
        let _ = PortDevice::write(&mut com1, 0, b"x");
        assert_eq!(*out.0.lock().unwrap(), b"x");
    }
}
