//! The change journal's vocabulary: which object changed and which schools
//! it belonged to before and after, so a distributor can fan it out.

use super::{GroupKey, GroupKind, UserKey};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A reference to a directory object, stable across renames and moves.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ObjectRef {
    School {
        name: String,
    },
    User {
        source_uid: String,
        record_uid: String,
    },
    Group {
        school: String,
        group_kind: GroupKind,
        name: String,
    },
}

impl ObjectRef {
    pub fn user(key: &UserKey) -> Self {
        ObjectRef::User {
            source_uid: key.source_uid.clone(),
            record_uid: key.record_uid.clone(),
        }
    }

    pub fn group(key: &GroupKey) -> Self {
        ObjectRef::Group {
            school: key.school.clone(),
            group_kind: key.kind,
            name: key.name.clone(),
        }
    }

    pub fn school(name: &str) -> Self {
        ObjectRef::School { name: name.to_string() }
    }

    /// Sync order: schools, then users, then groups.
    pub fn order(&self) -> u8 {
        match self {
            ObjectRef::School { .. } => 0,
            ObjectRef::User { .. } => 1,
            ObjectRef::Group { .. } => 2,
        }
    }

    pub fn kind_str(&self) -> &'static str {
        match self {
            ObjectRef::School { .. } => "school",
            ObjectRef::User { .. } => "user",
            ObjectRef::Group { group_kind, .. } => group_kind.as_str(),
        }
    }
}

impl fmt::Display for ObjectRef {
    /// `school:<name>`, `user:<source>:<record>`, `class:<school>:<name>`,
    /// `workgroup:<school>:<name>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ObjectRef::School { name } => write!(f, "school:{name}"),
            ObjectRef::User { source_uid, record_uid } => write!(f, "user:{source_uid}:{record_uid}"),
            ObjectRef::Group {
                school,
                group_kind,
                name,
            } => {
                write!(f, "{}:{school}:{name}", group_kind.as_str())
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "'{0}' is not an object reference (expected school:NAME, user:SOURCE:RECORD, class:SCHOOL:NAME or workgroup:SCHOOL:NAME)"
)]
pub struct ObjectRefParseError(pub String);

impl FromStr for ObjectRef {
    type Err = ObjectRefParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || ObjectRefParseError(s.to_string());
        let (kind, rest) = s.split_once(':').ok_or_else(bad)?;
        match kind {
            "school" if !rest.is_empty() => Ok(ObjectRef::School { name: rest.to_string() }),
            "user" => {
                let (source, record) = rest.split_once(':').ok_or_else(bad)?;
                if source.is_empty() || record.is_empty() {
                    return Err(bad());
                }
                Ok(ObjectRef::User {
                    source_uid: source.to_string(),
                    record_uid: record.to_string(),
                })
            }
            "class" | "workgroup" => {
                let (school, name) = rest.split_once(':').ok_or_else(bad)?;
                if school.is_empty() || name.is_empty() {
                    return Err(bad());
                }
                Ok(ObjectRef::Group {
                    school: school.to_string(),
                    group_kind: GroupKind::parse(kind).ok_or_else(bad)?,
                    name: name.to_string(),
                })
            }
            _ => Err(bad()),
        }
    }
}

/// One recorded change: the object and every school it belonged to before
/// or after the change (the distributor fans out on these).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalEntry {
    pub seq: u64,
    pub object: ObjectRef,
    pub schools: Vec<String>,
    pub at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_refs_round_trip() {
        for s in ["school:a", "user:src:rec:with:colons", "class:a:5b", "workgroup:a:Chor"] {
            let r: ObjectRef = s.parse().unwrap();
            assert_eq!(r.to_string(), s);
        }
        assert!("user:nocolon".parse::<ObjectRef>().is_err());
        assert!("thing:x".parse::<ObjectRef>().is_err());
    }
}
