//! Usernames claimed atomically in the directory, so that several rollcall
//! nodes writing one server never issue the same name. Before a new user is
//! written, its name is claimed by adding
//! `uid=<name>,cn=usernames,cn=rollcall,<base>` (object class `account`)
//! naming the person (`description: rollcall-claim=user:<source>:<record>`)
//! and the claiming process (`host: <token>`). An Add succeeds for one
//! writer only: the loser is told, and plans another name. The entry stays
//! when the user is purged (it is the name's tombstone, its description
//! then `rollcall-purged=…`), so a name once issued is never issued again.
//!
//! The same person may be imported by two nodes at once (one student, two
//! schools) under two different names. So after its Adds a writer looks up
//! the other live claims of its people (one batched search): a claim is
//! live while its user is being created — not purged, and younger than
//! [`CLAIM_TTL`]. Whoever sees another live claim of the same person
//! yields: it releases its own claim and leaves the person out of this
//! run. Of two claims made at once the later one always sees the earlier,
//! so the person is never created twice (at worst both yield, and the next
//! import creates it).
//!
//! A claim whose user was never created — the process died, or its write
//! failed — is released (the entry deleted, guarded by an assertion on the
//! token) once the claiming process is gone: each process holds a lock on
//! `ldap-claims/<token>.lock` in the data dir while it lives, and the claims
//! it made are recorded in the local journal before they are made.

use super::LdapDirectory;
use super::conn::{ALREADY_EXISTS, ASSERTION_FAILED, NO_SUCH_OBJECT, checked};
use crate::model::{ObjectRef, UserKey};
use crate::store::{ClaimLoss, StoreError, StoreResult};
use chrono::{DateTime, Utc};
use futures_util::{StreamExt, TryStreamExt};
use ldap3::controls::Assertion;
use ldap3::{Scope, ldap_escape};
use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::path::{Path, PathBuf};

/// What a claim entry's `description` starts with; a purged user's
/// tombstone says `rollcall-purged=` instead.
const CLAIM_PREFIX: &str = "rollcall-claim=";
pub const PURGED_PREFIX: &str = "rollcall-purged=";
/// How long a claim without its user counts as a creation in progress.
pub const CLAIM_TTL: chrono::TimeDelta = chrono::TimeDelta::hours(1);

/// This process's identity as a claimer: a random token and the lock file
/// that says the process is alive. Dropping it removes the lock file.
pub struct Owner {
    pub token: String,
    dir: PathBuf,
    _lock: File,
}

impl Owner {
    /// A fresh token, locked in `dir` (created when missing).
    pub fn new(dir: &Path) -> StoreResult<Self> {
        let fail = |e: std::io::Error| StoreError::Backend {
            server: dir.display().to_string(),
            message: format!("cannot create the claim lock in {}: {e}", dir.display()),
        };
        std::fs::create_dir_all(dir).map_err(fail)?;
        let token = format!("{:016x}", rand::random::<u64>());
        let lock = File::create(dir.join(format!("{token}.lock"))).map_err(fail)?;
        lock.try_lock().map_err(|e| fail(e.into()))?;
        Ok(Owner {
            token,
            dir: dir.to_path_buf(),
            _lock: lock,
        })
    }

    /// Whether the process holding `token` still lives: its lock file
    /// exists and is locked.
    pub fn alive(&self, token: &str) -> bool {
        if token == self.token {
            return true;
        }
        if token.is_empty() || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
            return false;
        }
        let path = self.dir.join(format!("{token}.lock"));
        let Ok(f) = File::open(&path) else { return false };
        match f.try_lock() {
            Ok(()) => {
                let _ = std::fs::remove_file(&path);
                false
            }
            Err(_) => true,
        }
    }
}

impl Drop for Owner {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(self.dir.join(format!("{}.lock", self.token)));
    }
}

/// The outcome of one claim.
enum Claimed {
    Won,
    Lost(ClaimLoss),
}

/// A claim entry as read back.
struct Holder {
    uid: String,
    descriptions: Vec<String>,
    hosts: Vec<String>,
    created: Option<DateTime<Utc>>,
}

impl Holder {
    fn from_attrs(a: &super::mapping::Attrs) -> Holder {
        let one = |k: &str| a.get(k).and_then(|v| v.first()).cloned().unwrap_or_default();
        Holder {
            uid: one("uid"),
            descriptions: a.get("description").cloned().unwrap_or_default(),
            hosts: a.get("host").cloned().unwrap_or_default(),
            created: parse_generalized(&one("createtimestamp")),
        }
    }

    fn claims(&self, description: &str) -> bool {
        self.descriptions.iter().any(|d| d == description)
    }

    fn held_by(&self, token: &str) -> bool {
        self.hosts.iter().any(|h| h == token)
    }

