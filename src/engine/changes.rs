//! Cheap change detection for live views: a stamp per kind of data that
//! changes whenever that data does, whoever changed it (this process, the
//! CLI, the daemon, another console). Asking costs a few `stat`s and one
//! journal read — never a reload — so a front end can ask every second and
//! reload only what moved.
//!
//! * `directory`: the journal head (every directory write is journaled);
//! * `queues`: the folders of every authority's queue (an item written,
//!   claimed, retried, trashed or removed renames a file in one of them);
//! * `runs`: the runs folder, its in-progress markers and the records of the
//!   runs in progress;
//! * `state`: `state.sqlite` (pauses, cursors, schools to sync).

use super::{Engine, EngineResult};
use serde::Serialize;
use std::hash::{Hash, Hasher};
use std::path::Path;

/// One stamp per kind of data; equal stamps mean nothing changed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ChangeStamps {
    pub directory: u64,
    pub queues: u64,
    pub runs: u64,
    pub state: u64,
}

/// Feeds a path's modification time and size into the hash (nothing when
/// it does not exist).
fn stat(h: &mut impl Hasher, path: &Path) {
    if let Ok(m) = std::fs::metadata(path) {
        m.modified().ok().hash(h);
        m.len().hash(h);
    } else {
        0u8.hash(h);
    }
}

impl Engine {
    /// The current stamps (see the module docs).
    pub fn change_stamps(&self) -> EngineResult<ChangeStamps> {
        let paths = &self.settings.paths;
        let mut queues = rustc_hash::FxHasher::default();
        let out = paths.queues().join("out");
        for name in self.config().authorities.keys() {
            let root = out.join(name);
            name.hash(&mut queues);
            for dir in ["", "retry", "claimed", "trash"] {
                stat(&mut queues, &root.join(dir));
            }
        }
        let mut runs = rustc_hash::FxHasher::default();
        let runs_dir = paths.runs();
        stat(&mut runs, &runs_dir);
        let active = runs_dir.join(".active");
        stat(&mut runs, &active);
        if let Ok(entries) = std::fs::read_dir(&active) {
            for e in entries.flatten().take(64) {
                e.file_name().hash(&mut runs);
                stat(&mut runs, &runs_dir.join(e.file_name()).join("run.json"));
            }
        }
        let mut state = rustc_hash::FxHasher::default();
        let db = paths.state_db();
        stat(&mut state, &db);
        stat(&mut state, &db.with_extension("sqlite-wal"));
        Ok(ChangeStamps {
            directory: self.dir.journal_head()?,
            queues: queues.finish(),
            runs: runs.finish(),
            state: state.finish(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Settings;
    use crate::engine::config::LoadOptions;

    #[test]
    fn stamps_move_when_runs_and_queues_do() {
        let dir = tempfile::tempdir().unwrap();
        let settings = Settings::load(&LoadOptions::default(), Some(dir.path().to_path_buf()), false).unwrap();
        let engine = Engine::open(settings).unwrap();
        let a = engine.change_stamps().unwrap();
        assert_eq!(a, engine.change_stamps().unwrap(), "nothing changed");
        std::thread::sleep(std::time::Duration::from_millis(20));
        let run = engine
            .runs()
            .start(
                crate::engine::runs::RunKind::Purge,
                &crate::engine::audit::Actor::current(),
                serde_json::json!({}),
                None,
                true,
            )
            .unwrap();
        let b = engine.change_stamps().unwrap();
        assert_ne!(a.runs, b.runs);
        assert_eq!(a.directory, b.directory);
        std::thread::sleep(std::time::Duration::from_millis(20));
        run.finish(crate::engine::runs::RunStatus::Ok, None).unwrap();
        assert_ne!(b.runs, engine.change_stamps().unwrap().runs, "a run that finished");
    }
}
