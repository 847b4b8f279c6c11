//! The shell task: reads keys from the keyboard and from the serial console
//! (COM1's receiver: a terminal on the other end of the line), edits the
//! line on the serial console, runs commands.
//!
//! Line editing: printable characters are echoed and appended (at most
//! [`MAX_LINE`](super::line::MAX_LINE) bytes; extra characters are dropped without echo);
//! Backspace erases one character (`\x08 \x08`); Ctrl+C abandons the line
//! (`^C`, new line, new prompt); Enter runs it. Arrows, Home/End, Delete,
//! Tab, Escape, function keys and Ctrl with other keys are ignored.
//!
//! Output of background `timer` tasks that arrives while the prompt is shown
//! goes on its own line, followed by the prompt and the line typed so far.

use alloc::string::ToString;
use futures_util::StreamExt;
use shared::boot::PROMPT;
use spin::Mutex;

use super::command::{parse, Command};
use super::keys::{Decoder, Key, SerialDecoder};
use super::line::LineEditor;
use crate::drivers::{debug_exit, i8042, rtc, serial};
use crate::task::executor::{self, Spawner};
use crate::task::keyboard::ScancodeStream;
use crate::task::serial::SerialStream;
use crate::task::timer;
use crate::{stats, time};

/// What is on the console's current line. Task context only (never held
/// across an `await`).
struct Console {
    line: LineEditor,
    /// The prompt and `line` are on screen (the shell waits for input).
    prompt_shown: bool,
}

static CONSOLE: Mutex<Console> = Mutex::new(Console {
    line: LineEditor::new(),
    prompt_shown: false,
});

fn show_prompt() {
    let mut console = CONSOLE.lock();
    console.line.clear();
    console.prompt_shown = true;
    print!("{PROMPT}");
}

/// Prints `text` on a line of its own without garbling what the user is typing.
pub fn print_async_line(text: &str) {
    let console = CONSOLE.lock();
    if console.prompt_shown {
        print!("\n{text}\n{PROMPT}{}", console.line.as_str());
    } else {
        println!("{text}");
    }
}

/// A byte of input and where it came from.
enum Input {
    Keyboard(u8),
    Serial(u8),
}

/// The shell task. It first runs the command line's `run=` lines (see
/// [`super::startup`]), each shown after a prompt as if typed, then reads
/// the keyboard and the serial console, whichever has input.
pub async fn shell(spawner: Spawner, cmdline: &'static str) {
    for line in super::startup::lines(cmdline) {
        println!("{PROMPT}{line}");
        run(line, spawner).await;
    }
    let Some(scancodes) = ScancodeStream::take() else {
        println!("shell: the keyboard is in use");
        return;
    };
    let Some(serial_bytes) = SerialStream::take() else {
        println!("shell: the serial console is in use");
        return;
    };
    let mut input = futures_util::stream::select(
        scancodes.map(Input::Keyboard),
        serial_bytes.map(Input::Serial),
    );
    let mut decoder = Decoder::new();
    let mut serial_decoder = SerialDecoder::new();
    show_prompt();
    while let Some(input) = input.next().await {
        let key = match input {
            Input::Keyboard(byte) => decoder.feed(byte),
            Input::Serial(byte) => serial_decoder.feed(byte),
        };
        let Some(key) = key else {
            continue;
        };
        match key {
            Key::Char(c) => {
                if CONSOLE.lock().line.insert(c) {
                    serial::write_str(c.encode_utf8(&mut [0; 4]));
                }
            }
            Key::Backspace => {
                if CONSOLE.lock().line.backspace() {
                    serial::write_str("\x08 \x08");
                }
            }
            Key::Interrupt => {
                println!("^C");
                show_prompt();
            }
            Key::Reboot => {
                println!("\nreboot (Ctrl+Alt+Delete)");
                i8042::reset_machine();
            }
            Key::Enter => {
                let line = {
                    let mut console = CONSOLE.lock();
                    console.prompt_shown = false;
                    console.line.take()
                };
                println!();
                run(&line, spawner).await;
                show_prompt();
            }
        }
    }
}

const HELP: &str = "\
commands:
  help            this list
  echo TEXT       print TEXT
  uptime          milliseconds since boot
  date            the RTC's date and time (ISO 8601, UTC)
  sleep MS        wait MS milliseconds (keys typed meanwhile are kept)
  timer MS TEXT   print TEXT after MS milliseconds, in the background
  spin MS         busy-wait MS milliseconds without yielding
  tasks           number of live tasks
  stats           interrupt and executor counters
  exit [N]        leave with value N (0-255, default 0) on the debug-exit port
  reboot          reset the machine (i8042 pulse); so does Ctrl+Alt+Delete
keys: Backspace erases, Ctrl+C abandons the line; arrows and other keys are ignored";

/// Runs one command line.
async fn run(line: &str, spawner: Spawner) {
    match parse(line) {
        Command::Empty => {}
        Command::Help => println!("{HELP}"),
        Command::Echo(text) => println!("{text}"),
        Command::Uptime => println!("uptime: {} ms", time::uptime_ms()),
        Command::Date => match rtc::now() {
            Some(now) => println!("date: {now}"),
            None => println!("date: the RTC gives no valid time"),
        },
        Command::Sleep(ms) => timer::sleep(ms).await,
        Command::Timer { ms, text } => {
            let text = text.to_string();
            // The deadline counts from the command, not from the spawned
            // task's first poll (after the shell next waits: with `run=`
            // lines, after the following lines have run).
            let timer = timer::sleep(ms);
            let spawned = spawner.spawn(async move {
                timer.await;
                print_async_line(&text);
            });
            if let Err(error) = spawned {
                println!("timer: {error}");
            }
        }
        Command::Spin(ms) => time::spin(ms),
        Command::Tasks => println!("tasks: {}", executor::live_tasks()),
        Command::Stats => print_stats(),
        Command::Exit(value) => debug_exit::exit(value),
        Command::Reboot => {
            println!("reboot");
            i8042::reset_machine();
        }
        Command::Usage(usage) => println!("{usage}"),
        Command::Unknown(command) => println!("unknown command: {command}"),
    }
}

fn print_stats() {
    match time::clocksource() {
        Some(source) => println!(
            "clocksource: tsc {} kHz ({})",
            source.clock.hz() / 1000,
            source.method.describe()
        ),
        None => println!("clocksource: none"),
    }
    println!("keyboard_irqs: {}", stats::KEYBOARD_IRQS.get());
    println!("scancodes: {}", stats::SCANCODES.get());
    println!("scancodes_dropped: {}", stats::SCANCODES_DROPPED.get());
    println!("serial_irqs: {}", stats::SERIAL_IRQS.get());
    println!("serial_rx: {}", stats::SERIAL_RX.get());
    println!("serial_rx_dropped: {}", stats::SERIAL_RX_DROPPED.get());
    println!("serial_overruns: {}", stats::SERIAL_OVERRUNS.get());
    println!("timer_ticks: {}", stats::TIMER_IRQS.get());
    println!("spurious_irqs: {}", stats::SPURIOUS_IRQS.get());
    println!("unexpected_irqs: {}", stats::UNEXPECTED_IRQS.get());
    println!("wakes: {}", stats::WAKES.get());
    println!("polls: {}", stats::POLLS.get());
    println!("halts: {}", stats::HALTS.get());
}
