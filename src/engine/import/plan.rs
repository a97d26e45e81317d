//! The import planner: from validated rows, the users they name and the
//! run's scope, the complete list of changes (created, modified, unchanged,
//! added_school, removed_school, to_limbo, restored) before anything is
//! written. Pure apart from asking the name registry for free usernames.

use super::row::{Row, RowError};
use super::scope::Scope;
use crate::engine::password;
use crate::engine::scheme::{Counter, EmailScheme, NameRegistry, SchemeError, SchemeFields, UsernameScheme};
use crate::model::School;
use crate::model::{Membership, Role, User, UserKey, UserState};
use crate::store::StoreError;
use crate::store::{Batch, UserChange};
use chrono::{DateTime, Days, NaiveDate, Utc};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Created,
    Modified,
    Unchanged,
    AddedSchool,
    RemovedSchool,
    ToLimbo,
    Restored,
    /// Left the last school with `import.deletion_grace_days = 0`: deleted
    /// by the import itself.
    Deleted,
}

impl Action {
    pub const ALL: [Action; 8] = [
        Action::Created,
        Action::Modified,
        Action::Unchanged,
        Action::AddedSchool,
        Action::RemovedSchool,
        Action::ToLimbo,
        Action::Restored,
        Action::Deleted,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Action::Created => "created",
            Action::Modified => "modified",
            Action::Unchanged => "unchanged",
            Action::AddedSchool => "added_school",
            Action::RemovedSchool => "removed_school",
            Action::ToLimbo => "to_limbo",
            Action::Restored => "restored",
            Action::Deleted => "deleted",
        }
    }
}

/// One planned change.
#[derive(Clone, Debug)]
pub struct Planned {
    pub action: Action,
    /// The feed line, for rows (not for removals).
    pub line: Option<u64>,
    /// The stored state a change is made from; `None` for created and
    /// unchanged users.
    pub before: Option<User>,
    pub after: User,
    /// The initial password of a created user (plaintext, only in memory).
    pub password: Option<String>,
}

/// Everything the planner needs besides the rows.
pub struct PlanSettings<'a> {
    pub scope: Scope<'a>,
    pub limbo_school: &'a str,
    pub today: NaiveDate,
    pub now: DateTime<Utc>,
    /// Days in limbo before the purge; 0: deleted at once.
    pub grace_days: u32,
    /// Days a user in limbo stays active; 0: deactivated at once.
    pub deactivation_days: u32,
    /// Leave users missing from the feed alone.
    pub no_delete: bool,
    /// New users are created active.
    pub activate_new: bool,
    pub usernames: &'a UsernameScheme,
    pub emails: Option<&'a EmailScheme>,
}

/// The planner's result.
#[derive(Clone, Debug, Default)]
pub struct Plan {
    pub items: Vec<Planned>,
    /// Rows that could not be planned (e.g. no free username).
    pub errors: Vec<RowError>,
    pub scope_size: usize,
    /// Whether removals were left out (a row error without a record uid).
    pub removals_blocked: bool,
    /// Username counters to persist.
    pub counters: Vec<(String, u32)>,
}

impl Plan {
    pub fn count(&self, action: Action) -> u64 {
        self.items.iter().filter(|p| p.action == action).count() as u64
    }

    pub fn counts(&self) -> BTreeMap<Action, u64> {
        Action::ALL.iter().map(|a| (*a, self.count(*a))).collect()
    }

    /// removed_school + to_limbo + deleted: what the mass-removal guard
    /// weighs.
    pub fn removals(&self) -> u64 {
        self.count(Action::RemovedSchool) + self.count(Action::ToLimbo) + self.count(Action::Deleted)
    }

    /// The writes of this plan. Unchanged users write nothing.
    pub fn batch(&self, schools: Vec<School>) -> Batch {
        let users = self
            .items
            .iter()
            .filter_map(|p| match (&p.before, p.action) {
                (_, Action::Unchanged) => None,
                (Some(b), Action::Deleted) => Some(UserChange::Delete(b.clone())),
                (None, _) => Some(UserChange::Create(p.after.clone())),
                (Some(b), _) => Some(UserChange::Update {
                    before: b.clone(),
                    after: p.after.clone(),
                }),
            })
            .collect();
        Batch {
            schools,
            users,
            counters: self.counters.clone(),
        }
    }
}

