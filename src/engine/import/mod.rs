//! One per-school import run (SiSoPi): read and validate the whole feed,
//! compute the full plan, check the row-error limit and the mass-removal
//! guard, and only then write — or, with `--dry-run`, write nothing.
//!
//! Rows whose mapped content and user are both unchanged since the last run
//! (same digest, same `updated_at`) are settled without reading the user:
//! that is what makes a no-change re-import cheap.

mod guard;
pub mod plan;
pub mod read;
pub mod row;
pub mod scope;
mod summary;

use super::feed::Format;
use super::jobs::{Progress, ProgressEvent};
use super::received::{ReceivedRow, Removal};
use super::runs::{Run, RunKind, RunRowError, RunStatus};
use super::scheme::{EmailScheme, SchemeFields, UsernameScheme};
use super::{Engine, EngineError, EngineResult};
use crate::model::{Role, School, User, validate_school_name, validate_source_uid};
use crate::store::{ReadView, UserStamp};
use chrono::Utc;
use plan::{Action, PlanNames, PlanSettings};
use row::{Row, RowError};
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
    /// The feed's format; default: from the file extension.
    pub format: Option<Format>,
    /// Mapping-rules file; default: `import.mappings.<format>`.
    pub mapping: Option<PathBuf>,
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
    pub format: Format,
    /// Records a skip rule of the mapping dropped.
    pub skipped: u64,
    pub roles: Vec<Role>,
    pub scope: usize,
    pub school_created: bool,
    pub warnings: Vec<String>,
    pub passwords_csv: Option<String>,
    /// Every planned change except `unchanged`.
    pub changes: Vec<ChangeLine>,
}

