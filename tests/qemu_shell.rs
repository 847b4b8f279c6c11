//! The guest's shell under QEMU (`pc`, TCG), typed into through QMP
//! `send-key`: line editing, commands, and concurrency of timers, sleep and
//! spin with typing. Typing waits for the guest's echo, not for time.
mod common;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::qmp::Qmp;
use common::*;
use shared::boot::PROMPT;

const TIMEOUT: Duration = Duration::from_secs(20);

struct Shell {
    vm: Machine,
    qmp: Qmp,
}

impl Shell {
    /// Boots the guest to its first prompt with a QMP socket.
    fn boot() -> Shell {
        Shell::boot_with(&[])
    }

    /// [`Shell::boot`] with extra QEMU arguments.
    fn boot_with(args: &[&str]) -> Shell {
        let socket = scratch_path("qmp.sock");
        let mut command = qemu_command("pc", "tcg", guest_elf());
        command
            .args(args)
            .arg("-qmp")
            .arg(format!("unix:{},server=on,wait=off", socket.display()));
        let vm = Machine::spawn(command);
        vm.stdout.expect(shared::boot::BANNER, TIMEOUT);
        vm.stdout.expect("i8042: keyboard ready", TIMEOUT);
        vm.stdout.expect(PROMPT, TIMEOUT);
        let qmp = Qmp::connect(&socket, TIMEOUT);
        Shell { vm, qmp }
    }

    fn expect(&self, text: &str) {
        self.vm.stdout.expect(text, TIMEOUT);
    }

    /// Types `text` (no Enter) and waits for its echo.
    fn type_echoed(&mut self, text: &str) {
        self.qmp.type_text(text);
        self.expect(text);
    }

    fn enter(&mut self) {
        self.qmp.send_key(&["ret"]);
    }

    /// Types a command, waits for its echo, presses Enter and waits for the
    /// end of the echoed line.
    fn command(&mut self, line: &str) {
        self.type_echoed(line);
        self.enter();
        self.expect("\r\n");
    }

    /// Runs a command and returns its output: what the shell printed
    /// between the end of the echoed line and the next prompt.
    fn output_of(&mut self, line: &str) -> String {
        let start = self.vm.stdout.text().len();
        self.type_echoed(line);
        self.enter();
        // Output is empty or ends in a newline, so the prompt follows "\r\n".
        self.expect("\r\n> ");
        let text = self.vm.stdout.text();
        let after_start = &text[start..];
        let echo = after_start.find(line).expect("echo seen") + line.len();
        let after_echo = &after_start[echo..];
        let end = after_echo.find("\r\n> ").expect("prompt seen") + 2;
        after_echo[..end]
            .strip_prefix("\r\n")
            .expect("newline after the echo")
            .to_string()
    }

    fn transcript(&self) -> String {
        self.vm.stdout.text()
    }
}

/// The value of `name: N` in `text`.
fn counter(text: &str, name: &str) -> u64 {
    let prefix = format!("{name}: ");
    text.lines()
        .find_map(|line| line.trim_end().strip_prefix(&prefix))
        .and_then(|n| n.trim_end_matches(" ms").parse().ok())
        .unwrap_or_else(|| panic!("no {prefix:?}N line in {text:?}"))
}

#[test]
fn echo_with_shift_and_symbols() {
    let mut shell = Shell::boot();
    let out = shell.output_of("echo Hello, World!");
    assert_eq!(
        out,
        "Hello, World!\r\n",
        "transcript:\n{}",
        shell.transcript()
    );
    let out = shell.output_of("echo (a+b)*c = \"x_y\"; 100% <ok>? {[~|`]}");
    assert_eq!(out, "(a+b)*c = \"x_y\"; 100% <ok>? {[~|`]}\r\n");
}

#[test]
fn backspace_erases() {
    let mut shell = Shell::boot();
    // Backspace on an empty line prints nothing.
    shell.qmp.send_key(&["backspace"]);
    shell.type_echoed("echo abx");
    shell.qmp.send_key(&["backspace"]);
    shell.expect("\x08 \x08");
    shell.type_echoed("c");
    shell.enter();
    shell.expect("\r\nabc\r\n> ");
    let transcript = shell.transcript();
    assert!(
        transcript.contains("> echo abx\x08 \x08c\r\nabc\r\n"),
        "transcript:\n{transcript:?}"
    );
    assert_eq!(
        transcript.matches('\x08').count(),
        2,
        "one erase only:\n{transcript:?}"
    );
}

