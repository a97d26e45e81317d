//! Jobs and runs: this session's jobs with progress (done/total, rate,
//! ETA) and cancel; the run history with counts and status; a run's detail
//! (summary, log, archived input). Starting work happens here too:
//!
//! * import: pick school, role and feed file → a dry-run job computes the
//!   plan → the preview is the confirmation (y/n; a typed word when the plan
//!   removes users or the guard refused and only `force` would apply it) →
//!   the real import runs as a job;
//! * purge: as-of date → a dry-run job lists who is due → type `purge` →
//!   the purge runs as a job;
//! * sync: pick an authority → one drain of its queue runs as a job (as
//!   "drain now" in the queues view).

use super::{Ctx, Level, RenderCtx, View, ViewId};
use crate::engine::api::{EngineEvent, JobId, JobKind, JobOutcome};
use crate::engine::import::{ImportOutcome, ImportRequest};
use crate::engine::limbo::PurgeOutcome;
use crate::engine::runs::RunRecord;
use crate::model::Role;
use crate::tui::action::Action;
use crate::tui::overlay::{self, Answer, Tag};
use crate::tui::request::{Call, Data, RunDetail};
use chrono::NaiveDate;
use ratatui::Frame;
use ratatui::layout::Rect;
use std::path::PathBuf;

/// Runs listed in the history.
pub const RUN_HISTORY: usize = 200;
/// Planned changes shown in the import preview.
const PREVIEW_CHANGES: usize = 8;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Pane {
    #[default]
    Summary,
    Log,
    Input,
}

/// Where the start of an import or purge stands.
#[derive(Clone, Debug, Default)]
pub enum Flow {
    #[default]
    Idle,
    PickSchool,
    PickFile {
        school: String,
        roles: Vec<Role>,
    },
    Previewing {
        job: JobId,
        req: ImportRequest,
    },
    Preview {
        req: ImportRequest,
        outcome: Box<ImportOutcome>,
    },
    PurgePreviewing {
        job: JobId,
        as_of: Option<NaiveDate>,
    },
}

#[derive(Default)]
pub struct Jobs {
    pub runs: Vec<RunRecord>,
    pub runs_loaded: bool,
    pub error: Option<String>,
    pub selected: usize,
    pub top: usize,
    pub height: usize,
    pub detail: Option<RunDetail>,
    pub show_detail: bool,
    pub pane: Pane,
    pub filter: String,
    pub flow: Flow,
    /// `n`: the authority picker is loading.
    picking_sync: bool,
}

const ROLE_CHOICES: [&str; 5] = [
    "student",
    "teacher",
    "staff",
    "school_admin",
    "all roles (role column decides)",
];

impl Jobs {
    pub fn visible(&self) -> Vec<&RunRecord> {
        let f = self.filter.to_lowercase();
        self.runs
            .iter()
            .filter(|r| {
                f.is_empty()
                    || r.id.contains(&f)
                    || r.kind.as_str().contains(&f)
                    || r.school.as_deref().unwrap_or("").contains(&f)
                    || super::dashboard::status_str(r.status).contains(&f)
            })
            .collect()
    }

    fn open_selected(&mut self, ctx: &mut Ctx) {
        if let Some(r) = self.visible().get(self.selected) {
            let id = r.id.clone();
            self.show_detail = true;
            if self.detail.as_ref().map(|d| &d.record.id) != Some(&id) {
                self.detail = None;
                ctx.ask(ViewId::Jobs, Call::RunDetail(id));
            }
        }
    }

    fn cancel(&mut self, ctx: &mut Ctx) {
        let running: Vec<_> = ctx.jobs.rows.iter().filter(|r| r.running()).collect();
        match running.first() {
            None => ctx.status(Level::Warn, "no job is running"),
            Some(job) => {
                ctx.status(Level::Info, format!("cancelling {}…", job.info.label));
                ctx.ask(ViewId::Jobs, Call::CancelJob(job.info.id));
            }
        }
    }

