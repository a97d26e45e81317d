//! Reads shaped for overviews: the dashboard's counts, the schools table
//! with users per role and classes, and pages of users for virtualised
//! tables. Each is one call, cheap enough at a million users (see
//! BENCHMARKS.md, console).

use super::runs::RunRecord;
use super::{Engine, EngineResult};
use crate::model::{Role, User, UserState};
use crate::store::{BoundedCount, UserQuery};
use chrono::NaiveDate;
use serde::Serialize;
use std::collections::BTreeMap;

/// The dashboard's numbers.
#[derive(Clone, Debug, Serialize)]
pub struct Overview {
    /// Where the directory lives (`sqlite:/…`).
    pub directory: String,
    /// Schools, the limbo school not counted.
    pub schools: u64,
    pub users: u64,
    pub active: u64,
    pub limbo: u64,
    /// Limbo users per purge date, soonest first.
    pub next_purges: Vec<(NaiveDate, u64)>,
    /// Limbo users whose purge date has passed (a purge is due).
    pub purge_due: u64,
    /// The newest runs, newest first.
    pub last_runs: Vec<RunRecord>,
    pub today: NaiveDate,
    pub read_only: bool,
    /// Schools whose last feed is older than `import.stale_after_days`.
    pub stale_schools: Vec<String>,
    /// The directory change listener (LDAP directories, once one ran).
    pub listener: Option<crate::store::ldap::ListenerStatus>,
}

/// One row of the schools table.
#[derive(Clone, Debug, Serialize)]
pub struct SchoolRow {
    pub name: String,
    pub display_name: String,
    pub limbo: bool,
    pub users: u64,
    /// Users per role in this school.
    pub roles: BTreeMap<Role, u64>,
    pub classes: u64,
}

/// One row of a users table: what fits on a line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct UserRow {
    pub username: String,
    pub record_uid: String,
    pub firstname: String,
    pub lastname: String,
    pub state: UserState,
    pub disabled: bool,
    /// Primary first.
    pub schools: Vec<String>,
    pub roles: Vec<Role>,
    pub purge_at: Option<NaiveDate>,
}

impl From<User> for UserRow {
    fn from(u: User) -> Self {
        UserRow {
            roles: u.roles().into_iter().collect(),
            schools: u.school_names().map(str::to_string).collect(),
            username: u.username,
            record_uid: u.key.record_uid,
            firstname: u.firstname,
            lastname: u.lastname,
            state: u.state,
            disabled: u.disabled,
            purge_at: u.purge_at,
        }
    }
}

/// How many of the newest runs the dashboard shows.
pub const OVERVIEW_RUNS: usize = 8;
/// How many purge dates the dashboard shows.
pub const OVERVIEW_PURGE_DATES: usize = 6;

impl Engine {
    pub fn overview(&self) -> EngineResult<Overview> {
        let limbo_school = self.config().import.limbo_school.clone();
        let today = self.today();
        let schools = self.dir.schools()?.iter().filter(|s| s.name != limbo_school).count() as u64;
        let users = self.dir.count_users(&UserQuery::default())?;
        let limbo = self.count_by_state(UserState::Limbo)?;
        let purge_due = self.dir.count_users(&UserQuery {
            purge_due: Some(today),
            ..UserQuery::default()
        })?;
        let last_runs = self.runs.list(&|_| true, OVERVIEW_RUNS)?;
        Ok(Overview {
            directory: self.dir.describe(),
            schools,
            users,
            active: users.saturating_sub(limbo),
            limbo,
            next_purges: self.dir.purge_dates(OVERVIEW_PURGE_DATES)?,
            purge_due,
            last_runs,
            today,
            read_only: self.read_only(),
            stale_schools: self.stale_schools()?,
            listener: self.listener_status()?,
        })
    }

    /// Users holding each role, summed over schools (a user in two schools
    /// counts twice); the limbo school not counted. A pass over every
    /// membership (about a second at a million users), so the dashboard asks
    /// for it separately from [`Engine::overview`].
    pub fn role_memberships(&self) -> EngineResult<Vec<(Role, u64)>> {
        let limbo_school = &self.config().import.limbo_school;
        let mut roles: BTreeMap<Role, u64> = Role::ALL.iter().map(|r| (*r, 0)).collect();
        for c in self.dir.membership_counts()? {
            if &c.school != limbo_school {
                *roles.entry(c.role).or_default() += c.users;
            }
        }
        Ok(roles.into_iter().collect())
    }

    /// Every school with its users per role and its number of classes.
    pub fn school_rows(&self) -> EngineResult<Vec<SchoolRow>> {
        let mut roles: BTreeMap<String, BTreeMap<Role, u64>> = BTreeMap::new();
        for c in self.dir.membership_counts()? {
            roles.entry(c.school).or_default().insert(c.role, c.users);
        }
        let classes = self.dir.class_counts()?;
        Ok(self
            .schools_list()?
            .into_iter()
            .map(|s| SchoolRow {
                roles: roles.remove(&s.name).unwrap_or_default(),
                classes: classes.get(&s.name).copied().unwrap_or(0),
                name: s.name,
                display_name: s.display_name,
                limbo: s.limbo,
                users: s.users,
            })
            .collect())
    }

    /// One page of users (the query's offset and limit), as table rows.
    pub fn user_rows(&self, query: &UserQuery) -> EngineResult<Vec<UserRow>> {
        let mut out = Vec::with_capacity(query.limit.unwrap_or(64) as usize);
        self.dir.for_each_user(query, &mut |u| {
            out.push(UserRow::from(u));
            true
        })?;
        Ok(out)
    }

    /// How many users match, counting at most `cap`.
    pub fn count_users_bounded(&self, query: &UserQuery, cap: u64) -> EngineResult<BoundedCount> {
        Ok(self.dir.count_users_bounded(query, cap)?)
    }
}
