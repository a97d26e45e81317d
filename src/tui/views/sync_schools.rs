//! Sync schools: each authority and the schools it syncs, with where each
//! assignment comes from (`config`, `data_dir` — added from here or with
//! `sync-schools add` — or both) and the config schools taken away
//! (`excluded`). `a` adds schools to the selected authority (a multi-select
//! chooser with the initial-sync and force options, then y/n), `x` removes
//! schools (the same chooser, the school under the cursor marked, with the
//! delete-on-target and force options; keeping objects on the target: y/n,
//! deleting them there: the typed word). The engine refuses in read-only
//! mode and audits.

use super::{Ctx, Level, RenderCtx, View, ViewId};
use crate::engine::sync::assign::{AuthoritySchools, SchoolsAdd, SchoolsRemove};
use crate::tui::action::Action;
use crate::tui::chooser::Chooser;
use crate::tui::overlay::{self, Answer, Overlay, Tag};
use crate::tui::request::{Call, Data};
use crate::tui::theme::Slot;
use crate::tui::widgets::{kv, panel};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::Span;
use ratatui::widgets::{Cell, Paragraph, Row, Table, Wrap};

/// The options of the add and remove choosers.
const INITIAL_SYNC: &str = "initial sync: queue the schools' users and groups now";
const FORCE_ADD: &str = "force: add (and schedule) schools assigned already";
const DELETE_ON_TARGET: &str = "delete on target: delete the schools' objects there";
const FORCE_REMOVE: &str = "force: remove schools that are not assigned";

/// What the school names being loaded are for.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Pending {
    Add(String),
    /// The authority, and the school the cursor was on (pre-marked).
    Remove(String, Option<String>),
}

/// One line of the table: an authority's school (or the authority itself
/// when it syncs none).
#[derive(Clone, Debug, PartialEq)]
pub struct SchoolLine {
    pub authority: String,
    pub school: Option<String>,
    pub source: &'static str,
    pub detail: String,
}

#[derive(Default)]
pub struct SyncSchools {
    pub rows: Vec<AuthoritySchools>,
    pub loaded: bool,
    pub error: Option<String>,
    pub selected: usize,
    pub filter: String,
    /// An add or remove whose school chooser is loading.
    pending: Option<Pending>,
}

impl SyncSchools {
    pub fn lines(&self) -> Vec<SchoolLine> {
        let f = self.filter.to_lowercase();
        let mut out = Vec::new();
        for a in &self.rows {
            let mut mine = Vec::new();
            for s in &a.schools {
                let detail = match (&s.since, &s.by) {
                    (Some(at), Some(by)) => format!("added {} by {by}", at.format("%Y-%m-%d %H:%M")),
                    (Some(at), None) => format!("added {}", at.format("%Y-%m-%d %H:%M")),
                    _ if a.config_all => "config: schools = [\"*\"]".into(),
                    _ => String::new(),
                };
                mine.push(SchoolLine {
                    authority: a.authority.clone(),
                    school: Some(s.school.clone()),
                    source: s.source,
                    detail,
                });
            }
            for s in &a.excluded {
                mine.push(SchoolLine {
                    authority: a.authority.clone(),
                    school: Some(s.school.clone()),
                    source: "excluded",
                    detail: match &s.by {
                        Some(by) => format!("removed by {by}"),
                        None => "removed from the config's list".into(),
                    },
                });
            }
            if mine.is_empty() {
                mine.push(SchoolLine {
                    authority: a.authority.clone(),
                    school: None,
                    source: "-",
                    detail: "no schools: a adds one".into(),
                });
            }
            out.extend(mine.into_iter().filter(|l| {
                f.is_empty()
                    || l.authority.contains(&f)
                    || l.source.contains(&f)
                    || l.school.as_deref().is_some_and(|s| s.to_lowercase().contains(&f))
            }));
        }
        out
    }

    fn assigned(&self, authority: &str, school: &str) -> bool {
        self.rows
            .iter()
            .filter(|a| a.authority == authority)
            .any(|a| a.schools.iter().any(|s| s.school == school))
    }

