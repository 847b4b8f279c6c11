//! The machine's serial output for `expect`: read from a Unix socket the
//! machine serves (QEMU's `-serial unix:PATH,server=on,wait=off`; we
//! connect as a client) or followed in a file as it grows, and appended to a
//! [`SerialTap`], the same matcher the VMM's own scripts wait on.
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use super::stop::{StopCause, StopState};
use crate::vm::SerialTap;

/// How often a followed file is checked for new output when it has none
/// (an `expect` sees file output at most this late).
pub const FILE_POLL: Duration = Duration::from_millis(10);

/// How often the socket reader looks whether the machine stopped.
const SOCKET_POLL: Duration = Duration::from_millis(50);

/// After the machine stopped (QMP `SHUTDOWN` or its QMP connection closed),
/// how long the serial socket may take to reach its end: the machine's last
/// output is read before `expect`s give up.
pub const DRAIN_GRACE: Duration = Duration::from_secs(2);

/// When the serial socket ends first, how long the QMP side has to say why
/// (its `SHUTDOWN` event, or its connection closing too) before the stop is
/// put down to the serial socket: the QMP reason says more, and reporting
/// it does not depend on which reader thread ran first.
pub const QMP_VERDICT_GRACE: Duration = Duration::from_secs(1);

/// Where the serial output comes from (`--serial`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SerialSource {
    /// `unix:PATH`: connect to the socket the machine listens on.
    Unix(PathBuf),
    /// `file:PATH`: read the file from its start and follow it as it grows.
    File(PathBuf),
}

/// A `--serial` value that is not understood.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SerialSourceError {
    /// Neither `unix:` nor `file:`.
    #[error("expected unix:PATH or file:PATH")]
    Scheme,
    /// No path after the scheme.
    #[error("needs a path after '{0}'")]
    EmptyPath(&'static str),
}

impl std::str::FromStr for SerialSource {
    type Err = SerialSourceError;

    /// `unix:PATH` (QEMU's `,server=on,wait=off` options, if copied from
    /// its command line, are ignored: we are the client) or `file:PATH`.
    fn from_str(spec: &str) -> Result<Self, Self::Err> {
        if let Some(rest) = spec.strip_prefix("unix:") {
            let path = rest.split(',').next().unwrap_or("");
            if path.is_empty() {
                return Err(SerialSourceError::EmptyPath("unix:"));
            }
            return Ok(SerialSource::Unix(path.into()));
        }
        if let Some(path) = spec.strip_prefix("file:") {
            if path.is_empty() {
                return Err(SerialSourceError::EmptyPath("file:"));
            }
            return Ok(SerialSource::File(path.into()));
        }
        Err(SerialSourceError::Scheme)
    }
}

/// Why the serial output cannot be watched.
#[derive(Debug, thiserror::Error)]
pub enum SerialError {
    /// The socket cannot be connected.
    #[error("serial socket {path}: {1} (is the machine running with -serial unix:{path},server=on,wait=off?)", path = .0.display())]
    Connect(PathBuf, #[source] io::Error),
    /// The file cannot be opened.
    #[error("serial file {path}: {1}", path = .0.display())]
    Open(PathBuf, #[source] io::Error),
    /// The watcher thread cannot be created.
    #[error("cannot start the serial reader thread: {0}")]
    Spawn(#[source] io::Error),
}

/// An opened source, before its reader thread starts.
pub enum SerialInput {
    /// A connected socket.
    Socket(UnixStream),
    /// An open file, read from its start.
    File(File),
}

impl SerialSource {
    /// Connects to the socket or opens the file.
    pub fn open(&self) -> Result<SerialInput, SerialError> {
        match self {
            SerialSource::Unix(path) => UnixStream::connect(path)
                .map(SerialInput::Socket)
                .map_err(|e| SerialError::Connect(path.clone(), e)),
            SerialSource::File(path) => File::open(path)
                .map(SerialInput::File)
                .map_err(|e| SerialError::Open(path.clone(), e)),
        }
    }
}

impl SerialInput {
    /// Starts the thread that appends the output to `tap` until the end:
    /// a socket's end of file (the machine closed it: a stop,
    /// [`StopCause::SerialClosed`] unless QMP gives a reason within
    /// [`QMP_VERDICT_GRACE`]), or, once `stop` says the machine
    /// stopped, the end of what the file holds or the socket's end within
    /// [`DRAIN_GRACE`]. Then it closes `tap`, so pending `expect`s end.
    pub fn watch(self, tap: SerialTap, stop: Arc<StopState>) -> Result<(), SerialError> {
        thread::Builder::new()
            .name("keys-serial".into())
            .spawn(move || {
                match self {
                    SerialInput::Socket(socket) => read_socket(socket, &tap, &stop),
                    SerialInput::File(file) => follow_file(file, &tap, &stop),
                }
                tap.close();
            })
            .map(drop)
            .map_err(SerialError::Spawn)
    }
}

/// Reads the socket into `tap` until its end (or the drain grace after a stop).
fn read_socket(mut socket: UnixStream, tap: &SerialTap, stop: &StopState) {
    if let Err(e) = socket.set_read_timeout(Some(SOCKET_POLL)) {
        log::warn!("serial socket: {e}");
    }
    let mut buffer = [0u8; 4096];
    let mut give_up: Option<Instant> = None;
    loop {
        match socket.read(&mut buffer) {
            Ok(0) => {
                if !stop.wait(QMP_VERDICT_GRACE) {
                    stop.stop(StopCause::SerialClosed);
                }
                return;
            }
            Ok(n) => tap.push(&buffer[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                log::debug!("serial socket: {e}");
                stop.stop(StopCause::SerialClosed);
                return;
            }
        }
        if stop.is_stopped() {
            let deadline = *give_up.get_or_insert_with(|| Instant::now() + DRAIN_GRACE);
            if Instant::now() >= deadline {
                return;
            }
        }
    }
}

/// Follows the file into `tap`: what it holds, then what is appended, until
/// the machine stopped and everything written by then is read.
fn follow_file(mut file: File, tap: &SerialTap, stop: &StopState) {
    let mut buffer = [0u8; 4096];
    loop {
        // Looked at before reading: output written before the stop is in
        // the file by then, so reading to its end after seeing the stop
        // gets all of it.
        let stopped = stop.is_stopped();
        match file.read(&mut buffer) {
            Ok(0) if stopped => return,
            Ok(0) => {
                stop.wait(FILE_POLL);
            }
            Ok(n) => tap.push(&buffer[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                log::warn!("serial file: {e}");
                return;
            }
        }
    }
}