/// Usernames (and counters) issued by plans that are not written yet: a
/// pipelined import plans the next feed before the current one is written,
/// and must not hand out the same names twice. Each entry remembers which
/// plan (by its place in the batch) issued it, so the reservations of plans
/// that are thrown away can be dropped.
#[derive(Debug, Default)]
pub struct Reservations {
    names: HashMap<String, usize>,
    counters: HashMap<String, (u32, usize)>,
}

impl Reservations {
    pub fn add(&mut self, plan: usize, names: HashSet<String>, counters: &[(String, u32)]) {
        self.names.extend(names.into_iter().map(|n| (n, plan)));
        for (base, n) in counters {
            let e = self.counters.entry(base.clone()).or_insert((*n, plan));
            if *n >= e.0 {
                *e = (*n, plan);
            }
        }
    }

    /// Drops what plans `from` and later reserved.
    pub fn forget_from(&mut self, from: usize) {
        self.names.retain(|_, p| *p < from);
        self.counters.retain(|_, (_, p)| *p < from);
    }
}

/// Names issued while planning, on top of what the directory knows, with
/// what was fetched in advance so most names need no query of their own.
pub struct PlanNames<'a> {
    pub dir: &'a dyn crate::store::Directory,
    carry: Option<&'a Reservations>,
    reserved: HashSet<String>,
    counters: BTreeMap<String, u32>,
    /// Names known issued / known free, and bases known to have (or not to
    /// have) a stored counter.
    taken: HashSet<String>,
    free: HashSet<String>,
    stored_counters: HashMap<String, Option<u32>>,
    /// Username bases computed while prefetching, by record uid.
    bases: HashMap<String, String>,
}

impl<'a> PlanNames<'a> {
    pub fn new(dir: &'a dyn crate::store::Directory, carry: Option<&'a Reservations>) -> Self {
        PlanNames {
            dir,
            carry,
            reserved: HashSet::new(),
            counters: BTreeMap::new(),
            taken: HashSet::new(),
            free: HashSet::new(),
            stored_counters: HashMap::new(),
            bases: HashMap::new(),
        }
    }

    /// Looks up, in a few batched queries, the first candidate names and the
    /// counters of these people's bases.
    pub fn prefetch(&mut self, scheme: &UsernameScheme, people: &[SchemeFields<'_>]) -> Result<(), StoreError> {
        self.bases = people
            .iter()
            .filter_map(|f| Some((f.record_uid.to_string(), scheme.base(f).ok()?)))
            .collect();
        // How many newcomers share each base.
        let mut sharing: BTreeMap<&str, u32> = BTreeMap::new();
        for b in self.bases.values() {
            *sharing.entry(b.as_str()).or_default() += 1;
        }
        let bases: Vec<String> = sharing.keys().map(|b| b.to_string()).collect();
        let stored = self.dir.username_counters(&bases)?;
        // The names these people will probably get: the first candidate and
        // as many counter values as people share the base, asked in one
        // batch instead of one query per probe (a round trip each on LDAP).
        let first_counter = match scheme.counter() {
            Counter::Always => 1,
            _ => 2,
        };
        let mut wanted = Vec::new();
        for (base, k) in &sharing {
            wanted.push(scheme.first_candidate(base));
            if scheme.counter() != Counter::None {
                let start = stored.get(*base).copied().unwrap_or(first_counter).max(first_counter);
                wanted.extend((start..start.saturating_add(*k)).map(|n| scheme.candidate(base, Some(n))));
            }
        }
        wanted.sort_unstable();
        wanted.dedup();
        self.taken = self.dir.usernames_issued(&wanted)?;
        self.free = wanted.into_iter().filter(|n| !self.taken.contains(n)).collect();
        self.stored_counters = bases
            .into_iter()
            .map(|b| {
                let n = stored.get(&b).copied();
                (b, n)
            })
            .collect();
        Ok(())
    }

    /// Allocates a username, reusing the base computed while prefetching.
    pub(super) fn allocate(
        &mut self,
        scheme: &UsernameScheme,
        fields: &SchemeFields<'_>,
    ) -> Result<String, SchemeError> {
        match self.bases.remove(fields.record_uid) {
            Some(base) => scheme.allocate_base(base, self),
            None => scheme.allocate(fields, self),
        }
    }

    /// Hands the counters to persist to the plan; returns the names issued.
    pub fn into_plan(self, plan: &mut Plan) -> HashSet<String> {
        plan.counters = self.counters.into_iter().collect();
        self.reserved
    }
}

impl NameRegistry for PlanNames<'_> {
    fn is_taken(&mut self, username: &str) -> Result<bool, SchemeError> {
        if self.reserved.contains(username)
            || self.taken.contains(username)
            || self.carry.is_some_and(|c| c.names.contains_key(username))
        {
            return Ok(true);
        }
        if self.free.contains(username) {
            return Ok(false);
        }
        self.dir
            .username_issued(username)
            .map_err(|e| SchemeError::Registry(e.to_string()))
    }

