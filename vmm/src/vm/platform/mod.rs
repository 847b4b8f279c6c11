//! The PC platform: the machine's port map (every device, the ports it
//! answers and the interrupt lines it drives, in one table), the bus that
//! dispatches guest port accesses through it, the 8259 pair those lines
//! enter, and the time service's view of the devices.
//!
//! Devices are [`PortDevice`]s: the platform knows none of them by type
//! except the interrupt controller. Each access returns a [`Change`]; the
//! platform drives the device's interrupt lines on the PIC as it says,
//! queues periodic timer ticks for one-at-a-time delivery, and hands the
//! rest (deadline moved, input consumed, guest requests) to the machine.
//!
//! Everything lives in one [`Platform`] value behind the machine lock (one
//! vCPU: a single lock is simple, deterministic and uncontended).
use std::any::Any;
use std::time::Duration;

use shared::{irq, ports};

use crate::bus::{OverlapError, PortBus};
use crate::clock::{unix_time_now, Clock, MonotonicClock};
use crate::device::{Change, IrqOutput, PortDevice, MAX_IRQ_PINS};
use crate::devices::debug_exit::DebugExit;
use crate::devices::i8042::I8042;
use crate::devices::pic::{Acknowledged, DualPic};
use crate::devices::pit::Pit;
use crate::devices::rtc::Rtc;
use crate::devices::serial::{Com1, SerialOutput, SerialStats};

/// Timer ticks a line may owe the guest before new ones are dropped.
///
/// Ticks are reinjected one at a time, each once the guest has acknowledged
/// the previous one (as KVM's in-kernel PIT does with its reinject policy), so
/// a guest that was descheduled for a while still counts every tick. Beyond
/// this backlog (one second at 1 kHz) ticks are dropped and counted: a guest
/// that keeps IRQ0 masked for long must not get an interrupt storm afterwards.
/// A guest that unmasks the line forgets the backlog (see
/// `Platform::forget_ticks_on_unmask`).
pub const MAX_TICK_BACKLOG: u64 = 1000;

/// ISA interrupt lines on the 8259 pair.
const ISA_LINES: usize = 16;

/// Counters kept by the platform, for `--stats`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PlatformStats {
    /// Reads of ports no device claims.
    pub unknown_port_reads: u64,
    /// Writes to ports no device claims.
    pub unknown_port_writes: u64,
    /// Timer-tick edges delivered to the PIC.
    pub timer_ticks_delivered: u64,
    /// Timer ticks dropped because the backlog was full.
    pub timer_ticks_dropped: u64,
    /// Timer ticks discarded while the VM was paused.
    pub timer_ticks_paused: u64,
    /// Owed timer ticks cancelled by a re-initialisation (ICW1) of their PIC.
    pub timer_ticks_cancelled: u64,
    /// Owed timer ticks forgotten because the guest unmasked their line.
    pub timer_ticks_unmasked: u64,
    /// Machine resets (guest-requested and host-requested).
    pub resets: u64,
}

/// The port map cannot be built as asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PortMapError {
    /// Two devices claim the same port.
    #[error(transparent)]
    Overlap(#[from] OverlapError),
    /// A device was given more interrupt lines than a device has pins.
    #[error(
        "port range {base:#x}+{len}: {lines} interrupt lines, a device has at most {MAX_IRQ_PINS}"
    )]
    TooManyLines {
        /// First port of the row.
        base: u16,
        /// Number of ports in the row.
        len: u16,
        /// Interrupt lines given.
        lines: usize,
    },
    /// A row names a device that was never attached.
    #[error("port range {base:#x}+{len} names a device that is not in the map")]
    UnknownDevice {
        /// First port of the row.
        base: u16,
        /// Number of ports in the row.
        len: u16,
    },
}

/// A device in the port map: the interrupt controller, or the `n`th device
/// attached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceId {
    /// The 8259 pair, which the platform owns as the interrupt sink.
    InterruptController,
    /// An attached device.
    Device(usize),
}

