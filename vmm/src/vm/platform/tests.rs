//! Unit tests of the PC platform: the port map, dispatch, interrupt routing and tick reinjection.
use super::*;
use crate::clock::ManualClock;
use crate::device::MachineRequest;
use std::io;
use std::sync::{Arc, Mutex};

/// A COM1 output that keeps what was transmitted.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl io::Write for Capture {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn pc() -> Platform {
    Platform::pc(&MonotonicClock::default(), Box::new(Capture::default())).unwrap()
}

/// Programs the PIC pair as the guest does: vectors 32 and 40, cascade
/// on line 2, 8086 mode, nothing masked.
fn init_pic(platform: &mut Platform) {
    for (port, value) in [(0x20, 0x11), (0x21, 32), (0x21, 4), (0x21, 1)] {
        let _ = platform.pio_write(port, &[value]);
    }
    for (port, value) in [(0xa0, 0x11), (0xa1, 40), (0xa1, 2), (0xa1, 1)] {
        let _ = platform.pio_write(port, &[value]);
    }
}

fn eoi(platform: &mut Platform) {
    let _ = platform.pio_write(0x20, &[0x20]);
}

fn ack(platform: &mut Platform) -> (u8, u8) {
    let acknowledged = platform.acknowledge();
    (acknowledged.vector, acknowledged.line)
}

#[test]
fn port_map_is_disjoint_and_offsets_are_from_each_device_base() {
    let platform = pc();
    let at = |port| {
        platform
            .bus
            .lookup(port)
            .map(|(window, offset)| (window.device, window.delta + offset))
    };
    let pic = DeviceId::InterruptController;
    assert_eq!(at(0x21), Some((pic, 1)));
    assert_eq!(at(0xa1), Some((pic, 0x81)));
    assert_eq!(at(0x4d1), Some((pic, 0x4b1)));
    assert_eq!(at(0x43), Some((DeviceId::Device(0), 3)));
    assert_eq!(at(0x61), Some((DeviceId::Device(0), 0x21)));
    assert_eq!(at(0x64), Some((DeviceId::Device(1), 4)));
    assert_eq!(at(0x3fd), Some((DeviceId::Device(2), 5)));
    assert_eq!(at(0xf7), Some((DeviceId::Device(3), 3)));
    assert_eq!(at(0x80), None);
}

#[test]
fn a_second_device_on_taken_ports_is_refused() {
    let mut platform = pc();
    assert!(platform.attach(0x3fc, 2, DebugExit::new(), &[]).is_err());
    assert_eq!(
        platform.attach(0x80, 1, DebugExit::new(), &[1, 2, 3]),
        Err(PortMapError::TooManyLines {
            base: 0x80,
            len: 1,
            lines: 3
        })
    );
    assert_eq!(
        platform.map(0x80, 1, DeviceId::Device(99)),
        Err(PortMapError::UnknownDevice { base: 0x80, len: 1 })
    );
}

#[test]
fn unknown_ports_read_ones_and_are_counted() {
    let mut platform = pc();
    let mut data = [0u8; 4];
    let _ = platform.pio_read(0x80, &mut data[..1]);
    assert_eq!(data[0], 0xff);
    let _ = platform.pio_write(0x80, &[1, 2]);
    assert_eq!(platform.stats().unknown_port_reads, 1);
    assert_eq!(platform.stats().unknown_port_writes, 2);
}

#[test]
fn debug_exit_takes_a_dword_whole() {
    let mut platform = pc();
    let change = platform.pio_write(ports::DEBUG_EXIT, &0x10u32.to_le_bytes());
    assert_eq!(change.request, Some(MachineRequest::Exit(0x10)));
    let change = platform.pio_write(ports::DEBUG_EXIT, &[3]);
    assert_eq!(change.request, Some(MachineRequest::Exit(3)));
}

