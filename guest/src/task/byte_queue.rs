//! A byte queue between an interrupt handler and one consumer task, and
//! [`ByteStream`], its consumer side as a `futures` `Stream`: the scancodes
//! of IRQ1 (`task::keyboard`) and the bytes COM1 received (`task::serial`).
//!
//! The handler pushes each byte into a bounded lock-free ring and wakes the
//! consumer through an `AtomicWaker`. A full ring drops the byte and counts
//! it; nothing panics, allocates or blocks in the handler.

use core::cell::UnsafeCell;
use core::pin::Pin;
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use core::task::{Context, Poll};

use futures_util::stream::Stream;
use futures_util::task::AtomicWaker;

use crate::stats::Counter;

/// Bytes a queue holds: enough for everything typed during a long `spin`
/// (each key is 2 scancodes, 4 with Shift).
pub const QUEUE_CAPACITY: usize = 4096;

/// One interrupt handler's byte queue: a single-producer single-consumer
/// ring in static memory (`.bss`, zeroed at boot: no allocation, no
/// initialisation loop), the producer the interrupt handler (interrupts
/// off), the consumer the one [`ByteStream`].
///
/// The producer writes slot `tail` and then publishes `tail + 1`; the
/// consumer reads slot `head` and then publishes `head + 1`. The producer
/// never writes a slot the consumer has not released (`tail - head <
/// capacity`), so an interrupt in the middle of a pop is harmless.
pub struct ByteQueue {
    ring: UnsafeCell<[u8; QUEUE_CAPACITY]>,
    /// Next slot to read (only the consumer stores it).
    head: AtomicUsize,
    /// Next slot to write (only the producer stores it).
    tail: AtomicUsize,
    waker: AtomicWaker,
    taken: AtomicBool,
    dropped: &'static Counter,
}

// SAFETY: the ring's slots are shared by one producer and one consumer that
// hand them over through `head` and `tail` (Acquire/Release), see above.
unsafe impl Sync for ByteQueue {}

impl ByteQueue {
    /// An empty queue counting dropped bytes in `dropped`.
    pub const fn new(dropped: &'static Counter) -> Self {
        Self {
            ring: UnsafeCell::new([0; QUEUE_CAPACITY]),
            head: AtomicUsize::new(0),
            tail: AtomicUsize::new(0),
            waker: AtomicWaker::new(),
            taken: AtomicBool::new(false),
            dropped,
        }
    }

    /// Queues a byte, or drops and counts it if the queue is full. The
    /// producer's side: interrupts must be off (the handler, or a test
    /// standing in for it), so there is one producer at a time.
    pub fn push_with_interrupts_off(&self, byte: u8) {
        let tail = self.tail.load(Ordering::Relaxed);
        if tail.wrapping_sub(self.head.load(Ordering::Acquire)) >= QUEUE_CAPACITY {
            self.dropped.inc();
        } else {
            // SAFETY: slot `tail` is free (see the type's documentation) and
            // only this producer writes slots.
            unsafe { (*self.ring.get())[tail % QUEUE_CAPACITY] = byte };
            self.tail.store(tail.wrapping_add(1), Ordering::Release);
        }
        self.waker.wake();
    }

    /// The consumer's side: the next byte, if any.
    fn pop(&self) -> Option<u8> {
        let head = self.head.load(Ordering::Relaxed);
        if head == self.tail.load(Ordering::Acquire) {
            return None;
        }
        // SAFETY: slot `head` was published by the producer (Acquire above)
        // and is not written again until `head` moves past it.
        let byte = unsafe { (*self.ring.get())[head % QUEUE_CAPACITY] };
        self.head.store(head.wrapping_add(1), Ordering::Release);
        Some(byte)
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
