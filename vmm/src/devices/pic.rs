//! Intel 8259A programmable interrupt controller pair (master + slave).
//!
//! The model follows the 8259A datasheet and, wherever the datasheet leaves
//! room, QEMU's `hw/intc/i8259.c`, so a guest sees the same controller in our
//! VMM as under QEMU. It is a plain state machine: no I/O, no threads, no
//! clock, no allocation, and no guest input can make it panic, so it can be
//! unit-tested and fuzzed directly.
//!
//! Wiring of a PC: ISA lines 0-7 enter the master, lines 8-15 the slave, and
//! the slave's INT output drives master input 2 (the cascade line). The
//! PIIX-style ELCR registers at 0x4D0/0x4D1 select edge or level triggering
//! per line.

use shared::irq::{CASCADE, SPURIOUS_MASTER, SPURIOUS_SLAVE};

use crate::device::{Change, PortDevice};
use shared::ports::{
    ELCR_MASTER, ELCR_SLAVE, PIC_MASTER_COMMAND, PIC_MASTER_DATA, PIC_SLAVE_COMMAND, PIC_SLAVE_DATA,
};

/// ELCR bits the master can set: IRQ 0 (timer), 1 (keyboard) and 2 (cascade)
/// are edge-only on PIIX chipsets, as in QEMU.
const ELCR_MASK_MASTER: u8 = 0xF8;
/// ELCR bits the slave can set: IRQ 8 (RTC) and 13 (FPU error) are edge-only.
const ELCR_MASK_SLAVE: u8 = 0xDE;

/// Slave input whose vector is delivered when the slave has nothing to give
/// (ISA IRQ 15 is the slave's line 7).
const SLAVE_SPURIOUS_LINE: u8 = SPURIOUS_SLAVE - 8;

/// Command-port write with this bit set is ICW1 (starts initialization).
const ICW1_SELECT: u8 = 0x10;
/// ICW1: an ICW4 follows.
const ICW1_IC4: u8 = 0x01;
/// ICW1: single PIC, no ICW3.
const ICW1_SNGL: u8 = 0x02;
/// ICW1: level-triggered mode for every line of the chip.
const ICW1_LTIM: u8 = 0x08;
/// ICW2: the low three bits of the vector base come from the IRQ number.
const ICW2_BASE_MASK: u8 = 0xF8;
/// ICW4: automatic end of interrupt.
const ICW4_AEOI: u8 = 0x02;
/// ICW4: special fully nested mode.
const ICW4_SFNM: u8 = 0x10;
/// Command-port write with this bit set (and ICW1_SELECT clear) is OCW3.
const OCW3_SELECT: u8 = 0x08;
/// OCW3: poll command.
const OCW3_POLL: u8 = 0x04;
/// OCW3: bit 0 (RIS) selects the register a command-port read returns.
const OCW3_RR: u8 = 0x02;
/// OCW3: read ISR rather than IRR (valid with OCW3_RR).
const OCW3_RIS: u8 = 0x01;
/// OCW3: bit 5 (SMM) sets or resets special mask mode.
const OCW3_ESMM: u8 = 0x40;
/// OCW3: special mask mode value (valid with OCW3_ESMM).
const OCW3_SMM: u8 = 0x20;
/// Poll-command result flag: an interrupt was pending (and is now in service).
const POLL_INTERRUPT: u8 = 0x80;

/// OCW2 commands (bits 7-5: R, SL, EOI).
mod ocw2 {
    /// Rotate in automatic EOI mode: clear.
    pub const CLEAR_ROTATE_AEOI: u8 = 0;
    /// Non-specific EOI.
    pub const EOI: u8 = 1;
    /// Specific EOI of the line in bits 2-0.
    pub const SPECIFIC_EOI: u8 = 3;
    /// Rotate in automatic EOI mode: set.
    pub const SET_ROTATE_AEOI: u8 = 4;
    /// Rotate on non-specific EOI.
    pub const ROTATE_EOI: u8 = 5;
    /// Set priority: the line in bits 2-0 becomes the lowest priority.
    pub const SET_PRIORITY: u8 = 6;
    /// Rotate on specific EOI of the line in bits 2-0.
    pub const ROTATE_SPECIFIC_EOI: u8 = 7;
}

/// Where a chip is in its initialization sequence: which ICW the next data
/// port write is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum InitState {
    /// Initialized: data port writes are OCW1 (the IMR).
    #[default]
    Ready,
    /// ICW1 seen; the next data write is ICW2 (vector base).
    Icw2,
    /// The next data write is ICW3 (cascade wiring).
    Icw3,
    /// The next data write is ICW4 (mode).
    Icw4,
}

/// One 8259A chip.
#[derive(Clone, Debug, Default)]
struct Pic {
    /// This chip is the master (its /SP pin is high): only the master honours
    /// special fully nested mode for its cascade input.
    is_master: bool,
    /// Input line levels as last seen, to detect rising edges.
    last_irr: u8,
    /// Interrupt request register.
    irr: u8,
    /// Interrupt mask register (OCW1).
    imr: u8,
    /// In-service register.
    isr: u8,
    /// Line that currently has the highest priority (rotation offset).
    priority_add: u8,
    /// Vector of line 0 (ICW2, low three bits clear).
    irq_base: u8,
    /// A command-port read returns the ISR (true) or the IRR (false).
    read_isr: bool,
    /// The next read is a poll: acknowledges and returns the pending line.
    poll: bool,
    /// Special mask mode: masked lines do not block lower priorities.
    special_mask: bool,
    /// Position in the ICW sequence.
    init_state: InitState,
    /// ICW1 asked for an ICW4.
    needs_icw4: bool,
    /// ICW1 said single mode, so no ICW3 follows.
    single: bool,
    /// Automatic EOI (ICW4): acknowledge does not set the ISR.
    auto_eoi: bool,
    /// Rotate priority on every automatic EOI (OCW2).
    rotate_on_auto_eoi: bool,
    /// Special fully nested mode (ICW4).
    special_fully_nested: bool,
    /// Level-triggered mode for the whole chip (ICW1 LTIM).
    ltim: bool,
    /// Edge/level control register: a set bit makes that line level-triggered.
    elcr: u8,
    /// ELCR bits the guest may set.
    elcr_mask: u8,
    /// Set whenever the chip re-evaluates its INT output, as QEMU's
    /// `pic_update_irq` does; the pair uses it to forward the slave's output
    /// to master line 2 exactly when QEMU would.
    redrive: bool,
}

impl Pic {
    /// A chip in its power-on state.
    fn new(is_master: bool, elcr_mask: u8) -> Self {
        Self {
            is_master,
            elcr_mask,
            ..Self::default()
        }
    }

    /// Marks the INT output as re-driven (QEMU's `pic_update_irq`). The
    /// output itself is computed on demand by [`Pic::output`].
    fn update(&mut self) {
        self.redrive = true;
    }

