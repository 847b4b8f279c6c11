//! The i8042 as Linux's `drivers/input/serio/i8042.c` probes it
//! (`i8042_controller_check`, `_selftest`, `_init`, `i8042_check_aux` with
//! the loopback and MUX probes, `i8042_toggle_aux`, the IRQ tests) and the
//! AT keyboard as `drivers/input/keyboard/atkbd.c` does (`atkbd_probe`:
//! reset, get ID, LEDs; `atkbd_select_set`; typematic; activate), plus the
//! controller's documented read commands.

use shared::i8042::{command_byte as ctr, status};
use shared::ports::{I8042_COMMAND, I8042_DATA, PIC_MASTER_COMMAND, PIC_SLAVE_COMMAND};

use super::{inb, outb, poll_until, Log};

const DEV: &str = "i8042";
const KBD: &str = "atkbd";
/// Linux's `I8042_CTL_TIMEOUT` is 10 ms per byte; the keyboard's reset may
/// take longer (`atkbd` waits 4 s). Generous for an emulated machine.
const TIMEOUT_MS: u64 = 100;
/// OCW3: the next read of a PIC's command port gives its IRR.
const OCW3_READ_IRR: u8 = 0x0A;

fn wait_write() -> bool {
    poll_until(TIMEOUT_MS, || inb(I8042_COMMAND) & status::IBF == 0)
}

fn command(cmd: u8) {
    wait_write();
    outb(I8042_COMMAND, cmd);
}

fn data(byte: u8) {
    wait_write();
    outb(I8042_DATA, byte);
}

/// Waits for a byte; logs the status that announced it and the byte, or
/// `none` when nothing came.
fn reply(log: &mut Log, dev: &str, item: &str) -> Option<u8> {
    let mut seen = 0;
    if poll_until(TIMEOUT_MS, || {
        seen = inb(I8042_COMMAND);
        seen & status::OBF != 0
    }) {
        let byte = inb(I8042_DATA);
        log.byte(dev, item, "status", seen);
        log.byte(dev, item, "data", byte);
        Some(byte)
    } else {
        log.value(dev, item, "data", "none");
        None
    }
}

/// A controller command with `answers` reply bytes.
fn ctl(log: &mut Log, item: &str, cmd: u8, answers: usize) -> Option<u8> {
    command(cmd);
    let mut last = None;
    for _ in 0..answers {
        last = reply(log, DEV, item);
    }
    last
}

fn read_ctr(log: &mut Log, item: &str) -> u8 {
    ctl(log, item, 0x20, 1).unwrap_or(0)
}

fn write_ctr(value: u8) {
    command(0x60);
    data(value);
}

/// A keyboard command (and its parameter) with `answers` reply bytes.
fn kbd(log: &mut Log, item: &str, bytes: &[u8], answers: usize) {
    for &byte in bytes {
        data(byte);
        // Every byte sent is acknowledged before the next (ps2_command).
        if bytes.len() > 1 {
            reply(log, KBD, item);
        }
    }
    let already = if bytes.len() > 1 { bytes.len() } else { 0 };
    for _ in already..answers {
        reply(log, KBD, item);
    }
}

/// Discards what the output buffer holds, as `i8042_flush`; logs how many
/// bytes that was.
fn flush(log: &mut Log, item: &str) {
    let mut count = 0;
    while inb(I8042_COMMAND) & status::OBF != 0 && count < 32 {
        inb(I8042_DATA);
        count += 1;
    }
    log.value(DEV, item, "flushed", count);
}

fn irr(command_port: u16) -> u8 {
    outb(command_port, OCW3_READ_IRR);
    inb(command_port)
}

