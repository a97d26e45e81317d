//! Sync schools: each authority and the schools it syncs, with where each
//! assignment comes from (`config`, `data_dir` — added from here or with
//! `sync-schools add` — or both) and the config schools taken away
//! (`excluded`). `a` adds schools to the selected authority (a multi-select
//! chooser with the initial-sync and force options, then y/n), `x` removes
//! schools (the same chooser, the school under the cursor marked, with the
//! delete-on-target and force options; keeping objects on the target: y/n,
//! deleting them there: the typed word). The engine refuses in read-only
//! mode and audits.

use super::{Ctx, Level, RenderCtx, View, ViewId, Watch};
use crate::engine::sync::assign::{AuthoritySchools, SchoolsAdd, SchoolsRemove};
use crate::engine::sync::assign_preview::SchoolsPreview;
use crate::tui::action::Action;
use crate::tui::chooser::Chooser;
use crate::tui::overlay::{Answer, Ask, Overlay, Tag};
use crate::tui::request::{Call, Data};
use crate::tui::table::{self, Cell, Column, Note, Row, TableSpec, TableState};
use crate::tui::theme::Slot;
use crate::tui::widgets::{kv, num, panel, plural};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::widgets::{Paragraph, Wrap};

const COLUMNS: [Column; 4] = [
    Column::fixed("authority", 18),
    Column::fill("school", 1, 20),
    Column::fixed("source", 16),
    Column::fill("assignment", 2, 16),
];

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

/// An add or remove waiting for its dry run.
#[derive(Clone, Debug)]
enum Previewing {
    Add(SchoolsAdd),
    Remove(SchoolsRemove),
}

#[derive(Default)]
pub struct SyncSchools {
    pub rows: Vec<AuthoritySchools>,
    pub loaded: bool,
    pub error: Option<String>,
    pub table: TableState,
    pub filter: String,
    /// An add or remove whose school chooser is loading.
    pending: Option<Pending>,
    previewing: Option<Previewing>,
}

