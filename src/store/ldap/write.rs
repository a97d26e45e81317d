//! Writing a batch: the new users' usernames claimed (see `claim`), the
//! intents, then schools and containers, then every user change
//! concurrently (Add; ModifyDN and Modify guarded by an assertion on the
//! stored `updated_at`; Delete after a tombstone keeps the username
//! issued), then the group member deltas (one Modify per group), then
//! counters, and finally the intents are completed.

use super::LdapDirectory;
use super::conn::{
    ALREADY_EXISTS, ASSERTION_FAILED, NO_SUCH_ATTRIBUTE, NO_SUCH_OBJECT, OpError, VALUE_EXISTS, checked,
};
use super::journal::Changes;
use super::layout::{chain, first_rdn, parent};
use super::mapping::{Values, group_value, time_str};
use crate::model::{GroupKey, GroupKind, ObjectRef, School, User, UserKey};
use crate::store::{ApplyReport, Batch, StoreError, StoreResult, UserChange};
use futures_util::{StreamExt, TryStreamExt};
use ldap3::controls::Assertion;
use ldap3::{Mod, Scope};
use std::collections::{BTreeMap, BTreeSet, HashSet};

pub fn group_keys(user: &User) -> BTreeSet<GroupKey> {
    let mut out = BTreeSet::new();
    for m in &user.memberships {
        for c in &m.classes {
            out.insert(GroupKey::new(m.school.clone(), GroupKind::Class, c.clone()));
        }
        for w in &m.workgroups {
            out.insert(GroupKey::new(m.school.clone(), GroupKind::Workgroup, w.clone()));
        }
    }
    out
}

