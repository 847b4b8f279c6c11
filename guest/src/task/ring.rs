//! [`Ring`]: a bounded single-producer single-consumer queue in static
//! memory, for the hand-over from interrupt handlers to tasks (the byte
//! queues) and to the executor (its ready queue).
//!
//! No allocation and no initialisation loop (it lives in `.bss`), and no
//! atomic read-modify-write: under an emulating hypervisor every
//! instruction costs a microsecond. The price is the discipline: one
//! producer at a time and one consumer at a time. On our one CPU a producer
//! that may be interrupted by another producer pushes with interrupts off.

use core::cell::UnsafeCell;
use core::mem::MaybeUninit;
use core::sync::atomic::{AtomicUsize, Ordering};

/// A ring of `N` values of `T`.
///
/// The producer writes slot `tail` and then publishes `tail + 1`; the
/// consumer reads slot `head` and then publishes `head + 1`. The producer
/// never writes a slot the consumer has not released (`tail - head < N`),
/// so a producer interrupting a pop (or the other way round) is harmless.
pub struct Ring<T: Copy, const N: usize> {
    slots: UnsafeCell<[MaybeUninit<T>; N]>,
    /// Next slot to read (only the consumer stores it).
    head: AtomicUsize,
    /// Next slot to write (only the producer stores it).
    tail: AtomicUsize,
}

// SAFETY: the slots are handed over between the one producer and the one
// consumer through `head` and `tail` (Acquire/Release), see above; `T` is
// plain data (`Copy`) and `Send`.
unsafe impl<T: Copy + Send, const N: usize> Sync for Ring<T, N> {}

impl<T: Copy, const N: usize> Ring<T, N> {
    /// An empty ring.
    pub const fn new() -> Self {
        Self {
            slots: UnsafeCell::new([const { MaybeUninit::uninit() }; N]),
            head: AtomicUsize::new(0),
            tail: AtomicUsize::new(0),
        }
    }

    /// Appends `value`, or gives it back if the ring is full. Producer side:
    /// one producer at a time.
    pub fn push(&self, value: T) -> Result<(), T> {
        let tail = self.tail.load(Ordering::Relaxed);
        if tail.wrapping_sub(self.head.load(Ordering::Acquire)) >= N {
            return Err(value);
        }
        // SAFETY: slot `tail` is free (see the type's documentation) and only
        // the one producer writes slots.
        unsafe { (*self.slots.get())[tail % N] = MaybeUninit::new(value) };
        self.tail.store(tail.wrapping_add(1), Ordering::Release);
        Ok(())
    }

    /// The oldest value, if any. Consumer side: one consumer at a time.
    pub fn pop(&self) -> Option<T> {
        let head = self.head.load(Ordering::Relaxed);
        if head == self.tail.load(Ordering::Acquire) {
            return None;
        }
        // SAFETY: slot `head` was written and published by the producer
        // (Acquire above) and is not written again until `head` moves on.
        let value = unsafe { (*self.slots.get())[head % N].assume_init() };
        self.head.store(head.wrapping_add(1), Ordering::Release);
        Some(value)
    }

    /// Values in the ring (exact when neither side is running).
    pub fn len(&self) -> usize {
        let tail = self.tail.load(Ordering::Acquire);
        tail.wrapping_sub(self.head.load(Ordering::Acquire))
    }

    /// Whether the ring is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<T: Copy, const N: usize> Default for Ring<T, N> {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::Ring;

    #[test]
    fn values_come_out_in_order_and_a_full_ring_refuses() {
        let ring: Ring<u16, 4> = Ring::new();
        assert_eq!(ring.pop(), None);
        for v in 0..4 {
            ring.push(v).unwrap();
        }
        assert_eq!(ring.push(9), Err(9));
        assert_eq!(ring.len(), 4);
        assert_eq!(ring.pop(), Some(0));
        ring.push(4).unwrap();
        let out: std::vec::Vec<u16> = core::iter::from_fn(|| ring.pop()).collect();
        assert_eq!(out, [1, 2, 3, 4]);
        assert!(ring.is_empty());
    }

    #[test]
    fn indices_wrap_around() {
        let ring: Ring<u8, 3> = Ring::new();
        for round in 0..10u8 {
            ring.push(round).unwrap();
            ring.push(round + 100).unwrap();
            assert_eq!(ring.pop(), Some(round));
            assert_eq!(ring.pop(), Some(round + 100));
        }
    }
}
