//! The machine driven in-process through `VmHandle`, as the keyboard, script
//! and QMP front ends drive it: the guest shell on real KVM, pause/resume and
//! shutdown. The timing tests are in `vmm_timer.rs`.
mod common;

use std::thread;
use std::time::Duration;

use common::guest::Guest;
use shared::boot;
use vmm::input::keycodes::us_char;

#[test]
fn exit_command_sets_the_status() {
    let mut guest = Guest::boot();
    guest.type_text("exit 5\n");
    let report = guest.join();
    assert_eq!(report.exit.status, 5, "{:?}", report.exit);
}

#[test]
fn pause_stops_the_guest_and_resume_continues() {
    let mut guest = Guest::boot();
    guest.handle.pause();
    assert!(guest.handle.is_paused());
    let mark = guest.tap.mark();
    guest.handle.key_event(us_char('x').unwrap().0.set2(), true);
    guest
        .handle
        .key_event(us_char('x').unwrap().0.set2(), false);
    // A paused guest reads no keys and echoes nothing.
    assert!(!guest.handle.wait_input_drained(Duration::from_millis(300)));
    assert_eq!(guest.tap.mark(), mark);
    guest.handle.resume();
    assert!(!guest.handle.is_paused());
    assert!(guest.handle.wait_input_drained(Duration::from_secs(5)));
    guest.expect("x", Duration::from_secs(5));
    guest.type_text("\n");
    guest.expect(boot::PROMPT, Duration::from_secs(5));
    // The timer works after the pause: a sleep's one-shot interrupt ends it.
    let (before, _) = guest.ticks();
    guest.command("sleep 10");
    assert!(guest.ticks().0 > before);
}

#[test]
fn shutdown_stops_a_running_guest() {
    let mut guest = Guest::boot();
    let waiter = guest.handle.clone();
    let observer = thread::spawn(move || waiter.wait_exit());
    guest.handle.shutdown(77);
    let report = guest.join();
    assert_eq!(report.exit.status, 77);
    assert_eq!(observer.join().unwrap().status, 77);
    assert_eq!(guest.handle.exit_state().map(|e| e.status), Some(77));
}

/// Every subscriber sees the machine's events in order: pause, resume, a
/// host reset once done, and last the stop, after which its channel closes;
/// a subscriber that went away is no obstacle.
#[test]
fn subscribers_see_pause_resume_reset_and_the_stop() {
    use vmm::vm::{MachineEvent, ResetCause};

    let mut guest = Guest::boot();
    let first = guest.handle.subscribe();
    let second = guest.handle.subscribe();
    drop(guest.handle.subscribe());
    guest.handle.pause();
    guest.handle.pause();
    guest.handle.resume();
    guest.handle.reset();
    guest.expect(boot::PROMPT, Duration::from_secs(10));
    guest.type_text("exit 7\n");
    let report = guest.join();
    assert_eq!(report.exit.status, 7, "{:?}", report.exit);
    let expected = [
        MachineEvent::Stop,
        MachineEvent::Resume,
        MachineEvent::Reset(ResetCause::Host),
        MachineEvent::Shutdown(report.exit.clone()),
    ];
    for receiver in [first, second] {
        let events: Vec<MachineEvent> = receiver.iter().collect();
        assert_eq!(events, expected);
    }
    // After the stop a new subscriber gets only the stop.
    let late: Vec<MachineEvent> = guest.handle.subscribe().iter().collect();
    assert_eq!(late, [MachineEvent::Shutdown(report.exit)]);
}
