//! `vmm keys`: runs a keystroke script against any machine that speaks QMP
//! (QEMU, or this VMM's `--qmp`), with the grammar, parser, runner,
//! messages and exit statuses of `vmm --keys`.
//!
//! Keys go through QMP (`input-send-event`, see [`machine`] for why not
//! `send-key`); `expect` watches the machine's serial output from a Unix
//! socket or a file ([`serial`]); the run fails with status 126 when an
//! `expect` times out or a line is still pending when the machine stops
//! (QMP `SHUTDOWN`, the QMP connection or the serial socket closing, or
//! `--timeout`), with the same one-line message as the VMM's own scripts.
//!
//! | file | what |
//! | --- | --- |
//! | `client.rs` | the blocking QMP client: greeting check, commands, events |
//! | `serial.rs` | `--serial unix:PATH\|file:PATH`: the reader into a [`SerialTap`] |
//! | `machine.rs` | [`RemoteMachine`], the runner's [`MachineControl`] over QMP, and pacing |
//! | `stop.rs` | the stop flag and its first cause |
use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use super::qmp::QmpAddress;
use super::script::{self, RunError, Script};
use crate::vm::SerialTap;

pub mod client;
pub mod machine;
pub mod serial;
pub mod stop;

pub use client::{Notice, QmpClient, QmpClientError};
pub use machine::{RemoteMachine, DEFAULT_GAP};
pub use serial::{SerialError, SerialSource};
pub use stop::{StopCause, StopState};

#[cfg(doc)]
use super::MachineControl;

/// Longest `--gap`: one second per key is already far slower than anyone types.
const MAX_GAP_MS: f64 = 1000.0;

/// The options of `vmm keys`.
#[derive(clap::Args, Debug, Clone)]
pub struct KeysArgs {
    /// The machine's QMP socket (QEMU: -qmp unix:PATH,server=on,wait=off).
    #[arg(long, value_name = "unix:PATH")]
    pub qmp: QmpAddress,

    /// Where the machine's serial output is: a Unix socket it listens on
    /// (QEMU: -serial unix:PATH,server=on,wait=off), or a file it writes,
    /// read from its start and followed as it grows.
    #[arg(long, value_name = "unix:PATH|file:PATH")]
    pub serial: SerialSource,

    /// Pause after each character or combination, in milliseconds
    /// (fractions allowed): QMP does not say when the guest read a key.
    #[arg(long, value_name = "MS", default_value_t = DEFAULT_GAP.as_secs_f64() * 1000.0,
          allow_negative_numbers = true)]
    pub gap: f64,

    /// Fail (status 126) if the script has not finished after SECS seconds.
    #[arg(long, value_name = "SECS", allow_negative_numbers = true)]
    pub timeout: Option<f64>,

    /// The keystroke script (`-`: read it from stdin).
    #[arg(value_name = "SCRIPT")]
    pub script: PathBuf,
}

