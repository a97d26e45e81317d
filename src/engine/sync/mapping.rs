//! What an authority should hold for one object: the directory's current
//! state, mapped through the authority's attribute mapping into a
//! target-neutral resource (SCIM-shaped JSON). The sender uses it at send
//! time, `trash show` to diff, and verify to compare with a target listing.

use crate::engine::config::{AuthorityConfig, OnRemoval};
use crate::model::{GroupKey, ObjectRef, User, UserKey, UserState};
use crate::store::{Directory, StoreError, UserQuery};
use serde::Serialize;
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, BTreeSet};

pub const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";

/// The two kinds of resources on a target.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Class {
    User,
    Group,
}

/// A directory object as the authority should see it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Mapped {
    pub class: Class,
    /// The identity key: `<source>:<record>` for users, the object
    /// reference (`class:<school>:<name>`, `school:<name>`) for groups.
    pub external_id: String,
    /// userName or displayName: what a uniqueness conflict is about.
    pub name: String,
    /// Attributes (with `schemas` and `externalId`), never members.
    pub attributes: Map<String, Value>,
    /// The attribute paths this mapping owns (compared and updated).
    #[serde(skip)]
    pub paths: Vec<String>,
    /// Groups: the external ids of the members (school groups: the
    /// school's active users).
    pub members: Option<Vec<String>>,
    /// Users: school groups (external ids) the user must be a member of,
    /// and those it must leave.
    pub school_groups: Vec<String>,
    pub left_school_groups: Vec<String>,
}

/// What the sender must make true on the target.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Desired {
    /// Create or update.
    Present(Mapped),
    /// A user out of scope, kept but deactivated (never created for this).
    Deactivated(Mapped),
    /// Not on the target: delete when there.
    Absent { class: Class, external_id: String },
    /// Nothing to send (e.g. schools when they are not groups).
    Skip,
}

impl Desired {
    /// What is recorded as "the payload sent": the mapped resource.
    pub fn payload(&self) -> Value {
        let mut v = serde_json::to_value(self).unwrap_or(Value::Null);
        scrub(&mut v);
        v
    }
}

/// Removes anything that looks like a secret from a payload.
pub fn scrub(v: &mut Value) {
    match v {
        Value::Object(map) => {
            map.retain(|k, _| {
                let k = k.to_ascii_lowercase();
                !(k.contains("password") || k.contains("secret") || k.contains("token"))
            });
            map.values_mut().for_each(scrub);
        }
        Value::Array(items) => items.iter_mut().for_each(scrub),
        _ => {}
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MapError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot map {object}: {message}")]
    Invalid { object: String, message: String },
}

/// The schools an authority receives.
#[derive(Clone, Debug)]
pub struct Scope {
    all: bool,
    schools: BTreeSet<String>,
    /// Taken away in the data dir (`sync-schools remove` of a TOML school).
    excluded: BTreeSet<String>,
    limbo: String,
    /// Whether a listed or excluded name holds an upper-case letter.
    mixed_case: bool,
}

fn any_upper(set: &BTreeSet<String>) -> bool {
    set.iter().any(|s| s.bytes().any(|b| b.is_ascii_uppercase()))
}

impl Scope {
    pub fn new(schools: &[String], limbo: &str) -> Self {
        let listed: BTreeSet<String> = schools.iter().filter(|s| *s != "*").cloned().collect();
        Scope {
            all: schools.iter().any(|s| s == "*"),
            mixed_case: any_upper(&listed),
            schools: listed,
            excluded: BTreeSet::new(),
            limbo: limbo.to_string(),
        }
    }

    /// The same scope without these schools (wins over `*`).
    pub fn excluding(mut self, excluded: BTreeSet<String>) -> Self {
        self.mixed_case |= any_upper(&excluded);
        self.excluded = excluded;
        self
    }

    pub fn is_limbo(&self, school: &str) -> bool {
        school == self.limbo
    }

    /// School names are case-insensitive: `GSA` in the config means `gsa`.
    pub fn contains(&self, school: &str) -> bool {
        // Exact lookups, unless some name holds an upper-case letter.
        let fold = self.mixed_case || school.bytes().any(|b| b.is_ascii_uppercase());
        let has = |set: &BTreeSet<String>| {
            set.contains(school) || (fold && set.iter().any(|s| s.eq_ignore_ascii_case(school)))
        };
        !school.eq_ignore_ascii_case(&self.limbo) && !has(&self.excluded) && (self.all || has(&self.schools))
    }

    /// Whether any of these schools is synced.
    pub fn any<'a>(&self, mut schools: impl Iterator<Item = &'a str>) -> bool {
        schools.any(|s| self.contains(s))
    }

    /// The explicitly listed schools (empty with `*`).
    pub fn listed(&self) -> (bool, &BTreeSet<String>) {
        (self.all, &self.schools)
    }
}