#[test]
fn serial_bytes_reach_the_output_and_raise_irq4() {
    let out = Capture::default();
    let mut platform = Platform::pc(&MonotonicClock::default(), Box::new(out.clone())).unwrap();
    init_pic(&mut platform);
    let _ = platform.pio_write(ports::COM1, b"A");
    assert_eq!(*out.0.lock().unwrap(), b"A");
    let _ = platform.pio_write(ports::COM1 + 1, &[0x02]); // IER: THRE
    assert!(platform.interrupt_pending());
    assert_eq!(ack(&mut platform), (32 + irq::COM1, irq::COM1));
}

/// Host bytes for COM1 wait in the UART until the guest reads them, each
/// one raising IRQ4 (received data, IER.RDI) through the port map.
#[test]
fn serial_input_raises_irq4_and_waits_for_the_guest() {
    let mut platform = pc();
    init_pic(&mut platform);
    let _ = platform.pio_write(ports::COM1 + 1, &[0x01]); // IER: received data
    let change = platform.serial_input(b"ok");
    assert_eq!(change.irq[0], Some(IrqOutput::Level(true)));
    assert!(platform.serial_input_pending());
    assert_eq!(ack(&mut platform), (32 + irq::COM1, irq::COM1));
    eoi(&mut platform);
    let mut byte = [0];
    let change = platform.pio_read(ports::COM1, &mut byte);
    assert_eq!(byte, *b"o");
    assert!(change.input_consumed);
    let _ = platform.pio_read(ports::COM1, &mut byte);
    assert_eq!(byte, *b"k");
    assert!(!platform.serial_input_pending());
    assert!(!platform.interrupt_pending());
    assert_eq!(platform.serial_stats().rx_bytes, 2);
}

/// The i8042's reset pulse reaches the machine as a request.
#[test]
fn i8042_reset_pulse_is_a_machine_request() {
    let mut platform = pc();
    let change = platform.pio_write(ports::I8042_COMMAND, &[0xFE]);
    assert_eq!(change.request, Some(MachineRequest::Reset));
}

/// Keys typed before the guest's keyboard driver is ready are released by
/// its 0xF4, inside the port write, and each byte reaches the PIC as a new
/// IRQ1 edge.
#[test]
fn keys_held_at_boot_reach_the_pic_after_f4() {
    let mut platform = pc();
    init_pic(&mut platform);
    // Only IRQ1 unmasked.
    let _ = platform.pio_write(0x21, &[!(1 << irq::KEYBOARD)]);
    let _ = platform.key_event(0x1C, true);
    assert!(platform.keyboard_input_pending());
    assert!(!platform.interrupt_pending());

    let mut byte = [0u8];
    let _ = platform.pio_write(ports::I8042_DATA, &[0xF4]);
    assert!(platform.interrupt_pending());
    assert_eq!(ack(&mut platform), (32 + irq::KEYBOARD, irq::KEYBOARD));
    let change = platform.pio_read(ports::I8042_DATA, &mut byte);
    assert_eq!(byte[0], 0xFA);
    assert!(!change.input_consumed);
    eoi(&mut platform);
    // The line never dropped, yet the held key is a new interrupt.
    assert!(platform.interrupt_pending());
    assert_eq!(ack(&mut platform), (32 + irq::KEYBOARD, irq::KEYBOARD));
    let change = platform.pio_read(ports::I8042_DATA, &mut byte);
    // Set 2's 0x1C ('A'), translated to set 1 as the firmware's command
    // byte asks.
    assert_eq!(byte[0], 0x1E);
    assert!(change.input_consumed);
    assert!(!platform.keyboard_input_pending());
    eoi(&mut platform);
    assert!(!platform.interrupt_pending());

    // A write that releases an event sending no byte (Pause's release)
    // also tells the waiters.
    let _ = platform.pio_write(ports::I8042_COMMAND, &[0xAD]);
    let _ = platform.key_event(0xE114, false);
    assert!(platform.keyboard_input_pending());
    let change = platform.pio_write(ports::I8042_COMMAND, &[0xAE]);
    assert!(change.input_consumed);
    assert!(!platform.keyboard_input_pending());
}

