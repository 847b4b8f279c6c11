//! Unit tests of the i8042 controller and its keyboard, one per documented
//! behaviour.
use super::scancodes::*;
use super::*;

const DATA: u16 = I8042_DATA;
const CMD: u16 = I8042_COMMAND;

/// Reads every byte the controller has, one at a time, as a polling guest.
fn drain(k: &mut I8042) -> Vec<u8> {
    let mut out = Vec::new();
    while k.read(CMD) & status::OBF != 0 {
        out.push(k.read(DATA));
        assert!(out.len() < 100_000, "output never runs dry");
    }
    out
}

fn kbd_cmd(k: &mut I8042, bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for &b in bytes {
        k.write(DATA, b);
        out.extend(drain(k));
    }
    out
}

fn set_command_byte(k: &mut I8042, value: u8) {
    k.write(CMD, 0x60);
    k.write(DATA, value);
}

/// The keyboard after a driver's initialisation ended with 0xF4: it
/// listens, so host keys go out at once.
fn activated() -> I8042 {
    let mut k = I8042::new();
    assert_eq!(kbd_cmd(&mut k, &[0xF4]), vec![reply::ACK]);
    k
}

fn press_release(k: &mut I8042, code: u16) -> Vec<u8> {
    k.key_event(code, true);
    k.key_event(code, false);
    drain(k)
}

#[test]
fn power_on_status_and_command_byte() {
    let mut k = I8042::new();
    assert_eq!(k.read(CMD), status::UNLOCKED | status::CMD);
    k.write(CMD, 0x20);
    assert_eq!(k.read(CMD) & status::OBF, status::OBF);
    assert_eq!(k.read(DATA), 0x03);
    assert_eq!(k.read(CMD) & status::OBF, 0);
    assert!(!k.irq1_level() && !k.irq12_level());
    assert!(!k.take_reset_request());
    assert_eq!(k.pending_input(), 0);
}

#[test]
fn command_byte_write_and_read_back() {
    let mut k = I8042::new();
    set_command_byte(&mut k, 0x65);
    assert_eq!(k.command_byte(), 0x65);
    // Write to the data port clears the CMD status bit.
    assert_eq!(k.read(CMD) & status::CMD, 0);
    // Bit 2 of the command byte sets the SYS flag.
    assert_ne!(k.read(CMD) & status::SYS, 0);
    k.write(CMD, 0x20);
    assert_ne!(k.read(CMD) & status::CMD, 0);
    assert_eq!(drain(&mut k), vec![0x65]);
}

#[test]
fn internal_ram_is_stored() {
    let mut k = I8042::new();
    k.write(CMD, 0x75);
    k.write(DATA, 0x5A);
    k.write(CMD, 0x35);
    assert_eq!(drain(&mut k), vec![0x5A]);
    k.write(CMD, 0x3F);
    assert_eq!(drain(&mut k), vec![0x00]);
    // Writing RAM byte 5 did not touch the command byte.
    assert_eq!(k.command_byte(), 0x03);
}

#[test]
fn self_test_sets_sys_and_answers_55() {
    let mut k = I8042::new();
    assert_eq!(k.read(CMD) & status::SYS, 0);
    k.write(CMD, 0xAA);
    assert_ne!(k.read(CMD) & status::SYS, 0);
    assert_eq!(drain(&mut k), vec![0x55]);
    // Sticky: a command byte without bit 2 does not clear it (QEMU).
    set_command_byte(&mut k, 0x01);
    assert_ne!(k.read(CMD) & status::SYS, 0);
}

#[test]
fn interface_tests_and_ports() {
    let mut k = I8042::new();
    k.write(CMD, 0xAB);
    assert_eq!(drain(&mut k), vec![0x00]);
    k.write(CMD, 0xA9);
    assert_eq!(drain(&mut k), vec![0x00]);
    k.write(CMD, 0xC0);
    assert_eq!(drain(&mut k), vec![0x80]);
    k.write(CMD, 0xD0);
    // Reset line high, A20 on, unused lines high; the buffer was empty
    // when the command ran.
    assert_eq!(drain(&mut k), vec![0xCF]);
    assert!(k.a20_enabled());
    k.write(CMD, 0xDD);
    assert!(!k.a20_enabled());
    k.write(CMD, 0xDF);
    assert!(k.a20_enabled());
}

