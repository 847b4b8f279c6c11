//! The socket side: `--qmp` addresses, the listening Unix socket, one client
//! at a time, and the event sink that writes asynchronous events to it.
use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

use super::messages::{greeting, reset_event, shutdown_event};
use super::session::{Action, QmpSession};
use crate::input::machine::MachineControl;
use crate::input::worker::KeyWorker;
use crate::vm::{MachineEvent, ResetCause};

/// Where a `--qmp` option asks the server to listen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QmpAddress {
    /// The socket path.
    pub path: PathBuf,
}

/// A `--qmp` value that is not understood.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum QmpAddressError {
    /// Not `unix:PATH`.
    #[error("--qmp '{0}': only unix:PATH sockets are supported")]
    NotUnix(String),
    /// `unix:` with no path.
    #[error("--qmp unix: needs a socket path")]
    EmptyPath,
    /// An option other than `server`/`wait`, or with a value this VMM cannot honour.
    #[error("--qmp option '{0}' is not supported (accepted: server, server=on, wait=off, nowait)")]
    BadOption(String),
}

impl std::str::FromStr for QmpAddress {
    type Err = QmpAddressError;

    /// Parses QEMU's syntax: `unix:PATH[,server=on][,wait=off]` (also the
    /// legacy `server`, `nowait`). The server always listens and never waits
    /// for a client before starting the guest.
    fn from_str(spec: &str) -> Result<Self, Self::Err> {
        let rest = spec
            .strip_prefix("unix:")
            .ok_or_else(|| QmpAddressError::NotUnix(spec.into()))?;
        let mut parts = rest.split(',');
        let path = parts.next().unwrap_or("");
        if path.is_empty() {
            return Err(QmpAddressError::EmptyPath);
        }
        for option in parts {
            match option {
                "server" | "server=on" | "wait=off" | "nowait" => {}
                other => return Err(QmpAddressError::BadOption(other.to_string())),
            }
        }
        Ok(QmpAddress {
            path: PathBuf::from(path),
        })
    }
}

/// Errors setting up the socket.
#[derive(Debug, thiserror::Error)]
pub enum QmpServerError {
    /// The path exists and is not a socket: refuse to replace it.
    #[error("QMP socket {path}: path exists and is not a socket", path = .0.display())]
    PathInUse(PathBuf),
    /// `bind` failed.
    #[error("QMP socket {path}: cannot listen: {1}", path = .0.display())]
    Bind(PathBuf, #[source] std::io::Error),
}

/// The listening QMP socket and the connection currently served.
pub struct QmpServer {
    path: PathBuf,
    listener: UnixListener,
    events: EventSink,
}

/// Sends events to the connected, negotiated client (if any).
///
/// Its lock is held while the server writes a batch of answers, so an event
/// never lands in the middle of a message; a client that stops reading
/// holds it at most the socket's write timeout.
#[derive(Clone, Default)]
pub struct EventSink {
    inner: Arc<Mutex<SinkState>>,
}

#[derive(Default)]
struct SinkState {
    client: Option<UnixStream>,
    shutdown_sent: bool,
}

impl EventSink {
    /// Writes `message` to the current client, if it completed negotiation.
    pub fn send(&self, message: &Value) {
        let mut state = self.lock();
        if let Some(client) = state.client.as_mut() {
            if write_message(client, message).is_err() {
                state.client = None;
            }
        }
    }

    /// Sends the `SHUTDOWN` event once (later calls do nothing).
    pub fn shutdown(&self, guest: bool, reason: &str) {
        let mut state = self.lock();
        if state.shutdown_sent {
            return;
        }
        state.shutdown_sent = true;
        if let Some(client) = state.client.as_mut() {
            let _ = write_message(client, &shutdown_event(guest, reason));
        }
    }

