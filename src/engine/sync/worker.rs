//! One round of sending for one authority. Items of one kind (schools
//! before users before groups) are claimed, each object's *current* state is
//! read from the directory and mapped, and the target makes it so. Remote
//! targets get a stream: `workers` threads send while this thread keeps
//! claiming and preparing the next items and settles each result as it
//! arrives, so the target never waits for the queue. Local targets get one
//! batch (one transaction). Settling: sent → gone; transient failure →
//! back-off or, after `max_attempts`, trash; permanent → trash;
//! unreachable → put back untouched and the authority paused.

use super::backoff;
use super::item::{Failure, QueueItem, Reason, file_name};
use super::mapping::{Desired, MapError};
use super::queue::Claim;
use super::sender::Lane;
use super::target::{Applied, ErrorClass, TargetError};
use crate::engine::jobs::Progress;
use crate::engine::runs::Run;
use crate::engine::{Engine, EngineError, EngineResult, io_error};
use crate::model::{ObjectRef, User, UserKey};
use chrono::Utc;
use rustc_hash::FxHashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

/// A stream round ends after this long, so new journal entries and other
/// authorities get their turn.
const ROUND: Duration = Duration::from_secs(2);

/// How often a stream waiting for its workers looks whether to stop.
const STOP_CHECK: Duration = Duration::from_millis(50);

/// Items whose users are read from the directory together.
const PREFETCH: usize = 128;

/// Users read for a chunk of items; a slot is emptied when its item takes it.
type Prefetched = FxHashMap<UserKey, Option<User>>;

fn phase(name: &str) -> u8 {
    name.as_bytes().first().copied().unwrap_or(b'9')
}

/// A claimed item and what to send for it (or why it cannot be sent).
struct Prepared {
    claim: Claim,
    desired: Result<Desired, TargetError>,
}

/// How an item was settled.
enum Settled {
    Done,
    Later,
    Trashed,
    /// Put back: the authority cannot be reached.
    Unreachable(String),
}

impl Engine {
    /// One round; `true` when it did anything. `stop` is asked between
    /// items: once it says stop, nothing more is claimed, items not yet
    /// handed to the target are put back, and the round ends.
    pub(super) fn round(&self, lane: &mut Lane, run: &mut Run, stop: &dyn Progress) -> EngineResult<bool> {
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
        let first = lane.backlog.front().map(|(n, _)| phase(n)).unwrap_or(b'9');
        let t0 = Instant::now();
        let trashed_before = lane.stats.trashed;
        // Remote targets stream even with one worker: the stream checks
        // `stop` between items, a batch only at its end.
        let (settled, unreachable) = if lane.target.as_ref().is_some_and(|t| t.parallel()) {
            self.stream(lane, first, run, stop)?
        } else {
            self.batch(lane, first, run)?
        };
        if let Some(reason) = unreachable {
            self.pause(lane, &reason, run)?;
            // What was claimed before the outage is back in the folder.
            lane.backlog.clear();
        }
        self.state
            .sync_failed(&lane.authority.name, lane.stats.trashed - trashed_before)?;
        if settled > 0 {
            let secs = t0.elapsed().as_secs_f64().max(1e-6);
            self.state
                .sync_sent(&lane.authority.name, settled, settled as f64 / secs)?;
        }
        Ok(true)
    }

    /// The next claimable item of this phase, prepared.
    fn next(&self, lane: &mut Lane, phase_of: u8, run: &mut Run) -> EngineResult<Option<Prepared>> {
        loop {
            let Some((name, from_retry)) = lane.backlog.front().cloned() else {
                return Ok(None);
            };
            if phase(&name) != phase_of {
                return Ok(None);
            }
            lane.backlog.pop_front();
            let q = lane.authority.queue.clone();
            match q.claim(&name, from_retry).map_err(io_error(q.root()))? {
                // Another process took it first.
                None => continue,
                Some(Ok(claim)) => return self.prepare(lane, claim, None).map(Some),
                Some(Err((name, message))) => self.trash_unreadable(lane, &name, &message, run)?,
            }
        }
    }

