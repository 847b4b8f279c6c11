//! [`SerialTap`]: a bounded, waitable copy of the guest's serial output.
//!
//! Every byte the guest transmits on COM1 is appended here (as well as written
//! to stdout). Offsets are absolute: byte `n` is the `n`-th byte the guest ever
//! sent, so a caller can remember a mark and later wait for text written after
//! it. Only the last [`SerialTap::CAPACITY`] bytes are kept; older ones are
//! dropped and searches start at the oldest byte still held.
use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// A handle on the serial output log (cheap to clone; all clones share it).
#[derive(Clone, Default)]
pub struct SerialTap {
    inner: Arc<(Mutex<TapState>, Condvar)>,
}

#[derive(Default)]
struct TapState {
    /// The retained bytes: absolute offsets `start..start + bytes.len()`.
    bytes: VecDeque<u8>,
    /// Absolute offset of `bytes[0]`.
    start: usize,
    /// No more output will come (the VM stopped).
    closed: bool,
    /// Bytes searched by waiters so far (tests check that waiting costs
    /// work in proportion to new output, not to the retained log).
    #[cfg(test)]
    searched: usize,
}

impl TapState {
    fn end(&self) -> usize {
        self.start + self.bytes.len()
    }

    /// Absolute offset of the first occurrence of `needle` at or after `from`.
    fn find(&mut self, from: usize, needle: &[u8]) -> Option<usize> {
        let from = from.max(self.start);
        if needle.is_empty() {
            return Some(from.min(self.end()));
        }
        let rel = from - self.start;
        if rel >= self.bytes.len() {
            return None;
        }
        #[cfg(test)]
        {
            self.searched += self.bytes.len() - rel;
        }
        let (a, b) = self.bytes.as_slices();
        // Search the contiguous view; copy only when the ring wraps.
        let hit = if b.is_empty() {
            find(&a[rel..], needle)
        } else {
            let joined: Vec<u8> = self.bytes.range(rel..).copied().collect();
            find(&joined, needle)
        };
        hit.map(|pos| from + pos)
    }

