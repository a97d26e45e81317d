//! The drop folder watcher: inotify events (through `notify`) and a scan
//! every `intake.scan_secs` find the files; a file is taken when it was
//! renamed into place, or once it has not changed (size, mtime, inode) for
//! `intake.settle_secs`. A taken file is claimed (moved to `.processing/`)
//! and queued. The queue is imported in batches (`Engine::import_batch`:
//! the next feed is planned while the current one is written), one batch at
//! a time, each school's files in the order they were taken; a file whose
//! batch failed is imported again alone.
//!
//! Never taken: temp names (`.*`, `*.part`, `*.tmp`), anything that is not
//! a regular file (a symlink could point anywhere), `failed/`. A settled
//! file whose name does not match `intake.pattern` goes to `failed/`.

use super::claim::{Claim, Done};
use super::failed::{self, Failure};
use super::pattern::{Pattern, is_temp_name};
use super::{Busy, EnginePool, InboxPaths, feed_of};
use crate::engine::jobs::CancelToken;
use crate::engine::runs::Origin;
use crate::engine::{EngineError, EngineResult, Settings};
use notify::Watcher;
use notify::event::{EventKind, ModifyKind, RenameMode};
use std::collections::{HashMap, HashSet, VecDeque};
use std::fs::{self, File, Metadata};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

/// Files walked per scan at most (a runaway folder cannot stall the daemon).
const MAX_FILES: usize = 100_000;

/// A queued claim.
struct Pending {
    claim: Claim,
    not_before: Instant,
    tries: u32,
}

/// Claims one batch imports at most: it bounds how long a file of another
/// school waits behind a batch, and what a failed batch leaves to import
/// again one by one.
const MAX_BATCH: usize = 50;

/// The claims waiting for a worker, in the order they were taken.
#[derive(Default)]
struct Queue {
    waiting: Mutex<VecDeque<Pending>>,
    /// Held by the worker importing: imports from the inbox run one batch at
    /// a time. Two imports side by side overtake each other's plans in a
    /// district where people are in several schools; one batch plans its
    /// next feed while it writes the current one instead.
    turn: Mutex<()>,
}

impl Queue {
    fn lock(&self) -> MutexGuard<'_, VecDeque<Pending>> {
        self.waiting.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn push(&self, p: Pending) {
        let mut q = self.lock();
        // Back in its place (a claim tried again keeps its turn).
        let at = q.iter().position(|o| o.claim.id > p.claim.id).unwrap_or(q.len());
        q.insert(at, p);
    }

    /// The claims to import next, in the order they were taken (their
    /// schools marked busy now): the oldest claim of each free school, at
    /// most `max` in all. A school's later claims wait for its earlier one:
    /// its files are imported one at a time, in arrival order. A claim tried
    /// before is imported alone, so that its own error reaches `failed/`.
    fn next(&self, busy: &Busy, max: usize) -> Vec<Pending> {
        let mut q = self.lock();
        let now = Instant::now();
        let mut seen = HashSet::new();
        let mut picked = Vec::new();
        for (i, p) in q.iter().enumerate() {
            if picked.len() >= max {
                break;
            }
            let school = p.claim.school.to_lowercase();
            if !seen.insert(school.clone()) || p.not_before > now {
                continue;
            }
            if p.tries > 0 {
                if picked.is_empty() && busy.try_take(&school) {
                    picked.push(i);
                    break;
                }
            } else if busy.try_take(&school) {
                picked.push(i);
            }
        }
        // Highest index first, so the lower ones stay where they are.
        let mut out: Vec<Pending> = picked.iter().rev().filter_map(|&i| q.remove(i)).collect();
        out.reverse();
        out
    }
}

