//! The allow-lists: which system calls (and arguments) each thread of the
//! VMM may make. This file is the one place to change when a thread starts
//! doing something new: add a [`Role`] for a new thread (its name, and a
//! line in [`allowed`]'s `match`), or a call to an existing role's list.
//! README's "Sandbox" table is this file rendered ([`markdown`]); a unit
//! test keeps the two equal.
//!
//! Found by reading each thread's code and by `strace -f` on real runs
//! (interactive, `--keys`, `--qmp` with every command, `--timeout`,
//! `--stats`, guest and QMP resets, every exit path).
use std::mem::size_of;

use kvm_bindings::{
    kvm_debugregs, kvm_fpu, kvm_interrupt, kvm_msrs, kvm_regs, kvm_sregs, kvm_translation,
    kvm_vcpu_events, kvm_xcrs, kvm_xsave, KVMIO,
};

/// A thread of the VMM, by what it does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// The main thread once the machine runs: waits for it to stop, then
    /// flushes stdout, reports and exits.
    Main,
    /// `vcpu0`: `KVM_RUN` and the exits, interrupt injection, resets.
    Vcpu,
    /// `time-service`: sleeps on a timerfd until the next device deadline.
    TimeService,
    /// `stdout-writer`: COM1's output queue to fd 1.
    StdoutWriter,
    /// `serial-writer`: COM1's output queue to a `--serial file:` or to the
    /// `unix:` socket's current client.
    SerialWriter,
    /// `serial-socket`: accepts the `--serial unix:` clients and passes
    /// what they send to COM1's receiver.
    SerialSocket,
    /// `input-stdin`: a piped stdin typed into the guest (or sent to COM1).
    Stdin,
    /// `input-keys`: the key worker, one key event at a time.
    KeyWorker,
    /// `input-script`: runs a `--keys`/`--type` script.
    Script,
    /// `input-terminal`: reads the raw terminal (interactive mode).
    Terminal,
    /// `input-qmp`: accepts and serves QMP clients on the listening socket.
    Qmp,
    /// `input-qmp-events`: relays machine events to the QMP client.
    QmpEvents,
    /// `timeout`: stops the VM when `--timeout` expires.
    Timeout,
    /// `reset-log`: prints a line per reset.
    ResetLog,
}

impl Role {
    /// Every role, in the README's order.
    pub const ALL: [Role; 14] = [
        Role::Main,
        Role::Vcpu,
        Role::TimeService,
        Role::StdoutWriter,
        Role::SerialWriter,
        Role::SerialSocket,
        Role::Stdin,
        Role::KeyWorker,
        Role::Script,
        Role::Terminal,
        Role::Qmp,
        Role::QmpEvents,
        Role::Timeout,
        Role::ResetLog,
    ];

    /// The thread's name (as `ps -L` shows it, and in the violation message).
    pub fn thread_name(self) -> &'static str {
        match self {
            Role::Main => "main",
            Role::Vcpu => "vcpu0",
            Role::TimeService => "time-service",
            Role::StdoutWriter => "stdout-writer",
            Role::SerialWriter => "serial-writer",
            Role::SerialSocket => "serial-socket",
            Role::Stdin => "input-stdin",
            Role::KeyWorker => "input-keys",
            Role::Script => "input-script",
            Role::Terminal => "input-terminal",
            Role::Qmp => "input-qmp",
            Role::QmpEvents => "input-qmp-events",
            Role::Timeout => "timeout",
            Role::ResetLog => "reset-log",
        }
    }
}

/// One allowed system call.
#[derive(Clone, Copy, Debug)]
pub struct Allowed {
    /// Its `libc` constant's name (`SYS_ioctl`); see [`Allowed::name`].
    pub constant: &'static str,
    /// Its x86-64 number.
    pub nr: i64,
    /// Which arguments it is allowed with.
    pub only: Only,
}

