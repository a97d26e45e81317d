//! Trash: every authority's given-up items with their error and attempts,
//! oldest failure first. Enter opens the inspector (the JSON tree and the
//! difference against what would be sent now); `d` shows an item's every
//! field, its error in full; `r` requeues (schedules the object afresh), `x`
//! deletes. One item is confirmed with y/n; Space selects items, and a bulk
//! action needs its verb and count typed.

use super::inspector::Inspector;
use super::queues::ago;
use super::{Ctx, Level, RenderCtx, View, ViewId, Watch};
use crate::engine::sync::{TrashDetail, TrashEntry};
use crate::tui::action::Action;
use crate::tui::overlay::{Answer, Ask, Tag};
use crate::tui::request::{Call, Data};
use crate::tui::table::{self, Cell, Column, Note, Row, TableSpec, TableState};
use crate::tui::theme::Slot;
use crate::tui::widgets::{clip, kv, num, panel, plural, safe};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};
use std::collections::BTreeSet;

const COLUMNS: [Column; 7] = [
    Column::fixed("", 1),
    Column::fixed("authority", 13),
    Column::fill("object", 1, 20),
    Column::fill("error", 4, 20),
    Column::fixed("tries", 5).right(),
    Column::fixed("failed", 6),
    Column::fixed("status", 9),
];

#[derive(Default)]
pub struct Trash {
    pub items: Vec<TrashEntry>,
    pub loaded: bool,
    pub error: Option<String>,
    pub table: TableState,
    pub filter: String,
    /// Items marked for a bulk action (`AUTHORITY/FILE`).
    pub marked: BTreeSet<String>,
    pub inspector: Option<(TrashDetail, Inspector)>,
    /// The item whose inspector is loading.
    opening: Option<String>,
}

fn status(e: &TrashEntry) -> String {
    e.http_status
        .map(|s| s.to_string())
        .or(e.ldap_code.map(|c| format!("ldap {c}")))
        .unwrap_or_else(|| e.class.clone())
}

/// The inspector's document: what was sent, what would be sent now, the file.
fn document(d: &TrashDetail) -> serde_json::Value {
    let mut doc = serde_json::Map::new();
    doc.insert("sent".into(), d.payload.clone());
    doc.insert("would send now".into(), d.now.clone());
    doc.insert(
        "item file".into(),
        serde_json::to_value(&d.raw).unwrap_or(serde_json::Value::Null),
    );
    serde_json::Value::Object(doc)
}

impl Trash {
    pub fn visible(&self) -> Vec<&TrashEntry> {
        let f = self.filter.to_lowercase();
        self.items
            .iter()
            .filter(|e| {
                f.is_empty()
                    || e.item.to_lowercase().contains(&f)
                    || e.object.to_lowercase().contains(&f)
                    || e.error.to_lowercase().contains(&f)
            })
            .collect()
    }

    fn row(&self, e: &TrashEntry, now: chrono::DateTime<chrono::Utc>) -> Row {
        Row::new(
            e.item.clone(),
            vec![
                Cell::styled(if self.marked.contains(&e.item) { "●" } else { " " }, Slot::Accent),
                Cell::new(&e.authority),
                Cell::new(&e.object),
                Cell::styled(&e.error, Slot::Error),
                Cell::new(num(u64::from(e.attempts))),
                Cell::new(ago(now, e.last_failure)),
                Cell::new(status(e)),
            ],
        )
    }

    /// What an action applies to: the inspected item, else the marked
    /// ones, else the row under the cursor.
    fn targets(&self) -> Vec<String> {
        if let Some((d, _)) = &self.inspector {
            return vec![d.entry.item.clone()];
        }
        if !self.marked.is_empty() {
            return self.marked.iter().cloned().collect();
        }
        self.visible()
            .get(self.table.selected)
            .map(|e| vec![e.item.clone()])
            .unwrap_or_default()
    }

    fn confirm(&self, requeue: bool, ctx: &mut Ctx) {
        let items = self.targets();
        let verb = if requeue { "requeue" } else { "delete" };
        let what = if requeue {
            "Each object is scheduled afresh: its current state is sent, never the old payload."
        } else {
            "The items are gone for good; their objects are not sent again until they change."
        };
        let n = items.len();
        if n == 0 {
            ctx.status(Level::Warn, "no trash item selected");
            return;
        }
        let mut lines = vec![if n == 1 {
            format!("{verb} {}?", items[0])
        } else {
            format!("{verb} {n} trash items?")
        }];
        lines.push(what.into());
        if n > 1 {
            lines.extend(items.iter().take(4).map(|i| format!("  {}", clip(i, 56))));
            if n > 4 {
                lines.push(format!("  … and {} more", n - 4));
            }
        }
        let title = format!(
            "{} {}",
            if requeue { "Requeue" } else { "Delete" },
            plural(n as u64, "trash item", "trash items")
        );
        let (action, tag) = if requeue {
            (Action::Requeue, Tag::TrashRequeue { items })
        } else {
            (Action::DeleteTrash, Tag::TrashDelete { items })
        };
        ctx.confirm(
            action,
            Ask {
                owner: ViewId::Trash,
                tag,
                title,
                lines,
                word: format!("{verb} {n}"),
                escalate: n > 1,
            },
        );
    }

