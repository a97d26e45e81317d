//! The sender: drains the out-queues. Each round and authority it claims a
//! batch of items of one kind (schools before users before groups), reads
//! each object's *current* state from the directory, maps it, and hands the
//! batch to the target (in parallel workers for remote targets). Then it
//! settles each item: sent → gone; transient failure → back-off or, after
//! `max_attempts`, trash; permanent failure → trash; unreachable → put
//! back untouched and the authority paused, probed with back-off.

use super::authority::Authority;
use super::backoff;
use super::item::{Failure, QueueItem, Reason};
use super::mapping::{Desired, MapError};
use super::queue::Claim;
use super::target::{Applied, ErrorClass, Target, TargetError};
use crate::engine::jobs::{Progress, ProgressEvent};
use crate::engine::runs::{Run, RunKind, RunStatus};
use crate::engine::{Engine, EngineError, EngineResult, io_error};
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

/// Open targets by authority, kept between the daemon's cycles.
pub type Targets = std::collections::HashMap<String, Box<dyn Target>>;

/// How a sync runs.
#[derive(Clone, Debug)]
pub struct SyncOptions {
    /// Only this authority.
    pub authority: Option<String>,
    /// Drain, then return (else run until cancelled).
    pub once: bool,
    /// Override the authorities' workers.
    pub workers: Option<usize>,
    /// `once`: give up on an authority whose next chance (back-off or
    /// probe) is further away than this.
    pub max_wait: Duration,
}

impl Default for SyncOptions {
    fn default() -> Self {
        SyncOptions {
            authority: None,
            once: true,
            workers: None,
            max_wait: Duration::from_secs(60),
        }
    }
}

/// What one authority's sync did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct AuthoritySync {
    pub authority: String,
    /// Items settled successfully.
    pub sent: u64,
    /// By outcome: created, updated, unchanged, deactivated, deleted, absent, skipped.
    pub applied: BTreeMap<String, u64>,
    /// Failures that were scheduled for another try.
    pub retried: u64,
    pub trashed: u64,
    /// Times the authority was found unreachable.
    pub paused: u64,
    /// Items still waiting when the sync ended.
    pub left: u64,
    /// Why items were left, if any were.
    pub incomplete: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct SyncOutcome {
    pub run_id: String,
    /// Every queue drained.
    pub complete: bool,
    pub authorities: Vec<AuthoritySync>,
    pub seconds: f64,
    pub journal_entries: u64,
}

/// One authority's sending state during a sync.
struct Lane {
    authority: Authority,
    target: Option<Box<dyn Target>>,
    /// (file name, from retry/), in send order.
    backlog: VecDeque<(String, bool)>,
    stats: AuthoritySync,
    workers: usize,
    /// `once`: no more waiting for this authority.
    given_up: bool,
    /// When this sync first found it paused.
    paused_at: Option<Instant>,
    next_retry: Option<SystemTime>,
}

fn phase(name: &str) -> u8 {
    name.as_bytes().first().copied().unwrap_or(b'9')
}

/// A prepared item: its claim and what to send (or why it cannot be).
struct Prepared {
    claim: Claim,
    desired: Result<Desired, TargetError>,
}

impl Engine {
    /// Runs the sync: distribute, then send, until drained (`once`) or
    /// cancelled. Writes a sync run record.
    pub fn sync_run(&mut self, opts: &SyncOptions, progress: &mut dyn Progress) -> EngineResult<SyncOutcome> {
        self.check_writable("sync run")?;
        let args = serde_json::json!({
            "authority": opts.authority, "once": opts.once, "workers": opts.workers,
            "max_wait_seconds": opts.max_wait.as_secs_f64(),
        });
        let mut run = self.runs.start(RunKind::Sync, self.audit.actor(), args, None, false)?;
        let result = self.sync_loop(opts, progress, &mut run, &mut Targets::new());
        match result {
            Ok(outcome) => {
                for a in &outcome.authorities {
                    for (k, n) in &a.applied {
                        run.record.counts.insert(format!("{}.{k}", a.authority), *n);
                    }
                    for (k, n) in [
                        ("sent", a.sent),
                        ("retried", a.retried),
                        ("trashed", a.trashed),
                        ("left", a.left),
                    ] {
                        *run.record.counts.entry(k.to_string()).or_default() += n;
                    }
                }
                let message = outcome
                    .authorities
                    .iter()
                    .filter_map(|a| a.incomplete.as_ref().map(|r| format!("{}: {r}", a.authority)))
                    .collect::<Vec<_>>()
                    .join("; ");
                run.finish(RunStatus::Ok, (!message.is_empty()).then_some(message))?;
                Ok(outcome)
            }
            Err(e) => {
                run.finish(RunStatus::Failed, Some(e.to_string()))?;
                Err(e)
            }
        }
    }

