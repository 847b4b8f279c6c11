//! Tests of `vmm keys`: the QMP client and the remote machine against a
//! fake QMP server on a socket pair, the serial readers, the messages.
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::client::check_greeting;
use super::machine::RemoteMachine;
use super::*;

/// QEMU 7.2's greeting, as it sends it.
const QEMU_GREETING: &str = r#"{"QMP": {"version": {"qemu": {"micro": 22, "minor": 2, "major": 7}, "package": "Debian 1:7.2+dfsg-7+deb12u18"}, "capabilities": ["oob"]}}"#;

/// What the fake server answers to one command: messages to send first
/// (events), then the reply (`return` or `error`, the id is added).
type Responder = Box<dyn FnMut(&Value) -> (Vec<Value>, Value) + Send>;

/// A fake QMP server on one end of a socket pair: sends `greeting`, then
/// answers each command with `respond`, recording the commands. Returns the
/// client's end and the recorded commands.
fn fake_server(greeting: &str, mut respond: Responder) -> (UnixStream, Arc<Mutex<Vec<Value>>>) {
    let (client, server) = UnixStream::pair().unwrap();
    let log = Arc::new(Mutex::new(Vec::new()));
    let recorded = log.clone();
    let greeting = greeting.to_string();
    thread::spawn(move || {
        let mut writer = server.try_clone().unwrap();
        let _ = writeln!(writer, "{greeting}");
        let mut reader = BufReader::new(server);
        let mut line = String::new();
        while reader.read_line(&mut line).unwrap_or(0) > 0 {
            let command: Value = serde_json::from_str(&line).unwrap();
            line.clear();
            recorded.lock().unwrap().push(command.clone());
            let (before, mut reply) = respond(&command);
            for message in before {
                let _ = writeln!(writer, "{message}");
            }
            if reply.is_null() {
                // Hang up instead of answering.
                return;
            }
            reply["id"] = command["id"].clone();
            let _ = writeln!(writer, "{reply}");
        }
    });
    (client, log)
}

/// Answers every command with an empty `return`.
fn answer_all() -> Responder {
    Box::new(|_| (vec![], json!({"return": {}})))
}

fn connect(
    stream: UnixStream,
    notices: impl FnMut(Notice) + Send + 'static,
) -> Result<QmpClient, QmpClientError> {
    QmpClient::handshake(Path::new("test.sock"), stream, notices)
}

#[test]
fn greeting_must_be_qemus_shape() {
    assert_eq!(check_greeting(QEMU_GREETING), Ok(()));
    // This VMM's own QMP server passes too.
    let ours = crate::input::qmp::greeting().to_string();
    assert_eq!(check_greeting(&ours), Ok(()));
    for bad in [
        "",
        "SSH-2.0-OpenSSH_9.2\r\n",
        r#"{"hello": 1}"#,
        r#"{"QMP": {"capabilities": []}}"#,
        r#"{"QMP": {"version": {"qemu": {"major": "7"}, "package": ""}, "capabilities": []}}"#,
        r#"{"QMP": {"version": {"qemu": {"major": 7, "minor": 2, "micro": 0}}, "capabilities": []}}"#,
    ] {
        assert!(check_greeting(bad).is_err(), "{bad:?} accepted");
    }
    assert_eq!(
        check_greeting(""),
        Err("nothing (the connection closed)".to_string())
    );
    let long = "x".repeat(500);
    let quoted = check_greeting(&long).unwrap_err();
    assert!(quoted.len() < 220 && quoted.ends_with("...\""), "{quoted}");
}

#[test]
fn handshake_negotiates_capabilities_then_runs_commands() {
    let (stream, log) = fake_server(
        QEMU_GREETING,
        Box::new(|command| match command["execute"].as_str() {
            Some("query-status") => (
                vec![],
                json!({"return": {"status": "running", "running": true}}),
            ),
            _ => (vec![], json!({"return": {}})),
        }),
    );
    let client = connect(stream, |_| {}).unwrap();
    let status = client.execute("query-status", None).unwrap();
    assert_eq!(status["status"], "running");
    let log = log.lock().unwrap();
    assert_eq!(log[0]["execute"], "qmp_capabilities");
    assert_eq!(log[1]["execute"], "query-status");
    assert_ne!(log[0]["id"], log[1]["id"]);
}

#[test]
fn not_a_qmp_server_is_named() {
    let (stream, _) = fake_server("220 smtp.example ESMTP", answer_all());
    let error = connect(stream, |_| {}).err().unwrap();
    assert_eq!(
        error.to_string(),
        "QMP socket test.sock: not a QMP server: expected a greeting {\"QMP\": {\"version\": \
         {\"qemu\": ...}, \"capabilities\": [...]}}, got \"220 smtp.example ESMTP\""
    );
}

