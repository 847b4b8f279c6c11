//! Timers: `sleep(ms).await`, woken by a one-shot timer interrupt.
//!
//! Deadlines are clock times: TSC cycles since boot ([`crate::time::now`]).
//! The queue of pending timers is a [`TimerQueue`] (deadline order, equal
//! deadlines in creation order). Interrupt handlers never touch it (it
//! allocates). The PIT is not a periodic tick: channel 0 runs one-shots
//! (mode 0) for the earliest deadline, at most 65535 PIT clocks (54.9 ms)
//! ahead, so an idle guest with no timer pending takes no timer interrupt.
//! IRQ0 ([`on_interrupt`]) wakes the timer task through an `AtomicWaker` once
//! the earliest deadline is reached and otherwise re-arms the one-shot for
//! the rest. The timer task ([`timer_task`], spawned by the kernel) runs in
//! task context, removes every expired entry, wakes its task and arms the
//! one-shot for the next deadline.
//!
//! Two statics carry the state between task context and the handler:
//! [`NEXT_DEADLINE`], a lower bound of the earliest queued deadline, and
//! [`SHOT_DUE`], the clock time the armed one-shot ends (`u64::MAX`: none
//! armed). `SHOT_DUE` and the PIT are only touched with interrupts disabled
//! (in the handler, or in [`ensure_armed`]), so on this single CPU each
//! reprogramming is atomic with respect to the others.
//!
//! No wake-up is lost. Invariant, whenever interrupts are enabled: every
//! queued deadline is >= `NEXT_DEADLINE`, and if `NEXT_DEADLINE` is not
//! `u64::MAX`, then (A) a one-shot is armed to end no later than
//! `NEXT_DEADLINE` (`SHOT_DUE <= NEXT_DEADLINE`), or (B) the timer task has
//! been woken and has not yet published a new `NEXT_DEADLINE`.
//! - A timer being queued lowers `NEXT_DEADLINE` (after queueing the entry,
//!   before its task returns `Pending`), then calls [`ensure_armed`], which
//!   with interrupts off arms the PIT if the armed shot ends later: (A).
//! - The IRQ0 handler, at any IRQ0 (the shot's, or a stray one): if the
//!   clock reached `NEXT_DEADLINE` it wakes the timer task (B); otherwise it
//!   arms a shot for `NEXT_DEADLINE` or for 54.9 ms, whichever is earlier
//!   (A). A capped shot ends before the deadline and the next IRQ0 repeats
//!   this.
//! - The timer task registers its waker first, expires what is due,
//!   publishes the next deadline and calls [`ensure_armed`] (A); an IRQ0
//!   in between either sees a deadline it may wake for (a spurious wake of a
//!   task about to look again) or arms the shot itself. It then re-reads
//!   the clock: a deadline reached meanwhile is handled by looping, not left
//!   to an interrupt.
//!
//! A cancelled timer leaves `NEXT_DEADLINE` too low: its shot still comes,
//! the handler wakes the timer task, which finds nothing due and publishes
//! the real next deadline. So at most one needless interrupt per cancel.

use core::future::Future;
use core::pin::Pin;
use core::sync::atomic::{AtomicU64, Ordering};
use core::task::{Context, Poll, Waker};

use futures_util::task::AtomicWaker;
use spin::Mutex;

use super::timer_queue::{TimerKey, TimerQueue};
use crate::{stats, time};

/// Clock time of the earliest pending deadline or less (`u64::MAX`: none).
static NEXT_DEADLINE: AtomicU64 = AtomicU64::new(u64::MAX);
/// Clock time at which the armed one-shot ends (`u64::MAX`: none armed).
/// Read and written with interrupts disabled only.
static SHOT_DUE: AtomicU64 = AtomicU64::new(u64::MAX);
/// Wakes the timer task.
static TIMER_TASK_WAKER: AtomicWaker = AtomicWaker::new();
/// Pending timers. Task context only.
static QUEUE: Mutex<TimerQueue> = Mutex::new(TimerQueue::new());

