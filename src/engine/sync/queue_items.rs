//! An authority's waiting items as an admin sees them, and what an admin
//! does to one: every item with its object (and the user's username), why it
//! was queued, attempts, when it is tried next, the last error and who is
//! sending it right now; one item with what would be sent now; and the
//! actions — retry now (no more back-off), move to the trash (given up by
//! hand), schedule afresh (attempts start over). Actions claim the item
//! first, so a sender working at the same time never sees it half-moved;
//! they are audited and refused in read-only mode.

use super::item::{Failure, QueueItem, Reason, valid_file_name};
use super::queue::{Claim, ItemDir};
use crate::engine::{Engine, EngineError, EngineResult, io_error};
use crate::model::{ObjectRef, UserKey};
use chrono::{DateTime, Utc};
use serde::Serialize;

/// One waiting item.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct QueueItemRow {
    /// `AUTHORITY/FILE`, as the actions take it.
    pub item: String,
    pub authority: String,
    pub file: String,
    /// `pending`, `retrying` (in back-off) or `sending` (claimed).
    pub state: &'static str,
    pub object: String,
    /// The user's username (users only; none when the user is gone).
    pub username: Option<String>,
    pub reason: Reason,
    pub enqueued_at: DateTime<Utc>,
    pub attempts: u32,
    /// In back-off: not sent before this.
    pub next_retry: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub last_status: Option<u16>,
    /// Being sent: who holds the claim.
    pub claimed_by: Option<String>,
}

/// `queue_items`: the first items of one authority's queue and how many
/// there are in all.
#[derive(Clone, Debug, Serialize)]
pub struct QueueItems {
    pub authority: String,
    pub total: u64,
    pub items: Vec<QueueItemRow>,
}

/// One item: the row, the file, and what would be sent for its object now.
#[derive(Clone, Debug, Serialize)]
pub struct QueueItemDetail {
    pub row: QueueItemRow,
    pub raw: QueueItem,
    /// The mapped resource the sender would send now (or the mapping error).
    pub now: serde_json::Value,
}

/// Users' usernames are looked up for this many items at most.
const USERNAMES: usize = 2000;

fn row(authority: &str, file: &str, state: &'static str, item: &QueueItem) -> QueueItemRow {
    QueueItemRow {
        item: format!("{authority}/{file}"),
        authority: authority.to_string(),
        file: file.to_string(),
        state,
        object: item.object.to_string(),
        username: None,
        reason: item.reason,
        enqueued_at: item.enqueued_at,
        attempts: item.attempts,
        next_retry: item.not_before,
        last_error: item.last_error.clone(),
        last_status: item.last_status,
        claimed_by: None,
    }
}

impl Engine {
    fn username_of(&self, object: &ObjectRef) -> EngineResult<Option<String>> {
        Ok(match object {
            ObjectRef::User { source_uid, record_uid } => self
                .dir
                .user(&UserKey::new(source_uid.clone(), record_uid.clone()))?
                .map(|u| u.username),
            _ => None,
        })
    }

    /// The items waiting in one authority's queue (sending, pending, in
    /// back-off), at most `limit` of them.
    pub fn queue_items(&self, authority: &str, limit: usize) -> EngineResult<QueueItems> {
        let a = self.authority(authority)?;
        let mut items = Vec::new();
        let mut total = 0u64;
        let claimed = a.queue.claimed_items().map_err(io_error(a.queue.root()))?;
        for (owner, file, item) in claimed {
            total += 1;
            if items.len() < limit
                && let Some(item) = item
            {
                let mut r = row(&a.name, &file, "sending", &item);
                r.claimed_by = Some(owner);
                items.push((r, item.object));
            }
        }
        for (dir, state) in [(ItemDir::Pending, "pending"), (ItemDir::Retry, "retrying")] {
            let names = a.queue.names(dir).map_err(io_error(a.queue.root()))?;
            total += names.len() as u64;
            for file in names {
                if items.len() >= limit {
                    break;
                }
                match a.queue.read(dir, &file) {
                    Ok(item) => {
                        let mut r = row(&a.name, &file, state, &item);
                        if dir == ItemDir::Retry {
                            // The retry file's time is when it may go again.
                            r.next_retry = std::fs::metadata(a.queue.item_path(dir, &file))
                                .ok()
                                .and_then(|m| m.modified().ok())
                                .map(DateTime::<Utc>::from)
                                .or(item.not_before);
                        } else {
                            r.next_retry = None;
                        }
                        items.push((r, item.object));
                    }
                    // Taken by a sender between listing and reading.
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => total -= 1,
                    Err(e) => {
                        let mut r = QueueItemRow {
                            item: format!("{}/{file}", a.name),
                            authority: a.name.clone(),
                            file: file.clone(),
                            state,
                            object: String::new(),
                            username: None,
                            reason: Reason::Change,
                            enqueued_at: Utc::now(),
                            attempts: 0,
                            next_retry: None,
                            last_error: Some(format!("unreadable: {e}")),
                            last_status: None,
                            claimed_by: None,
                        };
                        r.object = "?".into();
                        items.push((r, ObjectRef::school("?")));
                    }
                }
            }
        }
        let mut out = Vec::with_capacity(items.len());
        for (i, (mut r, object)) in items.into_iter().enumerate() {
            if i < USERNAMES && r.object != "?" {
                r.username = self.username_of(&object)?;
            }
            out.push(r);
        }
        Ok(QueueItems {
            authority: a.name.clone(),
            total,
            items: out,
        })
    }

