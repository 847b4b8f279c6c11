//! Keystroke injection: the interactive terminal, keystroke scripts
//! (`--keys`, `--type`) and the QMP control socket (`--qmp`).
//!
//! Every source turns into key events for the i8042's PS/2 keyboard (set-2
//! make codes, see [`keycodes`]) through a [`VmControl`]. Keys are paced by
//! the guest: after each character or combination a source waits until the
//! guest has read every queued keyboard byte
//! ([`VmControl::wait_input_drained`]), so keys go as fast as the guest takes
//! them; the device's host queue is unbounded, so none is lost either way.
//!
//! Interactive keys and QMP keys go through one [`KeyWorker`] thread, which
//! delivers them in arrival order and honours `send-key`'s `hold-time`
//! without blocking the QMP connection. A script runs on its own thread.
use std::io::Read;
use std::path::PathBuf;
use std::sync::mpsc;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

pub mod keycodes;
pub mod qmp;
pub mod script;
pub mod terminal;

use keycodes::Key;
use qmp::{EventSink, QmpAddress, QmpBackend, QmpServer};
use script::{ExpectError, Script, ScriptTarget};

/// What the input sources need from the running machine.
///
/// Implemented by the VMM's handle; the tests implement it with mocks.
pub trait VmControl: Send + Sync + 'static {
    /// Queues a key event on the PS/2 keyboard (set-2 make code, `0xE0xx` for
    /// extended keys).
    fn key_event(&self, set2_code: u16, down: bool);
    /// Waits until the guest has read every queued keyboard byte; false on
    /// timeout.
    fn wait_input_drained(&self, timeout: Duration) -> bool;
    /// Absolute offset just past the serial output received so far.
    fn serial_mark(&self) -> usize;
    /// Waits for `needle` in the serial output at or after `from`: the offset
    /// just past the match, or the output tail on timeout or VM exit.
    fn serial_wait_for(
        &self,
        from: usize,
        needle: &[u8],
        timeout: Duration,
    ) -> Result<usize, Vec<u8>>;
    /// Pauses the vCPU.
    fn pause(&self);
    /// Resumes the vCPU.
    fn resume(&self);
    /// Whether the vCPU is paused.
    fn is_paused(&self) -> bool;
    /// Whether the machine can be reset (`system_reset`).
    fn can_reset(&self) -> bool {
        false
    }
    /// Resets the machine.
    fn reset(&self) -> Result<(), String> {
        Err("this machine cannot be reset".to_string())
    }
    /// Stops the VMM; the process exits with `status`.
    fn shutdown(&self, status: i32);
    /// Whether the machine has stopped (guest exit, crash, timeout, quit).
    fn has_exited(&self) -> bool;
}

impl VmControl for crate::vm::VmHandle {
    fn key_event(&self, set2_code: u16, down: bool) {
        crate::vm::VmHandle::key_event(self, set2_code, down);
    }
    fn wait_input_drained(&self, timeout: Duration) -> bool {
        crate::vm::VmHandle::wait_input_drained(self, timeout)
    }
    fn serial_mark(&self) -> usize {
        self.serial_output().mark()
    }
    fn serial_wait_for(
        &self,
        from: usize,
        needle: &[u8],
        timeout: Duration,
    ) -> Result<usize, Vec<u8>> {
        self.serial_output().wait_for(from, needle, timeout)
    }
    fn pause(&self) {
        crate::vm::VmHandle::pause(self);
    }
    fn resume(&self) {
        crate::vm::VmHandle::resume(self);
    }
    fn is_paused(&self) -> bool {
        crate::vm::VmHandle::is_paused(self)
    }
    fn can_reset(&self) -> bool {
        true
    }
    fn reset(&self) -> Result<(), String> {
        crate::vm::VmHandle::reset(self);
        Ok(())
    }
    fn shutdown(&self, status: i32) {
        crate::vm::VmHandle::shutdown(self, status);
    }
    fn has_exited(&self) -> bool {
        self.exit_state().is_some()
    }
}

/// Longest a source waits for the guest to read its keys before checking
/// again whether the machine still runs.
const DRAIN_POLL: Duration = Duration::from_millis(200);

