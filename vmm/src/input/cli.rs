//! The input sources' command-line options (`--keys`, `--type`, `--qmp`,
//! `--interactive`, `--record`; a piped stdin), their preparation before
//! the guest boots and their threads once it runs.
use std::io::Read;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use super::machine::MachineControl;
use super::qmp::{self, EventSink, QmpAddress, QmpServer};
use super::recording::Recording;
use super::script::{self, Script};
use super::terminal;
use super::text::{TextDecoder, Typed};
use super::worker::KeyWorker;
use super::ConsoleInput;
use crate::record::ScriptLine;
use crate::sandbox::{confine_or_exit, Role};
use crate::vm::{ExitReason, HostStop, VmExit};

/// Command-line options of the input sources (flattened into the VMM's CLI).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct InputArgs {
    /// Type a keystroke script into the guest (`-` reads it from stdin).
    /// The grammar is in the README ("Typing into the guest"). When the
    /// script ends the VMM keeps running until the guest exits or --timeout;
    /// a line still pending when the machine stops fails the run (status 126).
    #[arg(long, value_name = "FILE")]
    pub keys: Option<PathBuf>,

    /// Type TEXT into the guest as written (escapes \n \t \b \\; never
    /// trimmed). May be repeated; runs after the --keys script.
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

    /// In interactive mode, write the session to FILE as a keystroke script
    /// that --keys replays (pauses over 500 ms become `wait` lines).
    #[arg(long, value_name = "FILE")]
    pub record: Option<PathBuf>,

    /// Do not read keys from stdin: neither the terminal nor, when stdin is
    /// a pipe or a file, the text read from it.
    #[arg(long, overrides_with = "interactive")]
    pub no_interactive: bool,

    /// Where the interactive terminal and `type`/`key` lines go: the PS/2
    /// keyboard, or COM1's receiver as a serial terminal's bytes (Enter is
    /// CR, Backspace DEL, Ctrl+C 0x03). QMP `send-key` always uses the
    /// keyboard.
    #[arg(long, value_enum, value_name = "WHERE", default_value_t = ConsoleInput::Keyboard)]
    pub console_input: ConsoleInput,
}

