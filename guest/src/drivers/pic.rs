//! The 8259A PIC pair, remapped to vectors 32..47.
//!
//! Initialisation uses the `pic8259` crate. End-of-interrupt and the
//! in-service register are used from interrupt handlers, so they are plain
//! port accesses here: no lock an interrupted task could be holding.

use pic8259::ChainedPics;
use shared::irq::{CASCADE, MASTER_VECTOR_BASE, SLAVE_VECTOR_BASE};
use shared::ports::{PIC_MASTER_COMMAND, PIC_MASTER_DATA, PIC_SLAVE_COMMAND, PIC_SLAVE_DATA};
use x86_64::instructions::interrupts::without_interrupts;
use x86_64::instructions::port::Port;

/// OCW2: non-specific end of interrupt.
const OCW2_EOI: u8 = 0x20;
/// OCW3: the next read of the command port returns the in-service register.
const OCW3_READ_ISR: u8 = 0x0B;

/// Remaps both PICs (ICW1-ICW4: edge triggered, cascade on IRQ2, 8086 mode)
/// and masks every line but the cascade.
pub fn init() {
    // SAFETY: port I/O to the PICs touches no memory; interrupts are still
    // disabled, so no IRQ arrives half-way through the initialisation words,
    // and every IDT vector the remap points at (32..47) has a stub.
    unsafe {
        let mut pics = ChainedPics::new(MASTER_VECTOR_BASE, SLAVE_VECTOR_BASE);
        pics.initialize();
        pics.write_masks(!(1 << CASCADE), 0xFF);
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

/// Sends the EOIs an interrupt on `irq` needs: the slave's (for IRQ 8-15)
/// and the master's.
pub fn end_of_interrupt(irq: u8) {
    // SAFETY: port I/O touches no memory; an OCW2 EOI only ends the
    // in-service interrupt the caller is handling.
    unsafe {
        if irq >= 8 {
            Port::<u8>::new(PIC_SLAVE_COMMAND).write(OCW2_EOI);
        }
        Port::<u8>::new(PIC_MASTER_COMMAND).write(OCW2_EOI);
    }
}

/// Sends an EOI to the master only (a spurious IRQ15 still went through the
/// master's cascade input, which is in service).
pub fn end_of_interrupt_master() {
    // SAFETY: as above.
    unsafe { Port::<u8>::new(PIC_MASTER_COMMAND).write(OCW2_EOI) };
}

/// The master's in-service register.
pub fn master_isr() -> u8 {
    read_isr(PIC_MASTER_COMMAND)
}

/// The slave's in-service register.
pub fn slave_isr() -> u8 {
    read_isr(PIC_SLAVE_COMMAND)
}

fn read_isr(command: u16) -> u8 {
    let mut port = Port::<u8>::new(command);
    // SAFETY: port I/O touches no memory; OCW3 only selects which register
    // the next read returns, and every reader of the PIC selects it first.
    unsafe {
        port.write(OCW3_READ_ISR);
        port.read()
    }
}
