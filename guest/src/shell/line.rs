//! The line being typed at the prompt: append within a byte limit, erase
//! the last character. What to echo is the caller's business; the return
//! values say whether anything changed.

use alloc::string::String;

/// Longest command line, in bytes.
pub const MAX_LINE: usize = 4096;

/// The line typed so far.
pub struct LineEditor {
    line: String,
}

impl Default for LineEditor {
    fn default() -> Self {
        Self::new()
    }
}

impl LineEditor {
    /// An empty line.
    pub const fn new() -> Self {
        Self {
            line: String::new(),
        }
    }

    /// Appends `c` unless the line would exceed [`MAX_LINE`] bytes; true if
    /// it was appended (and is to be echoed). Inlined: it runs for every
    /// key typed, where every guest instruction counts.
    #[inline]
    pub fn insert(&mut self, c: char) -> bool {
        if self.line.len() + c.len_utf8() > MAX_LINE {
            return false;
        }
        self.line.push(c);
        true
    }

    /// Erases the last character; true if there was one.
    #[inline]
    pub fn backspace(&mut self) -> bool {
        self.line.pop().is_some()
    }

    /// Empties the line.
    pub fn clear(&mut self) {
        self.line.clear();
    }

    /// The line, leaving it empty.
    pub fn take(&mut self) -> String {
        core::mem::take(&mut self.line)
    }

    /// The line so far.
    pub fn as_str(&self) -> &str {
        &self.line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backspace_at_column_0_changes_nothing() {
        let mut line = LineEditor::new();
        assert!(!line.backspace());
        assert_eq!(line.as_str(), "");
        assert!(line.insert('a'));
        assert!(line.backspace());
        assert!(!line.backspace());
        assert_eq!(line.as_str(), "");
    }

    #[test]
    fn backspace_erases_a_whole_multibyte_character() {
        let mut line = LineEditor::new();
        line.insert('x');
        line.insert('é');
        assert!(line.backspace());
        assert_eq!(line.as_str(), "x");
    }

    #[test]
    fn the_line_is_capped_at_max_line_bytes() {
        let mut line = LineEditor::new();
        for _ in 0..MAX_LINE - 1 {
            assert!(line.insert('a'));
        }
        assert!(!line.insert('é'), "two bytes do not fit in the last one");
        assert!(line.insert('b'));
        assert_eq!(line.as_str().len(), MAX_LINE);
        assert!(!line.insert('c'), "dropped, not echoed");
        assert!(line.as_str().ends_with("ab"));
        assert!(line.backspace());
        assert!(line.insert('d'), "room again after an erase");
    }

    #[test]
    fn take_returns_the_line_and_empties_it() {
        let mut line = LineEditor::new();
        line.insert('h');
        line.insert('i');
        assert_eq!(line.take(), "hi");
        assert_eq!(line.as_str(), "");
        line.insert('x');
        line.clear();
        assert_eq!(line.as_str(), "");
    }
}
