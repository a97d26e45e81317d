//! Converting between `users` rows and `User` values.

use super::SqliteDirectory;
use crate::model::{Membership, Role, User, UserKey, UserState};
use crate::store::StoreError;
use chrono::{DateTime, NaiveDate, Utc};
use rusqlite::Row;
use std::collections::BTreeSet;

/// The column list every user query selects, in the order `decode` reads.
pub const USER_COLUMNS: &str = "u.source_uid, u.record_uid, u.username, u.firstname, u.lastname, u.email, \
     u.birthday, u.disabled, u.state, u.purge_at, u.password_hash, u.memberships, u.created_at, u.updated_at, \
     u.deactivate_at";

/// The raw column values of one user row.
pub struct RawUser {
    source_uid: String,
    record_uid: String,
    username: String,
    firstname: String,
    lastname: String,
    email: Option<String>,
    birthday: Option<String>,
    disabled: bool,
    state: String,
    purge_at: Option<String>,
    password_hash: Option<String>,
    memberships: String,
    created_at: String,
    updated_at: String,
    deactivate_at: Option<String>,
}

impl RawUser {
    pub fn read(r: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(RawUser {
            source_uid: r.get(0)?,
            record_uid: r.get(1)?,
            username: r.get(2)?,
            firstname: r.get(3)?,
            lastname: r.get(4)?,
            email: r.get(5)?,
            birthday: r.get(6)?,
            disabled: r.get(7)?,
            state: r.get(8)?,
            purge_at: r.get(9)?,
            password_hash: r.get(10)?,
            memberships: r.get(11)?,
            created_at: r.get(12)?,
            updated_at: r.get(13)?,
            deactivate_at: r.get(14)?,
        })
    }
}

fn date(s: Option<String>, what: &str, user: &str) -> Result<Option<NaiveDate>, String> {
    s.map(|s| NaiveDate::parse_from_str(&s, "%Y-%m-%d").map_err(|e| format!("user {user}: bad {what} '{s}': {e}")))
        .transpose()
}

fn time(s: &str, what: &str, user: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("user {user}: bad {what} '{s}': {e}"))
}

impl SqliteDirectory {
    pub(super) fn decode(&self, raw: RawUser) -> Result<User, StoreError> {
        let user = raw.username.as_str();
        let inner = || -> Result<User, String> {
            Ok(User {
                birthday: date(raw.birthday.clone(), "birthday", user)?,
                purge_at: date(raw.purge_at.clone(), "purge date", user)?,
                deactivate_at: date(raw.deactivate_at.clone(), "deactivation date", user)?,
                state: UserState::parse(&raw.state).ok_or_else(|| format!("user {user}: bad state '{}'", raw.state))?,
                memberships: serde_json::from_str::<Vec<Membership>>(&raw.memberships)
                    .map_err(|e| format!("user {user}: bad memberships: {e}"))?,
                created_at: time(&raw.created_at, "created_at", user)?,
                updated_at: time(&raw.updated_at, "updated_at", user)?,
                key: UserKey::new(raw.source_uid.clone(), raw.record_uid.clone()),
                username: raw.username.clone(),
                firstname: raw.firstname.clone(),
                lastname: raw.lastname.clone(),
                email: raw.email.clone(),
                disabled: raw.disabled,
                password_hash: raw.password_hash.clone(),
            })
        };
        inner().map_err(|m| self.corrupt(m))
    }
}

pub fn date_str(d: Option<NaiveDate>) -> Option<String> {
    d.map(|d| d.format("%Y-%m-%d").to_string())
}

pub fn time_str(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// `,student,teacher,` — wrapped in commas so `LIKE '%,student,%'` matches
/// exactly one role.
pub fn roles_str(roles: &BTreeSet<Role>) -> String {
    let mut s = String::from(",");
    for r in roles {
        s.push_str(r.as_str());
        s.push(',');
    }
    s
}

pub fn memberships_json(user: &User) -> String {
    // Serializing plain data structures cannot fail.
    serde_json::to_string(&user.memberships).unwrap_or_else(|_| "[]".to_string())
}
