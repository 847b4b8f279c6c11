//! The PC platform: every legacy device, the port bus that reaches them, and
//! the wiring of their interrupt lines into the 8259 pair.
//!
//! All of it lives in one [`Devices`] value behind one mutex (one vCPU: a
//! single lock is simple, deterministic and uncontended). The device models
//! are pure state machines; after every guest access and every host event the
//! machine calls [`Devices::sync_irqs`], which copies their interrupt outputs
//! onto the PIC inputs.
use std::time::Duration;

use shared::{irq, ports};

use crate::bus::PortBus;
use crate::devices::debug_exit::DebugExit;
use crate::devices::i8042::I8042;
use crate::devices::pic::DualPic;
use crate::devices::pit::{MonotonicClock, Pit};
use crate::devices::serial::Com1;
use crate::vm::SerialTap;

/// Channel-0 ticks the PIT may owe the guest before new ones are dropped.
///
/// Ticks are reinjected one at a time, each once the guest has acknowledged
/// the previous one (as KVM's in-kernel PIT does with its reinject policy), so
/// a guest that was descheduled for a while still counts every tick. Beyond
/// this backlog (one second at 1 kHz) ticks are dropped and counted: a guest
/// that keeps IRQ0 masked for long must not get an interrupt storm afterwards.
pub const MAX_TICK_BACKLOG: u64 = 1000;

/// Which device a port belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Port {
    Pic,
    Pit,
    I8042,
    Com1,
    DebugExit,
}

/// What the guest asked the machine to do through a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GuestRequest {
    /// A write of this value to the debug-exit port.
    Exit(u32),
    /// The i8042 reset pulse (controller command 0xFE).
    Reset,
}

/// Side effects of one port access the machine must act on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Effects {
    /// The guest wrote a PIT port and channel 0's next edge moved.
    pub timer_changed: bool,
    /// Host keyboard input was consumed: a guest read of port 0x60 completed
    /// a key event, or a write let out held events that send no byte.
    /// Waiters of `wait_input_drained` look again.
    pub keyboard_consumed: bool,
}

/// Counters kept by the platform, for `--stats`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PlatformStats {
    /// Reads of ports no device claims.
    pub unknown_port_reads: u64,
    /// Writes to ports no device claims.
    pub unknown_port_writes: u64,
    /// IRQ0 edges delivered to the PIC.
    pub timer_ticks_delivered: u64,
    /// Channel-0 ticks dropped because the backlog was full.
    pub timer_ticks_dropped: u64,
    /// Channel-0 ticks discarded while the VM was paused.
    pub timer_ticks_paused: u64,
    /// Machine resets (guest-requested and host-requested).
    pub resets: u64,
}

/// Follows the PICs' initialisation sequence to learn their vector bases
/// (ICW2), so that an acknowledged vector can be mapped back to an IRQ line
/// for IRQ0 reinjection and per-line statistics. It only watches writes; the
/// PIC model itself is the authority on everything else.
#[derive(Debug, Default)]
struct VectorMap {
    /// ICW2 (vector base) of master and slave, once programmed.
    base: [Option<u8>; 2],
    /// An ICW1 was written and the next data-port write is ICW2.
    awaiting_icw2: [bool; 2],
}

impl VectorMap {
    fn observe_write(&mut self, port: u16, value: u8) {
        let chip = match port {
            ports::PIC_MASTER_COMMAND | ports::PIC_MASTER_DATA => 0,
            ports::PIC_SLAVE_COMMAND | ports::PIC_SLAVE_DATA => 1,
            _ => return,
        };
        let command = port & 1 == 0;
        if command && value & 0x10 != 0 {
            self.awaiting_icw2[chip] = true;
        } else if !command && self.awaiting_icw2[chip] {
            self.awaiting_icw2[chip] = false;
            self.base[chip] = Some(value & 0xf8);
        }
    }

    /// Whether `port`/`value` is an ICW1 to the master (which clears its IRR).
    fn is_master_icw1(port: u16, value: u8) -> bool {
        port == ports::PIC_MASTER_COMMAND && value & 0x10 != 0
    }

