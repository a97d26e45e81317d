//! Log: the tail of rollcall's own log (`logs/rollcall.log*`) as a table
//! (time, level, message), filtered by minimum level and `/` text,
//! following new lines once a second; `d` shows a line in full with the
//! lines that continue it, long messages scroll sideways or are cut with
//! `…`.

use super::{Ctx, RenderCtx, View, ViewId};
use crate::engine::browse::{LogLevel, LogTail};
use crate::tui::action::Action;
use crate::tui::request::{Call, Data};
use crate::tui::table::{self, Cell, Column, Note, Row, TableSpec, TableState};
use crate::tui::theme::Slot;
use ratatui::Frame;
use ratatui::layout::Rect;

/// Lines fetched from the end of the log.
pub const TAIL_LINES: usize = 2000;
/// Ticks between refreshes while following.
const FOLLOW_TICKS: u32 = 2;

const COLUMNS: [Column; 3] = [
    Column::fixed("time", 8),
    Column::fixed("level", 5),
    Column::fill("message", 1, 20),
];

pub struct Log {
    tail: LogTail,
    loaded: bool,
    error: Option<String>,
    min: Option<LogLevel>,
    filter: String,
    /// The cursor stays on the last line as lines come in.
    follow: bool,
    table: TableState,
    ticks: u32,
    inflight: bool,
}

impl Default for Log {
    fn default() -> Self {
        Log {
            tail: LogTail::default(),
            loaded: false,
            error: None,
            min: None,
            filter: String::new(),
            follow: true,
            table: TableState::default(),
            ticks: 0,
            inflight: false,
        }
    }
}

/// One entry: its level, its first line and the lines continuing it.
struct Entry<'a> {
    index: usize,
    level: Option<LogLevel>,
    text: &'a str,
    more: Vec<&'a str>,
}

/// `2025-03-03T08:00:01.000000Z  INFO target: message` → time, message.
fn split(text: &str) -> (&str, &str) {
    let stamp = text.split_whitespace().next().unwrap_or("");
    if stamp.len() >= 19 && stamp.as_bytes().get(10) == Some(&b'T') {
        let rest = text[stamp.len()..].trim_start();
        let rest = rest
            .split_once(char::is_whitespace)
            .map(|(_, m)| m.trim_start())
            .unwrap_or(rest);
        (&stamp[11..19], rest)
    } else {
        ("", text)
    }
}

impl Log {
    fn entries(&self) -> Vec<Entry<'_>> {
        let f = self.filter.to_lowercase();
        let mut out: Vec<Entry> = Vec::new();
        for (i, l) in self.tail.lines.iter().enumerate() {
            if l.level.is_none()
                && let Some(last) = out.last_mut()
                && last.index + last.more.len() + 1 == i
            {
                last.more.push(&l.text);
                continue;
            }
            out.push(Entry {
                index: i,
                level: l.level,
                text: &l.text,
                more: Vec::new(),
            });
        }
        out.retain(|e| {
            self.min.is_none_or(|min| e.level.is_some_and(|lv| lv >= min))
                && (f.is_empty()
                    || e.text.to_lowercase().contains(&f)
                    || e.more.iter().any(|m| m.to_lowercase().contains(&f)))
        });
        out
    }

    fn row(e: &Entry) -> Row {
        let slot = match e.level {
            Some(LogLevel::Error) => Slot::Error,
            Some(LogLevel::Warn) => Slot::Warn,
            Some(LogLevel::Debug | LogLevel::Trace) => Slot::Dim,
            _ => Slot::Base,
        };
        let (time, message) = split(e.text);
        let mut message = message.to_string();
        if !e.more.is_empty() {
            message.push_str(&format!(" (+{} lines)", e.more.len()));
        }
        Row::new(
            e.index.to_string(),
            vec![
                Cell::new(time),
                Cell::new(e.level.map(|l| l.as_str()).unwrap_or("")),
                Cell::new(message),
            ],
        )
        .slot(slot)
    }
}

impl View for Log {
    fn id(&self) -> ViewId {
        ViewId::Log
    }

