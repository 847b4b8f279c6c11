//! Serial console on COM1: a 16550A driver (PC16550D datasheet).
//!
//! Output: the transmitter FIFO is enabled, so after the line status says
//! the transmitter holding register is empty (LSR.THRE: with the FIFO, the
//! whole 16-byte FIFO) the driver may write 16 bytes without looking again.
//! It keeps count of that room across calls and reads LSR only when it is
//! used up: under a hypervisor every port access is an exit, and an echoed
//! keystroke then costs one `out`, not an `in` and an `out`.
//!
//! Input: received data interrupts (IER.RDI) on IRQ4, the FIFO's trigger
//! level at 1 byte so a typed character is taken at once; the handler
//! drains the receiver while LSR.DR says a byte is there and queues the
//! bytes for the shell (`task::serial`).
//!
//! `print!`/`println!` may be called from any context, interrupt handlers
//! included: the port lock is only ever taken with interrupts disabled, so an
//! interrupt can never arrive while its own CPU holds the lock. The fatal paths
//! (panic, CPU exception) use [`emergency_write`], which does not wait for the
//! lock at all: the interrupted code may have been holding it.
//!
//! Output follows the usual serial-console convention (a tty's `onlcr`): `\n`
//! is sent as `\r\n`, so the console reads well on a raw terminal. All other
//! bytes, `\x08` included, go out unchanged (the shell decides what
//! Backspace looks like).
use core::fmt::{self, Write};
use shared::ports::COM1 as BASE;
use shared::uart::{fcr, ier, iir, lcr, lsr, mcr, reg, FIFO_SIZE};
use spin::Mutex;
use x86_64::instructions::port::Port;

use crate::stats;
use crate::task::serial::push_with_interrupts_off;

/// The transmitter, with the room it is known to have.
struct Transmitter {
    /// Bytes THR takes before LSR must be read again.
    room: usize,
    /// Bytes the transmitter takes per THRE: 16 with the FIFO, 1 without.
    burst: usize,
}

static COM1: Mutex<Option<Transmitter>> = Mutex::new(None);

fn read(offset: u16) -> u8 {
    // SAFETY: COM1's eight ports belong to a 16550 on every machine we boot
    // on (QEMU `pc`, our VMM); port I/O touches no memory. Reads of RBR take
    // a received byte: only the IRQ4 handler reads it.
    unsafe { Port::<u8>::new(BASE + offset).read() }
}

fn write(offset: u16, value: u8) {
    // SAFETY: as in `read`; the register writes are the driver's own.
    unsafe { Port::<u8>::new(BASE + offset).write(value) }
}

/// Initialises the UART on COM1: 115200 baud 8N1, FIFOs on (receive
/// trigger 1 byte), DTR, RTS and OUT2 (the PC's interrupt gate), received
/// data interrupts off until [`start_input`]; received bytes wait in the UART.
pub fn init() {
    write(reg::IER, 0);
    write(reg::LCR, lcr::DLAB);
    write(reg::DATA, 1); // divisor 1: 115200 baud
    write(reg::IER, 0);
    write(reg::LCR, lcr::WORD_8N1);
    write(
        reg::IIR_FCR,
        fcr::ENABLE | fcr::CLEAR_RX | fcr::CLEAR_TX | fcr::TRIGGER_1,
    );
    // An 8250/16450 has no FIFO: then one byte per THRE.
    let burst = if read(reg::IIR_FCR) & iir::FIFO_ENABLED == iir::FIFO_ENABLED {
        FIFO_SIZE
    } else {
        1
    };
    write(reg::MCR, mcr::DTR | mcr::RTS | mcr::OUT2);
    x86_64::instructions::interrupts::without_interrupts(|| {
        *COM1.lock() = Some(Transmitter { room: 0, burst })
    });
}

impl Transmitter {
    fn send(&mut self, byte: u8) {
        if self.room == 0 {
            while read(reg::LSR) & lsr::THRE == 0 {
                core::hint::spin_loop();
            }
            self.room = self.burst;
        }
        write(reg::DATA, byte);
        self.room -= 1;
    }
}

/// Turns on received data interrupts. Call once the receive queue exists,
/// the PICs are initialised and IRQ4 is unmasked: the UART's interrupt
/// output is a level, and the 8259's edge-triggered input takes only a
/// rising edge, so it is taken low first (IER off) and then raised for
/// bytes already waiting.
pub fn start_input() {
    write(reg::IER, 0);
    write(reg::IER, ier::RDI);
}

/// IRQ4: every byte the receiver holds into the queue.
pub fn on_interrupt() {
    stats::SERIAL_IRQS.inc();
    loop {
        let status = read(reg::LSR);
        if status & lsr::OE != 0 {
            stats::SERIAL_OVERRUNS.inc();
        }
        if status & lsr::DR == 0 {
            return;
        }
        let byte = read(reg::DATA);
        stats::SERIAL_RX.inc();
        push_with_interrupts_off(byte);
    }
}

/// Adapter doing the `\n` -> `\r\n` translation on top of raw sends.
struct Console<'a>(&'a mut Transmitter);

impl Write for Console<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for byte in s.bytes() {
            if byte == b'\n' {
                self.0.send(b'\r');
            }
            self.0.send(byte);
        }
        Ok(())
    }
}

#[doc(hidden)]
pub fn _print(args: fmt::Arguments) {
    x86_64::instructions::interrupts::without_interrupts(|| {
        if let Some(port) = COM1.lock().as_mut() {
            let _ = Console(port).write_fmt(args);
        }
    });
}

/// Writes `text` as it is, without the formatting machinery: the keystroke
/// echo runs once per key, and under an emulating hypervisor every guest
/// instruction of `core::fmt` costs a microsecond or more.
pub fn write_str(text: &str) {
    x86_64::instructions::interrupts::without_interrupts(|| {
        if let Some(port) = COM1.lock().as_mut() {
            let _ = Console(port).write_str(text);
        }
    });
}

/// Writes to COM1 without taking the console lock: for the fatal paths only,
/// which may have interrupted a holder of the lock and never return to it.
/// It knows nothing of the room the locked transmitter counted, so it waits
/// for THRE before every byte.
pub fn emergency_write(args: fmt::Arguments) {
    x86_64::instructions::interrupts::disable();
    let mut port = Transmitter { room: 0, burst: 1 };
    let _ = Console(&mut port).write_fmt(args);
}

/// Prints to the serial console.
#[macro_export]
macro_rules! print {
    ($($arg:tt)*) => ($crate::drivers::serial::_print(format_args!($($arg)*)));
}

/// Prints to the serial console, with a newline.
#[macro_export]
macro_rules! println {
    () => ($crate::print!("\n"));
    ($($arg:tt)*) => ($crate::print!("{}\n", format_args!($($arg)*)));
}

/// Prints on the fatal paths, bypassing the console lock.
#[macro_export]
macro_rules! emergency_println {
    ($($arg:tt)*) => ($crate::drivers::serial::emergency_write(format_args!("{}\n", format_args!($($arg)*))));
}
