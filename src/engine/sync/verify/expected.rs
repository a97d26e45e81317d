//! The expected side of verify: one pass over the directory's users maps
//! every user in the authority's scope as the sender would, and gathers
//! class, workgroup and school-group members on the way (no query per
//! group). Also the filter's view of users and groups.

use super::{ObjectKind, VerifyKind};
use crate::engine::jobs::{Progress, ProgressEvent};
use crate::engine::sync::Authority;
use crate::engine::sync::filter::{Attributes, Filter};
use crate::engine::sync::mapping::{Mapped, user_external_id};
use crate::engine::{Engine, EngineError, EngineResult};
use crate::model::{GroupKind, ObjectRef, User};
use crate::store::UserQuery;
use std::collections::{BTreeSet, HashMap, HashSet};

/// The attributes `--filter` knows. Users: every one but `kind = user`
/// and `name` (= username). Groups: `school`, `kind` (`school`, `class`,
/// `workgroup`), `name`, `class` or `workgroup` (the group's name),
/// `external_id`.
pub const FILTER_ATTRIBUTES: &[&str] = &[
    "school",
    "role",
    "username",
    "firstname",
    "lastname",
    "email",
    "birthday",
    "record_uid",
    "source_uid",
    "class",
    "workgroup",
    "state",
    "disabled",
    "name",
    "kind",
    "external_id",
];

/// A directory user as the filter sees it.
pub(super) struct UserView<'a>(pub &'a User);

impl Attributes for UserView<'_> {
    fn values(&self, attribute: &str) -> Vec<String> {
        let u = self.0;
        let one = |s: &str| vec![s.to_string()];
        match attribute {
            "school" => u.school_names().map(str::to_string).collect(),
            "role" => u
                .memberships
                .iter()
                .flat_map(|m| m.roles.iter().map(|r| r.as_str().to_string()))
                .collect(),
            "username" | "name" => one(&u.username),
            "firstname" => one(&u.firstname),
            "lastname" => one(&u.lastname),
            "email" => u.email.iter().cloned().collect(),
            "birthday" => u.birthday.iter().map(|d| d.format("%Y-%m-%d").to_string()).collect(),
            "record_uid" => one(&u.key.record_uid),
            "source_uid" => one(&u.key.source_uid),
            "class" => u.memberships.iter().flat_map(|m| m.classes.iter().cloned()).collect(),
            "workgroup" => u
                .memberships
                .iter()
                .flat_map(|m| m.workgroups.iter().cloned())
                .collect(),
            "state" => one(u.state.as_str()),
            "disabled" => one(if u.disabled { "true" } else { "false" }),
            "kind" => one("user"),
            "external_id" => one(&user_external_id(&u.key)),
            _ => Vec::new(),
        }
    }
}

/// A group (or school group), or a user known only from the target.
pub(super) enum RefView<'a> {
    Object(&'a ObjectRef),
    /// A user the directory does not hold: what its external id and the
    /// target's userName tell.
    RemoteUser {
        source_uid: &'a str,
        record_uid: &'a str,
        external_id: &'a str,
        username: Option<&'a str>,
    },
}

impl Attributes for RefView<'_> {
    fn values(&self, attribute: &str) -> Vec<String> {
        let one = |s: &str| vec![s.to_string()];
        match self {
            RefView::Object(ObjectRef::School { name }) => match attribute {
                "school" | "name" => one(name),
                "kind" => one("school"),
                "external_id" => one(&ObjectRef::school(name).to_string()),
                _ => Vec::new(),
            },
            RefView::Object(
                o @ ObjectRef::Group {
                    school,
                    group_kind,
                    name,
                },
            ) => match attribute {
                "school" => one(school),
                "name" => one(name),
                "kind" => one(group_kind.as_str()),
                "external_id" => one(&o.to_string()),
                a if a == group_kind.as_str() => one(name),
                _ => Vec::new(),
            },
            RefView::Object(ObjectRef::User { source_uid, record_uid }) => match attribute {
                "source_uid" => one(source_uid),
                "record_uid" => one(record_uid),
                "kind" => one("user"),
                "external_id" => one(&format!("{source_uid}:{record_uid}")),
                _ => Vec::new(),
            },
            RefView::RemoteUser {
                source_uid,
                record_uid,
                external_id,
                username,
            } => match attribute {
                "source_uid" => one(source_uid),
                "record_uid" => one(record_uid),
                "external_id" => one(external_id),
                "kind" => one("user"),
                "username" | "name" => username.iter().map(|s| s.to_string()).collect(),
                _ => Vec::new(),
            },
        }
    }
}

/// One object the target should hold.
pub(super) struct Entry {
    pub kind: ObjectKind,
    /// `user:…`, `class:…`, `school:…`.
    pub object: String,
    pub mapped: Mapped,
}

/// A directory user the target should not hold as active.
pub(super) struct Other {
    /// Whether the filter selects it (a user left out by the filter is not
    /// looked at on the target either).
    pub selected: bool,
    /// The authority keeps leavers deactivated: how it should hold it.
    pub deactivated: Option<Mapped>,
}