    fn describe(&self, ctx: &mut Ctx) {
        let Some(e) = self.visible().get(self.table.selected).copied() else {
            ctx.status(Level::Warn, "the trash is empty");
            return;
        };
        let when = |t: Option<chrono::DateTime<chrono::Utc>>| {
            t.map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
                .unwrap_or_else(|| "-".into())
        };
        ctx.describe(
            format!("Trash item {}", e.item),
            vec![
                ("item".into(), e.item.clone()),
                ("authority".into(), e.authority.clone()),
                ("object".into(), e.object.clone()),
                ("error".into(), e.error.clone()),
                ("class".into(), e.class.clone()),
                ("status".into(), status(e)),
                ("attempts".into(), e.attempts.to_string()),
                ("first failure".into(), when(e.first_failure)),
                ("last failure".into(), when(e.last_failure)),
                ("trashed".into(), when(e.trashed_at)),
            ],
        );
    }

    fn follow(&mut self) {
        let keys: Vec<String> = self.visible().iter().map(|e| e.item.clone()).collect();
        self.table.follow(keys.iter().map(String::as_str));
    }
}

impl View for Trash {
    fn id(&self) -> ViewId {
        ViewId::Trash
    }

    fn load(&mut self, ctx: &mut Ctx) {
        ctx.ask(ViewId::Trash, Call::TrashList);
    }

    fn ready(&self) -> bool {
        self.loaded
    }

    fn watches(&self) -> Watch {
        Watch {
            queues: true,
            ..Watch::NONE
        }
    }

    fn on_action(&mut self, action: Action, ctx: &mut Ctx) -> bool {
        if let Some((_, i)) = &mut self.inspector {
            let page = i.height.max(1) as isize;
            match action {
                Action::Up => i.scroll(-1),
                Action::Down => i.scroll(1),
                Action::PageUp => i.scroll(-page),
                Action::PageDown => i.scroll(page),
                Action::Top => i.home(),
                Action::Bottom => i.end(),
                Action::Open | Action::Fold | Action::Select => i.toggle(),
                Action::FoldAll => i.toggle_all(),
                Action::Back => self.inspector = None,
                Action::Requeue => self.confirm(true, ctx),
                Action::DeleteTrash => self.confirm(false, ctx),
                Action::Describe => self.describe(ctx),
                _ => return false,
            }
            return true;
        }
        let n = self.visible().len();
        if self.table.navigate(action, n) {
            return true;
        }
        match action {
            Action::Open => match self.visible().get(self.table.selected) {
                Some(e) => {
                    let item = e.item.clone();
                    self.opening = Some(item.clone());
                    ctx.ask(ViewId::Trash, Call::TrashShow(item));
                }
                None => ctx.status(Level::Warn, "the trash is empty"),
            },
            Action::Describe => self.describe(ctx),
            Action::Select => {
                if let Some(e) = self.visible().get(self.table.selected) {
                    let item = e.item.clone();
                    if !self.marked.remove(&item) {
                        self.marked.insert(item);
                    }
                    self.table.navigate(Action::Down, n);
                }
            }
            Action::SelectAll => {
                if self.marked.is_empty() {
                    self.marked = self.visible().iter().map(|e| e.item.clone()).collect();
                } else {
                    self.marked.clear();
                }
            }
            Action::Back if !self.marked.is_empty() => self.marked.clear(),
            Action::Requeue => self.confirm(true, ctx),
            Action::DeleteTrash => self.confirm(false, ctx),
            Action::Fold | Action::FoldAll => ctx.status(Level::Info, "Enter opens an item in the inspector first"),
            _ => return false,
        }
        true
    }

    fn on_reply(&mut self, call: Call, result: Result<Data, String>, ctx: &mut Ctx) {
        match result {
            Ok(Data::Trash(items)) => {
                self.items = items;
                self.loaded = true;
                self.error = None;
                let present: BTreeSet<&String> = self.items.iter().map(|e| &e.item).collect();
                self.marked.retain(|m| present.contains(m));
                self.follow();
            }
            Ok(Data::TrashDetail(d)) => {
                if self.opening.as_deref() == Some(d.entry.item.as_str()) {
                    self.opening = None;
                    let inspector = Inspector::new(document(&d));
                    self.inspector = Some((*d, inspector));
                }
            }
            Ok(Data::Done(msg)) => {
                self.inspector = None;
                self.marked.clear();
                ctx.status(Level::Ok, msg);
            }
            Ok(_) => {}
            Err(e) => match call {
                Call::TrashShow(_) => self.opening = None,
                Call::TrashList => self.error = Some(e),
                _ => {}
            },
        }
    }

    fn on_answer(&mut self, tag: Tag, answer: Answer, ctx: &mut Ctx) {
        match (tag, answer) {
            (Tag::TrashRequeue { items }, Answer::Yes) => ctx.ask(ViewId::Trash, Call::TrashRequeue(items)),
            (Tag::TrashDelete { items }, Answer::Yes) => ctx.ask(ViewId::Trash, Call::TrashDelete(items)),
            _ => {}
        }
    }

