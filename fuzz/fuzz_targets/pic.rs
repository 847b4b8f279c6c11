//! The 8259A pair driven by a guest (port reads and writes) and by devices
//! (line levels), with INTA cycles in between. Checked against the datasheet
//! with a small reference model of the arbitration (priority rotation,
//! masking, fully nested mode, special mask mode, special fully nested
//! mode), computed from the chips' registers before each step:
//!
//! - `interrupt_pending` is what the reference arbitration says;
//! - an acknowledged vector comes from a requested, unmasked line of the
//!   highest priority that beats everything in service, lands in the ISR
//!   (unless in automatic EOI), leaves the IRR if edge-triggered, and is
//!   never the cascade line itself; a spurious vector only when nothing
//!   could be served;
//! - each EOI form clears exactly what the datasheet says and rotates as
//!   it says; OCW1 sets the IMR; a poll read returns the pending line;
//! - a level-triggered line's request follows its level, a rising edge on
//!   an edge-triggered line latches a request.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use shared::irq::{CASCADE, MASTER_VECTOR_BASE, SLAVE_VECTOR_BASE};
use shared::ports::{
    ELCR_MASTER, ELCR_SLAVE, PIC_MASTER_COMMAND, PIC_MASTER_DATA, PIC_SLAVE_COMMAND, PIC_SLAVE_DATA,
};
use vmm::devices::pic::{ChipState, DualPic};
use vmm_fuzz::pic_ref::{best, pending};

const PORTS: [u16; 7] = [
    PIC_MASTER_COMMAND,
    PIC_MASTER_DATA,
    PIC_SLAVE_COMMAND,
    PIC_SLAVE_DATA,
    ELCR_MASTER,
    ELCR_SLAVE,
    0x22,
];

#[derive(Arbitrary, Debug)]
enum Step {
    Write(u8, u8),
    Read(u8),
    Level(u8, bool),
    Acknowledge,
    /// The common case, made cheap to reach: a non-specific EOI.
    Eoi(bool),
}

#[derive(Arbitrary, Debug)]
struct Input {
    /// Start programmed as a PC kernel does, rather than at power-on.
    initialized: bool,
    steps: Vec<Step>,
}

fn init(pic: &mut DualPic) {
    for (port, value) in [
        (PIC_MASTER_COMMAND, 0x11),
        (PIC_MASTER_DATA, MASTER_VECTOR_BASE),
        (PIC_MASTER_DATA, 1 << CASCADE),
        (PIC_MASTER_DATA, 0x01),
        (PIC_SLAVE_COMMAND, 0x11),
        (PIC_SLAVE_DATA, SLAVE_VECTOR_BASE),
        (PIC_SLAVE_DATA, CASCADE),
        (PIC_SLAVE_DATA, 0x01),
    ] {
        pic.write(port, value);
    }
}

fn check_write(port: u16, value: u8, before: &[ChipState; 2], after: &[ChipState; 2]) {
    let (index, command) = match port {
        PIC_MASTER_COMMAND => (0, true),
        PIC_MASTER_DATA => (0, false),
        PIC_SLAVE_COMMAND => (1, true),
        PIC_SLAVE_DATA => (1, false),
        _ => return,
    };
    let (b, a) = (&before[index], &after[index]);
    if !command {
        if !b.initializing {
            assert_eq!(a.imr, value, "OCW1 sets the IMR");
        }
        return;
    }
    if value & 0x18 != 0 {
        return; // ICW1 or OCW3
    }
    let line = value & 7;
    match value >> 5 {
        // Non-specific EOI (with or without rotation): the highest-priority
        // line in service leaves it.
        cmd @ (1 | 5) => match best(b.isr, b.highest_priority) {
            Some(served) => {
                assert_eq!(a.isr, b.isr & !(1 << served), "EOI {value:#x} from {b:?}");
                let highest = if cmd == 5 {
                    (served + 1) & 7
                } else {
                    b.highest_priority
                };
                assert_eq!(a.highest_priority, highest, "EOI {value:#x} rotation");
            }
            None => assert_eq!((a.isr, a.highest_priority), (b.isr, b.highest_priority)),
        },
        // Specific EOI (with or without rotation): exactly that line.
        cmd @ (3 | 7) => {
            assert_eq!(a.isr, b.isr & !(1 << line), "specific EOI {value:#x}");
            let highest = if cmd == 7 {
                (line + 1) & 7
            } else {
                b.highest_priority
            };
            assert_eq!(a.highest_priority, highest);
        }
        // Set priority: `line` becomes the lowest.
        6 => {
            assert_eq!(a.isr, b.isr);
            assert_eq!(a.highest_priority, (line + 1) & 7);
        }
        0 => assert!(!a.rotate_on_auto_eoi),
        4 => assert!(a.rotate_on_auto_eoi),
        // 2: no operation.
        _ => assert_eq!((a.isr, a.highest_priority), (b.isr, b.highest_priority)),
    }
}