    pub(super) fn sync_loop(
        &mut self,
        opts: &SyncOptions,
        progress: &mut dyn Progress,
        run: &mut Run,
        targets: &mut Targets,
    ) -> EngineResult<SyncOutcome> {
        let started = Instant::now();
        let mut lanes: Vec<Lane> = Vec::new();
        for a in self.authorities_selected(opts.authority.as_deref())? {
            if !a.config.active {
                continue;
            }
            a.queue.recover_claims(false).map_err(io_error(a.queue.root()))?;
            let workers = opts.workers.unwrap_or(a.config.workers).max(1);
            lanes.push(Lane {
                stats: AuthoritySync {
                    authority: a.name.clone(),
                    ..AuthoritySync::default()
                },
                target: targets.remove(&a.name),
                authority: a,
                backlog: VecDeque::new(),
                workers,
                given_up: false,
                paused_at: None,
                next_retry: None,
            });
        }
        let poll = Duration::from_secs_f64(self.config().sync.poll_seconds);
        let mut journal_entries = 0;
        let mut last_recover = Instant::now();
        let mut sent_total = 0u64;
        loop {
            if progress.cancelled() {
                run.log("cancelled");
                break;
            }
            journal_entries += self.distribute(opts.authority.as_deref())?.entries;
            if last_recover.elapsed() > Duration::from_secs(30) {
                for lane in &lanes {
                    let q = &lane.authority.queue;
                    q.recover_claims(false).map_err(io_error(q.root()))?;
                }
                last_recover = Instant::now();
            }
            let mut worked = false;
            for lane in lanes.iter_mut() {
                if lane.given_up {
                    continue;
                }
                worked |= self.round(lane, run)?;
            }
            sent_total = lanes.iter().map(|l| l.stats.sent + l.stats.trashed).sum();
            progress.update(ProgressEvent {
                phase: "syncing",
                done: sent_total,
                total: None,
            });
            if worked {
                continue;
            }
            // Nothing was ready: finished, or wait for the next chance.
            let now = SystemTime::now();
            let mut wait = poll;
            let mut all_done = true;
            for lane in lanes.iter_mut().filter(|l| !l.given_up) {
                let depth = self.lane_depth(lane)?;
                if depth == 0 {
                    continue;
                }
                let paused = self.state.sync_state(&lane.authority.name)?.and_then(|s| s.paused);
                let next = match &paused {
                    Some(p) => SystemTime::from(p.next_probe),
                    None => lane.next_retry.unwrap_or(now),
                };
                let until = next.duration_since(now).unwrap_or_default();
                if opts.once {
                    let paused_long = lane.paused_at.is_some_and(|t| t.elapsed() + until > opts.max_wait);
                    if until > opts.max_wait || paused_long {
                        lane.given_up = true;
                        lane.stats.incomplete = Some(match &paused {
                            Some(p) => format!(
                                "paused since {} ({}); {depth} item(s) wait for it to come back",
                                p.since.format("%Y-%m-%d %H:%M:%S UTC"),
                                p.reason
                            ),
                            None => format!(
                                "{depth} item(s) wait for a back-off until {}, longer than --max-wait",
                                DateTime::<Utc>::from(next).format("%Y-%m-%d %H:%M:%S UTC")
                            ),
                        });
                        continue;
                    }
                }
                all_done = false;
                wait = wait.min(until.max(Duration::from_millis(10)));
            }
            if opts.once && all_done {
                break;
            }
            std::thread::sleep(wait);
        }
        let _ = sent_total;
        for lane in lanes.iter_mut() {
            lane.stats.left = self.lane_depth(lane)?;
        }
        let complete = lanes.iter().all(|l| l.stats.left == 0);
        for lane in lanes.iter_mut() {
            if let Some(t) = lane.target.take() {
                targets.insert(lane.authority.name.clone(), t);
            }
        }
        Ok(SyncOutcome {
            run_id: run.id().to_string(),
            complete,
            authorities: lanes.into_iter().map(|l| l.stats).collect(),
            seconds: started.elapsed().as_secs_f64(),
            journal_entries,
        })
    }

