//! PS/2 keyboard: i8042 driver, IRQ1 handler, scancode stream and decoder.
//!
//! The IRQ1 handler reads one byte from the controller, pushes it into a
//! bounded lock-free queue and wakes the consumer through an `AtomicWaker`.
//! A full queue drops the byte and counts it; nothing panics, allocates or
//! blocks in the handler. [`ScancodeStream`] is the consumer side, a
//! `futures` `Stream`; [`Decoder`] turns scancodes into [`Key`]s.
//!
//! The controller translates the keyboard's scancode set 2 to set 1 (command
//! byte bit 6), so the decoder uses `pc_keyboard`'s `ScancodeSet1`.

use core::pin::Pin;
use core::sync::atomic::{AtomicBool, Ordering};
use core::task::{Context, Poll};

use crossbeam_queue::ArrayQueue;
use futures_util::stream::Stream;
use futures_util::task::AtomicWaker;
use pc_keyboard::{
    layouts::Us104Key, DecodedKey, HandleControl, KeyCode, PS2Keyboard, ScancodeSet1,
};
use shared::i8042::{self, command_byte, interface_test, status, Command};
use shared::ports::{I8042_COMMAND, I8042_DATA};
use shared::ps2::{self, reply};
use spin::Once;
use x86_64::instructions::port::Port;

use crate::{stats, time};

/// Scancodes the queue holds: enough for everything typed during a long
/// `spin` (each key is 2 bytes, 4 with Shift).
pub const QUEUE_CAPACITY: usize = 4096;

static QUEUE: Once<ArrayQueue<u8>> = Once::new();
static WAKER: AtomicWaker = AtomicWaker::new();
static STREAM_TAKEN: AtomicBool = AtomicBool::new(false);

/// Creates the scancode queue. Call before IRQ1 is unmasked.
pub fn init_queue() {
    // One slot more than we ever fill, see [`push_scancode`].
    QUEUE.call_once(|| ArrayQueue::new(QUEUE_CAPACITY + 1));
}

/// IRQ1: one byte from the controller into the queue.
pub fn on_interrupt() {
    stats::KEYBOARD_IRQS.inc();
    // SAFETY: reading the i8042 status and data ports.
    let status = unsafe { Port::<u8>::new(I8042_COMMAND).read() };
    if status & status::OBF == 0 {
        return; // nothing to read (the byte was taken already)
    }
    // SAFETY: as above.
    let byte = unsafe { Port::<u8>::new(I8042_DATA).read() };
    if status & status::AUX_OBF != 0 {
        return; // a mouse byte: the aux port is disabled, so not ours
    }
    stats::SCANCODES.inc();
    push_with_interrupts_off(byte);
}

/// Whether the ring under the scancode queue is full (for tests: it never is).
pub fn ring_is_full() -> bool {
    QUEUE.get().is_some_and(|queue| queue.is_full())
}

/// Queues a scancode for the stream as IRQ1 does (for tests).
pub fn push_scancode(byte: u8) {
    x86_64::instructions::interrupts::without_interrupts(|| push_with_interrupts_off(byte));
}

/// Queues a scancode; interrupts must be off.
///
/// The ring holds one slot more than [`QUEUE_CAPACITY`] and is never filled:
/// `ArrayQueue::push` on a full ring whose head slot is being popped (the
/// consumer advanced `head` and was interrupted before releasing the slot)
/// spins until the pop completes, which on our one CPU, in an interrupt
/// handler, is never. Below capacity the push's slot is never the one being
/// popped. Interrupts off makes the length check and the push one step.
fn push_with_interrupts_off(byte: u8) {
    match QUEUE.get() {
        Some(queue) if queue.len() < QUEUE_CAPACITY && queue.push(byte).is_ok() => {}
        _ => stats::SCANCODES_DROPPED.inc(),
    }
    WAKER.wake();
}

/// The scancodes IRQ1 received, as a `Stream`. There is one consumer at a time.
pub struct ScancodeStream {
    _private: (),
}

impl ScancodeStream {
    /// The stream, or `None` if another consumer holds it.
    pub fn take() -> Option<Self> {
        init_queue();
        (!STREAM_TAKEN.swap(true, Ordering::SeqCst)).then_some(Self { _private: () })
    }
}

impl Drop for ScancodeStream {
    fn drop(&mut self) {
        STREAM_TAKEN.store(false, Ordering::SeqCst);
    }
}

impl Stream for ScancodeStream {
    type Item = u8;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<u8>> {
        let queue = QUEUE.get().expect("created by take()");
        if let Some(byte) = queue.pop() {
            return Poll::Ready(Some(byte));
        }
        WAKER.register(cx.waker());
        // A byte pushed before the registration woke the old waker (or none):
        // look again now that the new one is registered.
        match queue.pop() {
            Some(byte) => {
                WAKER.take();
                Poll::Ready(Some(byte))
            }
            None => Poll::Pending,
        }
    }
}