#[test]
fn enable_disable_aux_and_keyboard() {
    let mut k = activated();
    k.write(CMD, 0xA7);
    assert_eq!(
        k.command_byte() & command_byte::AUX_DISABLE,
        command_byte::AUX_DISABLE
    );
    k.write(CMD, 0xA8);
    assert_eq!(k.command_byte() & command_byte::AUX_DISABLE, 0);
    k.write(CMD, 0xAD);
    assert_eq!(
        k.command_byte() & command_byte::KBD_DISABLE,
        command_byte::KBD_DISABLE
    );
    // Keys typed meanwhile wait in the keyboard.
    k.key_event(0x1C, true);
    assert_eq!(k.read(CMD) & status::OBF, 0);
    assert_eq!(k.pending_input(), 1);
    // Controller replies still come through.
    k.write(CMD, 0x20);
    assert_eq!(drain(&mut k), vec![0x13]);
    k.write(CMD, 0xAE);
    assert_eq!(k.command_byte() & command_byte::KBD_DISABLE, 0);
    assert_eq!(drain(&mut k), vec![0x1C]);
    assert_eq!(k.pending_input(), 0);
}

#[test]
fn output_port_write_is_not_a_keyboard_command() {
    let mut k = I8042::new();
    k.write(CMD, 0xD1);
    // 0xFF would be a keyboard reset (FA AA) if it reached the keyboard.
    k.write(DATA, 0xFF);
    assert_eq!(drain(&mut k), Vec::<u8>::new());
    assert!(!k.take_reset_request());
    k.write(CMD, 0xD0);
    assert_eq!(drain(&mut k), vec![0xCF]);
    // A20 off through the output port.
    k.write(CMD, 0xD1);
    k.write(DATA, 0xDD);
    assert!(!k.a20_enabled());
    assert!(!k.take_reset_request());
    // Bit 0 clear holds the CPU in reset.
    k.write(CMD, 0xD1);
    k.write(DATA, 0xFE);
    assert!(k.take_reset_request());
    assert!(!k.take_reset_request());
}

#[test]
fn pulse_reset() {
    let mut k = I8042::new();
    k.write(CMD, 0xFF);
    assert!(!k.take_reset_request());
    k.write(CMD, 0xFE);
    assert!(k.take_reset_request());
    assert!(!k.take_reset_request());
    k.write(CMD, 0xF0);
    assert!(k.take_reset_request());
    k.write(CMD, 0xF1);
    assert!(!k.take_reset_request());
}

#[test]
fn write_output_buffers() {
    let mut k = I8042::new();
    k.write(CMD, 0xD2);
    k.write(DATA, 0x42);
    assert_eq!(k.read(CMD) & (status::OBF | status::AUX_OBF), status::OBF);
    assert!(k.irq1_level() && !k.irq12_level());
    assert_eq!(k.read(DATA), 0x42);
    k.write(CMD, 0xD3);
    k.write(DATA, 0x5A);
    assert_eq!(
        k.read(CMD) & (status::OBF | status::AUX_OBF),
        status::OBF | status::AUX_OBF
    );
    assert!(k.irq12_level() && !k.irq1_level());
    assert!(k.take_irq12_edge());
    assert_eq!(k.read(DATA), 0x5A);
    assert!(!k.irq12_level());
}

#[test]
fn write_to_aux_without_mouse_answers_fe() {
    let mut k = I8042::new();
    k.write(CMD, 0xD4);
    k.write(DATA, 0xF2);
    assert_ne!(k.read(CMD) & status::AUX_OBF, 0);
    assert_eq!(k.read(DATA), 0xFE);
    // The byte after it is a keyboard command again.
    assert_eq!(kbd_cmd(&mut k, &[0xEE]), vec![0xEE]);
}

#[test]
fn unknown_controller_commands_are_ignored() {
    let mut k = I8042::new();
    for cmd in [0x00, 0x10, 0xA1, 0xB0, 0xC1, 0xE0] {
        k.write(CMD, cmd);
    }
    assert_eq!(drain(&mut k), Vec::<u8>::new());
    assert_eq!(k.command_byte(), 0x03);
    assert!(!k.take_reset_request());
}

#[test]
fn keyboard_reset_and_scanning() {
    let mut k = activated();
    assert_eq!(kbd_cmd(&mut k, &[0xFF]), vec![0xFA, 0xAA]);
    assert_eq!(kbd_cmd(&mut k, &[0xF5]), vec![0xFA]);
    // Scanning disabled: host keys wait (a real keyboard would not see
    // them; ours keeps the user's input).
    assert_eq!(press_release(&mut k, 0x1C), Vec::<u8>::new());
    assert_eq!(k.pending_input(), 2);
    assert_eq!(kbd_cmd(&mut k, &[0xF4]), vec![0xFA, 0x1C, 0xF0, 0x1C]);
    assert_eq!(k.pending_input(), 0);
    assert_eq!(press_release(&mut k, 0x1C), vec![0x1C, 0xF0, 0x1C]);
    // Reset re-enables scanning and goes back to set 2.
    kbd_cmd(&mut k, &[0xF5]);
    kbd_cmd(&mut k, &[0xF0, 0x01]);
    assert_eq!(kbd_cmd(&mut k, &[0xFF]), vec![0xFA, 0xAA]);
    assert_eq!(press_release(&mut k, 0x1C), vec![0x1C, 0xF0, 0x1C]);
}