    fn lane_depth(&self, lane: &Lane) -> EngineResult<u64> {
        let q = &lane.authority.queue;
        let c = q.counts().map_err(io_error(q.root()))?;
        Ok(c.pending + c.retrying)
    }

    /// Probes a paused authority when its time has come. `true` when it
    /// may be sent to now.
    fn probe(&self, lane: &mut Lane, run: &mut Run) -> EngineResult<bool> {
        let name = lane.authority.name.clone();
        let Some(paused) = self.state.sync_state(&name)?.and_then(|s| s.paused) else {
            lane.paused_at = None;
            return Ok(true);
        };
        lane.paused_at.get_or_insert_with(Instant::now);
        if Utc::now() < paused.next_probe {
            return Ok(false);
        }
        let result = match &lane.target {
            Some(t) => t.probe(),
            None => lane.authority.open_target(self).and_then(|t| {
                let r = t.probe();
                lane.target = Some(t);
                r
            }),
        };
        match result {
            Ok(()) => {
                self.state.sync_resume(&name)?;
                lane.paused_at = None;
                run.log(&format!("{name}: reachable again; resuming"));
                Ok(true)
            }
            Err(e) => {
                let failures = paused.probe_failures + 1;
                let next = Utc::now()
                    + chrono::Duration::from_std(backoff::delay(&lane.authority.config.retry, failures))
                        .unwrap_or_default();
                self.state.sync_pause(&name, &e.message, next, failures)?;
                Ok(false)
            }
        }
    }

    fn pause(&self, lane: &mut Lane, reason: &str, run: &mut Run) -> EngineResult<()> {
        let next = Utc::now()
            + chrono::Duration::from_std(backoff::delay(&lane.authority.config.retry, 1)).unwrap_or_default();
        self.state.sync_pause(&lane.authority.name, reason, next, 1)?;
        lane.paused_at.get_or_insert_with(Instant::now);
        lane.stats.paused += 1;
        run.log(&format!("{}: unreachable, paused: {reason}", lane.authority.name));
        Ok(())
    }

    /// Refills a lane's backlog from its folders.
    fn refill(&self, lane: &mut Lane) -> EngineResult<()> {
        let q = &lane.authority.queue;
        let mut names: Vec<(String, bool)> = q
            .pending_names()
            .map_err(io_error(q.root()))?
            .into_iter()
            .map(|n| (n, false))
            .collect();
        let (due, next) = q.due_retries(SystemTime::now()).map_err(io_error(q.root()))?;
        names.extend(due.into_iter().map(|n| (n, true)));
        names.sort();
        lane.next_retry = next;
        lane.backlog = names.into();
        Ok(())
    }

