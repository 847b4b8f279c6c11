//! Serial console on COM1.
//!
//! `print!`/`println!` may be called from any context, interrupt handlers
//! included: the port lock is only ever taken with interrupts disabled, so an
//! interrupt can never arrive while its own CPU holds the lock. The fatal paths
//! (panic, CPU exception) use [`emergency_write`], which does not wait for the
//! lock at all: the interrupted code may have been holding it.
//!
//! Output follows the usual serial-console convention (a tty's `onlcr`): `\n`
//! is sent as `\r\n`, so the console reads well on a raw terminal. All other
//! bytes, `\x08` included, go out unchanged (the crate's `send` would turn a
//! backspace into `\x08 \x08`; the shell decides that itself).
use core::fmt::{self, Write};
use spin::Mutex;
use uart_16550::SerialPort;

static COM1: Mutex<Option<SerialPort>> = Mutex::new(None);

/// Initialises the UART on COM1.
pub fn init() {
    // SAFETY: COM1's eight ports belong to a 16550 on every machine we boot
    // on (QEMU `pc`, our VMM); the port I/O touches no memory, and this is
    // the only `SerialPort` besides the emergency one of the fatal paths.
    let mut port = unsafe { SerialPort::new(shared::ports::COM1) };
    port.init();
    x86_64::instructions::interrupts::without_interrupts(|| *COM1.lock() = Some(port));
}

/// Adapter doing the `\n` -> `\r\n` translation on top of raw sends.
struct Console<'a>(&'a mut SerialPort);

impl Write for Console<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for byte in s.bytes() {
            if byte == b'\n' {
                self.0.send_raw(b'\r');
            }
            self.0.send_raw(byte);
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
pub fn emergency_write(args: fmt::Arguments) {
    x86_64::instructions::interrupts::disable();
    // SAFETY: COM1 exists; a concurrent holder of the lock was interrupted on
    // this (only) CPU and will never run again, so the worst outcome is one
    // interleaved line of output.
    let mut port = unsafe { SerialPort::new(shared::ports::COM1) };
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
