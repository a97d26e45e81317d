//! One per-school import run (SiSoPi): read and validate the whole feed,
//! compute the full plan, check the row-error limit and the mass-removal
//! guard, and only then write — or, with `--dry-run`, write nothing.

pub mod plan;
pub mod row;
pub mod scope;
mod summary;

use super::feed::csv::CsvFeed;
use super::feed::{FeedError, FeedReader};
use super::jobs::{Progress, ProgressEvent};
use super::received::ReceivedRow;
use super::runs::{Run, RunKind, RunRowError, RunStatus};
use super::scheme::{EmailScheme, SchemeFields, UsernameScheme};
use super::{Engine, EngineError, EngineResult};
use crate::model::{Role, School, User, validate_school_name, validate_source_uid};
use crate::store::ReadView;
use chrono::Utc;
use plan::{Action, Plan, PlanNames, PlanSettings};
use row::{ColumnMap, Row, RowContext, RowError};
use scope::Scope;
use serde::Serialize;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::PathBuf;

/// What to import.
#[derive(Clone, Debug, Default)]
pub struct ImportRequest {
    pub school: String,
    /// The roles the feed lists completely; empty: the role column decides
    /// each row's role and the run covers every role.
    pub roles: Vec<Role>,
    /// Overrides `import.source_uid`.
    pub source_uid: Option<String>,
    pub dry_run: bool,
    pub force: bool,
    pub file: PathBuf,
    /// Overrides `import.passwords_csv`.
    pub passwords_csv: Option<PathBuf>,
}

/// One line of the plan, as printed and written to the summary.
#[derive(Clone, Debug, Serialize)]
pub struct ChangeLine {
    pub line: Option<u64>,
    pub action: Action,
    pub username: String,
    pub record_uid: String,
    pub schools: Vec<String>,
    pub classes: Vec<String>,
}

/// The result of an import run (also the `--json` output).
#[derive(Clone, Debug, Serialize)]
pub struct ImportOutcome {
    pub run_id: String,
    pub school: String,
    pub dry_run: bool,
    pub created: u64,
    pub modified: u64,
    pub unchanged: u64,
    pub added_school: u64,
    pub removed_school: u64,
    pub to_limbo: u64,
    pub restored: u64,
    pub errors: Vec<RowError>,
    /// `None`, or why nothing was written.
    pub refused: Option<String>,
    pub roles: Vec<Role>,
    pub scope: usize,
    pub school_created: bool,
    pub warnings: Vec<String>,
    pub passwords_csv: Option<String>,
    /// Every planned change except `unchanged`.
    pub changes: Vec<ChangeLine>,
}

/// The validated content of a feed.
struct ReadFeed {
    rows: Vec<Row>,
    errors: Vec<RowError>,
    /// Record uids of rejected rows: never removed by this run.
    protected: HashSet<String>,
    /// A rejected row whose record uid is unknown: no removals at all.
    unknown_rejected: bool,
}

impl Engine {
    /// Runs one import. A refused run (guard, error limit) is an `Ok` outcome
    /// with `refused` set; errors that stop the run (unreadable file, missing
    /// column, store failure) are `Err` and write nothing.
    pub fn import(&mut self, req: &ImportRequest, progress: &mut dyn Progress) -> EngineResult<ImportOutcome> {
        if !req.dry_run {
            self.check_writable("import")?;
        }
        let cfg = &self.settings.config.import;
        validate_school_name(&req.school).map_err(|e| EngineError::Invalid(e.to_string()))?;
        if req.school == cfg.limbo_school {
            return Err(EngineError::Invalid(format!(
                "'{}' is the limbo school (import.limbo_school); users cannot be imported into it",
                req.school
            )));
        }
        if let Some(s) = &req.source_uid {
            validate_source_uid(s).map_err(|e| EngineError::Invalid(e.to_string()))?;
        }
        if !req.file.is_file() {
            return Err(EngineError::NotFound(format!(
                "feed file {} does not exist",
                req.file.display()
            )));
        }
        let school_exists = self.dir.school(&req.school)?.is_some();
        if !school_exists && !cfg.create_schools {
            return Err(EngineError::NotFound(format!(
                "school '{0}' does not exist; create it with `rollcall schools create {0}` \
                 (or set import.create_schools = true)",
                req.school
            )));
        }
        let args = serde_json::json!({
            "school": req.school,
            "roles": req.roles,
            "source_uid": req.source_uid,
            "dry_run": req.dry_run,
            "force": req.force,
            "file": req.file.display().to_string(),
        });
        let mut run = self.runs.start(
            RunKind::Import,
            self.audit.actor(),
            args.clone(),
            Some(&req.school),
            req.dry_run,
        )?;
        let result = run
            .archive_input(&req.file)
            .map_err(EngineError::from)
            .and_then(|_| self.import_in_run(&mut run, req, school_exists, progress));
        match result {
            Ok(outcome) => {
                let status = if outcome.refused.is_some() {
                    RunStatus::Refused
                } else {
                    RunStatus::Ok
                };
                run.finish(status, outcome.refused.clone())?;
                let what = if req.dry_run { "import (dry run)" } else { "import" };
                self.audit.record(
                    what,
                    args,
                    &format!("run {}: {}", outcome.run_id, status_word(&outcome)),
                );
                Ok(outcome)
            }
            Err(e) => {
                run.log(&format!("error: {e}"));
                let id = run.id().to_string();
                run.finish(RunStatus::Failed, Some(e.to_string()))?;
                self.audit.record("import", args, &format!("run {id}: failed: {e}"));
                Err(e)
            }
        }
    }