/// Waits until the guest has read all queued keyboard bytes, or the machine
/// stopped (false). A paused or busy guest is waited for as long as it takes.
fn settle(vm: &dyn VmControl) -> bool {
    loop {
        if vm.wait_input_drained(DRAIN_POLL) {
            return true;
        }
        if vm.has_exited() {
            return false;
        }
    }
}

/// A job for the [`KeyWorker`].
#[derive(Debug)]
enum Job {
    /// Press in order, hold, release in reverse.
    Combo(Vec<Key>, Duration),
    /// One key event.
    Event(Key, bool),
}

/// Delivers key jobs from several sources in order, on its own thread.
#[derive(Clone)]
pub struct KeyWorker {
    jobs: mpsc::Sender<Job>,
}

impl KeyWorker {
    /// Starts the worker thread.
    pub fn start(vm: Arc<dyn VmControl>) -> KeyWorker {
        let (jobs, queue) = mpsc::channel::<Job>();
        thread::Builder::new()
            .name("input-keys".into())
            .spawn(move || {
                for job in queue {
                    match job {
                        Job::Combo(keys, hold) => {
                            let start = Instant::now();
                            for key in &keys {
                                vm.key_event(key.set2(), true);
                            }
                            if !hold.is_zero() {
                                settle(&*vm);
                                // `hold-time` is the time between press and release.
                                thread::sleep(hold.saturating_sub(start.elapsed()));
                            }
                            for key in keys.iter().rev() {
                                vm.key_event(key.set2(), false);
                            }
                        }
                        Job::Event(key, down) => vm.key_event(key.set2(), down),
                    }
                    if !settle(&*vm) {
                        return;
                    }
                }
            })
            .expect("spawn input-keys thread");
        KeyWorker { jobs }
    }

    /// Queues a combination: pressed in order, held `hold`, released in reverse.
    pub fn combo(&self, keys: Vec<Key>, hold: Duration) {
        let _ = self.jobs.send(Job::Combo(keys, hold));
    }

    /// Queues one key event.
    pub fn event(&self, key: Key, down: bool) {
        let _ = self.jobs.send(Job::Event(key, down));
    }
}

/// Command-line options of the input sources (flattened into the VMM's CLI).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct InputArgs {
    /// Type a keystroke script into the guest (`-` reads it from stdin).
    /// The grammar is in the README ("Typing into the guest"). When the
    /// script ends the VMM keeps running until the guest exits or --timeout.
    #[arg(long, value_name = "FILE")]
    pub keys: Option<PathBuf>,

    /// Type TEXT into the guest (escapes \n \t \b \\), like a script line
    /// `type TEXT`. May be repeated; runs after the --keys script.
    #[arg(long = "type", value_name = "TEXT")]
    pub type_text: Vec<String>,

    /// Serve QMP on a Unix socket: `unix:PATH` (QEMU's `,server=on,wait=off`
    /// options are accepted; the guest never waits for a client).
    #[arg(long, value_name = "unix:PATH")]
    pub qmp: Option<QmpAddress>,

    /// Use the terminal as the guest's keyboard (default when stdin is a
    /// terminal). Ctrl+A then X quits; Ctrl+A Ctrl+A sends Ctrl+A.
    #[arg(long, overrides_with = "no_interactive")]
    pub interactive: bool,

    /// Do not read keys from the terminal.
    #[arg(long, overrides_with = "interactive")]
    pub no_interactive: bool,
}

/// Why the input sources cannot start.
#[derive(Debug)]
pub enum InputError {
    /// A script file cannot be read.
    ReadScript(PathBuf, std::io::Error),
    /// A script has an error.
    Script(script::ParseError),
    /// The QMP socket cannot be set up.
    Qmp(qmp::QmpServerError),
    /// `--interactive` with a stdin that is not a terminal, or already used by `--keys -`.
    NotATerminal,
    /// `--interactive` together with `--keys -`.
    StdinTwice,
    /// Raw mode failed.
    Terminal(std::io::Error),
}

