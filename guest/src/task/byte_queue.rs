//! A byte queue between an interrupt handler and one consumer task, and
//! [`ByteStream`], its consumer side as a `futures` `Stream`: the scancodes
//! of IRQ1 (`task::keyboard`) and the bytes COM1 received (`task::serial`).
//!
//! The handler pushes each byte into a bounded lock-free queue and wakes
//! the consumer through an `AtomicWaker`. A full queue drops the byte and
//! counts it; nothing panics, allocates or blocks in the handler.

use core::pin::Pin;
use core::sync::atomic::{AtomicBool, Ordering};
use core::task::{Context, Poll};

use crossbeam_queue::ArrayQueue;
use futures_util::stream::Stream;
use futures_util::task::AtomicWaker;
use spin::Once;

use crate::stats::Counter;

/// Bytes a queue holds: enough for everything typed during a long `spin`
/// (each key is 2 scancodes, 4 with Shift).
pub const QUEUE_CAPACITY: usize = 4096;

/// One interrupt handler's byte queue.
pub struct ByteQueue {
    queue: Once<ArrayQueue<u8>>,
    waker: AtomicWaker,
    taken: AtomicBool,
    dropped: &'static Counter,
}

impl ByteQueue {
    /// An uncreated queue counting dropped bytes in `dropped`.
    pub const fn new(dropped: &'static Counter) -> Self {
        Self {
            queue: Once::new(),
            waker: AtomicWaker::new(),
            taken: AtomicBool::new(false),
            dropped,
        }
    }

    /// Creates the queue (allocates). Call before the interrupt is unmasked.
    pub fn init(&self) {
        // One slot more than we ever fill, see [`Self::push_with_interrupts_off`].
        self.queue.call_once(|| ArrayQueue::new(QUEUE_CAPACITY + 1));
    }

    /// Whether the ring under the queue is full (for tests: it never is).
    pub fn ring_is_full(&self) -> bool {
        self.queue.get().is_some_and(|queue| queue.is_full())
    }

    /// Queues a byte; interrupts must be off.
    ///
    /// The ring holds one slot more than [`QUEUE_CAPACITY`] and is never
    /// filled: `ArrayQueue::push` on a full ring whose head slot is being
    /// popped (the consumer advanced `head` and was interrupted before
    /// releasing the slot) spins until the pop completes, which on our one
    /// CPU, in an interrupt handler, is never. Below capacity the push's
    /// slot is never the one being popped. Interrupts off makes the length
    /// check and the push one step.
    pub fn push_with_interrupts_off(&self, byte: u8) {
        match self.queue.get() {
            Some(queue) if queue.len() < QUEUE_CAPACITY && queue.push(byte).is_ok() => {}
            _ => self.dropped.inc(),
        }
        self.waker.wake();
    }

    /// The consumer side, or `None` if another consumer holds it.
    pub fn take(&'static self) -> Option<ByteStream> {
        self.init();
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
        let shared = self.queue;
        let queue = shared.queue.get().expect("created by take()");
        if let Some(byte) = queue.pop() {
            return Poll::Ready(Some(byte));
        }
        shared.waker.register(cx.waker());
        // A byte pushed before the registration woke the old waker (or none):
        // look again now that the new one is registered.
        match queue.pop() {
            Some(byte) => {
                shared.waker.take();
                Poll::Ready(Some(byte))
            }
            None => Poll::Pending,
        }
    }
}
