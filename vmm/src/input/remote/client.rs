//! A small blocking QMP client: connects to a QMP server's Unix socket
//! (QEMU's, or this VMM's `--qmp`), checks that the greeting is QEMU's,
//! negotiates capabilities and runs commands one at a time.
//!
//! A reader thread owns the socket's read side: replies go back to the
//! command waiting for them (matched by `id`), asynchronous events and the
//! end of the connection go to a [`Notice`] callback, so a `SHUTDOWN` is
//! seen even while no command runs.
use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// How long the server may take to send its greeting.
pub const GREETING_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a command's reply may take. QEMU answers `input-send-event` in about a
/// millisecond; a machine that takes this long is hung.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(10);

/// Longest piece of a bad greeting quoted in an error.
const QUOTE_MAX: usize = 200;

/// What the reader thread reports besides replies.
#[derive(Debug)]
pub enum Notice {
    /// An asynchronous event (`{"event": ..., "data": ..., "timestamp": ...}`).
    Event(Value),
    /// The server closed the connection (or reading it failed).
    Closed,
}

/// Why the client cannot connect or a command failed.
#[derive(Debug, thiserror::Error)]
pub enum QmpClientError {
    /// Nothing listens at the path.
    #[error("QMP socket {path}: {1} (is the machine running with -qmp unix:{path},server=on,wait=off?)", path = .0.display())]
    Connect(PathBuf, #[source] io::Error),
    /// The server sent nothing in time.
    #[error("QMP socket {path}: no greeting within {secs} s", path = .0.display(), secs = GREETING_TIMEOUT.as_secs())]
    NoGreeting(PathBuf),
    /// The first message is not QEMU's greeting.
    #[error("QMP socket {path}: not a QMP server: expected a greeting {{\"QMP\": {{\"version\": {{\"qemu\": ...}}, \"capabilities\": [...]}}}}, got {1}", path = .0.display())]
    NotQmp(PathBuf, String),
    /// The server answered a command with an error.
    #[error("QMP {command}: {class}: {desc}")]
    Reply {
        /// The command.
        command: String,
        /// QEMU's error class (`GenericError`, `CommandNotFound`, ...).
        class: String,
        /// The server's description.
        desc: String,
    },
    /// The connection closed before the reply.
    #[error("QMP {0}: the connection closed before the reply")]
    Closed(String),
    /// No reply in [`REPLY_TIMEOUT`].
    #[error("QMP {0}: no reply within {secs} s", secs = REPLY_TIMEOUT.as_secs())]
    Timeout(String),
    /// Writing the command failed.
    #[error("QMP {0}: cannot send: {1}")]
    Send(String, #[source] io::Error),
    /// The reader thread cannot be created.
    #[error("cannot start the QMP reader thread: {0}")]
    Spawn(#[source] io::Error),
}

/// The command side of the connection.
struct Commands {
    writer: UnixStream,
    replies: Receiver<Value>,
    next_id: u64,
}

/// A QMP connection in command mode.
pub struct QmpClient {
    commands: Mutex<Commands>,
}

impl QmpClient {
    /// Connects to the socket at `path`, reads and checks the greeting,
    /// sends `qmp_capabilities`. `notices` gets the events and the end of
    /// the connection, on the reader thread.
    pub fn connect(
        path: &Path,
        notices: impl FnMut(Notice) + Send + 'static,
    ) -> Result<QmpClient, QmpClientError> {
        let stream =
            UnixStream::connect(path).map_err(|e| QmpClientError::Connect(path.into(), e))?;
        QmpClient::handshake(path, stream, notices)
    }

    /// [`QmpClient::connect`] on a connected stream (`path` names it in
    /// errors).
    pub fn handshake(
        path: &Path,
        stream: UnixStream,
        notices: impl FnMut(Notice) + Send + 'static,
    ) -> Result<QmpClient, QmpClientError> {
        let io_error = |e| QmpClientError::Connect(path.into(), e);
        stream
            .set_read_timeout(Some(GREETING_TIMEOUT))
            .map_err(io_error)?;
        let writer = stream.try_clone().map_err(io_error)?;
        let mut reader = BufReader::new(stream);
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Err(QmpClientError::NoGreeting(path.into()))
            }
            Err(e) => return Err(io_error(e)),
        }
        check_greeting(&line).map_err(|got| QmpClientError::NotQmp(path.into(), got))?;
        reader.get_ref().set_read_timeout(None).map_err(io_error)?;

        let (replies_tx, replies) = mpsc::channel();
        thread::Builder::new()
            .name("keys-qmp-reader".into())
            .spawn(move || read_messages(reader, replies_tx, notices))
            .map_err(QmpClientError::Spawn)?;
        let client = QmpClient {
            commands: Mutex::new(Commands {
                writer,
                replies,
                next_id: 0,
            }),
        };
        client.execute("qmp_capabilities", None)?;
        Ok(client)
    }

    /// Runs `command` with `arguments`; its `return` value, or why not.
    pub fn execute(
        &self,
        command: &str,
        arguments: Option<Value>,
    ) -> Result<Value, QmpClientError> {
        // One command at a time: QMP answers in order, and a reply left
        // over from an earlier timed-out command is recognised by its id.
        let mut commands = self
            .commands
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        commands.next_id += 1;
        let id = commands.next_id;
        let mut message = json!({ "execute": command, "id": id });
        if let Some(arguments) = arguments {
            message["arguments"] = arguments;
        }
        let mut text = message.to_string();
        text.push('\n');
        commands
            .writer
            .write_all(text.as_bytes())
            .map_err(|e| match e.kind() {
                io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset => {
                    QmpClientError::Closed(command.into())
                }
                _ => QmpClientError::Send(command.into(), e),
            })?;
        let deadline = Instant::now() + REPLY_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let reply = match commands.replies.recv_timeout(left) {
                Ok(reply) => reply,
                Err(RecvTimeoutError::Timeout) => {
                    return Err(QmpClientError::Timeout(command.into()))
                }
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(QmpClientError::Closed(command.into()))
                }
            };
            if reply.get("id") != Some(&json!(id)) {
                log::debug!("QMP: dropping a reply for another command: {reply}");
                continue;
            }
            if let Some(value) = reply.get("return") {
                return Ok(value.clone());
            }
            let error = &reply["error"];
            let text = |field: &str| error[field].as_str().unwrap_or("?").to_string();
            return Err(QmpClientError::Reply {
                command: command.into(),
                class: text("class"),
                desc: text("desc"),
            });
        }
    }
}