    fn counter(&mut self, base: &str) -> Result<Option<u32>, SchemeError> {
        if let Some(n) = self.counters.get(base) {
            return Ok(Some(*n));
        }
        if let Some((n, _)) = self.carry.and_then(|c| c.counters.get(base)) {
            return Ok(Some(*n));
        }
        if let Some(n) = self.stored_counters.get(base) {
            return Ok(*n);
        }
        self.dir
            .username_counter(base)
            .map_err(|e| SchemeError::Registry(e.to_string()))
    }

    fn issue(&mut self, username: &str, base: &str, next_counter: Option<u32>) {
        self.reserved.insert(username.to_string());
        // A counter of 2 or less only says "probe from the start", which is
        // what an absent counter means too: only larger ones are worth a write.
        if let Some(n) = next_counter.filter(|n| *n > 2) {
            self.counters.insert(base.to_string(), n);
        }
    }
}

/// Sets the row's attributes on a user.
fn apply_attributes(user: &mut User, row: &Row, keep_missing_email: bool) {
    user.firstname.clone_from(&row.firstname);
    user.lastname.clone_from(&row.lastname);
    match &row.email {
        Some(e) => user.email = Some(e.clone()),
        None if keep_missing_email => {}
        None => user.email = None,
    }
    user.birthday = row.birthday;
}

/// Sets the user's membership in the imported school from the row: the
/// run's roles are replaced by the row's (other roles in the school stay,
/// with their contributions); each of the row's roles contributes the row's
/// classes and workgroups, or keeps its own where the feed has no such
/// column; the run's roles the row does not name lose theirs.
fn apply_membership(m: &mut Membership, row: &Row, run_roles: &BTreeSet<Role>) {
    // The common case without building maps: one role before and after,
    // and this run speaks for it.
    if m.by_role.is_empty() && m.roles.len() == 1 && row.roles.len() == 1 && m.roles.is_subset(run_roles) {
        let same_role = m.roles == row.roles;
        if !same_role {
            m.roles.clone_from(&row.roles);
        }
        match &row.classes {
            Some(c) => m.classes.clone_from(c),
            None if !same_role => m.classes.clear(),
            None => {}
        }
        match &row.workgroups {
            Some(w) => m.workgroups.clone_from(w),
            None if !same_role => m.workgroups.clear(),
            None => {}
        }
        return;
    }
    let mut by_role = m.contributions();
    by_role.retain(|r, _| !run_roles.contains(r) || row.roles.contains(r));
    for r in &row.roles {
        let c = by_role.entry(*r).or_default();
        if let Some(classes) = &row.classes {
            c.classes.clone_from(classes);
        }
        if let Some(w) = &row.workgroups {
            c.workgroups.clone_from(w);
        }
    }
    m.set_contributions(by_role);
}

fn new_membership(school: &str, row: &Row) -> Membership {
    let mut m = Membership::new(school, row.roles.clone());
    m.classes = row.classes.clone().unwrap_or_default();
    m.workgroups = row.workgroups.clone().unwrap_or_default();
    if row.roles.len() > 1 {
        m.make_explicit();
    }
    m
}

