//! Log: the tail of rollcall's own log (`logs/rollcall.log*`), filtered by
//! minimum level and `/` text, following new lines once a second.

use super::{Ctx, RenderCtx, View, ViewId};
use crate::engine::browse::{LogLevel, LogTail};
use crate::tui::action::Action;
use crate::tui::request::{Call, Data};
use crate::tui::theme::Slot;
use crate::tui::widgets::panel;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

/// Lines fetched from the end of the log.
pub const TAIL_LINES: usize = 2000;
/// Ticks between refreshes while following.
const FOLLOW_TICKS: u32 = 2;

pub struct Log {
    tail: LogTail,
    loaded: bool,
    error: Option<String>,
    min: Option<LogLevel>,
    filter: String,
    follow: bool,
    /// Lines scrolled up from the end.
    back: usize,
    height: usize,
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
            back: 0,
            height: 10,
            ticks: 0,
            inflight: false,
        }
    }
}

impl Log {
    fn visible(&self) -> Vec<(Option<LogLevel>, &str)> {
        let f = self.filter.to_lowercase();
        let mut last = None;
        let mut out = Vec::new();
        for l in &self.tail.lines {
            // Continuation lines take their entry's level.
            let level = l.level.or(last);
            last = level;
            if let Some(min) = self.min
                && level.is_none_or(|lv| lv < min)
            {
                continue;
            }
            if !f.is_empty() && !l.text.to_lowercase().contains(&f) {
                continue;
            }
            out.push((level, l.text.as_str()));
        }
        out
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

    fn on_action(&mut self, action: Action, ctx: &mut Ctx) -> bool {
        let page = self.height.max(1);
        let n = self.visible().len();
        match action {
            Action::Up => self.back = (self.back + 1).min(n.saturating_sub(1)),
            Action::Down => self.back = self.back.saturating_sub(1),
            Action::PageUp => self.back = (self.back + page).min(n.saturating_sub(1)),
            Action::PageDown => self.back = self.back.saturating_sub(page),
            Action::Top => self.back = n.saturating_sub(page),
            Action::Bottom => self.back = 0,
            Action::LevelNext => {
                self.min = match self.min {
                    None => Some(LogLevel::Info),
                    Some(LogLevel::Trace | LogLevel::Debug | LogLevel::Info) => Some(LogLevel::Warn),
                    Some(LogLevel::Warn) => Some(LogLevel::Error),
                    Some(LogLevel::Error) => None,
                };
                self.back = 0;
            }
            Action::Follow => {
                self.follow = !self.follow;
                if self.follow {
                    self.back = 0;
                    self.load(ctx);
                }
            }
            _ => return false,
        }
        if self.back > 0 {
            self.follow = false;
        }
        true
    }

    fn on_reply(&mut self, _call: &'static str, result: Result<Data, String>, _ctx: &mut Ctx) {
        self.inflight = false;
        match result {
            Ok(Data::LogTail(t)) => {
                self.tail = t;
                self.loaded = true;
                self.error = None;
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

    fn filter(&self) -> &str {
        &self.filter
    }

    fn set_filter(&mut self, text: String, _ctx: &mut Ctx) {
        self.filter = text;
        self.back = 0;
    }

    fn render(&mut self, frame: &mut Frame, area: Rect, rc: &RenderCtx) {
        let t = rc.theme;
        let height = area.height.saturating_sub(2) as usize;
        self.height = height;
        let lines = self.visible();
        let end = lines.len().saturating_sub(self.back);
        let start = end.saturating_sub(height);
        let body: Vec<Line> = lines[start..end]
            .iter()
            .map(|(level, text)| {
                let slot = match level {
                    Some(LogLevel::Error) => Slot::Error,
                    Some(LogLevel::Warn) => Slot::Warn,
                    Some(LogLevel::Debug | LogLevel::Trace) => Slot::Dim,
                    _ => Slot::Base,
                };
                Line::from(Span::styled(text.to_string(), t.get(slot)))
            })
            .collect();
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
        let body = if body.is_empty() {
            let msg = self.error.clone().unwrap_or_else(|| {
                if self.loaded {
                    "no lines match".into()
                } else {
                    "loading…".into()
                }
            });
            vec![Line::from(Span::styled(msg, t.get(Slot::Dim)))]
        } else {
            body
        };
        frame.render_widget(Paragraph::new(body).block(panel(title, t)), area);
    }
}