#[test]
fn keyboard_set_defaults() {
    let mut k = activated();
    kbd_cmd(&mut k, &[0xF0, 0x03]);
    assert_eq!(kbd_cmd(&mut k, &[0xF6]), vec![0xFA]);
    assert_eq!(kbd_cmd(&mut k, &[0xF0, 0x00]), vec![0xFA, 0xFA, 0x02]);
    assert_eq!(press_release(&mut k, 0x1C), vec![0x1C, 0xF0, 0x1C]);
}

#[test]
fn leds_typematic_echo_identify() {
    let mut k = I8042::new();
    assert_eq!(kbd_cmd(&mut k, &[0xED, 0x07]), vec![0xFA, 0xFA]);
    assert_eq!(k.kbd.leds, 0x07);
    assert_eq!(kbd_cmd(&mut k, &[0xF3, 0x20]), vec![0xFA, 0xFA]);
    assert_eq!(k.kbd.typematic, 0x20);
    assert_eq!(kbd_cmd(&mut k, &[0xEE]), vec![0xEE]);
    assert_eq!(kbd_cmd(&mut k, &[0xF2]), vec![0xFA, 0xAB, 0x83]);
    set_command_byte(&mut k, 0x41);
    assert_eq!(kbd_cmd(&mut k, &[0xF2]), vec![0xFA, 0xAB, 0x41]);
}

#[test]
fn scancode_set_query_and_select() {
    let mut k = I8042::new();
    assert_eq!(kbd_cmd(&mut k, &[0xF0, 0x00]), vec![0xFA, 0xFA, 0x02]);
    for set in 1..=3u8 {
        assert_eq!(kbd_cmd(&mut k, &[0xF0, set]), vec![0xFA, 0xFA]);
        assert_eq!(kbd_cmd(&mut k, &[0xF0, 0x00]), vec![0xFA, 0xFA, set]);
    }
    // Out of range: resend, set unchanged.
    assert_eq!(kbd_cmd(&mut k, &[0xF0, 0x04]), vec![0xFA, 0xFE]);
    assert_eq!(kbd_cmd(&mut k, &[0xF0, 0x00]), vec![0xFA, 0xFA, 0x03]);
    // With translation the answer is translated, as in QEMU.
    set_command_byte(&mut k, 0x41);
    kbd_cmd(&mut k, &[0xF0, 0x02]);
    assert_eq!(kbd_cmd(&mut k, &[0xF0, 0x00]), vec![0xFA, 0xFA, 0x41]);
    kbd_cmd(&mut k, &[0xF0, 0x01]);
    assert_eq!(kbd_cmd(&mut k, &[0xF0, 0x00]), vec![0xFA, 0xFA, 0x43]);
}

#[test]
fn unknown_keyboard_command_and_resend() {
    let mut k = I8042::new();
    assert_eq!(kbd_cmd(&mut k, &[0xE5]), vec![0xFE]);
    assert_eq!(kbd_cmd(&mut k, &[0xF7]), vec![0xFE]);
    assert_eq!(kbd_cmd(&mut k, &[0xEE]), vec![0xEE]);
    // Resend repeats the last byte the keyboard sent.
    assert_eq!(kbd_cmd(&mut k, &[0xFE]), vec![0xEE]);
}

#[test]
fn unread_reply_is_replaced_by_next_command() {
    let mut k = I8042::new();
    // The guest does not read the identify bytes; FA is already in the
    // output buffer, AB 83 are discarded by the echo command.
    k.write(DATA, 0xF2);
    k.write(DATA, 0xEE);
    assert_eq!(drain(&mut k), vec![0xFA, 0xEE]);
}

#[test]
fn untranslated_set2() {
    let mut k = activated();
    assert_eq!(press_release(&mut k, 0x1C), vec![0x1C, 0xF0, 0x1C]);
    assert_eq!(
        press_release(&mut k, 0xE074),
        vec![0xE0, 0x74, 0xE0, 0xF0, 0x74]
    );
    assert_eq!(press_release(&mut k, 0x83), vec![0x83, 0xF0, 0x83]);
}

