//! Importing many feeds in one go (the demo, the first load of a district):
//! while one feed is written, the next is read and planned on a second
//! connection to the directory. A plan made before the previous write is
//! checked against the journal before it is written, and planned again if
//! anything it read — a user of its feed or scope, or anybody in its school —
//! changed meanwhile — together with every later plan, since their reserved
//! usernames build on it. So a batch ends exactly where one import after
//! another would. Usernames issued by plans not yet written are reserved for
//! the plans after them.
//!
//! Feeds of different schools rarely touch the same users, so ordering the
//! feeds role by role (all schools' students, then teachers, …) keeps
//! re-planning rare.

use super::plan::Reservations;
use super::prepare::{PrepareCtx, Prepared, prepare};
use super::{ImportOutcome, ImportRequest, run_args};
use crate::engine::audit::Actor;
use crate::engine::jobs::{Progress, ProgressEvent, Quiet};
use crate::engine::paths::DataPaths;
use crate::engine::runs::{Run, RunKind, RunStatus, Runs};
use crate::engine::state::StateDb;
use crate::engine::{Engine, EngineError, EngineResult, Settings, open_directory_beside};
use crate::model::ObjectRef;
use chrono::NaiveDate;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SendError, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::{Scope, ScopedJoinHandle};

/// The result of a batch.
#[derive(Debug)]
pub struct BatchOutcome {
    pub imports: Vec<ImportOutcome>,
    /// Plans made again because an earlier feed changed what they read.
    pub replanned: usize,
}

/// One planned feed, sent from the planning thread.
type Planned = (usize, Run, EngineResult<Prepared>);

/// The planning thread: plans feeds `from..` in order, one ahead of the
/// writer; stops when told or when the writer stops listening.
struct Planner<'scope> {
    rx: Receiver<EngineResult<Planned>>,
    stop: Arc<AtomicBool>,
    handle: ScopedJoinHandle<'scope, ()>,
}

impl Planner<'_> {
    /// Stops the thread and throws away what it planned but did not hand
    /// over (their runs never happened).
    fn stop(self) {
        self.stop.store(true, Ordering::SeqCst);
        while let Ok(Ok((_, run, _))) = self.rx.try_recv() {
            run.discard();
        }
        drop(self.rx);
        let _ = self.handle.join();
    }
}

/// Everything a planning thread needs.
#[derive(Clone, Copy)]
struct PlanJob<'a> {
    reqs: &'a [ImportRequest],
    settings: &'a Settings,
    carry: &'a Mutex<Reservations>,
    runs: &'a Runs,
    actor: &'a Actor,
    today: NaiveDate,
}

fn spawn_planner<'scope, 'env: 'scope>(
    scope: &'scope Scope<'scope, 'env>,
    job: PlanJob<'env>,
    from: usize,
) -> Planner<'scope> {
    let (tx, rx) = sync_channel::<EngineResult<Planned>>(1);
    let stop = Arc::new(AtomicBool::new(false));
    let stopped = stop.clone();
    let handle = scope.spawn(move || {
        // Its own connections: it reads while the writer writes.
        let connections =
            open_directory_beside(job.settings).and_then(|d| Ok((d, StateDb::open(&job.settings.paths.state_db())?)));
        let (dir, state) = match connections {
            Ok(c) => c,
            Err(e) => {
                let _ = tx.send(Err(e));
                return;
            }
        };
        for (place, req) in job.reqs.iter().enumerate().skip(from) {
            if stopped.load(Ordering::SeqCst) {
                return;
            }
            let started = job
                .runs
                .start(
                    RunKind::Import,
                    job.actor,
                    run_args(req),
                    Some(&req.school),
                    req.dry_run,
                )
                .map_err(EngineError::from);
            let mut run = match started {
                Ok(run) => run,
                Err(e) => {
                    let _ = tx.send(Err(e));
                    return;
                }
            };
            let ctx = PrepareCtx {
                settings: job.settings,
                dir: dir.as_ref(),
                state: &state,
                today: job.today,
                carry: Some((job.carry, place)),
            };
            let prepared = prepare(&ctx, &mut run, req, &mut Quiet);
            if let Err(SendError(Ok((_, run, _)))) = tx.send(Ok((place, run, prepared))) {
                run.discard();
                return;
            }
        }
    });
    Planner { rx, stop, handle }
}