    /// Relays the machine's own events to the client until the machine
    /// stops (run it on its own thread): a guest-requested reset becomes the
    /// `RESET` event (`guest: true`, `guest-reset`). Pause, resume and host
    /// resets come from QMP commands here, whose session already sent their
    /// events before the answer, as QEMU orders them; the `SHUTDOWN` event is
    /// sent by [`EventSink::shutdown`] once the VMM has finished.
    pub fn relay(&self, events: Receiver<MachineEvent>) {
        for event in events {
            match event {
                MachineEvent::Reset(ResetCause::Guest) => {
                    self.send(&reset_event(true, "guest-reset"))
                }
                MachineEvent::Shutdown(_) => return,
                MachineEvent::Reset(ResetCause::Host)
                | MachineEvent::Stop
                | MachineEvent::Resume => {}
            }
        }
    }

    fn attach(&self, client: Option<UnixStream>) {
        self.lock().client = client;
    }

    fn mark_shutdown_sent(&self) {
        self.lock().shutdown_sent = true;
    }

    /// The sink's lock; a panic while writing leaves nothing half-updated
    /// worth refusing, so poisoning is ignored.
    fn lock(&self) -> std::sync::MutexGuard<'_, SinkState> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn write_message(stream: &mut UnixStream, message: &Value) -> std::io::Result<()> {
    let mut line = serde_json::to_vec(message).map_err(std::io::Error::other)?;
    line.extend_from_slice(b"\r\n");
    stream.write_all(&line)
}

impl QmpServer {
    /// Listens on `address`, replacing a stale socket file there (as QEMU).
    pub fn bind(address: &QmpAddress) -> Result<QmpServer, QmpServerError> {
        let path = address.path.clone();
        if let Ok(meta) = std::fs::symlink_metadata(&path) {
            if !meta.file_type().is_socket() {
                return Err(QmpServerError::PathInUse(path));
            }
            let _ = std::fs::remove_file(&path);
        }
        let listener =
            UnixListener::bind(&path).map_err(|e| QmpServerError::Bind(path.clone(), e))?;
        Ok(QmpServer {
            path,
            listener,
            events: EventSink::default(),
        })
    }

    /// The socket path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A handle to send asynchronous events (`SHUTDOWN` when the guest exits).
    pub fn events(&self) -> EventSink {
        self.events.clone()
    }

    /// Serves clients one after the other, forever (run it on its own
    /// thread). Keys go to `keys`; `quit` stops `machine` (status 0) after
    /// the answer and the `SHUTDOWN` event are written.
    pub fn serve(self, machine: &dyn MachineControl, keys: &KeyWorker) {
        for stream in self.listener.incoming() {
            let stream = match stream {
                Ok(stream) => stream,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => {
                    log::warn!("QMP: accept failed: {e}");
                    continue;
                }
            };
            if let Err(e) = self.serve_client(stream, machine, keys) {
                log::debug!("QMP: client connection ended: {e}");
            }
            self.events.attach(None);
        }
    }

    fn serve_client(
        &self,
        mut stream: UnixStream,
        machine: &dyn MachineControl,
        keys: &KeyWorker,
    ) -> std::io::Result<()> {
        // A client that stops reading must not block event delivery forever.
        stream.set_write_timeout(Some(Duration::from_secs(5)))?;
        let mut writer = stream.try_clone()?;
        write_message(&mut writer, &greeting())?;
        let mut session = QmpSession::new();
        let mut buffer = [0u8; 4096];
        loop {
            let n = match stream.read(&mut buffer) {
                Ok(0) => return Ok(()),
                Ok(n) => n,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            let was_negotiated = session.negotiated();
            let (messages, actions) = session.feed(&buffer[..n], machine);
            {
                // Hold the sink while writing so events never interleave a message.
                let mut state = self.events.lock();
                for message in &messages {
                    write_message(&mut writer, message)?;
                }
                if !was_negotiated && session.negotiated() {
                    state.client = Some(writer.try_clone()?);
                }
            }
            for action in actions {
                match action {
                    Action::SendKeys { keys: combo, hold } => keys.combo(combo, hold),
                    Action::KeyEvent { key, down } => keys.event(key, down),
                    Action::Quit => {
                        // The connection stays open (input is ignored) until
                        // the client hangs up or the process exits, as QEMU.
                        self.events.mark_shutdown_sent();
                        let _ = writer.flush();
                        machine.shutdown_by(0, crate::vm::HostStop::QmpQuit);
                    }
                }
            }
        }
    }
}

impl Drop for QmpServer {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}
