//! What the feeds said about each user: the last row received per user,
//! school and scope (the roles the run spoke for: per-role feeds of one
//! school each keep their own row), with the run it came in and a digest of
//! the mapped record.

use super::state::{Migration, StateDb, StateError};
use crate::model::UserKey;
use chrono::Utc;
use rusqlite::{OptionalExtension, params};
use serde::Serialize;
use std::collections::HashMap;
use std::sync::mpsc::Receiver;

pub const MIGRATIONS: &[Migration] = &[
    Migration {
        name: "received-1",
        sql: r#"
CREATE TABLE received (
    source_uid TEXT NOT NULL,
    record_uid TEXT NOT NULL,
    school     TEXT NOT NULL,
    run_id     TEXT NOT NULL,
    line       INTEGER NOT NULL,
    row        TEXT NOT NULL,
    digest     TEXT NOT NULL,
    -- the user's updated_at when the row was recorded: a row whose digest
    -- and user are both unchanged needs no look at the directory
    user_updated_at TEXT NOT NULL,
    at         TEXT NOT NULL,
    PRIMARY KEY (source_uid, school, record_uid)
) WITHOUT ROWID;
CREATE INDEX received_user ON received (source_uid, record_uid);
"#,
    },
    Migration {
        name: "received-history-1",
        sql: r#"
-- rows superseded by a newer one (event 'received') and the runs that
-- removed a user from a school (event 'removed'); the latest rows stay in
-- `received`, so history only grows with changes
CREATE TABLE received_history (
    source_uid TEXT NOT NULL,
    record_uid TEXT NOT NULL,
    school     TEXT NOT NULL,
    event      TEXT NOT NULL,
    run_id     TEXT NOT NULL,
    line       INTEGER,
    row        TEXT,
    at         TEXT NOT NULL
);
CREATE INDEX received_history_user ON received_history (source_uid, record_uid, at);
"#,
    },
    Migration {
        name: "received-2-scope",
        sql: r#"
-- one row per feed: the teachers' and the staff's feed of a school each keep
-- theirs. Rows from before have the scope '' and are replaced by the next
-- run of the school that names the user.
DROP INDEX received_user;
ALTER TABLE received RENAME TO received_1;
CREATE TABLE received (
    source_uid TEXT NOT NULL,
    record_uid TEXT NOT NULL,
    school     TEXT NOT NULL,
    -- the run's roles, comma-separated in role order ("teacher,staff")
    scope      TEXT NOT NULL,
    run_id     TEXT NOT NULL,
    line       INTEGER NOT NULL,
    row        TEXT NOT NULL,
    digest     TEXT NOT NULL,
    user_updated_at TEXT NOT NULL,
    at         TEXT NOT NULL,
    PRIMARY KEY (source_uid, school, scope, record_uid)
) WITHOUT ROWID;
INSERT INTO received (source_uid, record_uid, school, scope, run_id, line, row, digest, user_updated_at, at)
    SELECT source_uid, record_uid, school, '', run_id, line, row, digest, user_updated_at, at FROM received_1;
DROP TABLE received_1;
CREATE INDEX received_user ON received (source_uid, record_uid);
"#,
    },
];

/// The scope key of a run's roles: `teacher`, `student,teacher,…`.
pub fn scope_key(roles: &std::collections::BTreeSet<crate::model::Role>) -> String {
    roles.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(",")
}

/// One received row.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Received {
    pub school: String,
    pub run_id: String,
    pub line: u64,
    /// Column name → value, as in the file.
    pub row: serde_json::Map<String, serde_json::Value>,
    pub digest: String,
    pub at: String,
}

/// A row to remember.
pub struct ReceivedRow<'a> {
    pub key: &'a UserKey,
    pub line: u64,
    pub row: String,
    pub digest: &'a str,
    /// The user's `updated_at` after the run (RFC 3339, as the store keeps it).
    pub user_updated_at: String,
    /// A different row was recorded before: keep that one in the history.
    pub supersedes: bool,
}

/// A user who left this run's scope (the school, or one of its roles there).
pub struct Removal<'a> {
    pub key: &'a UserKey,
}

