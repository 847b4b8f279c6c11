//! Interactive mode: the host terminal becomes the guest's keyboard.
//!
//! The terminal is put in raw mode (no echo, no line editing, no signals from
//! Ctrl+C; output post-processing stays on so the guest's `\n` still starts a
//! new line) and every byte read from it is decoded into key combinations of a
//! US PC keyboard:
//!
//! * printable ASCII: the key, with Shift for capitals and shifted symbols;
//! * Enter (`\r` or `\n`), Tab, Backspace (`DEL` or `^H`), Esc;
//! * Ctrl+letter (bytes 0x01-0x1A): `ctrl-LETTER`; also `^@ ^\ ^] ^^ ^_`;
//! * escape sequences (xterm, VT220 and Linux console flavours): arrows,
//!   Home, End, Insert, Delete, Page Up/Down, F1-F12, with the Shift, Alt and
//!   Ctrl modifiers xterm encodes (`ESC [1;5A` is `ctrl-up`), and Alt+key sent
//!   as `ESC key`. A lone Esc is recognised when no byte follows within
//!   [`ESCAPE_TIMEOUT`].
//!
//! **Escape character**, as QEMU's `-serial mon:stdio`: Ctrl+A then `x` quits
//! the VMM; Ctrl+A Ctrl+A sends one Ctrl+A to the guest; Ctrl+A `h` prints
//! help. Any other character after Ctrl+A is dropped.
//!
//! The terminal's previous state is restored on every exit path: normal return
//! (guard drop), `std::process::exit` (an `atexit` hook), a panic (panic
//! hook), and SIGINT/SIGTERM/SIGHUP/SIGQUIT (signal handler, which then lets
//! the signal take its usual effect). Only SIGKILL cannot be caught; `stty sane`
//! repairs the terminal then.
use std::io;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use super::keycodes::{key, us_char, Key};

/// How long a lone Esc waits for the rest of an escape sequence.
pub const ESCAPE_TIMEOUT: Duration = Duration::from_millis(30);

/// The help text of Ctrl+A h.
pub const ESCAPE_HELP: &str =
    "\r\nC-a h    print this help\r\nC-a x    exit the VMM\r\nC-a C-a  send C-a to the guest\r\n";

/// What the terminal asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TermEvent {
    /// Press these keys in order, then release them in reverse order.
    Keys(Vec<Key>),
    /// Ctrl+A x: quit the VMM.
    Quit,
    /// Ctrl+A h: show the escape help.
    Help,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
enum State {
    #[default]
    Ground,
    /// After Ctrl+A.
    Prefix,
    /// After ESC.
    Escape,
    /// After `ESC [`, collecting parameter bytes.
    Csi(Vec<u8>),
    /// An overlong CSI sequence: dropped up to its final byte.
    CsiDiscard,
    /// After `ESC [ [` (Linux console F1-F5).
    LinuxFn,
    /// After `ESC O`.
    Ss3,
}

/// Longest CSI parameter string kept; longer sequences are dropped.
const MAX_CSI_PARAMS: usize = 16;

/// Decodes terminal bytes into key events. A pure state machine.
#[derive(Debug, Default)]
pub struct TermDecoder {
    state: State,
}

impl TermDecoder {
    /// A decoder in its initial state.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether a lone Esc is waiting to be told apart from an escape sequence.
    pub fn escape_pending(&self) -> bool {
        self.state == State::Escape
    }

    /// The input paused after a lone ESC: it was the Esc key.
    pub fn timeout(&mut self) -> Vec<TermEvent> {
        if self.state == State::Escape {
            self.state = State::Ground;
            vec![TermEvent::Keys(vec![key("esc")])]
        } else {
            Vec::new()
        }
    }

    /// Decodes `bytes`; an incomplete sequence at the end is kept for the next call.
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<TermEvent> {
        let mut out = Vec::new();
        for &byte in bytes {
            self.byte(byte, &mut out);
        }
        out
    }

