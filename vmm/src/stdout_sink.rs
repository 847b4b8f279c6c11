//! Where COM1 output meets the host's stdout without ever blocking the
//! machine: a queue drained by a dedicated writer thread, in the spirit of
//! QEMU's chardev backends.
//!
//! The UART model runs on the vCPU thread while it holds the machine lock. A
//! blocking `write` to stdout there (a pipe whose reader paused, `vmm | less`
//! at a full screen, a harness that stopped reading) would park the vCPU with
//! the lock held, and with it everything else that takes the lock:
//! `--timeout`, `Ctrl+A x`, QMP `quit`, key injection. So the UART only
//! appends to a queue here ([`StdoutSink::push`]: a short mutex, never I/O),
//! and one writer thread per process does the blocking writes with no machine
//! lock held.
//!
//! Why a queue and not UART backpressure (QEMU keeps LSR.THRE/TEMT clear while
//! its chardev cannot take more, and the guest's driver waits): `vm-superio`'s
//! 16550 keeps THRE and TEMT set permanently and raises the THRE interrupt
//! synchronously on every THR write ("we cannot block the driver"), with no
//! hook to hold them back. Backpressure would mean forking the UART model or
//! masking LSR/IIR reads and raising a deferred THRE interrupt from the
//! writer thread through the machine lock and the PIC routing. It would also
//! freeze a guest whose console nobody reads, which is what QEMU does but not
//! what a test harness that stopped reading wants.
//!
//! Guarantees:
//! - Order: bytes reach stdout in the order they were pushed, byte for byte
//!   (one queue, one writer).
//! - Latency: a push wakes the idle writer at once; there is no batching
//!   delay, so interactive echo is as prompt as before. Bytes pushed while a
//!   write is in progress go out in the next `write` together.
//! - Memory: at most [`StdoutSink::CAPACITY`] bytes wait. Beyond that the
//!   newest bytes are dropped (what is queued stays a contiguous prefix of the
//!   output), counted ([`StdoutSink::dropped`], shown by `--stats`) and
//!   reported once with a warning. The [`SerialTap`](crate::SerialTap) is fed
//!   before the sink and never depends on stdout's progress.
//! - Exit: [`StdoutSink::flush`] waits until everything queued is written,
//!   giving up only once the writer has made no progress for a grace period
//!   (stdout stuck), so a normal run loses nothing and a stuck stdout delays
//!   the exit by at most that period.
//! - A stdout that fails (closed pipe: `EPIPE`, since Rust ignores `SIGPIPE`)
//!   is abandoned: later output is discarded and the guest runs on.
//!
//! The writer writes to file descriptor 1 directly, not through
//! [`std::io::Stdout`]: nothing is buffered behind our back, and a writer
//! parked in `write(2)` holds no lock the runtime's exit path would need.
use crate::sandbox::Role;
use std::collections::VecDeque;
use std::io::{self, Write};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

/// The queue in front of a blocking writer (cheap to clone; clones share it).
#[derive(Clone)]
pub struct StdoutSink {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for StdoutSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StdoutSink")
            .field("pending", &self.pending())
            .finish_non_exhaustive()
    }
}

struct Inner {
    state: Mutex<State>,
    /// Wakes the writer: bytes were queued.
    work: Condvar,
    /// Wakes flushers: the writer made progress, went idle or failed.
    progress: Condvar,
    capacity: usize,
}

#[derive(Default)]
struct State {
    queue: VecDeque<u8>,
    /// Bytes the writer took from the queue and is writing now.
    in_flight: usize,
    /// Bytes written so far (progress for [`StdoutSink::flush`]).
    written: u64,
    /// Bytes dropped because the queue was full.
    dropped: u64,
    /// The writer waits for work (a push must wake it).
    writer_idle: bool,
    /// The output failed; everything from now on is discarded.
    failed: bool,
}

/// At most this much is taken from the queue at a time.
const CHUNK: usize = 64 * 1024;

/// At most this much goes to one `write` (a pipe's atomic size, `PIPE_BUF`),
/// so progress shows at that grain.
const WRITE_SLICE: usize = 4096;

/// The process's stdout sink, started on first use ([`StdoutSink::stdout`]).
static STDOUT_SINK: OnceLock<Option<StdoutSink>> = OnceLock::new();

impl StdoutSink {
    /// Bytes that may wait for stdout before new ones are dropped.
    pub const CAPACITY: usize = 16 << 20;

    /// How long [`StdoutSink::flush`] waits at exit for a writer that makes
    /// no progress.
    pub const EXIT_GRACE: Duration = Duration::from_secs(1);