/// Undoes RFC 4514 escapes (`\XX` and `\c`) in an RDN value.
pub fn dn_unescape(v: &str) -> String {
    let b = v.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 1 < b.len() {
            let hex = b
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            match hex {
                Some(byte) => {
                    out.push(byte);
                    i += 3;
                }
                None => {
                    out.push(b[i + 1]);
                    i += 2;
                }
            }
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The naming attribute and value of a DN's first RDN.
pub fn rdn_parts(dn: &str) -> (String, String) {
    let rdn = first_rdn(dn);
    let (attr, value) = rdn.split_once('=').unwrap_or((rdn, ""));
    (attr.to_string(), dn_unescape(value))
}

type AddAttrs = Vec<(String, HashSet<String>)>;

fn set(values: impl IntoIterator<Item = impl Into<String>>) -> HashSet<String> {
    values.into_iter().map(Into::into).collect()
}

/// Deletes, then adds, of the values that differ.
pub fn diff(before: &Values, after: &Values) -> Vec<Mod<String>> {
    let mut dels = Vec::new();
    let mut adds = Vec::new();
    let empty = BTreeSet::new();
    let keys: BTreeSet<&String> = before.keys().chain(after.keys()).collect();
    for k in keys {
        let (name, b) = before.get(k).map_or((None, &empty), |(n, v)| (Some(n), v));
        let (name2, a) = after.get(k).map_or((None, &empty), |(n, v)| (Some(n), v));
        let Some(name) = name2.or(name) else { continue };
        let removed: HashSet<String> = b.difference(a).cloned().collect();
        let added: HashSet<String> = a.difference(b).cloned().collect();
        if !removed.is_empty() {
            dels.push(Mod::Delete(name.clone(), removed));
        }
        if !added.is_empty() {
            adds.push(Mod::Add(name.clone(), added));
        }
    }
    dels.extend(adds);
    dels
}

/// Creates a container entry (`ou`, `cn`, `o` or `dc` by its naming
/// attribute); one that exists already is fine.
pub(crate) async fn add_container(pool: &super::conn::Pool, dn: &str) -> StoreResult<()> {
    let (attr, value) = rdn_parts(dn);
    let classes: &[&str] = match attr.to_ascii_lowercase().as_str() {
        "ou" => &["organizationalUnit"],
        "cn" => &["organizationalRole"],
        "o" => &["organization"],
        "dc" => &["dcObject", "organization"],
        _ => {
            return Err(StoreError::Backend {
                server: pool.server.clone(),
                message: format!("cannot create the container {dn}: unknown naming attribute '{attr}'"),
            });
        }
    };
    let mut attrs: AddAttrs = vec![
        ("objectClass".into(), set(classes.iter().copied())),
        (attr.clone(), set([value.clone()])),
    ];
    if attr.eq_ignore_ascii_case("dc") {
        attrs.push(("o".into(), set([value])));
    }
    let mut ldap = pool.conn().await?;
    match checked(ldap.add(dn, attrs).await) {
        Ok(_) => Ok(()),
        Err(e) if e.is(ALREADY_EXISTS) => Ok(()),
        Err(e) => Err(pool.err("add container", dn, e)),
    }
}

/// A user change's DNs: where it was, where it is now.
type Moved = (Option<String>, Option<String>);

#[derive(Default)]
struct Delta {
    add: BTreeSet<String>,
    remove: BTreeSet<String>,
}

impl LdapDirectory {
    /// The objects a batch changes, as the SQLite store journals them, plus
    /// the groups whose member DNs move (repair only).
    fn changes(&self, batch: &Batch, schools: &[&School]) -> Changes {
        let mut c = Changes::default();
        for s in schools {
            c.add(ObjectRef::school(&s.name), [s.name.as_str()]);
        }
        for change in &batch.users {
            let (before, after) = match change {
                UserChange::Create(u) => (None, Some(u)),
                UserChange::Update { before, after } => (Some(before), Some(after)),
                UserChange::Delete(u) => (Some(u), None),
            };
            let user = after.or(before).map(|u| ObjectRef::user(&u.key));
            if let Some(user) = user {
                let schools: Vec<&str> = before.into_iter().chain(after).flat_map(|u| u.school_names()).collect();
                c.add(user, schools);
            }
            let g0 = before.map(group_keys).unwrap_or_default();
            let g1 = after.map(group_keys).unwrap_or_default();
            for k in g0.symmetric_difference(&g1) {
                c.add(ObjectRef::group(k), [k.school.as_str()]);
            }
            if let (Some(b), Some(a)) = (before, after)
                && (b.username != a.username || b.primary_school() != a.primary_school())
            {
                for k in g0.union(&g1) {
                    c.touch(ObjectRef::group(k), &k.school);
                }
            }
        }
        c
    }

    pub(super) fn apply_impl(&mut self, batch: &Batch) -> StoreResult<ApplyReport> {
        if batch.is_empty() {
            return Ok(ApplyReport::default());
        }
        let started = std::time::Instant::now();
        self.repair_pending()?;
        let mut schools = Vec::new();
        for s in &batch.schools {
            if self
                .school_impl(&s.name)?
                .is_none_or(|e| e.display_name != s.display_name)
            {
                schools.push(s);
            }
        }
        // Every new user's name is claimed first (most were, by the engine).
        let created: Vec<(String, UserKey)> = batch
            .users
            .iter()
            .filter_map(|c| match c {
                UserChange::Create(u) => Some((u.username.clone(), u.key.clone())),
                _ => None,
            })
            .collect();
        let names: Vec<String> = created.iter().map(|(n, _)| n.clone()).collect();
        if !created.is_empty()
            && let Some(name) = self.claim_usernames_impl(&created)?.into_keys().min()
        {
            self.claims_unused(&names);
            return Err(StoreError::UsernameTaken(name));
        }
        let changes = self.changes(batch, &schools);
        self.listening
            .store(self.journal.listening()?, std::sync::atomic::Ordering::Relaxed);
        self.take_own();
        let ids = self.journal.begin(&changes)?;
        let intents = started.elapsed();
        if let Err(e) = self.pool.block_on(self.write(batch, &schools, &changes)) {
            self.claims_unused(&names);
            return Err(e);
        }
        let written = started.elapsed();
        self.journal.complete(&ids, &self.take_own())?;
        self.claims_used(&names)?;
        tracing::debug!(
            intents_ms = intents.as_millis() as u64,
            write_ms = (written - intents).as_millis() as u64,
            complete_ms = (started.elapsed() - written).as_millis() as u64,
            "LDAP batch applied"
        );
        Ok(ApplyReport {
            journal_entries: changes.journalled(),
        })
    }

    async fn write(&self, batch: &Batch, schools: &[&School], changes: &Changes) -> StoreResult<()> {
        let started = std::time::Instant::now();
        self.ensure_base().await?;
        for s in schools {
            self.write_school(s).await?;
        }
        let mut containers = BTreeSet::new();
        for change in &batch.users {
            match change {
                UserChange::Create(u) | UserChange::Update { after: u, .. } => {
                    containers.insert(self.layout.user_dn(&u.username, u.primary_school()));
                }
                UserChange::Delete(_) => {
                    containers.insert(self.layout.tombstone_dn("x"));
                }
            }
        }
        if !batch.counters.is_empty() {
            containers.insert(self.layout.counter_dn("x"));
        }
        let parents: Vec<String> = containers
            .iter()
            .filter_map(|dn| parent(dn).map(str::to_string))
            .collect();
        self.ensure(&parents).await?;
        let prepared = started.elapsed();
        let moved: Vec<Moved> = futures_util::stream::iter(batch.users.iter())
            .map(|c| self.write_user(c))
            .buffered(self.max_in_flight)
            .try_collect()
            .await?;
        let users_done = started.elapsed();
        let mut groups: BTreeMap<GroupKey, Delta> = BTreeMap::new();
        for (change, (old, new)) in batch.users.iter().zip(&moved) {
            let (before, after) = match change {
                UserChange::Create(u) => (None, Some(u)),
                UserChange::Update { before, after } => (Some(before), Some(after)),
                UserChange::Delete(u) => (Some(u), None),
            };
            let g0 = before.map(group_keys).unwrap_or_default();
            let g1 = after.map(group_keys).unwrap_or_default();
            let same_dn = matches!((old, new), (Some(o), Some(n)) if o.eq_ignore_ascii_case(n));
            if let Some(o) = old {
                for k in g0.iter().filter(|k| !same_dn || !g1.contains(*k)) {
                    groups.entry(k.clone()).or_default().remove.insert(o.clone());
                }
            }
            if let Some(n) = new {
                for k in g1.iter().filter(|k| !same_dn || !g0.contains(*k)) {
                    groups.entry(k.clone()).or_default().add.insert(n.clone());
                }
            }
        }
        let group_parents: Vec<String> = groups
            .keys()
            .filter_map(|k| parent(&self.layout.group_dn(k)).map(str::to_string))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        self.ensure(&group_parents).await?;
        // A group only touched (its member DNs follow a move) is not
        // journalled: its write is not noted as this node's own.
        let journalled = |k: &GroupKey| changes.0.get(&ObjectRef::group(k)).is_some_and(|(_, j)| *j);
        futures_util::stream::iter(groups.iter())
            .map(|(k, d)| self.write_group(k, d, journalled(k)))
            .buffer_unordered(self.max_in_flight)
            .try_collect::<Vec<()>>()
            .await?;
        let groups_done = started.elapsed();
        self.write_counters(&batch.counters).await?;
        tracing::debug!(
            users = batch.users.len(),
            groups = groups.len(),
            prepare_ms = prepared.as_millis() as u64,
            users_ms = (users_done - prepared).as_millis() as u64,
            groups_ms = (groups_done - users_done).as_millis() as u64,
            counters_ms = (started.elapsed() - groups_done).as_millis() as u64,
            "LDAP batch written"
        );
        Ok(())
    }

    /// Creates the base entry when missing (and its parents, as far as the
    /// server lets us).
    pub(super) async fn ensure_base(&self) -> StoreResult<()> {
        let base = self.layout.base().to_string();
        if self.is_known(&base) {
            return Ok(());
        }
        let mut found = false;
        self.pool
            .search(&base, Scope::Base, "(objectClass=*)", &[], 1, &mut |_| found = true)
            .await?;
        if !found {
            let mut missing = vec![base.clone()];
            let mut cur = parent(&base);
            while let Some(p) = cur {
                let mut exists = false;
                self.pool
                    .search(p, Scope::Base, "(objectClass=*)", &[], 1, &mut |_| exists = true)
                    .await?;
                if exists {
                    break;
                }
                missing.push(p.to_string());
                cur = parent(p);
            }
            for dn in missing.iter().rev() {
                self.add_container(dn).await?;
            }
        }
        self.mark_known(&base);
        Ok(())
    }

    async fn add_container(&self, dn: &str) -> StoreResult<()> {
        add_container(&self.pool, dn).await?;
        self.mark_known(dn);
        Ok(())
    }

    /// Creates every missing entry on the way from the base to these DNs.
    pub(super) async fn ensure(&self, dns: &[String]) -> StoreResult<()> {
        let base = self.layout.base().to_string();
        let mut todo: BTreeSet<(usize, String)> = BTreeSet::new();
        for dn in dns {
            for (depth, d) in chain(dn, &base).into_iter().enumerate() {
                if !self.is_known(d) {
                    todo.insert((depth, d.to_string()));
                }
            }
        }
        for (_, dn) in todo {
            if !self.is_known(&dn) {
                self.add_container(&dn).await?;
            }
        }
        Ok(())
    }

    async fn write_school(&self, s: &School) -> StoreResult<()> {
        let dn = self.layout.school_dn(&s.name);
        let (rdn_attr, rdn_value) = rdn_parts(&dn);
        let mut attrs: AddAttrs = vec![
            ("objectClass".into(), set(self.map.school_classes.iter().cloned())),
            (rdn_attr, set([rdn_value])),
            (self.map.school_display.clone(), set([s.display_name.clone()])),
        ];
        if let Some((k, v)) = &self.map.school_marker {
            attrs.push((k.clone(), set([v.clone()])));
        }
        let mut ldap = self.pool.conn().await?;
        if let Some(c) = self.read_back(false) {
            ldap.with_controls(c);
        }
        match checked(ldap.add(&dn, attrs).await) {
            Ok(r) => self.note_own(&r),
            Err(e) if e.is(ALREADY_EXISTS) => {
                let mods = vec![Mod::Replace(
                    self.map.school_display.clone(),
                    set([s.display_name.clone()]),
                )];
                if let Some(c) = self.read_back(false) {
                    ldap.with_controls(c);
                }
                let r = checked(ldap.modify(&dn, mods).await).map_err(|e| self.pool.err("modify school", &dn, e))?;
                self.note_own(&r);
                if let Some((k, v)) = &self.map.school_marker {
                    let classes: Vec<Mod<String>> = vec![
                        Mod::Add(
                            "objectClass".into(),
                            set(self.map.school_classes.iter().skip(1).cloned()),
                        ),
                        Mod::Add(k.clone(), set([v.clone()])),
                    ]
                    .into_iter()
                    .filter(|m| !matches!(m, Mod::Add(_, v) if v.is_empty()))
                    .collect();
                    for m in classes {
                        match checked(ldap.modify(&dn, vec![m]).await) {
                            Ok(_) => {}
                            Err(e) if e.is(VALUE_EXISTS) => {}
                            Err(e) => return Err(self.pool.err("mark school", &dn, e)),
                        }
                    }
                }
            }
            Err(e) if e.is(NO_SUCH_OBJECT) => {
                // The layout puts schools deeper than the base: create the path.
                self.ensure(&[parent(&dn).unwrap_or_default().to_string()]).await?;
                return Box::pin(self.write_school(s)).await;
            }
            Err(e) => return Err(self.pool.err("add school", &dn, e)),
        }
        self.mark_known(&dn);
        Ok(())
    }

    /// Where a user's entry is: the DN it was read at, else a search.
    async fn locate(&self, u: &User) -> StoreResult<String> {
        if let Some(dn) = self.cached_dn(&u.key) {
            return Ok(dn);
        }
        self.user_async(&u.key).await?;
        self.cached_dn(&u.key)
            .ok_or_else(|| StoreError::NoSuchUser(u.key.to_string()))
    }

    /// A failed guarded operation: a conflict when the user still exists
    /// (someone changed or moved it), else gone.
    async fn explain(&self, op: &str, dn: &str, u: &User, e: OpError) -> StoreError {
        if e.is(ASSERTION_FAILED) {
            return StoreError::Conflict { key: u.key.to_string() };
        }
        if e.is(NO_SUCH_OBJECT) {
            if let Ok(mut dns) = self.dns.lock() {
                dns.remove(&u.key);
            }
            return match self.user_async(&u.key).await {
                Ok(Some(_)) => StoreError::Conflict { key: u.key.to_string() },
                Ok(None) => StoreError::NoSuchUser(u.key.to_string()),
                Err(other) => other,
            };
        }
        self.pool.err(op, dn, e)
    }

    fn guard(&self, before: &User) -> ldap3::controls::RawControl {
        let mut c = Assertion::new(self.map.updated_at.eq(&time_str(before.updated_at)));
        c.crit = true;
        c
    }

    /// The guard, and the read-back control when a listener needs it.
    fn guarded(&self, before: &User, delete: bool) -> Vec<ldap3::controls::RawControl> {
        let mut c = vec![self.guard(before)];
        c.extend(self.read_back(delete));
        c
    }

    async fn write_user(&self, change: &UserChange) -> StoreResult<Moved> {
        let mut ldap = self.pool.conn().await?;
        match change {
            UserChange::Create(u) => {
                let dn = self.layout.user_dn(&u.username, u.primary_school());
                let mut attrs: AddAttrs = vec![("objectClass".into(), set(self.map.user_classes.iter().cloned()))];
                attrs.extend(
                    self.map
                        .encode(u)
                        .into_values()
                        .map(|(name, v)| (name, v.into_iter().collect())),
                );
                if let Some(c) = self.read_back(false) {
                    ldap.with_controls(c);
                }
                match checked(ldap.add(&dn, attrs).await) {
                    Ok(r) => self.note_own(&r),
                    Err(e) if e.is(ALREADY_EXISTS) => return Err(StoreError::UsernameTaken(u.username.clone())),
                    Err(e) => return Err(self.pool.err("add user", &dn, e)),
                }
                if let Ok(mut dns) = self.dns.lock() {
                    dns.insert(u.key.clone(), dn.clone());
                }
                Ok((None, Some(dn)))
            }
            UserChange::Update { before, after } => {
                let old = self.locate(before).await?;
                let new = self.layout.user_dn(&after.username, after.primary_school());
                if !old.eq_ignore_ascii_case(&new) {
                    let rdn = first_rdn(&new);
                    let sup = parent(&new);
                    let r = ldap
                        .with_controls(self.guarded(before, false))
                        .modifydn(&old, rdn, true, sup)
                        .await;
                    match checked(r) {
                        Ok(r) => self.note_own(&r),
                        Err(e) => return Err(self.explain("move user", &old, before, e).await),
                    }
                }
                let mods = super::write::diff(&self.map.encode(before), &self.map.encode(after));
                if !mods.is_empty() {
                    let r = ldap.with_controls(self.guarded(before, false)).modify(&new, mods).await;
                    match checked(r) {
                        Ok(r) => self.note_own(&r),
                        Err(e) => return Err(self.explain("modify user", &new, before, e).await),
                    }
                }
                if let Ok(mut dns) = self.dns.lock() {
                    dns.insert(after.key.clone(), new.clone());
                }
                Ok((Some(old), Some(new)))
            }
            UserChange::Delete(u) => {
                let dn = self.locate(u).await?;
                // The name stays issued: the tombstone goes in first (the
                // name's claim, marked purged, or a new entry).
                let stone = self.layout.tombstone_dn(&u.username);
                let purged = format!("{}{}", super::claim::PURGED_PREFIX, ObjectRef::user(&u.key));
                let mark = vec![Mod::Replace("description".to_string(), set([purged.clone()]))];
                match checked(ldap.modify(&stone, mark).await) {
                    Ok(_) => {}
                    Err(e) if e.is(NO_SUCH_OBJECT) => {
                        let attrs: AddAttrs = vec![
                            ("objectClass".into(), set(["account"])),
                            ("uid".into(), set([u.username.clone()])),
                            ("description".into(), set([purged])),
                        ];
                        match checked(ldap.add(&stone, attrs).await) {
                            Ok(_) => {}
                            Err(e) if e.is(ALREADY_EXISTS) => {}
                            Err(e) => return Err(self.pool.err("add tombstone", &stone, e)),
                        }
                    }
                    Err(e) => return Err(self.pool.err("mark tombstone", &stone, e)),
                }
                let r = ldap.with_controls(self.guarded(u, true)).delete(&dn).await;
                match checked(r) {
                    Ok(r) => self.note_own(&r),
                    Err(e) => return Err(self.explain("delete user", &dn, u, e).await),
                }
                if let Ok(mut dns) = self.dns.lock() {
                    dns.remove(&u.key);
                }
                Ok((Some(dn), None))
            }
        }
    }

    /// A new group entry with these members (the empty DN keeps
    /// `groupOfNames`' required `member` present when nobody is left).
    pub(super) fn group_entry(&self, key: &GroupKey, members: impl IntoIterator<Item = String>) -> AddAttrs {
        let dn = self.layout.group_dn(key);
        let (rdn_attr, rdn_value) = rdn_parts(&dn);
        let mut m = set(members);
        m.insert(String::new());
        vec![
            ("objectClass".into(), set(self.map.group_classes.iter().cloned())),
            (rdn_attr, set([rdn_value])),
            (self.map.group_key.clone(), set([group_value(key)])),
            (self.map.group_member.clone(), m),
        ]
    }

    pub(super) async fn group_members(&self, dn: &str) -> StoreResult<Option<HashSet<String>>> {
        let attr = self.map.group_member.to_ascii_lowercase();
        let mut found = None;
        self.pool
            .search(
                dn,
                Scope::Base,
                "(objectClass=*)",
                std::slice::from_ref(&self.map.group_member),
                1,
                &mut |e| {
                    let (_, a) = super::read::lower_attrs(e);
                    found = Some(
                        a.get(&attr)
                            .into_iter()
                            .flatten()
                            .map(|v| v.to_ascii_lowercase())
                            .collect(),
                    );
                },
            )
            .await?;
        Ok(found)
    }

    async fn write_group(&self, key: &GroupKey, d: &Delta, own: bool) -> StoreResult<()> {
        let dn = self.layout.group_dn(key);
        let mut ldap = self.pool.conn().await?;
        let read_back = |ldap: &mut ldap3::Ldap| {
            if let Some(c) = self.read_back(false).filter(|_| own) {
                ldap.with_controls(c);
            }
        };
        if !self.is_known(&dn) && !d.add.is_empty() {
            read_back(&mut ldap);
            match checked(ldap.add(&dn, self.group_entry(key, d.add.iter().cloned())).await) {
                Ok(r) => {
                    self.note_own(&r);
                    self.mark_known(&dn);
                    return Ok(());
                }
                Err(e) if e.is(ALREADY_EXISTS) => {}
                Err(e) => return Err(self.pool.err("add group", &dn, e)),
            }
        }
        let mods = |add: Vec<String>, remove: Vec<String>| {
            let mut m = Vec::new();
            if !remove.is_empty() {
                m.push(Mod::Delete(self.map.group_member.clone(), set(remove)));
            }
            if !add.is_empty() {
                m.push(Mod::Add(self.map.group_member.clone(), set(add)));
            }
            m
        };
        let first = mods(d.add.iter().cloned().collect(), d.remove.iter().cloned().collect());
        read_back(&mut ldap);
        match checked(ldap.modify(&dn, first).await) {
            Ok(r) => self.note_own(&r),
            Err(e) if e.is(NO_SUCH_OBJECT) => {
                if !d.add.is_empty() {
                    read_back(&mut ldap);
                    let r = checked(ldap.add(&dn, self.group_entry(key, d.add.iter().cloned())).await)
                        .map_err(|e| self.pool.err("add group", &dn, e))?;
                    self.note_own(&r);
                }
            }
            Err(e) if e.is(VALUE_EXISTS) || e.is(NO_SUCH_ATTRIBUTE) => {
                // Partly done before (a re-run after a failure): apply only
                // what is still missing.
                let current = self.group_members(&dn).await?.unwrap_or_default();
                let add = d
                    .add
                    .iter()
                    .filter(|m| !current.contains(&m.to_ascii_lowercase()))
                    .cloned()
                    .collect();
                let remove = d
                    .remove
                    .iter()
                    .filter(|m| current.contains(&m.to_ascii_lowercase()))
                    .cloned()
                    .collect();
                let exact = mods(add, remove);
                if !exact.is_empty() {
                    read_back(&mut ldap);
                    let r =
                        checked(ldap.modify(&dn, exact).await).map_err(|e| self.pool.err("modify group", &dn, e))?;
                    self.note_own(&r);
                }
            }
            Err(e) => return Err(self.pool.err("modify group", &dn, e)),
        }
        self.mark_known(&dn);
        Ok(())
    }

    async fn write_counters(&self, counters: &[(String, u32)]) -> StoreResult<()> {
        if counters.is_empty() {
            return Ok(());
        }
        let bases: Vec<String> = counters.iter().map(|(b, _)| b.clone()).collect();
        let stored = self.counters_async(&bases).await?;
        futures_util::stream::iter(counters.iter().filter(|(b, n)| stored.get(b).is_none_or(|old| old < n)))
            .map(|(base, next)| self.write_counter(base, *next, stored.get(base).copied()))
            .buffer_unordered(self.max_in_flight)
            .try_collect::<Vec<()>>()
            .await?;
        Ok(())
    }

    /// Moves a counter up to `next` (never down): a Modify guarded by an
    /// assertion on the value read (RFC 4528), read again and retried when
    /// another writer moved it meanwhile.
    async fn write_counter(&self, base: &str, next: u32, mut old: Option<u32>) -> StoreResult<()> {
        let dn = self.layout.counter_dn(base);
        let mut ldap = self.pool.conn().await?;
        for _ in 0..32 {
            let outcome = match old {
                Some(old) if old >= next => return Ok(()),
                Some(old) => {
                    let mods = vec![Mod::Replace("description".to_string(), set([next.to_string()]))];
                    let mut guard = Assertion::new(format!("(description={old})"));
                    guard.crit = true;
                    checked(ldap.with_controls(guard).modify(&dn, mods).await)
                }
                None => {
                    let attrs: AddAttrs = vec![
                        ("objectClass".into(), set(["applicationProcess"])),
                        ("cn".into(), set([base.to_string()])),
                        ("description".into(), set([next.to_string()])),
                    ];
                    checked(ldap.add(&dn, attrs).await)
                }
            };
            match outcome {
                Ok(_) => return Ok(()),
                // Another writer moved it (or created it) meanwhile.
                Err(e) if e.is(ASSERTION_FAILED) || e.is(ALREADY_EXISTS) || e.is(NO_SUCH_OBJECT) => {
                    old = self.counters_async(&[base.to_string()]).await?.remove(base);
                }
                Err(e) => return Err(self.pool.err("write counter", &dn, e)),
            }
        }
        Err(StoreError::Backend {
            server: self.pool.server.clone(),
            message: format!("counter {dn} kept changing under concurrent writers; run the command again"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unescapes_rdn_values() {
        assert_eq!(dn_unescape("a-5a\\2c b\\2bc"), "a-5a, b+c");
        assert_eq!(dn_unescape("x\\,y\\\\"), "x,y\\");
        assert_eq!(rdn_parts("cn=a\\3db,ou=x"), ("cn".to_string(), "a=b".to_string()));
    }

    #[test]
    fn diff_deletes_then_adds_only_what_changed() {
        let v = |pairs: &[(&str, &[&str])]| -> Values {
            pairs
                .iter()
                .map(|(a, vals)| {
                    (
                        a.to_ascii_lowercase(),
                        (a.to_string(), vals.iter().map(|s| s.to_string()).collect()),
                    )
                })
                .collect()
        };
        let before = v(&[("sn", &["Muster"]), ("ou", &["a", "b"]), ("mail", &["x@y"])]);
        let after = v(&[("sn", &["Muster"]), ("ou", &["b", "c"])]);
        let mods = diff(&before, &after);
        let shown: Vec<String> = mods
            .iter()
            .map(|m| match m {
                Mod::Add(a, v) => format!("+{a}:{}", v.iter().cloned().collect::<Vec<_>>().join(",")),
                Mod::Delete(a, v) => format!("-{a}:{}", v.iter().cloned().collect::<Vec<_>>().join(",")),
                _ => "other".into(),
            })
            .collect();
        assert_eq!(shown, ["-mail:x@y", "-ou:a", "+ou:c"]);
    }
}