impl std::fmt::Display for InputError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            InputError::ReadScript(path, e) => write!(f, "cannot read {}: {e}", path.display()),
            InputError::Script(e) => e.fmt(f),
            InputError::Qmp(e) => e.fmt(f),
            InputError::NotATerminal => write!(f, "--interactive needs stdin to be a terminal"),
            InputError::StdinTwice => {
                write!(f, "--interactive and --keys - both want stdin; choose one")
            }
            InputError::Terminal(e) => write!(f, "cannot put the terminal in raw mode: {e}"),
        }
    }
}

impl std::error::Error for InputError {}

/// The input sources, checked and ready, before the guest starts.
pub struct PreparedInput {
    script: Option<Script>,
    qmp: Option<QmpServer>,
    interactive: bool,
}

impl InputArgs {
    /// Reads and parses the scripts, opens the QMP socket and decides on
    /// interactive mode. Call before booting the guest so script errors are
    /// reported first.
    pub fn prepare(&self) -> Result<PreparedInput, InputError> {
        let mut script: Option<Script> = None;
        if let Some(path) = &self.keys {
            let (name, bytes) = if path.as_os_str() == "-" {
                let mut bytes = Vec::new();
                std::io::stdin()
                    .read_to_end(&mut bytes)
                    .map_err(|e| InputError::ReadScript(path.clone(), e))?;
                ("<stdin>".to_string(), bytes)
            } else {
                let bytes =
                    std::fs::read(path).map_err(|e| InputError::ReadScript(path.clone(), e))?;
                (path.display().to_string(), bytes)
            };
            script = Some(Script::parse_bytes(&name, &bytes).map_err(InputError::Script)?);
        }
        for text in &self.type_text {
            let line = Script::type_text("--type", text).map_err(InputError::Script)?;
            match &mut script {
                Some(script) => script.extend(line),
                None => script = Some(line),
            }
        }
        let stdin_is_script = self.keys.as_ref().is_some_and(|p| p.as_os_str() == "-");
        let stdin_tty = terminal::is_terminal(0);
        let interactive = if self.interactive {
            if stdin_is_script {
                return Err(InputError::StdinTwice);
            }
            if !stdin_tty {
                return Err(InputError::NotATerminal);
            }
            true
        } else {
            !self.no_interactive && stdin_tty && !stdin_is_script
        };
        let qmp = match &self.qmp {
            Some(address) => Some(QmpServer::bind(address).map_err(InputError::Qmp)?),
            None => None,
        };
        Ok(PreparedInput {
            script,
            qmp,
            interactive,
        })
    }
}

impl PreparedInput {
    /// Whether the terminal will be used as the keyboard (the VMM should then
    /// not read stdin itself).
    pub fn interactive(&self) -> bool {
        self.interactive
    }

    /// Starts the sources on their threads. Raw mode starts here.
    pub fn start(self, vm: Arc<dyn VmControl>) -> Result<InputHandle, InputError> {
        let worker = KeyWorker::start(vm.clone());
        let mut raw = None;
        if self.interactive {
            let terminal = terminal::RawTerminal::enter(0).map_err(InputError::Terminal)?;
            let fd = terminal.fd();
            raw = Some(terminal);
            let worker = worker.clone();
            let vm = vm.clone();
            thread::Builder::new()
                .name("input-terminal".into())
                .spawn(move || {
                    let result = terminal::read_events(fd, |event| match event {
                        terminal::TermEvent::Keys(keys) => {
                            worker.combo(keys, Duration::ZERO);
                            true
                        }
                        terminal::TermEvent::Help => {
                            eprint!("{}", terminal::ESCAPE_HELP);
                            true
                        }
                        terminal::TermEvent::Quit => {
                            terminal::restore();
                            eprintln!("\nvmm: terminated by Ctrl+A X");
                            vm.shutdown(0);
                            false
                        }
                    });
                    if let Err(e) = result {
                        log::warn!("terminal input stopped: {e}");
                    }
                })
                .expect("spawn input-terminal thread");
        }
        let mut events = None;
        let mut qmp_path = None;
        if let Some(server) = self.qmp {
            events = Some(server.events());
            qmp_path = Some(server.path().to_path_buf());
            let vm = vm.clone();
            let worker = worker.clone();
            thread::Builder::new()
                .name("input-qmp".into())
                .spawn(move || {
                    let backend = Backend {
                        vm: vm.clone(),
                        worker,
                    };
                    server.serve(&backend, &|| vm.shutdown(0));
                })
                .expect("spawn input-qmp thread");
        }
        if let Some(script) = self.script {
            let vm = vm.clone();
            thread::Builder::new()
                .name("input-script".into())
                .spawn(move || {
                    let mut target = VmTarget { vm: &*vm, mark: 0 };
                    match script::run(&script, &mut target) {
                        Ok(()) => log::debug!("script {} finished", script.source),
                        Err(error @ script::RunError::ExpectTimeout { .. }) => {
                            terminal::restore();
                            eprintln!("vmm: {error}");
                            vm.shutdown(shared::status::EXPECT_FAILED);
                        }
                        // The machine stopped under the script: its own status stands.
                        Err(error) => log::debug!("script stopped: {error}"),
                    }
                })
                .expect("spawn input-script thread");
        }
        Ok(InputHandle {
            events,
            qmp_path,
            _raw: raw,
        })
    }
}