    /// Returns and clears the re-drive mark.
    fn take_redrive(&mut self) -> bool {
        core::mem::take(&mut self.redrive)
    }

    /// Priority level (0 = highest) of the best line in `mask`, taking
    /// rotation into account, or `None` for an empty mask.
    fn priority(&self, mask: u8) -> Option<u8> {
        (0..8).find(|p| mask & (1 << ((p + self.priority_add) & 7)) != 0)
    }

    /// The line this chip would interrupt for now: the best unmasked request
    /// whose priority beats everything in service.
    fn pending_irq(&self) -> Option<u8> {
        let priority = self.priority(self.irr & !self.imr)?;
        let mut in_service = self.isr;
        // In special mask mode a masked line in service does not hold off
        // lower priorities: that is the whole point of the mode.
        if self.special_mask {
            in_service &= !self.imr;
        }
        // In special fully nested mode the master lets a higher-priority slave
        // request through while another slave interrupt is in service.
        if self.special_fully_nested && self.is_master {
            in_service &= !(1 << CASCADE);
        }
        let current = self.priority(in_service).unwrap_or(8);
        (priority < current).then_some((priority + self.priority_add) & 7)
    }

    /// Level of the INT output.
    fn output(&self) -> bool {
        self.pending_irq().is_some()
    }

    /// Whether `line` is level-triggered (ELCR bit, or LTIM for all lines).
    fn is_level(&self, line: u8) -> bool {
        self.ltim || self.elcr & (1 << line) != 0
    }

    /// Drives input `line` (0-7) to `level`.
    fn set_irq(&mut self, line: u8, level: bool) {
        let mask = 1 << line;
        if self.is_level(line) {
            // Level: the request follows the line.
            if level {
                self.irr |= mask;
                self.last_irr |= mask;
            } else {
                self.irr &= !mask;
                self.last_irr &= !mask;
            }
        } else if level {
            // Edge: only a rising edge latches a request; a held line does
            // not request again.
            if self.last_irr & mask == 0 {
                self.irr |= mask;
            }
            self.last_irr |= mask;
        } else {
            self.last_irr &= !mask;
        }
        self.update();
    }

    /// INTA for `line`: moves the request into service.
    fn intack(&mut self, line: u8) {
        if self.auto_eoi {
            if self.rotate_on_auto_eoi {
                self.priority_add = (line + 1) & 7;
            }
        } else {
            self.isr |= 1 << line;
        }
        // A level-triggered request stays while the line is high; an edge
        // request is consumed.
        if !self.is_level(line) {
            self.irr &= !(1 << line);
        }
        self.update();
    }

    /// State reset done by ICW1 (QEMU's `pic_reset_common`): the ELCR, and
    /// the level requests it governs, survive.
    fn init_reset(&mut self) {
        *self = Self {
            is_master: self.is_master,
            irr: self.irr & self.elcr,
            ltim: self.ltim,
            elcr: self.elcr,
            elcr_mask: self.elcr_mask,
            ..Self::default()
        };
        self.update();
    }

    /// Guest read of the command (`command`) or data port.
    fn read(&mut self, command: bool) -> u8 {
        if self.poll {
            // The poll command turns the next read of either port into an
            // interrupt acknowledge, as QEMU does.
            self.poll = false;
            match self.pending_irq() {
                Some(line) => {
                    self.intack(line);
                    POLL_INTERRUPT | line
                }
                None => 0,
            }
        } else if !command {
            self.imr
        } else if self.read_isr {
            self.isr
        } else {
            self.irr
        }
    }

    /// Guest write of the command port: ICW1, OCW2 or OCW3.
    fn write_command(&mut self, value: u8) {
        if value & ICW1_SELECT != 0 {
            self.init_reset();
            self.init_state = InitState::Icw2;
            self.needs_icw4 = value & ICW1_IC4 != 0;
            self.single = value & ICW1_SNGL != 0;
            self.ltim = value & ICW1_LTIM != 0;
        } else if value & OCW3_SELECT != 0 {
            self.write_ocw3(value);
        } else {
            self.write_ocw2(value);
        }
    }

    /// OCW2: end of interrupt and priority rotation.
    fn write_ocw2(&mut self, value: u8) {
        let line = value & 7;
        match value >> 5 {
            ocw2::CLEAR_ROTATE_AEOI => self.rotate_on_auto_eoi = false,
            ocw2::SET_ROTATE_AEOI => self.rotate_on_auto_eoi = true,
            cmd @ (ocw2::EOI | ocw2::ROTATE_EOI) => {
                // Non-specific EOI ends the highest-priority interrupt in
                // service, which in fully nested mode is the one being handled.
                if let Some(priority) = self.priority(self.isr) {
                    let served = (priority + self.priority_add) & 7;
                    self.isr &= !(1 << served);
                    if cmd == ocw2::ROTATE_EOI {
                        self.priority_add = (served + 1) & 7;
                    }
                    self.update();
                }
            }
            ocw2::SPECIFIC_EOI => {
                self.isr &= !(1 << line);
                self.update();
            }
            ocw2::SET_PRIORITY => {
                self.priority_add = (line + 1) & 7;
                self.update();
            }
            ocw2::ROTATE_SPECIFIC_EOI => {
                self.isr &= !(1 << line);
                self.priority_add = (line + 1) & 7;
                self.update();
            }
            // 2 is "no operation".
            _ => {}
        }
    }

    /// OCW3: register read select, poll, special mask mode.
    fn write_ocw3(&mut self, value: u8) {
        if value & OCW3_POLL != 0 {
            self.poll = true;
        }
        if value & OCW3_RR != 0 {
            self.read_isr = value & OCW3_RIS != 0;
        }
        if value & OCW3_ESMM != 0 {
            self.special_mask = value & OCW3_SMM != 0;
        }
    }

    /// Guest write of the data port: OCW1 (IMR), or the next ICW while
    /// initializing.
    fn write_data(&mut self, value: u8) {
        match self.init_state {
            InitState::Ready => {
                self.imr = value;
                self.update();
            }
            InitState::Icw2 => {
                self.irq_base = value & ICW2_BASE_MASK;
                self.init_state = match (self.single, self.needs_icw4) {
                    (false, _) => InitState::Icw3,
                    (true, true) => InitState::Icw4,
                    (true, false) => InitState::Ready,
                };
            }
            InitState::Icw3 => {
                // The cascade wiring of a PC is fixed (slave on master line
                // 2), so ICW3's contents do not matter.
                self.init_state = if self.needs_icw4 {
                    InitState::Icw4
                } else {
                    InitState::Ready
                };
            }
            InitState::Icw4 => {
                // uPM and the buffered-mode bits have no effect on a
                // virtual bus.
                self.special_fully_nested = value & ICW4_SFNM != 0;
                self.auto_eoi = value & ICW4_AEOI != 0;
                self.init_state = InitState::Ready;
            }
        }
    }

