//! The OpenLDAP directory: the same [`Directory`] as the embedded store, on
//! an LDAP server through ldap3. Entries follow the configured DN layout
//! (`layout`) and attribute mapping (`mapping`); reads are paged searches
//! (`read`), writes run concurrently over a few connections (`write`),
//! rollcall's own state (issued usernames, counters) lives in the directory
//! under `cn=rollcall,<base>`, and the journal is a local intent log
//! (`journal`) repaired after failures (`repair`).

mod claim;
pub(crate) mod conn;
mod groups;
mod journal;
pub(crate) mod layout;
pub mod listen;
mod mapping;
mod own;
mod read;
mod repair;
mod settings;
pub(crate) mod write;

pub use conn::code_name;
pub use listen::{Listener, ListenerStatus};
pub use settings::{AttributeConfig, LayoutConfig, LdapConfig};

use super::{ApplyReport, Batch, ClaimLoss, Directory, GroupSummary, StoreError, StoreResult, UserQuery};
use crate::model::{Group, GroupKey, GroupKind, JournalEntry, School, User, UserKey};
use conn::Pool;
use journal::Journal;
use layout::Layout;
use mapping::Mapping;
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Mutex;

pub struct LdapDirectory {
    pool: Pool,
    layout: Layout,
    map: Mapping,
    page_size: i32,
    max_in_flight: usize,
    journal: Journal,
    /// The DN each user was last seen at.
    dns: Mutex<HashMap<UserKey, String>>,
    /// Entries known to exist (lowercased DNs): containers, schools, groups.
    known: Mutex<HashSet<String>>,
    /// This process as a claimer of usernames, and the names it claimed for
    /// users not written yet.
    owner: claim::Owner,
    claimed: Mutex<HashSet<String>>,
    /// Whether a change listener follows this data dir (see `own`), and
    /// the writes of the batch in hand that it must not journal again.
    listening: std::sync::atomic::AtomicBool,
    own: Mutex<Vec<(String, String)>>,
}

impl LdapDirectory {
    /// Checks the settings, reads the bind password and opens the local
    /// journal; connects on first use. Intents a crash left behind are
    /// repaired now when the server answers, else before the next write.
    pub fn open(cfg: &LdapConfig, journal_path: &Path) -> StoreResult<Self> {
        let mut dir = Self::open_quietly(cfg, journal_path)?;
        if let Err(e) = dir.repair_pending() {
            tracing::warn!(error = %e, "unfinished LDAP changes could not be repaired yet; retrying before the next write");
        }
        Ok(dir)
    }

    /// A second connection of a process that writes with another one: it
    /// does not repair on open (the intents pending now are the writer's,
    /// in flight), only before a write of its own. The batch import plans
    /// the next feed on it while the current one is written.
    pub fn open_beside(cfg: &LdapConfig, journal_path: &Path) -> StoreResult<Self> {
        Self::open_quietly(cfg, journal_path)
    }

    fn open_quietly(cfg: &LdapConfig, journal_path: &Path) -> StoreResult<Self> {
        cfg.check().map_err(|(key, message)| StoreError::Backend {
            server: cfg.url.clone(),
            message: format!("{key}: {message}"),
        })?;
        let dir = LdapDirectory {
            pool: Pool::new(cfg)?,
            layout: Layout::new(&cfg.layout, cfg.base_dn.trim()),
            map: Mapping::new(&cfg.attributes),
            page_size: cfg.page_size,
            max_in_flight: cfg.max_in_flight,
            journal: Journal::open(journal_path)?,
            dns: Mutex::new(HashMap::new()),
            known: Mutex::new(HashSet::new()),
            owner: claim::Owner::new(&journal_path.with_file_name("ldap-claims"))?,
            claimed: Mutex::new(HashSet::new()),
            listening: std::sync::atomic::AtomicBool::new(false),
            own: Mutex::new(Vec::new()),
        };
        Ok(dir)
    }

    fn is_known(&self, dn: &str) -> bool {
        self.known.lock().is_ok_and(|k| k.contains(&dn.to_ascii_lowercase()))
    }

