//! Writing a prepared import: the directory batch (one transaction), the
//! received rows and history (committed only after the directory), the
//! password CSV, the summary and the run's counts. With `--dry-run` or a
//! refusal only the records are written.

use super::plan::{Action, Planned};
use super::prepare::{Prepared, stamp_str};
use super::row::Row;
use super::{ChangeLine, ImportOutcome, ImportRequest, summary};
use crate::engine::jobs::{Progress, ProgressEvent};
use crate::engine::received::{ReceivedRow, Removal};
use crate::engine::runs::{Run, RunRowError};
use crate::engine::{Engine, EngineError, EngineResult};
use crate::model::School;
use std::collections::HashMap;
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
        let plan = &p.plan;
        let mut school_created = false;
        let mut committed = false;
        let mut passwords_csv = None;
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
                .filter(|item| item.line.is_none() && !item.after.has_school(&req.school))
                .map(|item| Removal { key: &item.after.key })
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
            committed = true;
            // The directory is written: what follows is bookkeeping, and a
            // failure of it (a full disk) is a warning, never a failed import.
            match recorded {
                Ok(Ok(())) => {}
                Ok(Err(e)) => p.warnings.push(format!(
                    "the directory was written, but the last received rows were not recorded ({e});                      the next import of this school reads every user again"
                )),
                Err(_) => tracing::error!("the received-rows writer panicked; the last received rows are not updated"),
            }
            if school_created {
                run.log(&format!("created school {}", req.school));
            }
            passwords_csv = self.write_passwords(run, req, &p)?;
        }
        if let Err(e) = summary::write(run, plan, &p.quiet, &p.skipped, &p.errors, &req.school) {
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
            errors: p.errors,
            refused: p.refused,
            format: p.format,
            skipped: p.skipped.len() as u64,
            roles: p.scope_roles.into_iter().collect(),
            scope: p.plan.scope_size,
            school_created,
            warnings: p.warnings,
            passwords_csv: passwords_csv.map(|path: PathBuf| path.display().to_string()),
            changes,
        })
    }

    fn write_passwords(&self, run: &mut Run, req: &ImportRequest, p: &Prepared) -> EngineResult<Option<PathBuf>> {
        let configured = &self.settings.config.import.passwords_csv;
        let path = match (&req.passwords_csv, configured.as_str()) {
            (Some(path), _) => path.clone(),
            (None, "") => return Ok(None),
            (None, path) => PathBuf::from(path.replace("{run_id}", run.id())),
        };
        if p.plan.count(Action::Created) == 0 {
            return Ok(None);
        }
        summary::write_passwords(&path, &p.plan)?;
        run.log(&format!("initial passwords written to {} (mode 0600)", path.display()));
        Ok(Some(path))
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
