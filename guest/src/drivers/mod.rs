//! Drivers of the legacy PC devices the kernel uses, each through its I/O
//! ports. The register and command names are `shared`'s.

#[macro_use]
pub mod serial;

pub mod debug_exit;
pub mod i8042;
pub mod pic;
pub mod pit;
pub mod rtc;
