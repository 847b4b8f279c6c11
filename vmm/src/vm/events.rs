//! Machine events for any number of subscribers: resets, pause, resume and
//! the final stop, as they happen (see [`super::VmHandle::subscribe`]).
//!
//! Each subscriber gets its own unbounded [`std::sync::mpsc`] channel.
//! Publishing is a short lock on the subscriber list plus one non-blocking
//! `send` per subscriber, so it may be done by the vCPU thread and under the
//! machine lock: it never waits for a subscriber to read. Subscribers that
//! dropped their receiver are pruned at the next publish.
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Mutex;

use super::state::{ResetCause, VmExit};

/// Something that happened to the machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MachineEvent {
    /// The machine was reset (devices at power-on, kernel reloaded, the vCPU
    /// at the PVH entry); sent by the vCPU thread once the reset is done,
    /// before the guest runs again.
    Reset(ResetCause),
    /// The vCPU was paused ([`super::VmHandle::pause`] on a running machine).
    Stop,
    /// The vCPU was resumed ([`super::VmHandle::resume`] on a paused machine).
    Resume,
    /// The machine stopped for good; sent when [`super::Vm::run`] returns,
    /// after every other event. Nothing follows it: the channel closes.
    Shutdown(VmExit),
}

/// The subscriber list of one machine.
#[derive(Debug, Default)]
pub(crate) struct EventHub {
    inner: Mutex<HubState>,
}

#[derive(Debug, Default)]
struct HubState {
    subscribers: Vec<Sender<MachineEvent>>,
    /// The `Shutdown` event once published: late subscribers get it at once.
    shutdown: Option<MachineEvent>,
}

impl EventHub {
    /// A new subscriber: it receives every event published from now on. After
    /// the machine stopped, the receiver holds only the `Shutdown` event.
    pub fn subscribe(&self) -> Receiver<MachineEvent> {
        let (sender, receiver) = channel();
        let mut state = self.lock();
        match &state.shutdown {
            // The sender is dropped here, so the receiver reports the end
            // after the event, as for subscribers that were there.
            Some(event) => {
                let _ = sender.send(event.clone());
            }
            None => state.subscribers.push(sender),
        }
        receiver
    }

    /// Sends `event` to every live subscriber and forgets the dead ones.
    /// Never blocks on a subscriber (the channels are unbounded). Callers
    /// publishing a state change do it under the lock that guards the change,
    /// so every subscriber sees changes in the order they happened.
    pub fn publish(&self, event: MachineEvent) {
        let mut state = self.lock();
        if state.shutdown.is_some() {
            return;
        }
        state
            .subscribers
            .retain(|subscriber| subscriber.send(event.clone()).is_ok());
        if matches!(event, MachineEvent::Shutdown(_)) {
            // Closing the channels tells subscribers nothing more comes.
            state.subscribers.clear();
            state.shutdown = Some(event);
        }
    }

    /// The list lock. A panic while holding it cannot leave the list
    /// inconsistent (pushes and retains only), so poisoning is ignored.
    fn lock(&self) -> std::sync::MutexGuard<'_, HubState> {
        self.inner
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vm::ExitReason;

    fn shutdown() -> MachineEvent {
        MachineEvent::Shutdown(VmExit {
            status: 3,
            reason: ExitReason::GuestExit(3),
        })
    }

    #[test]
    fn every_subscriber_gets_every_event_in_order_then_the_end() {
        let hub = EventHub::default();
        let (a, b) = (hub.subscribe(), hub.subscribe());
        hub.publish(MachineEvent::Stop);
        hub.publish(MachineEvent::Reset(ResetCause::Guest));
        hub.publish(shutdown());
        hub.publish(MachineEvent::Resume);
        for receiver in [a, b] {
            let events: Vec<_> = receiver.iter().collect();
            assert_eq!(
                events,
                [
                    MachineEvent::Stop,
                    MachineEvent::Reset(ResetCause::Guest),
                    shutdown()
                ]
            );
        }
    }

    #[test]
    fn dead_subscribers_are_pruned_and_late_ones_see_the_shutdown() {
        let hub = EventHub::default();
        drop(hub.subscribe());
        let live = hub.subscribe();
        hub.publish(MachineEvent::Stop);
        assert_eq!(hub.lock().subscribers.len(), 1);
        assert_eq!(live.recv(), Ok(MachineEvent::Stop));
        hub.publish(shutdown());
        let late: Vec<_> = hub.subscribe().iter().collect();
        assert_eq!(late, [shutdown()]);
    }
}
