//! Schools: every school with its users per role, its classes and the
//! authorities syncing it; Enter opens the school's users. Thousands of
//! schools fit in memory, so the filter and sort run here.

use super::{Ctx, Effect, Nav, RenderCtx, View, ViewId, Watch};
use crate::engine::overview::SchoolRow;
use crate::engine::sync::assign::AuthoritySchools;
use crate::model::Role;
use crate::tui::action::Action;
use crate::tui::request::{Call, Data};
use crate::tui::table::{self, Cell, Column, Note, Row, TableSpec, TableState};
use crate::tui::widgets::num;
use ratatui::Frame;
use ratatui::layout::Rect;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Sort {
    #[default]
    Name,
    Users,
    Classes,
}

const COLUMNS: [Column; 9] = [
    Column::fill("school", 1, 14),
    Column::fill("name", 2, 16),
    Column::fixed("users", 9).right(),
    Column::fixed("students", 9).right(),
    Column::fixed("teachers", 8).right(),
    Column::fixed("staff", 6).right(),
    Column::fixed("admins", 6).right(),
    Column::fixed("classes", 7).right(),
    Column::fill("authorities", 2, 12),
];

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
    table: TableState,
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

    fn row(&self, r: &SchoolRow) -> Row {
        let role = |role: Role| r.roles.get(&role).map(|n| num(*n)).unwrap_or_else(|| "-".into());
        let row = Row::new(
            r.name.clone(),
            vec![
                Cell::new(&r.name),
                Cell::new(&r.display_name),
                Cell::new(num(r.users)),
                Cell::new(role(Role::Student)),
                Cell::new(role(Role::Teacher)),
                Cell::new(role(Role::Staff)),
                Cell::new(role(Role::SchoolAdmin)),
                Cell::new(num(r.classes)),
                Cell::new(self.syncing(r).join(", ")),
            ],
        );
        if r.limbo {
            row.slot(crate::tui::theme::Slot::Limbo)
        } else {
            row
        }
    }

    fn follow(&mut self) {
        let keys: Vec<String> = self.visible().iter().map(|r| r.name.clone()).collect();
        self.table.follow(keys.iter().map(String::as_str));
    }
}

impl View for Schools {
    fn id(&self) -> ViewId {
        ViewId::Schools
    }

    fn load(&mut self, ctx: &mut Ctx) {
        ctx.ask(ViewId::Schools, Call::SchoolRows);
        ctx.ask(ViewId::Schools, Call::SyncSchools);
    }

    fn ready(&self) -> bool {
        self.loaded
    }

    fn watches(&self) -> Watch {
        Watch {
            directory: true,
            state: true,
            ..Watch::NONE
        }
    }

    fn on_action(&mut self, action: Action, ctx: &mut Ctx) -> bool {
        let n = self.visible().len();
        if self.table.navigate(action, n) {
            return true;
        }
        match action {
            Action::SortNext => {
                self.sort = match self.sort {
                    Sort::Name => Sort::Users,
                    Sort::Users => Sort::Classes,
                    Sort::Classes => Sort::Name,
                };
                self.follow();
            }
            Action::SortReverse => {
                self.descending = !self.descending;
                self.follow();
            }
            Action::Open => {
                if let Some(r) = self.visible().get(self.table.selected) {
                    ctx.effect(Effect::Navigate(ViewId::Users, Nav::School(r.name.clone())));
                }
            }
            Action::Describe => {
                if let Some(r) = self.visible().get(self.table.selected) {
                    let row = self.row(r);
                    ctx.describe(format!("School {}", r.name), table::describe(&COLUMNS, &row));
                }
            }
            _ => return false,
        }
        true
    }

    fn on_reply(&mut self, _call: Call, result: Result<Data, String>, _ctx: &mut Ctx) {
        match result {
            Ok(Data::SchoolRows(rows)) => {
                self.rows = rows;
                self.loaded = true;
                self.error = None;
                self.follow();
            }
            Ok(Data::SyncSchools(a)) => self.authorities = a,
            Ok(_) => {}
            Err(e) => self.error = Some(e),
        }
    }

    fn click(&mut self, x: u16, y: u16, _ctx: &mut Ctx) -> bool {
        self.table.click(x, y, self.visible().len()) == Some(true)
    }

    fn filter(&self) -> &str {
        &self.filter
    }

    fn set_filter(&mut self, text: String, _ctx: &mut Ctx) {
        self.filter = text;
        self.table.reset();
    }

    fn render(&mut self, frame: &mut Frame, area: Rect, rc: &RenderCtx) {
        let sort = match self.sort {
            Sort::Name => "name",
            Sort::Users => "users",
            Sort::Classes => "classes",
        };
        let mut state = std::mem::take(&mut self.table);
        let visible = self.visible();
        let mut title = format!(
            "Schools ({}) · sort {sort}{}",
            num(visible.len() as u64),
            if self.descending { " ↓" } else { "" }
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
                    "no schools yet: an import creates them"
                } else {
                    "no school matches"
                },
            ),
            hint: Some("Enter: its users"),
            focused: true,
        };
        table::render(
            &mut state,
            spec,
            &mut |i| visible.get(i).map(|r| self.row(r)),
            frame,
            area,
            rc.theme,
        );
        drop(visible);
        self.table = state;
    }
}
