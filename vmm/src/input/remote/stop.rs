//! Whether the remote machine stopped, and the first reason seen: the QMP
//! reader, the serial reader, the `--timeout` timer and failed commands all
//! report here, and the script runner asks.
use std::fmt;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Duration;

/// Why `vmm keys` considers the machine stopped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StopCause {
    /// The QMP `SHUTDOWN` event, with its `reason` (QEMU's `ShutdownCause`:
    /// `guest-shutdown`, `guest-reset` with `-no-reboot`, `host-qmp-quit`...).
    Shutdown(String),
    /// The QMP connection closed (QEMU exits through `isa-debug-exit`
    /// without a `SHUTDOWN` event).
    QmpClosed,
    /// The serial socket reached its end.
    SerialClosed,
    /// `--timeout` expired.
    Timeout,
    /// A QMP command failed: the script cannot go on.
    Failed(String),
}

impl fmt::Display for StopCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Shutdown(reason) => write!(f, "the machine shut down (QMP SHUTDOWN, {reason})"),
            Self::QmpClosed => f.write_str("the machine closed its QMP connection"),
            Self::SerialClosed => f.write_str("the machine closed its serial output"),
            Self::Timeout => f.write_str("--timeout expired"),
            Self::Failed(error) => f.write_str(error),
        }
    }
}

/// The stop flag with its first cause; waitable.
#[derive(Default)]
pub struct StopState {
    cause: Mutex<Option<StopCause>>,
    changed: Condvar,
}

impl StopState {
    fn lock(&self) -> MutexGuard<'_, Option<StopCause>> {
        self.cause
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// Records `cause` unless the machine already stopped (the first cause
    /// is the one reported) and wakes the waiters.
    pub fn stop(&self, cause: StopCause) {
        let mut current = self.lock();
        if current.is_none() {
            log::debug!("keys: machine stopped: {cause}");
            *current = Some(cause);
        }
        drop(current);
        self.changed.notify_all();
    }

    /// Whether the machine stopped.
    pub fn is_stopped(&self) -> bool {
        self.lock().is_some()
    }

    /// The first cause, if the machine stopped.
    pub fn cause(&self) -> Option<StopCause> {
        self.lock().clone()
    }

    /// Waits until the machine stopped, at most `timeout`; whether it did.
    pub fn wait(&self, timeout: Duration) -> bool {
        let guard = self.lock();
        let (guard, _) = self
            .changed
            .wait_timeout_while(guard, timeout, |cause| cause.is_none())
            .unwrap_or_else(|poison| poison.into_inner());
        guard.is_some()
    }
}
