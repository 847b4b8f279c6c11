//! The interactive shell: keys to a line, a line to a command, a command to
//! its output.

pub mod command;
#[cfg(target_os = "none")]
pub mod console;
pub mod keys;
pub mod line;
pub mod startup;