    /// Reads and maps the claimed object now. `users`: the users of a chunk
    /// of items read at once (see [`Engine::prepare_chunk`]).
    fn prepare(&self, lane: &Lane, mut claim: Claim, users: Option<&mut Prefetched>) -> EngineResult<Prepared> {
        if claim.item.failure.is_some() {
            // Moved back from trash by hand: a fresh start.
            claim.item = claim.item.fresh(Reason::Requeue);
        }
        let mapper = &lane.authority.mapper;
        let (object, touched) = (&claim.item.object, &claim.item.schools);
        let mapped = match (object, users) {
            (ObjectRef::User { source_uid, record_uid }, Some(users)) => {
                let key = UserKey::new(source_uid.clone(), record_uid.clone());
                let user = match users.get_mut(&key) {
                    Some(slot) => match slot.take() {
                        Some(user) => Ok(Some(user)),
                        // A second item for the same user: read it again.
                        None => self.dir.user(&key),
                    },
                    // Read with the chunk and not found: gone.
                    None => Ok(None),
                };
                user.map_err(MapError::Store)
                    .and_then(|user| mapper.desired_user(object, key, user, touched))
            }
            _ => mapper.desired(self.dir.as_ref(), object, touched),
        };
        let desired = match mapped {
            // A school taken away with delete on target: no leaver is kept.
            Ok(Desired::Deactivated(m)) if claim.item.reason == Reason::Unassigned => Ok(Desired::Absent {
                class: m.class,
                external_id: m.external_id,
            }),
            Ok(d) => Ok(d),
            Err(MapError::Invalid { object, message }) => {
                Err(TargetError::permanent(format!("cannot map {object}: {message}")))
            }
            Err(MapError::Store(e)) => {
                // The directory is unreadable: put the item back, stop.
                let q = &lane.authority.queue;
                q.unclaim(&claim).map_err(io_error(q.root()))?;
                return Err(EngineError::Store(e));
            }
        };
        Ok(Prepared { claim, desired })
    }

    /// Prepares a chunk of claimed items, reading their users from the
    /// directory with one query per source instead of one per item.
    fn prepare_chunk(&self, lane: &Lane, chunk: &mut Vec<Claim>, out: &mut Vec<Prepared>) -> EngineResult<()> {
        let mut wanted: FxHashMap<&str, Vec<String>> = FxHashMap::default();
        for claim in chunk.iter() {
            if let ObjectRef::User { source_uid, record_uid } = &claim.item.object {
                wanted.entry(source_uid).or_default().push(record_uid.clone());
            }
        }
        let mut users = Prefetched::default();
        for (source, uids) in wanted {
            match self.dir.users_by_record_uids(source, &uids) {
                Ok(found) => users.extend(found.into_iter().map(|u| (u.key.clone(), Some(u)))),
                Err(e) => {
                    // The directory is unreadable: put the items back, stop.
                    let q = &lane.authority.queue;
                    for claim in chunk.iter() {
                        q.unclaim(claim).map_err(io_error(q.root()))?;
                    }
                    return Err(EngineError::Store(e));
                }
            }
        }
        for claim in chunk.drain(..) {
            out.push(self.prepare(lane, claim, Some(&mut users))?);
        }
        Ok(())
    }

