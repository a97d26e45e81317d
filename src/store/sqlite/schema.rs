//! The embedded store's schema and its migrations (`PRAGMA user_version`).

use rusqlite::Connection;

/// Each entry upgrades from version `index` to `index + 1`.
const MIGRATIONS: &[&str] = &[r#"
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
"#];

pub const VERSION: i64 = MIGRATIONS.len() as i64;

/// Brings the schema to [`VERSION`]; returns the version found before.
pub fn migrate(conn: &mut Connection) -> rusqlite::Result<i64> {
    let found: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    for (idx, sql) in MIGRATIONS.iter().enumerate().skip(found.max(0) as usize) {
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        // Another process may have migrated while this one waited.
        let now: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if now > idx as i64 {
            continue;
        }
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", idx as i64 + 1)?;
        tx.commit()?;
    }
    Ok(found)
}
