//! Verify: `v` picks an authority, the kinds (users, classes, workgroups,
//! schools, all) and an optional filter, and runs verify as a job, its
//! progress (phase, done/total, rate; `c` cancels) shown here as in the job
//! list; the last report fills a table of missing, unexpected and different
//! objects with the field diffs of the selected one in the detail pane. `f`
//! fixes all (the typed word); Space marks rows and `F` fixes only those
//! (y/n, or the typed word when one would be deleted). The engine queues
//! the repairs and audits.

use super::{Ctx, Level, RenderCtx, View, ViewId};
use crate::engine::api::{EngineEvent, JobEnd, JobId, JobKind, JobOutcome};
use crate::engine::sync::verify::{VerifyKind, VerifyReport, VerifyRequest};
use crate::tui::action::Action;
use crate::tui::overlay::{self, Accept, Answer, Ask, Tag};
use crate::tui::request::{Call, Data};
use crate::tui::table::{self, Cell, Column, Note, Row, TableSpec, TableState};
use crate::tui::theme::Slot;
use crate::tui::widgets::{clip, kv, num, panel, safe};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};
use std::collections::BTreeSet;

const COLUMNS: [Column; 4] = [
    Column::fixed("", 1),
    Column::fixed("", 11),
    Column::fill("object", 2, 20),
    Column::fill("name", 1, 12),
];

const KINDS: [VerifyKind; 5] = [
    VerifyKind::All,
    VerifyKind::Users,
    VerifyKind::Classes,
    VerifyKind::Workgroups,
    VerifyKind::Schools,
];

/// One difference as the table shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct Finding {
    pub what: &'static str,
    pub object: String,
    pub name: String,
    /// `attribute: expected → actual`, one per field (different only).
    pub fields: Vec<String>,
}

#[derive(Default)]
pub struct Verify {
    pub report: Option<VerifyReport>,
    pub last: Option<VerifyRequest>,
    pub table: TableState,
    pub filter: String,
    /// Objects marked for "fix selected".
    pub marked: BTreeSet<String>,
    /// The latest verify job (its progress line).
    pub job: Option<JobId>,
    /// Picking: the authority chosen so far.
    picking: Option<String>,
    error: Option<String>,
}

fn findings(r: &VerifyReport) -> Vec<Finding> {
    let mut out = Vec::new();
    for m in &r.missing {
        out.push(Finding {
            what: "missing",
            object: m.object.clone(),
            name: m.name.clone(),
            fields: Vec::new(),
        });
    }
    for u in &r.unexpected {
        out.push(Finding {
            what: "unexpected",
            object: u.object.clone(),
            name: u.name.clone().unwrap_or_default(),
            fields: Vec::new(),
        });
    }
    for d in &r.different {
        out.push(Finding {
            what: "different",
            object: d.object.clone(),
            name: d.name.clone(),
            fields: d
                .fields
                .iter()
                .map(|f| format!("{}: {} → {}", f.attribute, f.expected, f.actual))
                .collect(),
        });
    }
    out
}

impl Verify {
    pub fn visible(&self) -> Vec<Finding> {
        let f = self.filter.to_lowercase();
        self.report
            .as_ref()
            .map(findings)
            .unwrap_or_default()
            .into_iter()
            .filter(|x| {
                f.is_empty()
                    || x.what.contains(&f)
                    || x.object.to_lowercase().contains(&f)
                    || x.name.to_lowercase().contains(&f)
            })
            .collect()
    }
}