pub(super) fn run(log: &mut Log) {
    // i8042_controller_check: the status register, then a flush.
    log.byte(DEV, "status", "read", inb(I8042_COMMAND));
    flush(log, "check");

    // i8042_controller_selftest: 0xAA answers 0x55.
    let before = read_ctr(log, "ctr-before-selftest");
    ctl(log, "selftest(0xaa)", 0xAA, 1);
    log.byte(DEV, "status", "after-selftest", inb(I8042_COMMAND));
    read_ctr(log, "ctr-after-selftest");

    // i8042_controller_init: read the CTR until two reads agree, keyboard
    // interface disabled and its interrupt off while probing.
    let first = read_ctr(log, "ctr-read1");
    let second = read_ctr(log, "ctr-read2");
    log.value(DEV, "ctr", "stable", u8::from(first == second));
    let mut probe = (before | ctr::KBD_DISABLE) & !(ctr::KBD_INT | ctr::AUX_INT);
    write_ctr(probe);
    read_ctr(log, "ctr-probe");

    // i8042_check_aux: loopback 0x5A through the AUX port (0xD3).
    flush(log, "aux");
    command(0xD3);
    data(0x5A);
    reply(log, DEV, "aux-loop(0xd3,0x5a)");
    // AUX interface test 0xA9 (the fallback when the loopback fails).
    ctl(log, "aux-test(0xa9)", 0xA9, 1);
    // i8042_toggle_aux: disable then enable through the CTR, read back.
    write_ctr(probe | ctr::AUX_DISABLE);
    read_ctr(log, "ctr-aux-disabled");
    write_ctr(probe & !ctr::AUX_DISABLE);
    read_ctr(log, "ctr-aux-enabled");
    // The same through the commands 0xA7 / 0xA8.
    command(0xA7);
    read_ctr(log, "ctr-after-0xa7");
    command(0xA8);
    read_ctr(log, "ctr-after-0xa8");
    command(0xA7);
    read_ctr(log, "ctr-after-0xa7-again");

    // i8042_set_mux_mode: 0xF0, 0x56, 0xA4 through the loopback; a
    // controller that is not active-multiplexing gives each byte back.
    for (item, byte) in [
        ("mux-probe(0xf0)", 0xF0),
        ("mux-probe(0x56)", 0x56),
        ("mux-probe(0xa4)", 0xA4),
    ] {
        command(0xD3);
        data(byte);
        reply(log, DEV, item);
    }

    // The AUX IRQ test: loopback 0xA5 with the AUX interrupt on must raise
    // IRQ12 (the slave's IRR bit 4) and the cascade (the master's bit 2).
    write_ctr((probe | ctr::AUX_INT) & !ctr::AUX_DISABLE);
    command(0xD3);
    data(0xA5);
    poll_until(TIMEOUT_MS, || inb(I8042_COMMAND) & status::OBF != 0);
    log.byte(
        DEV,
        "aux-irq-test",
        "slave-irr",
        irr(PIC_SLAVE_COMMAND) & 0x10,
    );
    log.byte(
        DEV,
        "aux-irq-test",
        "master-irr-cascade",
        irr(PIC_MASTER_COMMAND) & 0x04,
    );
    reply(log, DEV, "aux-irq-test");
    write_ctr(probe | ctr::AUX_DISABLE);

    // Keyboard interface test 0xAB: 0x00.
    ctl(log, "kbd-test(0xab)", 0xAB, 1);
    // Documented read commands: output port, input port.
    ctl(log, "read-output-port(0xd0)", 0xD0, 1);
    ctl(log, "read-input-port(0xc0)", 0xC0, 1);
    // The keyboard loopback 0xD2 (what i8042_kbd_write's tests use): the
    // byte comes back as keyboard data, raising IRQ1 with KBD_INT set.
    write_ctr(probe | ctr::KBD_INT);
    command(0xD2);
    data(0x5A);
    poll_until(TIMEOUT_MS, || inb(I8042_COMMAND) & status::OBF != 0);
    log.byte(
        DEV,
        "kbd-loop-irq",
        "master-irr",
        irr(PIC_MASTER_COMMAND) & 0x02,
    );
    reply(log, DEV, "kbd-loop(0xd2,0x5a)");
    // The command byte's status bits: SYS and the last-write-was-command
    // flag, after a data write and after a command write.
    write_ctr(probe);
    log.byte(DEV, "status", "after-data-write", inb(I8042_COMMAND));
    command(0xAD);
    log.byte(DEV, "status", "after-command-write", inb(I8042_COMMAND));
    read_ctr(log, "ctr-after-0xad");
    command(0xAE);
    read_ctr(log, "ctr-after-0xae");

    // atkbd, with the keyboard interface enabled, interrupts off and
    // translation as the boot left it (on: atkbd's translated replies).
    probe &= !ctr::KBD_DISABLE;
    write_ctr(probe);
    read_ctr(log, "ctr-atkbd");
    flush(log, "atkbd");
    atkbd(log, "xlate");
    // The ID and set queries again with translation off: the raw replies.
    write_ctr(probe & !ctr::XLATE);
    kbd(log, "raw-getid(0xf2)", &[0xF2], 3);
    kbd(log, "raw-get-set(0xf0,0)", &[0xF0, 0x00], 3);
    // Back as the boot left it: translated, interface and IRQ1 on, AUX off,
    // scanning enabled.
    write_ctr(before);
    kbd(log, "enable(0xf4)", &[0xF4], 1);
    read_ctr(log, "ctr-restored");
    log.byte(DEV, "status", "end", inb(I8042_COMMAND));
}

