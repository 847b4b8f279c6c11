use super::*;

fn print(text: &str) -> HmpCommand {
    HmpCommand::Print(text.to_string())
}

fn keys(names: &[&str]) -> Vec<Key> {
    names.iter().map(|n| Key::from_name(n).unwrap()).collect()
}

#[test]
fn sendkey_combos_and_hold_time() {
    assert_eq!(
        parse("sendkey ctrl-alt-delete", true),
        HmpCommand::SendKey {
            keys: keys(&["ctrl", "alt", "delete"]),
            hold: DEFAULT_HOLD_TIME
        }
    );
    assert_eq!(
        parse("  sendkey a 250 ", true),
        HmpCommand::SendKey {
            keys: keys(&["a"]),
            hold: Duration::from_millis(250)
        }
    );
    // `<` is `less`; `0x` numbers are QEMU's key numbers; hex hold time.
    assert_eq!(
        parse("sendkey shift-<-0x1e 0x10", true),
        HmpCommand::SendKey {
            keys: keys(&["shift", "less", "a"]),
            hold: Duration::from_millis(16)
        }
    );
}

#[test]
fn sendkey_errors_as_qemu_prints_them() {
    assert_eq!(
        parse("sendkey nokey", true),
        print("invalid parameter: nokey\n")
    );
    assert_eq!(
        parse("sendkey ctrl-RET", true),
        print("invalid parameter: RET\n")
    );
    assert_eq!(
        parse("sendkey ctrl--c", true),
        print("invalid parameter: \n")
    );
    assert_eq!(
        parse("sendkey 0xzz", true),
        print("invalid parameter: 0xzz\n")
    );
    assert_eq!(
        parse("sendkey", true),
        print("sendkey: string expected\nTry \"help sendkey\" for more information\n")
    );
    assert_eq!(
        parse("sendkey a 100ms", true),
        print(
            "sendkey: extraneous characters at the end of line\n\
             Try \"help sendkey\" for more information\n"
        )
    );
    assert_eq!(
        parse("sendkey a b", true),
        print("invalid char 'b' in expression\nTry \"help sendkey\" for more information\n")
    );
    assert_eq!(
        parse("sendkey a-a", true),
        print("Error: Key 'a' is given twice\n")
    );
    assert_eq!(
        parse("sendkey a 600000", true),
        print("Error: Parameter 'hold-time' expects an integer from 0 to 60000\n")
    );
}

#[test]
fn commands_aliases_and_extra_words() {
    assert_eq!(parse("info status", true), HmpCommand::InfoStatus);
    assert_eq!(parse("stop", true), HmpCommand::Stop);
    assert_eq!(parse("s", true), HmpCommand::Stop);
    assert_eq!(parse("cont", true), HmpCommand::Cont);
    assert_eq!(parse("c", true), HmpCommand::Cont);
    assert_eq!(parse("quit", true), HmpCommand::Quit);
    assert_eq!(parse("q", true), HmpCommand::Quit);
    assert_eq!(parse("system_reset", true), HmpCommand::SystemReset);
    assert_eq!(
        parse("stop now", true),
        print("stop|s: extraneous characters at the end of line\nTry \"help stop\" for more information\n")
    );
    assert_eq!(
        parse("s now", true),
        print("stop|s: extraneous characters at the end of line\nTry \"help s\" for more information\n")
    );
    assert_eq!(
        parse("info status x", true),
        print("status: extraneous characters at the end of line\nTry \"help info status\" for more information\n")
    );
    assert_eq!(parse("", true), print(""));
    assert_eq!(parse("   ", true), print(""));
}

#[test]
fn unknown_commands_answer_as_qemu() {
    assert_eq!(
        parse("frobnicate 1 2", true),
        print("unknown command: 'frobnicate'\n")
    );
    assert_eq!(
        parse("info registers", true),
        print("unknown command: 'info registers'\n")
    );
    // Without a reset, `system_reset` does not exist.
    assert_eq!(
        parse("system_reset", false),
        print("unknown command: 'system_reset'\n")
    );
}

#[test]
fn help_lists_the_commands() {
    let HmpCommand::Print(all) = parse("help", true) else {
        panic!("help prints");
    };
    assert!(
        all.contains("sendkey keys [hold_ms] -- send keys to the VM"),
        "{all}"
    );
    assert!(all.contains("stop|s  -- stop emulation\n"), "{all}");
    assert_eq!(
        parse("? quit", true),
        print("quit|q  -- quit the emulator\n")
    );
    assert_eq!(
        parse("info", true),
        print("info status  -- show the current VM status (running|paused)\n")
    );
}

#[test]
fn output_uses_crlf_line_ends() {
    assert_eq!(output("VM status: running\n"), "VM status: running\r\n");
    assert_eq!(output(""), "");
}