/// Starts the watcher and the workers.
pub(super) fn start(
    settings: &Settings,
    pool: Arc<EnginePool>,
    busy: Arc<Busy>,
    stop: CancelToken,
) -> EngineResult<Vec<JoinHandle<()>>> {
    let paths = InboxPaths::of(settings);
    let cfg = &settings.config.intake;
    let pattern = Pattern::parse(&cfg.pattern).map_err(|e| EngineError::BadInput(format!("intake.pattern: {e}")))?;
    for dir in [paths.root.clone(), paths.processing(), paths.failed()] {
        crate::engine::paths::create_private_dir(&dir).map_err(super::io_err(&dir))?;
    }
    // One watcher per inbox: a second daemon would take claims in progress.
    let lock_path = paths.processing().join(".lock");
    let lock = File::create(&lock_path).map_err(super::io_err(&lock_path))?;
    if lock.try_lock().is_err() {
        return Err(EngineError::BadInput(format!(
            "another rollcall process watches the inbox {} (its lock {} is held); run one daemon per inbox",
            paths.root.display(),
            lock_path.display()
        )));
    }
    let queue = Arc::new(Queue::default());
    let mut threads = Vec::new();
    for n in 0..cfg.workers {
        let (pool, busy, stop, queue, paths) = (pool.clone(), busy.clone(), stop.clone(), queue.clone(), paths.clone());
        threads.push(
            std::thread::Builder::new()
                .name(format!("intake-{n}"))
                .spawn(move || work(&pool, &busy, &queue, &paths, &stop))
                .map_err(|e| EngineError::Internal(format!("cannot start an intake worker: {e}")))?,
        );
    }
    // Watching starts now, before the daemon says it runs: a file renamed
    // in from then on is seen at once.
    let (tx, events) = mpsc::channel();
    let notifier = notify::recommended_watcher(move |ev| {
        let _ = tx.send(ev);
    })
    .and_then(|mut w| w.watch(&paths.root, notify::RecursiveMode::Recursive).map(|()| w));
    let notifier = match notifier {
        Ok(w) => Some(w),
        Err(e) => {
            tracing::warn!(error = %e, inbox = %paths.root.display(), "no change events for the inbox; scanning it every intake.scan_secs");
            None
        }
    };
    let watcher = Watch {
        settings: settings.clone(),
        paths,
        depth: pattern.depth(),
        settle: Duration::from_secs_f64(cfg.settle_secs),
        scan: Duration::from_secs_f64(cfg.scan_secs),
        seen: HashMap::new(),
        renamed: HashSet::new(),
    };
    threads.push(
        std::thread::Builder::new()
            .name("intake-watch".into())
            .spawn(move || {
                let (_lock, _notifier) = (lock, notifier);
                watcher.run(&events, &pool, &busy, &queue, &stop);
            })
            .map_err(|e| EngineError::Internal(format!("cannot start the intake watcher: {e}")))?,
    );
    Ok(threads)
}

/// A worker: imports claims until stopped, a batch at a time.
fn work(pool: &EnginePool, busy: &Busy, queue: &Queue, paths: &InboxPaths, stop: &CancelToken) {
    while !stop.is_cancelled() {
        let turn = queue.turn.lock().unwrap_or_else(|e| e.into_inner());
        let batch = queue.next(busy, MAX_BATCH);
        if batch.is_empty() {
            drop(turn);
            busy.wait(Duration::from_millis(250));
            continue;
        }
        let claims: Vec<Claim> = batch.iter().map(|p| p.claim.clone()).collect();
        let done = pool.with(Origin::Inbox, |engine| match claims.as_slice() {
            [one] => vec![one.import(engine, paths, stop)],
            all => Claim::import_all(all, engine, paths, stop),
        });
        drop(turn);
        let done = done.unwrap_or_else(|e| {
            let reason = e.to_string();
            claims
                .iter()
                .map(|_| Done::Later {
                    reason: reason.clone(),
                    soon: false,
                })
                .collect()
        });
        for (p, done) in batch.into_iter().zip(done) {
            settled(queue, p, done, stop);
        }
        let schools: HashSet<String> = claims.iter().map(|c| c.school.to_lowercase()).collect();
        for school in schools {
            busy.release(&school);
        }
    }
}

/// Logs what became of a claim, and queues it again when it is not done.
fn settled(queue: &Queue, mut p: Pending, done: Done, stop: &CancelToken) {
    match done {
        Done::Imported { run_id } => {
            tracing::info!(file = %p.claim.rel, school = %p.claim.school, run = %run_id, "intake: imported");
        }
        Done::Failed { .. } => {}
        Done::Later { reason, soon } if !stop.is_cancelled() => {
            p.tries += 1;
            let pause = if soon && p.tries <= 5 {
                Duration::ZERO
            } else {
                Duration::from_secs(5u64 << p.tries.min(6)).min(Duration::from_secs(300))
            };
            tracing::warn!(file = %p.claim.rel, error = %reason, ?pause, "intake: import not done; trying again later");
            p.not_before = Instant::now() + pause;
            queue.push(p);
        }
        Done::Later { .. } => {
            tracing::info!(file = %p.claim.rel, "intake: stopping; the file is imported at the next start");
        }
    }
}