    /// One round for one authority; `true` when it settled anything.
    fn round(&self, lane: &mut Lane, run: &mut Run) -> EngineResult<bool> {
        if !self.probe(lane, run)? {
            return Ok(false);
        }
        if lane.backlog.is_empty() {
            self.refill(lane)?;
            if lane.backlog.is_empty() {
                return Ok(false);
            }
        }
        if lane.target.is_none() {
            match lane.authority.open_target(self) {
                Ok(t) => lane.target = Some(t),
                Err(e) if e.class == ErrorClass::Permanent => {
                    // A configuration problem (token file, CA bundle): every
                    // item would fail the same way. Keep them; report.
                    lane.given_up = true;
                    lane.stats.incomplete = Some(e.message.clone());
                    run.log(&format!("{}: {}", lane.authority.name, e.message));
                    return Ok(false);
                }
                Err(e) => {
                    self.pause(lane, &e.message, run)?;
                    return Ok(false);
                }
            }
        }
        // One kind per batch: schools, users and groups never overlap.
        let size = lane.workers * self.config().sync.batch_per_worker;
        let first = lane.backlog.front().map(|(n, _)| phase(n)).unwrap_or(b'9');
        let mut claims = Vec::with_capacity(size);
        while claims.len() < size {
            let Some((name, from_retry)) = lane.backlog.front().cloned() else {
                break;
            };
            if phase(&name) != first {
                break;
            }
            lane.backlog.pop_front();
            let q = &lane.authority.queue;
            match q.claim(&name, from_retry).map_err(io_error(q.root()))? {
                None => {}
                Some(Ok(claim)) => claims.push(claim),
                Some(Err((name, message))) => {
                    let item = QueueItem::new(
                        crate::model::ObjectRef::school("unreadable-item"),
                        Vec::<String>::new(),
                        Reason::Requeue,
                    );
                    self.trash_unreadable(lane, &name, item, &message, run)?;
                }
            }
        }
        if claims.is_empty() {
            return Ok(!lane.backlog.is_empty());
        }
        let t0 = Instant::now();
        let prepared = self.prepare(lane, claims)?;
        let results = execute(lane, &prepared);
        let settled = self.settle(lane, prepared, results, run)?;
        let secs = t0.elapsed().as_secs_f64();
        if settled > 0 {
            self.state
                .sync_sent(&lane.authority.name, settled, settled as f64 / secs.max(1e-6))?;
        }
        Ok(true)
    }

    fn trash_unreadable(
        &self,
        lane: &mut Lane,
        name: &str,
        mut item: QueueItem,
        message: &str,
        run: &mut Run,
    ) -> EngineResult<()> {
        let now = Utc::now();
        item.failure = Some(Failure {
            class: ErrorClass::Permanent.as_str().into(),
            error: message.to_string(),
            http_status: None,
            ldap_code: None,
            attempts: 0,
            first_failure: now,
            last_failure: now,
            trashed_at: now,
            payload: serde_json::Value::Null,
        });
        let q = &lane.authority.queue;
        q.trash(name, &item).map_err(io_error(q.root()))?;
        q.drop_claimed(name).map_err(io_error(q.root()))?;
        lane.stats.trashed += 1;
        run.log(&format!("{}: trashed {name}: {message}", lane.authority.name));
        Ok(())
    }

    /// Reads and maps each claimed object now.
    fn prepare(&self, lane: &Lane, claims: Vec<Claim>) -> EngineResult<Vec<Prepared>> {
        let mut out = Vec::with_capacity(claims.len());
        for mut claim in claims {
            if claim.item.failure.is_some() {
                // Moved back from trash by hand: a fresh start.
                claim.item = claim.item.fresh(Reason::Requeue);
            }
            let desired =
                match lane
                    .authority
                    .mapper
                    .desired(self.dir.as_ref(), &claim.item.object, &claim.item.schools)
                {
                    Ok(d) => Ok(d),
                    Err(MapError::Invalid { object, message }) => {
                        Err(TargetError::permanent(format!("cannot map {object}: {message}")))
                    }
                    Err(MapError::Store(e)) => {
                        // The directory is unreadable: put everything back.
                        let q = &lane.authority.queue;
                        q.unclaim(&claim).map_err(io_error(q.root()))?;
                        for p in &out {
                            let p: &Prepared = p;
                            q.unclaim(&p.claim).map_err(io_error(q.root()))?;
                        }
                        return Err(EngineError::Store(e));
                    }
                };
            out.push(Prepared { claim, desired });
        }
        Ok(out)
    }

