//! Timers: `sleep(ms).await`, woken by the timer interrupt.
//!
//! The queue of pending timers is a [`TimerQueue`] (deadline order, equal
//! deadlines in creation order). Interrupt handlers never touch it (it allocates): IRQ0 only advances the
//! clock and, once the earliest deadline is reached, wakes the timer task
//! through an `AtomicWaker`. The timer task (spawned by the kernel, see
//! [`timer_task`]) runs in task context, removes every expired entry and
//! wakes its task.
//!
//! No wake-up is lost: [`NEXT_DEADLINE`] is always <= the earliest deadline in
//! the queue (it is lowered when a timer is inserted, before the inserting task
//! returns `Pending`, and recomputed by the timer task after the waker is
//! registered; the task re-reads the clock afterwards), so the interrupt that
//! reaches a deadline sees it and wakes the timer task.

use core::future::Future;
use core::pin::Pin;
use core::sync::atomic::{AtomicU64, Ordering};
use core::task::{Context, Poll, Waker};

use futures_util::task::AtomicWaker;
use spin::Mutex;

use super::timer_queue::{TimerKey, TimerQueue};
use crate::time;

/// Tick of the earliest pending deadline (`u64::MAX`: none).
static NEXT_DEADLINE: AtomicU64 = AtomicU64::new(u64::MAX);
/// Wakes the timer task.
static TIMER_TASK_WAKER: AtomicWaker = AtomicWaker::new();
/// Pending timers. Task context only.
static QUEUE: Mutex<TimerQueue> = Mutex::new(TimerQueue::new());

/// IRQ0: advance the clock; wake the timer task when a deadline is reached.
/// Neither allocates nor takes a lock.
pub fn on_interrupt() {
    let now = time::on_tick();
    if now >= NEXT_DEADLINE.load(Ordering::SeqCst) {
        TIMER_TASK_WAKER.wake();
    }
}

/// A future completing once the clock reaches a deadline tick.
pub struct Timer {
    deadline: u64,
    /// Key of our entry in the queue, once registered.
    key: Option<TimerKey>,
}

/// Sleeps at least `ms` milliseconds (the current, partial tick does not count).
pub fn sleep(ms: u64) -> Timer {
    if ms == 0 {
        return Timer::at(0);
    }
    Timer::at(time::ticks() + time::ms_to_ticks(ms) + 1)
}

impl Timer {
    /// A timer firing when the tick count reaches `deadline`.
    pub fn at(deadline: u64) -> Self {
        Self {
            deadline,
            key: None,
        }
    }
}

impl Future for Timer {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if time::ticks() >= self.deadline {
            if let Some(key) = self.key.take() {
                QUEUE.lock().remove(key);
            }
            return Poll::Ready(());
        }
        let mut queue = QUEUE.lock();
        let deadline = self.deadline;
        let key = *self.key.get_or_insert_with(|| queue.key(deadline));
        queue.register(key, cx.waker());
        drop(queue);
        NEXT_DEADLINE.fetch_min(self.deadline, Ordering::SeqCst);
        // The deadline may have passed before NEXT_DEADLINE was lowered; then
        // no interrupt will wake us for it: finish now.
        if time::ticks() >= self.deadline {
            if let Some(key) = self.key.take() {
                QUEUE.lock().remove(key);
            }
            return Poll::Ready(());
        }
        Poll::Pending
    }
}

impl Drop for Timer {
    fn drop(&mut self) {
        // A cancelled timer leaves the queue (its stale NEXT_DEADLINE at
        // worst causes one spurious wake of the timer task).
        if let Some(key) = self.key.take() {
            QUEUE.lock().remove(key);
        }
    }
}

/// Number of pending timers.
pub fn pending() -> usize {
    QUEUE.lock().len()
}

/// The timer task: fires expired timers whenever IRQ0 says a deadline passed.
pub async fn timer_task() {
    core::future::poll_fn(|cx| {
        TIMER_TASK_WAKER.register(cx.waker());
        loop {
            let now = time::ticks();
            // The `Timer` sees its deadline passed when polled and does not
            // look for its entry again.
            let next = QUEUE.lock().expire(now, Waker::wake);
            NEXT_DEADLINE.store(next, Ordering::SeqCst);
            // A tick between reading `now` and publishing `next` did not see
            // `next`: look again.
            if time::ticks() < next {
                return Poll::<()>::Pending;
            }
        }
    })
    .await
}
