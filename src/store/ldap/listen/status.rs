//! The listener's status as any process of the data dir sees it (`info`,
//! `authorities list`, the console): whether a listener runs (it holds the
//! data dir's lock), whether it is connected, how far behind the server it
//! is, and how old the stored cookie is.

use super::lock_path;
use crate::store::StoreResult;
use chrono::{DateTime, Utc};
use rusqlite::{Connection, OpenFlags, OptionalExtension};
use serde::Serialize;
use std::fs::File;
use std::path::Path;

/// A heartbeat older than this means the listener is stuck or gone.
const STALE_SECONDS: f64 = 10.0;

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct ListenerStatus {
    /// A listener holds this data dir's lock (in the daemon or `rollcall listen`).
    pub running: bool,
    /// Running, connected to the server and alive (recent heartbeat).
    pub connected: bool,
    /// The server it follows (`listen_url`, else `url`).
    pub url: String,
    /// `connecting`, `refreshing`, `persisting`, `disconnected` or `stopped`.
    pub phase: String,
    /// Since when it is connected (or trying to be).
    pub since: Option<String>,
    /// Seconds from the newest change's commit on the server to its journal entry.
    pub lag_seconds: Option<f64>,
    /// Seconds since the stored cookie (its place in the stream) was written.
    pub cookie_age_seconds: Option<f64>,
    /// When the newest change it decided was made on the server.
    pub last_change_at: Option<String>,
    /// Journal entries it wrote since it started.
    pub journaled: u64,
    /// The last error, while disconnected.
    pub error: Option<String>,
}

fn seconds_since(t: Option<String>, now: DateTime<Utc>) -> Option<f64> {
    let t = DateTime::parse_from_rfc3339(&t?).ok()?;
    Some(((now - t.with_timezone(&Utc)).num_milliseconds() as f64 / 1000.0).max(0.0))
}

/// Whether a process holds the listener lock of this journal's data dir.
fn lock_held(journal_path: &Path) -> bool {
    let Ok(f) = File::open(lock_path(journal_path)) else {
        return false;
    };
    match f.try_lock_shared() {
        Ok(()) => {
            let _ = f.unlock();
            false
        }
        Err(_) => true,
    }
}

/// The listener status of the data dir whose LDAP journal is
/// `journal_path`; `None` when no listener ever ran there.
pub fn status(journal_path: &Path) -> StoreResult<Option<ListenerStatus>> {
    if !journal_path.exists() {
        return Ok(None);
    }
    let err = |e| crate::store::sqlite::sqlite_err(journal_path, e);
    let conn = Connection::open_with_flags(journal_path, OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(err)?;
    conn.busy_timeout(std::time::Duration::from_secs(5)).map_err(err)?;
    let has_table: bool = conn
        .query_row(
            "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE name = 'listen_status')",
            [],
            |r| r.get(0),
        )
        .map_err(err)?;
    if !has_table {
        return Ok(None);
    }
    type Row = (
        String,
        bool,
        String,
        String,
        String,
        Option<String>,
        Option<i64>,
        i64,
        Option<String>,
    );
    let row: Option<Row> = conn
        .query_row(
            "SELECT url, connected, phase, since, heartbeat_at, last_change_at, lag_ms, journaled, error \
             FROM listen_status WHERE id = 1",
            [],
            |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                    r.get(7)?,
                    r.get(8)?,
                ))
            },
        )
        .optional()
        .map_err(err)?;
    let Some((url, connected, phase, since, heartbeat, last_change_at, lag_ms, journaled, error)) = row else {
        return Ok(None);
    };
    let cookie_at: Option<String> = conn
        .query_row("SELECT cookie_at FROM listen_state WHERE id = 1", [], |r| r.get(0))
        .optional()
        .map_err(err)?
        .flatten();
    let now = Utc::now();
    let running = lock_held(journal_path);
    let fresh = seconds_since(Some(heartbeat), now).is_some_and(|s| s < STALE_SECONDS);
    let phase = if running { phase } else { "stopped".to_string() };
    Ok(Some(ListenerStatus {
        running,
        connected: running && connected && fresh,
        url,
        phase,
        since: Some(since),
        lag_seconds: lag_ms.map(|ms| ms as f64 / 1000.0),
        cookie_age_seconds: seconds_since(cookie_at, now),
        last_change_at,
        journaled: journaled.max(0) as u64,
        error: error.filter(|_| running),
    }))
}
