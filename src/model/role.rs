//! The roles a user can hold in a school.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A role a user holds in one school.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Student,
    Teacher,
    Staff,
    SchoolAdmin,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Student, Role::Teacher, Role::Staff, Role::SchoolAdmin];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Student => "student",
            Role::Teacher => "teacher",
            Role::Staff => "staff",
            Role::SchoolAdmin => "school_admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown role '{0}' (expected one of: student, teacher, staff, school_admin)")]
pub struct RoleParseError(pub String);

impl FromStr for Role {
    type Err = RoleParseError;

    /// Accepts the canonical names, case-insensitively, plus `-` for `_`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let norm = s.trim().to_ascii_lowercase().replace('-', "_");
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == norm)
            .ok_or_else(|| RoleParseError(s.trim().to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_canonical_and_loose_spellings() {
        assert_eq!("Student".parse::<Role>(), Ok(Role::Student));
        assert_eq!("school-admin".parse::<Role>(), Ok(Role::SchoolAdmin));
        assert!("pupil".parse::<Role>().is_err());
    }
}
