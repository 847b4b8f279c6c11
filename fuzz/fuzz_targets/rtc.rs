//! The MC146818 RTC on a manual clock that only moves forward, driven by a
//! guest (index and data port accesses, any value) and by the machine's
//! timer service.
//!
//! Checked:
//! - while the clock runs (SET clear, dividers counting), every time
//!   register reads as a valid value in the format register B selects:
//!   valid BCD digits in BCD mode, seconds and minutes 0-59, hours 0-23 or
//!   1-12 with the PM bit in 12-hour mode, day of week 1-7, day 1-31,
//!   month 1-12, year and century 0-99;
//! - register C clears on read: a second read at the same instant is 0,
//!   and the interrupt pin is low after it; IRQF in the value read is
//!   `PF & PIE | AF & AIE | UF & UIE` of the register B in effect;
//! - register D reads VRT; the index port reads 0xFF;
//! - after the timer service collects, the next deadline is not in the
//!   past; running to a deadline raises IRQF (the pin goes high).
#![no_main]

use std::time::Duration;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use shared::rtc::{reg, reg_a, reg_b, reg_c, reg_d};
use vmm::clock::{Clock, ManualClock};
use vmm::device::{Change, IrqOutput, PortDevice};
use vmm::devices::rtc::{Rtc, DATA_PORT, INDEX_PORT, IRQ_PIN};

/// The registers worth aiming at (any index is reachable through `Index`).
const REGISTERS: [u8; 16] = [
    reg::SECONDS,
    reg::SECONDS_ALARM,
    reg::MINUTES,
    reg::MINUTES_ALARM,
    reg::HOURS,
    reg::HOURS_ALARM,
    reg::DAY_OF_WEEK,
    reg::DAY_OF_MONTH,
    reg::MONTH,
    reg::YEAR,
    reg::A,
    reg::B,
    reg::C,
    reg::D,
    reg::CENTURY,
    reg::PS2_CENTURY,
];

#[derive(Arbitrary, Debug)]
enum Step {
    /// Select any index (bit 7 is NMI disable).
    Index(u8),
    /// Write a register the usual way: index, then data.
    Set(u8, u8),
    /// Write the data port with whatever index is selected.
    WriteData(u8),
    ReadData,
    ReadIndexPort,
    /// Read B, then C twice.
    ReadFlags,
    /// Read every time register and check it.
    ReadTime,
    /// Time passes (cubed input: short steps are common, up to ~4.5 hours).
    Advance(u16),
    Collect,
    RunToDeadline,
}

struct Checker {
    rtc: Rtc<ManualClock>,
    clock: ManualClock,
    /// The interrupt pin as the changes reported it.
    pin: bool,
}

fn bcd_ok(value: u8) -> bool {
    value & 0x0F <= 9 && value >> 4 <= 9
}

impl Checker {
    fn apply(&mut self, change: Change) {
        match change.irq[IRQ_PIN] {
            None => {}
            Some(IrqOutput::Level(level)) => self.pin = level,
            Some(IrqOutput::Pulse) => self.pin = false,
            Some(other) => panic!("RTC pin output {other:?}"),
        }
    }

    fn write(&mut self, offset: u16, value: u8) {
        let change = self.rtc.write(offset, &[value]);
        self.apply(change);
    }

    fn read(&mut self, offset: u16) -> u8 {
        let mut data = [0];
        let change = self.rtc.read(offset, &mut data);
        self.apply(change);
        data[0]
    }

    fn read_register(&mut self, index: u8) -> u8 {
        self.write(INDEX_PORT, index);
        self.read(DATA_PORT)
    }