/// Maps directory objects for one authority.
#[derive(Clone, Debug)]
pub struct Mapper {
    user: Vec<(String, String)>,
    school_groups: bool,
    on_removal: OnRemoval,
    pub scope: Scope,
}

pub fn user_external_id(key: &UserKey) -> String {
    key.to_string()
}

fn set_path(attrs: &mut Map<String, Value>, path: &str, value: Value) {
    // `urn:…:User:attr.sub`: the extension's schema is everything before
    // the last ':'.
    let (container, rest) = match path.rfind(':') {
        Some(i) if path.starts_with("urn:") => {
            let urn = &path[..i];
            if let Some(Value::Array(schemas)) = attrs.get_mut("schemas")
                && !schemas.iter().any(|s| s == urn)
            {
                schemas.push(Value::String(urn.to_string()));
            }
            let entry = attrs
                .entry(urn.to_string())
                .or_insert_with(|| Value::Object(Map::new()));
            (entry, &path[i + 1..])
        }
        _ => {
            let (head, tail) = path.split_once('.').unwrap_or((path, ""));
            if tail.is_empty() {
                attrs.insert(head.to_string(), value);
                return;
            }
            let entry = attrs
                .entry(head.to_string())
                .or_insert_with(|| Value::Object(Map::new()));
            (entry, tail)
        }
    };
    let mut cur = container;
    let parts: Vec<&str> = rest.split('.').collect();
    for (i, part) in parts.iter().enumerate() {
        let Value::Object(map) = cur else { return };
        if i + 1 == parts.len() {
            map.insert(part.to_string(), value);
            return;
        }
        cur = map.entry(part.to_string()).or_insert_with(|| Value::Object(Map::new()));
    }
}

/// Reads a mapped path out of a resource (the target's or ours).
pub fn get_path<'a>(resource: &'a Map<String, Value>, path: &str) -> Option<&'a Value> {
    let (mut cur, rest) = match path.rfind(':') {
        Some(i) if path.starts_with("urn:") => (resource.get(&path[..i])?, &path[i + 1..]),
        _ => {
            let (head, tail) = path.split_once('.').unwrap_or((path, ""));
            let v = resource.get(head)?;
            if tail.is_empty() {
                return Some(v);
            }
            (v, tail)
        }
    };
    for part in rest.split('.') {
        cur = cur.as_object()?.get(part)?;
    }
    Some(cur)
}

impl Mapper {
    pub fn new(config: &AuthorityConfig, schools: &[String], limbo: &str) -> Self {
        Mapper {
            user: config.user_mapping().into_iter().collect(),
            school_groups: config.mapping.school_groups,
            on_removal: config.on_removal,
            scope: Scope::new(schools, limbo),
        }
    }

    pub fn school_groups(&self) -> bool {
        self.school_groups
    }

    /// Whether users that leave are kept (deactivated) on the target.
    pub fn keeps_leavers(&self) -> bool {
        self.on_removal == OnRemoval::Deactivate
    }

    /// Whether a user belongs on this authority.
    pub fn user_in_scope(&self, user: &User) -> bool {
        user.state == UserState::Active && self.scope.any(user.school_names())
    }

    fn field(&self, user: &User, field: &str, active: bool) -> Option<Value> {
        let schools: Vec<&str> = user.school_names().filter(|s| self.scope.contains(s)).collect();
        match field {
            "username" => Some(json!(user.username)),
            "firstname" => Some(json!(user.firstname)),
            "lastname" => Some(json!(user.lastname)),
            "display_name" => Some(json!(format!("{} {}", user.firstname, user.lastname))),
            "email" => user.email.as_ref().map(|e| json!(e)),
            "birthday" => user.birthday.map(|d| json!(d.format("%Y-%m-%d").to_string())),
            "record_uid" => Some(json!(user.key.record_uid)),
            "source_uid" => Some(json!(user.key.source_uid)),
            "primary_school" => schools.first().map(|s| json!(s)),
            "schools" => Some(json!(schools)),
            "roles" => Some(json!(
                user.memberships
                    .iter()
                    .filter(|m| self.scope.contains(&m.school))
                    .flat_map(|m| m.roles.iter().map(|r| r.as_str()))
                    .collect::<BTreeSet<_>>()
            )),
            "active" => Some(json!(active)),
            _ => None,
        }
    }