    /// Vector for `line` (ICW2 base plus the line number).
    fn vector(&self, line: u8) -> u8 {
        self.irq_base | (line & 7)
    }
}

/// The two cascaded 8259A PICs of a PC, plus the ELCR edge/level registers.
///
/// The VMM forwards port I/O to [`DualPic::read`] and [`DualPic::write`],
/// device interrupt lines to [`DualPic::set_irq_level`], and when
/// [`DualPic::interrupt_pending`] is true and the vCPU can take an interrupt,
/// injects the vector [`DualPic::acknowledge`] returns.
#[derive(Clone, Debug)]
pub struct DualPic {
    /// The master chip: ISA lines 0-7, INT output to the CPU.
    master: Pic,
    /// The slave chip: ISA lines 8-15, INT output to master line 2.
    slave: Pic,
}

impl Default for DualPic {
    fn default() -> Self {
        Self::new()
    }
}

impl DualPic {
    /// A pair in its power-on state: uninitialized, nothing masked, every
    /// line edge-triggered, vector base 0 until the guest writes ICW2.
    pub fn new() -> Self {
        Self {
            master: Pic::new(true, ELCR_MASK_MASTER),
            slave: Pic::new(false, ELCR_MASK_SLAVE),
        }
    }

    /// System reset (e.g. the i8042 reset pulse): back to the power-on
    /// state, ELCR and LTIM included, as QEMU's device reset does.
    pub fn reset(&mut self) {
        *self = Self::new();
    }

    /// Guest read of port 0x20, 0x21, 0xA0, 0xA1, 0x4D0 or 0x4D1.
    ///
    /// The command ports return the IRR or the ISR as OCW3 selected, the
    /// data ports the IMR, the ELCR ports the ELCR; after an OCW3 poll
    /// command the next read of either port of that chip acknowledges the
    /// pending interrupt and returns `0x80 | line`, or 0 when none is.
    /// Any other port reads as 0xFF.
    pub fn read(&mut self, port: u16) -> u8 {
        match port {
            PIC_MASTER_COMMAND => self.master.read(true),
            PIC_MASTER_DATA => self.master.read(false),
            PIC_SLAVE_COMMAND => {
                let value = self.slave.read(true);
                self.sync_cascade();
                value
            }
            PIC_SLAVE_DATA => {
                let value = self.slave.read(false);
                self.sync_cascade();
                value
            }
            ELCR_MASTER => self.master.elcr,
            ELCR_SLAVE => self.slave.elcr,
            _ => 0xFF,
        }
    }

    /// Guest write of one of the ports [`DualPic::read`] serves; writes to
    /// other ports are ignored.
    pub fn write(&mut self, port: u16, value: u8) {
        match port {
            PIC_MASTER_COMMAND => self.master.write_command(value),
            PIC_MASTER_DATA => self.master.write_data(value),
            PIC_SLAVE_COMMAND => {
                self.slave.write_command(value);
                self.sync_cascade();
            }
            PIC_SLAVE_DATA => {
                self.slave.write_data(value);
                self.sync_cascade();
            }
            // The mask keeps the lines that must stay edge-triggered so.
            ELCR_MASTER => self.master.elcr = value & self.master.elcr_mask,
            ELCR_SLAVE => self.slave.elcr = value & self.slave.elcr_mask,
            _ => {}
        }
    }

    /// Drives ISA IRQ line `irq` (0-15) to `level`.
    ///
    /// Lines above 15 are ignored, and so is line 2: it is the slave's INT
    /// output, which no device may drive.
    pub fn set_irq_level(&mut self, irq: u8, level: bool) {
        match irq {
            CASCADE => {}
            0..=7 => self.master.set_irq(irq, level),
            8..=15 => {
                self.slave.set_irq(irq - 8, level);
                self.sync_cascade();
            }
            _ => {}
        }
    }

    /// Requested and unmasked ISA lines (bit n = IRQ n), without the side
    /// effects of a guest read: the VMM uses it to keep catch-up timer ticks
    /// from starving other devices.
    pub fn unmasked_requests(&self) -> u16 {
        let master = self.master.irr & !self.master.imr & !(1 << CASCADE);
        let slave = self.slave.irr & !self.slave.imr;
        let slave = if self.master.imr & (1 << CASCADE) == 0 {
            slave
        } else {
            0
        };
        u16::from(master) | (u16::from(slave) << 8)
    }

    /// Whether the master's INT output is asserted, i.e. an interrupt is
    /// waiting to be acknowledged.
    pub fn interrupt_pending(&self) -> bool {
        self.master.output()
    }

    /// INTA cycle: moves the best pending request into service and returns
    /// its vector and the ISA line (0-15) it belongs to.
    ///
    /// When no request is left (it was masked, or its level line dropped,
    /// after INT rose) the master answers with its IRQ 7 vector and sets no
    /// ISR bit; when the master's cascade line is pending but the slave has
    /// nothing, the slave answers with its IRQ 15 vector and, as in QEMU,
    /// the master's ISR bit 2 is set. Both are reported as `spurious`.
    pub fn acknowledge(&mut self) -> Acknowledged {
        match self.master.pending_irq() {
            Some(CASCADE) => {
                let (line, spurious) = match self.slave.pending_irq() {
                    Some(line) => {
                        self.slave.intack(line);
                        // QEMU forwards the slave's new output to master line
                        // 2 before the master's own acknowledge.
                        self.sync_cascade();
                        (line, false)
                    }
                    None => (SLAVE_SPURIOUS_LINE, true),
                };
                self.master.intack(CASCADE);
                Acknowledged {
                    vector: self.slave.vector(line),
                    line: line + 8,
                    spurious,
                }
            }
            Some(line) => {
                self.master.intack(line);
                Acknowledged {
                    vector: self.master.vector(line),
                    line,
                    spurious: false,
                }
            }
            None => Acknowledged {
                vector: self.master.vector(SPURIOUS_MASTER),
                line: SPURIOUS_MASTER,
                spurious: true,
            },
        }
    }

    /// Whether ISA line `irq` (0-15) has a request latched in its chip's IRR
    /// (without the side effects of a guest read). A request leaves the IRR
    /// when it is acknowledged (INTA or poll), when its level line drops, or
    /// when the guest re-initialises the chip.
    pub fn is_requested(&self, irq: u8) -> bool {
        match irq {
            0..=7 => self.master.irr & (1 << irq) != 0,
            8..=15 => self.slave.irr & (1 << (irq - 8)) != 0,
            _ => false,
        }
    }

