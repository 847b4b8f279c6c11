//! The UART against the PC16550D datasheet and QEMU's `hw/char/serial.c`.
use std::io::{self, Write};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use shared::uart::{fcr, ier, iir, lcr, lsr, mcr, reg};

use super::*;
use crate::clock::ManualClock;

/// An output that keeps what was transmitted.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn uart() -> (Com1, Capture, ManualClock) {
    let out = Capture::default();
    let clock = ManualClock::new();
    (Com1::new(Box::new(out.clone()), clock.clone()), out, clock)
}

fn rd(uart: &mut Com1, offset: u16) -> u8 {
    uart.read(offset).0
}

/// 8N1 at 115200 baud (divisor 1): a frame is 10 bits, 86.8 µs.
fn program_115200(uart: &mut Com1) {
    let _ = uart.write(reg::LCR, lcr::DLAB);
    let _ = uart.write(reg::DATA, 1);
    let _ = uart.write(reg::IER, 0);
    let _ = uart.write(reg::LCR, lcr::WORD_8N1);
}

#[test]
fn power_on_registers_are_qemus() {
    let (mut uart, _, _) = uart();
    assert_eq!(rd(&mut uart, reg::IER), 0);
    assert_eq!(rd(&mut uart, reg::IIR_FCR), iir::NO_INT);
    assert_eq!(rd(&mut uart, reg::LCR), 0);
    assert_eq!(rd(&mut uart, reg::MCR), mcr::OUT2);
    assert_eq!(rd(&mut uart, reg::LSR), lsr::THRE | lsr::TEMT);
    assert_eq!(rd(&mut uart, reg::MSR), 0xB0);
    // Divisor latch: 9600 baud.
    let _ = uart.write(reg::LCR, lcr::DLAB);
    assert_eq!(rd(&mut uart, reg::DATA), 0x0C);
    assert_eq!(rd(&mut uart, reg::IER), 0);
}

#[test]
fn scratch_and_divisor_latch_are_read_back() {
    let (mut uart, out, _) = uart();
    let _ = uart.write(reg::SCR, 0x5A);
    assert_eq!(rd(&mut uart, reg::SCR), 0x5A);
    let _ = uart.write(reg::LCR, lcr::DLAB);
    let _ = uart.write(reg::DATA, 0x34);
    let _ = uart.write(reg::IER, 0x12);
    assert_eq!(
        (rd(&mut uart, reg::DATA), rd(&mut uart, reg::IER)),
        (0x34, 0x12)
    );
    let _ = uart.write(reg::LCR, lcr::WORD_8N1);
    // With DLAB clear the same offsets are THR and IER again.
    assert_eq!(rd(&mut uart, reg::IER), 0);
    assert!(
        out.0.lock().unwrap().is_empty(),
        "divisor writes are not data"
    );
}

#[test]
fn transmitted_bytes_reach_the_output_with_thre_and_temt_set_again() {
    let (mut uart, out, _) = uart();
    let _ = uart.write(reg::IIR_FCR, fcr::ENABLE | fcr::CLEAR_RX | fcr::CLEAR_TX);
    // A driver writes 16 bytes (the FIFO's depth) after one THRE check.
    assert_ne!(rd(&mut uart, reg::LSR) & lsr::THRE, 0);
    for byte in b"0123456789abcdef" {
        let _ = uart.write(reg::DATA, *byte);
    }
    assert_eq!(*out.0.lock().unwrap(), b"0123456789abcdef");
    assert_eq!(rd(&mut uart, reg::LSR), lsr::THRE | lsr::TEMT);
    assert_eq!(uart.stats().tx_bytes, 16);
}

