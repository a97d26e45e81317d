//! Importing many feeds in one go (the demo, the first load of a district):
//! while one feed is written, the next is read and planned on a second
//! connection to the directory. A plan made before the previous write is
//! checked against the journal before it is written, and planned again if
//! anything it read — a user of its feed or scope, or anybody in its school —
//! changed meanwhile. Usernames issued by plans not yet written are reserved
//! for the plans after them.
//!
//! Feeds of different schools rarely touch the same users, so ordering the
//! feeds role by role (all schools' students, then teachers, …) keeps
//! re-planning rare.

use super::plan::Reservations;
use super::prepare::{PrepareCtx, Prepared, prepare};
use super::scope::Scope;
use super::{ImportOutcome, ImportRequest, run_args};
use crate::engine::jobs::{Progress, ProgressEvent, Quiet};
use crate::engine::runs::{Run, RunKind};
use crate::engine::state::StateDb;
use crate::engine::{Engine, EngineError, EngineResult, open_directory};
use crate::model::ObjectRef;
use std::sync::Mutex;
use std::sync::mpsc::sync_channel;

/// The result of a batch.
#[derive(Debug)]
pub struct BatchOutcome {
    pub imports: Vec<ImportOutcome>,
    /// Plans made again because an earlier feed changed what they read.
    pub replanned: usize,
}

impl Engine {
    /// Imports the feeds in order (as if one `import` after another),
    /// planning each next feed while the current one is written. Stops at
    /// the first import that fails.
    pub fn import_batch(&mut self, reqs: &[ImportRequest], progress: &mut dyn Progress) -> EngineResult<BatchOutcome> {
        if reqs.iter().any(|r| !r.dry_run) {
            self.check_writable("import")?;
        }
        for req in reqs {
            self.check_request(req)?;
        }
        self.prune_runs();
        let planner_dir = open_directory(&self.settings)?;
        let planner_state = StateDb::open(&self.settings.paths.state_db())?;
        let carry = Mutex::new(Reservations::default());
        let settings = self.settings.clone();
        let today = self.today();
        let runs = self.runs.clone();
        let actor = self.audit.actor().clone();
        let engine: &mut Engine = self;
        std::thread::scope(|scope| {
            let (tx, rx) = sync_channel::<EngineResult<(Run, EngineResult<Prepared>)>>(1);
            let carry = &carry;
            let settings = &settings;
            scope.spawn(move || {
                let ctx = PrepareCtx {
                    settings,
                    dir: planner_dir.as_ref(),
                    state: &planner_state,
                    today,
                    carry: Some(carry),
                };
                for req in reqs {
                    let started = runs
                        .start(RunKind::Import, &actor, run_args(req), Some(&req.school), req.dry_run)
                        .map_err(EngineError::from);
                    let item = started.map(|mut run| {
                        let prepared = prepare(&ctx, &mut run, req, &mut Quiet);
                        (run, prepared)
                    });
                    let failed = item.is_err();
                    if tx.send(item).is_err() || failed {
                        return;
                    }
                }
            });
            let mut imports = Vec::with_capacity(reqs.len());
            let mut replanned = 0;
            for (i, req) in reqs.iter().enumerate() {
                let (mut run, prepared) = rx
                    .recv()
                    .map_err(|_| EngineError::Invalid("the planning thread stopped unexpectedly".into()))??;
                let prepared = match prepared {
                    Ok(p) if let Some(why) = engine.stale(&p, &req.school)? => {
                        replanned += 1;
                        run.log(&format!("planned again: an earlier feed changed {why}"));
                        let ctx = PrepareCtx {
                            settings,
                            dir: engine.dir.as_ref(),
                            state: &engine.state,
                            today,
                            carry: Some(carry),
                        };
                        prepare(&ctx, &mut run, req, &mut Quiet)
                    }
                    other => other,
                };
                let result = prepared.and_then(|p| engine.commit(&mut run, req, p, &mut Quiet));
                let outcome = engine.finish_import(run, req, result)?;
                imports.push(outcome);
                progress.update(ProgressEvent {
                    phase: "importing",
                    done: i as u64 + 1,
                    total: Some(reqs.len() as u64),
                });
            }
            Ok(BatchOutcome { imports, replanned })
        })
    }

    /// Whether anything the plan depends on changed after its view: a user
    /// it read (its feed's and its scope's), or a user that entered its
    /// scope since.
    fn stale(&self, p: &Prepared, school: &str) -> EngineResult<Option<String>> {
        let scope = Scope {
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
}