    /// Forwards the slave's INT output to master line 2 if the slave
    /// re-drove it (QEMU re-drives even an unchanged level; for an edge
    /// line that is harmless, for a level one it re-asserts the request).
    fn sync_cascade(&mut self) {
        if self.slave.take_redrive() {
            let level = self.slave.output();
            self.master.set_irq(CASCADE, level);
        }
    }
}

/// What an INTA cycle ([`DualPic::acknowledge`]) delivered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Acknowledged {
    /// The vector to inject.
    pub vector: u8,
    /// The ISA line (0-15) the vector belongs to.
    pub line: u8,
    /// No request was left to acknowledge: this is the chip's IRQ 7 (or the
    /// slave's IRQ 15) vector with no device behind it.
    pub spurious: bool,
}

/// Register offsets from the pair's base port (0x20), as registered in the
/// machine's port map: master at 0x20, slave at 0xA0, ELCR at 0x4D0.
pub mod offset {
    use shared::ports::{ELCR_MASTER, PIC_MASTER_COMMAND, PIC_SLAVE_COMMAND};

    /// Master command port.
    pub const MASTER: u16 = 0;
    /// Slave command port.
    pub const SLAVE: u16 = PIC_SLAVE_COMMAND - PIC_MASTER_COMMAND;
    /// ELCR of the master.
    pub const ELCR: u16 = ELCR_MASTER - PIC_MASTER_COMMAND;
}

