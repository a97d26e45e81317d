//! Jobs of the async facade: long work (imports, purges, "drain now"
//! syncs; later verify) on its own blocking thread and its own engine connection, so the
//! shared engine stays free for the reads a front end makes meanwhile.
//! Progress is throttled to one event per [`PROGRESS_EVERY`] (plus the last),
//! and a [`CancelToken`] per job stops it at its next check.

use super::{EngineEvent, Shared};
use crate::engine::import::{ImportOutcome, ImportRequest};
use crate::engine::jobs::{CancelToken, Progress, ProgressEvent};
use crate::engine::limbo::PurgeOutcome;
use crate::engine::sync::verify::{VerifyReport, VerifyRequest};
use crate::engine::sync::{SyncOptions, SyncOutcome};
use crate::engine::{Engine, EngineError};
use chrono::{DateTime, NaiveDate, Utc};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc::UnboundedSender;

pub type JobId = u64;

/// At most one progress event per job in this interval.
pub const PROGRESS_EVERY: Duration = Duration::from_millis(25);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobKind {
    Import,
    Purge,
    /// "Drain now": one `sync run --once` for one authority.
    Sync,
    /// One verify (optionally fixing) of one authority.
    Verify,
}

impl JobKind {
    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::Import => "import",
            JobKind::Purge => "purge",
            JobKind::Sync => "sync",
            JobKind::Verify => "verify",
        }
    }
}

#[derive(Clone, Debug)]
pub struct JobInfo {
    pub id: JobId,
    pub kind: JobKind,
    /// What it works on, e.g. `import gs-nord student (dry run)`.
    pub label: String,
    pub dry_run: bool,
    pub started_at: DateTime<Utc>,
}

/// How a job ended.
#[derive(Clone, Debug)]
pub enum JobEnd {
    Done(JobOutcome),
    /// Stopped on request; what it did until then (when it got that far).
    Cancelled(Option<JobOutcome>),
    /// The error that stopped it.
    Failed(String),
}

impl JobEnd {
    pub fn outcome(&self) -> Option<&JobOutcome> {
        match self {
            JobEnd::Done(o) | JobEnd::Cancelled(Some(o)) => Some(o),
            _ => None,
        }
    }
}

#[derive(Clone, Debug)]
pub enum JobOutcome {
    Import(Box<ImportOutcome>),
    Purge(PurgeOutcome),
    Sync(Box<SyncOutcome>),
    Verify(Box<VerifyReport>),
}

#[derive(Default)]
pub(super) struct Jobs {
    next: AtomicU64,
    running: Mutex<BTreeMap<JobId, (JobInfo, CancelToken)>>,
}

impl Jobs {
    fn register(&self, kind: JobKind, label: String, dry_run: bool) -> (JobInfo, CancelToken) {
        let info = JobInfo {
            id: self.next.fetch_add(1, Ordering::SeqCst) + 1,
            kind,
            label,
            dry_run,
            started_at: Utc::now(),
        };
        let token = CancelToken::default();
        if let Ok(mut running) = self.running.lock() {
            running.insert(info.id, (info.clone(), token.clone()));
        }
        (info, token)
    }

    fn finish(&self, id: JobId) {
        if let Ok(mut running) = self.running.lock() {
            running.remove(&id);
        }
    }

    pub(super) fn cancel(&self, id: JobId) -> Option<JobInfo> {
        let running = self.running.lock().ok()?;
        let (info, token) = running.get(&id)?;
        token.cancel();
        Some(info.clone())
    }

    pub(super) fn running(&self) -> Vec<JobInfo> {
        self.running
            .lock()
            .map(|r| r.values().map(|(i, _)| i.clone()).collect())
            .unwrap_or_default()
    }
}

/// Forwards a job's progress as events, throttled; reads its cancel token.
/// When the job ends its last figures are sent: an update the throttle
/// held back, and for a job that finished, its last phase complete
/// (done = total) — a phase the work leaves without a closing update
/// (a dry run that plans and writes nothing) is still done.
struct EventProgress {
    id: JobId,
    tx: UnboundedSender<EngineEvent>,
    token: CancelToken,
    last: Option<Instant>,
    held: Option<ProgressEvent>,
    latest: Option<ProgressEvent>,
}

impl EventProgress {
    fn send(&mut self, event: ProgressEvent) {
        self.last = Some(Instant::now());
        self.latest = Some(event.clone());
        let _ = self.tx.send(EngineEvent::JobProgress {
            id: self.id,
            phase: event.phase,
            done: event.done,
            total: event.total,
        });
    }

    /// Sends the update the throttle held back, if any; `finished`: the
    /// last phase is complete.
    fn flush(&mut self, finished: bool) {
        if let Some(e) = self.held.take() {
            self.send(e);
        }
        if finished
            && let Some(mut e) = self.latest.take()
            && let Some(total) = e.total
            && e.done < total
        {
            e.done = total;
            self.send(e);
        }
    }
}