    /// Local targets: one batch, one transaction. A helper thread claims
    /// (rename + read + parse) while this one reads and maps each object,
    /// and the sent items' files are removed while the next batch goes.
    fn batch(&self, lane: &mut Lane, phase_of: u8, run: &mut Run) -> EngineResult<(u64, Option<String>)> {
        let size = lane.workers * self.config().sync.batch_per_worker * 4;
        let mut names = Vec::with_capacity(size);
        while names.len() < size && lane.backlog.front().is_some_and(|(n, _)| phase(n) == phase_of) {
            if let Some(next) = lane.backlog.pop_front() {
                names.push(next);
            }
        }
        let q = lane.authority.queue.clone();
        let mut prepared = Vec::with_capacity(names.len());
        std::thread::scope(|s| -> EngineResult<()> {
            let (tx, rx) = mpsc::sync_channel(256);
            let claimer = q.clone();
            s.spawn(move || {
                for (name, from_retry) in names {
                    let claimed = claimer.claim(&name, from_retry);
                    if tx.send(claimed).is_err() {
                        break;
                    }
                }
            });
            let mut chunk = Vec::with_capacity(PREFETCH);
            for claimed in rx {
                match claimed.map_err(io_error(q.root()))? {
                    // Another process took it first.
                    None => {}
                    Some(Ok(claim)) => {
                        chunk.push(claim);
                        if chunk.len() == PREFETCH {
                            self.prepare_chunk(lane, &mut chunk, &mut prepared)?;
                        }
                    }
                    Some(Err((name, message))) => self.trash_unreadable(lane, &name, &message, run)?,
                }
            }
            self.prepare_chunk(lane, &mut chunk, &mut prepared)
        })?;
        let ready: Vec<&Desired> = prepared.iter().filter_map(|p| p.desired.as_ref().ok()).collect();
        let mut results = match &lane.target {
            Some(t) => t.apply_batch(&ready).into_iter(),
            None => Vec::new().into_iter(),
        };
        let (mut settled, mut unreachable) = (0, None);
        let mut done = Vec::with_capacity(prepared.len());
        for p in prepared {
            let result = match &p.desired {
                Ok(_) => results
                    .next()
                    .unwrap_or_else(|| Err(TargetError::new(ErrorClass::Unreachable, "no target"))),
                Err(e) => Err(e.clone()),
            };
            match self.settle(lane, p, result, run, Some(&mut done))? {
                Settled::Done | Settled::Trashed => settled += 1,
                Settled::Later => {}
                Settled::Unreachable(r) => {
                    unreachable.get_or_insert(r);
                }
            }
        }
        q.complete_later(done, &mut lane.reaper).map_err(io_error(q.root()))?;
        Ok((settled, unreachable))
    }

    /// Remote targets: workers send while this thread claims, prepares and
    /// settles.
    fn stream(
        &self,
        lane: &mut Lane,
        phase_of: u8,
        run: &mut Run,
        stop: &dyn Progress,
    ) -> EngineResult<(u64, Option<String>)> {
        let Some(target) = lane.target.take() else {
            return Ok((0, None));
        };
        let workers = lane.workers;
        let (job_tx, job_rx) = mpsc::sync_channel::<(usize, Desired)>(workers);
        let job_rx = Arc::new(Mutex::new(job_rx));
        // `None`: not sent, because the sync is stopping (put it back).
        let (done_tx, done_rx) = mpsc::channel::<(usize, Option<Result<Applied, TargetError>>)>();
        let stopping = AtomicBool::new(false);
        let started = Instant::now();
        let result = std::thread::scope(|s| -> EngineResult<(u64, Option<String>)> {
            // Owned here: however this closure ends, the workers' channel
            // closes before the scope waits for them.
            let job_tx = job_tx;
            for _ in 0..workers {
                let rx = job_rx.clone();
                let tx = done_tx.clone();
                let target = target.as_ref();
                let stopping = &stopping;
                s.spawn(move || {
                    loop {
                        let job = match rx.lock() {
                            Ok(r) => r.recv(),
                            Err(_) => break,
                        };
                        let Ok((i, desired)) = job else { break };
                        let result = (!stopping.load(Ordering::SeqCst)).then(|| target.apply(&desired));
                        if tx.send((i, result)).is_err() {
                            break;
                        }
                    }
                });
            }
            drop(done_tx);
            let mut in_flight: std::collections::HashMap<usize, Prepared> = std::collections::HashMap::new();
            let (mut settled, mut unreachable, mut next_id) = (0u64, None, 0usize);
            let mut feeding = true;
            let mut failure: Option<EngineError> = None;
            loop {
                // Keep every worker busy plus one item waiting for each.
                while feeding && in_flight.len() < workers * 2 {
                    if stop.cancelled() {
                        stopping.store(true, Ordering::SeqCst);
                    }
                    if unreachable.is_some() || started.elapsed() > ROUND || stopping.load(Ordering::SeqCst) {
                        feeding = false;
                        break;
                    }
                    let p = match self.next(lane, phase_of, run) {
                        Ok(Some(p)) => p,
                        Ok(None) => {
                            feeding = false;
                            break;
                        }
                        Err(e) => {
                            failure = Some(e);
                            feeding = false;
                            break;
                        }
                    };
                    match &p.desired {
                        Ok(d) => {
                            let job = (next_id, d.clone());
                            in_flight.insert(next_id, p);
                            next_id += 1;
                            if job_tx.send(job).is_err() {
                                feeding = false;
                            }
                        }
                        Err(e) => {
                            let e = e.clone();
                            if let Settled::Trashed = self.settle(lane, p, Err(e), run, None)? {
                                settled += 1;
                            }
                        }
                    }
                }
                if in_flight.is_empty() {
                    break;
                }
                // Wait for a result, watching for a stop meanwhile (the
                // items still waiting for a worker are then put back).
                let (i, result) = match done_rx.recv_timeout(STOP_CHECK) {
                    Ok(done) => done,
                    Err(mpsc::RecvTimeoutError::Timeout) => {
                        if stop.cancelled() {
                            stopping.store(true, Ordering::SeqCst);
                            feeding = false;
                        }
                        continue;
                    }
                    Err(mpsc::RecvTimeoutError::Disconnected) => break,
                };
                let Some(p) = in_flight.remove(&i) else { continue };
                let Some(result) = result else {
                    let q = &lane.authority.queue;
                    q.unclaim(&p.claim).map_err(io_error(q.root()))?;
                    continue;
                };
                match self.settle(lane, p, result, run, None)? {
                    Settled::Done | Settled::Trashed => settled += 1,
                    Settled::Later => {}
                    Settled::Unreachable(r) => {
                        unreachable.get_or_insert(r);
                    }
                }
            }
            drop(job_tx);
            match failure {
                Some(e) => Err(e),
                None => Ok((settled, unreachable)),
            }
        });
        lane.target = Some(target);
        result
    }

