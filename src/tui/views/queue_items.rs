//! One authority's waiting items (Enter on an authority in Queues): each
//! item's object and the user's username, why it was queued, attempts, when
//! it is tried next, the last error, and who is sending it right now;
//! filterable, `d` describes one in full, Enter opens the inspector (the
//! item file and what would be sent for it now). The actions: `r` retry now
//! (its back-off forgotten), `x` move to the trash (y/n), `a` schedule
//! afresh (y/n: attempts start over). The engine claims an item before it
//! acts on it and audits.

use super::inspector::Inspector;
use super::queues::ago;
use super::{Ctx, Level, RenderCtx, ViewId};
use crate::engine::sync::queue_items::{QueueItemDetail, QueueItemRow, QueueItems};
use crate::tui::action::Action;
use crate::tui::overlay::{Answer, Ask, Tag};
use crate::tui::request::{Call, Data};
use crate::tui::table::{self, Cell, Column, Note, Row, TableSpec, TableState};
use crate::tui::theme::Slot;
use crate::tui::widgets::{kv, num, panel, plural, safe};
use chrono::{DateTime, Utc};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};

const COLUMNS: [Column; 8] = [
    Column::fill("object", 2, 18),
    Column::fill("username", 1, 12),
    Column::fixed("state", 8),
    Column::fixed("reason", 10),
    Column::fixed("tries", 5).right(),
    Column::fixed("next try", 8),
    Column::fill("last error", 3, 16),
    Column::fixed("claimed by", 10),
];

/// `in 42s`, `due`, or `-`.
fn next_try(now: DateTime<Utc>, t: Option<DateTime<Utc>>) -> String {
    match t {
        Some(t) if t > now => format!("in {}", crate::tui::widgets::age(t, now)),
        Some(_) => "due".into(),
        None => "-".into(),
    }
}