impl PortDevice for DualPic {
    fn name(&self) -> &'static str {
        "pic"
    }

    fn read(&mut self, offset: u16, data: &mut [u8]) -> Change {
        let port = PIC_MASTER_COMMAND.wrapping_add(offset);
        data.fill(DualPic::read(self, port));
        Change::NONE
    }

    fn write(&mut self, offset: u16, data: &[u8]) -> Change {
        let port = PIC_MASTER_COMMAND.wrapping_add(offset);
        for &value in data {
            DualPic::write(self, port, value);
        }
        Change::NONE
    }

    fn reset(&mut self) {
        DualPic::reset(self);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::irq::{KEYBOARD, MASTER_VECTOR_BASE, SLAVE_VECTOR_BASE, TIMER};

    /// Non-specific EOI (OCW2).
    const EOI: u8 = 0x20;
    /// OCW3: read IRR on the next command-port read.
    const READ_IRR: u8 = 0x0A;
    /// OCW3: read ISR on the next command-port read.
    const READ_ISR: u8 = 0x0B;

    /// Programs the pair as a PC BIOS/kernel does: edge, cascade, 8086
    /// mode, vectors at the shared bases, `icw4` as ICW4, nothing masked.
    fn init_with(icw1: u8, icw4: u8) -> DualPic {
        let mut pic = DualPic::new();
        pic.write(PIC_MASTER_COMMAND, icw1);
        pic.write(PIC_MASTER_DATA, MASTER_VECTOR_BASE);
        pic.write(PIC_MASTER_DATA, 1 << CASCADE);
        pic.write(PIC_MASTER_DATA, icw4);
        pic.write(PIC_SLAVE_COMMAND, icw1);
        pic.write(PIC_SLAVE_DATA, SLAVE_VECTOR_BASE);
        pic.write(PIC_SLAVE_DATA, CASCADE);
        pic.write(PIC_SLAVE_DATA, icw4);
        pic
    }

    /// The usual initialization: ICW1 0x11, ICW4 0x01.
    fn init() -> DualPic {
        init_with(0x11, 0x01)
    }

    /// A short edge on `irq`.
    fn pulse(pic: &mut DualPic, irq: u8) {
        pic.set_irq_level(irq, true);
        pic.set_irq_level(irq, false);
    }

    /// Register selected by OCW3 `select` on the chip at `command`.
    fn reg(pic: &mut DualPic, command: u16, select: u8) -> u8 {
        pic.write(command, select);
        pic.read(command)
    }

    fn master_isr(pic: &mut DualPic) -> u8 {
        reg(pic, PIC_MASTER_COMMAND, READ_ISR)
    }

    fn slave_isr(pic: &mut DualPic) -> u8 {
        reg(pic, PIC_SLAVE_COMMAND, READ_ISR)
    }

    /// Checks that an interrupt is pending, acknowledges it and checks its
    /// vector.
    fn expect_ack(pic: &mut DualPic, vector: u8) {
        assert!(pic.interrupt_pending(), "no interrupt for vector {vector}");
        assert_eq!(pic.acknowledge().vector, vector);
    }

    /// INTA names the line as well as the vector, so the machine needs no
    /// copy of the vector map (ICW2) to know which device was served.
    #[test]
    fn acknowledge_names_the_line_and_spurious_vectors() {
        let mut pic = init();
        pic.set_irq_level(12, true);
        pic.set_irq_level(1, true);
        let first = pic.acknowledge();
        assert_eq!(
            (first.vector, first.line, first.spurious),
            (MASTER_VECTOR_BASE + 1, 1, false)
        );
        pic.write(PIC_MASTER_COMMAND, EOI);
        let second = pic.acknowledge();
        assert_eq!(
            (second.vector, second.line, second.spurious),
            (SLAVE_VECTOR_BASE + 4, 12, false)
        );
        pic.write(PIC_SLAVE_COMMAND, EOI);
        pic.write(PIC_MASTER_COMMAND, EOI);
        assert!(!pic.interrupt_pending());
        let spurious = pic.acknowledge();
        assert_eq!(
            (spurious.vector, spurious.line, spurious.spurious),
            (MASTER_VECTOR_BASE + 7, 7, true)
        );
        // IRR as the machine sees it, without side effects.
        pic.set_irq_level(0, true);
        assert!(pic.is_requested(0));
        assert!(!pic.is_requested(12));
        pic.acknowledge();
        assert!(!pic.is_requested(0));
    }

    #[test]
    fn unmasked_requests_reports_irr_without_side_effects() {
        let mut pic = init();
        pic.set_irq_level(0, true);
        pic.set_irq_level(1, true);
        pic.set_irq_level(9, true);
        assert_eq!(pic.unmasked_requests(), 0b10_0000_0011);
        pic.write(PIC_MASTER_DATA, 0b0000_0010); // mask IRQ1
        assert_eq!(pic.unmasked_requests(), 0b10_0000_0001);
        pic.write(PIC_MASTER_DATA, 0b0000_0100); // mask the cascade: slave lines hidden
        assert_eq!(pic.unmasked_requests(), 0b11);
        // Nothing was acknowledged by looking.
        pic.write(PIC_MASTER_DATA, 0);
        assert_eq!(pic.acknowledge().vector, MASTER_VECTOR_BASE);
    }

    #[test]
    fn init_sequence_sets_vector_base_and_clears_imr() {
        let mut pic = DualPic::new();
        pic.write(PIC_MASTER_DATA, 0xFF);
        assert_eq!(pic.read(PIC_MASTER_DATA), 0xFF);
        // ICW1 clears the IMR; ICW2's low three bits are ignored.
        pic.write(PIC_MASTER_COMMAND, 0x11);
        assert_eq!(pic.read(PIC_MASTER_DATA), 0);
        pic.write(PIC_MASTER_DATA, 0x57);
        pic.write(PIC_MASTER_DATA, 0x04);
        pic.write(PIC_MASTER_DATA, 0x01);
        // The sequence is over: the next data write is the IMR again.
        pic.write(PIC_MASTER_DATA, 0xFA);
        assert_eq!(pic.read(PIC_MASTER_DATA), 0xFA);
        pic.write(PIC_MASTER_DATA, 0x00);
        pulse(&mut pic, KEYBOARD);
        expect_ack(&mut pic, 0x50 + KEYBOARD);

        let mut pic = init();
        pulse(&mut pic, TIMER);
        expect_ack(&mut pic, MASTER_VECTOR_BASE);
        pic.write(PIC_MASTER_COMMAND, EOI);
        pulse(&mut pic, 8);
        expect_ack(&mut pic, SLAVE_VECTOR_BASE);
    }

    #[test]
    fn single_mode_without_icw4_skips_icw3_and_icw4() {
        let mut pic = DualPic::new();
        pic.write(PIC_MASTER_COMMAND, 0x10 | ICW1_SNGL);
        pic.write(PIC_MASTER_DATA, 0x40);
        pic.write(PIC_MASTER_DATA, 0xAA);
        assert_eq!(pic.read(PIC_MASTER_DATA), 0xAA);
        pic.write(PIC_MASTER_DATA, 0);
        pulse(&mut pic, 3);
        expect_ack(&mut pic, 0x43);
        // Single mode with ICW4: ICW2 then ICW4 (AEOI here), no ICW3.
        pic.write(PIC_MASTER_COMMAND, 0x10 | ICW1_SNGL | ICW1_IC4);
        pic.write(PIC_MASTER_DATA, 0x60);
        pic.write(PIC_MASTER_DATA, ICW4_AEOI | 1);
        pic.write(PIC_MASTER_DATA, 0x0F);
        assert_eq!(pic.read(PIC_MASTER_DATA), 0x0F);
        pulse(&mut pic, 5);
        expect_ack(&mut pic, 0x65);
        assert_eq!(master_isr(&mut pic), 0, "ICW4 enabled auto-EOI");
    }

    #[test]
    fn imr_masks_lines_but_requests_are_kept() {
        let mut pic = init();
        pic.write(PIC_MASTER_DATA, 1 << KEYBOARD);
        pulse(&mut pic, KEYBOARD);
        assert!(!pic.interrupt_pending());
        assert_eq!(reg(&mut pic, PIC_MASTER_COMMAND, READ_IRR), 1 << KEYBOARD);
        pic.write(PIC_MASTER_DATA, 0);
        expect_ack(&mut pic, MASTER_VECTOR_BASE + KEYBOARD);
        // Masking the cascade line hides every slave line.
        pic.write(PIC_MASTER_COMMAND, EOI);
        pic.write(PIC_MASTER_DATA, 1 << CASCADE);
        pulse(&mut pic, 12);
        assert!(!pic.interrupt_pending());
        pic.write(PIC_MASTER_DATA, 0);
        expect_ack(&mut pic, SLAVE_VECTOR_BASE + 4);
    }

    #[test]
    fn fixed_priority_lowest_line_first_and_nesting() {
        let mut pic = init();
        for irq in [5, 3, 1] {
            pulse(&mut pic, irq);
        }
        expect_ack(&mut pic, MASTER_VECTOR_BASE + 1);
        // IRQ 1 in service holds off the lower priorities...
        assert!(!pic.interrupt_pending());
        // ...but not a higher one.
        pulse(&mut pic, TIMER);
        expect_ack(&mut pic, MASTER_VECTOR_BASE);
        assert_eq!(master_isr(&mut pic), 0b11);
        pic.write(PIC_MASTER_COMMAND, EOI);
        assert!(!pic.interrupt_pending(), "IRQ 1 still in service");
        pic.write(PIC_MASTER_COMMAND, EOI);
        expect_ack(&mut pic, MASTER_VECTOR_BASE + 3);
        pic.write(PIC_MASTER_COMMAND, EOI);
        expect_ack(&mut pic, MASTER_VECTOR_BASE + 5);
        pic.write(PIC_MASTER_COMMAND, EOI);
        assert!(!pic.interrupt_pending());
        assert_eq!(master_isr(&mut pic), 0);
    }

    #[test]
    fn rotate_on_non_specific_eoi_makes_served_line_lowest() {
        let mut pic = init();
        pulse(&mut pic, 3);
        expect_ack(&mut pic, MASTER_VECTOR_BASE + 3);
        // Rotate on non-specific EOI (0xA0): IRQ 3 becomes the lowest, so
        // IRQ 4 is now the highest and beats IRQ 0.
        pic.write(PIC_MASTER_COMMAND, 0xA0);
        assert_eq!(master_isr(&mut pic), 0);
        for irq in [0, 3, 4] {
            pulse(&mut pic, irq);
        }
        expect_ack(&mut pic, MASTER_VECTOR_BASE + 4);
        pic.write(PIC_MASTER_COMMAND, EOI);
        expect_ack(&mut pic, MASTER_VECTOR_BASE);
        pic.write(PIC_MASTER_COMMAND, EOI);
        expect_ack(&mut pic, MASTER_VECTOR_BASE + 3);
    }

    #[test]
    fn rotate_on_specific_eoi_and_set_priority() {
        let mut pic = init();
        pulse(&mut pic, 6);
        expect_ack(&mut pic, MASTER_VECTOR_BASE + 6);
        // Rotate on specific EOI of line 6 (0xE6): 7 becomes the highest.
        pic.write(PIC_MASTER_COMMAND, 0xE6);
        assert_eq!(master_isr(&mut pic), 0);
        pulse(&mut pic, 1);
        pulse(&mut pic, 7);
        expect_ack(&mut pic, MASTER_VECTOR_BASE + 7);
        pic.write(PIC_MASTER_COMMAND, EOI);
        expect_ack(&mut pic, MASTER_VECTOR_BASE + 1);
        pic.write(PIC_MASTER_COMMAND, EOI);
        // Set priority (0xC0 | 4): 4 lowest, 5 highest.
        pic.write(PIC_MASTER_COMMAND, 0xC4);
        for irq in [3, 4, 5] {
            pulse(&mut pic, irq);
        }
        expect_ack(&mut pic, MASTER_VECTOR_BASE + 5);
        pic.write(PIC_MASTER_COMMAND, EOI);
        expect_ack(&mut pic, MASTER_VECTOR_BASE + 3);
        pic.write(PIC_MASTER_COMMAND, EOI);
        expect_ack(&mut pic, MASTER_VECTOR_BASE + 4);
    }

    #[test]
    fn automatic_rotation_in_aeoi_mode_set_and_clear() {
        let mut pic = init_with(0x11, 0x03);
        // Rotate in AEOI mode, set (0x80): each acknowledged line becomes
        // the lowest priority, so two held-back requests alternate.
        pic.write(PIC_MASTER_COMMAND, 0x80);
        pulse(&mut pic, TIMER);
        expect_ack(&mut pic, MASTER_VECTOR_BASE);
        pulse(&mut pic, TIMER);
        pulse(&mut pic, KEYBOARD);
        expect_ack(&mut pic, MASTER_VECTOR_BASE + KEYBOARD);
        expect_ack(&mut pic, MASTER_VECTOR_BASE);
        // Clear (0x00): priorities stay where the last rotation left them
        // (IRQ 0 was served last, so 1 is the highest) and no longer move:
        // serving IRQ 1 alone does not make it the lowest.
        pic.write(PIC_MASTER_COMMAND, 0x00);
        pulse(&mut pic, KEYBOARD);
        expect_ack(&mut pic, MASTER_VECTOR_BASE + KEYBOARD);
        pulse(&mut pic, TIMER);
        pulse(&mut pic, KEYBOARD);
        expect_ack(&mut pic, MASTER_VECTOR_BASE + KEYBOARD);
        expect_ack(&mut pic, MASTER_VECTOR_BASE);
    }

    #[test]
    fn specific_and_non_specific_eoi() {
        let mut pic = init();
        pulse(&mut pic, 5);
        expect_ack(&mut pic, MASTER_VECTOR_BASE + 5);
        pulse(&mut pic, 3);
        expect_ack(&mut pic, MASTER_VECTOR_BASE + 3);
        pulse(&mut pic, KEYBOARD);
        expect_ack(&mut pic, MASTER_VECTOR_BASE + KEYBOARD);
        assert_eq!(master_isr(&mut pic), 0b10_1010);
        // Specific EOI (0x60 | 3) clears exactly line 3.
        pic.write(PIC_MASTER_COMMAND, 0x63);
        assert_eq!(master_isr(&mut pic), 0b10_0010);
        // Non-specific EOI clears the highest priority in service: line 1.
        pic.write(PIC_MASTER_COMMAND, EOI);
        assert_eq!(master_isr(&mut pic), 0b10_0000);
        pic.write(PIC_MASTER_COMMAND, EOI);
        assert_eq!(master_isr(&mut pic), 0);
        // A non-specific EOI with nothing in service changes nothing.
        pic.write(PIC_MASTER_COMMAND, EOI);
        assert_eq!(master_isr(&mut pic), 0);
        assert!(!pic.interrupt_pending());
        // OCW2 0x40 is a no-op.
        pulse(&mut pic, 3);
        expect_ack(&mut pic, MASTER_VECTOR_BASE + 3);
        pic.write(PIC_MASTER_COMMAND, 0x40);
        assert_eq!(master_isr(&mut pic), 1 << 3);
    }

    #[test]
    fn auto_eoi_never_sets_isr() {
        let mut pic = init_with(0x11, 0x03);
        pulse(&mut pic, 5);
        expect_ack(&mut pic, MASTER_VECTOR_BASE + 5);
        assert_eq!(master_isr(&mut pic), 0);
        // Nothing in service, so a lower priority gets through at once.
        pulse(&mut pic, 6);
        expect_ack(&mut pic, MASTER_VECTOR_BASE + 6);
        // Without rotation set, priorities do not move.
        pulse(&mut pic, 6);
        pulse(&mut pic, 5);
        expect_ack(&mut pic, MASTER_VECTOR_BASE + 5);
        // Cascade in AEOI: neither chip keeps an ISR bit.
        // IRQ 6 is still waiting; the cascade line outranks it.
        pulse(&mut pic, 9);
        expect_ack(&mut pic, SLAVE_VECTOR_BASE + 1);
        expect_ack(&mut pic, MASTER_VECTOR_BASE + 6);
        assert_eq!(master_isr(&mut pic), 0);
        assert_eq!(slave_isr(&mut pic), 0);
    }

    #[test]
    fn special_mask_mode_lets_lower_priorities_through() {
        let mut pic = init();
        pulse(&mut pic, 3);
        expect_ack(&mut pic, MASTER_VECTOR_BASE + 3);
        pulse(&mut pic, 5);
        assert!(!pic.interrupt_pending(), "IRQ 3 in service blocks IRQ 5");
        // Masking the line in service is not enough in normal mode...
        pic.write(PIC_MASTER_DATA, 1 << 3);
        assert!(!pic.interrupt_pending());
        // ...but with special mask mode set (OCW3 0x68) it is.
        pic.write(PIC_MASTER_COMMAND, 0x68);
        expect_ack(&mut pic, MASTER_VECTOR_BASE + 5);
        assert_eq!(master_isr(&mut pic), 0b10_1000);
        pic.write(PIC_MASTER_COMMAND, 0x65);
        // Reset special mask mode (0x48): IRQ 3 blocks again.
        pic.write(PIC_MASTER_COMMAND, 0x48);
        pulse(&mut pic, 6);
        assert!(!pic.interrupt_pending());
        pic.write(PIC_MASTER_COMMAND, 0x68);
        expect_ack(&mut pic, MASTER_VECTOR_BASE + 6);
    }

    #[test]
    fn poll_command_acknowledges_through_a_read() {
        let mut pic = init();
        pulse(&mut pic, 4);
        pulse(&mut pic, 6);
        pic.write(PIC_MASTER_COMMAND, 0x0C);
        assert_eq!(pic.read(PIC_MASTER_COMMAND), 0x84);
        assert_eq!(master_isr(&mut pic), 1 << 4);
        // The poll lasts one read: the next read is the ISR selected above.
        assert_eq!(pic.read(PIC_MASTER_COMMAND), 1 << 4);
        // Nothing deliverable (IRQ 6 is blocked by IRQ 4): poll reads 0.
        pic.write(PIC_MASTER_COMMAND, 0x0C);
        assert_eq!(pic.read(PIC_MASTER_COMMAND), 0);
        pic.write(PIC_MASTER_COMMAND, EOI);
        // A poll is answered on the data port too, as in QEMU.
        pic.write(PIC_MASTER_COMMAND, 0x0C);
        assert_eq!(pic.read(PIC_MASTER_DATA), 0x86);
        assert_eq!(pic.read(PIC_MASTER_DATA), 0, "IMR again");
        // Polling the slave acknowledges the slave alone.
        pic.write(PIC_MASTER_COMMAND, EOI);
        pulse(&mut pic, 11);
        assert!(pic.interrupt_pending());
        pic.write(PIC_SLAVE_COMMAND, 0x0C);
        assert_eq!(pic.read(PIC_SLAVE_COMMAND), 0x83);
        assert_eq!(slave_isr(&mut pic), 1 << 3);
    }

    #[test]
    fn ocw3_selects_irr_or_isr_for_command_port_reads() {
        let mut pic = init();
        pic.write(PIC_MASTER_DATA, 0xFF);
        pulse(&mut pic, 6);
        pulse(&mut pic, 2 + 1);
        // IRR is the default after ICW1.
        assert_eq!(pic.read(PIC_MASTER_COMMAND), 0b100_1000);
        pic.write(PIC_MASTER_DATA, 0);
        expect_ack(&mut pic, MASTER_VECTOR_BASE + 3);
        pic.write(PIC_MASTER_COMMAND, READ_ISR);
        assert_eq!(pic.read(PIC_MASTER_COMMAND), 1 << 3);
        // The selection sticks across reads and other OCW3s without RR.
        pic.write(PIC_MASTER_COMMAND, 0x08);
        assert_eq!(pic.read(PIC_MASTER_COMMAND), 1 << 3);
        pic.write(PIC_MASTER_COMMAND, READ_IRR);
        assert_eq!(pic.read(PIC_MASTER_COMMAND), 1 << 6);
        assert_eq!(pic.read(PIC_MASTER_DATA), 0);
    }

    #[test]
    fn cascade_through_irq2_delivers_slave_vectors() {
        let mut pic = init();
        pulse(&mut pic, 10);
        assert!(pic.interrupt_pending());
        assert_eq!(reg(&mut pic, PIC_MASTER_COMMAND, READ_IRR), 1 << CASCADE);
        expect_ack(&mut pic, SLAVE_VECTOR_BASE + 2);
        assert_eq!(master_isr(&mut pic), 1 << CASCADE);
        assert_eq!(slave_isr(&mut pic), 1 << 2);
        // Slave lines rank between IRQ 1 and IRQ 3: IRQ 1 still interrupts,
        // IRQ 3 and a lower slave line wait.
        pulse(&mut pic, 3);
        pulse(&mut pic, 14);
        pulse(&mut pic, KEYBOARD);
        expect_ack(&mut pic, MASTER_VECTOR_BASE + KEYBOARD);
        pic.write(PIC_MASTER_COMMAND, EOI);
        assert!(!pic.interrupt_pending());
        // The handler ends the slave interrupt on both chips.
        pic.write(PIC_SLAVE_COMMAND, EOI);
        pic.write(PIC_MASTER_COMMAND, EOI);
        // The slave's pending IRQ 14 re-raised its output: it beats IRQ 3.
        expect_ack(&mut pic, SLAVE_VECTOR_BASE + 6);
        pic.write(PIC_SLAVE_COMMAND, EOI);
        pic.write(PIC_MASTER_COMMAND, EOI);
        expect_ack(&mut pic, MASTER_VECTOR_BASE + 3);
        // Slave priorities among themselves.
        pic.write(PIC_MASTER_COMMAND, EOI);
        pic.write(PIC_MASTER_DATA, 1 << CASCADE);
        for irq in [15, 9, 12] {
            pulse(&mut pic, irq);
        }
        pic.write(PIC_MASTER_DATA, 0);
        for line in [1, 4, 7] {
            expect_ack(&mut pic, SLAVE_VECTOR_BASE + line);
            pic.write(PIC_SLAVE_COMMAND, EOI);
            pic.write(PIC_MASTER_COMMAND, EOI);
        }
        assert!(!pic.interrupt_pending());
    }

    #[test]
    fn special_fully_nested_mode_lets_higher_slave_lines_nest() {
        // Master with SFNM (ICW4 0x11), slave normal.
        let mut pic = init();
        pic.write(PIC_MASTER_COMMAND, 0x11);
        pic.write(PIC_MASTER_DATA, MASTER_VECTOR_BASE);
        pic.write(PIC_MASTER_DATA, 1 << CASCADE);
        pic.write(PIC_MASTER_DATA, ICW4_SFNM | 1);
        pulse(&mut pic, 12);
        expect_ack(&mut pic, SLAVE_VECTOR_BASE + 4);
        pulse(&mut pic, 9);
        expect_ack(&mut pic, SLAVE_VECTOR_BASE + 1);
        assert_eq!(slave_isr(&mut pic), 0b1_0010);

        // Without SFNM, the master's ISR bit 2 blocks the nested request.
        let mut pic = init();
        pulse(&mut pic, 12);
        expect_ack(&mut pic, SLAVE_VECTOR_BASE + 4);
        pulse(&mut pic, 9);
        assert!(!pic.interrupt_pending());
    }

    #[test]
    fn edge_triggered_held_line_does_not_retrigger() {
        let mut pic = init();
        pic.set_irq_level(4, true);
        expect_ack(&mut pic, MASTER_VECTOR_BASE + 4);
        pic.write(PIC_MASTER_COMMAND, EOI);
        // Still high, but no new edge.
        pic.set_irq_level(4, true);
        assert!(!pic.interrupt_pending());
        pic.set_irq_level(4, false);
        assert!(!pic.interrupt_pending());
        pic.set_irq_level(4, true);
        expect_ack(&mut pic, MASTER_VECTOR_BASE + 4);
        // An edge request survives the line dropping before acknowledge.
        pic.set_irq_level(4, false);
        pic.write(PIC_MASTER_COMMAND, EOI);
        pulse(&mut pic, 4);
        expect_ack(&mut pic, MASTER_VECTOR_BASE + 4);
    }

    #[test]
    fn level_triggered_line_retriggers_until_dropped() {
        let mut pic = init();
        pic.write(ELCR_MASTER, 1 << 5);
        pic.set_irq_level(5, true);
        expect_ack(&mut pic, MASTER_VECTOR_BASE + 5);
        // The request stays in the IRR while the line is high.
        assert_eq!(reg(&mut pic, PIC_MASTER_COMMAND, READ_IRR), 1 << 5);
        pic.write(PIC_MASTER_COMMAND, EOI);
        expect_ack(&mut pic, MASTER_VECTOR_BASE + 5);
        pic.write(PIC_MASTER_COMMAND, EOI);
        pic.set_irq_level(5, false);
        assert!(!pic.interrupt_pending());
        assert_eq!(reg(&mut pic, PIC_MASTER_COMMAND, READ_IRR), 0);
    }

    #[test]
    fn level_line_dropped_before_acknowledge_is_spurious_irq7() {
        let mut pic = init();
        pic.write(ELCR_MASTER, 1 << 5);
        pic.set_irq_level(5, true);
        assert!(pic.interrupt_pending());
        pic.set_irq_level(5, false);
        assert!(!pic.interrupt_pending());
        assert_eq!(
            pic.acknowledge().vector,
            MASTER_VECTOR_BASE + SPURIOUS_MASTER
        );
        // A spurious interrupt sets no ISR bit, so the guest must not EOI.
        assert_eq!(master_isr(&mut pic), 0);
    }

    #[test]
    fn ltim_makes_every_line_level_triggered() {
        // ICW1 0x19: LTIM, even for IRQ 0 which ELCR cannot make level.
        let mut pic = init_with(0x19, 0x01);
        pic.set_irq_level(TIMER, true);
        expect_ack(&mut pic, MASTER_VECTOR_BASE);
        pic.write(PIC_MASTER_COMMAND, EOI);
        expect_ack(&mut pic, MASTER_VECTOR_BASE);
        pic.write(PIC_MASTER_COMMAND, EOI);
        pic.set_irq_level(TIMER, false);
        assert!(!pic.interrupt_pending());
        // Re-initializing without LTIM returns to edge triggering.
        let mut pic = init();
        pic.set_irq_level(TIMER, true);
        expect_ack(&mut pic, MASTER_VECTOR_BASE);
        pic.write(PIC_MASTER_COMMAND, EOI);
        assert!(!pic.interrupt_pending());
    }

    #[test]
    fn masked_request_at_acknowledge_gives_spurious_irq7() {
        let mut pic = init();
        pulse(&mut pic, KEYBOARD);
        assert!(pic.interrupt_pending());
        pic.write(PIC_MASTER_DATA, 1 << KEYBOARD);
        assert_eq!(pic.acknowledge().vector, MASTER_VECTOR_BASE + 7);
        assert_eq!(master_isr(&mut pic), 0);
        // The real request is still latched and arrives once unmasked.
        pic.write(PIC_MASTER_DATA, 0);
        expect_ack(&mut pic, MASTER_VECTOR_BASE + KEYBOARD);
    }

    #[test]
    fn vanished_slave_request_gives_spurious_irq15() {
        let mut pic = init();
        pic.write(ELCR_SLAVE, 1 << 3);
        pic.set_irq_level(11, true);
        assert!(pic.interrupt_pending());
        pic.set_irq_level(11, false);
        // The master latched the edge on its cascade line, so it still asks.
        assert!(pic.interrupt_pending());
        assert_eq!(pic.acknowledge().vector, SLAVE_VECTOR_BASE + 7);
        // As in QEMU, the master puts its cascade line in service; the
        // slave puts nothing in service.
        assert_eq!(master_isr(&mut pic), 1 << CASCADE);
        assert_eq!(slave_isr(&mut pic), 0);
        pic.write(PIC_MASTER_COMMAND, EOI);
        assert!(!pic.interrupt_pending());
    }

    #[test]
    fn elcr_registers_apply_their_masks() {
        let mut pic = DualPic::new();
        assert_eq!(pic.read(ELCR_MASTER), 0);
        assert_eq!(pic.read(ELCR_SLAVE), 0);
        pic.write(ELCR_MASTER, 0xFF);
        pic.write(ELCR_SLAVE, 0xFF);
        assert_eq!(pic.read(ELCR_MASTER), 0xF8);
        assert_eq!(pic.read(ELCR_SLAVE), 0xDE);
        pic.write(ELCR_SLAVE, 0x21);
        assert_eq!(pic.read(ELCR_SLAVE), 0);
        // ICW1 does not touch the ELCR.
        pic.write(ELCR_MASTER, 0x28);
        let mut pic2 = pic.clone();
        pic2.write(PIC_MASTER_COMMAND, 0x11);
        assert_eq!(pic2.read(ELCR_MASTER), 0x28);
        // A system reset does.
        pic.reset();
        assert_eq!(pic.read(ELCR_MASTER), 0);
    }

    #[test]
    fn icw1_keeps_level_requests_and_drops_edge_ones() {
        let mut pic = init();
        pic.write(ELCR_MASTER, 1 << 6);
        pic.set_irq_level(6, true);
        pulse(&mut pic, 4);
        pic.write(PIC_MASTER_DATA, 0xFF);
        assert_eq!(pic.read(PIC_MASTER_COMMAND), 0b101_0000);
        pic.write(PIC_MASTER_COMMAND, 0x11);
        assert_eq!(pic.read(PIC_MASTER_COMMAND), 1 << 6);
    }

    #[test]
    fn out_of_range_and_cascade_lines_are_ignored() {
        let mut pic = init();
        for irq in [CASCADE, 16, 100, u8::MAX] {
            pic.set_irq_level(irq, true);
        }
        assert!(!pic.interrupt_pending());
        assert_eq!(reg(&mut pic, PIC_MASTER_COMMAND, READ_IRR), 0);
        assert_eq!(reg(&mut pic, PIC_SLAVE_COMMAND, READ_IRR), 0);
    }

    #[test]
    fn unknown_ports_read_ff_and_ignore_writes() {
        let mut pic = init();
        for port in [0x00, 0x22, 0x9F, 0xA2, 0x4CF, 0x4D2, 0xFFFF] {
            pic.write(port, 0x11);
            assert_eq!(pic.read(port), 0xFF);
        }
        assert_eq!(pic.read(PIC_MASTER_DATA), 0, "IMR untouched");
        pulse(&mut pic, TIMER);
        expect_ack(&mut pic, MASTER_VECTOR_BASE);
    }

    #[test]
    fn bad_input_never_panics() {
        const PORTS: [u16; 8] = [
            PIC_MASTER_COMMAND,
            PIC_MASTER_DATA,
            PIC_SLAVE_COMMAND,
            PIC_SLAVE_DATA,
            ELCR_MASTER,
            ELCR_SLAVE,
            0x22,
            0xFFFF,
        ];
        // Every value on every port, from a busy state.
        let mut pic = init();
        for port in PORTS {
            for value in 0..=u8::MAX {
                for irq in 0..16 {
                    pic.set_irq_level(irq, value & 1 != 0);
                }
                pic.write(port, value);
                pic.read(port);
                if pic.interrupt_pending() {
                    pic.acknowledge();
                }
                pic.acknowledge();
            }
        }
        // Then a long pseudo-random mix of everything (xorshift, fixed seed).
        let mut state: u32 = 0x2545_F491;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state
        };
        for _ in 0..200_000 {
            let r = next();
            let value = (r >> 8) as u8;
            let port = PORTS[(r >> 16) as usize % PORTS.len()];
            match r % 5 {
                0 => pic.write(port, value),
                1 => {
                    pic.read(port);
                }
                2 => pic.set_irq_level(value % 20, r & 0x100_0000 != 0),
                3 => {
                    let vector = pic.acknowledge().vector;
                    // Whatever happens, a vector is base + line.
                    let bases = [pic.master.irq_base, pic.slave.irq_base];
                    assert!(bases.contains(&(vector & 0xF8)));
                }
                _ => {
                    pic.interrupt_pending();
                }
            }
        }
    }
}
