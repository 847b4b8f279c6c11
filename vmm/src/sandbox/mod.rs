//! Seccomp-BPF confinement of the VMM's threads.
//!
//! Every thread of the `vmm` process has a [`Role`]; once its set-up is
//! done (files, sockets, KVM fds, timerfd open) it calls [`confine`], which
//! installs a filter allowing only the system calls that role needs, and
//! for `ioctl`, `mmap`, `mprotect` and `tgkill` only the argument values it
//! needs (see [`allowed`], the one table). The filter applies to that thread
//! alone (no `TSYNC`), so each thread keeps its own list; a thread started
//! by a confined thread would inherit its creator's filter too, which is
//! why every thread is started before its creator confines itself.
//!
//! A forbidden call raises `SIGSYS` (`SECCOMP_RET_TRAP`) on the offending
//! thread; the handler (`on_sigsys`) restores the terminal, writes one
//! line naming the thread and the system call, and ends the process with
//! [`shared::status::SECCOMP_VIOLATION`]. TRAP rather than
//! `SECCOMP_RET_KILL_PROCESS`: a killed process says nothing and leaves an
//! interactive terminal in raw mode; the handler does both jobs with two
//! system calls that every filter allows (`ioctl(TCSETS)`, `write` to fd 2)
//! and `exit_group`. A guest cannot make the VMM take the handler's path
//! without first taking over a thread, which the filter is there to contain.
//!
//! Confinement is off until [`enable`] (the `vmm` binary calls it unless
//! `--no-seccomp`), so embedders and the in-process tests are unaffected.
pub mod bpf;
mod names;
mod tables;

use std::cell::Cell;
use std::collections::BTreeMap;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};

use seccompiler::BpfProgram;

use bpf::{Check, Rule};

pub use tables::{allowed, markdown, Allowed, Only, Role, Signal};

/// Whether threads confine themselves ([`enable`]).
static ENABLED: AtomicBool = AtomicBool::new(false);

/// Whether the vCPU thread makes a forbidden call once confined (the
/// hidden `--seccomp-self-test` flag; see [`self_test_requested`]).
static SELF_TEST: AtomicBool = AtomicBool::new(false);

thread_local! {
    /// The calling thread's role name, for the `SIGSYS` handler. A
    /// const-initialised thread local without a destructor: reading it is
    /// a plain TLS load, safe in a signal handler.
    static THREAD: Cell<&'static str> = const { Cell::new("unconfined") };
}

/// Why a thread could not be confined.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The kernel refused the filter.
    #[error("cannot install the seccomp filter of the {0} thread: {1}")]
    Install(&'static str, seccompiler::Error),
    /// The `SIGSYS` handler could not be installed.
    #[error("cannot install the SIGSYS handler: {0}")]
    Handler(io::Error),
}

/// Turns confinement on for this process: installs the `SIGSYS` handler;
/// from now on [`confine`] installs filters. Call before any VMM thread is
/// started.
pub fn enable() -> Result<(), Error> {
    // SAFETY: a zeroed sigaction is valid; the handler is an `extern "C"`
    // function of the signature SA_SIGINFO expects, and only does
    // async-signal-safe things.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_sigsys as *const () as usize;
        action.sa_flags = libc::SA_SIGINFO;
        libc::sigemptyset(&mut action.sa_mask);
        if libc::sigaction(libc::SIGSYS, &action, std::ptr::null_mut()) != 0 {
            return Err(Error::Handler(io::Error::last_os_error()));
        }
    }
    ENABLED.store(true, Ordering::SeqCst);
    Ok(())
}

/// Whether [`enable`] was called.
pub fn enabled() -> bool {
    ENABLED.load(Ordering::SeqCst)
}

/// Makes the vCPU thread, once confined, call `socket(2)`, which no filter
/// allows: the test that a forbidden call ends the VMM with its message.
pub fn request_self_test() {
    SELF_TEST.store(true, Ordering::SeqCst);
}

/// Whether [`request_self_test`] was called.
pub(crate) fn self_test_requested() -> bool {
    SELF_TEST.load(Ordering::SeqCst)
}

/// The forbidden call of [`request_self_test`]. Without a filter it
/// succeeds (the socket is closed again) and the VM runs on.
pub(crate) fn forbidden_call() {
    // SAFETY: socket(2) has no memory preconditions; the fd, if any, is
    // closed at once.
    unsafe {
        let fd = libc::socket(libc::AF_UNIX, libc::SOCK_STREAM, 0);
        if fd >= 0 {
            libc::close(fd);
        }
    }
}

/// Confines the calling thread to `role`'s system calls (nothing unless
/// [`enable`] was called). Call once the thread's set-up is done.
pub fn confine(role: Role) -> Result<(), Error> {
    if !enabled() {
        return Ok(());
    }
    let program = compile(role);
    THREAD.with(|name| name.set(role.thread_name()));
    seccompiler::apply_filter(&program).map_err(|e| Error::Install(role.thread_name(), e))
}

