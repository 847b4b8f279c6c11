//! The i8042 controller and its PS/2 keyboard: host key events interleaved
//! with anything a guest writes to and reads from ports 0x60 and 0x64, and
//! machine resets when the guest pulses the reset line.
//!
//! The model promises never to lose or duplicate a host key event: no
//! guest command flushes the host queue (keyboard reset 0xFF, defaults
//! 0xF6, disable 0xF5, interface disable 0xAD, scancode-set changes and a
//! machine reset all keep it; only bytes of the keyboard's *replies* are
//! discarded by a following command). Events are only held while the
//! keyboard is not listening. So, tracking the events injected:
//! - the keyboard's count of events not completely read
//!   (`pending_input`) always equals the events injected minus those the
//!   guest finished reading, and only drops by a guest access;
//! - every keystroke byte the guest reads belongs to the oldest event not
//!   completely read (in order, none skipped; an event cut by a machine
//!   reset is sent again whole);
//! - a final driver initialisation (enable the interface, IRQ1 on, enable
//!   scanning) then reads every remaining event out, none lost;
//! - the status register's OBF/AUX_OBF agree with what a data read
//!   returns (a new byte, or the last one again when OBF is clear);
//! - IRQ1 is high exactly when the buffer holds a keyboard byte and command
//!   byte bit 0 is set, IRQ12 when it holds an aux byte and bit 1 is set,
//!   and the `Change` of every access says so.
#![no_main]

use std::collections::VecDeque;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use shared::ports::{I8042_COMMAND, I8042_DATA};
use vmm::device::{Change, IrqOutput, MachineRequest, PortDevice};
use vmm::devices::i8042::{offset, pin, I8042};

/// Status register bits.
const OBF: u8 = 0x01;
const AUX_OBF: u8 = 0x20;

/// Key codes worth typing: plain, extended, Pause, and a few non-keys.
const CODES: [u16; 16] = [
    0x1C, 0x32, 0x12, 0x14, 0x11, 0x59, 0x76, 0x5A, 0x83, 0x84, 0xE075, 0xE014, 0xE07C, 0xE114,
    0xE077, 0x0000,
];

#[derive(Arbitrary, Debug)]
enum Step {
    Key {
        code: u8,
        down: bool,
    },
    /// Any set-2 code, keys or not.
    RawKey {
        code: u16,
        down: bool,
    },
    WriteData(u8),
    WriteCommand(u8),
    ReadData,
    ReadStatus,
    /// A two-byte keyboard command the usual way (0xED LEDs, 0xF0 set, ...).
    KeyboardCommand(u8, u8),
}

#[derive(Arbitrary, Debug)]
struct Input {
    /// Start as the firmware leaves it (activated, translation on).
    firmware: bool,
    steps: Vec<Step>,
}

fn is_key(code: u16) -> bool {
    matches!(code, 0x01..=0x7F | 0x83 | 0x84 | 0xE001..=0xE07F | 0xE114)
}

struct Checker {
    dev: I8042,
    /// Events injected and not completely read, oldest first.
    expected: VecDeque<(u16, bool)>,
    /// What a data read returned last (a read with OBF clear repeats it).
    last_read: u8,
    resets: u32,
}

impl Checker {
    fn status(&mut self) -> u8 {
        self.dev.read(I8042_COMMAND)
    }

    /// The interrupt rules, and the `Change` an access returned.
    fn check_irqs(&mut self, change: Option<Change>) {
        let status = self.status();
        let command_byte = self.dev.command_byte();
        let full = status & OBF != 0;
        let aux = status & AUX_OBF != 0;
        assert!(!aux || full, "AUX_OBF without OBF: {status:#04x}");
        let irq1 = command_byte & 1 != 0 && full && !aux;
        let irq12 = command_byte & 2 != 0 && full && aux;
        assert_eq!(
            self.dev.irq1_level(),
            irq1,
            "IRQ1 level, status {status:#04x}, command byte {command_byte:#04x}"
        );
        assert_eq!(self.dev.irq12_level(), irq12, "IRQ12 level");
        if let Some(change) = change {
            for (output, level) in [
                (change.irq[pin::KEYBOARD], irq1),
                (change.irq[pin::AUX], irq12),
            ] {
                match output {
                    Some(IrqOutput::Level(l)) => assert_eq!(l, level, "change {change:?}"),
                    Some(IrqOutput::Reassert) => assert!(level, "reassert of a low line"),
                    other => panic!("i8042 pin output {other:?}"),
                }
            }
        }
    }

