//! The embedded target: a local SQLite mirror of what an authority holds,
//! one row per resource keyed by external id with the mapped attributes,
//! and one row per group membership (both external ids). Used by the demo,
//! the tests and the engine-overhead benchmark; batches are one transaction.

use super::{Applied, ErrorClass, RemoteObject, Target, TargetError};
use crate::engine::paths::create_private_dir;
use crate::engine::sync::mapping::{Class, Desired, Mapped};
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

pub struct EmbeddedTarget {
    path: PathBuf,
    conn: Mutex<Connection>,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS resources (
    external_id TEXT PRIMARY KEY,
    class       TEXT NOT NULL,
    attributes  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS members (
    group_id  TEXT NOT NULL,
    member_id TEXT NOT NULL,
    PRIMARY KEY (group_id, member_id)
) WITHOUT ROWID;
";

fn class_str(c: Class) -> &'static str {
    match c {
        Class::User => "user",
        Class::Group => "group",
    }
}

impl EmbeddedTarget {
    pub fn open(path: &Path) -> Result<Self, TargetError> {
        let fail = |e: &dyn std::fmt::Display| {
            TargetError::new(ErrorClass::Unreachable, format!("mirror {}: {e}", path.display()))
        };
        if let Some(parent) = path.parent() {
            create_private_dir(parent).map_err(|e| fail(&e))?;
        }
        let mut conn = Connection::open(path).map_err(|e| fail(&e))?;
        // Write transactions wait for busy_timeout instead of failing.
        conn.set_transaction_behavior(rusqlite::TransactionBehavior::Immediate);
        conn.busy_timeout(Duration::from_secs(30)).map_err(|e| fail(&e))?;
        conn.pragma_update(None, "journal_mode", "WAL").map_err(|e| fail(&e))?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(|e| fail(&e))?;
        conn.execute_batch(SCHEMA).map_err(|e| fail(&e))?;
        Ok(EmbeddedTarget {
            path: path.to_path_buf(),
            conn: Mutex::new(conn),
        })
    }

    fn err(&self, e: rusqlite::Error) -> TargetError {
        // A busy or broken mirror is worth another try.
        TargetError::transient(format!("mirror {}: {e}", self.path.display()))
    }

    fn write(&self, tx: &Transaction<'_>, desired: &Desired, now: &str) -> Result<Applied, TargetError> {
        let (mapped, active) = match desired {
            Desired::Skip => return Ok(Applied::Skipped),
            Desired::Absent { external_id, .. } => {
                let n = tx
                    .prepare_cached("DELETE FROM resources WHERE external_id = ?1")
                    .and_then(|mut s| s.execute([external_id]))
                    .map_err(|e| self.err(e))?;
                tx.prepare_cached("DELETE FROM members WHERE group_id = ?1")
                    .and_then(|mut s| s.execute([external_id]))
                    .map_err(|e| self.err(e))?;
                return Ok(if n > 0 { Applied::Deleted } else { Applied::Absent });
            }
            Desired::Present(m) => (m, true),
            Desired::Deactivated(m) => (m, false),
        };
        let found: Option<String> = tx
            .prepare_cached("SELECT attributes FROM resources WHERE external_id = ?1")
            .and_then(|mut s| s.query_row([&mapped.external_id], |r| r.get(0)).optional())
            .map_err(|e| self.err(e))?;
        if !active && found.is_none() {
            return Ok(Applied::Absent);
        }
        let attributes =
            serde_json::to_string(&mapped.attributes).map_err(|e| TargetError::permanent(e.to_string()))?;
        let members_changed = match &mapped.members {
            Some(wanted) => self.set_members(tx, &mapped.external_id, wanted)?,
            None => false,
        };
        self.memberships(tx, mapped)?;
        match found {
            Some(a) if a == attributes => Ok(if members_changed {
                Applied::Updated
            } else {
                Applied::Unchanged
            }),
            Some(_) => {
                tx.prepare_cached("UPDATE resources SET attributes = ?2, updated_at = ?3 WHERE external_id = ?1")
                    .and_then(|mut s| s.execute(params![mapped.external_id, attributes, now]))
                    .map_err(|e| self.err(e))?;
                Ok(if active { Applied::Updated } else { Applied::Deactivated })
            }
            None => {
                tx.prepare_cached(
                    "INSERT INTO resources (external_id, class, attributes, updated_at) VALUES (?1, ?2, ?3, ?4)",
                )
                .and_then(|mut s| s.execute(params![mapped.external_id, class_str(mapped.class), attributes, now]))
                .map_err(|e| self.err(e))?;
                Ok(Applied::Created)
            }
        }
    }

    /// Makes a group's members exactly `wanted`; `true` when they changed.
    fn set_members(&self, tx: &Transaction<'_>, group: &str, wanted: &[String]) -> Result<bool, TargetError> {
        let mut have: std::collections::BTreeSet<String> = std::collections::BTreeSet::new();
        {
            let mut stmt = tx
                .prepare_cached("SELECT member_id FROM members WHERE group_id = ?1")
                .map_err(|e| self.err(e))?;
            let rows = stmt
                .query_map([group], |r| r.get::<_, String>(0))
                .map_err(|e| self.err(e))?;
            for r in rows {
                have.insert(r.map_err(|e| self.err(e))?);
            }
        }
        let want: std::collections::BTreeSet<&str> = wanted.iter().map(String::as_str).collect();
        let mut changed = false;
        for m in want.iter().filter(|m| !have.contains(**m)) {
            tx.prepare_cached("INSERT OR IGNORE INTO members (group_id, member_id) VALUES (?1, ?2)")
                .and_then(|mut s| s.execute(params![group, m]))
                .map_err(|e| self.err(e))?;
            changed = true;
        }
        for m in have.iter().filter(|m| !want.contains(m.as_str())) {
            tx.prepare_cached("DELETE FROM members WHERE group_id = ?1 AND member_id = ?2")
                .and_then(|mut s| s.execute(params![group, m]))
                .map_err(|e| self.err(e))?;
            changed = true;
        }
        Ok(changed)
    }

