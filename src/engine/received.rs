//! What the feeds said about each user: the last row received per user and
//! school, with the run it came in and a digest of the mapped record.

use super::state::{Migration, StateDb, StateError};
use crate::model::UserKey;
use chrono::Utc;
use rusqlite::{OptionalExtension, params};
use serde::Serialize;
use std::collections::HashMap;
use std::sync::mpsc::Receiver;

pub const MIGRATIONS: &[Migration] = &[Migration {
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
    at         TEXT NOT NULL,
    PRIMARY KEY (source_uid, school, record_uid)
) WITHOUT ROWID;
CREATE INDEX received_user ON received (source_uid, record_uid);
"#,
}];

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
}

impl StateDb {
    /// Remembers the rows one run received for one school.
    pub fn record_received(&mut self, run_id: &str, school: &str, rows: &[ReceivedRow<'_>]) -> Result<(), StateError> {
        let (tx, rx) = std::sync::mpsc::channel();
        let _ = tx.send(true);
        self.record_received_when(run_id, school, rows, &rx)
    }

    /// Writes the rows inside a transaction, then commits only when `go`
    /// says so (the directory's write succeeded) and rolls back otherwise.
    /// Lets an import prepare this while the directory is being written.
    pub fn record_received_when(
        &mut self,
        run_id: &str,
        school: &str,
        rows: &[ReceivedRow<'_>],
        go: &Receiver<bool>,
    ) -> Result<(), StateError> {
        let at = Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let path = self.path_string();
        let err = |source| StateError {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(err)?;
        {
            let mut stmt = tx
                .prepare_cached(
                    "INSERT INTO received (source_uid, record_uid, school, run_id, line, row, digest, at) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) \
                     ON CONFLICT (source_uid, school, record_uid) DO UPDATE SET run_id = excluded.run_id, \
                     line = excluded.line, row = excluded.row, digest = excluded.digest, at = excluded.at",
                )
                .map_err(err)?;
            for r in rows {
                stmt.execute(params![
                    r.key.source_uid,
                    r.key.record_uid,
                    school,
                    run_id,
                    r.line as i64,
                    r.row,
                    r.digest,
                    at
                ])
                .map_err(err)?;
            }
        }
        if go.recv().unwrap_or(false) {
            tx.commit().map_err(err)
        } else {
            tx.rollback().map_err(err)
        }
    }

    /// The digests of the rows last received for one school, by record uid.
    pub fn received_digests(&self, source_uid: &str, school: &str) -> Result<HashMap<String, String>, StateError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT record_uid, digest FROM received WHERE source_uid = ?1 AND school = ?2")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(params![source_uid, school], |r| Ok((r.get(0)?, r.get(1)?)))
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