/// A platform on a manual clock with PIT channel 0 in mode 2 at 1 kHz.
fn ticking() -> (Platform, ManualClock) {
    let clock = ManualClock::new();
    let mut platform = Platform::empty();
    platform
        .map(ports::PIC_MASTER_COMMAND, 2, DeviceId::InterruptController)
        .unwrap();
    platform
        .map(ports::PIC_SLAVE_COMMAND, 2, DeviceId::InterruptController)
        .unwrap();
    platform
        .attach(
            ports::PIT_CHANNEL0,
            4,
            Pit::new(clock.clone()),
            &[irq::TIMER],
        )
        .unwrap();
    let i8042 = platform
        .attach(
            ports::I8042_DATA,
            1,
            I8042::new(),
            &[irq::KEYBOARD, irq::MOUSE],
        )
        .unwrap();
    platform.map(ports::I8042_COMMAND, 1, i8042).unwrap();
    init_pic(&mut platform);
    let mut change = Change::NONE;
    for (port, value) in [(0x43, 0x34), (0x40, 0xa9), (0x40, 0x04)] {
        change = change.then(platform.pio_write(port, &[value]));
    }
    assert!(
        change.deadline_moved,
        "programming the PIT moves its deadline"
    );
    (platform, clock)
}

/// Time is a service: the platform reports the earliest device deadline
/// and, once the clock passed it, routes the device's ticks.
#[test]
fn deadlines_drive_timer_ticks() {
    let (mut platform, clock) = ticking();
    let first = platform.next_deadline().expect("channel 0 runs");
    assert_eq!(
        first,
        Duration::from_nanos(1_000_000_000 * 1193 / 1_193_182 + 1)
    );
    let _ = platform.advance_time(false);
    assert!(!platform.interrupt_pending(), "nothing due yet");
    clock.set(first);
    let _ = platform.advance_time(false);
    assert!(platform.interrupt_pending());
    assert!(platform.next_deadline().unwrap() > first);
    assert_eq!(ack(&mut platform), (32, irq::TIMER));
}

/// Ticks that happened while the guest could not take them are
/// delivered one per acknowledge; while paused they are discarded.
#[test]
fn ticks_are_reinjected_one_at_a_time() {
    let (mut platform, clock) = ticking();
    clock.set(Duration::from_micros(3_500)); // three edges
    let _ = platform.advance_time(false);
    assert_eq!(platform.timer_ticks_owed(), 2);
    assert_eq!(ack(&mut platform), (32, irq::TIMER));
    eoi(&mut platform);
    assert_eq!(ack(&mut platform), (32, irq::TIMER));
    eoi(&mut platform);
    assert_eq!(ack(&mut platform), (32, irq::TIMER));
    eoi(&mut platform);
    assert!(!platform.interrupt_pending());
    assert_eq!(platform.stats().timer_ticks_delivered, 3);

    clock.set(Duration::from_micros(5_500)); // two more, paused
    let _ = platform.advance_time(true);
    assert!(!platform.interrupt_pending());
    assert_eq!(platform.stats().timer_ticks_paused, 2);
}

/// Linux's tick: mask IRQ0 and send a specific EOI (`mask_and_ack_8259A`),
/// run the handler, unmask. Unmasking forgets the ticks owed, as KVM's
/// in-kernel PIT does, so a backlog is not replayed at a guest whose every
/// tick costs about its period; the tick in flight stays, and later ticks
/// come at the timer's rate.
#[test]
fn unmasking_the_timer_forgets_the_owed_ticks() {
    let (mut platform, clock) = ticking();
    clock.set(Duration::from_micros(10_500)); // ten edges: one in flight, nine owed
    let _ = platform.advance_time(false);
    assert_eq!(platform.timer_ticks_owed(), 9);
    assert_eq!(ack(&mut platform), (32, irq::TIMER));
    // The acknowledge let the next owed tick out: its IRR bit is set.
    assert_eq!(platform.timer_ticks_owed(), 8);
    let _ = platform.pio_write(0x21, &[0x01]); // mask IRQ0
    let _ = platform.pio_write(0x20, &[0x60]); // specific EOI, IRQ0
    assert_eq!(platform.timer_ticks_owed(), 8, "masking keeps the backlog");
    let _ = platform.pio_write(0x21, &[0x00]); // unmask
    assert_eq!(platform.timer_ticks_owed(), 0);
    assert_eq!(platform.stats().timer_ticks_unmasked, 8);
    // The edge already latched in the IRR is still delivered, then nothing
    // until the next period.
    assert_eq!(ack(&mut platform), (32, irq::TIMER));
    eoi(&mut platform);
    assert!(!platform.interrupt_pending());
    clock.set(Duration::from_micros(11_500));
    let _ = platform.advance_time(false);
    assert_eq!(ack(&mut platform), (32, irq::TIMER));
    assert_eq!(platform.stats().timer_ticks_delivered, 3);
    // Unmasking another line, or writing an unchanged mask, keeps ticks.
    eoi(&mut platform);
    clock.set(Duration::from_micros(14_500));
    let _ = platform.advance_time(false);
    assert_eq!(platform.timer_ticks_owed(), 2);
    let _ = platform.pio_write(0x21, &[0x02]);
    let _ = platform.pio_write(0x21, &[0x00]);
    let _ = platform.pio_write(0x21, &[0x00]);
    assert_eq!(platform.timer_ticks_owed(), 2);
}

