//! The embedded guest run in-process and driven through `VmHandle`, as the
//! keyboard, script and QMP front ends drive it.
use std::borrow::Cow;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use shared::{boot, status};
use vmm::input::keycodes::us_char;
use vmm::{RunReport, SerialTap, Vm, VmConfig, VmHandle};

use super::{guest_elf, require_kvm};

/// A running guest: its handle, its serial output, and the thread running it.
pub struct Guest {
    pub handle: VmHandle,
    pub tap: SerialTap,
    mark: usize,
    thread: Option<JoinHandle<RunReport>>,
}

impl Guest {
    /// Boots the embedded guest to its shell prompt.
    pub fn boot() -> Self {
        require_kvm();
        let config = VmConfig {
            kernel: Cow::Owned(std::fs::read(guest_elf()).unwrap()),
            cmdline: String::new(),
            initrd: None,
            cpu: Default::default(),
            memory_mib: 128,
            serial_to_stdout: false,
            no_reboot: false,
        };
        let vm = Vm::new(&config).expect("build the VM");
        let handle = vm.handle();
        let tap = handle.serial_output();
        let thread = thread::spawn(move || vm.run().expect("run the VM"));
        let mut guest = Guest {
            handle,
            tap,
            mark: 0,
            thread: Some(thread),
        };
        guest.expect(boot::PROMPT, Duration::from_secs(10));
        guest
    }

    /// Waits for `text` after the previous match; returns the output in between.
    pub fn expect(&mut self, text: &str, timeout: Duration) -> String {
        match self.tap.wait_for(self.mark, text.as_bytes(), timeout) {
            Ok(end) => {
                let seen = self.tap.since(self.mark);
                let upto = (end - self.mark).min(seen.len());
                self.mark = end;
                String::from_utf8_lossy(&seen[..upto]).into_owned()
            }
            Err(tail) => panic!(
                "timed out waiting for {text:?}; output:\n{}",
                String::from_utf8_lossy(&tail)
            ),
        }
    }

    /// Types `text` on the PS/2 keyboard, paced by the guest.
    pub fn type_text(&self, text: &str) {
        for c in text.chars() {
            let (key, shift) = us_char(c).unwrap_or_else(|| panic!("no key for {c:?}"));
            assert!(!shift, "test text needs no Shift");
            self.handle.key_event(key.set2(), true);
            self.handle.key_event(key.set2(), false);
            let drained = self.handle.wait_input_drained(Duration::from_secs(5));
            assert!(
                drained || self.handle.exit_state().is_some(),
                "guest stopped reading keys"
            );
        }
    }

    /// Runs a shell command and returns its output up to the next prompt.
    pub fn command(&mut self, line: &str) -> String {
        self.type_text(line);
        self.type_text("\n");
        self.expect(line, Duration::from_secs(5));
        self.expect("\n", Duration::from_secs(5));
        self.expect(boot::PROMPT, Duration::from_secs(30))
    }

    /// The `timer_ticks:` value of `stats` (timer interrupts the guest has
    /// taken), and when the guest printed it.
    ///
    /// The command is typed up to Enter first, so only Enter and the print
    /// lie between the two host timestamps; their midpoint is the estimate.
    pub fn ticks(&mut self) -> (u64, Instant) {
        self.type_text("stats");
        self.expect("stats", Duration::from_secs(5));
        let before = Instant::now();
        self.type_text("\n");
        self.expect("timer_ticks: ", Duration::from_secs(5));
        let value = self.expect("\n", Duration::from_secs(5));
        let after = Instant::now();
        self.expect(boot::PROMPT, Duration::from_secs(5));
        let ticks = value
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("bad timer_ticks {value:?}"));
        (ticks, before + (after - before) / 2)
    }

    /// The guest's `uptime`, with host timestamps taken just before Enter
    /// and just after the answer: the guest read its clock in between. (Its
    /// clock is the TSC: it needs no timer interrupt to be current.)
    pub fn uptime(&mut self) -> (u64, Instant, Instant) {
        self.type_text("uptime");
        self.expect("uptime", Duration::from_secs(5));
        let before = Instant::now();
        self.type_text("\n");
        self.expect("uptime: ", Duration::from_secs(5));
        let value = self.expect(" ms", Duration::from_secs(5));
        let after = Instant::now();
        self.expect(boot::PROMPT, Duration::from_secs(5));
        let ms = value
            .trim_end_matches(" ms")
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("bad uptime {value:?}"));
        (ms, before, after)
    }

    /// Waits for the VM to stop and returns its report.
    pub fn join(&mut self) -> RunReport {
        self.thread.take().unwrap().join().expect("VM thread")
    }
}

impl Drop for Guest {
    fn drop(&mut self) {
        if let Some(thread) = self.thread.take() {
            self.handle.shutdown(status::TIMEOUT);
            let _ = thread.join();
        }
    }
}
