//! The i8042 keyboard controller and its PS/2 keyboard: initialisation as
//! a real driver does it, and the IRQ1 handler, which moves one byte from
//! the controller into the scancode queue (`task::keyboard`).

use shared::i8042::{self, command_byte, interface_test, status, Command};
use shared::ports::{I8042_COMMAND, I8042_DATA};
use shared::ps2::{self, reply};
use x86_64::instructions::port::Port;

use crate::task::keyboard::push_with_interrupts_off;
use crate::{stats, time};

/// IRQ1: one byte from the controller into the queue.
///
/// The controller raises IRQ1 only when it puts a keyboard byte in its
/// output buffer (command byte bit 0; mouse bytes raise IRQ12, and the aux
/// port is disabled anyway), and this handler is the buffer's only reader
/// once the driver is initialised, so the byte is there: the handler reads
/// the data port alone, without the status read a polling driver needs
/// (one port access, a VM exit under a hypervisor, less per scancode).
/// Initialisation polls with the interrupt off in the command byte, so no
/// stale IRQ1 is left latched behind it.
pub fn on_interrupt() {
    stats::KEYBOARD_IRQS.inc();
    // SAFETY: port I/O to the i8042's data port touches no memory; IRQ1
    // said a keyboard byte is there, and this handler is its only reader.
    let byte = unsafe { Port::<u8>::new(I8042_DATA).read() };
    stats::SCANCODES.inc();
    push_with_interrupts_off(byte);
}

/// Resets the machine as a PC does: the controller's pulse command (0xFE)
/// takes the CPU's reset line low. Interrupts go off first (the IRQ1
/// handler must not read the controller meanwhile); if nothing resets us
/// (no controller), the CPU halts for good.
pub fn reset_machine() -> ! {
    x86_64::instructions::interrupts::disable();
    let mut c = Controller {
        status: Port::new(I8042_COMMAND),
        data: Port::new(I8042_DATA),
        warnings: 0,
    };
    if c.write_command(Command::PulseReset).is_err() {
        println!("reboot: the keyboard controller does not accept commands");
    }
    loop {
        x86_64::instructions::interrupts::disable();
        x86_64::instructions::hlt();
    }
}

/// Milliseconds to wait for the controller or keyboard to answer.
const TIMEOUT_MS: u64 = 50;
/// The keyboard's self-test after reset may take much longer.
const RESET_TIMEOUT_MS: u64 = 1000;
/// Status polls per wait regardless of the clock, so a machine whose timer
/// does not tick cannot hang us either.
const MAX_POLLS: u32 = 1_000_000;

#[derive(Debug)]
struct Timeout;

struct Controller {
    status: Port<u8>,
    data: Port<u8>,
    warnings: u32,
}

impl Controller {
    fn status(&mut self) -> u8 {
        // SAFETY: port I/O touches no memory; reading the status register
        // has no side effect.
        unsafe { self.status.read() }
    }

    fn wait(&mut self, timeout_ms: u64, mut ready: impl FnMut(u8) -> bool) -> Result<(), Timeout> {
        let deadline = time::now().saturating_add(time::ms_to_cycles(timeout_ms));
        for _ in 0..MAX_POLLS {
            if ready(self.status()) {
                return Ok(());
            }
            if time::now() >= deadline {
                break;
            }
            core::hint::spin_loop();
        }
        if ready(self.status()) {
            Ok(())
        } else {
            Err(Timeout)
        }
    }

    fn write_command(&mut self, command: Command) -> Result<(), Timeout> {
        self.wait(TIMEOUT_MS, |s| s & status::IBF == 0)?;
        // SAFETY: port I/O touches no memory; IRQ1 is masked during
        // initialisation, so no handler talks to the controller meanwhile.
        unsafe { self.status.write(command as u8) };
        Ok(())
    }

    fn write_data(&mut self, byte: u8) -> Result<(), Timeout> {
        self.wait(TIMEOUT_MS, |s| s & status::IBF == 0)?;
        // SAFETY: as in `write_command`.
        unsafe { self.data.write(byte) };
        Ok(())
    }

    fn read_data(&mut self, timeout_ms: u64) -> Result<u8, Timeout> {
        self.wait(timeout_ms, |s| s & status::OBF != 0)?;
        // SAFETY: as in `write_command`.
        Ok(unsafe { self.data.read() })
    }

    /// Discards whatever the output buffer holds.
    fn flush(&mut self) {
        for _ in 0..64 {
            if self.status() & status::OBF == 0 {
                return;
            }
            // SAFETY: as in `write_command`.
            let _ = unsafe { self.data.read() };
        }
    }

    fn warn(&mut self, message: core::fmt::Arguments) {
        self.warnings += 1;
        println!("i8042: warning: {message}");
    }

    /// A controller command with a one-byte answer.
    fn query(&mut self, command: Command) -> Result<u8, Timeout> {
        self.write_command(command)?;
        self.read_data(TIMEOUT_MS)
    }

    fn write_config(&mut self, config: u8) -> Result<(), Timeout> {
        self.write_command(Command::WriteCommandByte)?;
        self.write_data(config)
    }

    /// Sends a byte to the keyboard and waits for its ACK, resending on 0xFE.
    fn keyboard_command(&mut self, byte: u8) -> Result<(), u8> {
        for _ in 0..3 {
            if self.write_data(byte).is_err() {
                return Err(0);
            }
            match self.read_data(TIMEOUT_MS) {
                Ok(reply::ACK) => return Ok(()),
                Ok(reply::RESEND) => continue,
                Ok(other) => return Err(other),
                Err(Timeout) => return Err(0),
            }
        }
        Err(reply::RESEND)
    }
}

