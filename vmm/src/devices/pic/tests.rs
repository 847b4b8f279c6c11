//! Unit tests of the 8259A pair, one per datasheet behaviour.
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
}

/// One step of a guest or a device, for the property below.
#[derive(Clone, Debug)]
enum Step {
    Write(u16, u8),
    Read(u16),
    Level(u8, bool),
    Acknowledge,
}

fn step() -> impl proptest::strategy::Strategy<Value = Step> {
    use proptest::prelude::*;
    const PORTS: [u16; 7] = [
        PIC_MASTER_COMMAND,
        PIC_MASTER_DATA,
        PIC_SLAVE_COMMAND,
        PIC_SLAVE_DATA,
        ELCR_MASTER,
        ELCR_SLAVE,
        0x22,
    ];
    prop_oneof![
        (0..PORTS.len(), any::<u8>()).prop_map(|(i, v)| Step::Write(PORTS[i], v)),
        (0..PORTS.len()).prop_map(|i| Step::Read(PORTS[i])),
        (0u8..20, any::<bool>()).prop_map(|(line, level)| Step::Level(line, level)),
        Just(Step::Acknowledge),
        // Plain EOIs often, so that lines leave service.
        Just(Step::Write(PIC_MASTER_COMMAND, EOI)),
        Just(Step::Write(PIC_SLAVE_COMMAND, EOI)),
    ]
}

/// The line of highest priority among `mask`'s bits, with line
/// `highest_first` first: the datasheet's rotation, computed independently
/// of the model.
fn best(mask: u8, highest_first: u8) -> Option<u8> {
    (0..8)
        .map(|i| (highest_first + i) & 7)
        .find(|line| mask & (1 << line) != 0)
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2_000))]

    /// Whatever the guest and the devices do, an INTA delivers the vector of
    /// a requested, unmasked line of the highest priority (never the
    /// cascade line itself), puts it in service unless in automatic-EOI
    /// mode, and a spurious answer comes only when nothing could be served.
    #[test]
    fn acknowledge_serves_the_best_unmasked_request(steps in proptest::collection::vec(step(), 1..200)) {
        let mut pic = init();
        for step in steps {
            match step {
                Step::Write(port, value) => pic.write(port, value),
                Step::Read(port) => {
                    pic.read(port);
                }
                Step::Level(line, level) => pic.set_irq_level(line, level),
                Step::Acknowledge => {
                    let before = pic.clone();
                    let pending = before.interrupt_pending();
                    let got = pic.acknowledge();
                    proptest::prop_assert_ne!(got.line, CASCADE);
                    let (chip, chip_before, local) = if got.line < 8 {
                        (&pic.master, &before.master, got.line)
                    } else {
                        (&pic.slave, &before.slave, got.line - 8)
                    };
                    proptest::prop_assert_eq!(got.vector, chip_before.irq_base | local);
                    if got.spurious {
                        proptest::prop_assert_eq!(local, 7);
                        proptest::prop_assert_eq!(chip.isr & 0x80, chip_before.isr & 0x80);
                        continue;
                    }
                    proptest::prop_assert!(pending, "served {} with INT low", got.line);
                    let requests = chip_before.irr & !chip_before.imr;
                    proptest::prop_assert!(requests & (1 << local) != 0, "line {} not requested", got.line);
                    proptest::prop_assert_eq!(best(requests, chip_before.priority_add), Some(local));
                    if !chip_before.auto_eoi {
                        proptest::prop_assert!(chip.isr & (1 << local) != 0, "line {} not in service", got.line);
                    }
                    if got.line >= 8 && !before.master.auto_eoi {
                        proptest::prop_assert!(pic.master.isr & (1 << CASCADE) != 0);
                    }
                }
            }
        }
    }
}
