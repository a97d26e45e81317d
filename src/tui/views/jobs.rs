//! Jobs and runs: this session's jobs with progress (done/total, rate,
//! ETA), their state (running, cancelling, done, cancelled, failed with the
//! reason) and a cursor — `c` cancels the selected job, `w` moves the focus
//! between the jobs and the runs table; the run history with counts and
//! status (live: new runs appear, the cursor stays on its run); a run's
//! detail (summary, log, the archived input as text). Starting work happens
//! here too:
//!
//! * import: pick school, role and feed file → a dry-run job computes the
//!   plan → the preview is the confirmation (y/n; a typed word when the plan
//!   removes users or the guard refused and only `force` would apply it) →
//!   the real import runs as a job;
//! * purge: as-of date → a dry-run job lists who is due → type `purge` →
//!   the purge runs as a job;
//! * sync: pick an authority → one drain of its queue runs as a job (as
//!   "drain now" in the queues view).

use super::{Ctx, Level, RenderCtx, View, ViewId, Watch};
use crate::engine::api::{EngineEvent, JobEnd, JobId, JobKind, JobOutcome};
use crate::engine::import::{ImportOutcome, ImportRequest};
use crate::engine::limbo::PurgeOutcome;
use crate::engine::runs::RunRecord;
use crate::model::Role;
use crate::tui::action::Action;
use crate::tui::overlay::{self, Accept, Answer, Ask, Tag};
use crate::tui::request::{Call, Data, RunDetail};
use crate::tui::table::TableState;
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

/// Which table the cursor keys move.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Focus {
    Jobs,
    #[default]
    Runs,
}

#[derive(Default)]
pub struct Jobs {
    pub runs: Vec<RunRecord>,
    pub runs_loaded: bool,
    pub error: Option<String>,
    pub runs_table: TableState,
    pub jobs_table: TableState,
    pub focus: Focus,
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

    pub fn selected_run(&self) -> Option<&RunRecord> {
        self.visible().get(self.runs_table.selected).copied()
    }

    fn open_selected(&mut self, ctx: &mut Ctx) {
        if let Some(r) = self.selected_run() {
            let id = r.id.clone();
            self.show_detail = true;
            if self.detail.as_ref().map(|d| &d.record.id) != Some(&id) {
                self.detail = None;
                ctx.ask(ViewId::Jobs, Call::RunDetail(id));
            }
        }
    }

    /// Cancels the job under the jobs table's cursor.
    fn cancel(&mut self, ctx: &mut Ctx) {
        let Some(job) = ctx.jobs.rows.get(self.jobs_table.selected) else {
            ctx.status(Level::Warn, "no job to cancel: none ran in this session");
            return;
        };
        if !job.running() {
            ctx.status(
                Level::Warn,
                format!("{} has ended ({}): nothing to cancel", job.info.label, job.state.word()),
            );
            return;
        }
        ctx.status(Level::Info, format!("cancelling {}…", job.info.label));
        ctx.ask(ViewId::Jobs, Call::CancelJob(job.info.id));
    }

