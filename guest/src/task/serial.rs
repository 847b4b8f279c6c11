//! The queue between COM1's receive interrupt (`drivers::serial`) and the
//! shell, and [`SerialStream`], its consumer side as a `futures` `Stream`
//! (a [`ByteQueue`]).

use core::pin::Pin;
use core::task::{Context, Poll};

use futures_util::stream::Stream;

use super::byte_queue::{ByteQueue, ByteStream};
use crate::stats;

static QUEUE: ByteQueue = ByteQueue::new(&stats::SERIAL_RX_DROPPED);

/// Queues a received byte; interrupts must be off (see
/// [`ByteQueue::push_with_interrupts_off`]).
pub fn push_with_interrupts_off(byte: u8) {
    QUEUE.push_with_interrupts_off(byte);
}

/// The bytes COM1 received, as a `Stream`. There is one consumer at a time.
pub struct SerialStream {
    bytes: ByteStream,
}

impl SerialStream {
    /// The stream, or `None` if another consumer holds it.
    pub fn take() -> Option<Self> {
        QUEUE.take().map(|bytes| Self { bytes })
    }
}

impl Stream for SerialStream {
    type Item = u8;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<u8>> {
        Pin::new(&mut self.bytes).poll_next(cx)
    }
}