    /// The IRQ line (0-15) `vector` was raised for, if it is one of the PICs'.
    fn line(&self, vector: u8) -> Option<u8> {
        (0..2).find_map(|chip| {
            let base = self.base[chip]?;
            (vector & 0xf8 == base).then_some(vector - base + 8 * chip as u8)
        })
    }
}

/// Channel-0 ticks on their way to IRQ0.
///
/// A tick stays "in flight" from its IRQ0 edge until the guest acknowledges
/// the IRQ0 vector (INTA) or re-initialises the master PIC. A guest that takes
/// IRQ0 only through the 8259 poll command (OCW3 P) never sends INTA, so it
/// would see one tick only; no PVH kernel we know of does that.
#[derive(Debug, Default)]
struct TickQueue {
    /// Ticks that happened and are not yet delivered.
    owed: u64,
    /// An edge was delivered and the guest has not acknowledged it yet.
    in_flight: bool,
}

/// Every device of the machine, the bus and the interrupt wiring.
pub struct Devices {
    bus: PortBus<Port>,
    /// The 8259A pair.
    pub pic: DualPic,
    /// The 8254, on the host monotonic clock.
    pub pit: Pit<MonotonicClock>,
    /// The keyboard controller and keyboard.
    pub i8042: I8042,
    com1: Com1,
    debug_exit: DebugExit,
    vectors: VectorMap,
    ticks: TickQueue,
    stats: PlatformStats,
}

impl Devices {
    /// The devices in their power-on state. The PIT counts on `clock`; the
    /// caller keeps a clone to convert PIT times to host deadlines. Serial
    /// output goes to `tap` and, with `serial_to_stdout`, to stdout.
    pub fn new(clock: MonotonicClock, tap: SerialTap, serial_to_stdout: bool) -> Self {
        let mut bus = PortBus::new();
        let map = [
            (ports::PIC_MASTER_COMMAND, 2, Port::Pic),
            (ports::PIC_SLAVE_COMMAND, 2, Port::Pic),
            (ports::ELCR_MASTER, 2, Port::Pic),
            (ports::PIT_CHANNEL0, 4, Port::Pit),
            (ports::PORT_B, 1, Port::Pit),
            (ports::I8042_DATA, 1, Port::I8042),
            (ports::I8042_COMMAND, 1, Port::I8042),
            (ports::COM1, ports::COM_PORT_COUNT, Port::Com1),
            (ports::DEBUG_EXIT, ports::DEBUG_EXIT_SIZE, Port::DebugExit),
        ];
        for (base, len, device) in map {
            // The map above is fixed and disjoint (checked by a unit test).
            bus.insert(base, len, device)
                .expect("static port map is disjoint");
        }
        Self {
            bus,
            pic: DualPic::new(),
            pit: Pit::new(clock),
            i8042: I8042::new(),
            com1: Com1::new(tap, serial_to_stdout),
            debug_exit: DebugExit::new(),
            vectors: VectorMap::default(),
            ticks: TickQueue::default(),
            stats: PlatformStats::default(),
        }
    }

    /// Machine reset: every device back to its power-on state (the PIT on
    /// the same clock, so the timer thread's deadlines stay comparable), the
    /// PIC vector map forgotten, owed and in-flight timer ticks dropped. Host
    /// key events still queued in the keyboard are kept
    /// ([`I8042::reset`]). Counters are kept, and count the reset.
    pub fn reset(&mut self) {
        self.pic.reset();
        self.pit = Pit::new(self.pit.clock().clone());
        self.i8042.reset();
        self.com1.reset();
        self.debug_exit = DebugExit::new();
        self.vectors = VectorMap::default();
        self.ticks = TickQueue::default();
        self.stats.resets += 1;
        self.sync_irqs();
    }