/// Initialises the i8042 and the keyboard as a real driver does, by
/// polling, with the controller's keyboard interrupt off. Failures are
/// reported and tolerated; every wait is bounded (by the TSC clock, which
/// must be running). Run before the PICs are initialised: the controller
/// may raise IRQ1 while the power-on command byte still enables it (the
/// reply to read-config), and the PICs' initialisation forgets that edge,
/// so no stale IRQ1 reaches the handler, which reads the data port without
/// checking the status first. Returns the controller if the keyboard is
/// usable; [`Ready::enable_interrupt`] finishes the job.
pub fn init_controller() -> Option<Ready> {
    let mut c = Controller {
        status: Port::new(I8042_COMMAND),
        data: Port::new(I8042_DATA),
        warnings: 0,
    };

    // Floating bus: nothing there (e.g. QEMU's microvm).
    if c.status() == 0xFF {
        println!("i8042: no controller (status reads 0xff); keyboard disabled");
        return None;
    }
    // Quiet both ports, so nothing arrives while we talk to the controller.
    if c.write_command(Command::DisableKeyboard).is_err() {
        println!("i8042: controller does not accept commands; keyboard disabled");
        return None;
    }
    let _ = c.write_command(Command::DisableAux);
    c.flush();

    let mut config = match c.query(Command::ReadCommandByte) {
        Ok(config) => config,
        Err(Timeout) => {
            c.warn(format_args!("no answer to read-config; assuming defaults"));
            command_byte::KBD_DISABLE | command_byte::AUX_DISABLE
        }
    };
    // No interrupts and no translation while we test and set up.
    config &= !(command_byte::KBD_INT | command_byte::AUX_INT | command_byte::XLATE);
    if c.write_config(config).is_err() {
        c.warn(format_args!("write-config timed out"));
    }

    match c.query(Command::SelfTest) {
        Ok(i8042::SELF_TEST_PASSED) => {}
        Ok(other) => c.warn(format_args!(
            "controller self-test returned {other:#04x}, expected {:#04x}",
            i8042::SELF_TEST_PASSED
        )),
        Err(Timeout) => c.warn(format_args!("controller self-test timed out")),
    }
    // Some controllers reset themselves during the self-test.
    let _ = c.write_config(config);

    match c.query(Command::TestKeyboard) {
        Ok(interface_test::OK) => {}
        Ok(other) => c.warn(format_args!(
            "keyboard port test returned {other:#04x}, expected {:#04x}",
            interface_test::OK
        )),
        Err(Timeout) => c.warn(format_args!("keyboard port test timed out")),
    }
    if c.write_command(Command::EnableKeyboard).is_err() {
        c.warn(format_args!("enable-keyboard timed out"));
    }

    match c.keyboard_command(ps2::Command::Reset as u8) {
        Ok(()) => match c.read_data(RESET_TIMEOUT_MS) {
            Ok(reply::SELF_TEST_PASSED) => {}
            Ok(other) => c.warn(format_args!(
                "keyboard self-test returned {other:#04x}, expected {:#04x}",
                reply::SELF_TEST_PASSED
            )),
            Err(Timeout) => c.warn(format_args!("keyboard self-test timed out")),
        },
        Err(answer) => c.warn(format_args!(
            "keyboard reset not acknowledged ({answer:#04x})"
        )),
    }
    // Set 2 from the keyboard; the controller translates it to set 1.
    if let Err(answer) = c
        .keyboard_command(ps2::Command::ScancodeSet as u8)
        .and_then(|()| c.keyboard_command(ps2::SCANCODE_SET_2))
    {
        c.warn(format_args!(
            "set scancode set 2 not acknowledged ({answer:#04x})"
        ));
    }
    // Translation on before scanning starts, so the first key is already
    // set 1; the IRQ stays off while we poll for the ACK.
    config |= command_byte::XLATE | command_byte::AUX_DISABLE;
    config &= !(command_byte::KBD_DISABLE | command_byte::KBD_INT | command_byte::AUX_INT);
    if c.write_config(config).is_err() {
        c.warn(format_args!("write-config timed out"));
    }
    // Last keyboard command: from here on the keyboard sends keys (our VMM
    // holds keys typed during boot until this F4). Nothing after it may flush
    // the output buffer: a byte there now is a key.
    if let Err(answer) = c.keyboard_command(ps2::Command::EnableScanning as u8) {
        c.warn(format_args!(
            "enable scanning not acknowledged ({answer:#04x})"
        ));
    }
    match c.warnings {
        0 => println!("i8042: keyboard ready (scancode set 2, translated to set 1)"),
        n => println!("i8042: keyboard enabled despite {n} warning(s)"),
    }
    Some(Ready { config })
}

/// An initialised controller whose keyboard interrupt is still off.
pub struct Ready {
    config: u8,
}

impl Ready {
    /// Turns the keyboard interrupt on (command byte bit 0). Call with the
    /// PICs initialised and IRQ1 unmasked: a key byte already waiting
    /// raises IRQ1 now, a rising edge the PIC takes.
    pub fn enable_interrupt(self) {
        let mut c = Controller {
            status: Port::new(I8042_COMMAND),
            data: Port::new(I8042_DATA),
            warnings: 0,
        };
        if c.write_config(self.config | command_byte::KBD_INT).is_err() {
            println!("i8042: warning: final write-config timed out");
        }
    }
}
