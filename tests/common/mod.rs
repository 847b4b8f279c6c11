//! Helpers shared by the end-to-end tests: running the VMM and QEMU as child
//! processes, watching their serial output, and the guest ELF.
#![allow(dead_code)]

pub mod guest;
pub mod guest_tests;
pub mod keys;
pub mod pty;
pub mod pvh_elf;
pub mod qmp;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

/// Path of the `vmm` binary cargo built for these tests.
pub fn vmm_binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_vmm"))
}

/// A private scratch directory for this test process.
pub fn scratch_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("vmm-e2e-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create scratch dir");
        dir
    })
}

/// A fresh path inside [`scratch_dir`].
pub fn scratch_path(name: &str) -> PathBuf {
    static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    scratch_dir().join(format!("{n}-{name}"))
}

/// The embedded guest kernel, exported once with `vmm --export-guest`.
pub fn guest_elf() -> &'static Path {
    static ELF: OnceLock<PathBuf> = OnceLock::new();
    ELF.get_or_init(|| {
        let path = scratch_dir().join("guest.elf");
        let status = Command::new(vmm_binary())
            .arg("--export-guest")
            .arg(&path)
            .status()
            .expect("run vmm --export-guest");
        assert!(status.success(), "vmm --export-guest failed: {status}");
        path
    })
}

/// The QEMU binary. Its absence fails the test: a skipped QEMU test would
/// hide a broken set-up, in CI and on a developer's machine alike.
pub fn qemu_binary() -> &'static str {
    static FOUND: OnceLock<()> = OnceLock::new();
    FOUND.get_or_init(|| {
        let ok = Command::new("qemu-system-x86_64")
            .arg("--version")
            .stdout(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        assert!(
            ok,
            "qemu-system-x86_64 is required for this test: apt-get install qemu-system-x86"
        );
    });
    "qemu-system-x86_64"
}

/// Fails unless /dev/kvm is usable.
pub fn require_kvm() {
    let kvm = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm");
    assert!(
        kvm.is_ok(),
        "/dev/kvm is required for this test: {:?}",
        kvm.err()
    );
}

/// Serial output collected from a child process, with waiting.
#[derive(Clone, Default)]
pub struct Output {
    inner: Arc<(Mutex<OutputState>, Condvar)>,
}

#[derive(Default)]
struct OutputState {
    bytes: Vec<u8>,
    closed: bool,
    /// Offset up to which `expect` has consumed output.
    mark: usize,
}

impl Output {
    /// Collects everything `reader` produces on a background thread.
    pub fn collect(mut reader: impl Read + Send + 'static) -> Self {
        let output = Output::default();
        let sink = output.clone();
        thread::spawn(move || {
            let mut buffer = [0u8; 4096];
            loop {
                let n = reader.read(&mut buffer).unwrap_or(0);
                let (lock, cvar) = &*sink.inner;
                let mut state = lock.lock().unwrap();
                if n == 0 {
                    state.closed = true;
                    cvar.notify_all();
                    return;
                }
                state.bytes.extend_from_slice(&buffer[..n]);
                cvar.notify_all();
            }
        });
        output
    }

