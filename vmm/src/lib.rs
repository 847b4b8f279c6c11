//! A micro-VMM on Linux KVM that emulates the legacy PC devices in userspace.
//!
//! The device models in [`devices`] are plain deterministic state machines
//! (no I/O, no threads, the clock injected) so they can be unit-tested and
//! fuzzed; the machine in [`vm`] wires them to KVM through the port [`bus`].
//!
//! For test authors: [`VmConfig::default`] boots the embedded guest
//! ([`guest::ELF`]); [`Vm::run`] runs it to its end while a [`VmHandle`]
//! types into it ([`input::script`]) and watches its serial output
//! ([`SerialTap`]); [`record`] turns the [`RunReport`] into JSON. The
//! example `examples/type_and_wait.rs` does all of it.
#![warn(missing_docs)]
pub mod bus;
pub mod clock;
pub mod device;
pub mod devices;
pub mod guest;
pub mod input;
pub mod record;
pub mod sandbox;
pub mod serial_backend;
pub mod stdout_sink;
pub mod vm;

pub use vm::{ExitReason, RunReport, SerialTap, Vm, VmConfig, VmExit, VmHandle};
