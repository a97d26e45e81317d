//! One per-school import run (SiSoPi): read and validate the whole feed,
//! compute the full plan, check the row-error limit and the mass-removal
//! guard, and only then write — or, with `--dry-run`, write nothing.
//!
//! Rows whose mapped content and user are both unchanged since the last run
//! (same digest, same `updated_at`) are settled without reading the user:
//! that is what makes a no-change re-import cheap.

mod batch;
mod claim;
mod commit;
mod guard;
mod hooks;
pub mod plan;
mod prepare;
pub mod read;
pub mod row;
pub mod scope;
mod summary;

use super::feed::Format;
use super::jobs::Progress;
use super::runs::{Run, RunKind, RunStatus};
use super::{Engine, EngineError, EngineResult};
use crate::model::{Role, validate_school_name, validate_source_uid};
use plan::Action;
use prepare::{PrepareCtx, Prepared, prepare};
use row::RowError;
use serde::Serialize;
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
    /// The feed's encoding label (overrides `import.encoding`).
    pub encoding: Option<String>,
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
    /// Deleted at once (`import.deletion_grace_days = 0`).
    pub deleted: u64,
    /// Classes removed because their last member left (unless
    /// `import.keep_empty_classes`), as `SCHOOL-NAME`.
    pub classes_removed: Vec<String>,
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
    /// Post-hooks that failed (the writes stand).
    pub hook_failures: Vec<crate::engine::hooks::HookFailure>,
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
        let req = &self.resolved(req)?;
        self.check_request(req)?;
        self.prune_runs();
        let mut run = self.start_import_run(req)?;
        // A second import of this school waits here, then plans on the
        // first one's result.
        let lock = if req.dry_run {
            None
        } else {
            Some(self.lock_school(&mut run, &req.school)?)
        };
        let result = self
            .prepare_here(&mut run, req, progress)
            .and_then(|p| self.commit(&mut run, req, p, progress));
        // Held until the run is closed, so runs finish in commit order.
        let outcome = self.finish_import(run, req, result);
        drop(lock);
        outcome
    }

    /// Closes a run that did its work. On a full disk the temp files of
    /// dead writers are removed and it is tried again; if it still cannot
    /// be written, the run's status waits in its marker for the next
    /// process (which records it), and the error is returned.
    pub(crate) fn finish_run(&self, run: &mut Run, status: RunStatus, message: Option<String>) -> EngineResult<()> {
        close_run(&self.settings.paths, run, status, message)
    }

    /// Takes the import lock of `school` (see [`crate::engine::lock::SchoolLock`]).
    pub(super) fn lock_school(&self, run: &mut Run, school: &str) -> EngineResult<crate::engine::lock::SchoolLock> {
        let locks = self.settings.paths.locks();
        crate::engine::lock::SchoolLock::acquire(&locks, school, &mut || {
            run.log(&format!("waiting for another import of {school} to finish"));
        })
        .map_err(crate::engine::io_error(&locks))
    }

    /// The request with its school as stored (names are case-insensitive:
    /// `--school GSA` imports into `gsa` when that exists).
    pub(super) fn resolved(&self, req: &ImportRequest) -> EngineResult<ImportRequest> {
        validate_school_name(&req.school).map_err(|e| EngineError::Usage(e.to_string()))?;
        Ok(ImportRequest {
            school: self.resolve_school(&req.school)?,
            ..req.clone()
        })
    }

    /// Checks what can be checked before a run starts.
    pub(super) fn check_request(&self, req: &ImportRequest) -> EngineResult<()> {
        let cfg = &self.settings.config.import;
        validate_school_name(&req.school).map_err(|e| EngineError::Usage(e.to_string()))?;
        if req.school.eq_ignore_ascii_case(&cfg.limbo_school) {
            return Err(EngineError::Usage(format!(
                "'{}' is the limbo school (import.limbo_school); users cannot be imported into it",
                req.school
            )));
        }
        if let Some(s) = &req.source_uid {
            validate_source_uid(s).map_err(|e| EngineError::Usage(e.to_string()))?;
        }
        self.check_feed_file(req)?;
        if !cfg.create_schools && self.dir.school(&req.school)?.is_none() {
            return Err(EngineError::NotFound(format!(
                "school '{0}' does not exist; create it with `rollcall schools create {0}` \
                 (or set import.create_schools = true)",
                req.school
            )));
        }
        Ok(())
    }

    /// The feed must be a regular file (it is read twice: archived and
    /// imported) no larger than `import.max_feed_bytes`.
    fn check_feed_file(&self, req: &ImportRequest) -> EngineResult<()> {
        let path = req.file.display();
        let meta = match std::fs::metadata(&req.file) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(EngineError::NotFound(format!("feed file {path} does not exist")));
            }
            Err(e) => return Err(crate::engine::io_error(&req.file)(e)),
        };
        let ft = meta.file_type();
        if !ft.is_file() {
            use std::os::unix::fs::FileTypeExt;
            let what = if ft.is_dir() {
                "a directory"
            } else if ft.is_fifo() {
                "a FIFO (named pipe)"
            } else if ft.is_char_device() {
                "a character device"
            } else if ft.is_block_device() {
                "a block device"
            } else if ft.is_socket() {
                "a socket"
            } else {
                "not a regular file"
            };
            return Err(EngineError::Usage(format!(
                "feed {path} is {what}, not a regular file; rollcall reads a feed twice (to archive it and to \
                 import it): save the feed to a file and import that"
            )));
        }
        let max = self.settings.config.import.max_feed_bytes;
        if max > 0 && meta.len() > max {
            return Err(self.refuse(
                "import",
                run_args(req),
                format!(
                    "feed {path} has {} bytes, more than import.max_feed_bytes = {max}; a school's feed is far \
                     smaller: check the file, or raise the limit (--set import.max_feed_bytes=N)",
                    meta.len()
                ),
            ));
        }
        Ok(())
    }

    pub(super) fn start_import_run(&self, req: &ImportRequest) -> EngineResult<Run> {
        Ok(self.runs.start(
            RunKind::Import,
            self.audit.actor(),
            run_args(req),
            Some(&req.school),
            req.dry_run,
        )?)
    }

    /// Closes the run record and audits the import.
    pub(super) fn finish_import(
        &self,
        run: Run,
        req: &ImportRequest,
        result: EngineResult<ImportOutcome>,
    ) -> EngineResult<ImportOutcome> {
        self.finish_import_closing(run, req, result, None)
    }

    /// [`Self::finish_import`]; with `later`, a successful run's record is
    /// handed to the batch's closing thread instead of closed here (its
    /// files are the writer's slowest disk work after the commit).
    fn finish_import_closing(
        &self,
        mut run: Run,
        req: &ImportRequest,
        result: EngineResult<ImportOutcome>,
        later: Option<(&batch::Closer, usize)>,
    ) -> EngineResult<ImportOutcome> {
        match result {
            Ok(mut outcome) => {
                if !req.dry_run {
                    self.feed_arrived(&req.school, &outcome.run_id);
                }
                let status = if outcome.refused.is_some() {
                    RunStatus::Refused
                } else {
                    RunStatus::Ok
                };
                match later {
                    Some((closer, place)) => closer.close(place, run, status, outcome.refused.clone()),
                    None => {
                        if let Err(e) = self.finish_run(&mut run, status, outcome.refused.clone()) {
                            outcome.warnings.push(not_closed(&e));
                        }
                    }
                }
                let what = if req.dry_run { "import (dry run)" } else { "import" };
                self.audit.record(
                    what,
                    run_args(req),
                    &format!("run {}: {}", outcome.run_id, status_word(&outcome)),
                );
                Ok(outcome)
            }
            Err(e) => {
                run.log(&format!("error: {e}"));
                let id = run.id().to_string();
                let status = if matches!(e, EngineError::Cancelled(_)) {
                    RunStatus::Cancelled
                } else {
                    RunStatus::Failed
                };
                run.finish(status, Some(e.to_string()))?;
                self.audit
                    .record("import", run_args(req), &format!("run {id}: {}: {e}", status.as_str()));
                Err(e)
            }
        }
    }

    /// Prepares the import on the engine's own directory.
    fn prepare_here(&self, run: &mut Run, req: &ImportRequest, progress: &mut dyn Progress) -> EngineResult<Prepared> {
        let ctx = PrepareCtx {
            settings: &self.settings,
            dir: self.dir.as_ref(),
            state: &self.state,
            today: self.today(),
            carry: None,
        };
        prepare(&ctx, run, req, progress)
    }
}

