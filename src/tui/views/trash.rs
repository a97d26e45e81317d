//! Trash: every authority's given-up items with their error and attempts,
//! oldest failure first. Enter opens the inspector (the JSON tree and the
//! difference against what would be sent now); `r` requeues (schedules the
//! object afresh), `x` deletes. One item is confirmed with y/n; Space
//! selects items, and a bulk action needs its verb and count typed.

use super::inspector::Inspector;
use super::queues::ago;
use super::{Ctx, Level, RenderCtx, View, ViewId};
use crate::engine::sync::TrashEntry;
use crate::tui::action::Action;
use crate::tui::overlay::{self, Answer, Tag};
use crate::tui::request::{Call, Data};
use crate::tui::theme::Slot;
use crate::tui::widgets::{clip, kv, num, panel, scroll_to};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Paragraph, Row, Table, Wrap};
use std::collections::BTreeSet;

#[derive(Default)]
pub struct Trash {
    pub items: Vec<TrashEntry>,
    pub loaded: bool,
    pub error: Option<String>,
    pub selected: usize,
    top: usize,
    height: usize,
    pub filter: String,
    /// Items marked for a bulk action (`AUTHORITY/FILE`).
    pub marked: BTreeSet<String>,
    pub inspector: Option<Inspector>,
    /// The item whose inspector is loading.
    opening: Option<String>,
}

fn status(e: &TrashEntry) -> String {
    e.http_status
        .map(|s| s.to_string())
        .or(e.ldap_code.map(|c| format!("ldap {c}")))
        .unwrap_or_else(|| e.class.clone())
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

    /// What an action applies to: the inspected item, else the marked
    /// ones, else the row under the cursor.
    fn targets(&self) -> Vec<String> {
        if let Some(i) = &self.inspector {
            return vec![i.detail.entry.item.clone()];
        }
        if !self.marked.is_empty() {
            return self.marked.iter().cloned().collect();
        }
        self.visible()
            .get(self.selected)
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
        let tag = |items: Vec<String>| {
            if requeue {
                Tag::TrashRequeue { items }
            } else {
                Tag::TrashDelete { items }
            }
        };
        match items.len() {
            0 => ctx.status(Level::Warn, "no trash item selected"),
            1 => ctx.overlay(overlay::yes_no(
                ViewId::Trash,
                tag(items.clone()),
                format!("{} trash item", if requeue { "Requeue" } else { "Delete" }),
                vec![format!("{verb} {}?", items[0]), what.into()],
            )),
            n => {
                let mut lines = vec![format!("{verb} {n} trash items?"), what.into()];
                lines.extend(items.iter().take(4).map(|i| format!("  {}", clip(i, 56))));
                if n > 4 {
                    lines.push(format!("  … and {} more", n - 4));
                }
                ctx.overlay(overlay::typed(
                    ViewId::Trash,
                    tag(items),
                    format!("{} {n} trash items", if requeue { "Requeue" } else { "Delete" }),
                    lines,
                    format!("{verb} {n}"),
                ))
            }
        }
    }
}

impl View for Trash {
    fn id(&self) -> ViewId {
        ViewId::Trash
    }

    fn load(&mut self, ctx: &mut Ctx) {
        ctx.ask(ViewId::Trash, Call::TrashList);
    }

