//! Schools: every school with its users per role, its classes and the
//! authorities syncing it; Enter opens the school's users. Thousands of schools fit in memory, so the
//! filter and sort run here.

use super::{Ctx, Effect, Nav, RenderCtx, View, ViewId};
use crate::engine::overview::SchoolRow;
use crate::engine::sync::assign::AuthoritySchools;
use crate::model::Role;
use crate::tui::action::Action;
use crate::tui::request::{Call, Data};
use crate::tui::theme::Slot;
use crate::tui::widgets::{num, panel, scroll_to};
use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::text::Line;
use ratatui::widgets::{Cell, Row, Table};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Sort {
    #[default]
    Name,
    Users,
    Classes,
}

#[derive(Default)]
pub struct Schools {
    rows: Vec<SchoolRow>,
    /// Which schools each authority syncs.
    authorities: Vec<AuthoritySchools>,
    loaded: bool,
    error: Option<String>,
    filter: String,
    sort: Sort,
    descending: bool,
    selected: usize,
    top: usize,
    height: usize,
}

impl Schools {
    /// The active authorities syncing a school (`*` in the config: every
    /// school but the limbo school and the excluded ones).
    fn syncing(&self, r: &SchoolRow) -> Vec<&str> {
        self.authorities
            .iter()
            .filter(|a| a.active && !r.limbo)
            .filter(|a| {
                let excluded = a.excluded.iter().any(|s| s.school == r.name);
                a.schools.iter().any(|s| s.school == r.name) || (a.config_all && !excluded)
            })
            .map(|a| a.authority.as_str())
            .collect()
    }

    fn visible(&self) -> Vec<&SchoolRow> {
        let f = self.filter.to_lowercase();
        let mut v: Vec<&SchoolRow> = self
            .rows
            .iter()
            .filter(|r| {
                f.is_empty() || r.name.to_lowercase().contains(&f) || r.display_name.to_lowercase().contains(&f)
            })
            .collect();
        match self.sort {
            Sort::Name => v.sort_by(|a, b| a.name.cmp(&b.name)),
            Sort::Users => v.sort_by(|a, b| a.users.cmp(&b.users).then(a.name.cmp(&b.name))),
            Sort::Classes => v.sort_by(|a, b| a.classes.cmp(&b.classes).then(a.name.cmp(&b.name))),
        }
        if self.descending {
            v.reverse();
        }
        v
    }
}

/// How long ago the school's last feed arrived and from where; a warning
/// when feeds of it wait in the intake inbox's failed/ folder.
fn last_feed<'a>(r: &SchoolRow, now: chrono::DateTime<chrono::Utc>, t: &crate::tui::theme::Theme) -> Cell<'a> {
    if r.intake_failed > 0 {
        return Cell::from(Line::styled(format!(" {} failed", r.intake_failed), t.get(Slot::Warn)));
    }
    let from = r.last_feed_from.map(|o| o.as_str()).unwrap_or("-");
    Cell::from(match r.last_feed_at {
        Some(at) => format!(" {} ago · {from}", crate::tui::widgets::age(now, at)),
        None if !r.limbo => " never".to_string(),
        None => " -".to_string(),
    })
}

fn role(r: &SchoolRow, role: Role) -> String {
    r.roles.get(&role).map(|n| num(*n)).unwrap_or_else(|| "-".into())
}

impl View for Schools {
    fn id(&self) -> ViewId {
        ViewId::Schools
    }

    fn load(&mut self, ctx: &mut Ctx) {
        ctx.ask(ViewId::Schools, Call::SchoolRows);
        ctx.ask(ViewId::Schools, Call::SyncSchools);
    }

    fn on_action(&mut self, action: Action, ctx: &mut Ctx) -> bool {
        let n = self.visible().len();
        let page = self.height.max(1);
        match action {
            Action::Up => self.selected = self.selected.saturating_sub(1),
            Action::Down => self.selected = (self.selected + 1).min(n.saturating_sub(1)),
            Action::PageUp => self.selected = self.selected.saturating_sub(page),
            Action::PageDown => self.selected = (self.selected + page).min(n.saturating_sub(1)),
            Action::Top => self.selected = 0,
            Action::Bottom => self.selected = n.saturating_sub(1),
            Action::SortNext => {
                self.sort = match self.sort {
                    Sort::Name => Sort::Users,
                    Sort::Users => Sort::Classes,
                    Sort::Classes => Sort::Name,
                }
            }
            Action::SortReverse => self.descending = !self.descending,
            Action::Open => {
                if let Some(r) = self.visible().get(self.selected) {
                    ctx.effect(Effect::Navigate(ViewId::Users, Nav::School(r.name.clone())));
                }
            }
            _ => return false,
        }
        true
    }