#[test]
fn thre_interrupt_is_raised_cleared_by_iir_and_refreshed_by_each_write() {
    let (mut uart, _, _) = uart();
    let change = uart.write(reg::IER, ier::THRI);
    assert_eq!(change.irq[0], Some(IrqOutput::Level(true)));
    let (id, change) = uart.read(reg::IIR_FCR);
    assert_eq!(id, iir::THRI);
    assert_eq!(change.irq[0], Some(IrqOutput::Level(false)));
    // Reading IIR again: nothing pending.
    assert_eq!(rd(&mut uart, reg::IIR_FCR), iir::NO_INT);
    // A THR write: the holding register fills and empties, a new interrupt.
    let change = uart.write(reg::DATA, b'x');
    assert_eq!(change.irq[0], Some(IrqOutput::Level(true)));
    // Another write while the interrupt is still pending: the line drops and
    // rises within the access, a fresh edge for the 8259.
    let change = uart.write(reg::DATA, b'y');
    assert_eq!(change.irq[0], Some(IrqOutput::Reassert));
    // Disabling the interrupt lowers the line.
    let change = uart.write(reg::IER, 0);
    assert_eq!(change.irq[0], Some(IrqOutput::Level(false)));
}

#[test]
fn without_fifo_one_byte_at_a_time_enters_rbr_and_nothing_is_lost() {
    let (mut uart, _, _) = uart();
    let _ = uart.write(reg::IER, ier::RDI);
    let change = uart.host_input(b"abc");
    assert_eq!(change.irq[0], Some(IrqOutput::Level(true)));
    assert_eq!(uart.pending_input(), 3);
    assert_eq!(rd(&mut uart, reg::IIR_FCR), iir::RDI);
    assert_eq!(rd(&mut uart, reg::LSR) & (lsr::DR | lsr::OE), lsr::DR);
    let mut got = Vec::new();
    while rd(&mut uart, reg::LSR) & lsr::DR != 0 {
        let (byte, change) = uart.read(reg::DATA);
        assert!(change.input_consumed);
        got.push(byte);
    }
    assert_eq!(got, b"abc");
    assert_eq!(uart.pending_input(), 0);
    assert_eq!(rd(&mut uart, reg::IIR_FCR), iir::NO_INT);
    assert_eq!(uart.stats().rx_bytes, 3);
    assert_eq!(uart.stats().rx_overruns, 0);
}

/// A driver that reads while LSR.DR is set takes a burst of host bytes in
/// one interrupt: the line stays up while bytes keep coming and falls once.
#[test]
fn a_burst_read_in_one_interrupt_leaves_no_second_edge() {
    let (mut uart, _, _) = uart();
    let _ = uart.write(reg::IIR_FCR, fcr::ENABLE | fcr::TRIGGER_1);
    let _ = uart.write(reg::IER, ier::RDI);
    assert_eq!(uart.host_input(b"abc").irq[0], Some(IrqOutput::Level(true)));
    for byte in b"ab" {
        let (got, change) = uart.read(reg::DATA);
        assert_eq!((got, change.irq[0]), (*byte, None));
    }
    let (got, change) = uart.read(reg::DATA);
    assert_eq!((got, change.irq[0]), (b'c', Some(IrqOutput::Level(false))));
}

#[test]
fn fifo_fills_to_its_trigger_level_then_one_byte_per_read() {
    let (mut uart, _, _) = uart();
    program_115200(&mut uart);
    let _ = uart.write(reg::IIR_FCR, fcr::ENABLE | fcr::CLEAR_RX | fcr::TRIGGER_8);
    let _ = uart.write(reg::IER, ier::RDI);
    let input: Vec<u8> = (0..40).collect();
    let change = uart.host_input(&input);
    // Eight bytes reached the trigger level: received data available.
    assert_eq!(change.irq[0], Some(IrqOutput::Level(true)));
    assert_eq!(rd(&mut uart, reg::IIR_FCR), iir::FIFO_ENABLED | iir::RDI);
    assert_eq!(uart.rx_fifo.len(), 8);
    // Each read lets the next host byte in: the FIFO never overflows.
    let mut got = Vec::new();
    while rd(&mut uart, reg::LSR) & lsr::DR != 0 {
        got.push(rd(&mut uart, reg::DATA));
        assert!(uart.rx_fifo.len() <= 8);
    }
    assert_eq!(got, input);
    assert_eq!(rd(&mut uart, reg::LSR) & lsr::OE, 0);
}

