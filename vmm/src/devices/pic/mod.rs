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

    /// The registers, for [`DualPic::chips`].
    fn state(&self) -> ChipState {
        ChipState {
            irr: self.irr,
            imr: self.imr,
            isr: self.isr,
            highest_priority: self.priority_add,
            irq_base: self.irq_base,
            auto_eoi: self.auto_eoi,
            rotate_on_auto_eoi: self.rotate_on_auto_eoi,
            special_mask: self.special_mask,
            special_fully_nested: self.special_fully_nested,
            poll: self.poll,
            level_triggered: if self.ltim { 0xFF } else { self.elcr },
            initializing: self.init_state != InitState::Ready,
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

    /// The interrupt mask registers (OCW1) of both chips as one bit per ISA
    /// line: bit `n` set when line `n` is masked in its own chip.
    pub fn masked_lines(&self) -> u16 {
        u16::from(self.master.imr) | (u16::from(self.slave.imr) << 8)
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

    /// The registers of both chips, master first, without the side effects
    /// of a guest read (a debugger's or a fuzzer's view, like QEMU's
    /// `info pic`).
    pub fn chips(&self) -> [ChipState; 2] {
        [self.master.state(), self.slave.state()]
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

/// One chip's registers and modes, as [`DualPic::chips`] reports them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChipState {
    /// Interrupt request register.
    pub irr: u8,
    /// Interrupt mask register (OCW1).
    pub imr: u8,
    /// In-service register.
    pub isr: u8,
    /// The line of highest priority now (0 unless rotated).
    pub highest_priority: u8,
    /// Vector of line 0 (ICW2).
    pub irq_base: u8,
    /// Automatic EOI (ICW4).
    pub auto_eoi: bool,
    /// Rotate on automatic EOI (OCW2).
    pub rotate_on_auto_eoi: bool,
    /// Special mask mode (OCW3).
    pub special_mask: bool,
    /// Special fully nested mode (ICW4).
    pub special_fully_nested: bool,
    /// An OCW3 poll command waits for the next read.
    pub poll: bool,
    /// Lines that are level-triggered (ELCR, or every line with ICW1 LTIM).
    pub level_triggered: u8,
    /// The chip is between ICW1 and its last ICW.
    pub initializing: bool,
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
mod tests;
