//! Read queries of the embedded store.

use super::SqliteDirectory;
use super::codec::{RawUser, USER_COLUMNS};
use crate::model::{Group, GroupKey, GroupKind, GroupMember, JournalEntry, ObjectRef, User, UserKey};
use crate::store::{GroupSummary, StoreResult, UserQuery, UserSort, UserStamp};
use chrono::{DateTime, Utc};
use rusqlite::types::Value;
use rusqlite::{OptionalExtension, ToSql, params_from_iter};

/// Escapes `%`, `_` and `\` for a `LIKE … ESCAPE '\'` pattern.
fn like_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// A query's FROM/WHERE clause and its parameters.
pub(super) fn where_clause(q: &UserQuery) -> (String, Vec<Value>) {
    let mut sql = String::from(" FROM users u");
    let mut params: Vec<Value> = Vec::new();
    if let Some(school) = &q.school {
        sql.push_str(" JOIN user_schools us ON us.user_id = u.id AND us.school = ?");
        params.push(Value::Text(school.clone()));
    }
    sql.push_str(" WHERE 1 = 1");
    if let Some(state) = q.state {
        // A literal (from the enum), so the partial limbo index applies.
        sql.push_str(&format!(" AND u.state = '{}'", state.as_str()));
    }
    if let Some(source) = &q.source_uid {
        sql.push_str(" AND u.source_uid = ?");
        params.push(Value::Text(source.clone()));
    }
    if !q.roles.is_empty() {
        let target = if q.school.is_some() { "us.roles" } else { "r.roles" };
        let any = vec![format!("{target} LIKE ?"); q.roles.len()].join(" OR ");
        if q.school.is_some() {
            sql.push_str(&format!(" AND ({any})"));
        } else {
            // Evaluated once (no index on user_id is kept: it would cost
            // every insert).
            sql.push_str(&format!(
                " AND u.id IN (SELECT r.user_id FROM user_schools r WHERE {any})"
            ));
        }
        for role in &q.roles {
            params.push(Value::Text(format!("%,{},%", role.as_str())));
        }
    }
    if let Some(text) = q.text.as_deref().filter(|t| !t.is_empty()) {
        let pat = format!("%{}%", like_escape(text));
        sql.push_str(
            " AND (u.username LIKE ? ESCAPE '\\' OR u.firstname LIKE ? ESCAPE '\\' \
             OR u.lastname LIKE ? ESCAPE '\\' OR u.record_uid LIKE ? ESCAPE '\\')",
        );
        for _ in 0..4 {
            params.push(Value::Text(pat.clone()));
        }
    }
    if let Some(prefix) = q.username_prefix.as_deref().filter(|p| !p.is_empty()) {
        // Every stored username sorts below prefix + U+10FFFF.
        sql.push_str(" AND u.username >= ? AND u.username < ?");
        params.push(Value::Text(prefix.to_string()));
        params.push(Value::Text(format!("{prefix}\u{10FFFF}")));
    }
    if let Some(day) = q.purge_due {
        sql.push_str(" AND u.state = 'limbo' AND u.purge_at IS NOT NULL AND u.purge_at <= ?");
        params.push(Value::Text(day.format("%Y-%m-%d").to_string()));
    }
    (sql, params)
}

