//! Queues: per authority the depth (pending and in back-off), items being
//! sent, trash, the oldest item's age, throughput, and whether it is paused
//! (by an admin, or unreachable, with the reason). Pause and resume (y/n)
//! and "drain now" (a sync job with progress and cancel, in the job list
//! too) act on the selected authority; Enter opens its waiting items
//! ([`super::queue_items`]). Live: reloaded when the queue folders change.
//! Ages count from the console's clock.

use super::queue_items::QueueItemsPane;
use super::{Ctx, Level, RenderCtx, View, ViewId, Watch};
use crate::engine::api::JobKind;
use crate::engine::sync::QueueStatus;
use crate::tui::action::Action;
use crate::tui::overlay::{Answer, Ask, Tag};
use crate::tui::request::{Call, Data};
use crate::tui::table::{self, Cell, Column, Note, Row, TableSpec, TableState};
use crate::tui::theme::Slot;
use crate::tui::widgets::{age, kv, num, panel, safe};
use chrono::{DateTime, Utc};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};

const COLUMNS: [Column; 12] = [
    Column::fill("authority", 1, 16).max(24),
    Column::fixed("kind", 8),
    Column::fixed("state", 11),
    Column::fixed("depth", 9).right(),
    Column::fixed("retry", 6).right(),
    Column::fixed("trash", 6).right(),
    Column::fixed("oldest", 7),
    Column::fixed("sending", 8).right(),
    Column::fixed("sent", 9).right(),
    Column::fixed("rate", 8).right(),
    Column::fixed("last sent", 9),
    Column::fixed("journal lag", 11).right(),
];

#[derive(Default)]
pub struct Queues {
    pub rows: Vec<QueueStatus>,
    pub loaded: bool,
    pub error: Option<String>,
    pub table: TableState,
    pub filter: String,
    /// Enter: the selected authority's waiting items.
    pub items: Option<QueueItemsPane>,
}

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
        self.visible().get(self.table.selected).map(|q| q.authority.clone())
    }

    fn row(q: &QueueStatus, now: DateTime<Utc>) -> Row {
        let (state, slot) = state_label(q);
        Row::new(
            q.authority.clone(),
            vec![
                Cell::new(&q.authority),
                Cell::new(q.kind),
                Cell::styled(state, slot),
                Cell::new(num(q.depth)),
                Cell::new(num(q.retrying)),
                if q.trash > 0 {
                    Cell::styled(num(q.trash), Slot::Warn)
                } else {
                    Cell::new(num(q.trash))
                },
                Cell::new(ago(now, q.oldest_item_at)),
                Cell::new(num(q.claimed)),
                Cell::new(num(q.sent_total)),
                Cell::new(q.last_rate.map(|r| format!("{r:.0}/s")).unwrap_or_else(|| "-".into())),
                Cell::new(ago(now, q.last_sent_at)),
                Cell::new(num(q.journal_lag)),
            ],
        )
    }
}

impl View for Queues {
    fn id(&self) -> ViewId {
        ViewId::Queues
    }

    fn load(&mut self, ctx: &mut Ctx) {
        ctx.ask(ViewId::Queues, Call::QueueList);
        if let Some(items) = &self.items {
            items.load(ctx);
        }
    }

    fn ready(&self) -> bool {
        self.loaded
    }

    fn watches(&self) -> Watch {
        Watch {
            queues: true,
            state: true,
            directory: true,
            ..Watch::NONE
        }
    }

