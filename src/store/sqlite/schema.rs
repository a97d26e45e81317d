//! The embedded store's schema and its named migrations (`PRAGMA
//! user_version` counts the ones applied; the table `migrations` names them).

use crate::model::Membership;
use rusqlite::{Connection, Transaction, params};

/// One step from version `index` to `index + 1`: SQL, then an optional
/// rewrite of data. Names never change once released.
struct Migration {
    name: &'static str,
    sql: &'static str,
    rewrite: Option<fn(&Transaction<'_>) -> rusqlite::Result<()>>,
}

const MIGRATIONS: &[Migration] = &[
    Migration {
        name: "directory-1",
        sql: SCHEMA_1,
        rewrite: None,
    },
    Migration {
        name: "memberships-by-role",
        sql: "CREATE TABLE IF NOT EXISTS migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL) WITHOUT ROWID;",
        rewrite: Some(memberships_by_role),
    },
    Migration {
        name: "users-deactivate-at",
        // import.deactivation_grace_days: a user in limbo still active until then.
        sql: "ALTER TABLE users ADD COLUMN deactivate_at TEXT;",
        rewrite: None,
    },
];

const SCHEMA_1: &str = r#"
CREATE TABLE schools (
    name         TEXT PRIMARY KEY,
    display_name TEXT NOT NULL,
    created_at   TEXT NOT NULL
);
CREATE TABLE users (
    id             INTEGER PRIMARY KEY,
    source_uid     TEXT NOT NULL,
    record_uid     TEXT NOT NULL,
    username       TEXT NOT NULL UNIQUE,
    firstname      TEXT NOT NULL,
    lastname       TEXT NOT NULL,
    email          TEXT,
    birthday       TEXT,
    disabled       INTEGER NOT NULL,
    state          TEXT NOT NULL,
    purge_at       TEXT,
    password_hash  TEXT,
    memberships    TEXT NOT NULL,
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL,
    UNIQUE (source_uid, record_uid)
);
-- only limbo users are in it: active ones cost nothing on insert
CREATE INDEX users_limbo ON users (purge_at) WHERE state = 'limbo';
-- one row per (school, user); roles as ",student,teacher," for LIKE matching
CREATE TABLE user_schools (
    school  TEXT NOT NULL,
    user_id INTEGER NOT NULL,
    roles   TEXT NOT NULL,
    PRIMARY KEY (school, user_id)
) WITHOUT ROWID;
CREATE TABLE groups (
    id     INTEGER PRIMARY KEY,
    school TEXT NOT NULL,
    kind   TEXT NOT NULL,
    name   TEXT NOT NULL,
    UNIQUE (school, kind, name)
);
CREATE TABLE group_members (
    group_id INTEGER NOT NULL,
    user_id  INTEGER NOT NULL,
    PRIMARY KEY (group_id, user_id)
) WITHOUT ROWID;
CREATE TABLE journal (
    seq     INTEGER PRIMARY KEY AUTOINCREMENT,
    object  TEXT NOT NULL,
    schools TEXT NOT NULL,
    at      TEXT NOT NULL
);
-- usernames of purged users: never handed out again
CREATE TABLE usernames (username TEXT PRIMARY KEY) WITHOUT ROWID;
CREATE TABLE username_counters (base TEXT PRIMARY KEY, next INTEGER NOT NULL) WITHOUT ROWID;
"#;

/// Per-role contributions (DESIGN §2): a membership with several roles kept
/// one set of classes and workgroups for all of them. Each of its roles now
/// contributes that set, written out per role, so that the next feed of one
/// role replaces only that role's part. Nothing a target sees changes (the
/// union stays), so nothing is journaled and `updated_at` stays.
fn memberships_by_role(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    let mut changed: Vec<(i64, String)> = Vec::new();
    {
        // Only rows where some school lists two roles can need it.
        let mut stmt =
            tx.prepare("SELECT id, memberships FROM users WHERE memberships LIKE '%\"roles\":[\"%\",\"%'")?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            let id: i64 = row.get(0)?;
            let json: String = row.get(1)?;
            let Ok(mut memberships) = serde_json::from_str::<Vec<Membership>>(&json) else {
                // Left as it is: reading the user reports it as corrupt.
                continue;
            };
            let mut any = false;
            for m in memberships.iter_mut().filter(|m| m.is_legacy()) {
                m.make_explicit();
                any = true;
            }
            if any && let Ok(json) = serde_json::to_string(&memberships) {
                changed.push((id, json));
            }
        }
    }
    let mut update = tx.prepare("UPDATE users SET memberships = ?1 WHERE id = ?2")?;
    for (id, json) in &changed {
        update.execute(params![json, id])?;
    }
    tracing::info!(
        users = changed.len(),
        "migration memberships-by-role: contributions written out"
    );
    Ok(())
}

