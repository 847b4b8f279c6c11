//! A micro-VMM on Linux KVM that emulates the legacy PC devices in userspace.
//!
//! The device models in [`devices`] are plain deterministic state machines
//! (no I/O, no threads, the clock injected) so they can be unit-tested and
//! fuzzed; the machine in [`vm`] wires them to KVM through the port [`bus`].
pub mod bus;
pub mod clock;
pub mod device;
pub mod devices;
pub mod input;
pub mod sandbox;
pub mod stdout_sink;
pub mod vm;

pub use vm::{ExitReason, RunReport, SerialTap, Vm, VmConfig, VmExit, VmHandle};