    /// Opens the confirmation for a previewed plan; `false` when there is
    /// nothing to apply.
    fn preview_confirm(&self, req: &ImportRequest, o: &ImportOutcome, ctx: &mut Ctx) -> bool {
        let mut lines = vec![
            format!(
                "{} · {} · scope {} users",
                req.school,
                req.file
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                o.scope
            ),
            format!(
                "created {} · modified {} · unchanged {} · added school {}",
                o.created, o.modified, o.unchanged, o.added_school
            ),
            format!(
                "removed school {} · to limbo {} · restored {} · row errors {}",
                o.removed_school,
                o.to_limbo,
                o.restored,
                o.errors.len()
            ),
        ];
        for c in o.changes.iter().take(PREVIEW_CHANGES) {
            lines.push(format!(
                "  {:<14} {} {}",
                format!("{:?}", c.action).to_lowercase(),
                c.username,
                c.record_uid
            ));
        }
        if o.changes.len() > PREVIEW_CHANGES {
            lines.push(format!(
                "  … {} more in dry-run run {}",
                o.changes.len() - PREVIEW_CHANGES,
                o.run_id
            ));
        }
        for e in o.errors.iter().take(2) {
            lines.push(format!("  line {}: {}", e.line, e.message));
        }
        if o.changes.is_empty() && o.refused.is_none() {
            ctx.status(Level::Ok, format!("{}: the feed changes nothing", req.school));
            return false;
        }
        let removals = o.removed_school + o.to_limbo;
        let overlay = if let Some(reason) = &o.refused {
            lines.push(format!("REFUSED: {reason}"));
            lines.push("Only `force` applies it anyway.".into());
            overlay::typed(
                ViewId::Jobs,
                Tag::ImportApply,
                "Import refused by a guard",
                lines,
                "force",
            )
        } else if removals > 0 {
            lines.push(format!("{removals} user(s) lose this school. Apply?"));
            overlay::typed(
                ViewId::Jobs,
                Tag::ImportApply,
                "Apply import",
                lines,
                req.school.clone(),
            )
        } else {
            lines.push("Apply?".into());
            overlay::yes_no(ViewId::Jobs, Tag::ImportApply, "Apply import", lines)
        };
        ctx.overlay(overlay);
        true
    }

    fn purge_confirm(&self, as_of: Option<NaiveDate>, p: &PurgeOutcome, ctx: &mut Ctx) {
        if p.purged.is_empty() {
            ctx.status(Level::Ok, format!("nobody in limbo is due on or before {}", p.as_of));
            return;
        }
        let mut lines = vec![format!(
            "{} limbo user(s) are due on or before {}; they are deleted for good:",
            p.purged.len(),
            p.as_of
        )];
        let names: Vec<&str> = p.purged.iter().take(12).map(String::as_str).collect();
        lines.push(format!(
            "  {}{}",
            names.join(", "),
            if p.purged.len() > 12 { ", …" } else { "" }
        ));
        ctx.overlay(overlay::typed(
            ViewId::Jobs,
            Tag::PurgeApply { as_of },
            "Purge limbo",
            lines,
            "purge",
        ));
    }
}

impl View for Jobs {
    fn id(&self) -> ViewId {
        ViewId::Jobs
    }

