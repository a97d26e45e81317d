//! Text from data or from a server, made safe to show a human on a
//! terminal: the one sanitizer every human-facing output uses (the console
//! and the CLI's text output alike).
//!
//! A feed's names, a server's error body or a log line may carry bytes a
//! terminal obeys: ESC sequences (clear the screen, set the window title,
//! OSC 52 clipboard writes), C1 controls (`U+009B` is a CSI of its own), or
//! Unicode bidi overrides that make text read backwards. Such characters are
//! shown visibly instead — C0, DEL and C1 controls as `\x1b`, `\x9b`;
//! bidi controls and line separators as `⟨U+202E⟩` — so an admin sees what
//! the data holds and the terminal obeys none of it. Pure functions, no
//! terminal knowledge: machine output (JSON) is escaped by its own rules.

use std::borrow::Cow;
use std::fmt::Write;

/// Whether a character must never reach a terminal as it is (newline and
/// tab included: [`line`] shows them, [`text`] keeps them).
pub fn is_unsafe(c: char) -> bool {
    is_control(c) || is_invisible_format(c)
}

/// C0 controls, DEL and C1 controls.
fn is_control(c: char) -> bool {
    matches!(c, '\u{0}'..='\u{1f}' | '\u{7f}'..='\u{9f}')
}

/// Bidi embeddings, overrides, isolates and marks, and the Unicode line and
/// paragraph separators: invisible, but they change how the rest is shown.
fn is_invisible_format(c: char) -> bool {
    matches!(
        c,
        '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{2028}' | '\u{2029}'
    )
}

fn escape(out: &mut String, c: char) {
    if is_control(c) {
        let _ = write!(out, "\\x{:02x}", c as u32);
    } else {
        let _ = write!(out, "⟨U+{:04X}⟩", c as u32);
    }
}

fn sanitize(s: &str, keep: impl Fn(char) -> bool) -> Cow<'_, str> {
    let Some(first) = s.find(|c: char| is_unsafe(c) && !keep(c)) else {
        return Cow::Borrowed(s);
    };
    let mut out = String::with_capacity(s.len() + 16);
    out.push_str(&s[..first]);
    for c in s[first..].chars() {
        if is_unsafe(c) && !keep(c) {
            escape(&mut out, c);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// One line of text (a table cell, a name, an error message): every
/// control, newline and tab included, is shown escaped.
pub fn line(s: &str) -> Cow<'_, str> {
    sanitize(s, |_| false)
}

/// Text of several lines (a log, a feed, a command's output): newlines and
/// tabs stay, every other control is shown escaped (a lone `\r` too, which
/// would overwrite the line it ends).
pub fn text(s: &str) -> Cow<'_, str> {
    sanitize(s, |c| c == '\n' || c == '\t')
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What hostile feeds and servers send: an OSC 52 clipboard write, a
    /// screen clear, an OSC 0 title change, a C1 CSI, a bidi override.
    pub const HOSTILE: &str = "a\u{1b}]52;c;cHduZWQ=\u{7}b\u{1b}[2Jc\u{1b}]0;pwned\u{7}d\u{9b}31me\u{202e}f\r\n\tg";

    #[test]
    fn controls_and_bidi_are_shown_visibly() {
        assert_eq!(
            line(HOSTILE),
            "a\\x1b]52;c;cHduZWQ=\\x07b\\x1b[2Jc\\x1b]0;pwned\\x07d\\x9b31me⟨U+202E⟩f\\x0d\\x0a\\x09g"
        );
        assert_eq!(
            text(HOSTILE),
            "a\\x1b]52;c;cHduZWQ=\\x07b\\x1b[2Jc\\x1b]0;pwned\\x07d\\x9b31me⟨U+202E⟩f\\x0d\n\tg"
        );
        for s in [line(HOSTILE), text(HOSTILE)] {
            assert!(!s.contains(|c: char| is_unsafe(c) && c != '\n' && c != '\t'), "{s}");
        }
    }

    #[test]
    fn plain_text_is_borrowed_unchanged() {
        for s in ["Müller, Zoë", "gs-am-see", "日本語 ✓", "C:\\path", ""] {
            assert!(matches!(line(s), Cow::Borrowed(_)), "{s}");
            assert_eq!(line(s), s);
        }
        assert!(matches!(text("a\nb\tc"), Cow::Borrowed(_)));
        assert_eq!(line("\u{2066}x\u{2069}\u{200f}"), "⟨U+2066⟩x⟨U+2069⟩⟨U+200F⟩");
        assert_eq!(line("\u{7f}\u{85}"), "\\x7f\\x85");
    }
}