/// What the watcher last saw of a file.
struct Seen {
    len: u64,
    mtime: SystemTime,
    ino: u64,
    since: Instant,
}

struct Watch {
    settings: Settings,
    paths: InboxPaths,
    depth: usize,
    settle: Duration,
    scan: Duration,
    seen: HashMap<PathBuf, Seen>,
    /// Files renamed into place since they were last looked at.
    renamed: HashSet<PathBuf>,
}

impl Watch {
    fn run(
        mut self,
        rx: &mpsc::Receiver<notify::Result<notify::Event>>,
        pool: &EnginePool,
        busy: &Busy,
        queue: &Queue,
        stop: &CancelToken,
    ) {
        self.recover(pool, busy, queue);
        let mut next_scan = Instant::now();
        while !stop.is_cancelled() {
            let wait = next_scan
                .saturating_duration_since(Instant::now())
                .min(Duration::from_millis(200));
            let mut scan_now = Instant::now() >= next_scan;
            match rx.recv_timeout(wait) {
                Ok(ev) => {
                    scan_now |= self.note(ev);
                    while let Ok(ev) = rx.try_recv() {
                        scan_now |= self.note(ev);
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => std::thread::sleep(wait),
            }
            if scan_now {
                if self.scan(queue) > 0 {
                    busy.notify();
                }
                next_scan = Instant::now() + self.scan;
            }
        }
    }

    /// Notes an event; `true` when it calls for a scan now (a file renamed
    /// into place).
    fn note(&mut self, ev: notify::Result<notify::Event>) -> bool {
        let Ok(ev) = ev else { return false };
        let to = match ev.kind {
            EventKind::Modify(ModifyKind::Name(RenameMode::To)) => ev.paths.first(),
            EventKind::Modify(ModifyKind::Name(RenameMode::Both)) => ev.paths.get(1),
            _ => None,
        };
        match to.and_then(|p| p.strip_prefix(&self.paths.root).ok()) {
            Some(rel) => {
                self.renamed.insert(rel.to_path_buf());
                true
            }
            None => false,
        }
    }

    /// Claims left by a previous daemon: finished from their runs, or
    /// queued first, in their order.
    fn recover(&mut self, pool: &EnginePool, busy: &Busy, queue: &Queue) {
        let claims = match Claim::found(&self.paths) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "cannot look for files the last daemon was importing");
                return;
            }
        };
        for claim in claims {
            let settled = pool.with(Origin::Inbox, |engine| claim.settled_before(engine, &self.paths));
            match settled {
                Ok(Some(done)) => {
                    tracing::info!(file = %claim.rel, ?done, "intake: settled by a run before the restart")
                }
                _ => {
                    tracing::info!(file = %claim.rel, "intake: importing again a file the last daemon did not finish");
                    queue.push(Pending {
                        claim,
                        not_before: Instant::now(),
                        tries: 0,
                    });
                }
            }
        }
        busy.notify();
    }

    /// Looks at every file; claims and queues the complete ones. Returns
    /// how many it took.
    fn scan(&mut self, queue: &Queue) -> usize {
        let now = Instant::now();
        let files = walk(&self.paths.root, self.depth);
        let present: HashSet<&PathBuf> = files.iter().map(|(rel, _)| rel).collect();
        self.seen.retain(|rel, _| present.contains(rel));
        self.renamed.retain(|rel| present.contains(rel));
        let mut ready = Vec::new();
        for (rel, meta) in &files {
            let (len, mtime, ino) = (
                meta.len(),
                meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
                meta.ino(),
            );
            let renamed = self.renamed.remove(rel);
            let seen = self.seen.entry(rel.clone()).or_insert(Seen {
                len,
                mtime,
                ino,
                since: now,
            });
            if (seen.len, seen.mtime, seen.ino) != (len, mtime, ino) {
                *seen = Seen {
                    len,
                    mtime,
                    ino,
                    since: now,
                };
                if !renamed {
                    continue;
                }
            }
            if renamed || now.duration_since(seen.since) >= self.settle {
                ready.push((mtime, rel.clone()));
            }
        }
        ready.sort();
        let mut taken = 0;
        for (_, rel) in ready {
            self.seen.remove(&rel);
            match feed_of(&self.settings.config, &rel) {
                Some(feed) => match Claim::take(&self.paths, &rel, &feed) {
                    Ok(Some(claim)) => {
                        tracing::info!(file = %rel.display(), school = %feed.school, claim = %claim.id, "intake: taken");
                        queue.push(Pending {
                            claim,
                            not_before: Instant::now(),
                            tries: 0,
                        });
                        taken += 1;
                    }
                    Ok(None) => {}
                    Err(e) => tracing::error!(file = %rel.display(), error = %e, "intake: cannot take the file"),
                },
                None => self.unmatched(&rel),
            }
        }
        taken
    }

    /// A complete file whose name is no feed: to `failed/`, with the reason.
    fn unmatched(&self, rel: &Path) {
        let failure = Failure {
            file: rel.display().to_string(),
            school: None,
            roles: Vec::new(),
            run_id: None,
            at: chrono::Utc::now(),
            reason: format!(
                "the name does not match intake.pattern '{}' (a school name, a role or an import.roles value, and a feed format csv, tsv, json, jsonl or xml); rename it and drop it again",
                self.settings.config.intake.pattern
            ),
        };
        match failed::put(&self.paths, &self.paths.root.join(rel), &failure) {
            Ok(_) => tracing::warn!(file = %rel.display(), "intake: not a feed name; moved to failed/"),
            Err(e) => tracing::error!(file = %rel.display(), error = %e, "intake: cannot move a file to failed/"),
        }
    }
}