    fn byte(&mut self, byte: u8, out: &mut Vec<TermEvent>) {
        match std::mem::take(&mut self.state) {
            State::Ground => match byte {
                0x01 => self.state = State::Prefix,
                0x1b => self.state = State::Escape,
                _ => out.extend(plain(byte).map(TermEvent::Keys)),
            },
            State::Prefix => match byte {
                b'x' | b'X' => out.push(TermEvent::Quit),
                b'h' | b'H' | b'?' => out.push(TermEvent::Help),
                0x01 => out.push(TermEvent::Keys(vec![key("ctrl"), key("a")])),
                _ => {}
            },
            State::Escape => match byte {
                b'[' => self.state = State::Csi(Vec::new()),
                b'O' => self.state = State::Ss3,
                0x1b => {
                    out.push(TermEvent::Keys(vec![key("esc")]));
                    self.state = State::Escape;
                }
                _ => {
                    // Alt+key (the terminal's "meta sends escape").
                    if let Some(mut keys) = plain(byte) {
                        if !keys.contains(&key("alt")) {
                            keys.insert(0, key("alt"));
                        }
                        out.push(TermEvent::Keys(keys));
                    }
                }
            },
            State::Csi(mut params) => match byte {
                b'[' if params.is_empty() => self.state = State::LinuxFn,
                0x30..=0x3f => {
                    if params.len() < MAX_CSI_PARAMS {
                        params.push(byte);
                        self.state = State::Csi(params);
                    } else {
                        self.state = State::CsiDiscard;
                    }
                }
                0x20..=0x2f => self.state = State::Csi(params), // intermediates: ignored
                0x40..=0x7e => out.extend(csi(&params, byte).map(TermEvent::Keys)),
                _ => {} // malformed: dropped
            },
            State::CsiDiscard => {
                if !(0x40..=0x7e).contains(&byte) {
                    self.state = State::CsiDiscard;
                }
            }
            State::LinuxFn => {
                let name = match byte {
                    b'A' => Some("f1"),
                    b'B' => Some("f2"),
                    b'C' => Some("f3"),
                    b'D' => Some("f4"),
                    b'E' => Some("f5"),
                    _ => None,
                };
                out.extend(name.map(|n| TermEvent::Keys(vec![key(n)])));
            }
            State::Ss3 => {
                let name = match byte {
                    b'A' => Some("up"),
                    b'B' => Some("down"),
                    b'C' => Some("right"),
                    b'D' => Some("left"),
                    b'H' => Some("home"),
                    b'F' => Some("end"),
                    b'M' => Some("kp_enter"),
                    b'P' => Some("f1"),
                    b'Q' => Some("f2"),
                    b'R' => Some("f3"),
                    b'S' => Some("f4"),
                    _ => None,
                };
                out.extend(name.map(|n| TermEvent::Keys(vec![key(n)])));
            }
        }
    }
}

/// A single byte outside escape sequences.
fn plain(byte: u8) -> Option<Vec<Key>> {
    let ctrl = |name: &str| Some(vec![key("ctrl"), key(name)]);
    match byte {
        b'\r' | b'\n' => Some(vec![key("ret")]),
        b'\t' => Some(vec![key("tab")]),
        0x7f | 0x08 => Some(vec![key("backspace")]),
        0x1b => Some(vec![key("esc")]),
        0x00 => ctrl("spc"),
        0x01..=0x1a => {
            let letter = [b'a' + byte - 1];
            ctrl(std::str::from_utf8(&letter).unwrap_or("a"))
        }
        0x1c => ctrl("backslash"),
        0x1d => ctrl("bracket_right"),
        0x1e => ctrl("6"),
        0x1f => ctrl("minus"),
        0x20..=0x7e => us_char(byte as char).map(|(k, shift)| {
            if shift {
                vec![key("shift"), k]
            } else {
                vec![k]
            }
        }),
        // Non-ASCII (UTF-8) has no key on a US keyboard.
        _ => None,
    }
}

