//! Users: identity key, attributes, and per-school memberships (roles,
//! classes, workgroups). The first membership is the primary school.
//!
//! A person's classes and workgroups in a school are the union of what each
//! of their roles' feeds gives there (the role's *contribution*), so the
//! per-role feeds of one school commute.

use super::Role;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// The immutable identity of a user: which source it came from and its
/// globally unique id in that source.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct UserKey {
    pub source_uid: String,
    pub record_uid: String,
}

impl UserKey {
    pub fn new(source_uid: impl Into<String>, record_uid: impl Into<String>) -> Self {
        UserKey {
            source_uid: source_uid.into(),
            record_uid: record_uid.into(),
        }
    }
}

impl fmt::Display for UserKey {
    /// `source:record`, the external id used on remote authorities.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.source_uid, self.record_uid)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UserState {
    Active,
    Limbo,
}

impl UserState {
    pub fn as_str(self) -> &'static str {
        match self {
            UserState::Active => "active",
            UserState::Limbo => "limbo",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "active" => Some(UserState::Active),
            "limbo" => Some(UserState::Limbo),
            _ => None,
        }
    }
}

/// The classes and workgroups one role's feed gives a person in a school.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contribution {
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub classes: BTreeSet<String>,
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub workgroups: BTreeSet<String>,
}

impl Contribution {
    pub fn is_empty(&self) -> bool {
        self.classes.is_empty() && self.workgroups.is_empty()
    }
}

/// A user's membership in one school.
///
/// `classes` and `workgroups` are the union of the roles' contributions.
/// `by_role` holds each role's own contribution when the membership has
/// several roles (roles contributing nothing are left out); it is empty for
/// a single role, whose contribution is the union itself. A membership with
/// several roles, classes and an empty `by_role` comes from before
/// contributions were kept: every role then contributes all of it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Membership {
    pub school: String,
    pub roles: BTreeSet<Role>,
    #[serde(default)]
    pub classes: BTreeSet<String>,
    #[serde(default)]
    pub workgroups: BTreeSet<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub by_role: BTreeMap<Role, Contribution>,
}

impl Membership {
    pub fn new(school: impl Into<String>, roles: BTreeSet<Role>) -> Self {
        Membership {
            school: school.into(),
            roles,
            classes: BTreeSet::new(),
            workgroups: BTreeSet::new(),
            by_role: BTreeMap::new(),
        }
    }

    /// What one role contributes.
    pub fn contribution(&self, role: Role) -> Contribution {
        if self.by_role.is_empty() {
            if !self.roles.contains(&role) {
                return Contribution::default();
            }
            return Contribution {
                classes: self.classes.clone(),
                workgroups: self.workgroups.clone(),
            };
        }
        self.by_role.get(&role).cloned().unwrap_or_default()
    }

    /// Every role with its contribution.
    pub fn contributions(&self) -> BTreeMap<Role, Contribution> {
        self.roles.iter().map(|r| (*r, self.contribution(*r))).collect()
    }

    /// Sets the roles (the map's keys) and their contributions; classes and
    /// workgroups become the union. The canonical form: `by_role` only with
    /// several roles, and without empty contributions.
    pub fn set_contributions(&mut self, mut by_role: BTreeMap<Role, Contribution>) {
        self.roles = by_role.keys().copied().collect();
        self.classes = by_role.values().flat_map(|c| c.classes.iter().cloned()).collect();
        self.workgroups = by_role.values().flat_map(|c| c.workgroups.iter().cloned()).collect();
        if by_role.len() < 2 {
            by_role.clear();
        } else {
            by_role.retain(|_, c| !c.is_empty());
        }
        self.by_role = by_role;
    }

    /// Whether it predates per-role contributions (several roles, groups,
    /// no `by_role`): every role then contributes everything.
    pub fn is_legacy(&self) -> bool {
        self.roles.len() > 1 && self.by_role.is_empty() && !(self.classes.is_empty() && self.workgroups.is_empty())
    }

    /// Writes the contributions out (what the migration to per-role
    /// contributions does to a legacy membership).
    pub fn make_explicit(&mut self) {
        let c = self.contributions();
        self.set_contributions(c);
    }
}

