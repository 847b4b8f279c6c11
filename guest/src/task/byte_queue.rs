//! A byte queue between an interrupt handler and one consumer task, and
//! [`ByteStream`], its consumer side as a `futures` `Stream`: the scancodes
//! of IRQ1 (`task::keyboard`) and the bytes COM1 received (`task::serial`).
//!
//! The handler pushes each byte into a bounded lock-free ring and wakes the
//! consumer through the waker it registered. A full ring drops the byte and
//! counts it; nothing panics, allocates or blocks in the handler.
//!
//! The waker stays registered after a wake (the handler wakes it by
//! reference), so the consumer re-registers only when its waker changes: a
//! comparison of two words per poll instead of `AtomicWaker`'s
//! compare-and-swap protocol and a clone after every wake (about 40
//! emulated instructions per poll under an emulating hypervisor). The
//! consumer stores a new waker with interrupts off, and the handler only
//! reads it with interrupts off, so on our one CPU they never overlap.

use core::cell::UnsafeCell;
use core::pin::Pin;
use core::sync::atomic::{AtomicBool, Ordering};
use core::task::{Context, Poll, Waker};

use futures_util::stream::Stream;
use x86_64::instructions::interrupts;

use super::ring::Ring;
use crate::stats::Counter;

/// Bytes a queue holds: enough for everything typed during a long `spin`
/// (each key is 2 scancodes, 4 with Shift).
pub const QUEUE_CAPACITY: usize = 4096;

/// One interrupt handler's byte queue: a [`Ring`] whose producer is the
/// handler (interrupts off) and whose consumer is the one [`ByteStream`].
pub struct ByteQueue {
    ring: Ring<u8, QUEUE_CAPACITY>,
    /// The consumer's waker: written in task context with interrupts off,
    /// read by the handler (interrupts off) and by the consumer.
    waker: UnsafeCell<Option<Waker>>,
    taken: AtomicBool,
    dropped: &'static Counter,
}

// SAFETY: `waker` is written only by the one consumer with interrupts off
// and read only with interrupts off or by that consumer, on one CPU (see the
// module documentation); the ring is `Sync`.
unsafe impl Sync for ByteQueue {}

impl ByteQueue {
    /// An empty queue counting dropped bytes in `dropped`.
    pub const fn new(dropped: &'static Counter) -> Self {
        Self {
            ring: Ring::new(),
            waker: UnsafeCell::new(None),
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
        // SAFETY: interrupts are off, so the consumer is not storing a waker.
        if let Some(waker) = unsafe { &*self.waker.get() } {
            waker.wake_by_ref();
        }
    }

    /// The consumer's side: registers `waker` unless it is the one
    /// registered already.
    fn register(&self, waker: &Waker) {
        // SAFETY: only the consumer (us) writes the slot, so reading it here
        // races with nothing.
        if let Some(current) = unsafe { &*self.waker.get() } {
            if current.will_wake(waker) {
                return;
            }
        }
        let waker = waker.clone();
        interrupts::without_interrupts(|| {
            // SAFETY: interrupts are off: the handler cannot be reading it.
            let old = unsafe { (*self.waker.get()).replace(waker) };
            drop(old);
        });
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
        let queue = self.queue;
        interrupts::without_interrupts(|| {
            // SAFETY: interrupts are off and we are the one consumer.
            let old = unsafe { (*queue.waker.get()).take() };
            drop(old);
        });
        queue.taken.store(false, Ordering::SeqCst);
    }
}

impl Stream for ByteStream {
    type Item = u8;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<u8>> {
        let queue = self.queue;
        // Registered before the look, so a byte pushed after it wakes us.
        queue.register(cx.waker());
        match queue.pop() {
            Some(byte) => Poll::Ready(Some(byte)),
            None => Poll::Pending,
        }
    }
}