    fn import_in_run(
        &mut self,
        run: &mut Run,
        req: &ImportRequest,
        school_exists: bool,
        progress: &mut dyn Progress,
    ) -> EngineResult<ImportOutcome> {
        let cfg = self.settings.config.import.clone();
        let source = req.source_uid.clone().unwrap_or_else(|| cfg.source_uid.clone());
        let run_roles: BTreeSet<Role> = req.roles.iter().copied().collect();
        let scope_roles: BTreeSet<Role> = if run_roles.is_empty() {
            Role::ALL.into()
        } else {
            run_roles.clone()
        };
        run.log(&format!(
            "import of {} into school {} (roles: {}, source {source}{})",
            req.file.display(),
            req.school,
            scope_roles.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(", "),
            if req.dry_run { ", dry run" } else { "" }
        ));

        let feed = self.read_feed(req, &run_roles, progress)?;
        let mut warnings = Vec::new();
        if feed.unknown_rejected {
            warnings.push(
                "a rejected row has no readable record_uid, so no user is removed by this run; fix the row and import again"
                    .to_string(),
            );
        }

        progress.update(ProgressEvent {
            phase: "planning",
            done: 0,
            total: Some(feed.rows.len() as u64),
        });
        let scope = Scope {
            source_uid: &source,
            school: &req.school,
            roles: &scope_roles,
        };
        // Plan on one consistent view of the directory.
        let view = ReadView::begin(self.dir.as_ref())?;
        // Most rows name users in scope: read the scope first, then only the
        // users it does not hold.
        let in_scope = scope.load(self.dir.as_ref())?;
        let scoped: HashMap<&str, &User> = in_scope.iter().map(|u| (u.key.record_uid.as_str(), u)).collect();
        let missing: Vec<String> = feed
            .rows
            .iter()
            .filter(|r| !scoped.contains_key(r.record_uid.as_str()))
            .map(|r| r.record_uid.clone())
            .collect();
        let fetched = self.dir.users_by_record_uids(&source, &missing)?;
        let mut existing = scoped;
        existing.extend(fetched.iter().map(|u| (u.key.record_uid.as_str(), u)));
        let usernames = UsernameScheme::parse(&cfg.username_scheme, cfg.username_max_length)
            .map_err(|e| EngineError::Invalid(format!("import.username_scheme: {e}")))?;
        let emails = match cfg.email_scheme.as_str() {
            "" => None,
            s => Some(EmailScheme::parse(s).map_err(|e| EngineError::Invalid(format!("import.email_scheme: {e}")))?),
        };
        let today = self.today();
        let settings = PlanSettings {
            scope: scope.clone(),
            limbo_school: &cfg.limbo_school,
            today,
            now: Utc::now(),
            grace_days: cfg.deletion_grace_days,
            usernames: &usernames,
            emails: emails.as_ref(),
        };
        let mut names = PlanNames::new(self.dir.as_ref());
        let newcomers: Vec<SchemeFields<'_>> = feed
            .rows
            .iter()
            .filter(|r| !existing.contains_key(r.record_uid.as_str()))
            .map(|r| SchemeFields {
                firstname: &r.firstname,
                lastname: &r.lastname,
                record_uid: &r.record_uid,
                username: None,
            })
            .collect();
        names.prefetch(&usernames, &newcomers)?;
        let mut plan = plan::plan(
            &settings,
            &feed.rows,
            &existing,
            &in_scope,
            &feed.protected,
            feed.unknown_rejected,
            &mut names,
        );
        names.into_plan(&mut plan);
        drop(view);
        let mut errors = feed.errors;
        errors.extend(plan.errors.iter().cloned());
        errors.sort_by_key(|e| e.line);

        let refused = refusal(&cfg, &plan, &errors, feed.rows.is_empty(), req.force);
        let mut school_created = false;
        let mut passwords_csv = None;
        if refused.is_none() && !req.dry_run && !progress.cancelled() {
            let mut schools = Vec::new();
            if !school_exists {
                schools.push(School::new(req.school.clone()));
                school_created = true;
            }
            if plan.count(Action::ToLimbo) > 0 && self.dir.school(&cfg.limbo_school)?.is_none() {
                schools.push(School {
                    name: cfg.limbo_school.clone(),
                    display_name: "Limbo (left their last school)".into(),
                });
            }
            let batch = plan.batch(schools);
            progress.update(ProgressEvent {
                phase: "applying",
                done: 0,
                total: Some(batch.users.len() as u64),
            });
            // Rows identical to the last ones received need not be stored again.
            let known = self.state.received_digests(&source, &req.school)?;
            let by_line: HashMap<u64, &Row> = feed.rows.iter().map(|r| (r.line, r)).collect();
            let received: Vec<ReceivedRow<'_>> = plan
                .items
                .iter()
                .filter_map(|p| {
                    let row = by_line.get(&p.line?)?;
                    if known.get(&row.record_uid) == Some(&row.digest) {
                        return None;
                    }
                    Some(ReceivedRow {
                        key: &p.after.key,
                        line: row.line,
                        row: row.raw.clone(),
                        digest: &row.digest,
                    })
                })
                .collect();
            // The received rows go to the local state while the directory is
            // written, and are committed only once the directory committed.
            let (dir, state) = (&mut self.dir, &mut self.state);
            let (applied, recorded) = std::thread::scope(|scope| {
                let (go, wait) = std::sync::mpsc::channel();
                let run_id = run.id().to_string();
                let school = req.school.as_str();
                let received = &received;
                let writer = scope.spawn(move || state.record_received_when(&run_id, school, received, &wait));
                let applied = dir.apply(&batch);
                let _ = go.send(applied.is_ok());
                (applied, writer.join())
            });
            applied?;
            match recorded {
                Ok(result) => result?,
                Err(_) => tracing::error!("the received-rows writer panicked; the last received rows are not updated"),
            }
            if school_created {
                run.log(&format!("created school {}", req.school));
            }
            passwords_csv = self.write_passwords(run, req, &plan)?;
        } else if progress.cancelled() && refused.is_none() && !req.dry_run {
            return Err(EngineError::Cancelled(
                "the import stopped before it wrote anything".into(),
            ));
        }
        summary::write(run, &plan, &errors, &req.school)?;

        let counts = plan.counts();
        for (action, n) in &counts {
            run.record.counts.insert(action.as_str().to_string(), *n);
        }
        run.record.counts.insert("errors".into(), errors.len() as u64);
        run.record.errors = errors
            .iter()
            .map(|e| RunRowError {
                line: Some(e.line),
                record_uid: e.record_uid.clone(),
                message: e.message.clone(),
            })
            .collect();
        for e in &errors {
            run.log(&format!("line {}: {}", e.line, e.message));
        }
        for w in &warnings {
            run.log(&format!("warning: {w}"));
        }
        run.log(&format!(
            "{}: {}",
            if req.dry_run { "planned" } else { "done" },
            counts
                .iter()
                .map(|(a, n)| format!("{} {n}", a.as_str()))
                .collect::<Vec<_>>()
                .join(", ")
        ));
        if let Some(r) = &refused {
            run.log(&format!("refused: {r}"));
        }
        let changes = plan
            .items
            .iter()
            .filter(|p| p.action != Action::Unchanged)
            .map(|p| change_line(p, &req.school))
            .collect();
        Ok(ImportOutcome {
            run_id: run.id().to_string(),
            school: req.school.clone(),
            dry_run: req.dry_run,
            created: counts[&Action::Created],
            modified: counts[&Action::Modified],
            unchanged: counts[&Action::Unchanged],
            added_school: counts[&Action::AddedSchool],
            removed_school: counts[&Action::RemovedSchool],
            to_limbo: counts[&Action::ToLimbo],
            restored: counts[&Action::Restored],
            errors,
            refused,
            roles: scope_roles.into_iter().collect(),
            scope: plan.scope_size,
            school_created,
            warnings,
            passwords_csv: passwords_csv.map(|p: PathBuf| p.display().to_string()),
            changes,
        })
    }

