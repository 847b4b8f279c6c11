//! Tests of the script grammar, parser and runner.
use super::*;
use crate::input::keycodes::key;
use crate::vm::MachineEvent;
use std::sync::mpsc::Receiver;
use std::sync::Mutex;

fn parse(text: &str) -> Result<Vec<Command>, ParseError> {
    Script::parse("t.keys", text).map(|s| s.lines.into_iter().map(|l| l.command).collect())
}

fn error(text: &str) -> (usize, ParseErrorKind) {
    let e = Script::parse("t.keys", text).unwrap_err();
    (e.line, e.kind)
}

#[test]
fn full_grammar() {
    let script = Script::parse(
        "t.keys",
        "# comment\n\n  # indented comment\ntype echo Hi!\\n\nkey ctrl-c ret\npress shift\nrelease shift\nwait 250ms\nexpect \"> \"\nexpect \"done \" 2s\nexpect uptime: 10s\r\n",
    )
    .unwrap();
    let numbers: Vec<usize> = script.lines.iter().map(|l| l.number).collect();
    assert_eq!(numbers, [4, 5, 6, 7, 8, 9, 10, 11]);
    let commands: Vec<Command> = script.lines.into_iter().map(|l| l.command).collect();
    assert_eq!(
        commands,
        [
            Command::Type("echo Hi!\n".into()),
            Command::Key(vec![vec![key("ctrl"), key("c")], vec![key("ret")]]),
            Command::Press(vec![key("shift")]),
            Command::Release(vec![key("shift")]),
            Command::Wait(Duration::from_millis(250)),
            Command::Expect {
                text: "> ".into(),
                timeout: DEFAULT_EXPECT_TIMEOUT
            },
            Command::Expect {
                text: "done ".into(),
                timeout: Duration::from_secs(2)
            },
            Command::Expect {
                text: "uptime:".into(),
                timeout: Duration::from_secs(10)
            },
        ]
    );
}

#[test]
fn unquoted_text_is_trimmed_and_quoted_text_kept() {
    // Unquoted: spaces and tabs at both ends go, inner ones stay.
    assert_eq!(parse("type  a b  ").unwrap(), [Command::Type("a b".into())]);
    assert_eq!(
        parse("type\t a\tb \t").unwrap(),
        [Command::Type("a\tb".into())]
    );
    // Escapes at the ends are text, not blanks.
    assert_eq!(
        parse("type \\tx\\n ").unwrap(),
        [Command::Type("\tx\n".into())]
    );
    // Quoted: kept as written, with \" for a quote.
    assert_eq!(
        parse("type \"  a b \"  ").unwrap(),
        [Command::Type("  a b ".into())]
    );
    assert_eq!(
        parse("type \"say \\\"hi\\\"\\n\"").unwrap(),
        [Command::Type("say \"hi\"\n".into())]
    );
    // A quote inside unquoted text is an ordinary character.
    assert_eq!(
        parse("type echo \"x\"").unwrap(),
        [Command::Type("echo \"x\"".into())]
    );
    assert_eq!(
        parse("expect   > \t ").unwrap(),
        [Command::Expect {
            text: ">".into(),
            timeout: DEFAULT_EXPECT_TIMEOUT
        }]
    );
    assert_eq!(
        parse("expect  done \t 2s").unwrap(),
        [Command::Expect {
            text: "done".into(),
            timeout: Duration::from_secs(2)
        }]
    );
    assert_eq!(
        parse("expect \" > \"\t1s ").unwrap(),
        [Command::Expect {
            text: " > ".into(),
            timeout: Duration::from_secs(1)
        }]
    );
    for line in ["type   ", "type \t", "type \"\""] {
        assert_eq!(
            parse(line).unwrap_err().kind,
            ParseErrorKind::MissingArgument("text after 'type'"),
            "{line:?}"
        );
    }
    assert_eq!(
        parse("type \"a\" b").unwrap_err().kind,
        ParseErrorKind::ExtraArgument("type")
    );
    assert_eq!(
        parse("type \"a").unwrap_err().kind,
        ParseErrorKind::UnterminatedQuote
    );
    // --type is typed as written.
    let s = Script::type_text("--type", " a ").unwrap();
    assert_eq!(s.lines[0].command, Command::Type(" a ".into()));
}

