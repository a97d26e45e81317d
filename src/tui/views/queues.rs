//! Queues: per authority the depth (pending and in back-off), items being
//! sent, trash, the oldest item's age, throughput, and whether it is paused
//! (by an admin, or unreachable, with the reason). Pause and resume (y/n)
//! and "drain now" (a sync job with progress and cancel, in the job list
//! too) act on the selected authority. Ages count from the console's clock.

use super::{Ctx, Level, RenderCtx, View, ViewId};
use crate::engine::api::JobKind;
use crate::engine::sync::QueueStatus;
use crate::tui::action::Action;
use crate::tui::overlay::{self, Answer, Tag};
use crate::tui::request::{Call, Data};
use crate::tui::theme::Slot;
use crate::tui::widgets::{age, kv, num, panel};
use chrono::{DateTime, Utc};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Paragraph, Row, Table, Wrap};

#[derive(Default)]
pub struct Queues {
    pub rows: Vec<QueueStatus>,
    pub loaded: bool,
    pub error: Option<String>,
    pub selected: usize,
    pub filter: String,
    ticks: u32,
}

/// Ticks (half a second each) between reloads while the view is shown.
const RELOAD_TICKS: u32 = 3;

/// `paused by admin`, `unreachable`, `inactive` or `active`.
pub fn state_label(q: &QueueStatus) -> (&'static str, Slot) {
    match &q.paused {
        Some(p) if p.held_by.is_some() => ("paused", Slot::Warn),
        Some(_) => ("unreachable", Slot::Error),
        None if !q.active => ("inactive", Slot::Dim),
        None => ("active", Slot::Ok),
    }
}

/// Age of a moment, or `-`.
pub fn ago(now: DateTime<Utc>, t: Option<DateTime<Utc>>) -> String {
    t.map(|t| age(now, t)).unwrap_or_else(|| "-".into())
}

impl Queues {
    pub fn visible(&self) -> Vec<&QueueStatus> {
        let f = self.filter.to_lowercase();
        self.rows
            .iter()
            .filter(|q| {
                f.is_empty() || q.authority.contains(&f) || q.kind.contains(&f) || state_label(q).0.contains(&f)
            })
            .collect()
    }

    fn selected_name(&self) -> Option<String> {
        self.visible().get(self.selected).map(|q| q.authority.clone())
    }
}

impl View for Queues {
    fn id(&self) -> ViewId {
        ViewId::Queues
    }

    fn load(&mut self, ctx: &mut Ctx) {
        ctx.ask(ViewId::Queues, Call::QueueList);
    }

    fn on_action(&mut self, action: Action, ctx: &mut Ctx) -> bool {
        let n = self.visible().len();
        match action {
            Action::Up => self.selected = self.selected.saturating_sub(1),
            Action::Down => self.selected = (self.selected + 1).min(n.saturating_sub(1)),
            Action::PageUp | Action::Top => self.selected = 0,
            Action::PageDown | Action::Bottom => self.selected = n.saturating_sub(1),
            Action::Pause | Action::Resume | Action::Drain => {
                let Some(name) = self.selected_name() else {
                    ctx.status(Level::Warn, "no authority selected");
                    return true;
                };
                let paused = self.visible()[self.selected].paused.clone();
                match action {
                    Action::Pause => ctx.overlay(overlay::yes_no(
                        ViewId::Queues,
                        Tag::PauseAuthority {
                            authority: name.clone(),
                        },
                        "Pause authority",
                        vec![
                            format!("Pause {name}? Nothing is sent to it until it is resumed;"),
                            "changes keep queueing meanwhile.".into(),
                        ],
                    )),
                    Action::Resume if paused.is_none() => ctx.status(Level::Info, format!("{name} is not paused")),
                    Action::Resume => ctx.overlay(overlay::yes_no(
                        ViewId::Queues,
                        Tag::ResumeAuthority {
                            authority: name.clone(),
                        },
                        "Resume authority",
                        vec![
                            format!("Resume {name}? The next sync sends its queue."),
                            format!("Paused: {}", paused.map(|p| p.reason).unwrap_or_default()),
                        ],
                    )),
                    _ => {
                        ctx.status(Level::Info, format!("drain {name}: starting a sync job…"));
                        ctx.ask(ViewId::Queues, Call::StartDrain(name));
                    }
                }
            }
            _ => return false,
        }
        true
    }

