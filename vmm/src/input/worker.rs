//! The key worker: delivers the keys of the interactive terminal and of QMP
//! in arrival order on its own thread, paced by the guest, and honours
//! `send-key`'s `hold-time` without blocking the QMP connection.
use std::io;
use std::sync::mpsc;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use super::keycodes::Key;
use super::machine::MachineControl;

/// Longest a source waits for the guest to read its keys before checking
/// again whether the machine still runs.
const DRAIN_POLL: Duration = Duration::from_millis(200);

/// Waits until the guest has read all queued keyboard bytes, or the machine
/// stopped (false). A paused or busy guest is waited for as long as it takes.
pub(crate) fn settle(machine: &dyn MachineControl) -> bool {
    loop {
        if machine.wait_input_drained(DRAIN_POLL) {
            return true;
        }
        if machine.is_stopped() {
            return false;
        }
    }
}

/// A job for the [`KeyWorker`].
#[derive(Debug)]
enum Job {
    /// Press in order, hold, release in reverse.
    Combo(Vec<Key>, Duration),
    /// One key event.
    Event(Key, bool),
}

/// Delivers key jobs from several sources in order, on its own thread.
///
/// The jobs go through one unbounded channel, so senders never wait for the
/// guest; the thread ends when the machine stopped or every sender is gone.
#[derive(Clone)]
pub struct KeyWorker {
    jobs: mpsc::Sender<Job>,
}

impl KeyWorker {
    /// Starts the worker thread; fails only if the thread cannot be created.
    pub fn start(machine: Arc<dyn MachineControl>) -> io::Result<KeyWorker> {
        let (jobs, queue) = mpsc::channel::<Job>();
        thread::Builder::new()
            .name("input-keys".into())
            .spawn(move || {
                crate::sandbox::confine_or_exit(crate::sandbox::Role::KeyWorker);
                for job in queue {
                    match job {
                        Job::Combo(keys, hold) => {
                            let start = Instant::now();
                            for key in &keys {
                                machine.key_event(*key, true);
                            }
                            if !hold.is_zero() {
                                settle(&*machine);
                                // `hold-time` is the time between press and release.
                                thread::sleep(hold.saturating_sub(start.elapsed()));
                            }
                            for key in keys.iter().rev() {
                                machine.key_event(*key, false);
                            }
                        }
                        Job::Event(key, down) => machine.key_event(key, down),
                    }
                    if !settle(&*machine) {
                        return;
                    }
                }
            })?;
        Ok(KeyWorker { jobs })
    }

    /// Queues a combination: pressed in order, held `hold`, released in reverse.
    pub fn combo(&self, keys: Vec<Key>, hold: Duration) {
        // After the machine stopped the worker is gone and keys are moot.
        let _ = self.jobs.send(Job::Combo(keys, hold));
    }

    /// Queues one key event.
    pub fn event(&self, key: Key, down: bool) {
        let _ = self.jobs.send(Job::Event(key, down));
    }
}

#[cfg(test)]
mod tests;
