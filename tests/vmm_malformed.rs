//! Malformed inputs through the `vmm` binary: broken kernels, bad
//! command-line values, broken keystroke scripts and QMP garbage. Each is a
//! clear one-line error and a non-zero status (or, for QMP, an error reply
//! with the connection and the guest carrying on), never a panic.
//!
//! The full table of broken ELF files runs at the library level
//! (`vm/boot/malformed.rs`); a few of them go through the binary here.
mod common;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::pvh_elf::PvhElf;
use common::*;
use serde_json::{json, Value};
use shared::{boot, status};

/// Runs `vmm ARGS` (with a timeout, so nothing boots for long); expects
/// status `expected` and, for status 1, exactly one stderr line, which it
/// returns. Never a panic.
fn refused(args: &[&str], expected: i32) -> String {
    let mut command = Command::new(vmm_binary());
    command.args(args);
    if !args.contains(&"--timeout") {
        command.args(["--timeout", "10"]);
    }
    let output = command.output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(expected), "{args:?}: {stderr}");
    assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    assert!(
        !String::from_utf8_lossy(&output.stdout).contains(boot::BANNER),
        "{args:?} booted"
    );
    if expected == status::SETUP_ERROR {
        let lines: Vec<&str> = stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{args:?}: expected one line:\n{stderr}");
        assert!(lines[0].starts_with("vmm: "), "{args:?}: {stderr}");
    }
    stderr.trim_end().to_string()
}

