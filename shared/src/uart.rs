//! The 16550A UART's registers and bits (National Semiconductor PC16550D
//! datasheet; the names follow Linux's `serial_reg.h` and QEMU's
//! `hw/char/serial.c`). Offsets are from the UART's base port.

/// Register offsets (with LCR.DLAB clear, except the divisor latch).
pub mod reg {
    /// Read: receiver buffer (RBR); write: transmitter holding (THR).
    /// With LCR.DLAB set: divisor latch, low byte.
    pub const DATA: u16 = 0;
    /// Interrupt enable (IER); with LCR.DLAB set: divisor latch, high byte.
    pub const IER: u16 = 1;
    /// Read: interrupt identification (IIR); write: FIFO control (FCR).
    pub const IIR_FCR: u16 = 2;
    /// Line control (LCR).
    pub const LCR: u16 = 3;
    /// Modem control (MCR).
    pub const MCR: u16 = 4;
    /// Line status (LSR).
    pub const LSR: u16 = 5;
    /// Modem status (MSR).
    pub const MSR: u16 = 6;
    /// Scratch (SCR).
    pub const SCR: u16 = 7;
}

/// IER bits.
pub mod ier {
    /// Received data available (and, with the FIFO, character timeout).
    pub const RDI: u8 = 0x01;
    /// Transmitter holding register empty.
    pub const THRI: u8 = 0x02;
    /// Receiver line status (overrun, parity, framing, break).
    pub const RLSI: u8 = 0x04;
    /// Modem status.
    pub const MSI: u8 = 0x08;
}

/// IIR values: the highest-priority pending interrupt in bits 0-3.
pub mod iir {
    /// No interrupt pending.
    pub const NO_INT: u8 = 0x01;
    /// Mask of the interrupt identification (bits 0-3).
    pub const ID_MASK: u8 = 0x0F;
    /// Modem status (lowest priority).
    pub const MSI: u8 = 0x00;
    /// Transmitter holding register empty.
    pub const THRI: u8 = 0x02;
    /// Received data available (the FIFO reached its trigger level).
    pub const RDI: u8 = 0x04;
    /// Receiver line status (highest priority).
    pub const RLSI: u8 = 0x06;
    /// Character timeout: data in the FIFO, unread for 4 character times.
    pub const CTI: u8 = 0x0C;
    /// Bits 6-7: the FIFOs are enabled.
    pub const FIFO_ENABLED: u8 = 0xC0;
}

/// FCR bits.
pub mod fcr {
    /// FIFO enable.
    pub const ENABLE: u8 = 0x01;
    /// Clear the receiver FIFO.
    pub const CLEAR_RX: u8 = 0x02;
    /// Clear the transmitter FIFO.
    pub const CLEAR_TX: u8 = 0x04;
    /// Receiver trigger level: 1 byte.
    pub const TRIGGER_1: u8 = 0x00;
    /// Receiver trigger level: 4 bytes.
    pub const TRIGGER_4: u8 = 0x40;
    /// Receiver trigger level: 8 bytes.
    pub const TRIGGER_8: u8 = 0x80;
    /// Receiver trigger level: 14 bytes.
    pub const TRIGGER_14: u8 = 0xC0;
}

/// LCR bits.
pub mod lcr {
    /// 8 data bits, no parity, 1 stop bit.
    pub const WORD_8N1: u8 = 0x03;
    /// Divisor latch access.
    pub const DLAB: u8 = 0x80;
}

/// MCR bits.
pub mod mcr {
    /// Data terminal ready.
    pub const DTR: u8 = 0x01;
    /// Request to send.
    pub const RTS: u8 = 0x02;
    /// OUT2: on a PC, gates the UART's interrupt onto the ISA line.
    pub const OUT2: u8 = 0x08;
    /// Loopback mode.
    pub const LOOP: u8 = 0x10;
}

/// LSR bits.
pub mod lsr {
    /// Data ready: the receiver holds at least one byte.
    pub const DR: u8 = 0x01;
    /// Overrun: a byte arrived with no room for it and was lost.
    pub const OE: u8 = 0x02;
    /// Break received.
    pub const BI: u8 = 0x10;
    /// Transmitter holding register (with the FIFO: the whole TX FIFO) empty.
    pub const THRE: u8 = 0x20;
    /// Transmitter empty: THR/FIFO and the shift register.
    pub const TEMT: u8 = 0x40;
}

/// Depth of each FIFO of a 16550A.
pub const FIFO_SIZE: usize = 16;

/// The UART's input clock divided by 16: the baud rate at divisor 1.
pub const BAUD_BASE: u32 = 115_200;