    /// `AUTHORITY/FILE` → the authority and the file name.
    fn queue_ref(&self, spec: &str) -> EngineResult<(super::Authority, String)> {
        let bad = || EngineError::Usage(format!("'{spec}' is not a queue item (expected AUTHORITY/FILE.json)"));
        let (authority, file) = spec.split_once('/').ok_or_else(bad)?;
        if !valid_file_name(file) {
            return Err(bad());
        }
        Ok((self.authority(authority)?, file.to_string()))
    }

    /// One waiting item and what would be sent for its object now.
    pub fn queue_item_show(&self, spec: &str) -> EngineResult<QueueItemDetail> {
        let (a, file) = self.queue_ref(spec)?;
        let found = [(ItemDir::Pending, "pending"), (ItemDir::Retry, "retrying")]
            .into_iter()
            .find_map(|(dir, state)| a.queue.read(dir, &file).ok().map(|i| (state, i)));
        let (state, item) = match found {
            Some(f) => f,
            None => {
                let claimed = a.queue.claimed_items().map_err(io_error(a.queue.root()))?;
                match claimed.into_iter().find(|(_, n, _)| *n == file) {
                    Some((_, _, Some(item))) => ("sending", item),
                    _ => {
                        return Err(EngineError::NotFound(format!(
                            "no item '{spec}' waits in the queue (sent or moved meanwhile)"
                        )));
                    }
                }
            }
        };
        let mut r = row(&a.name, &file, state, &item);
        r.username = self.username_of(&item.object)?;
        let now = match a.mapper.desired(self.dir.as_ref(), &item.object, &item.schools) {
            Ok(d) => d.payload(),
            Err(e) => serde_json::json!({"error": e.to_string()}),
        };
        Ok(QueueItemDetail { row: r, raw: item, now })
    }

    /// Claims a waiting item (pending or in back-off) for an admin action.
    fn claim_waiting(&self, a: &super::Authority, file: &str, spec: &str) -> EngineResult<Claim> {
        for from_retry in [false, true] {
            match a.queue.claim(file, from_retry).map_err(io_error(a.queue.root()))? {
                Some(Ok(claim)) => return Ok(claim),
                Some(Err((_, message))) => return Err(EngineError::BadInput(message)),
                None => {}
            }
        }
        Err(EngineError::NotFound(format!(
            "no item '{spec}' waits in the queue (being sent, sent or moved meanwhile)"
        )))
    }

    fn queue_admin(
        &mut self,
        what: &str,
        specs: &[String],
        mut act: impl FnMut(&Self, &super::Authority, Claim) -> EngineResult<()>,
    ) -> EngineResult<Vec<String>> {
        self.check_writable(what)?;
        let mut done = Vec::new();
        for spec in specs {
            let result = self
                .queue_ref(spec)
                .and_then(|(a, file)| self.claim_waiting(&a, &file, spec).map(|c| (a, c)))
                .and_then(|(a, claim)| act(self, &a, claim));
            if let Err(e) = result {
                self.audit.record(
                    what,
                    serde_json::json!({"items": specs, "done": done}),
                    &format!("failed: {e}"),
                );
                return Err(e);
            }
            done.push(spec.clone());
        }
        self.audit.record(what, serde_json::json!({"items": done}), "ok");
        Ok(done)
    }

    /// Sends the items at the next round, their back-off forgotten (their
    /// attempts so far still count).
    pub fn queue_retry_now(&mut self, specs: &[String]) -> EngineResult<Vec<String>> {
        self.queue_admin("queue retry-now", specs, |_, a, claim| {
            a.queue.unclaim(&claim).map_err(io_error(a.queue.root()))
        })
    }

    /// Gives the items up by hand: into the trash, with who did it.
    pub fn queue_to_trash(&mut self, specs: &[String]) -> EngineResult<Vec<String>> {
        let by = self.audit.actor().user.clone();
        self.queue_admin("queue to-trash", specs, move |_, a, claim| {
            let now = Utc::now();
            let mut item = claim.item.clone();
            item.failure = Some(Failure {
                class: "admin".into(),
                error: format!(
                    "moved to the trash by {by}{}",
                    item.last_error
                        .as_deref()
                        .map(|e| format!(" (last error: {e})"))
                        .unwrap_or_default()
                ),
                http_status: item.last_status,
                ldap_code: None,
                attempts: item.attempts,
                first_failure: item.first_failure.unwrap_or(now),
                last_failure: item.last_failure.unwrap_or(now),
                trashed_at: now,
                payload: serde_json::Value::Null,
            });
            a.queue.trash(&claim.name, &item).map_err(io_error(a.queue.root()))
        })
    }

    /// Schedules the items' objects afresh: a new item, attempts from zero,
    /// (a user's groups along with it, as `schedule user` does).
    pub fn queue_afresh(&mut self, specs: &[String]) -> EngineResult<Vec<String>> {
        self.queue_admin("queue afresh", specs, |engine, a, claim| {
            let mut items = vec![claim.item.fresh(Reason::Schedule)];
            items.extend(engine.companions(&claim.item.object, Reason::Schedule)?);
            a.queue.enqueue_many(&items).map_err(io_error(a.queue.root()))?;
            a.queue.complete(&claim).map_err(io_error(a.queue.root()))
        })
    }
}
