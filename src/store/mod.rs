//! The `Directory` trait — what the engine needs from a user directory — and
//! its backends. A backend persists schools, users and groups, issues
//! usernames exactly once, and records every change in the journal together
//! with the change itself.

pub mod ldap;
pub mod space;
pub mod sqlite;
pub mod stats;

use crate::model::{Group, GroupKey, GroupKind, JournalEntry, Role, School, User, UserKey, UserState};
use chrono::{DateTime, NaiveDate, Utc};
use std::collections::{HashMap, HashSet};
use thiserror::Error;

pub use ldap::LdapDirectory;
pub use sqlite::SqliteDirectory;
pub use stats::{BoundedCount, MembershipCount};

/// Holds a directory's read view open; ends it when dropped.
pub struct ReadView<'a> {
    dir: &'a dyn Directory,
}

impl<'a> ReadView<'a> {
    pub fn begin(dir: &'a dyn Directory) -> StoreResult<Self> {
        dir.begin_read()?;
        Ok(ReadView { dir })
    }
}

impl Drop for ReadView<'_> {
    fn drop(&mut self) {
        if let Err(e) = self.dir.end_read() {
            tracing::warn!(error = %e, "ending a read view failed");
        }
    }
}

#[derive(Debug, Error)]
pub enum StoreError {
    #[error("directory {path}: {source}")]
    Sqlite {
        path: String,
        #[source]
        source: rusqlite::Error,
    },
    #[error("directory {path}: stored data is damaged: {message}")]
    Corrupt { path: String, message: String },
    #[error("directory {server}: {message}")]
    Backend { server: String, message: String },
    /// An LDAP operation failed: which server, operation and DN, and the
    /// result code when the server answered.
    #[error("directory {server}: {}", ldap_outcome(op, dn, *code, message))]
    Ldap {
        server: String,
        op: String,
        dn: String,
        code: Option<u32>,
        message: String,
    },
    /// Another process follows this data dir's directory changes already.
    #[error("a directory change listener already runs for this data dir (it holds {path})")]
    ListenerBusy { path: String },
    #[error("user {key} was changed by another process since it was read; run the command again")]
    Conflict { key: String },
    #[error("username '{0}' is already in use")]
    UsernameTaken(String),
    #[error("user {0} does not exist")]
    NoSuchUser(String),
    #[error(
        "directory {path} has schema version {found}, newer than this rollcall understands ({known}); upgrade rollcall"
    )]
    TooNew { path: String, found: i64, known: i64 },
}

pub type StoreResult<T> = Result<T, StoreError>;

/// `<op> <dn>: LDAP result <code> (<name>): <text>`.
fn ldap_outcome(op: &str, dn: &str, code: Option<u32>, message: &str) -> String {
    let what = if dn.is_empty() {
        op.to_string()
    } else {
        format!("{op} {dn}")
    };
    let detail = if message.is_empty() {
        String::new()
    } else {
        format!(": {message}")
    };
    match code {
        Some(rc) => format!("{what}: LDAP result {rc} ({}){detail}", ldap::code_name(rc)),
        None => format!("{what}: no answer from the server{detail}"),
    }
}

/// How a list of users is ordered.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum UserSort {
    #[default]
    Username,
    Lastname,
    PurgeAt,
    UpdatedAt,
}

/// A filter over users. Every set field must match.
#[derive(Clone, Debug, Default)]
pub struct UserQuery {
    /// Member of this school.
    pub school: Option<String>,
    pub state: Option<UserState>,
    /// Holds one of these roles (in `school` when that is set, else in any
    /// school); empty: any role.
    pub roles: Vec<Role>,
    pub source_uid: Option<String>,
    /// Case-insensitive substring of username, first or last name, record uid.
    /// Scans every user: seconds at a million.
    pub text: Option<String>,
    /// The username starts with this (usernames are lowercase): a range on
    /// the username index, instant at any size.
    pub username_prefix: Option<String>,
    /// In limbo with a purge date on or before this day.
    pub purge_due: Option<NaiveDate>,
    pub sort: UserSort,
    pub descending: bool,
    pub offset: u64,
    pub limit: Option<u64>,
}

