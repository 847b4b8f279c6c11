//! Parsing a command line into a [`Command`]; running it is
//! `shell::console`'s job.

/// One parsed command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command<'a> {
    /// A blank line.
    Empty,
    /// `help`.
    Help,
    /// `echo TEXT`.
    Echo(&'a str),
    /// `uptime`.
    Uptime,
    /// `date`.
    Date,
    /// `sleep MS`.
    Sleep(u64),
    /// `timer MS TEXT`.
    Timer {
        /// Delay in milliseconds.
        ms: u64,
        /// What to print.
        text: &'a str,
    },
    /// `spin MS`.
    Spin(u64),
    /// `tasks`.
    Tasks,
    /// `stats`.
    Stats,
    /// `exit [N]`.
    Exit(u8),
    /// `reboot`: reset the machine through the i8042.
    Reboot,
    /// A known command with bad arguments: the usage line to print.
    Usage(&'static str),
    /// An unknown command name.
    Unknown(&'a str),
}

/// A delay argument: 0 to `u32::MAX` milliseconds.
fn parse_ms(text: &str) -> Option<u64> {
    text.parse::<u32>().ok().map(u64::from)
}

/// Parses `line` (surrounding blanks ignored; one or more spaces between
/// the command and its arguments).
pub fn parse(line: &str) -> Command<'_> {
    let line = line.trim();
    let (command, args) = match line.split_once(' ') {
        Some((command, args)) => (command, args.trim_start()),
        None => (line, ""),
    };
    match command {
        "" => Command::Empty,
        "help" => Command::Help,
        "echo" => Command::Echo(args),
        "uptime" => Command::Uptime,
        "date" => Command::Date,
        "sleep" => parse_ms(args).map_or(Command::Usage("usage: sleep MS"), Command::Sleep),
        "timer" => {
            let parsed = args
                .split_once(' ')
                .and_then(|(ms, text)| Some((parse_ms(ms)?, text.trim_start())));
            match parsed {
                Some((ms, text)) if !text.is_empty() => Command::Timer { ms, text },
                _ => Command::Usage("usage: timer MS TEXT"),
            }
        }
        "spin" => parse_ms(args).map_or(Command::Usage("usage: spin MS"), Command::Spin),
        "tasks" => Command::Tasks,
        "stats" => Command::Stats,
        "reboot" if args.is_empty() => Command::Reboot,
        "reboot" => Command::Usage("usage: reboot"),
        "exit" => {
            let value = if args.is_empty() {
                Some(0)
            } else {
                args.parse::<u8>().ok()
            };
            value.map_or(
                Command::Usage("usage: exit [N] (N from 0 to 255)"),
                Command::Exit,
            )
        }
        _ => Command::Unknown(command),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reboot_takes_no_argument() {
        assert_eq!(parse("reboot"), Command::Reboot);
        assert_eq!(parse("  reboot  "), Command::Reboot);
        assert_eq!(parse("reboot now"), Command::Usage("usage: reboot"));
    }

    #[test]
    fn blank_lines_are_empty() {
        assert_eq!(parse(""), Command::Empty);
        assert_eq!(parse("   "), Command::Empty);
    }

    #[test]
    fn echo_keeps_inner_spaces_and_drops_outer_ones() {
        assert_eq!(parse("  echo   a  b "), Command::Echo("a  b"));
        assert_eq!(parse("echo"), Command::Echo(""));
    }

    #[test]
    fn delays_are_u32_milliseconds() {
        assert_eq!(parse("sleep 0"), Command::Sleep(0));
        assert_eq!(parse("sleep 4294967295"), Command::Sleep(4_294_967_295));
        assert_eq!(parse("sleep 4294967296"), Command::Usage("usage: sleep MS"));
        assert_eq!(parse("sleep -1"), Command::Usage("usage: sleep MS"));
        assert_eq!(parse("sleep"), Command::Usage("usage: sleep MS"));
        assert_eq!(parse("spin 12"), Command::Spin(12));
        assert_eq!(parse("spin x"), Command::Usage("usage: spin MS"));
    }

    #[test]
    fn timer_needs_a_delay_and_text() {
        assert_eq!(
            parse("timer 100   hello world"),
            Command::Timer {
                ms: 100,
                text: "hello world"
            }
        );
        assert_eq!(parse("timer 100"), Command::Usage("usage: timer MS TEXT"));
        assert_eq!(parse("timer 100 "), Command::Usage("usage: timer MS TEXT"));
        assert_eq!(parse("timer x hi"), Command::Usage("usage: timer MS TEXT"));
    }

    #[test]
    fn exit_value_is_a_byte_defaulting_to_0() {
        assert_eq!(parse("exit"), Command::Exit(0));
        assert_eq!(parse("exit 255"), Command::Exit(255));
        assert_eq!(
            parse("exit 256"),
            Command::Usage("usage: exit [N] (N from 0 to 255)")
        );
    }

    #[test]
    fn names_match_whole_words_only() {
        assert_eq!(parse("uptime"), Command::Uptime);
        assert_eq!(parse("date"), Command::Date);
        assert_eq!(parse("uptimes"), Command::Unknown("uptimes"));
        assert_eq!(parse("HELP"), Command::Unknown("HELP"));
        assert_eq!(parse("tasks now"), Command::Tasks);
    }
}