/// Re-initialising the PIC drops a tick in flight (its IRR bit goes), so
/// later ticks are not held back waiting for an acknowledge that never
/// comes.
#[test]
fn pic_reinit_drops_the_tick_in_flight() {
    let (mut platform, clock) = ticking();
    clock.set(Duration::from_micros(1_500));
    let _ = platform.advance_time(false);
    assert!(platform.interrupt_pending());
    init_pic(&mut platform);
    assert!(!platform.interrupt_pending());
    clock.set(Duration::from_micros(2_500));
    let _ = platform.advance_time(false);
    assert!(platform.interrupt_pending());
    assert_eq!(ack(&mut platform), (32, irq::TIMER));
}

/// ICW1 cancels the ticks still owed on the chip's lines: after a
/// re-initialisation IRQ0 is requested again only by a new PIT edge, as on
/// a real 8259 and in QEMU (found by the conformance kernel: a guest polling
/// the PIC saw a stale IRQ0 request, or none where QEMU had one).
#[test]
fn pic_reinit_cancels_the_ticks_owed() {
    let (mut platform, clock) = ticking();
    clock.set(Duration::from_micros(3_500)); // three edges: one in flight, two owed
    let _ = platform.advance_time(false);
    assert_eq!(platform.timer_ticks_owed(), 2);
    init_pic(&mut platform);
    assert_eq!(platform.timer_ticks_owed(), 0);
    assert_eq!(platform.stats().timer_ticks_cancelled, 2);
    assert!(!platform.interrupt_pending());
    // OCW2/OCW3 writes to the command port (bit 4 clear) cancel nothing.
    clock.set(Duration::from_micros(5_500));
    let _ = platform.advance_time(false);
    assert_eq!(platform.timer_ticks_owed(), 1);
    let _ = platform.pio_write(0x20, &[0x0B]);
    eoi(&mut platform);
    assert_eq!(platform.timer_ticks_owed(), 1);
    // The slave's ICW1 leaves the master's lines alone.
    let _ = platform.pio_write(0xA0, &[0x11]);
    assert_eq!(platform.timer_ticks_owed(), 1);
    // The next edge after a re-initialisation is delivered.
    init_pic(&mut platform);
    clock.set(Duration::from_micros(6_500));
    let _ = platform.advance_time(false);
    assert_eq!(ack(&mut platform), (32, irq::TIMER));
}

