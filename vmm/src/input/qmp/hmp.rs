//! The human monitor (HMP) commands that harnesses send through QMP's
//! `human-monitor-command`: `sendkey KEYS [HOLD_MS]`, `info status`,
//! `system_reset`, `stop` (`s`), `cont` (`c`), `quit` (`q`), `help` (`?`)
//! and `info` alone (the list of `info` subcommands). Other QEMU commands
//! are unknown here. Parsing and the texts are QEMU 7.2's
//! (`monitor/hmp.c`, `hmp_sendkey`): what the monitor prints is the answer,
//! every `\n` sent as `\r\n`; an unknown command answers
//! `unknown command: 'NAME'`, not a QMP error.
use std::time::Duration;

use super::{DEFAULT_HOLD_TIME, MAX_HOLD_TIME};
use crate::input::keycodes::{Key, KeyNameError};

/// A parsed monitor command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HmpCommand {
    /// `sendkey`: as QMP `send-key`.
    SendKey {
        /// The keys of the combination, in order.
        keys: Vec<Key>,
        /// How long they are held.
        hold: Duration,
    },
    /// `info status`.
    InfoStatus,
    /// `system_reset`.
    SystemReset,
    /// `stop`.
    Stop,
    /// `cont`.
    Cont,
    /// `quit`.
    Quit,
    /// Nothing to do but print this (help, an error, or nothing for an
    /// empty line), with `\n` line ends.
    Print(String),
}

/// The commands: names (`|` between aliases), parameters and help, as
/// QEMU's `hmp-commands.hx` gives them.
const COMMANDS: &[(&str, &str, &str)] = &[
    ("cont|c", "", "resume emulation"),
    ("help|?", "[cmd]", "show the help"),
    (
        "info",
        "[subcommand]",
        "show various information about the system state",
    ),
    ("quit|q", "", "quit the emulator"),
    (
        "sendkey",
        "keys [hold_ms]",
        "send keys to the VM (e.g. 'sendkey ctrl-alt-f1', default hold time=100 ms)",
    ),
    ("stop|s", "", "stop emulation"),
    ("system_reset", "", "reset the system"),
];

/// `info`'s subcommands.
const INFO: &[(&str, &str, &str)] =
    &[("status", "", "show the current VM status (running|paused)")];

/// Parses a command line; `can_reset` tells whether `system_reset` exists.
pub fn parse(line: &str, can_reset: bool) -> HmpCommand {
    let line = line.trim_start();
    let (name, rest) = split_word(line);
    if name.is_empty() {
        return HmpCommand::Print(String::new());
    }
    let unknown = |upto: &str| HmpCommand::Print(format!("unknown command: '{upto}'\n"));
    let command = match known(COMMANDS, name) {
        Some("system_reset") if !can_reset => return unknown(name),
        Some(command) => command,
        None => return unknown(name),
    };
    let rest = rest.trim_start();
    match command {
        "info" => {
            let (sub, after) = split_word(rest);
            if sub.is_empty() {
                return HmpCommand::Print(help(INFO, "info "));
            }
            if known(INFO, sub).is_none() {
                let upto = &line[..line.len() - after.len()];
                return unknown(upto);
            }
            let typed = &line[..line.len() - after.len()];
            no_more(after, "status", typed, HmpCommand::InfoStatus)
        }
        "sendkey" => sendkey(rest),
        "cont" => no_more(rest, "cont|c", name, HmpCommand::Cont),
        "quit" => no_more(rest, "quit|q", name, HmpCommand::Quit),
        "stop" => no_more(rest, "stop|s", name, HmpCommand::Stop),
        "system_reset" => no_more(rest, command, name, HmpCommand::SystemReset),
        // `help [CMD]`: every command, or the one named.
        _ => {
            let (wanted, _) = split_word(rest);
            let table: Vec<_> = COMMANDS
                .iter()
                .copied()
                .filter(|(names, ..)| wanted.is_empty() || names.split('|').any(|n| n == wanted))
                .collect();
            HmpCommand::Print(help(&table, ""))
        }
    }
}