#[test]
fn ctrl_c_abandons_the_line() {
    let mut shell = Shell::boot();
    shell.type_echoed("echo nope");
    shell.qmp.send_key(&["ctrl", "c"]);
    shell.expect("^C\r\n> ");
    assert!(shell.transcript().contains("> echo nope^C\r\n> "));
    let out = shell.output_of("echo yes");
    assert_eq!(out, "yes\r\n");
    assert!(
        !shell.transcript().contains("\r\nnope\r\n"),
        "the abandoned line ran:\n{}",
        shell.transcript()
    );
}

#[test]
fn help_unknown_and_usage() {
    let mut shell = Shell::boot();
    let help = shell.output_of("help");
    for command in [
        "echo TEXT",
        "uptime",
        "sleep MS",
        "timer MS TEXT",
        "spin MS",
        "tasks",
        "stats",
        "exit [N]",
    ] {
        assert!(help.contains(command), "help lacks {command:?}:\n{help}");
    }
    assert_eq!(
        shell.output_of("frobnicate now"),
        "unknown command: frobnicate\r\n"
    );
    assert_eq!(shell.output_of("sleep soon"), "usage: sleep MS\r\n");
    assert_eq!(
        shell.output_of("exit 256"),
        "usage: exit [N] (N from 0 to 255)\r\n"
    );
    assert_eq!(shell.output_of(""), "");
}

#[test]
fn tasks_and_stats() {
    let mut shell = Shell::boot();
    // The shell and the timer task.
    assert_eq!(shell.output_of("tasks"), "tasks: 2\r\n");
    shell.command("timer 600000 much later");
    shell.expect(PROMPT);
    assert_eq!(shell.output_of("tasks"), "tasks: 3\r\n");
    let stats = shell.output_of("stats");
    for name in [
        "keyboard_irqs",
        "scancodes",
        "scancodes_dropped",
        "timer_ticks",
        "wakes",
        "polls",
        "halts",
    ] {
        counter(&stats, name);
    }
    assert!(
        counter(&stats, "scancodes") > 0 && counter(&stats, "keyboard_irqs") > 0,
        "{stats}"
    );
    assert_eq!(counter(&stats, "scancodes_dropped"), 0, "{stats}");
    assert!(
        counter(&stats, "timer_ticks") > 0 && counter(&stats, "polls") > 0,
        "{stats}"
    );
}

#[test]
fn timer_output_arrives_while_the_shell_serves_commands() {
    let mut shell = Shell::boot();
    shell.command("timer 3000 ding");
    let started = Instant::now();
    shell.expect(PROMPT);
    // The shell keeps serving while the timer runs.
    assert_eq!(shell.output_of("echo one"), "one\r\n");
    assert_eq!(shell.output_of("uptime").split(':').next(), Some("uptime"));
    // Leave a half-typed line for the message to interrupt.
    shell.type_echoed("ech");
    let typed_after = started.elapsed();
    assert!(
        typed_after < Duration::from_millis(2500),
        "typing took {typed_after:?}: too slow to test"
    );
    shell.expect("\r\nding\r\n> ech");
    assert!(
        started.elapsed() >= Duration::from_millis(2900),
        "timer fired early: {:?}",
        started.elapsed()
    );
    // The line typed before the message is still there.
    shell.type_echoed("o two");
    shell.enter();
    shell.expect("\r\ntwo\r\n> ");
    let transcript = shell.transcript();
    assert!(
        transcript.contains("> ech\r\nding\r\n> echo two\r\ntwo\r\n"),
        "transcript:\n{transcript:?}"
    );
}

#[test]
fn sleep_keeps_keys_typed_meanwhile() {
    let mut shell = Shell::boot();
    shell.command("sleep 1500");
    let started = Instant::now();
    // Typed during the sleep: nothing is echoed until the sleep is over.
    shell.qmp.type_text("echo zz\n");
    let typed = started.elapsed();
    shell.expect("> echo zz\r\nzz\r\n> ");
    let done = started.elapsed();
    assert!(
        typed < Duration::from_millis(1000),
        "typing took {typed:?}: too slow to test"
    );
    assert!(
        done >= Duration::from_millis(1400),
        "sleep ended after {done:?}"
    );
    let transcript = shell.transcript();
    assert!(
        transcript.contains("sleep 1500\r\n> echo zz\r\nzz\r\n> "),
        "transcript:\n{transcript:?}"
    );
}

#[test]
fn spin_keeps_ticks_and_keys() {
    let mut shell = Shell::boot();
    let before = counter(&shell.output_of("uptime"), "uptime");
    shell.command("spin 1500");
    let started = Instant::now();
    shell.qmp.type_text("echo spun\n");
    let typed = started.elapsed();
    shell.expect("> echo spun\r\nspun\r\n> ");
    let done = started.elapsed();
    assert!(
        typed < Duration::from_millis(1000),
        "typing took {typed:?}: too slow to test"
    );
    assert!(
        done >= Duration::from_millis(1400),
        "spin ended after {done:?}"
    );
    let after = counter(&shell.output_of("uptime"), "uptime");
    assert!(
        after - before >= 1500,
        "uptime advanced {} ms across spin 1500",
        after - before
    );
    let stats = shell.output_of("stats");
    assert_eq!(counter(&stats, "scancodes_dropped"), 0, "{stats}");
}

