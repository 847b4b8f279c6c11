//! The 8259A pair as Linux's arch/x86/kernel/i8259.c drives it:
//! `probe_8259A` (mask write read back), `init_8259A` (ICW1-4 on both, then
//! the masks), `i8259A_irq_pending` (IRR reads), `mask_and_ack_8259A` and
//! `i8259A_irq_real` (ISR reads via OCW3, specific EOI), the spurious case
//! (a poll with nothing requested), plus poll mode, priority rotation,
//! special mask mode, auto-EOI and the ELCR. Requests come from real
//! devices (the PIT's OUT0 for IRQ0, the i8042's loopback for IRQ1, the RTC
//! for IRQ8 through the cascade); the CPU never takes them (interrupts off):
//! they are acknowledged by poll commands.

use shared::ports::{
    ELCR_MASTER, ELCR_SLAVE, I8042_COMMAND, I8042_DATA, PIC_MASTER_COMMAND as M_CMD,
    PIC_MASTER_DATA as M_IMR, PIC_SLAVE_COMMAND as S_CMD, PIC_SLAVE_DATA as S_IMR, PIT_CHANNEL0,
    PIT_COMMAND, RTC_DATA, RTC_INDEX,
};

use super::{delay_us, inb, outb, poll_until, Log};

const DEV: &str = "pic";

fn read_irr(cmd: u16) -> u8 {
    outb(cmd, 0x0A);
    inb(cmd)
}

fn read_isr(cmd: u16) -> u8 {
    outb(cmd, 0x0B);
    let isr = inb(cmd);
    outb(cmd, 0x0A);
    isr
}

/// OCW3 poll command, then the read that acknowledges.
fn poll(cmd: u16) -> u8 {
    outb(cmd, 0x0C);
    inb(cmd)
}

fn init(master_icw4: u8) {
    outb(M_IMR, 0xFF);
    outb(S_IMR, 0xFF);
    outb(M_CMD, 0x11);
    outb(M_IMR, 0x30);
    outb(M_IMR, 0x04);
    outb(M_IMR, master_icw4);
    outb(S_CMD, 0x11);
    outb(S_IMR, 0x38);
    outb(S_IMR, 0x02);
    outb(S_IMR, 0x01);
    delay_us(100);
    // IRQ0, IRQ1, the cascade and IRQ8 unmasked: the poll command, like
    // INTA, only considers unmasked requests. The CPU never takes them
    // (interrupts are off).
    outb(M_IMR, 0xF8);
    outb(S_IMR, 0xFE);
}

/// IRQ0: PIT channel 0 in mode 0 with a tiny count; OUT0 rises at once.
/// (The waits for a request allow a second: the edge comes from the VMM's
/// time service thread, which a loaded host may run late.)
fn raise_irq0() {
    outb(PIT_COMMAND, 0x30);
    outb(PIT_CHANNEL0, 0x02);
    outb(PIT_CHANNEL0, 0x00);
}

/// IRQ1: the i8042's keyboard loopback with the keyboard interrupt on.
fn raise_irq1() {
    outb(I8042_COMMAND, 0x20);
    poll_until(1000, || inb(I8042_COMMAND) & 1 != 0);
    let ctr = inb(I8042_DATA);
    outb(I8042_COMMAND, 0x60);
    outb(I8042_DATA, ctr | 0x01);
    outb(I8042_COMMAND, 0xD2);
    outb(I8042_DATA, 0x5A);
    poll_until(1000, || inb(I8042_COMMAND) & 1 != 0);
}

fn drain_i8042() {
    while inb(I8042_COMMAND) & 1 != 0 {
        inb(I8042_DATA);
    }
}