    fn load(&mut self, ctx: &mut Ctx) {
        if !self.inflight {
            self.inflight = true;
            ctx.ask(ViewId::Log, Call::LogTail(TAIL_LINES));
        }
    }

    fn ready(&self) -> bool {
        self.loaded
    }

    fn on_action(&mut self, action: Action, ctx: &mut Ctx) -> bool {
        let n = self.entries().len();
        if self.table.navigate(action, n) {
            match action {
                Action::Bottom => self.follow = true,
                Action::Left | Action::Right => {}
                _ => self.follow = self.table.selected + 1 >= n,
            }
            return true;
        }
        match action {
            Action::LevelNext => {
                self.min = match self.min {
                    None => Some(LogLevel::Info),
                    Some(LogLevel::Trace | LogLevel::Debug | LogLevel::Info) => Some(LogLevel::Warn),
                    Some(LogLevel::Warn) => Some(LogLevel::Error),
                    Some(LogLevel::Error) => None,
                };
                self.follow = true;
                self.table.selected = self.entries().len().saturating_sub(1);
            }
            Action::Follow => {
                self.follow = !self.follow;
                if self.follow {
                    self.table.selected = n.saturating_sub(1);
                    self.load(ctx);
                }
            }
            Action::Describe => {
                let entries = self.entries();
                if let Some(e) = entries.get(self.table.selected) {
                    let mut text = e.text.to_string();
                    for m in &e.more {
                        text.push('\n');
                        text.push_str(m);
                    }
                    let level = e.level.map(|l| l.as_str()).unwrap_or("-").to_string();
                    ctx.describe("Log entry", vec![("level".into(), level), ("line".into(), text)]);
                }
            }
            _ => return false,
        }
        true
    }

    fn on_reply(&mut self, _call: Call, result: Result<Data, String>, _ctx: &mut Ctx) {
        self.inflight = false;
        match result {
            Ok(Data::LogTail(t)) => {
                self.tail = t;
                self.loaded = true;
                self.error = None;
                let n = self.entries().len();
                if self.follow {
                    self.table.selected = n.saturating_sub(1);
                } else {
                    let keys: Vec<String> = self.entries().iter().map(|e| e.index.to_string()).collect();
                    self.table.follow(keys.iter().map(String::as_str));
                }
            }
            Ok(_) => {}
            Err(e) => self.error = Some(e),
        }
    }

    fn on_tick(&mut self, ctx: &mut Ctx) {
        self.ticks += 1;
        if self.follow && self.ticks.is_multiple_of(FOLLOW_TICKS) {
            self.load(ctx);
        }
    }

    fn click(&mut self, x: u16, y: u16, _ctx: &mut Ctx) -> bool {
        let n = self.entries().len();
        if self.table.click(x, y, n).is_some() {
            self.follow = self.table.selected + 1 >= n;
        }
        false
    }

    fn filter(&self) -> &str {
        &self.filter
    }

    fn set_filter(&mut self, text: String, _ctx: &mut Ctx) {
        self.filter = text;
        self.table.selected = self.entries().len().saturating_sub(1);
        self.follow = true;
    }

    fn render(&mut self, frame: &mut Frame, area: Rect, rc: &RenderCtx) {
        let mut state = std::mem::take(&mut self.table);
        let entries = self.entries();
        let level = self
            .min
            .map(|l| format!("≥ {}", l.as_str()))
            .unwrap_or_else(|| "all levels".into());
        let file = self
            .tail
            .file
            .as_deref()
            .and_then(|f| f.rsplit('/').next())
            .unwrap_or("no log yet");
        let mut title = format!(
            "Log · {file} · {level} · {}",
            if self.follow { "following" } else { "paused" }
        );
        super::push_filter(&mut title, &self.filter);
        let len = entries.len();
        let spec = TableSpec {
            title,
            columns: &COLUMNS,
            len,
            note: Note::of(self.error.as_deref(), self.loaded, len, "no lines match"),
            hint: Some("d shows a line in full"),
            focused: true,
        };
        table::render(
            &mut state,
            spec,
            &mut |i| entries.get(i).map(Log::row),
            frame,
            area,
            rc.theme,
        );
        drop(entries);
        self.table = state;
    }
}