    /// The process's stdout sink, its writer thread started on first use.
    /// `None` when the thread cannot be started (output is then lost; the
    /// failure is logged once).
    pub fn stdout() -> Option<&'static StdoutSink> {
        STDOUT_SINK
            .get_or_init(|| match Self::spawn(Fd1, Self::CAPACITY) {
                Ok(sink) => Some(sink),
                Err(error) => {
                    log::error!(
                        "cannot start the stdout writer thread: {error}; COM1 output is lost"
                    );
                    None
                }
            })
            .as_ref()
    }

    /// The process's stdout sink if something started it, without starting
    /// it: on the way out, where a confined main thread may not create a
    /// thread (and there is nothing to flush if COM1 never went to stdout).
    pub fn stdout_if_started() -> Option<&'static StdoutSink> {
        STDOUT_SINK.get().and_then(Option::as_ref)
    }

    /// A sink writing to `out` (the process's stdout) from a new thread,
    /// holding at most `capacity` bytes.
    pub fn spawn(out: impl Write + Send + 'static, capacity: usize) -> io::Result<Self> {
        Self::spawn_as(out, capacity, Role::StdoutWriter)
    }

    /// A sink writing to `out` from a new thread named and confined as
    /// `role` (`--serial file:` and `unix:` use [`Role::SerialWriter`]).
    pub fn spawn_as(
        mut out: impl Write + Send + 'static,
        capacity: usize,
        role: Role,
    ) -> io::Result<Self> {
        let sink = StdoutSink {
            inner: Arc::new(Inner {
                state: Mutex::new(State::default()),
                work: Condvar::new(),
                progress: Condvar::new(),
                capacity,
            }),
        };
        let writer = sink.clone();
        thread::Builder::new()
            .name(role.thread_name().into())
            .spawn(move || writer.run(&mut out, role))?;
        Ok(sink)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The state stays consistent at every unlock: keep serving it.
        self.inner
            .state
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// Queues `data` for the writer. Never blocks on I/O.
    pub fn push(&self, data: &[u8]) {
        let mut state = self.lock();
        if state.failed || data.is_empty() {
            return;
        }
        let room = self
            .inner
            .capacity
            .saturating_sub(state.queue.len() + state.in_flight);
        let taken = room.min(data.len());
        state.queue.extend(&data[..taken]);
        let lost = (data.len() - taken) as u64;
        if lost > 0 {
            if state.dropped == 0 {
                log::warn!(
                    "stdout is not keeping up: {} bytes of guest output are waiting; \
                     dropping further output (counted in --stats)",
                    self.inner.capacity
                );
            }
            state.dropped += lost;
        }
        if taken > 0 && state.writer_idle {
            state.writer_idle = false;
            drop(state);
            self.inner.work.notify_one();
        }
    }

    /// Waits until everything pushed so far is written. Returns `false` when
    /// it gave up: the writer made no progress for `stall` (stdout stuck) or
    /// the output failed.
    pub fn flush(&self, stall: Duration) -> bool {
        let mut state = self.lock();
        let mut last_written = state.written;
        let mut last_progress = Instant::now();
        loop {
            if state.failed {
                return false;
            }
            if state.queue.is_empty() && state.in_flight == 0 {
                return true;
            }
            if state.written != last_written {
                last_written = state.written;
                last_progress = Instant::now();
            }
            let waited = last_progress.elapsed();
            if waited >= stall {
                return false;
            }
            state = self
                .inner
                .progress
                .wait_timeout(state, stall - waited)
                .unwrap_or_else(|poison| poison.into_inner())
                .0;
        }
    }

    /// Bytes dropped so far because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.lock().dropped
    }

    /// Bytes waiting for the writer (queued or being written).
    pub fn pending(&self) -> usize {
        let state = self.lock();
        state.queue.len() + state.in_flight
    }

    /// The writer thread: takes what is queued and writes it, blocking on
    /// the output with no lock held.
    fn run(&self, out: &mut dyn Write, role: Role) {
        crate::sandbox::confine_or_exit(role);
        let mut chunk = Vec::with_capacity(CHUNK);
        let mut state = self.lock();
        loop {
            while state.queue.is_empty() {
                state.writer_idle = true;
                self.inner.progress.notify_all();
                state = self
                    .inner
                    .work
                    .wait(state)
                    .unwrap_or_else(|poison| poison.into_inner());
            }
            state.writer_idle = false;
            let n = state.queue.len().min(CHUNK);
            chunk.clear();
            chunk.extend(state.queue.drain(..n));
            state.in_flight = n;
            drop(state);

            // Written a slice at a time, each counted as progress: one
            // blocking `write` of the whole chunk into a pipe a slow reader
            // drains would show no progress for seconds, and the exit's
            // `flush` would take a live reader for a stuck one.
            let mut result = Ok(());
            for slice in chunk.chunks(WRITE_SLICE) {
                result = out.write_all(slice);
                if result.is_err() {
                    break;
                }
                let mut state = self.lock();
                state.written += slice.len() as u64;
                state.in_flight -= slice.len();
                drop(state);
                self.inner.progress.notify_all();
            }
            let result = result.and_then(|()| out.flush());

            state = self.lock();
            state.in_flight = 0;
            match result {
                Ok(()) => {}
                Err(error) => {
                    // A closed stdout must not stop the guest: the tap
                    // still has its output.
                    log::debug!("stdout write failed: {error}; discarding COM1 output");
                    state.failed = true;
                    state.queue = VecDeque::new();
                    self.inner.progress.notify_all();
                    return;
                }
            }
            self.inner.progress.notify_all();
        }
    }
}