impl Verify {
    /// "Fix selected": y/n, or the typed word when a marked object would be
    /// deleted on the target.
    fn ask_fix_selected(&self, ctx: &mut Ctx) {
        let (Some(req), Some(report)) = (&self.last, &self.report) else {
            ctx.status(Level::Info, "nothing to fix: run verify (v) first");
            return;
        };
        let chosen: Vec<Finding> = findings(report)
            .into_iter()
            .filter(|f| self.marked.contains(&f.object))
            .collect();
        if chosen.is_empty() {
            ctx.status(Level::Info, "mark rows with Space first (f fixes all)");
            return;
        }
        let deletes = chosen.iter().filter(|f| f.what == "unexpected").count();
        let objects: Vec<String> = chosen.iter().map(|f| f.object.clone()).collect();
        let mut lines = vec![format!(
            "Queue repairs of {} marked object(s) on {}:",
            objects.len(),
            req.authority
        )];
        lines.extend(
            chosen
                .iter()
                .take(4)
                .map(|f| format!("• {} {}", f.what, clip(&f.object, 48))),
        );
        if chosen.len() > 4 {
            lines.push(format!("• … and {} more", chosen.len() - 4));
        }
        let tag = Tag::VerifyFixSelected {
            authority: req.authority.clone(),
            objects,
        };
        if deletes > 0 {
            lines.push(format!(
                "{deletes} unexpected one(s) are DELETED on the target. Type fix."
            ));
        }
        ctx.confirm(
            Action::FixSelected,
            Ask {
                owner: ViewId::Verify,
                tag,
                title: "Fix marked differences".into(),
                lines,
                word: "fix".into(),
                escalate: deletes > 0,
            },
        );
    }

    fn row(&self, f: &Finding) -> Row {
        let slot = match f.what {
            "missing" => Slot::Warn,
            "unexpected" => Slot::Error,
            _ => Slot::Accent,
        };
        Row::new(
            f.object.clone(),
            vec![
                Cell::styled(if self.marked.contains(&f.object) { "●" } else { " " }, Slot::Accent),
                Cell::styled(f.what, slot),
                Cell::new(&f.object),
                Cell::new(&f.name),
            ],
        )
    }
}

impl View for Verify {
    fn id(&self) -> ViewId {
        ViewId::Verify
    }

    fn load(&mut self, _ctx: &mut Ctx) {}

    fn on_action(&mut self, action: Action, ctx: &mut Ctx) -> bool {
        let n = self.visible().len();
        if self.table.navigate(action, n) {
            return true;
        }
        match action {
            Action::Describe => {
                if let Some(f) = self.visible().get(self.table.selected) {
                    let mut fields = vec![
                        ("difference".into(), f.what.to_string()),
                        ("object".into(), f.object.clone()),
                        ("name".into(), f.name.clone()),
                    ];
                    if !f.fields.is_empty() {
                        fields.push(("fields".into(), f.fields.join("\n")));
                    }
                    ctx.describe(format!("Difference {}", f.object), fields);
                }
            }
            Action::RunVerify => {
                self.picking = Some(String::new());
                ctx.ask(ViewId::Verify, Call::SyncSchools);
            }
            Action::FixAll => match (&self.last, &self.report) {
                (Some(req), Some(r)) if !r.clean => {
                    let total = r.counts.missing + r.counts.unexpected + r.counts.different;
                    ctx.confirm(
                        Action::FixAll,
                        Ask {
                            owner: ViewId::Verify,
                            tag: Tag::VerifyFix,
                            title: "Fix all differences".into(),
                            lines: vec![
                                format!("Queue repairs of {total} object(s) on {}:", req.authority),
                                "missing ones are created, different ones sent again,".into(),
                                "unexpected ones DELETED on the target. Type fix to confirm.".into(),
                            ],
                            word: "fix".into(),
                            escalate: true,
                        },
                    )
                }
                _ => ctx.status(Level::Info, "nothing to fix: run verify (v) first"),
            },
            Action::Select => {
                if let Some(f) = self.visible().get(self.table.selected)
                    && !self.marked.remove(&f.object)
                {
                    self.marked.insert(f.object.clone());
                }
                self.table.navigate(Action::Down, n);
            }
            Action::SelectAll => {
                let visible = self.visible();
                if visible.iter().all(|f| self.marked.contains(&f.object)) {
                    self.marked.clear();
                } else {
                    self.marked.extend(visible.into_iter().map(|f| f.object));
                }
            }
            Action::FixSelected => self.ask_fix_selected(ctx),
            Action::CancelJob => match self.job.and_then(|id| ctx.jobs.get(id)) {
                Some(j) if j.running() => ctx.ask(ViewId::Verify, Call::CancelJob(j.info.id)),
                _ => ctx.status(Level::Info, "no verify is running"),
            },
            _ => return false,
        }
        true
    }

