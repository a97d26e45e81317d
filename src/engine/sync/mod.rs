//! The sync pipeline (the ID connector): every directory change in the
//! journal reaches every remote authority that syncs one of the object's
//! schools.
//!
//! ```text
//! journal ──distributor──▶ queues/out/<authority>/*.json ──sender──▶ target
//!                                  │  retry/  claimed/                (scim, embedded; ldap later)
//!                                  └─ trash/ ◀── given up (error, status, attempts, payload)
//! ```
//!
//! * [`distributor`]: journal → queues, per-authority cursors, coalescing.
//! * [`queue`] and [`item`]: the files, atomic writes and claims.
//! * [`sender`]: the sync loop, probes and pauses; `worker`: one round of
//!   level-triggered sending and settling; [`backoff`].
//! * [`mapping`]: directory object → what the authority should hold.
//! * [`target`]: the SCIM and embedded targets behind one trait.
//! * [`trash`], [`schedule`] (schedule and resync), [`daemon`].
//! * [`admin`]: pause and resume by hand, a user's items.
//! * [`authority`]: configured authorities and their status views;
//!   [`pause`]: cursors and pause state in `state.sqlite`; [`assign`]:
//!   schools to sync (TOML plus data-dir records).
//! * [`verify`]: what an authority should hold against what it holds, and
//!   the fix; [`filter`]: RFC 4515 filters over the model's attributes.

pub mod admin;
pub mod assign;
pub mod assign_preview;
pub mod authority;
pub mod backoff;
pub mod daemon;
pub mod distributor;
pub mod filter;
pub mod holdings;
pub mod item;
pub mod mapping;
pub mod pause;
pub mod queue;
pub mod queue_items;
pub mod schedule;
pub mod sender;
mod settle;
pub mod spent;
pub mod target;
pub mod trash;
pub mod verify;
mod worker;

pub use admin::UserSyncItem;
pub use authority::{Authority, AuthorityView, QueueStatus};
pub use distributor::Distributed;
pub use schedule::Scheduled;
pub use sender::{AuthoritySync, SyncOptions, SyncOutcome};
pub use trash::{TrashDetail, TrashEntry};

use super::{Engine, EngineResult, io_error};
use chrono::{DateTime, Utc};
use queue::ItemDir;
use serde::Serialize;

/// One waiting item, for `queue show` and the console.
#[derive(Clone, Debug, Serialize)]
pub struct QueueItemView {
    pub file: String,
    /// `pending` or `retrying`.
    pub state: &'static str,
    pub object: String,
    pub reason: item::Reason,
    pub enqueued_at: DateTime<Utc>,
    pub attempts: u32,
    pub last_error: Option<String>,
    pub not_before: Option<DateTime<Utc>>,
}

impl Engine {
    /// `queue show AUTHORITY`: the waiting items, in send order.
    pub fn queue_show(&self, authority: &str) -> EngineResult<Vec<QueueItemView>> {
        let a = self.authority(authority)?;
        let mut out = Vec::new();
        for (dir, state) in [(ItemDir::Pending, "pending"), (ItemDir::Retry, "retrying")] {
            for file in a.queue.names(dir).map_err(io_error(a.queue.root()))? {
                match a.queue.read(dir, &file) {
                    Ok(item) => out.push(QueueItemView {
                        file,
                        state,
                        object: item.object.to_string(),
                        reason: item.reason,
                        enqueued_at: item.enqueued_at,
                        attempts: item.attempts,
                        last_error: item.last_error.as_deref().map(target::cap_text),
                        not_before: item.not_before,
                    }),
                    // Claimed by a sender between listing and reading.
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(io_error(&a.queue.item_path(dir, &file))(e)),
                }
            }
        }
        out.sort_by(|a, b| a.file.cmp(&b.file));
        Ok(out)
    }
}