/// What the closing thread is handed: the feed's place, its run, how it ended.
type ToClose = (usize, Run, RunStatus, Option<String>);

/// The batch's closing thread: the run records of written feeds are closed
/// there (a rename, an unlink: on a disk mounted with `discard` each waits
/// for the device) while the writer goes on with the next feed. At most two
/// wait at a time; the batch returns only once all are closed. A crash
/// before then leaves their markers, and `recover_interrupted` records them
/// as interrupted, as it would a crash just before an import's close.
pub(super) struct Closer {
    tx: SyncSender<ToClose>,
    paths: DataPaths,
}

impl Closer {
    pub(super) fn close(&self, place: usize, run: Run, status: RunStatus, message: Option<String>) {
        if let Err(SendError((_, mut run, status, message))) = self.tx.send((place, run, status, message)) {
            // The thread is gone (it panicked): close here.
            if let Err(e) = super::close_run(&self.paths, &mut run, status, message) {
                tracing::warn!(run = %run.id(), "{}", super::not_closed(&e));
            }
        }
    }
}

/// Starts the closing thread; it returns the warnings of the runs it could
/// not close, by place.
fn spawn_closer<'scope>(
    scope: &'scope Scope<'scope, '_>,
    paths: DataPaths,
) -> (Closer, ScopedJoinHandle<'scope, Vec<(usize, String)>>) {
    let (tx, rx) = sync_channel::<ToClose>(2);
    let thread_paths = paths.clone();
    let handle = scope.spawn(move || {
        let mut failed = Vec::new();
        for (place, mut run, status, message) in rx {
            if let Err(e) = super::close_run(&thread_paths, &mut run, status, message) {
                let warning = super::not_closed(&e);
                tracing::warn!(run = %run.id(), "{warning}");
                failed.push((place, warning));
            }
        }
        failed
    });
    (Closer { tx, paths }, handle)
}

/// A batch asked to stop ends between two feeds: those before `place` are
/// imported, none after.
fn stop_if_cancelled(progress: &dyn Progress, place: usize, total: usize) -> EngineResult<()> {
    match progress.cancelled() {
        true => Err(EngineError::Cancelled(format!(
            "the batch stopped after {place} of its {total} feeds; the rest were not imported"
        ))),
        false => Ok(()),
    }
}

impl Engine {
    /// Imports the feeds in order, with exactly the result of one `import`
    /// after another, planning each next feed while the current one is
    /// written. Stops at the first import that fails, and between two feeds
    /// when `progress` says so (`EngineError::Cancelled`).
    pub fn import_batch(&mut self, reqs: &[ImportRequest], progress: &mut dyn Progress) -> EngineResult<BatchOutcome> {
        if reqs.iter().any(|r| !r.dry_run) {
            self.check_writable("import")?;
        }
        let reqs = &reqs
            .iter()
            .map(|r| self.resolved(r))
            .collect::<EngineResult<Vec<_>>>()?;
        for req in reqs {
            self.check_request(req)?;
        }
        if !self.settings.config.directory.backend.plans_in_parallel() {
            return self.import_one_by_one(reqs, progress);
        }
        self.prune_runs();
        // Every school's import lock, in one order (no deadlock with other
        // batches), for the whole batch.
        let mut schools: Vec<String> = reqs
            .iter()
            .filter(|r| !r.dry_run)
            .map(|r| r.school.to_lowercase())
            .collect();
        schools.sort();
        schools.dedup();
        let locks = self.settings.paths.locks();
        let _held = schools
            .iter()
            .map(|s| {
                crate::engine::lock::SchoolLock::acquire(
                    &locks,
                    s,
                    &mut || tracing::info!(school = %s, "waiting for another import of this school to finish"),
                )
            })
            .collect::<std::io::Result<Vec<_>>>()
            .map_err(crate::engine::io_error(&locks))?;
        let carry = Mutex::new(Reservations::default());
        let settings = self.settings.clone();
        let runs = self.runs.clone();
        let actor = self.audit.actor().clone();
        let job = PlanJob {
            reqs,
            settings: &settings,
            carry: &carry,
            runs: &runs,
            actor: &actor,
            today: self.today(),
        };
        std::thread::scope(|scope| {
            let mut planner = Some(spawn_planner(scope, job, 0));
            let result = self.write_batch(scope, job, &mut planner, progress);
            if let Some(p) = planner.take() {
                p.stop();
            }
            result
        })
    }