/// What the dry run found, as the confirmation's lines.
fn consequences(p: &SchoolsPreview) -> Vec<String> {
    let mut lines = Vec::new();
    if !p.schedule {
        lines.push("Nothing is queued: only the assignment changes.".into());
        return lines;
    }
    lines.push(format!(
        "{} would be queued for {} ({} already waiting):",
        plural(p.objects, "object", "objects"),
        p.authority,
        num(p.waiting)
    ));
    if p.action == "add" {
        lines.push(format!(
            "  {} sent · {} skipped · {} failing to map (to the trash)",
            num(p.send),
            num(p.skip),
            num(p.unmappable)
        ));
    } else {
        lines.push(format!(
            "  {} deleted on the target · {} updated there (still synced by another school)",
            num(p.delete),
            num(p.send)
        ));
        if p.unmappable > 0 {
            lines.push(format!("  {} failing to map (to the trash)", num(p.unmappable)));
        }
    }
    for f in p.failures.iter().take(3) {
        lines.push(format!("  ✗ {f}"));
    }
    if p.unmappable > p.failures.len().min(3) as u64 {
        lines.push(format!(
            "  … and {} more",
            num(p.unmappable - p.failures.len().min(3) as u64)
        ));
    }
    lines
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
                vec![
                    (INITIAL_SYNC.to_string(), SchoolsAdd::DEFAULT_INITIAL_SYNC),
                    (FORCE_ADD.to_string(), false),
                ],
            ),
            Pending::Remove(a, _) => (
                a.clone(),
                Tag::SchoolsRemovePick { authority: a.clone() },
                format!("Remove schools from {a}"),
                vec![
                    (DELETE_ON_TARGET.to_string(), SchoolsRemove::DEFAULT_DELETE_ON_TARGET),
                    (FORCE_REMOVE.to_string(), false),
                ],
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

    fn ready(&self) -> bool {
        self.loaded
    }

    fn watches(&self) -> Watch {
        Watch {
            state: true,
            ..Watch::NONE
        }
    }

    fn on_action(&mut self, action: Action, ctx: &mut Ctx) -> bool {
        let lines = self.lines();
        let n = lines.len();
        if self.table.navigate(action, n) {
            return true;
        }
        match action {
            Action::Describe => {
                if let Some(l) = lines.get(self.table.selected) {
                    let row = line_row(l);
                    ctx.describe(format!("Authority {}", l.authority), table::describe(&COLUMNS, &row));
                }
            }
            Action::AddSchool | Action::RemoveSchool => {
                let Some(line) = lines.get(self.table.selected) else {
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

    fn on_reply(&mut self, _call: Call, result: Result<Data, String>, ctx: &mut Ctx) {
        match result {
            Ok(Data::SyncSchools(rows)) => {
                self.rows = rows;
                self.loaded = true;
                self.error = None;
                let keys: Vec<String> = self.lines().iter().map(line_key).collect();
                self.table.follow(keys.iter().map(String::as_str));
            }
            Ok(Data::Preview(p)) => match self.previewing.take() {
                Some(Previewing::Add(req)) => {
                    let mut lines = vec![format!(
                        "Add {} to {}{}?",
                        req.schools.join(", "),
                        req.authority,
                        if req.force { " (force)" } else { "" }
                    )];
                    lines.extend(consequences(&p));
                    ctx.confirm(
                        Action::AddSchool,
                        Ask {
                            owner: ViewId::SyncSchools,
                            tag: Tag::SchoolsAdd {
                                authority: req.authority,
                                schools: req.schools,
                                initial_sync: req.initial_sync,
                                force: req.force,
                            },
                            title: "Add schools".into(),
                            lines,
                            word: "add".into(),
                            escalate: false,
                        },
                    );
                }
                Some(Previewing::Remove(req)) => {
                    let list = req.schools.join(", ");
                    let forced = if req.force { " (force)" } else { "" };
                    let mut lines = if req.delete_on_target {
                        vec![format!(
                            "Stop syncing {list} to {}{forced} and DELETE their objects there:",
                            req.authority
                        )]
                    } else {
                        vec![format!(
                            "Stop syncing {list} to {}{forced}? Their objects stay on the target.",
                            req.authority
                        )]
                    };
                    lines.extend(consequences(&p));
                    let escalate = req.delete_on_target;
                    if escalate {
                        lines.push("This cannot be undone here.".into());
                    }
                    ctx.confirm(
                        Action::RemoveSchool,
                        Ask {
                            owner: ViewId::SyncSchools,
                            tag: Tag::SchoolsRemove {
                                authority: req.authority,
                                schools: req.schools,
                                delete_on_target: req.delete_on_target,
                                force: req.force,
                            },
                            title: if escalate {
                                "Remove schools and delete on target".into()
                            } else {
                                "Remove schools".into()
                            },
                            lines,
                            word: "delete".into(),
                            escalate,
                        },
                    );
                }
                None => {}
            },
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
                self.previewing = None;
                ctx.status(Level::Error, e);
            }
        }
    }

    fn on_answer(&mut self, tag: Tag, answer: Answer, ctx: &mut Ctx) {
        match (tag, answer) {
            (Tag::SchoolsAddPick { authority }, Answer::Chosen { items, toggles }) => {
                let initial_sync = toggles.first().copied().unwrap_or(SchoolsAdd::DEFAULT_INITIAL_SYNC);
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
                let req = SchoolsAdd {
                    authority,
                    schools: items,
                    all_schools: false,
                    initial_sync,
                    force,
                };
                ctx.status(Level::Info, "working out what the add would do…");
                self.previewing = Some(Previewing::Add(req.clone()));
                ctx.ask(ViewId::SyncSchools, Call::SchoolsAddPreview(req));
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
                let delete_on_target = toggles
                    .first()
                    .copied()
                    .unwrap_or(SchoolsRemove::DEFAULT_DELETE_ON_TARGET);
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
                let req = SchoolsRemove {
                    authority,
                    schools: items,
                    delete_on_target,
                    force,
                };
                ctx.status(Level::Info, "working out what the removal would do…");
                self.previewing = Some(Previewing::Remove(req.clone()));
                ctx.ask(ViewId::SyncSchools, Call::SchoolsRemovePreview(req));
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

    fn click(&mut self, x: u16, y: u16, _ctx: &mut Ctx) -> bool {
        self.table.click(x, y, self.lines().len());
        false
    }

    fn set_filter(&mut self, text: String, _ctx: &mut Ctx) {
        self.filter = text;
        self.table.reset();
    }

    fn render(&mut self, frame: &mut Frame, area: Rect, rc: &RenderCtx) {
        let t = rc.theme;
        let lines = self.lines();
        let table_h = (lines.len() as u16 + 4).clamp(5, area.height.saturating_sub(7).max(5));
        let [top, bottom] = Layout::vertical([Constraint::Length(table_h), Constraint::Min(3)]).areas(area);
        let mut title = format!(
            "Sync schools · {}",
            plural(self.rows.len() as u64, "authority", "authorities")
        );
        super::push_filter(&mut title, &self.filter);
        let len = lines.len();
        let spec = TableSpec {
            title,
            columns: &COLUMNS,
            len,
            note: Note::of(
                self.error.as_deref(),
                self.loaded,
                self.rows.len(),
                "no authorities configured: add [authorities.NAME] to the config",
            ),
            hint: None,
            focused: true,
        };
        let mut state = std::mem::take(&mut self.table);
        table::render(&mut state, spec, &mut |i| lines.get(i).map(line_row), frame, top, t);
        let selected = state.selected;
        self.table = state;

        let Some(l) = lines.get(selected) else {
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

/// A line's key: the cursor stays on it across reloads.
fn line_key(l: &SchoolLine) -> String {
    format!("{}/{}", l.authority, l.school.as_deref().unwrap_or("-"))
}

fn line_row(l: &SchoolLine) -> Row {
    let slot = match l.source {
        "excluded" => Slot::Warn,
        "-" => Slot::Dim,
        _ => Slot::Base,
    };
    Row::new(
        line_key(l),
        vec![
            Cell::new(&l.authority),
            Cell::new(match l.school.as_deref() {
                Some("*") => "* (every school)".to_string(),
                Some(s) => s.to_string(),
                None => "-".into(),
            }),
            Cell::styled(l.source, slot),
            Cell::new(&l.detail),
        ],
    )
}
