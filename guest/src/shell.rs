//! The interactive shell on the serial console, fed by the keyboard.
//!
//! Line editing: printable characters are echoed and appended (at most
//! [`MAX_LINE`] bytes; extra characters are dropped without echo);
//! Backspace erases one character (`\x08 \x08`); Ctrl+C abandons the line
//! (`^C`, new line, new prompt); Enter runs it. Arrows, Home/End, Delete,
//! Tab, Escape, function keys and Ctrl with other keys are ignored.
//!
//! Output of background `timer` tasks that arrives while the prompt is shown
//! goes on its own line, followed by the prompt and the line typed so far.

use alloc::string::{String, ToString};
use futures_util::StreamExt;
use shared::boot::PROMPT;
use spin::Mutex;

use crate::executor::{self, Spawner};
use crate::keyboard::{Decoder, Key, ScancodeStream};
use crate::{serial, stats, time, timer};

/// Longest command line, in bytes.
pub const MAX_LINE: usize = 4096;

/// What is on the console's current line. Task context only (never held
/// across an `await`).
struct Console {
    line: String,
    /// The prompt and `line` are on screen (the shell waits for input).
    prompt_shown: bool,
}

static CONSOLE: Mutex<Console> = Mutex::new(Console {
    line: String::new(),
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
        print!("\n{text}\n{PROMPT}{}", console.line);
    } else {
        println!("{text}");
    }
}

/// The shell task.
pub async fn shell(spawner: Spawner) {
    let Some(mut scancodes) = ScancodeStream::take() else {
        println!("shell: the keyboard is in use");
        return;
    };
    let mut decoder = Decoder::new();
    show_prompt();
    while let Some(byte) = scancodes.next().await {
        let Some(key) = decoder.feed(byte) else {
            continue;
        };
        match key {
            Key::Char(c) => {
                let mut console = CONSOLE.lock();
                if console.line.len() + c.len_utf8() <= MAX_LINE {
                    console.line.push(c);
                    serial::write_str(c.encode_utf8(&mut [0; 4]));
                }
            }
            Key::Backspace => {
                if CONSOLE.lock().line.pop().is_some() {
                    serial::write_str("\x08 \x08");
                }
            }
            Key::Interrupt => {
                println!("^C");
                show_prompt();
            }
            Key::Enter => {
                let line = {
                    let mut console = CONSOLE.lock();
                    console.prompt_shown = false;
                    core::mem::take(&mut console.line)
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
  sleep MS        wait MS milliseconds (keys typed meanwhile are kept)
  timer MS TEXT   print TEXT after MS milliseconds, in the background
  spin MS         busy-wait MS milliseconds without yielding
  tasks           number of live tasks
  stats           interrupt and executor counters
  exit [N]        leave with value N (0-255, default 0) on the debug-exit port
keys: Backspace erases, Ctrl+C abandons the line; arrows and other keys are ignored";

fn parse_ms(text: &str) -> Option<u64> {
    text.parse::<u32>().ok().map(u64::from)
}

/// Runs one command line.
async fn run(line: &str, spawner: Spawner) {
    let line = line.trim();
    let (command, args) = match line.split_once(' ') {
        Some((command, args)) => (command, args.trim_start()),
        None => (line, ""),
    };
    match command {
        "" => {}
        "help" => println!("{HELP}"),
        "echo" => println!("{args}"),
        "uptime" => println!("uptime: {} ms", time::uptime_ms()),
        "sleep" => match parse_ms(args) {
            Some(ms) => timer::sleep(ms).await,
            None => println!("usage: sleep MS"),
        },
        "timer" => {
            let parsed = args
                .split_once(' ')
                .and_then(|(ms, text)| Some((parse_ms(ms)?, text.trim_start())));
            match parsed {
                Some((ms, text)) if !text.is_empty() => {
                    let text = text.to_string();
                    let spawned = spawner.spawn(async move {
                        timer::sleep(ms).await;
                        print_async_line(&text);
                    });
                    if let Err(error) = spawned {
                        println!("timer: {error}");
                    }
                }
                _ => println!("usage: timer MS TEXT"),
            }
        }
        "spin" => match parse_ms(args) {
            Some(ms) => time::spin(ms),
            None => println!("usage: spin MS"),
        },
        "tasks" => println!("tasks: {}", executor::live_tasks()),
        "stats" => print_stats(),
        "exit" => {
            let value = if args.is_empty() {
                Some(0)
            } else {
                args.parse::<u8>().ok()
            };
            match value {
                Some(value) => crate::debug_exit::exit(value),
                None => println!("usage: exit [N] (N from 0 to 255)"),
            }
        }
        _ => println!("unknown command: {command}"),
    }
}

fn print_stats() {
    println!("keyboard_irqs: {}", stats::KEYBOARD_IRQS.get());
    println!("scancodes: {}", stats::SCANCODES.get());
    println!("scancodes_dropped: {}", stats::SCANCODES_DROPPED.get());
    println!("timer_ticks: {}", time::ticks());
    println!("spurious_irqs: {}", stats::SPURIOUS_IRQS.get());
    println!("unexpected_irqs: {}", stats::UNEXPECTED_IRQS.get());
    println!("wakes: {}", stats::WAKES.get());
    println!("polls: {}", stats::POLLS.get());
    println!("halts: {}", stats::HALTS.get());
}
