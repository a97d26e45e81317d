//! Classes and workgroups: per-school groups whose members are users.

use super::UserKey;
use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GroupKind {
    Class,
    Workgroup,
}

impl GroupKind {
    pub fn as_str(self) -> &'static str {
        match self {
            GroupKind::Class => "class",
            GroupKind::Workgroup => "workgroup",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "class" => Some(GroupKind::Class),
            "workgroup" => Some(GroupKind::Workgroup),
            _ => None,
        }
    }
}

/// Identity of a group: a class or workgroup name is unique per school.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct GroupKey {
    pub school: String,
    pub kind: GroupKind,
    pub name: String,
}

impl GroupKey {
    pub fn new(school: impl Into<String>, kind: GroupKind, name: impl Into<String>) -> Self {
        GroupKey {
            school: school.into(),
            kind,
            name: name.into(),
        }
    }
}

impl fmt::Display for GroupKey {
    /// `<school>-<name>`, the group's name as remote systems show it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.school, self.name)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupMember {
    pub key: UserKey,
    pub username: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Group {
    pub key: GroupKey,
    /// Sorted by username.
    pub members: Vec<GroupMember>,
}
