//! Stdin that is not a terminal is typed into the guest; `--keys -` on a
//! terminal says it reads the script from there; a VMM in the background of
//! its terminal (`vmm &`) leaves the terminal alone instead of stopping.
mod common;

use std::fs::File;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::pty::openpty;
use common::*;

/// Runs the VMM with `input` on a pipe as stdin (closed after it).
fn piped(input: &[u8], args: &[&str]) -> (Option<i32>, String, String) {
    require_kvm();
    let mut command = Command::new(vmm_binary());
    command.args(args);
    let mut vm = Machine::spawn(command);
    let mut stdin = vm.stdin.take().unwrap();
    stdin.write_all(input).unwrap();
    drop(stdin);
    let code = vm.wait(Duration::from_secs(60)).code();
    (code, vm.stdout.text(), vm.stderr.text())
}

#[test]
fn piped_text_is_typed_and_the_guest_runs_on_after_its_end() {
    // The guest's exit status comes from the typed text.
    let (code, stdout, stderr) = piped(b"echo Piped, \"ok\"!\r\nexit 3\n", &["--timeout", "60"]);
    assert_eq!(code, Some(3), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stdout.contains("\r\nPiped, \"ok\"!\r\n"), "{stdout}");
    // End of input does not stop the guest: `--timeout` does, later.
    let (code, stdout, stderr) = piped(b"echo still here\n", &["--timeout", "2"]);
    assert_eq!(code, Some(shared::status::TIMEOUT), "stderr:\n{stderr}");
    assert!(stdout.contains("\r\nstill here\r\n"), "{stdout}");
}

#[test]
fn piped_untypeable_characters_are_skipped_and_named() {
    let (code, stdout, stderr) =
        piped("echo h\u{e9}llo\nexit 4\n".as_bytes(), &["--timeout", "60"]);
    assert_eq!(code, Some(4), "stderr:\n{stderr}");
    assert!(stdout.contains("\r\nhllo\r\n"), "{stdout}");
    assert!(
        stderr.contains("vmm: stdin: character '\u{e9}' cannot be typed on a US keyboard; skipped"),
        "{stderr}"
    );
}

#[test]
fn piped_stdin_is_not_typed_with_other_sources_or_no_interactive() {
    // `--type` is the input; the pipe's `exit 9` is not typed.
    let (code, _, stderr) = piped(b"exit 9\n", &["--timeout", "60", "--type", "exit 5\\n"]);
    assert_eq!(code, Some(5), "stderr:\n{stderr}");
    let (code, _, stderr) = piped(b"exit 9\n", &["--no-interactive", "--timeout", "2"]);
    assert_eq!(code, Some(shared::status::TIMEOUT), "stderr:\n{stderr}");
}

fn wait_exit(child: &mut std::process::Child, timeout: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("vmm did not exit within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn keys_from_a_terminal_stdin_says_so() {
    require_kvm();
    let (master, slave) = openpty();
    let mut child = Command::new(vmm_binary())
        .args(["--keys", "-", "--timeout", "60"])
        .stdin(Stdio::from(slave.try_clone().unwrap()))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(slave);
    let stderr = Output::collect(child.stderr.take().unwrap());
    stderr.expect(
        "vmm: reading the keystroke script from stdin (the terminal); end it with Ctrl+D\n",
        Duration::from_secs(20),
    );
    // The script, then end of file (Ctrl+D at the start of a line).
    let mut tty = File::from(master);
    tty.write_all(b"type exit 6\\n\n\x04").unwrap();
    let status = wait_exit(&mut child, Duration::from_secs(60));
    assert_eq!(status.code(), Some(6), "stderr:\n{}", stderr.text());
}

/// `vmm &` from an interactive shell: the VMM is not in its terminal's
/// foreground job, so it does not take the terminal (which would stop it
/// with SIGTTOU), says so, and runs to its end.
#[test]
fn background_vmm_leaves_the_terminal_alone() {
    require_kvm();
    let (master, slave) = openpty();
    let script = format!(
        "set -m; {} --timeout 60 --cmdline 'run=exit 5' 2>{} & wait $!; echo status=$?",
        vmm_binary().display(),
        scratch_path("background.err").display()
    );
    let err_path = script
        .split("2>")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .unwrap()
        .to_string();
    let mut command = Command::new("bash");
    command
        .args(["--norc", "--noprofile", "-c", &script])
        .stdin(Stdio::from(slave.try_clone().unwrap()))
        .stdout(Stdio::from(slave.try_clone().unwrap()))
        .stderr(Stdio::from(slave));
    // SAFETY: between fork and exec only async-signal-safe calls: a new
    // session whose controlling terminal is the pty, so bash's job control
    // puts the VMM in a background job of it.
    unsafe {
        use std::os::unix::process::CommandExt;
        command.pre_exec(|| {
            if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = command.spawn().unwrap();
    let output = Output::collect(File::from(master));
    output.expect("status=5", Duration::from_secs(60));
    let status = wait_exit(&mut child, Duration::from_secs(10));
    assert!(status.success(), "{}", output.text());
    let stderr = std::fs::read_to_string(&err_path).unwrap();
    assert!(
        stderr.contains("vmm: running in the background: not reading keys from the terminal"),
        "stderr:\n{stderr}"
    );
}