    fn read_flags(&mut self) {
        let b = self.read_register(reg::B);
        let c = self.read_register(reg::C);
        let again = self.read(DATA_PORT);
        assert_eq!(
            again, 0,
            "register C did not clear on read (first {c:#04x})"
        );
        assert!(!self.pin, "IRQ 8 high after reading C");
        let enabled = (c & reg_c::PF != 0 && b & reg_b::PIE != 0)
            || (c & reg_c::AF != 0 && b & reg_b::AIE != 0)
            || (c & reg_c::UF != 0 && b & reg_b::UIE != 0);
        assert_eq!(
            c & reg_c::IRQF != 0,
            enabled,
            "IRQF of C {c:#04x} with B {b:#04x}"
        );
        assert_eq!(c & 0x0F, 0, "C's low bits read 0");
    }

    fn read_time(&mut self) {
        let a = self.read_register(reg::A);
        let b = self.read_register(reg::B);
        let running = a & reg_a::DIVIDER_MASK <= reg_a::DIVIDER_32KHZ && b & reg_b::SET == 0;
        let bcd = b & reg_b::DM_BINARY == 0;
        let decode = |v: u8| if bcd { (v >> 4) * 10 + (v & 0x0F) } else { v };
        for (index, range) in [
            (reg::SECONDS, 0..=59),
            (reg::MINUTES, 0..=59),
            (reg::DAY_OF_WEEK, 1..=7),
            (reg::DAY_OF_MONTH, 1..=31),
            (reg::MONTH, 1..=12),
            (reg::YEAR, 0..=99),
            (reg::CENTURY, 0..=99),
            (reg::HOURS, 0..=23),
        ] {
            let raw = self.read_register(index);
            if !running {
                continue;
            }
            let (raw, range) = if index == reg::HOURS && b & reg_b::HOUR_24 == 0 {
                (raw & !0x80, 1..=12)
            } else {
                (raw, range)
            };
            if bcd {
                assert!(
                    bcd_ok(raw),
                    "register {index:#x} = {raw:#04x} is not BCD (B {b:#04x})"
                );
            }
            assert!(
                range.contains(&decode(raw)),
                "register {index:#x} = {raw:#04x} out of range (B {b:#04x})"
            );
        }
        assert_eq!(self.read_register(reg::D), reg_d::VRT);
    }

    fn check_deadline(&self) {
        if let Some(deadline) = self.rtc.next_deadline() {
            assert!(
                deadline > self.clock.now(),
                "deadline {deadline:?} in the past at {:?}",
                self.clock.now()
            );
        }
    }
}

fuzz_target!(|input: (u32, Vec<Step>)| {
    let (base, steps) = input;
    let clock = ManualClock::new();
    // Any time of day between 1970 and 2106.
    let rtc = Rtc::new(clock.clone(), Duration::from_secs(u64::from(base)));
    let mut c = Checker {
        rtc,
        clock,
        pin: false,
    };
    for step in steps.into_iter().take(500) {
        match step {
            Step::Index(index) => c.write(INDEX_PORT, index),
            Step::Set(index, value) => {
                c.write(INDEX_PORT, REGISTERS[usize::from(index) % REGISTERS.len()]);
                c.write(DATA_PORT, value);
            }
            Step::WriteData(value) => c.write(DATA_PORT, value),
            Step::ReadData => {
                c.read(DATA_PORT);
            }
            Step::ReadIndexPort => assert_eq!(c.read(INDEX_PORT), 0xFF),
            Step::ReadFlags => c.read_flags(),
            Step::ReadTime => c.read_time(),
            Step::Advance(n) => {
                let n = u64::from(n);
                c.clock.advance(Duration::from_nanos(n * n * n / 16));
            }
            Step::Collect => {
                let change = c.rtc.on_deadline();
                c.apply(change);
                c.check_deadline();
            }
            Step::RunToDeadline => {
                let Some(deadline) = c.rtc.next_deadline() else {
                    continue;
                };
                if deadline > c.clock.now() {
                    c.clock.set(deadline);
                }
                let change = c.rtc.on_deadline();
                c.apply(change);
                assert!(
                    c.pin,
                    "ran to the deadline {deadline:?} and IRQF did not rise"
                );
                c.check_deadline();
            }
        }
    }
});