/// The command of `table` that `name` names (or one of its aliases), by
/// its first name.
fn known(table: &[(&'static str, &str, &str)], name: &str) -> Option<&'static str> {
    table
        .iter()
        .find(|(names, ..)| names.split('|').any(|n| n == name))
        .map(|(names, ..)| names.split('|').next().unwrap_or(names))
}

/// The first word of `text` and what follows it.
fn split_word(text: &str) -> (&str, &str) {
    let end = text.find(char::is_whitespace).unwrap_or(text.len());
    text.split_at(end)
}

/// The command, unless arguments follow it.
/// QEMU names the command by its table entry (`stop|s`) and suggests help
/// for what was typed (`s`).
fn no_more(rest: &str, names: &str, typed: &str, command: HmpCommand) -> HmpCommand {
    if rest.trim().is_empty() {
        command
    } else {
        HmpCommand::Print(format!(
            "{names}: extraneous characters at the end of line\n{}",
            try_help(typed)
        ))
    }
}

fn try_help(name: &str) -> String {
    format!("Try \"help {name}\" for more information\n")
}

/// The lines of `help` (`help_cmd_dump_one`).
fn help(table: &[(&str, &str, &str)], prefix: &str) -> String {
    table
        .iter()
        .map(|(names, params, text)| format!("{prefix}{names} {params} -- {text}\n"))
        .collect()
}

/// `sendkey KEYS [HOLD_MS]`: key names (QKeyCode, or `0x` numbers) joined
/// by `-`; `<` is `less`, as QEMU's `hmp_sendkey`.
fn sendkey(rest: &str) -> HmpCommand {
    let (combo, after) = split_word(rest);
    if combo.is_empty() {
        return HmpCommand::Print(format!("sendkey: string expected\n{}", try_help("sendkey")));
    }
    let after = after.trim_start();
    let hold = if after.is_empty() {
        DEFAULT_HOLD_TIME
    } else {
        let (number, tail) = split_number(after);
        let Some(ms) = number else {
            let bad = after.chars().next().unwrap_or(' ');
            return HmpCommand::Print(format!(
                "invalid char '{bad}' in expression\n{}",
                try_help("sendkey")
            ));
        };
        if !tail.trim().is_empty() {
            return no_more(tail, "sendkey", "sendkey", HmpCommand::Print(String::new()));
        }
        match Duration::from_millis(ms) {
            hold if hold <= MAX_HOLD_TIME => hold,
            _ => {
                return HmpCommand::Print(format!(
                    "Error: Parameter 'hold-time' expects an integer from 0 to {}\n",
                    MAX_HOLD_TIME.as_millis()
                ))
            }
        }
    };
    let mut keys: Vec<Key> = Vec::new();
    for name in combo.split('-') {
        let name = if name == "<" { "less" } else { name };
        let invalid = || HmpCommand::Print(format!("invalid parameter: {name}\n"));
        let key = if let Some(hex) = name.strip_prefix("0x") {
            let Ok(number) = u16::from_str_radix(hex, 16) else {
                return invalid();
            };
            match Key::from_qnum(number.into()) {
                Some(key) => key,
                None => {
                    return HmpCommand::Print(format!(
                        "Error: Key number {number:#x} has no PS/2 scan code\n"
                    ))
                }
            }
        } else {
            match Key::from_name(name) {
                Ok(key) => key,
                Err(KeyNameError::Unknown(_)) => return invalid(),
                Err(unsupported) => return HmpCommand::Print(format!("Error: {unsupported}\n")),
            }
        };
        if keys.iter().any(|k| k.set2() == key.set2()) {
            return HmpCommand::Print(format!("Error: Key '{}' is given twice\n", key.name()));
        }
        keys.push(key);
    }
    HmpCommand::SendKey { keys, hold }
}

/// A leading decimal or `0x` hexadecimal number and what follows it.
fn split_number(text: &str) -> (Option<u64>, &str) {
    let (digits, radix, skip) = match text.strip_prefix("0x") {
        Some(hex) => (hex, 16, 2),
        None => (text, 10, 0),
    };
    let end = digits
        .find(|c: char| !c.is_digit(radix))
        .unwrap_or(digits.len());
    let number = u64::from_str_radix(&digits[..end], radix).ok();
    (number, &text[skip + end..])
}

/// What the monitor prints, as `human-monitor-command` returns it: every
/// `\n` becomes `\r\n` (QEMU's `monitor_puts`).
pub fn output(text: &str) -> String {
    text.replace('\n', "\r\n")
}

#[cfg(test)]
mod tests;
