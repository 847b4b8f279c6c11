//! Intel 8042 keyboard controller with a PS/2 keyboard attached (ports 0x60/0x64).
//!
//! Two devices live here, modelled after QEMU's `hw/input/pckbd.c` (the
//! controller) and `hw/input/ps2.c` (the keyboard):
//!
//! * the **controller**: status register, command byte (and the rest of its
//!   32-byte internal RAM), output port (reset line, A20), the single-byte output
//!   buffer that the guest reads on port 0x60, IRQ1/IRQ12;
//! * the **keyboard**: command set (reset, scanning, LEDs, typematic, scancode
//!   set, identify, echo, resend), scancode sets 1, 2 and 3, its command
//!   replies and the host key events it still has to send.
//!
//! There is no mouse: the aux port only carries bytes the guest writes itself
//! with 0xD3, and anything sent to the mouse with 0xD4 is answered with 0xFE
//! ("no device"), which drivers take as "no mouse".
//!
//! # Pacing and queueing policy
//!
//! A byte moves from the keyboard into the controller's output buffer only once
//! the guest has read the previous one (OBF clear), so no byte is ever
//! overwritten. Host key events wait in a **host-side queue of events**
//! (`VecDeque`, **unbounded**): a real keyboard buffers 16 bytes and QEMU's
//! PS/2 queue drops keys once its 16 bytes are full, but this VMM must never
//! lose a host keystroke (scripts type tens of thousands of characters faster
//! than the guest reads them). Hosts that want backpressure can watch
//! [`I8042::pending_input`], the number of events not completely read.
//! Guest-driven state is bounded: replies to keyboard commands are at most
//! three bytes (an unread reply is discarded by the next command, as in QEMU),
//! and controller replies use a single slot (the latest wins), so a guest
//! cannot make this model grow.
//!
//! # Keys typed before the guest listens: nothing lost, nothing early
//!
//! A held event is released (encoded and sent) only while the keyboard is
//! actually listening:
//!
//! 1. a driver has enabled scanning explicitly (keyboard command 0xF4) at least
//!    once since power-on: a sticky flag. Until a driver activated the
//!    keyboard nobody listens; drivers end their initialisation with 0xF4
//!    (Linux's atkbd, our guest). The firmware's 0xF4 does not count
//!    ([`I8042::with_firmware_setup`]): keys wait for the guest's own driver.
//!    A guest that never sends 0xF4 gets no keys;
//! 2. scanning is enabled now (not after 0xF5; reset 0xFF and 0xF6 re-enable
//!    it, as on a real keyboard and in QEMU);
//! 3. the controller's keyboard interface is enabled (command byte bit 4
//!    clear, i.e. not after 0xAD);
//! 4. no keyboard command is in progress: none waits for its argument, and
//!    no reply byte is left (replies always go first), so key bytes never
//!    interleave with a reply sequence such as the reset's FA AA.
//!
//! So keys typed while the guest boots reach it in order once its driver has
//! finished initialising, instead of being mixed into the initialisation's
//! replies (and flushed, or mistaken for them). The event is encoded when its
//! first byte goes out, in the scancode set and translation in effect then, so
//! the guest gets the set it selected before 0xF4. Only one event's bytes are
//! encoded at a time; the rest of them also wait while the gate is closed.
//! The one remaining overlap is the guest's own doing: a command written
//! while a multi-byte key sequence is half sent gets its reply between the
//! bytes already sent and the rest, as on a real keyboard.
//!
//! Replies to keyboard commands go ahead of keystroke bytes, as in QEMU's
//! `ps2_cqueue_*`; controller replies (0x20, 0xAA, ...) go ahead of both.