/// IRQ0: wake the timer task if the earliest deadline is reached, else
/// re-arm the one-shot for the rest. Neither allocates nor takes a lock; the
/// common path (deadline reached) is a counter, one `rdtsc`, a compare and
/// a wake. Runs with interrupts disabled.
pub fn on_interrupt() {
    stats::TIMER_IRQS.inc();
    // Whatever raised this IRQ0, no shot is known to be armed any more: a
    // stray edge (from a shot since reprogrammed, or the firmware's counter
    // under QEMU) may leave the real shot running, and arming again below
    // is then merely redundant.
    SHOT_DUE.store(u64::MAX, Ordering::Relaxed);
    let next = NEXT_DEADLINE.load(Ordering::SeqCst);
    if next == u64::MAX {
        return;
    }
    let now = time::now();
    if now >= next {
        TIMER_TASK_WAKER.wake();
    } else {
        arm(now, next);
    }
}

/// Arms the one-shot to end at `deadline`, or 54.9 ms from `now` if that
/// is earlier. Interrupts must be disabled.
fn arm(now: u64, deadline: u64) {
    let clock = time::clock();
    let (count, capped) = clock.pit_count(deadline.saturating_sub(now));
    program_pit(count);
    let due = if capped {
        now.saturating_add(clock.max_shot_cycles())
    } else {
        deadline
    };
    SHOT_DUE.store(due, Ordering::Relaxed);
}

#[cfg(target_os = "none")]
fn program_pit(count: u16) {
    crate::drivers::pit::start_one_shot(count);
}

/// The host build (unit tests of other modules) has no PIT.
#[cfg(not(target_os = "none"))]
fn program_pit(_count: u16) {}

/// Makes sure a one-shot ends no later than `NEXT_DEADLINE` (see the
/// invariant above): arms the PIT, with interrupts disabled, unless the
/// armed shot already ends in time.
fn ensure_armed() {
    let check_and_arm = || {
        let next = NEXT_DEADLINE.load(Ordering::SeqCst);
        if next < SHOT_DUE.load(Ordering::Relaxed) {
            arm(time::now(), next);
        }
    };
    #[cfg(target_os = "none")]
    x86_64::instructions::interrupts::without_interrupts(check_and_arm);
    #[cfg(not(target_os = "none"))]
    check_and_arm();
}

/// A future completing once the clock reaches a deadline.
pub struct Timer {
    /// Clock time (TSC cycles since boot).
    deadline: u64,
    /// Key of our entry in the queue, once registered.
    key: Option<TimerKey>,
}

/// Sleeps at least `ms` milliseconds.
pub fn sleep(ms: u64) -> Timer {
    if ms == 0 {
        return Timer::at(0);
    }
    Timer::at(time::now().saturating_add(time::ms_to_cycles(ms)))
}

impl Timer {
    /// A timer firing when the clock ([`time::now`]) reaches `deadline`.
    pub fn at(deadline: u64) -> Self {
        Self {
            deadline,
            key: None,
        }
    }

    /// The clock time this timer fires at.
    pub fn deadline(&self) -> u64 {
        self.deadline
    }
}

impl Future for Timer {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if time::now() >= self.deadline {
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
        ensure_armed();
        // The deadline may have passed before the shot was armed; then the
        // shot (of one PIT clock) wakes the timer task for nothing: finish now.
        if time::now() >= self.deadline {
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
        // worst causes one needless interrupt and wake of the timer task).
        if let Some(key) = self.key.take() {
            QUEUE.lock().remove(key);
        }
    }
}

/// Number of pending timers.
pub fn pending() -> usize {
    QUEUE.lock().len()
}

/// The timer task: fires expired timers whenever IRQ0 says a deadline passed,
/// and arms the one-shot for the next one.
pub async fn timer_task() {
    core::future::poll_fn(|cx| {
        TIMER_TASK_WAKER.register(cx.waker());
        loop {
            let now = time::now();
            // The `Timer` sees its deadline passed when polled and does not
            // look for its entry again.
            let next = QUEUE.lock().expire(now, Waker::wake);
            NEXT_DEADLINE.store(next, Ordering::SeqCst);
            ensure_armed();
            // A deadline reached since `now` was read: fire it now rather
            // than count on the (one PIT clock) shot armed for it.
            if time::now() < next {
                return Poll::<()>::Pending;
            }
        }
    })
    .await
}