    /// The chooser over every school, each noted with its assignment.
    fn chooser(&self, pending: Pending, names: Vec<String>) -> Chooser {
        let (authority, tag, title, toggles) = match &pending {
            Pending::Add(a) => (
                a.clone(),
                Tag::SchoolsAddPick { authority: a.clone() },
                format!("Add schools to {a}"),
                vec![(INITIAL_SYNC.to_string(), true), (FORCE_ADD.to_string(), false)],
            ),
            Pending::Remove(a, _) => (
                a.clone(),
                Tag::SchoolsRemovePick { authority: a.clone() },
                format!("Remove schools from {a}"),
                vec![(DELETE_ON_TARGET.to_string(), false), (FORCE_REMOVE.to_string(), false)],
            ),
        };
        let items = names
            .into_iter()
            .map(|n| {
                let note = if self.assigned(&authority, &n) { "synced" } else { "" };
                (n, note.to_string())
            })
            .collect();
        let mut c = Chooser::new(ViewId::SyncSchools, tag, title, items, toggles);
        if let Pending::Remove(_, Some(school)) = &pending {
            c.mark(school);
        }
        c
    }
}

impl View for SyncSchools {
    fn id(&self) -> ViewId {
        ViewId::SyncSchools
    }

    fn load(&mut self, ctx: &mut Ctx) {
        ctx.ask(ViewId::SyncSchools, Call::SyncSchools);
    }

    fn on_action(&mut self, action: Action, ctx: &mut Ctx) -> bool {
        let lines = self.lines();
        let n = lines.len();
        match action {
            Action::Up => self.selected = self.selected.saturating_sub(1),
            Action::Down => self.selected = (self.selected + 1).min(n.saturating_sub(1)),
            Action::PageUp | Action::Top => self.selected = 0,
            Action::PageDown | Action::Bottom => self.selected = n.saturating_sub(1),
            Action::AddSchool | Action::RemoveSchool => {
                let Some(line) = lines.get(self.selected) else {
                    ctx.status(Level::Warn, "no authority selected");
                    return true;
                };
                self.pending = Some(if action == Action::AddSchool {
                    Pending::Add(line.authority.clone())
                } else {
                    let here = line
                        .school
                        .clone()
                        .filter(|s| line.source != "excluded" && self.assigned(&line.authority, s));
                    Pending::Remove(line.authority.clone(), here)
                });
                ctx.ask(ViewId::SyncSchools, Call::SchoolNames);
            }
            _ => return false,
        }
        true
    }

    fn on_reply(&mut self, _call: &'static str, result: Result<Data, String>, ctx: &mut Ctx) {
        match result {
            Ok(Data::SyncSchools(rows)) => {
                self.rows = rows;
                self.loaded = true;
                self.error = None;
                self.selected = self.selected.min(self.lines().len().saturating_sub(1));
            }
            Ok(Data::SchoolNames(names)) => {
                if let Some(p) = self.pending.take() {
                    ctx.overlay(Overlay::Choose(self.chooser(p, names)));
                }
            }
            Ok(Data::Done(msg)) => {
                ctx.status(Level::Ok, msg);
                ctx.ask(ViewId::SyncSchools, Call::SyncSchools);
            }
            Ok(_) => {}
            Err(e) => {
                self.pending = None;
                ctx.status(Level::Error, e);
            }
        }
    }

