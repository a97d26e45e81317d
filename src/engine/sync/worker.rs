//! One round of sending for one authority. Items of one kind (schools
//! before users before groups) are claimed, each object's *current* state is
//! read from the directory and mapped, and the target makes it so. Remote
//! targets get a stream: `workers` threads send while this thread keeps
//! claiming and preparing the next items and settles each result as it
//! arrives, so the target never waits for the queue. Local targets get one
//! batch (one transaction). Settling is [`super::settle`]'s. A round whose
//! every request timed out puts its items back (no attempt spent) and
//! pauses the authority as if it were unreachable; a cancelled run or an
//! exhausted `--max-wait` stops the requests in flight.

use super::item::Reason;
use super::mapping::{Desired, MapError};
use super::queue::Claim;
use super::sender::Lane;
use super::settle::{Prepared, Settled};
use super::target::{Applied, ErrorClass, TargetError};
use crate::engine::jobs::Progress;
use crate::engine::runs::Run;
use crate::engine::{Engine, EngineError, EngineResult, io_error};
use crate::model::{ObjectRef, User, UserKey};
use rustc_hash::FxHashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A stream round ends after this long, so new journal entries and other
/// authorities get their turn.
const ROUND: Duration = Duration::from_secs(2);

/// Items whose users are read from the directory together.
const PREFETCH: usize = 128;

/// Users read for a chunk of items; a slot is emptied when its item takes it.
type Prefetched = FxHashMap<UserKey, Option<User>>;

fn phase(name: &str) -> u8 {
    name.as_bytes().first().copied().unwrap_or(b'9')
}

/// What one round did.
#[derive(Default)]
pub(super) struct RoundResult {
    /// Items settled (sent or trashed).
    pub settled: u64,
    /// The authority cannot be reached (or stalled): why.
    pub unreachable: Option<String>,
    /// Requests were stopped (cancelled, or `--max-wait` ran out).
    pub interrupted: bool,
}

impl RoundResult {
    fn count(&mut self, settled: Settled) {
        match settled {
            Settled::Done | Settled::Trashed => self.settled += 1,
            Settled::Later => {}
            Settled::Unreachable(r) => {
                self.unreachable.get_or_insert(r);
            }
            Settled::Interrupted => self.interrupted = true,
        }
    }
}

