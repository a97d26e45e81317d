//! Pure domain types: schools, users, groups, roles, identity keys and the
//! journal's object references. Nothing here does I/O.

mod group;
mod journal;
mod names;
mod role;
pub mod sanitize;
mod school;
mod user;

pub use group::{Group, GroupKey, GroupKind, GroupMember};
pub use journal::{JournalEntry, ObjectRef};
pub use names::{NameError, validate_class_name, validate_record_uid, validate_school_name, validate_source_uid};
pub use role::{Role, RoleParseError};
pub use school::School;
pub use user::{Contribution, Membership, User, UserKey, UserState};
