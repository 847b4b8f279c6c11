//! `executor`: waking, polling, spawning and slot reuse of the real executor.

use super::{check, yield_now, yield_until};
use alloc::vec::Vec;
use core::future::poll_fn;
use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use core::task::{Poll, Waker};

use futures_util::task::AtomicWaker;
use spin::Mutex;

use crate::task::executor::{self, Spawner, MAX_TASKS};
use crate::task::timer;
use crate::{stats, time};

pub(super) async fn executor_test() {
    static POLLS_T: AtomicU32 = AtomicU32::new(0);
    static FINISH_T: AtomicBool = AtomicBool::new(false);
    let spawner = Spawner;
    let live0 = executor::live_tasks();

    // A task counting its polls, finishing once FINISH_T is set.
    let t = spawner
        .spawn(poll_fn(|_| {
            POLLS_T.fetch_add(1, Ordering::SeqCst);
            if FINISH_T.load(Ordering::SeqCst) {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        }))
        .expect("spawn");
    let waker_t = executor::waker(t);
    check!(
        executor::live_tasks() == live0 + 1,
        "spawn: live tasks {} -> {}",
        live0,
        executor::live_tasks()
    );

    // Woken many times before its first poll: queued once, polled once.
    let queued = executor::ready_len();
    let wakes = stats::WAKES.get();
    for _ in 0..10_000 {
        waker_t.wake_by_ref();
    }
    check!(
        executor::ready_len() == queued && stats::WAKES.get() == wakes + 10_000,
        "10000 wakes before the first poll leave one queue entry ({} ids queued)",
        executor::ready_len()
    );
    yield_now().await;
    check!(
        POLLS_T.load(Ordering::SeqCst) == 1,
        "polled once after 10000 wakes (polls: {})",
        POLLS_T.load(Ordering::SeqCst)
    );

    // No wake, no poll.
    for _ in 0..5 {
        yield_now().await;
    }
    check!(
        POLLS_T.load(Ordering::SeqCst) == 1,
        "a pending task that is not woken is not polled"
    );

    // Wake while pending (from another task, as an interrupt would): polled again.
    waker_t.wake_by_ref();
    yield_now().await;
    check!(
        POLLS_T.load(Ordering::SeqCst) == 2,
        "wake of a pending task leads to exactly one poll"
    );

    // Finish it; then its waker is stale.
    FINISH_T.store(true, Ordering::SeqCst);
    waker_t.wake_by_ref();
    let finished = yield_until(10, || executor::live_tasks() == live0).await;
    check!(
        finished && POLLS_T.load(Ordering::SeqCst) == 3,
        "task finishes when polled after the wake"
    );
    let queued = executor::ready_len();
    for _ in 0..100 {
        waker_t.wake_by_ref();
    }
    yield_now().await;
    check!(
        executor::ready_len() <= queued && POLLS_T.load(Ordering::SeqCst) == 3,
        "waking a finished task does nothing"
    );
    drop(waker_t);

    // A wake during the task's own poll is not lost.
    static SELF_WAKE_POLLS: AtomicU32 = AtomicU32::new(0);
    spawner
        .spawn(poll_fn(|cx| {
            if SELF_WAKE_POLLS.fetch_add(1, Ordering::SeqCst) == 0 {
                cx.waker().wake_by_ref();
                Poll::Pending
            } else {
                Poll::Ready(())
            }
        }))
        .expect("spawn");
    let done = yield_until(10, || SELF_WAKE_POLLS.load(Ordering::SeqCst) == 2).await;
    check!(done, "a wake during the task's own poll queues it again");

    // Spawn from a task, which spawns again; the parent awaits the grandchild.
    static SIGNAL: AtomicWaker = AtomicWaker::new();
    static GRANDCHILD_RAN: AtomicBool = AtomicBool::new(false);
    spawner
        .spawn(async move {
            Spawner
                .spawn(async {
                    GRANDCHILD_RAN.store(true, Ordering::SeqCst);
                    SIGNAL.wake();
                })
                .expect("spawn grandchild");
        })
        .expect("spawn child");
    poll_fn(|cx| {
        SIGNAL.register(cx.waker());
        if GRANDCHILD_RAN.load(Ordering::SeqCst) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await;
    check!(
        GRANDCHILD_RAN.load(Ordering::SeqCst),
        "task spawned from a task spawned from a task ran"
    );

    // Idle: with every task waiting, the executor halts; the timer
    // interrupt ends the halt and wakes us.
    let halts = stats::HALTS.get();
    let start = time::now();
    timer::sleep(20).await;
    let slept = time::now() - start;
    check!(
        stats::HALTS.get() > halts && slept >= time::ms_to_cycles(20),
        "idle executor halted ({} halts) and resumed on interrupts after {} us",
        stats::HALTS.get() - halts,
        time::cycles_to_us(slept)
    );

    // Slots: spawn until full, then finish them all, then spawn again.
    static RELEASE: AtomicBool = AtomicBool::new(false);
    static BLOCKED: Mutex<Vec<Waker>> = Mutex::new(Vec::new());
    let live = executor::live_tasks();
    let mut spawned = 0;
    while spawner
        .spawn(poll_fn(|cx| {
            if RELEASE.load(Ordering::SeqCst) {
                Poll::Ready(())
            } else {
                BLOCKED.lock().push(cx.waker().clone());
                Poll::Pending
            }
        }))
        .is_ok()
    {
        spawned += 1;
    }
    check!(
        spawned == MAX_TASKS - live,
        "spawn fails cleanly once {MAX_TASKS} tasks are alive ({spawned} spawned)"
    );
    yield_now().await;
    RELEASE.store(true, Ordering::SeqCst);
    let wakers = core::mem::take(&mut *BLOCKED.lock());
    for waker in wakers {
        waker.wake();
    }
    let drained = yield_until(10, || executor::live_tasks() == live).await;
    check!(drained, "all {spawned} tasks finished after being woken");
    let again = Spawner.spawn(async {}).is_ok();
    check!(again, "slots are reused after tasks finish");

    println!(
        "executor: {} wakes, {} polls, {} halts",
        stats::WAKES.get(),
        stats::POLLS.get(),
        stats::HALTS.get()
    );
}