    fn on_answer(&mut self, tag: Tag, answer: Answer, ctx: &mut Ctx) {
        match (tag, answer) {
            (Tag::SchoolsAddPick { authority }, Answer::Chosen { items, toggles }) => {
                let initial_sync = toggles.first().copied().unwrap_or(true);
                let force = toggles.get(1).copied().unwrap_or(false);
                let again: Vec<&String> = items.iter().filter(|s| self.assigned(&authority, s)).collect();
                if !force && !again.is_empty() {
                    ctx.status(
                        Level::Warn,
                        format!(
                            "{authority} syncs {} already: unmark them or switch force on",
                            again.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
                        ),
                    );
                    return;
                }
                ctx.overlay(overlay::yes_no(
                    ViewId::SyncSchools,
                    Tag::SchoolsAdd {
                        authority: authority.clone(),
                        schools: items.clone(),
                        initial_sync,
                        force,
                    },
                    "Add schools",
                    vec![
                        format!(
                            "Sync {} to {authority}{}?",
                            items.join(", "),
                            if force { " (force)" } else { "" }
                        ),
                        if initial_sync {
                            "Their users and groups are queued for the authority now.".into()
                        } else {
                            "Nothing is queued now; objects go out as they change.".into()
                        },
                    ],
                ));
            }
            (
                Tag::SchoolsAdd {
                    authority,
                    schools,
                    initial_sync,
                    force,
                },
                Answer::Yes,
            ) => ctx.ask(
                ViewId::SyncSchools,
                Call::SchoolsAdd(SchoolsAdd {
                    authority,
                    schools,
                    all_schools: false,
                    initial_sync,
                    force,
                }),
            ),
            (Tag::SchoolsRemovePick { authority }, Answer::Chosen { items, toggles }) => {
                let delete_on_target = toggles.first().copied().unwrap_or(false);
                let force = toggles.get(1).copied().unwrap_or(false);
                let strays: Vec<&String> = items.iter().filter(|s| !self.assigned(&authority, s)).collect();
                if !force && !strays.is_empty() {
                    ctx.status(
                        Level::Warn,
                        format!(
                            "{authority} does not sync {}: unmark them or switch force on",
                            strays.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
                        ),
                    );
                    return;
                }
                let list = items.join(", ");
                let tag = Tag::SchoolsRemove {
                    authority: authority.clone(),
                    schools: items,
                    delete_on_target,
                    force,
                };
                let forced = if force { " (force)" } else { "" };
                ctx.overlay(if delete_on_target {
                    overlay::typed(
                        ViewId::SyncSchools,
                        tag,
                        "Remove schools and delete on target",
                        vec![
                            format!("Stop syncing {list} to {authority}{forced} and DELETE"),
                            format!("their users and groups on {authority}. This cannot be undone here."),
                            "Type delete to confirm.".into(),
                        ],
                        "delete",
                    )
                } else {
                    overlay::yes_no(
                        ViewId::SyncSchools,
                        tag,
                        "Remove schools",
                        vec![
                            format!("Stop syncing {list} to {authority}{forced}?"),
                            "Their objects stay on the target.".into(),
                        ],
                    )
                });
            }
            (
                Tag::SchoolsRemove {
                    authority,
                    schools,
                    delete_on_target,
                    force,
                },
                Answer::Yes,
            ) => ctx.ask(
                ViewId::SyncSchools,
                Call::SchoolsRemove(SchoolsRemove {
                    authority,
                    schools,
                    delete_on_target,
                    force,
                }),
            ),
            _ => {}
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
        let wide = area.width >= 120;
        let lines = self.lines();
        let table_h = (lines.len() as u16 + 3).clamp(5, area.height.saturating_sub(7).max(5));
        let [top, bottom] = Layout::vertical([Constraint::Length(table_h), Constraint::Min(3)]).areas(area);
        // Keep the selection in sight.
        let room = table_h.saturating_sub(3) as usize;
        let skip = self.selected.saturating_sub(room.saturating_sub(1));
        let mut rows = Vec::new();
        for (i, l) in lines.iter().enumerate().skip(skip) {
            let slot = match l.source {
                "excluded" => Slot::Warn,
                "-" => Slot::Dim,
                _ => Slot::Base,
            };
            let mut cells = vec![
                Cell::from(l.authority.clone()),
                Cell::from(match l.school.as_deref() {
                    Some("*") => "* (every school)".to_string(),
                    Some(s) => s.to_string(),
                    None => "-".into(),
                }),
                Cell::from(Span::styled(l.source, t.get(slot))),
            ];
            if wide {
                cells.push(Cell::from(l.detail.clone()));
            }
            let style = if i == self.selected {
                t.get(Slot::Selected)
            } else {
                t.get(Slot::Base)
            };
            rows.push(Row::new(cells).style(style));
        }
        let mut header = vec!["authority", "school", "source"];
        let mut widths = vec![
            Constraint::Length(18),
            Constraint::Length(24),
            if wide {
                Constraint::Length(16)
            } else {
                Constraint::Fill(1)
            },
        ];
        if wide {
            header.push("assignment");
            widths.push(Constraint::Fill(1));
        }
        let mut title = format!("Sync schools · {} authorities", self.rows.len());
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

        let Some(l) = lines.get(self.selected) else {
            frame.render_widget(Paragraph::new("").block(panel("Authority", t)), bottom);
            return;
        };
        let Some(a) = self.rows.iter().find(|a| a.authority == l.authority) else {
            return;
        };
        let mut text = vec![
            kv(
                "kind",
                format!("{}{}", a.kind, if a.active { "" } else { " (inactive)" }),
                t,
            ),
            kv(
                "schools",
                format!(
                    "{} synced{} · {} excluded",
                    a.schools.len(),
                    if a.config_all { " (config: every school)" } else { "" },
                    a.excluded.len()
                ),
                t,
            ),
        ];
        if let Some(s) = &l.school {
            text.push(kv("school", format!("{s} · {}", l.source), t));
            if !l.detail.is_empty() {
                text.push(kv("assignment", l.detail.clone(), t));
            }
        }
        if !rc.info.read_only {
            text.push(kv(
                "actions",
                "a adds schools · x removes schools (Space marks)".into(),
                t,
            ));
        }
        frame.render_widget(
            Paragraph::new(text)
                .wrap(Wrap { trim: false })
                .block(panel(format!("Authority {}", a.authority), t)),
            bottom,
        );
    }
}