/// A range of ports in the bus: whose, and how far its first port lies from
/// the device's base (the first port it was registered at).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Window {
    device: DeviceId,
    delta: u16,
}

/// An attached device and the ISA lines its interrupt pins drive.
struct Attached {
    device: Box<dyn PortDevice>,
    base: u16,
    lines: [Option<u8>; MAX_IRQ_PINS],
}

/// The PC's port map: every device with its ports and interrupt lines.
///
/// A device's first row gives its base (the offsets it decodes are from
/// there) and its interrupt lines, pin by pin; further rows add port ranges
/// to a device already in the map.
#[rustfmt::skip]
fn pc_port_map<C: Clock + Clone + 'static>(
    platform: &mut Platform,
    clock: &C,
    rtc_base: Duration,
    serial: SerialOutput,
) -> Result<(), PortMapError> {
    use DeviceId::InterruptController as Pic;
    //                          base                       ports                         device                     interrupt lines
    platform.map(              ports::PIC_MASTER_COMMAND, 2,                            Pic)?;
    platform.map(              ports::PIC_SLAVE_COMMAND,  2,                            Pic)?;
    platform.map(              ports::ELCR_MASTER,        2,                            Pic)?;
    let pit = platform.attach( ports::PIT_CHANNEL0,       4,                            Pit::new(clock.clone()),   &[irq::TIMER])?;
    platform.map(              ports::PORT_B,             1,                            pit)?;
    let i8042 = platform.attach(ports::I8042_DATA,        1,                            I8042::with_firmware_setup(), &[irq::KEYBOARD, irq::MOUSE])?;
    platform.map(              ports::I8042_COMMAND,      1,                            i8042)?;
    platform.attach(           ports::COM1,               ports::COM_PORT_COUNT,        Com1::new(serial, clock.clone()), &[irq::COM1])?;
    platform.attach(           ports::DEBUG_EXIT,         ports::DEBUG_EXIT_SIZE,       DebugExit::new(),          &[])?;
    platform.attach(           ports::RTC_INDEX,          ports::RTC_PORT_COUNT,        Rtc::new(clock.clone(), rtc_base), &[irq::RTC])?;
    Ok(())
}

/// Timer ticks owed on one line.
#[derive(Debug, Default, Clone, Copy)]
struct TickQueue {
    /// Ticks that happened and are not yet delivered.
    owed: u64,
}

/// Every device of the machine, the bus and the interrupt wiring.
pub struct Platform {
    bus: PortBus<Window>,
    pic: DualPic,
    devices: Vec<Attached>,
    /// Timer ticks owed per ISA line. A tick is "in flight" from its edge
    /// until its IRR bit clears: the guest acknowledged it (INTA or poll),
    /// or re-initialised the PIC, which drops it.
    ticks: [TickQueue; ISA_LINES],
    stats: PlatformStats,
}

impl Platform {
    /// The PC's devices (`pc_port_map`) in their power-on state (the i8042
    /// as the firmware leaves it under QEMU: [`I8042::with_firmware_setup`]). Devices
    /// that keep time count on `clock`, which the caller keeps a clone of to
    /// turn deadlines into host timers. COM1 transmits to `serial`.
    pub fn pc(clock: &MonotonicClock, serial: SerialOutput) -> Result<Self, PortMapError> {
        let rtc_base = unix_time_now().saturating_sub(clock.now());
        Self::pc_with_clock(clock, rtc_base, serial)
    }

