//! COM1: a 16550A UART (`vm-superio`) whose output goes to a [`SerialTap`]
//! and to stdout, and whose interrupt is latched for the machine to route.
//!
//! The UART runs on the vCPU thread under the machine lock, so it must never
//! block on the host: stdout is reached through a [`StdoutSink`], a queue
//! that a writer thread drains (see `stdout_sink` for why a queue rather than
//! UART backpressure). The tap is fed first and directly, so `expect` sees
//! every byte at once whatever stdout does.
//!
//! `vm-superio` signals its interrupt through a [`Trigger`]; ours only sets a
//! flag. The machine takes the flag after every port access and pulses IRQ4
//! on the PIC, so this device stays a plain state machine.
use std::convert::Infallible;
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use vm_superio::{Serial, Trigger};

use crate::stdout_sink::StdoutSink;
use crate::vm::SerialTap;

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

/// Where transmitted bytes go: the tap, then the stdout queue (each byte
/// queued as it comes, and the writer woken, so interactive output is never
/// held back). Neither blocks on I/O.
pub struct SerialOutput {
    stdout: Option<&'static StdoutSink>,
    tap: SerialTap,
}

impl Write for SerialOutput {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.tap.push(data);
        if let Some(stdout) = self.stdout {
            stdout.push(data);
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        // The writer thread writes as soon as bytes are queued.
        Ok(())
    }
}

/// The COM1 UART.
pub struct Com1 {
    uart: Serial<IrqLatch, vm_superio::serial::NoEvents, SerialOutput>,
    irq: IrqLatch,
}

impl Com1 {
    /// A UART in its reset state. With `to_stdout` false, output goes only to
    /// `tap` (for embedding the VMM where stdout belongs to someone else).
    pub fn new(tap: SerialTap, to_stdout: bool) -> Self {
        let irq = IrqLatch::default();
        let out = SerialOutput {
            stdout: if to_stdout {
                StdoutSink::stdout()
            } else {
                None
            },
            tap,
        };
        Self {
            uart: Serial::new(irq.clone(), out),
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
        let placeholder = SerialOutput {
            stdout: None,
            tap: SerialTap::new(),
        };
        let old = std::mem::replace(&mut self.uart, Serial::new(irq.clone(), placeholder));
        self.uart = Serial::new(irq.clone(), old.into_writer());
        self.irq = irq;
    }

    /// Whether the UART raised its interrupt since the last call.
    pub fn take_irq(&mut self) -> bool {
        self.irq.0.swap(false, Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn transmitted_bytes_reach_the_tap_and_raise_thre_interrupt() {
        let tap = SerialTap::new();
        let mut com1 = Com1::new(tap.clone(), false);
        com1.write(1, 0x02); // IER: transmitter holding register empty
        assert!(com1.take_irq());
        assert!(!com1.take_irq());
        // Reading IIR acknowledges THRE, so the next transmission raises it again.
        assert_eq!(com1.read(2) & 0x0f, 0x02);
        for byte in b"hi\n" {
            com1.write(0, *byte);
        }
        assert_eq!(tap.wait_for(0, b"hi\n", Duration::ZERO), Ok(3));
        assert!(com1.take_irq());
        // Line status: transmitter empty.
        assert_ne!(com1.read(5) & 0x20, 0);
    }
}
