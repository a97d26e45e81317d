//! Drawing the virtualised user tables (users and limbo) and the user
//! detail pane: attributes, schools with roles and classes, state and purge
//! date, and the feed row last received for the user; its queue and trash
//! items, its feed history (what each authority holds: [`super::holdings`]).

use super::RenderCtx;
use super::users::{UserPane, UserTable, Users};
use crate::engine::overview::UserRow;
use crate::engine::users::UserDetail;
use crate::model::UserState;
use crate::tui::table::{self, Cell, Column, Note, Row, TableSpec};
use crate::tui::theme::Slot;
use crate::tui::widgets::{days_left, kv, num, panel, plural, safe};
use chrono::NaiveDate;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};

/// Which columns a user table shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Columns {
    Users,
    Limbo,
}

const USER_COLUMNS: [Column; 7] = [
    Column::fixed("username", 20),
    Column::fill("name", 2, 16),
    Column::fixed("state", 6),
    Column::fill("schools", 1, 10),
    Column::fill("roles", 1, 10),
    Column::fixed("record uid", 14),
    Column::fixed("purge", 10),
];

const LIMBO_COLUMNS: [Column; 6] = [
    Column::fixed("username", 20),
    Column::fill("name", 1, 16),
    Column::fixed("purge", 10),
    Column::fixed("left", 12),
    Column::fill("roles", 1, 10),
    Column::fixed("record uid", 14),
];

impl Columns {
    pub fn columns(self) -> &'static [Column] {
        match self {
            Columns::Users => &USER_COLUMNS,
            Columns::Limbo => &LIMBO_COLUMNS,
        }
    }
}

fn roles(r: &UserRow) -> String {
    r.roles.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(",")
}

/// The title's count: `1,000,000 users`, `10,000+ users`, `… users`.
fn count_label(t: &UserTable, one: &str, many: &str) -> String {
    match t.total {
        Some(c) if c.capped => format!("{}+ {many}", num(c.n)),
        Some(c) => plural(c.n, one, many),
        None => format!("… {many}"),
    }
}

/// One user as a table row.
pub fn user_row(r: &UserRow, cols: Columns, today: NaiveDate) -> Row {
    let name = format!("{}, {}", r.lastname, r.firstname);
    let purge = r.purge_at.map(|d| d.to_string()).unwrap_or_default();
    let state_slot = if r.state == UserState::Limbo {
        Slot::Limbo
    } else {
        Slot::Active
    };
    let cells = match cols {
        Columns::Users => vec![
            Cell::new(&r.username),
            Cell::new(name),
            Cell::styled(r.state.as_str(), state_slot),
            Cell::new(r.schools.join(",")),
            Cell::new(roles(r)),
            Cell::new(&r.record_uid),
            Cell::new(purge),
        ],
        Columns::Limbo => {
            let left = r.purge_at.map(|d| days_left(today, d)).unwrap_or_default();
            let overdue = r.purge_at.is_some_and(|d| d <= today);
            vec![
                Cell::new(&r.username),
                Cell::new(name),
                Cell::new(purge),
                if overdue {
                    Cell::styled(left, Slot::Warn)
                } else {
                    Cell::new(left)
                },
                Cell::new(roles(r)),
                Cell::new(&r.record_uid),
            ]
        }
    };
    Row::new(r.username.clone(), cells)
}

pub fn render_table(t: &mut UserTable, cols: Columns, title: String, frame: &mut Frame, area: Rect, rc: &RenderCtx) {
    let today = rc.clock.today();
    let len = t.rows() as usize;
    let empty = t.total.is_some_and(|c| c.n == 0);
    let note = match (&t.error, t.loading(), empty) {
        (Some(e), _, _) => Note::Error(e),
        (None, true, _) => Note::Loading,
        (None, false, true) => Note::Empty("no matches"),
        _ => Note::Rows,
    };
    let spec = TableSpec {
        title,
        columns: cols.columns(),
        len,
        note,
        hint: None,
        focused: true,
    };
    let mut state = std::mem::take(&mut t.state);
    table::render(
        &mut state,
        spec,
        &mut |i| t.row(i as u64).map(|r| user_row(r, cols, today)),
        frame,
        area,
        rc.theme,
    );
    t.state = state;
}

