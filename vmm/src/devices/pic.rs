//! Intel 8259A programmable interrupt controller pair (master + slave).
// API skeleton; the full model replaces this file.

/// The two cascaded 8259A PICs of a PC, plus the ELCR edge/level registers.
#[derive(Debug, Default)]
pub struct DualPic {}

impl DualPic {
    /// A pair in its power-on state.
    pub fn new() -> Self {
        Self {}
    }
    /// Guest read of port 0x20, 0x21, 0xA0, 0xA1, 0x4D0 or 0x4D1.
    pub fn read(&mut self, _port: u16) -> u8 {
        0xff
    }
    /// Guest write of one of the ports above.
    pub fn write(&mut self, _port: u16, _value: u8) {}
    /// Drives ISA IRQ line `irq` (0-15) to `level`.
    pub fn set_irq_level(&mut self, _irq: u8, _level: bool) {}
    /// Whether the master's INT output is asserted.
    pub fn interrupt_pending(&self) -> bool {
        false
    }
    /// INTA cycle: the vector to deliver (spurious 7/15 if the request vanished).
    pub fn acknowledge(&mut self) -> u8 {
        0
    }
}