    /// Everything received so far, lossily decoded.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.inner.0.lock().unwrap().bytes).into_owned()
    }

    /// Waits until the output after the last match contains `needle`, then
    /// moves the mark past it. Panics with the output tail on timeout.
    pub fn expect(&self, needle: &str, timeout: Duration) {
        if let Err(text) = self.try_expect(needle, timeout) {
            panic!("timed out after {timeout:?} waiting for {needle:?}; output so far:\n{text}");
        }
    }

    /// Like [`Output::expect`] but returns the whole output on failure.
    pub fn try_expect(&self, needle: &str, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        let (lock, cvar) = &*self.inner;
        let mut state = lock.lock().unwrap();
        loop {
            let start = state.mark;
            if let Some(pos) = find(&state.bytes[start..], needle.as_bytes()) {
                state.mark = start + pos + needle.len();
                return Ok(());
            }
            let now = Instant::now();
            if now >= deadline || state.closed {
                return Err(String::from_utf8_lossy(&state.bytes).into_owned());
            }
            state = cvar.wait_timeout(state, deadline - now).unwrap().0;
        }
    }

    /// How many bytes were received so far.
    pub fn len(&self) -> usize {
        self.inner.0.lock().unwrap().bytes.len()
    }

    /// Waits until the output from offset `from` on contains `needle`: the
    /// offset just past the match, or the output from `from` on at the
    /// timeout or when the stream closed. Independent of [`Output::expect`]'s
    /// mark.
    pub fn wait_for(
        &self,
        from: usize,
        needle: &[u8],
        timeout: Duration,
    ) -> Result<usize, Vec<u8>> {
        let deadline = Instant::now() + timeout;
        let (lock, cvar) = &*self.inner;
        let mut state = lock.lock().unwrap();
        loop {
            let start = from.min(state.bytes.len());
            if let Some(pos) = find(&state.bytes[start..], needle) {
                return Ok(start + pos + needle.len());
            }
            let now = Instant::now();
            if now >= deadline || state.closed {
                return Err(state.bytes[start..].to_vec());
            }
            state = cvar.wait_timeout(state, deadline - now).unwrap().0;
        }
    }

    /// Waits until the stream is closed (the process exited) or `timeout`.
    pub fn wait_closed(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let (lock, cvar) = &*self.inner;
        let mut state = lock.lock().unwrap();
        while !state.closed {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            state = cvar.wait_timeout(state, deadline - now).unwrap().0;
        }
        true
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return Some(0);
    }
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// A child process (VMM or QEMU) killed when dropped.
pub struct Machine {
    pub child: Child,
    pub stdout: Output,
    pub stderr: Output,
    pub stdin: Option<ChildStdin>,
}

impl Machine {
    /// Spawns `command` with piped stdio.
    pub fn spawn(mut command: Command) -> Self {
        command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {command:?}: {e}"));
        let stdout = Output::collect(child.stdout.take().unwrap());
        let stderr = Output::collect(child.stderr.take().unwrap());
        let stdin = child.stdin.take();
        Machine {
            child,
            stdout,
            stderr,
            stdin,
        }
    }

    /// Waits for the process to exit, killing it after `timeout`.
    pub fn wait(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                // Let the reader threads drain the pipes.
                self.stdout.wait_closed(Duration::from_secs(2));
                self.stderr.wait_closed(Duration::from_secs(2));
                return status;
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "process did not exit within {timeout:?}\nstdout:\n{}\nstderr:\n{}",
                    self.stdout.text(),
                    self.stderr.text()
                );
            }
            thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for Machine {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// QEMU arguments shared by every QEMU test: no display, no default devices,
/// COM1 on stdio, the debug-exit device.
pub fn qemu_command(machine: &str, accel: &str, kernel: &Path) -> Command {
    qemu_command_with_serial(machine, accel, kernel, "stdio")
}

/// [`qemu_command`] with COM1 on `serial` (QEMU's `-serial` syntax).
pub fn qemu_command_with_serial(
    machine: &str,
    accel: &str,
    kernel: &Path,
    serial: &str,
) -> Command {
    let mut command = Command::new(qemu_binary());
    command
        .args(["-machine", machine, "-accel", accel])
        .args(["-display", "none", "-nodefaults", "-no-reboot"])
        .args(["-serial", serial])
        .args(["-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"])
        .arg("-kernel")
        .arg(kernel);
    command
}

/// The number on the `vmm --stats` line (in `stderr`) whose first word is
/// `name` (`io-in`, `mmio`, KVM's `exits`, ...).
pub fn stats_value(stderr: &str, name: &str) -> Option<u64> {
    stderr.lines().find_map(|line| {
        let mut words = line.split_whitespace();
        (words.next() == Some(name)).then(|| words.next()?.parse().ok())?
    })
}