#[test]
fn type_escapes() {
    assert_eq!(
        parse("type a\\tb\\bc\\\\d\\n").unwrap(),
        [Command::Type("a\tb\x08c\\d\n".into())]
    );
    assert_eq!(parse("type\t#x").unwrap(), [Command::Type("#x".into())]);
}

#[test]
fn durations() {
    assert_eq!(parse_duration("0ms"), Ok(Duration::ZERO));
    assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
    assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
    assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
    assert_eq!(parse_duration("86400s"), Ok(MAX_DURATION));
    for bad in [
        "", "5", "ms", "s", "-1s", "1.s", ".5s", "1..5s", "1e3ms", "2m", "86401s", "1 s",
    ] {
        assert!(parse_duration(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn every_error_has_its_line() {
    let cases: Vec<(&str, ParseErrorKind)> = vec![
        ("jump", ParseErrorKind::UnknownCommand("jump".into())),
        ("Type x", ParseErrorKind::UnknownCommand("Type".into())),
        ("type", ParseErrorKind::MissingArgument("text after 'type'")),
        ("type é", ParseErrorKind::Untypeable('é')),
        ("type a\\qb", ParseErrorKind::BadEscape("\\q".into())),
        ("type a\\", ParseErrorKind::BadEscape("\\".into())),
        ("type \\r", ParseErrorKind::BadEscape("\\r".into())),
        (
            "key",
            ParseErrorKind::MissingArgument("key combination after 'key'"),
        ),
        (
            "key ctrl-foo",
            ParseErrorKind::Key(KeyNameError::Unknown("foo".into())),
        ),
        (
            "key pause",
            ParseErrorKind::Key(KeyNameError::Unsupported("pause")),
        ),
        ("key ctrl--c", ParseErrorKind::EmptyCombo("ctrl--c".into())),
        ("key -", ParseErrorKind::EmptyCombo("-".into())),
        ("key a-a", ParseErrorKind::RedundantKey("a")),
        ("press", ParseErrorKind::MissingArgument("key name")),
        (
            "release Shift",
            ParseErrorKind::Key(KeyNameError::Unknown("Shift".into())),
        ),
        ("wait", ParseErrorKind::MissingArgument("duration")),
        ("wait 5", ParseErrorKind::BadDuration("5".into())),
        ("wait 1s 2s", ParseErrorKind::ExtraArgument("wait")),
        (
            "expect",
            ParseErrorKind::MissingArgument("text after 'expect'"),
        ),
        ("expect \"abc", ParseErrorKind::UnterminatedQuote),
        (
            "expect \"abc\" soon",
            ParseErrorKind::BadDuration("soon".into()),
        ),
        (
            "expect \"abc\" 1s 2s",
            ParseErrorKind::ExtraArgument("expect"),
        ),
        (
            "expect \"\"",
            ParseErrorKind::MissingArgument("text after 'expect'"),
        ),
        ("expect a\\z", ParseErrorKind::BadEscape("\\z".into())),
    ];
    for (line, kind) in cases {
        let text = format!("# first\ntype ok\n{line}\ntype after\n");
        assert_eq!(error(&text), (3, kind), "{line:?}");
    }
    let e = Script::parse("s.keys", "key ctrl+c").unwrap_err();
    assert_eq!(
        e.to_string(),
        "s.keys:1: unknown key name 'ctrl+c' (did you mean 'ctrl-c'?)"
    );
    let e = Script::parse("s.keys", "press RET").unwrap_err();
    assert_eq!(
        e.to_string(),
        "s.keys:1: unknown key name 'RET' (did you mean 'ret'?)"
    );
    let e = Script::parse("dir/s.keys", "\n\nkey foo").unwrap_err();
    assert_eq!(e.to_string(), "dir/s.keys:3: unknown key name 'foo'");
    let e = Script::parse_bytes("b.keys", b"type a\ntype \xff\n").unwrap_err();
    assert_eq!((e.line, e.kind), (2, ParseErrorKind::NotUtf8));
}

#[test]
fn expect_forms() {
    assert_eq!(
        parse("expect \"a \\\"b\\\" 5s\"").unwrap(),
        [Command::Expect {
            text: "a \"b\" 5s".into(),
            timeout: DEFAULT_EXPECT_TIMEOUT
        }]
    );
    // A last word that is not a duration belongs to the text.
    assert_eq!(
        parse("expect timer fired").unwrap(),
        [Command::Expect {
            text: "timer fired".into(),
            timeout: DEFAULT_EXPECT_TIMEOUT
        }]
    );
    assert_eq!(
        parse("expect 5s").unwrap(),
        [Command::Expect {
            text: "5s".into(),
            timeout: DEFAULT_EXPECT_TIMEOUT
        }]
    );
    assert_eq!(
        parse("expect a\\r\\n 250ms").unwrap(),
        [Command::Expect {
            text: "a\r\n".into(),
            timeout: Duration::from_millis(250)
        }]
    );
}

#[test]
fn type_text_shorthand() {
    let s = Script::type_text("--type", "exit 3\\n").unwrap();
    assert_eq!(s.lines[0].command, Command::Type("exit 3\n".into()));
    let e = Script::type_text("--type", "x\\y").unwrap_err();
    assert_eq!(
        e.to_string(),
        "--type:1: unknown escape '\\y' (known: \\n \\t \\b \\\\, and \\r \\\" in expect)"
    );
}

#[test]
fn strokes_press_shift_and_release_in_reverse() {
    use Stroke::*;
    let (shift, h, i, ctrl, c) = (key("shift"), key("h"), key("i"), key("ctrl"), key("c"));
    assert_eq!(
        strokes(&Command::Type("Hi".into())),
        [
            Down(shift),
            Down(h),
            Up(h),
            Up(shift),
            Settle,
            Down(i),
            Up(i),
            Settle
        ]
    );
    assert_eq!(
        strokes(&Command::Key(vec![vec![ctrl, c]])),
        [Down(ctrl), Down(c), Up(c), Up(ctrl), Settle]
    );
    assert_eq!(strokes(&Command::Press(vec![shift])), [Down(shift), Settle]);
    assert_eq!(strokes(&Command::Release(vec![shift])), [Up(shift), Settle]);
    assert!(strokes(&Command::Wait(Duration::ZERO)).is_empty());
}

/// A machine whose guest reads keys at once and whose serial output is
/// fixed; it records key events and paces ("|").
#[derive(Default)]
struct Recorder {
    log: Mutex<Vec<String>>,
    output: Vec<u8>,
    stopped: bool,
}

impl MachineControl for Recorder {
    fn serial_input(&self, bytes: &[u8]) -> bool {
        self.log.lock().unwrap().push(format!("serial {bytes:?}"));
        true
    }
    fn key_event(&self, key: Key, down: bool) {
        self.log
            .lock()
            .unwrap()
            .push(format!("{}{}", if down { "+" } else { "-" }, key));
    }
    fn wait_input_drained(&self, _: Duration) -> bool {
        self.log.lock().unwrap().push("|".into());
        true
    }
    fn serial_mark(&self) -> usize {
        self.output.len()
    }
    fn serial_wait_for(&self, from: usize, needle: &[u8], _: Duration) -> Result<usize, Vec<u8>> {
        let hay = &self.output[from.min(self.output.len())..];
        match hay.windows(needle.len()).position(|w| w == needle) {
            Some(p) => Ok(from + p + needle.len()),
            // All of it, not just what follows `from`: the error shows it.
            None => Err(self.output.clone()),
        }
    }
    fn pause(&self) {}
    fn resume(&self) {}
    fn is_paused(&self) -> bool {
        false
    }
    fn can_reset(&self) -> bool {
        false
    }
    fn reset(&self) {}
    fn shutdown(&self, _: i32) {}
    fn is_stopped(&self) -> bool {
        self.stopped
    }
    fn subscribe(&self) -> Receiver<MachineEvent> {
        // This mock never publishes: the sender goes at once.
        std::sync::mpsc::channel().1
    }
}

/// Runs `script`, recording `wait` lines in the log.
fn run_recorded(script: &Script, machine: &Recorder) -> Result<(), RunError> {
    run_recorded_on(script, machine, ConsoleInput::Keyboard)
}

/// [`run_recorded`] with key lines going to `console`.
fn run_recorded_on(
    script: &Script,
    machine: &Recorder,
    console: ConsoleInput,
) -> Result<(), RunError> {
    run_with_sleep(script, machine, console, &mut |duration| {
        machine
            .log
            .lock()
            .unwrap()
            .push(format!("wait {duration:?}"))
    })
}

#[test]
fn runner_executes_in_order_and_reports_expect_line() {
    let script = Script::parse(
        "r.keys",
        "type a\nwait 1s\nexpect \"> \"\nkey ret\nexpect nope 1s\ntype b",
    )
    .unwrap();
    let target = Recorder {
        output: "> ".into(),
        ..Default::default()
    };
    let error = run_recorded(&script, &target).unwrap_err();
    assert_eq!(
        *target.log.lock().unwrap(),
        ["+a", "-a", "|", "wait 1s", "+ret", "-ret", "|"]
    );
    assert_eq!(
        error,
        RunError::ExpectTimeout {
            script: "r.keys".into(),
            line: 5,
            text: "nope".into(),
            timeout: Duration::from_secs(1),
            tail: "> ".into()
        }
    );
    assert!(error
        .to_string()
        .starts_with("r.keys:5: expect \"nope\" timed out after 1s"));
}

#[test]
fn expect_consumes_output_in_order() {
    let machine = Recorder {
        output: b"> a\n> b\n".to_vec(),
        ..Default::default()
    };
    let script = Script::parse("s", "expect > a\nexpect \"> \"\nexpect b\nexpect > a").unwrap();
    let error = run_recorded(&script, &machine).unwrap_err();
    assert!(
        matches!(error, RunError::ExpectTimeout { line: 4, .. }),
        "{error}"
    );
}

#[test]
fn a_stopped_machine_ends_the_script() {
    let machine = Recorder {
        stopped: true,
        ..Default::default()
    };
    let script = Script::parse("s", "type a\nexpect nope").unwrap();
    let error = run_recorded(&script, &machine).unwrap_err();
    assert_eq!(
        error.to_string(),
        "s:1: type \"a\": the machine stopped first"
    );
    assert!(machine.log.lock().unwrap().is_empty());
}

#[test]
fn stopped_names_each_kind_of_line() {
    let script = Script::parse(
        "s",
        "expect \"done\"\ntype ls\\n\nkey ctrl-c shift-a\npress shift\nrelease shift\nwait 1.5s",
    )
    .unwrap();
    let named: Vec<String> = script.lines.iter().map(|l| describe(&l.command)).collect();
    assert_eq!(
        named,
        [
            "expect \"done\"",
            "type \"ls\\n\"",
            "key ctrl-c shift-a",
            "press shift",
            "release shift",
            "wait 1.5s"
        ]
    );
}

/// A machine that stops once the guest has read `after` settles.
struct StopsAfter {
    inner: Recorder,
    settles: std::sync::atomic::AtomicUsize,
    after: usize,
}

impl MachineControl for StopsAfter {
    fn key_event(&self, key: Key, down: bool) {
        self.inner.key_event(key, down)
    }
    fn wait_input_drained(&self, _: Duration) -> bool {
        let n = self
            .settles
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
            + 1;
        n < self.after
    }
    fn serial_mark(&self) -> usize {
        0
    }
    fn serial_wait_for(&self, f: usize, n: &[u8], t: Duration) -> Result<usize, Vec<u8>> {
        self.inner.serial_wait_for(f, n, t)
    }
    fn pause(&self) {}
    fn resume(&self) {}
    fn is_paused(&self) -> bool {
        false
    }
    fn can_reset(&self) -> bool {
        false
    }
    fn reset(&self) {}
    fn shutdown(&self, _: i32) {}
    fn is_stopped(&self) -> bool {
        self.settles.load(std::sync::atomic::Ordering::SeqCst) >= self.after
    }
    fn subscribe(&self) -> Receiver<MachineEvent> {
        std::sync::mpsc::channel().1
    }
}

#[test]
fn a_line_whose_keys_were_all_queued_is_done_when_the_machine_stops() {
    // The guest stops as it reads the last key (`type exit\n`): finished.
    let script = Script::parse("s", "type ab").unwrap();
    let machine = StopsAfter {
        inner: Recorder::default(),
        settles: 0.into(),
        after: 2,
    };
    assert_eq!(run(&script, &machine), Ok(()));
    // Stopping on the first of two characters leaves the line pending, and
    // a line after the stop is pending too.
    let machine = StopsAfter {
        inner: Recorder::default(),
        settles: 0.into(),
        after: 1,
    };
    let error = run(&script, &machine).unwrap_err();
    assert_eq!(
        error.to_string(),
        "s:1: type \"ab\": the machine stopped first"
    );
    let script = Script::parse("s", "type ab\n\nwait 1s").unwrap();
    let machine = StopsAfter {
        inner: Recorder::default(),
        settles: 0.into(),
        after: 2,
    };
    let start = std::time::Instant::now();
    let error = run(&script, &machine).unwrap_err();
    assert!(
        matches!(error, RunError::Stopped { line: 3, .. }),
        "{error}"
    );
    assert!(start.elapsed() < Duration::from_millis(500));
}

/// With `--console-input serial`, a `type` line goes to COM1 whole, as a
/// terminal's bytes (Enter as CR), and is paced once; `key` combinations
/// become their terminal bytes.
#[test]
fn serial_console_lines_are_sent_as_terminal_bytes() {
    let script = Script::parse("s.keys", "type ls\\n\nkey ctrl-c up\nwait 1ms\n").unwrap();
    script.check_serial().unwrap();
    let machine = Recorder::default();
    run_recorded_on(&script, &machine, ConsoleInput::Serial).unwrap();
    let log = machine.log.lock().unwrap().clone();
    assert_eq!(
        log,
        [
            format!("serial {:?}", b"ls\r"),
            "|".to_string(),
            format!("serial {:?}", b"\x03\x1b[A"),
            "|".to_string(),
            "wait 1ms".to_string(),
        ]
    );
}

/// Lines a serial terminal cannot send are refused before the run, with
/// their line.
#[test]
fn serial_console_refuses_keys_without_bytes() {
    let script = Script::parse("s.keys", "type a\nkey f1\n").unwrap();
    let error = script.check_serial().unwrap_err();
    assert_eq!(
        error.to_string(),
        "s.keys:2: f1: a serial terminal has no bytes for it (--console-input serial)"
    );
    let script = Script::parse("s.keys", "press shift\n").unwrap();
    assert_eq!(
        script.check_serial().unwrap_err().to_string(),
        "s.keys:1: press of shift: a serial terminal has no bytes for it (--console-input serial)"
    );
}
