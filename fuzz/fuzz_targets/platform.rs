//! The whole PC platform (`vmm::vm::platform::Platform`, the port map the
//! VMM runs) on a manual clock: random port reads and writes of every width
//! to every port, host key events, time passing and the timer service,
//! INTA cycles, and the machine resets the guest asks for.
//!
//! Checked after every step, against the reference 8259A arbitration over
//! the PIC's registers:
//! - `interrupt_pending` is what the master's registers say;
//! - an INTA returns a vector of a line that was requested, unmasked and
//!   of the highest priority (never the cascade line), or a spurious vector
//!   only when nothing was pending;
//! - timer ticks owed stay within the documented backlog;
//! - after the timer service ran, no device deadline is in the past;
//! - a machine reset leaves no interrupt pending.
#![no_main]

use std::time::Duration;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use shared::irq::CASCADE;
use shared::ports;
use vmm::clock::{Clock, ManualClock};
use vmm::device::MachineRequest;
use vmm::vm::platform::{Platform, MAX_TICK_BACKLOG};
use vmm_fuzz::pic_ref::pending;

/// Every port a device answers, and neighbours.
const PORTS: [u16; 24] = [
    ports::PIC_MASTER_COMMAND,
    ports::PIC_MASTER_DATA,
    ports::PIC_SLAVE_COMMAND,
    ports::PIC_SLAVE_DATA,
    ports::ELCR_MASTER,
    ports::ELCR_SLAVE,
    ports::PIT_CHANNEL0,
    ports::PIT_CHANNEL1,
    ports::PIT_CHANNEL2,
    ports::PIT_COMMAND,
    ports::PORT_B,
    ports::I8042_DATA,
    ports::I8042_COMMAND,
    ports::COM1,
    ports::COM1 + 1,
    ports::COM1 + 2,
    ports::COM1 + 3,
    ports::COM1 + 4,
    ports::COM1 + 5,
    ports::COM1 + 7,
    ports::DEBUG_EXIT,
    ports::RTC_INDEX,
    ports::RTC_DATA,
    0xFFFF,
];

#[derive(Arbitrary, Debug)]
enum Port {
    Known(u8),
    Any(u16),
}

impl Port {
    fn get(&self) -> u16 {
        match *self {
            Port::Known(i) => PORTS[usize::from(i) % PORTS.len()],
            Port::Any(port) => port,
        }
    }
}

#[derive(Arbitrary, Debug)]
enum Width {
    Byte,
    Word,
    Dword,
}

impl Width {
    fn len(&self) -> usize {
        match self {
            Width::Byte => 1,
            Width::Word => 2,
            Width::Dword => 4,
        }
    }
}

#[derive(Arbitrary, Debug)]
enum Step {
    Read(Port, Width),
    Write(Port, Width, u32),
    Key(u16, bool),
    /// Time passes (cubed input: short steps are common).
    Advance(u16),
    /// The timer service runs (`paused`: the VM is stopped).
    Service(bool),
    /// The timer service sleeps until the next deadline and runs.
    RunToDeadline,
    Acknowledge,
    /// The guest's usual set-up: PIC at 32/40, PIT at 1 kHz, keyboard on.
    Init,
}

const INIT: [(u16, u8); 16] = [
    (0x20, 0x11),
    (0x21, 32),
    (0x21, 4),
    (0x21, 1),
    (0xA0, 0x11),
    (0xA1, 40),
    (0xA1, 2),
    (0xA1, 1),
    (0x43, 0x34),
    (0x40, 0xA9),
    (0x40, 0x04),
    (0x64, 0xAE),
    (0x64, 0x60),
    (0x60, 0x01),
    (0x60, 0xF4),
    (0x21, 0x00),
];

struct Checker {
    platform: Platform,
    clock: ManualClock,
}

impl Checker {
    fn requests(&mut self, request: Option<MachineRequest>) {
        if request == Some(MachineRequest::Reset) {
            self.platform.reset();
            assert!(
                !self.platform.interrupt_pending(),
                "an interrupt pending after a reset"
            );
        }
    }

    fn acknowledge(&mut self) {
        let before = self.platform.pic().chips();
        let was_pending = self.platform.interrupt_pending();
        let got = self.platform.acknowledge();
        assert_ne!(got.line, CASCADE, "the cascade line delivered itself");
        let (index, local) = (usize::from(got.line / 8), got.line & 7);
        let b = &before[index];
        assert_eq!(got.vector, b.irq_base | local);
        if got.spurious {
            assert!(
                !was_pending || index == 1,
                "spurious IRQ 7 with a request pending"
            );
            return;
        }
        assert!(was_pending, "INTA served line {} with INT low", got.line);
        assert_eq!(
            pending(b, index == 0),
            Some(local),
            "INTA served line {} in {before:?}",
            got.line
        );
        if index == 1 {
            assert_eq!(pending(&before[0], true), Some(CASCADE));
        }
    }

    fn check(&self) {
        let chips = self.platform.pic().chips();
        assert_eq!(
            self.platform.interrupt_pending(),
            pending(&chips[0], true).is_some(),
            "INT disagrees with {chips:?}"
        );
        assert!(
            self.platform.timer_ticks_owed() <= MAX_TICK_BACKLOG,
            "tick backlog exceeded"
        );
    }

    fn service(&mut self, paused: bool) {
        let change = self.platform.advance_time(paused);
        self.requests(change.request);
        if let Some(deadline) = self.platform.next_deadline() {
            assert!(
                deadline > self.clock.now(),
                "deadline {deadline:?} in the past at {:?}",
                self.clock.now()
            );
        }
    }
}

fuzz_target!(|steps: Vec<Step>| {
    let clock = ManualClock::new();
    let platform = Platform::pc_with_clock(
        &clock,
        Duration::from_secs(1_700_000_000),
        Box::new(std::io::sink()),
    )
    .expect("the PC port map is valid");
    let mut c = Checker { platform, clock };
    for step in steps.into_iter().take(1000) {
        match step {
            Step::Read(port, width) => {
                let mut data = [0u8; 4];
                let change = c.platform.pio_read(port.get(), &mut data[..width.len()]);
                c.requests(change.request);
            }
            Step::Write(port, width, value) => {
                let bytes = value.to_le_bytes();
                let change = c.platform.pio_write(port.get(), &bytes[..width.len()]);
                c.requests(change.request);
            }
            Step::Key(code, down) => {
                let change = c.platform.key_event(code, down);
                c.requests(change.request);
            }
            Step::Advance(n) => {
                let n = u64::from(n);
                c.clock.advance(Duration::from_nanos(n * n * n / 256));
            }
            Step::Service(paused) => c.service(paused),
            Step::RunToDeadline => {
                if let Some(deadline) = c.platform.next_deadline() {
                    if deadline > c.clock.now() {
                        c.clock.set(deadline);
                    }
                    c.service(false);
                }
            }
            Step::Acknowledge => c.acknowledge(),
            Step::Init => {
                for (port, value) in INIT {
                    let change = c.platform.pio_write(port, &[value]);
                    c.requests(change.request);
                }
            }
        }
        c.check();
    }
});