    fn click(&mut self, x: u16, y: u16, _ctx: &mut Ctx) -> bool {
        self.inspector.is_none() && self.table.click(x, y, self.visible().len()) == Some(true)
    }

    fn filter(&self) -> &str {
        &self.filter
    }

    fn set_filter(&mut self, text: String, _ctx: &mut Ctx) {
        self.filter = text;
        self.table.reset();
    }

    fn render(&mut self, frame: &mut Frame, area: Rect, rc: &RenderCtx) {
        if self.inspector.is_some() {
            self.render_inspector(frame, area, rc);
        } else {
            self.render_table(frame, area, rc);
        }
    }
}

impl Trash {
    fn render_table(&mut self, frame: &mut Frame, area: Rect, rc: &RenderCtx) {
        let now = rc.clock.now();
        let mut state = std::mem::take(&mut self.table);
        let visible = self.visible();
        let mut title = format!("Trash · {}", plural(visible.len() as u64, "item", "items"));
        if !self.marked.is_empty() {
            title.push_str(&format!(" · {} selected", self.marked.len()));
        }
        super::push_filter(&mut title, &self.filter);
        let len = visible.len();
        let spec = TableSpec {
            title,
            columns: &COLUMNS,
            len,
            note: Note::of(self.error.as_deref(), self.loaded, len, "the trash is empty"),
            hint: Some("Enter inspects · d describes"),
            focused: true,
        };
        table::render(
            &mut state,
            spec,
            &mut |i| visible.get(i).map(|e| self.row(e, now)),
            frame,
            area,
            rc.theme,
        );
        drop(visible);
        self.table = state;
    }

    fn render_inspector(&mut self, frame: &mut Frame, area: Rect, rc: &RenderCtx) {
        let t = rc.theme;
        let Some((d, ins)) = &mut self.inspector else { return };
        let e = &d.entry;
        let head = vec![
            kv("object", format!("{} · {}", e.object, e.authority), t),
            Line::from(vec![
                Span::styled(format!("{:<14}", "error"), t.get(Slot::Dim)),
                Span::styled(safe(&e.error), t.get(Slot::Error)),
            ]),
            kv(
                "attempts",
                format!(
                    "{} · {} · last failure {} ago",
                    e.attempts,
                    status(e),
                    ago(rc.clock.now(), e.last_failure)
                ),
                t,
            ),
        ];
        let mut diff: Vec<Line> = Vec::new();
        if d.payload.is_null() {
            diff.push(Line::from(Span::styled(
                "nothing was sent (it failed before sending); \"would send now\" is today's mapping",
                t.get(Slot::Dim),
            )));
        } else if d.diff.is_empty() {
            diff.push(Line::from(Span::styled(
                "what would be sent now is the same as what was sent",
                t.get(Slot::Dim),
            )));
        } else {
            diff.push(Line::from(Span::styled(
                format!("what would be sent now differs in {} field(s):", d.diff.len()),
                t.get(Slot::Header),
            )));
            let show =
                |v: &Option<serde_json::Value>| safe(&v.as_ref().map(|v| v.to_string()).unwrap_or("(none)".into()));
            for f in &d.diff {
                diff.push(Line::from(vec![
                    Span::styled(format!("  {} ", safe(&f.path)), t.get(Slot::JsonKey)),
                    Span::styled(format!("- {}", show(&f.before)), t.get(Slot::DiffOld)),
                    Span::styled("  ", t.get(Slot::Base)),
                    Span::styled(format!("+ {}", show(&f.now)), t.get(Slot::DiffNew)),
                ]));
            }
        }
        // Long errors and diff lines wrap: size the panels for it.
        let inner = area.width.saturating_sub(2).max(1) as usize;
        let rows = |lines: &[Line]| -> u16 { lines.iter().map(|l| l.width().max(1).div_ceil(inner) as u16).sum() };
        let diff_h = (rows(&diff) + 2).min(area.height / 3).max(3);
        let head_h = (rows(&head) + 2).min(area.height / 3).max(3);
        let [top, mid, bottom] = Layout::vertical([
            Constraint::Length(head_h),
            Constraint::Min(3),
            Constraint::Length(diff_h),
        ])
        .areas(area);
        frame.render_widget(
            Paragraph::new(head)
                .wrap(Wrap { trim: false })
                .block(panel(format!("Trash item {}", e.item), t)),
            top,
        );
        let lines = ins.visible(
            mid.height.saturating_sub(2) as usize,
            mid.width.saturating_sub(2) as usize,
            t,
        );
        let pos = format!(
            " line {} of {} · Enter/z folds · Z all · Esc back ",
            ins.cursor + 1,
            ins.lines.len()
        );
        frame.render_widget(
            Paragraph::new(lines)
                .block(panel("JSON", t).title_bottom(Line::from(Span::styled(pos, t.get(Slot::Dim))).right_aligned())),
            mid,
        );
        frame.render_widget(
            Paragraph::new(diff)
                .wrap(Wrap { trim: false })
                .block(panel("Diff: sent → now", t)),
            bottom,
        );
    }
}
