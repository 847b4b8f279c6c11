//! Tests of the QMP session (protocol, commands, errors) and addresses.
use super::*;
use crate::input::keycodes::Key;
use crate::input::machine::MachineControl;
use crate::vm::{KvmStatValue, KvmStatistic, MachineEvent, StatsTarget};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::sync::mpsc::Receiver;
use std::sync::Mutex;

#[derive(Default)]
struct Mock {
    log: Mutex<Vec<String>>,
    paused: Mutex<bool>,
    resettable: bool,
}

impl MachineControl for Mock {
    fn key_event(&self, key: Key, down: bool) {
        self.log
            .lock()
            .unwrap()
            .push(format!("{}{key}", if down { "+" } else { "-" }));
    }
    fn wait_input_drained(&self, _: Duration) -> bool {
        true
    }
    fn serial_mark(&self) -> usize {
        0
    }
    fn serial_wait_for(&self, _: usize, _: &[u8], _: Duration) -> Result<usize, Vec<u8>> {
        Err(Vec::new())
    }
    fn pause(&self) {
        *self.paused.lock().unwrap() = true;
        self.log.lock().unwrap().push("stop".into());
    }
    fn resume(&self) {
        *self.paused.lock().unwrap() = false;
        self.log.lock().unwrap().push("cont".into());
    }
    fn is_paused(&self) -> bool {
        *self.paused.lock().unwrap()
    }
    fn can_reset(&self) -> bool {
        self.resettable
    }
    fn reset(&self) {
        self.log.lock().unwrap().push("reset".into());
    }
    fn shutdown(&self, _: i32) {}
    fn is_stopped(&self) -> bool {
        false
    }
    fn subscribe(&self) -> Receiver<MachineEvent> {
        // This mock never publishes: the sender goes at once.
        std::sync::mpsc::channel().1
    }
    /// Three vCPU statistics and one of the VM, as a host kernel has them.
    fn kvm_statistics(
        &self,
        target: StatsTarget,
        names: Option<&[String]>,
    ) -> Option<Vec<KvmStatistic>> {
        let all = match target {
            StatsTarget::Vcpu => vec![
                ("exits", KvmStatValue::Number(652)),
                ("guest_mode", KvmStatValue::Boolean(false)),
                ("halt_wait_hist", KvmStatValue::List(vec![1, 2])),
            ],
            StatsTarget::Vm => vec![("pages_4k", KvmStatValue::Number(7))],
        };
        let wanted = |name: &str| names.is_none_or(|names| names.iter().any(|n| n == name));
        Some(
            all.into_iter()
                .filter(|(name, _)| wanted(name))
                .map(|(name, value)| KvmStatistic {
                    name: name.into(),
                    value,
                })
                .collect(),
        )
    }
}

/// Feeds `input` and carries out the key actions as the server would, on
/// the mock's log ("send ctrl-c 100ms", "+shift").
fn feed(session: &mut QmpSession, mock: &Mock, input: &[u8]) -> (Vec<Value>, Vec<Action>) {
    let (out, actions) = session.feed(input, mock);
    for action in &actions {
        match action {
            Action::SendKeys { keys, hold } => {
                let names: Vec<&str> = keys.iter().map(|k| k.name()).collect();
                mock.log.lock().unwrap().push(format!(
                    "send {} {}ms",
                    names.join("-"),
                    hold.as_millis()
                ));
            }
            Action::KeyEvent { key, down } => mock.key_event(*key, *down),
            Action::Quit => {}
        }
    }
    (out, actions)
}

fn strip_timestamps(mut values: Vec<Value>) -> Vec<Value> {
    for v in &mut values {
        if let Some(o) = v.as_object_mut() {
            let ts = o.remove("timestamp");
            if o.contains_key("event") {
                assert!(ts.unwrap()["seconds"].as_u64().unwrap() > 0);
            }
        }
    }
    values
}

fn run(session: &mut QmpSession, mock: &Mock, input: &str) -> Vec<Value> {
    let (out, _) = feed(session, mock, input.as_bytes());
    strip_timestamps(out)
}