/// The running input sources.
pub struct InputHandle {
    events: Option<EventSink>,
    qmp_path: Option<PathBuf>,
    _raw: Option<terminal::RawTerminal>,
}

impl InputHandle {
    /// What to call after each machine reset (see
    /// [`crate::vm::VmHandle::on_reset`]): a guest-requested reset sends QMP
    /// clients the `RESET` event (`guest: true`, `guest-reset`); a
    /// host-requested one (`system_reset`) already had its event sent by the
    /// QMP command.
    pub fn reset_notifier(&self) -> impl Fn(crate::vm::ResetCause) + Send + Sync + 'static {
        let events = self.events.clone();
        move |cause| {
            if let (Some(events), crate::vm::ResetCause::Guest) = (&events, cause) {
                events.send(&qmp::event(
                    "RESET",
                    Some(serde_json::json!({"guest": true, "reason": "guest-reset"})),
                ));
            }
        }
    }

    /// Tells QMP clients the machine stopped (`SHUTDOWN` event, sent once; a
    /// QMP `quit` already sent its own), removes the QMP socket file and
    /// restores the terminal. Call when the VM has stopped, before the
    /// process exits.
    pub fn vm_stopped(&self, reason: &crate::vm::ExitReason) {
        if let Some(events) = &self.events {
            let (guest, cause) = shutdown_cause(reason);
            events.shutdown(guest, cause);
        }
        if let Some(path) = &self.qmp_path {
            let _ = std::fs::remove_file(path);
        }
        terminal::restore();
    }
}

/// The `SHUTDOWN` event's `guest` and `reason` (QEMU's `ShutdownCause`) for
/// an exit reason.
pub fn shutdown_cause(reason: &crate::vm::ExitReason) -> (bool, &'static str) {
    use crate::vm::ExitReason;
    match reason {
        ExitReason::GuestExit(_) => (true, "guest-shutdown"),
        ExitReason::GuestReset | ExitReason::TripleFault(_) => (true, "guest-reset"),
        ExitReason::Host => (false, "host-signal"),
        // Crashes and host failures; also any reason added later.
        _ => (false, "host-error"),
    }
}

/// The QMP backend on top of the machine.
struct Backend {
    vm: Arc<dyn VmControl>,
    worker: KeyWorker,
}

impl QmpBackend for Backend {
    fn send_keys(&self, keys: Vec<Key>, hold: Duration) {
        self.worker.combo(keys, hold);
    }
    fn key_event(&self, key: Key, down: bool) {
        self.worker.event(key, down);
    }
    fn is_running(&self) -> bool {
        !self.vm.is_paused()
    }
    fn stop(&self) {
        self.vm.pause();
    }
    fn cont(&self) {
        self.vm.resume();
    }
    fn can_reset(&self) -> bool {
        self.vm.can_reset()
    }
    fn reset(&self) -> Result<(), String> {
        self.vm.reset()
    }
}

/// A script running against the machine.
struct VmTarget<'a> {
    vm: &'a dyn VmControl,
    /// Serial offset just past the previous `expect` match.
    mark: usize,
}