    /// The PC's devices on any clock (a [`crate::clock::ManualClock`] for
    /// tests and fuzzers), the real-time clock reading `rtc_base` (time since
    /// the Unix epoch) at clock time zero.
    pub fn pc_with_clock<C: Clock + Clone + 'static>(
        clock: &C,
        rtc_base: Duration,
        serial: SerialOutput,
    ) -> Result<Self, PortMapError> {
        let mut platform = Self::empty();
        pc_port_map(&mut platform, clock, rtc_base, serial)?;
        Ok(platform)
    }

    /// A platform with nothing but the interrupt controller (not yet on the
    /// bus): build a machine with [`Self::attach`] and [`Self::map`].
    pub fn empty() -> Self {
        Self {
            bus: PortBus::new(),
            pic: DualPic::new(),
            devices: Vec::new(),
            ticks: [TickQueue::default(); ISA_LINES],
            stats: PlatformStats::default(),
        }
    }

    /// Adds `device` with its first `len` ports at `base` (its base: the
    /// offsets it sees are from there) and its interrupt pins wired, in
    /// order, to the ISA `lines`.
    pub fn attach(
        &mut self,
        base: u16,
        len: u16,
        device: impl PortDevice,
        lines: &[u8],
    ) -> Result<DeviceId, PortMapError> {
        if lines.len() > MAX_IRQ_PINS {
            let lines = lines.len();
            return Err(PortMapError::TooManyLines { base, len, lines });
        }
        let id = DeviceId::Device(self.devices.len());
        let mut pins = [None; MAX_IRQ_PINS];
        for (pin, &line) in pins.iter_mut().zip(lines) {
            *pin = Some(line);
        }
        self.bus.insert(
            base,
            len,
            Window {
                device: id,
                delta: 0,
            },
        )?;
        self.devices.push(Attached {
            device: Box::new(device),
            base,
            lines: pins,
        });
        Ok(id)
    }

    /// Adds `len` ports at `base` to `device`, already in the map (the
    /// interrupt controller's first range makes 0x20 its base).
    pub fn map(&mut self, base: u16, len: u16, device: DeviceId) -> Result<(), PortMapError> {
        let device_base = match device {
            DeviceId::InterruptController => ports::PIC_MASTER_COMMAND,
            DeviceId::Device(index) => match self.devices.get(index) {
                Some(attached) => attached.base,
                None => return Err(PortMapError::UnknownDevice { base, len }),
            },
        };
        let delta = base.wrapping_sub(device_base);
        Ok(self.bus.insert(base, len, Window { device, delta })?)
    }

    /// The first attached device of type `D`, for host-side events.
    fn device_mut<D: PortDevice>(&mut self) -> Option<(usize, &mut D)> {
        self.devices
            .iter_mut()
            .enumerate()
            .find_map(|(index, attached)| {
                let device: &mut dyn Any = attached.device.as_mut();
                device.downcast_mut::<D>().map(|device| (index, device))
            })
    }

    /// The first attached device of type `D`.
    fn device<D: PortDevice>(&self) -> Option<&D> {
        self.devices.iter().find_map(|attached| {
            let device: &dyn Any = attached.device.as_ref();
            device.downcast_ref::<D>()
        })
    }

    /// Machine reset: every device back to its power-on state (devices keep
    /// their clocks, so deadlines stay comparable; the keyboard keeps host
    /// key events the guest has not read: [`I8042::reset`]), every line
    /// low, owed timer ticks dropped. Counters are kept, and count the reset.
    pub fn reset(&mut self) {
        self.pic.reset();
        for attached in &mut self.devices {
            attached.device.reset();
        }
        self.ticks = [TickQueue::default(); ISA_LINES];
        self.stats.resets += 1;
    }

    /// Guest `in` of `data.len()` bytes (1, 2 or 4) at `port`.
    ///
    /// Byte-wide devices see a wide access as byte accesses at consecutive
    /// ports (as on an ISA bus); devices that take wide accesses get it whole.
    /// Interrupt lines are already driven; the rest of the change is the
    /// machine's to act on.
    pub fn pio_read(&mut self, port: u16, data: &mut [u8]) -> Change {
        if let Some(window) = self.wide_window(port, data.len()) {
            return self.read_window(window, port, data);
        }
        let mut change = Change::NONE;
        for (i, byte) in data.iter_mut().enumerate() {
            let port = port.wrapping_add(i as u16);
            let mut value = [0xff];
            match self.locate(port) {
                Some(window) => {
                    change = change.then(self.read_window(window, port, &mut value));
                }
                None => {
                    self.stats.unknown_port_reads += 1;
                    log::debug!("in from unclaimed port {port:#x}");
                }
            }
            *byte = value[0];
        }
        change
    }

    /// Guest `out` of `data` (1, 2 or 4 bytes) at `port`; see
    /// [`Self::pio_read`].
    pub fn pio_write(&mut self, port: u16, data: &[u8]) -> Change {
        if let Some(window) = self.wide_window(port, data.len()) {
            return self.write_window(window, port, data);
        }
        let mut change = Change::NONE;
        for (i, &value) in data.iter().enumerate() {
            let port = port.wrapping_add(i as u16);
            match self.locate(port) {
                Some(window) => {
                    change = change.then(self.write_window(window, port, &[value]));
                }
                None => {
                    self.stats.unknown_port_writes += 1;
                    log::debug!("out {value:#04x} to unclaimed port {port:#x} ignored");
                }
            }
        }
        change
    }

    /// The window (with the offset of `port` in its device) if `port` belongs
    /// to a device that takes `len`-byte accesses whole.
    fn wide_window(&self, port: u16, len: usize) -> Option<Window> {
        if len <= 1 {
            return None;
        }
        let window = self.locate(port)?;
        let DeviceId::Device(index) = window.device else {
            return None;
        };
        self.devices[index].device.wide_access().then_some(window)
    }

    /// The device at `port`, with `delta` the port's offset from the
    /// device's base (what the device decodes).
    fn locate(&self, port: u16) -> Option<Window> {
        let (window, offset) = self.bus.lookup(port)?;
        Some(Window {
            delta: window.delta.wrapping_add(offset),
            ..window
        })
    }

    /// Reads the device register at `window` (whose delta is the offset).
    fn read_window(&mut self, window: Window, port: u16, data: &mut [u8]) -> Change {
        let change = match window.device {
            DeviceId::InterruptController => PortDevice::read(&mut self.pic, window.delta, data),
            DeviceId::Device(index) => self.devices[index].device.read(window.delta, data),
        };
        log::trace!("in {port:#06x} -> {data:02x?}");
        self.route(window.device, change, false)
    }

    /// Writes the device register at `window` (whose delta is the offset).
    fn write_window(&mut self, window: Window, port: u16, data: &[u8]) -> Change {
        log::trace!("out {port:#06x} <- {data:02x?}");
        let change = match window.device {
            DeviceId::InterruptController => {
                let masked_before = self.pic.masked_lines();
                let change = PortDevice::write(&mut self.pic, window.delta, data);
                self.cancel_ticks_on_icw1(port, data);
                self.forget_ticks_on_unmask(masked_before);
                change
            }
            DeviceId::Device(index) => self.devices[index].device.write(window.delta, data),
        };
        self.route(window.device, change, false)
    }

    /// Drives `device`'s interrupt lines as `change` says (timer ticks are
    /// queued, or discarded and counted while `paused`), and returns the
    /// change for the machine.
    fn route(&mut self, device: DeviceId, change: Change, paused: bool) -> Change {
        let DeviceId::Device(index) = device else {
            return change;
        };
        let lines = self.devices[index].lines;
        for (output, line) in change.irq.into_iter().zip(lines) {
            let (Some(output), Some(line)) = (output, line) else {
                continue;
            };
            match output {
                IrqOutput::Level(level) => self.pic.set_irq_level(line, level),
                IrqOutput::Reassert => {
                    self.pic.set_irq_level(line, false);
                    self.pic.set_irq_level(line, true);
                }
                IrqOutput::Pulse => {
                    self.pic.set_irq_level(line, true);
                    self.pic.set_irq_level(line, false);
                }
                IrqOutput::Ticks(ticks) => self.queue_ticks(line, ticks, paused),
            }
        }
        change
    }

    /// Owes `ticks` more timer ticks on `line` (dropping beyond the backlog)
    /// and delivers what the guest can take. While `paused` they are
    /// discarded (the guest's time stands still, as with QEMU's stopped
    /// virtual clock).
    fn queue_ticks(&mut self, line: u8, ticks: u64, paused: bool) {
        if paused {
            self.stats.timer_ticks_paused += ticks;
            return;
        }
        let Some(queue) = self.ticks.get_mut(usize::from(line)) else {
            return;
        };
        let room = MAX_TICK_BACKLOG.saturating_sub(queue.owed);
        self.stats.timer_ticks_dropped += ticks.saturating_sub(room);
        queue.owed += ticks.min(room);
        self.deliver_ticks();
    }

    /// ICW1 starts a chip over (IRR, ISR and IMR cleared): the ticks its
    /// lines still owe belong to the programming the guest just abandoned.
    /// Delivered later they would be requests no device made since, which
    /// neither a real 8259 (an edge while IRR is set is merged) nor QEMU
    /// shows; a guest re-initialising its PIC (Linux at boot, a kernel after
    /// a firmware) expects a quiet controller.
    fn cancel_ticks_on_icw1(&mut self, port: u16, data: &[u8]) {
        const ICW1: u8 = 0x10;
        let lines = match port {
            ports::PIC_MASTER_COMMAND => 0..8,
            ports::PIC_SLAVE_COMMAND => 8..ISA_LINES,
            _ => return,
        };
        if data.first().is_none_or(|&value| value & ICW1 == 0) {
            return;
        }
        for queue in &mut self.ticks[lines] {
            self.stats.timer_ticks_cancelled += std::mem::take(&mut queue.owed);
        }
    }

    /// Drops the ticks owed on every line the guest just unmasked (masked in
    /// `masked_before`, unmasked now), as KVM's in-kernel PIT does
    /// (`pit_mask_notifer` resets its reinjection state when IRQ0 is
    /// unmasked).
    ///
    /// A guest that unmasks its timer line is (re)starting to take ticks,
    /// not asking for the ones it missed. Linux masks IRQ0 on every tick
    /// (`handle_level_irq`: mask and specific EOI, the handler, unmask), so
    /// this is also what keeps a backlog from replaying at Linux: under
    /// `kvm_pvm` one tick costs it milliseconds of emulated instructions, and
    /// catching up on the ticks owed from its boot (interrupts off for
    /// seconds, up to [`MAX_TICK_BACKLOG`]) kept it doing nothing but IRQ0
    /// for minutes.
    fn forget_ticks_on_unmask(&mut self, masked_before: u16) {
        let unmasked = masked_before & !self.pic.masked_lines();
        for line in 0..ISA_LINES {
            if unmasked & (1 << line) != 0 {
                let queue = &mut self.ticks[line];
                self.stats.timer_ticks_unmasked += queue.owed;
                queue.owed = 0;
            }
        }
    }

    /// Sends one owed tick per line as an edge unless that line's previous
    /// tick is still in flight (its IRR bit set).
    ///
    /// Catch-up ticks (more than the one just due) yield to every other
    /// device: the timer wins each 8259 arbitration, so a guest working off a
    /// backlog would otherwise never take IRQ1 until the backlog is gone,
    /// and a host too busy to keep up would starve the keyboard for good.
    /// A deferred tick goes out at the next acknowledge.
    fn deliver_ticks(&mut self) {
        for line in 0..ISA_LINES as u8 {
            let owed = self.ticks[usize::from(line)].owed;
            if owed == 0 || self.pic.is_requested(line) {
                continue;
            }
            let others = self.pic.unmasked_requests() & !(1 << line);
            if owed > 1 && others != 0 {
                continue;
            }
            self.ticks[usize::from(line)].owed -= 1;
            self.stats.timer_ticks_delivered += 1;
            self.pic.set_irq_level(line, true);
            self.pic.set_irq_level(line, false);
        }
    }

    /// The interrupt controller, for inspection ([`DualPic::chips`]).
    pub fn pic(&self) -> &DualPic {
        &self.pic
    }

    /// Whether the PIC's INT output is asserted: an interrupt waits for the
    /// CPU.
    pub fn interrupt_pending(&self) -> bool {
        self.pic.interrupt_pending()
    }

    /// INTA: the vector to inject and the line it came from. Acknowledging
    /// a timer tick lets the next owed one go out.
    pub fn acknowledge(&mut self) -> Acknowledged {
        let acknowledged = self.pic.acknowledge();
        // Any acknowledge may be what a deferred catch-up tick waits for.
        self.deliver_ticks();
        acknowledged
    }

    /// The earliest deadline of any device (in the machine clock's time):
    /// when the time service must next call [`Self::advance_time`].
    pub fn next_deadline(&self) -> Option<Duration> {
        self.devices
            .iter()
            .filter_map(|attached| attached.device.next_deadline())
            .min()
    }

    /// The machine's clock moved on: every device with a deadline acts on
    /// what happened up to now, and its interrupts are routed (timer ticks
    /// discarded while `paused`). Returns what the machine must act on.
    pub fn advance_time(&mut self, paused: bool) -> Change {
        let mut change = Change::NONE;
        for index in 0..self.devices.len() {
            if self.devices[index].device.next_deadline().is_none() {
                continue;
            }
            let happened = self.devices[index].device.on_deadline();
            change = change.then(self.route(DeviceId::Device(index), happened, paused));
        }
        change
    }

    /// Host key event for the PS/2 keyboard (set-2 make code, `0xE0xx` for
    /// extended keys); it is held until the guest's driver listens. Returns
    /// what changed (interrupt lines are already driven).
    pub fn key_event(&mut self, set2_code: u16, down: bool) -> Change {
        let Some((index, keyboard)) = self.device_mut::<I8042>() else {
            log::debug!("key event with no keyboard in the machine");
            return Change::NONE;
        };
        let change = keyboard.host_key_event(set2_code, down);
        self.route(DeviceId::Device(index), change, false)
    }

    /// Whether the guest has keyboard input it has not read yet.
    pub fn keyboard_input_pending(&self) -> bool {
        self.device::<I8042>()
            .is_some_and(|keyboard| keyboard.pending_input() > 0)
    }

    /// Host bytes for COM1's receiver: queued in the UART and fed to the
    /// guest as its receiver has room (see `devices::serial`). Returns what
    /// changed (interrupt lines are already driven).
    pub fn serial_input(&mut self, bytes: &[u8]) -> Change {
        let Some((index, uart)) = self.device_mut::<Com1>() else {
            log::debug!("serial input with no UART in the machine");
            return Change::NONE;
        };
        let change = uart.host_input(bytes);
        self.route(DeviceId::Device(index), change, false)
    }

    /// Whether the guest has COM1 input it has not read yet.
    pub fn serial_input_pending(&self) -> bool {
        self.device::<Com1>()
            .is_some_and(|uart| uart.pending_input() > 0)
    }

    /// COM1's counters (zero if the machine has no UART).
    pub fn serial_stats(&self) -> SerialStats {
        self.device::<Com1>().map(Com1::stats).unwrap_or_default()
    }

    /// Timer ticks that happened but are not yet delivered to the guest
    /// (not counting one in flight). A guest that counts ticks runs this many
    /// ticks behind until it has taken them.
    pub fn timer_ticks_owed(&self) -> u64 {
        self.ticks.iter().map(|queue| queue.owed).sum()
    }

    /// The platform's counters.
    pub fn stats(&self) -> PlatformStats {
        self.stats
    }
}

#[cfg(test)]
mod tests;
