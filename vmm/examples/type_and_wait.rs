//! Boots the embedded guest, types a command, waits for its output, then
//! reads the exit value and the statistics: the library API a test author
//! needs, in one place.
//!
//!     cargo run --release --example type_and_wait
//!
//! `cargo test --release` runs it too (its test below), so it cannot rot.
use std::error::Error;
use std::thread;
use std::time::Duration;

use vmm::input::script::{self, Script};
use vmm::{ExitReason, Vm, VmConfig, VmHandle};

/// What the run showed.
#[derive(Debug)]
struct Outcome {
    /// The guest's answer to the typed command, one line.
    answer: String,
    /// The guest's exit value (what it wrote to the debug-exit port).
    exit_value: u32,
    /// `KVM_RUN` returns counted over the run.
    exits: u64,
    /// Wall time of the run.
    run_time: Duration,
}

/// How long to wait for the guest at each step (its boot included).
const STEP: Duration = Duration::from_secs(30);

#[cfg_attr(test, allow(dead_code))]
fn main() -> Result<(), Box<dyn Error>> {
    let outcome = run()?;
    println!("the guest answered: {:?}", outcome.answer);
    println!("it exited with {}", outcome.exit_value);
    println!(
        "{} exits in {:.3} s",
        outcome.exits,
        outcome.run_time.as_secs_f64()
    );
    Ok(())
}

fn run() -> Result<Outcome, Box<dyn Error>> {
    // The embedded guest, COM1 kept in memory (not on stdout).
    let vm = Vm::new(&VmConfig::default())?;
    let handle = vm.handle();
    // `run` blocks this thread until the machine stops: drive it from
    // another one through the handle.
    let driver = thread::spawn(move || drive(&handle));
    let report = vm.run()?;
    let answer = driver.join().map_err(|_| "the driver thread panicked")??;
    let ExitReason::GuestExit(exit_value) = report.exit.reason else {
        return Err(format!("the guest did not exit: {}", report.exit.reason).into());
    };
    Ok(Outcome {
        answer,
        exit_value,
        exits: report.vcpu.exits.iter().sum(),
        run_time: report.run_time,
    })
}

/// Waits for the prompt, types `echo`, reads its answer, types `exit 7`.
fn drive(handle: &VmHandle) -> Result<String, String> {
    let serial = handle.serial_output();
    let prompt = serial
        .wait_for(0, shared::boot::PROMPT.as_bytes(), STEP)
        .map_err(|output| format!("no prompt: {}", String::from_utf8_lossy(&output)))?;
    type_text(handle, "echo hello from the library\n")?;
    // The answer is on the line after the echoed command.
    let start = serial
        .wait_for(prompt, b"\r\nhello", STEP)
        .map_err(|output| format!("no answer: {}", String::from_utf8_lossy(&output)))?
        - "hello".len();
    let end = serial
        .wait_for(start, b"\r\n", STEP)
        .map_err(|_| "the answer did not end")?;
    let answer = String::from_utf8_lossy(&serial.since(start)[..end - start - 2]).into_owned();
    type_text(handle, "exit 7\n")?;
    Ok(answer)
}

/// Types `text` (escapes as in a script's `type`), paced by the guest.
fn type_text(handle: &VmHandle, text: &str) -> Result<(), String> {
    let script = Script::type_text("example", &text.replace('\n', "\\n"))
        .map_err(|error| error.to_string())?;
    script::run(&script, handle).map_err(|error| error.to_string())
}

#[cfg(test)]
mod tests {
    #[test]
    fn types_and_reads_the_answer_the_exit_value_and_the_stats() {
        let outcome = super::run().unwrap();
        assert_eq!(outcome.answer, "hello from the library");
        assert_eq!(outcome.exit_value, 7);
        assert!(outcome.exits > 0, "{outcome:?}");
    }
}