pub const VERSION: i64 = MIGRATIONS.len() as i64;

/// Brings the schema to [`VERSION`]; returns the version found before.
pub fn migrate(conn: &mut Connection) -> rusqlite::Result<i64> {
    let found: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    for (idx, m) in MIGRATIONS.iter().enumerate().skip(found.max(0) as usize) {
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        // Another process may have migrated while this one waited.
        let now: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if now > idx as i64 {
            continue;
        }
        tx.execute_batch(m.sql)?;
        if let Some(rewrite) = m.rewrite {
            rewrite(&tx)?;
        }
        if idx > 0 {
            tx.execute(
                "INSERT OR REPLACE INTO migrations (name, applied_at) VALUES (?1, ?2)",
                params![m.name, chrono::Utc::now().to_rfc3339()],
            )?;
        }
        tx.pragma_update(None, "user_version", idx as i64 + 1)?;
        tx.commit()?;
    }
    Ok(found)
}

/// The names of the migrations applied to this store, oldest first.
#[cfg(test)]
fn applied(conn: &Connection) -> rusqlite::Result<Vec<String>> {
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    Ok(MIGRATIONS
        .iter()
        .take(version.max(0) as usize)
        .map(|m| m.name.to_string())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A store at version 1 holding a teacher-and-staff person with
    /// classes, migrated: each role contributes the classes.
    #[test]
    fn memberships_by_role_writes_out_each_roles_contribution() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(SCHEMA_1).unwrap();
        conn.pragma_update(None, "user_version", 1).unwrap();
        let legacy = r#"[{"school":"gsa","roles":["teacher","staff"],"classes":["5a","6b"],"workgroups":["chor"]},{"school":"b","roles":["student"],"classes":["7c"],"workgroups":[]}]"#;
        let single = r#"[{"school":"gsa","roles":["student"],"classes":["5a"],"workgroups":[]}]"#;
        for (id, m) in [(1, legacy), (2, single)] {
            conn.execute(
                "INSERT INTO users (id, source_uid, record_uid, username, firstname, lastname, disabled, state, \
                 memberships, created_at, updated_at) VALUES (?1, 's', ?1, ?1, 'F', 'L', 0, 'active', ?2, 't', 't')",
                params![id, m],
            )
            .unwrap();
        }
        assert_eq!(migrate(&mut conn).unwrap(), 1);
        conn.execute("UPDATE users SET deactivate_at = '2030-01-01' WHERE id = 1", [])
            .unwrap();
        let read = |id: i64| -> Vec<Membership> {
            let json: String = conn
                .query_row("SELECT memberships FROM users WHERE id = ?1", [id], |r| r.get(0))
                .unwrap();
            serde_json::from_str(&json).unwrap()
        };
        let m = read(1);
        assert_eq!(m[0].by_role.len(), 2);
        for c in m[0].by_role.values() {
            assert_eq!(c.classes.iter().collect::<Vec<_>>(), ["5a", "6b"]);
            assert_eq!(c.workgroups.iter().collect::<Vec<_>>(), ["chor"]);
        }
        assert_eq!(m[0].classes.len(), 2, "the union stays");
        assert!(m[1].by_role.is_empty(), "one role: nothing to write out");
        let untouched: String = conn
            .query_row("SELECT memberships FROM users WHERE id = 2", [], |r| r.get(0))
            .unwrap();
        assert_eq!(untouched, single);
        assert_eq!(
            applied(&conn).unwrap(),
            ["directory-1", "memberships-by-role", "users-deactivate-at"]
        );
    }
}
