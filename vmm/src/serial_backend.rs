//! `--serial`: where COM1 is connected on the host, as QEMU's `-serial`.
//!
//! | value | output | input |
//! | --- | --- | --- |
//! | `stdio` (default) | stdout (`stdout_sink`) | the terminal, with `--console-input serial` |
//! | `file:PATH` | PATH, created or truncated | none |
//! | `unix:PATH` | the connected client | the connected client |
//! | `none` | nowhere (scripts' `expect` still sees it) | none |
//!
//! `unix:PATH` is QEMU's `-serial unix:PATH,server=on,wait=off`: the VMM
//! listens on PATH (a stale socket file is replaced), the guest starts
//! without waiting, one client at a time is served and the next one is
//! accepted when it disconnects. Output while no client is connected is
//! dropped, as QEMU does; what a client sends goes to COM1's receiver
//! ([`crate::VmHandle::serial_input`]), queued and paced by the UART, so
//! nothing is lost however slowly the guest reads.
//!
//! Output never blocks the machine: file and socket are written by a
//! writer thread behind a [`StdoutSink`] queue, as stdout is.
use crate::sandbox::{confine_or_exit, Role};
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::thread;

use crate::input::MachineControl;
use crate::stdout_sink::StdoutSink;

/// Where COM1 is connected (`--serial`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum SerialBackend {
    /// The VMM's stdout (and the terminal for input).
    #[default]
    Stdio,
    /// Output to a file.
    File(PathBuf),
    /// A listening Unix socket carrying both directions.
    Unix(PathBuf),
    /// Not connected.
    None,
}

/// A `--serial` value that cannot be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SerialBackendError {
    /// Not one of the forms.
    #[error("'{0}': expected stdio, none, file:PATH or unix:PATH")]
    Form(String),
    /// An empty path.
    #[error("'{0}': the path is empty")]
    EmptyPath(String),
    /// A `unix:` option other than QEMU's server options.
    #[error(
        "'{0}': option '{1}' is not supported (accepted: server, server=on, wait=off, nowait)"
    )]
    BadOption(String, String),
}

impl std::str::FromStr for SerialBackend {
    type Err = SerialBackendError;

    fn from_str(spec: &str) -> Result<Self, Self::Err> {
        let path = |rest: &str| {
            if rest.is_empty() {
                Err(SerialBackendError::EmptyPath(spec.into()))
            } else {
                Ok(PathBuf::from(rest))
            }
        };
        match spec {
            "stdio" => Ok(Self::Stdio),
            "none" => Ok(Self::None),
            _ => {
                if let Some(rest) = spec.strip_prefix("file:") {
                    Ok(Self::File(path(rest)?))
                } else if let Some(rest) = spec.strip_prefix("unix:") {
                    let mut parts = rest.split(',');
                    let socket = path(parts.next().unwrap_or_default())?;
                    for option in parts {
                        match option {
                            "server" | "server=on" | "wait=off" | "nowait" => {}
                            other => {
                                return Err(SerialBackendError::BadOption(
                                    spec.into(),
                                    other.into(),
                                ))
                            }
                        }
                    }
                    Ok(Self::Unix(socket))
                } else {
                    Err(SerialBackendError::Form(spec.into()))
                }
            }
        }
    }
}