pub(super) struct Expected {
    /// By external id.
    pub objects: HashMap<String, Entry>,
    /// Directory users not expected, by external id.
    pub others: HashMap<String, Other>,
    /// Source uids of the directory's users (and the configured one): a
    /// user external id `SOURCE:RECORD` of one of them is ours.
    pub sources: HashSet<String>,
}

impl Expected {
    pub fn build(
        engine: &Engine,
        authority: &Authority,
        kind: VerifyKind,
        filter: Option<&Filter>,
        progress: &mut dyn Progress,
    ) -> EngineResult<Self> {
        let dir = engine.directory();
        let mapper = &authority.mapper;
        let scope = &mapper.scope;
        let users = kind.includes(ObjectKind::User);
        let groups = kind.includes(ObjectKind::Class) || kind.includes(ObjectKind::Workgroup);
        let schools = kind.includes(ObjectKind::School) && mapper.school_groups();
        let selected = |v: &dyn Attributes| filter.is_none_or(|f| f.matches(v));
        let mut out = Expected {
            objects: HashMap::new(),
            others: HashMap::new(),
            sources: HashSet::from([engine.config().import.source_uid.clone()]),
        };
        let mut members: HashMap<(String, GroupKind, String), Vec<String>> = HashMap::new();
        let mut school_members: HashMap<String, Vec<String>> = HashMap::new();
        let none = BTreeSet::new();
        let total = dir.count_users(&UserQuery::default()).ok();
        let mut done = 0u64;
        let mut cancelled = false;
        dir.for_each_user(&UserQuery::default(), &mut |u| {
            done += 1;
            if done.is_multiple_of(5000) {
                progress.update(ProgressEvent {
                    phase: "reading the directory",
                    done,
                    total,
                });
                if progress.cancelled() {
                    cancelled = true;
                    return false;
                }
            }
            if !out.sources.contains(&u.key.source_uid) {
                out.sources.insert(u.key.source_uid.clone());
            }
            let ext = user_external_id(&u.key);
            if groups || schools {
                for m in u.memberships.iter().filter(|m| scope.contains(&m.school)) {
                    if groups {
                        for (k, names) in [(GroupKind::Class, &m.classes), (GroupKind::Workgroup, &m.workgroups)] {
                            for n in names {
                                members
                                    .entry((m.school.clone(), k, n.clone()))
                                    .or_default()
                                    .push(ext.clone());
                            }
                        }
                    }
                    if schools && u.state == crate::model::UserState::Active {
                        school_members.entry(m.school.clone()).or_default().push(ext.clone());
                    }
                }
            }
            if !users {
                return true;
            }
            let chosen = selected(&UserView(&u));
            if mapper.user_in_scope(&u) && chosen && !u.username.is_empty() {
                let mapped = mapper.map_user(&u, &none, !u.disabled);
                out.objects.insert(
                    ext.clone(),
                    Entry {
                        kind: ObjectKind::User,
                        object: ObjectRef::user(&u.key).to_string(),
                        mapped,
                    },
                );
            } else {
                let deactivated = (chosen && !mapper.user_in_scope(&u) && mapper.keeps_leavers())
                    .then(|| mapper.map_user(&u, &none, false));
                out.others.insert(
                    ext,
                    Other {
                        selected: chosen,
                        deactivated,
                    },
                );
            }
            true
        })?;
        if cancelled {
            return Err(EngineError::Cancelled("verify".into()));
        }
        progress.update(ProgressEvent {
            phase: "reading the directory",
            done,
            total: Some(done),
        });
        if groups {
            for g in dir.groups(None, None)? {
                let k = match g.key.kind {
                    GroupKind::Class => ObjectKind::Class,
                    GroupKind::Workgroup => ObjectKind::Workgroup,
                };
                if !kind.includes(k) || !scope.contains(&g.key.school) {
                    continue;
                }
                let object = ObjectRef::group(&g.key);
                if !selected(&RefView::Object(&object)) {
                    continue;
                }
                let mut m = members
                    .remove(&(g.key.school.clone(), g.key.kind, g.key.name.clone()))
                    .unwrap_or_default();
                m.sort_unstable();
                let ext = object.to_string();
                let mapped = mapper.map_group(ext.clone(), g.key.to_string(), Some(m));
                out.objects.insert(
                    ext.clone(),
                    Entry {
                        kind: k,
                        object: ext,
                        mapped,
                    },
                );
            }
        }
        if schools {
            for s in dir.schools()? {
                if !scope.contains(&s.name) {
                    continue;
                }
                let object = ObjectRef::school(&s.name);
                if !selected(&RefView::Object(&object)) {
                    continue;
                }
                let mut m = school_members.remove(&s.name).unwrap_or_default();
                m.sort_unstable();
                let ext = object.to_string();
                let mapped = mapper.map_group(ext.clone(), s.name.clone(), Some(m));
                out.objects.insert(
                    ext.clone(),
                    Entry {
                        kind: ObjectKind::School,
                        object: ext,
                        mapped,
                    },
                );
            }
        }
        Ok(out)
    }
}
