//! The item inspector (trash items, waiting queue items): a JSON document
//! (what was sent, what would be sent now, the queue file) as a tree with
//! syntax colours from the theme, a cursor that scrolls, objects and arrays
//! that fold. Only the lines on screen are turned into spans, every string
//! sanitized.

use crate::tui::theme::{Slot, Theme};
use crate::tui::widgets::{clip, safe, scroll_to};
use serde_json::Value;
use std::collections::BTreeSet;

/// One line of the tree.
#[derive(Clone, Debug, PartialEq)]
pub struct JLine {
    pub depth: usize,
    pub key: Option<String>,
    pub token: Token,
    pub comma: bool,
    /// The path of the object or array that opens (or is folded) here.
    pub fold: Option<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Token {
    Open(char),
    Close(char),
    /// A folded object or array: its brackets and how many entries.
    Folded(char, char, usize),
    Scalar(Slot, String),
}

pub struct Inspector {
    doc: Value,
    pub folded: BTreeSet<String>,
    pub lines: Vec<JLine>,
    pub cursor: usize,
    pub top: usize,
    pub height: usize,
}

fn scalar(v: &Value) -> Token {
    match v {
        Value::String(s) => Token::Scalar(Slot::JsonString, Value::String(s.clone()).to_string()),
        Value::Number(n) => Token::Scalar(Slot::JsonNumber, n.to_string()),
        other => Token::Scalar(Slot::JsonLiteral, other.to_string()),
    }
}

fn emit(
    v: &Value,
    key: Option<String>,
    path: &str,
    depth: usize,
    comma: bool,
    folded: &BTreeSet<String>,
    out: &mut Vec<JLine>,
) {
    let (open, close, children): (char, char, Vec<(Option<String>, &Value)>) = match v {
        Value::Object(m) if !m.is_empty() => ('{', '}', m.iter().map(|(k, v)| (Some(k.clone()), v)).collect()),
        Value::Array(a) if !a.is_empty() => ('[', ']', a.iter().map(|v| (None, v)).collect()),
        _ => {
            out.push(JLine {
                depth,
                key,
                token: scalar(v),
                comma,
                fold: None,
            });
            return;
        }
    };
    if folded.contains(path) {
        out.push(JLine {
            depth,
            key,
            token: Token::Folded(open, close, children.len()),
            comma,
            fold: Some(path.to_string()),
        });
        return;
    }
    out.push(JLine {
        depth,
        key,
        token: Token::Open(open),
        comma: false,
        fold: Some(path.to_string()),
    });
    let n = children.len();
    for (i, (k, child)) in children.into_iter().enumerate() {
        let child_path = match &k {
            Some(k) => format!("{path}.{k}"),
            None => format!("{path}[{i}]"),
        };
        emit(child, k, &child_path, depth + 1, i + 1 < n, folded, out);
    }
    out.push(JLine {
        depth,
        key: None,
        token: Token::Close(close),
        comma,
        fold: None,
    });
}

/// Every object or array path below the top level (what "fold all" folds).
fn nested_paths(v: &Value, path: &str, depth: usize, out: &mut BTreeSet<String>) {
    let children: Vec<(String, &Value)> = match v {
        Value::Object(m) => m.iter().map(|(k, v)| (format!("{path}.{k}"), v)).collect(),
        Value::Array(a) => a.iter().enumerate().map(|(i, v)| (format!("{path}[{i}]"), v)).collect(),
        _ => return,
    };
    if depth >= 2 && !children.is_empty() {
        out.insert(path.to_string());
    }
    for (p, c) in children {
        nested_paths(c, &p, depth + 1, out);
    }
}

impl Inspector {
    /// A tree over `doc` (its top-level keys in their order).
    pub fn new(doc: Value) -> Self {
        let mut i = Inspector {
            doc,
            folded: BTreeSet::new(),
            lines: Vec::new(),
            cursor: 0,
            top: 0,
            height: 10,
        };
        i.relayout();
        i
    }

    fn relayout(&mut self) {
        let mut lines = Vec::new();
        emit(&self.doc, None, "$", 0, false, &self.folded, &mut lines);
        self.lines = lines;
        self.cursor = self.cursor.min(self.lines.len().saturating_sub(1));
    }

    /// Folds or unfolds the object or array at the cursor (or the one the
    /// cursor is inside).
    pub fn toggle(&mut self) {
        let Some(path) = self.enclosing() else { return };
        if !self.folded.remove(&path) {
            self.folded.insert(path.clone());
        }
        self.relayout();
        if let Some(i) = self.lines.iter().position(|l| l.fold.as_deref() == Some(&path)) {
            self.cursor = i;
        }
    }

