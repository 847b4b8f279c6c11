//! A byte queue between an interrupt handler and one consumer task, and
//! [`ByteStream`], its consumer side as a `futures` `Stream`: the scancodes
//! of IRQ1 (`task::keyboard`) and the bytes COM1 received (`task::serial`).
//!
//! The handler pushes each byte into a bounded lock-free ring and wakes the
//! consumer through an `AtomicWaker`. A full ring drops the byte and counts
//! it; nothing panics, allocates or blocks in the handler.

use core::pin::Pin;
use core::sync::atomic::{AtomicBool, Ordering};
use core::task::{Context, Poll};

use futures_util::stream::Stream;
use futures_util::task::AtomicWaker;

use super::ring::Ring;
use crate::stats::Counter;

/// Bytes a queue holds: enough for everything typed during a long `spin`
/// (each key is 2 scancodes, 4 with Shift).
pub const QUEUE_CAPACITY: usize = 4096;

/// One interrupt handler's byte queue: a [`Ring`] whose producer is the
/// handler (interrupts off) and whose consumer is the one [`ByteStream`].
pub struct ByteQueue {
    ring: Ring<u8, QUEUE_CAPACITY>,
    waker: AtomicWaker,
    taken: AtomicBool,
    dropped: &'static Counter,
}

impl ByteQueue {
    /// An empty queue counting dropped bytes in `dropped`.
    pub const fn new(dropped: &'static Counter) -> Self {
        Self {
            ring: Ring::new(),
            waker: AtomicWaker::new(),
            taken: AtomicBool::new(false),
            dropped,
        }
    }

    /// Queues a byte, or drops and counts it if the queue is full. The
    /// producer's side: interrupts must be off (the handler, or a test
    /// standing in for it), so there is one producer at a time.
    pub fn push_with_interrupts_off(&self, byte: u8) {
        if self.ring.push(byte).is_err() {
            self.dropped.inc();
        }
        self.waker.wake();
    }

    /// The consumer's side: the next byte, if any.
    fn pop(&self) -> Option<u8> {
        self.ring.pop()
    }

    /// The consumer side, or `None` if another consumer holds it.
    pub fn take(&'static self) -> Option<ByteStream> {
        (!self.taken.swap(true, Ordering::SeqCst)).then_some(ByteStream { queue: self })
    }
}

/// The bytes of a [`ByteQueue`], as a `Stream`. There is one consumer at a
/// time; dropping it frees the queue for the next.
pub struct ByteStream {
    queue: &'static ByteQueue,
}

impl Drop for ByteStream {
    fn drop(&mut self) {
        self.queue.taken.store(false, Ordering::SeqCst);
    }
}

impl Stream for ByteStream {
    type Item = u8;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<u8>> {
        let queue = self.queue;
        if let Some(byte) = queue.pop() {
            return Poll::Ready(Some(byte));
        }
        queue.waker.register(cx.waker());
        // A byte pushed before the registration woke the old waker (or none):
        // look again now that the new one is registered.
        match queue.pop() {
            Some(byte) => {
                queue.waker.take();
                Poll::Ready(Some(byte))
            }
            None => Poll::Pending,
        }
    }
}
