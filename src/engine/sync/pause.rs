//! The sync pipeline's rows in `state.sqlite`: each authority's journal
//! cursor, whether it is paused (unreachable) and when it is probed next,
//! and what its last sync did. Kept in the shared state file so a daemon
//! and a console see the same thing.

use crate::engine::state::{Migration, StateDb, StateError};
use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, params};
use serde::Serialize;

pub const MIGRATIONS: &[Migration] = &[
    Migration {
        name: "sync-1",
        sql: r#"
CREATE TABLE sync_authorities (
    authority      TEXT PRIMARY KEY,
    cursor         INTEGER NOT NULL,
    paused_since   TEXT,
    paused_reason  TEXT,
    next_probe     TEXT,
    probe_failures INTEGER NOT NULL DEFAULT 0,
    last_sent_at   TEXT,
    sent_total     INTEGER NOT NULL DEFAULT 0,
    last_rate      REAL
);
CREATE TABLE sync_daemon (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"#,
    },
    // An admin's pause (`held_by`): never probed, only an admin resumes it.
    Migration {
        name: "sync-2-held",
        sql: "ALTER TABLE sync_authorities ADD COLUMN held_by TEXT;",
    },
];

/// An authority that could not be reached.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Paused {
    pub since: DateTime<Utc>,
    pub reason: String,
    pub next_probe: DateTime<Utc>,
    pub probe_failures: u32,
    /// Paused by an admin (who): not probed; stays paused until resumed.
    pub held_by: Option<String>,
}

/// What the state knows of one authority.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct AuthorityState {
    pub cursor: u64,
    pub paused: Option<Paused>,
    pub last_sent_at: Option<DateTime<Utc>>,
    pub sent_total: u64,
    /// Items per second of the last sync round that sent something.
    pub last_rate: Option<f64>,
}

fn time(s: Option<String>) -> Option<DateTime<Utc>> {
    s.and_then(|s| DateTime::parse_from_rfc3339(&s).ok())
        .map(|t| t.with_timezone(&Utc))
}

fn stamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

impl StateDb {
    /// Registers an authority the first time it is seen: its cursor starts
    /// at `head`, so it receives the changes from now on (`resync` sends
    /// what existed before).
    pub fn sync_register(&self, authority: &str, head: u64) -> Result<bool, StateError> {
        let n = self
            .conn
            .execute(
                "INSERT OR IGNORE INTO sync_authorities (authority, cursor) VALUES (?1, ?2)",
                params![authority, head as i64],
            )
            .map_err(|e| self.err(e))?;
        Ok(n > 0)
    }

    pub fn sync_state(&self, authority: &str) -> Result<Option<AuthorityState>, StateError> {
        self.conn
            .query_row(
                "SELECT cursor, paused_since, paused_reason, next_probe, probe_failures, last_sent_at, \
                 sent_total, last_rate, held_by FROM sync_authorities WHERE authority = ?1",
                [authority],
                |r| {
                    let since = time(r.get(1)?);
                    let paused = since.map(|since| Paused {
                        since,
                        reason: r.get::<_, Option<String>>(2).ok().flatten().unwrap_or_default(),
                        next_probe: time(r.get(3).ok().flatten()).unwrap_or(since),
                        probe_failures: r.get::<_, i64>(4).unwrap_or(0) as u32,
                        held_by: r.get::<_, Option<String>>(8).ok().flatten(),
                    });
                    Ok(AuthorityState {
                        cursor: r.get::<_, i64>(0)? as u64,
                        paused,
                        last_sent_at: time(r.get(5)?),
                        sent_total: r.get::<_, i64>(6)? as u64,
                        last_rate: r.get(7)?,
                    })
                },
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    /// Moves the cursor forward (never back: two distributors may race).
    pub fn sync_advance(&self, authority: &str, seq: u64) -> Result<(), StateError> {
        self.conn
            .execute(
                "UPDATE sync_authorities SET cursor = MAX(cursor, ?2) WHERE authority = ?1",
                params![authority, seq as i64],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Marks an authority unreachable (or records another failed probe).
    pub fn sync_pause(
        &self,
        authority: &str,
        reason: &str,
        next_probe: DateTime<Utc>,
        failures: u32,
    ) -> Result<(), StateError> {
        self.conn
            .execute(
                "UPDATE sync_authorities SET paused_since = COALESCE(paused_since, ?2), paused_reason = ?3, \
                 next_probe = ?4, probe_failures = ?5 WHERE authority = ?1",
                params![authority, stamp(Utc::now()), reason, stamp(next_probe), failures],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// An admin's pause: kept until [`Self::sync_resume`], never probed.
    pub fn sync_hold(&self, authority: &str, by: &str, reason: &str) -> Result<(), StateError> {
        self.conn
            .execute(
                "UPDATE sync_authorities SET paused_since = COALESCE(paused_since, ?2), paused_reason = ?3, \
                 held_by = ?4 WHERE authority = ?1",
                params![authority, stamp(Utc::now()), reason, by],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Probe a paused (unreachable) authority at the next chance.
    pub fn sync_probe_now(&self, authority: &str) -> Result<(), StateError> {
        self.conn
            .execute(
                "UPDATE sync_authorities SET next_probe = ?2 WHERE authority = ?1 AND paused_since IS NOT NULL",
                params![authority, stamp(Utc::now())],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    pub fn sync_resume(&self, authority: &str) -> Result<(), StateError> {
        self.conn
            .execute(
                "UPDATE sync_authorities SET paused_since = NULL, paused_reason = NULL, next_probe = NULL, \
                 probe_failures = 0, held_by = NULL WHERE authority = ?1",
                [authority],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Counts items sent and the rate of the round that sent them.
    pub fn sync_sent(&self, authority: &str, sent: u64, rate: f64) -> Result<(), StateError> {
        if sent == 0 {
            return Ok(());
        }
        self.conn
            .execute(
                "UPDATE sync_authorities SET sent_total = sent_total + ?2, last_sent_at = ?3, last_rate = ?4 \
                 WHERE authority = ?1",
                params![authority, sent as i64, stamp(Utc::now()), rate],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    pub fn daemon_get(&self, key: &str) -> Result<Option<String>, StateError> {
        self.conn
            .query_row("SELECT value FROM sync_daemon WHERE key = ?1", [key], |r| r.get(0))
            .optional()
            .map_err(|e| self.err(e))
    }

    pub fn daemon_set(&self, key: &str, value: &str) -> Result<(), StateError> {
        self.conn
            .execute(
                "INSERT INTO sync_daemon (key, value) VALUES (?1, ?2) \
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                params![key, value],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }
}