    fn load(&mut self, ctx: &mut Ctx) {
        ctx.ask(ViewId::Jobs, Call::Runs(RUN_HISTORY));
        if self.show_detail
            && let Some(d) = &self.detail
        {
            ctx.ask(ViewId::Jobs, Call::RunDetail(d.record.id.clone()));
        }
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
            Action::Open => self.open_selected(ctx),
            Action::NextPane => {
                if !self.show_detail {
                    self.open_selected(ctx);
                }
                self.pane = match self.pane {
                    Pane::Summary => Pane::Log,
                    Pane::Log => Pane::Input,
                    Pane::Input => Pane::Summary,
                }
            }
            Action::Back if self.show_detail => self.show_detail = false,
            Action::CancelJob => self.cancel(ctx),
            Action::Drain => {
                self.picking_sync = true;
                ctx.ask(ViewId::Jobs, Call::SyncSchools);
            }
            Action::NewImport => {
                self.flow = Flow::PickSchool;
                ctx.ask(ViewId::Jobs, Call::SchoolNames);
                ctx.status(Level::Info, "import: loading schools…");
            }
            Action::PurgeDue => ctx.overlay(overlay::input(
                ViewId::Jobs,
                Tag::PurgeAsOf,
                "Purge limbo",
                "Purge users due on or before (YYYY-MM-DD, empty = today); a dry run comes first:",
                "",
            )),
            _ => return false,
        }
        if matches!(
            action,
            Action::Up | Action::Down | Action::PageUp | Action::PageDown | Action::Top | Action::Bottom
        ) && self.show_detail
        {
            self.open_selected(ctx);
        }
        true
    }

    fn on_reply(&mut self, _call: &'static str, result: Result<Data, String>, ctx: &mut Ctx) {
        match result {
            Ok(Data::Runs(runs)) => {
                self.runs = runs;
                self.runs_loaded = true;
                self.error = None;
            }
            Ok(Data::RunDetail(d)) => self.detail = Some(*d),
            Ok(Data::SyncSchools(rows)) if self.picking_sync => {
                self.picking_sync = false;
                ctx.overlay(overlay::picker(
                    ViewId::Jobs,
                    Tag::SyncAuthority,
                    "Sync which authority now (one drain of its queue)",
                    rows.into_iter().filter(|a| a.active).map(|a| a.authority).collect(),
                ));
            }
            Ok(Data::SchoolNames(names)) if matches!(self.flow, Flow::PickSchool) => ctx.overlay(overlay::picker(
                ViewId::Jobs,
                Tag::ImportSchool,
                "Import into school",
                names,
            )),
            Ok(Data::FeedFiles(files)) => {
                if let Flow::PickFile { school, roles } = &self.flow {
                    let items = files.into_iter().map(|f| f.path.display().to_string()).collect();
                    ctx.overlay(overlay::picker(
                        ViewId::Jobs,
                        Tag::ImportFile {
                            school: school.clone(),
                            roles: roles.clone(),
                        },
                        "Feed file (or type a path)",
                        items,
                    ));
                }
            }
            Ok(Data::JobStarted(info)) => {
                if let Flow::Previewing { job, .. } | Flow::PurgePreviewing { job, .. } = &mut self.flow
                    && *job == 0
                {
                    *job = info.id;
                }
                ctx.status(Level::Info, format!("started: {}", info.label));
            }
            Ok(Data::Cancelled(false)) => ctx.status(Level::Warn, "that job had already finished"),
            Err(e) => {
                self.picking_sync = false;
                if !matches!(self.flow, Flow::Idle) {
                    self.flow = Flow::Idle;
                }
                self.error = Some(e);
            }
            _ => {}
        }
    }

    fn on_answer(&mut self, tag: Tag, answer: Answer, ctx: &mut Ctx) {
        match (tag, answer) {
            (Tag::ImportSchool, Answer::Picked(school)) => {
                let items = ROLE_CHOICES.iter().map(|s| s.to_string()).collect();
                ctx.overlay(overlay::picker(
                    ViewId::Jobs,
                    Tag::ImportRole { school: school.clone() },
                    format!("Roles the {school} feed lists"),
                    items,
                ));
            }
            (Tag::ImportRole { school }, Answer::Picked(role)) => {
                let roles: Vec<Role> = role.parse::<Role>().map(|r| vec![r]).unwrap_or_default();
                self.flow = Flow::PickFile { school, roles };
                ctx.ask(ViewId::Jobs, Call::FeedFiles);
            }
            (Tag::ImportFile { school, roles }, Answer::Picked(file) | Answer::Text(file)) => {
                let req = ImportRequest {
                    school,
                    roles,
                    file: PathBuf::from(file),
                    dry_run: true,
                    ..ImportRequest::default()
                };
                self.flow = Flow::Previewing {
                    job: 0,
                    req: req.clone(),
                };
                ctx.ask(ViewId::Jobs, Call::StartImport(req));
            }
            (Tag::ImportApply, Answer::Yes) => {
                if let Flow::Preview { req, outcome } = std::mem::take(&mut self.flow) {
                    let req = ImportRequest {
                        dry_run: false,
                        force: outcome.refused.is_some(),
                        ..req
                    };
                    ctx.ask(ViewId::Jobs, Call::StartImport(req));
                }
            }
            (Tag::PurgeAsOf, Answer::Text(day)) => {
                let as_of = if day.trim().is_empty() {
                    None
                } else {
                    match NaiveDate::parse_from_str(day.trim(), "%Y-%m-%d") {
                        Ok(d) => Some(d),
                        Err(_) => {
                            ctx.status(Level::Error, format!("'{day}' is not a date (YYYY-MM-DD)"));
                            return;
                        }
                    }
                };
                self.flow = Flow::PurgePreviewing { job: 0, as_of };
                ctx.ask(ViewId::Jobs, Call::StartPurge { as_of, dry_run: true });
            }
            (Tag::SyncAuthority, Answer::Picked(authority)) => ctx.ask(ViewId::Jobs, Call::StartDrain(authority)),
            (Tag::PurgeApply { as_of }, Answer::Yes) => {
                ctx.ask(ViewId::Jobs, Call::StartPurge { as_of, dry_run: false });
            }
            _ => {}
        }
    }

    fn on_event(&mut self, event: &EngineEvent, ctx: &mut Ctx) {
        if let EngineEvent::JobStarted(info) = event {
            // The event can overtake the reply to the start request.
            let kind_matches = match &self.flow {
                Flow::Previewing { job: 0, .. } => info.kind == JobKind::Import && info.dry_run,
                Flow::PurgePreviewing { job: 0, .. } => info.kind == JobKind::Purge && info.dry_run,
                _ => false,
            };
            if kind_matches && let Flow::Previewing { job, .. } | Flow::PurgePreviewing { job, .. } = &mut self.flow {
                *job = info.id;
            }
            return;
        }
        let EngineEvent::JobFinished { id, result } = event else {
            return;
        };
        match (&self.flow, result) {
            (Flow::Previewing { job, req }, Ok(JobOutcome::Import(o))) if job == id => {
                let req = req.clone();
                self.preview_confirm(&req, o, ctx);
                self.flow = Flow::Preview {
                    req,
                    outcome: o.clone(),
                };
            }
            (Flow::PurgePreviewing { job, as_of }, Ok(JobOutcome::Purge(p))) if job == id => {
                let as_of = *as_of;
                self.purge_confirm(as_of, p, ctx);
                self.flow = Flow::Idle;
            }
            (Flow::Previewing { job, .. } | Flow::PurgePreviewing { job, .. }, Err(_)) if job == id => {
                self.flow = Flow::Idle;
            }
            _ => {
                if let Ok(outcome) = result {
                    ctx.status(Level::Ok, crate::tui::jobboard::summarize(outcome));
                }
            }
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
        super::jobs_render::render(self, frame, area, rc);
    }
}
