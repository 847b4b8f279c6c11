//! Task slots: which ids are alive and which are in the ready queue.
//!
//! A task's id is its slot index and the slot's generation at spawn. Freeing
//! a slot bumps its generation, so wakers of a finished task (which carry
//! its old id) become no-ops. A slot is reused only once its task has
//! finished *and* its id has left the ready queue, so a stale queue entry
//! never names a live task. Every operation is a few atomic accesses:
//! waking runs in interrupt handlers.

use core::fmt;
use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};

/// A task's identity: slot index and the slot's generation at spawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct TaskId {
    slot: u16,
    generation: u32,
}

impl TaskId {
    /// The id packed into a pointer-sized word (a waker's data pointer).
    pub fn to_bits(self) -> usize {
        (self.generation as usize) << 16 | self.slot as usize
    }

    /// The id [`Self::to_bits`] packed.
    pub fn from_bits(bits: usize) -> Self {
        Self {
            slot: bits as u16,
            generation: (bits >> 16) as u32,
        }
    }

    /// The slot index.
    pub fn slot(self) -> usize {
        usize::from(self.slot)
    }
}

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.slot, self.generation)
    }
}

struct Slot {
    generation: AtomicU32,
    live: AtomicBool,
    queued: AtomicBool,
}

/// `N` task slots.
pub struct Slots<const N: usize> {
    slots: [Slot; N],
}

impl<const N: usize> Default for Slots<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> Slots<N> {
    /// All slots free, generation 0.
    pub const fn new() -> Self {
        Self {
            slots: [const {
                Slot {
                    generation: AtomicU32::new(0),
                    live: AtomicBool::new(false),
                    queued: AtomicBool::new(false),
                }
            }; N],
        }
    }

    /// Claims the first slot that is free and not named by a stale entry in
    /// the ready queue. Callers must not run two claims at once (the kernel
    /// claims with interrupts off, on its one CPU).
    pub fn allocate(&self) -> Option<TaskId> {
        for (index, slot) in self.slots.iter().enumerate() {
            if !slot.live.load(Ordering::SeqCst) && !slot.queued.load(Ordering::SeqCst) {
                slot.live.store(true, Ordering::SeqCst);
                return Some(TaskId {
                    slot: index as u16,
                    generation: slot.generation.load(Ordering::SeqCst),
                });
            }
        }
        None
    }

    /// Releases the slot of finished task `id`; its wakers become stale.
    pub fn free(&self, id: TaskId) {
        let slot = &self.slots[id.slot()];
        // Generation first: from here on, old wakers are stale.
        slot.generation.fetch_add(1, Ordering::SeqCst);
        slot.live.store(false, Ordering::SeqCst);
    }

    /// Marks `id` queued. True if the caller must push it onto the ready
    /// queue: the task is alive (current generation) and was not queued.
    pub fn mark_queued(&self, id: TaskId) -> bool {
        let Some(slot) = self.slots.get(id.slot()) else {
            return false;
        };
        if !slot.live.load(Ordering::SeqCst)
            || slot.generation.load(Ordering::SeqCst) != id.generation
        {
            return false; // the task has finished: a stale waker
        }
        !slot.queued.swap(true, Ordering::SeqCst)
    }

    /// `id` has left the ready queue (cleared right before its poll, so a
    /// wake during the poll queues it again).
    pub fn clear_queued(&self, id: TaskId) {
        self.slots[id.slot()].queued.store(false, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_pack_into_a_word_and_back() {
        let id = TaskId {
            slot: 255,
            generation: 70_000,
        };
        assert_eq!(TaskId::from_bits(id.to_bits()), id);
        assert_eq!(id.to_string(), "255.70000");
    }

    #[test]
    fn a_woken_task_is_queued_once() {
        let slots = Slots::<4>::new();
        let id = slots.allocate().unwrap();
        assert!(slots.mark_queued(id));
        assert!(!slots.mark_queued(id), "already queued");
        slots.clear_queued(id);
        assert!(
            slots.mark_queued(id),
            "a wake during the poll queues it again"
        );
    }

    #[test]
    fn freed_slot_is_reused_with_a_new_generation_and_old_wakers_go_stale() {
        let slots = Slots::<2>::new();
        let first = slots.allocate().unwrap();
        slots.free(first);
        let second = slots.allocate().unwrap();
        assert_eq!(second.slot(), first.slot());
        assert_ne!(second, first);
        assert!(!slots.mark_queued(first), "waker of the finished task");
        assert!(slots.mark_queued(second));
    }

    #[test]
    fn slot_still_in_the_ready_queue_is_not_reused() {
        let slots = Slots::<2>::new();
        let id = slots.allocate().unwrap();
        assert!(slots.mark_queued(id));
        slots.free(id); // finished while its id waits in the queue
        let other = slots.allocate().unwrap();
        assert_ne!(other.slot(), id.slot());
        assert_eq!(slots.allocate(), None, "both slots taken");
        slots.clear_queued(id);
        let reused = slots.allocate().unwrap();
        assert_eq!(reused.slot(), id.slot());
        assert!(!slots.mark_queued(id), "the stale entry's id stays stale");
    }

    #[test]
    fn out_of_range_ids_are_ignored() {
        let slots = Slots::<1>::new();
        assert!(!slots.mark_queued(TaskId::from_bits(5)));
    }
}
