//! Writing a batch: one transaction that changes users, their school and
//! group rows, issued usernames and counters, and appends the journal.

use super::SqliteDirectory;
use super::bulk::{self, text};
use super::codec::{date_str, memberships_json, roles_str, time_str};
use crate::model::{GroupKey, GroupKind, ObjectRef, User, UserState};
use crate::store::{ApplyReport, Batch, StoreError, StoreResult, UserChange};
use chrono::Utc;
use rusqlite::types::Value;
use rusqlite::{OptionalExtension, ToSql, Transaction, params};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// `state` column values, indexed by `state == Limbo`.
const STATES: [&str; 2] = ["active", "limbo"];

/// The groups a user is a member of.
fn group_keys(user: &User) -> BTreeSet<GroupKey> {
    let mut out = BTreeSet::new();
    for m in &user.memberships {
        for c in &m.classes {
            out.insert(GroupKey::new(m.school.clone(), GroupKind::Class, c.clone()));
        }
        for w in &m.workgroups {
            out.insert(GroupKey::new(m.school.clone(), GroupKind::Workgroup, w.clone()));
        }
    }
    out
}

/// Journal entries of one batch, coalesced per object.
#[derive(Default)]
struct Pending(BTreeMap<ObjectRef, BTreeSet<String>>);

impl Pending {
    fn add<'a>(&mut self, object: ObjectRef, schools: impl IntoIterator<Item = &'a str>) {
        self.0
            .entry(object)
            .or_default()
            .extend(schools.into_iter().map(str::to_string));
    }
}

struct Writer<'t> {
    tx: &'t Transaction<'t>,
    groups: HashMap<GroupKey, i64>,
    journal: Pending,
}