fn write_file(name: &str, bytes: &[u8]) -> PathBuf {
    let path = scratch_path(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

fn kernel(name: &str, bytes: &[u8]) -> String {
    write_file(name, bytes).display().to_string()
}

/// `out 0xf4, al` with al = 3, then `hlt`.
const EXIT_3: &[u8] = &[0xb0, 0x03, 0xe6, 0xf4, 0xf4];

/// A sample of the library table's broken kernels through the binary.
#[test]
fn broken_kernels_are_refused_by_the_binary() {
    let good = PvhElf::new(0x10_0000, EXIT_3).build();
    let patched = |at: usize, bytes: &[u8]| {
        let mut elf = good.clone();
        elf[at..at + bytes.len()].copy_from_slice(bytes);
        elf
    };
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("elf32", patched(4, &[1]), "not a 64-bit ELF"),
        ("aarch64", patched(18, &183u16.to_le_bytes()), "EM_X86_64"),
        ("relocatable", patched(16, &1u16.to_le_bytes()), "ET_EXEC"),
        // Program header 0's p_filesz (offset 64 + 32) past the file's end.
        (
            "filesz-past-file",
            patched(96, &0x100u64.to_le_bytes()),
            "truncated ELF",
        ),
        // Program header 0's p_paddr at the top of the address space.
        (
            "wraps",
            patched(88, &(u64::MAX - 1).to_le_bytes()),
            "wraps around the address space",
        ),
        // p_memsz of 2^62.
        (
            "huge",
            patched(104, &(1u64 << 62).to_le_bytes()),
            "does not fit in memory",
        ),
        (
            "phoff",
            patched(32, &u64::MAX.to_le_bytes()),
            "truncated ELF",
        ),
        (
            "at-boot-data",
            PvhElf::new(0x6000, EXIT_3).build(),
            "overlaps the boot data at 0x6000",
        ),
        (
            "entry-outside",
            PvhElf::new(0x10_0000, EXIT_3)
                .without_pvh_note()
                .note(b"Xen", 18, &0x20_0000u32.to_le_bytes())
                .build(),
            "entry point 0x200000 is outside every loadable segment",
        ),
    ];
    // The unbroken kernel runs (exit 3), so each case fails for its own reason.
    require_kvm();
    let path = kernel("good.elf", &good);
    let output = Command::new(vmm_binary())
        .args(["--kernel", &path, "--timeout", "10"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(3));
    for (name, elf, expected) in cases {
        let path = kernel(&format!("{name}.elf"), &elf);
        let message = refused(&["--kernel", &path], status::SETUP_ERROR);
        assert!(
            message.starts_with(&format!("vmm: {path}: ")) && message.contains(expected),
            "{name}: {message}"
        );
    }
}

/// Bad values of every flag that takes one: the flag's own one-line error
/// (status 1), or clap's usage error (status 2) for what is not a value of
/// the right kind at all.
#[test]
fn bad_command_line_values_are_refused() {
    let long_cmdline = "x".repeat(shared::boot::CMDLINE_MAX + 1);
    let not_a_socket = format!("unix:{}", write_file("plain-file", b"").display());
    let missing = format!("unix:{}", scratch_path("missing/dir/q.sock").display());
    let setup_errors: Vec<(Vec<&str>, &str)> = vec![
        (vec!["--memory", "0"], "--memory: 0 is out of range"),
        (vec!["--memory", "2"], "--memory: 2 is out of range"),
        (vec!["--memory", "3073"], "--memory: 3073 is out of range"),
        (
            vec!["--memory", "99999999999999"],
            "--memory: 99999999999999 is out of range",
        ),
        (
            vec!["--timeout", "0"],
            "--timeout 0: expected a positive number",
        ),
        (
            vec!["--timeout", "inf"],
            "--timeout inf: expected a positive number",
        ),
        (
            vec!["--timeout", "NaN"],
            "--timeout NaN: expected a positive number",
        ),
        (vec!["--timeout", "1e300"], "expected a positive number"),
        (
            vec!["--cmdline", &long_cmdline],
            "the kernel command line is 4096 bytes long; the limit is 4095",
        ),
        (
            vec!["--qmp", &not_a_socket],
            "path exists and is not a socket",
        ),
        (vec!["--qmp", &missing], "cannot listen"),
        (vec!["--keys", "/nonexistent/script.keys"], "cannot read"),
        (
            vec!["--kernel", "/nonexistent/kernel.elf"],
            "cannot read kernel",
        ),
        (
            vec!["--interactive"],
            "--interactive needs stdin to be a terminal",
        ),
        (
            vec!["--export-guest", "/nonexistent/dir/guest.elf"],
            "cannot write /nonexistent/dir/guest.elf",
        ),
    ];
    for (args, expected) in setup_errors {
        let message = refused(&args, status::SETUP_ERROR);
        assert!(message.contains(expected), "{args:?}: {message}");
    }
    // Rejected by the argument parser: usage errors (status 2) that
    // still say what is wrong.
    let usage_errors: Vec<(Vec<&str>, &str)> = vec![
        (vec!["--memory", "lots"], "invalid value 'lots'"),
        (vec!["--memory", "1.5"], "invalid value '1.5'"),
        (vec!["--timeout", "soon"], "invalid value 'soon'"),
        (vec!["--memory"], "a value is required"),
        (
            vec!["--no-such-flag"],
            "unexpected argument '--no-such-flag'",
        ),
        (
            vec!["--qmp", "tcp:localhost:4444"],
            "only unix:PATH sockets are supported",
        ),
        (vec!["--qmp", "unix:"], "needs a socket path"),
        (
            vec!["--qmp", "unix:/tmp/x.sock,wait=on"],
            "option 'wait=on' is not supported",
        ),
    ];
    for (args, expected) in usage_errors {
        let message = refused(&args, 2);
        assert!(message.contains(expected), "{args:?}: {message}");
    }
}

/// Broken keystroke scripts: `FILE:LINE: message`, status 1, before boot.
#[test]
fn broken_scripts_are_refused_with_their_line() {
    let cases = [
        ("frobnicate now\n", 1, "unknown"),
        ("expect \"> \"\nkey shfit-a\n", 2, "shift"),
        ("wait forever\n", 1, "duration"),
        ("expect \"unterminated\n", 1, "quote"),
        ("type caf\u{e9}\n", 1, ""),
        ("\n\n\nkey\n", 4, ""),
        ("press nosuchkey\n", 1, "nosuchkey"),
        ("type \\q\n", 1, ""),
    ];
    for (text, line, expected) in cases {
        let path = write_file("broken.keys", text.as_bytes());
        let path = path.display().to_string();
        let message = refused(&["--keys", &path], status::SETUP_ERROR);
        assert!(
            message.starts_with(&format!("vmm: {path}:{line}: ")) && message.contains(expected),
            "{text:?}: {message}"
        );
    }
    // Not UTF-8 at all.
    let path = write_file("binary.keys", &[0xff, 0xfe, 0x00, 0x80, b'\n']);
    let path = path.display().to_string();
    let message = refused(&["--keys", &path], status::SETUP_ERROR);
    assert!(message.starts_with(&format!("vmm: {path}")), "{message}");
    // `--type` text with no key on a US keyboard.
    let message = refused(&["--type", "\u{e9}"], status::SETUP_ERROR);
    assert!(message.starts_with("vmm: --type"), "{message}");
}

/// A QMP client on the VMM's socket.
struct Client {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl Client {
    fn connect(socket: &Path) -> Client {
        let stream = UnixStream::connect(socket).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        let mut client = Client {
            reader: BufReader::new(stream.try_clone().unwrap()),
            writer: stream,
        };
        assert!(client.read().get("QMP").is_some());
        client
    }

    fn read(&mut self) -> Value {
        let mut line = String::new();
        let n = self.reader.read_line(&mut line).unwrap();
        assert!(n > 0, "the VMM closed the QMP connection");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("bad JSON {line:?}: {e}"))
    }

    fn send(&mut self, bytes: &[u8]) -> Value {
        self.writer.write_all(bytes).unwrap();
        self.read()
    }
}

/// Starts the VMM with a QMP socket and waits for the guest's prompt.
fn qmp_vmm() -> (Machine, PathBuf) {
    require_kvm();
    let socket = scratch_path("malformed-qmp.sock");
    let mut command = Command::new(vmm_binary());
    command
        .arg("--qmp")
        .arg(format!("unix:{}", socket.display()))
        .args(["--no-interactive", "--timeout", "120"]);
    let vm = Machine::spawn(command);
    vm.stdout.expect(boot::PROMPT, Duration::from_secs(30));
    (vm, socket)
}

fn error_class(reply: &Value) -> &str {
    reply["error"]["class"]
        .as_str()
        .unwrap_or_else(|| panic!("not an error reply: {reply}"))
}

/// Wrong types, deep nesting, a message over the 1 MiB limit and invalid
/// JSON each get an error reply; half a message from a client that then
/// disconnects is dropped; the session and the guest carry on.
#[test]
fn qmp_garbage_gets_error_replies() {
    let (mut vm, socket) = qmp_vmm();
    let mut client = Client::connect(&socket);
    assert_eq!(
        client.send(b"{\"execute\":\"qmp_capabilities\"}\n")["return"],
        json!({})
    );
    let wrong_types: [&[u8]; 10] = [
        b"42\n",
        b"\"execute\"\n",
        b"[\"execute\", \"quit\"]\n",
        b"null\n",
        b"{\"execute\": 5}\n",
        b"{\"execute\": \"send-key\", \"arguments\": {\"keys\": \"a\"}}\n",
        b"{\"execute\": \"send-key\", \"arguments\": {\"keys\": [{\"type\": \"qcode\", \"data\": 17}]}}\n",
        b"{\"execute\": \"send-key\", \"arguments\": {\"keys\": [{\"type\": \"qcode\", \"data\": \"a\"}], \"hold-time\": -1}}\n",
        b"{\"execute\": \"input-send-event\", \"arguments\": {\"events\": [{\"type\": \"key\", \"data\": {\"down\": \"yes\"}}]}}\n",
        b"{\"execute\": \"query-status\", \"arguments\": [1, 2]}\n",
    ];
    for request in wrong_types {
        let reply = client.send(request);
        assert_eq!(
            error_class(&reply),
            "GenericError",
            "{}: {reply}",
            String::from_utf8_lossy(request)
        );
    }
    // Nesting far beyond any parser's recursion limit, never closed.
    let deep = "[".repeat(100_000) + "\n";
    let reply = client.send(deep.as_bytes());
    assert_eq!(error_class(&reply), "GenericError", "{reply}");
    // Closed, too.
    let deep = "[".repeat(50_000) + &"]".repeat(50_000) + "\n";
    let reply = client.send(deep.as_bytes());
    assert_eq!(error_class(&reply), "GenericError", "{reply}");
    // 2 MiB in one message: refused once it passes 1 MiB.
    let huge = format!(
        "{{\"execute\": \"query-status\", \"id\": \"{}\"}}\n",
        "x".repeat(2 << 20)
    );
    let reply = client.send(huge.as_bytes());
    assert!(
        reply["error"]["desc"]
            .as_str()
            .is_some_and(|d| d.contains("exceeds")),
        "{reply}"
    );
    // Invalid JSON: a parse error each, and the session goes on.
    let invalid: [&[u8]; 4] = [
        b"{\"execute\": }\n",
        b"{\"execute\" \"quit\"}\n",
        b"{'execute': 'quit'}\n",
        b"\"unterminated \\u12\"\n",
    ];
    for request in invalid {
        let reply = client.send(request);
        assert_eq!(
            error_class(&reply),
            "GenericError",
            "{}: {reply}",
            String::from_utf8_lossy(request)
        );
    }
    // Half a message, then the client goes away: nothing of it is run, and
    // the next client gets a fresh session.
    drop(client);
    let mut half = Client::connect(&socket);
    half.send(b"{\"execute\":\"qmp_capabilities\"}\n");
    half.writer.write_all(b"{\"execute\": \"qu").unwrap();
    drop(half);
    let mut client = Client::connect(&socket);
    assert_eq!(
        client.send(b"{\"execute\":\"qmp_capabilities\"}\n")["return"],
        json!({})
    );
    // The session still works, and so does the guest.
    let reply = client.send(b"{\"execute\": \"query-status\", \"id\": 7}\n");
    assert_eq!(reply["return"]["running"], true, "{reply}");
    assert_eq!(reply["id"], 7);
    let keys = ["e", "x", "i", "t", "spc", "6", "ret"].map(|k| json!({"type": "qcode", "data": k}));
    for key in keys {
        let request = json!({"execute": "send-key", "arguments": {"keys": [key], "hold-time": 1}});
        let reply = client.send(format!("{request}\n").as_bytes());
        assert_eq!(reply["return"], json!({}), "{reply}");
    }
    let status = vm.wait(Duration::from_secs(30));
    assert_eq!(status.code(), Some(6), "{}", vm.stderr.text());
    assert!(
        !vm.stderr.text().contains("panicked"),
        "{}",
        vm.stderr.text()
    );
}

/// A client that sends commands and never reads its replies is dropped
/// after the documented 5 s write timeout; the next client is served and
/// the guest was never held up.
#[test]
fn qmp_client_that_never_reads_is_dropped() {
    let (mut vm, socket) = qmp_vmm();
    let stuck = UnixStream::connect(&socket).unwrap();
    stuck
        .set_write_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut writer = stuck.try_clone().unwrap();
    // Each `query-commands` reply is about 1 KiB: far more than the socket
    // buffers hold, so the server's writes block.
    let request = b"{\"execute\":\"qmp_capabilities\"}\n".to_vec();
    let _ = writer.write_all(&request);
    let many = "{\"execute\":\"query-commands\"}\n".repeat(20_000);
    let flood = std::thread::spawn(move || {
        // Ends with an error once the VMM drops the connection.
        let _ = writer.write_all(many.as_bytes());
    });
    // The server is stuck writing to the first client until its write
    // timeout drops it; then the second client is served.
    let started = std::time::Instant::now();
    let mut client = Client::connect(&socket);
    let waited = started.elapsed();
    assert!(
        waited < Duration::from_secs(15),
        "the second client waited {waited:?}"
    );
    assert_eq!(
        client.send(b"{\"execute\":\"qmp_capabilities\"}\n")["return"],
        json!({})
    );
    assert_eq!(
        client.send(b"{\"execute\":\"query-status\"}\n")["return"]["running"],
        true
    );
    let _ = client.send(b"{\"execute\":\"quit\"}\n");
    let status = vm.wait(Duration::from_secs(30));
    assert_eq!(status.code(), Some(0), "{}", vm.stderr.text());
    drop(stuck);
    let _ = flood.join();
}