//! # Interrupts
//!
//! IRQ1 and IRQ12 are exposed as levels ([`I8042::irq1_level`]). The ISA PIC
//! latches IRQ1 on a *rising edge*, and when the guest reads a byte while another
//! is waiting the next one is loaded at once, so the level never visibly drops.
//! QEMU pulses the line in that case (lower, then raise); here the VMM asks
//! [`I8042::take_irq1_edge`] and, when it returns true, lowers the line before
//! applying the level again.
//!
//! The model does no I/O, has no threads and no clock: every guest input is
//! handled by plain state transitions and none of them can panic.
//!
//! # Differences from QEMU, on purpose
//!
//! * Keystrokes are never dropped: no queue limit, and a keyboard reset
//!   (0xFF, 0xF5, 0xF6) keeps keystrokes already queued (QEMU empties its
//!   queue). Key events that arrive while scanning is disabled (0xF5, or
//!   before the first 0xF4) are held, not dropped: a real keyboard (and QEMU)
//!   would not see them, as a real user's keys would not be typed at all
//!   while the machine boots, but our host queue is the user's intent.
//! * Keys are held until the first 0xF4 (see above); QEMU's keyboard scans
//!   from power-on, so keys typed early are there for whichever code reads
//!   first (and a driver's initial flush usually discards them).
//! * A controller reply (0x20, 0xAA, ...) issued while the output buffer is
//!   full waits for it instead of overwriting it; one slot, latest wins.
//! * Keyboard command 0xFE (resend) repeats the last byte the keyboard sent,
//!   as a real keyboard; QEMU answers 0xFE.
//! * No mouse: 0xD4 + byte is answered with 0xFE on the aux port. The aux
//!   interface test (0xA9) still passes and 0xD3 loops bytes back, so drivers
//!   find an aux port with nothing on it.
//! * Internal RAM bytes 0x01-0x1F are stored (0x61-0x7F write, 0x21-0x3F
//!   read back); QEMU ignores those commands. Other unknown controller
//!   commands are ignored, as in QEMU.
//! * Status bit 3 (A2) tells whether the last write went to the command
//!   port (0x64) or the data port (0x60), as the datasheet says; QEMU keeps
//!   it set (seen by the conformance kernel, `tests/conformance.rs`).
//! * A new controller command abandons one still waiting for its data byte.
//! * Alt+Print Screen sends plain SysRq (set 2 `84` / `F0 84`) without QEMU's
//!   extra Alt break/make around it.
//! * Set 3 sends `F0` breaks for every key (as QEMU) and drops the few
//!   extended keys it has no code for.

mod keyboard;
mod scancodes;
#[cfg(test)]
mod tests;

use shared::i8042::{
    command_byte, input_port, interface_test, output_port, status, Command, PULSE,
    PULSE_LINES_MASK, RAM_INDEX_MASK, READ_RAM, SELF_TEST_PASSED, WRITE_RAM,
};
use shared::ports::{I8042_COMMAND, I8042_DATA};
use shared::ps2::reply;

use crate::device::{Change, IrqOutput, MachineRequest, PortDevice};
use keyboard::*;

/// A byte in the controller's output buffer, with where it came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct OutByte {
    value: u8,
    /// From the aux port: sets status bit 5 and raises IRQ12 instead of IRQ1.
    aux: bool,
    /// A host keystroke byte (counted by `pending_input`).
    keystroke: bool,
}

impl OutByte {
    fn controller(value: u8) -> Self {
        Self {
            value,
            aux: false,
            keystroke: false,
        }
    }
    fn aux(value: u8) -> Self {
        Self {
            value,
            aux: true,
            keystroke: false,
        }
    }
}

/// The controller and its keyboard.
#[derive(Debug)]
pub struct I8042 {
    /// Internal RAM: byte 0 is the command byte, the other 31 bytes are only
    /// stored (commands 0x21-0x3F read them, 0x61-0x7F write them).
    ram: [u8; 32],
    /// Status bit 2. Sticky like QEMU's: set by the self-test or by a command
    /// byte with bit 2, never cleared by the guest.
    sys_flag: bool,
    /// Status bit 3.
    last_write_was_command: bool,
    /// Output port P2 as last written (bits 4/5 are computed on reads).
    output_port: u8,
    /// Controller command whose data byte the guest writes next to port 0x60.
    awaiting_data: Option<u8>,
    /// The output buffer: what the guest reads on port 0x60.
    output: Option<OutByte>,
    /// Last byte read from port 0x60; a read with OBF clear returns it again,
    /// as QEMU does.
    last_output: u8,
    /// A reply of the controller itself waiting for the output buffer. One slot,
    /// the latest wins; it goes ahead of keyboard bytes.
    controller_reply: Option<OutByte>,
    /// The guest pulsed the reset line.
    reset_requested: bool,
    /// A keyboard (controller) byte was loaded into the output buffer since the
    /// last `take_irq1_edge`.
    irq1_edge: bool,
    /// Same for aux bytes.
    irq12_edge: bool,
    kbd: Keyboard,
    /// Built by [`Self::with_firmware_setup`]: a reset returns to the
    /// firmware's state (QEMU runs the firmware again after a reset).
    firmware_setup: bool,
}