#[test]
fn translated_to_set1_by_controller() {
    let mut k = activated();
    set_command_byte(&mut k, 0x41);
    assert_eq!(press_release(&mut k, 0x1C), vec![0x1E, 0x9E]);
    assert_eq!(press_release(&mut k, 0xE074), vec![0xE0, 0x4D, 0xE0, 0xCD]);
    assert_eq!(press_release(&mut k, 0x83), vec![0x41, 0xC1]);
    // Left Shift, Enter, Escape.
    assert_eq!(press_release(&mut k, 0x12), vec![0x2A, 0xAA]);
    assert_eq!(press_release(&mut k, 0x5A), vec![0x1C, 0x9C]);
    assert_eq!(press_release(&mut k, 0x76), vec![0x01, 0x81]);
    // Turning translation off goes back to raw set 2.
    set_command_byte(&mut k, 0x01);
    assert_eq!(press_release(&mut k, 0x1C), vec![0x1C, 0xF0, 0x1C]);
}

#[test]
fn set1_selected_directly() {
    let mut k = activated();
    kbd_cmd(&mut k, &[0xF0, 0x01]);
    assert_eq!(press_release(&mut k, 0x1C), vec![0x1E, 0x9E]);
    assert_eq!(press_release(&mut k, 0xE074), vec![0xE0, 0x4D, 0xE0, 0xCD]);
    assert_eq!(press_release(&mut k, 0x29), vec![0x39, 0xB9]);
}

#[test]
fn set3_keys() {
    let mut k = activated();
    kbd_cmd(&mut k, &[0xF0, 0x03]);
    assert_eq!(press_release(&mut k, 0x1C), vec![0x1C, 0xF0, 0x1C]);
    assert_eq!(press_release(&mut k, 0x76), vec![0x08, 0xF0, 0x08]);
    assert_eq!(press_release(&mut k, 0xE074), vec![0x6A, 0xF0, 0x6A]);
    // An extended key without a set-3 code is not sent.
    assert_eq!(press_release(&mut k, 0xE037), Vec::<u8>::new());
}

#[test]
fn pause_and_print_screen() {
    let mut k = activated();
    assert_eq!(
        press_release(&mut k, PAUSE),
        vec![0xE1, 0x14, 0x77, 0xE1, 0xF0, 0x14, 0xF0, 0x77]
    );
    assert_eq!(
        press_release(&mut k, PRINT),
        vec![0xE0, 0x12, 0xE0, 0x7C, 0xE0, 0xF0, 0x7C, 0xE0, 0xF0, 0x12]
    );
    set_command_byte(&mut k, 0x41);
    assert_eq!(
        press_release(&mut k, PAUSE),
        vec![0xE1, 0x1D, 0x45, 0xE1, 0x9D, 0xC5]
    );
    // Ctrl+Pause is Break.
    k.key_event(0x14, true);
    assert_eq!(
        press_release(&mut k, PAUSE),
        vec![0x1D, 0xE0, 0x46, 0xE0, 0xC6]
    );
}

#[test]
fn invalid_key_codes_are_ignored() {
    let mut k = I8042::new();
    for code in [
        0x0000, 0x00F0, 0x00E0, 0x0085, 0x00FA, 0xE0F0, 0xE000, 0x1234, 0xFFFF,
    ] {
        k.key_event(code, true);
        k.key_event(code, false);
    }
    assert_eq!(drain(&mut k), Vec::<u8>::new());
    assert_eq!(k.pending_input(), 0);
}

#[test]
fn irq1_follows_obf_and_command_byte() {
    let mut k = activated();
    assert!(!k.irq1_level());
    k.key_event(0x1C, true);
    assert!(k.irq1_level());
    assert!(k.take_irq1_edge());
    assert!(!k.take_irq1_edge());
    // Masking in the command byte drops the line, the byte stays.
    set_command_byte(&mut k, 0x00);
    assert!(!k.irq1_level());
    assert_ne!(k.read(CMD) & status::OBF, 0);
    set_command_byte(&mut k, 0x01);
    assert!(k.irq1_level());
    assert_eq!(k.read(DATA), 0x1C);
    assert!(!k.irq1_level());
    // Reading the status does not consume anything.
    assert_eq!(k.read(CMD) & status::OBF, 0);
    // A read with an empty buffer returns the last byte again.
    assert_eq!(k.read(DATA), 0x1C);
    assert!(!k.irq12_level());
}

#[test]
fn each_loaded_byte_is_a_new_edge() {
    let mut k = activated();
    k.key_event(0x1C, true);
    k.key_event(0x1C, false);
    assert!(k.take_irq1_edge());
    // The level stays high across the read, but the edge flag tells the
    // VMM that a new byte (a new interrupt) arrived.
    assert_eq!(k.read(DATA), 0x1C);
    assert!(k.irq1_level());
    assert!(k.take_irq1_edge());
    assert_eq!(k.read(DATA), 0xF0);
    assert!(k.take_irq1_edge());
    assert_eq!(k.read(DATA), 0x1C);
    assert!(!k.take_irq1_edge());
    assert!(!k.irq1_level());
}