impl Writer<'_> {
    fn group_id(&mut self, key: &GroupKey) -> rusqlite::Result<i64> {
        if let Some(id) = self.groups.get(key) {
            return Ok(*id);
        }
        let found: Option<i64> = self
            .tx
            .prepare_cached("SELECT id FROM groups WHERE school = ?1 AND kind = ?2 AND name = ?3")?
            .query_row(params![key.school, key.kind.as_str(), key.name], |r| r.get(0))
            .optional()?;
        let id = match found {
            Some(id) => id,
            None => {
                self.tx
                    .prepare_cached("INSERT INTO groups (school, kind, name) VALUES (?1, ?2, ?3)")?
                    .execute(params![key.school, key.kind.as_str(), key.name])?;
                self.tx.last_insert_rowid()
            }
        };
        self.groups.insert(key.clone(), id);
        Ok(id)
    }

    fn write_schools(&mut self, user_id: i64, before: Option<&User>, after: Option<&User>) -> rusqlite::Result<()> {
        if let Some(b) = before {
            for m in &b.memberships {
                if after.is_none_or(|a| !a.has_school(&m.school)) {
                    self.tx
                        .prepare_cached("DELETE FROM user_schools WHERE school = ?1 AND user_id = ?2")?
                        .execute(params![m.school, user_id])?;
                }
            }
        }
        if let Some(a) = after {
            for m in &a.memberships {
                if before
                    .and_then(|b| b.membership(&m.school))
                    .is_some_and(|bm| bm.roles == m.roles)
                {
                    continue;
                }
                self.tx
                    .prepare_cached(
                        "INSERT INTO user_schools (school, user_id, roles) VALUES (?1, ?2, ?3) \
                         ON CONFLICT (school, user_id) DO UPDATE SET roles = excluded.roles",
                    )?
                    .execute(params![m.school, user_id, roles_str(&m.roles)])?;
            }
        }
        Ok(())
    }

    fn write_groups(&mut self, user_id: i64, before: Option<&User>, after: Option<&User>) -> rusqlite::Result<()> {
        let old = before.map(group_keys).unwrap_or_default();
        let new = after.map(group_keys).unwrap_or_default();
        for key in old.difference(&new) {
            let gid = self.group_id(key)?;
            self.tx
                .prepare_cached("DELETE FROM group_members WHERE group_id = ?1 AND user_id = ?2")?
                .execute(params![gid, user_id])?;
            self.journal.add(ObjectRef::group(key), [key.school.as_str()]);
        }
        for key in new.difference(&old) {
            let gid = self.group_id(key)?;
            self.tx
                .prepare_cached("INSERT OR IGNORE INTO group_members (group_id, user_id) VALUES (?1, ?2)")?
                .execute(params![gid, user_id])?;
            self.journal.add(ObjectRef::group(key), [key.school.as_str()]);
        }
        Ok(())
    }

    /// Inserts new users with multi-row statements; ids are assigned here,
    /// inside the write transaction, so no query per user is needed.
    /// (`deactivate_at` is left NULL: only a user in limbo has one, and a
    /// user is never created in limbo.)
    fn create_users(&mut self, users: &[&User]) -> Result<(), Failure> {
        if users.is_empty() {
            return Ok(());
        }
        let max: i64 = self
            .tx
            .query_row("SELECT COALESCE(MAX(id), 0) FROM users", [], |r| r.get(0))?;
        // The values that are not fields of User, computed once.
        struct Derived {
            id: i64,
            birthday: Option<String>,
            purge_at: Option<String>,
            memberships: String,
            created: String,
            updated: String,
        }
        let derived: Vec<Derived> = users
            .iter()
            .enumerate()
            .map(|(i, u)| Derived {
                id: max + 1 + i as i64,
                birthday: date_str(u.birthday),
                purge_at: date_str(u.purge_at),
                memberships: memberships_json(u),
                created: time_str(u.created_at),
                updated: time_str(u.updated_at),
            })
            .collect();
        let mut values: Vec<&dyn ToSql> = Vec::with_capacity(users.len() * 15);
        for (u, d) in users.iter().zip(&derived) {
            values.extend_from_slice(&[
                &d.id as &dyn ToSql,
                &u.key.source_uid,
                &u.key.record_uid,
                &u.username,
                &u.firstname,
                &u.lastname,
                &u.email,
                &d.birthday,
                &u.disabled,
                &STATES[usize::from(u.state == UserState::Limbo)],
                &d.purge_at,
                &u.password_hash,
                &d.memberships,
                &d.created,
                &d.updated,
            ]);
        }
        const HEAD: &str = "users (id, source_uid, record_uid, username, firstname, lastname, email, birthday, \
                            disabled, state, purge_at, password_hash, memberships, created_at, updated_at)";
        if let Err(e) = bulk::insert_refs(self.tx, HEAD, 15, &values) {
            return Err(self.explain_insert_failure(e, users));
        }
        let mut schools = Vec::new();
        let mut members = Vec::new();
        for (i, u) in users.iter().enumerate() {
            let id = max + 1 + i as i64;
            for m in &u.memberships {
                schools.push(vec![
                    text(&m.school),
                    Value::Integer(id),
                    Value::Text(roles_str(&m.roles)),
                ]);
            }
            for key in group_keys(u) {
                let gid = self.group_id(&key)?;
                members.push(vec![Value::Integer(gid), Value::Integer(id)]);
                self.journal.add(ObjectRef::group(&key), [key.school.as_str()]);
            }
            self.journal_user(None, Some(u));
        }
        bulk::insert(self.tx, "user_schools (school, user_id, roles)", 3, &schools)?;
        bulk::insert(self.tx, "group_members (group_id, user_id)", 2, &members)?;
        Ok(())
    }

    /// A multi-row insert failed: find the row that breaks a constraint.
    fn explain_insert_failure(&self, e: rusqlite::Error, users: &[&User]) -> Failure {
        let is_constraint =
            matches!(&e, rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::ConstraintViolation);
        if !is_constraint {
            return Failure::Sql(e);
        }
        for u in users {
            let taken: rusqlite::Result<bool> = self.tx.query_row(
                "SELECT EXISTS(SELECT 1 FROM users WHERE username = ?1)",
                [&u.username],
                |r| r.get(0),
            );
            if taken.unwrap_or(false) {
                return Failure::Store(StoreError::UsernameTaken(u.username.clone()));
            }
        }
        Failure::Sql(e)
    }

    fn update_user(&mut self, id: i64, u: &User) -> rusqlite::Result<()> {
        self.tx
            .prepare_cached(
                "UPDATE users SET username = ?2, firstname = ?3, lastname = ?4, email = ?5, birthday = ?6, \
                 disabled = ?7, state = ?8, purge_at = ?9, password_hash = ?10, memberships = ?11, \
                 updated_at = ?12, deactivate_at = ?13 WHERE id = ?1",
            )?
            .execute(params![
                id,
                u.username,
                u.firstname,
                u.lastname,
                u.email,
                date_str(u.birthday),
                u.disabled,
                u.state.as_str(),
                date_str(u.purge_at),
                u.password_hash,
                memberships_json(u),
                time_str(u.updated_at),
                date_str(u.deactivate_at),
            ])?;
        Ok(())
    }

    /// The row id and stored `updated_at` of a user.
    fn locate(&self, user: &User) -> rusqlite::Result<Option<(i64, String)>> {
        self.tx
            .prepare_cached("SELECT id, updated_at FROM users WHERE source_uid = ?1 AND record_uid = ?2")?
            .query_row(params![user.key.source_uid, user.key.record_uid], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()
    }

    fn journal_user(&mut self, before: Option<&User>, after: Option<&User>) {
        let user = after.or(before).map(|u| ObjectRef::user(&u.key));
        if let Some(user) = user {
            let schools = before
                .into_iter()
                .chain(after)
                .flat_map(|u| u.school_names())
                .collect::<Vec<_>>();
            self.journal.add(user, schools);
        }
    }

    fn flush_journal(&mut self) -> rusqlite::Result<u64> {
        let at = time_str(Utc::now());
        let entries = std::mem::take(&mut self.journal.0);
        // Schools first, then users, then groups (ObjectRef orders that way).
        let rows: Vec<Vec<Value>> = entries
            .iter()
            .map(|(object, schools)| {
                let schools = serde_json::to_string(schools).unwrap_or_else(|_| "[]".to_string());
                vec![Value::Text(object.to_string()), Value::Text(schools), text(&at)]
            })
            .collect();
        bulk::insert(self.tx, "journal (object, schools, at)", 3, &rows)?;
        Ok(entries.len() as u64)
    }
}

