//! The port-I/O device interface: what every legacy device of the machine
//! implements, and the small [`Change`] value each access returns.
//!
//! A device is a plain state machine. The machine owns it, registers it once
//! in its port map (base, length, device, interrupt lines: see
//! `vm::platform`), and calls it through [`PortDevice`] only. A device never
//! reaches the machine: whatever the machine must act on after an access (an
//! interrupt line to drive, a deadline that moved, host input consumed, a
//! request such as exit or reset) comes back in the [`Change`] it returns.
//!
//! Devices that keep time read an injected [`crate::clock::Clock`]; the
//! machine's timer service asks each for its [`PortDevice::next_deadline`],
//! sleeps until the earliest, and calls [`PortDevice::on_deadline`].
use std::any::Any;
use std::time::Duration;

/// Interrupt pins a device may have (the i8042 has two: IRQ1 and IRQ12).
pub const MAX_IRQ_PINS: usize = 2;

/// What a device did to one of its interrupt output pins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IrqOutput {
    /// The pin now sits at this level.
    Level(bool),
    /// A new interrupt on a pin that may already be high: the line drops and
    /// rises again, so an edge-triggered 8259 input sees a fresh edge, and
    /// stays high.
    Reassert,
    /// One rising edge, and the pin back low (an interrupt pulse).
    Pulse,
    /// This many periodic timer ticks happened. Each is one interrupt the
    /// guest should see: the machine delivers them one at a time, each after
    /// the guest acknowledged the previous one (KVM's reinjection policy for
    /// the PIT), so a guest that was descheduled still counts every tick.
    Ticks(u64),
}

/// A request a device passes from the guest to the machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MachineRequest {
    /// Stop the machine; the guest's exit value (the debug-exit port).
    Exit(u32),
    /// Reset the machine (the i8042 reset pulse).
    Reset,
}

/// What changed in a device because of one access or one host event: the
/// machine acts on it. The default is "nothing the machine must know".
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[must_use = "a Change carries interrupts and requests the machine must act on"]
pub struct Change {
    /// New output of each interrupt pin, by pin (pin `n` is the `n`th
    /// interrupt line the device was registered with); `None`: unchanged.
    pub irq: [Option<IrqOutput>; MAX_IRQ_PINS],
    /// The device's [`PortDevice::next_deadline`] may have moved: the
    /// timer service must look again.
    pub deadline_moved: bool,
    /// Host input queued in the device was consumed (the guest read the last
    /// byte of a key event, ...): whoever waits for input to drain looks
    /// again.
    pub input_consumed: bool,
    /// The guest asked the machine for something.
    pub request: Option<MachineRequest>,
}

impl Change {
    /// No change.
    pub const NONE: Change = Change {
        irq: [None; MAX_IRQ_PINS],
        deadline_moved: false,
        input_consumed: false,
        request: None,
    };

    /// A change of interrupt pin `pin` only.
    pub fn irq(pin: usize, output: IrqOutput) -> Change {
        let mut change = Change::NONE;
        change.irq[pin] = Some(output);
        change
    }

    /// A guest request only.
    pub fn request(request: MachineRequest) -> Change {
        Change {
            request: Some(request),
            ..Change::NONE
        }
    }

    /// `self` followed by `later`, as one change: for each pin the later
    /// output wins, except that an edge is never lost behind a level (an
    /// edge then "high" is a fresh edge left high, an edge then "low" is a
    /// pulse) and ticks add up; the flags are or-ed and the first request
    /// is kept.
    pub fn then(mut self, later: Change) -> Change {
        use IrqOutput::{Level, Pulse, Reassert, Ticks};
        for (pin, next) in self.irq.iter_mut().zip(later.irq) {
            *pin = match (*pin, next) {
                (old, None) => old,
                (Some(Ticks(a)), Some(Ticks(b))) => Some(Ticks(a.saturating_add(b))),
                (Some(Pulse | Reassert), Some(Level(true))) => Some(Reassert),
                (Some(Pulse | Reassert), Some(Level(false))) => Some(Pulse),
                (_, new) => new,
            };
        }
        self.deadline_moved |= later.deadline_moved;
        self.input_consumed |= later.input_consumed;
        self.request = self.request.or(later.request);
        self
    }
}

/// A device on the port-I/O bus.
///
/// `offset` is the port's distance from the device's *base*: the first port
/// it was registered at. A device registered at several ranges (the PIC pair
/// at 0x20, 0xA0 and 0x4D0) sees each range at its distance from that base,
/// and names those offsets in its own module.
///
/// Accesses wider than a byte reach the device whole only if
/// [`PortDevice::wide_access`] says so; otherwise the bus splits them into
/// byte accesses at consecutive ports, as an ISA bus does.
///
/// A device never trusts the guest: any offset, width and value must leave it
/// in a valid state without panicking.
pub trait PortDevice: Any + Send {
    /// A short name for logs and statistics (`"pit"`, `"i8042"`, ...).
    fn name(&self) -> &'static str;

    /// Guest `in`: fill `data` (1 byte, or 1-4 with [`Self::wide_access`])
    /// from the register at `offset`.
    fn read(&mut self, offset: u16, data: &mut [u8]) -> Change;

    /// Guest `out` of `data` to the register at `offset`.
    fn write(&mut self, offset: u16, data: &[u8]) -> Change;

    /// Machine reset: back to the power-on state. Interrupt pins are low
    /// after it (the machine lowers every line itself).
    fn reset(&mut self);

    /// Whether 2- and 4-byte accesses reach the device whole.
    fn wide_access(&self) -> bool {
        false
    }

    /// The clock time at which the device next needs to act without a guest
    /// access (a timer edge, a periodic interrupt, an alarm), if any. It may
    /// lie in the past: the machine then calls [`Self::on_deadline`] at once.
    fn next_deadline(&self) -> Option<Duration> {
        None
    }

    /// The machine's clock reached (or passed) the device's deadline: act on
    /// everything that happened up to now. Also called when the machine
    /// collects time for another reason; a device with nothing due returns
    /// [`Change::NONE`].
    fn on_deadline(&mut self) -> Change {
        Change::NONE
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use IrqOutput::{Level, Pulse, Reassert, Ticks};

    fn pin(output: IrqOutput) -> Change {
        Change::irq(0, output)
    }

    #[test]
    fn merged_changes_keep_every_edge() {
        assert_eq!(pin(Pulse).then(pin(Level(true))).irq[0], Some(Reassert));
        assert_eq!(pin(Reassert).then(pin(Level(false))).irq[0], Some(Pulse));
        assert_eq!(
            pin(Level(true)).then(pin(Level(false))).irq[0],
            Some(Level(false))
        );
        assert_eq!(pin(Ticks(2)).then(pin(Ticks(3))).irq[0], Some(Ticks(5)));
        assert_eq!(pin(Pulse).then(Change::NONE).irq[0], Some(Pulse));
        assert_eq!(Change::NONE.then(pin(Reassert)).irq[0], Some(Reassert));
    }

    #[test]
    fn merged_changes_keep_flags_and_the_first_request() {
        let first = Change {
            deadline_moved: true,
            ..Change::request(MachineRequest::Exit(3))
        };
        let second = Change {
            input_consumed: true,
            ..Change::request(MachineRequest::Reset)
        };
        let merged = first.then(second);
        assert!(merged.deadline_moved && merged.input_consumed);
        assert_eq!(merged.request, Some(MachineRequest::Exit(3)));
        assert_eq!(merged.irq, [None; MAX_IRQ_PINS]);
    }
}