    fn on_action(&mut self, action: Action, ctx: &mut Ctx) -> bool {
        if let Some(items) = &mut self.items {
            if items.on_action(action, ctx) {
                return true;
            }
            if action == Action::Back {
                if !items.filter.is_empty() {
                    // Esc clears the items' filter first (the console does).
                    return false;
                }
                self.items = None;
                return true;
            }
            if matches!(action, Action::Pause | Action::Resume | Action::Drain) {
                ctx.status(Level::Info, "Esc goes back to the authorities first");
                return true;
            }
            return false;
        }
        let n = self.visible().len();
        if self.table.navigate(action, n) {
            return true;
        }
        match action {
            Action::Open => match self.selected_name() {
                Some(name) => {
                    let pane = QueueItemsPane::new(name);
                    pane.load(ctx);
                    self.items = Some(pane);
                }
                None => ctx.status(Level::Warn, "no authority selected"),
            },
            Action::RetryNow | Action::ToTrash | Action::Afresh => {
                ctx.status(Level::Info, "Enter opens the authority's items first")
            }
            Action::Describe => {
                if let Some(q) = self.visible().get(self.table.selected) {
                    let row = Self::row(q, ctx.clock.now());
                    let mut fields = table::describe(&COLUMNS, &row);
                    if let Some(p) = &q.paused {
                        fields.push((
                            "paused since".into(),
                            p.since.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
                        ));
                        fields.push(("paused by".into(), p.held_by.clone().unwrap_or_else(|| "-".into())));
                        fields.push(("reason".into(), p.reason.clone()));
                    }
                    ctx.describe(format!("Authority {}", q.authority), fields);
                }
            }
            Action::Pause | Action::Resume | Action::Drain => {
                let Some(name) = self.selected_name() else {
                    ctx.status(Level::Warn, "no authority selected");
                    return true;
                };
                let paused = self.visible()[self.table.selected].paused.clone();
                match action {
                    Action::Pause => ctx.confirm(
                        Action::Pause,
                        Ask {
                            owner: ViewId::Queues,
                            tag: Tag::PauseAuthority {
                                authority: name.clone(),
                            },
                            title: "Pause authority".into(),
                            lines: vec![
                                format!("Pause {name}? Nothing is sent to it until it is resumed;"),
                                "changes keep queueing meanwhile.".into(),
                            ],
                            word: name,
                            escalate: false,
                        },
                    ),
                    Action::Resume if paused.is_none() => ctx.status(Level::Info, format!("{name} is not paused")),
                    Action::Resume => ctx.confirm(
                        Action::Resume,
                        Ask {
                            owner: ViewId::Queues,
                            tag: Tag::ResumeAuthority {
                                authority: name.clone(),
                            },
                            title: "Resume authority".into(),
                            lines: vec![
                                format!("Resume {name}? The next sync sends its queue."),
                                format!("Paused: {}", paused.map(|p| p.reason).unwrap_or_default()),
                            ],
                            word: name,
                            escalate: false,
                        },
                    ),
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

    fn on_reply(&mut self, call: Call, result: Result<Data, String>, ctx: &mut Ctx) {
        if let Some(items) = &mut self.items
            && items.on_reply(&call, &result, ctx)
        {
            return;
        }
        match result {
            Ok(Data::Queues(rows)) => {
                self.rows = rows;
                self.loaded = true;
                self.error = None;
                let keys: Vec<String> = self.visible().iter().map(|q| q.authority.clone()).collect();
                self.table.follow(keys.iter().map(String::as_str));
            }
            Ok(Data::Done(msg)) => ctx.status(Level::Ok, msg),
            Ok(Data::JobStarted(info)) => ctx.status(
                Level::Info,
                format!("started: {} ({} lists jobs)", info.label, ViewId::Jobs.key()),
            ),
            Ok(_) => {}
            Err(e) => {
                if matches!(call, Call::QueueList) {
                    self.error = Some(e);
                }
            }
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
            (tag, answer) => {
                if let Some(items) = &mut self.items {
                    items.on_answer(tag, answer, ctx);
                }
            }
        }
    }

    fn click(&mut self, x: u16, y: u16, _ctx: &mut Ctx) -> bool {
        match &mut self.items {
            Some(items) => items.click(x, y),
            None => self.table.click(x, y, self.visible().len()) == Some(true),
        }
    }

    fn filter(&self) -> &str {
        match &self.items {
            Some(items) => &items.filter,
            None => &self.filter,
        }
    }

    fn set_filter(&mut self, text: String, _ctx: &mut Ctx) {
        match &mut self.items {
            Some(items) => {
                items.filter = text;
                items.table.reset();
            }
            None => {
                self.filter = text;
                self.table.reset();
            }
        }
    }

    fn render(&mut self, frame: &mut Frame, area: Rect, rc: &RenderCtx) {
        if let Some(items) = &mut self.items {
            items.render(frame, area, rc);
            return;
        }
        let t = rc.theme;
        let now = rc.clock.now();
        let mut state = std::mem::take(&mut self.table);
        let visible = self.visible();
        let table_h = (visible.len() as u16 + 4).clamp(5, area.height.saturating_sub(8).max(5));
        let [top, bottom] = Layout::vertical([Constraint::Length(table_h), Constraint::Min(3)]).areas(area);
        let mut title = format!(
            "Queues · {}",
            crate::tui::widgets::plural(visible.len() as u64, "authority", "authorities")
        );
        super::push_filter(&mut title, &self.filter);
        let len = visible.len();
        let spec = TableSpec {
            title,
            columns: &COLUMNS,
            len,
            note: Note::of(
                self.error.as_deref(),
                self.loaded,
                len,
                if self.rows.is_empty() {
                    "no authorities configured: add [authorities.NAME] to the config"
                } else {
                    "no authority matches"
                },
            ),
            hint: Some("Enter: its items"),
            focused: true,
        };
        table::render(
            &mut state,
            spec,
            &mut |i| visible.get(i).map(|q| Self::row(q, now)),
            frame,
            top,
            t,
        );
        let q = visible.get(state.selected).map(|q| (*q).clone());
        drop(visible);
        self.table = state;
        let Some(q) = q else {
            frame.render_widget(Paragraph::new("").block(panel("Authority", t)), bottom);
            return;
        };
        let q = &q;
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
                Span::styled(safe(&p.reason), t.get(Slot::Warn)),
            ]));
        }
        lines.push(kv(
            "waiting",
            format!(
                "{} pending · {} in back-off · {} being sent · {} in trash (Enter lists them; {} opens the trash)",
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
            let status = match job.state.detail() {
                None => format!("{}: {} done", job.state.word(), num(job.done)),
                Some(d) => format!("{}: {d}", job.state.word()),
            };
            lines.push(Line::from(vec![
                Span::styled(format!("{:<14}", "drain job"), t.get(Slot::Dim)),
                Span::styled(
                    safe(&status),
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