impl ScriptTarget for VmTarget<'_> {
    fn key(&mut self, key: Key, down: bool) -> Result<(), String> {
        self.vm.key_event(key.set2(), down);
        Ok(())
    }

    fn settle(&mut self) -> Result<(), String> {
        if settle(self.vm) {
            Ok(())
        } else {
            Err("the machine stopped".to_string())
        }
    }

    fn wait(&mut self, duration: Duration) -> Result<(), String> {
        thread::sleep(duration);
        Ok(())
    }

    fn expect(&mut self, text: &str, timeout: Duration) -> Result<(), ExpectError> {
        match self.vm.serial_wait_for(self.mark, text.as_bytes(), timeout) {
            Ok(mark) => {
                self.mark = mark;
                Ok(())
            }
            Err(_) if self.vm.has_exited() => {
                Err(ExpectError::Target("the machine stopped".into()))
            }
            Err(tail) => Err(ExpectError::Timeout(tail_text(&tail))),
        }
    }
}

/// The last lines of output, for error messages.
fn tail_text(bytes: &[u8]) -> String {
    const MAX: usize = 2000;
    let start = bytes.len().saturating_sub(MAX);
    let text = String::from_utf8_lossy(&bytes[start..]);
    if start > 0 {
        format!("...{text}")
    } else {
        text.into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// A machine whose guest reads keys instantly and echoes nothing.
    #[derive(Default)]
    struct Fake {
        log: Mutex<Vec<(u16, bool)>>,
        serial: Mutex<Vec<u8>>,
        exited: std::sync::atomic::AtomicBool,
        status: Mutex<Option<i32>>,
    }

    impl VmControl for Fake {
        fn key_event(&self, code: u16, down: bool) {
            self.log.lock().unwrap().push((code, down));
        }
        fn wait_input_drained(&self, _: Duration) -> bool {
            true
        }
        fn serial_mark(&self) -> usize {
            self.serial.lock().unwrap().len()
        }
        fn serial_wait_for(
            &self,
            from: usize,
            needle: &[u8],
            _: Duration,
        ) -> Result<usize, Vec<u8>> {
            let s = self.serial.lock().unwrap();
            let hay = &s[from.min(s.len())..];
            match hay.windows(needle.len()).position(|w| w == needle) {
                Some(p) => Ok(from + p + needle.len()),
                None => Err(hay.to_vec()),
            }
        }
        fn pause(&self) {}
        fn resume(&self) {}
        fn is_paused(&self) -> bool {
            false
        }
        fn shutdown(&self, status: i32) {
            *self.status.lock().unwrap() = Some(status);
            self.exited.store(true, std::sync::atomic::Ordering::SeqCst);
        }
        fn has_exited(&self) -> bool {
            self.exited.load(std::sync::atomic::Ordering::SeqCst)
        }
    }

    #[test]
    fn expect_consumes_output_in_order() {
        let vm = Fake::default();
        vm.serial.lock().unwrap().extend_from_slice(b"> a\n> b\n");
        let mut target = VmTarget { vm: &vm, mark: 0 };
        let script = Script::parse("s", "expect > a\nexpect > \nexpect b\nexpect > a").unwrap();
        let error = script::run(&script, &mut target).unwrap_err();
        assert!(
            matches!(error, script::RunError::ExpectTimeout { line: 4, .. }),
            "{error}"
        );
    }

    #[test]
    fn worker_delivers_in_order() {
        let vm = Arc::new(Fake::default());
        let worker = KeyWorker::start(vm.clone());
        let (ctrl, c) = (keycodes::key("ctrl"), keycodes::key("c"));
        worker.combo(vec![ctrl, c], Duration::from_millis(5));
        worker.event(c, true);
        worker.event(c, false);
        let deadline = Instant::now() + Duration::from_secs(5);
        while vm.log.lock().unwrap().len() < 6 && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(
            *vm.log.lock().unwrap(),
            [
                (0x14, true),
                (0x21, true),
                (0x21, false),
                (0x14, false),
                (0x21, true),
                (0x21, false)
            ]
        );
    }
}