enum Failure {
    Sql(rusqlite::Error),
    Store(StoreError),
}

impl From<rusqlite::Error> for Failure {
    fn from(e: rusqlite::Error) -> Self {
        Failure::Sql(e)
    }
}

impl SqliteDirectory {
    pub(super) fn apply_impl(&mut self, batch: &Batch) -> StoreResult<ApplyReport> {
        if batch.is_empty() {
            return Ok(ApplyReport::default());
        }
        let tx = self.conn.transaction().map_err(|e| super::sqlite_err(&self.path, e))?;
        let result = Self::write(&tx, batch);
        match result {
            Ok(entries) => {
                tx.commit().map_err(|e| super::sqlite_err(&self.path, e))?;
                Ok(ApplyReport {
                    journal_entries: entries,
                })
            }
            Err(Failure::Sql(e)) => Err(super::sqlite_err(&self.path, e)),
            Err(Failure::Store(e)) => Err(e),
        }
    }

    fn write(tx: &Transaction<'_>, batch: &Batch) -> Result<u64, Failure> {
        let mut w = Writer {
            tx,
            groups: HashMap::new(),
            journal: Pending::default(),
        };
        let now = time_str(Utc::now());
        for school in &batch.schools {
            let changed = tx
                .prepare_cached(
                    "INSERT INTO schools (name, display_name, created_at) VALUES (?1, ?2, ?3) \
                     ON CONFLICT (name) DO UPDATE SET display_name = excluded.display_name \
                     WHERE display_name <> excluded.display_name",
                )?
                .execute(params![school.name, school.display_name, now])?;
            if changed > 0 {
                w.journal.add(ObjectRef::school(&school.name), [school.name.as_str()]);
            }
        }
        let created: Vec<&User> = batch
            .users
            .iter()
            .filter_map(|c| match c {
                UserChange::Create(u) => Some(u),
                _ => None,
            })
            .collect();
        w.create_users(&created)?;
        for change in &batch.users {
            match change {
                UserChange::Create(_) => {}
                UserChange::Update { before, after } => {
                    let id = w.locate_checked(before)?;
                    w.update_user(id, after)?;
                    w.write_schools(id, Some(before), Some(after))?;
                    w.write_groups(id, Some(before), Some(after))?;
                    w.journal_user(Some(before), Some(after));
                }
                UserChange::Delete(u) => {
                    let id = w.locate_checked(u)?;
                    w.write_groups(id, Some(u), None)?;
                    w.write_schools(id, Some(u), None)?;
                    tx.prepare_cached("DELETE FROM users WHERE id = ?1")?.execute([id])?;
                    // The name stays issued after the user is gone.
                    tx.prepare_cached("INSERT OR IGNORE INTO usernames (username) VALUES (?1)")?
                        .execute([&u.username])?;
                    w.journal_user(Some(u), None);
                }
            }
        }
        for (base, next) in &batch.counters {
            tx.prepare_cached(
                "INSERT INTO username_counters (base, next) VALUES (?1, ?2) \
                 ON CONFLICT (base) DO UPDATE SET next = MAX(next, excluded.next)",
            )?
            .execute(params![base, next])?;
        }
        Ok(w.flush_journal()?)
    }
}