    /// Guest `in` of `data.len()` bytes (1, 2 or 4) at `port`.
    ///
    /// Byte-wide devices see a wide access as byte accesses at consecutive
    /// ports (as on an ISA bus); the debug-exit port takes it whole.
    pub fn pio_read(&mut self, port: u16, data: &mut [u8]) -> Effects {
        let mut effects = Effects::default();
        if let Some((Port::DebugExit, _)) = self.bus.lookup(port) {
            self.debug_exit.read(data);
            return effects;
        }
        for (i, byte) in data.iter_mut().enumerate() {
            let port = port.wrapping_add(i as u16);
            *byte = match self.bus.lookup(port) {
                Some((Port::Pic, _)) => self.pic.read(port),
                Some((Port::Pit, _)) => self.pit.read(port),
                Some((Port::I8042, _)) => {
                    let before = self.i8042.pending_input();
                    let value = self.i8042.read(port);
                    effects.keyboard_consumed |= self.i8042.pending_input() < before;
                    value
                }
                Some((Port::Com1, offset)) => self.com1.read(offset as u8),
                Some((Port::DebugExit, _)) => 0xff,
                None => {
                    self.stats.unknown_port_reads += 1;
                    log::debug!("in from unclaimed port {port:#x}");
                    0xff
                }
            };
            log::trace!("in {port:#06x} -> {:#04x}", *byte);
        }
        self.sync_irqs();
        effects
    }

    /// Guest `out` of `data` (1, 2 or 4 bytes) at `port`.
    pub fn pio_write(&mut self, port: u16, data: &[u8]) -> Effects {
        let mut effects = Effects::default();
        if let Some((Port::DebugExit, _)) = self.bus.lookup(port) {
            log::trace!("out {port:#06x} <- {data:02x?} (debug exit)");
            self.debug_exit.write(data);
            return effects;
        }
        for (i, &value) in data.iter().enumerate() {
            let port = port.wrapping_add(i as u16);
            log::trace!("out {port:#06x} <- {value:#04x}");
            match self.bus.lookup(port) {
                Some((Port::Pic, _)) => {
                    self.vectors.observe_write(port, value);
                    if VectorMap::is_master_icw1(port, value) {
                        // Re-initialisation clears IRR: a tick in flight is gone.
                        self.ticks.in_flight = false;
                    }
                    self.pic.write(port, value);
                }
                Some((Port::Pit, _)) => {
                    let before = self.pit.next_irq0_edge();
                    self.pit.write(port, value);
                    effects.timer_changed |= self.pit.next_irq0_edge() != before;
                }
                Some((Port::I8042, _)) => {
                    // A write can release held keys (0xF4, 0xAE, ...); their
                    // IRQ1 edge is routed by `sync_irqs` below.
                    let before = self.i8042.pending_input();
                    self.i8042.write(port, value);
                    effects.keyboard_consumed |= self.i8042.pending_input() < before;
                }
                Some((Port::Com1, offset)) => self.com1.write(offset as u8, value),
                Some((Port::DebugExit, _)) => self.debug_exit.write(&[value]),
                None => {
                    self.stats.unknown_port_writes += 1;
                    log::debug!("out {value:#04x} to unclaimed port {port:#x} ignored");
                }
            }
        }
        self.sync_irqs();
        effects
    }

    /// Copies the devices' interrupt outputs onto the PIC's inputs: the
    /// keyboard and mouse lines follow the output buffer (with a fresh edge
    /// per byte); the UART's interrupt is a pulse.
    pub fn sync_irqs(&mut self) {
        // A byte loaded right after the guest read the previous one keeps the
        // line high: lower it first so the edge-triggered PIC sees a new edge.
        if self.i8042.take_irq1_edge() {
            self.pic.set_irq_level(irq::KEYBOARD, false);
        }
        self.pic
            .set_irq_level(irq::KEYBOARD, self.i8042.irq1_level());
        if self.i8042.take_irq12_edge() {
            self.pic.set_irq_level(irq::MOUSE, false);
        }
        self.pic.set_irq_level(irq::MOUSE, self.i8042.irq12_level());
        if self.com1.take_irq() {
            self.pic.set_irq_level(irq::COM1, true);
            self.pic.set_irq_level(irq::COM1, false);
        }
    }

    /// INTA: the vector to inject, and the IRQ line it belongs to if known.
    ///
    /// Acknowledging IRQ0 completes a tick in flight and sends the next one
    /// owed, if any.
    pub fn acknowledge(&mut self) -> (u8, Option<u8>) {
        let vector = self.pic.acknowledge();
        let line = self.vectors.line(vector);
        if line == Some(irq::TIMER) {
            self.ticks.in_flight = false;
        }
        // Any acknowledge may be what a deferred catch-up tick waits for.
        self.deliver_tick();
        (vector, line)
    }

