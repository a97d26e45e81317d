//! Users: identity key, attributes, and per-school memberships (roles,
//! classes, workgroups). The first membership is the primary school.

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

/// A user's membership in one school.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Membership {
    pub school: String,
    pub roles: BTreeSet<Role>,
    #[serde(default)]
    pub classes: BTreeSet<String>,
    #[serde(default)]
    pub workgroups: BTreeSet<String>,
}

impl Membership {
    pub fn new(school: impl Into<String>, roles: BTreeSet<Role>) -> Self {
        Membership {
            school: school.into(),
            roles,
            classes: BTreeSet::new(),
            workgroups: BTreeSet::new(),
        }
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

    #[test]
    fn removing_primary_promotes_first_sorted() {
        let mut u = user(&["m", "a", "z"]);
        u.remove_membership("m");
        assert_eq!(u.primary_school(), "a");
    }
}
