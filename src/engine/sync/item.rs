//! One queue item: the JSON file that says "this object must be brought up
//! to date on this authority". It holds no object data — the sender reads
//! the current state at send time — only the reference, the schools the
//! object was seen in (so a target can drop memberships it left), and the
//! failure history. Trash items are the same JSON plus a `failure` record.

use crate::model::ObjectRef;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// Why an item was queued.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// A journal entry (a directory change).
    Change,
    /// `schedule user|group|school`.
    Schedule,
    /// `resync`.
    Resync,
    /// `trash requeue`, or an item moved back from trash by hand.
    Requeue,
    /// `sync-schools remove` (delete on target): a user the authority would
    /// keep deactivated is deleted instead.
    Unassigned,
}

/// What the sender recorded when it gave up on an item.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Failure {
    /// `transient` (retried until max_attempts) or `permanent`.
    pub class: String,
    pub error: String,
    /// HTTP status of the last answer, when there was one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_status: Option<u16>,
    /// LDAP result code of the last answer, when there was one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ldap_code: Option<u32>,
    pub attempts: u32,
    pub first_failure: DateTime<Utc>,
    pub last_failure: DateTime<Utc>,
    pub trashed_at: DateTime<Utc>,
    /// What was sent (the mapped resource, secrets removed), if anything.
    #[serde(default)]
    pub payload: serde_json::Value,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct QueueItem {
    /// `user:<source>:<record>`, `school:<name>`, `class:<school>:<name>`…
    pub object: ObjectRef,
    /// Every school the object was in when its changes were queued.
    #[serde(default)]
    pub schools: BTreeSet<String>,
    pub reason: Reason,
    pub enqueued_at: DateTime<Utc>,
    /// Failed attempts so far.
    #[serde(default)]
    pub attempts: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_failure: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_failure: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_status: Option<u16>,
    /// Not to be sent before this time (back-off).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_before: Option<DateTime<Utc>>,
    /// Set on trash items only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<Failure>,
    /// A group in back-off only because members it lacks on the target are
    /// still on their way: a member's create ends its wait.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub waiting_for_members: bool,
}

impl QueueItem {
    pub fn new(object: ObjectRef, schools: impl IntoIterator<Item = String>, reason: Reason) -> Self {
        QueueItem {
            object,
            schools: schools.into_iter().collect(),
            reason,
            enqueued_at: Utc::now(),
            attempts: 0,
            first_failure: None,
            last_failure: None,
            last_error: None,
            last_status: None,
            not_before: None,
            failure: None,
            waiting_for_members: false,
        }
    }

    /// A fresh item for the same object: no failure history.
    pub fn fresh(&self, reason: Reason) -> Self {
        QueueItem::new(self.object.clone(), self.schools.iter().cloned(), reason)
    }
}

/// The file name of an object's item: the sync order first (schools,
/// users, groups), a readable slug, and a hash of the whole reference so
/// names never collide and never contain a path separator.
pub fn file_name(object: &ObjectRef) -> String {
    let text = object.to_string();
    let hash = xxhash_rust::xxh3::xxh3_128(text.as_bytes());
    let mut slug = String::with_capacity(40);
    for c in text.chars() {
        if slug.len() >= 40 {
            break;
        }
        if c.is_ascii_alphanumeric() || c == '-' {
            slug.push(c);
        } else {
            slug.push('_');
        }
    }
    format!("{}-{slug}-{hash:032x}.json", object.order())
}

/// Whether a name from the command line or a folder listing can be an item
/// file: no separators, no dot files, nothing that could leave the folder.
pub fn valid_file_name(name: &str) -> bool {
    name.len() <= 128
        && name.ends_with(".json")
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '_')
        && !name.contains("..")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_stable_ordered_and_safe() {
        let s: ObjectRef = "school:gs/../x".parse().unwrap();
        let u: ObjectRef = "user:district:a b\"c".parse().unwrap();
        let g: ObjectRef = "class:gs:5a".parse().unwrap();
        let (ns, nu, ng) = (file_name(&s), file_name(&u), file_name(&g));
        assert!(ns < nu && nu < ng, "{ns} {nu} {ng}");
        for n in [&ns, &nu, &ng] {
            assert!(valid_file_name(n), "{n}");
            assert!(!n.contains('/'));
        }
        assert_eq!(file_name(&u), nu);
        assert_ne!(
            file_name(&"user:district:1".parse().unwrap()),
            file_name(&"user:district:2".parse().unwrap())
        );
        assert!(!valid_file_name("../x.json"));
        assert!(!valid_file_name("a/b.json"));
        assert!(!valid_file_name(".tmp.json"));
        assert!(!valid_file_name("x.txt"));
    }
}