    /// A user's school-group memberships: joined and left (only groups the
    /// mirror holds).
    fn memberships(&self, tx: &Transaction<'_>, user: &Mapped) -> Result<(), TargetError> {
        for group in &user.school_groups {
            tx.prepare_cached(
                "INSERT OR IGNORE INTO members (group_id, member_id) \
                 SELECT external_id, ?2 FROM resources WHERE external_id = ?1",
            )
            .and_then(|mut s| s.execute(params![group, user.external_id]))
            .map_err(|e| self.err(e))?;
        }
        for group in &user.left_school_groups {
            tx.prepare_cached("DELETE FROM members WHERE group_id = ?1 AND member_id = ?2")
                .and_then(|mut s| s.execute(params![group, user.external_id]))
                .map_err(|e| self.err(e))?;
        }
        Ok(())
    }

    /// One resource by external id (tests, diffs).
    pub fn get(&self, external_id: &str) -> Result<Option<Value>, TargetError> {
        let conn = self
            .conn
            .lock()
            .map_err(|_| TargetError::transient("mirror lock poisoned"))?;
        let row: Option<(String, String)> = conn
            .query_row(
                "SELECT class, attributes FROM resources WHERE external_id = ?1",
                [external_id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(|e| self.err(e))?;
        row.map(|(class, a)| self.resource(&conn, external_id, &class, &a))
            .transpose()
    }

    /// The stored attributes, with `members` (external ids) for groups.
    fn resource(
        &self,
        conn: &Connection,
        external_id: &str,
        class: &str,
        attributes: &str,
    ) -> Result<Value, TargetError> {
        let mut v: Value = serde_json::from_str(attributes).unwrap_or(Value::Null);
        if class == "group"
            && let Value::Object(map) = &mut v
        {
            let mut stmt = conn
                .prepare_cached("SELECT member_id FROM members WHERE group_id = ?1 ORDER BY member_id")
                .map_err(|e| self.err(e))?;
            let members = stmt
                .query_map([external_id], |r| r.get::<_, String>(0))
                .map_err(|e| self.err(e))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| self.err(e))?;
            map.insert("members".into(), json!(members));
        }
        Ok(v)
    }
}

impl Target for EmbeddedTarget {
    fn describe(&self) -> String {
        format!("embedded {}", self.path.display())
    }

    fn probe(&self) -> Result<(), TargetError> {
        let conn = self
            .conn
            .lock()
            .map_err(|_| TargetError::transient("mirror lock poisoned"))?;
        conn.query_row("SELECT 1", [], |_| Ok(())).map_err(|e| self.err(e))
    }

    fn apply(&self, desired: &Desired) -> Result<Applied, TargetError> {
        self.apply_batch(&[desired])
            .pop()
            .unwrap_or_else(|| Err(TargetError::transient("no result")))
    }

    fn apply_batch(&self, desired: &[&Desired]) -> Vec<Result<Applied, TargetError>> {
        let fail_all = |e: TargetError| desired.iter().map(|_| Err(e.clone())).collect();
        let mut conn = match self.conn.lock() {
            Ok(c) => c,
            Err(_) => return fail_all(TargetError::transient("mirror lock poisoned")),
        };
        let tx = match conn.transaction() {
            Ok(tx) => tx,
            Err(e) => return fail_all(self.err(e)),
        };
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let results: Vec<_> = desired.iter().map(|d| self.write(&tx, d, &now)).collect();
        match tx.commit() {
            Ok(()) => results,
            Err(e) => fail_all(self.err(e)),
        }
    }

    fn parallel(&self) -> bool {
        false
    }

    fn fetch(&self, class: Class, external_id: &str) -> Result<Option<RemoteObject>, TargetError> {
        let conn = self
            .conn
            .lock()
            .map_err(|_| TargetError::transient("mirror lock poisoned"))?;
        let row: Option<(i64, String)> = conn
            .query_row(
                "SELECT rowid, attributes FROM resources WHERE class = ?1 AND external_id = ?2",
                [class_str(class), external_id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(|e| self.err(e))?;
        row.map(|(id, attributes)| {
            Ok(RemoteObject {
                id: id.to_string(),
                resource: self.resource(&conn, external_id, class_str(class), &attributes)?,
                external_id: Some(external_id.to_string()),
            })
        })
        .transpose()
    }

    fn list(&self, class: Class, visit: &mut dyn FnMut(RemoteObject) -> bool) -> Result<(), TargetError> {
        let conn = self
            .conn
            .lock()
            .map_err(|_| TargetError::transient("mirror lock poisoned"))?;
        let mut stmt = conn
            .prepare("SELECT rowid, external_id, attributes FROM resources WHERE class = ?1 ORDER BY rowid")
            .map_err(|e| self.err(e))?;
        let mut rows = stmt.query([class_str(class)]).map_err(|e| self.err(e))?;
        while let Some(row) = rows.next().map_err(|e| self.err(e))? {
            let id: i64 = row.get(0).map_err(|e| self.err(e))?;
            let external_id: String = row.get(1).map_err(|e| self.err(e))?;
            let attributes: String = row.get(2).map_err(|e| self.err(e))?;
            let obj = RemoteObject {
                id: id.to_string(),
                resource: self.resource(&conn, &external_id, class_str(class), &attributes)?,
                external_id: Some(external_id),
            };
            if !visit(obj) {
                break;
            }
        }
        Ok(())
    }
}
