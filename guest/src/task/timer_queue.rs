//! The queue of pending timers: wakers ordered by (deadline tick, creation
//! sequence), so timers with equal deadlines fire in creation order. The
//! clock is not read here: callers pass the current tick.

use alloc::collections::BTreeMap;
use core::task::Waker;

/// A timer's place in the queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct TimerKey {
    deadline: u64,
    sequence: u64,
}

impl TimerKey {
    /// The tick at which the timer fires.
    pub fn deadline(self) -> u64 {
        self.deadline
    }
}

/// Pending timers and their wakers. Allocates: task context only.
pub struct TimerQueue {
    entries: BTreeMap<TimerKey, Waker>,
    next_sequence: u64,
}

impl Default for TimerQueue {
    fn default() -> Self {
        Self::new()
    }
}

impl TimerQueue {
    /// An empty queue.
    pub const fn new() -> Self {
        Self {
            entries: BTreeMap::new(),
            next_sequence: 0,
        }
    }

    /// A key for a new timer firing at tick `deadline`, after every timer
    /// keyed before it with the same deadline.
    pub fn key(&mut self, deadline: u64) -> TimerKey {
        let sequence = self.next_sequence;
        self.next_sequence += 1;
        TimerKey { deadline, sequence }
    }

    /// Sets the waker of timer `key`, queueing the timer if it is not.
    pub fn register(&mut self, key: TimerKey, waker: &Waker) {
        match self.entries.get_mut(&key) {
            Some(old) => old.clone_from(waker),
            None => {
                self.entries.insert(key, waker.clone());
            }
        }
    }

    /// Takes timer `key` out of the queue (fired or cancelled).
    pub fn remove(&mut self, key: TimerKey) {
        self.entries.remove(&key);
    }

    /// Removes every timer due at tick `now` and passes its waker to `fire`,
    /// earliest first. Returns the deadline of the earliest timer left,
    /// `u64::MAX` if none.
    pub fn expire(&mut self, now: u64, mut fire: impl FnMut(Waker)) -> u64 {
        while let Some(entry) = self.entries.first_entry() {
            if entry.key().deadline > now {
                return entry.key().deadline;
            }
            fire(entry.remove());
        }
        u64::MAX
    }

    /// Number of pending timers.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no timer is pending.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use std::task::Wake;
    use std::vec::Vec;

    /// A waker that records its name in `log` when woken.
    struct Recorder {
        name: &'static str,
        log: Arc<Mutex<Vec<&'static str>>>,
    }

    impl Wake for Recorder {
        fn wake(self: Arc<Self>) {
            self.log.lock().unwrap().push(self.name);
        }
    }

    fn waker(name: &'static str, log: &Arc<Mutex<Vec<&'static str>>>) -> Waker {
        Waker::from(Arc::new(Recorder {
            name,
            log: Arc::clone(log),
        }))
    }

    #[test]
    fn fires_by_deadline_then_creation_order() {
        let log = Arc::default();
        let mut queue = TimerQueue::new();
        for (name, deadline) in [("c", 20), ("a", 10), ("b1", 15), ("b2", 15), ("b3", 15)] {
            let key = queue.key(deadline);
            queue.register(key, &waker(name, &log));
        }
        assert_eq!(queue.expire(9, Waker::wake), 10, "nothing due yet");
        assert!(log.lock().unwrap().is_empty());
        assert_eq!(queue.expire(15, Waker::wake), 20);
        assert_eq!(*log.lock().unwrap(), ["a", "b1", "b2", "b3"]);
        assert_eq!(queue.expire(100, Waker::wake), u64::MAX);
        assert_eq!(*log.lock().unwrap(), ["a", "b1", "b2", "b3", "c"]);
        assert!(queue.is_empty());
    }

    #[test]
    fn a_timer_due_exactly_now_fires() {
        let log = Arc::default();
        let mut queue = TimerQueue::new();
        let key = queue.key(7);
        queue.register(key, &waker("t", &log));
        assert_eq!(queue.expire(7, Waker::wake), u64::MAX);
        assert_eq!(*log.lock().unwrap(), ["t"]);
    }

    #[test]
    fn registering_again_replaces_the_waker_and_keeps_one_entry() {
        let log = Arc::default();
        let mut queue = TimerQueue::new();
        let key = queue.key(5);
        queue.register(key, &waker("old", &log));
        queue.register(key, &waker("new", &log));
        assert_eq!(queue.len(), 1);
        queue.expire(5, Waker::wake);
        assert_eq!(*log.lock().unwrap(), ["new"]);
    }

    #[test]
    fn a_removed_timer_never_fires() {
        let log = Arc::default();
        let mut queue = TimerQueue::new();
        let first = queue.key(3);
        queue.register(first, &waker("cancelled", &log));
        let second = queue.key(3);
        queue.register(second, &waker("kept", &log));
        queue.remove(first);
        assert_eq!(first.deadline(), 3);
        queue.expire(3, Waker::wake);
        assert_eq!(*log.lock().unwrap(), ["kept"]);
    }
}