#[test]
fn fewer_bytes_than_the_trigger_raise_the_character_timeout_after_four_frames() {
    let (mut uart, _, clock) = uart();
    program_115200(&mut uart);
    let _ = uart.write(reg::IIR_FCR, fcr::ENABLE | fcr::TRIGGER_4);
    let _ = uart.write(reg::IER, ier::RDI);
    let change = uart.host_input(b"hi");
    assert_eq!(change.irq[0], None, "2 bytes are below the trigger level");
    assert!(change.deadline_moved);
    // 4 frames of 10 bits at 115200 baud: 4 x 86.8 µs.
    let due = uart.next_deadline().unwrap();
    let frame = Duration::from_nanos(10 * 1_000_000_000 / 115_200);
    assert_eq!(due, 4 * frame);
    clock.set(due - Duration::from_nanos(1));
    assert_eq!(uart.on_deadline(), Change::NONE);
    clock.set(due);
    let change = uart.on_deadline();
    assert_eq!(change.irq[0], Some(IrqOutput::Level(true)));
    assert_eq!(rd(&mut uart, reg::IIR_FCR), iir::FIFO_ENABLED | iir::CTI);
    // Reading RBR clears the timeout indication and restarts the timer for
    // the byte left.
    assert_eq!(rd(&mut uart, reg::DATA), b'h');
    assert_eq!(rd(&mut uart, reg::IIR_FCR), iir::FIFO_ENABLED | iir::NO_INT);
    assert_eq!(uart.next_deadline(), Some(due + 4 * frame));
    assert_eq!(rd(&mut uart, reg::DATA), b'i');
    assert_eq!(uart.next_deadline(), None, "an empty FIFO has no timeout");
}

#[test]
fn the_timeout_is_masked_by_ier_rdi() {
    let (mut uart, _, clock) = uart();
    let _ = uart.write(reg::IIR_FCR, fcr::ENABLE | fcr::TRIGGER_14);
    let _ = uart.host_input(b"x");
    clock.advance(Duration::from_secs(1));
    assert_eq!(uart.on_deadline().irq[0], None);
    assert_eq!(rd(&mut uart, reg::IIR_FCR), iir::FIFO_ENABLED | iir::NO_INT);
    let change = uart.write(reg::IER, ier::RDI);
    assert_eq!(change.irq[0], Some(IrqOutput::Level(true)));
    assert_eq!(rd(&mut uart, reg::IIR_FCR), iir::FIFO_ENABLED | iir::CTI);
}

#[test]
fn overrun_sets_oe_raises_line_status_first_and_clears_on_lsr_read() {
    // Host input never overruns; in loopback the receiver takes what the
    // transmitter sends whether or not there is room.
    let (mut uart, out, _) = uart();
    let _ = uart.write(reg::MCR, mcr::LOOP);
    let _ = uart.write(reg::IER, ier::RLSI | ier::RDI | ier::THRI);
    let _ = uart.write(reg::DATA, b'1');
    let _ = uart.write(reg::DATA, b'2');
    assert!(
        out.0.lock().unwrap().is_empty(),
        "loopback sends nothing out"
    );
    // Line status has the highest priority.
    assert_eq!(rd(&mut uart, reg::IIR_FCR), iir::RLSI);
    assert_eq!(
        rd(&mut uart, reg::LSR) & (lsr::OE | lsr::DR),
        lsr::OE | lsr::DR
    );
    assert_eq!(rd(&mut uart, reg::LSR) & lsr::OE, 0, "OE clears when read");
    // Then received data, then THR empty.
    assert_eq!(rd(&mut uart, reg::IIR_FCR), iir::RDI);
    assert_eq!(
        rd(&mut uart, reg::DATA),
        b'2',
        "the second byte overwrote RBR"
    );
    assert_eq!(rd(&mut uart, reg::IIR_FCR), iir::THRI);
    assert_eq!(rd(&mut uart, reg::IIR_FCR), iir::NO_INT);
    assert_eq!(uart.stats().rx_overruns, 1);
}

#[test]
fn loopback_fifo_overrun_keeps_the_first_sixteen_bytes() {
    let (mut uart, _, _) = uart();
    let _ = uart.write(reg::IIR_FCR, fcr::ENABLE);
    let _ = uart.write(reg::MCR, mcr::LOOP);
    for byte in 0..20u8 {
        let _ = uart.write(reg::DATA, byte);
    }
    assert_ne!(rd(&mut uart, reg::LSR) & lsr::OE, 0);
    let got: Vec<u8> = (0..16).map(|_| rd(&mut uart, reg::DATA)).collect();
    assert_eq!(got, (0..16).collect::<Vec<u8>>());
    assert_eq!(rd(&mut uart, reg::LSR) & lsr::DR, 0);
}