impl Writer<'_> {
    /// Finds the user's row and refuses when another writer changed it since
    /// the engine read it.
    fn locate_checked(&self, user: &User) -> Result<i64, Failure> {
        match self.locate(user)? {
            None => Err(Failure::Store(StoreError::NoSuchUser(user.key.to_string()))),
            Some((id, stored)) if stored == time_str(user.updated_at) => Ok(id),
            Some(_) => Err(Failure::Store(StoreError::Conflict {
                key: user.key.to_string(),
            })),
        }
    }
}

impl SqliteDirectory {
    /// See [`crate::store::Directory::drop_school_spelling`]: `false` also
    /// when users are still in it (they joined meanwhile).
    pub(super) fn drop_school_spelling_impl(&mut self, name: &str) -> StoreResult<bool> {
        let path = self.path.clone();
        let e = move |err| super::sqlite_err(&path, err);
        let tx = self.conn.transaction().map_err(&e)?;
        let users: i64 = tx
            .query_row("SELECT COUNT(*) FROM user_schools WHERE school = ?1", [name], |r| {
                r.get(0)
            })
            .map_err(&e)?;
        let exists: bool = tx
            .query_row("SELECT EXISTS(SELECT 1 FROM schools WHERE name = ?1)", [name], |r| {
                r.get(0)
            })
            .map_err(&e)?;
        if users > 0 || !exists {
            return Ok(false);
        }
        tx.execute(
            "DELETE FROM group_members WHERE group_id IN (SELECT id FROM groups WHERE school = ?1)",
            [name],
        )
        .map_err(&e)?;
        tx.execute("DELETE FROM groups WHERE school = ?1", [name]).map_err(&e)?;
        tx.execute("DELETE FROM schools WHERE name = ?1", [name]).map_err(&e)?;
        let mut w = Writer {
            tx: &tx,
            groups: HashMap::new(),
            journal: Pending::default(),
        };
        w.journal.add(ObjectRef::school(name), [name]);
        w.flush_journal().map_err(&e)?;
        tx.commit().map_err(&e)?;
        Ok(true)
    }
}

impl SqliteDirectory {
    /// See [`crate::store::Directory::drop_empty_groups`].
    pub(super) fn drop_empty_groups_impl(&mut self, keys: &[GroupKey]) -> StoreResult<Vec<GroupKey>> {
        let path = self.path.clone();
        let e = move |err| super::sqlite_err(&path, err);
        let tx = self.conn.transaction().map_err(&e)?;
        let mut gone = Vec::new();
        {
            let mut drop = tx
                .prepare_cached(
                    "DELETE FROM groups WHERE school = ?1 AND kind = ?2 AND name = ?3 AND NOT EXISTS \
                     (SELECT 1 FROM group_members m WHERE m.group_id = groups.id)",
                )
                .map_err(&e)?;
            for k in keys {
                if drop.execute(params![k.school, k.kind.as_str(), k.name]).map_err(&e)? > 0 {
                    gone.push(k.clone());
                }
            }
        }
        if !gone.is_empty() {
            let mut w = Writer {
                tx: &tx,
                groups: HashMap::new(),
                journal: Pending::default(),
            };
            for k in &gone {
                w.journal.add(ObjectRef::group(k), [k.school.as_str()]);
            }
            w.flush_journal().map_err(&e)?;
        }
        tx.commit().map_err(&e)?;
        Ok(gone)
    }
}
