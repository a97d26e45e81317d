//! A file taken from the inbox: moved (one rename, so it is never taken
//! twice) to `.processing/<claim-id>/<its inbox path>` beside a
//! `claim.json`, imported, then removed — its run archived it — or moved
//! to `failed/` with its reason. A claim left behind by a stopped or killed
//! daemon is finished at the next start from its runs: imported (a run of
//! it ended ok) → removed; refused → failed/; otherwise imported again (an
//! interrupted import wrote nothing the new run does not find unchanged).

use super::{FeedName, InboxPaths, StopWhen, failed};
use crate::engine::feed::Format;
use crate::engine::import::{ImportOutcome, ImportRequest};
use crate::engine::jobs::CancelToken;
use crate::engine::runs::{RunKind, RunRecord, RunStatus, Runs};
use crate::engine::{Engine, EngineError};
use crate::model::Role;
use crate::store::StoreError;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// A file taken from the inbox.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Claim {
    pub id: String,
    /// Its path relative to the inbox, `/`-separated.
    pub rel: String,
    pub school: String,
    pub roles: Vec<Role>,
    pub format: Option<Format>,
    pub claimed_at: DateTime<Utc>,
    #[serde(skip)]
    pub dir: PathBuf,
}

/// What became of a claim.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Done {
    Imported {
        run_id: String,
    },
    /// Moved to `failed/`.
    Failed {
        run_id: Option<String>,
        reason: String,
    },
    /// Left for later: the daemon is stopping, or the store could not be
    /// reached (tried again after a pause), or — `soon` — a user it
    /// planned changed meanwhile (an import of another school): planned
    /// again at once.
    Later {
        reason: String,
        soon: bool,
    },
}

/// Claim ids sort in the order files were taken.
fn new_id(now: DateTime<Utc>) -> String {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let seq = SEQ.fetch_add(1, Ordering::Relaxed);
    format!(
        "{}-{:06}-{:04x}",
        now.format("%Y%m%d-%H%M%S-%6f"),
        seq % 1_000_000,
        rand::random::<u16>()
    )
}

impl Claim {
    /// The claimed file.
    pub fn file(&self) -> PathBuf {
        self.dir.join(&self.rel)
    }

    /// Takes `rel` out of the inbox. `Ok(None)`: it is gone (someone else
    /// took or removed it).
    pub fn take(paths: &InboxPaths, rel: &Path, feed: &FeedName) -> io::Result<Option<Claim>> {
        let now = Utc::now();
        let id = new_id(now);
        let dir = paths.processing().join(&id);
        let rel_text = rel.to_string_lossy().replace('\\', "/");
        let claim = Claim {
            id,
            rel: rel_text,
            school: feed.school.clone(),
            roles: feed.roles.clone(),
            format: feed.format,
            claimed_at: now,
            dir,
        };
        let dest = claim.file();
        if let Some(parent) = dest.parent() {
            crate::engine::paths::create_private_dir(parent)?;
        }
        let text = serde_json::to_vec_pretty(&claim).map_err(io::Error::other)?;
        fs::write(claim.dir.join("claim.json"), text)?;
        match fs::rename(paths.root.join(rel), &dest) {
            Ok(()) => Ok(Some(claim)),
            Err(e) => {
                let _ = fs::remove_dir_all(&claim.dir);
                if e.kind() == io::ErrorKind::NotFound {
                    Ok(None)
                } else {
                    Err(e)
                }
            }
        }
    }

    /// The claims found in `.processing/`, oldest first (a claim dir
    /// without its file — killed while taking it — is removed).
    pub fn found(paths: &InboxPaths) -> io::Result<Vec<Claim>> {
        let dir = paths.processing();
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut out = Vec::new();
        for e in entries.filter_map(|e| e.ok()) {
            let path = e.path();
            if !path.is_dir() {
                continue;
            }
            let claim = fs::read(path.join("claim.json"))
                .ok()
                .and_then(|t| serde_json::from_slice::<Claim>(&t).ok());
            match claim {
                Some(mut c) if is_safe_rel(&c.rel) => {
                    c.dir = path;
                    if c.file().is_file() {
                        out.push(c);
                    } else {
                        tracing::warn!(claim = %c.id, "a claim without its file (taken when the daemon stopped); removed");
                        let _ = fs::remove_dir_all(&c.dir);
                    }
                }
                _ => {
                    // Killed between creating the dir and writing claim.json:
                    // the file was not moved yet.
                    let stale = fs::read_dir(&path).map(|mut d| d.next().is_none()).unwrap_or(false);
                    if stale {
                        let _ = fs::remove_dir(&path);
                    } else {
                        tracing::warn!(dir = %path.display(), "an unreadable claim left in place");
                    }
                }
            }
        }
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }

    /// The claims in `.processing/` as they are, touching nothing.
    pub fn found_quietly(paths: &InboxPaths) -> Vec<Claim> {
        let mut out: Vec<Claim> = fs::read_dir(paths.processing())
            .map(|entries| {
                entries
                    .filter_map(|e| e.ok())
                    .filter_map(|e| {
                        let t = fs::read(e.path().join("claim.json")).ok()?;
                        let mut c: Claim = serde_json::from_slice(&t).ok()?;
                        c.dir = e.path();
                        Some(c)
                    })
                    .collect()
            })
            .unwrap_or_default();
        out.sort_by(|a, b| a.id.cmp(&b.id));
        out
    }

    /// The import runs of this claim's file, newest first.
    fn runs(&self, runs: &Runs) -> Vec<RunRecord> {
        let file = self.file().display().to_string();
        runs.list_since(self.claimed_at - chrono::Duration::seconds(1), &|r| {
            r.kind == RunKind::Import && r.args.get("file").and_then(|f| f.as_str()) == Some(file.as_str())
        })
        .unwrap_or_default()
    }

    /// After a restart: `Some` when runs of this file already settled it
    /// (the claim is then finished), `None` when it must be imported.
    pub fn settled_before(&self, engine: &Engine, paths: &InboxPaths) -> Option<Done> {
        let runs = self.runs(engine.runs());
        if let Some(ok) = runs.iter().find(|r| r.status == RunStatus::Ok && !r.dry_run) {
            self.remove();
            return Some(Done::Imported { run_id: ok.id.clone() });
        }
        let refused = runs.first().filter(|r| r.status == RunStatus::Refused)?;
        let reason = format!("refused: {}", refused.message.clone().unwrap_or_default());
        Some(self.fail(engine, paths, Some(refused.id.clone()), reason))
    }

    fn request(&self) -> ImportRequest {
        ImportRequest {
            school: self.school.clone(),
            roles: self.roles.clone(),
            file: self.file(),
            format: self.format,
            ..Default::default()
        }
    }

    /// Settles the claim after its import ended.
    fn settle(&self, engine: &Engine, paths: &InboxPaths, outcome: ImportOutcome) -> Done {
        match outcome.refused {
            None => {
                self.remove();
                Done::Imported { run_id: outcome.run_id }
            }
            Some(r) => self.fail(engine, paths, Some(outcome.run_id), format!("refused: {r}")),
        }
    }

    /// Imports several claimed files in one batch (the next feed is planned
    /// while the current one is written), in order, and settles each. When
    /// the batch fails, the claims its runs settled are settled; the others
    /// are left for later, to be imported alone (`soon`: the batch cannot
    /// say which feed made it fail).
    pub fn import_all(claims: &[Claim], engine: &mut Engine, paths: &InboxPaths, stop: &CancelToken) -> Vec<Done> {
        let reqs: Vec<ImportRequest> = claims.iter().map(Claim::request).collect();
        match engine.import_batch(&reqs, &mut StopWhen(stop.clone())) {
            Ok(out) if out.imports.len() == claims.len() => claims
                .iter()
                .zip(out.imports)
                .map(|(c, o)| c.settle(engine, paths, o))
                .collect(),
            Ok(out) => {
                let reason = format!("a batch of {} feeds ended after {}", claims.len(), out.imports.len());
                Self::settle_after_batch(claims, engine, paths, &reason, true)
            }
            Err(e) => {
                let soon = !matches!(e, EngineError::Cancelled(_));
                Self::settle_after_batch(claims, engine, paths, &e.to_string(), soon)
            }
        }
    }

    fn settle_after_batch(
        claims: &[Claim],
        engine: &Engine,
        paths: &InboxPaths,
        reason: &str,
        soon: bool,
    ) -> Vec<Done> {
        claims
            .iter()
            .map(|c| {
                c.settled_before(engine, paths).unwrap_or_else(|| Done::Later {
                    reason: format!("not imported in its batch: {reason}"),
                    soon,
                })
            })
            .collect()
    }

    /// Imports the claimed file and settles the claim.
    pub fn import(&self, engine: &mut Engine, paths: &InboxPaths, stop: &CancelToken) -> Done {
        match engine.import(&self.request(), &mut StopWhen(stop.clone())) {
            Ok(o) => self.settle(engine, paths, o),
            Err(EngineError::Cancelled(m)) => Done::Later { reason: m, soon: false },
            Err(e) if is_transient(&e) => Done::Later {
                soon: matches!(e, EngineError::Store(StoreError::Conflict { .. })),
                reason: e.to_string(),
            },
            Err(e) => {
                let run_id = self.runs(engine.runs()).first().map(|r| r.id.clone());
                self.fail(engine, paths, run_id, e.to_string())
            }
        }
    }