    /// A user as this authority should hold it.
    pub fn map_user(&self, user: &User, touched: &BTreeSet<String>, active: bool) -> Mapped {
        let external_id = user_external_id(&user.key);
        let mut attributes = Map::new();
        attributes.insert("schemas".into(), json!([USER_SCHEMA]));
        attributes.insert("externalId".into(), json!(external_id));
        let mut paths = Vec::with_capacity(self.user.len());
        for (attr, field) in &self.user {
            paths.push(attr.clone());
            let Some(mut value) = self.field(user, field, active) else {
                continue;
            };
            if attr == "emails" {
                value = json!([{"value": value, "type": "work", "primary": true}]);
            }
            set_path(&mut attributes, attr, value);
        }
        let name = user.username.clone();
        let current: BTreeSet<&str> = if active {
            user.school_names().filter(|s| self.scope.contains(s)).collect()
        } else {
            BTreeSet::new()
        };
        let (school_groups, left_school_groups) = if self.school_groups {
            (
                current.iter().map(|s| ObjectRef::school(s).to_string()).collect(),
                touched
                    .iter()
                    .chain(user.school_names().map(str::to_string).collect::<Vec<_>>().iter())
                    .filter(|s| self.scope.contains(s) && !current.contains(s.as_str()))
                    .map(|s| ObjectRef::school(s).to_string())
                    .collect::<BTreeSet<_>>()
                    .into_iter()
                    .collect(),
            )
        } else {
            (Vec::new(), Vec::new())
        };
        Mapped {
            class: Class::User,
            external_id,
            name,
            attributes,
            paths,
            members: None,
            school_groups,
            left_school_groups,
        }
    }

    pub(crate) fn map_group(&self, external_id: String, name: String, members: Option<Vec<String>>) -> Mapped {
        let mut attributes = Map::new();
        attributes.insert("schemas".into(), json!([GROUP_SCHEMA]));
        attributes.insert("externalId".into(), json!(external_id));
        attributes.insert("displayName".into(), json!(name));
        Mapped {
            class: Class::Group,
            external_id,
            name,
            attributes,
            paths: vec!["displayName".into()],
            members,
            school_groups: Vec::new(),
            left_school_groups: Vec::new(),
        }
    }

    /// What the target must hold for the user `key`, given the directory's
    /// `user` (read by the caller, possibly for a whole batch at once).
    pub fn desired_user(
        &self,
        object: &ObjectRef,
        key: UserKey,
        user: Option<User>,
        touched: &BTreeSet<String>,
    ) -> Result<Desired, MapError> {
        let Some(user) = user else {
            return Ok(Desired::Absent {
                class: Class::User,
                external_id: user_external_id(&key),
            });
        };
        if user.username.is_empty() {
            return Err(MapError::Invalid {
                object: object.to_string(),
                message: "the user has no username".into(),
            });
        }
        if self.user_in_scope(&user) {
            let mapped = self.map_user(&user, touched, !user.disabled);
            if let Some((_, field)) = self.user.iter().find(|(a, _)| a == "userName")
                && get_path(&mapped.attributes, "userName").is_none()
            {
                return Err(MapError::Invalid {
                    object: object.to_string(),
                    message: format!("userName is required, but '{field}' is empty for {}", user.username),
                });
            }
            return Ok(Desired::Present(mapped));
        }
        Ok(match self.on_removal {
            OnRemoval::Deactivate => Desired::Deactivated(self.map_user(&user, touched, false)),
            OnRemoval::Delete => Desired::Absent {
                class: Class::User,
                external_id: user_external_id(&key),
            },
        })
    }

