//! The demo district: a deterministic, realistic set of schools and people,
//! written out as per-school feeds and imported through the normal import.
//! A few people then leave their school, so limbo has residents too.

mod authorities;
pub mod district;
mod names;

use super::import::ImportRequest;
use super::jobs::{Progress, ProgressEvent};
use super::{Engine, EngineError, EngineResult, io_error};
use crate::model::UserState;
use crate::store::UserQuery;
use district::{DistrictSpec, FeedFile, generate, write_feeds};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashSet};
use std::path::Path;
use std::time::Instant;

/// What `rollcall demo` built (or found).
#[derive(Clone, Debug, Serialize)]
pub struct DemoSummary {
    pub data_dir: String,
    pub feeds_dir: String,
    pub reused: bool,
    pub schools: u64,
    pub users: u64,
    pub active: u64,
    pub limbo: u64,
    pub multi_school: u64,
    pub imports: usize,
    pub seconds: f64,
    pub first_school: String,
}

/// The marker that says which spec built the data dir's district.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Marker {
    schools: usize,
    users_per_school: usize,
    seed: u64,
}

/// One in this many people of the first schools leaves before the demo
/// ends, to populate limbo.
const LEAVER_EVERY: usize = 40;
const LEAVER_SCHOOLS: usize = 3;

/// Imports feeds as one batch, role by role (see `import::batch`).
fn import_all(
    engine: &mut Engine,
    feeds: &[FeedFile],
    progress: &mut dyn Progress,
    done: &mut u64,
    total: u64,
) -> EngineResult<()> {
    let mut ordered: Vec<&FeedFile> = feeds.iter().collect();
    ordered.sort_by_key(|f| f.role);
    let reqs: Vec<ImportRequest> = ordered
        .iter()
        .map(|f| ImportRequest {
            school: f.school.clone(),
            roles: vec![f.role],
            file: f.path.clone(),
            ..ImportRequest::default()
        })
        .collect();
    let base = *done;
    let mut counted = Counted {
        inner: progress,
        base,
        total,
    };
    let out = engine.import_batch(&reqs, &mut counted)?;
    for (f, o) in ordered.iter().zip(&out.imports) {
        if let Some(reason) = &o.refused {
            return Err(EngineError::Internal(format!(
                "demo import of {} refused: {reason}",
                f.path.display()
            )));
        }
    }
    *done += reqs.len() as u64;
    Ok(())
}

/// Reports a batch's progress as part of the whole demo.
struct Counted<'a> {
    inner: &'a mut dyn Progress,
    base: u64,
    total: u64,
}

impl Progress for Counted<'_> {
    fn update(&mut self, event: ProgressEvent) {
        self.inner.update(ProgressEvent {
            phase: "importing",
            done: self.base + event.done,
            total: Some(self.total),
        });
    }

    fn cancelled(&self) -> bool {
        self.inner.cancelled()
    }
}

