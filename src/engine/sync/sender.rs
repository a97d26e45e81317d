//! The sender: drains the out-queues, authority by authority, in rounds
//! (see [`super::worker`] for one round), distributing new journal entries
//! between rounds, probing paused authorities with back-off, and deciding
//! when a `--once` run is done or must give up (exit 4). Writes the run
//! record of every sync.

use super::authority::Authority;
use super::backoff;
use super::queue::Reaper;
use super::target::Target;
use crate::engine::jobs::{Progress, ProgressEvent};
use crate::engine::runs::{Run, RunKind, RunStatus};
use crate::engine::{Engine, EngineError, EngineResult, io_error};
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::{BTreeMap, VecDeque};
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
    /// Requests sent to the target in this run (scim: HTTP requests).
    pub requests: u64,
    /// Why items were left, if any were.
    pub incomplete: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct SyncOutcome {
    pub run_id: String,
    /// Every queue drained.
    pub complete: bool,
    /// Items that went to trash in this run, all authorities.
    pub trashed: u64,
    pub authorities: Vec<AuthoritySync>,
    pub seconds: f64,
    pub journal_entries: u64,
}

/// One authority's sending state during a sync.
pub(super) struct Lane {
    pub(super) authority: Authority,
    pub(super) target: Option<Box<dyn Target>>,
    /// (file name, from retry/), in send order.
    pub(super) backlog: VecDeque<(String, bool)>,
    pub(super) stats: AuthoritySync,
    pub(super) workers: usize,
    /// `once`: no more waiting for this authority.
    pub(super) given_up: bool,
    /// When this sync first found it paused.
    pub(super) paused_at: Option<Instant>,
    pub(super) next_retry: Option<SystemTime>,
    /// Removes the files of the last batch sent while the next one goes.
    pub(super) reaper: Reaper,
    /// When the target last answered (or the sync started).
    pub(super) answered_at: Instant,
    /// `once` with a `--max-wait`: requests in flight are stopped once the
    /// target has not answered for this long.
    pub(super) max_wait: Duration,
    pub(super) bounded: bool,
    /// `once`: probes of a paused authority left in this run (one), and
    /// whether one is due now (an authority paused before the run starts
    /// is probed at once, not at its back-off).
    pub(super) probes_left: u32,
    pub(super) probe_now: bool,
    /// The target's request count when this run took it.
    pub(super) requests_at: u64,
}