pub fn render_users(v: &mut Users, frame: &mut Frame, area: Rect, rc: &RenderCtx) {
    let mut title = format!("Users · {}", count_label(&v.table, "user", "users"));
    if let Some(s) = &v.table.base.school {
        title.push_str(&format!(" · school {}", safe(s)));
    }
    title.push_str(&format!(" · {} · sort {}", v.state_label(), v.sort_label()));
    if v.table.base.descending {
        title.push_str(" ↓");
    }
    super::push_filter(&mut title, &v.table.filter);
    if !v.show_detail {
        render_table(&mut v.table, Columns::Users, title, frame, area, rc);
        return;
    }
    if area.width >= 120 {
        let [left, right] = Layout::horizontal([Constraint::Percentage(58), Constraint::Percentage(42)]).areas(area);
        render_table(&mut v.table, Columns::Users, title, frame, left, rc);
        render_pane(v, frame, right, rc);
    } else {
        let [top, bottom] = Layout::vertical([Constraint::Length(7), Constraint::Min(6)]).areas(area);
        render_table(&mut v.table, Columns::Users, title, frame, top, rc);
        render_pane(v, frame, bottom, rc);
    }
}

/// The pane's title: the user and the three panes, the shown one marked.
pub(super) fn pane_title(user: &str, pane: UserPane) -> String {
    let names = [
        (UserPane::Info, "info"),
        (UserPane::Sync, "sync"),
        (UserPane::History, "history"),
        (UserPane::Authorities, "authorities"),
    ];
    let tabs: Vec<String> = names
        .iter()
        .map(|(p, n)| if *p == pane { format!("[{n}]") } else { n.to_string() })
        .collect();
    format!("User {user} · {} (v)", tabs.join(" "))
}

fn render_pane(v: &Users, frame: &mut Frame, area: Rect, rc: &RenderCtx) {
    let t = rc.theme;
    let name = v.table.selected_row().map(|r| r.username.clone()).unwrap_or_default();
    match v.pane {
        UserPane::Info => render_detail(v.detail.as_ref(), frame, area, rc),
        UserPane::Sync => {
            let mut lines = Vec::new();
            match v.sync_items.as_ref().filter(|(n, _)| *n == name) {
                None => lines.push(Line::from(Span::styled("loading…", t.get(Slot::Dim)))),
                Some((_, items)) if items.is_empty() => lines.push(Line::from(Span::styled(
                    "nothing queued or in trash for this user",
                    t.get(Slot::Dim),
                ))),
                Some((_, items)) => {
                    for i in items {
                        let slot = if i.state == "trash" { Slot::Error } else { Slot::Accent };
                        lines.push(Line::from(vec![
                            Span::styled(format!("{:<14} ", safe(&i.authority)), t.get(Slot::Base)),
                            Span::styled(format!("{:<9}", i.state), t.get(slot)),
                            Span::styled(format!("attempts {} ", i.attempts), t.get(Slot::Dim)),
                        ]));
                        if let Some(e) = &i.error {
                            lines.push(Line::from(Span::styled(format!("  {}", safe(e)), t.get(Slot::Error))));
                        }
                    }
                }
            }
            if !rc.info.read_only {
                lines.push(Line::from(""));
                lines.push(Line::from(Span::styled(
                    "y schedules a sync of this user to every active authority",
                    t.get(Slot::Dim),
                )));
            }
            frame.render_widget(
                Paragraph::new(lines)
                    .wrap(Wrap { trim: false })
                    .block(panel(pane_title(&name, v.pane), t)),
                area,
            );
        }
        UserPane::Authorities => {
            let held = v
                .holdings
                .as_ref()
                .filter(|(n, _)| *n == name)
                .map(|(_, h)| h.as_slice());
            super::holdings::render_holdings(&name, held, frame, area, rc);
        }
        UserPane::History => {
            let mut lines = Vec::new();
            match v.history.as_ref().filter(|(n, _)| *n == name) {
                None => lines.push(Line::from(Span::styled("loading…", t.get(Slot::Dim)))),
                Some((_, h)) if h.is_empty() => lines.push(Line::from(Span::styled(
                    "no feed has mentioned this user yet",
                    t.get(Slot::Dim),
                ))),
                Some((_, h)) => {
                    for e in h.iter().rev() {
                        let event = if e.current {
                            format!("{} (current)", e.event)
                        } else {
                            e.event.clone()
                        };
                        lines.push(Line::from(vec![
                            Span::styled(
                                format!("{} ", e.at.get(..16).unwrap_or(&e.at).replace('T', " ")),
                                t.get(Slot::Dim),
                            ),
                            Span::styled(format!("{} ", safe(&e.school)), t.get(Slot::Accent)),
                            Span::styled(safe(&event), t.get(Slot::Base)),
                            Span::styled(
                                e.line.map(|l| format!(" · line {l}")).unwrap_or_default(),
                                t.get(Slot::Dim),
                            ),
                        ]));
                        if let Some(row) = &e.row {
                            let fields: Vec<String> = row
                                .iter()
                                .map(|(k, v)| {
                                    format!(
                                        "{k}={}",
                                        v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string())
                                    )
                                })
                                .collect();
                            lines.push(Line::from(Span::styled(
                                format!("  {}", safe(&fields.join(" · "))),
                                t.get(Slot::Base),
                            )));
                        }
                    }
                }
            }
            frame.render_widget(
                Paragraph::new(lines)
                    .wrap(Wrap { trim: false })
                    .block(panel(pane_title(&name, v.pane), t)),
                area,
            );
        }
    }
}

