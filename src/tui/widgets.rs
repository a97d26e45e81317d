//! Small rendering helpers shared by views: number and date formatting,
//! panels, centred popups, text cut by display width, and the scrolling
//! arithmetic of virtualised tables. Text from data is sanitized by
//! [`safe`] before it becomes a span.

use super::theme::{Slot, Theme};
use chrono::{DateTime, NaiveDate, Utc};
use ratatui::layout::{Constraint, Flex, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Borders};

/// Text from data or a server, safe for the terminal (one line).
pub fn safe(s: &str) -> String {
    crate::model::sanitize::line(s).into_owned()
}

/// Terminal columns a text takes (wide characters count two).
pub fn text_width(s: &str) -> usize {
    unicode_width::UnicodeWidthStr::width(s)
}

/// `1 item`, `3 items`: a count (grouped digits) with its noun.
pub fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{} {}", num(n), if n == 1 { one } else { many })
}

/// `1234567` → `1,234,567`.
pub fn num(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Days from `today` to `day`: `in 12 d`, `today`, `3 d overdue`.
pub fn days_left(today: NaiveDate, day: NaiveDate) -> String {
    let d = (day - today).num_days();
    match d {
        0 => "today".into(),
        d if d > 0 => format!("in {d} d"),
        d => format!("{} d overdue", -d),
    }
}

/// A compact age: `42s`, `5m`, `3h`, `12d`.
pub fn age(now: DateTime<Utc>, then: DateTime<Utc>) -> String {
    let s = (now - then).num_seconds().max(0);
    match s {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m", s / 60),
        s if s < 86_400 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}

/// Seconds as `1m05s` / `12.3s`.
pub fn duration(secs: f64) -> String {
    if secs < 60.0 {
        format!("{secs:.1}s")
    } else {
        let s = secs.round() as u64;
        if s < 3600 {
            format!("{}m{:02}s", s / 60, s % 60)
        } else {
            format!("{}h{:02}m", s / 3600, (s % 3600) / 60)
        }
    }
}

/// A bordered panel with a themed title.
pub fn panel<'a>(title: impl Into<String>, theme: &Theme) -> Block<'a> {
    Block::default()
        .borders(Borders::ALL)
        .border_type(BorderType::Rounded)
        .border_style(theme.get(Slot::Border))
        .title(Span::styled(
            format!(" {} ", safe(&title.into())),
            theme.get(Slot::Title),
        ))
}

/// A rectangle of at most `w`×`h` centred in `area`.
pub fn centered(area: Rect, w: u16, h: u16) -> Rect {
    let [v] = Layout::vertical([Constraint::Length(h.min(area.height))])
        .flex(Flex::Center)
        .areas(area);
    let [c] = Layout::horizontal([Constraint::Length(w.min(area.width))])
        .flex(Flex::Center)
        .areas(v);
    c
}

/// Keeps `selected` within `[top, top + height)`; returns the new top.
pub fn scroll_to(top: u64, selected: u64, height: u64) -> u64 {
    if height == 0 {
        return selected;
    }
    if selected < top {
        selected
    } else if selected >= top + height {
        selected + 1 - height
    } else {
        top
    }
}

/// Cuts `s` to `w` display columns, ending in `…` when it was cut.
pub fn clip(s: &str, w: usize) -> String {
    if text_width(s) <= w {
        return s.to_string();
    }
    if w == 0 {
        return String::new();
    }
    let mut out = String::new();
    let mut used = 0;
    for c in s.chars() {
        let cw = unicode_width::UnicodeWidthChar::width(c).unwrap_or(0);
        if used + cw > w - 1 {
            break;
        }
        used += cw;
        out.push(c);
    }
    out.push('…');
    out
}

/// `label value` as a line: the label padded (always at least one space
/// before the value), the value sanitized.
pub fn kv<'a>(label: &'a str, value: String, theme: &Theme) -> Line<'a> {
    Line::from(vec![
        Span::styled(format!("{label:<13} "), theme.get(Slot::Dim)),
        Span::styled(safe(&value), theme.get(Slot::Base)),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(num(1_234_567), "1,234,567");
        assert_eq!(num(12), "12");
        let d = NaiveDate::from_ymd_opt(2026, 1, 10).unwrap();
        assert_eq!(days_left(d, d), "today");
        assert_eq!(days_left(d, d + chrono::Days::new(3)), "in 3 d");
        assert_eq!(days_left(d + chrono::Days::new(2), d), "2 d overdue");
        assert_eq!(scroll_to(0, 30, 10), 21);
        assert_eq!(scroll_to(25, 20, 10), 20);
        assert_eq!(clip("abcdef", 4), "abc…");
        assert_eq!(clip("日本語", 4), "日…");
        assert_eq!(plural(1, "item", "items"), "1 item");
        let theme = Theme::default_theme();
        let line = kv("removed_school", "0".into(), &theme);
        let text: String = line.spans.iter().map(|s| s.content.as_ref()).collect();
        assert_eq!(text, "removed_school 0", "a label never runs into its value");
        assert_eq!(plural(2000, "user", "users"), "2,000 users");
        assert_eq!(duration(75.0), "1m15s");
    }
}