/// The candidate files under `root`, at most `depth` folders deep: regular
/// files only, no temp names, not `failed/` nor hidden folders.
pub(super) fn walk(root: &Path, depth: usize) -> Vec<(PathBuf, Metadata)> {
    let mut out = Vec::new();
    let mut stack = vec![(PathBuf::new(), 1usize)];
    while let Some((rel, level)) = stack.pop() {
        let Ok(entries) = fs::read_dir(root.join(&rel)) else {
            continue;
        };
        for e in entries.filter_map(|e| e.ok()) {
            if out.len() >= MAX_FILES {
                return out;
            }
            let name = e.file_name();
            let Some(name) = name.to_str() else { continue };
            if is_temp_name(name) || (level == 1 && name == "failed") {
                continue;
            }
            let Ok(meta) = e.path().symlink_metadata() else {
                continue;
            };
            let child = rel.join(name);
            if meta.is_dir() {
                if level < depth {
                    stack.push((child, level + 1));
                }
            } else if meta.is_file() {
                out.push((child, meta));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending(school: &str, n: u32, tries: u32) -> Pending {
        Pending {
            claim: Claim {
                id: format!("{n:04}"),
                rel: format!("{school}/student.csv"),
                school: school.into(),
                roles: Vec::new(),
                format: None,
                claimed_at: chrono::Utc::now(),
                dir: PathBuf::new(),
            },
            not_before: Instant::now(),
            tries,
        }
    }

    fn ids(batch: &[Pending]) -> Vec<&str> {
        batch.iter().map(|p| p.claim.id.as_str()).collect()
    }

    #[test]
    fn a_batch_holds_each_free_schools_oldest_claim_and_a_tried_claim_goes_alone() {
        let (queue, busy) = (Queue::default(), Busy::default());
        for p in [
            pending("a", 1, 0),
            pending("A", 2, 0),
            pending("b", 3, 0),
            pending("c", 4, 1),
            pending("d", 5, 0),
            pending("e", 6, 0),
        ] {
            queue.push(p);
        }
        assert!(busy.try_take("e"), "e imports elsewhere (an upload)");
        let first = queue.next(&busy, 50);
        assert_eq!(
            ids(&first),
            ["0001", "0003", "0005"],
            "a's second file waits, c goes alone"
        );
        assert!(busy.is_busy("a") && busy.is_busy("b") && busy.is_busy("d"));
        for s in ["a", "b", "d", "e"] {
            busy.release(s);
        }
        assert_eq!(
            ids(&queue.next(&busy, 50)),
            ["0002", "0006"],
            "c still waits to go alone"
        );
        for s in ["a", "e"] {
            busy.release(s);
        }
        assert_eq!(ids(&queue.next(&busy, 50)), ["0004"]);
        busy.release("c");
        assert!(queue.next(&busy, 50).is_empty());
        for n in 0..5 {
            queue.push(pending(&format!("s{n}"), 10 + n, 0));
        }
        assert_eq!(queue.next(&busy, 2).len(), 2, "at most max");
    }
}