    fn on_reply(&mut self, _call: Call, result: Result<Data, String>, ctx: &mut Ctx) {
        match result {
            Ok(Data::SyncSchools(rows)) if self.picking.take().is_some() => ctx.overlay(overlay::picker(
                ViewId::Verify,
                Tag::VerifyAuthority,
                "Verify which authority",
                rows.into_iter().map(|a| a.authority).collect(),
            )),
            Ok(Data::JobStarted(info)) => {
                self.job = Some(info.id);
                ctx.status(Level::Info, format!("started: {}", info.label));
            }
            Ok(Data::Done(msg)) => {
                self.marked.clear();
                ctx.status(Level::Ok, msg);
            }
            Ok(Data::Cancelled(true)) => ctx.status(Level::Warn, "cancelling the verify…"),
            Ok(Data::Cancelled(false)) => ctx.status(Level::Info, "the verify had already finished"),
            Ok(_) => {}
            Err(e) => {
                self.error = Some(e.clone());
                ctx.status(Level::Error, e);
            }
        }
    }

    fn on_answer(&mut self, tag: Tag, answer: Answer, ctx: &mut Ctx) {
        match (tag, answer) {
            (Tag::VerifyAuthority, Answer::Picked(authority)) => ctx.overlay(overlay::picker(
                ViewId::Verify,
                Tag::VerifyKind { authority },
                "Verify which objects",
                KINDS.iter().map(|k| k.as_str().to_string()).collect(),
            )),
            (Tag::VerifyKind { authority }, Answer::Picked(kind)) => ctx.overlay(overlay::input(
                ViewId::Verify,
                Tag::VerifyFilter { authority, kind },
                "Verify filter",
                "LDAP-style filter (empty: everything)",
                "",
                Accept::Text,
            )),
            (Tag::VerifyFilter { authority, kind }, Answer::Text(f)) => {
                let kind = KINDS
                    .into_iter()
                    .find(|k| k.as_str() == kind)
                    .unwrap_or(VerifyKind::All);
                let f = f.trim().to_string();
                let req = VerifyRequest {
                    authority,
                    kind,
                    filter: (!f.is_empty()).then_some(f),
                    fix: false,
                };
                self.last = Some(req.clone());
                ctx.ask(ViewId::Verify, Call::StartVerify(req));
            }
            (Tag::VerifyFixSelected { authority, objects }, Answer::Yes) => {
                ctx.ask(ViewId::Verify, Call::VerifyFixObjects { authority, objects })
            }
            (Tag::VerifyFix, Answer::Yes) => {
                if let Some(mut req) = self.last.clone() {
                    req.fix = true;
                    ctx.ask(ViewId::Verify, Call::StartVerify(req));
                }
            }
            _ => {}
        }
    }

    fn on_event(&mut self, event: &EngineEvent, ctx: &mut Ctx) {
        if let EngineEvent::JobStarted(info) = event
            && info.kind == JobKind::Verify
        {
            self.job = Some(info.id);
        }
        if let EngineEvent::JobFinished {
            end: JobEnd::Done(JobOutcome::Verify(r)),
            ..
        } = event
        {
            if let Some(fixed) = &r.fixed {
                ctx.status(
                    Level::Ok,
                    format!(
                        "fix queued {} for {}",
                        crate::tui::widgets::plural(fixed.queued, "item", "items"),
                        r.authority
                    ),
                );
            }
            self.report = Some((**r).clone());
            self.error = None;
            self.table.reset();
            self.marked.clear();
        }
    }

    fn filter(&self) -> &str {
        &self.filter
    }

