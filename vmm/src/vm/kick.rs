//! Kicking the vCPU thread out of `KVM_RUN`.
//!
//! Another thread that makes an interrupt pending while the vCPU runs guest
//! code sends the vCPU thread [`kick_signal`]. Its handler runs on the vCPU
//! thread and sets `kvm_run.immediate_exit`, located through a thread-local
//! pointer (as Firecracker does). So:
//! - signal while in guest mode: `KVM_RUN` returns `EINTR`;
//! - signal just before `KVM_RUN` is entered (after the vCPU checked for
//!   pending work): `immediate_exit` is already 1, so `KVM_RUN` returns at
//!   once instead of sleeping in the guest with the interrupt unseen;
//! - signal after `KVM_RUN` returned: the vCPU looks at the machine state next
//!   anyway; the stale `immediate_exit` costs at most one empty `KVM_RUN`.
//!
//! Only the vCPU thread ever touches its `kvm_run`, and the pointer is
//! published only while the mapping is alive ([`ImmediateExitGuard`]).
use std::cell::Cell;
use std::io;
use std::ptr;
use std::sync::OnceLock;

use libc::{c_int, c_void, siginfo_t};
use vmm_sys_util::signal::{register_signal_handler, SIGRTMIN};

thread_local! {
    /// `&kvm_run.immediate_exit` of the vCPU running on this thread, or null.
    static IMMEDIATE_EXIT: Cell<*mut u8> = const { Cell::new(ptr::null_mut()) };
}

/// The real-time signal used for kicks.
pub fn kick_signal() -> c_int {
    SIGRTMIN()
}

extern "C" fn on_kick(_: c_int, _: *mut siginfo_t, _: *mut c_void) {
    // `try_with` on a const-initialised, destructor-free thread local is a
    // plain TLS load: async-signal-safe.
    let _ = IMMEDIATE_EXIT.try_with(|slot| {
        let target = slot.get();
        if !target.is_null() {
            // SAFETY: published by `ImmediateExitGuard` on this very thread and
            // valid until the guard is dropped, which clears it first.
            unsafe { target.write_volatile(1) };
        }
    });
}

/// Installs the kick signal handler (once per process).
pub fn install_handler() -> io::Result<()> {
    static INSTALLED: OnceLock<Result<(), i32>> = OnceLock::new();
    INSTALLED
        .get_or_init(|| register_signal_handler(kick_signal(), on_kick).map_err(|e| e.errno()))
        .map_err(io::Error::from_raw_os_error)
}

/// Publishes a vCPU's `immediate_exit` byte to the kick handler of the current
/// thread for as long as it lives.
pub struct ImmediateExitGuard(());

impl ImmediateExitGuard {
    /// Publishes `immediate_exit`.
    ///
    /// # Safety
    /// `immediate_exit` must point into the `kvm_run` mapping of a vCPU that
    /// outlives the guard, and the guard must stay on the calling thread.
    pub unsafe fn new(immediate_exit: *mut u8) -> Self {
        IMMEDIATE_EXIT.with(|slot| slot.set(immediate_exit));
        Self(())
    }
}

impl Drop for ImmediateExitGuard {
    fn drop(&mut self) {
        IMMEDIATE_EXIT.with(|slot| slot.set(ptr::null_mut()));
    }
}

/// Sends the kick signal to `thread`.
///
/// The caller guarantees `thread` is alive (the machine's lock protects the
/// thread id, which the vCPU thread withdraws before it ends).
pub fn kick(thread: libc::pthread_t) {
    // SAFETY: `thread` is a live thread of this process (see above).
    let ret = unsafe { libc::pthread_kill(thread, kick_signal()) };
    if ret != 0 {
        log::warn!(
            "cannot kick the vCPU thread: {}",
            io::Error::from_raw_os_error(ret)
        );
    }
}