    fn on_reply(&mut self, _call: &'static str, result: Result<Data, String>, _ctx: &mut Ctx) {
        match result {
            Ok(Data::SchoolRows(rows)) => {
                self.rows = rows;
                self.loaded = true;
                self.error = None;
            }
            Ok(Data::SyncSchools(a)) => self.authorities = a,
            Ok(_) => {}
            Err(e) => self.error = Some(e),
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
        let t = rc.theme;
        let sort = match self.sort {
            Sort::Name => "name",
            Sort::Users => "users",
            Sort::Classes => "classes",
        };
        let visible = self.visible();
        let mut title = format!(
            "Schools ({}) · sort {sort}{}",
            visible.len(),
            if self.descending { " ↓" } else { "" }
        );
        super::push_filter(&mut title, &self.filter);
        let mut block = panel(title, t);
        if let Some(note) = super::table_note(
            self.error.as_deref(),
            !self.loaded,
            (self.rows.is_empty()).then_some("no schools yet: an import creates them"),
            area.width,
            t,
        ) {
            block = block.title_bottom(note);
        }
        let height = area.height.saturating_sub(3) as usize;
        let selected = self.selected.min(visible.len().saturating_sub(1));
        let top = scroll_to(self.top as u64, selected as u64, height as u64) as usize;
        let wide = area.width >= 120;
        let rows: Vec<Row> = visible
            .iter()
            .enumerate()
            .skip(top)
            .take(height)
            .map(|(i, r)| {
                let mut cells = vec![Cell::from(r.name.clone())];
                if wide {
                    cells.push(Cell::from(r.display_name.clone()));
                }
                cells.extend([
                    Cell::from(Line::from(num(r.users)).right_aligned()),
                    Cell::from(Line::from(role(r, Role::Student)).right_aligned()),
                    Cell::from(Line::from(role(r, Role::Teacher)).right_aligned()),
                    Cell::from(Line::from(role(r, Role::Staff)).right_aligned()),
                    Cell::from(Line::from(role(r, Role::SchoolAdmin)).right_aligned()),
                    Cell::from(Line::from(num(r.classes)).right_aligned()),
                ]);
                if wide {
                    cells.push(last_feed(r, rc.clock.now(), t));
                }
                let syncing = self.syncing(r);
                cells.push(Cell::from(if wide {
                    syncing.join(", ")
                } else {
                    num(syncing.len() as u64)
                }));
                let style = if i == selected {
                    t.get(Slot::Selected)
                } else if r.intake_failed > 0 {
                    t.get(Slot::Warn)
                } else if r.limbo {
                    t.get(Slot::Limbo)
                } else {
                    t.get(Slot::Base)
                };
                Row::new(cells).style(style)
            })
            .collect();
        let mut widths = vec![Constraint::Fill(1)];
        let mut header = vec!["school"];
        if wide {
            widths.push(Constraint::Fill(2));
            header.push("name");
        }
        widths.extend([
            Constraint::Length(9),
            Constraint::Length(9),
            Constraint::Length(8),
            Constraint::Length(6),
            Constraint::Length(6),
            Constraint::Length(7),
        ]);
        header.extend(["users", "students", "teachers", "staff", "admins", "classes"]);
        // The last feed: when and from where; failed intake files (narrow:
        // the row is marked instead).
        if wide {
            widths.push(Constraint::Length(17));
            header.push(" last feed");
        }
        if wide {
            widths.push(Constraint::Fill(2));
            header.push(" authorities");
        } else {
            widths.push(Constraint::Length(5));
            header.push(" auth");
        }
        let table = Table::new(rows, widths)
            .header(Row::new(header).style(t.get(Slot::Header)))
            .block(block);
        frame.render_widget(table, area);
        self.selected = selected;
        self.top = top;
        self.height = height;
    }
}
