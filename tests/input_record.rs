//! `--record`: a session typed through a pseudo-terminal is written as a
//! keystroke script; replayed with `--keys`, it gives the same transcript.
mod common;

use std::fs::File;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::pty::openpty;
use common::*;

/// The guest's output from its first prompt on, without carriage returns
/// (the terminal adds its own before every newline).
fn transcript(output: &str) -> String {
    let start = output
        .find(shared::boot::PROMPT)
        .unwrap_or_else(|| panic!("no prompt in:\n{output}"));
    output[start..].replace('\r', "")
}

#[test]
fn recorded_session_replays_to_the_same_transcript() {
    require_kvm();
    let record = scratch_path("session.keys");
    let (master, slave) = openpty();
    let mut child = Command::new(vmm_binary())
        .arg("--record")
        .arg(&record)
        .args(["--timeout", "60"])
        .stdin(Stdio::from(slave.try_clone().unwrap()))
        .stdout(Stdio::from(slave))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = Output::collect(child.stderr.take().unwrap());
    let mut tty = File::from(master.try_clone().unwrap());
    let output = Output::collect(File::from(master));
    output.expect(shared::boot::PROMPT, Duration::from_secs(30));
    // Symbols and quotes, an arrow key (the guest's line editor ignores it,
    // the recording keeps it), Ctrl+C, a pause long enough to become a
    // `wait`.
    tty.write_all(b"echo \"Q\" a\\b ~!\r").unwrap();
    output.expect("\n\"Q\" a\\b ~!", Duration::from_secs(20));
    tty.write_all(b"echo xz\x1b[Dy\r").unwrap();
    output.expect("\nxzy", Duration::from_secs(20));
    tty.write_all(b"echo gone\x03").unwrap();
    output.expect("^C", Duration::from_secs(20));
    // The pause is the input under test, not a wait for a result.
    std::thread::sleep(Duration::from_millis(700));
    tty.write_all(b"exit 7\r").unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "vmm did not exit");
        std::thread::sleep(Duration::from_millis(10));
    };
    stderr.wait_closed(Duration::from_secs(5));
    assert_eq!(status.code(), Some(7), "stderr:\n{}", stderr.text());
    // The session's end is in before the process exited (the pty has no
    // end of file while the master is open): wait for it.
    output.expect("exit 7", Duration::from_secs(5));
    let recorded = output.text();

    let script = std::fs::read_to_string(&record).unwrap();
    let lines: Vec<&str> = script.lines().collect();
    assert!(
        lines[0].starts_with("# recorded by vmm --record"),
        "{script}"
    );
    for line in [
        "type \"echo \\\"Q\\\" a\\\\b ~!\\n\"",
        "key left",
        "key ctrl-c",
        "type \"exit 7\\n\"",
    ] {
        assert!(lines.contains(&line), "{line} not in:\n{script}");
    }
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("wait ") && l.ends_with("ms")),
        "{script}"
    );

    let mut command = Command::new(vmm_binary());
    command
        .args(["--no-interactive", "--timeout", "60", "--keys"])
        .arg(&record);
    let mut replay = Machine::spawn(command);
    let code = replay.wait(Duration::from_secs(60)).code();
    assert_eq!(code, Some(7), "stderr:\n{}", replay.stderr.text());
    assert_eq!(
        transcript(&replay.stdout.text()),
        transcript(&recorded),
        "script:\n{script}"
    );
}