    fn on_action(&mut self, action: Action, ctx: &mut Ctx) -> bool {
        if let Some(i) = &mut self.inspector {
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
                _ => return false,
            }
            return true;
        }
        let n = self.visible().len();
        let page = self.height.max(1);
        match action {
            Action::Up => self.selected = self.selected.saturating_sub(1),
            Action::Down => self.selected = (self.selected + 1).min(n.saturating_sub(1)),
            Action::PageUp => self.selected = self.selected.saturating_sub(page),
            Action::PageDown => self.selected = (self.selected + page).min(n.saturating_sub(1)),
            Action::Top => self.selected = 0,
            Action::Bottom => self.selected = n.saturating_sub(1),
            Action::Open => match self.visible().get(self.selected) {
                Some(e) => {
                    let item = e.item.clone();
                    self.opening = Some(item.clone());
                    ctx.ask(ViewId::Trash, Call::TrashShow(item));
                }
                None => ctx.status(Level::Warn, "the trash is empty"),
            },
            Action::Select => {
                if let Some(e) = self.visible().get(self.selected) {
                    let item = e.item.clone();
                    if !self.marked.remove(&item) {
                        self.marked.insert(item);
                    }
                    self.selected = (self.selected + 1).min(n.saturating_sub(1));
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

    fn on_reply(&mut self, call: &'static str, result: Result<Data, String>, ctx: &mut Ctx) {
        match result {
            Ok(Data::Trash(items)) => {
                self.items = items;
                self.loaded = true;
                self.error = None;
                let present: BTreeSet<&String> = self.items.iter().map(|e| &e.item).collect();
                self.marked.retain(|m| present.contains(m));
                self.selected = self.selected.min(self.visible().len().saturating_sub(1));
            }
            Ok(Data::TrashDetail(d)) => {
                if self.opening.as_deref() == Some(d.entry.item.as_str()) {
                    self.opening = None;
                    self.inspector = Some(Inspector::new(*d));
                }
            }
            Ok(Data::Done(msg)) => {
                self.inspector = None;
                self.marked.clear();
                ctx.status(Level::Ok, msg);
            }
            Ok(_) => {}
            Err(e) => {
                if call == "trash item" {
                    self.opening = None;
                } else if call == "trash" {
                    self.error = Some(e);
                }
            }
        }
    }

    fn on_answer(&mut self, tag: Tag, answer: Answer, ctx: &mut Ctx) {
        match (tag, answer) {
            (Tag::TrashRequeue { items }, Answer::Yes) => ctx.ask(ViewId::Trash, Call::TrashRequeue(items)),
            (Tag::TrashDelete { items }, Answer::Yes) => ctx.ask(ViewId::Trash, Call::TrashDelete(items)),
            _ => {}
        }
    }

    fn filter(&self) -> &str {
        &self.filter
    }

    fn set_filter(&mut self, text: String, _ctx: &mut Ctx) {
        self.filter = text;
        self.selected = 0;
        self.top = 0;
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
        let t = rc.theme;
        let now = rc.clock.now();
        let wide = area.width >= 120;
        self.height = area.height.saturating_sub(3).max(1) as usize;
        self.top = scroll_to(self.top as u64, self.selected as u64, self.height as u64) as usize;
        let visible = self.visible();
        let mut rows = Vec::new();
        for (i, e) in visible.iter().enumerate().skip(self.top).take(self.height) {
            let mark = if self.marked.contains(&e.item) { "●" } else { " " };
            let mut cells = vec![
                Cell::from(Span::styled(mark, t.get(Slot::Accent))),
                Cell::from(e.authority.clone()),
                Cell::from(e.object.clone()),
                Cell::from(status(e)),
                Cell::from(num(u64::from(e.attempts))),
                Cell::from(ago(now, e.last_failure)),
                Cell::from(Span::styled(e.error.clone(), t.get(Slot::Error))),
            ];
            if !wide {
                cells.remove(3);
            }
            let style = if i == self.selected {
                t.get(Slot::Selected)
            } else {
                t.get(Slot::Base)
            };
            rows.push(Row::new(cells).style(style));
        }
        let (header, widths) = if wide {
            (
                vec!["", "authority", "object", "status", "tries", "failed", "error"],
                vec![
                    Constraint::Length(1),
                    Constraint::Length(14),
                    Constraint::Length(28),
                    Constraint::Length(9),
                    Constraint::Length(5),
                    Constraint::Length(6),
                    Constraint::Fill(1),
                ],
            )
        } else {
            (
                vec!["", "authority", "object", "tries", "failed", "error"],
                vec![
                    Constraint::Length(1),
                    Constraint::Length(13),
                    Constraint::Length(22),
                    Constraint::Length(5),
                    Constraint::Length(6),
                    Constraint::Fill(1),
                ],
            )
        };
        let mut title = format!("Trash · {} items", num(visible.len() as u64));
        if !self.marked.is_empty() {
            title.push_str(&format!(" · {} selected", self.marked.len()));
        }
        super::push_filter(&mut title, &self.filter);
        let mut block = panel(title, t);
        if let Some(note) = super::table_note(
            self.error.as_deref(),
            !self.loaded,
            visible.is_empty().then_some("the trash is empty"),
            area.width,
            t,
        ) {
            block = block.title_bottom(note);
        } else {
            block = block.title_bottom(
                Line::from(Span::styled(
                    format!(" {} of {} · Enter inspects ", self.selected + 1, visible.len()),
                    t.get(Slot::Dim),
                ))
                .right_aligned(),
            );
        }
        frame.render_widget(
            Table::new(rows, widths)
                .header(Row::new(header).style(t.get(Slot::Header)))
                .block(block),
            area,
        );
    }

    fn render_inspector(&mut self, frame: &mut Frame, area: Rect, rc: &RenderCtx) {
        let t = rc.theme;
        let Some(ins) = &mut self.inspector else { return };
        let d = &ins.detail;
        let e = &d.entry;
        let head = vec![
            kv("object", format!("{} · {}", e.object, e.authority), t),
            Line::from(vec![
                Span::styled(format!("{:<14}", "error"), t.get(Slot::Dim)),
                Span::styled(e.error.clone(), t.get(Slot::Error)),
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
            let show = |v: &Option<serde_json::Value>| v.as_ref().map(|v| v.to_string()).unwrap_or("(none)".into());
            for f in &d.diff {
                diff.push(Line::from(vec![
                    Span::styled(format!("  {} ", f.path), t.get(Slot::JsonKey)),
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
