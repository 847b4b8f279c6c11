//! The asyncos guest kernel, built from `guest/` and embedded at build time
//! (`vmm/build.rs`; `VMM_GUEST_ELF=/path/to/kernel.elf` embeds another).
//! [`VmConfig::default`](crate::VmConfig::default) boots it.

/// The embedded guest's ELF image (a PVH kernel).
pub static ELF: &[u8] = include_bytes!(env!("GUEST_ELF_PATH"));