impl Lane {
    /// Bounds the target's requests by the run's `--max-wait`.
    pub(super) fn arm(&self, target: &dyn Target) {
        if let Some(i) = target.interrupt() {
            i.set_deadline(self.bounded.then(|| self.answered_at + self.max_wait));
        }
    }
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
                let status = if progress.cancelled() {
                    RunStatus::Cancelled
                } else {
                    RunStatus::Ok
                };
                run.finish(status, (!message.is_empty()).then_some(message))?;
                Ok(outcome)
            }
            Err(e) => {
                if e.is_disk_full() {
                    crate::engine::free_disk(&self.settings().paths);
                }
                let status = if matches!(e, EngineError::Cancelled(_)) {
                    RunStatus::Cancelled
                } else {
                    RunStatus::Failed
                };
                run.finish(status, Some(e.to_string()))?;
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
            let bounded = opts.once && !opts.max_wait.is_zero();
            let target = targets.remove(&a.name);
            let requests_at = target.as_ref().map(|t| t.requests()).unwrap_or(0);
            if let Some(i) = target.as_ref().and_then(|t| t.interrupt()) {
                i.clear();
            }
            lanes.push(Lane {
                stats: AuthoritySync {
                    authority: a.name.clone(),
                    ..AuthoritySync::default()
                },
                target,
                authority: a,
                backlog: VecDeque::new(),
                workers,
                given_up: false,
                paused_at: None,
                next_retry: None,
                reaper: Reaper::default(),
                answered_at: Instant::now(),
                max_wait: opts.max_wait,
                bounded,
                probes_left: if opts.once { 1 } else { u32::MAX },
                probe_now: bounded,
                requests_at,
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
                if progress.cancelled() {
                    break;
                }
                worked |= self.round(lane, run, &*progress)?;
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
                if let Some(by) = paused.as_ref().and_then(|p| p.held_by.as_ref()) {
                    // Paused by an admin: only a resume sends again.
                    if opts.once {
                        lane.given_up = true;
                        lane.stats.incomplete =
                            Some(format!("paused by {by}; {depth} item(s) wait until it is resumed"));
                    }
                    continue;
                }
                let next = match &paused {
                    Some(_) if lane.probe_now => now,
                    Some(p) => SystemTime::from(p.next_probe),
                    None => lane.next_retry.unwrap_or(now),
                };
                let until = next.duration_since(now).unwrap_or_default();
                if opts.once && paused.is_some() && lane.probes_left == 0 {
                    // One probe per run: it failed.
                    lane.given_up = true;
                    lane.stats.incomplete = paused.as_ref().map(|p| {
                        format!(
                            "paused since {} ({}); {depth} item(s) wait for it to come back",
                            p.since.format("%Y-%m-%d %H:%M:%S UTC"),
                            p.reason
                        )
                    });
                    continue;
                }
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
            crate::engine::jobs::sleep_unless_cancelled(wait, &*progress);
        }
        let _ = sent_total;
        for lane in lanes.iter_mut() {
            let q = &lane.authority.queue;
            lane.reaper.wait().map_err(io_error(q.root()))?;
            lane.stats.left = self.lane_depth(lane)?;
            lane.stats.requests = lane
                .target
                .as_ref()
                .map(|t| t.requests().saturating_sub(lane.requests_at))
                .unwrap_or(0);
        }
        let complete = lanes.iter().all(|l| l.stats.left == 0);
        let trashed = lanes.iter().map(|l| l.stats.trashed).sum();
        for lane in lanes.iter_mut() {
            if let Some(t) = lane.target.take() {
                targets.insert(lane.authority.name.clone(), t);
            }
        }
        Ok(SyncOutcome {
            run_id: run.id().to_string(),
            complete,
            trashed,
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
    pub(super) fn probe(&self, lane: &mut Lane, run: &mut Run) -> EngineResult<bool> {
        let name = lane.authority.name.clone();
        let Some(paused) = self.state.sync_state(&name)?.and_then(|s| s.paused) else {
            lane.paused_at = None;
            return Ok(true);
        };
        lane.paused_at.get_or_insert_with(Instant::now);
        if paused.held_by.is_some() || lane.probes_left == 0 || (!lane.probe_now && Utc::now() < paused.next_probe) {
            return Ok(false);
        }
        lane.probe_now = false;
        lane.probes_left = lane.probes_left.saturating_sub(1);
        let result = match &lane.target {
            Some(t) => {
                lane.arm(t.as_ref());
                t.probe()
            }
            None => lane.authority.open_target(self).and_then(|t| {
                lane.arm(t.as_ref());
                let r = t.probe();
                lane.target = Some(t);
                r
            }),
        };
        match result {
            Ok(()) => {
                self.state.sync_resume(&name)?;
                lane.paused_at = None;
                lane.probes_left = lane.probes_left.max(1);
                lane.answered_at = Instant::now();
                run.log(&format!("{name}: reachable again; resuming"));
                if let Some(t) = &lane.target {
                    match t.rediscover() {
                        Ok(()) => lane.authority = self.authority(&name)?,
                        Err(e) => run.log(&format!("{name}: asking what it supports failed: {}", e.message)),
                    }
                }
                Ok(true)
            }
            Err(e) if e.class == super::target::ErrorClass::Interrupted => {
                lane.probes_left = 0;
                Ok(false)
            }
            Err(e) => {
                let failures = paused.probe_failures + 1;
                let reason = if e.timed_out {
                    format!("stalled: {}", e.message)
                } else {
                    e.message.clone()
                };
                let next = Utc::now()
                    + chrono::Duration::from_std(backoff::delay(&lane.authority.config.retry, failures))
                        .unwrap_or_default();
                self.state.sync_pause(&name, &reason, next, failures)?;
                Ok(false)
            }
        }
    }

    pub(super) fn pause(&self, lane: &mut Lane, reason: &str, run: &mut Run) -> EngineResult<()> {
        let next = Utc::now()
            + chrono::Duration::from_std(backoff::delay(&lane.authority.config.retry, 1)).unwrap_or_default();
        self.state.sync_pause(&lane.authority.name, reason, next, 1)?;
        lane.paused_at.get_or_insert_with(Instant::now);
        lane.stats.paused += 1;
        run.log(&format!("{}: unreachable, paused: {reason}", lane.authority.name));
        Ok(())
    }

    /// Refills a lane's backlog from its folders.
    pub(super) fn refill(&self, lane: &mut Lane) -> EngineResult<()> {
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
}
