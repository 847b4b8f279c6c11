//! The scancode queue between the IRQ1 handler and the keyboard's consumer
//! task, and [`ScancodeStream`], its consumer side as a `futures` `Stream`
//! (a [`ByteQueue`]).

use core::pin::Pin;
use core::task::{Context, Poll};

use futures_util::stream::Stream;

use super::byte_queue::{ByteQueue, ByteStream};
use crate::stats;

pub use super::byte_queue::QUEUE_CAPACITY;

static QUEUE: ByteQueue = ByteQueue::new(&stats::SCANCODES_DROPPED);

/// Queues a scancode for the stream as IRQ1 does (for tests).
pub fn push_scancode(byte: u8) {
    x86_64::instructions::interrupts::without_interrupts(|| push_with_interrupts_off(byte));
}

/// Queues a scancode; interrupts must be off (see
/// [`ByteQueue::push_with_interrupts_off`]).
pub fn push_with_interrupts_off(byte: u8) {
    QUEUE.push_with_interrupts_off(byte);
}

/// The scancodes IRQ1 received, as a `Stream`. There is one consumer at a time.
pub struct ScancodeStream {
    bytes: ByteStream,
}

impl ScancodeStream {
    /// The stream, or `None` if another consumer holds it.
    pub fn take() -> Option<Self> {
        QUEUE.take().map(|bytes| Self { bytes })
    }
}

impl Stream for ScancodeStream {
    type Item = u8;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<u8>> {
        Pin::new(&mut self.bytes).poll_next(cx)
    }
}