/// Why `vmm keys` cannot run the script: one line on stderr, status 1.
#[derive(Debug, thiserror::Error)]
pub enum KeysError {
    /// `--gap` out of range.
    #[error("--gap {0}: expected a number of milliseconds from 0 to {max}", max = MAX_GAP_MS)]
    Gap(f64),
    /// `--timeout` not a positive number of seconds.
    #[error("--timeout {0}: expected a positive number of seconds")]
    Timeout(f64),
    /// The script cannot be read.
    #[error("cannot read {path}: {1}", path = .0.display())]
    ReadScript(PathBuf, #[source] std::io::Error),
    /// The script has an error.
    #[error(transparent)]
    Script(script::ParseError),
    /// QMP: no server, not QEMU's greeting, an error reply.
    #[error(transparent)]
    Qmp(#[from] QmpClientError),
    /// The serial output cannot be watched.
    #[error(transparent)]
    Serial(#[from] SerialError),
    /// A thread cannot be created.
    #[error("cannot start the {0} thread: {1}")]
    Spawn(&'static str, #[source] std::io::Error),
    /// A QMP command failed while the script ran (the line named).
    #[error("{script}:{line}: {what}: {error}")]
    Failed {
        /// Script source name.
        script: String,
        /// 1-based line number.
        line: usize,
        /// The line as messages name it.
        what: String,
        /// What failed.
        error: String,
    },
}

/// Runs `vmm keys`: the script's result as an exit status (0 when every line
/// is done; [`shared::status::EXPECT_FAILED`] with its message on stderr
/// when an `expect` timed out or a line was pending when the machine
/// stopped), or why it could not run.
pub fn run(args: &KeysArgs) -> Result<i32, KeysError> {
    let gap = Some(args.gap)
        .filter(|ms| (0.0..=MAX_GAP_MS).contains(ms))
        .map(|ms| Duration::from_secs_f64(ms / 1000.0))
        .ok_or(KeysError::Gap(args.gap))?;
    let timeout = match args.timeout {
        Some(secs) => Some(
            Duration::try_from_secs_f64(secs)
                .ok()
                .filter(|d| !d.is_zero())
                .ok_or(KeysError::Timeout(secs))?,
        ),
        None => None,
    };
    let script = read_script(&args.script)?;

    let stop = Arc::new(StopState::default());
    let qmp = {
        let stop = stop.clone();
        QmpClient::connect(&args.qmp.path, move |notice| match notice {
            Notice::Event(event) if event["event"] == "SHUTDOWN" => {
                let reason = event["data"]["reason"]
                    .as_str()
                    .unwrap_or("no reason given");
                stop.stop(StopCause::Shutdown(reason.to_string()));
            }
            Notice::Event(_) => {}
            Notice::Closed => stop.stop(StopCause::QmpClosed),
        })?
    };
    let tap = SerialTap::new();
    args.serial.open()?.watch(tap.clone(), stop.clone())?;
    // A machine started paused (QEMU's -S) starts now that its output is
    // watched, so an `expect` sees it from the first byte.
    if qmp.execute("query-status", None)?["status"] == "prelaunch" {
        qmp.execute("cont", None)?;
    }
    if let Some(timeout) = timeout {
        let stop = stop.clone();
        let tap = tap.clone();
        thread::Builder::new()
            .name("keys-timeout".into())
            .spawn(move || {
                if !stop.wait(timeout) {
                    stop.stop(StopCause::Timeout);
                    tap.close();
                }
            })
            .map_err(|e| KeysError::Spawn("keys-timeout", e))?;
    }

    let machine = RemoteMachine::new(qmp, tap, stop.clone(), gap);
    let result = script::run(&script, &machine);
    let (status, message) = outcome(result, stop.cause())?;
    if let Some(message) = message {
        eprintln!("vmm: {message}");
    }
    Ok(status)
}

/// A finished run's exit status and message for stderr, from the runner's
/// result and why the machine stopped (if it did): 0; 126 for an `expect`
/// that timed out or a line still pending at the stop (the VMM's own
/// messages); an error for a failed QMP command.
fn outcome(
    result: Result<(), RunError>,
    cause: Option<StopCause>,
) -> Result<(i32, Option<String>), KeysError> {
    match result {
        Ok(()) => Ok((0, None)),
        Err(error @ RunError::ExpectTimeout { .. }) => {
            Ok((shared::status::EXPECT_FAILED, Some(error.to_string())))
        }
        // `vmm keys` types on the keyboard only; kept for completeness.
        Err(error @ RunError::NoSerialInput { .. }) => {
            Ok((shared::status::SETUP_ERROR, Some(error.to_string())))
        }
        Err(RunError::Stopped { script, line, what }) => match cause {
            Some(StopCause::Failed(error)) => Err(KeysError::Failed {
                script,
                line,
                what,
                error,
            }),
            cause => {
                let why = cause.map_or("the machine stopped".to_string(), |c| c.to_string());
                let pending = super::ScriptStopped {
                    script,
                    line,
                    what,
                    why,
                };
                Ok((shared::status::EXPECT_FAILED, Some(pending.to_string())))
            }
        },
    }
}

/// Reads and parses the script (`-`: stdin).
fn read_script(path: &PathBuf) -> Result<Script, KeysError> {
    let (name, bytes) = if path.as_os_str() == "-" {
        let mut bytes = Vec::new();
        std::io::stdin()
            .read_to_end(&mut bytes)
            .map_err(|e| KeysError::ReadScript(path.clone(), e))?;
        ("<stdin>".to_string(), bytes)
    } else {
        let bytes = std::fs::read(path).map_err(|e| KeysError::ReadScript(path.clone(), e))?;
        (path.display().to_string(), bytes)
    };
    Script::parse_bytes(&name, &bytes).map_err(KeysError::Script)
}

#[cfg(test)]
mod tests;