    /// A creation in progress: not a tombstone, and recent (a server that
    /// does not say when it was made is taken at its word: in progress).
    fn live(&self, now: DateTime<Utc>) -> bool {
        !self.descriptions.iter().any(|d| d.starts_with(PURGED_PREFIX))
            && self.created.is_none_or(|t| now - t < CLAIM_TTL)
    }
}

/// `YYYYMMDDhhmmss[.f]Z` (generalized time, as slapd writes it).
fn parse_generalized(s: &str) -> Option<DateTime<Utc>> {
    let digits = s.get(..14)?;
    chrono::NaiveDateTime::parse_from_str(digits, "%Y%m%d%H%M%S")
        .ok()
        .map(|t| t.and_utc())
}

/// The attributes a claim is read with.
fn holder_attrs() -> Vec<String> {
    ["uid", "description", "host", "createTimestamp"]
        .map(str::to_string)
        .to_vec()
}

impl LdapDirectory {
    fn claim_description(key: &UserKey) -> String {
        format!("{CLAIM_PREFIX}{}", ObjectRef::user(key))
    }

    /// Claims these usernames; returns the ones that are not ours.
    pub(super) fn claim_usernames_impl(
        &mut self,
        claims: &[(String, UserKey)],
    ) -> StoreResult<HashMap<String, ClaimLoss>> {
        let held = self.claimed.lock().map(|c| c.clone()).unwrap_or_default();
        let fresh: Vec<&(String, UserKey)> = claims.iter().filter(|(n, _)| !held.contains(n)).collect();
        if fresh.is_empty() {
            return Ok(HashMap::new());
        }
        self.release_stale_claims()?;
        let rows: Vec<(String, ObjectRef)> = fresh.iter().map(|(n, k)| (n.clone(), ObjectRef::user(k))).collect();
        self.journal.record_claims(&self.owner.token, &rows)?;
        let this = &*self;
        let lost = this.pool.block_on(async {
            this.ensure_base().await?;
            this.ensure(&[this.layout.usernames_dn()]).await?;
            let outcomes: Vec<(&(String, UserKey), Claimed)> = futures_util::stream::iter(fresh.iter())
                .map(|c| async move { Ok::<_, StoreError>((*c, this.claim_one(&c.0, &c.1).await?)) })
                .buffer_unordered(this.max_in_flight)
                .try_collect()
                .await?;
            let mut lost = HashMap::new();
            let mut won = Vec::new();
            for (claim, outcome) in outcomes {
                match outcome {
                    Claimed::Won => won.push(claim),
                    Claimed::Lost(why) => {
                        lost.insert(claim.0.clone(), why);
                    }
                }
            }
            // The same people claimed under other names by someone else.
            for name in this.yield_to_others(&won).await? {
                lost.insert(name, ClaimLoss::SamePerson);
            }
            Ok(lost)
        })?;
        let not_ours: Vec<String> = lost.keys().cloned().collect();
        self.journal.drop_claims(&self.owner.token, &not_ours)?;
        if let Ok(mut c) = self.claimed.lock() {
            c.extend(fresh.iter().map(|(n, _)| n.clone()).filter(|n| !lost.contains_key(n)));
        }
        Ok(lost)
    }

    /// Adds the claim entry of one name; on "already exists", reads whose it is.
    async fn claim_one(&self, name: &str, key: &UserKey) -> StoreResult<Claimed> {
        let dn = self.layout.tombstone_dn(name);
        let description = Self::claim_description(key);
        let mut ldap = self.pool.conn().await?;
        for _ in 0..2 {
            match checked(ldap.add(&dn, self.claim_entry(name, key)).await) {
                Ok(_) => return Ok(Claimed::Won),
                Err(e) if e.is(ALREADY_EXISTS) => {}
                Err(e) => return Err(self.pool.err("claim username", &dn, e)),
            }
            let mut holder = None;
            self.pool
                .search(&dn, Scope::Base, "(objectClass=*)", &holder_attrs(), 1, &mut |e| {
                    holder = Some(Holder::from_attrs(&super::read::lower_attrs(e).1));
                })
                .await?;
            // Released between our Add and our read: try once more.
            let Some(h) = holder else { continue };
            return Ok(match (h.claims(&description), h.held_by(&self.owner.token)) {
                (true, true) => Claimed::Won,
                (true, false) if h.live(Utc::now()) => Claimed::Lost(ClaimLoss::SamePerson),
                _ => Claimed::Lost(ClaimLoss::Taken),
            });
        }
        Ok(Claimed::Lost(ClaimLoss::Taken))
    }

