//! `vmm keys`: keystroke scripts run against a machine through its QMP
//! socket, with `expect` on its serial output: QEMU (`pc`, TCG) with the
//! serial output on a socket or in a file, and our VMM through its `--qmp`
//! with COM1 captured in a file. Statuses and messages as `vmm --keys`.
mod common;

use std::io::Write;
use std::os::unix::net::UnixListener;
use std::process::Command;
use std::time::{Duration, Instant};

use common::keys::{script_file, Serial, Target};
use common::*;
use shared::exit::qemu_exit_status;

const HELLO: &str = "expect \"> \"\ntype echo Hello, World!\\n\nexpect \"\\r\\nHello, World!\"\nkey ctrl-c\ntype exit 3\\n\n";

/// The script types, expects and ends with `exit 3`: `vmm keys` succeeds
/// and QEMU exits with the guest's value.
fn hello_in_qemu(serial: Serial) {
    let mut qemu = Target::qemu(serial);
    let script = script_file("hello.keys", HELLO);
    let (status, stderr) = qemu.keys(&script, &[]);
    assert_eq!(status, 0, "vmm keys: {stderr}");
    assert_eq!(stderr, "");
    let exit = qemu.vm.wait(Duration::from_secs(30));
    assert_eq!(exit.code(), Some(qemu_exit_status(3)));
}

#[test]
fn qemu_with_serial_socket_runs_a_script_to_its_exit() {
    hello_in_qemu(Serial::Socket);
}

#[test]
fn qemu_with_serial_file_runs_a_script_to_its_exit() {
    hello_in_qemu(Serial::File);
}

/// An `expect` pending when QEMU exits: 126 and one line naming it.
#[test]
fn qemu_exit_with_an_expect_pending_fails_with_126() {
    let mut qemu = Target::qemu(Serial::Socket);
    let script = script_file(
        "pending.keys",
        "expect \"> \"\ntype exit 3\\n\nexpect done 60s\n",
    );
    let start = Instant::now();
    let (status, stderr) = qemu.keys(&script, &[]);
    assert_eq!(status, 126, "{stderr}");
    // QEMU leaves through isa-debug-exit at once, without a SHUTDOWN event.
    assert_eq!(
        stderr,
        format!(
            "vmm: {}:3: expect \"done\": the machine closed its QMP connection first\n",
            script.display()
        )
    );
    // When QEMU exits, not at the expect's own timeout.
    let elapsed = start.elapsed();
    assert!(elapsed < Duration::from_secs(30), "{elapsed:?}");
    assert_eq!(
        qemu.vm.wait(Duration::from_secs(30)).code(),
        Some(qemu_exit_status(3))
    );
}

/// A guest reset under `-no-reboot`: QEMU's `SHUTDOWN` event names it.
#[test]
fn qemu_shutdown_event_names_the_reason() {
    let mut qemu = Target::qemu(Serial::Socket);
    let script = script_file(
        "reset.keys",
        "expect \"> \"\nkey ctrl-alt-delete\nexpect \"> \" 60s\n",
    );
    let (status, stderr) = qemu.keys(&script, &[]);
    assert_eq!(status, 126, "{stderr}");
    assert_eq!(
        stderr,
        format!(
            "vmm: {}:3: expect \"> \": the machine shut down (QMP SHUTDOWN, guest-reset) first\n",
            script.display()
        )
    );
    assert_eq!(qemu.vm.wait(Duration::from_secs(30)).code(), Some(0));
}

/// An `expect` that times out: 126, the line, the tail of the output.
#[test]
fn qemu_expect_timeout_fails_with_126_and_the_output() {
    let qemu = Target::qemu(Serial::Socket);
    let script = script_file(
        "timeout.keys",
        "expect \"> \"\ntype echo abc\\n\nexpect xyz 3s\n",
    );
    let (status, stderr) = qemu.keys(&script, &[]);
    assert_eq!(status, 126, "{stderr}");
    let head = format!(
        "vmm: {}:3: expect \"xyz\" timed out after 3s; last serial output:\n",
        script.display()
    );
    assert!(stderr.starts_with(&head), "{stderr}");
    assert!(stderr.contains("abc\r\n> "), "{stderr}");
}