impl Default for I8042 {
    fn default() -> Self {
        Self::new()
    }
}

impl I8042 {
    /// Power-on state, as QEMU's reset: command byte 0x03 (IRQ1 and IRQ12
    /// enabled, no translation), status "command, unlocked", A20 on, the
    /// keyboard scanning in set 2.
    pub fn new() -> Self {
        let mut ram = [0; 32];
        ram[0] = command_byte::KBD_INT | command_byte::AUX_INT;
        Self {
            ram,
            sys_flag: false,
            last_write_was_command: true,
            output_port: output_port::RESET | output_port::A20 | output_port::ONES,
            awaiting_data: None,
            output: None,
            last_output: 0,
            controller_reply: None,
            reset_requested: false,
            irq1_edge: false,
            irq12_edge: false,
            kbd: Keyboard::new(),
            firmware_setup: false,
        }
    }

    /// The state a PC BIOS (SeaBIOS, as QEMU runs it before a PVH kernel)
    /// leaves, which is what this VMM's machine starts in and resets to, so
    /// that a guest sees what it sees under QEMU `pc`: self-test passed (SYS
    /// set), command byte 0x61 (IRQ1 on, translation on, aux disabled), the
    /// keyboard reset and scanning in set 2. Linux's i8042 driver keeps the
    /// firmware's translation, so its keyboard registers as "AT Translated Set
    /// 2", as under QEMU.
    ///
    /// One deliberate difference: the firmware's own 0xF4 does not open the
    /// gate for host keys (see "Keys typed before the guest listens"): keys
    /// typed while the guest boots wait for its driver's 0xF4 instead of going
    /// to the firmware's state and being flushed by the driver's
    /// initialisation, as they would be under QEMU. A guest that never enables
    /// scanning gets no keys.
    pub fn with_firmware_setup() -> Self {
        let mut s = Self::new();
        s.firmware_setup = true;
        s.sys_flag = true;
        s.set_command_byte(command_byte::KBD_INT | command_byte::AUX_DISABLE | command_byte::XLATE);
        s
    }

    /// Guest read of 0x60 (the output buffer) or 0x64 (the status register).
    /// Other ports read as 0xFF.
    pub fn read(&mut self, port: u16) -> u8 {
        match port {
            I8042_DATA => match self.output.take() {
                Some(b) => {
                    self.last_output = b.value;
                    // The buffer is free: the next byte may move in now.
                    self.fill_output();
                    b.value
                }
                None => self.last_output,
            },
            I8042_COMMAND => self.status(),
            _ => 0xFF,
        }
    }

    /// Guest write of 0x60 (data: a controller command's argument or a byte for
    /// the keyboard) or 0x64 (a controller command). Other ports are ignored.
    pub fn write(&mut self, port: u16, value: u8) {
        match port {
            I8042_DATA => {
                self.last_write_was_command = false;
                match self.awaiting_data.take() {
                    Some(cmd) => self.controller_data(cmd, value),
                    None => self.kbd.command(value),
                }
            }
            I8042_COMMAND => {
                self.last_write_was_command = true;
                // A new command abandons one still waiting for its data byte.
                self.awaiting_data = None;
                self.controller_command(value);
            }
            _ => return,
        }
        self.fill_output();
    }

    /// Host key event: a set-2 make code (with `0xE0` prefix for extended keys
    /// as `0xE0xx`), pressed or released. Pause is `0xE114` (or `0xE077`).
    /// The event joins the host-side queue; it is encoded in the scancode set
    /// in effect (translated to set 1 when the command byte asks for it) when
    /// the keyboard is listening and its turn comes (see the module
    /// documentation). Only codes that are not keys are dropped.
    pub fn key_event(&mut self, set2_code: u16, down: bool) {
        self.kbd.queue_key(set2_code, down);
        self.fill_output();
    }

