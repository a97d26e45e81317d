//! The scope of an import run: the users of this source that are active in
//! the imported school with one of the imported roles. Exactly these users
//! can be removed by the run.

use crate::model::{Role, User, UserState};
use crate::store::UserQuery;
use std::collections::BTreeSet;

/// The run's scope definition.
#[derive(Clone, Debug)]
pub struct Scope<'a> {
    pub source_uid: &'a str,
    pub school: &'a str,
    pub roles: &'a BTreeSet<Role>,
}

impl Scope<'_> {
    pub fn contains(&self, user: &User) -> bool {
        user.key.source_uid == self.source_uid
            && user.state == UserState::Active
            && user
                .membership(self.school)
                .is_some_and(|m| m.roles.iter().any(|r| self.roles.contains(r)))
    }

    /// The directory query for the users in scope.
    pub fn query(&self) -> UserQuery {
        UserQuery {
            school: Some(self.school.to_string()),
            state: Some(UserState::Active),
            source_uid: Some(self.source_uid.to_string()),
            roles: self.roles.iter().copied().collect(),
            ..UserQuery::default()
        }
    }
}