    fn mark_known(&self, dn: &str) {
        if let Ok(mut k) = self.known.lock() {
            k.insert(dn.to_ascii_lowercase());
        }
    }

    fn forget_known(&self, dn: &str) {
        if let Ok(mut k) = self.known.lock() {
            k.remove(&dn.to_ascii_lowercase());
        }
    }

    fn cached_dn(&self, key: &UserKey) -> Option<String> {
        self.dns.lock().ok().and_then(|d| d.get(key).cloned())
    }
}

impl Directory for LdapDirectory {
    fn describe(&self) -> String {
        format!("{} ({})", self.pool.server, self.layout.base())
    }

    fn schools(&self) -> StoreResult<Vec<School>> {
        self.schools_impl()
    }

    fn school(&self, name: &str) -> StoreResult<Option<School>> {
        self.school_impl(name)
    }

    fn user(&self, key: &UserKey) -> StoreResult<Option<User>> {
        self.user_impl(key)
    }

    fn user_by_username(&self, username: &str) -> StoreResult<Option<User>> {
        self.user_by_username_impl(username)
    }

    fn users_by_record_uids(&self, source_uid: &str, record_uids: &[String]) -> StoreResult<Vec<User>> {
        self.users_by_record_uids_impl(source_uid, record_uids)
    }

    fn users(&self, query: &UserQuery) -> StoreResult<Vec<User>> {
        self.users_impl(query)
    }

    fn for_each_user(&self, query: &UserQuery, visit: &mut dyn FnMut(User) -> bool) -> StoreResult<()> {
        for u in self.users_impl(query)? {
            if !visit(u) {
                break;
            }
        }
        Ok(())
    }

    fn count_users(&self, query: &UserQuery) -> StoreResult<u64> {
        self.count_users_impl(query)
    }

    fn groups(&self, school: Option<&str>, kind: Option<GroupKind>) -> StoreResult<Vec<GroupSummary>> {
        self.groups_impl(school, kind)
    }

    fn group(&self, key: &GroupKey) -> StoreResult<Option<Group>> {
        self.group_impl(key)
    }

    fn username_issued(&self, username: &str) -> StoreResult<bool> {
        Ok(!self.usernames_issued_impl(&[username.to_string()])?.is_empty())
    }

    fn username_counter(&self, base: &str) -> StoreResult<Option<u32>> {
        Ok(self.username_counters_impl(&[base.to_string()])?.remove(base))
    }

    fn usernames_issued(&self, names: &[String]) -> StoreResult<HashSet<String>> {
        self.usernames_issued_impl(names)
    }

    fn username_counters(&self, bases: &[String]) -> StoreResult<HashMap<String, u32>> {
        self.username_counters_impl(bases)
    }

    fn claim_usernames(&mut self, claims: &[(String, UserKey)]) -> StoreResult<HashMap<String, ClaimLoss>> {
        self.claim_usernames_impl(claims)
    }

    fn release_claims(&mut self, names: &[String]) -> StoreResult<()> {
        self.claims_unused(names);
        self.release_stale_claims()
    }

    fn apply(&mut self, batch: &Batch) -> StoreResult<ApplyReport> {
        self.apply_impl(batch)
    }

    fn drop_empty_groups(&mut self, keys: &[GroupKey]) -> StoreResult<Vec<GroupKey>> {
        self.drop_empty_groups_impl(keys)
    }

    fn journal_after(&self, after: u64, limit: usize) -> StoreResult<Vec<JournalEntry>> {
        self.journal.after(after, limit)
    }

    fn journal_head(&self) -> StoreResult<u64> {
        self.journal.head()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    pub const DEFAULTS: &str = include_str!("../../../configs/rollcall.toml");

    #[test]
    fn default_settings_pass_the_check() {
        let t: toml::Table = DEFAULTS.parse().unwrap();
        let cfg: super::LdapConfig = t["directory"]["ldap"].clone().try_into().unwrap();
        cfg.check().unwrap();
    }
}