/// [`confine`], and on failure the VMM ends at once with a setup error
/// (status 1): a thread left unconfined would be a silent hole, and a
/// thread that cannot run would hang the VM.
pub fn confine_or_exit(role: Role) {
    if let Err(error) = confine(role) {
        crate::input::terminal::restore();
        eprintln!("vmm: {error}");
        // SAFETY: _exit has no preconditions.
        unsafe { libc::_exit(shared::status::SETUP_ERROR) };
    }
}

/// `role`'s rules by system call number: its [`allowed`] calls, with any
/// argument if one entry says so, else with any entry's arguments (in the
/// table's order).
pub fn rules(role: Role) -> BTreeMap<u32, Rule> {
    let mut rules: BTreeMap<u32, Rule> = BTreeMap::new();
    for entry in allowed(role) {
        let nr = u32::try_from(entry.nr).expect("system call numbers are small");
        let check = |arg, mask, value| Check { arg, mask, value };
        let checks: Vec<Check> = match entry.only {
            Only::Any => {
                rules.insert(nr, Rule::Always);
                continue;
            }
            Only::Ioctls(requests) => requests
                .iter()
                .map(|(_, request)| check(1, u32::MAX, *request))
                .collect(),
            Only::NoExec(arg) => vec![check(arg, libc::PROT_EXEC as u32, 0)],
            Only::Fd(fd) => vec![check(0, u32::MAX, fd as u32)],
            Only::Signals(arg, signals) => signals
                .iter()
                .map(|signal| check(arg, u32::MAX, signal.number() as u32))
                .collect(),
        };
        match rules.entry(nr).or_insert_with(|| Rule::AnyOf(Vec::new())) {
            Rule::Always => {}
            Rule::AnyOf(list) => list.extend(checks),
        }
    }
    rules
}

/// `role`'s filter as BPF ([`bpf`]): its [`rules`] allowed, every other
/// call trapped, any architecture but x86-64 killed.
pub fn compile(role: Role) -> BpfProgram {
    bpf::compile(
        &rules(role),
        libc::SECCOMP_RET_ALLOW,
        libc::SECCOMP_RET_TRAP,
    )
}

/// The name of system call `nr` (`"?"` for an unknown number).
pub fn syscall_name(nr: i64) -> &'static str {
    usize::try_from(nr)
        .ok()
        .and_then(|i| names::NAMES.get(i))
        .filter(|name| !name.is_empty())
        .copied()
        .unwrap_or("?")
}

/// The `SIGSYS` handler: one line on stderr, then `_exit`. Only
/// async-signal-safe work: a stack buffer, `write`, `tcsetattr`, `_exit`.
extern "C" fn on_sigsys(_: libc::c_int, info: *mut libc::siginfo_t, _: *mut libc::c_void) {
    // `struct siginfo` for SIGSYS (`_sigsys`): after si_signo, si_errno,
    // si_code and padding (16 bytes) come `void *_call_addr` and then
    // `int _syscall`, at byte 24.
    // SAFETY: the kernel passes a valid siginfo for an SA_SIGINFO handler.
    let nr = unsafe { info.cast::<u8>().add(24).cast::<libc::c_int>().read() };
    let thread = THREAD.try_with(Cell::get).unwrap_or("?");
    let mut line = Line::default();
    line.push("vmm: seccomp: the ");
    line.push(thread);
    line.push(" thread made a forbidden system call: ");
    line.push(syscall_name(i64::from(nr)));
    line.push(" (");
    line.number(nr as u64);
    line.push("); stopping (status ");
    line.number(shared::status::SECCOMP_VIOLATION as u64);
    line.push(")\n");
    crate::input::terminal::restore();
    // SAFETY: writes from a valid buffer; _exit has no preconditions.
    unsafe {
        libc::write(2, line.bytes.as_ptr().cast(), line.len);
        libc::_exit(shared::status::SECCOMP_VIOLATION);
    }
}

/// A message assembled without allocating (for the signal handler).
struct Line {
    bytes: [u8; 256],
    len: usize,
}

impl Default for Line {
    fn default() -> Self {
        Self {
            bytes: [0; 256],
            len: 0,
        }
    }
}

impl Line {
    fn push(&mut self, text: &str) {
        let take = text.len().min(self.bytes.len() - self.len);
        self.bytes[self.len..self.len + take].copy_from_slice(&text.as_bytes()[..take]);
        self.len += take;
    }

    fn number(&mut self, mut value: u64) {
        let mut digits = [0u8; 20];
        let mut n = 0;
        loop {
            digits[n] = b'0' + (value % 10) as u8;
            n += 1;
            value /= 10;
            if value == 0 {
                break;
            }
        }
        digits[..n].reverse();
        // Digits are ASCII.
        self.push(std::str::from_utf8(&digits[..n]).unwrap_or("?"));
    }
}

#[cfg(test)]
mod tests;