/// A row settled as unchanged without reading its user.
pub(crate) struct Quiet {
    pub line: u64,
    pub username: String,
    pub record_uid: String,
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
            "format": req.format,
            "mapping": req.mapping.as_ref().map(|p| p.display().to_string()),
        });
        self.prune_runs();
        let mut run = self.runs.start(
            RunKind::Import,
            self.audit.actor(),
            args.clone(),
            Some(&req.school),
            req.dry_run,
        )?;
        let result = self.import_in_run(&mut run, req, school_exists, progress);
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

        // The input is archived (compressed, exactly as received) while it
        // is read; nothing is written unless the archive is complete.
        let run_dir = run.dir().to_path_buf();
        let (feed, archived) = std::thread::scope(|scope| {
            let archiver = scope.spawn(|| Run::archive(&run_dir, &req.file));
            let feed = self.read_feed(req, &run_roles, progress);
            (feed, archiver.join())
        });
        match archived {
            Ok(Ok(name)) => run.set_input(name),
            Ok(Err(e)) => return Err(e.into()),
            Err(_) => return Err(EngineError::Invalid("archiving the input failed unexpectedly".into())),
        }
        let feed = feed?;
        let mut warnings = Vec::new();
        if feed.unknown_rejected {
            warnings.push(
                "a rejected row has no readable record_uid, so no user is removed by this run; fix the row and \
                 import again"
                    .to_string(),
            );
        }
        let valid_rows = feed.rows.len();
        progress.update(ProgressEvent {
            phase: "planning",
            done: 0,
            total: Some(valid_rows as u64),
        });
        let scope = Scope {
            source_uid: &source,
            school: &req.school,
            roles: &scope_roles,
        };
        let usernames = UsernameScheme::parse(&cfg.username_scheme, cfg.username_max_length)
            .map_err(|e| EngineError::Invalid(format!("import.username_scheme: {e}")))?;
        let emails = match cfg.email_scheme.as_str() {
            "" => None,
            s => Some(EmailScheme::parse(s).map_err(|e| EngineError::Invalid(format!("import.email_scheme: {e}")))?),
        };

        // Plan on one consistent view of the directory.
        let view = ReadView::begin(self.dir.as_ref())?;
        let stamps = self.dir.user_stamps(&scope.query())?;
        let known = self.state.received_digests(&source, &req.school)?;
        let stamp_of: HashMap<&str, &UserStamp> = stamps.iter().map(|s| (s.key.record_uid.as_str(), s)).collect();
        let (quiet_rows, rows): (Vec<Row>, Vec<Row>) = feed.rows.into_iter().partition(|r| {
            stamp_of.get(r.record_uid.as_str()).is_some_and(|st| {
                known
                    .get(&r.record_uid)
                    .is_some_and(|(digest, at)| *digest == r.digest && *at == stamp_str(st))
            })
        });
        let quiet: Vec<Quiet> = quiet_rows
            .iter()
            .filter_map(|r| {
                stamp_of.get(r.record_uid.as_str()).map(|st| Quiet {
                    line: r.line,
                    username: st.username.clone(),
                    record_uid: r.record_uid.clone(),
                })
            })
            .collect();
        // Users in scope whose rows are missing: the candidates for removal.
        let in_feed: HashSet<&str> = rows.iter().chain(&quiet_rows).map(|r| r.record_uid.as_str()).collect();
        let leaving: Vec<String> = stamps
            .iter()
            .map(|s| s.key.record_uid.clone())
            .filter(|uid| !in_feed.contains(uid.as_str()) && !feed.protected.contains(uid))
            .collect();
        let wanted: Vec<String> = rows
            .iter()
            .map(|r| r.record_uid.clone())
            .chain(leaving.iter().cloned())
            .collect();
        let loaded = self.dir.users_by_record_uids(&source, &wanted)?;
        let leaving_set: HashSet<&str> = leaving.iter().map(String::as_str).collect();
        let (leavers, named): (Vec<User>, Vec<User>) = loaded
            .into_iter()
            .partition(|u| leaving_set.contains(u.key.record_uid.as_str()) && scope.contains(u));
        let existing: HashMap<&str, &User> = named.iter().map(|u| (u.key.record_uid.as_str(), u)).collect();
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
        let newcomers: Vec<SchemeFields<'_>> = rows
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
            &rows,
            &existing,
            &leavers,
            &feed.protected,
            feed.unknown_rejected,
            &mut names,
        );
        plan.scope_size = stamps.len();
        names.into_plan(&mut plan);
        drop(view);
        let mut errors = feed.errors;
        errors.extend(plan.errors.iter().cloned());
        errors.sort_by_key(|e| e.line);

        let refused = guard::refusal(&cfg, &plan, &errors, valid_rows == 0, req.force);
        let mut school_created = false;
        let mut passwords_csv = None;
        if refused.is_none() && !req.dry_run {
            if progress.cancelled() {
                return Err(EngineError::Cancelled(
                    "the import stopped before it wrote anything".into(),
                ));
            }
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
            // Rows, and the user state after the run, unless the same was
            // recorded already.
            let by_line: HashMap<u64, &Row> = rows.iter().map(|r| (r.line, r)).collect();
            let received: Vec<ReceivedRow<'_>> = plan
                .items
                .iter()
                .filter_map(|p| {
                    let row = by_line.get(&p.line?)?;
                    let stamp = stamp_str_of(&p.after);
                    let before = known.get(&row.record_uid);
                    if before.is_some_and(|(d, at)| *d == row.digest && *at == stamp) {
                        return None;
                    }
                    Some(ReceivedRow {
                        key: &p.after.key,
                        line: row.line,
                        row: row.raw.clone(),
                        digest: &row.digest,
                        user_updated_at: stamp,
                        supersedes: before.is_some_and(|(d, _)| *d != row.digest),
                    })
                })
                .collect();
            let removals: Vec<Removal<'_>> = plan
                .items
                .iter()
                .filter(|p| p.line.is_none() && !p.after.has_school(&req.school))
                .map(|p| Removal { key: &p.after.key })
                .collect();
            // The received rows go to the local state while the directory is
            // written, and are committed only once the directory committed.
            let (dir, state) = (&mut self.dir, &mut self.state);
            let (applied, recorded) = std::thread::scope(|scope| {
                let (go, wait) = std::sync::mpsc::channel();
                let run_id = run.id().to_string();
                let school = req.school.as_str();
                let (received, removals) = (&received, &removals);
                let writer =
                    scope.spawn(move || state.record_received_when(&run_id, school, received, removals, &wait));
                let applied = if batch.is_empty() {
                    Ok(Default::default())
                } else {
                    dir.apply(&batch)
                };
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
        }
        summary::write(run, &plan, &quiet, &feed.skipped, &errors, &req.school)?;

        let mut counts = plan.counts();
        *counts.entry(Action::Unchanged).or_default() += quiet.len() as u64;
        for (action, n) in &counts {
            run.record.counts.insert(action.as_str().to_string(), *n);
        }
        run.record.counts.insert("errors".into(), errors.len() as u64);
        run.record.counts.insert("skipped".into(), feed.skipped.len() as u64);
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
        for (line, rule) in &feed.skipped {
            run.log(&format!("line {line}: skipped by {rule}"));
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
            format: feed.format,
            skipped: feed.skipped.len() as u64,
            roles: scope_roles.into_iter().collect(),
            scope: plan.scope_size,
            school_created,
            warnings,
            passwords_csv: passwords_csv.map(|p: PathBuf| p.display().to_string()),
            changes,
        })
    }

    fn write_passwords(&self, run: &mut Run, req: &ImportRequest, plan: &plan::Plan) -> EngineResult<Option<PathBuf>> {
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

/// A user's `updated_at` as the received table records it.
fn stamp_str(s: &UserStamp) -> String {
    s.updated_at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

fn stamp_str_of(u: &User) -> String {
    u.updated_at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
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
