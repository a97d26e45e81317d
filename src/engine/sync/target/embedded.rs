//! The embedded target: a local SQLite mirror of what an authority holds,
//! one row per resource keyed by external id, with the mapped attributes
//! and (for groups) the members' external ids. Used by the demo, the tests
//! and the engine-overhead benchmark; batches are one transaction.

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
    members     TEXT,
    updated_at  TEXT NOT NULL
);
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
        let conn = Connection::open(path).map_err(|e| fail(&e))?;
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

    fn write(&self, tx: &Transaction<'_>, desired: &Desired) -> Result<Applied, TargetError> {
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let (mapped, active) = match desired {
            Desired::Skip => return Ok(Applied::Skipped),
            Desired::Absent { external_id, .. } => {
                let n = tx
                    .prepare_cached("DELETE FROM resources WHERE external_id = ?1")
                    .and_then(|mut s| s.execute([external_id]))
                    .map_err(|e| self.err(e))?;
                return Ok(if n > 0 { Applied::Deleted } else { Applied::Absent });
            }
            Desired::Present(m) => (m, true),
            Desired::Deactivated(m) => (m, false),
        };
        let found: Option<(String, Option<String>)> = tx
            .prepare_cached("SELECT attributes, members FROM resources WHERE external_id = ?1")
            .and_then(|mut s| {
                s.query_row([&mapped.external_id], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()
            })
            .map_err(|e| self.err(e))?;
        if !active && found.is_none() {
            return Ok(Applied::Absent);
        }
        let attributes = Value::Object(mapped.attributes.clone()).to_string();
        let members = mapped.members.as_ref().map(|m| json!(m).to_string());
        match found {
            Some((a, m)) => {
                // School groups keep the members their users' sends set.
                let members = if mapped.members.is_none() { m.clone() } else { members };
                if a == attributes && m == members {
                    self.memberships(tx, mapped)?;
                    return Ok(Applied::Unchanged);
                }
                tx.prepare_cached(
                    "UPDATE resources SET attributes = ?2, members = ?3, updated_at = ?4 WHERE external_id = ?1",
                )
                .and_then(|mut s| s.execute(params![mapped.external_id, attributes, members, now]))
                .map_err(|e| self.err(e))?;
                self.memberships(tx, mapped)?;
                Ok(if active { Applied::Updated } else { Applied::Deactivated })
            }
            None => {
                let members = members.or_else(|| (mapped.class == Class::Group).then(|| "[]".to_string()));
                tx.prepare_cached(
                    "INSERT INTO resources (external_id, class, attributes, members, updated_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                )
                .and_then(|mut s| {
                    s.execute(params![
                        mapped.external_id,
                        class_str(mapped.class),
                        attributes,
                        members,
                        now
                    ])
                })
                .map_err(|e| self.err(e))?;
                self.memberships(tx, mapped)?;
                Ok(Applied::Created)
            }
        }
    }

    /// A user's school-group memberships: joined and left.
    fn memberships(&self, tx: &Transaction<'_>, user: &Mapped) -> Result<(), TargetError> {
        for (group, join) in user
            .school_groups
            .iter()
            .map(|g| (g, true))
            .chain(user.left_school_groups.iter().map(|g| (g, false)))
        {
            let found: Option<Option<String>> = tx
                .prepare_cached("SELECT members FROM resources WHERE external_id = ?1")
                .and_then(|mut s| s.query_row([group], |r| r.get(0)).optional())
                .map_err(|e| self.err(e))?;
            let Some(members) = found else { continue };
            let mut list: Vec<String> = members.and_then(|m| serde_json::from_str(&m).ok()).unwrap_or_default();
            let has = list.binary_search(&user.external_id);
            match (join, has) {
                (true, Err(pos)) => list.insert(pos, user.external_id.clone()),
                (false, Ok(pos)) => {
                    list.remove(pos);
                }
                _ => continue,
            }
            tx.prepare_cached("UPDATE resources SET members = ?2 WHERE external_id = ?1")
                .and_then(|mut s| s.execute(params![group, json!(list).to_string()]))
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
        let row: Option<(String, Option<String>)> = conn
            .query_row(
                "SELECT attributes, members FROM resources WHERE external_id = ?1",
                [external_id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(|e| self.err(e))?;
        Ok(row.map(|(a, m)| Self::resource(&a, m.as_deref())))
    }

    fn resource(attributes: &str, members: Option<&str>) -> Value {
        let mut v: Value = serde_json::from_str(attributes).unwrap_or(Value::Null);
        if let (Some(m), Value::Object(map)) = (members, &mut v) {
            map.insert("members".into(), serde_json::from_str(m).unwrap_or(Value::Null));
        }
        v
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
        self.apply_batch(std::slice::from_ref(desired))
            .pop()
            .unwrap_or_else(|| Err(TargetError::transient("no result")))
    }

    fn apply_batch(&self, desired: &[Desired]) -> Vec<Result<Applied, TargetError>> {
        let fail_all = |e: TargetError| desired.iter().map(|_| Err(e.clone())).collect();
        let mut conn = match self.conn.lock() {
            Ok(c) => c,
            Err(_) => return fail_all(TargetError::transient("mirror lock poisoned")),
        };
        let tx = match conn.transaction() {
            Ok(tx) => tx,
            Err(e) => return fail_all(self.err(e)),
        };
        let results: Vec<_> = desired.iter().map(|d| self.write(&tx, d)).collect();
        match tx.commit() {
            Ok(()) => results,
            Err(e) => fail_all(self.err(e)),
        }
    }

    fn parallel(&self) -> bool {
        false
    }

    fn list(&self, class: Class, visit: &mut dyn FnMut(RemoteObject) -> bool) -> Result<(), TargetError> {
        let conn = self
            .conn
            .lock()
            .map_err(|_| TargetError::transient("mirror lock poisoned"))?;
        let mut stmt = conn
            .prepare("SELECT rowid, external_id, attributes, members FROM resources WHERE class = ?1 ORDER BY rowid")
            .map_err(|e| self.err(e))?;
        let mut rows = stmt.query([class_str(class)]).map_err(|e| self.err(e))?;
        while let Some(row) = rows.next().map_err(|e| self.err(e))? {
            let id: i64 = row.get(0).map_err(|e| self.err(e))?;
            let external_id: String = row.get(1).map_err(|e| self.err(e))?;
            let attributes: String = row.get(2).map_err(|e| self.err(e))?;
            let members: Option<String> = row.get(3).map_err(|e| self.err(e))?;
            let obj = RemoteObject {
                id: id.to_string(),
                external_id: Some(external_id),
                resource: Self::resource(&attributes, members.as_deref()),
            };
            if !visit(obj) {
                break;
            }
        }
        Ok(())
    }
}