fn purge_line(today: NaiveDate, purge: Option<&str>) -> String {
    match purge.and_then(|p| NaiveDate::parse_from_str(p, "%Y-%m-%d").ok()) {
        Some(d) => format!("{d} ({})", days_left(today, d)),
        None => "-".into(),
    }
}

pub fn render_detail(d: Option<&UserDetail>, frame: &mut Frame, area: Rect, rc: &RenderCtx) {
    let t = rc.theme;
    let Some(d) = d else {
        frame.render_widget(Paragraph::new("loading…").block(panel("User", t)), area);
        return;
    };
    let u = &d.user;
    let state_slot = if u.state == "limbo" { Slot::Limbo } else { Slot::Active };
    let mut lines = vec![
        kv("name", format!("{} {}", u.firstname, u.lastname), t),
        kv("record uid", format!("{} (source {})", u.record_uid, u.source_uid), t),
        Line::from(vec![
            Span::styled(format!("{:<14}", "state"), t.get(Slot::Dim)),
            Span::styled(u.state, t.get(state_slot)),
            Span::styled(if u.disabled { " · disabled" } else { "" }, t.get(Slot::Warn)),
        ]),
        kv("purge date", purge_line(rc.clock.today(), u.purge_at.as_deref()), t),
        kv("email", u.email.clone().unwrap_or_else(|| "-".into()), t),
        kv("birthday", u.birthday.clone().unwrap_or_else(|| "-".into()), t),
        kv("primary", u.primary_school.clone(), t),
    ];
    for school in &u.schools {
        let roles = u
            .school_roles
            .get(school)
            .map(|r| r.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(","))
            .unwrap_or_default();
        let classes = u.classes.get(school).map(|c| c.join(",")).unwrap_or_default();
        lines.push(Line::from(vec![
            Span::styled(format!("  {} ", safe(school)), t.get(Slot::Accent)),
            Span::styled(format!("{roles} "), t.get(Slot::Base)),
            Span::styled(
                if classes.is_empty() {
                    String::new()
                } else {
                    format!("classes {}", safe(&classes))
                },
                t.get(Slot::Dim),
            ),
        ]));
    }
    lines.push(kv("changed", u.updated_at.clone(), t));
    lines.push(Line::from(Span::styled("last received feed row", t.get(Slot::Header))));
    match &d.last_received {
        None => lines.push(Line::from(Span::styled(
            "  none (not imported by a feed)",
            t.get(Slot::Dim),
        ))),
        Some(r) => {
            lines.push(Line::from(Span::styled(
                format!("  {} · line {} · run {}", safe(&r.school), r.line, r.run_id),
                t.get(Slot::Dim),
            )));
            for (k, v) in &r.row {
                let v = v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string());
                lines.push(Line::from(vec![
                    Span::styled(format!("  {:<11} ", safe(k)), t.get(Slot::Dim)),
                    Span::styled(safe(&v), t.get(Slot::Base)),
                ]));
            }
        }
    }
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(panel(pane_title(&u.username, UserPane::Info), t)),
        area,
    );
}
