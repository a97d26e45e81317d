//! What an admin does to the sync by hand, beside the CLI's queue and trash
//! commands: pause an authority (held until resumed, never probed), resume
//! it (paused by an admin or found unreachable), and look up the queue and
//! trash items of one user across every authority. Pause and resume are
//! audited and refused in read-only mode.

use super::item::file_name;
use super::queue::ItemDir;
use crate::engine::{Engine, EngineError, EngineResult, io_error};
use crate::model::ObjectRef;
use chrono::{DateTime, Utc};
use serde::Serialize;

/// One item of a user in some authority's queue or trash.
#[derive(Clone, Debug, Serialize)]
pub struct UserSyncItem {
    pub authority: String,
    /// `pending`, `retrying` or `trash`.
    pub state: &'static str,
    /// `AUTHORITY/FILE`, as `trash show|requeue|delete` take it.
    pub item: String,
    pub enqueued_at: DateTime<Utc>,
    pub attempts: u32,
    pub error: Option<String>,
}

impl Engine {
    /// Pauses an authority until an admin resumes it: the sender leaves its
    /// queue alone (a `--once` sync reports it incomplete).
    pub fn authority_pause(&mut self, name: &str, reason: &str) -> EngineResult<()> {
        self.check_writable("authority pause")?;
        self.authority(name)?;
        let by = self.audit.actor().user.clone();
        let reason = if reason.trim().is_empty() {
            format!("paused by {by}")
        } else {
            reason.trim().to_string()
        };
        self.state.sync_register(name, self.dir.journal_head()?)?;
        self.state.sync_hold(name, &by, &reason)?;
        self.audit.record(
            "authority pause",
            serde_json::json!({"authority": name, "reason": reason}),
            "ok",
        );
        Ok(())
    }

    /// Resumes an authority (paused by an admin, or found unreachable: it
    /// is then tried again at once).
    pub fn authority_resume(&mut self, name: &str) -> EngineResult<bool> {
        self.check_writable("authority resume")?;
        self.authority(name)?;
        let was = self.state.sync_state(name)?.and_then(|s| s.paused).is_some();
        self.state.sync_resume(name)?;
        // What the server supports may have changed while it was away.
        if let Err(e) = self.authority_refresh(name) {
            tracing::warn!(authority = name, error = %e, "asking the resumed authority what it supports failed");
        }
        self.audit.record(
            "authority resume",
            serde_json::json!({"authority": name, "was_paused": was}),
            "ok",
        );
        Ok(was)
    }

    /// `authorities refresh NAME`: asks the authority's server again what it
    /// supports (SCIM discovery) and keeps the answer in the data dir; the
    /// authority as it now maps.
    pub fn authority_refresh(&self, name: &str) -> EngineResult<super::AuthorityView> {
        let a = self.authority(name)?;
        let target = a.open_target(self)?;
        target.rediscover()?;
        self.authority_show(name)
    }

    /// A paused (unreachable) authority is probed at the next sync round
    /// instead of after its back-off ("drain now").
    pub fn authority_probe_now(&mut self, name: &str) -> EngineResult<()> {
        self.authority(name)?;
        Ok(self.state.sync_probe_now(name)?)
    }

    /// The user's items waiting or trashed in every authority: item files
    /// are named after their object, so this reads at most three files per
    /// authority.
    pub fn user_sync_items(&self, username: &str) -> EngineResult<Vec<UserSyncItem>> {
        let user = self
            .dir
            .user_by_username(username)?
            .ok_or_else(|| EngineError::NotFound(format!("no user '{username}'")))?;
        let file = file_name(&ObjectRef::user(&user.key));
        let mut out = Vec::new();
        for a in self.authorities_selected(None)? {
            for (dir, state) in [
                (ItemDir::Pending, "pending"),
                (ItemDir::Retry, "retrying"),
                (ItemDir::Trash, "trash"),
            ] {
                match a.queue.read(dir, &file) {
                    Ok(item) => out.push(UserSyncItem {
                        authority: a.name.clone(),
                        state,
                        item: format!("{}/{file}", a.name),
                        enqueued_at: item.enqueued_at,
                        attempts: item.failure.as_ref().map(|f| f.attempts).unwrap_or(item.attempts),
                        error: item.failure.map(|f| f.error).or(item.last_error),
                    }),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(io_error(&a.queue.item_path(dir, &file))(e)),
                }
            }
        }
        Ok(out)
    }
}
