//! What the feeds said about each user: the last row received per user and
//! school, with the run it came in and a digest of the mapped record.

use super::state::{StateDb, StateError};
use crate::model::UserKey;
use chrono::Utc;
use rusqlite::{OptionalExtension, params};
use serde::Serialize;

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
                     ON CONFLICT (source_uid, record_uid, school) DO UPDATE SET run_id = excluded.run_id, \
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
        tx.commit().map_err(err)
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