/// Why the input sources cannot start.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// A script file cannot be read.
    #[error("cannot read {path}: {1}", path = .0.display())]
    ReadScript(PathBuf, #[source] std::io::Error),
    /// A script has an error.
    #[error(transparent)]
    Script(script::ParseError),
    /// The QMP socket cannot be set up.
    #[error(transparent)]
    Qmp(qmp::QmpServerError),
    /// `--interactive` with a stdin that is not a terminal, or already used by `--keys -`.
    #[error("--interactive needs stdin to be a terminal")]
    NotATerminal,
    /// `--interactive` while the VMM is a background job of its terminal.
    #[error("--interactive: the VMM runs in the background (its terminal belongs to the foreground job)")]
    Background,
    /// `--interactive` together with `--keys -`.
    #[error("--interactive and --keys - both want stdin; choose one")]
    StdinTwice,
    /// `--record` without interactive mode.
    #[error("--record records the interactive terminal, and this run has none (stdin is not a terminal, or --no-interactive, --keys - or the background)")]
    RecordWithoutTerminal,
    /// `--record` with `--console-input serial`: a recording is keys.
    #[error("--record records keyboard keys; it cannot be used with --console-input serial")]
    RecordSerialConsole,
    /// The `--record` file cannot be created.
    #[error("--record {path}: {1}", path = .0.display())]
    Record(PathBuf, #[source] std::io::Error),
    /// Raw mode failed.
    #[error("cannot put the terminal in raw mode: {0}")]
    Terminal(#[source] std::io::Error),
    /// A thread of the input sources cannot be created.
    #[error("cannot start the {0} thread: {1}")]
    Spawn(&'static str, #[source] std::io::Error),
}

/// The input sources, checked and ready, before the guest starts.
pub struct PreparedInput {
    script: Option<Script>,
    qmp: Option<QmpServer>,
    interactive: bool,
    /// Stdin is a pipe or a file and nothing else types: type its text.
    piped: bool,
    /// `--record`: the interactive session's script.
    recording: Option<Recording>,
    /// `--console-input`: where typed text goes.
    console: ConsoleInput,
}

impl InputArgs {
    /// Reads and parses the scripts, opens the QMP socket and decides on
    /// interactive mode. Call before booting the guest so script errors are
    /// reported first.
    pub fn prepare(&self) -> Result<PreparedInput, InputError> {
        let mut script: Option<Script> = None;
        if let Some(path) = &self.keys {
            let (name, bytes) = if path.as_os_str() == "-" {
                if terminal::is_terminal(0) {
                    // Otherwise the VMM would seem to hang, waiting for EOF.
                    eprintln!(
                        "vmm: reading the keystroke script from stdin (the terminal); \
                         end it with Ctrl+D"
                    );
                }
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
        for (index, text) in self.type_text.iter().enumerate() {
            // With several, messages say which one: `--type #2:1: ...`.
            let source = match self.type_text.len() {
                1 => "--type".to_string(),
                _ => format!("--type #{}", index + 1),
            };
            let line = Script::type_text(&source, text).map_err(InputError::Script)?;
            match &mut script {
                Some(script) => script.extend(line),
                None => script = Some(line),
            }
        }
        if self.console_input == ConsoleInput::Serial {
            if let Some(script) = &script {
                script.check_serial().map_err(InputError::Script)?;
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
            if !terminal::in_foreground(0) {
                return Err(InputError::Background);
            }
            true
        } else if !self.no_interactive && stdin_tty && !stdin_is_script {
            // `vmm &`: the terminal belongs to the foreground job; taking it
            // (raw mode, reads) would stop the VMM with SIGTTOU/SIGTTIN.
            let foreground = terminal::in_foreground(0);
            if !foreground {
                eprintln!(
                    "vmm: running in the background: not reading keys from the terminal \
                     (use --keys, --type or --qmp to type into the guest)"
                );
            }
            foreground
        } else {
            false
        };
        // A pipe or a file on stdin is typed into the guest when no other
        // source drives the keyboard.
        let piped = !stdin_tty
            && !self.no_interactive
            && self.keys.is_none()
            && self.type_text.is_empty()
            && self.qmp.is_none();
        let qmp = match &self.qmp {
            Some(address) => Some(QmpServer::bind(address).map_err(InputError::Qmp)?),
            None => None,
        };
        let recording = match &self.record {
            Some(_) if !interactive => return Err(InputError::RecordWithoutTerminal),
            Some(_) if self.console_input == ConsoleInput::Serial => {
                return Err(InputError::RecordSerialConsole)
            }
            Some(path) => {
                Some(Recording::create(path).map_err(|e| InputError::Record(path.clone(), e))?)
            }
            None => None,
        };
        Ok(PreparedInput {
            script,
            qmp,
            interactive,
            piped,
            recording,
            console: self.console_input,
        })
    }
}

impl PreparedInput {
    /// Whether the terminal will be used as the keyboard (the VMM should then
    /// not read stdin itself).
    pub fn interactive(&self) -> bool {
        self.interactive
    }

    /// Where typed text goes (`--console-input`): a source of host text
    /// (piped stdin, ...) sends it to COM1 with
    /// [`super::serial_text::send_text`] when this is
    /// [`ConsoleInput::Serial`], to the keyboard otherwise.
    pub fn console_input(&self) -> ConsoleInput {
        self.console
    }

    /// Starts the sources on their threads. Raw mode starts here. Call
    /// before the machine runs, so no machine event is missed.
    pub fn start(self, machine: Arc<dyn MachineControl>) -> Result<InputHandle, InputError> {
        let worker =
            KeyWorker::start(machine.clone()).map_err(|e| InputError::Spawn("input-keys", e))?;
        let mut raw = None;
        let recording = self.recording.map(|r| Arc::new(Mutex::new(r)));
        if self.interactive {
            let terminal = terminal::RawTerminal::enter(0).map_err(InputError::Terminal)?;
            let fd = terminal.fd();
            // Kept in the handle: dropping it restores the terminal, also
            // when a later step fails.
            raw = Some(terminal);
            let worker = worker.clone();
            let machine = machine.clone();
            let recording = recording.clone();
            let serial = self.console == ConsoleInput::Serial;
            spawn("input-terminal", move || {
                confine_or_exit(Role::Terminal);
                let result = if serial {
                    terminal::read_raw(fd, |event| match event {
                        terminal::RawEvent::Bytes(bytes) => machine.serial_input(&bytes),
                        terminal::RawEvent::Help => show_escape_help(),
                        terminal::RawEvent::Quit => quit_from_terminal(&*machine),
                    })
                } else {
                    terminal::read_events(fd, |event| match event {
                        terminal::TermEvent::Keys(keys) => {
                            if let Some(recording) = &recording {
                                lock(recording).combo(&keys);
                            }
                            worker.combo(keys, Duration::ZERO);
                            true
                        }
                        terminal::TermEvent::Help => show_escape_help(),
                        terminal::TermEvent::Quit => quit_from_terminal(&*machine),
                    })
                };
                if let Err(e) = result {
                    log::warn!("terminal input stopped: {e}");
                }
            })?;
        }
        if self.piped && self.console == ConsoleInput::Serial {
            let machine = machine.clone();
            spawn("input-stdin", move || {
                confine_or_exit(Role::Stdin);
                send_stdin_to_serial(&*machine)
            })?;
        } else if self.piped {
            let worker = worker.clone();
            spawn("input-stdin", move || {
                confine_or_exit(Role::Stdin);
                type_stdin(&worker)
            })?;
        }
        let mut qmp = None;
        if let Some(server) = self.qmp {
            let sink = server.events();
            let path = server.path().to_path_buf();
            // Subscribed here, before the machine runs: a guest reset at any
            // time reaches QMP clients.
            let machine_events = machine.subscribe();
            let relay = {
                let sink = sink.clone();
                spawn("input-qmp-events", move || {
                    confine_or_exit(Role::QmpEvents);
                    sink.relay(machine_events)
                })?
            };
            let machine = machine.clone();
            let worker = worker.clone();
            spawn("input-qmp", move || {
                confine_or_exit(Role::Qmp);
                server.serve(&*machine, &worker)
            })?;
            qmp = Some(QmpHandle { sink, path, relay });
        }
        let mut script_thread = None;
        if let Some(script) = self.script {
            let machine = machine.clone();
            let console = self.console;
            script_thread = Some(spawn_with("input-script", move || {
                confine_or_exit(Role::Script);
                let result = script::run_on(&script, &*machine, console);
                match &result {
                    Ok(()) => log::debug!("script {} finished", script.source),
                    Err(error @ script::RunError::ExpectTimeout { .. }) => {
                        terminal::restore();
                        eprintln!("vmm: {error}");
                        machine.shutdown_by(shared::status::EXPECT_FAILED, HostStop::Script);
                    }
                    // Reported by `InputHandle::vm_stopped` with the reason.
                    Err(error) => log::debug!("script stopped: {error}"),
                }
                result
            })?);
        }
        Ok(InputHandle {
            qmp,
            script: script_thread,
            recording,
            _raw: raw,
        })
    }
}

/// Types the text read from stdin (a pipe or a file) until its end, paced
/// by the guest as `type` lines are; the guest runs on after it.
/// Characters a US keyboard cannot type are skipped: the first one is
/// named on stderr, and their number at the end.
fn type_stdin(worker: &KeyWorker) {
    let mut decoder = TextDecoder::new();
    let mut skipped = 0usize;
    let mut queue = |typed: Vec<Typed>| {
        for typed in typed {
            match typed {
                Typed::Keys(keys) => worker.combo(keys, Duration::ZERO),
                Typed::Untypeable(c) => {
                    if skipped == 0 {
                        eprintln!(
                            "vmm: stdin: character {c:?} cannot be typed on a US keyboard; skipped"
                        );
                    }
                    skipped += 1;
                }
            }
        }
    };
    let mut stdin = std::io::stdin().lock();
    let mut buffer = [0u8; 4096];
    loop {
        match stdin.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => queue(decoder.feed(&buffer[..n])),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                eprintln!("vmm: stdin: {e}; no more input is typed");
                break;
            }
        }
    }
    queue(decoder.finish());
    if skipped > 1 {
        eprintln!("vmm: stdin: {skipped} characters skipped (not on a US keyboard)");
    }
    log::debug!("stdin: end of input; the guest runs on");
}

/// With `--console-input serial`, a piped stdin goes to COM1's receiver
/// byte for byte, as QEMU's `-serial stdio` passes it (the guest takes CR,
/// LF or CR LF as Enter). One chunk at a time: the next is read only when
/// the guest has taken the previous one, so the host queue stays at most one
/// read long however big the input; at end of file the guest runs on.
fn send_stdin_to_serial(machine: &dyn MachineControl) {
    let mut stdin = std::io::stdin().lock();
    let mut buffer = [0u8; 4096];
    loop {
        match stdin.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => {
                if !machine.serial_input(&buffer[..n]) {
                    eprintln!("vmm: stdin: this machine has no serial input");
                    return;
                }
                while !machine.wait_input_drained(Duration::from_millis(200)) {
                    if machine.is_stopped() {
                        return;
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                eprintln!("vmm: stdin: {e}; no more input is sent");
                break;
            }
        }
    }
    log::debug!("stdin: end of input; the guest runs on");
}

/// `Ctrl+A H`: the escape keys on stderr; the terminal is read on.
fn show_escape_help() -> bool {
    eprint!("{}", terminal::ESCAPE_HELP);
    true
}

/// `Ctrl+A X`: the terminal restored and the machine stopped (status 0);
/// reading ends.
fn quit_from_terminal(machine: &dyn MachineControl) -> bool {
    terminal::restore();
    eprintln!("\nvmm: terminated by Ctrl+A X");
    machine.shutdown_by(0, HostStop::Terminal);
    false
}

/// Starts a named thread of the input sources.
fn spawn(
    name: &'static str,
    body: impl FnOnce() + Send + 'static,
) -> Result<thread::JoinHandle<()>, InputError> {
    spawn_with(name, body)
}

/// Starts a named thread of the input sources that returns a value.
fn spawn_with<T: Send + 'static>(
    name: &'static str,
    body: impl FnOnce() -> T + Send + 'static,
) -> Result<thread::JoinHandle<T>, InputError> {
    thread::Builder::new()
        .name(name.into())
        .spawn(body)
        .map_err(|e| InputError::Spawn(name, e))
}

/// The QMP server's parts the VMM still needs once it runs.
struct QmpHandle {
    sink: EventSink,
    path: PathBuf,
    /// The thread relaying machine events to the client; it ends with the
    /// machine's `Shutdown` event.
    relay: thread::JoinHandle<()>,
}

/// The running input sources.
pub struct InputHandle {
    qmp: Option<QmpHandle>,
    /// The keystroke script's thread and its result.
    script: Option<thread::JoinHandle<Result<(), script::RunError>>>,
    /// `--record`, shared with the terminal's thread.
    recording: Option<Arc<Mutex<Recording>>>,
    _raw: Option<terminal::RawTerminal>,
}

/// The recording, also if a thread panicked while holding it.
fn lock(recording: &Mutex<Recording>) -> std::sync::MutexGuard<'_, Recording> {
    recording
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl InputHandle {
    /// Tells QMP clients the machine stopped (`SHUTDOWN` event, sent once; a
    /// QMP `quit` already sent its own) after any event the machine
    /// published before, removes the QMP socket file and restores the
    /// terminal. Call when [`crate::vm::Vm::run`] has returned, before the
    /// process exits.
    ///
    /// Returns how the keystroke script failed the run, if it did: a line
    /// still pending when the machine stopped (see [`ScriptStopped`]), or
    /// an `expect` that timed out.
    pub fn vm_stopped(self, exit: &VmExit) -> Option<ScriptFailure> {
        if let Some(qmp) = self.qmp {
            // The machine published its `Shutdown` when `run` returned, so
            // the relay thread ends once it has written the events before it.
            if qmp.relay.join().is_err() {
                log::warn!("the QMP event relay panicked");
            }
            let (guest, cause) = shutdown_cause(&exit.reason);
            qmp.sink.shutdown(guest, cause);
            let _ = std::fs::remove_file(&qmp.path);
        }
        terminal::restore();
        if let Some(recording) = &self.recording {
            lock(recording).finish();
        }
        let pending = self.script.and_then(|thread| {
            // The runner notices the stop within a fraction of a second
            // (`wait` lines end early, `expect` returns, pacing polls).
            let deadline = std::time::Instant::now() + SCRIPT_JOIN;
            while !thread.is_finished() && std::time::Instant::now() < deadline {
                thread::sleep(Duration::from_millis(5));
            }
            if !thread.is_finished() {
                log::warn!("the script thread did not stop with the machine");
                return None;
            }
            match thread.join() {
                Ok(Err(script::RunError::Stopped { script, line, what })) => {
                    Some(ScriptFailure::Pending(ScriptStopped {
                        script,
                        line,
                        what,
                        why: stop_reason(exit),
                    }))
                }
                Ok(Err(script::RunError::ExpectTimeout {
                    script,
                    line,
                    text,
                    timeout,
                    ..
                })) => Some(ScriptFailure::ExpectTimeout {
                    script,
                    line,
                    message: format!("expect {text:?} timed out after {timeout:?}"),
                }),
                Ok(Ok(())) => None,
                // Only a machine without a UART (not this VMM's) refuses.
                Ok(Err(error @ script::RunError::NoSerialInput { .. })) => {
                    log::warn!("{error}");
                    None
                }
                Err(_) => {
                    log::warn!("the script thread panicked");
                    None
                }
            }
        });
        pending
    }
}

/// How a keystroke script failed the run (status 126).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScriptFailure {
    /// A line was still pending when the machine stopped; the caller
    /// reports it.
    Pending(ScriptStopped),
    /// An `expect` timed out; the script's thread reported it on stderr
    /// (with the output's tail) when it stopped the machine.
    ExpectTimeout {
        /// Script source name.
        script: String,
        /// 1-based line number.
        line: usize,
        /// `expect "x" timed out after 5s`.
        message: String,
    },
}

impl ScriptFailure {
    /// The failing line for the exit record.
    pub fn script_line(&self) -> ScriptLine {
        match self {
            Self::Pending(stopped) => ScriptLine {
                file: stopped.script.clone(),
                line: stopped.line,
                message: format!("{}: {} first", stopped.what, stopped.why),
            },
            Self::ExpectTimeout {
                script,
                line,
                message,
            } => ScriptLine {
                file: script.clone(),
                line: *line,
                message: message.clone(),
            },
        }
    }
}

/// Longest [`InputHandle::vm_stopped`] waits for the script's thread.
const SCRIPT_JOIN: Duration = Duration::from_secs(5);

/// A keystroke script line was still pending when the machine stopped: the
/// run fails with [`shared::status::EXPECT_FAILED`] (126).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{script}:{line}: {what}: {why} first")]
pub struct ScriptStopped {
    /// Script source name (file, `<stdin>`, `--type`).
    pub script: String,
    /// 1-based line number.
    pub line: usize,
    /// The line (`expect "done"`, `type "ls\n"`, `wait 2s`).
    pub what: String,
    /// Why the machine stopped, from [`stop_reason`].
    pub why: String,
}

/// Why the machine stopped, in words for messages: `the guest exited with
/// status 0`, `the guest triple-faulted ...`, `--timeout expired`, ...
pub fn stop_reason(exit: &VmExit) -> String {
    match &exit.reason {
        ExitReason::GuestExit(_) => format!("the guest exited with status {}", exit.status),
        ExitReason::GuestReset => "the guest reset the machine (--no-reboot)".to_string(),
        ExitReason::TripleFault(at) => format!("the guest crashed (triple fault{at})"),
        ExitReason::Crash(what) => format!("the machine crashed ({what})"),
        ExitReason::Host(by) => by.to_string(),
    }
}

/// The `SHUTDOWN` event's `guest` and `reason` (QEMU's `ShutdownCause`) for
/// an exit reason.
pub fn shutdown_cause(reason: &ExitReason) -> (bool, &'static str) {
    match reason {
        ExitReason::GuestExit(_) => (true, "guest-shutdown"),
        ExitReason::GuestReset | ExitReason::TripleFault(_) => (true, "guest-reset"),
        ExitReason::Host(_) => (false, "host-signal"),
        // Crashes and host failures; also any reason added later.
        _ => (false, "host-error"),
    }
}

#[cfg(test)]
mod tests;