/// A person in the directory.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub key: UserKey,
    pub username: String,
    pub firstname: String,
    pub lastname: String,
    pub email: Option<String>,
    pub birthday: Option<NaiveDate>,
    /// Primary school first, the others sorted by name. Never empty: a user
    /// in limbo is a member of the limbo school.
    pub memberships: Vec<Membership>,
    pub disabled: bool,
    pub state: UserState,
    pub purge_at: Option<NaiveDate>,
    /// A user in limbo who is still active (`import.deactivation_grace_days`)
    /// is deactivated on this day by the daily pass or `limbo purge`.
    #[serde(default)]
    pub deactivate_at: Option<NaiveDate>,
    /// Hash of the initial password (`{CRYPT}$6$…` by default); never the plaintext.
    pub password_hash: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl User {
    pub fn primary_school(&self) -> &str {
        self.memberships.first().map(|m| m.school.as_str()).unwrap_or("")
    }

    /// School names, primary first.
    pub fn school_names(&self) -> impl Iterator<Item = &str> {
        self.memberships.iter().map(|m| m.school.as_str())
    }

    pub fn membership(&self, school: &str) -> Option<&Membership> {
        self.memberships.iter().find(|m| m.school == school)
    }

    pub fn membership_mut(&mut self, school: &str) -> Option<&mut Membership> {
        self.memberships.iter_mut().find(|m| m.school == school)
    }

    pub fn has_school(&self, school: &str) -> bool {
        self.membership(school).is_some()
    }

    /// The union of the roles over all schools.
    pub fn roles(&self) -> BTreeSet<Role> {
        self.memberships.iter().flat_map(|m| m.roles.iter().copied()).collect()
    }

    pub fn classes(&self) -> BTreeMap<String, Vec<String>> {
        self.memberships
            .iter()
            .filter(|m| !m.classes.is_empty())
            .map(|m| (m.school.clone(), m.classes.iter().cloned().collect()))
            .collect()
    }

    pub fn workgroups(&self) -> BTreeMap<String, Vec<String>> {
        self.memberships
            .iter()
            .filter(|m| !m.workgroups.is_empty())
            .map(|m| (m.school.clone(), m.workgroups.iter().cloned().collect()))
            .collect()
    }

    /// Adds a school as a secondary membership, keeping the others sorted.
    pub fn add_membership(&mut self, membership: Membership) {
        if self.memberships.is_empty() {
            self.memberships.push(membership);
            return;
        }
        let pos = self.memberships[1..]
            .iter()
            .position(|m| m.school > membership.school)
            .map(|p| p + 1)
            .unwrap_or(self.memberships.len());
        self.memberships.insert(pos, membership);
    }

    /// Removes a school. When it was the primary one, the first remaining
    /// school (sorted, which the secondary ones already are) becomes primary.
    pub fn remove_membership(&mut self, school: &str) -> Option<Membership> {
        let idx = self.memberships.iter().position(|m| m.school == school)?;
        Some(self.memberships.remove(idx))
    }

    /// Same person, same data: ignores timestamps.
    pub fn same_content(&self, other: &User) -> bool {
        self.key == other.key
            && self.username == other.username
            && self.firstname == other.firstname
            && self.lastname == other.lastname
            && self.email == other.email
            && self.birthday == other.birthday
            && self.memberships == other.memberships
            && self.disabled == other.disabled
            && self.state == other.state
            && self.purge_at == other.purge_at
            && self.deactivate_at == other.deactivate_at
            && self.password_hash == other.password_hash
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(schools: &[&str]) -> User {
        let now = Utc::now();
        User {
            key: UserKey::new("s", "1"),
            username: "u".into(),
            firstname: "F".into(),
            lastname: "L".into(),
            email: None,
            birthday: None,
            memberships: schools
                .iter()
                .map(|s| Membership::new(*s, [Role::Student].into()))
                .collect(),
            disabled: false,
            state: UserState::Active,
            purge_at: None,
            deactivate_at: None,
            password_hash: None,
            created_at: now,
            updated_at: now,
        }
    }

    #[test]
    fn add_keeps_primary_and_sorts_the_rest() {
        let mut u = user(&["m"]);
        u.add_membership(Membership::new("z", Default::default()));
        u.add_membership(Membership::new("a", Default::default()));
        assert_eq!(u.school_names().collect::<Vec<_>>(), ["m", "a", "z"]);
    }

    fn groups(classes: &[&str], workgroups: &[&str]) -> Contribution {
        Contribution {
            classes: classes.iter().map(|c| c.to_string()).collect(),
            workgroups: workgroups.iter().map(|c| c.to_string()).collect(),
        }
    }

    #[test]
    fn contributions_are_canonical() {
        let mut m = Membership::new("s", Default::default());
        m.set_contributions(
            [
                (Role::Teacher, groups(&["5a"], &["chor"])),
                (Role::Staff, groups(&[], &[])),
            ]
            .into(),
        );
        assert_eq!(m.roles, [Role::Teacher, Role::Staff].into());
        assert_eq!(m.classes, ["5a".to_string()].into());
        assert_eq!(m.by_role.len(), 1, "the staff role gives nothing");
        assert_eq!(m.contribution(Role::Staff), Contribution::default());
        assert_eq!(m.contribution(Role::Teacher), groups(&["5a"], &["chor"]));
        assert!(!m.is_legacy());
        // One role: its contribution is the union, nothing kept per role.
        m.set_contributions([(Role::Teacher, groups(&["5a"], &[]))].into());
        assert!(m.by_role.is_empty());
        assert_eq!(m.contribution(Role::Teacher), groups(&["5a"], &[]));
        assert_eq!(m.contribution(Role::Student), Contribution::default());
    }

    #[test]
    fn a_legacy_membership_gives_everything_to_every_role() {
        let mut m = Membership::new("s", [Role::Teacher, Role::Staff].into());
        m.classes = ["5a".to_string()].into();
        assert!(m.is_legacy());
        assert_eq!(m.contribution(Role::Staff), groups(&["5a"], &[]));
        m.make_explicit();
        assert!(!m.is_legacy());
        assert_eq!(m.by_role.len(), 2);
        assert_eq!(m.contribution(Role::Staff), groups(&["5a"], &[]));
    }

    #[test]
    fn removing_primary_promotes_first_sorted() {
        let mut u = user(&["m", "a", "z"]);
        u.remove_membership("m");
        assert_eq!(u.primary_school(), "a");
    }
}