/// Computes the plan. `existing` holds the users of this source named by
/// the rows (by record uid); `scope` the users in scope; `protected` the
/// record uids of rejected rows, which are never removed.
pub fn plan(
    s: &PlanSettings<'_>,
    rows: &[Row],
    existing: &HashMap<&str, &User>,
    scope: &[User],
    protected: &HashSet<String>,
    block_removals: bool,
    names: &mut PlanNames<'_>,
) -> Plan {
    let school = s.scope.school;
    let mut out = Plan {
        scope_size: scope.len(),
        removals_blocked: block_removals,
        ..Plan::default()
    };
    let keep_email = s.emails.is_some();
    for row in rows {
        let planned = match existing.get(row.record_uid.as_str()).copied() {
            Some(before) if before.state == UserState::Limbo => {
                let mut after = before.clone();
                after.memberships = vec![new_membership(school, row)];
                after.state = UserState::Active;
                after.disabled = false;
                after.purge_at = None;
                after.deactivate_at = None;
                apply_attributes(&mut after, row, keep_email);
                after.updated_at = s.now;
                (Action::Restored, Some(before.clone()), after, None)
            }
            Some(before) => {
                let mut after = before.clone();
                apply_attributes(&mut after, row, keep_email);
                let action = match after.membership_mut(school) {
                    Some(m) => {
                        apply_membership(m, row, s.scope.roles);
                        if after.same_content(before) {
                            Action::Unchanged
                        } else {
                            Action::Modified
                        }
                    }
                    None => {
                        after.add_membership(new_membership(school, row));
                        Action::AddedSchool
                    }
                };
                if action == Action::Unchanged {
                    (action, None, after, None)
                } else {
                    after.updated_at = s.now;
                    (action, Some(before.clone()), after, None)
                }
            }
            None => match create(s, row, names) {
                Ok((user, pw)) => (Action::Created, None, user, Some(pw)),
                Err(message) => {
                    out.errors.push(RowError {
                        line: row.line,
                        record_uid: Some(row.record_uid.clone()),
                        message,
                    });
                    continue;
                }
            },
        };
        let (action, before, after, password) = planned;
        out.items.push(Planned {
            action,
            line: Some(row.line),
            before,
            after,
            password,
        });
    }
    if block_removals || s.no_delete {
        return out;
    }
    let in_feed: HashSet<&str> = rows.iter().map(|r| r.record_uid.as_str()).collect();
    let mut leaving: Vec<&User> = scope
        .iter()
        .filter(|u| !in_feed.contains(u.key.record_uid.as_str()) && !protected.contains(&u.key.record_uid))
        .collect();
    leaving.sort_by(|a, b| a.username.cmp(&b.username));
    for before in leaving {
        let (action, after) = remove(s, before);
        out.items.push(Planned {
            action,
            line: None,
            before: Some(before.clone()),
            after,
            password: None,
        });
    }
    out
}

/// A user in scope that the feed no longer lists.
fn remove(s: &PlanSettings<'_>, before: &User) -> (Action, User) {
    let school = s.scope.school;
    let mut after = before.clone();
    after.updated_at = s.now;
    if let Some(m) = after.membership_mut(school) {
        let mut by_role = m.contributions();
        by_role.retain(|r, _| !s.scope.roles.contains(r));
        if !by_role.is_empty() {
            // Still in the school through a role this run does not import;
            // the run's roles take their contributions with them.
            m.set_contributions(by_role);
            return (Action::Modified, after);
        }
    }
    after.remove_membership(school);
    if !after.memberships.is_empty() {
        return (Action::RemovedSchool, after);
    }
    if s.grace_days == 0 {
        return (Action::Deleted, after);
    }
    after.memberships = vec![Membership::new(s.limbo_school, before.roles())];
    after.state = UserState::Limbo;
    if s.deactivation_days == 0 {
        after.disabled = true;
    } else if after.deactivate_at.is_none() && !after.disabled {
        after.deactivate_at = s.today.checked_add_days(Days::new(u64::from(s.deactivation_days)));
    }
    if after.purge_at.is_none() {
        after.purge_at = s.today.checked_add_days(Days::new(u64::from(s.grace_days)));
    }
    (Action::ToLimbo, after)
}

/// A new user from a row.
fn create(s: &PlanSettings<'_>, row: &Row, names: &mut PlanNames<'_>) -> Result<(User, String), String> {
    let fields = SchemeFields {
        firstname: &row.firstname,
        lastname: &row.lastname,
        record_uid: &row.record_uid,
        username: None,
    };
    let username = names
        .allocate(s.usernames, &fields)
        .map_err(|e| format!("no username: {e}"))?;
    let email = match (&row.email, s.emails) {
        (Some(e), _) => Some(e.clone()),
        (None, Some(scheme)) => Some(
            scheme
                .render(&SchemeFields {
                    username: Some(&username),
                    ..fields
                })
                .map_err(|e| format!("no e-mail address: {e}"))?,
        ),
        (None, None) => None,
    };
    let pw = password::generate();
    let user = User {
        key: UserKey::new(s.scope.source_uid, row.record_uid.clone()),
        username,
        firstname: row.firstname.clone(),
        lastname: row.lastname.clone(),
        email,
        birthday: row.birthday,
        memberships: vec![new_membership(s.scope.school, row)],
        disabled: !s.activate_new,
        state: UserState::Active,
        purge_at: None,
        deactivate_at: None,
        // Hashed at commit time, and only when the password is recorded.
        password_hash: None,
        created_at: s.now,
        updated_at: s.now,
    };
    Ok((user, pw))
}