    /// Accounts for events completely consumed during an access.
    fn settle(&mut self, before: usize, change: Option<&Change>) {
        let after = self.dev.pending_input();
        assert!(
            after <= before,
            "pending input grew from {before} to {after} without a key event"
        );
        assert!(before - after <= self.expected.len());
        for _ in after..before {
            self.expected.pop_front();
        }
        assert_eq!(
            after,
            self.expected.len(),
            "pending input disagrees with the events injected"
        );
        if let Some(change) = change {
            assert_eq!(change.input_consumed, after < before);
        }
    }

    fn read_data(&mut self) {
        let before = self.dev.pending_input();
        let full = self.status() & OBF != 0;
        let keystroke = self.dev.output_keystroke();
        let mut data = [0];
        let change = PortDevice::read(&mut self.dev, offset::DATA, &mut data);
        if let Some(event) = keystroke {
            assert_eq!(
                Some(&event),
                self.expected.front(),
                "keystroke byte of the wrong event"
            );
        }
        if !full {
            assert_eq!(
                data[0], self.last_read,
                "read with OBF clear is not the last byte"
            );
            assert_eq!(
                self.dev.pending_input(),
                before,
                "read with OBF clear consumed input"
            );
        }
        self.last_read = data[0];
        self.settle(before, Some(&change));
        self.check_irqs(Some(change));
    }

    fn write(&mut self, port_offset: u16, value: u8) {
        let before = self.dev.pending_input();
        let change = PortDevice::write(&mut self.dev, port_offset, &[value]);
        self.settle(before, Some(&change));
        self.check_irqs(Some(change));
        if change.request == Some(MachineRequest::Reset) {
            // The machine resets every device; the host queue survives.
            let before = self.dev.pending_input();
            PortDevice::reset(&mut self.dev);
            assert_eq!(
                self.dev.pending_input(),
                before,
                "a machine reset lost or made key events"
            );
            // The power-on state: the last byte read is forgotten.
            self.last_read = 0;
            self.resets += 1;
            self.check_irqs(None);
        }
    }

    fn key(&mut self, code: u16, down: bool) {
        let before = self.dev.pending_input();
        let change = self.dev.host_key_event(code, down);
        if is_key(code) {
            // Queued; an event that encodes to nothing (Pause release, keys
            // set 3 lacks) may vanish at once when the keyboard listens.
            self.expected.push_back((code, down));
            self.settle(before + 1, None);
        } else {
            assert_eq!(self.dev.pending_input(), before, "non-key {code:#x} queued");
        }
        self.check_irqs(Some(change));
    }
}

fuzz_target!(|input: Input| {
    let dev = if input.firmware {
        I8042::with_firmware_setup()
    } else {
        I8042::new()
    };
    let mut c = Checker {
        dev,
        expected: VecDeque::new(),
        last_read: 0,
        resets: 0,
    };
    c.check_irqs(None);
    for step in input.steps.into_iter().take(1000) {
        match step {
            Step::Key { code, down } => c.key(CODES[usize::from(code) % CODES.len()], down),
            Step::RawKey { code, down } => c.key(code, down),
            Step::WriteData(value) => c.write(offset::DATA, value),
            Step::WriteCommand(value) => c.write(offset::COMMAND, value),
            Step::ReadData => c.read_data(),
            Step::ReadStatus => {
                let before = c.dev.pending_input();
                let mut data = [0];
                let change = PortDevice::read(&mut c.dev, offset::COMMAND, &mut data);
                assert_eq!(
                    c.dev.pending_input(),
                    before,
                    "a status read consumed input"
                );
                c.check_irqs(Some(change));
            }
            Step::KeyboardCommand(command, argument) => {
                c.write(offset::DATA, command);
                c.write(offset::DATA, argument);
            }
        }
    }
    // A driver initialises the keyboard: every event still queued comes out,
    // in order.
    c.write(offset::COMMAND, 0xAE); // enable the keyboard interface
    c.write(offset::COMMAND, 0x60); // write the command byte:
    c.write(offset::DATA, 0x01); //     IRQ1 on, no translation
    c.write(offset::DATA, 0xF4); // may be the argument of a pending command
    c.write(offset::DATA, 0xF4); // enable scanning
    let mut reads = 0;
    while c.dev.pending_input() > 0 || c.status() & OBF != 0 {
        c.read_data();
        reads += 1;
        assert!(
            reads < 16 + 16 * 1000,
            "{} key events never came out",
            c.expected.len()
        );
    }
    assert!(c.expected.is_empty(), "events left: {:?}", c.expected);
    let _ = I8042_DATA;
});
