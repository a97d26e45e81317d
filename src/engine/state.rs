//! The engine's own local state, `state.sqlite` in the data dir, whatever
//! the directory backend: the rows each user last received, and (as the
//! sync parts grow) cursors and assignments. Separate from the directory so
//! an LDAP deployment keeps it too.

use rusqlite::Connection;
use std::path::{Path, PathBuf};
use std::time::Duration;
use thiserror::Error;

#[derive(Debug, Error)]
#[error("local state {path}: {source}")]
pub struct StateError {
    pub path: String,
    #[source]
    pub source: rusqlite::Error,
}

/// Each entry upgrades from version `index` to `index + 1`.
const MIGRATIONS: &[&str] = &[r#"
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
"#];

pub struct StateDb {
    pub(crate) conn: Connection,
    path: PathBuf,
}

impl StateDb {
    pub fn open(path: &Path) -> Result<Self, StateError> {
        let err = |source| StateError {
            path: path.display().to_string(),
            source,
        };
        let conn = Connection::open(path).map_err(err)?;
        Self::init(conn, path.to_path_buf())
    }

    pub fn in_memory() -> Result<Self, StateError> {
        let conn = Connection::open_in_memory().map_err(|source| StateError {
            path: ":memory:".into(),
            source,
        })?;
        Self::init(conn, PathBuf::from(":memory:"))
    }

    fn init(mut conn: Connection, path: PathBuf) -> Result<Self, StateError> {
        let err = |source| StateError {
            path: path.display().to_string(),
            source,
        };
        conn.busy_timeout(Duration::from_secs(30)).map_err(err)?;
        conn.pragma_update(None, "journal_mode", "WAL").map_err(err)?;
        conn.pragma_update(None, "synchronous", "NORMAL").map_err(err)?;
        let found: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(err)?;
        for (idx, sql) in MIGRATIONS.iter().enumerate().skip(found.max(0) as usize) {
            let tx = conn.transaction().map_err(err)?;
            tx.execute_batch(sql).map_err(err)?;
            tx.pragma_update(None, "user_version", idx as i64 + 1).map_err(err)?;
            tx.commit().map_err(err)?;
        }
        Ok(StateDb { conn, path })
    }

    pub(crate) fn path_string(&self) -> String {
        self.path.display().to_string()
    }

    pub(crate) fn err(&self, source: rusqlite::Error) -> StateError {
        StateError {
            path: self.path.display().to_string(),
            source,
        }
    }
}
