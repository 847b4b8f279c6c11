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

/// Remaps both PICs (ICW1-ICW4: edge triggered, cascade on IRQ2, 8086
/// mode, automatic EOI) and masks every line but the cascade.
pub fn init() {
    let words = [
        (PIC_MASTER_COMMAND, ICW1_INIT),
        (PIC_SLAVE_COMMAND, ICW1_INIT),
        (PIC_MASTER_DATA, MASTER_VECTOR_BASE),
        (PIC_SLAVE_DATA, SLAVE_VECTOR_BASE),
        // ICW3: the slave hangs on the master's line 2; its identity is 2.
        (PIC_MASTER_DATA, 1 << CASCADE),
        (PIC_SLAVE_DATA, CASCADE),
        (PIC_MASTER_DATA, ICW4_8086_AEOI),
        (PIC_SLAVE_DATA, ICW4_8086_AEOI),
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