    /// Level of IRQ1: the output buffer holds a keyboard (or controller) byte
    /// and command byte bit 0 is set.
    pub fn irq1_level(&self) -> bool {
        self.ram[0] & command_byte::KBD_INT != 0 && matches!(self.output, Some(b) if !b.aux)
    }

    /// Level of IRQ12: the output buffer holds an aux byte and command byte
    /// bit 1 is set.
    pub fn irq12_level(&self) -> bool {
        self.ram[0] & command_byte::AUX_INT != 0 && matches!(self.output, Some(b) if b.aux)
    }

    /// Whether a new byte for IRQ1 entered the output buffer since the last
    /// call. Each such byte is a new interrupt (a rising edge for the PIC): if
    /// this returns true, lower IRQ1 before applying [`Self::irq1_level`], or a
    /// byte loaded right after the guest read the previous one goes unnoticed.
    pub fn take_irq1_edge(&mut self) -> bool {
        std::mem::take(&mut self.irq1_edge)
    }

    /// Same as [`Self::take_irq1_edge`] for IRQ12.
    pub fn take_irq12_edge(&mut self) -> bool {
        std::mem::take(&mut self.irq12_edge)
    }

    /// Machine reset: the controller and the keyboard go back to the state
    /// they were built in ([`Self::new`], or [`Self::with_firmware_setup`] as
    /// the firmware leaves them after the reset), not activated, so keys wait
    /// for the next driver's 0xF4; but host key
    /// events still queued are kept: nothing typed is lost. An event whose
    /// bytes were being delivered (some still in the keyboard or the output
    /// buffer) goes back to the front of the queue, to be sent whole to the
    /// next guest; an event the old guest read completely is gone with it.
    /// The held modifiers stay (the keys are still down on the host side).
    pub fn reset(&mut self) {
        let in_flight = matches!(self.output, Some(b) if b.keystroke) || !self.kbd.keys.is_empty();
        let mut held = std::mem::take(&mut self.kbd.held);
        if in_flight {
            if let Some(event) = self.kbd.sending {
                held.push_front(event);
            }
        }
        let modifiers = self.kbd.modifiers;
        *self = if self.firmware_setup {
            Self::with_firmware_setup()
        } else {
            Self::new()
        };
        self.kbd.held = held;
        self.kbd.modifiers = modifiers;
    }

    /// Whether the guest asked for a CPU reset (command 0xFE, any pulse command
    /// 0xF0-0xFE with bit 0 clear, or an output-port write with bit 0 clear)
    /// since the last call.
    pub fn take_reset_request(&mut self) -> bool {
        std::mem::take(&mut self.reset_requested)
    }

    /// Host key events the guest has not completely read: those still held
    /// (not listening yet, or waiting their turn) plus the one whose bytes are
    /// being delivered, if any. Zero means every key event so far has been
    /// consumed; the count never grows but by [`Self::key_event`].
    pub fn pending_input(&self) -> usize {
        // The buffer only ever holds a byte of the event whose remaining
        // bytes are in `keys` (they are encoded when the buffer is free), so
        // the two together are one event.
        let in_buffer = matches!(self.output, Some(b) if b.keystroke);
        self.kbd.held.len() + usize::from(in_buffer || !self.kbd.keys.is_empty())
    }

    /// The host key event (set-2 code, pressed) whose byte sits in the
    /// output buffer, if that byte is a keystroke byte: the fuzz targets
    /// check with it that events come out whole and in order.
    #[cfg(feature = "fuzzing")]
    pub fn output_keystroke(&self) -> Option<(u16, bool)> {
        match self.output {
            Some(b) if b.keystroke => self.kbd.sending.map(|event| (event.code, event.down)),
            _ => None,
        }
    }

    /// State of the A20 gate (output port bit 1). No effect on our memory map;
    /// exposed for tracing.
    pub fn a20_enabled(&self) -> bool {
        self.output_port & output_port::A20 != 0
    }

    /// The controller command byte (internal RAM byte 0).
    pub fn command_byte(&self) -> u8 {
        self.ram[0]
    }

    /// The status register, as a read of port 0x64 returns it.
    fn status(&self) -> u8 {
        // There is no keylock: always unlocked.
        let mut s = status::UNLOCKED;
        if let Some(b) = self.output {
            s |= status::OBF;
            if b.aux {
                s |= status::AUX_OBF;
            }
        }
        if self.sys_flag {
            s |= status::SYS;
        }
        if self.last_write_was_command {
            s |= status::CMD;
        }
        s
    }