/// A complete CSI sequence: parameters and final byte.
fn csi(params: &[u8], last: u8) -> Option<Vec<Key>> {
    let text = std::str::from_utf8(params).ok()?;
    let mut fields = text.split(';');
    let first: Option<u32> = fields.next().and_then(|f| f.parse().ok());
    let modifier: u32 = fields.next().and_then(|f| f.parse().ok()).unwrap_or(1);
    let name = match last {
        b'A' => "up",
        b'B' => "down",
        b'C' => "right",
        b'D' => "left",
        b'H' => "home",
        b'F' => "end",
        b'P' => "f1",
        b'Q' => "f2",
        b'R' => "f3",
        b'S' => "f4",
        b'Z' => return Some(vec![key("shift"), key("tab")]),
        b'~' => match first? {
            1 | 7 => "home",
            2 => "insert",
            3 => "delete",
            4 | 8 => "end",
            5 => "pgup",
            6 => "pgdn",
            11 => "f1",
            12 => "f2",
            13 => "f3",
            14 => "f4",
            15 => "f5",
            17 => "f6",
            18 => "f7",
            19 => "f8",
            20 => "f9",
            21 => "f10",
            23 => "f11",
            24 => "f12",
            _ => return None,
        },
        _ => return None,
    };
    // xterm modifier parameter: 1 + (shift 1 | alt 2 | ctrl 4 | meta 8).
    let bits = modifier.saturating_sub(1);
    let mut keys = Vec::new();
    if bits & 4 != 0 {
        keys.push(key("ctrl"));
    }
    if bits & 2 != 0 {
        keys.push(key("alt"));
    }
    if bits & 1 != 0 {
        keys.push(key("shift"));
    }
    if bits & 8 != 0 {
        keys.push(key("meta_l"));
    }
    keys.push(key(name));
    Some(keys)
}

/// The terminal state to restore, saved once before the first change.
static SAVED: OnceLock<(RawFd, libc::termios)> = OnceLock::new();
/// Whether the terminal is currently raw (so restoring is needed).
static RAW: AtomicBool = AtomicBool::new(false);
/// Previous signal dispositions, for chaining.
static PREVIOUS: OnceLock<Vec<(libc::c_int, libc::sigaction)>> = OnceLock::new();

const RESTORE_SIGNALS: [libc::c_int; 4] =
    [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT];

/// Restores the saved terminal state if raw mode is on. Async-signal-safe.
pub fn restore() {
    if RAW.swap(false, Ordering::SeqCst) {
        if let Some((fd, termios)) = SAVED.get() {
            // SAFETY: tcsetattr with a valid termios; async-signal-safe.
            unsafe { libc::tcsetattr(*fd, libc::TCSANOW, termios) };
        }
    }
}

extern "C" fn restore_at_exit() {
    restore();
}

extern "C" fn restore_on_signal(
    signal: libc::c_int,
    info: *mut libc::siginfo_t,
    context: *mut libc::c_void,
) {
    restore();
    // Then the signal's previous effect: a chained handler, or the default.
    let previous = PREVIOUS
        .get()
        .and_then(|list| list.iter().find(|(s, _)| *s == signal).map(|(_, a)| *a));
    // SAFETY: plain libc calls with valid arguments; all async-signal-safe.
    unsafe {
        match previous {
            Some(action)
                if action.sa_sigaction != libc::SIG_DFL && action.sa_sigaction != libc::SIG_IGN =>
            {
                if action.sa_flags & libc::SA_SIGINFO != 0 {
                    let handler: extern "C" fn(
                        libc::c_int,
                        *mut libc::siginfo_t,
                        *mut libc::c_void,
                    ) = std::mem::transmute(action.sa_sigaction);
                    handler(signal, info, context);
                } else {
                    let handler: extern "C" fn(libc::c_int) =
                        std::mem::transmute(action.sa_sigaction);
                    handler(signal);
                }
            }
            Some(action) if action.sa_sigaction == libc::SIG_IGN => {}
            _ => {
                libc::signal(signal, libc::SIG_DFL);
                libc::raise(signal);
            }
        }
    }
}

/// Raw mode on a terminal; dropping it restores the previous state.
pub struct RawTerminal {
    fd: RawFd,
}

