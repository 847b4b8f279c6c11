//! Tasks and the executor: futures polled only after their waker fired.
//!
//! Design:
//! - A [`Task`] is a pinned boxed future, an id and its cached [`Waker`],
//!   created once at spawn. The executor keeps tasks in a vector indexed by
//!   the id's slot (slots are claimed lowest first, so it stays as short as
//!   the most tasks alive at once): finding a woken task is one index, not
//!   a tree search (every instruction counts under an emulating hypervisor).
//! - The ready queue is a static single-producer single-consumer [`Ring`] of
//!   task ids; wakers push with interrupts off, so on our one CPU there is
//!   one producer at a time (an interrupt handler's wake cannot cut into a
//!   task's), and the executor is the consumer.
//!   A task is in it at most once: each task slot has an atomic `queued` flag,
//!   set by the first wake and cleared by the executor right before it polls
//!   the task, so a wake during the poll queues the task again and is not lost.
//!   The queue therefore never holds more than [`MAX_TASKS`] entries and a push
//!   never fails.
//! - Wakers hold no reference count and own nothing: the waker data is the
//!   task id (slot index and generation), cloning and dropping it do nothing.
//!   Waking checks the slot's generation (a waker outliving its task is a
//!   no-op), sets the flag and pushes the id. So waking and dropping a waker
//!   neither allocates nor frees, and interrupt handlers may do both (an
//!   `AtomicWaker::wake` drops the waker it held; the byte queues wake
//!   theirs by reference).
//! - A slot is reused only when its task has finished and its id has left the
//!   ready queue, so a stale queue entry never names a live task.
//! - Idle: with nothing ready the executor disables interrupts, looks at the
//!   queue once more and executes `sti; hlt` as one step (`sti` takes effect
//!   after the next instruction), so an interrupt that makes a task ready
//!   between the check and the halt still ends the halt.

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::fmt;
use core::future::Future;
use core::pin::Pin;
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use core::task::{Context, RawWaker, RawWakerVTable, Waker};

use spin::Mutex;
use x86_64::instructions::interrupts;

use super::ring::Ring;
use super::slots::Slots;
pub use super::slots::TaskId;
use crate::stats;

/// Most tasks alive at once.
pub const MAX_TASKS: usize = 256;

static SLOTS: Slots<MAX_TASKS> = Slots::new();

/// Ready task ids.
static READY: Ring<TaskId, MAX_TASKS> = Ring::new();
/// Tasks spawned but not yet moved into the executor's table.
static SPAWNED: Mutex<alloc::vec::Vec<Task>> = Mutex::new(alloc::vec::Vec::new());
/// `SPAWNED` may hold tasks: set after a push, cleared before the executor
/// takes them, so the run loop takes the lock only when there is something
/// (every instruction counts under an emulating hypervisor).
static SPAWN_PENDING: AtomicBool = AtomicBool::new(false);
static LIVE_TASKS: AtomicUsize = AtomicUsize::new(0);

fn ready_queue() -> &'static Ring<TaskId, MAX_TASKS> {
    &READY
}

fn wake_id(id: TaskId) {
    stats::WAKES.inc();
    enqueue(id);
}

/// Queues `id` unless it is queued already or names a finished task.
fn enqueue(id: TaskId) {
    // Interrupts off: one producer at a time (a handler's wake must not
    // cut into a task's push). Nested in a handler, this changes nothing.
    interrupts::without_interrupts(|| {
        if SLOTS.mark_queued(id) {
            // Cannot fail: at most one entry per slot, MAX_TASKS slots.
            let _ = READY.push(id);
        }
    });
}

const VTABLE: RawWakerVTable = RawWakerVTable::new(
    |data| RawWaker::new(data, &VTABLE),
    |data| wake_id(TaskId::from_bits(data as usize)),
    |data| wake_id(TaskId::from_bits(data as usize)),
    |_| {},
);

/// The waker of task `id` (tasks get theirs through their `Context`).
pub fn waker(id: TaskId) -> Waker {
    let data = core::ptr::without_provenance::<()>(id.to_bits());
    // SAFETY: the vtable functions only decode the id from the data pointer,
    // which is never dereferenced; they are thread- and interrupt-safe.
    unsafe { Waker::from_raw(RawWaker::new(data, &VTABLE)) }
}

/// A spawned future with its id and cached waker.
pub struct Task {
    id: TaskId,
    future: Pin<Box<dyn Future<Output = ()> + Send>>,
    waker: Waker,
}

/// Spawning failed: [`MAX_TASKS`] tasks are alive.
#[derive(Debug)]
pub struct TooManyTasks;

impl fmt::Display for TooManyTasks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "too many tasks (at most {MAX_TASKS})")
    }
}