/// Checks QEMU's greeting shape: `{"QMP": {"version": {"qemu": {"major":
/// N, "minor": N, "micro": N}, "package": S}, "capabilities": [...]}}`; on
/// failure, what came instead (quoted, shortened).
pub(super) fn check_greeting(line: &str) -> Result<(), String> {
    let quoted = || {
        let text = line.trim_end();
        if text.is_empty() {
            return "nothing (the connection closed)".to_string();
        }
        let mut cut: String = text.chars().take(QUOTE_MAX).collect();
        if cut.len() < text.len() {
            cut.push_str("...");
        }
        format!("{cut:?}")
    };
    let value: Value = serde_json::from_str(line).map_err(|_| quoted())?;
    let qmp = &value["QMP"];
    let qemu = &qmp["version"]["qemu"];
    let numbers = ["major", "minor", "micro"]
        .iter()
        .all(|field| qemu[field].is_u64());
    if numbers && qmp["version"]["package"].is_string() && qmp["capabilities"].is_array() {
        Ok(())
    } else {
        Err(quoted())
    }
}

/// The reader thread: replies to `replies`, events and the end to `notices`.
fn read_messages(
    mut reader: BufReader<UnixStream>,
    replies: Sender<Value>,
    mut notices: impl FnMut(Notice),
) {
    let mut line = String::new();
    loop {
        line.clear();
        match reader.read_line(&mut line) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                log::debug!("QMP: reading failed: {e}");
                break;
            }
        }
        let value: Value = match serde_json::from_str(&line) {
            Ok(value) => value,
            Err(e) => {
                log::warn!("QMP: ignoring a message that is not JSON ({e}): {line:?}");
                continue;
            }
        };
        if value.get("event").is_some() {
            notices(Notice::Event(value));
        } else if value.get("return").is_some() || value.get("error").is_some() {
            // The command side may have given up on it (timeout): fine.
            let _ = replies.send(value);
        } else {
            log::warn!("QMP: ignoring an unexpected message: {value}");
        }
    }
    // The reply channel closes when `replies` drops: a waiting command
    // learns the connection closed.
    drop(replies);
    notices(Notice::Closed);
}
