//! Running `vmm keys` against QEMU or our VMM: the machine started with a
//! QMP socket and its serial output on a socket or in a file, then the
//! subcommand run as a child process.
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use super::*;

/// How long a machine may take to create its sockets or serial file.
const SETUP: Duration = Duration::from_secs(20);

/// Where the machine's serial output goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Serial {
    /// A Unix socket the machine listens on (QEMU's `-serial unix:`).
    Socket,
    /// A file the machine writes.
    File,
}

/// A machine `vmm keys` can drive: the process, its QMP socket, and the
/// `--serial` argument for it.
pub struct Target {
    pub vm: Machine,
    pub qmp: PathBuf,
    /// `unix:PATH` or `file:PATH`.
    pub serial: String,
    /// The serial output's path (socket or file).
    pub serial_path: PathBuf,
}

/// Waits until `path` exists (the machine created its socket or file).
fn wait_for_path(path: &Path, vm: &Machine) {
    let deadline = Instant::now() + SETUP;
    while !path.exists() {
        assert!(
            Instant::now() < deadline,
            "{} not created within {SETUP:?}; stderr:\n{}",
            path.display(),
            vm.stderr.text()
        );
        thread::sleep(Duration::from_millis(10));
    }
}

impl Target {
    /// The guest in QEMU `pc` + TCG, started paused (`-S`: `vmm keys`
    /// starts it once it watches the serial output), exactly as the
    /// README's command line.
    pub fn qemu(serial: Serial) -> Target {
        let qmp = scratch_path("qemu-qmp.sock");
        let (serial_path, spec) = match serial {
            Serial::Socket => {
                let path = scratch_path("qemu-serial.sock");
                let spec = format!("unix:{},server=on,wait=off", path.display());
                (path, spec)
            }
            Serial::File => {
                let path = scratch_path("qemu-serial.txt");
                let spec = format!("file:{}", path.display());
                (path, spec)
            }
        };
        let mut command = qemu_command_with_serial("pc", "tcg", guest_elf(), &spec);
        command
            .arg("-S")
            .arg("-qmp")
            .arg(format!("unix:{},server=on,wait=off", qmp.display()));
        let vm = Machine::spawn(command);
        wait_for_path(&qmp, &vm);
        wait_for_path(&serial_path, &vm);
        let serial = match serial {
            Serial::Socket => format!("unix:{}", serial_path.display()),
            Serial::File => format!("file:{}", serial_path.display()),
        };
        Target {
            vm,
            qmp,
            serial,
            serial_path,
        }
    }

    /// The guest in our VMM with `--qmp`, its COM1 (stdout) captured in a
    /// file that `vmm keys` follows.
    pub fn ours(extra: &[&str]) -> Target {
        require_kvm();
        let qmp = scratch_path("vmm-qmp.sock");
        let serial_path = scratch_path("vmm-serial.txt");
        let file = std::fs::File::create(&serial_path).unwrap();
        let mut command = Command::new(vmm_binary());
        command
            .arg("--qmp")
            .arg(format!("unix:{}", qmp.display()))
            .args(extra);
        command
            .stdin(Stdio::null())
            .stdout(file)
            .stderr(Stdio::piped());
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {command:?}: {e}"));
        let stderr = Output::collect(child.stderr.take().unwrap());
        let vm = Machine {
            child,
            // COM1 goes to the file.
            stdout: Output::collect(std::io::empty()),
            stderr,
            stdin: None,
        };
        wait_for_path(&qmp, &vm);
        Target {
            vm,
            qmp,
            serial: format!("file:{}", serial_path.display()),
            serial_path,
        }
    }

    /// The `vmm keys` command for this machine, up to the script argument.
    fn keys_command(&self, extra: &[&str]) -> Command {
        let mut command = Command::new(vmm_binary());
        command
            .arg("keys")
            .arg("--qmp")
            .arg(format!("unix:{}", self.qmp.display()))
            .arg("--serial")
            .arg(&self.serial)
            .args(extra);
        command
    }

    /// Runs `vmm keys` on `script` with `extra` options: its status and stderr.
    pub fn keys(&self, script: &Path, extra: &[&str]) -> (i32, String) {
        let output = self
            .keys_command(extra)
            .arg(script)
            .stdin(Stdio::null())
            .output()
            .expect("run vmm keys");
        (
            output.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    }

    /// Runs `vmm keys -` with `script` on its stdin: its status and stderr.
    pub fn keys_stdin(&self, script: &str) -> (i32, String) {
        let mut child = self
            .keys_command(&[])
            .arg("-")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run vmm keys");
        // Dropped after writing: the script ends at end of file.
        std::io::Write::write_all(&mut child.stdin.take().unwrap(), script.as_bytes())
            .expect("write the script");
        let output = child.wait_with_output().expect("wait for vmm keys");
        (
            output.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    }

    /// The machine's serial output so far, from the file (for a socket
    /// target, `vmm keys` read it: empty here).
    pub fn transcript(&self) -> String {
        match self.serial.starts_with("file:") {
            true => {
                String::from_utf8_lossy(&std::fs::read(&self.serial_path).unwrap()).into_owned()
            }
            false => String::new(),
        }
    }
}

/// Writes `text` as a script file named `name`; its path.
pub fn script_file(name: &str, text: &str) -> PathBuf {
    let path = scratch_path(name);
    std::fs::write(&path, text).unwrap();
    path
}