    /// Reads and validates every record of the feed.
    fn read_feed(
        &self,
        req: &ImportRequest,
        run_roles: &BTreeSet<Role>,
        progress: &mut dyn Progress,
    ) -> EngineResult<ReadFeed> {
        let cfg = &self.settings.config.import;
        let feed = CsvFeed::open(&req.file, cfg.delimiter())?;
        let map = ColumnMap::build(&req.file, feed.columns(), &cfg.csv.mapping, !run_roles.is_empty())?;
        let ctx = RowContext {
            school: &req.school,
            run_roles,
            role_aliases: &cfg.roles,
        };
        let mut out = ReadFeed {
            rows: Vec::new(),
            errors: Vec::new(),
            protected: HashSet::new(),
            unknown_rejected: false,
        };
        let mut first_line: HashMap<String, u64> = HashMap::new();
        for (n, rec) in feed.enumerate() {
            if n % 4096 == 0 {
                progress.update(ProgressEvent {
                    phase: "reading",
                    done: n as u64,
                    total: None,
                });
            }
            let rec = match rec {
                Ok(rec) => rec,
                Err(FeedError::Record { line, message, .. }) => {
                    out.unknown_rejected = true;
                    out.errors.push(RowError {
                        line,
                        record_uid: None,
                        message,
                    });
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            match row::parse_row(&map, &rec, &ctx) {
                Ok(row) => {
                    if let Some(first) = first_line.get(&row.record_uid) {
                        out.errors.push(RowError {
                            line: row.line,
                            record_uid: Some(row.record_uid.clone()),
                            message: format!(
                                "record_uid '{}' already appeared on line {first}; the first row wins and this one is skipped",
                                row.record_uid
                            ),
                        });
                        continue;
                    }
                    first_line.insert(row.record_uid.clone(), row.line);
                    out.rows.push(row);
                }
                Err(e) => {
                    match &e.record_uid {
                        Some(uid) => {
                            out.protected.insert(uid.clone());
                        }
                        None => out.unknown_rejected = true,
                    }
                    out.errors.push(e);
                }
            }
        }
        // A valid row wins over a later rejected duplicate, but a rejected
        // row still protects its user from removal.
        Ok(out)
    }

    fn write_passwords(&self, run: &mut Run, req: &ImportRequest, plan: &Plan) -> EngineResult<Option<PathBuf>> {
        let configured = &self.settings.config.import.passwords_csv;
        let path = match (&req.passwords_csv, configured.as_str()) {
            (Some(p), _) => p.clone(),
            (None, "") => return Ok(None),
            (None, p) => PathBuf::from(p.replace("{run_id}", run.id())),
        };
        if plan.count(Action::Created) == 0 {
            return Ok(None);
        }
        summary::write_passwords(&path, plan)?;
        run.log(&format!("initial passwords written to {} (mode 0600)", path.display()));
        Ok(Some(path))
    }
}

fn change_line(p: &plan::Planned, school: &str) -> ChangeLine {
    ChangeLine {
        line: p.line,
        action: p.action,
        username: p.after.username.clone(),
        record_uid: p.after.key.record_uid.clone(),
        schools: p.after.school_names().map(str::to_string).collect(),
        classes: p
            .after
            .membership(school)
            .map(|m| m.classes.iter().cloned().collect())
            .unwrap_or_default(),
    }
}

fn status_word(o: &ImportOutcome) -> String {
    match &o.refused {
        Some(r) => format!("refused: {r}"),
        None => format!(
            "created {}, modified {}, added_school {}, removed_school {}, to_limbo {}, restored {}, errors {}",
            o.created,
            o.modified,
            o.added_school,
            o.removed_school,
            o.to_limbo,
            o.restored,
            o.errors.len()
        ),
    }
}

/// Why the run must not write, if it must not.
fn refusal(
    cfg: &super::config::ImportConfig,
    plan: &Plan,
    errors: &[RowError],
    no_valid_rows: bool,
    force: bool,
) -> Option<String> {
    if let Some(limit) = cfg.row_error_limit()
        && errors.len() as u64 > limit
    {
        return Some(format!(
            "{} row error(s), more than import.max_row_errors = {limit}; nothing was written. \
             Fix the rows (see the errors and the run's summary.csv) or allow them with \
             --set import.max_row_errors=N (-1 = unlimited)",
            errors.len()
        ));
    }
    if force {
        return None;
    }
    if no_valid_rows && plan.scope_size > 0 {
        return Some(format!(
            "the feed has no valid rows, but {} user(s) are in scope and would all be removed; \
             check the file, or use --force if the school really has no such users any more",
            plan.scope_size
        ));
    }
    let removals = plan.removals();
    let pct = cfg.guard.max_removal_percent;
    let share = if plan.scope_size == 0 {
        0.0
    } else {
        removals as f64 * 100.0 / plan.scope_size as f64
    };
    if removals > cfg.guard.min_removals && share > pct {
        return Some(format!(
            "the run would remove {removals} of {} user(s) in scope ({share:.1}%), more than \
             import.guard.max_removal_percent = {pct}% and import.guard.min_removals = {}; \
             check the feed, or use --force to apply it",
            plan.scope_size, cfg.guard.min_removals
        ));
    }
    None
}
