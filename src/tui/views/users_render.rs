//! Drawing the virtualised user tables (users and limbo) and the user
//! detail pane: attributes, schools with roles and classes, state and purge
//! date, and the feed row last received for the user; its queue and trash
//! items, its feed history (what each authority holds: [`super::holdings`]).

use super::RenderCtx;
use super::users::{UserPane, UserTable, Users};
use crate::engine::overview::UserRow;
use crate::engine::users::UserDetail;
use crate::model::UserState;
use crate::tui::theme::Slot;
use crate::tui::widgets::{days_left, kv, num, panel, scroll_to};
use chrono::NaiveDate;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Paragraph, Row, Table, Wrap};

/// Which columns a user table shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Columns {
    Users,
    Limbo,
}

fn roles(r: &UserRow) -> String {
    r.roles.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(",")
}

/// The title's count: `1,000,000 users`, `10,000+ users`, `… users`.
fn count_label(t: &UserTable, noun: &str) -> String {
    match t.total {
        Some(c) if c.capped => format!("{}+ {noun}", num(c.n)),
        Some(c) => format!("{} {noun}", num(c.n)),
        None => format!("… {noun}"),
    }
}

pub fn render_table(t: &mut UserTable, cols: Columns, title: String, frame: &mut Frame, area: Rect, rc: &RenderCtx) {
    let th = rc.theme;
    let today = rc.clock.today();
    let height = area.height.saturating_sub(3) as u64;
    t.height = height.max(1);
    t.top = scroll_to(t.top, t.selected, t.height);
    let wide = area.width >= 110;
    let mut rows = Vec::with_capacity(height as usize);
    for i in t.top..t.top + height {
        let Some(r) = t.row(i) else {
            continue;
        };
        let state_style = if r.state == UserState::Limbo {
            th.get(Slot::Limbo)
        } else {
            th.get(Slot::Active)
        };
        let name = format!("{}, {}", r.lastname, r.firstname);
        let purge = r.purge_at.map(|d| d.to_string()).unwrap_or_default();
        let cells: Vec<Cell> = match cols {
            Columns::Users => {
                let mut c = vec![
                    Cell::from(r.username.clone()),
                    Cell::from(name),
                    Cell::from(Span::styled(r.state.as_str(), state_style)),
                    Cell::from(r.schools.join(",")),
                    Cell::from(roles(r)),
                ];
                if wide {
                    c.push(Cell::from(r.record_uid.clone()));
                    c.push(Cell::from(purge));
                }
                c
            }
            Columns::Limbo => {
                let left = r.purge_at.map(|d| days_left(today, d)).unwrap_or_default();
                let overdue = r.purge_at.is_some_and(|d| d <= today);
                let mut c = vec![
                    Cell::from(r.username.clone()),
                    Cell::from(name),
                    Cell::from(roles(r)),
                    Cell::from(purge),
                    Cell::from(Span::styled(
                        left,
                        if overdue {
                            th.get(Slot::Warn)
                        } else {
                            th.get(Slot::Base)
                        },
                    )),
                ];
                if wide {
                    c.insert(3, Cell::from(r.record_uid.clone()));
                }
                c
            }
        };
        let style = if i == t.selected {
            th.get(Slot::Selected)
        } else {
            th.get(Slot::Base)
        };
        rows.push(Row::new(cells).style(style));
    }
    let (header, widths): (Vec<&str>, Vec<Constraint>) = match (cols, wide) {
        (Columns::Users, false) => (
            vec!["username", "name", "state", "schools", "roles"],
            vec![
                Constraint::Length(20),
                Constraint::Fill(2),
                Constraint::Length(6),
                Constraint::Fill(1),
                Constraint::Length(10),
            ],
        ),
        (Columns::Users, true) => (
            vec!["username", "name", "state", "schools", "roles", "record uid", "purge"],
            vec![
                Constraint::Length(20),
                Constraint::Fill(2),
                Constraint::Length(6),
                Constraint::Fill(2),
                Constraint::Length(14),
                Constraint::Length(14),
                Constraint::Length(10),
            ],
        ),
        (Columns::Limbo, false) => (
            vec!["username", "name", "roles", "purge", "left"],
            vec![
                Constraint::Length(20),
                Constraint::Fill(1),
                Constraint::Length(8),
                Constraint::Length(10),
                Constraint::Length(12),
            ],
        ),
        (Columns::Limbo, true) => (
            vec!["username", "name", "roles", "record uid", "purge", "left"],
            vec![
                Constraint::Length(20),
                Constraint::Fill(1),
                Constraint::Length(14),
                Constraint::Length(14),
                Constraint::Length(10),
                Constraint::Length(12),
            ],
        ),
    };
    let mut block = panel(title, th);
    if let Some(note) = super::table_note(
        t.error.as_deref(),
        t.loading(),
        t.total.is_some_and(|c| c.n == 0).then_some("no matches"),
        area.width,
        th,
    ) {
        block = block.title_bottom(note);
    } else {
        let pos = format!(" {} of {} ", num(t.selected + 1), count_label(t, "").trim_end());
        block = block.title_bottom(Line::from(Span::styled(pos, th.get(Slot::Dim))).right_aligned());
    }
    let table = Table::new(rows, widths)
        .header(Row::new(header).style(th.get(Slot::Header)))
        .block(block);
    frame.render_widget(table, area);
}

pub fn render_users(v: &mut Users, frame: &mut Frame, area: Rect, rc: &RenderCtx) {
    let mut title = format!("Users · {}", count_label(&v.table, "users"));
    if let Some(s) = &v.table.base.school {
        title.push_str(&format!(" · school {s}"));
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
                            Span::styled(format!("{:<14} ", i.authority), t.get(Slot::Base)),
                            Span::styled(format!("{:<9}", i.state), t.get(slot)),
                            Span::styled(format!("attempts {} ", i.attempts), t.get(Slot::Dim)),
                        ]));
                        if let Some(e) = &i.error {
                            lines.push(Line::from(Span::styled(format!("  {e}"), t.get(Slot::Error))));
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
                            Span::styled(format!("{} ", e.school), t.get(Slot::Accent)),
                            Span::styled(event, t.get(Slot::Base)),
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
                                format!("  {}", fields.join(" · ")),
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
            Span::styled(format!("  {school} "), t.get(Slot::Accent)),
            Span::styled(format!("{roles} "), t.get(Slot::Base)),
            Span::styled(
                if classes.is_empty() {
                    String::new()
                } else {
                    format!("classes {classes}")
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
                format!("  {} · line {} · run {}", r.school, r.line, r.run_id),
                t.get(Slot::Dim),
            )));
            for (k, v) in &r.row {
                let v = v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string());
                lines.push(Line::from(vec![
                    Span::styled(format!("  {k:<12}"), t.get(Slot::Dim)),
                    Span::styled(v, t.get(Slot::Base)),
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
