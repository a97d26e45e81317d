//! The embedded directory: one SQLite file in WAL mode. Every batch is one
//! transaction, and the journal rows are written in that same transaction.

mod apply;
mod bulk;
pub mod checkpoint;
mod codec;
mod query;
mod schema;
mod stats;

use super::{
    ApplyReport, Batch, BoundedCount, Directory, GroupSummary, MembershipCount, StoreError, StoreResult, UserQuery,
    UserStamp,
};
use crate::model::{Group, GroupKey, GroupKind, JournalEntry, School, User, UserKey};
use rusqlite::{Connection, OpenFlags, OptionalExtension, params_from_iter};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub struct SqliteDirectory {
    /// Declared first: stops (closing its connection) before `conn` closes,
    /// so the last connection's close checkpoints the rest.
    _checkpoints: Option<checkpoint::Checkpointer>,
    conn: Connection,
    path: PathBuf,
}

impl SqliteDirectory {
    /// Opens (creating when missing) and migrates the store at `path`.
    pub fn open(path: &Path) -> StoreResult<Self> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| sqlite_err(path, e))?;
        Self::init(conn, path.to_path_buf())
    }

    /// A private in-memory store, for tests and property checks.
    pub fn in_memory() -> StoreResult<Self> {
        let conn = Connection::open_in_memory().map_err(|e| sqlite_err(Path::new(":memory:"), e))?;
        Self::init(conn, PathBuf::from(":memory:"))
    }

    fn init(mut conn: Connection, path: PathBuf) -> StoreResult<Self> {
        let e = |err| sqlite_err(&path, err);
        conn.busy_timeout(Duration::from_secs(30)).map_err(e)?;
        // Writers take the write lock when they begin, so they wait for
        // busy_timeout instead of failing when a read turns into a write.
        conn.set_transaction_behavior(rusqlite::TransactionBehavior::Immediate);
        conn.pragma_update(None, "journal_mode", "WAL").map_err(e)?;
        conn.pragma_update(None, "synchronous", "NORMAL").map_err(e)?;
        conn.pragma_update(None, "cache_size", -65536).map_err(e)?;
        conn.pragma_update(None, "temp_store", "MEMORY").map_err(e)?;
        let found: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(e)?;
        if found > schema::VERSION {
            return Err(StoreError::TooNew {
                path: path.display().to_string(),
                found,
                known: schema::VERSION,
            });
        }
        schema::migrate(&mut conn).map_err(e)?;
        // Commits never wait for a checkpoint's fsyncs (in memory there is
        // no log to copy).
        let checkpoints = match path == Path::new(":memory:") {
            true => None,
            false => Some(checkpoint::Checkpointer::attach(&mut conn, &path).map_err(e)?),
        };
        Ok(SqliteDirectory {
            _checkpoints: checkpoints,
            conn,
            path,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn err(&self, e: rusqlite::Error) -> StoreError {
        sqlite_err(&self.path, e)
    }

    fn corrupt(&self, message: String) -> StoreError {
        StoreError::Corrupt {
            path: self.path.display().to_string(),
            message,
        }
    }
}

pub(crate) fn sqlite_err(path: &Path, source: rusqlite::Error) -> StoreError {
    // A full disk names how much is free where the file lives.
    let disk_full = crate::store::space::sqlite_full(&source, path);
    let path = if disk_full {
        format!(
            "{} (disk full: {})",
            path.display(),
            crate::store::space::describe_free(path)
        )
    } else {
        path.display().to_string()
    };
    StoreError::Sqlite {
        path,
        source,
        disk_full,
    }
}

impl Directory for SqliteDirectory {
    fn describe(&self) -> String {
        format!("sqlite:{}", self.path.display())
    }

    fn schools(&self) -> StoreResult<Vec<School>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT name, display_name FROM schools ORDER BY name")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| {
                Ok(School {
                    name: r.get(0)?,
                    display_name: r.get(1)?,
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }

    fn school(&self, name: &str) -> StoreResult<Option<School>> {
        self.conn
            .query_row("SELECT name, display_name FROM schools WHERE name = ?1", [name], |r| {
                Ok(School {
                    name: r.get(0)?,
                    display_name: r.get(1)?,
                })
            })
            .optional()
            .map_err(|e| self.err(e))
    }

    fn user(&self, key: &UserKey) -> StoreResult<Option<User>> {
        self.user_where(
            "source_uid = ?1 AND record_uid = ?2",
            &[&key.source_uid, &key.record_uid],
        )
    }

    fn user_by_username(&self, username: &str) -> StoreResult<Option<User>> {
        self.user_where("username = ?1", &[&username])
    }

    fn users_by_record_uids(&self, source_uid: &str, record_uids: &[String]) -> StoreResult<Vec<User>> {
        self.users_by_record_uids_impl(source_uid, record_uids)
    }

    fn users(&self, query: &UserQuery) -> StoreResult<Vec<User>> {
        let mut out = Vec::new();
        self.for_each_user(query, &mut |u| {
            out.push(u);
            true
        })?;
        Ok(out)
    }

    fn for_each_user(&self, query: &UserQuery, visit: &mut dyn FnMut(User) -> bool) -> StoreResult<()> {
        self.for_each_user_impl(query, visit)
    }

    fn count_users(&self, query: &UserQuery) -> StoreResult<u64> {
        self.count_users_impl(query)
    }

    fn user_stamps(&self, query: &UserQuery) -> StoreResult<Vec<UserStamp>> {
        self.user_stamps_impl(query)
    }

    fn count_users_bounded(&self, query: &UserQuery, cap: u64) -> StoreResult<BoundedCount> {
        self.count_users_bounded_impl(query, cap)
    }

    fn membership_counts(&self) -> StoreResult<Vec<MembershipCount>> {
        self.membership_counts_impl()
    }

    fn purge_dates(&self, limit: usize) -> StoreResult<Vec<(chrono::NaiveDate, u64)>> {
        self.purge_dates_impl(limit)
    }

    fn class_counts(&self) -> StoreResult<std::collections::BTreeMap<String, u64>> {
        self.class_counts_impl()
    }

    fn groups(&self, school: Option<&str>, kind: Option<GroupKind>) -> StoreResult<Vec<GroupSummary>> {
        self.groups_impl(school, kind)
    }

    fn group(&self, key: &GroupKey) -> StoreResult<Option<Group>> {
        self.group_impl(key)
    }

    fn username_issued(&self, username: &str) -> StoreResult<bool> {
        let mut stmt = self
            .conn
            .prepare_cached(
                // In use, or held by a purged user (`usernames`).
                "SELECT EXISTS(SELECT 1 FROM users WHERE username = ?1) \
                 OR EXISTS(SELECT 1 FROM usernames WHERE username = ?1)",
            )
            .map_err(|e| self.err(e))?;
        stmt.query_row([username], |r| r.get(0)).map_err(|e| self.err(e))
    }

    fn username_counter(&self, base: &str) -> StoreResult<Option<u32>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT next FROM username_counters WHERE base = ?1")
            .map_err(|e| self.err(e))?;
        stmt.query_row([base], |r| r.get(0)).optional().map_err(|e| self.err(e))
    }

    fn usernames_issued(&self, names: &[String]) -> StoreResult<HashSet<String>> {
        let mut out = HashSet::new();
        for chunk in names.chunks(400) {
            let marks = vec!["?"; chunk.len()].join(", ");
            let sql = format!(
                "SELECT username FROM users WHERE username IN ({marks}) \
                 UNION SELECT username FROM usernames WHERE username IN ({marks})"
            );
            let mut stmt = self.conn.prepare_cached(&sql).map_err(|e| self.err(e))?;
            let params = chunk.iter().chain(chunk.iter()).map(String::as_str);
            let rows = stmt
                .query_map(params_from_iter(params), |r| r.get::<_, String>(0))
                .map_err(|e| self.err(e))?;
            for row in rows {
                out.insert(row.map_err(|e| self.err(e))?);
            }
        }
        Ok(out)
    }

    fn username_counters(&self, bases: &[String]) -> StoreResult<HashMap<String, u32>> {
        let mut out = HashMap::new();
        for chunk in bases.chunks(800) {
            let marks = vec!["?"; chunk.len()].join(", ");
            let sql = format!("SELECT base, next FROM username_counters WHERE base IN ({marks})");
            let mut stmt = self.conn.prepare_cached(&sql).map_err(|e| self.err(e))?;
            let rows = stmt
                .query_map(params_from_iter(chunk.iter().map(String::as_str)), |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, u32>(1)?))
                })
                .map_err(|e| self.err(e))?;
            for row in rows {
                let (b, n) = row.map_err(|e| self.err(e))?;
                out.insert(b, n);
            }
        }
        Ok(out)
    }

    fn begin_read(&self) -> StoreResult<()> {
        // One read transaction: one WAL read lock instead of one per query.
        if self.conn.is_autocommit() {
            self.conn.execute_batch("BEGIN DEFERRED").map_err(|e| self.err(e))?;
        }
        Ok(())
    }

    fn end_read(&self) -> StoreResult<()> {
        if !self.conn.is_autocommit() {
            self.conn.execute_batch("COMMIT").map_err(|e| self.err(e))?;
        }
        Ok(())
    }

    fn apply(&mut self, batch: &Batch) -> StoreResult<ApplyReport> {
        self.end_read()?;
        self.apply_impl(batch)
    }

    fn drop_empty_groups(&mut self, keys: &[GroupKey]) -> StoreResult<Vec<GroupKey>> {
        self.end_read()?;
        self.drop_empty_groups_impl(keys)
    }

    fn drop_school_spelling(&mut self, name: &str) -> StoreResult<bool> {
        self.end_read()?;
        self.drop_school_spelling_impl(name)
    }

    fn journal_after(&self, after: u64, limit: usize) -> StoreResult<Vec<JournalEntry>> {
        self.journal_after_impl(after, limit)
    }

    fn journal_head(&self) -> StoreResult<u64> {
        self.conn
            .query_row("SELECT COALESCE(MAX(seq), 0) FROM journal", [], |r| r.get::<_, i64>(0))
            .map(|v| v as u64)
            .map_err(|e| self.err(e))
    }
}
