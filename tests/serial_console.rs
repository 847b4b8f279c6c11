//! The guest's serial console end to end: typed into through COM1 in our
//! VMM (`--console-input serial` scripts, the `--serial unix:` socket, a
//! slow guest that must lose nothing), COM1 output to `--serial file:`,
//! and the same typing under QEMU (`-serial stdio` and a `-serial unix:`
//! socket).
mod common;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use shared::boot::PROMPT;

const TIMEOUT: Duration = Duration::from_secs(30);

fn vmm() -> Command {
    let mut command = Command::new(vmm_binary());
    command.args(["--no-interactive", "--timeout", "60"]);
    command
}

/// The value of the guest's `stats` line `name: N` in `text`.
fn guest_stat(text: &str, name: &str) -> u64 {
    let prefix = format!("{name}: ");
    text.lines()
        .find_map(|line| line.trim().strip_prefix(&prefix)?.parse().ok())
        .unwrap_or_else(|| panic!("no '{name}' in:\n{text}"))
}

/// The output of the last `stats` command in `text`.
fn last_stats(text: &str) -> &str {
    let start = text.rfind("clocksource:").expect("stats output");
    &text[start..]
}

fn write_script(name: &str, text: &str) -> std::path::PathBuf {
    let path = scratch_path(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// `type` and `key` lines go to COM1 as a terminal's bytes: the guest's
/// shell reads them from its serial console (CR is Enter, DEL erases,
/// ETX is Ctrl+C), and its keyboard sees nothing.
#[test]
fn script_types_into_the_serial_console() {
    require_kvm();
    let script = write_script(
        "serial-console.keys",
        "expect \"> \"\n\
         type echo via com1\\n\n\
         expect \"\\r\\nvia com1\"\n\
         type echo abX\n\
         key backspace\n\
         type c\\n\n\
         expect \"\\r\\nabc\"\n\
         type never run\n\
         key ctrl-c\n\
         expect ^C\n\
         type stats\\n\n\
         expect serial_overruns\n\
         type exit 5\\n\n",
    );
    let mut command = vmm();
    command
        .args(["--console-input", "serial", "--keys"])
        .arg(&script);
    let mut vm = Machine::spawn(command);
    let status = vm.wait(TIMEOUT);
    let out = vm.stdout.text();
    assert_eq!(
        status.code(),
        Some(5),
        "stdout:\n{out}\nstderr:\n{}",
        vm.stderr.text()
    );
    assert!(out.contains("> echo abX\x08 \x08c\r\nabc\r\n"), "{out}");
    assert!(out.contains("> never run^C\r\n"), "{out}");
    let stats = last_stats(&out);
    // "echo via com1\r" + "echo abX" DEL "c\r" + "never run" ETX + "stats\r"
    assert_eq!(guest_stat(stats, "serial_rx"), 14 + 11 + 10 + 6);
    assert_eq!(guest_stat(stats, "serial_overruns"), 0);
    assert_eq!(guest_stat(stats, "serial_rx_dropped"), 0);
    assert_eq!(
        guest_stat(stats, "scancodes"),
        0,
        "the keyboard saw nothing"
    );
}

/// Bytes typed while the guest does not read (a `spin` holds the CPU) wait
/// in the VMM, not in the UART's 16-byte FIFO: all of them arrive.
#[test]
fn a_busy_guest_loses_no_serial_input() {
    require_kvm();
    let long: String = (0..300)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    let script = write_script(
        "serial-busy.keys",
        &format!(
            "expect \"> \"\n\
             type spin 300\\n\n\
             type echo {long}\\n\n\
             expect \"\\r\\n{long}\\r\\n\" 20s\n\
             type stats\\n\n\
             expect serial_overruns\n\
             type exit 0\\n\n"
        ),
    );
    let mut command = vmm();
    command
        .args(["--console-input", "serial", "--stats", "--keys"])
        .arg(&script);
    let mut vm = Machine::spawn(command);
    let status = vm.wait(TIMEOUT);
    let out = vm.stdout.text();
    assert_eq!(
        status.code(),
        Some(0),
        "stdout:\n{out}\nstderr:\n{}",
        vm.stderr.text()
    );
    let stats = last_stats(&out);
    assert_eq!(guest_stat(stats, "serial_rx"), 9 + 5 + 301 + 6);
    assert_eq!(guest_stat(stats, "serial_overruns"), 0);
    assert_eq!(guest_stat(stats, "serial_rx_dropped"), 0);
    // The VMM's own count: every host byte reached the guest, none overran.
    let err = vm.stderr.text();
    assert!(
        err.contains("com1: ") && err.contains(" 0 overruns"),
        "{err}"
    );
}

/// Connects to a Unix socket the VMM or QEMU is about to create.
fn connect(path: &Path) -> UnixStream {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        match UnixStream::connect(path) {
            Ok(stream) => return stream,
            Err(error) if Instant::now() > deadline => panic!("connect {path:?}: {error}"),
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

/// What a serial socket sends, collected as it arrives.
fn socket_output(stream: &UnixStream) -> Output {
    Output::collect(stream.try_clone().unwrap())
}

/// Types `line` and Enter (CR) into a serial socket and waits for its echo.
fn type_line(stream: &mut UnixStream, output: &Output, line: &str) {
    stream.write_all(line.as_bytes()).unwrap();
    stream.write_all(b"\r").unwrap();
    output.expect(&format!("{line}\r\n"), TIMEOUT);
}

/// `--serial unix:PATH`: the socket carries COM1 both ways, and nothing
/// goes to stdout. Output before a client connects is dropped, so the test
/// types first and reads the answer.
#[test]
fn the_serial_socket_carries_both_directions() {
    require_kvm();
    let socket = scratch_path("vmm-serial.sock");
    let mut command = vmm();
    command
        .arg("--serial")
        .arg(format!("unix:{}", socket.display()));
    let mut vm = Machine::spawn(command);
    let mut stream = connect(&socket);
    let output = socket_output(&stream);
    // Until the guest's shell runs, typed bytes wait in the VMM.
    type_line(&mut stream, &output, "echo over the socket");
    output.expect("over the socket\r\n", TIMEOUT);
    type_line(&mut stream, &output, "exit 7");
    let status = vm.wait(TIMEOUT);
    assert_eq!(status.code(), Some(7), "stderr:\n{}", vm.stderr.text());
    assert_eq!(vm.stdout.text(), "", "COM1 went to the socket only");
    assert!(!socket.exists(), "the socket file is removed at exit");
}

/// `--serial file:PATH` writes COM1 to the file, none of it to stdout.
#[test]
fn serial_output_to_a_file() {
    require_kvm();
    let path = scratch_path("com1.txt");
    let mut command = vmm();
    command
        .arg("--serial")
        .arg(format!("file:{}", path.display()))
        .args(["--cmdline", "run=echo into the file; exit 4"]);
    let mut vm = Machine::spawn(command);
    let status = vm.wait(TIMEOUT);
    assert_eq!(status.code(), Some(4), "stderr:\n{}", vm.stderr.text());
    assert_eq!(vm.stdout.text(), "");
    let mut text = String::new();
    std::fs::File::open(&path)
        .unwrap()
        .read_to_string(&mut text)
        .unwrap();
    assert!(text.contains(shared::boot::BANNER), "{text}");
    assert!(
        text.contains("> echo into the file\r\ninto the file\r\n"),
        "{text}"
    );
}

/// A bad `--serial` is a usage error naming the forms.
#[test]
fn a_bad_serial_backend_is_refused() {
    let out = Command::new(vmm_binary())
        .args(["--serial", "tcp:1234"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("expected stdio, none, file:PATH or unix:PATH"),
        "{err}"
    );
}

/// Under QEMU, `-serial stdio` with a pipe on stdin: what is written there
/// reaches the guest's shell through COM1.
#[test]
fn qemu_serial_stdio_types_into_the_shell() {
    let mut vm = Machine::spawn(qemu_command("pc", "tcg", guest_elf()));
    vm.stdout.expect(PROMPT, TIMEOUT);
    let mut stdin = vm.stdin.take().unwrap();
    stdin.write_all(b"echo typed on com1\r").unwrap();
    vm.stdout
        .expect("echo typed on com1\r\ntyped on com1\r\n", TIMEOUT);
    // A pipe's LF is Enter too.
    stdin.write_all(b"stats\n").unwrap();
    vm.stdout.expect("serial_overruns", TIMEOUT);
    stdin.write_all(b"exit 3\n").unwrap();
    let status = vm.wait(TIMEOUT);
    assert_eq!(status.code(), Some(3 << 1 | 1), "QEMU's debug-exit status");
    let out = vm.stdout.text();
    let stats = last_stats(&out);
    assert_eq!(guest_stat(stats, "serial_rx"), 19 + 6);
    assert_eq!(guest_stat(stats, "serial_overruns"), 0);
}

/// Under QEMU, `-serial unix:PATH,server=on,wait=off`: the same socket
/// form as our `--serial unix:PATH`.
#[test]
fn qemu_serial_socket_types_into_the_shell() {
    let socket = scratch_path("qemu-serial.sock");
    let mut command = Command::new(qemu_binary());
    command
        .args(["-machine", "pc", "-accel", "tcg"])
        .args(["-display", "none", "-nodefaults", "-no-reboot"])
        .arg("-serial")
        .arg(format!("unix:{},server=on,wait=off", socket.display()))
        .args(["-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"])
        .arg("-kernel")
        .arg(guest_elf());
    let mut vm = Machine::spawn(command);
    let mut stream = connect(&socket);
    let output = socket_output(&stream);
    // QEMU drops what its UART receives before the guest's driver clears
    // the FIFO, and its output before we connected: Enter until a prompt
    // answers.
    let deadline = Instant::now() + TIMEOUT;
    loop {
        stream.write_all(b"\r").unwrap();
        if output
            .try_expect(PROMPT, Duration::from_millis(500))
            .is_ok()
        {
            break;
        }
        assert!(Instant::now() < deadline, "no prompt: {}", output.text());
    }
    type_line(&mut stream, &output, "echo over qemu's socket");
    output.expect("over qemu's socket\r\n", TIMEOUT);
    type_line(&mut stream, &output, "exit 2");
    let status = vm.wait(TIMEOUT);
    assert_eq!(status.code(), Some(2 << 1 | 1));
}