fn check_acknowledge(pic: &mut DualPic) {
    let before = pic.chips();
    let was_pending = pic.interrupt_pending();
    let got = pic.acknowledge();
    let after = pic.chips();
    assert_ne!(got.line, CASCADE, "the cascade line delivered itself");
    assert!(got.line < 16);
    let (index, local) = (usize::from(got.line / 8), got.line & 7);
    let (b, a) = (&before[index], &after[index]);
    assert_eq!(
        got.vector,
        b.irq_base | local,
        "vector of line {}",
        got.line
    );
    if got.spurious {
        assert_eq!(local, 7, "spurious is IRQ 7 or 15");
        if index == 0 {
            assert!(!was_pending, "spurious IRQ 7 with a request pending");
            assert_eq!(pending(&before[0], true), None);
        } else {
            assert_eq!(pending(&before[0], true), Some(CASCADE));
            assert_eq!(pending(&before[1], false), None);
        }
        assert_eq!(
            a.isr & 0x80,
            b.isr & 0x80,
            "a spurious vector is not in service"
        );
        return;
    }
    assert!(was_pending, "served line {} with INT low", got.line);
    let requests = b.irr & !b.imr;
    assert!(
        requests & (1 << local) != 0,
        "line {} not requested",
        got.line
    );
    assert_eq!(
        pending(b, index == 0),
        Some(local),
        "not the best line: {before:?}"
    );
    if index == 1 {
        assert_eq!(
            pending(&before[0], true),
            Some(CASCADE),
            "slave served without the cascade"
        );
    }
    if b.auto_eoi {
        assert_eq!(a.isr & (1 << local), b.isr & (1 << local));
        if b.rotate_on_auto_eoi {
            assert_eq!(a.highest_priority, (local + 1) & 7);
        }
    } else {
        assert!(
            a.isr & (1 << local) != 0,
            "line {} not in service",
            got.line
        );
    }
    if index == 1 && !before[0].auto_eoi {
        assert!(
            after[0].isr & (1 << CASCADE) != 0,
            "cascade not in service on the master"
        );
    }
    if b.level_triggered & (1 << local) == 0 {
        assert_eq!(
            a.irr & (1 << local),
            0,
            "edge request of line {} not consumed",
            got.line
        );
    }
}

fuzz_target!(|input: Input| {
    let mut pic = DualPic::new();
    if input.initialized {
        init(&mut pic);
    }
    // Line levels as driven, to tell rising edges.
    let mut levels = [false; 16];
    for step in input.steps.into_iter().take(2000) {
        match step {
            Step::Write(port, value) => {
                let port = PORTS[usize::from(port) % PORTS.len()];
                let before = pic.chips();
                pic.write(port, value);
                check_write(port, value, &before, &pic.chips());
                if value & 0x10 != 0 && (port == PIC_MASTER_COMMAND || port == PIC_SLAVE_COMMAND) {
                    // ICW1 resets the chip's edge detection.
                    let lines = if port == PIC_MASTER_COMMAND {
                        0..8
                    } else {
                        8..16
                    };
                    levels[lines].fill(false);
                }
            }
            Step::Eoi(slave) => {
                let port = if slave {
                    PIC_SLAVE_COMMAND
                } else {
                    PIC_MASTER_COMMAND
                };
                let before = pic.chips();
                pic.write(port, 0x20);
                check_write(port, 0x20, &before, &pic.chips());
            }
            Step::Read(port) => {
                let port = PORTS[usize::from(port) % PORTS.len()];
                let before = pic.chips();
                let value = pic.read(port);
                let after = pic.chips();
                let index = match port {
                    PIC_MASTER_COMMAND | PIC_MASTER_DATA => 0,
                    PIC_SLAVE_COMMAND | PIC_SLAVE_DATA => 1,
                    _ => continue,
                };
                let b = &before[index];
                if b.poll {
                    let line = pending(b, index == 0);
                    assert_eq!(value, line.map_or(0, |l| 0x80 | l), "poll read {before:?}");
                    assert!(!after[index].poll);
                } else if port & 1 == 1 {
                    assert_eq!(value, b.imr, "data port reads the IMR");
                } else {
                    assert!(
                        value == b.irr || value == b.isr,
                        "command port reads IRR or ISR"
                    );
                }
            }
            Step::Level(line, level) => {
                let line = line % 17;
                pic.set_irq_level(line, level);
                if line == CASCADE || line > 15 {
                    continue;
                }
                let previous = std::mem::replace(&mut levels[usize::from(line)], level);
                let chip = &pic.chips()[usize::from(line / 8)];
                let bit = 1 << (line & 7);
                if chip.level_triggered & bit != 0 {
                    assert_eq!(chip.irr & bit != 0, level, "level line {line} request");
                } else if level && !previous {
                    assert!(
                        chip.irr & bit != 0,
                        "rising edge on line {line} not latched"
                    );
                }
            }
            Step::Acknowledge => check_acknowledge(&mut pic),
        }
        let chips = pic.chips();
        let master = pending(&chips[0], true);
        assert_eq!(
            pic.interrupt_pending(),
            master.is_some(),
            "INT disagrees with {chips:?}"
        );
        // What the reference expects of the unmasked-requests view.
        let requests = pic.unmasked_requests();
        assert_eq!(
            requests & 0xFF,
            u16::from(chips[0].irr & !chips[0].imr & !(1 << CASCADE))
        );
    }
});