#[test]
fn loopback_wires_modem_outputs_to_inputs() {
    let (mut uart, _, _) = uart();
    let _ = uart.write(reg::MCR, mcr::LOOP | mcr::DTR | mcr::RTS | mcr::OUT2);
    // DTR -> DSR, RTS -> CTS, OUT1 -> RI, OUT2 -> DCD.
    assert_eq!(rd(&mut uart, reg::MSR), 0x20 | 0x10 | 0x80);
}

#[test]
fn host_input_waits_during_loopback_and_flows_after_it() {
    let (mut uart, _, _) = uart();
    let _ = uart.write(reg::MCR, mcr::LOOP);
    let _ = uart.host_input(b"k");
    assert_eq!(rd(&mut uart, reg::LSR) & lsr::DR, 0);
    let _ = uart.write(reg::MCR, mcr::OUT2);
    assert_eq!(rd(&mut uart, reg::LSR) & lsr::DR, lsr::DR);
    assert_eq!(rd(&mut uart, reg::DATA), b'k');
}

#[test]
fn clearing_the_rx_fifo_or_resetting_loses_no_host_input() {
    let (mut uart, _, _) = uart();
    let _ = uart.write(reg::IIR_FCR, fcr::ENABLE | fcr::TRIGGER_4);
    let _ = uart.host_input(b"abcdef");
    assert_eq!(rd(&mut uart, reg::DATA), b'a');
    // The FIFO is cleared: what it held goes back in front of the queue.
    let _ = uart.write(reg::IIR_FCR, fcr::ENABLE | fcr::TRIGGER_4 | fcr::CLEAR_RX);
    assert_eq!(uart.pending_input(), 5);
    assert_eq!(rd(&mut uart, reg::DATA), b'b');
    uart.reset();
    assert_eq!(
        rd(&mut uart, reg::IIR_FCR),
        iir::NO_INT,
        "FIFO off after reset"
    );
    let got: Vec<u8> = (0..4).map(|_| rd(&mut uart, reg::DATA)).collect();
    assert_eq!(got, b"cdef");
    assert_eq!(uart.pending_input(), 0);
}

/// Host bytes that arrived before the driver enabled the FIFO (one waits in
/// RBR) are not lost when it enables and clears it.
#[test]
fn enabling_the_fifo_keeps_the_byte_waiting_in_rbr() {
    let (mut uart, _, _) = uart();
    let _ = uart.host_input(b"xy");
    let _ = uart.write(reg::IIR_FCR, fcr::ENABLE | fcr::CLEAR_RX | fcr::CLEAR_TX);
    assert_eq!(uart.pending_input(), 2);
    assert_eq!(
        (rd(&mut uart, reg::DATA), rd(&mut uart, reg::DATA)),
        (b'x', b'y')
    );
}

#[test]
fn reading_an_empty_receiver_gives_zero_and_consumes_nothing() {
    let (mut uart, _, _) = uart();
    let _ = uart.write(reg::IIR_FCR, fcr::ENABLE);
    let (byte, change) = uart.read(reg::DATA);
    assert_eq!((byte, change.input_consumed), (0, false));
}

#[test]
fn through_the_device_interface_wide_accesses_are_bytes_and_reset_keeps_the_output() {
    let (mut uart, out, _) = uart();
    let change = PortDevice::write(&mut uart, reg::IER, &[ier::THRI]);
    assert_eq!(change.irq[0], Some(IrqOutput::Level(true)));
    PortDevice::reset(&mut uart);
    let mut value = [0xAA];
    let _ = PortDevice::read(&mut uart, reg::IER, &mut value);
    assert_eq!(value, [0], "IER at power-on");
    let _ = PortDevice::write(&mut uart, reg::DATA, b"x");
    assert_eq!(*out.0.lock().unwrap(), b"x");
}