impl RawTerminal {
    /// Puts the terminal on `fd` in raw mode and installs the restore hooks
    /// (atexit, panic hook, signal handlers). Only one per process.
    pub fn enter(fd: RawFd) -> io::Result<RawTerminal> {
        // SAFETY: termios is plain data; tcgetattr fills it.
        let mut original: libc::termios = unsafe { std::mem::zeroed() };
        // SAFETY: valid pointer to a termios.
        if unsafe { libc::tcgetattr(fd, &mut original) } != 0 {
            return Err(io::Error::last_os_error());
        }
        if SAVED.set((fd, original)).is_err() {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "raw mode already entered",
            ));
        }
        install_hooks();
        let mut raw = original;
        raw.c_iflag &= !(libc::IGNBRK
            | libc::BRKINT
            | libc::PARMRK
            | libc::ISTRIP
            | libc::INLCR
            | libc::IGNCR
            | libc::ICRNL
            | libc::IXON);
        raw.c_lflag &= !(libc::ECHO | libc::ECHONL | libc::ICANON | libc::ISIG | libc::IEXTEN);
        raw.c_cflag &= !(libc::CSIZE | libc::PARENB);
        raw.c_cflag |= libc::CS8;
        raw.c_cc[libc::VMIN] = 1;
        raw.c_cc[libc::VTIME] = 0;
        RAW.store(true, Ordering::SeqCst);
        // SAFETY: valid fd and termios.
        if unsafe { libc::tcsetattr(fd, libc::TCSANOW, &raw) } != 0 {
            let error = io::Error::last_os_error();
            RAW.store(false, Ordering::SeqCst);
            return Err(error);
        }
        Ok(RawTerminal { fd })
    }

    /// The terminal's file descriptor.
    pub fn fd(&self) -> RawFd {
        self.fd
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        restore();
    }
}

fn install_hooks() {
    // SAFETY: registering an extern "C" fn with atexit.
    unsafe { libc::atexit(restore_at_exit) };
    let previous_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        restore();
        previous_hook(info);
    }));
    let mut previous = Vec::new();
    for signal in RESTORE_SIGNALS {
        // SAFETY: sigaction structs are plain data; the handler only calls
        // async-signal-safe functions.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = restore_on_signal as *const () as libc::sighandler_t;
            libc::sigemptyset(&mut action.sa_mask);
            action.sa_flags = libc::SA_RESTART | libc::SA_SIGINFO;
            let mut old: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(signal, &action, &mut old) == 0 {
                previous.push((signal, old));
            }
        }
    }
    let _ = PREVIOUS.set(previous);
}

/// Whether `fd` is a terminal.
pub fn is_terminal(fd: RawFd) -> bool {
    // SAFETY: isatty on any fd is safe.
    unsafe { libc::isatty(fd) == 1 }
}

/// Whether this process may use the terminal on `fd`: false only when it
/// is the process's controlling terminal and the process is not in its
/// foreground job. Such a background job (`vmm &`) that sets raw mode or
/// reads the terminal is stopped by SIGTTOU or SIGTTIN. (A terminal that is
/// not the controlling one, `tcgetpgrp` failing, sends neither.)
pub fn in_foreground(fd: RawFd) -> bool {
    // SAFETY: tcgetpgrp and getpgrp only read process state.
    let (foreground, own) = unsafe { (libc::tcgetpgrp(fd), libc::getpgrp()) };
    foreground < 0 || foreground == own
}

/// Reads the terminal on `fd` until end of input or an error, calling
/// `on_event` for each decoded event; returns early when it returns false.
pub fn read_events(fd: RawFd, mut on_event: impl FnMut(TermEvent) -> bool) -> io::Result<()> {
    let mut decoder = TermDecoder::new();
    let mut buffer = [0u8; 256];
    loop {
        if decoder.escape_pending() && !readable_within(fd, ESCAPE_TIMEOUT)? {
            for event in decoder.timeout() {
                if !on_event(event) {
                    return Ok(());
                }
            }
            continue;
        }
        // SAFETY: reading into a valid buffer.
        let n = unsafe { libc::read(fd, buffer.as_mut_ptr().cast(), buffer.len()) };
        if n < 0 {
            let error = io::Error::last_os_error();
            if error.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(error);
        }
        if n == 0 {
            return Ok(());
        }
        for event in decoder.feed(&buffer[..n as usize]) {
            if !on_event(event) {
                return Ok(());
            }
        }
    }
}

fn readable_within(fd: RawFd, timeout: Duration) -> io::Result<bool> {
    let mut poll = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    loop {
        // SAFETY: one valid pollfd.
        let n = unsafe { libc::poll(&mut poll, 1, timeout.as_millis() as libc::c_int) };
        if n < 0 {
            let error = io::Error::last_os_error();
            if error.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(error);
        }
        return Ok(n > 0);
    }
}

#[cfg(test)]
mod tests;