#[test]
fn obf_pacing_loses_nothing() {
    let mut k = activated();
    set_command_byte(&mut k, 0x41);
    let mut expected = Vec::new();
    for i in 0..1000u32 {
        // Cycle through plain and extended keys.
        let code: u16 = match i % 3 {
            0 => 0x1C,
            1 => 0x32,
            _ => 0xE075,
        };
        let down = i % 2 == 0;
        k.key_event(code, down);
        let set1 = match code {
            0x1C => vec![0x1E],
            0x32 => vec![0x30],
            _ => vec![0xE0, 0x48],
        };
        for (j, b) in set1.iter().enumerate() {
            let last = j == set1.len() - 1;
            expected.push(if last && !down { b | 0x80 } else { *b });
        }
    }
    // One pending unit per key event until the guest has read all its
    // bytes; it never grows while the guest reads.
    assert_eq!(k.pending_input(), 1000);
    let mut got = Vec::new();
    let mut pending = k.pending_input();
    while k.read(CMD) & status::OBF != 0 {
        assert!(k.irq1_level());
        assert!(pending > 0);
        got.push(k.read(DATA));
        assert!(k.pending_input() <= pending);
        pending = k.pending_input();
    }
    assert_eq!(got, expected);
    assert_eq!(k.pending_input(), 0);
}

#[test]
fn command_replies_go_ahead_of_queued_keys() {
    let mut k = activated();
    k.key_event(0x1C, true);
    k.key_event(0x1B, true);
    // 0x1C is in the output buffer; the echo goes before 0x1B.
    k.write(DATA, 0xEE);
    assert_eq!(drain(&mut k), vec![0x1C, 0xEE, 0x1B]);
    // Controller replies go ahead of keyboard replies and keys.
    k.key_event(0x1C, true);
    k.key_event(0x1B, true);
    k.write(CMD, 0x20);
    assert_eq!(drain(&mut k), vec![0x1C, 0x03, 0x1B]);
}

#[test]
fn keyboard_reset_keeps_host_keystrokes() {
    let mut k = activated();
    k.key_event(0x1C, true);
    k.key_event(0x1B, true);
    k.write(DATA, 0xFF);
    assert_eq!(drain(&mut k), vec![0x1C, 0xFA, 0xAA, 0x1B]);
}

/// A machine reset brings back the power-on state but keeps every host
/// key event not completely read: the one in the output buffer goes out
/// again whole, the queued ones follow, once the next driver sends F4.
#[test]
fn machine_reset_is_power_on_but_keeps_host_keys() {
    let mut k = activated();
    set_command_byte(&mut k, 0x61); // translation on, aux off
    k.key_event(0x1C, true); // 'a' down: set 1 0x1E
    k.key_event(0x1C, false); // 'a' up: set 1 0x9E
    k.key_event(0xE075, true); // Up: set 1 E0 48, two bytes
    assert_eq!(k.read(DATA), 0x1E);
    assert_eq!(k.read(DATA), 0x9E);
    assert_eq!(k.read(DATA), 0xE0); // Up half read
    k.write(CMD, 0xFE);
    assert!(k.take_reset_request());
    k.reset();
    assert_eq!(k.command_byte(), 0x03);
    assert_eq!(k.read(CMD), status::CMD | status::UNLOCKED);
    assert!(!k.irq1_level());
    assert!(!k.take_reset_request());
    // Up is pending again, whole; it waits for the new driver.
    assert_eq!(k.pending_input(), 1);
    assert_eq!(drain(&mut k), Vec::<u8>::new());
    k.key_event(0x1B, true);
    assert_eq!(kbd_cmd(&mut k, &[0xF4]), vec![reply::ACK, 0xE0, 0x75, 0x1B]);
    assert_eq!(k.pending_input(), 0);
    // A reset with nothing in flight keeps nothing.
    k.reset();
    assert_eq!(k.pending_input(), 0);
}

/// "exit" pressed and released, key by key (set 2 codes).
const EXIT: [u16; 4] = [0x24, 0x22, 0x43, 0x2C];

fn type_keys(k: &mut I8042, codes: &[u16]) {
    for &code in codes {
        k.key_event(code, true);
        k.key_event(code, false);
    }
}

/// `codes` pressed and released, in set 2.
fn set2_bytes(codes: &[u16]) -> Vec<u8> {
    codes
        .iter()
        .flat_map(|&c| [c as u8, 0xF0, c as u8])
        .collect()
}