/// File descriptor 1, unbuffered. A non-blocking descriptor (set by someone
/// sharing the terminal) is waited on with `poll` rather than failing.
struct Fd1;

impl Write for Fd1 {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        loop {
            // SAFETY: writes from a valid buffer of `data.len()` bytes.
            let n = unsafe { libc::write(1, data.as_ptr().cast(), data.len()) };
            if n >= 0 {
                return Ok(n as usize);
            }
            let error = io::Error::last_os_error();
            match error.kind() {
                io::ErrorKind::Interrupted => {}
                io::ErrorKind::WouldBlock => {
                    let mut pollfd = libc::pollfd {
                        fd: 1,
                        events: libc::POLLOUT,
                        revents: 0,
                    };
                    // SAFETY: one valid pollfd. Errors (EINTR) just retry.
                    unsafe { libc::poll(&mut pollfd, 1, -1) };
                }
                _ => return Err(error),
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    /// An output that hands each write to the test and blocks until the
    /// test lets it go (a stdout whose reader paused).
    struct Gated {
        written: Arc<Mutex<Vec<u8>>>,
        gate: mpsc::Receiver<()>,
    }

    impl Write for Gated {
        fn write(&mut self, data: &[u8]) -> io::Result<usize> {
            self.gate.recv().map_err(|_| io::ErrorKind::BrokenPipe)?;
            self.written.lock().unwrap().extend_from_slice(data);
            Ok(data.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn gated(capacity: usize) -> (StdoutSink, Arc<Mutex<Vec<u8>>>, mpsc::Sender<()>) {
        let written = Arc::new(Mutex::new(Vec::new()));
        let (open, gate) = mpsc::channel();
        let out = Gated {
            written: written.clone(),
            gate,
        };
        (StdoutSink::spawn(out, capacity).unwrap(), written, open)
    }

    #[test]
    fn push_never_blocks_on_a_stuck_output_and_flush_gives_up() {
        let (sink, written, _gate) = gated(1 << 20);
        let started = Instant::now();
        for _ in 0..100_000 {
            sink.push(b"x");
        }
        assert!(started.elapsed() < Duration::from_secs(2));
        let started = Instant::now();
        assert!(!sink.flush(Duration::from_millis(100)));
        let waited = started.elapsed();
        assert!(waited >= Duration::from_millis(100), "{waited:?}");
        assert!(waited < Duration::from_secs(2), "{waited:?}");
        assert!(written.lock().unwrap().is_empty());
        assert_eq!(sink.pending(), 100_000);
        assert_eq!(sink.dropped(), 0);
    }

    #[test]
    fn output_keeps_its_order_and_flush_waits_for_all_of_it() {
        let (sink, written, gate) = gated(1 << 20);
        // A slow reader: each write waits for the test.
        let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let releaser = {
            let done = done.clone();
            thread::spawn(move || {
                while !done.load(std::sync::atomic::Ordering::Relaxed) && gate.send(()).is_ok() {
                    thread::sleep(Duration::from_millis(1));
                }
            })
        };
        // Pushes race with the writes.
        let mut expected = Vec::new();
        for i in 0..50_000u32 {
            let bytes = &i.to_le_bytes()[..1 + (i % 4) as usize];
            sink.push(bytes);
            expected.extend_from_slice(bytes);
        }
        assert!(sink.flush(Duration::from_secs(10)));
        assert_eq!(*written.lock().unwrap(), expected);
        assert_eq!(sink.pending(), 0);
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        releaser.join().unwrap();
    }

    #[test]
    fn a_full_queue_drops_and_counts_the_newest_bytes() {
        let (sink, written, gate) = gated(10);
        sink.push(b"0123456789abc");
        sink.push(b"def");
        assert_eq!(sink.dropped(), 6);
        assert_eq!(sink.pending(), 10);
        gate.send(()).unwrap();
        assert!(sink.flush(Duration::from_secs(10)));
        assert_eq!(*written.lock().unwrap(), b"0123456789");
        // Room again once written.
        sink.push(b"gh");
        gate.send(()).unwrap();
        assert!(sink.flush(Duration::from_secs(10)));
        assert_eq!(*written.lock().unwrap(), b"0123456789gh");
        assert_eq!(sink.dropped(), 6);
    }

    #[test]
    fn a_failed_output_is_abandoned_without_blocking() {
        let (sink, _written, gate) = gated(1 << 20);
        sink.push(b"lost");
        drop(gate); // the next write fails (broken pipe)
        assert!(!sink.flush(Duration::from_secs(10)));
        sink.push(b"more");
        assert_eq!(sink.pending(), 0);
        assert!(!sink.flush(Duration::from_secs(10)));
    }
}
