//! A QMP (QEMU Machine Protocol) server: JSON commands over a Unix socket,
//! compatible with QEMU's for the commands a keyboard-only machine has.
//!
//! The parts, one file each: [`QmpSession`] is the protocol as a pure state
//! machine (bytes in, JSON messages and [`Action`]s out, state changes on a
//! [`MachineControl`](crate::input::machine::MachineControl)) so it can be
//! unit-tested and fuzzed; [`commands`] holds the commands as typed values
//! and their arguments as `Deserialize` types, decoded by `args.rs` (a serde
//! deserializer that words errors as QEMU); [`messages`] builds what goes on
//! the wire; [`QmpServer`] does the socket I/O.
//!
//! Supported commands: `qmp_capabilities`, `send-key`, `input-send-event`
//! (key events), `query-status`, `query-stats`, `stop`, `cont`, `system_reset` (when the
//! machine can reset), `quit`, `query-commands`, `query-version`,
//! `human-monitor-command` (the HMP commands in [`hmp`]). Events: `STOP`,
//! `RESUME`, `RESET`, `SHUTDOWN`.
//!
//! `query-version` (and the greeting) has QEMU's shape, so clients that
//! check it work: `qemu` holds this crate's own version numbers (0.1.0, not
//! a QEMU release: no QEMU feature level is claimed) and `package` says
//! `asyncos-vmm VERSION`.
//!
//! Errors follow QEMU: commands before `qmp_capabilities` and unknown commands
//! answer with class `CommandNotFound`; malformed JSON and bad arguments with
//! `GenericError`; the connection stays open and the machine is unaffected.
//! Input is a stream of JSON objects (newlines optional); after malformed JSON
//! the rest of that line is discarded, so the next line starts afresh.
//!
//! One client at a time: further clients wait in the listen backlog until
//! the current one disconnects, then get their greeting (QEMU's behaviour for a
//! monitor socket too).
use std::time::Duration;

mod args;
pub mod commands;
pub mod hmp;
pub mod messages;
mod server;
mod session;

pub use messages::{event, greeting, shutdown_event, ErrorClass, QmpError};
pub use server::{EventSink, QmpAddress, QmpAddressError, QmpServer, QmpServerError};
pub use session::{Action, QmpSession};

/// Default `hold-time` of `send-key`, as QEMU.
pub const DEFAULT_HOLD_TIME: Duration = Duration::from_millis(100);

/// Longest accepted `hold-time` (QEMU takes any int; we cap at one minute).
pub const MAX_HOLD_TIME: Duration = Duration::from_secs(60);

/// Largest amount of buffered input without a complete JSON value.
pub const MAX_PENDING_INPUT: usize = 1 << 20;

#[cfg(test)]
mod tests;