#[test]
fn keys_before_the_driver_enables_scanning_wait_for_f4() {
    let mut k = I8042::new();
    type_keys(&mut k, &EXIT);
    assert_eq!(k.pending_input(), 8);
    assert_eq!(k.read(CMD) & status::OBF, 0);
    assert!(!k.irq1_level());
    // Our guest's initialisation, every reply checked: no key byte in
    // between, although scanning is on since power-on.
    k.write(CMD, 0xAD);
    k.write(CMD, 0xA7);
    assert_eq!(drain(&mut k), Vec::<u8>::new());
    k.write(CMD, 0x20);
    assert_eq!(drain(&mut k), vec![0x33]);
    set_command_byte(&mut k, 0x30);
    k.write(CMD, 0xAA);
    assert_eq!(drain(&mut k), vec![0x55]);
    k.write(CMD, 0xAB);
    assert_eq!(drain(&mut k), vec![0x00]);
    k.write(CMD, 0xAE);
    assert_eq!(drain(&mut k), Vec::<u8>::new());
    assert_eq!(kbd_cmd(&mut k, &[0xFF]), vec![0xFA, 0xAA]);
    assert_eq!(kbd_cmd(&mut k, &[0xF0, 0x02]), vec![0xFA, 0xFA]);
    assert_eq!(kbd_cmd(&mut k, &[0xED, 0x00]), vec![0xFA, 0xFA]);
    assert_eq!(k.pending_input(), 8);
    // F4 activates the keyboard: its ACK, then every key in order.
    let mut expected = vec![reply::ACK];
    expected.extend(set2_bytes(&EXIT));
    assert_eq!(kbd_cmd(&mut k, &[0xF4]), expected);
    assert_eq!(k.pending_input(), 0);
}

#[test]
fn activation_is_sticky_and_reset_enables_scanning() {
    let mut k = activated();
    // A later reset goes back to "scanning on" and the keyboard listens
    // again after FA AA, without a new F4 (a reset keyboard scans).
    k.key_event(0x1C, true);
    k.write(DATA, 0xFF);
    assert_eq!(drain(&mut k), vec![0x1C, 0xFA, 0xAA]);
    type_keys(&mut k, &[0x1B]);
    assert_eq!(drain(&mut k), set2_bytes(&[0x1B]));
}

#[test]
fn release_on_f4_raises_an_irq1_edge_per_byte() {
    let mut k = I8042::new();
    k.key_event(0x1C, true);
    assert!(!k.take_irq1_edge());
    // The guest's F4 write loads the ACK (IRQ1 on in the power-on command
    // byte); reading it loads the held key, a new edge the VMM sees.
    k.write(DATA, 0xF4);
    assert!(k.take_irq1_edge());
    assert_eq!(k.read(DATA), reply::ACK);
    assert!(k.take_irq1_edge());
    assert!(k.irq1_level());
    assert_eq!(k.read(DATA), 0x1C);
    assert!(!k.take_irq1_edge());
    assert!(!k.irq1_level());
}

#[test]
fn keys_wait_while_the_keyboard_interface_is_disabled() {
    let mut k = I8042::new();
    type_keys(&mut k, &[0x1C]);
    k.write(CMD, 0xAD);
    // F4 is taken by the keyboard but even its ACK waits behind AD.
    k.write(DATA, 0xF4);
    assert_eq!(drain(&mut k), Vec::<u8>::new());
    type_keys(&mut k, &[0x1B]);
    assert_eq!(k.pending_input(), 4);
    k.write(CMD, 0xAE);
    let mut expected = vec![reply::ACK];
    expected.extend(set2_bytes(&[0x1C, 0x1B]));
    assert_eq!(drain(&mut k), expected);
    // Again with the keyboard active: AD holds, AE releases, in order.
    k.write(CMD, 0xAD);
    type_keys(&mut k, &EXIT);
    assert_eq!(drain(&mut k), Vec::<u8>::new());
    set_command_byte(&mut k, 0x01);
    assert_eq!(drain(&mut k), set2_bytes(&EXIT));
}

#[test]
fn f5_holds_keys_and_f4_releases_them() {
    let mut k = activated();
    assert_eq!(kbd_cmd(&mut k, &[0xF5]), vec![reply::ACK]);
    type_keys(&mut k, &EXIT);
    assert_eq!(drain(&mut k), Vec::<u8>::new());
    assert_eq!(k.pending_input(), 8);
    // Other commands while disabled do not let them out either (0xF6,
    // like a reset, would enable scanning, as in QEMU).
    assert_eq!(kbd_cmd(&mut k, &[0xEE]), vec![0xEE]);
    assert_eq!(kbd_cmd(&mut k, &[0xED, 0x02]), vec![reply::ACK, reply::ACK]);
    assert_eq!(kbd_cmd(&mut k, &[0xF5]), vec![reply::ACK]);
    let mut expected = vec![reply::ACK];
    expected.extend(set2_bytes(&EXIT));
    assert_eq!(kbd_cmd(&mut k, &[0xF4]), expected);
}

