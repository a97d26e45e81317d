//! Printing for humans (aligned tables, lines) and for scripts (`--json`).
//! Everything a human reads passes the one sanitizer
//! ([`crate::model::sanitize`]): what came from a feed or a server is shown,
//! never obeyed by the terminal. JSON stays JSON, with the characters a
//! terminal would obey escaped (`\u001b`, `\u009b`, `\u202e`).

use crate::model::sanitize;
use serde::Serialize;
use serde_json::ser::{Formatter, PrettyFormatter};
use std::io::{self, Write};

/// Prints a line for a human on stdout, sanitized; `?` it.
macro_rules! outln {
    () => { $crate::cli::output::out_text("\n") };
    ($($arg:tt)*) => { $crate::cli::output::out_text(&(format!($($arg)*) + "\n")) };
}

/// Prints text for a human on stdout without a newline, sanitized.
macro_rules! out {
    ($($arg:tt)*) => { $crate::cli::output::out_text(&format!($($arg)*)) };
}

/// Prints a line for a human on stderr, sanitized.
macro_rules! errln {
    ($($arg:tt)*) => { $crate::cli::output::err_text(&(format!($($arg)*) + "\n")) };
}

pub(crate) use {errln, out, outln};

/// Writes human text to stdout: newlines and tabs stay, every other control
/// character and bidi override is shown escaped.
pub fn out_text(text: &str) -> io::Result<()> {
    io::stdout().lock().write_all(sanitize::text(text).as_bytes())
}

/// [`out_text`] for stderr.
pub fn err_text(text: &str) -> io::Result<()> {
    io::stderr().lock().write_all(sanitize::text(text).as_bytes())
}

/// Pretty JSON whose strings also escape what a terminal would obey: C1
/// controls and bidi overrides (serde_json escapes C0 controls already).
struct SafeJson<F>(F);

impl<F: Formatter> Formatter for SafeJson<F> {
    fn write_string_fragment<W: ?Sized + Write>(&mut self, w: &mut W, fragment: &str) -> io::Result<()> {
        let mut start = 0;
        for (i, c) in fragment.char_indices() {
            if sanitize::is_unsafe(c) {
                w.write_all(&fragment.as_bytes()[start..i])?;
                write!(w, "\\u{:04x}", c as u32)?;
                start = i + c.len_utf8();
            }
        }
        w.write_all(&fragment.as_bytes()[start..])
    }
    fn begin_array<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.begin_array(w)
    }
    fn end_array<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_array(w)
    }
    fn begin_array_value<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        self.0.begin_array_value(w, first)
    }
    fn end_array_value<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_array_value(w)
    }
    fn begin_object<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.begin_object(w)
    }
    fn end_object<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_object(w)
    }
    fn begin_object_key<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        self.0.begin_object_key(w, first)
    }
    fn begin_object_value<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.begin_object_value(w)
    }
    fn end_object_value<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_object_value(w)
    }
}

/// A value as pretty JSON text (terminal-safe escapes, see [`json`]).
pub fn json_text<T: Serialize + ?Sized>(value: &T) -> io::Result<String> {
    let mut buf = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, SafeJson(PrettyFormatter::new()));
    value.serialize(&mut ser).map_err(io::Error::other)?;
    String::from_utf8(buf).map_err(io::Error::other)
}

/// Writes a value as compact JSON (one line; terminal-safe escapes).
pub fn json_compact_to<W: Write, T: Serialize + ?Sized>(w: &mut W, value: &T) -> io::Result<()> {
    let mut ser = serde_json::Serializer::with_formatter(w, SafeJson(serde_json::ser::CompactFormatter));
    value.serialize(&mut ser).map_err(io::Error::other)
}

/// Prints a value as pretty JSON on stdout.
pub fn json<T: Serialize + ?Sized>(value: &T) -> io::Result<()> {
    let text = json_text(value)?;
    let mut out = io::stdout().lock();
    out.write_all(text.as_bytes())?;
    writeln!(out)
}

/// A table with aligned columns; the last column is not padded.
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(header: &[&str]) -> Self {
        Table {
            header: header.iter().map(|h| h.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row; each cell is one line, sanitized.
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows
            .push(cells.into_iter().map(|c| sanitize::line(&c).into_owned()).collect());
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    pub fn print(&self) -> io::Result<()> {
        let mut widths: Vec<usize> = self.header.iter().map(|h| display_width(h)).collect();
        for r in &self.rows {
            for (i, c) in r.iter().enumerate() {
                if let Some(w) = widths.get_mut(i) {
                    *w = (*w).max(display_width(c));
                }
            }
        }
        let mut out = io::stdout().lock();
        for r in std::iter::once(&self.header).chain(&self.rows) {
            let last = r.len().saturating_sub(1);
            let mut line = String::new();
            for (i, c) in r.iter().enumerate() {
                line.push_str(c);
                if i < last {
                    let pad = widths[i] - display_width(c) + 2;
                    line.extend(std::iter::repeat_n(' ', pad));
                }
            }
            writeln!(out, "{}", line.trim_end())?;
        }
        Ok(())
    }
}

/// Terminal columns a cell takes.
fn display_width(s: &str) -> usize {
    unicode_width::UnicodeWidthStr::width(s)
}

/// `a, b, c` or `-` when empty.
pub fn list<I: IntoIterator<Item = S>, S: AsRef<str>>(items: I) -> String {
    let v: Vec<String> = items.into_iter().map(|s| s.as_ref().to_string()).collect();
    if v.is_empty() { "-".to_string() } else { v.join(", ") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_stays_json_with_terminal_controls_escaped() {
        let v = serde_json::json!({"name": "a\u{1b}]0;pwned\u{7}b\u{9b}2J\u{202e}c"});
        let text = json_text(&v).unwrap();
        assert!(!text.contains(|c| c != '\n' && sanitize::is_unsafe(c)), "{text}");
        assert!(
            text.contains("\\u001b") && text.contains("\\u009b") && text.contains("\\u202e"),
            "{text}"
        );
        let back: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back, v);
    }
}