    fn set_command_byte(&mut self, value: u8) {
        self.ram[0] = value;
        if value & command_byte::SYS != 0 {
            self.sys_flag = true;
        }
        self.kbd.translate = value & command_byte::XLATE != 0;
    }

    /// Output port as 0xD0 reports it, with the live buffer-full bits.
    fn output_port_value(&self) -> u8 {
        let mut v = self.output_port & !(output_port::KBD_OBF | output_port::AUX_OBF);
        match self.output {
            Some(b) if b.aux => v |= output_port::AUX_OBF,
            Some(_) => v |= output_port::KBD_OBF,
            None => {}
        }
        v
    }

    fn write_output_port(&mut self, value: u8) {
        self.output_port = value;
        if value & output_port::RESET == 0 {
            self.reset_requested = true;
        }
    }

    /// A controller command (write to port 0x64). Unknown commands are
    /// ignored, as in QEMU (which only logs them).
    fn controller_command(&mut self, cmd: u8) {
        match Command::from_u8(cmd) {
            // Reading the command byte is reading RAM byte 0.
            Some(Command::ReadCommandByte) => self.read_ram(cmd),
            None if READ_RAM.contains(&cmd) => self.read_ram(cmd),
            // The data byte follows on port 0x60; writing the command byte is
            // writing RAM byte 0.
            Some(
                Command::WriteCommandByte
                | Command::WriteOutputPort
                | Command::WriteKeyboardOutput
                | Command::WriteAuxOutput
                | Command::WriteToAux,
            ) => self.awaiting_data = Some(cmd),
            None if WRITE_RAM.contains(&cmd) => self.awaiting_data = Some(cmd),
            Some(Command::DisableAux) => self.ram[0] |= command_byte::AUX_DISABLE,
            Some(Command::EnableAux) => self.ram[0] &= !command_byte::AUX_DISABLE,
            // "No error" for aux too (as QEMU): a port with no mouse on it.
            Some(Command::TestAux | Command::TestKeyboard) => {
                self.controller_reply = Some(OutByte::controller(interface_test::OK))
            }
            Some(Command::SelfTest) => {
                self.sys_flag = true;
                self.controller_reply = Some(OutByte::controller(SELF_TEST_PASSED));
            }
            Some(Command::DisableKeyboard) => self.ram[0] |= command_byte::KBD_DISABLE,
            Some(Command::EnableKeyboard) => self.ram[0] &= !command_byte::KBD_DISABLE,
            // No keylock, as QEMU.
            Some(Command::ReadInputPort) => {
                self.controller_reply = Some(OutByte::controller(input_port::KBD_NOT_INHIBITED))
            }
            Some(Command::ReadOutputPort) => {
                self.controller_reply = Some(OutByte::controller(self.output_port_value()))
            }
            Some(Command::DisableA20) => self.output_port &= !output_port::A20,
            Some(Command::EnableA20) => self.output_port |= output_port::A20,
            // Reset is the pulse of line 0 and nothing else.
            Some(Command::PulseReset) => self.pulse(cmd),
            None if PULSE.contains(&cmd) => self.pulse(cmd),
            None => {}
        }
    }

    /// Reply with internal RAM byte `cmd & RAM_INDEX_MASK` (a [`READ_RAM`]
    /// command).
    fn read_ram(&mut self, cmd: u8) {
        let value = self.ram[usize::from(cmd & RAM_INDEX_MASK)];
        self.controller_reply = Some(OutByte::controller(value));
    }

    /// A [`PULSE`] command: output lines whose bit is clear go low for a
    /// moment. Only the CPU reset line matters; the port keeps its value
    /// afterwards.
    fn pulse(&mut self, cmd: u8) {
        if cmd & PULSE_LINES_MASK & output_port::RESET == 0 {
            self.reset_requested = true;
        }
    }