#[test]
fn uptime_follows_the_host_clock() {
    let mut shell = Shell::boot();
    let first = counter(&shell.output_of("uptime"), "uptime");
    let host_start = Instant::now();
    // The interval being measured.
    std::thread::sleep(Duration::from_secs(2));
    let second = counter(&shell.output_of("uptime"), "uptime");
    let host = host_start.elapsed().as_millis() as i64;
    let guest = (second - first) as i64;
    // Both readings include typing the command and reading the reply, so
    // the error is that latency's jitter, not the clock's.
    assert!(
        (guest - host).abs() < 250,
        "guest measured {guest} ms, host {host} ms"
    );
}

#[test]
fn exit_3_gives_qemu_status_7() {
    let mut shell = Shell::boot();
    shell.command("exit 3");
    let status = shell.vm.wait(TIMEOUT);
    assert_eq!(status.code(), Some(shared::exit::qemu_exit_status(3)));
    assert_eq!(status.code(), Some(7));
}

/// `reboot` and Ctrl+Alt+Delete reset the machine through the i8042: QEMU,
/// run with `-no-reboot` as every test here, ends with status 0 (a reset
/// request, not the debug-exit port).
#[test]
fn reboot_and_ctrl_alt_delete_reset_the_machine() {
    let mut shell = Shell::boot();
    shell.command("reboot");
    shell.expect("reboot");
    assert_eq!(shell.vm.wait(TIMEOUT).code(), Some(0));

    let mut shell = Shell::boot();
    shell.qmp.send_key(&["ctrl", "alt", "delete"]);
    shell.expect("reboot (Ctrl+Alt+Delete)");
    assert_eq!(shell.vm.wait(TIMEOUT).code(), Some(0));
}

/// Seconds since the Unix epoch of `YYYY-MM-DDTHH:MM:SSZ` (UTC), or `None`
/// if `iso` is not exactly that form.
fn unix_seconds(iso: &str) -> Option<i64> {
    let b = iso.as_bytes();
    let shape = b.len() == 20
        && [4, 7].iter().all(|&i| b[i] == b'-')
        && b[10] == b'T'
        && [13, 16].iter().all(|&i| b[i] == b':')
        && b[19] == b'Z';
    if !shape {
        return None;
    }
    let field = |range: std::ops::Range<usize>| iso[range].parse::<i64>().ok();
    let (year, month, day) = (field(0..4)?, field(5..7)?, field(8..10)?);
    let (hour, minute, second) = (field(11..13)?, field(14..16)?, field(17..19)?);
    // Days from 1970-01-01 to the date (proleptic Gregorian calendar; Howard
    // Hinnant's days_from_civil).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let day_of_year = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    let days = era * 146_097 + day_of_era - 719_468;
    Some(days * 86_400 + hour * 3600 + minute * 60 + second)
}

#[test]
fn unix_seconds_of_known_dates() {
    assert_eq!(unix_seconds("1970-01-01T00:00:00Z"), Some(0));
    assert_eq!(unix_seconds("2000-03-01T00:00:01Z"), Some(951_868_801));
    assert_eq!(unix_seconds("2026-12-02T01:47:15Z"), Some(1_796_176_035));
    assert_eq!(unix_seconds("2026-12-02 01:47:15Z"), None);
}

#[test]
fn date_is_the_host_utc_time() {
    let mut shell = Shell::boot_with(&["-rtc", "base=utc"]);
    let help = shell.output_of("help");
    assert!(help.contains("date "), "help lacks date:\n{help}");
    let start = shell.vm.stdout.text().len();
    shell.type_echoed("date");
    let before = SystemTime::now();
    shell.enter();
    shell.expect("\r\n> ");
    let after = SystemTime::now();
    let text = shell.transcript();
    let line = text[start..]
        .lines()
        .find_map(|line| line.strip_prefix("date: "))
        .unwrap_or_else(|| panic!("no date line in {:?}", &text[start..]));
    let guest = unix_seconds(line.trim_end())
        .unwrap_or_else(|| panic!("date: {line:?} is not YYYY-MM-DDTHH:MM:SSZ"));
    let seconds = |t: SystemTime| t.duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
    // The guest read the clock between `before` and `after`, to the second.
    assert!(
        seconds(before) - 2 <= guest && guest <= seconds(after) + 2,
        "guest {line}, host {} to {} s since the epoch",
        seconds(before),
        seconds(after)
    );
}