/// The backend cannot be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The output file cannot be created.
    #[error("--serial: cannot create {path}: {1}", path = .0.display())]
    File(PathBuf, #[source] io::Error),
    /// The socket cannot be bound.
    #[error("--serial: cannot listen on {path}: {1}", path = .0.display())]
    Bind(PathBuf, #[source] io::Error),
    /// PATH exists and is not a socket (never removed).
    #[error("--serial: {path} exists and is not a socket", path = .0.display())]
    NotASocket(PathBuf),
    /// A thread cannot be created.
    #[error("--serial: cannot start the {0} thread: {1}")]
    Spawn(&'static str, #[source] io::Error),
}

/// An opened backend, before the machine runs.
pub struct OpenSerial {
    /// COM1's output queue for file and socket (`VmConfig::serial_sink`).
    pub sink: Option<StdoutSink>,
    /// COM1's output goes to stdout (`VmConfig::serial_to_stdout`).
    pub to_stdout: bool,
    listener: Option<(UnixListener, PathBuf, Client)>,
}

/// The socket's current client, shared by the writer and the acceptor.
type Client = Arc<Mutex<Option<UnixStream>>>;

impl SerialBackend {
    /// Opens the file or binds the socket. Call before the machine is built
    /// (its output goes to [`OpenSerial::sink`]).
    pub fn open(&self) -> Result<OpenSerial, OpenError> {
        let (sink, to_stdout, listener) = match self {
            Self::Stdio => (None, true, None),
            Self::None => (None, false, None),
            Self::File(path) => {
                let file = File::create(path).map_err(|e| OpenError::File(path.clone(), e))?;
                let sink = StdoutSink::spawn_as(file, StdoutSink::CAPACITY, Role::SerialWriter)
                    .map_err(|e| OpenError::Spawn("serial-file", e))?;
                (Some(sink), false, None)
            }
            Self::Unix(path) => {
                if let Ok(meta) = std::fs::symlink_metadata(path) {
                    if !meta.file_type().is_socket() {
                        return Err(OpenError::NotASocket(path.clone()));
                    }
                    let _ = std::fs::remove_file(path);
                }
                let listener =
                    UnixListener::bind(path).map_err(|e| OpenError::Bind(path.clone(), e))?;
                let client: Client = Arc::default();
                let sink = StdoutSink::spawn_as(
                    ClientWriter(client.clone()),
                    StdoutSink::CAPACITY,
                    Role::SerialWriter,
                )
                .map_err(|e| OpenError::Spawn("serial-socket", e))?;
                (Some(sink), false, Some((listener, path.clone(), client)))
            }
        };
        Ok(OpenSerial {
            sink,
            to_stdout,
            listener,
        })
    }
}

impl OpenSerial {
    /// Starts serving the socket's clients: what they send goes to the
    /// machine's serial input. Returns the socket's path, to remove at exit.
    pub fn start(self, machine: Arc<dyn MachineControl>) -> Result<Option<PathBuf>, OpenError> {
        let Some((listener, path, client)) = self.listener else {
            return Ok(None);
        };
        thread::Builder::new()
            .name("serial-socket".into())
            .spawn(move || {
                confine_or_exit(Role::SerialSocket);
                serve(&listener, &client, &*machine)
            })
            .map_err(|e| OpenError::Spawn("serial-socket", e))?;
        Ok(Some(path))
    }
}

/// Accepts one client at a time and forwards its bytes to COM1 until the
/// machine stops.
fn serve(listener: &UnixListener, client: &Client, machine: &dyn MachineControl) {
    for stream in listener.incoming() {
        if machine.is_stopped() {
            return;
        }
        let mut stream = match stream {
            Ok(stream) => stream,
            Err(error) => {
                log::warn!("serial socket: accept failed: {error}");
                continue;
            }
        };
        match stream.try_clone() {
            Ok(writer) => *lock(client) = Some(writer),
            Err(error) => {
                log::warn!("serial socket: {error}");
                continue;
            }
        }
        let mut buffer = [0u8; 4096];
        loop {
            match stream.read(&mut buffer) {
                Ok(0) => break,
                Ok(n) => {
                    machine.serial_input(&buffer[..n]);
                }
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        *lock(client) = None;
    }
}

fn lock(client: &Client) -> std::sync::MutexGuard<'_, Option<UnixStream>> {
    client.lock().unwrap_or_else(|poison| poison.into_inner())
}

/// The socket's output: to the current client, dropped with none (as
/// QEMU's socket chardev without a connection). A failing client is
/// forgotten; the output queue itself never sees an error.
struct ClientWriter(Client);

impl Write for ClientWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        // A clone of the stream, so the acceptor can replace the client
        // while this write blocks on a slow reader.
        let stream = lock(&self.0).as_ref().and_then(|s| s.try_clone().ok());
        if let Some(mut stream) = stream {
            if stream.write_all(data).is_err() {
                let _ = stream.shutdown(std::net::Shutdown::Both);
            }
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Removes the socket file at exit (the listener closes with the process).
pub fn remove_socket(path: &Path) {
    let _ = std::fs::remove_file(path);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_qemus_forms() {
        assert_eq!("stdio".parse(), Ok(SerialBackend::Stdio));
        assert_eq!("none".parse(), Ok(SerialBackend::None));
        assert_eq!(
            "file:/tmp/x".parse(),
            Ok(SerialBackend::File("/tmp/x".into()))
        );
        assert_eq!(
            "unix:/tmp/s".parse(),
            Ok(SerialBackend::Unix("/tmp/s".into()))
        );
        assert_eq!(
            "unix:/tmp/s,server=on,wait=off".parse(),
            Ok(SerialBackend::Unix("/tmp/s".into()))
        );
        assert_eq!(
            "tcp:1234".parse::<SerialBackend>().unwrap_err().to_string(),
            "'tcp:1234': expected stdio, none, file:PATH or unix:PATH"
        );
        assert_eq!(
            "file:".parse::<SerialBackend>().unwrap_err().to_string(),
            "'file:': the path is empty"
        );
        assert!(matches!(
            "unix:/s,wait=on".parse::<SerialBackend>(),
            Err(SerialBackendError::BadOption(_, _))
        ));
    }
}
