//! The input sources' command-line options (`--keys`, `--type`, `--qmp`,
//! `--interactive`), their preparation before the guest boots and their
//! threads once it runs.
use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use super::machine::MachineControl;
use super::qmp::{self, EventSink, QmpAddress, QmpServer};
use super::script::{self, Script};
use super::terminal;
use super::worker::KeyWorker;
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

    /// Do not read keys from the terminal.
    #[arg(long, overrides_with = "interactive")]
    pub no_interactive: bool,
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
    /// `--interactive` together with `--keys -`.
    #[error("--interactive and --keys - both want stdin; choose one")]
    StdinTwice,
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

    /// Starts the sources on their threads. Raw mode starts here. Call
    /// before the machine runs, so no machine event is missed.
    pub fn start(self, machine: Arc<dyn MachineControl>) -> Result<InputHandle, InputError> {
        let worker =
            KeyWorker::start(machine.clone()).map_err(|e| InputError::Spawn("input-keys", e))?;
        let mut raw = None;
        if self.interactive {
            let terminal = terminal::RawTerminal::enter(0).map_err(InputError::Terminal)?;
            let fd = terminal.fd();
            // Kept in the handle: dropping it restores the terminal, also
            // when a later step fails.
            raw = Some(terminal);
            let worker = worker.clone();
            let machine = machine.clone();
            spawn("input-terminal", move || {
                confine_or_exit(Role::Terminal);
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
                        machine.shutdown_by(0, HostStop::Terminal);
                        false
                    }
                });
                if let Err(e) = result {
                    log::warn!("terminal input stopped: {e}");
                }
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
            script_thread = Some(spawn_with("input-script", move || {
                confine_or_exit(Role::Script);
                let result = script::run(&script, &*machine);
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
            _raw: raw,
        })
    }
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
    _raw: Option<terminal::RawTerminal>,
}

impl InputHandle {
    /// Tells QMP clients the machine stopped (`SHUTDOWN` event, sent once; a
    /// QMP `quit` already sent its own) after any event the machine
    /// published before, removes the QMP socket file and restores the
    /// terminal. Call when [`crate::vm::Vm::run`] has returned, before the
    /// process exits.
    ///
    /// Returns the keystroke script's line still pending when the machine
    /// stopped, if any: the run has then failed (see [`ScriptStopped`]).
    pub fn vm_stopped(self, exit: &VmExit) -> Option<ScriptStopped> {
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
                    Some((script, line, what))
                }
                Ok(_) => None,
                Err(_) => {
                    log::warn!("the script thread panicked");
                    None
                }
            }
        });
        pending.map(|(script, line, what)| ScriptStopped {
            script,
            line,
            what,
            why: stop_reason(exit),
        })
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
