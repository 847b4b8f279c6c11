//! Our QMP socket driven by a real third-party client (the `qemu.qmp`
//! Python package), QMP robustness over the socket, and interactive mode
//! through a pseudo-terminal.
mod common;

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::pty::openpty;
use common::*;

fn qmp_socket_vmm() -> (Machine, std::path::PathBuf) {
    require_kvm();
    let socket = scratch_path("vmm-qmp.sock");
    let mut command = Command::new(vmm_binary());
    command
        .arg("--qmp")
        .arg(format!("unix:{},server=on,wait=off", socket.display()))
        .args(["--timeout", "60"]);
    let vm = Machine::spawn(command);
    vm.stdout
        .expect(shared::boot::PROMPT, Duration::from_secs(20));
    (vm, socket)
}

/// The `qemu.qmp` package (PyPI) types into the guest with `send-key`,
/// checks errors, stop/cont events, and quits. A missing package fails.
#[test]
fn qemu_qmp_python_client_types_and_quits() {
    let (mut vm, socket) = qmp_socket_vmm();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/qmp_client.py");
    let mut python = Command::new("python3")
        .arg(&script)
        .arg(&socket)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 is required for this test");
    let mut out = BufReader::new(python.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    if line.trim() != "SENT" {
        let mut err = String::new();
        python
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        panic!(
            "qmp_client.py failed (pip install -r tests/requirements.txt):\n{line}{err}\nvmm stderr:\n{}",
            vm.stderr.text()
        );
    }
    vm.stdout.expect("\r\nqmp ok\r\n", Duration::from_secs(10));
    // shift + number 0x1e ('a') gives 'A', then Backspace erases it.
    vm.stdout.expect("A\x08 \x08", Duration::from_secs(10));
    python.stdin.take().unwrap().write_all(b"go\n").unwrap();
    let status = vm.wait(Duration::from_secs(20));
    let mut rest = String::new();
    out.read_to_string(&mut rest).unwrap();
    let python_status = python.wait().unwrap();
    let mut err = String::new();
    python
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(python_status.success(), "qmp_client.py: {rest}{err}");
    assert_eq!(rest.trim(), "DONE");
    assert_eq!(status.code(), Some(0), "vmm stderr:\n{}", vm.stderr.text());
    assert!(!socket.exists(), "the socket file is removed on exit");
}

fn read_json(reader: &mut BufReader<UnixStream>) -> serde_json::Value {
    let mut line = String::new();
    reader.read_line(&mut line).expect("read QMP");
    serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line:?}"))
}

/// Malformed JSON, commands before negotiation and unknown commands are
/// answered with errors; a client vanishing mid-command changes nothing; the
/// next client gets a fresh session; the VM keeps running throughout.
#[test]
fn qmp_errors_and_clients_in_turn() {
    let (mut vm, socket) = qmp_socket_vmm();
    {
        let stream = UnixStream::connect(&socket).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut writer = stream;
        assert!(read_json(&mut reader)["QMP"]["version"]["qemu"].is_object());
        writer
            .write_all(b"{\"execute\":\"query-status\"}\n")
            .unwrap();
        assert_eq!(read_json(&mut reader)["error"]["class"], "CommandNotFound");
        writer
            .write_all(b"{\"execute\":\"qmp_capabilities\",\"id\":1}\n")
            .unwrap();
        assert_eq!(
            read_json(&mut reader),
            serde_json::json!({"return": {}, "id": 1})
        );
        writer.write_all(b"{this is not json\n").unwrap();
        assert_eq!(read_json(&mut reader)["error"]["class"], "GenericError");
        writer
            .write_all(b"{\"execute\":\"nosuch\",\"id\":\"x\"}\n")
            .unwrap();
        assert_eq!(
            read_json(&mut reader),
            serde_json::json!({"error": {"class": "CommandNotFound", "desc": "The command nosuch has not been found"}, "id": "x"})
        );
        // Half a command, then the client disappears.
        writer.write_all(b"{\"execute\":\"qu").unwrap();
    }
    // A second client: fresh greeting and session; the guest still answers.
    let stream = UnixStream::connect(&socket).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    assert!(read_json(&mut reader).get("QMP").is_some());
    writer
        .write_all(b"{\"execute\":\"qmp_capabilities\"}{\"execute\":\"query-status\"}")
        .unwrap();
    assert_eq!(read_json(&mut reader)["return"], serde_json::json!({}));
    assert_eq!(read_json(&mut reader)["return"]["running"], true);
    let keys: Vec<serde_json::Value> = ["e", "x", "i", "t", "spc", "4", "ret"]
        .iter()
        .map(|k| serde_json::json!({"type": "key", "data": {"down": true, "key": {"type": "qcode", "data": k}}}))
        .collect();
    for key in keys {
        let mut up = key.clone();
        up["data"]["down"] = false.into();
        let request =
            serde_json::json!({"execute": "input-send-event", "arguments": {"events": [key, up]}});
        writer.write_all(request.to_string().as_bytes()).unwrap();
        assert_eq!(read_json(&mut reader)["return"], serde_json::json!({}));
    }
    let status = vm.wait(Duration::from_secs(20));
    assert_eq!(status.code(), Some(4), "stdout:\n{}", vm.stdout.text());
    // The guest's exit is announced to the connected client.
    let event = read_json(&mut reader);
    assert_eq!(event["event"], "SHUTDOWN");
    assert_eq!(
        event["data"],
        serde_json::json!({"guest": true, "reason": "guest-shutdown"})
    );
}