    /// Of the claims just won, the ones whose person someone else claimed
    /// (live, under another name): released here, and returned.
    async fn yield_to_others(&self, won: &[&(String, UserKey)]) -> StoreResult<Vec<String>> {
        let mut wanted: HashMap<String, &str> = won
            .iter()
            .map(|(name, key)| (Self::claim_description(key), name.as_str()))
            .collect();
        let descriptions: Vec<String> = wanted.keys().cloned().collect();
        let filters: Vec<String> = descriptions
            .chunks(100)
            .map(|chunk| {
                let any: String = chunk
                    .iter()
                    .map(|d| format!("(description={})", ldap_escape(d.as_str())))
                    .collect();
                format!("(|{any})")
            })
            .collect();
        let usernames = self.layout.usernames_dn();
        let found: Vec<Vec<Holder>> = futures_util::stream::iter(filters.iter())
            .map(|f| async {
                let mut out = Vec::new();
                self.pool
                    .search(
                        &usernames,
                        Scope::OneLevel,
                        f,
                        &holder_attrs(),
                        self.page_size,
                        &mut |e| out.push(Holder::from_attrs(&super::read::lower_attrs(e).1)),
                    )
                    .await?;
                Ok::<_, StoreError>(out)
            })
            .buffer_unordered(self.max_in_flight)
            .try_collect()
            .await?;
        let now = Utc::now();
        let mut yielded = Vec::new();
        for h in found.iter().flatten() {
            if h.held_by(&self.owner.token) || !h.live(now) {
                continue;
            }
            for d in &h.descriptions {
                if let Some(ours) = wanted.get(d).copied()
                    && ours != h.uid
                {
                    yielded.push(ours.to_string());
                    wanted.remove(d);
                    break;
                }
            }
        }
        futures_util::stream::iter(yielded.iter())
            .map(|name| self.release_claim(name, &self.owner.token))
            .buffer_unordered(self.max_in_flight)
            .try_collect::<Vec<()>>()
            .await?;
        Ok(yielded)
    }

    fn claim_entry(&self, name: &str, key: &UserKey) -> Vec<(String, HashSet<String>)> {
        vec![
            ("objectClass".to_string(), HashSet::from(["account".to_string()])),
            ("uid".to_string(), HashSet::from([name.to_string()])),
            ("description".to_string(), HashSet::from([Self::claim_description(key)])),
            ("host".to_string(), HashSet::from([self.owner.token.clone()])),
        ]
    }

    /// The claims of this batch's new users are used: forget them.
    pub(super) fn claims_used(&mut self, names: &[String]) -> StoreResult<()> {
        if let Ok(mut c) = self.claimed.lock() {
            for n in names {
                c.remove(n);
            }
        }
        self.journal.drop_claims(&self.owner.token, names)
    }

    /// Claims of this batch that were not used (its write failed): they
    /// are released by the next writer (see [`release_stale_claims`]).
    ///
    /// [`release_stale_claims`]: LdapDirectory::release_stale_claims
    pub(super) fn claims_unused(&self, names: &[String]) {
        if let Ok(mut c) = self.claimed.lock() {
            for n in names {
                c.remove(n);
            }
        }
    }

    /// Releases the recorded claims nobody will use: made by a process of
    /// this data dir that is gone, or by this one for a write that failed.
    /// A claim whose user exists stays (it is the name's record).
    pub(super) fn release_stale_claims(&mut self) -> StoreResult<()> {
        let held = self.claimed.lock().map(|c| c.clone()).unwrap_or_default();
        let stale: Vec<(String, String)> = self
            .journal
            .claims()?
            .into_iter()
            .filter(|(name, _, token)| {
                if *token == self.owner.token {
                    !held.contains(name)
                } else {
                    !self.owner.alive(token)
                }
            })
            .map(|(name, _, token)| (name, token))
            .collect();
        if stale.is_empty() {
            return Ok(());
        }
        tracing::info!(
            count = stale.len(),
            "releasing usernames claimed for users never created"
        );
        self.pool.block_on(async {
            futures_util::stream::iter(stale.iter())
                .map(|(name, token)| self.release_claim(name, token))
                .buffer_unordered(self.max_in_flight)
                .try_collect::<Vec<()>>()
                .await
        })?;
        for (name, token) in stale {
            self.journal.drop_claims(&token, &[name])?;
        }
        Ok(())
    }

    async fn release_claim(&self, name: &str, token: &str) -> StoreResult<()> {
        if !self.search_users(&self.map.username.eq(name)).await?.is_empty() {
            return Ok(());
        }
        let dn = self.layout.tombstone_dn(name);
        let mut guard = Assertion::new(format!("(host={})", ldap_escape(token)));
        guard.crit = true;
        let mut ldap = self.pool.conn().await?;
        match checked(ldap.with_controls(guard).delete(&dn).await) {
            Ok(_) => Ok(()),
            // Gone already, or someone else's entry now.
            Err(e) if e.is(NO_SUCH_OBJECT) || e.is(ASSERTION_FAILED) => Ok(()),
            Err(e) => Err(self.pool.err("release username", &dn, e)),
        }
    }
}