fn ready(mock: &Mock) -> QmpSession {
    let mut session = QmpSession::new();
    assert_eq!(
        run(&mut session, mock, r#"{"execute":"qmp_capabilities"}"#),
        [json!({"return": {}})]
    );
    session
}

#[test]
fn greeting_shape() {
    let g = greeting();
    assert_eq!(g["QMP"]["capabilities"], json!([]));
    assert!(g["QMP"]["version"]["qemu"]["major"].is_u64());
    assert!(g["QMP"]["version"]["package"].is_string());
}

#[test]
fn negotiation_required_and_once() {
    let mock = Mock::default();
    let mut s = QmpSession::new();
    assert_eq!(
        run(&mut s, &mock, r#"{"execute":"query-status","id":1}"#),
        [
            json!({"error": {"class": "CommandNotFound", "desc": "Expecting capabilities negotiation with 'qmp_capabilities'"}, "id": 1})
        ]
    );
    assert_eq!(
        run(
            &mut s,
            &mock,
            r#"{"execute":"qmp_capabilities","arguments":{"enable":["oob"]}}"#
        ),
        [json!({"error": {"class": "GenericError", "desc": "Capability 'oob' not available"}})]
    );
    assert!(!s.negotiated());
    assert_eq!(
        run(
            &mut s,
            &mock,
            r#"{"execute":"qmp_capabilities","arguments":{"enable":[]},"id":"x"}"#
        ),
        [json!({"return": {}, "id": "x"})]
    );
    assert_eq!(
        run(&mut s, &mock, r#"{"execute":"qmp_capabilities"}"#),
        [
            json!({"error": {"class": "CommandNotFound", "desc": "Capabilities negotiation is already complete, command ignored"}})
        ]
    );
}

/// An `id` comes back as the client sent it: a number too large for an
/// integer is parsed to the nearest double, which our answer writes so that
/// it reads back as the same double (the fuzzer found a 40-digit id that
/// came back one unit in the last place off).
#[test]
fn a_numeric_id_comes_back_unchanged() {
    let mock = Mock::default();
    let mut s = ready(&mock);
    for id in [
        "3333333333333333333333333333333333333330",
        "1e308",
        "0.1",
        "-2.5e-300",
        "18446744073709551616",
    ] {
        let out = run(
            &mut s,
            &mock,
            &format!(r#"{{"execute":"query-status","id":{id}}}"#),
        );
        let sent: Value = serde_json::from_str(id).unwrap();
        assert_eq!(out[0]["id"], sent, "id {id}");
        let wire = serde_json::to_string(&out[0]).unwrap();
        let read_back: Value = serde_json::from_str(&wire).unwrap();
        assert_eq!(read_back, out[0], "id {id} on the wire: {wire}");
        assert_eq!(
            read_back["id"].as_f64(),
            id.parse::<f64>().ok(),
            "id {id} is not the nearest double"
        );
    }
}

#[test]
fn unknown_command_and_bad_requests() {
    let mock = Mock::default();
    let mut s = ready(&mock);
    assert_eq!(
        run(&mut s, &mock, r#"{"execute":"frobnicate","id":{"a":[1]}}"#),
        [
            json!({"error": {"class": "CommandNotFound", "desc": "The command frobnicate has not been found"}, "id": {"a": [1]}})
        ]
    );
    let cases = [
        ("[1,2]", "QMP input must be a JSON object"),
        (r#"{"arguments":{}}"#, "QMP input lacks member 'execute'"),
        (
            r#"{"execute":5}"#,
            "QMP input member 'execute' must be a string",
        ),
        (
            r#"{"execute":"stop","arguments":[]}"#,
            "QMP input member 'arguments' must be an object",
        ),
        (
            r#"{"execute":"stop","bogus":1}"#,
            "QMP input member 'bogus' is unexpected",
        ),
        (
            r#"{"execute":"stop","arguments":{"x":1}}"#,
            "Parameter 'x' is unexpected",
        ),
        (r#"{"execute":"send-key"}"#, "Parameter 'keys' is missing"),
        (
            r#"{"execute":"send-key","arguments":{"keys":"a"}}"#,
            "Invalid parameter type for 'keys', expected: array",
        ),
        (
            r#"{"execute":"send-key","arguments":{"keys":[{"type":"qcode","data":"nokey"}]}}"#,
            "Parameter 'data' does not accept value 'nokey'",
        ),
        (
            r#"{"execute":"send-key","arguments":{"keys":[{"type":"qcode","data":"a"},{"type":"qcode","data":"a"}]}}"#,
            "Key 'a' is given twice",
        ),
        (
            r#"{"execute":"send-key","arguments":{"keys":[{"type":"qcode","data":"pause"}]}}"#,
            "key 'pause' has no PS/2 set-2 scan code on this keyboard",
        ),
        (
            r#"{"execute":"send-key","arguments":{"keys":[{"type":"number","data":999}]}}"#,
            "Key number 0x3e7 has no PS/2 scan code",
        ),
        (
            r#"{"execute":"send-key","arguments":{"keys":[{"type":"qcode"}]}}"#,
            "Parameter 'keys[0].data' is missing",
        ),
        (
            r#"{"execute":"send-key","arguments":{"keys":[{"type":"qcode","data":"a"}],"hold-time":-1}}"#,
            "Parameter 'hold-time' expects an integer from 0 to 60000",
        ),
        (
            r#"{"execute":"input-send-event","arguments":{"events":[{"type":"btn","data":{"down":true,"button":"left"}}]}}"#,
            "Input event type 'btn' is not supported: this machine has only a keyboard",
        ),
        (
            r#"{"execute":"input-send-event","arguments":{"events":[{"type":"key","data":{"key":{"type":"qcode","data":"a"}}}]}}"#,
            "Parameter 'events[0].data.down' is missing",
        ),
    ];
    for (input, desc) in cases {
        assert_eq!(
            run(&mut s, &mock, input),
            [json!({"error": {"class": "GenericError", "desc": desc}})],
            "{input}"
        );
    }
    // Nothing reached the machine.
    assert!(
        mock.log.lock().unwrap().is_empty(),
        "{:?}",
        mock.log.lock().unwrap()
    );
}

#[test]
fn malformed_json_recovers_at_next_line() {
    let mock = Mock::default();
    let mut s = ready(&mock);
    let out = run(
        &mut s,
        &mock,
        "{\"execute\": nope}\n{\"execute\":\"query-status\"}\n",
    );
    assert_eq!(out.len(), 2, "{out:?}");
    assert_eq!(out[0]["error"]["class"], "GenericError");
    assert!(out[0]["error"]["desc"]
        .as_str()
        .unwrap()
        .starts_with("JSON parse error"));
    assert_eq!(out[1]["return"]["status"], "running");
    // Garbage split across reads, then a good command.
    assert_eq!(run(&mut s, &mock, "}}}").len(), 1);
    assert!(run(&mut s, &mock, "more garbage").is_empty());
    let out = run(&mut s, &mock, "\n{\"execute\":\"query-status\"}");
    assert_eq!(
        out,
        [json!({"return": {"status": "running", "singlestep": false, "running": true}})]
    );
}

#[test]
fn split_and_concatenated_input() {
    let mock = Mock::default();
    let mut s = QmpSession::new();
    let text = r#"{"execute":"qmp_capabilities"}{"execute":"query-status","id":2}  "#;
    let mut out = Vec::new();
    for b in text.as_bytes() {
        out.extend(run(&mut s, &mock, std::str::from_utf8(&[*b]).unwrap()));
    }
    assert_eq!(out.len(), 2);
    assert_eq!(out[1]["id"], 2);
}

#[test]
fn oversized_input_is_rejected() {
    let mock = Mock::default();
    let mut s = ready(&mock);
    let mut big = String::from("{\"execute\":\"");
    big.push_str(&"x".repeat(MAX_PENDING_INPUT + 10));
    let out = run(&mut s, &mock, &big);
    assert_eq!(out.len(), 1);
    assert!(run(&mut s, &mock, "xxx\"}\n").is_empty());
    assert_eq!(run(&mut s, &mock, r#"{"execute":"query-status"}"#).len(), 1);
}

#[test]
fn keys() {
    let mock = Mock::default();
    let mut s = ready(&mock);
    let out = run(
        &mut s,
        &mock,
        r#"{"execute":"send-key","arguments":{"keys":[{"type":"qcode","data":"ctrl"},{"type":"number","data":46}]}}
           {"execute":"send-key","arguments":{"keys":[{"type":"qcode","data":"ret"}],"hold-time":5}}
           {"execute":"send-key","arguments":{"keys":[]}}
           {"execute":"input-send-event","arguments":{"events":[
               {"type":"key","data":{"down":true,"key":{"type":"qcode","data":"shift"}}},
               {"type":"key","data":{"down":false,"key":{"type":"qcode","data":"shift"}}}]}}"#,
    );
    assert_eq!(out, vec![json!({"return": {}}); 4]);
    assert_eq!(
        *mock.log.lock().unwrap(),
        ["send ctrl-c 100ms", "send ret 5ms", "+shift", "-shift"]
    );
}

#[test]
fn stop_cont_status_and_events() {
    let mock = Mock::default();
    let mut s = ready(&mock);
    assert_eq!(
        run(&mut s, &mock, r#"{"execute":"stop"}"#),
        [json!({"event": "STOP"}), json!({"return": {}})]
    );
    assert_eq!(
        run(&mut s, &mock, r#"{"execute":"query-status"}"#),
        [json!({"return": {"status": "paused", "singlestep": false, "running": false}})]
    );
    // Stopping a stopped machine changes nothing and sends no event.
    assert_eq!(
        run(&mut s, &mock, r#"{"execute":"stop"}"#),
        [json!({"return": {}})]
    );
    assert_eq!(
        run(&mut s, &mock, r#"{"execute":"cont"}"#),
        [json!({"event": "RESUME"}), json!({"return": {}})]
    );
    assert_eq!(
        run(&mut s, &mock, r#"{"execute":"cont"}"#),
        [json!({"return": {}})]
    );
    assert_eq!(*mock.log.lock().unwrap(), ["stop", "cont"]);
}

#[test]
fn reset_only_when_supported() {
    let mock = Mock::default();
    let mut s = ready(&mock);
    assert_eq!(
        run(&mut s, &mock, r#"{"execute":"system_reset"}"#)[0]["error"]["class"],
        "CommandNotFound"
    );
    let list = run(&mut s, &mock, r#"{"execute":"query-commands"}"#);
    assert!(!list[0]["return"]
        .as_array()
        .unwrap()
        .contains(&json!({"name": "system_reset"})));
    let mock = Mock {
        resettable: true,
        ..Default::default()
    };
    let mut s = ready(&mock);
    assert_eq!(
        run(&mut s, &mock, r#"{"execute":"system_reset"}"#),
        [
            json!({"event": "RESET", "data": {"guest": false, "reason": "host-qmp-system-reset"}}),
            json!({"return": {}})
        ]
    );
    let list = run(&mut s, &mock, r#"{"execute":"query-commands"}"#);
    assert!(list[0]["return"]
        .as_array()
        .unwrap()
        .contains(&json!({"name": "send-key"})));
    assert!(list[0]["return"]
        .as_array()
        .unwrap()
        .contains(&json!({"name": "system_reset"})));
}

#[test]
fn quit_sends_shutdown_then_answers_and_ignores_the_rest() {
    let mock = Mock::default();
    let mut s = ready(&mock);
    let (out, actions) = feed(
        &mut s,
        &mock,
        br#"{"execute":"quit","id":7}{"execute":"stop"}"#,
    );
    let out = strip_timestamps(out);
    assert_eq!(
        out,
        [
            json!({"event": "SHUTDOWN", "data": {"guest": false, "reason": "host-qmp-quit"}}),
            json!({"return": {}, "id": 7})
        ]
    );
    assert_eq!(actions, [Action::Quit]);
    assert!(mock.log.lock().unwrap().is_empty());
}

#[test]
fn addresses() {
    let parse = |s: &str| s.parse::<QmpAddress>();
    assert_eq!(
        parse("unix:/tmp/q.sock").unwrap().path,
        PathBuf::from("/tmp/q.sock")
    );
    assert_eq!(
        parse("unix:q.sock,server=on,wait=off").unwrap().path,
        PathBuf::from("q.sock")
    );
    assert_eq!(
        parse("unix:q,server,nowait").unwrap().path,
        PathBuf::from("q")
    );
    assert_eq!(
        parse("tcp:localhost:4444"),
        Err(QmpAddressError::NotUnix("tcp:localhost:4444".into()))
    );
    assert_eq!(parse("unix:"), Err(QmpAddressError::EmptyPath));
    assert_eq!(
        parse("unix:q,wait=on"),
        Err(QmpAddressError::BadOption("wait=on".into()))
    );
}

/// Inputs with several faults get the error the hand-written decoder gave
/// (checked against it on ~400 inputs when the typed decoder replaced it).
#[test]
fn argument_errors_keep_their_order() {
    let mock = Mock::default();
    let mut s = ready(&mock);
    let cases = [
        (
            r#"{"keys":[{"type":"foo"}]}"#,
            "Parameter 'keys[0].data' is missing",
        ),
        (r#"{"keys":[{}]}"#, "Parameter 'keys[0].type' is missing"),
        (
            r#"{"keys":[{"type":"qcode","data":"a","x":1}]}"#,
            "Parameter 'keys[0].x' is unexpected",
        ),
        (r#"{"keys":"a","zz":1}"#, "Parameter 'zz' is unexpected"),
        (
            r#"{"keys":[{"type":"qcode","data":"a"},{"type":"qcode","data":"a"},{"type":"qcode","data":"nokey"}]}"#,
            "Key 'a' is given twice",
        ),
        (r#"{"hold-time":"5"}"#, "Parameter 'keys' is missing"),
        (
            r#"{"keys":[{"type":"number","data":1.5}]}"#,
            "Invalid parameter type for 'keys[0].data', expected: integer",
        ),
    ];
    for (arguments, desc) in cases {
        let input = format!(r#"{{"execute":"send-key","arguments":{arguments}}}"#);
        assert_eq!(
            run(&mut s, &mock, &input),
            [json!({"error": {"class": "GenericError", "desc": desc}})],
            "{input}"
        );
    }
    let cases = [
        (
            r#"{"device":"kbd"}"#,
            "DeviceNotFound",
            "Device 'kbd' not found",
        ),
        (
            r#"{"head":"x"}"#,
            "GenericError",
            "Invalid parameter type for 'head', expected: integer",
        ),
        (
            r#"{"events":[{"type":"btn"}]}"#,
            "GenericError",
            "Input event type 'btn' is not supported: this machine has only a keyboard",
        ),
        (
            r#"{"events":[{"type":"key","data":{"down":1}}]}"#,
            "GenericError",
            "Invalid parameter type for 'events[0].data.down', expected: boolean",
        ),
    ];
    for (arguments, class, desc) in cases {
        let input = format!(r#"{{"execute":"input-send-event","arguments":{arguments}}}"#);
        assert_eq!(
            run(&mut s, &mock, &input),
            [json!({"error": {"class": class, "desc": desc}})],
            "{input}"
        );
    }
    assert!(mock.log.lock().unwrap().is_empty());
}

/// `human-monitor-command` with `command-line`.
fn hmp(session: &mut QmpSession, mock: &Mock, line: &str) -> Vec<Value> {
    let request = json!({"execute": "human-monitor-command",
                         "arguments": {"command-line": line}});
    run(session, mock, &request.to_string())
}

#[test]
fn human_monitor_info_status_stop_cont() {
    let mock = Mock::default();
    let mut s = ready(&mock);
    assert_eq!(
        hmp(&mut s, &mock, "info status"),
        [json!({"return": "VM status: running\r\n"})]
    );
    assert_eq!(
        hmp(&mut s, &mock, "stop"),
        [json!({"event": "STOP"}), json!({"return": ""})]
    );
    assert_eq!(
        hmp(&mut s, &mock, "info status"),
        [json!({"return": "VM status: paused\r\n"})]
    );
    assert_eq!(
        hmp(&mut s, &mock, "c"),
        [json!({"event": "RESUME"}), json!({"return": ""})]
    );
    assert_eq!(*mock.log.lock().unwrap(), ["stop", "cont"]);
}

#[test]
fn human_monitor_sendkey_goes_out_as_send_key() {
    let mock = Mock::default();
    let mut s = ready(&mock);
    assert_eq!(
        hmp(&mut s, &mock, "sendkey ctrl-alt-delete 50"),
        [json!({"return": ""})]
    );
    assert_eq!(hmp(&mut s, &mock, "sendkey a"), [json!({"return": ""})]);
    assert_eq!(
        *mock.log.lock().unwrap(),
        ["send ctrl-alt-delete 50ms", "send a 100ms"]
    );
    // Errors are the monitor's text, not QMP errors; nothing is sent.
    assert_eq!(
        hmp(&mut s, &mock, "sendkey ctrl-nokey"),
        [json!({"return": "invalid parameter: nokey\r\n"})]
    );
    assert_eq!(mock.log.lock().unwrap().len(), 2);
}

#[test]
fn human_monitor_reset_quit_and_unknown_commands() {
    let mock = Mock {
        resettable: true,
        ..Default::default()
    };
    let mut s = ready(&mock);
    assert_eq!(
        hmp(&mut s, &mock, "frobnicate"),
        [json!({"return": "unknown command: 'frobnicate'\r\n"})]
    );
    assert_eq!(
        hmp(&mut s, &mock, "system_reset"),
        [
            json!({"event": "RESET", "data": {"guest": false, "reason": "host-qmp-system-reset"}}),
            json!({"return": ""})
        ]
    );
    let (out, actions) = feed(
        &mut s,
        &mock,
        br#"{"execute":"human-monitor-command","arguments":{"command-line":"quit"}}"#,
    );
    assert_eq!(
        strip_timestamps(out),
        [
            json!({"event": "SHUTDOWN", "data": {"guest": false, "reason": "host-qmp-quit"}}),
            json!({"return": ""})
        ]
    );
    assert_eq!(actions, [Action::Quit]);
    assert!(s.quit_requested());
}

#[test]
fn human_monitor_arguments_checked_as_qemu() {
    let mock = Mock::default();
    let mut s = ready(&mock);
    let answer = |s: &mut QmpSession, arguments: Value| {
        let request = json!({"execute": "human-monitor-command", "arguments": arguments});
        run(s, &mock, &request.to_string())[0]["error"]["desc"].clone()
    };
    assert_eq!(
        answer(&mut s, json!({})),
        "Parameter 'command-line' is missing"
    );
    assert_eq!(
        answer(&mut s, json!({"command-line": 5})),
        "Invalid parameter type for 'command-line', expected: string"
    );
    assert_eq!(
        answer(
            &mut s,
            json!({"command-line": "info status", "cpu-index": 1})
        ),
        "Parameter 'cpu-index' expects a CPU number"
    );
    assert_eq!(
        hmp_with_cpu(&mut s, &mock),
        [json!({"return": "VM status: running\r\n"})]
    );
}

fn hmp_with_cpu(session: &mut QmpSession, mock: &Mock) -> Vec<Value> {
    let request = json!({"execute": "human-monitor-command",
                         "arguments": {"command-line": "info status", "cpu-index": 0}});
    run(session, mock, &request.to_string())
}

#[test]
fn query_version_has_qemus_shape() {
    let mock = Mock::default();
    let mut s = ready(&mock);
    let answer = run(&mut s, &mock, r#"{"execute":"query-version"}"#);
    let version = &answer[0]["return"];
    let keys: Vec<&String> = version.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["package", "qemu"]);
    let qemu = version["qemu"].as_object().unwrap();
    let mut names: Vec<&String> = qemu.keys().collect();
    names.sort();
    assert_eq!(names, ["major", "micro", "minor"]);
    assert!(qemu.values().all(Value::is_u64), "{version}");
    assert_eq!(
        version["package"],
        format!("asyncos-vmm {}", env!("CARGO_PKG_VERSION"))
    );
    assert_eq!(version, &greeting()["QMP"]["version"]);
}

/// Found by the `qmp` fuzz target: a top-level number or literal split
/// across two reads ("12" then "34", "true" then "x") was taken as two
/// values, so the answers depended on how the socket split the input. A
/// number or literal ends only at the byte after it, as in QEMU's lexer.
#[test]
fn a_number_split_across_reads_is_one_value() {
    let mock = Mock::default();
    let mut split = ready(&mock);
    assert!(
        run(&mut split, &mock, "12").is_empty(),
        "the number may go on"
    );
    let answers = run(&mut split, &mock, "34\n");
    let mut whole = ready(&mock);
    assert_eq!(answers, run(&mut whole, &mock, "1234\n"));
    assert_eq!(answers.len(), 1);
    // Whatever ends the number ends it: a space, a brace, a newline.
    assert_eq!(run(&mut split, &mock, "5 ").len(), 1);
    assert_eq!(
        run(&mut split, &mock, r#"6{"execute":"query-status"}"#).len(),
        2
    );
    // The same for literals: "true" then "x" is the malformed "truex".
    assert!(run(&mut split, &mock, "true").is_empty());
    let answers = run(&mut split, &mock, "x\n");
    assert_eq!(answers, run(&mut whole, &mock, "truex\n"));
    assert!(answers[0]["error"]["desc"]
        .as_str()
        .unwrap()
        .contains("trailing characters"));
}

/// `query-stats` answers as QEMU 7.2 does (checked against it with KVM on
/// this host): results and statistics in reverse order, the vCPU's QOM
/// path, nothing for unknown names or vCPUs, QEMU's errors.
#[test]
fn query_stats_has_qemus_shape() {
    let mock = Mock::default();
    let mut session = ready(&mock);
    let ask = |session: &mut QmpSession, arguments: Value| {
        let line = json!({"execute": "query-stats", "arguments": arguments}).to_string() + "\n";
        run(session, &mock, &line).remove(0)
    };
    let vcpu = "/machine/unattached/device[0]";
    assert_eq!(
        ask(&mut session, json!({"target": "vcpu"})),
        json!({"return": [{"provider": "kvm", "qom-path": vcpu, "stats": [
            {"name": "halt_wait_hist", "value": [1, 2]},
            {"name": "guest_mode", "value": false},
            {"name": "exits", "value": 652},
        ]}]})
    );
    assert_eq!(
        ask(&mut session, json!({"target": "vm"})),
        json!({"return": [{"provider": "kvm", "stats": [{"name": "pages_4k", "value": 7}]}]})
    );
    let two = json!({"target": "vcpu", "providers": [
        {"provider": "kvm", "names": ["exits", "exits"]},
        {"provider": "kvm", "names": ["guest_mode"]},
    ]});
    assert_eq!(
        ask(&mut session, two),
        json!({"return": [
            {"provider": "kvm", "qom-path": vcpu, "stats": [{"name": "guest_mode", "value": false}]},
            {"provider": "kvm", "qom-path": vcpu, "stats": [{"name": "exits", "value": 652}]},
        ]})
    );
    for nothing in [
        json!({"target": "vcpu", "providers": [{"provider": "kvm", "names": ["nope"]}]}),
        json!({"target": "vcpu", "providers": [{"provider": "kvm", "names": []}]}),
        json!({"target": "vcpu", "providers": []}),
        json!({"target": "vcpu", "vcpus": []}),
        json!({"target": "vcpu", "vcpus": ["/machine/unattached/device[1]"]}),
    ] {
        assert_eq!(
            ask(&mut session, nothing.clone()),
            json!({"return": []}),
            "{nothing}"
        );
    }
    assert_eq!(
        ask(
            &mut session,
            json!({"target": "vcpu", "vcpus": [vcpu], "providers": [{"provider": "kvm", "names": ["exits"]}]})
        ),
        json!({"return": [{"provider": "kvm", "qom-path": vcpu, "stats": [{"name": "exits", "value": 652}]}]})
    );
    let error = |desc: &str| json!({"error": {"class": "GenericError", "desc": desc}});
    for (arguments, desc) in [
        (json!({}), "Parameter 'target' is missing"),
        (
            json!({"target": "bogus"}),
            "Parameter 'target' does not accept value 'bogus'",
        ),
        (
            json!({"target": "vcpu", "providers": [{"provider": "bogus"}]}),
            "Parameter 'provider' does not accept value 'bogus'",
        ),
        (
            json!({"target": "vm", "vcpus": ["/nope"]}),
            "Parameter 'vcpus' is unexpected",
        ),
        (
            json!({"target": "vcpu", "extra": 1}),
            "Parameter 'extra' is unexpected",
        ),
    ] {
        assert_eq!(ask(&mut session, arguments), error(desc));
    }
}