#[test]
fn missing_socket_is_one_clear_line() {
    let path = std::env::temp_dir().join(format!("vmm-keys-none-{}.sock", std::process::id()));
    let error = QmpClient::connect(&path, |_| {}).err().unwrap();
    let text = error.to_string();
    assert!(
        text.starts_with(&format!(
            "QMP socket {}: No such file or directory",
            path.display()
        )),
        "{text}"
    );
    assert!(!text.contains('\n'));
}

#[test]
fn error_replies_carry_qemus_class_and_text() {
    let (stream, _) = fake_server(
        QEMU_GREETING,
        Box::new(|command| match command["execute"].as_str() {
            Some("send-key") => (
                vec![],
                json!({"error": {"class": "GenericError", "desc": "Invalid parameter 'keys'"}}),
            ),
            _ => (vec![], json!({"return": {}})),
        }),
    );
    let client = connect(stream, |_| {}).unwrap();
    let error = client.execute("send-key", Some(json!({}))).unwrap_err();
    assert_eq!(
        error.to_string(),
        "QMP send-key: GenericError: Invalid parameter 'keys'"
    );
}

#[test]
fn events_between_command_and_reply_go_to_the_notices() {
    let (stream, _) = fake_server(
        QEMU_GREETING,
        Box::new(|command| match command["execute"].as_str() {
            Some("stop") => (
                vec![
                    json!({"event": "STOP", "data": {}, "timestamp": {"seconds": 1, "microseconds": 2}}),
                ],
                json!({"return": {}}),
            ),
            _ => (vec![], json!({"return": {}})),
        }),
    );
    let (tx, rx) = mpsc::channel();
    let client = connect(stream, move |notice| {
        let _ = tx.send(notice);
    })
    .unwrap();
    assert_eq!(client.execute("stop", None).unwrap(), json!({}));
    match rx.recv_timeout(Duration::from_secs(5)).unwrap() {
        Notice::Event(event) => assert_eq!(event["event"], "STOP"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_closed_connection_is_noticed_and_fails_the_command() {
    let (stream, _) = fake_server(
        QEMU_GREETING,
        Box::new(|command| match command["execute"].as_str() {
            Some("quit") => (vec![], Value::Null),
            _ => (vec![], json!({"return": {}})),
        }),
    );
    let stop = Arc::new(StopState::default());
    let notices = stop.clone();
    let client = connect(stream, move |notice| {
        if let Notice::Closed = notice {
            notices.stop(StopCause::QmpClosed);
        }
    })
    .unwrap();
    let error = client.execute("quit", None).unwrap_err();
    assert!(matches!(error, QmpClientError::Closed(_)), "{error}");
    assert!(stop.wait(Duration::from_secs(5)));
    assert_eq!(stop.cause(), Some(StopCause::QmpClosed));
}

/// A remote machine on a fake server, with no gap; the commands it sends.
fn remote(
    respond: Responder,
) -> (
    RemoteMachine,
    SerialTap,
    Arc<StopState>,
    Arc<Mutex<Vec<Value>>>,
) {
    remote_with_gap(respond, Duration::ZERO)
}

/// [`remote`] with a gap.
fn remote_with_gap(
    respond: Responder,
    gap: Duration,
) -> (
    RemoteMachine,
    SerialTap,
    Arc<StopState>,
    Arc<Mutex<Vec<Value>>>,
) {
    let (stream, log) = fake_server(QEMU_GREETING, respond);
    let stop = Arc::new(StopState::default());
    let notices = stop.clone();
    let client = connect(stream, move |notice| match notice {
        Notice::Event(event) if event["event"] == "SHUTDOWN" => notices.stop(StopCause::Shutdown(
            event["data"]["reason"].as_str().unwrap().into(),
        )),
        Notice::Event(_) => {}
        Notice::Closed => notices.stop(StopCause::QmpClosed),
    })
    .unwrap();
    let tap = SerialTap::new();
    let machine = RemoteMachine::new(client, tap.clone(), stop.clone(), gap);
    (machine, tap, stop, log)
}

/// The `events` argument of `input-send-event` for (key, down) pairs.
fn key_events(events: &[(&str, bool)]) -> Value {
    let events: Vec<Value> = events
        .iter()
        .map(|(k, down)| json!({"type": "key", "data": {"down": down, "key": {"type": "qcode", "data": k}}}))
        .collect();
    json!({ "events": events })
}

#[test]
fn each_character_or_combination_is_one_input_send_event() {
    let (machine, tap, _, log) = remote(answer_all());
    tap.push(b"banner\r\n> ");
    let script = Script::parse(
        "t.keys",
        "expect \"> \"\ntype aB\\n\nkey ctrl-alt-delete\npress shift\nrelease shift\n",
    )
    .unwrap();
    script::run(&script, &machine).unwrap();
    let log = log.lock().unwrap();
    assert!(log[1..].iter().all(|c| c["execute"] == "input-send-event"));
    let sent: Vec<Value> = log[1..].iter().map(|c| c["arguments"].clone()).collect();
    assert_eq!(
        sent,
        [
            key_events(&[("a", true), ("a", false)]),
            key_events(&[("shift", true), ("b", true), ("b", false), ("shift", false)]),
            key_events(&[("ret", true), ("ret", false)]),
            key_events(&[
                ("ctrl", true),
                ("alt", true),
                ("delete", true),
                ("delete", false),
                ("alt", false),
                ("ctrl", false)
            ]),
            key_events(&[("shift", true)]),
            key_events(&[("shift", false)]),
        ]
    );
}

#[test]
fn pacing_waits_for_the_gap_after_each_character() {
    let (machine, _, _, log) = remote_with_gap(answer_all(), Duration::from_millis(30));
    let script = Script::parse("t.keys", "type abc\n").unwrap();
    let start = Instant::now();
    script::run(&script, &machine).unwrap();
    assert!(
        start.elapsed() >= Duration::from_millis(90),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(log.lock().unwrap().len(), 1 + 3);
}

#[test]
fn shutdown_event_fails_a_pending_expect_with_the_reason() {
    let (machine, tap, stop, _) = remote(Box::new(|command| match command["execute"].as_str() {
        // The guest exits in answer to Enter.
        Some("input-send-event")
            if command["arguments"] == key_events(&[("ret", true), ("ret", false)]) =>
        {
            (
                vec![
                    json!({"event": "SHUTDOWN", "data": {"guest": true, "reason": "guest-shutdown"},
                        "timestamp": {"seconds": 1, "microseconds": 2}}),
                ],
                json!({"return": {}}),
            )
        }
        _ => (vec![], json!({"return": {}})),
    }));
    let script = Script::parse("t.keys", "type x\\n\nexpect done 30s\n").unwrap();
    let closer = {
        // What the serial reader does once the machine stopped.
        let (stop, tap) = (stop.clone(), tap.clone());
        thread::spawn(move || {
            assert!(stop.wait(Duration::from_secs(10)));
            tap.close();
        })
    };
    let start = Instant::now();
    let result = script::run(&script, &machine);
    closer.join().unwrap();
    assert!(start.elapsed() < Duration::from_secs(10));
    let (status, message) = outcome(result, stop.cause()).unwrap();
    assert_eq!(status, 126);
    assert_eq!(
        message.unwrap(),
        "t.keys:2: expect \"done\": the machine shut down (QMP SHUTDOWN, guest-shutdown) first"
    );
}

#[test]
fn a_script_ending_with_the_key_that_stops_the_machine_succeeds() {
    // QEMU exits through isa-debug-exit at once: no reply to the last key.
    let (machine, _, stop, _) = remote(Box::new(|command| match command["execute"].as_str() {
        Some("input-send-event")
            if command["arguments"] == key_events(&[("ret", true), ("ret", false)]) =>
        {
            (vec![], Value::Null)
        }
        _ => (vec![], json!({"return": {}})),
    }));
    let script = Script::parse("t.keys", "type exit 3\\n\n").unwrap();
    let result = script::run(&script, &machine);
    assert_eq!(outcome(result, stop.cause()).unwrap(), (0, None));
    assert_eq!(stop.cause(), Some(StopCause::QmpClosed));
}

#[test]
fn a_qmp_error_reply_fails_the_run_naming_the_line() {
    let (machine, _, stop, _) = remote(Box::new(|command| match command["execute"].as_str() {
        Some("input-send-event") => (
            vec![],
            json!({"error": {"class": "GenericError", "desc": "no keyboard"}}),
        ),
        _ => (vec![], json!({"return": {}})),
    }));
    let script = Script::parse("t.keys", "# first\ntype ab\n").unwrap();
    let result = script::run(&script, &machine);
    let error = outcome(result, stop.cause()).unwrap_err();
    assert_eq!(
        error.to_string(),
        "t.keys:2: type \"ab\": QMP input-send-event: GenericError: no keyboard"
    );
}

#[test]
fn expect_timeout_and_run_timeout_messages() {
    let (machine, tap, stop, _) = remote(answer_all());
    tap.push(b"> ");
    let script = Script::parse("t.keys", "expect nothing 50ms\n").unwrap();
    let (status, message) = outcome(script::run(&script, &machine), stop.cause()).unwrap();
    assert_eq!(status, 126);
    assert!(message
        .unwrap()
        .starts_with("t.keys:1: expect \"nothing\" timed out after 50ms; last serial output:\n> "),);
    // --timeout: what `run` does when it expires.
    stop.stop(StopCause::Timeout);
    tap.close();
    let script = Script::parse("t.keys", "wait 1s\nexpect x 60s\n").unwrap();
    let (status, message) = outcome(script::run(&script, &machine), stop.cause()).unwrap();
    assert_eq!(status, 126);
    assert_eq!(
        message.unwrap(),
        "t.keys:1: wait 1s: --timeout expired first"
    );
}

#[test]
fn serial_source_syntax() {
    assert_eq!(
        "unix:/tmp/s.sock".parse(),
        Ok(SerialSource::Unix("/tmp/s.sock".into()))
    );
    // Copied from QEMU's command line: the options are QEMU's business.
    assert_eq!(
        "unix:/tmp/s.sock,server=on,wait=off".parse(),
        Ok(SerialSource::Unix("/tmp/s.sock".into()))
    );
    assert_eq!(
        "file:out.txt".parse(),
        Ok(SerialSource::File("out.txt".into()))
    );
    assert_eq!(
        "stdio".parse::<SerialSource>(),
        Err(serial::SerialSourceError::Scheme)
    );
    assert_eq!(
        "file:".parse::<SerialSource>(),
        Err(serial::SerialSourceError::EmptyPath("file:"))
    );
}

#[test]
fn a_followed_file_is_read_from_its_start_and_as_it_grows() {
    let path = std::env::temp_dir().join(format!("vmm-keys-follow-{}.txt", std::process::id()));
    std::fs::write(&path, b"boot\r\n> ").unwrap();
    let tap = SerialTap::new();
    let stop = Arc::new(StopState::default());
    SerialSource::File(path.clone())
        .open()
        .unwrap()
        .watch(tap.clone(), stop.clone())
        .unwrap();
    assert_eq!(tap.wait_for(0, b"> ", Duration::from_secs(10)), Ok(8));
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    file.write_all(b"echo hi\r\nhi\r\n").unwrap();
    assert!(tap.wait_for(8, b"hi\r\n", Duration::from_secs(10)).is_ok());
    // The machine's last words, then its stop: read, then the tap closes.
    file.write_all(b"bye").unwrap();
    stop.stop(StopCause::QmpClosed);
    assert!(tap.wait_for(0, b"bye", Duration::from_secs(10)).is_ok());
    assert_eq!(
        tap.wait_for(0, b"never", Duration::from_secs(10)),
        Err(b"boot\r\n> echo hi\r\nhi\r\nbye".to_vec())
    );
    let _ = std::fs::remove_file(&path);
}

#[test]
fn the_serial_socket_closing_stops_the_machine() {
    let path = std::env::temp_dir().join(format!("vmm-keys-serial-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
    let tap = SerialTap::new();
    let stop = Arc::new(StopState::default());
    SerialSource::Unix(path.clone())
        .open()
        .unwrap()
        .watch(tap.clone(), stop.clone())
        .unwrap();
    let (mut machine_end, _) = listener.accept().unwrap();
    machine_end.write_all(b"last words").unwrap();
    drop(machine_end);
    assert_eq!(
        tap.wait_for(0, b"never", Duration::from_secs(10)),
        Err(b"last words".to_vec())
    );
    assert_eq!(stop.cause(), Some(StopCause::SerialClosed));
    let _ = std::fs::remove_file(&path);
}

#[test]
fn missing_serial_socket_and_file_are_named() {
    let error = SerialSource::Unix("/nonexistent/s.sock".into())
        .open()
        .err()
        .unwrap();
    assert_eq!(
        error.to_string(),
        "serial socket /nonexistent/s.sock: No such file or directory (os error 2) \
         (is the machine running with -serial unix:/nonexistent/s.sock,server=on,wait=off?)"
    );
    let error = SerialSource::File("/nonexistent/out".into())
        .open()
        .err()
        .unwrap();
    assert_eq!(
        error.to_string(),
        "serial file /nonexistent/out: No such file or directory (os error 2)"
    );
}

#[test]
fn the_first_stop_cause_is_kept() {
    let stop = StopState::default();
    assert!(!stop.wait(Duration::from_millis(1)));
    stop.stop(StopCause::SerialClosed);
    stop.stop(StopCause::QmpClosed);
    assert_eq!(stop.cause(), Some(StopCause::SerialClosed));
    assert!(stop.wait(Duration::ZERO));
}