impl Progress for EventProgress {
    fn update(&mut self, event: ProgressEvent) {
        let last_one = event.total.is_some_and(|t| event.done >= t);
        if !last_one && self.last.is_some_and(|t| t.elapsed() < PROGRESS_EVERY) {
            self.held = Some(event);
            return;
        }
        self.held = None;
        self.send(event);
    }

    fn cancelled(&self) -> bool {
        self.token.is_cancelled()
    }
}

/// Runs `work` on a blocking thread with a fresh engine on the same
/// settings, then reports its outcome.
fn spawn<F>(shared: &Arc<Shared>, kind: JobKind, label: String, dry_run: bool, work: F) -> JobInfo
where
    F: FnOnce(&mut Engine, &mut dyn Progress) -> Result<JobOutcome, EngineError> + Send + 'static,
{
    let (info, token) = shared.jobs.register(kind, label, dry_run);
    let _ = shared.events.send(EngineEvent::JobStarted(info.clone()));
    let shared = shared.clone();
    let id = info.id;
    tokio::task::spawn_blocking(move || {
        let mut progress = EventProgress {
            id,
            tx: shared.events.clone(),
            token: token.clone(),
            last: None,
            held: None,
            latest: None,
        };
        let result = Engine::open(shared.settings.clone()).and_then(|mut engine| work(&mut engine, &mut progress));
        progress.flush(result.is_ok() && !token.is_cancelled());
        let end = match result {
            Ok(o) if token.is_cancelled() => JobEnd::Cancelled(Some(o)),
            Ok(o) => JobEnd::Done(o),
            Err(EngineError::Cancelled(_)) => JobEnd::Cancelled(None),
            Err(e) if token.is_cancelled() => JobEnd::Failed(format!("{e} (while cancelling)")),
            Err(e) => JobEnd::Failed(e.to_string()),
        };
        shared.jobs.finish(id);
        let _ = shared.events.send(EngineEvent::JobFinished { id, end });
        let _ = shared.events.send(EngineEvent::Changed);
    });
    info
}

pub(super) fn spawn_import(shared: &Arc<Shared>, req: ImportRequest) -> JobInfo {
    let roles: Vec<&str> = req.roles.iter().map(|r| r.as_str()).collect();
    let label = format!(
        "import {} {}{}",
        req.school,
        if roles.is_empty() {
            "all roles".to_string()
        } else {
            roles.join(",")
        },
        if req.dry_run { " (dry run)" } else { "" }
    );
    let dry_run = req.dry_run;
    spawn(shared, JobKind::Import, label, dry_run, move |engine, progress| {
        engine.import(&req, progress).map(|o| JobOutcome::Import(Box::new(o)))
    })
}

pub(super) fn spawn_purge(shared: &Arc<Shared>, as_of: Option<NaiveDate>, dry_run: bool) -> JobInfo {
    let label = format!(
        "purge limbo{}{}",
        as_of.map(|d| format!(" as of {d}")).unwrap_or_default(),
        if dry_run { " (dry run)" } else { "" }
    );
    spawn(shared, JobKind::Purge, label, dry_run, move |engine, progress| {
        engine.limbo_purge(as_of, dry_run, progress).map(JobOutcome::Purge)
    })
}

/// How long "drain now" waits for a back-off or a probe before it reports
/// the items left.
pub const DRAIN_MAX_WAIT: Duration = Duration::from_secs(15);

/// Drains one authority once: what is ready is sent now; a paused
/// (unreachable) authority is probed first.
pub(super) fn spawn_drain(shared: &Arc<Shared>, authority: String) -> JobInfo {
    let label = format!("sync {authority} (drain now)");
    spawn(shared, JobKind::Sync, label, false, move |engine, progress| {
        engine.authority_probe_now(&authority)?;
        let opts = SyncOptions {
            authority: Some(authority),
            once: true,
            workers: None,
            max_wait: DRAIN_MAX_WAIT,
        };
        engine.sync_run(&opts, progress).map(|o| JobOutcome::Sync(Box::new(o)))
    })
}

/// Verifies (with `fix`, repairs) one authority as a job with progress.
pub(super) fn spawn_verify(shared: &Arc<Shared>, req: VerifyRequest) -> JobInfo {
    let mut label = format!("verify {} {}", req.authority, req.kind.as_str());
    if let Some(f) = &req.filter {
        label.push_str(&format!(" {f}"));
    }
    if req.fix {
        label.push_str(" (fix)");
    }
    spawn(shared, JobKind::Verify, label, false, move |engine, progress| {
        engine.verify(&req, progress).map(|r| JobOutcome::Verify(Box::new(r)))
    })
}