    /// The data byte of a controller command (write to port 0x60 after it).
    fn controller_data(&mut self, cmd: u8, value: u8) {
        match Command::from_u8(cmd) {
            Some(Command::WriteCommandByte) => self.set_command_byte(value),
            None if WRITE_RAM.contains(&cmd) => self.ram[usize::from(cmd & RAM_INDEX_MASK)] = value,
            Some(Command::WriteOutputPort) => self.write_output_port(value),
            // Loop the byte back as if the keyboard or the mouse had sent it.
            Some(Command::WriteKeyboardOutput) => {
                self.controller_reply = Some(OutByte::controller(value))
            }
            Some(Command::WriteAuxOutput) => self.controller_reply = Some(OutByte::aux(value)),
            // No mouse is attached: answer as a PS/2 port with nothing on it.
            Some(Command::WriteToAux) => self.controller_reply = Some(OutByte::aux(reply::RESEND)),
            // Only the commands above wait for a data byte.
            _ => {}
        }
    }

    /// Moves the next byte into the output buffer if it is free: a controller
    /// reply first, then the keyboard's bytes unless its interface is disabled
    /// (they wait in the keyboard, nothing is lost).
    fn fill_output(&mut self) {
        if self.output.is_some() {
            return;
        }
        let next = match self.controller_reply.take() {
            Some(b) => Some(b),
            None if self.ram[0] & command_byte::KBD_DISABLE == 0 => {
                self.kbd.next_byte().map(|(value, keystroke)| OutByte {
                    value,
                    aux: false,
                    keystroke,
                })
            }
            None => None,
        };
        if let Some(b) = next {
            if b.aux {
                self.irq12_edge = true;
            } else {
                self.irq1_edge = true;
            }
            self.output = Some(b);
        }
    }
}

/// Register offsets from the controller's base port (0x60), as registered
/// in the machine's port map.
pub mod offset {
    use shared::ports::{I8042_COMMAND, I8042_DATA};

    /// Data port (0x60).
    pub const DATA: u16 = 0;
    /// Status register / command port (0x64).
    pub const COMMAND: u16 = I8042_COMMAND - I8042_DATA;
}

/// Interrupt pins, in the order the machine's port map wires them.
pub mod pin {
    /// Keyboard interrupt, IRQ1.
    pub const KEYBOARD: usize = 0;
    /// Auxiliary (mouse) interrupt, IRQ12.
    pub const AUX: usize = 1;
}

impl I8042 {
    /// Host key event (see [`Self::key_event`]), with what the machine must
    /// do about it.
    pub fn host_key_event(&mut self, set2_code: u16, down: bool) -> Change {
        let before = self.pending_input();
        self.key_event(set2_code, down);
        self.change_since(before)
    }

    /// The interrupt pins, host input consumed since `pending_before`
    /// ([`Self::pending_input`] before the access), and a reset request.
    fn change_since(&mut self, pending_before: usize) -> Change {
        // Each byte loaded into the output buffer is a new interrupt: a byte
        // loaded right after the guest read the previous one keeps the line
        // high, so it must drop and rise again for an edge-triggered PIC.
        let pin = |edge: bool, level: bool| match (edge, level) {
            (true, true) => IrqOutput::Reassert,
            (_, level) => IrqOutput::Level(level),
        };
        let mut change = Change::NONE;
        change.irq[pin::KEYBOARD] = Some(pin(self.take_irq1_edge(), self.irq1_level()));
        change.irq[pin::AUX] = Some(pin(self.take_irq12_edge(), self.irq12_level()));
        change.input_consumed = self.pending_input() < pending_before;
        if self.take_reset_request() {
            change.request = Some(MachineRequest::Reset);
        }
        change
    }
}

impl PortDevice for I8042 {
    fn name(&self) -> &'static str {
        "i8042"
    }

    fn read(&mut self, offset: u16, data: &mut [u8]) -> Change {
        let before = self.pending_input();
        data.fill(I8042::read(self, I8042_DATA.wrapping_add(offset)));
        self.change_since(before)
    }

    /// A write can also release held key events (0xF4, 0xAE, ...), whose
    /// first byte then raises IRQ1.
    fn write(&mut self, offset: u16, data: &[u8]) -> Change {
        let before = self.pending_input();
        for &value in data {
            I8042::write(self, I8042_DATA.wrapping_add(offset), value);
        }
        self.change_since(before)
    }

    fn reset(&mut self) {
        I8042::reset(self);
    }
}