    fn on_reply(&mut self, _call: &'static str, result: Result<Data, String>, ctx: &mut Ctx) {
        match result {
            Ok(Data::Queues(rows)) => {
                self.rows = rows;
                self.loaded = true;
                self.error = None;
                self.selected = self.selected.min(self.visible().len().saturating_sub(1));
            }
            Ok(Data::Done(msg)) => ctx.status(Level::Ok, msg),
            Ok(Data::JobStarted(info)) => ctx.status(
                Level::Info,
                format!("started: {} ({} lists jobs)", info.label, ViewId::Jobs.key()),
            ),
            Ok(_) => {}
            Err(e) => self.error = Some(e),
        }
    }

    fn on_answer(&mut self, tag: Tag, answer: Answer, ctx: &mut Ctx) {
        match (tag, answer) {
            (Tag::PauseAuthority { authority }, Answer::Yes) => {
                ctx.ask(ViewId::Queues, Call::PauseAuthority(authority))
            }
            (Tag::ResumeAuthority { authority }, Answer::Yes) => {
                ctx.ask(ViewId::Queues, Call::ResumeAuthority(authority))
            }
            _ => {}
        }
    }

    fn on_tick(&mut self, ctx: &mut Ctx) {
        // Queues move without the console doing anything (a daemon sends).
        self.ticks += 1;
        if self.loaded && self.ticks.is_multiple_of(RELOAD_TICKS) {
            ctx.ask(ViewId::Queues, Call::QueueList);
        }
    }

    fn filter(&self) -> &str {
        &self.filter
    }

    fn set_filter(&mut self, text: String, _ctx: &mut Ctx) {
        self.filter = text;
        self.selected = 0;
    }