/// Builds the demo district into the engine's data dir, or reports the one
/// already there when it was built from the same spec.
pub fn build(engine: &mut Engine, spec: &DistrictSpec, progress: &mut dyn Progress) -> EngineResult<DemoSummary> {
    if spec.schools == 0 || spec.users_per_school == 0 {
        return Err(EngineError::Usage(
            "--schools and --users-per-school must be at least 1".into(),
        ));
    }
    let paths = engine.settings().paths.clone();
    let marker_path = paths.root().join("demo.json");
    let wanted = Marker {
        schools: spec.schools,
        users_per_school: spec.users_per_school,
        seed: spec.seed,
    };
    let started = Instant::now();
    if let Ok(text) = std::fs::read_to_string(&marker_path) {
        let found: Option<Marker> = serde_json::from_str(&text).ok();
        if found.as_ref() == Some(&wanted) {
            return summarize(engine, &paths.feeds(), true, 0, 0.0);
        }
        return Err(engine.refuse(
            "demo",
            serde_json::json!({"schools": spec.schools, "users_per_school": spec.users_per_school}),
            format!(
                "{} holds a demo district built from another spec ({}); use another --data-dir",
                paths.root().display(),
                text.trim()
            ),
        ));
    }
    engine.check_writable("demo")?;
    if engine.directory().count_users(&UserQuery::default())? > 0 {
        return Err(engine.refuse(
            "demo",
            serde_json::json!({"schools": spec.schools, "users_per_school": spec.users_per_school}),
            format!(
                "{} already holds a directory with users; build the demo in an empty --data-dir",
                paths.root().display()
            ),
        ));
    }

    let district = generate(spec);
    let staging = paths.feeds().join(".initial");
    let initial = write_feeds(&district, &staging, &HashSet::new()).map_err(io_error(&staging))?;
    let leavers: HashSet<String> = district
        .people
        .iter()
        .filter(|p| p.appearances.len() == 1 && p.appearances[0].school < LEAVER_SCHOOLS)
        .enumerate()
        .filter(|(i, _)| i % LEAVER_EVERY == LEAVER_EVERY / 2)
        .map(|(_, p)| p.record_uid.clone())
        .collect();
    let affected: BTreeSet<usize> = district
        .people
        .iter()
        .filter(|p| leavers.contains(&p.record_uid))
        .flat_map(|p| p.appearances.iter().map(|a| a.school))
        .collect();
    let current = write_feeds(&district, &paths.feeds(), &leavers).map_err(io_error(&paths.feeds()))?;
    let affected_names: HashSet<&str> = affected.iter().map(|i| district.schools[*i].name.as_str()).collect();
    let second: Vec<FeedFile> = current
        .into_iter()
        .filter(|f| affected_names.contains(f.school.as_str()))
        .collect();

    for school in &district.schools {
        engine.school_create(&school.name, Some(&school.display_name))?;
    }
    let first_school = district.schools.first().map(|s| s.name.clone()).unwrap_or_default();
    let with_authorities = authorities::configure(engine, &first_school)?;
    drop(district);
    let total = (initial.len() + second.len()) as u64;
    let mut done = 0;
    import_all(engine, &initial, progress, &mut done, total)?;
    import_all(engine, &second, progress, &mut done, total)?;
    std::fs::remove_dir_all(&staging).map_err(io_error(&staging))?;
    if with_authorities {
        authorities::add_emails(engine, &first_school)?;
        authorities::sync(engine)?;
    }

    // Spread the purge dates so "next purges" shows something.
    let limbo = engine.limbo_list()?;
    for (i, u) in limbo.iter().enumerate() {
        if i % 3 != 0 {
            engine.limbo_extend(&u.username, (i % 60) as u32 + 1)?;
        }
    }
    if with_authorities {
        // The changes since the demo's sync wait in the queues.
        engine.distribute(None)?;
    }
    let text = serde_json::to_string(&wanted).unwrap_or_default();
    std::fs::write(&marker_path, text).map_err(io_error(&marker_path))?;
    summarize(
        engine,
        &paths.feeds(),
        false,
        total as usize,
        started.elapsed().as_secs_f64(),
    )
}

fn summarize(engine: &Engine, feeds: &Path, reused: bool, imports: usize, seconds: f64) -> EngineResult<DemoSummary> {
    let dir = engine.directory();
    let schools = dir.schools()?;
    let limbo_school = &engine.config().import.limbo_school;
    let mut multi_school = 0;
    dir.for_each_user(
        &UserQuery {
            state: Some(UserState::Active),
            ..UserQuery::default()
        },
        &mut |u| {
            if u.memberships.len() > 1 {
                multi_school += 1;
            }
            true
        },
    )?;
    Ok(DemoSummary {
        data_dir: engine.settings().paths.root().display().to_string(),
        feeds_dir: feeds.display().to_string(),
        reused,
        schools: schools.iter().filter(|s| &s.name != limbo_school).count() as u64,
        users: dir.count_users(&UserQuery::default())?,
        active: engine.count_by_state(UserState::Active)?,
        limbo: engine.count_by_state(UserState::Limbo)?,
        multi_school,
        imports,
        seconds,
        first_school: schools
            .iter()
            .find(|s| &s.name != limbo_school)
            .map(|s| s.name.clone())
            .unwrap_or_default(),
    })
}