pub(super) fn run(log: &mut Log) {
    // probe_8259A: mask everything on the slave, all but the cascade on the
    // master, read it back.
    outb(S_IMR, 0xFF);
    outb(M_IMR, 0xFB);
    log.byte(DEV, "probe", "master-imr", inb(M_IMR));
    log.byte(DEV, "probe", "slave-imr", inb(S_IMR));

    // init_8259A(0): ICW1 0x11, vectors 0x30/0x38, cascade on IR2, 8086.
    init(0x01);
    // Quiet the sources: the i8042's buffer empty, PIT channel 0 stopped.
    drain_i8042();
    outb(PIT_COMMAND, 0x30);
    init(0x01);
    log.byte(DEV, "after-init", "master-imr", inb(M_IMR));
    log.byte(DEV, "after-init", "slave-imr", inb(S_IMR));
    // After ICW1 a read of the command port gives the IRR.
    log.byte(DEV, "after-init", "master-irr-default", inb(M_CMD));
    log.byte(DEV, "after-init", "master-isr", read_isr(M_CMD));
    log.byte(DEV, "after-init", "slave-isr", read_isr(S_CMD));

    // i8259A_irq_pending: IRR bits of masked lines are still set.
    raise_irq0();
    poll_until(1000, || read_irr(M_CMD) & 0x01 != 0);
    log.byte(DEV, "irq0-requested", "master-irr", read_irr(M_CMD) & 0x03);
    raise_irq1();
    poll_until(1000, || read_irr(M_CMD) & 0x02 != 0);
    log.byte(DEV, "irq1-requested", "master-irr", read_irr(M_CMD) & 0x03);

    // Poll mode acknowledges the highest-priority request: IRQ0 first.
    log.byte(DEV, "poll1", "master", poll(M_CMD));
    log.byte(DEV, "poll1", "master-isr", read_isr(M_CMD));
    log.byte(DEV, "poll1", "master-irr", read_irr(M_CMD) & 0x03);
    // IRQ1 is lower than the IRQ0 in service: fully nested, no interrupt.
    log.byte(DEV, "poll2-nested", "master", poll(M_CMD));
    // mask_and_ack_8259A's specific EOI (0x60 + line) ends IRQ0.
    outb(M_CMD, 0x60);
    log.byte(DEV, "specific-eoi", "master-isr", read_isr(M_CMD));
    log.byte(DEV, "poll3", "master", poll(M_CMD));
    log.byte(DEV, "poll3", "master-isr", read_isr(M_CMD));
    // Non-specific EOI ends the highest in service.
    outb(M_CMD, 0x20);
    log.byte(DEV, "eoi", "master-isr", read_isr(M_CMD));
    // The spurious case: nothing requested, a poll returns level 7 with no
    // bit in service (what i8259A_irq_real detects for a spurious IRQ7).
    drain_i8042();
    log.byte(DEV, "spurious-poll", "master", poll(M_CMD));
    log.byte(DEV, "spurious-poll", "master-isr", read_isr(M_CMD));

    // Rotation: OCW2 0xC0 | L makes L the lowest priority; with IRQ0 and
    // IRQ1 requested and IRQ0 lowest, IRQ1 wins.
    outb(PIT_COMMAND, 0x30);
    raise_irq0();
    raise_irq1();
    poll_until(1000, || read_irr(M_CMD) & 0x03 == 0x03);
    outb(M_CMD, 0xC0);
    log.byte(DEV, "rotated-poll", "master", poll(M_CMD));
    outb(M_CMD, 0x20);
    log.byte(DEV, "rotated-poll2", "master", poll(M_CMD));
    outb(M_CMD, 0x20);
    outb(M_CMD, 0xC7); // back to IRQ0 highest
    drain_i8042();

    // Special mask mode (OCW3 0x68): with IRQ0 in service and masked, the
    // lower IRQ1 is served.
    outb(PIT_COMMAND, 0x30);
    raise_irq0();
    poll_until(1000, || read_irr(M_CMD) & 0x01 != 0);
    log.byte(DEV, "smm-poll-irq0", "master", poll(M_CMD));
    raise_irq1();
    poll_until(1000, || read_irr(M_CMD) & 0x02 != 0);
    outb(M_CMD, 0x68);
    outb(M_IMR, 0xF8 | 0x01);
    log.byte(DEV, "smm-poll-irq1", "master", poll(M_CMD));
    log.byte(DEV, "smm", "master-isr", read_isr(M_CMD));
    outb(M_CMD, 0x48); // special mask mode off
    outb(M_CMD, 0x20);
    outb(M_CMD, 0x20);
    log.byte(DEV, "smm-off", "master-isr", read_isr(M_CMD));
    drain_i8042();

    // The slave through the cascade: the RTC's periodic flag raises IRQ8.
    init(0x01);
    outb(RTC_INDEX, 0x0B);
    let b = inb(RTC_DATA);
    outb(RTC_INDEX, 0x0C);
    inb(RTC_DATA);
    outb(RTC_INDEX, 0x0B);
    outb(RTC_DATA, b | 0x40);
    poll_until(1000, || read_irr(S_CMD) & 0x01 != 0);
    log.byte(DEV, "irq8", "slave-irr", read_irr(S_CMD) & 0x01);
    log.byte(DEV, "irq8", "master-irr-cascade", read_irr(M_CMD) & 0x04);
    log.byte(DEV, "irq8", "master-poll", poll(M_CMD));
    log.byte(DEV, "irq8", "slave-poll", poll(S_CMD));
    log.byte(DEV, "irq8", "slave-isr", read_isr(S_CMD));
    log.byte(DEV, "irq8", "master-isr", read_isr(M_CMD));
    // Linux's order: the slave's specific EOI, then the cascade's.
    outb(S_CMD, 0x60);
    outb(M_CMD, 0x62);
    log.byte(DEV, "irq8-eoi", "slave-isr", read_isr(S_CMD));
    log.byte(DEV, "irq8-eoi", "master-isr", read_isr(M_CMD));
    outb(RTC_INDEX, 0x0B);
    outb(RTC_DATA, b & !0x40);
    outb(RTC_INDEX, 0x0C);
    inb(RTC_DATA);

    // Auto-EOI (ICW4 0x03, init_8259A(1)): an acknowledged line is not left
    // in service.
    init(0x03);
    outb(PIT_COMMAND, 0x30);
    raise_irq0();
    poll_until(1000, || read_irr(M_CMD) & 0x01 != 0);
    log.byte(DEV, "auto-eoi", "master-poll", poll(M_CMD));
    log.byte(DEV, "auto-eoi", "master-isr", read_isr(M_CMD));

    // ELCR (edge/level per line): power-on value, then everything level,
    // read back (IRQ0-2 and 8, 13 are edge only), then back to edge.
    log.byte(DEV, "elcr", "master", inb(ELCR_MASTER));
    log.byte(DEV, "elcr", "slave", inb(ELCR_SLAVE));
    outb(ELCR_MASTER, 0xFF);
    outb(ELCR_SLAVE, 0xFF);
    log.byte(DEV, "elcr-all-level", "master", inb(ELCR_MASTER));
    log.byte(DEV, "elcr-all-level", "slave", inb(ELCR_SLAVE));
    outb(ELCR_MASTER, 0);
    outb(ELCR_SLAVE, 0);

    outb(PIT_COMMAND, 0x30);
    init(0x01);
}