fn termios(fd: &OwnedFd) -> libc::termios {
    // SAFETY: termios is plain data, filled by tcgetattr.
    let mut t: libc::termios = unsafe { std::mem::zeroed() };
    // SAFETY: valid fd and pointer.
    assert_eq!(unsafe { libc::tcgetattr(fd.as_raw_fd(), &mut t) }, 0);
    t
}

fn same_termios(a: &libc::termios, b: &libc::termios) -> bool {
    a.c_iflag == b.c_iflag
        && a.c_oflag == b.c_oflag
        && a.c_cflag == b.c_cflag
        && a.c_lflag == b.c_lflag
        && a.c_cc == b.c_cc
}

/// The VMM on a pseudo-terminal (interactive by default).
fn interactive_vmm() -> (std::process::Child, File, Output, OwnedFd, libc::termios) {
    require_kvm();
    let (master, slave) = openpty();
    let before = termios(&slave);
    let child = Command::new(vmm_binary())
        .args(["--timeout", "60"])
        .stdin(Stdio::from(slave.try_clone().unwrap()))
        .stdout(Stdio::from(slave.try_clone().unwrap()))
        .stderr(Stdio::from(slave.try_clone().unwrap()))
        .spawn()
        .unwrap();
    let writer = File::from(master.try_clone().unwrap());
    let output = Output::collect(File::from(master));
    (child, writer, output, slave, before)
}

fn wait_child(child: &mut std::process::Child, timeout: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("vmm did not exit");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Type through the terminal, see the echo, quit with Ctrl+A X; the
/// terminal settings are the same afterwards.
#[test]
fn interactive_terminal_types_and_quits_with_ctrl_a_x() {
    let (mut child, mut tty, output, slave, before) = interactive_vmm();
    output.expect(shared::boot::PROMPT, Duration::from_secs(20));
    let raw = termios(&slave);
    assert!(
        !same_termios(&before, &raw),
        "the terminal is raw while the VMM runs"
    );
    assert_eq!(raw.c_lflag & (libc::ECHO | libc::ICANON | libc::ISIG), 0);
    // Capitals, symbols, an arrow (ignored by the shell), Backspace (DEL).
    tty.write_all(b"echo Pty, ok!\x1b[Dx\x7f\r").unwrap();
    // (The terminal keeps output post-processing, so the guest's \r\n shows as \r\r\n.)
    output.expect("\nPty, ok!\r", Duration::from_secs(10));
    // Ctrl+C reaches the guest instead of killing the VMM.
    tty.write_all(b"echo gone\x03").unwrap();
    output.expect("^C", Duration::from_secs(10));
    tty.write_all(b"\x01x").unwrap();
    let status = wait_child(&mut child, Duration::from_secs(10));
    assert_eq!(status.code(), Some(0));
    assert!(
        same_termios(&before, &termios(&slave)),
        "terminal restored after Ctrl+A X"
    );
}

/// SIGTERM while interactive: the terminal is restored too.
#[test]
fn interactive_terminal_restored_on_sigterm() {
    let (mut child, _tty, output, slave, before) = interactive_vmm();
    output.expect(shared::boot::PROMPT, Duration::from_secs(20));
    assert!(!same_termios(&before, &termios(&slave)));
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    let status = wait_child(&mut child, Duration::from_secs(10));
    assert!(!status.success());
    assert!(
        same_termios(&before, &termios(&slave)),
        "terminal restored after SIGTERM"
    );
}
