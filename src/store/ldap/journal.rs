//! The LDAP backend's journal, in a local SQLite file (`ldap-journal.sqlite`
//! in the data dir). LDAP has no transaction that could span it, so every
//! batch writes its change *intents* first, then the LDAP changes, then
//! completes the intents: they move into the journal with fresh sequence
//! numbers (so a reader's cursor never skips one). Intents a crash left
//! behind are repaired and completed later (see `repair`); the sync sender
//! reads the current state at send time, so a completed entry for a change
//! that only half happened is always safe.

use crate::model::{JournalEntry, ObjectRef};
use crate::store::{StoreError, StoreResult};
use chrono::{DateTime, Utc};
use rusqlite::{Connection, params};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub(super) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS intents (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    object  TEXT NOT NULL,
    schools TEXT NOT NULL,
    -- 0: only to repair (a group whose member DNs moved), never journalled
    journal INTEGER NOT NULL,
    at      TEXT NOT NULL
);
-- Usernames this data dir's processes claimed in the directory for users
-- not created yet; `token` names the claiming process (its lock file).
CREATE TABLE IF NOT EXISTS claims (
    username TEXT NOT NULL,
    object   TEXT NOT NULL,
    token    TEXT NOT NULL,
    at       TEXT NOT NULL,
    PRIMARY KEY (username, token)
);
CREATE TABLE IF NOT EXISTS journal (
    seq     INTEGER PRIMARY KEY AUTOINCREMENT,
    object  TEXT NOT NULL,
    schools TEXT NOT NULL,
    at      TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS intents_object ON intents (object);
-- The change listener (listen/): where it is in the directory's change
-- stream (the RFC 4533 cookie, stored with the journal entries it covers),
-- what it last saw of each entry (to know an entry's old schools and
-- whether it changed), rollcall's own writes (not journalled twice), and
-- its status for other processes.
CREATE TABLE IF NOT EXISTS listen_state (
    id        INTEGER PRIMARY KEY CHECK (id = 1),
    cookie    BLOB,
    cookie_at TEXT,
    gen       INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS listen_entries (
    uuid    TEXT PRIMARY KEY,
    object  TEXT NOT NULL,
    schools TEXT NOT NULL,
    -- a user's groups (the classes and workgroups it lists)
    groups  TEXT NOT NULL,
    digest  INTEGER NOT NULL,
    gen     INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS own_changes (
    uuid TEXT NOT NULL,
    -- the entryCSN this node's write produced; '' for a delete
    csn  TEXT NOT NULL,
    at   TEXT NOT NULL,
    PRIMARY KEY (uuid, csn)
);
CREATE TABLE IF NOT EXISTS listen_status (
    id           INTEGER PRIMARY KEY CHECK (id = 1),
    url          TEXT NOT NULL,
    connected    INTEGER NOT NULL,
    phase        TEXT NOT NULL,
    since        TEXT NOT NULL,
    heartbeat_at TEXT NOT NULL,
    last_change_at TEXT,
    lag_ms       INTEGER,
    journaled    INTEGER NOT NULL DEFAULT 0,
    error        TEXT
);
";

/// The objects one batch changes: object → schools (old and new), and
/// whether it is journalled or only repaired.
#[derive(Default, Debug, Clone)]
pub struct Changes(pub BTreeMap<ObjectRef, (BTreeSet<String>, bool)>);

impl Changes {
    pub fn add<'a>(&mut self, object: ObjectRef, schools: impl IntoIterator<Item = &'a str>) {
        let e = self.0.entry(object).or_default();
        e.0.extend(schools.into_iter().map(str::to_string));
        e.1 = true;
    }

    /// Marks an object for repair only (no journal entry unless another
    /// change journals it).
    pub fn touch(&mut self, object: ObjectRef, school: &str) {
        self.0.entry(object).or_default().0.insert(school.to_string());
    }

    pub fn journalled(&self) -> u64 {
        self.0.values().filter(|(_, j)| *j).count() as u64
    }
}

/// A pending intent.
#[derive(Debug, Clone)]
pub struct Intent {
    pub id: i64,
    pub object: ObjectRef,
}

pub struct Journal {
    conn: Connection,
    path: PathBuf,
}

impl Journal {
    pub fn open(path: &Path) -> StoreResult<Self> {
        let mut conn = Connection::open(path).map_err(|e| crate::store::sqlite::sqlite_err(path, e))?;
        // Write transactions wait for busy_timeout instead of failing.
        conn.set_transaction_behavior(rusqlite::TransactionBehavior::Immediate);
        let j = Journal {
            conn,
            path: path.to_path_buf(),
        };
        j.conn.busy_timeout(Duration::from_secs(30)).map_err(|e| j.err(e))?;
        j.conn
            .pragma_update(None, "journal_mode", "WAL")
            .map_err(|e| j.err(e))?;
        j.conn.execute_batch(SCHEMA).map_err(|e| j.err(e))?;
        Ok(j)
    }

    fn err(&self, e: rusqlite::Error) -> StoreError {
        crate::store::sqlite::sqlite_err(&self.path, e)
    }

    /// Records the intents of a batch; returns their ids.
    pub fn begin(&mut self, changes: &Changes) -> StoreResult<Vec<i64>> {
        let at = super::mapping::time_str(Utc::now());
        let tx = self
            .conn
            .transaction()
            .map_err(|e| crate::store::sqlite::sqlite_err(&self.path, e))?;
        let mut ids = Vec::with_capacity(changes.0.len());
        {
            let mut stmt = tx
                .prepare_cached("INSERT INTO intents (object, schools, journal, at) VALUES (?1, ?2, ?3, ?4)")
                .map_err(|e| crate::store::sqlite::sqlite_err(&self.path, e))?;
            for (object, (schools, journal)) in &changes.0 {
                let schools = serde_json::to_string(schools).unwrap_or_else(|_| "[]".into());
                stmt.execute(params![object.to_string(), schools, journal, at])
                    .map_err(|e| crate::store::sqlite::sqlite_err(&self.path, e))?;
                ids.push(tx.last_insert_rowid());
            }
        }
        tx.commit()
            .map_err(|e| crate::store::sqlite::sqlite_err(&self.path, e))?;
        Ok(ids)
    }

    /// Whether a change listener follows this data dir's directory (it
    /// ran here once): then writes record their entryCSNs (`own`).
    pub fn listening(&self) -> StoreResult<bool> {
        self.conn
            .query_row("SELECT EXISTS (SELECT 1 FROM listen_state)", [], |r| r.get(0))
            .map_err(|e| self.err(e))
    }

    /// Completes intents: journalled ones become journal entries (in id
    /// order, i.e. schools, users, groups), all are removed. `own` are the
    /// (entryUUID, entryCSN) the writes produced ('' for a delete), so the
    /// change listener does not journal them again.
    pub fn complete(&mut self, ids: &[i64], own: &[(String, String)]) -> StoreResult<()> {
        if ids.is_empty() && own.is_empty() {
            return Ok(());
        }
        let path = self.path.clone();
        let e = |err| crate::store::sqlite::sqlite_err(&path, err);
        let tx = self.conn.transaction().map_err(e)?;
        if !own.is_empty() {
            let at = super::mapping::time_str(Utc::now());
            let mut stmt = tx
                .prepare_cached("INSERT OR IGNORE INTO own_changes (uuid, csn, at) VALUES (?1, ?2, ?3)")
                .map_err(e)?;
            for (uuid, csn) in own {
                stmt.execute(params![uuid, csn, at]).map_err(e)?;
            }
        }
        for chunk in ids.chunks(500) {
            let list = chunk.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
            tx.execute_batch(&format!(
                "INSERT INTO journal (object, schools, at) \
                 SELECT object, schools, at FROM intents WHERE id IN ({list}) AND journal = 1 ORDER BY id; \
                 DELETE FROM intents WHERE id IN ({list});"
            ))
            .map_err(e)?;
        }
        tx.commit().map_err(e)
    }

    /// Intents left incomplete (by a failure or a crash), oldest first.
    pub fn pending(&self) -> StoreResult<Vec<Intent>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT id, object FROM intents ORDER BY id")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))
            .map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for row in rows {
            let (id, object) = row.map_err(|e| self.err(e))?;
            let object = object.parse().map_err(|err| StoreError::Corrupt {
                path: self.path.display().to_string(),
                message: format!("intent {id}: {err}"),
            })?;
            out.push(Intent { id, object });
        }
        Ok(out)
    }

    pub fn after(&self, after: u64, limit: usize) -> StoreResult<Vec<JournalEntry>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT seq, object, schools, at FROM journal WHERE seq > ?1 ORDER BY seq LIMIT ?2")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([after as i64, limit as i64], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                ))
            })
            .map_err(|e| self.err(e))?;
        let corrupt = |m: String| StoreError::Corrupt {
            path: self.path.display().to_string(),
            message: m,
        };
        let mut out = Vec::new();
        for row in rows {
            let (seq, object, schools, at) = row.map_err(|e| self.err(e))?;
            out.push(JournalEntry {
                seq: seq as u64,
                object: object
                    .parse()
                    .map_err(|e| corrupt(format!("journal entry {seq}: {e}")))?,
                schools: serde_json::from_str(&schools)
                    .map_err(|e| corrupt(format!("journal entry {seq}: schools: {e}")))?,
                at: DateTime::parse_from_rfc3339(&at)
                    .map(|t| t.with_timezone(&Utc))
                    .map_err(|e| corrupt(format!("journal entry {seq}: time '{at}': {e}")))?,
            });
        }
        Ok(out)
    }

    /// Records claims (username, object) made by the process `token`,
    /// before they are made in the directory.
    pub fn record_claims(&mut self, token: &str, claims: &[(String, ObjectRef)]) -> StoreResult<()> {
        let at = super::mapping::time_str(Utc::now());
        let path = self.path.clone();
        let e = |err| crate::store::sqlite::sqlite_err(&path, err);
        let tx = self.conn.transaction().map_err(e)?;
        {
            let mut stmt = tx
                .prepare_cached("INSERT OR REPLACE INTO claims (username, object, token, at) VALUES (?1, ?2, ?3, ?4)")
                .map_err(e)?;
            for (name, object) in claims {
                stmt.execute(params![name, object.to_string(), token, at]).map_err(e)?;
            }
        }
        tx.commit().map_err(e)
    }

    /// Forgets claims of the process `token` (their users exist, or the
    /// names were not ours).
    pub fn drop_claims(&mut self, token: &str, names: &[String]) -> StoreResult<()> {
        if names.is_empty() {
            return Ok(());
        }
        let path = self.path.clone();
        let e = |err| crate::store::sqlite::sqlite_err(&path, err);
        let tx = self.conn.transaction().map_err(e)?;
        {
            let mut stmt = tx
                .prepare_cached("DELETE FROM claims WHERE username = ?1 AND token = ?2")
                .map_err(e)?;
            for name in names {
                stmt.execute([name, token]).map_err(e)?;
            }
        }
        tx.commit().map_err(e)
    }

    /// Every recorded claim: (username, object, token).
    pub fn claims(&self) -> StoreResult<Vec<(String, String, String)>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT username, object, token FROM claims ORDER BY username")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }

    pub fn head(&self) -> StoreResult<u64> {
        self.conn
            .query_row("SELECT COALESCE(MAX(seq), 0) FROM journal", [], |r| r.get::<_, i64>(0))
            .map(|v| v as u64)
            .map_err(|e| self.err(e))
    }
}