/// Argument restrictions of an [`Allowed`] call.
#[derive(Clone, Copy, Debug)]
pub enum Only {
    /// Any arguments.
    Any,
    /// `ioctl` with one of these requests (argument 1), by name.
    Ioctls(&'static [(&'static str, u32)]),
    /// `mmap`/`mprotect` whose protection (argument `.0`) lacks `PROT_EXEC`:
    /// no thread maps new code.
    NoExec(u8),
    /// Only on this file descriptor (argument 0).
    Fd(i32),
    /// Only with one of these signals as argument `.0` (`tgkill`,
    /// `rt_sigaction`).
    Signals(u8, &'static [Signal]),
}

/// A signal an [`Only::Signals`] rule allows.
#[derive(Clone, Copy, Debug)]
pub enum Signal {
    /// The vCPU kick (a real-time signal, `SIGRTMIN`, known at run time).
    Kick,
    /// A fixed signal, by name.
    Fixed(&'static str, i32),
}

impl Allowed {
    /// The system call's name (`ioctl`).
    pub fn name(&self) -> &'static str {
        self.constant.strip_prefix("SYS_").unwrap_or(self.constant)
    }
}

impl Signal {
    /// The signal's number.
    pub fn number(self) -> i32 {
        match self {
            Signal::Kick => crate::vm::kick_signal(),
            Signal::Fixed(_, number) => number,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Signal::Kick => "the kick signal",
            Signal::Fixed(name, _) => name,
        }
    }
}

/// `_IOC(dir, KVMIO, nr, size)` as `asm-generic/ioctl.h` builds it.
const fn kvm_ioctl(dir: u32, nr: u32, size: usize) -> u32 {
    (dir << 30) | ((size as u32) << 16) | (KVMIO << 8) | nr
}
const NONE: u32 = 0;
const WRITE: u32 = 1;
const READ: u32 = 2;

/// The vCPU fd requests the vCPU thread makes (`vm/vcpu.rs`, `vm/cpu.rs`
/// for resets, `vm/complete/` through `KVM_TRANSLATE`).
const VCPU_IOCTLS: &[(&str, u32)] = &[
    ("KVM_RUN", kvm_ioctl(NONE, 0x80, 0)),
    ("KVM_GET_REGS", kvm_ioctl(READ, 0x81, size_of::<kvm_regs>())),
    (
        "KVM_SET_REGS",
        kvm_ioctl(WRITE, 0x82, size_of::<kvm_regs>()),
    ),
    (
        "KVM_GET_SREGS",
        kvm_ioctl(READ, 0x83, size_of::<kvm_sregs>()),
    ),
    (
        "KVM_SET_SREGS",
        kvm_ioctl(WRITE, 0x84, size_of::<kvm_sregs>()),
    ),
    (
        "KVM_TRANSLATE",
        kvm_ioctl(READ | WRITE, 0x85, size_of::<kvm_translation>()),
    ),
    (
        "KVM_INTERRUPT",
        kvm_ioctl(WRITE, 0x86, size_of::<kvm_interrupt>()),
    ),
    (
        "KVM_SET_MSRS",
        kvm_ioctl(WRITE, 0x89, size_of::<kvm_msrs>()),
    ),
    ("KVM_GET_FPU", kvm_ioctl(READ, 0x8c, size_of::<kvm_fpu>())),
    ("KVM_SET_FPU", kvm_ioctl(WRITE, 0x8d, size_of::<kvm_fpu>())),
    (
        "KVM_GET_VCPU_EVENTS",
        kvm_ioctl(READ, 0x9f, size_of::<kvm_vcpu_events>()),
    ),
    (
        "KVM_SET_VCPU_EVENTS",
        kvm_ioctl(WRITE, 0xa0, size_of::<kvm_vcpu_events>()),
    ),
    (
        "KVM_SET_DEBUGREGS",
        kvm_ioctl(WRITE, 0xa2, size_of::<kvm_debugregs>()),
    ),
    (
        "KVM_GET_XSAVE",
        kvm_ioctl(READ, 0xa4, size_of::<kvm_xsave>()),
    ),
    (
        "KVM_SET_XSAVE",
        kvm_ioctl(WRITE, 0xa5, size_of::<kvm_xsave>()),
    ),
    (
        "KVM_SET_XCRS",
        kvm_ioctl(WRITE, 0xa7, size_of::<kvm_xcrs>()),
    ),
];