/// One entry of a user's history: a row a run received, or a run that
/// removed the user from a school.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct HistoryEntry {
    pub at: String,
    pub run_id: String,
    pub school: String,
    /// `received` or `removed`.
    pub event: String,
    pub line: Option<u64>,
    pub row: Option<serde_json::Map<String, serde_json::Value>>,
    /// Whether this is the row the user's school entry holds now.
    pub current: bool,
}

impl StateDb {
    /// Remembers the rows one run received for one school and scope.
    pub fn record_received(
        &mut self,
        run_id: &str,
        school: &str,
        scope: &str,
        rows: &[ReceivedRow<'_>],
    ) -> Result<(), StateError> {
        let (tx, rx) = std::sync::mpsc::channel();
        let _ = tx.send(true);
        self.record_received_when(run_id, school, scope, rows, &[], &rx)
    }

    /// Writes the rows (and moves superseded rows and rows of users who left
    /// the scope to the history) inside a transaction, then commits only
    /// when `go` says so (the directory's write succeeded) and rolls back
    /// otherwise. Lets an import prepare this while the directory is being
    /// written.
    pub fn record_received_when(
        &mut self,
        run_id: &str,
        school: &str,
        scope: &str,
        rows: &[ReceivedRow<'_>],
        removals: &[Removal<'_>],
        go: &Receiver<bool>,
    ) -> Result<(), StateError> {
        let at = Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        let path = self.path_string();
        let err = |source| StateError {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(err)?;
        {
            let mut keep = tx
                .prepare_cached(
                    "INSERT INTO received_history (source_uid, record_uid, school, event, run_id, line, row, at) \
                     SELECT source_uid, record_uid, school, 'received', run_id, line, row, at FROM received \
                     WHERE source_uid = ?1 AND school = ?2 AND scope = ?3 AND record_uid = ?4",
                )
                .map_err(err)?;
            let mut upsert = tx
                .prepare_cached(
                    "INSERT INTO received (source_uid, record_uid, school, scope, run_id, line, row, digest, \
                     user_updated_at, at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) \
                     ON CONFLICT (source_uid, school, scope, record_uid) DO UPDATE SET run_id = excluded.run_id, \
                     line = excluded.line, row = excluded.row, digest = excluded.digest, \
                     user_updated_at = excluded.user_updated_at, at = excluded.at",
                )
                .map_err(err)?;
            for r in rows {
                if r.supersedes {
                    keep.execute(params![r.key.source_uid, school, scope, r.key.record_uid])
                        .map_err(err)?;
                }
                upsert
                    .execute(params![
                        r.key.source_uid,
                        r.key.record_uid,
                        school,
                        scope,
                        run_id,
                        r.line as i64,
                        r.row,
                        r.digest,
                        r.user_updated_at,
                        at
                    ])
                    .map_err(err)?;
            }
            let mut gone = tx
                .prepare_cached(
                    "DELETE FROM received WHERE source_uid = ?1 AND school = ?2 AND scope = ?3 AND record_uid = ?4",
                )
                .map_err(err)?;
            let mut removed = tx
                .prepare_cached(
                    "INSERT INTO received_history (source_uid, record_uid, school, event, run_id, line, row, at) \
                     VALUES (?1, ?2, ?3, 'removed', ?4, NULL, NULL, ?5)",
                )
                .map_err(err)?;
            for r in removals {
                for scope in [scope, ""] {
                    keep.execute(params![r.key.source_uid, school, scope, r.key.record_uid])
                        .map_err(err)?;
                    gone.execute(params![r.key.source_uid, school, scope, r.key.record_uid])
                        .map_err(err)?;
                }
                removed
                    .execute(params![r.key.source_uid, r.key.record_uid, school, run_id, at])
                    .map_err(err)?;
            }
            // Rows from before scopes were kept, now replaced by this run's.
            if let Some(first) = rows.first() {
                let replaced = "FROM received WHERE source_uid = ?1 AND school = ?2 AND scope = '' AND EXISTS \
                                (SELECT 1 FROM received n WHERE n.source_uid = received.source_uid \
                                AND n.record_uid = received.record_uid AND n.school = received.school \
                                AND n.scope <> '')";
                tx.execute(
                    &format!(
                        "INSERT INTO received_history (source_uid, record_uid, school, event, run_id, line, row, at) \
                         SELECT source_uid, record_uid, school, 'received', run_id, line, row, at {replaced}"
                    ),
                    params![first.key.source_uid, school],
                )
                .map_err(err)?;
                tx.execute(&format!("DELETE {replaced}"), params![first.key.source_uid, school])
                    .map_err(err)?;
            }
        }
        if go.recv().unwrap_or(false) {
            tx.commit().map_err(err)
        } else {
            tx.rollback().map_err(err)
        }
    }

    /// What the feeds said about a user, newest first: the current rows per
    /// school, the rows they superseded and the removals.
    pub fn history(&self, key: &UserKey) -> Result<Vec<HistoryEntry>, StateError> {
        let parse = |row: Option<String>| row.and_then(|r| serde_json::from_str(&r).ok());
        let mut out = Vec::new();
        let mut current = self
            .conn
            .prepare_cached(
                "SELECT at, run_id, school, line, row FROM received WHERE source_uid = ?1 AND record_uid = ?2",
            )
            .map_err(|e| self.err(e))?;
        let rows = current
            .query_map(params![key.source_uid, key.record_uid], |r| {
                Ok(HistoryEntry {
                    at: r.get(0)?,
                    run_id: r.get(1)?,
                    school: r.get(2)?,
                    event: "received".into(),
                    line: r.get::<_, Option<i64>>(3)?.map(|l| l as u64),
                    row: parse(r.get(4)?),
                    current: true,
                })
            })
            .map_err(|e| self.err(e))?;
        for r in rows {
            out.push(r.map_err(|e| self.err(e))?);
        }
        let mut past = self
            .conn
            .prepare_cached(
                "SELECT at, run_id, school, event, line, row FROM received_history \
                 WHERE source_uid = ?1 AND record_uid = ?2",
            )
            .map_err(|e| self.err(e))?;
        let rows = past
            .query_map(params![key.source_uid, key.record_uid], |r| {
                Ok(HistoryEntry {
                    at: r.get(0)?,
                    run_id: r.get(1)?,
                    school: r.get(2)?,
                    event: r.get(3)?,
                    line: r.get::<_, Option<i64>>(4)?.map(|l| l as u64),
                    row: parse(r.get(5)?),
                    current: false,
                })
            })
            .map_err(|e| self.err(e))?;
        for r in rows {
            out.push(r.map_err(|e| self.err(e))?);
        }
        out.sort_by(|a, b| b.at.cmp(&a.at).then(b.run_id.cmp(&a.run_id)));
        Ok(out)
    }

    /// For one school and scope, by record uid: the digest of the row last
    /// received and the user's `updated_at` when it was recorded.
    pub fn received_digests(
        &self,
        source_uid: &str,
        school: &str,
        scope: &str,
    ) -> Result<HashMap<String, (String, String)>, StateError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT record_uid, digest, user_updated_at FROM received \
                 WHERE source_uid = ?1 AND school = ?2 AND scope = ?3",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(params![source_uid, school, scope], |r| {
                Ok((r.get(0)?, (r.get(1)?, r.get(2)?)))
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }

    /// The most recent row received for a user, over all schools.
    pub fn last_received(&self, key: &UserKey) -> Result<Option<Received>, StateError> {
        self.conn
            .prepare_cached(
                "SELECT school, run_id, line, row, digest, at FROM received \
                 WHERE source_uid = ?1 AND record_uid = ?2 ORDER BY at DESC, run_id DESC LIMIT 1",
            )
            .and_then(|mut s| {
                s.query_row(params![key.source_uid, key.record_uid], |r| {
                    let row: String = r.get(3)?;
                    Ok(Received {
                        school: r.get(0)?,
                        run_id: r.get(1)?,
                        line: r.get::<_, i64>(2)? as u64,
                        row: serde_json::from_str(&row).unwrap_or_default(),
                        digest: r.get(4)?,
                        at: r.get(5)?,
                    })
                })
                .optional()
            })
            .map_err(|e| self.err(e))
    }
}