/// One user write. `Update` and `Delete` carry the state the engine read, so
/// a backend can compute minimal modifications and detect concurrent writers.
#[derive(Clone, Debug)]
#[allow(clippy::large_enum_variant)] // batches are built once and read in place
pub enum UserChange {
    Create(User),
    Update { before: User, after: User },
    Delete(User),
}

impl UserChange {
    pub fn key(&self) -> &UserKey {
        match self {
            UserChange::Create(u) | UserChange::Delete(u) => &u.key,
            UserChange::Update { after, .. } => &after.key,
        }
    }
}

/// Everything one import (or limbo action) writes, applied atomically where
/// the backend allows it, and journalled.
#[derive(Clone, Debug, Default)]
pub struct Batch {
    /// Schools to create (or whose display name to update).
    pub schools: Vec<School>,
    pub users: Vec<UserChange>,
    /// Username counters to persist: (base, next counter value).
    pub counters: Vec<(String, u32)>,
}

impl Batch {
    pub fn is_empty(&self) -> bool {
        self.schools.is_empty() && self.users.is_empty() && self.counters.is_empty()
    }
}

/// Why a new user's username could not be claimed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClaimLoss {
    /// Another writer of the directory issued this name after the plan read
    /// it: plan another name.
    Taken,
    /// Another writer is creating the same person (same key) under this
    /// name at this moment: leave the person to it.
    SamePerson,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ApplyReport {
    pub journal_entries: u64,
}

/// Who a user is and when it last changed, without the rest of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserStamp {
    pub key: UserKey,
    pub username: String,
    pub updated_at: DateTime<Utc>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupSummary {
    pub key: GroupKey,
    pub members: u64,
}

/// A user directory. Implementations: [`SqliteDirectory`] (embedded) and
/// `LdapDirectory`.
pub trait Directory: Send {
    /// Where the data lives, for messages (`sqlite:/path`, `ldap://host`).
    fn describe(&self) -> String;

    fn schools(&self) -> StoreResult<Vec<School>>;
    fn school(&self, name: &str) -> StoreResult<Option<School>>;

    fn user(&self, key: &UserKey) -> StoreResult<Option<User>>;
    fn user_by_username(&self, username: &str) -> StoreResult<Option<User>>;
    /// The users of one source with any of these record uids (missing ones
    /// are simply absent from the result).
    fn users_by_record_uids(&self, source_uid: &str, record_uids: &[String]) -> StoreResult<Vec<User>>;
    /// The users matching `query`, honouring its order, offset and limit.
    fn users(&self, query: &UserQuery) -> StoreResult<Vec<User>>;
    /// Streams every user matching `query` (order and paging honoured) to
    /// `visit`; stops early when `visit` returns `false`.
    fn for_each_user(&self, query: &UserQuery, visit: &mut dyn FnMut(User) -> bool) -> StoreResult<()>;
    fn count_users(&self, query: &UserQuery) -> StoreResult<u64>;
    /// Key, username and last change of the users matching `query`: much
    /// cheaper than reading them whole (an unchanged re-import needs no more).
    fn user_stamps(&self, query: &UserQuery) -> StoreResult<Vec<UserStamp>> {
        let mut out = Vec::new();
        self.for_each_user(query, &mut |u| {
            out.push(UserStamp {
                key: u.key,
                username: u.username,
                updated_at: u.updated_at,
            });
            true
        })?;
        Ok(out)
    }