/// Reading and restoring the terminal's mode (`tcgetattr`, `tcsetattr`):
/// on every thread, because the `SIGSYS` and termination-signal handlers
/// restore it wherever they run, and the main thread does on the way out.
const TERMINAL: &[(&str, u32)] = &[
    ("TCGETS", libc::TCGETS as u32),
    ("TCSETS", libc::TCSETS as u32),
];

/// The signals the terminal's termination handler re-raises after
/// restoring the terminal (`input/terminal.rs`).
const TERMINATION: &[Signal] = &[
    Signal::Fixed("SIGINT", libc::SIGINT),
    Signal::Fixed("SIGTERM", libc::SIGTERM),
    Signal::Fixed("SIGHUP", libc::SIGHUP),
    Signal::Fixed("SIGQUIT", libc::SIGQUIT),
];

/// The kick and the re-raised termination signals.
const KICK_AND_TERMINATION: &[Signal] = &[
    Signal::Kick,
    Signal::Fixed("SIGINT", libc::SIGINT),
    Signal::Fixed("SIGTERM", libc::SIGTERM),
    Signal::Fixed("SIGHUP", libc::SIGHUP),
    Signal::Fixed("SIGQUIT", libc::SIGQUIT),
];

macro_rules! allow {
    ($name:ident) => {
        Allowed {
            constant: stringify!($name),
            nr: libc::$name,
            only: Only::Any,
        }
    };
    ($name:ident, $only:expr) => {
        Allowed {
            constant: stringify!($name),
            nr: libc::$name,
            only: $only,
        }
    };
}

/// What every thread needs: the Rust runtime and glibc (locks, the
/// allocator, thread exit), logging to stderr, sleeping, and the signal
/// handlers' work (`SIGSYS`, termination signals: restore the terminal,
/// write a line, re-raise or exit).
const EVERY_THREAD: &[Allowed] = &[
    allow!(SYS_futex),
    allow!(SYS_mmap, Only::NoExec(2)),
    allow!(SYS_mprotect, Only::NoExec(2)),
    allow!(SYS_munmap),
    allow!(SYS_mremap),
    allow!(SYS_madvise),
    allow!(SYS_brk),
    allow!(SYS_sigaltstack),
    allow!(SYS_rt_sigprocmask),
    allow!(SYS_rt_sigreturn),
    allow!(SYS_rt_sigaction, Only::Signals(0, TERMINATION)),
    allow!(SYS_tgkill, Only::Signals(2, KICK_AND_TERMINATION)),
    allow!(SYS_getpid),
    allow!(SYS_gettid),
    allow!(SYS_sched_yield),
    allow!(SYS_getrandom),
    allow!(SYS_clock_gettime),
    allow!(SYS_clock_nanosleep),
    allow!(SYS_write, Only::Fd(2)),
    allow!(SYS_ioctl, Only::Ioctls(TERMINAL)),
    allow!(SYS_exit),
    allow!(SYS_exit_group),
];

