//! Shell lines from the kernel command line: `run=` followed by the rest of
//! the command line, lines separated by `;`, run before the first prompt.
//! So a machine can be driven without a keyboard:
//! `vmm --cmdline 'run=uptime; exit 0'`, or QEMU's `-append` with the same
//! text (both VMMs measure boot-to-exit this way).

/// The text after the first `run=` that starts a word of `cmdline` (the
/// rest of the line, spaces and all), or `None` without one.
pub fn run_param(cmdline: &str) -> Option<&str> {
    let key = shared::boot::RUN_PARAM;
    let mut from = 0;
    while let Some(found) = cmdline[from..].find(key) {
        let at = from + found;
        let starts_word = cmdline[..at]
            .chars()
            .next_back()
            .is_none_or(|c| c.is_ascii_whitespace());
        let rest = &cmdline[at + key.len()..];
        if starts_word {
            if let Some(text) = rest.strip_prefix('=') {
                return Some(text);
            }
        }
        from = at + key.len();
    }
    None
}

/// The shell lines `run=` gives: split at `;`, trimmed, empty ones skipped.
pub fn lines(cmdline: &str) -> impl Iterator<Item = &str> {
    run_param(cmdline)
        .unwrap_or("")
        .split(';')
        .map(str::trim)
        .filter(|line| !line.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    fn all(cmdline: &str) -> Vec<&str> {
        lines(cmdline).collect()
    }

    #[test]
    fn run_takes_the_rest_of_the_line_split_at_semicolons() {
        assert_eq!(all("run=uptime; exit 0"), ["uptime", "exit 0"]);
        assert_eq!(
            all("quiet run=echo a b;;  echo c  ;"),
            ["echo a b", "echo c"]
        );
        assert_eq!(run_param("x=1 run= echo  spaced "), Some(" echo  spaced "));
    }

    #[test]
    fn run_must_start_a_word() {
        assert_eq!(run_param("norun=1"), None);
        assert_eq!(run_param("rerun=echo x run=echo y"), Some("echo y"));
        assert_eq!(run_param("run"), None);
        assert_eq!(run_param("running=1"), None);
        assert!(all("").is_empty());
        assert!(all("test=boot").is_empty());
    }
}