    fn render(&mut self, frame: &mut Frame, area: Rect, rc: &RenderCtx) {
        let t = rc.theme;
        let now = rc.clock.now();
        let wide = area.width >= 120;
        let visible = self.visible();
        let table_h = (visible.len() as u16 + 4).clamp(5, area.height.saturating_sub(8).max(5));
        let [top, bottom] = Layout::vertical([Constraint::Length(table_h), Constraint::Min(3)]).areas(area);
        let mut rows = Vec::new();
        for (i, q) in visible.iter().enumerate() {
            let (state, slot) = state_label(q);
            let mut cells = vec![
                Cell::from(q.authority.clone()),
                Cell::from(q.kind),
                Cell::from(Span::styled(state, t.get(slot))),
                Cell::from(num(q.depth)),
                Cell::from(num(q.retrying)),
                Cell::from(Span::styled(
                    num(q.trash),
                    if q.trash > 0 {
                        t.get(Slot::Warn)
                    } else {
                        t.get(Slot::Base)
                    },
                )),
                Cell::from(ago(now, q.oldest_item_at)),
            ];
            if wide {
                cells.push(Cell::from(num(q.claimed)));
                cells.push(Cell::from(num(q.sent_total)));
                cells.push(Cell::from(
                    q.last_rate.map(|r| format!("{r:.0}/s")).unwrap_or_else(|| "-".into()),
                ));
                cells.push(Cell::from(ago(now, q.last_sent_at)));
                cells.push(Cell::from(num(q.journal_lag)));
            }
            let style = if i == self.selected {
                t.get(Slot::Selected)
            } else {
                t.get(Slot::Base)
            };
            rows.push(Row::new(cells).style(style));
        }
        let mut header = vec!["authority", "kind", "state", "depth", "retry", "trash", "oldest"];
        let mut widths = vec![
            Constraint::Length(18),
            Constraint::Length(8),
            Constraint::Length(11),
            Constraint::Length(9),
            Constraint::Length(6),
            Constraint::Length(6),
            if wide {
                Constraint::Length(7)
            } else {
                Constraint::Fill(1)
            },
        ];
        if wide {
            header.extend(["sending", "sent", "rate", "last sent", "journal lag"]);
            widths.extend([
                Constraint::Length(8),
                Constraint::Length(9),
                Constraint::Length(8),
                Constraint::Length(10),
                Constraint::Fill(1),
            ]);
        }
        let mut title = format!("Queues · {} authorities", visible.len());
        super::push_filter(&mut title, &self.filter);
        let mut block = panel(title, t);
        if let Some(note) = super::table_note(
            self.error.as_deref(),
            !self.loaded,
            self.rows
                .is_empty()
                .then_some("no authorities configured: add [authorities.NAME] to the config"),
            area.width,
            t,
        ) {
            block = block.title_bottom(note);
        }
        frame.render_widget(
            Table::new(rows, widths)
                .header(Row::new(header).style(t.get(Slot::Header)))
                .block(block),
            top,
        );

        let Some(q) = visible.get(self.selected) else {
            frame.render_widget(Paragraph::new("").block(panel("Authority", t)), bottom);
            return;
        };
        let mut lines = Vec::new();
        let (state, slot) = state_label(q);
        lines.push(Line::from(vec![
            Span::styled(format!("{:<14}", "state"), t.get(Slot::Dim)),
            Span::styled(state, t.get(slot)),
        ]));
        if let Some(p) = &q.paused {
            lines.push(kv(
                "paused since",
                format!(
                    "{} ({} ago)",
                    p.since.format("%Y-%m-%d %H:%M:%S UTC"),
                    age(now, p.since)
                ),
                t,
            ));
            match &p.held_by {
                Some(by) => lines.push(kv(
                    "paused by",
                    format!("{by}{}", if rc.info.read_only { "" } else { ": u resumes" }),
                    t,
                )),
                None => lines.push(kv(
                    "next probe",
                    format!(
                        "after {} failed probe(s){}",
                        p.probe_failures,
                        if rc.info.read_only { "" } else { "; n probes now" }
                    ),
                    t,
                )),
            }
            lines.push(Line::from(vec![
                Span::styled(format!("{:<14}", "reason"), t.get(Slot::Dim)),
                Span::styled(p.reason.clone(), t.get(Slot::Warn)),
            ]));
        }
        lines.push(kv(
            "waiting",
            format!(
                "{} pending · {} in back-off · {} being sent · {} in trash ({} opens it)",
                num(q.pending),
                num(q.retrying),
                num(q.claimed),
                num(q.trash),
                ViewId::Trash.key()
            ),
            t,
        ));
        lines.push(kv(
            "oldest item",
            match q.oldest_item_at {
                Some(at) => format!("{} ago", age(now, at)),
                None => "-".into(),
            },
            t,
        ));
        lines.push(kv(
            "throughput",
            format!(
                "{} sent in all · last round {} · last sent {}",
                num(q.sent_total),
                q.last_rate
                    .map(|r| format!("{r:.0} items/s"))
                    .unwrap_or_else(|| "-".into()),
                match q.last_sent_at {
                    Some(at) => format!("{} ago", age(now, at)),
                    None => "never".into(),
                }
            ),
            t,
        ));
        lines.push(kv(
            "journal lag",
            format!("{} entries to distribute", num(q.journal_lag)),
            t,
        ));
        for job in rc
            .jobs
            .rows
            .iter()
            .filter(|j| j.info.kind == JobKind::Sync && j.info.label.starts_with(&format!("sync {} ", q.authority)))
            .take(2)
        {
            let status = match &job.result {
                None => format!("running: {} done", num(job.done)),
                Some(Ok(s)) => s.clone(),
                Some(Err(e)) => format!("failed: {e}"),
            };
            lines.push(Line::from(vec![
                Span::styled(format!("{:<14}", "drain job"), t.get(Slot::Dim)),
                Span::styled(
                    status,
                    if job.running() {
                        t.get(Slot::Accent)
                    } else {
                        t.get(Slot::Base)
                    },
                ),
            ]));
        }
        frame.render_widget(
            Paragraph::new(lines)
                .wrap(Wrap { trim: false })
                .block(panel(format!("Authority {}", q.authority), t)),
            bottom,
        );
    }
}