/// [`Engine::finish_run`] for a caller without the engine (the batch's
/// closing thread).
pub(super) fn close_run(
    paths: &crate::engine::paths::DataPaths,
    run: &mut Run,
    status: RunStatus,
    message: Option<String>,
) -> EngineResult<()> {
    let first = match run.try_finish(status, message.clone()) {
        Ok(_) => return Ok(()),
        Err(e) => EngineError::Run(e),
    };
    if !first.is_disk_full() {
        run.defer_finish(status);
        return Err(first);
    }
    let freed = crate::engine::free_disk(paths);
    tracing::warn!(error = %first, freed, "disk full while closing a run; freed temp and spent files, trying again");
    match run.try_finish(status, message) {
        Ok(_) => Ok(()),
        Err(e) => {
            run.defer_finish(status);
            Err(EngineError::Run(e))
        }
    }
}

/// The warning of an import whose run record could not be closed.
pub(super) fn not_closed(e: &EngineError) -> String {
    // The import happened: say so, and what could not be kept.
    format!("the import is done, but its run record could not be closed: {e}")
}

fn run_args(req: &ImportRequest) -> serde_json::Value {
    serde_json::json!({
        "school": req.school,
        "roles": req.roles,
        "source_uid": req.source_uid,
        "dry_run": req.dry_run,
        "force": req.force,
        "file": req.file.display().to_string(),
        "format": req.format,
        "mapping": req.mapping.as_ref().map(|p| p.display().to_string()),
        "encoding": req.encoding,
    })
}

fn status_word(o: &ImportOutcome) -> String {
    match &o.refused {
        Some(r) => format!("refused: {r}"),
        None => format!(
            "created {}, modified {}, added_school {}, removed_school {}, to_limbo {}, restored {}, deleted {}, errors {}",
            o.created,
            o.modified,
            o.added_school,
            o.removed_school,
            o.to_limbo,
            o.restored,
            o.deleted,
            o.errors.len()
        ),
    }
}
