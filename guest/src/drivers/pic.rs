//! The 8259A PIC pair, remapped to vectors 32..47, in automatic
//! end-of-interrupt mode.
//!
//! AEOI (ICW4 bit 1, in the 8259A datasheet): each PIC clears the
//! in-service bit itself at the end of the interrupt acknowledge, so a
//! handler sends no EOI: one port write (a VM exit under a hypervisor) less
//! per interrupt. What AEOI gives up is the in-service priority that keeps
//! a lower-priority line from interrupting a handler; ours run with
//! interrupts off (interrupt gates) and never nest, so nothing is lost. The
//! in-service registers then always read 0, so an IRQ7/IRQ15 is always
//! taken for spurious: those lines stay masked.
//!
//! The ports are used from interrupt handlers as plain port accesses: no
//! lock an interrupted task could be holding.

use shared::irq::{CASCADE, MASTER_VECTOR_BASE, SLAVE_VECTOR_BASE};
use shared::ports::{PIC_MASTER_COMMAND, PIC_MASTER_DATA, PIC_SLAVE_COMMAND, PIC_SLAVE_DATA};
use x86_64::instructions::interrupts::without_interrupts;
use x86_64::instructions::port::Port;

/// ICW1: edge triggered, cascaded, ICW4 follows.
const ICW1_INIT: u8 = 0x11;
/// ICW4: 8086 mode, automatic end of interrupt.
const ICW4_8086_AEOI: u8 = 0x03;
/// ICW4: 8086 mode, normal (explicit) end of interrupt.
const ICW4_8086: u8 = 0x01;
/// OCW3: the next read of the command port returns the in-service register.
const OCW3_READ_ISR: u8 = 0x0B;

/// Remaps both PICs (ICW1-ICW4: edge triggered, cascade on IRQ2, 8086
/// mode, automatic EOI) and masks every line but the cascade.
pub fn init() {
    init_with_icw4(ICW4_8086_AEOI);
}

/// As [`init`] but in normal EOI mode, so a line stays in service until an
/// EOI: for tests that look at the in-service register (the hostile guest
/// that re-initialises the PICs inside an interrupt). The IRQ handlers send
/// no EOI, so call [`init`] again before relying on them.
pub fn init_with_eoi() {
    init_with_icw4(ICW4_8086);
}

fn init_with_icw4(icw4: u8) {
    let words = [
        (PIC_MASTER_COMMAND, ICW1_INIT),
        (PIC_SLAVE_COMMAND, ICW1_INIT),
        (PIC_MASTER_DATA, MASTER_VECTOR_BASE),
        (PIC_SLAVE_DATA, SLAVE_VECTOR_BASE),
        // ICW3: the slave hangs on the master's line 2; its identity is 2.
        (PIC_MASTER_DATA, 1 << CASCADE),
        (PIC_SLAVE_DATA, CASCADE),
        (PIC_MASTER_DATA, icw4),
        (PIC_SLAVE_DATA, icw4),
        // OCW1: the masks.
        (PIC_MASTER_DATA, !(1 << CASCADE)),
        (PIC_SLAVE_DATA, 0xFF),
    ];
    for (port, value) in words {
        // SAFETY: port I/O to the PICs touches no memory; interrupts are
        // still disabled, so no IRQ arrives half-way through the
        // initialisation words, and every IDT vector the remap points at
        // (32..47) has a stub.
        unsafe { Port::<u8>::new(port).write(value) };
    }
}

fn data_port(irq: u8) -> (Port<u8>, u8) {
    if irq < 8 {
        (Port::new(PIC_MASTER_DATA), irq)
    } else {
        (Port::new(PIC_SLAVE_DATA), irq - 8)
    }
}

/// Enables delivery of `irq`.
pub fn unmask(irq: u8) {
    let (mut port, bit) = data_port(irq);
    // SAFETY: port I/O touches no memory; with interrupts off the IMR's
    // read-modify-write cannot interleave with a handler's.
    without_interrupts(|| unsafe {
        let mask = port.read();
        port.write(mask & !(1 << bit));
    });
}

/// The master's in-service register (always 0 in AEOI mode).
pub fn master_isr() -> u8 {
    let mut port = Port::<u8>::new(PIC_MASTER_COMMAND);
    // SAFETY: port I/O touches no memory; OCW3 only selects which register
    // the next read of the command port returns.
    unsafe {
        port.write(OCW3_READ_ISR);
        port.read()
    }
}