#[test]
fn keys_never_interleave_with_a_reply_sequence() {
    let mut k = activated();
    type_keys(&mut k, &EXIT);
    // The first key byte is in the output buffer; the reset's FA AA go
    // next, together, then the rest of the keys.
    k.write(DATA, 0xFF);
    let mut expected = vec![0x24, reply::ACK, reply::SELF_TEST_PASSED, 0xF0, 0x24];
    expected.extend(set2_bytes(&EXIT[1..]));
    assert_eq!(drain(&mut k), expected);
    // F0 02: nothing between the ACK of F0 and the argument, nothing
    // between the argument and its ACK.
    type_keys(&mut k, &EXIT);
    assert_eq!(
        [k.read(DATA), k.read(DATA), k.read(DATA)],
        [0x24, 0xF0, 0x24]
    );
    // The make code of the next key is in the buffer.
    k.write(DATA, 0xF0);
    assert_eq!(drain(&mut k), vec![0x22, reply::ACK]);
    k.write(DATA, 0x02);
    let mut expected = vec![reply::ACK, 0xF0, 0x22];
    expected.extend(set2_bytes(&EXIT[2..]));
    assert_eq!(drain(&mut k), expected);
    // Identify's three bytes stay together, even when the guest reads
    // them slowly.
    k.key_event(0x1C, true);
    k.key_event(0x1B, true);
    k.write(DATA, 0xF2);
    assert_eq!(k.read(DATA), 0x1C);
    assert_eq!(k.read(DATA), reply::ACK);
    assert_eq!(k.read(DATA), reply::ID);
    assert_eq!(k.read(DATA), reply::ID_MF2);
    assert_eq!(drain(&mut k), vec![0x1B]);
}

#[test]
fn an_extended_key_does_not_continue_into_a_command() {
    let mut k = activated();
    k.key_event(0xE074, true);
    // E0 is in the buffer, 74 waits; a command in progress holds it.
    k.write(DATA, 0xED);
    assert_eq!(drain(&mut k), vec![0xE0, reply::ACK]);
    assert_eq!(k.pending_input(), 1);
    k.write(DATA, 0x02);
    assert_eq!(drain(&mut k), vec![reply::ACK, 0x74]);
    assert_eq!(k.pending_input(), 0);
}

#[test]
fn keys_are_encoded_in_the_set_in_effect_when_released() {
    // Set 1 selected directly before F4.
    let mut k = I8042::new();
    type_keys(&mut k, &[0x1C, 0xE074]);
    assert_eq!(kbd_cmd(&mut k, &[0xF0, 0x01]), vec![reply::ACK, reply::ACK]);
    assert_eq!(
        kbd_cmd(&mut k, &[0xF4]),
        vec![reply::ACK, 0x1E, 0x9E, 0xE0, 0x4D, 0xE0, 0xCD]
    );
    // Translation turned on before F4 (our guest's order).
    let mut k = I8042::new();
    type_keys(&mut k, &[0x1C]);
    set_command_byte(&mut k, 0x40);
    assert_eq!(kbd_cmd(&mut k, &[0xF4]), vec![reply::ACK, 0x1E, 0x9E]);
    // Set 3 chosen while scanning is off, after the keys were typed.
    let mut k = activated();
    kbd_cmd(&mut k, &[0xF5]);
    type_keys(&mut k, &[0x76]);
    kbd_cmd(&mut k, &[0xF0, 0x03]);
    assert_eq!(kbd_cmd(&mut k, &[0xF4]), vec![reply::ACK, 0x08, 0xF0, 0x08]);
    // Modifiers follow the released order: Alt+Print Screen is SysRq.
    let mut k = I8042::new();
    k.key_event(0x11, true);
    k.key_event(PRINT, true);
    k.key_event(PRINT, false);
    k.key_event(0x11, false);
    assert_eq!(
        kbd_cmd(&mut k, &[0xF4]),
        vec![reply::ACK, 0x11, 0x84, 0xF0, 0x84, 0xF0, 0x11]
    );
}

#[test]
fn pending_input_counts_held_events() {
    let mut k = I8042::new();
    assert_eq!(k.pending_input(), 0);
    k.key_event(0xE074, true);
    k.key_event(0xE074, false);
    k.key_event(0x0000, true); // not a key: not queued
    assert_eq!(k.pending_input(), 2);
    k.write(DATA, 0xF4);
    assert_eq!(k.read(DATA), reply::ACK);
    // E0 in the buffer, 74 in the keyboard: still two events.
    assert_eq!(k.pending_input(), 2);
    assert_eq!(k.read(DATA), 0xE0);
    assert_eq!(k.pending_input(), 2);
    assert_eq!(k.read(DATA), 0x74);
    assert_eq!(k.pending_input(), 1);
    assert_eq!(drain(&mut k), vec![0xE0, 0xF0, 0x74]);
    assert_eq!(k.pending_input(), 0);
    // An event that encodes to nothing (Pause release) is consumed when
    // its turn comes.
    kbd_cmd(&mut k, &[0xF5]);
    k.key_event(PAUSE, false);
    assert_eq!(k.pending_input(), 1);
    assert_eq!(kbd_cmd(&mut k, &[0xF4]), vec![reply::ACK]);
    assert_eq!(k.pending_input(), 0);
}

