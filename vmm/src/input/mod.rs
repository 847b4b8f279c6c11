//! Keystroke injection: the interactive terminal (recorded as a script
//! with `--record`), keystroke scripts (`--keys`, `--type`), the QMP
//! control socket (`--qmp`) and a piped stdin.
//!
//! Every source drives the machine through one trait,
//! [`MachineControl`]: key events for the i8042's PS/2 keyboard (see
//! [`keycodes`]), bytes for COM1's receiver (`--console-input serial`, see
//! [`serial_text`]), the serial output, pause/resume/reset/shutdown and the
//! machine's events. Keys are paced by the guest: after each character or
//! combination a source waits until the guest has read every queued keyboard
//! byte ([`MachineControl::wait_input_drained`]), so keys go as fast as the
//! guest takes them; the device's host queue is unbounded, so none is lost
//! either way.
//!
//! Interactive keys and QMP keys go through one [`KeyWorker`] thread, which
//! delivers them in arrival order and honours `send-key`'s `hold-time`
//! without blocking the QMP connection. A script runs on its own thread.
//!
//! | file | what |
//! | --- | --- |
//! | `machine.rs` | [`MachineControl`] and its implementation for [`crate::VmHandle`] |
//! | `cli.rs` | the options, their checks before boot, the sources' threads |
//! | `worker.rs` | the [`KeyWorker`] and guest pacing |
//! | `keycodes.rs` | QEMU key names, set-2 codes, the US layout |
//! | `script.rs` | the script grammar, parser and runner |
//! | `terminal.rs` | raw mode and terminal byte sequences to keys |
//! | `text.rs` | text (a piped stdin) to keys |
//! | `recording.rs` | `--record`: the terminal's keys as a script |
//! | `serial_text.rs` | text and keys as a serial terminal sends them (`--console-input serial`) |
//! | `qmp/` | the QMP session, commands, messages and server |
//! | `remote/` | `vmm keys`: the same scripts against another machine through its QMP socket |
mod cli;
pub mod keycodes;
pub mod machine;
pub mod qmp;
pub mod recording;
pub mod remote;
pub mod script;
pub mod serial_text;
pub mod terminal;
pub mod text;
mod worker;

pub use cli::{
    shutdown_cause, stop_reason, InputArgs, InputError, InputHandle, PreparedInput, ScriptFailure,
    ScriptStopped,
};
pub use machine::MachineControl;

/// Where typed text goes: the guest's PS/2 keyboard, or its serial console
/// (COM1's receiver) as bytes from a terminal (`--console-input`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum ConsoleInput {
    /// The i8042's PS/2 keyboard (key events, US layout).
    #[default]
    Keyboard,
    /// COM1's receiver (bytes, as a serial terminal sends them).
    Serial,
}
pub use worker::KeyWorker;