    fn tail(&self, from: usize) -> Vec<u8> {
        let rel = from.max(self.start) - self.start;
        self.bytes
            .range(rel.min(self.bytes.len())..)
            .copied()
            .collect()
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

impl SerialTap {
    /// Bytes retained (the most recent ones).
    pub const CAPACITY: usize = 1 << 20;

    /// An empty tap.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, TapState> {
        // A panic while holding this lock cannot leave the log inconsistent
        // in a way that matters: keep serving it.
        self.inner
            .0
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// Appends guest output and wakes waiters.
    pub fn push(&self, data: &[u8]) {
        let mut state = self.lock();
        state.bytes.extend(data);
        let excess = state.bytes.len().saturating_sub(Self::CAPACITY);
        if excess > 0 {
            state.bytes.drain(..excess);
            state.start += excess;
        }
        drop(state);
        self.inner.1.notify_all();
    }

    /// Marks the end of output (the VM stopped) and wakes waiters.
    pub fn close(&self) {
        self.lock().closed = true;
        self.inner.1.notify_all();
    }

    /// The absolute offset just past the last byte received so far.
    pub fn mark(&self) -> usize {
        self.lock().end()
    }

    /// Waits until the output at or after offset `from` contains `needle`.
    ///
    /// Returns the offset just past the match (a new mark), or, when
    /// `timeout` expires or the VM stops first, the output after `from`
    /// (as much of it as is still retained).
    pub fn wait_for(
        &self,
        from: usize,
        needle: &[u8],
        timeout: Duration,
    ) -> Result<usize, Vec<u8>> {
        let deadline = Instant::now().checked_add(timeout);
        let mut state = self.lock();
        // Where a match may still start: the bytes before it were searched.
        // Each wake-up searches only what came since, so a waiter does not
        // rescan the whole log (up to 1 MiB, under the lock the guest's
        // UART pushes through) for every byte the guest sends.
        let mut search_from = from;
        loop {
            if let Some(pos) = state.find(search_from, needle) {
                return Ok(pos + needle.len());
            }
            let searched_to = state.end().saturating_sub(needle.len() - 1);
            search_from = search_from.max(searched_to);
            let now = Instant::now();
            let remaining = match deadline {
                Some(deadline) if now < deadline => deadline - now,
                Some(_) => return Err(state.tail(from)),
                None => Duration::from_secs(3600),
            };
            if state.closed {
                return Err(state.tail(from));
            }
            state = self
                .inner
                .1
                .wait_timeout(state, remaining)
                .unwrap_or_else(|poison| poison.into_inner())
                .0;
        }
    }

    /// The retained output and the absolute offset of its first byte.
    pub fn snapshot(&self) -> (usize, Vec<u8>) {
        let state = self.lock();
        (state.start, state.bytes.iter().copied().collect())
    }

    /// The retained output from absolute offset `from` on.
    pub fn since(&self, from: usize) -> Vec<u8> {
        self.lock().tail(from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_text_after_mark() {
        let tap = SerialTap::new();
        tap.push(b"hello > ");
        let mark = tap.mark();
        tap.push(b"world > ");
        assert_eq!(tap.wait_for(0, b"> ", Duration::ZERO), Ok(8));
        assert_eq!(tap.wait_for(mark, b"> ", Duration::ZERO), Ok(16));
        assert_eq!(
            tap.wait_for(mark, b"hello", Duration::ZERO),
            Err(b"world > ".to_vec())
        );
    }

    #[test]
    fn waits_for_later_output() {
        let tap = SerialTap::new();
        let writer = tap.clone();
        let thread = std::thread::spawn(move || {
            writer.push(b"abc");
            writer.push(b"def");
        });
        assert_eq!(tap.wait_for(0, b"cd", Duration::from_secs(10)), Ok(4));
        thread.join().unwrap();
    }

    #[test]
    fn keeps_only_the_most_recent_bytes_with_absolute_offsets() {
        let tap = SerialTap::new();
        tap.push(&vec![b'x'; SerialTap::CAPACITY]);
        tap.push(b"needle");
        let (start, bytes) = tap.snapshot();
        assert_eq!(start, 6);
        assert_eq!(bytes.len(), SerialTap::CAPACITY);
        assert_eq!(
            tap.wait_for(0, b"needle", Duration::ZERO),
            Ok(SerialTap::CAPACITY + 6)
        );
    }

    #[test]
    fn closed_tap_fails_fast() {
        let tap = SerialTap::new();
        tap.push(b"partial");
        tap.close();
        assert_eq!(
            tap.wait_for(0, b"never", Duration::from_secs(60)),
            Err(b"partial".to_vec())
        );
    }
    /// A waiting `expect` must not make the guest's output crawl: the waiter
    /// searches only the new bytes, not the whole retained log on each push.
    #[test]
    fn waiting_does_not_stall_the_writer() {
        let tap = SerialTap::new();
        // A full, wrapped log, as after a long run.
        tap.push(&vec![b'x'; SerialTap::CAPACITY + 1]);
        let waiter = {
            let tap = tap.clone();
            // Expecting since a mark older than the retained log.
            std::thread::spawn(move || tap.wait_for(0, b"needle", Duration::from_secs(600)))
        };
        // The UART pushes one byte per guest exit, some 20 µs apart, which
        // leaves the waiter time to search after every byte.
        const PUSHES: usize = 100_000;
        for _ in 0..PUSHES {
            tap.push(b"y");
            let pushed = Instant::now();
            while pushed.elapsed() < Duration::from_micros(20) {
                std::hint::spin_loop();
            }
        }
        tap.push(b"needle");
        assert!(waiter.join().unwrap().is_ok());
        // The retained log once, then each new byte with the needle's
        // overlap: in proportion to the output, however often the waiter
        // woke. (Rescanning the log per wake-up would be ~10^5 times more.)
        let searched = tap.lock().searched;
        let bound = SerialTap::CAPACITY + (PUSHES + 6) * b"needle".len();
        assert!(
            searched <= bound,
            "searched {searched} bytes, bound {bound}"
        );
    }

    #[test]
    fn finds_a_needle_split_across_pushes_while_waiting() {
        let tap = SerialTap::new();
        tap.push(b"> ne");
        let waiter = {
            let tap = tap.clone();
            std::thread::spawn(move || tap.wait_for(0, b"needle", Duration::from_secs(60)))
        };
        std::thread::sleep(Duration::from_millis(20));
        tap.push(b"e");
        std::thread::sleep(Duration::from_millis(20));
        tap.push(b"dle!");
        assert_eq!(waiter.join().unwrap(), Ok(8));
    }
}