    /// Collects the channel-0 ticks that happened up to now and delivers what
    /// the guest can take. While `paused`, ticks are discarded (the guest's
    /// time stands still, as with QEMU's stopped virtual clock).
    pub fn collect_ticks(&mut self, paused: bool) {
        let edges = self.pit.take_irq0_edges();
        if paused {
            self.stats.timer_ticks_paused += edges;
            return;
        }
        let room = MAX_TICK_BACKLOG.saturating_sub(self.ticks.owed);
        self.stats.timer_ticks_dropped += edges.saturating_sub(room);
        self.ticks.owed += edges.min(room);
        self.deliver_tick();
    }

    /// Sends one owed tick as an IRQ0 edge unless one is still in flight.
    ///
    /// Catch-up ticks (more than the one just due) yield to every other
    /// device: IRQ0 wins each 8259 arbitration, so a guest working off a
    /// backlog would otherwise never take IRQ1 until the backlog is gone,
    /// and a host too busy to keep up would starve the keyboard for good.
    /// A deferred tick goes out at the next acknowledge.
    fn deliver_tick(&mut self) {
        if self.ticks.in_flight || self.ticks.owed == 0 {
            return;
        }
        let others = self.pic.unmasked_requests() & !(1 << irq::TIMER);
        if self.ticks.owed > 1 && others != 0 {
            return;
        }
        self.ticks.owed -= 1;
        self.ticks.in_flight = true;
        self.stats.timer_ticks_delivered += 1;
        self.pic.set_irq_level(irq::TIMER, true);
        self.pic.set_irq_level(irq::TIMER, false);
    }

    /// Whether the guest has keyboard bytes it has not read yet.
    pub fn keyboard_input_pending(&self) -> bool {
        self.i8042.pending_input() > 0
    }

    /// A request the guest made through a device since the last call.
    pub fn take_guest_request(&mut self) -> Option<GuestRequest> {
        if let Some(value) = self.debug_exit.take_request() {
            return Some(GuestRequest::Exit(value));
        }
        self.i8042
            .take_reset_request()
            .then_some(GuestRequest::Reset)
    }

    /// When channel 0's output next rises, in PIT clock time.
    pub fn next_timer_edge(&self) -> Option<Duration> {
        self.pit.next_irq0_edge()
    }

    /// Channel-0 ticks that happened but are not yet delivered to the guest
    /// (not counting one in flight). A guest that counts ticks runs this many
    /// ticks behind until it has taken them.
    pub fn timer_ticks_owed(&self) -> u64 {
        self.ticks.owed
    }