/// The calls `role` may make beyond [`EVERY_THREAD`]. Writes to any fd
/// (`write`) are the machine's eventfd doorbell (the time service's), which
/// every thread that drives the machine may ring.
pub fn role_calls(role: Role) -> Vec<Allowed> {
    match role {
        Role::Main => vec![
            // Closing the VM and vCPU fds, removing the QMP socket.
            allow!(SYS_close),
            allow!(SYS_unlink),
            allow!(SYS_write),
            // The QMP `SHUTDOWN` event, sent once the machine has stopped.
            allow!(SYS_sendto),
        ],
        Role::Vcpu => vec![
            allow!(SYS_ioctl, Only::Ioctls(VCPU_IOCTLS)),
            // KVM's binary statistics fd (opened by `Vm::new`), read at the
            // end for `--stats`.
            allow!(SYS_pread64),
            allow!(SYS_close),
            allow!(SYS_write),
        ],
        Role::TimeService => vec![
            allow!(SYS_epoll_wait),
            allow!(SYS_epoll_pwait),
            allow!(SYS_timerfd_settime),
            // The timerfd's expirations and the doorbell eventfd.
            allow!(SYS_read),
            allow!(SYS_write),
            allow!(SYS_close),
        ],
        Role::StdoutWriter => vec![
            allow!(SYS_write, Only::Fd(1)),
            // Waiting on a non-blocking stdout.
            allow!(SYS_poll),
        ],
        Role::SerialWriter => vec![
            // The file or the client socket (a duplicate taken under the
            // client lock, closed after the write; shut down on error).
            allow!(SYS_write),
            // A socket's `write` in Rust is `send(MSG_NOSIGNAL)`.
            allow!(SYS_sendto),
            allow!(SYS_poll),
            allow!(SYS_fcntl),
            allow!(SYS_shutdown),
            allow!(SYS_close),
        ],
        Role::SerialSocket => vec![
            allow!(SYS_accept4),
            allow!(SYS_read),
            allow!(SYS_recvfrom),
            allow!(SYS_fcntl),
            allow!(SYS_close),
            allow!(SYS_write),
        ],
        Role::Stdin => vec![allow!(SYS_read, Only::Fd(0)), allow!(SYS_write)],
        // Each holds a handle on the machine and may drop the last one when
        // the machine stops first: the machine's eventfd and KVM statistics
        // fds are then closed on this thread (seen: a guest that resets at
        // once under `--no-reboot`, the key worker ending last).
        Role::KeyWorker | Role::Script | Role::Timeout => {
            vec![allow!(SYS_write), allow!(SYS_close)]
        }
        Role::Terminal => vec![
            allow!(SYS_read, Only::Fd(0)),
            allow!(SYS_poll),
            allow!(SYS_write),
        ],
        Role::Qmp => vec![
            allow!(SYS_accept4),
            allow!(SYS_read),
            allow!(SYS_recvfrom),
            allow!(SYS_write),
            allow!(SYS_sendto),
            allow!(SYS_close),
            allow!(SYS_fcntl),
            allow!(SYS_setsockopt),
            allow!(SYS_shutdown),
            allow!(SYS_poll),
            // `query-stats`: KVM's binary statistics fds (opened by `Vm::new`).
            allow!(SYS_pread64),
        ],
        Role::QmpEvents => vec![allow!(SYS_write), allow!(SYS_sendto)],
        Role::ResetLog => vec![],
    }
}

/// Everything `role` may call: `EVERY_THREAD` and its own list.
pub fn allowed(role: Role) -> Vec<Allowed> {
    let mut calls = EVERY_THREAD.to_vec();
    calls.extend(role_calls(role));
    calls
}

/// One allowed call in words: `ioctl (KVM_RUN, KVM_GET_REGS)`, `write (fd 2)`.
fn describe(entry: &Allowed) -> String {
    let join = |names: Vec<&str>| names.join(", ");
    match entry.only {
        Only::Any => entry.name().to_string(),
        Only::Ioctls(requests) => format!(
            "{} ({})",
            entry.name(),
            join(requests.iter().map(|(name, _)| *name).collect())
        ),
        Only::NoExec(_) => format!("{} (not PROT_EXEC)", entry.name()),
        Only::Fd(fd) => format!("{} (fd {fd})", entry.name()),
        Only::Signals(_, signals) => format!(
            "{} ({})",
            entry.name(),
            join(signals.iter().map(|s| s.name()).collect())
        ),
    }
}

/// The README's table of allowed calls: a row for every thread's common
/// set, then one per role.
pub fn markdown() -> String {
    let row = |calls: &[Allowed]| {
        calls
            .iter()
            .map(|entry| format!("`{}`", describe(entry)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut out = String::from("| thread | system calls allowed |\n| --- | --- |\n");
    out.push_str(&format!("| every thread | {} |\n", row(EVERY_THREAD)));
    for role in Role::ALL {
        let calls = role_calls(role);
        let text = if calls.is_empty() {
            "nothing more".to_string()
        } else {
            row(&calls)
        };
        out.push_str(&format!("| `{}` | {text} |\n", role.thread_name()));
    }
    out
}