    fn fail(&self, engine: &Engine, paths: &InboxPaths, run_id: Option<String>, reason: String) -> Done {
        let failure = failed::Failure {
            file: self.rel.clone(),
            school: Some(self.school.clone()),
            roles: self.roles.clone(),
            run_id: run_id.clone(),
            at: Utc::now(),
            reason: reason.clone(),
        };
        match failed::put(paths, &self.file(), &failure) {
            Ok(to) => {
                tracing::warn!(file = %self.rel, run = ?run_id, failed = %to.display(), "intake: {reason}");
                engine.audit().record(
                    "intake failed",
                    serde_json::json!({"file": self.rel, "school": self.school, "run": run_id}),
                    &reason,
                );
                self.remove();
                Done::Failed { run_id, reason }
            }
            Err(e) => {
                tracing::error!(file = %self.rel, error = %e, "cannot move a failed feed to failed/; it stays claimed");
                Done::Later {
                    reason: format!("{reason} (and moving it to failed/ failed: {e})"),
                    soon: false,
                }
            }
        }
    }

    fn remove(&self) {
        if let Err(e) = fs::remove_dir_all(&self.dir) {
            tracing::warn!(claim = %self.id, error = %e, "cannot remove a finished claim");
        }
    }
}

/// Errors of the machinery, not of the feed: the file is imported again
/// later instead of failing.
fn is_transient(e: &EngineError) -> bool {
    matches!(
        e,
        EngineError::Store(_) | EngineError::State(_) | EngineError::Io { .. } | EngineError::Run(_)
    )
}

/// A claim's relative path stays inside its claim dir.
pub(crate) fn is_safe_rel(rel: &str) -> bool {
    !rel.is_empty()
        && Path::new(rel)
            .components()
            .all(|c| matches!(c, std::path::Component::Normal(_)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Settings;
    use crate::engine::config::LoadOptions;
    use crate::engine::jobs::Quiet;

    fn engine(dir: &Path) -> Engine {
        let opts = LoadOptions {
            sets: vec!["import.password_scheme=ssha256".into()],
            ..LoadOptions::default()
        };
        Engine::open(Settings::load(&opts, Some(dir.to_path_buf()), false).unwrap()).unwrap()
    }

    fn claim(engine: &Engine, paths: &InboxPaths) -> Claim {
        let rel = Path::new("gsmitte/student.csv");
        fs::create_dir_all(paths.root.join("gsmitte")).unwrap();
        fs::write(
            paths.root.join(rel),
            "record_uid,firstname,lastname\ns1,Anna,Alt\ns2,Bert,Berg\n",
        )
        .unwrap();
        let feed = super::super::feed_of(engine.config(), rel).expect("a feed name");
        Claim::take(paths, rel, &feed).unwrap().expect("taken")
    }

    #[test]
    fn a_claim_whose_import_ended_ok_before_a_restart_is_not_imported_again() {
        let tmp = tempfile::tempdir().unwrap();
        let mut engine = engine(tmp.path());
        let paths = InboxPaths::of(engine.settings());
        let c = claim(&engine, &paths);
        assert!(
            !paths.root.join("gsmitte/student.csv").exists(),
            "taken out of the inbox"
        );
        // The import committed; the process died before removing the claim.
        let req = ImportRequest {
            school: c.school.clone(),
            roles: c.roles.clone(),
            file: c.file(),
            ..Default::default()
        };
        let run = engine.import(&req, &mut Quiet).unwrap().run_id;
        let found = Claim::found(&paths).unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(
            found[0].settled_before(&engine, &paths),
            Some(Done::Imported { run_id: run })
        );
        assert!(Claim::found(&paths).unwrap().is_empty());
        let runs = engine.runs().list(&|r| r.kind == RunKind::Import, 10).unwrap();
        assert_eq!(runs.len(), 1, "not imported a second time");
    }

    #[test]
    fn a_claim_without_a_finished_run_is_imported_and_leaves() {
        let tmp = tempfile::tempdir().unwrap();
        let mut engine = engine(tmp.path());
        let paths = InboxPaths::of(engine.settings());
        let c = claim(&engine, &paths);
        let found = Claim::found(&paths).unwrap();
        assert_eq!(found[0].settled_before(&engine, &paths), None);
        let done = found[0].import(&mut engine, &paths, &CancelToken::default());
        let Done::Imported { run_id } = done else {
            panic!("{done:?}")
        };
        let rec = engine.runs().show(&run_id).unwrap();
        assert_eq!(rec.args["file"], c.file().display().to_string());
        assert!(Claim::found(&paths).unwrap().is_empty());
        assert!(!c.dir.exists());
    }
}