impl Engine {
    /// One round; `true` when it did anything. `stop` is asked between
    /// items and while requests are in flight: once it says stop, nothing
    /// more is claimed, items not yet handed to the target are put back,
    /// requests in flight are interrupted (their items go back too), and
    /// the round ends.
    pub(super) fn round(&self, lane: &mut Lane, run: &mut Run, stop: &dyn Progress) -> EngineResult<bool> {
        if !self.probe(lane, run)? {
            return Ok(false);
        }
        let mut refilled = false;
        if lane.backlog.is_empty() {
            self.refill(lane)?;
            if lane.backlog.is_empty() {
                // The drain is over.
                if let Some(t) = &lane.target {
                    t.forget_prefetch();
                }
                return Ok(false);
            }
            refilled = true;
        }
        if lane.target.is_none() {
            match self.open_lane_target(lane) {
                Ok(()) => {}
                Err(e) if e.class == ErrorClass::Permanent => {
                    // A configuration problem (token file, CA bundle): every
                    // item would fail the same way. Keep them; report.
                    lane.given_up = true;
                    lane.stats.incomplete = Some(e.message.clone());
                    run.log(&format!("{}: {}", lane.authority.name, e.message));
                    return Ok(false);
                }
                Err(e) if e.class == ErrorClass::Interrupted => {
                    self.interrupted(lane, run);
                    return Ok(false);
                }
                Err(e) => {
                    let reason = if e.timed_out {
                        format!("stalled: {}", e.message)
                    } else {
                        e.message.clone()
                    };
                    self.pause(lane, &reason, run)?;
                    return Ok(false);
                }
            }
        }
        if refilled && let Some(t) = &lane.target {
            // A large drain: list the target once instead of one lookup
            // per item, when that is cheaper (the target decides).
            let paths = lane.authority.mapper.user_paths();
            match t.prefetch(lane.backlog.len(), &paths) {
                Ok(true) => run.log(&format!(
                    "{}: listed the target for a drain of {} item(s)",
                    lane.authority.name,
                    lane.backlog.len()
                )),
                Ok(false) => {}
                Err(e) => run.log(&format!(
                    "{}: listing the target failed, looking objects up one by one: {}",
                    lane.authority.name, e.message
                )),
            }
        }
        if let Some(t) = &lane.target {
            lane.arm(t.as_ref());
        }
        let first = lane.backlog.front().map(|(n, _)| phase(n)).unwrap_or(b'9');
        let t0 = Instant::now();
        let trashed_before = lane.stats.trashed;
        // Remote targets stream even with one worker: the stream checks
        // `stop` between items, a batch only at its end.
        let result = if lane.target.as_ref().is_some_and(|t| t.parallel()) {
            self.stream(lane, first, run, stop)?
        } else {
            self.batch(lane, first, run)?
        };
        if let Some(reason) = &result.unreachable {
            self.pause(lane, reason, run)?;
        }
        if result.unreachable.is_some() || result.interrupted {
            // What was claimed is back in the folder.
            lane.backlog.clear();
        }
        if result.interrupted && !stop.cancelled() {
            self.interrupted(lane, run);
        }
        self.state
            .sync_failed(&lane.authority.name, lane.stats.trashed - trashed_before)?;
        if result.settled > 0 {
            let secs = t0.elapsed().as_secs_f64().max(1e-6);
            self.state
                .sync_sent(&lane.authority.name, result.settled, result.settled as f64 / secs)?;
        }
        Ok(true)
    }

    /// Opens the lane's target and learns what it supports; the mapping
    /// then leaves out what the target does not declare.
    fn open_lane_target(&self, lane: &mut Lane) -> Result<(), TargetError> {
        let target = lane.authority.open_target(self)?;
        lane.arm(target.as_ref());
        target.discover()?;
        if let Ok(a) = self.authority(&lane.authority.name) {
            lane.authority = a;
        }
        lane.target = Some(target);
        Ok(())
    }