    fn describe(&self, ctx: &mut Ctx) {
        match self.focus {
            Focus::Jobs => {
                let Some(j) = ctx.jobs.rows.get(self.jobs_table.selected) else {
                    ctx.status(Level::Warn, "no job in this session");
                    return;
                };
                let fields = vec![
                    ("job".into(), j.info.label.clone()),
                    ("state".into(), j.state.word().into()),
                    ("phase".into(), j.phase.into()),
                    (
                        "progress".into(),
                        match j.total {
                            Some(t) => format!("{}/{}", j.done, t),
                            None => j.done.to_string(),
                        },
                    ),
                    (
                        "started".into(),
                        j.info.started_at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
                    ),
                    ("outcome".into(), j.state.detail().unwrap_or("-").to_string()),
                ];
                let title = format!("Job {}", j.info.label);
                ctx.describe(title, fields);
            }
            Focus::Runs => {
                let Some(r) = self.selected_run() else {
                    ctx.status(Level::Warn, "no run yet");
                    return;
                };
                let mut fields = vec![
                    ("run".into(), r.id.clone()),
                    ("kind".into(), r.kind.as_str().into()),
                    ("status".into(), r.status.as_str().into()),
                    ("school".into(), r.school.clone().unwrap_or_else(|| "-".into())),
                    ("by".into(), r.user.clone()),
                    (
                        "started".into(),
                        r.started_at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
                    ),
                    ("message".into(), r.message.clone().unwrap_or_else(|| "-".into())),
                    (
                        "counts".into(),
                        r.counts
                            .iter()
                            .map(|(k, n)| format!("{k} {n}"))
                            .collect::<Vec<_>>()
                            .join("\n"),
                    ),
                    ("arguments".into(), r.args.to_string()),
                ];
                for e in &r.errors {
                    fields.push((
                        format!("line {}", e.line.map(|l| l.to_string()).unwrap_or_default()),
                        e.message.clone(),
                    ));
                }
                ctx.describe(format!("Run {}", r.id), fields);
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
        let (title, word) = if let Some(reason) = &o.refused {
            lines.push(format!("REFUSED: {reason}"));
            lines.push("Only `force` applies it anyway.".into());
            ("Import refused by a guard", "force".to_string())
        } else if removals > 0 {
            lines.push(format!(
                "{} lose this school. Apply?",
                crate::tui::widgets::plural(removals, "user", "users")
            ));
            ("Apply import", req.school.clone())
        } else {
            lines.push("Apply?".into());
            ("Apply import", req.school.clone())
        };
        ctx.confirm(
            Action::NewImport,
            Ask {
                owner: ViewId::Jobs,
                tag: Tag::ImportApply,
                title: title.into(),
                lines,
                word,
                escalate: o.refused.is_some() || removals > 0,
            },
        );
        true
    }

    fn purge_confirm(&self, as_of: Option<NaiveDate>, p: &PurgeOutcome, ctx: &mut Ctx) {
        if p.purged.is_empty() {
            ctx.status(Level::Ok, format!("nobody in limbo is due on or before {}", p.as_of));
            return;
        }
        let mut lines = vec![format!(
            "{} in limbo due on or before {}: deleted for good:",
            crate::tui::widgets::plural(p.purged.len() as u64, "user", "users"),
            p.as_of
        )];
        let names: Vec<&str> = p.purged.iter().take(12).map(String::as_str).collect();
        lines.push(format!(
            "  {}{}",
            names.join(", "),
            if p.purged.len() > 12 { ", …" } else { "" }
        ));
        ctx.confirm(
            Action::PurgeDue,
            Ask {
                owner: ViewId::Jobs,
                tag: Tag::PurgeApply { as_of },
                title: "Purge limbo".into(),
                lines,
                word: "purge".into(),
                escalate: true,
            },
        );
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

    fn ready(&self) -> bool {
        self.runs_loaded
    }

    fn watches(&self) -> Watch {
        Watch {
            runs: true,
            ..Watch::NONE
        }
    }

    fn on_action(&mut self, action: Action, ctx: &mut Ctx) -> bool {
        let moved = match self.focus {
            Focus::Jobs => self.jobs_table.navigate(action, ctx.jobs.rows.len()),
            Focus::Runs => {
                let n = self.visible().len();
                self.runs_table.navigate(action, n)
            }
        };
        if moved {
            if self.show_detail && self.focus == Focus::Runs {
                self.open_selected(ctx);
            }
            return true;
        }
        match action {
            Action::Focus => {
                self.focus = match self.focus {
                    Focus::Jobs => Focus::Runs,
                    Focus::Runs => Focus::Jobs,
                }
            }
            Action::Describe => self.describe(ctx),
            Action::Open if self.focus == Focus::Jobs => self.describe(ctx),
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
                Accept::DateOrEmpty,
            )),
            _ => return false,
        }
        true
    }

    fn on_reply(&mut self, _call: Call, result: Result<Data, String>, ctx: &mut Ctx) {
        match result {
            Ok(Data::Runs(runs)) => {
                self.runs = runs;
                self.runs_loaded = true;
                self.error = None;
                // The cursor stays on its run as new runs come in on top.
                let keys: Vec<String> = self.visible().iter().map(|r| r.id.clone()).collect();
                self.runs_table.follow(keys.iter().map(String::as_str));
                if self.show_detail
                    && let Some(r) = self.selected_run()
                    && self.detail.as_ref().map(|d| &d.record.id) != Some(&r.id)
                {
                    let id = r.id.clone();
                    ctx.ask(ViewId::Jobs, Call::RunDetail(id));
                }
            }
            // Only the selected run's detail is shown.
            Ok(Data::RunDetail(d)) if self.selected_run().is_none_or(|r| r.id == d.record.id) => {
                self.detail = Some(*d);
            }
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
            // The new job is on top: keep the cursor on the job it was on.
            if ctx.jobs.rows.len() > 1 {
                self.jobs_table.selected += 1;
            }
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
        let EngineEvent::JobFinished { id, end } = event else {
            return;
        };
        match (&self.flow, end) {
            (Flow::Previewing { job, req }, JobEnd::Done(JobOutcome::Import(o))) if job == id => {
                let req = req.clone();
                self.preview_confirm(&req, o, ctx);
                self.flow = Flow::Preview {
                    req,
                    outcome: o.clone(),
                };
            }
            (Flow::PurgePreviewing { job, as_of }, JobEnd::Done(JobOutcome::Purge(p))) if job == id => {
                let as_of = *as_of;
                self.purge_confirm(as_of, p, ctx);
                self.flow = Flow::Idle;
            }
            (Flow::Previewing { job, .. } | Flow::PurgePreviewing { job, .. }, _) if job == id => {
                self.flow = Flow::Idle;
            }
            (_, JobEnd::Done(outcome)) => ctx.status(Level::Ok, crate::tui::jobboard::summarize(outcome)),
            (_, JobEnd::Cancelled(_)) => ctx.status(Level::Warn, "job cancelled: what it did until then stays"),
            _ => {}
        }
    }

    fn filter(&self) -> &str {
        &self.filter
    }

    fn click(&mut self, x: u16, y: u16, ctx: &mut Ctx) -> bool {
        if self.jobs_table.click(x, y, ctx.jobs.rows.len()).is_some() {
            self.focus = Focus::Jobs;
            return false;
        }
        let n = self.visible().len();
        match self.runs_table.click(x, y, n) {
            Some(again) => {
                self.focus = Focus::Runs;
                if self.show_detail {
                    self.open_selected(ctx);
                }
                again
            }
            None => false,
        }
    }

    fn set_filter(&mut self, text: String, _ctx: &mut Ctx) {
        self.filter = text;
        self.runs_table.reset();
    }

    fn render(&mut self, frame: &mut Frame, area: Rect, rc: &RenderCtx) {
        super::jobs_render::render(self, frame, area, rc);
    }
}