    fn enclosing(&self) -> Option<String> {
        let here = self.lines.get(self.cursor)?;
        if here.fold.is_some() && here.depth > 0 {
            return here.fold.clone();
        }
        // The nearest opener above with a smaller depth.
        let depth = here.depth;
        self.lines[..self.cursor]
            .iter()
            .rev()
            .find(|l| l.depth + 1 == depth && l.fold.is_some())
            .and_then(|l| l.fold.clone())
            .filter(|p| p != "$")
    }

    /// Folds every nested object, or unfolds everything when something is
    /// folded.
    pub fn toggle_all(&mut self) {
        if self.folded.is_empty() {
            nested_paths(&self.doc, "$", 0, &mut self.folded);
        } else {
            self.folded.clear();
        }
        self.relayout();
    }

    pub fn scroll(&mut self, delta: isize) {
        let last = self.lines.len().saturating_sub(1);
        self.cursor = self.cursor.saturating_add_signed(delta).min(last);
    }

    pub fn home(&mut self) {
        self.cursor = 0;
    }

    pub fn end(&mut self) {
        self.cursor = self.lines.len().saturating_sub(1);
    }

    /// The tree lines on screen, cursor highlighted.
    pub fn visible(&mut self, height: usize, width: usize, t: &Theme) -> Vec<ratatui::text::Line<'static>> {
        use ratatui::text::{Line, Span};
        self.height = height.max(1);
        self.top = scroll_to(self.top as u64, self.cursor as u64, self.height as u64) as usize;
        let mut out = Vec::with_capacity(self.height);
        for (i, l) in self.lines.iter().enumerate().skip(self.top).take(self.height) {
            let mut spans = Vec::new();
            let marker = match (&l.token, &l.fold) {
                (Token::Folded(..), Some(_)) => "▸ ",
                (Token::Open(_), Some(_)) => "▾ ",
                _ => "  ",
            };
            spans.push(Span::styled(
                format!("{}{marker}", "  ".repeat(l.depth)),
                t.get(Slot::Dim),
            ));
            if let Some(k) = &l.key {
                spans.push(Span::styled(
                    safe(&Value::String(k.clone()).to_string()),
                    t.get(Slot::JsonKey),
                ));
                spans.push(Span::styled(": ", t.get(Slot::Base)));
            }
            match &l.token {
                Token::Open(c) | Token::Close(c) => spans.push(Span::styled(c.to_string(), t.get(Slot::Base))),
                Token::Folded(o, c, n) => {
                    spans.push(Span::styled(format!("{o}…{c}"), t.get(Slot::Base)));
                    spans.push(Span::styled(
                        format!(" {n} {}", if *o == '{' { "keys" } else { "items" }),
                        t.get(Slot::Dim),
                    ));
                }
                Token::Scalar(slot, text) => {
                    let used: usize = spans.iter().map(|s| s.width()).sum();
                    spans.push(Span::styled(
                        clip(&safe(text), width.saturating_sub(used + 1).max(8)),
                        t.get(*slot),
                    ));
                }
            }
            if l.comma {
                spans.push(Span::styled(",", t.get(Slot::Base)));
            }
            let mut line = Line::from(spans);
            if i == self.cursor {
                line = line.style(t.get(Slot::Selected));
            }
            out.push(line);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(v: &Value, folded: &[&str]) -> Vec<JLine> {
        let folded = folded.iter().map(|s| s.to_string()).collect();
        let mut out = Vec::new();
        emit(v, None, "$", 0, false, &folded, &mut out);
        out
    }

    #[test]
    fn trees_fold_and_keep_commas() {
        let v = serde_json::json!({"a": 1, "b": {"c": [true, null]}, "d": "x"});
        let open = lines(&v, &[]);
        assert_eq!(open.len(), 10, "{open:#?}");
        assert_eq!(open[1].token, Token::Scalar(Slot::JsonNumber, "1".into()));
        assert!(open[1].comma);
        let folded = lines(&v, &["$.b"]);
        assert_eq!(folded.len(), 5);
        assert_eq!(folded[2].token, Token::Folded('{', '}', 1));
        assert!(folded[2].comma, "a folded member keeps its comma");
        assert_eq!(folded[3].token, Token::Scalar(Slot::JsonString, "\"x\"".into()));
        let mut all = BTreeSet::new();
        nested_paths(&v, "$", 0, &mut all);
        assert_eq!(all.into_iter().collect::<Vec<_>>(), vec!["$.b.c".to_string()]);
    }
}