    /// The batch without a planning thread, for backends whose second
    /// connection is not a plain reader (LDAP repairs its journal on open).
    fn import_one_by_one(&mut self, reqs: &[ImportRequest], progress: &mut dyn Progress) -> EngineResult<BatchOutcome> {
        let mut imports = Vec::with_capacity(reqs.len());
        for (place, req) in reqs.iter().enumerate() {
            stop_if_cancelled(progress, place, reqs.len())?;
            imports.push(self.import(req, &mut Quiet)?);
            progress.update(ProgressEvent {
                phase: "importing",
                done: place as u64 + 1,
                total: Some(reqs.len() as u64),
            });
        }
        Ok(BatchOutcome { imports, replanned: 0 })
    }

    fn write_batch<'scope, 'env: 'scope>(
        &mut self,
        scope: &'scope Scope<'scope, 'env>,
        job: PlanJob<'env>,
        planner: &mut Option<Planner<'scope>>,
        progress: &mut dyn Progress,
    ) -> EngineResult<BatchOutcome> {
        let reqs = job.reqs;
        let mut imports: Vec<ImportOutcome> = Vec::with_capacity(reqs.len());
        let mut replanned = 0;
        let (closer, closing) = spawn_closer(scope, self.settings.paths.clone());
        for (place, req) in reqs.iter().enumerate() {
            stop_if_cancelled(progress, place, reqs.len())?;
            let received = planner
                .as_ref()
                .map(|p| p.rx.recv())
                .ok_or_else(|| EngineError::Internal("no planning thread".into()))?
                .map_err(|_| EngineError::Internal("the planning thread stopped unexpectedly".into()))?;
            let (got, mut run, prepared) = received?;
            debug_assert_eq!(got, place);
            let prepared = match prepared {
                Ok(p) if let Some(why) = self.stale(&p, &req.school)? => {
                    // Throw this plan and every later one away (their
                    // reservations build on it), plan it again here, and
                    // start planning again after it.
                    replanned += 1;
                    if let Some(p) = planner.take() {
                        p.stop();
                    }
                    job.carry
                        .lock()
                        .map_err(|_| EngineError::Internal("a parallel import failed".into()))?
                        .forget_from(place);
                    run.log(&format!("planned again: an earlier feed changed {why}"));
                    let ctx = PrepareCtx {
                        settings: job.settings,
                        dir: self.dir.as_ref(),
                        state: &self.state,
                        today: job.today,
                        carry: Some((job.carry, place)),
                    };
                    let again = prepare(&ctx, &mut run, req, &mut Quiet);
                    if place + 1 < reqs.len() {
                        *planner = Some(spawn_planner(scope, job, place + 1));
                    }
                    again
                }
                other => other,
            };
            let result = prepared.and_then(|p| self.commit(&mut run, req, p, &mut Quiet));
            imports.push(self.finish_import_closing(run, req, result, Some((&closer, place)))?);
            progress.update(ProgressEvent {
                phase: "importing",
                done: place as u64 + 1,
                total: Some(reqs.len() as u64),
            });
        }
        drop(closer);
        let failed = closing
            .join()
            .map_err(|_| EngineError::Internal("the thread closing the batch's runs failed".into()))?;
        for (place, warning) in failed {
            if let Some(outcome) = imports.get_mut(place) {
                outcome.warnings.push(warning);
            }
        }
        Ok(BatchOutcome { imports, replanned })
    }

    /// Whether anything the plan depends on changed after its view: a user
    /// it read (its feed's and its scope's), or a user that entered its
    /// scope since.
    fn stale(&self, p: &Prepared, school: &str) -> EngineResult<Option<String>> {
        let scope = super::scope::Scope {
            source_uid: &p.source,
            school,
            roles: &p.scope_roles,
        };
        let mut after = p.view_head;
        let mut entered: Vec<String> = Vec::new();
        loop {
            let entries = self.dir.journal_after(after, 10_000)?;
            let Some(last) = entries.last() else { break };
            after = last.seq;
            for e in &entries {
                let ObjectRef::User { source_uid, record_uid } = &e.object else {
                    continue;
                };
                if *source_uid != p.source {
                    continue;
                }
                if p.read_keys.contains(record_uid) {
                    return Ok(Some(format!("user {record_uid}, which this plan read")));
                }
                if e.schools.iter().any(|s| s == school) {
                    entered.push(record_uid.clone());
                }
            }
        }
        // Users of the school the plan did not read: stale only if they are
        // in its scope now.
        Ok(self
            .dir
            .users_by_record_uids(&p.source, &entered)?
            .iter()
            .find(|u| scope.contains(u))
            .map(|u| format!("user {}, which entered this plan's scope", u.key.record_uid)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Settings;
    use crate::engine::config::LoadOptions;
    use crate::model::Role;

    #[test]
    fn a_plan_is_stale_once_its_users_or_school_changed() {
        let data = tempfile::tempdir().unwrap();
        let settings = Settings::load(&LoadOptions::default(), Some(data.path().to_path_buf()), false).unwrap();
        let mut engine = Engine::open(settings).unwrap();
        let feed = |name: &str, text: &str| {
            let p = data.path().join(name);
            std::fs::write(&p, text).unwrap();
            ImportRequest {
                school: "a".into(),
                roles: vec![Role::Student],
                file: p,
                ..ImportRequest::default()
            }
        };
        let first = feed("1.csv", "record_uid,firstname,lastname\n1,Max,M\n");
        let other_school = ImportRequest {
            school: "z".into(),
            ..feed("2.csv", "record_uid,firstname,lastname\n9,Zoe,Z\n")
        };
        // Plan the first feed, then let another school's import write: not stale.
        let mut run = engine.start_import_run(&first).unwrap();
        let p = engine.prepare_here(&mut run, &first, &mut Quiet).unwrap();
        engine.import(&other_school, &mut Quiet).unwrap();
        assert!(engine.stale(&p, "a").unwrap().is_none());
        // A user entering the plan's scope makes it stale (here: another
        // role's feed of the same school would not, a student feed does).
        let teacher = ImportRequest {
            roles: vec![Role::Teacher],
            ..feed("3.csv", "record_uid,firstname,lastname\n7,Tom,T\n")
        };
        engine.import(&teacher, &mut Quiet).unwrap();
        assert!(
            engine.stale(&p, "a").unwrap().is_none(),
            "a teacher is not in a student plan's scope"
        );
        let student = feed("5.csv", "record_uid,firstname,lastname\n8,Sam,S\n");
        engine.import(&student, &mut Quiet).unwrap();
        assert!(engine.stale(&p, "a").unwrap().is_some());
        // A write to a user the plan read, in another school, too.
        let mut run = engine.start_import_run(&first).unwrap();
        let p = engine.prepare_here(&mut run, &first, &mut Quiet).unwrap();
        let elsewhere = ImportRequest {
            school: "y".into(),
            ..feed("4.csv", "record_uid,firstname,lastname\n1,Max,M\n")
        };
        engine.import(&elsewhere, &mut Quiet).unwrap();
        assert!(engine.stale(&p, "a").unwrap().is_some());
    }

    #[test]
    fn every_run_of_a_batch_is_closed_when_it_returns() {
        let data = tempfile::tempdir().unwrap();
        let settings = Settings::load(&LoadOptions::default(), Some(data.path().to_path_buf()), false).unwrap();
        let mut engine = Engine::open(settings).unwrap();
        let reqs: Vec<ImportRequest> = (0..6)
            .map(|i| {
                let p = data.path().join(format!("{i}.csv"));
                std::fs::write(&p, format!("record_uid,firstname,lastname\nr{i},Max,M{i}\n")).unwrap();
                ImportRequest {
                    school: format!("s{i}"),
                    roles: vec![Role::Student],
                    file: p,
                    ..ImportRequest::default()
                }
            })
            .collect();
        let out = engine.import_batch(&reqs, &mut Quiet).unwrap();
        assert_eq!(out.imports.len(), 6);
        assert!(out.imports.iter().all(|o| o.warnings.is_empty()));
        // Closed by the closing thread, all of them, before the batch returned.
        assert!(engine.runs().active().unwrap().is_empty());
        for o in &out.imports {
            let record = engine.runs().show(&o.run_id).unwrap();
            assert_eq!(record.status, RunStatus::Ok, "{}", o.run_id);
            assert!(record.finished_at.is_some());
        }
    }
}
