//! Tests of the key worker.
use super::*;
use crate::input::keycodes;
use crate::vm::MachineEvent;
use std::sync::Mutex;

/// A machine whose guest reads keys instantly.
#[derive(Default)]
struct Fake {
    log: Mutex<Vec<(u16, bool)>>,
}

impl MachineControl for Fake {
    fn key_event(&self, key: Key, down: bool) {
        self.log.lock().unwrap().push((key.set2(), down));
    }
    fn wait_input_drained(&self, _: Duration) -> bool {
        true
    }
    fn serial_mark(&self) -> usize {
        0
    }
    fn serial_wait_for(&self, _: usize, _: &[u8], _: Duration) -> Result<usize, Vec<u8>> {
        Err(Vec::new())
    }
    fn pause(&self) {}
    fn resume(&self) {}
    fn is_paused(&self) -> bool {
        false
    }
    fn can_reset(&self) -> bool {
        false
    }
    fn reset(&self) {}
    fn shutdown(&self, _: i32) {}
    fn is_stopped(&self) -> bool {
        false
    }
    fn subscribe(&self) -> mpsc::Receiver<MachineEvent> {
        // This mock never publishes: the sender goes at once.
        mpsc::channel().1
    }
}

#[test]
fn worker_delivers_in_order() {
    let vm = Arc::new(Fake::default());
    let worker = KeyWorker::start(vm.clone()).unwrap();
    let (ctrl, c) = (keycodes::key("ctrl"), keycodes::key("c"));
    worker.combo(vec![ctrl, c], Duration::from_millis(5));
    worker.event(c, true);
    worker.event(c, false);
    let deadline = Instant::now() + Duration::from_secs(5);
    while vm.log.lock().unwrap().len() < 6 && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(
        *vm.log.lock().unwrap(),
        [
            (0x14, true),
            (0x21, true),
            (0x21, false),
            (0x14, false),
            (0x21, true),
            (0x21, false)
        ]
    );
}
