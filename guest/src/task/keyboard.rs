//! The scancode queue between the IRQ1 handler and the keyboard's consumer
//! task, and [`ScancodeStream`], its consumer side as a `futures` `Stream`.
//!
//! The IRQ1 handler (`drivers::i8042`) pushes each byte into a bounded
//! lock-free queue and wakes the consumer through an `AtomicWaker`. A full
//! queue drops the byte and counts it; nothing panics, allocates or blocks
//! in the handler.

use core::pin::Pin;
use core::sync::atomic::{AtomicBool, Ordering};
use core::task::{Context, Poll};

use crossbeam_queue::ArrayQueue;
use futures_util::stream::Stream;
use futures_util::task::AtomicWaker;
use spin::Once;

use crate::stats;

/// Scancodes the queue holds: enough for everything typed during a long
/// `spin` (each key is 2 bytes, 4 with Shift).
pub const QUEUE_CAPACITY: usize = 4096;

static QUEUE: Once<ArrayQueue<u8>> = Once::new();
static WAKER: AtomicWaker = AtomicWaker::new();
static STREAM_TAKEN: AtomicBool = AtomicBool::new(false);

/// Creates the scancode queue. Call before IRQ1 is unmasked.
pub fn init_queue() {
    // One slot more than we ever fill, see [`push_scancode`].
    QUEUE.call_once(|| ArrayQueue::new(QUEUE_CAPACITY + 1));
}

/// Whether the ring under the scancode queue is full (for tests: it never is).
pub fn ring_is_full() -> bool {
    QUEUE.get().is_some_and(|queue| queue.is_full())
}

/// Queues a scancode for the stream as IRQ1 does (for tests).
pub fn push_scancode(byte: u8) {
    x86_64::instructions::interrupts::without_interrupts(|| push_with_interrupts_off(byte));
}

/// Queues a scancode; interrupts must be off.
///
/// The ring holds one slot more than [`QUEUE_CAPACITY`] and is never filled:
/// `ArrayQueue::push` on a full ring whose head slot is being popped (the
/// consumer advanced `head` and was interrupted before releasing the slot)
/// spins until the pop completes, which on our one CPU, in an interrupt
/// handler, is never. Below capacity the push's slot is never the one being
/// popped. Interrupts off makes the length check and the push one step.
pub fn push_with_interrupts_off(byte: u8) {
    match QUEUE.get() {
        Some(queue) if queue.len() < QUEUE_CAPACITY && queue.push(byte).is_ok() => {}
        _ => stats::SCANCODES_DROPPED.inc(),
    }
    WAKER.wake();
}

/// The scancodes IRQ1 received, as a `Stream`. There is one consumer at a time.
pub struct ScancodeStream {
    _private: (),
}

impl ScancodeStream {
    /// The stream, or `None` if another consumer holds it.
    pub fn take() -> Option<Self> {
        init_queue();
        (!STREAM_TAKEN.swap(true, Ordering::SeqCst)).then_some(Self { _private: () })
    }
}

impl Drop for ScancodeStream {
    fn drop(&mut self) {
        STREAM_TAKEN.store(false, Ordering::SeqCst);
    }
}

impl Stream for ScancodeStream {
    type Item = u8;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<u8>> {
        let queue = QUEUE.get().expect("created by take()");
        if let Some(byte) = queue.pop() {
            return Poll::Ready(Some(byte));
        }
        WAKER.register(cx.waker());
        // A byte pushed before the registration woke the old waker (or none):
        // look again now that the new one is registered.
        match queue.pop() {
            Some(byte) => {
                WAKER.take();
                Poll::Ready(Some(byte))
            }
            None => Poll::Pending,
        }
    }
}