    /// Counts the users matching `query`, stopping after `cap` (then
    /// `capped`): a bounded scan for interactive filters.
    fn count_users_bounded(&self, query: &UserQuery, cap: u64) -> StoreResult<BoundedCount> {
        let n = self.count_users(query)?;
        Ok(BoundedCount {
            n: n.min(cap),
            capped: n > cap,
        })
    }
    /// Users per school and role, every school in one call.
    fn membership_counts(&self) -> StoreResult<Vec<MembershipCount>> {
        stats::membership_counts_default(self)
    }
    /// Limbo users per purge date, soonest first, at most `limit` dates.
    fn purge_dates(&self, limit: usize) -> StoreResult<Vec<(NaiveDate, u64)>> {
        stats::purge_dates_default(self, limit)
    }
    /// Classes per school.
    fn class_counts(&self) -> StoreResult<std::collections::BTreeMap<String, u64>> {
        stats::class_counts_default(self)
    }

    fn groups(&self, school: Option<&str>, kind: Option<GroupKind>) -> StoreResult<Vec<GroupSummary>>;
    fn group(&self, key: &GroupKey) -> StoreResult<Option<Group>>;

    /// Whether a username was ever issued (also for users since purged) or is
    /// in use.
    fn username_issued(&self, username: &str) -> StoreResult<bool>;
    fn username_counter(&self, base: &str) -> StoreResult<Option<u32>>;
    /// Which of these usernames are issued: one round trip for many.
    fn usernames_issued(&self, names: &[String]) -> StoreResult<HashSet<String>> {
        let mut out = HashSet::new();
        for n in names {
            if self.username_issued(n)? {
                out.insert(n.clone());
            }
        }
        Ok(out)
    }
    /// The stored counters of these bases (absent: none stored).
    fn username_counters(&self, bases: &[String]) -> StoreResult<HashMap<String, u32>> {
        let mut out = HashMap::new();
        for b in bases {
            if let Some(n) = self.username_counter(b)? {
                out.insert(b.clone(), n);
            }
        }
        Ok(out)
    }

    /// Claims the usernames of users about to be created (`(username,
    /// key)`), so that several writers of one directory (rollcall nodes
    /// sharing an LDAP server) never issue the same name: the names another
    /// writer holds are returned with why; the others are this writer's
    /// until the [`apply`] that creates their users (or until this
    /// connection is dropped without creating them). The embedded store has
    /// one writer at a time and checks names inside `apply`'s transaction,
    /// so by default nothing is claimed here.
    ///
    /// [`apply`]: Directory::apply
    fn claim_usernames(&mut self, claims: &[(String, UserKey)]) -> StoreResult<HashMap<String, ClaimLoss>> {
        let _ = claims;
        Ok(HashMap::new())
    }

    /// Starts a consistent read view: every read until [`end_read`] sees the
    /// same state where the backend can (SQLite: one read transaction; LDAP
    /// has no snapshots, so there it is a no-op and reads are live). The import plans inside one. Must not be open while
    /// [`apply`] runs.
    ///
    /// [`end_read`]: Directory::end_read
    /// [`apply`]: Directory::apply
    fn begin_read(&self) -> StoreResult<()> {
        Ok(())
    }
    fn end_read(&self) -> StoreResult<()> {
        Ok(())
    }

    /// Writes a batch and journals every changed object.
    fn apply(&mut self, batch: &Batch) -> StoreResult<ApplyReport>;

    /// Removes a second spelling of a school (`schools merge`; names are
    /// case-insensitive) once no user is in it: its school row and its
    /// groups, journalled. `false` when there was none. LDAP has nothing to
    /// remove: DNs ignore case, so a second spelling has no entry of its own.
    fn drop_school_spelling(&mut self, _name: &str) -> StoreResult<bool> {
        Ok(false)
    }

    /// Removes those of these groups that have no member (a class whose last
    /// member left, `import.keep_empty_classes = false`), journalled so the
    /// authorities remove them too; returns the ones removed.
    fn drop_empty_groups(&mut self, keys: &[GroupKey]) -> StoreResult<Vec<GroupKey>>;

    /// Journal entries with `seq > after`, oldest first, at most `limit`.
    fn journal_after(&self, after: u64, limit: usize) -> StoreResult<Vec<JournalEntry>>;
    /// The highest journal sequence number (0 when empty).
    fn journal_head(&self) -> StoreResult<u64>;
}