impl SqliteDirectory {
    pub(super) fn user_where(&self, cond: &str, args: &[&dyn ToSql]) -> StoreResult<Option<User>> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users u WHERE {cond}");
        let mut stmt = self.conn.prepare_cached(&sql).map_err(|e| self.err(e))?;
        let raw = stmt
            .query_row(args, RawUser::read)
            .optional()
            .map_err(|e| self.err(e))?;
        raw.map(|r| self.decode(r)).transpose()
    }

    pub(super) fn users_by_record_uids_impl(&self, source_uid: &str, record_uids: &[String]) -> StoreResult<Vec<User>> {
        const CHUNK: usize = 500;
        let mut out = Vec::new();
        for chunk in record_uids.chunks(CHUNK) {
            let marks = vec!["?"; chunk.len()].join(", ");
            let sql =
                format!("SELECT {USER_COLUMNS} FROM users u WHERE u.source_uid = ? AND u.record_uid IN ({marks})");
            let mut stmt = self.conn.prepare_cached(&sql).map_err(|e| self.err(e))?;
            let params = std::iter::once(source_uid).chain(chunk.iter().map(String::as_str));
            let mut rows = stmt.query(params_from_iter(params)).map_err(|e| self.err(e))?;
            while let Some(row) = rows.next().map_err(|e| self.err(e))? {
                out.push(self.decode(RawUser::read(row).map_err(|e| self.err(e))?)?);
            }
        }
        Ok(out)
    }

    pub(super) fn for_each_user_impl(&self, q: &UserQuery, visit: &mut dyn FnMut(User) -> bool) -> StoreResult<()> {
        let (clause, mut params) = where_clause(q);
        let order = match q.sort {
            UserSort::Username => "u.username",
            UserSort::Lastname => "u.lastname COLLATE NOCASE, u.firstname COLLATE NOCASE, u.username",
            UserSort::PurgeAt => "u.purge_at, u.username",
            UserSort::UpdatedAt => "u.updated_at, u.username",
        };
        let dir = if q.descending { " DESC" } else { "" };
        let order = order
            .split(", ")
            .map(|c| format!("{c}{dir}"))
            .collect::<Vec<_>>()
            .join(", ");
        let mut sql = format!("SELECT {USER_COLUMNS}{clause} ORDER BY {order}");
        if q.limit.is_some() || q.offset > 0 {
            sql.push_str(" LIMIT ? OFFSET ?");
            params.push(Value::Integer(q.limit.map(|l| l as i64).unwrap_or(-1)));
            params.push(Value::Integer(q.offset as i64));
        }
        let mut stmt = self.conn.prepare_cached(&sql).map_err(|e| self.err(e))?;
        let mut rows = stmt.query(params_from_iter(params)).map_err(|e| self.err(e))?;
        while let Some(row) = rows.next().map_err(|e| self.err(e))? {
            let user = self.decode(RawUser::read(row).map_err(|e| self.err(e))?)?;
            if !visit(user) {
                break;
            }
        }
        Ok(())
    }

    pub(super) fn user_stamps_impl(&self, q: &UserQuery) -> StoreResult<Vec<UserStamp>> {
        let (clause, params) = where_clause(q);
        let sql = format!("SELECT u.source_uid, u.record_uid, u.username, u.updated_at{clause}");
        let mut stmt = self.conn.prepare_cached(&sql).map_err(|e| self.err(e))?;
        let mut rows = stmt.query(params_from_iter(params)).map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        while let Some(r) = rows.next().map_err(|e| self.err(e))? {
            let read = || -> rusqlite::Result<(String, String, String, String)> {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            };
            let (source, record, username, at) = read().map_err(|e| self.err(e))?;
            let updated_at = DateTime::parse_from_rfc3339(&at)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|e| self.corrupt(format!("user {username}: bad updated_at '{at}': {e}")))?;
            out.push(UserStamp {
                key: UserKey::new(source, record),
                username,
                updated_at,
            });
        }
        Ok(out)
    }

    pub(super) fn count_users_impl(&self, q: &UserQuery) -> StoreResult<u64> {
        let (clause, params) = where_clause(q);
        let sql = format!("SELECT COUNT(*){clause}");
        let mut stmt = self.conn.prepare_cached(&sql).map_err(|e| self.err(e))?;
        stmt.query_row(params_from_iter(params), |r| r.get::<_, i64>(0))
            .map(|n| n as u64)
            .map_err(|e| self.err(e))
    }

    pub(super) fn groups_impl(&self, school: Option<&str>, kind: Option<GroupKind>) -> StoreResult<Vec<GroupSummary>> {
        let mut sql = String::from(
            "SELECT g.school, g.kind, g.name, (SELECT COUNT(*) FROM group_members m WHERE m.group_id = g.id) \
             FROM groups g WHERE 1 = 1",
        );
        let mut params: Vec<Value> = Vec::new();
        if let Some(s) = school {
            sql.push_str(" AND g.school = ?");
            params.push(Value::Text(s.to_string()));
        }
        if let Some(k) = kind {
            sql.push_str(" AND g.kind = ?");
            params.push(Value::Text(k.as_str().to_string()));
        }
        sql.push_str(" ORDER BY g.school, g.kind, g.name");
        let mut stmt = self.conn.prepare_cached(&sql).map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(params_from_iter(params), |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, i64>(3)?,
                ))
            })
            .map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for row in rows {
            let (school, kind, name, members) = row.map_err(|e| self.err(e))?;
            let kind = GroupKind::parse(&kind)
                .ok_or_else(|| self.corrupt(format!("group {school}/{name}: bad kind '{kind}'")))?;
            out.push(GroupSummary {
                key: GroupKey::new(school, kind, name),
                members: members as u64,
            });
        }
        Ok(out)
    }

    pub(super) fn group_impl(&self, key: &GroupKey) -> StoreResult<Option<Group>> {
        let id: Option<i64> = self
            .conn
            .prepare_cached("SELECT id FROM groups WHERE school = ?1 AND kind = ?2 AND name = ?3")
            .and_then(|mut s| {
                s.query_row([&key.school, key.kind.as_str(), &key.name], |r| r.get(0))
                    .optional()
            })
            .map_err(|e| self.err(e))?;
        let Some(id) = id else { return Ok(None) };
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT u.source_uid, u.record_uid, u.username FROM group_members m \
                 JOIN users u ON u.id = m.user_id WHERE m.group_id = ?1 ORDER BY u.username",
            )
            .map_err(|e| self.err(e))?;
        let members = stmt
            .query_map([id], |r| {
                Ok(GroupMember {
                    key: UserKey::new(r.get::<_, String>(0)?, r.get::<_, String>(1)?),
                    username: r.get(2)?,
                })
            })
            .map_err(|e| self.err(e))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.err(e))?;
        Ok(Some(Group {
            key: key.clone(),
            members,
        }))
    }

    pub(super) fn journal_after_impl(&self, after: u64, limit: usize) -> StoreResult<Vec<JournalEntry>> {
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
        let mut out = Vec::new();
        for row in rows {
            let (seq, object, schools, at) = row.map_err(|e| self.err(e))?;
            let object: ObjectRef = object
                .parse()
                .map_err(|e| self.corrupt(format!("journal entry {seq}: {e}")))?;
            let schools: Vec<String> = serde_json::from_str(&schools)
                .map_err(|e| self.corrupt(format!("journal entry {seq}: schools: {e}")))?;
            let at = DateTime::parse_from_rfc3339(&at)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|e| self.corrupt(format!("journal entry {seq}: time '{at}': {e}")))?;
            out.push(JournalEntry {
                seq: seq as u64,
                object,
                schools,
                at,
            });
        }
        Ok(out)
    }
}