    /// The platform's counters.
    pub fn stats(&self) -> PlatformStats {
        self.stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_map_is_disjoint() {
        let devices = Devices::new(MonotonicClock::default(), SerialTap::new(), false);
        assert_eq!(devices.bus.lookup(0x21), Some((Port::Pic, 1)));
        assert_eq!(devices.bus.lookup(0x4d1), Some((Port::Pic, 1)));
        assert_eq!(devices.bus.lookup(0x61), Some((Port::Pit, 0)));
        assert_eq!(devices.bus.lookup(0x64), Some((Port::I8042, 0)));
        assert_eq!(devices.bus.lookup(0xf7), Some((Port::DebugExit, 3)));
        assert_eq!(devices.bus.lookup(0x80), None);
    }

    #[test]
    fn unknown_ports_read_ones_and_are_counted() {
        let mut devices = Devices::new(MonotonicClock::default(), SerialTap::new(), false);
        let mut data = [0u8; 4];
        devices.pio_read(0x80, &mut data[..1]);
        assert_eq!(data[0], 0xff);
        devices.pio_write(0x80, &[1, 2]);
        assert_eq!(devices.stats().unknown_port_reads, 1);
        assert_eq!(devices.stats().unknown_port_writes, 2);
    }

    #[test]
    fn debug_exit_takes_a_dword_whole() {
        let mut devices = Devices::new(MonotonicClock::default(), SerialTap::new(), false);
        devices.pio_write(ports::DEBUG_EXIT, &0x10u32.to_le_bytes());
        assert_eq!(devices.take_guest_request(), Some(GuestRequest::Exit(0x10)));
        assert_eq!(devices.take_guest_request(), None);
    }

    #[test]
    fn serial_bytes_reach_the_tap() {
        let tap = SerialTap::new();
        let mut devices = Devices::new(MonotonicClock::default(), tap.clone(), false);
        devices.pio_write(ports::COM1, b"A");
        assert_eq!(tap.snapshot().1, b"A");
    }

    /// Keys typed before the guest's keyboard driver is ready are released by
    /// its 0xF4, inside the port write, and each byte reaches the PIC as a new
    /// IRQ1 edge.
    #[test]
    fn keys_held_at_boot_reach_the_pic_after_f4() {
        let mut devices = Devices::new(MonotonicClock::default(), SerialTap::new(), false);
        for (port, value) in [(0x20, 0x11), (0x21, 32), (0x21, 4), (0x21, 1)] {
            devices.pio_write(port, &[value]);
        }
        for (port, value) in [(0xa0, 0x11), (0xa1, 40), (0xa1, 2), (0xa1, 1)] {
            devices.pio_write(port, &[value]);
        }
        // Only IRQ1 unmasked.
        devices.pio_write(0x21, &[!(1 << irq::KEYBOARD)]);
        devices.i8042.key_event(0x1C, true);
        devices.sync_irqs();
        assert!(devices.keyboard_input_pending());
        assert!(!devices.pic.interrupt_pending());

        let mut byte = [0u8];
        devices.pio_write(ports::I8042_DATA, &[0xF4]);
        assert!(devices.pic.interrupt_pending());
        assert_eq!(
            devices.acknowledge(),
            (32 + irq::KEYBOARD, Some(irq::KEYBOARD))
        );
        let effects = devices.pio_read(ports::I8042_DATA, &mut byte);
        assert_eq!(byte[0], 0xFA);
        assert!(!effects.keyboard_consumed);
        devices.pio_write(0x20, &[0x20]); // EOI
                                          // The line never dropped, yet the held key is a new interrupt.
        assert!(devices.pic.interrupt_pending());
        assert_eq!(
            devices.acknowledge(),
            (32 + irq::KEYBOARD, Some(irq::KEYBOARD))
        );
        let effects = devices.pio_read(ports::I8042_DATA, &mut byte);
        assert_eq!(byte[0], 0x1C);
        assert!(effects.keyboard_consumed);
        assert!(!devices.keyboard_input_pending());
        devices.pio_write(0x20, &[0x20]);
        assert!(!devices.pic.interrupt_pending());

        // A write that releases an event sending no byte (Pause's release)
        // also tells the waiters.
        devices.pio_write(ports::I8042_COMMAND, &[0xAD]);
        devices.i8042.key_event(0xE114, false);
        assert!(devices.keyboard_input_pending());
        let effects = devices.pio_write(ports::I8042_COMMAND, &[0xAE]);
        assert!(effects.keyboard_consumed);
        assert!(!devices.keyboard_input_pending());
    }

    /// With a backlog of timer ticks, IRQ0 would win every arbitration:
    /// catch-up ticks wait while another device is requesting.
    #[test]
    fn catch_up_ticks_yield_to_the_keyboard() {
        let mut devices = Devices::new(MonotonicClock::default(), SerialTap::new(), false);
        for (port, value) in [(0x20, 0x11), (0x21, 32), (0x21, 4), (0x21, 1)] {
            devices.pio_write(port, &[value]);
        }
        for (port, value) in [(0xa0, 0x11), (0xa1, 40), (0xa1, 2), (0xa1, 1)] {
            devices.pio_write(port, &[value]);
        }
        let eoi = |devices: &mut Devices| devices.pio_write(0x20, &[0x20]);
        devices.ticks.owed = 3;
        devices.deliver_tick();
        devices.pic.set_irq_level(irq::KEYBOARD, true);
        assert_eq!(devices.acknowledge(), (32, Some(irq::TIMER)));
        eoi(&mut devices);
        // The keyboard goes first although two ticks are still owed.
        assert_eq!(devices.acknowledge(), (33, Some(irq::KEYBOARD)));
        eoi(&mut devices);
        assert_eq!(devices.acknowledge(), (32, Some(irq::TIMER)));
        eoi(&mut devices);
        assert_eq!(devices.acknowledge(), (32, Some(irq::TIMER)));
        eoi(&mut devices);
        assert!(!devices.pic.interrupt_pending());
        assert_eq!(devices.stats().timer_ticks_delivered, 3);

        // The one tick just due keeps IRQ0's priority.
        devices.ticks.owed = 1;
        devices.pic.set_irq_level(irq::KEYBOARD, false);
        devices.pic.set_irq_level(irq::KEYBOARD, true);
        devices.deliver_tick();
        assert_eq!(devices.acknowledge(), (32, Some(irq::TIMER)));
    }

    /// A platform reset brings every device back to power-on and keeps the
    /// keys the guest has not read.
    #[test]
    fn reset_restores_power_on_and_keeps_held_keys() {
        let mut devices = Devices::new(MonotonicClock::default(), SerialTap::new(), false);
        for (port, value) in [(0x20, 0x11), (0x21, 32), (0x21, 4), (0x21, 1)] {
            devices.pio_write(port, &[value]);
        }
        // PIT channel 0, mode 2, 1 kHz.
        for (port, value) in [(0x43, 0x34), (0x40, 0xa9), (0x40, 0x04)] {
            devices.pio_write(port, &[value]);
        }
        assert!(devices.next_timer_edge().is_some());
        devices.ticks.owed = 5;
        devices.ticks.in_flight = true;
        // The keyboard activated (F4), one key read, one still queued.
        devices.pio_write(ports::I8042_DATA, &[0xF4]);
        let mut byte = [0u8];
        devices.pio_read(ports::I8042_DATA, &mut byte);
        assert_eq!(byte[0], 0xFA);
        devices.pio_write(0x20, &[0x20]);
        devices.i8042.key_event(0x1C, true);
        devices.i8042.key_event(0x1C, false);
        devices.pio_write(ports::DEBUG_EXIT, &[7]);
        devices.pio_write(ports::COM1 + 1, &[0x02]); // IER: THRE

        devices.reset();
        assert_eq!(devices.stats().resets, 1);
        assert_eq!(devices.next_timer_edge(), None);
        assert_eq!((devices.ticks.owed, devices.ticks.in_flight), (0, false));
        assert_eq!(devices.vectors.line(32), None);
        assert!(!devices.pic.interrupt_pending());
        assert_eq!(devices.pic.read(0x21), 0, "IMR at power-on");
        assert_eq!(devices.take_guest_request(), None);
        assert_eq!(devices.i8042.command_byte(), 0x03);
        assert_eq!(devices.com1.read(1), 0, "IER at power-on");
        // Both key events wait for the next driver's F4.
        assert!(devices.keyboard_input_pending());
        assert_eq!(devices.i8042.pending_input(), 2);
        devices.pio_write(ports::I8042_DATA, &[0xF4]);
        let mut got = Vec::new();
        for _ in 0..4 {
            devices.pio_read(ports::I8042_DATA, &mut byte);
            got.push(byte[0]);
        }
        assert_eq!(got, [0xFA, 0x1C, 0xF0, 0x1C]);
        assert!(!devices.keyboard_input_pending());
    }

    #[test]
    fn vector_map_follows_icw2() {
        let mut map = VectorMap::default();
        assert_eq!(map.line(32), None);
        for (port, value) in [(0x20, 0x11), (0x21, 32), (0x21, 4), (0x21, 1)] {
            map.observe_write(port, value);
        }
        for (port, value) in [(0xa0, 0x11), (0xa1, 40), (0xa1, 2), (0xa1, 1)] {
            map.observe_write(port, value);
        }
        assert_eq!(map.line(32), Some(0));
        assert_eq!(map.line(33), Some(1));
        assert_eq!(map.line(39), Some(7));
        assert_eq!(map.line(44), Some(12));
        assert_eq!(map.line(14), None);
    }
}