    fn trash_unreadable(&self, lane: &mut Lane, name: &str, message: &str, run: &mut Run) -> EngineResult<()> {
        let now = Utc::now();
        let mut item = QueueItem::new(
            crate::model::ObjectRef::school("unreadable-item"),
            Vec::<String>::new(),
            Reason::Requeue,
        );
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

    /// Settles one item. Sent items' files are removed at once, or, with
    /// `done`, collected for the caller to remove together.
    fn settle(
        &self,
        lane: &mut Lane,
        p: Prepared,
        result: Result<Applied, TargetError>,
        run: &mut Run,
        done: Option<&mut Vec<Claim>>,
    ) -> EngineResult<Settled> {
        let q = lane.authority.queue.clone();
        let cfg = &lane.authority.config;
        let Prepared { claim, desired } = p;
        let e = match result {
            Ok(applied) => {
                if applied == Applied::Created
                    && claim.item.attempts > 0
                    && lane.authority.config.kind.drops_unknown_members()
                {
                    // Created only after waiting for a retry: its groups may
                    // have gone out meanwhile without it (members the target
                    // does not hold are left out), so they go again — except
                    // those in trash, which wait for the admin's requeue.
                    let again: Vec<_> = self
                        .companions(&claim.item.object, Reason::Change)?
                        .into_iter()
                        .filter(|i| !q.in_trash(&file_name(&i.object)))
                        .collect();
                    q.enqueue_many(&again).map_err(io_error(q.root()))?;
                }
                match done {
                    Some(d) => d.push(claim),
                    None => q.complete(&claim).map_err(io_error(q.root()))?,
                }
                lane.stats.sent += 1;
                *lane.stats.applied.entry(applied.as_str().into()).or_default() += 1;
                return Ok(Settled::Done);
            }
            Err(e) if e.class == ErrorClass::Unreachable => {
                q.unclaim(&claim).map_err(io_error(q.root()))?;
                return Ok(Settled::Unreachable(e.message));
            }
            Err(e) => e,
        };
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
            return Ok(Settled::Later);
        }
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
        run.log(&format!(
            "{}: trashed {} ({}): {reason}",
            lane.authority.name, claim.name, item.object
        ));
        Ok(Settled::Trashed)
    }
}
