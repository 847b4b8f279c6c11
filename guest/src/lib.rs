//! asyncos: a tiny x86_64 kernel demonstrating interrupt-driven async/await,
//! as a library that the kernel binary (`main.rs`) boots.
//!
//! Layers: `arch` (entry, GDT, IDT, paging) and `drivers` (the legacy PC
//! devices) touch the hardware and are built for the kernel target only;
//! `task` (executor, timers, scancode stream), `shell`, `time`, `bootinfo`
//! and `heap` hold the logic, whose hardware-independent parts are unit
//! tested on the host (`cargo test` at the repository root). `ktest` holds
//! the in-guest tests (`test=NAME`).
#![cfg_attr(not(test), no_std)]

extern crate alloc;

#[cfg(target_os = "none")]
#[macro_use]
pub mod drivers;

#[cfg(target_os = "none")]
pub mod arch;
pub mod bootinfo;
pub mod heap;
#[cfg(target_os = "none")]
pub mod kernel;
#[cfg(target_os = "none")]
pub mod ktest;
pub mod shell;
pub mod stats;
pub mod task;
pub mod time;