    fn click(&mut self, x: u16, y: u16, _ctx: &mut Ctx) -> bool {
        self.table.click(x, y, self.visible().len());
        false
    }

    fn set_filter(&mut self, text: String, _ctx: &mut Ctx) {
        self.filter = text;
        self.table.reset();
    }

    fn render(&mut self, frame: &mut Frame, area: Rect, rc: &RenderCtx) {
        let t = rc.theme;
        let visible = self.visible();
        let job = self.job.and_then(|id| rc.jobs.get(id));
        let [head, top, bottom] = Layout::vertical([
            Constraint::Length(if job.is_some() { 5 } else { 4 }),
            Constraint::Min(5),
            Constraint::Length((area.height / 3).max(5)),
        ])
        .areas(area);
        let summary = match &self.report {
            None => vec![Line::from(Span::styled(
                if rc.info.read_only {
                    "no verify run yet: v chooses authority, objects and filter"
                } else {
                    "no verify run yet: v chooses authority, objects and filter; f then fixes"
                },
                t.get(Slot::Dim),
            ))],
            Some(r) => vec![
                kv(
                    "verified",
                    format!(
                        "{} ({}) · {}{}",
                        r.authority,
                        r.target,
                        r.kind.as_str(),
                        r.filter.as_deref().map(|f| format!(" · {f}")).unwrap_or_default()
                    ),
                    t,
                ),
                Line::from(vec![
                    Span::styled(format!("{:<14}", "result"), t.get(Slot::Dim)),
                    Span::styled(
                        if r.clean {
                            format!("clean: {} expected, {} on the target", num(r.expected), num(r.actual))
                        } else {
                            format!(
                                "{} missing · {} unexpected · {} different ({} expected, {} on the target)",
                                num(r.counts.missing),
                                num(r.counts.unexpected),
                                num(r.counts.different),
                                num(r.expected),
                                num(r.actual)
                            )
                        },
                        t.get(if r.clean { Slot::Ok } else { Slot::Warn }),
                    ),
                ]),
            ],
        };
        let mut summary = summary;
        if let Some(j) = job {
            summary.push(super::jobs_render::progress_line(j, rc));
        }
        let mut block = panel("Verify", t);
        if let Some(e) = &self.error {
            block = block.title_bottom(Line::from(Span::styled(
                format!(" {} ", clip(&safe(e), (area.width as usize).saturating_sub(4))),
                t.get(Slot::Error),
            )));
        }
        frame.render_widget(Paragraph::new(summary).block(block), head);

        let mut title = format!("Differences · {}", visible.len());
        if !self.marked.is_empty() {
            title.push_str(&format!(" · {} marked (F fixes them)", self.marked.len()));
        }
        super::push_filter(&mut title, &self.filter);
        let len = visible.len();
        let spec = TableSpec {
            title,
            columns: &COLUMNS,
            len,
            note: if self.report.is_some() && len == 0 {
                Note::Empty("no differences")
            } else {
                Note::Rows
            },
            hint: Some("Space marks"),
            focused: true,
        };
        let mut state = std::mem::take(&mut self.table);
        table::render(
            &mut state,
            spec,
            &mut |i| visible.get(i).map(|f| self.row(f)),
            frame,
            top,
            t,
        );
        self.table = state;
        let lines: Vec<Line> = match visible.get(self.table.selected) {
            None => Vec::new(),
            Some(f) if f.fields.is_empty() => vec![kv(
                f.what,
                match f.what {
                    "missing" => "not on the target: fix creates it".to_string(),
                    _ => "ours on the target but not expected: fix deletes it".to_string(),
                },
                t,
            )],
            Some(f) => f.fields.iter().map(|d| Line::from(safe(d))).collect(),
        };
        let name = visible
            .get(self.table.selected)
            .map(|f| f.object.clone())
            .unwrap_or_default();
        frame.render_widget(
            Paragraph::new(lines)
                .wrap(Wrap { trim: false })
                .block(panel(format!("Detail {name}"), t)),
            bottom,
        );
    }
}