    /// What the target must hold for `object`, from the directory's current
    /// state. `touched` are the schools the queued changes involved.
    pub fn desired(
        &self,
        dir: &dyn Directory,
        object: &ObjectRef,
        touched: &BTreeSet<String>,
    ) -> Result<Desired, MapError> {
        match object {
            ObjectRef::School { name } => {
                if !self.school_groups {
                    return Ok(Desired::Skip);
                }
                let external_id = object.to_string();
                match dir.school(name)? {
                    Some(s) if self.scope.contains(&s.name) => {
                        // The school's active users; users the target does
                        // not hold yet join when they are sent.
                        let mut members = Vec::new();
                        dir.for_each_user(
                            &UserQuery {
                                school: Some(s.name.clone()),
                                state: Some(UserState::Active),
                                ..UserQuery::default()
                            },
                            &mut |u| {
                                members.push(user_external_id(&u.key));
                                true
                            },
                        )?;
                        members.sort_unstable();
                        Ok(Desired::Present(self.map_group(
                            external_id,
                            s.name.clone(),
                            Some(members),
                        )))
                    }
                    _ => Ok(Desired::Absent {
                        class: Class::Group,
                        external_id,
                    }),
                }
            }
            ObjectRef::User { source_uid, record_uid } => {
                let key = UserKey::new(source_uid.clone(), record_uid.clone());
                let user = dir.user(&key)?;
                self.desired_user(object, key, user, touched)
            }
            ObjectRef::Group {
                school,
                group_kind,
                name,
            } => {
                let key = GroupKey::new(school.clone(), *group_kind, name.clone());
                let external_id = object.to_string();
                match dir.group(&key)? {
                    Some(g) if self.scope.contains(school) => {
                        let mut members: Vec<String> = g.members.iter().map(|m| user_external_id(&m.key)).collect();
                        members.sort_unstable();
                        Ok(Desired::Present(self.map_group(
                            external_id,
                            key.to_string(),
                            Some(members),
                        )))
                    }
                    _ => Ok(Desired::Absent {
                        class: Class::Group,
                        external_id,
                    }),
                }
            }
        }
    }
}

/// Flattens a JSON value into `path → scalar` for diffs.
pub fn flatten(value: &Value) -> BTreeMap<String, Value> {
    fn walk(prefix: &str, v: &Value, out: &mut BTreeMap<String, Value>) {
        match v {
            Value::Object(map) => {
                for (k, v) in map {
                    let p = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    walk(&p, v, out);
                }
            }
            Value::Array(items) if items.iter().any(|i| i.is_object() || i.is_array()) => {
                for (i, v) in items.iter().enumerate() {
                    walk(&format!("{prefix}[{i}]"), v, out);
                }
            }
            other => {
                out.insert(prefix.to_string(), other.clone());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk("", value, &mut out);
    out
}

/// One field that differs between two payloads.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FieldDiff {
    pub path: String,
    pub before: Option<Value>,
    pub now: Option<Value>,
}

/// Field-by-field difference of two payloads (none when nothing was sent).
pub fn diff(before: &Value, now: &Value) -> Vec<FieldDiff> {
    if before.is_null() {
        return Vec::new();
    }
    let a = flatten(before);
    let b = flatten(now);
    let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    keys.into_iter()
        .filter(|k| a.get(*k) != b.get(*k))
        .map(|k| FieldDiff {
            path: k.clone(),
            before: a.get(k).cloned(),
            now: b.get(k).cloned(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_set_and_get_extensions_and_nesting() {
        let mut m = Map::new();
        m.insert("schemas".into(), json!([USER_SCHEMA]));
        set_path(&mut m, "name.givenName", json!("Eva"));
        set_path(&mut m, "urn:x:ext:2.0:User:organization", json!("gs"));
        set_path(&mut m, "userName", json!("e.k"));
        assert_eq!(get_path(&m, "name.givenName"), Some(&json!("Eva")));
        assert_eq!(get_path(&m, "urn:x:ext:2.0:User:organization"), Some(&json!("gs")));
        assert_eq!(m["schemas"], json!([USER_SCHEMA, "urn:x:ext:2.0:User"]));
        assert_eq!(get_path(&m, "name.middleName"), None);
    }

    #[test]
    fn scrub_removes_secrets_and_diff_finds_fields() {
        let mut v = json!({"userName": "a", "password": "x", "n": {"apiToken": "t", "k": 1}});
        scrub(&mut v);
        assert_eq!(v, json!({"userName": "a", "n": {"k": 1}}));
        let d = diff(
            &json!({"a": 1, "b": {"c": 2}}),
            &json!({"a": 1, "b": {"c": 3}, "d": true}),
        );
        assert_eq!(d.len(), 2);
        assert_eq!(d[0].path, "b.c");
        assert_eq!(d[1].now, Some(json!(true)));
    }
}
