//! Writing a prepared import: the pre-hooks (a veto is a row error), the
//! password CSV (synced to a temp file first: no user exists without its
//! initial password on disk), the directory batch (one transaction), the
//! received rows and history (committed only after the directory), empty
//! classes, the post-hooks, the summary and the run's counts. With
//! `--dry-run` or a refusal only the records are written.

use super::guard;
use super::plan::{Action, Plan, Planned};
use super::prepare::{Prepared, stamp_str};
use super::row::Row;
use super::summary::StagedPasswords;
use super::{ChangeLine, ImportOutcome, ImportRequest, summary};
use crate::engine::hooks::{HookRunner, Phase};
use crate::engine::jobs::{Progress, ProgressEvent};
use crate::engine::received::{ReceivedRow, Removal};
use crate::engine::runs::{Run, RunRowError};
use crate::engine::{Engine, EngineError, EngineResult};
use crate::model::{GroupKey, GroupKind, School};
use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;

impl Engine {
    pub(super) fn commit(
        &mut self,
        run: &mut Run,
        req: &ImportRequest,
        mut p: Prepared,
        progress: &mut dyn Progress,
    ) -> EngineResult<ImportOutcome> {
        let cfg = self.settings.config.import.clone();
        if p.refused.is_none() && !req.dry_run {
            // New users' names are claimed in the directory before anything
            // is written; names another writer took meanwhile are planned again.
            let again = super::claim::claim_new_usernames(&self.settings, self.dir.as_mut(), &mut p, &req.school)?;
            if again > 0 {
                p.warnings.push(format!(
                    "{again} username(s) planned again: another writer of the directory took them meanwhile"
                ));
            }
        }
        let mut school_created = false;
        let mut committed = false;
        let mut passwords_csv = None;
        let mut notes: HashMap<usize, String> = HashMap::new();
        let mut hook_failures = Vec::new();
        let mut classes_removed = Vec::new();
        let hooks_cfg = self.settings.config.hooks.clone();
        let data_dir = self.settings.paths.root().to_path_buf();
        let run_id = run.id().to_string();
        let hooks = HookRunner::new(&hooks_cfg, &data_dir, &run_id);
        if p.refused.is_none() && !req.dry_run && hooks_cfg.any(Phase::Pre) {
            // Outside any transaction; a veto is a row error, and the
            // row-error limit decides again.
            let vetoed = super::hooks::run_pre(&hooks, &mut p.plan, &req.school);
            if !vetoed.is_empty() {
                for e in &vetoed {
                    run.log(&format!("pre-hook: {}", e.message));
                }
                p.errors.extend(vetoed);
                p.errors.sort_by_key(|e| e.line);
                p.refused = guard::refusal(
                    &cfg,
                    &p.plan,
                    &p.errors,
                    p.rows.is_empty() && p.quiet.is_empty(),
                    req.force,
                );
            }
        }
        // The initial passwords are on disk before the users exist; only a
        // password someone can read is worth its (deliberately slow) hash.
        let staged = match p.refused.is_none() && !req.dry_run {
            true => self.stage_passwords(run, req, &p)?,
            false => None,
        };
        if staged.is_some() {
            hash_initial_passwords(&mut p.plan, self.settings.config.import.password_scheme);
        }
        let plan = &p.plan;
        if p.refused.is_none() && !req.dry_run {
            if progress.cancelled() {
                return Err(EngineError::Cancelled(
                    "the import stopped before it wrote anything".into(),
                ));
            }
            let mut schools = Vec::new();
            if self.dir.school(&req.school)?.is_none() {
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
            let by_line: HashMap<u64, &Row> = p.rows.iter().map(|r| (r.line, r)).collect();
            let received: Vec<ReceivedRow<'_>> = plan
                .items
                .iter()
                .filter(|item| item.action != Action::Deleted)
                .filter_map(|item| {
                    let row = by_line.get(&item.line?)?;
                    let stamp = stamp_str(item.after.updated_at);
                    let before = p.known.get(&row.record_uid);
                    if before.is_some_and(|(d, at)| *d == row.digest && *at == stamp) {
                        return None;
                    }
                    Some(ReceivedRow {
                        key: &item.after.key,
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
                .filter(|item| item.line.is_none())
                .map(|item| Removal { key: &item.after.key })
                .collect();
            // The received rows go to the local state while the directory is
            // written, and are committed only once the directory committed.
            let (dir, state) = (&mut self.dir, &mut self.state);
            let (applied, recorded) = std::thread::scope(|scope| {
                let (go, wait) = std::sync::mpsc::channel();
                let run_id = run.id().to_string();
                let school = req.school.as_str();
                let received_scope = p.received_scope.as_str();
                let (received, removals) = (&received, &removals);
                let writer = scope.spawn(move || {
                    state.record_received_when(&run_id, school, received_scope, received, removals, &wait)
                });
                let applied = if batch.is_empty() {
                    Ok(Default::default())
                } else {
                    dir.apply(&batch)
                };
                let _ = go.send(applied.is_ok());
                (applied, writer.join())
            });
            if let Err(e) = applied {
                if let Some(s) = staged {
                    s.abandon();
                }
                return Err(e.into());
            }
            committed = true;
            // The directory is written: what follows is bookkeeping, and a
            // failure of it (a full disk) is a warning, never a failed import.
            match recorded {
                Ok(Ok(())) => {}
                Ok(Err(e)) => p.warnings.push(format!(
                    "the directory was written, but the last received rows were not recorded ({e}); \
                     the next import of this school reads every user again"
                )),
                Err(_) => tracing::error!("the received-rows writer panicked; the last received rows are not updated"),
            }
            if school_created {
                run.log(&format!("created school {}", req.school));
            }
            if let Some(s) = staged {
                match s.commit() {
                    Ok(path) => {
                        run.log(&format!("initial passwords written to {} (mode 0600)", path.display()));
                        passwords_csv = Some(path);
                    }
                    Err(message) => {
                        run.log(&format!("warning: {message}"));
                        p.warnings.push(message);
                    }
                }
            }
            if !cfg.keep_empty_classes {
                classes_removed = self.drop_emptied_classes(plan)?;
                for c in &classes_removed {
                    run.log(&format!("class {c} removed: its last member left"));
                }
            }
            self.audit_deleted(run.id(), req, plan);
            if hooks_cfg.any(Phase::Post) {
                for (i, f) in super::hooks::run_post(&hooks, plan, &req.school) {
                    let message = format!("{} failed: {}", f.hook, f.message);
                    run.log(&format!("post-hook for {}: {message}", f.username));
                    notes.insert(i, message);
                    hook_failures.push(f);
                }
            }
        }
        if let Err(e) = summary::write(run, plan, &p.quiet, &p.skipped, &p.errors, &req.school, &notes) {
            if !committed {
                return Err(e);
            }
            p.warnings
                .push(format!("the directory was written, but the run's summary was not: {e}"));
        }

        let mut counts = plan.counts();
        *counts.entry(Action::Unchanged).or_default() += p.quiet.len() as u64;
        for (action, n) in &counts {
            run.record.counts.insert(action.as_str().to_string(), *n);
        }
        run.record.counts.insert("errors".into(), p.errors.len() as u64);
        run.record.counts.insert("skipped".into(), p.skipped.len() as u64);
        if !hook_failures.is_empty() {
            run.record
                .counts
                .insert("hook_failures".into(), hook_failures.len() as u64);
        }
        run.record.errors = p
            .errors
            .iter()
            .map(|e| RunRowError {
                line: Some(e.line),
                record_uid: e.record_uid.clone(),
                message: e.message.clone(),
            })
            .collect();
        for e in &p.errors {
            run.log(&format!("line {}: {}", e.line, e.message));
        }
        for (line, rule) in &p.skipped {
            run.log(&format!("line {line}: skipped by {rule}"));
        }
        for w in &p.warnings {
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
        if let Some(r) = &p.refused {
            run.log(&format!("refused: {r}"));
        }
        let changes = plan
            .items
            .iter()
            .filter(|item| item.action != Action::Unchanged)
            .map(|item| change_line(item, &req.school))
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
            deleted: counts[&Action::Deleted],
            classes_removed,
            errors: p.errors,
            refused: p.refused,
            format: p.format,
            skipped: p.skipped.len() as u64,
            roles: p.scope_roles.into_iter().collect(),
            scope: p.plan.scope_size,
            school_created,
            warnings: p.warnings,
            passwords_csv: passwords_csv.map(|path: PathBuf| path.display().to_string()),
            hook_failures,
            changes,
        })
    }

    /// The passwords CSV of this run, written to a synced temp file; `None`
    /// when none is configured or nobody is created.
    fn stage_passwords(&self, run: &Run, req: &ImportRequest, p: &Prepared) -> EngineResult<Option<StagedPasswords>> {
        let configured = &self.settings.config.import.passwords_csv;
        let path = match (&req.passwords_csv, configured.as_str()) {
            (Some(path), _) => path.clone(),
            (None, "") => return Ok(None),
            (None, path) => PathBuf::from(path.replace("{run_id}", run.id())),
        };
        if p.plan.count(Action::Created) == 0 {
            return Ok(None);
        }
        summary::stage_passwords(&path, &p.plan, run.id()).map(Some)
    }

    /// Removes the classes this plan took members from and that have none
    /// left (`import.keep_empty_classes = false`); returns `SCHOOL-NAME`s.
    fn drop_emptied_classes(&mut self, plan: &Plan) -> EngineResult<Vec<String>> {
        let mut left: BTreeSet<GroupKey> = BTreeSet::new();
        for item in &plan.items {
            let Some(before) = &item.before else { continue };
            let deleted = item.action == Action::Deleted;
            for m in &before.memberships {
                let kept = if deleted {
                    None
                } else {
                    item.after.membership(&m.school)
                };
                for c in &m.classes {
                    if !kept.is_some_and(|k| k.classes.contains(c)) {
                        left.insert(GroupKey::new(m.school.clone(), GroupKind::Class, c.clone()));
                    }
                }
            }
        }
        if left.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<GroupKey> = left.into_iter().collect();
        Ok(self
            .dir
            .drop_empty_groups(&keys)?
            .iter()
            .map(ToString::to_string)
            .collect())
    }

    /// Audits the users an import deleted (`deletion_grace_days = 0`).
    fn audit_deleted(&self, run_id: &str, req: &ImportRequest, plan: &Plan) {
        let deleted: Vec<&str> = plan
            .items
            .iter()
            .filter(|p| p.action == Action::Deleted)
            .map(|p| p.after.username.as_str())
            .collect();
        if deleted.is_empty() {
            return;
        }
        self.audit.record(
            "import delete",
            serde_json::json!({"run_id": run_id, "school": req.school, "usernames": deleted}),
            &format!("ok: {} deleted (import.deletion_grace_days = 0)", deleted.len()),
        );
    }
}

fn change_line(p: &Planned, school: &str) -> ChangeLine {
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

/// Hashes the initial password of every created user, on every core: a
/// scheme like SHA-512 crypt costs milliseconds per user by design.
fn hash_initial_passwords(plan: &mut Plan, scheme: crate::engine::password::Scheme) {
    let mut todo: Vec<&mut Planned> = plan
        .items
        .iter_mut()
        .filter(|i| i.action == Action::Created && i.password.is_some())
        .collect();
    if todo.is_empty() {
        return;
    }
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = todo.len().div_ceil(threads);
    std::thread::scope(|scope| {
        for part in todo.chunks_mut(chunk) {
            scope.spawn(move || {
                for item in part {
                    if let Some(pw) = &item.password {
                        item.after.password_hash = Some(crate::engine::password::hash_with(scheme, pw));
                    }
                }
            });
        }
    });
}