    fn settle(
        &self,
        lane: &mut Lane,
        prepared: Vec<Prepared>,
        results: Vec<Result<Applied, TargetError>>,
        run: &mut Run,
    ) -> EngineResult<u64> {
        let q = lane.authority.queue.clone();
        let cfg = lane.authority.config.clone();
        let mut settled = 0;
        let mut unreachable: Option<String> = None;
        for (p, result) in prepared.into_iter().zip(results) {
            let Prepared { claim, desired } = p;
            match result {
                Ok(applied) => {
                    q.complete(&claim).map_err(io_error(q.root()))?;
                    lane.stats.sent += 1;
                    *lane.stats.applied.entry(applied.as_str().into()).or_default() += 1;
                    settled += 1;
                }
                Err(e) if e.class == ErrorClass::Unreachable => {
                    q.unclaim(&claim).map_err(io_error(q.root()))?;
                    unreachable.get_or_insert(e.message);
                }
                Err(e) => {
                    let mut item = claim.item.clone();
                    let now = Utc::now();
                    item.attempts += 1;
                    item.first_failure.get_or_insert(now);
                    item.last_failure = Some(now);
                    item.last_error = Some(e.message.clone());
                    item.last_status = e.http_status;
                    let exhausted = item.attempts >= cfg.max_attempts;
                    if e.class == ErrorClass::Transient && !exhausted {
                        let mut wait = backoff::delay(&cfg.retry, item.attempts);
                        if let Some(after) = e.retry_after {
                            wait = wait.max(after);
                        }
                        let at = now + chrono::Duration::from_std(wait).unwrap_or_default();
                        item.not_before = Some(at);
                        q.retry_later(&claim, &item, at).map_err(io_error(q.root()))?;
                        lane.stats.retried += 1;
                        let at: SystemTime = at.into();
                        lane.next_retry = Some(lane.next_retry.map_or(at, |n| n.min(at)));
                    } else {
                        let payload = desired.as_ref().map(|d| d.payload()).unwrap_or(serde_json::Value::Null);
                        let reason = if exhausted && e.class == ErrorClass::Transient {
                            format!("{} (gave up after {} attempts)", e.message, item.attempts)
                        } else {
                            e.message.clone()
                        };
                        item.not_before = None;
                        item.failure = Some(Failure {
                            class: e.class.as_str().into(),
                            error: reason.clone(),
                            http_status: e.http_status,
                            ldap_code: e.ldap_code,
                            attempts: item.attempts,
                            first_failure: item.first_failure.unwrap_or(now),
                            last_failure: now,
                            trashed_at: now,
                            payload,
                        });
                        q.trash(&claim.name, &item).map_err(io_error(q.root()))?;
                        lane.stats.trashed += 1;
                        settled += 1;
                        run.log(&format!(
                            "{}: trashed {} ({}): {reason}",
                            cfg_name(lane),
                            claim.name,
                            item.object
                        ));
                    }
                }
            }
        }
        if let Some(reason) = unreachable {
            self.pause(lane, &reason, run)?;
            // What was claimed before the outage is back in the folder.
            lane.backlog.clear();
        }
        Ok(settled)
    }
}

fn cfg_name(lane: &Lane) -> &str {
    &lane.authority.name
}

/// Sends a prepared batch: in parallel workers for remote targets, as one
/// batch for local ones. Results are in order.
fn execute(lane: &Lane, prepared: &[Prepared]) -> Vec<Result<Applied, TargetError>> {
    let Some(target) = lane.target.as_deref() else {
        return prepared
            .iter()
            .map(|_| Err(TargetError::new(ErrorClass::Unreachable, "no target")))
            .collect();
    };
    let ready: Vec<(usize, &Desired)> = prepared
        .iter()
        .enumerate()
        .filter_map(|(i, p)| p.desired.as_ref().ok().map(|d| (i, d)))
        .collect();
    let mut results: Vec<Result<Applied, TargetError>> = prepared
        .iter()
        .map(|p| match &p.desired {
            Ok(_) => Err(TargetError::transient("not sent")),
            Err(e) => Err(e.clone()),
        })
        .collect();
    if !target.parallel() || lane.workers == 1 {
        let batch: Vec<Desired> = ready.iter().map(|(_, d)| (*d).clone()).collect();
        for ((i, _), r) in ready.iter().zip(target.apply_batch(&batch)) {
            results[*i] = r;
        }
        return results;
    }
    let next = AtomicUsize::new(0);
    let out: Arc<Mutex<Vec<(usize, Result<Applied, TargetError>)>>> = Arc::new(Mutex::new(Vec::new()));
    std::thread::scope(|s| {
        for _ in 0..lane.workers.min(ready.len()) {
            s.spawn(|| {
                loop {
                    let k = next.fetch_add(1, Ordering::Relaxed);
                    let Some((i, d)) = ready.get(k) else { break };
                    let r = target.apply(d);
                    if let Ok(mut o) = out.lock() {
                        o.push((*i, r));
                    }
                }
            });
        }
    });
    if let Ok(mut o) = out.lock() {
        for (i, r) in o.drain(..) {
            results[i] = r;
        }
    }
    results
}
