//! Serial console on COM1.
use core::fmt::{self, Write};
use spin::Mutex;
use uart_16550::SerialPort;

static COM1: Mutex<Option<SerialPort>> = Mutex::new(None);

/// Initialises the UART on COM1.
pub fn init() {
    // SAFETY: COM1 is a standard 16550 port on every PC we boot on.
    let mut port = unsafe { SerialPort::new(shared::ports::COM1) };
    port.init();
    *COM1.lock() = Some(port);
}

#[doc(hidden)]
pub fn _print(args: fmt::Arguments) {
    x86_64::instructions::interrupts::without_interrupts(|| {
        if let Some(port) = COM1.lock().as_mut() {
            let _ = port.write_fmt(args);
        }
    });
}

/// Prints to the serial console.
#[macro_export]
macro_rules! print {
    ($($arg:tt)*) => ($crate::serial::_print(format_args!($($arg)*)));
}

/// Prints to the serial console, with a newline.
#[macro_export]
macro_rules! println {
    () => ($crate::print!("\n"));
    ($($arg:tt)*) => ($crate::print!("{}\n", format_args!($($arg)*)));
}