fn reason(r: &QueueItemRow) -> String {
    serde_json::to_value(r.reason)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

pub struct QueueItemsPane {
    pub authority: String,
    pub items: Vec<QueueItemRow>,
    pub total: u64,
    pub loaded: bool,
    pub error: Option<String>,
    pub table: TableState,
    pub filter: String,
    /// The item being inspected, and its tree.
    pub inspector: Option<(QueueItemDetail, Inspector)>,
    opening: Option<String>,
}

impl QueueItemsPane {
    pub fn new(authority: String) -> Self {
        QueueItemsPane {
            authority,
            items: Vec::new(),
            total: 0,
            loaded: false,
            error: None,
            table: TableState::default(),
            filter: String::new(),
            inspector: None,
            opening: None,
        }
    }

    pub fn load(&self, ctx: &mut Ctx) {
        ctx.ask(ViewId::Queues, Call::QueueItems(self.authority.clone()));
    }

    pub fn visible(&self) -> Vec<&QueueItemRow> {
        let f = self.filter.to_lowercase();
        self.items
            .iter()
            .filter(|i| {
                f.is_empty()
                    || i.file.to_lowercase().contains(&f)
                    || i.object.to_lowercase().contains(&f)
                    || i.username.as_deref().is_some_and(|u| u.contains(&f))
                    || i.state.contains(&f)
                    || reason(i).contains(&f)
                    || i.last_error.as_deref().is_some_and(|e| e.to_lowercase().contains(&f))
            })
            .collect()
    }

    fn row(i: &QueueItemRow, now: DateTime<Utc>) -> Row {
        let state_slot = match i.state {
            "sending" => Slot::Accent,
            "retrying" => Slot::Warn,
            _ => Slot::Base,
        };
        Row::new(
            i.item.clone(),
            vec![
                Cell::new(&i.object),
                Cell::new(i.username.as_deref().unwrap_or("-")),
                Cell::styled(i.state, state_slot),
                Cell::new(reason(i)),
                Cell::new(num(u64::from(i.attempts))),
                Cell::new(next_try(now, i.next_retry)),
                match &i.last_error {
                    Some(e) => Cell::styled(e, Slot::Error),
                    None => Cell::new("-"),
                },
                Cell::new(i.claimed_by.as_deref().unwrap_or("-")),
            ],
        )
    }

    fn selected(&self) -> Option<&QueueItemRow> {
        match &self.inspector {
            Some((d, _)) => Some(&d.row),
            None => self.visible().get(self.table.selected).copied(),
        }
    }

    fn describe(&self, ctx: &mut Ctx) {
        let Some(i) = self.selected() else {
            ctx.status(Level::Warn, "no item selected");
            return;
        };
        let when = |t: Option<DateTime<Utc>>| {
            t.map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
                .unwrap_or_else(|| "-".into())
        };
        ctx.describe(
            format!("Queue item {}", i.item),
            vec![
                ("item".into(), i.item.clone()),
                ("object".into(), i.object.clone()),
                ("username".into(), i.username.clone().unwrap_or_else(|| "-".into())),
                ("state".into(), i.state.into()),
                ("reason".into(), reason(i)),
                ("queued".into(), when(Some(i.enqueued_at))),
                ("attempts".into(), i.attempts.to_string()),
                ("next try".into(), when(i.next_retry)),
                ("last error".into(), i.last_error.clone().unwrap_or_else(|| "-".into())),
                (
                    "last status".into(),
                    i.last_status.map(|s| s.to_string()).unwrap_or_else(|| "-".into()),
                ),
                ("claimed by".into(), i.claimed_by.clone().unwrap_or_else(|| "-".into())),
            ],
        );
    }

    fn act(&self, action: Action, ctx: &mut Ctx) {
        let Some(i) = self.selected() else {
            ctx.status(Level::Warn, "no item selected");
            return;
        };
        if i.state == "sending" {
            ctx.status(
                Level::Warn,
                format!(
                    "{} is being sent right now (by {}); wait for it",
                    i.object,
                    i.claimed_by.as_deref().unwrap_or("?")
                ),
            );
            return;
        }
        let items = vec![i.item.clone()];
        let (tag, title, lines) = match action {
            Action::RetryNow => (Tag::QueueRetryNow { items }, "Retry now", vec![]),
            Action::ToTrash => (
                Tag::QueueToTrash { items },
                "Move to the trash",
                vec![
                    format!("Give up on {} for {}?", i.object, self.authority),
                    "It goes to the trash (requeue it from there); nothing is sent for it until it changes.".into(),
                ],
            ),
            _ => (
                Tag::QueueAfresh { items },
                "Schedule afresh",
                vec![
                    format!("Schedule {} afresh for {}?", i.object, self.authority),
                    format!(
                        "Its {} so far are forgotten; its current state is sent at the next round.",
                        plural(u64::from(i.attempts), "attempt", "attempts")
                    ),
                ],
            ),
        };
        ctx.confirm(
            action,
            Ask {
                owner: ViewId::Queues,
                tag,
                title: title.into(),
                lines,
                word: "yes".into(),
                escalate: false,
            },
        );
    }

    /// An action while the items are shown; `false`: not for them.
    pub fn on_action(&mut self, action: Action, ctx: &mut Ctx) -> bool {
        if let Some((_, i)) = &mut self.inspector {
            let page = i.height.max(1) as isize;
            match action {
                Action::Up => i.scroll(-1),
                Action::Down => i.scroll(1),
                Action::PageUp => i.scroll(-page),
                Action::PageDown => i.scroll(page),
                Action::Top => i.home(),
                Action::Bottom => i.end(),
                Action::Open => i.toggle(),
                Action::Back => self.inspector = None,
                Action::Describe => self.describe(ctx),
                Action::RetryNow | Action::ToTrash | Action::Afresh => self.act(action, ctx),
                _ => return false,
            }
            return true;
        }
        let n = self.visible().len();
        if self.table.navigate(action, n) {
            return true;
        }
        match action {
            Action::Open => match self.visible().get(self.table.selected).map(|i| i.item.clone()) {
                Some(item) => {
                    self.opening = Some(item.clone());
                    ctx.ask(ViewId::Queues, Call::QueueItemShow(item));
                }
                None => ctx.status(Level::Warn, "no item waits"),
            },
            Action::Describe => self.describe(ctx),
            Action::RetryNow | Action::ToTrash | Action::Afresh => self.act(action, ctx),
            _ => return false,
        }
        true
    }

    /// Takes a reply meant for the items; `true` when it was.
    pub fn on_reply(&mut self, call: &Call, result: &Result<Data, String>, ctx: &mut Ctx) -> bool {
        match (call, result) {
            (Call::QueueItems(a), Ok(Data::QueueItems(q))) if *a == self.authority => {
                let QueueItems { total, items, .. } = q.as_ref();
                self.items = items.clone();
                self.total = *total;
                self.loaded = true;
                self.error = None;
                let keys: Vec<String> = self.visible().iter().map(|i| i.item.clone()).collect();
                self.table.follow(keys.iter().map(String::as_str));
                true
            }
            (Call::QueueItems(_), Err(e)) => {
                self.error = Some(e.clone());
                true
            }
            (Call::QueueItemShow(item), Ok(Data::QueueItem(d))) => {
                if self.opening.as_deref() == Some(item.as_str()) {
                    self.opening = None;
                    let mut doc = serde_json::Map::new();
                    doc.insert("would send now".into(), d.now.clone());
                    doc.insert(
                        "item file".into(),
                        serde_json::to_value(&d.raw).unwrap_or(serde_json::Value::Null),
                    );
                    self.inspector = Some(((**d).clone(), Inspector::new(serde_json::Value::Object(doc))));
                }
                true
            }
            (Call::QueueItemShow(_), Err(_)) => {
                self.opening = None;
                true
            }
            (Call::QueueRetryNow(_) | Call::QueueToTrash(_) | Call::QueueAfresh(_), r) => {
                if let Ok(Data::Done(msg)) = r {
                    self.inspector = None;
                    ctx.status(Level::Ok, msg.clone());
                }
                self.load(ctx);
                true
            }
            _ => false,
        }
    }

    pub fn on_answer(&mut self, tag: Tag, answer: Answer, ctx: &mut Ctx) {
        match (tag, answer) {
            (Tag::QueueRetryNow { items }, Answer::Yes) => ctx.ask(ViewId::Queues, Call::QueueRetryNow(items)),
            (Tag::QueueToTrash { items }, Answer::Yes) => ctx.ask(ViewId::Queues, Call::QueueToTrash(items)),
            (Tag::QueueAfresh { items }, Answer::Yes) => ctx.ask(ViewId::Queues, Call::QueueAfresh(items)),
            _ => {}
        }
    }

    pub fn click(&mut self, x: u16, y: u16) -> bool {
        self.inspector.is_none() && self.table.click(x, y, self.visible().len()) == Some(true)
    }

    pub fn render(&mut self, frame: &mut Frame, area: Rect, rc: &RenderCtx) {
        if self.inspector.is_some() {
            self.render_inspector(frame, area, rc);
            return;
        }
        let now = rc.clock.now();
        let mut state = std::mem::take(&mut self.table);
        let visible = self.visible();
        let mut title = format!(
            "Queue of {} · {} waiting",
            self.authority,
            plural(self.total, "item", "items")
        );
        if (self.items.len() as u64) < self.total {
            title.push_str(&format!(" · first {} shown", num(self.items.len() as u64)));
        }
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
                "nothing waits: the queue is empty",
            ),
            hint: Some("Enter inspects · r retry now · x trash · a afresh · Esc back"),
            focused: true,
        };
        table::render(
            &mut state,
            spec,
            &mut |i| visible.get(i).map(|r| Self::row(r, now)),
            frame,
            area,
            rc.theme,
        );
        drop(visible);
        self.table = state;
    }

    fn render_inspector(&mut self, frame: &mut Frame, area: Rect, rc: &RenderCtx) {
        let t = rc.theme;
        let now = rc.clock.now();
        let Some((d, ins)) = &mut self.inspector else { return };
        let r = &d.row;
        let head = vec![
            kv(
                "object",
                format!("{} · {}", r.object, r.username.as_deref().unwrap_or("-")),
                t,
            ),
            kv(
                "waiting",
                format!(
                    "{} · {} · {} · next try {}",
                    r.state,
                    reason(r),
                    plural(u64::from(r.attempts), "attempt", "attempts"),
                    next_try(now, r.next_retry)
                ),
                t,
            ),
            Line::from(vec![
                Span::styled(format!("{:<14}", "last error"), t.get(Slot::Dim)),
                Span::styled(
                    safe(r.last_error.as_deref().unwrap_or("-")),
                    if r.last_error.is_some() {
                        t.get(Slot::Error)
                    } else {
                        t.get(Slot::Base)
                    },
                ),
            ]),
        ];
        let inner = area.width.saturating_sub(2).max(1) as usize;
        let rows: u16 = head.iter().map(|l| l.width().max(1).div_ceil(inner) as u16).sum();
        let [top, mid] = Layout::vertical([
            Constraint::Length((rows + 2).min(area.height / 3).max(3)),
            Constraint::Min(3),
        ])
        .areas(area);
        frame.render_widget(
            Paragraph::new(head).wrap(Wrap { trim: false }).block(panel(
                format!("Queue item {} · queued {} ago", r.item, ago(now, Some(r.enqueued_at))),
                t,
            )),
            top,
        );
        let lines = ins.visible(
            mid.height.saturating_sub(2) as usize,
            mid.width.saturating_sub(2) as usize,
            t,
        );
        let pos = format!(
            " line {} of {} · r retry now · x trash · a afresh · Esc back ",
            ins.cursor + 1,
            ins.lines.len()
        );
        frame.render_widget(
            Paragraph::new(lines).block(
                panel("What would be sent now · the item file", t)
                    .title_bottom(Line::from(Span::styled(pos, t.get(Slot::Dim))).right_aligned()),
            ),
            mid,
        );
    }
}