    /// `--max-wait` ran out while requests were in flight.
    fn interrupted(&self, lane: &mut Lane, run: &mut Run) {
        lane.given_up = true;
        let why = format!(
            "no answer from the target within --max-wait ({:.0} s); the items in flight went back to the queue",
            lane.max_wait.as_secs_f64()
        );
        run.log(&format!("{}: {why}", lane.authority.name));
        lane.stats.incomplete = Some(why);
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
    fn batch(&self, lane: &mut Lane, phase_of: u8, run: &mut Run) -> EngineResult<RoundResult> {
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
        let mut out = RoundResult::default();
        let mut done = Vec::with_capacity(prepared.len());
        let mut stalled = Stalled::default();
        for p in prepared {
            let result = match &p.desired {
                Ok(_) => results
                    .next()
                    .unwrap_or_else(|| Err(TargetError::new(ErrorClass::Unreachable, "no target"))),
                Err(e) => Err(e.clone()),
            };
            let Some((p, result)) = stalled.sort(p, result) else {
                continue;
            };
            out.count(self.settle(lane, p, result, run, Some(&mut done))?);
        }
        stalled.settle(self, lane, run, &mut out)?;
        q.complete_later(done, &mut lane.reaper).map_err(io_error(q.root()))?;
        Ok(out)
    }

    /// Remote targets: workers send while this thread claims, prepares and
    /// settles.
    fn stream(&self, lane: &mut Lane, phase_of: u8, run: &mut Run, stop: &dyn Progress) -> EngineResult<RoundResult> {
        let Some(target) = lane.target.take() else {
            return Ok(RoundResult::default());
        };
        let workers = lane.workers;
        let (job_tx, job_rx) = mpsc::sync_channel::<(usize, Desired)>(workers);
        let job_rx = Arc::new(Mutex::new(job_rx));
        // `None`: not sent, because the sync is stopping (put it back).
        let (done_tx, done_rx) = mpsc::channel::<(usize, Option<Result<Applied, TargetError>>)>();
        let stopping = AtomicBool::new(false);
        let started = Instant::now();
        lane.arm(target.as_ref());
        let result = std::thread::scope(|s| -> EngineResult<RoundResult> {
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
            let mut out = RoundResult::default();
            let mut next_id = 0usize;
            let mut feeding = true;
            let mut failure: Option<EngineError> = None;
            let mut stalled = Stalled::default();
            loop {
                // Keep every worker busy plus one item waiting for each.
                while feeding && in_flight.len() < workers * 2 {
                    if stop.cancelled() {
                        stopping.store(true, Ordering::SeqCst);
                    }
                    if out.unreachable.is_some()
                        || out.interrupted
                        || started.elapsed() > ROUND
                        || stopping.load(Ordering::SeqCst)
                    {
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
                            out.count(self.settle(lane, p, Err(e), run, None)?);
                        }
                    }
                }
                if in_flight.is_empty() {
                    break;
                }
                // Wait for a result, watching for a stop meanwhile: the
                // items still waiting for a worker are then put back, and
                // the requests in flight are interrupted.
                let (i, result) = match done_rx.recv_timeout(POLL) {
                    Ok(r) => r,
                    Err(mpsc::RecvTimeoutError::Timeout) => {
                        if stop.cancelled() {
                            stopping.store(true, Ordering::SeqCst);
                            feeding = false;
                            if let Some(i) = target.interrupt() {
                                i.stop();
                            }
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
                let Some((p, result)) = stalled.sort(p, result) else {
                    continue;
                };
                out.count(self.settle(lane, p, result, run, None)?);
                lane.arm(target.as_ref());
            }
            drop(job_tx);
            stalled.settle(self, lane, run, &mut out)?;
            match failure {
                Some(e) => Err(e),
                None => Ok(out),
            }
        });
        lane.target = Some(target);
        result
    }
}

/// How often the sender looks at the cancel flag while requests are in
/// flight.
const POLL: Duration = Duration::from_millis(50);

/// The timed-out items of a round: settled (attempts spent) only when the
/// target answered anything else in the round; when it answered nothing,
/// they go back untouched and the authority is paused, like an
/// unreachable one.
#[derive(Default)]
struct Stalled {
    items: Vec<(Prepared, TargetError)>,
    answered: bool,
}

impl Stalled {
    /// Keeps a timed-out item aside; anything else is for settling now.
    fn sort(
        &mut self,
        p: Prepared,
        result: Result<Applied, TargetError>,
    ) -> Option<(Prepared, Result<Applied, TargetError>)> {
        match result {
            Err(e) if e.timed_out => {
                self.items.push((p, e));
                None
            }
            Err(e) if e.class == ErrorClass::Interrupted => Some((p, Err(e))),
            other => {
                self.answered = true;
                Some((p, other))
            }
        }
    }

    fn settle(self, engine: &Engine, lane: &mut Lane, run: &mut Run, out: &mut RoundResult) -> EngineResult<()> {
        if self.items.is_empty() {
            return Ok(());
        }
        // One request alone timing out proves little: it is retried.
        if self.answered || self.items.len() < 2 {
            for (p, e) in self.items {
                out.count(engine.settle(lane, p, Err(e), run, None)?);
            }
            return Ok(());
        }
        let n = self.items.len();
        let example = self.items[0].1.message.clone();
        for (p, _) in self.items {
            engine.put_back(lane, p)?;
        }
        out.unreachable.get_or_insert(format!(
            "stalled: {n} request(s) got no answer within timeout_seconds ({:.0} s) and none was answered \
             ({example})",
            lane.authority.config.timeout_seconds
        ));
        Ok(())
    }
}
