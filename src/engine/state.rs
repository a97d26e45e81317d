//! The engine's own local state, `state.sqlite` in the data dir, whatever
//! the directory backend: the rows each user last received, and (as the
//! sync parts grow) cursors and assignments. Separate from the directory so
//! an LDAP deployment keeps it too.

use crate::store::sqlite::checkpoint::Checkpointer;
use rusqlite::Connection;
use std::path::{Path, PathBuf};
use std::time::Duration;
use thiserror::Error;

#[derive(Debug, Error)]
#[error("local state {path}: {source}{}", full_note(path, source))]
pub struct StateError {
    pub path: String,
    #[source]
    pub source: rusqlite::Error,
}

/// On a full disk: how much is free where the state lives.
fn full_note(path: &str, e: &rusqlite::Error) -> String {
    if crate::store::space::sqlite_full(e, std::path::Path::new(path)) {
        format!(" ({})", crate::store::space::describe_free(std::path::Path::new(path)))
    } else {
        String::new()
    }
}

/// A named schema change of the local state. Each module that keeps state
/// here lists its own migrations (names never change once released); they
/// are applied once each, in the order of [`MIGRATIONS`].
pub struct Migration {
    pub name: &'static str,
    pub sql: &'static str,
}

/// Every module's migrations, in the order they must run.
const MIGRATIONS: &[&[Migration]] = &[
    super::received::MIGRATIONS,
    super::sync::pause::MIGRATIONS,
    super::sync::assign::MIGRATIONS,
    super::freshness::MIGRATIONS,
    super::metrics::MIGRATIONS,
];

pub struct StateDb {
    /// Declared first: stops before `conn` closes (see the directory's).
    _checkpoints: Option<Checkpointer>,
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
        // Write transactions take the write lock when they begin, so they
        // wait for busy_timeout (a deferred one that later writes cannot).
        conn.set_transaction_behavior(rusqlite::TransactionBehavior::Immediate);
        conn.pragma_update(None, "journal_mode", "WAL").map_err(err)?;
        conn.pragma_update(None, "synchronous", "NORMAL").map_err(err)?;
        conn.execute_batch("CREATE TABLE IF NOT EXISTS migrations (name TEXT PRIMARY KEY, at TEXT NOT NULL)")
            .map_err(err)?;
        for m in MIGRATIONS.iter().flat_map(|list| list.iter()) {
            let done: bool = conn
                .query_row(
                    "SELECT EXISTS(SELECT 1 FROM migrations WHERE name = ?1)",
                    [m.name],
                    |r| r.get(0),
                )
                .map_err(err)?;
            if done {
                continue;
            }
            let tx = conn.transaction().map_err(err)?;
            // Another process may have run it while this one waited.
            let done: bool = tx
                .query_row(
                    "SELECT EXISTS(SELECT 1 FROM migrations WHERE name = ?1)",
                    [m.name],
                    |r| r.get(0),
                )
                .map_err(err)?;
            if done {
                continue;
            }
            tx.execute_batch(m.sql).map_err(err)?;
            tx.execute(
                "INSERT INTO migrations (name, at) VALUES (?1, datetime('now'))",
                [m.name],
            )
            .map_err(err)?;
            tx.commit().map_err(err)?;
        }
        // Commits never wait for a checkpoint's fsyncs.
        let checkpoints = match path == Path::new(":memory:") {
            true => None,
            false => Some(Checkpointer::attach(&mut conn, &path).map_err(err)?),
        };
        Ok(StateDb {
            _checkpoints: checkpoints,
            conn,
            path,
        })
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