#[test]
fn command_then_data_command_cancels() {
    let mut k = I8042::new();
    k.write(CMD, 0x60);
    // A new command abandons the pending command-byte write; the data byte
    // then goes to the keyboard.
    k.write(CMD, 0xAE);
    k.write(DATA, 0xEE);
    assert_eq!(k.command_byte(), 0x03);
    assert_eq!(drain(&mut k), vec![0xEE]);
}

#[test]
fn firmware_setup_state() {
    let mut k = I8042::with_firmware_setup();
    assert_eq!(k.command_byte(), 0x61);
    assert_ne!(k.read(CMD) & status::SYS, 0);
    // Keys typed before the guest's driver enabled scanning wait for it: the
    // firmware's 0xF4 does not open the gate.
    k.key_event(0x1C, true);
    k.key_event(0x1C, false);
    assert_eq!(drain(&mut k), Vec::<u8>::new());
    assert_eq!(k.pending_input(), 2);
    // The driver's 0xF4, then the held keys, translated to set 1 as the
    // firmware's command byte says.
    assert_eq!(kbd_cmd(&mut k, &[0xF4]), vec![reply::ACK, 0x1E, 0x9E]);
    assert_eq!(k.pending_input(), 0);
}

#[test]
fn reset_returns_to_the_state_built_in() {
    let mut firmware = I8042::with_firmware_setup();
    let mut bare = I8042::new();
    for k in [&mut firmware, &mut bare] {
        k.write(CMD, 0x60);
        k.write(DATA, 0x00);
        assert_eq!(k.command_byte(), 0x00);
        k.reset();
    }
    assert_eq!(firmware.command_byte(), 0x61);
    assert_ne!(firmware.read(CMD) & status::SYS, 0);
    assert_eq!(bare.command_byte(), 0x03);
    assert_eq!(bare.read(CMD) & status::SYS, 0);
}

#[test]
fn other_ports() {
    let mut k = I8042::new();
    assert_eq!(k.read(0x61), 0xFF);
    k.write(0x61, 0xFE);
    assert!(!k.take_reset_request());
    assert_eq!(drain(&mut k), Vec::<u8>::new());
}

/// One step of a guest or of the host, for the property below.
#[derive(Clone, Debug)]
enum Step {
    Write(u16, u8),
    Read(u16),
    Key(u16, bool),
}

fn step() -> impl proptest::strategy::Strategy<Value = Step> {
    use proptest::prelude::*;
    const PORTS: [u16; 4] = [DATA, CMD, 0x61, 0x65];
    prop_oneof![
        (0..PORTS.len(), any::<u8>()).prop_map(|(i, v)| Step::Write(PORTS[i], v)),
        (0..PORTS.len()).prop_map(|i| Step::Read(PORTS[i])),
        (any::<u16>(), any::<bool>()).prop_map(|(code, down)| Step::Key(code, down)),
    ]
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(500))]

    /// Whatever the guest writes: the keyboard's reply queue stays bounded
    /// and the host queue only grows by key events. (The `i8042` fuzz target
    /// checks that events come out in order, none lost.)
    #[test]
    fn garbage_stays_bounded(steps in proptest::collection::vec(step(), 1..400)) {
        let mut k = I8042::new();
        for step in steps {
            let before = k.pending_input();
            match step {
                Step::Write(port, value) => k.write(port, value),
                Step::Read(port) => {
                    k.read(port);
                }
                Step::Key(code, down) => k.key_event(code, down),
            }
            if !matches!(step, Step::Key(..)) {
                proptest::prop_assert!(k.pending_input() <= before);
            }
            k.take_irq1_edge();
            k.take_reset_request();
            proptest::prop_assert!(k.kbd.replies.len() <= 3);
        }
    }
}

#[test]
fn every_command_and_data_byte_never_panics() {
    // Exhaustive: every controller command followed by every data value.
    for cmd in 0..=255u8 {
        for value in 0..=255u8 {
            let mut k = I8042::new();
            k.write(CMD, cmd);
            k.write(DATA, value);
            k.write(DATA, value);
            k.key_event(0x1C, true);
            drain(&mut k);
        }
    }
}