/// `--timeout`: the run fails with 126 when it expires, the machine runs on.
#[test]
fn timeout_fails_a_pending_line_with_126() {
    let ours = Target::ours(&[]);
    let script = script_file("forever.keys", "expect \"> \"\nwait 60s\n");
    let start = Instant::now();
    let (status, stderr) = ours.keys(&script, &["--timeout", "1"]);
    assert_eq!(status, 126, "{stderr}");
    assert_eq!(
        stderr,
        format!(
            "vmm: {}:2: wait 60s: --timeout expired first\n",
            script.display()
        )
    );
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "{:?}",
        start.elapsed()
    );
}

/// The same script against our VMM through its `--qmp`: the VMM exits with
/// the guest's value.
#[test]
fn our_vmm_through_its_qmp_runs_the_same_script() {
    let mut ours = Target::ours(&[]);
    let script = script_file("hello.keys", HELLO);
    let (status, stderr) = ours.keys(&script, &[]);
    assert_eq!(status, 0, "vmm keys: {stderr}");
    let exit = ours.vm.wait(Duration::from_secs(30));
    assert_eq!(exit.code(), Some(3), "{}", ours.vm.stderr.text());
    assert!(ours
        .transcript()
        .contains("\r\nHello, World!\r\n> ^C\r\n> exit 3"));
}

/// Our VMM sends `SHUTDOWN` when the guest exits: the reason is named.
/// (The script comes from stdin.)
#[test]
fn our_vmm_shutdown_event_fails_a_pending_expect() {
    let mut ours = Target::ours(&[]);
    let (status, stderr) = ours.keys_stdin("expect \"> \"\ntype exit 5\\n\nexpect done\n");
    assert_eq!(status, 126, "{stderr}");
    assert_eq!(
        stderr,
        "vmm: <stdin>:3: expect \"done\": the machine shut down (QMP SHUTDOWN, guest-shutdown) first\n"
    );
    assert_eq!(ours.vm.wait(Duration::from_secs(30)).code(), Some(5));
}

/// `vmm keys` with a command-line error, a bad script, or nothing QMP at
/// the socket: one line, status 1 (2 for clap's usage errors).
#[test]
fn setup_errors_are_one_line_with_status_1() {
    let keys = |args: &[&str]| {
        let output = Command::new(vmm_binary())
            .arg("keys")
            .args(args)
            .output()
            .unwrap();
        (
            output.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    let good = script_file("ok.keys", "expect x\n");
    let good = good.to_str().unwrap();
    let missing = scratch_path("missing.sock");
    let missing = missing.to_str().unwrap();
    let file = format!("file:{good}");

    let qmp = format!("unix:{missing}");
    let (status, stderr) = keys(&["--qmp", &qmp, "--serial", &file, good]);
    assert_eq!(status, 1);
    assert_eq!(
        stderr,
        format!(
            "vmm: QMP socket {missing}: No such file or directory (os error 2) \
             (is the machine running with -qmp unix:{missing},server=on,wait=off?)\n"
        )
    );

    let bad = script_file("bad.keys", "expect \"> \"\ntype é\n");
    let (status, stderr) = keys(&["--qmp", &qmp, "--serial", &file, bad.to_str().unwrap()]);
    assert_eq!(status, 1);
    assert_eq!(
        stderr,
        format!(
            "vmm: {}:2: character 'é' cannot be typed on a US keyboard\n",
            bad.display()
        )
    );

    let (status, stderr) = keys(&["--qmp", &qmp, "--serial", &file, "--gap", "-1", good]);
    assert_eq!(
        (status, stderr.as_str()),
        (
            1,
            "vmm: --gap -1: expected a number of milliseconds from 0 to 1000\n"
        )
    );

    let (status, stderr) = keys(&["--qmp", "tcp:localhost:4444", "--serial", &file, good]);
    assert_eq!(status, 2, "{stderr}");

    // Something that is not QMP answers on the socket.
    let path = scratch_path("not-qmp.sock");
    let listener = UnixListener::bind(&path).unwrap();
    let server = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let _ = stream.write_all(b"SSH-2.0-OpenSSH_9.2\r\n");
    });
    let qmp = format!("unix:{}", path.display());
    let (status, stderr) = keys(&["--qmp", &qmp, "--serial", &file, good]);
    server.join().unwrap();
    assert_eq!(status, 1);
    assert_eq!(
        stderr,
        format!(
            "vmm: QMP socket {}: not a QMP server: expected a greeting {{\"QMP\": {{\"version\": \
             {{\"qemu\": ...}}, \"capabilities\": [...]}}}}, got \"SSH-2.0-OpenSSH_9.2\"\n",
            path.display()
        )
    );
}