/// What a key press means to the shell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Key {
    /// A printable character (layout, Shift and Caps Lock applied).
    Char(char),
    Enter,
    Backspace,
    /// Ctrl+C.
    Interrupt,
}

/// Scancode set 1 bytes -> [`Key`]s (US 104-key layout).
///
/// Keys without a meaning to the shell are ignored: arrows, Home/End,
/// function keys, Tab, Escape, Delete and Ctrl with anything but C.
pub struct Decoder {
    keyboard: PS2Keyboard<Us104Key, ScancodeSet1>,
}

impl Default for Decoder {
    fn default() -> Self {
        Self::new()
    }
}

impl Decoder {
    pub const fn new() -> Self {
        Self {
            keyboard: PS2Keyboard::new(
                ScancodeSet1::new(),
                Us104Key,
                HandleControl::MapLettersToUnicode,
            ),
        }
    }

    /// Feeds one byte; returns the key it completes, if any.
    pub fn feed(&mut self, byte: u8) -> Option<Key> {
        // Unknown codes (e.g. a stray 0xFA acknowledge) are ignored.
        let event = self.keyboard.add_byte(byte).ok()??;
        let code = event.code;
        // Enter and Backspace by key, not by character: with Ctrl held,
        // `pc_keyboard` maps the letters to control characters, so Ctrl+M,
        // Ctrl+J and Ctrl+H would otherwise pass for Enter and Backspace.
        match (code, self.keyboard.process_keyevent(event)?) {
            (KeyCode::Return | KeyCode::NumpadEnter, _) => Some(Key::Enter),
            (KeyCode::Backspace, _) => Some(Key::Backspace),
            (KeyCode::C, DecodedKey::Unicode('\u{3}')) => Some(Key::Interrupt),
            (_, DecodedKey::Unicode(c)) if !c.is_control() => Some(Key::Char(c)),
            (_, DecodedKey::Unicode(_) | DecodedKey::RawKey(_)) => None,
        }
    }
}

// ---------------------------------------------------------------------------
// The i8042 controller driver.

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
        // SAFETY: reading the i8042 status register.
        unsafe { self.status.read() }
    }

    fn wait(&mut self, timeout_ms: u64, mut ready: impl FnMut(u8) -> bool) -> Result<(), Timeout> {
        let deadline = time::ticks() + time::ms_to_ticks(timeout_ms) + 1;
        for _ in 0..MAX_POLLS {
            if ready(self.status()) {
                return Ok(());
            }
            if time::ticks() >= deadline {
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
        // SAFETY: controller command port.
        unsafe { self.status.write(command as u8) };
        Ok(())
    }

    fn write_data(&mut self, byte: u8) -> Result<(), Timeout> {
        self.wait(TIMEOUT_MS, |s| s & status::IBF == 0)?;
        // SAFETY: controller data port.
        unsafe { self.data.write(byte) };
        Ok(())
    }

    fn read_data(&mut self, timeout_ms: u64) -> Result<u8, Timeout> {
        self.wait(timeout_ms, |s| s & status::OBF != 0)?;
        // SAFETY: controller data port.
        Ok(unsafe { self.data.read() })
    }

    /// Discards whatever the output buffer holds.
    fn flush(&mut self) {
        for _ in 0..64 {
            if self.status() & status::OBF == 0 {
                return;
            }
            // SAFETY: controller data port.
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

/// Initialises the i8042 and the keyboard as a real driver does. Failures
/// are reported and tolerated; every wait is bounded. Run with interrupts
/// enabled (the timeouts use the clock) and IRQ1 still masked. Returns
/// whether the keyboard is usable.
pub fn init_controller() -> bool {
    init_queue();
    let mut c = Controller {
        status: Port::new(I8042_COMMAND),
        data: Port::new(I8042_DATA),
        warnings: 0,
    };

    // Floating bus: nothing there (e.g. QEMU's microvm).
    if c.status() == 0xFF {
        println!("i8042: no controller (status reads 0xff); keyboard disabled");
        return false;
    }
    // Quiet both ports, so nothing arrives while we talk to the controller.
    if c.write_command(Command::DisableKeyboard).is_err() {
        println!("i8042: controller does not accept commands; keyboard disabled");
        return false;
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
    // A key byte already waiting raises IRQ1 now (a rising edge the PIC keeps
    // until IRQ1 is unmasked).
    config |= command_byte::KBD_INT;
    if c.write_config(config).is_err() {
        c.warn(format_args!("final write-config timed out"));
    }
    match c.warnings {
        0 => println!("i8042: keyboard ready (scancode set 2, translated to set 1)"),
        n => println!("i8042: keyboard enabled despite {n} warning(s)"),
    }
    true
}
