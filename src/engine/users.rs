//! Looking users up, and the shape in which they are shown (`users show`,
//! `users list`, `--json`).

use super::received::{HistoryEntry, Received};
use super::{Engine, EngineError, EngineResult};
use crate::model::{Role, User, UserKey};
use crate::store::UserQuery;
use serde::Serialize;
use std::collections::BTreeMap;

/// A user as shown to admins and scripts.
#[derive(Clone, Debug, Serialize)]
pub struct UserView {
    pub username: String,
    pub record_uid: String,
    pub source_uid: String,
    pub firstname: String,
    pub lastname: String,
    pub email: Option<String>,
    pub birthday: Option<String>,
    pub roles: Vec<Role>,
    /// Primary first.
    pub schools: Vec<String>,
    pub primary_school: String,
    pub classes: BTreeMap<String, Vec<String>>,
    pub workgroups: BTreeMap<String, Vec<String>>,
    /// Roles per school.
    pub school_roles: BTreeMap<String, Vec<Role>>,
    pub disabled: bool,
    pub state: &'static str,
    pub purge_at: Option<String>,
    /// A user in limbo still active until this day
    /// (`import.deactivation_grace_days`).
    pub deactivate_at: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl From<&User> for UserView {
    fn from(u: &User) -> Self {
        UserView {
            username: u.username.clone(),
            record_uid: u.key.record_uid.clone(),
            source_uid: u.key.source_uid.clone(),
            firstname: u.firstname.clone(),
            lastname: u.lastname.clone(),
            email: u.email.clone(),
            birthday: u.birthday.map(|d| d.to_string()),
            roles: u.roles().into_iter().collect(),
            schools: u.school_names().map(str::to_string).collect(),
            primary_school: u.primary_school().to_string(),
            classes: u.classes(),
            workgroups: u.workgroups(),
            school_roles: u
                .memberships
                .iter()
                .map(|m| (m.school.clone(), m.roles.iter().copied().collect()))
                .collect(),
            disabled: u.disabled,
            state: u.state.as_str(),
            purge_at: u.purge_at.map(|d| d.to_string()),
            deactivate_at: u.deactivate_at.map(|d| d.to_string()),
            created_at: u.created_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            updated_at: u.updated_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        }
    }
}

/// A user with what the feeds last said about it.
#[derive(Clone, Debug, Serialize)]
pub struct UserDetail {
    #[serde(flatten)]
    pub user: UserView,
    pub last_received: Option<Received>,
}

/// How `users show` names a user.
#[derive(Clone, Debug)]
pub enum UserSelector {
    Username(String),
    RecordUid {
        record_uid: String,
        source_uid: Option<String>,
    },
}

impl Engine {
    pub fn find_user(&self, selector: &UserSelector) -> EngineResult<User> {
        let found = match selector {
            UserSelector::Username(name) => self.dir.user_by_username(name)?,
            UserSelector::RecordUid { record_uid, source_uid } => {
                let source = source_uid
                    .clone()
                    .unwrap_or_else(|| self.config().import.source_uid.clone());
                self.dir.user(&UserKey::new(source, record_uid.clone()))?
            }
        };
        found.ok_or_else(|| {
            EngineError::NotFound(match selector {
                UserSelector::Username(n) => format!("no user '{n}'"),
                UserSelector::RecordUid { record_uid, .. } => format!("no user with record_uid '{record_uid}'"),
            })
        })
    }

    pub fn user_detail(&self, selector: &UserSelector) -> EngineResult<UserDetail> {
        let user = self.find_user(selector)?;
        let last_received = self.state.last_received(&user.key)?;
        Ok(UserDetail {
            user: UserView::from(&user),
            last_received,
        })
    }

    /// What the feeds said about a user, newest first (see
    /// [`crate::engine::received`]).
    pub fn user_history(&self, selector: &UserSelector) -> EngineResult<(UserView, Vec<HistoryEntry>)> {
        let user = self.find_user(selector)?;
        let history = self.state.history(&user.key)?;
        Ok((UserView::from(&user), history))
    }

    /// Streams the users matching `query`.
    pub fn for_each_user(&self, query: &UserQuery, visit: &mut dyn FnMut(User) -> bool) -> EngineResult<()> {
        Ok(self.dir.for_each_user(query, visit)?)
    }
}