/// With a backlog of timer ticks, IRQ0 would win every arbitration:
/// catch-up ticks wait while another device is requesting.
#[test]
fn catch_up_ticks_yield_to_the_keyboard() {
    let (mut platform, clock) = ticking();
    let _ = platform.pio_write(ports::I8042_DATA, &[0xF4]);
    let mut byte = [0u8];
    assert_eq!(ack(&mut platform), (33, irq::KEYBOARD));
    let _ = platform.pio_read(ports::I8042_DATA, &mut byte);
    eoi(&mut platform);
    clock.set(Duration::from_micros(3_500)); // three ticks owed
    let _ = platform.advance_time(false);
    let _ = platform.key_event(0x1C, true);
    assert_eq!(ack(&mut platform), (32, irq::TIMER));
    eoi(&mut platform);
    // The keyboard goes first although two ticks are still owed.
    assert_eq!(ack(&mut platform), (33, irq::KEYBOARD));
    let _ = platform.pio_read(ports::I8042_DATA, &mut byte);
    eoi(&mut platform);
    assert_eq!(ack(&mut platform), (32, irq::TIMER));
    eoi(&mut platform);
    assert_eq!(ack(&mut platform), (32, irq::TIMER));
    eoi(&mut platform);
    assert!(!platform.interrupt_pending());
    assert_eq!(platform.stats().timer_ticks_delivered, 3);

    // The one tick just due keeps IRQ0's priority.
    clock.set(Duration::from_micros(4_500));
    let _ = platform.key_event(0x1C, false);
    let _ = platform.advance_time(false);
    assert_eq!(ack(&mut platform), (32, irq::TIMER));
}

/// A platform reset brings every device back to power-on and keeps the
/// keys the guest has not read.
#[test]
fn reset_restores_power_on_and_keeps_held_keys() {
    let (mut platform, clock) = ticking();
    clock.set(Duration::from_micros(5_500));
    let _ = platform.advance_time(false);
    assert!(platform.timer_ticks_owed() > 0);
    // The keyboard activated (F4), one key read, one still queued.
    let _ = platform.pio_write(ports::I8042_DATA, &[0xF4]);
    let mut byte = [0u8];
    let _ = platform.pio_read(ports::I8042_DATA, &mut byte);
    assert_eq!(byte[0], 0xFA);
    eoi(&mut platform);
    let _ = platform.key_event(0x1C, true);
    let _ = platform.key_event(0x1C, false);

    platform.reset();
    assert_eq!(platform.stats().resets, 1);
    assert_eq!(platform.next_deadline(), None);
    assert_eq!(platform.timer_ticks_owed(), 0);
    assert!(!platform.interrupt_pending());
    let _ = platform.pio_read(0x21, &mut byte);
    assert_eq!(byte[0], 0, "IMR at power-on");
    let _ = platform.pio_write(ports::I8042_COMMAND, &[0x20]);
    let _ = platform.pio_read(ports::I8042_DATA, &mut byte);
    assert_eq!(byte[0], 0x03, "command byte at power-on");
    // Both key events wait for the next driver's F4.
    assert!(platform.keyboard_input_pending());
    let _ = platform.pio_write(ports::I8042_DATA, &[0xF4]);
    let mut got = Vec::new();
    for _ in 0..4 {
        let _ = platform.pio_read(ports::I8042_DATA, &mut byte);
        got.push(byte[0]);
    }
    assert_eq!(got, [0xFA, 0x1C, 0xF0, 0x1C]);
    assert!(!platform.keyboard_input_pending());
}

/// The PC's i8042 starts, and comes back from a reset, as SeaBIOS leaves it
/// under QEMU `pc` (command byte 0x61: translation on, so Linux registers an
/// "AT Translated Set 2 keyboard"), with host keys held for the guest's 0xF4.
#[test]
fn the_pc_keyboard_controller_starts_as_the_firmware_leaves_it() {
    let mut platform = pc();
    let command_byte = |platform: &mut Platform| {
        let _ = platform.pio_write(ports::I8042_COMMAND, &[0x20]);
        let mut byte = [0u8];
        let _ = platform.pio_read(ports::I8042_DATA, &mut byte);
        byte[0]
    };
    assert_eq!(command_byte(&mut platform), 0x61);
    let _ = platform.pio_write(ports::I8042_COMMAND, &[0x60]);
    let _ = platform.pio_write(ports::I8042_DATA, &[0x03]);
    assert_eq!(command_byte(&mut platform), 0x03);
    let _ = platform.key_event(0x1C, true);
    platform.reset();
    assert_eq!(command_byte(&mut platform), 0x61);
    assert!(
        platform.keyboard_input_pending(),
        "the key waits for the guest's 0xF4"
    );
}
