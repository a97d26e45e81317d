//! Settling one sent item: sent → gone (a user created only after a retry
//! brings its groups along again); transient failure → back-off or, after
//! `max_attempts`, trash; permanent → trash; unreachable → put back
//! untouched and the authority paused; interrupted (SIGTERM, the end of a
//! `--once` wait) → put back untouched. Error texts are capped before they
//! reach an item, the trash or the run log: a server's "detail" may be
//! megabytes.

use super::backoff;
use super::item::{Failure, QueueItem, Reason, file_name};
use super::mapping::Desired;
use super::queue::Claim;
use super::sender::Lane;
use super::target::{Applied, ErrorClass, TargetError, cap_text};
use crate::engine::runs::Run;
use crate::engine::{Engine, EngineResult, io_error};
use chrono::Utc;
use std::time::{Instant, SystemTime};

/// A claimed item and what to send for it (or why it cannot be sent).
pub(super) struct Prepared {
    pub claim: Claim,
    pub desired: Result<Desired, TargetError>,
}

/// How an item was settled.
pub(super) enum Settled {
    Done,
    Later,
    Trashed,
    /// Put back: the authority cannot be reached.
    Unreachable(String),
    /// Put back: rollcall stopped the request.
    Interrupted,
}

impl Engine {
    /// Puts an item back untouched (no attempt spent).
    pub(super) fn put_back(&self, lane: &Lane, p: Prepared) -> EngineResult<()> {
        let q = &lane.authority.queue;
        q.unclaim(&p.claim).map_err(io_error(q.root()))
    }

    pub(super) fn trash_unreadable(
        &self,
        lane: &mut Lane,
        name: &str,
        message: &str,
        run: &mut Run,
    ) -> EngineResult<()> {
        let now = Utc::now();
        let message = cap_text(message);
        let mut item = QueueItem::new(
            crate::model::ObjectRef::school("unreadable-item"),
            Vec::<String>::new(),
            Reason::Requeue,
        );
        item.failure = Some(Failure {
            class: ErrorClass::Permanent.as_str().into(),
            error: message.clone(),
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
    pub(super) fn settle(
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
                lane.answered_at = Instant::now();
                if applied == Applied::Created && lane.authority.config.kind.drops_unknown_members() {
                    // A new account: its groups may have gone out without it
                    // (members the target does not hold are left out), or
                    // it replaces one deleted meanwhile (a moved externalId),
                    // so they go again — coalesced with those still waiting,
                    // and one waiting only for its members goes now — except
                    // those in trash, which wait for the admin's requeue.
                    let again: Vec<_> = self
                        .companions(&claim.item.object, Reason::Change)?
                        .into_iter()
                        .filter(|i| !q.in_trash(&file_name(&i.object)))
                        .collect();
                    q.enqueue_many(&again).map_err(io_error(q.root()))?;
                    for i in &again {
                        if q.wake(&file_name(&i.object)).map_err(io_error(q.root()))? {
                            lane.next_retry = Some(SystemTime::now());
                        }
                    }
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
                return Ok(Settled::Unreachable(cap_text(&e.message)));
            }
            Err(e) if e.class == ErrorClass::Interrupted => {
                q.unclaim(&claim).map_err(io_error(q.root()))?;
                return Ok(Settled::Interrupted);
            }
            Err(e) => e,
        };
        if !e.timed_out {
            lane.answered_at = Instant::now();
        }
        let message = cap_text(&e.message);
        let mut item = claim.item.clone();
        let now = Utc::now();
        // A group waiting for members whose own items are still on their
        // way (pending or in back-off) waits with them: no attempt spent,
        // so it cannot reach trash before they do, and it goes again only
        // after the first of them has had its next chance.
        let members_next = if e.class == ErrorClass::Transient {
            members_next_chance(&q, &e.waiting_for)
        } else {
            None
        };
        let waiting = members_next.is_some();
        item.waiting_for_members = waiting;
        if !waiting {
            item.attempts += 1;
        }
        item.first_failure.get_or_insert(now);
        item.last_failure = Some(now);
        item.last_error = Some(message.clone());
        item.last_status = e.http_status;
        let exhausted = !waiting && item.attempts >= cfg.max_attempts;
        if e.class == ErrorClass::Transient && !exhausted {
            let mut wait = backoff::delay(&cfg.retry, item.attempts.max(1));
            if let Some(after) = e.retry_after {
                wait = wait.max(after);
            }
            if let Some(next) = members_next {
                let until = next.duration_since(SystemTime::from(now)).unwrap_or_default();
                wait += until;
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
            format!("{message} (gave up after {} attempts)", item.attempts)
        } else {
            message
        };
        item.not_before = None;
        item.waiting_for_members = false;
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

/// The earliest next chance of these users' (external ids) items in `q`
/// (pending, being sent, or in back-off); `None` when none of them has one.
fn members_next_chance(q: &super::queue::Queue, external_ids: &[String]) -> Option<SystemTime> {
    if external_ids.is_empty() {
        return None;
    }
    let now = SystemTime::now();
    let claimed = q.claimed_names().unwrap_or_default();
    external_ids
        .iter()
        .filter_map(|e| format!("user:{e}").parse::<crate::model::ObjectRef>().ok())
        .filter_map(|o| q.next_chance(&file_name(&o), &claimed, now))
        .min()
}