/// Spawns tasks from anywhere in task context (tasks included).
#[derive(Clone, Copy, Default)]
pub struct Spawner;

impl Spawner {
    /// Spawns `future` as a new task, ready to be polled.
    pub fn spawn(
        &self,
        future: impl Future<Output = ()> + Send + 'static,
    ) -> Result<TaskId, TooManyTasks> {
        let future = Box::pin(future);
        let id = allocate_slot().ok_or(TooManyTasks)?;
        LIVE_TASKS.fetch_add(1, Ordering::SeqCst);
        SPAWNED.lock().push(Task {
            id,
            future,
            waker: waker(id),
        });
        SPAWN_PENDING.store(true, Ordering::Release);
        enqueue(id);
        Ok(id)
    }
}

fn allocate_slot() -> Option<TaskId> {
    // Interrupts off: IRQ handlers only wake, but a claim must not be
    // interleaved with another one.
    interrupts::without_interrupts(|| SLOTS.allocate())
}

/// Number of tasks spawned and not yet finished.
pub fn live_tasks() -> usize {
    LIVE_TASKS.load(Ordering::SeqCst)
}

/// Number of ids in the ready queue (for tests).
pub fn ready_len() -> usize {
    ready_queue().len()
}

/// Runs tasks until none is left, halting when none is ready.
#[derive(Default)]
pub struct Executor {
    /// Live tasks by slot index (`None`: a free slot).
    tasks: Vec<Option<Task>>,
    /// Number of `Some` entries in `tasks`.
    live: usize,
}

impl Executor {
    pub fn new() -> Self {
        Self {
            tasks: Vec::new(),
            live: 0,
        }
    }

    /// Runs until every task has finished.
    pub fn run(&mut self) {
        self.run_until(|| false)
    }

    /// Runs until every task has finished or `done()` holds after a round
    /// of polls (`done` is looked at only then, so it should depend on what
    /// tasks do, not on interrupts alone).
    pub fn run_until(&mut self, done: impl Fn() -> bool) {
        loop {
            self.run_ready();
            if done() || (self.live == 0 && SPAWNED.lock().is_empty()) {
                return;
            }
            self.sleep_until_ready();
        }
    }

    /// Moves spawned tasks into the table. Called only when
    /// `SPAWN_PENDING` was seen set, and kept out of line: the run loop's
    /// common path is then one load, not a call with a large prologue.
    #[inline(never)]
    fn adopt_spawned(&mut self) {
        if !SPAWN_PENDING.swap(false, Ordering::Acquire) {
            return;
        }
        let spawned = core::mem::take(&mut *SPAWNED.lock());
        for task in spawned {
            let slot = task.id.slot();
            if slot >= self.tasks.len() {
                self.tasks.resize_with(slot + 1, || None);
            }
            // The slot's previous task (if any) finished and left the
            // table before `Slots` let the slot be claimed again.
            debug_assert!(self.tasks[slot].is_none());
            self.tasks[slot] = Some(task);
            self.live += 1;
        }
    }

    fn run_ready(&mut self) {
        let queue = ready_queue();
        while let Some(id) = queue.pop() {
            // Cleared before the poll: a wake from now on queues the task again.
            SLOTS.clear_queued(id);
            if SPAWN_PENDING.load(Ordering::Acquire) {
                self.adopt_spawned();
            }
            let Some(entry) = self.tasks.get_mut(id.slot()) else {
                continue; // never adopted: cannot happen, spawns are adopted above
            };
            let Some(task) = entry.as_mut().filter(|task| task.id == id) else {
                continue; // a task that finished after being woken
            };
            stats::POLLS.inc();
            let mut cx = Context::from_waker(&task.waker);
            if task.future.as_mut().poll(&mut cx).is_ready() {
                let task = entry.take();
                self.live -= 1;
                SLOTS.free(id);
                LIVE_TASKS.fetch_sub(1, Ordering::SeqCst);
                drop(task);
            }
        }
        if SPAWN_PENDING.load(Ordering::Acquire) {
            self.adopt_spawned();
        }
    }

    /// Halts until a task is ready. Each round disables interrupts, looks at
    /// the queue and executes `sti; hlt` as one step, so a wake between the
    /// look and the halt still ends the halt. An interrupt that readied
    /// nothing (a one-shot that only re-armed the PIT) goes straight back to
    /// the halt: nothing else the run loop looks at can change without a
    /// task being polled.
    fn sleep_until_ready(&self) {
        let queue = ready_queue();
        loop {
            interrupts::disable();
            if !queue.is_empty() {
                interrupts::enable();
                return;
            }
            stats::HALTS.inc();
            interrupts::enable_and_hlt();
        }
    }
}