/// `atkbd_probe`, `atkbd_select_set`, `atkbd_set_leds`,
/// `atkbd_set_repeat_rate`, `atkbd_activate`, and the other documented
/// keyboard commands.
fn atkbd(log: &mut Log, _mode: &str) {
    // atkbd_deactivate (0xF5) before probing.
    kbd(log, "disable(0xf5)", &[0xF5], 1);
    // ATKBD_CMD_RESET_BAT: ACK, then the self-test result 0xAA.
    kbd(log, "reset(0xff)", &[0xFF], 2);
    // ATKBD_CMD_GETID: ACK and two ID bytes (0xAB, then 0x41 translated or
    // 0x83 raw).
    kbd(log, "getid(0xf2)", &[0xF2], 3);
    // ATKBD_CMD_SETLEDS with 0 (the probe's fallback, and LEDs off), then
    // every LED on.
    kbd(log, "setleds(0xed,0)", &[0xED, 0x00], 2);
    kbd(log, "setleds(0xed,7)", &[0xED, 0x07], 2);
    // atkbd_select_set: query (0xF0 0), set 3 and query, set 1 and query,
    // back to set 2 and query.
    kbd(log, "get-set(0xf0,0)", &[0xF0, 0x00], 3);
    for (set_item, query_item, set) in [
        ("set-set(0xf0,3)", "get-set-3", 3u8),
        ("set-set(0xf0,1)", "get-set-1", 1),
        ("set-set(0xf0,2)", "get-set-2", 2),
    ] {
        kbd(log, set_item, &[0xF0, set], 2);
        kbd(log, query_item, &[0xF0, 0x00], 3);
    }
    // atkbd_set_repeat_rate: 0xF3 with Linux's default (250 ms, 30/s = 0x00)
    // and the slowest.
    kbd(log, "typematic(0xf3,0)", &[0xF3, 0x00], 2);
    kbd(log, "typematic(0xf3,0x7f)", &[0xF3, 0x7F], 2);
    // Echo answers 0xEE (no ACK); set defaults; an unknown command.
    kbd(log, "echo(0xee)", &[0xEE], 1);
    kbd(log, "defaults(0xf6)", &[0xF6], 1);
    kbd(log, "unknown(0xe0)", &[0xE0], 1);
    // atkbd_activate: 0xF4.
    kbd(log, "enable(0xf4)", &[0xF4], 1);
    kbd(log, "disable(0xf5)", &[0xF5], 1);
}
