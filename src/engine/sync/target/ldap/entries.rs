//! Writing one object on the LDAP target: users (add, adopt an entry at
//! the same DN, ModifyDN on a school move with the member values that named
//! the old DN rewritten, replace of the mapped attributes that differ,
//! school-group membership, delete) and groups (add with members, then add
//! and delete of the member values that differ — never a replace of
//! thousands). Containers on the way are created on demand.

use super::{Attrs, LdapTarget};
use crate::engine::sync::mapping::{Class, Desired, Mapped, get_path};
use crate::engine::sync::target::Applied;
use crate::model::{GroupKey, ObjectRef};
use crate::store::StoreError;
use crate::store::ldap::conn::{ALREADY_EXISTS, NO_SUCH_ATTRIBUTE, NO_SUCH_OBJECT, VALUE_EXISTS, checked};
use crate::store::ldap::layout::{chain, first_rdn, parent};
use crate::store::ldap::write::{add_container, rdn_parts};
use futures_util::{StreamExt, TryStreamExt};
use ldap3::{Mod, Scope, dn_escape, ldap_escape};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

/// External ids resolved per search.
const RESOLVE_CHUNK: usize = 100;
/// Member values per Modify.
const MEMBER_CHUNK: usize = 1000;

/// Wanted values: lowercased attribute → (attribute, values).
type Wanted = BTreeMap<String, (String, BTreeSet<String>)>;

fn hset(values: impl IntoIterator<Item = String>) -> HashSet<String> {
    values.into_iter().collect()
}

fn strings(v: &Value) -> BTreeSet<String> {
    match v {
        Value::String(s) if s.is_empty() => BTreeSet::new(),
        Value::String(s) => [s.clone()].into(),
        Value::Array(items) => items.iter().flat_map(strings).collect(),
        Value::Bool(b) => [if *b { "TRUE" } else { "FALSE" }.to_string()].into(),
        Value::Number(n) => [n.to_string()].into(),
        _ => BTreeSet::new(),
    }
}

impl LdapTarget {
    /// Writes one object; for a group, also the members it was written
    /// without (not on the target yet).
    pub(super) async fn write(&self, desired: &Desired) -> Result<(Applied, Vec<String>), StoreError> {
        let applied = match desired {
            Desired::Skip => Applied::Skipped,
            Desired::Present(m) if m.class == Class::Group => return self.put_group(m).await,
            Desired::Present(m) => self.put_user(m, false).await?,
            Desired::Deactivated(m) => self.put_user(m, true).await?,
            Desired::Absent { class, external_id } => self.delete(*class, external_id).await?,
        };
        Ok((applied, Vec::new()))
    }

    /// The mapped user attributes as LDAP values. The attribute mapped to
    /// `active` holds `1` while the account is disabled and nothing while
    /// it is active (as `shadowExpire` does).
    fn wanted(&self, m: &Mapped) -> Wanted {
        let mut out = Wanted::new();
        for (attr, field) in &self.fields {
            let value = get_path(&m.attributes, attr);
            let values = match (field.as_str(), value) {
                ("active", Some(Value::Bool(false))) => ["1".to_string()].into(),
                ("active", _) => BTreeSet::new(),
                (_, Some(v)) => strings(v),
                (_, None) => BTreeSet::new(),
            };
            out.insert(attr.to_ascii_lowercase(), (attr.clone(), values));
        }
        out
    }

    /// The school a user's DN is placed by: its primary school, else its
    /// first school (none for a user left with no school of this
    /// authority: it stays where it is).
    fn school_of(&self, m: &Mapped) -> Option<String> {
        let by = |wanted: &str| {
            self.fields
                .iter()
                .filter(|(_, f)| *f == wanted)
                .find_map(|(a, _)| get_path(&m.attributes, a).and_then(|v| strings(v).into_iter().next()))
        };
        by("primary_school").or_else(|| by("schools"))
    }

    fn user_dn(&self, m: &Mapped, current: Option<&str>) -> Result<Option<String>, StoreError> {
        let needs_school = self.cfg.layout.user.contains("<school>");
        match self.school_of(m) {
            Some(s) => Ok(Some(self.layout.user_dn(&m.name, &s))),
            None if !needs_school => Ok(Some(self.layout.user_dn(&m.name, ""))),
            None if current.is_some() => Ok(None),
            None => Err(StoreError::Backend {
                server: self.pool.server.clone(),
                message: format!(
                    "user {} ({}): no school to place it by (layout {})",
                    m.name, m.external_id, self.cfg.layout.user
                ),
            }),
        }
    }

    fn school_group_dn(&self, school: &str) -> String {
        self.cfg
            .layout
            .school_group
            .replace("<base>", &self.base)
            .replace("<school>", &dn_escape(school))
    }

    /// Where a group with this external id belongs.
    pub(super) fn group_dn(&self, external_id: &str) -> Result<String, StoreError> {
        match external_id.parse::<ObjectRef>() {
            Ok(ObjectRef::School { name }) => Ok(self.school_group_dn(&name)),
            Ok(ObjectRef::Group {
                school,
                group_kind,
                name,
            }) => Ok(self.layout.group_dn(&GroupKey::new(school, group_kind, name))),
            _ => Err(StoreError::Backend {
                server: self.pool.server.clone(),
                message: format!("'{external_id}' is not a group's external id"),
            }),
        }
    }

    /// Creates the base (when missing) and every container down to `dn`'s
    /// parent.
    async fn ensure_parents(&self, dn: &str) -> Result<(), StoreError> {
        let mut base_found = false;
        self.pool
            .search(&self.base, Scope::Base, "(objectClass=*)", &[], 1, &mut |_| {
                base_found = true
            })
            .await?;
        if !base_found {
            add_container(&self.pool, &self.base).await?;
        }
        if let Some(p) = parent(dn) {
            for d in chain(p, &self.base) {
                add_container(&self.pool, d).await?;
            }
        }
        Ok(())
    }

    /// Adds an entry, creating missing containers first when needed.
    async fn add(&self, op: &str, dn: &str, attrs: Vec<(String, HashSet<String>)>) -> Result<bool, StoreError> {
        let mut ldap = self.pool.conn().await?;
        match checked(ldap.add(dn, attrs.clone()).await) {
            Ok(_) => Ok(true),
            Err(e) if e.is(ALREADY_EXISTS) => Ok(false),
            Err(e) if e.is(NO_SUCH_OBJECT) => {
                self.ensure_parents(dn).await?;
                match checked(ldap.add(dn, attrs).await) {
                    Ok(_) => Ok(true),
                    Err(e) if e.is(ALREADY_EXISTS) => Ok(false),
                    Err(e) => Err(self.pool.err(op, dn, e)),
                }
            }
            Err(e) => Err(self.pool.err(op, dn, e)),
        }
    }

    async fn put_user(&self, m: &Mapped, deactivate: bool) -> Result<Applied, StoreError> {
        let wanted = self.wanted(m);
        let found = self.find(Class::User, &m.external_id).await?;
        let (dn, current, created) = match found {
            None if deactivate => return Ok(Applied::Absent),
            None => {
                let dn = self
                    .user_dn(m, None)?
                    .unwrap_or_else(|| self.layout.user_dn(&m.name, ""));
                let mut attrs = vec![
                    (
                        "objectClass".to_string(),
                        hset(self.cfg.user_object_classes.iter().cloned()),
                    ),
                    (self.cfg.user_key.clone(), hset([m.external_id.clone()])),
                ];
                attrs.extend(
                    wanted
                        .values()
                        .filter(|(_, v)| !v.is_empty())
                        .map(|(a, v)| (a.clone(), hset(v.iter().cloned()))),
                );
                if self.add("add user", &dn, attrs).await? {
                    self.join_school_groups(m, &dn).await?;
                    return Ok(Applied::Created);
                }
                // An entry at that DN without our key: adopt it unless it
                // belongs to another user.
                let current = self.read(&dn, Class::User).await?.unwrap_or_default();
                let key = self.cfg.user_key.to_ascii_lowercase();
                if let Some(other) = current.get(&key).and_then(|v| v.first())
                    && other != &m.external_id
                {
                    return Err(StoreError::Backend {
                        server: self.pool.server.clone(),
                        message: format!(
                            "add user {dn}: the entry exists and holds {}={other}, not {}",
                            self.cfg.user_key, m.external_id
                        ),
                    });
                }
                let mut ldap = self.pool.conn().await?;
                let mods = vec![Mod::Replace(self.cfg.user_key.clone(), hset([m.external_id.clone()]))];
                checked(ldap.modify(&dn, mods).await).map_err(|e| self.pool.err("adopt user", &dn, e))?;
                (dn, current, true)
            }
            Some((dn, current)) => (dn, current, false),
        };
        let mut changed = created;
        let mut dn = dn;
        if let Some(target) = self.user_dn(m, Some(&dn))?
            && !target.eq_ignore_ascii_case(&dn)
        {
            self.move_user(&dn, &target).await?;
            dn = target;
            changed = true;
        }
        let mods: Vec<Mod<String>> = wanted
            .iter()
            .filter(|(k, (_, want))| {
                let have: BTreeSet<String> = current.get(*k).cloned().unwrap_or_default().into_iter().collect();
                &have != want
            })
            .map(|(_, (a, want))| Mod::Replace(a.clone(), hset(want.iter().cloned())))
            .collect();
        if !mods.is_empty() {
            let mut ldap = self.pool.conn().await?;
            checked(ldap.modify(&dn, mods).await).map_err(|e| self.pool.err("modify user", &dn, e))?;
            changed = true;
        }
        self.join_school_groups(m, &dn).await?;
        Ok(match (changed, created, deactivate) {
            (false, _, _) => Applied::Unchanged,
            (true, true, _) => Applied::Updated,
            (true, false, true) => Applied::Deactivated,
            (true, false, false) => Applied::Updated,
        })
    }

    async fn read(&self, dn: &str, class: Class) -> Result<Option<Attrs>, StoreError> {
        let mut found = None;
        self.pool
            .search(
                dn,
                Scope::Base,
                "(objectClass=*)",
                &self.read_attrs(class),
                1,
                &mut |e| found = Some(super::lower(e).1),
            )
            .await?;
        Ok(found)
    }

    /// ModifyDN to the new place, then the member values naming the old DN
    /// name the new one.
    async fn move_user(&self, old: &str, new: &str) -> Result<(), StoreError> {
        let mut ldap = self.pool.conn().await?;
        let rdn = first_rdn(new);
        let sup = parent(new);
        match checked(ldap.modifydn(old, rdn, true, sup).await) {
            Ok(_) => {}
            Err(e) if e.is(NO_SUCH_OBJECT) => {
                self.ensure_parents(new).await?;
                checked(ldap.modifydn(old, rdn, true, sup).await).map_err(|e| self.pool.err("move user", old, e))?;
            }
            Err(e) => return Err(self.pool.err("move user", old, e)),
        }
        self.replace_member(old, Some(new)).await
    }

    /// Every group listing `old` lists `new` instead (or nothing).
    async fn replace_member(&self, old: &str, new: Option<&str>) -> Result<(), StoreError> {
        let filter = format!(
            "(&(objectClass={})({}={}))",
            ldap_escape(self.object_class(Class::Group)),
            self.cfg.group_member,
            ldap_escape(old)
        );
        let mut groups = Vec::new();
        self.pool
            .search(&self.base, Scope::Subtree, &filter, &[], self.cfg.page_size, &mut |e| {
                groups.push(e.dn)
            })
            .await?;
        let mut ldap = self.pool.conn().await?;
        for g in groups {
            let mut mods = vec![Mod::Delete(self.cfg.group_member.clone(), hset([old.to_string()]))];
            if let Some(n) = new {
                mods.push(Mod::Add(self.cfg.group_member.clone(), hset([n.to_string()])));
            }
            match checked(ldap.modify(&g, mods).await) {
                Ok(_) => {}
                Err(e) if e.is(NO_SUCH_ATTRIBUTE) || e.is(VALUE_EXISTS) || e.is(NO_SUCH_OBJECT) => {}
                Err(e) => return Err(self.pool.err("modify group", &g, e)),
            }
        }
        Ok(())
    }

    /// A user joins its school groups and leaves those of schools it left.
    async fn join_school_groups(&self, m: &Mapped, dn: &str) -> Result<(), StoreError> {
        let mut ldap = self.pool.conn().await?;
        for (group, join) in m
            .school_groups
            .iter()
            .map(|g| (g, true))
            .chain(m.left_school_groups.iter().map(|g| (g, false)))
        {
            let gdn = self.group_dn(group)?;
            let values = hset([dn.to_string()]);
            let change = if join {
                Mod::Add(self.cfg.group_member.clone(), values)
            } else {
                Mod::Delete(self.cfg.group_member.clone(), values)
            };
            match checked(ldap.modify(&gdn, vec![change]).await) {
                Ok(_) => {}
                // Already in, already out, or the group is not sent yet
                // (it lists its members when it is).
                Err(e) if e.is(VALUE_EXISTS) || e.is(NO_SUCH_ATTRIBUTE) || e.is(NO_SUCH_OBJECT) => {}
                Err(e) => return Err(self.pool.err("modify group", &gdn, e)),
            }
        }
        Ok(())
    }

    /// The DNs of the users with these external ids, and the external
    /// ids the target does not hold yet (left out).
    async fn resolve(&self, external_ids: &[String]) -> Result<(Vec<String>, Vec<String>), StoreError> {
        let class = ldap_escape(self.object_class(Class::User)).into_owned();
        let filters: Vec<String> = external_ids
            .chunks(RESOLVE_CHUNK)
            .map(|chunk| {
                let any: String = chunk
                    .iter()
                    .map(|e| format!("({}={})", self.cfg.user_key, ldap_escape(e.as_str())))
                    .collect();
                format!("(&(objectClass={class})(|{any}))")
            })
            .collect();
        let key = self.cfg.user_key.clone();
        let attrs = vec![key.clone()];
        let parts: Vec<Vec<(String, Vec<String>)>> = futures_util::stream::iter(filters.iter())
            .map(|f| async {
                let mut found = Vec::new();
                self.pool
                    .search(&self.base, Scope::Subtree, f, &attrs, self.cfg.page_size, &mut |e| {
                        // Key values compare as the search matched them:
                        // without regard to case.
                        let keys = e
                            .attrs
                            .iter()
                            .filter(|(k, _)| k.eq_ignore_ascii_case(&key))
                            .flat_map(|(_, v)| v.iter().map(|v| v.to_lowercase()))
                            .collect();
                        found.push((e.dn, keys));
                    })
                    .await?;
                Ok::<_, StoreError>(found)
            })
            .buffer_unordered(self.cfg.connections.max(1))
            .try_collect()
            .await?;
        let mut held: HashSet<String> = HashSet::new();
        let mut dns = Vec::new();
        for (dn, keys) in parts.into_iter().flatten() {
            held.extend(keys);
            dns.push(dn);
        }
        let missing: Vec<String> = external_ids
            .iter()
            .filter(|e| !held.contains(&e.to_lowercase()))
            .cloned()
            .collect();
        dns.sort_unstable();
        dns.dedup();
        Ok((dns, missing))
    }

    /// A group, with every member the target holds, and the members it
    /// was written without.
    async fn put_group(&self, m: &Mapped) -> Result<(Applied, Vec<String>), StoreError> {
        let (members, missing) = self.resolve(m.members.as_deref().unwrap_or_default()).await?;
        Ok((self.put_group_members(m, members).await?, missing))
    }

    async fn put_group_members(&self, m: &Mapped, members: Vec<String>) -> Result<Applied, StoreError> {
        let (dn, current) = match self.find(Class::Group, &m.external_id).await? {
            Some(found) => found,
            None => {
                let dn = self.group_dn(&m.external_id)?;
                let (rdn_attr, rdn_value) = rdn_parts(&dn);
                // groupOfNames needs a member: the empty DN keeps one there.
                let mut values = hset(members.iter().cloned());
                values.insert(String::new());
                let attrs = vec![
                    (
                        "objectClass".to_string(),
                        hset(self.cfg.group_object_classes.iter().cloned()),
                    ),
                    (rdn_attr, hset([rdn_value])),
                    (self.cfg.group_key.clone(), hset([m.external_id.clone()])),
                    (self.cfg.group_member.clone(), values),
                ];
                if self.add("add group", &dn, attrs).await? {
                    return Ok(Applied::Created);
                }
                // A group entry at that DN without our key: adopt it.
                let current = self.read(&dn, Class::Group).await?.unwrap_or_default();
                let mut ldap = self.pool.conn().await?;
                let mods = vec![Mod::Replace(self.cfg.group_key.clone(), hset([m.external_id.clone()]))];
                checked(ldap.modify(&dn, mods).await).map_err(|e| self.pool.err("adopt group", &dn, e))?;
                (dn, current)
            }
        };
        let have: HashMap<String, String> = current
            .get(&self.cfg.group_member.to_ascii_lowercase())
            .into_iter()
            .flatten()
            .map(|v| (v.to_ascii_lowercase(), v.clone()))
            .collect();
        let want: HashMap<String, String> = members.iter().map(|v| (v.to_ascii_lowercase(), v.clone())).collect();
        let add: Vec<String> = want
            .iter()
            .filter(|(k, _)| !have.contains_key(*k))
            .map(|(_, v)| v.clone())
            .collect();
        let mut remove: Vec<String> = have
            .iter()
            .filter(|(k, _)| !k.is_empty() && !want.contains_key(*k))
            .map(|(_, v)| v.clone())
            .collect();
        let mut keep_placeholder = Vec::new();
        if !have.contains_key("") && want.is_empty() {
            keep_placeholder.push(String::new());
        }
        if add.is_empty() && remove.is_empty() {
            return Ok(Applied::Unchanged);
        }
        let mut ldap = self.pool.conn().await?;
        let attr = &self.cfg.group_member;
        // Adds first, so the group never runs out of members.
        for chunk in add.chunks(MEMBER_CHUNK).chain(std::iter::once(&keep_placeholder[..])) {
            if chunk.is_empty() {
                continue;
            }
            match checked(
                ldap.modify(&dn, vec![Mod::Add(attr.clone(), hset(chunk.iter().cloned()))])
                    .await,
            ) {
                Ok(_) => {}
                Err(e) if e.is(VALUE_EXISTS) => {
                    for v in chunk {
                        match checked(ldap.modify(&dn, vec![Mod::Add(attr.clone(), hset([v.clone()]))]).await) {
                            Ok(_) => {}
                            Err(e) if e.is(VALUE_EXISTS) => {}
                            Err(e) => return Err(self.pool.err("modify group", &dn, e)),
                        }
                    }
                }
                Err(e) => return Err(self.pool.err("modify group", &dn, e)),
            }
        }
        remove.sort_unstable();
        for chunk in remove.chunks(MEMBER_CHUNK) {
            let r = ldap
                .modify(&dn, vec![Mod::Delete(attr.clone(), hset(chunk.iter().cloned()))])
                .await;
            match checked(r) {
                Ok(_) => {}
                Err(e) if e.is(NO_SUCH_ATTRIBUTE) => {
                    for v in chunk {
                        match checked(
                            ldap.modify(&dn, vec![Mod::Delete(attr.clone(), hset([v.clone()]))])
                                .await,
                        ) {
                            Ok(_) => {}
                            Err(e) if e.is(NO_SUCH_ATTRIBUTE) => {}
                            Err(e) => return Err(self.pool.err("modify group", &dn, e)),
                        }
                    }
                }
                Err(e) => return Err(self.pool.err("modify group", &dn, e)),
            }
        }
        Ok(Applied::Updated)
    }

    async fn delete(&self, class: Class, external_id: &str) -> Result<Applied, StoreError> {
        let Some((dn, _)) = self.find(class, external_id).await? else {
            return Ok(Applied::Absent);
        };
        if class == Class::User {
            self.replace_member(&dn, None).await?;
        }
        let mut ldap = self.pool.conn().await?;
        match checked(ldap.delete(&dn).await) {
            Ok(_) => Ok(Applied::Deleted),
            Err(e) if e.is(NO_SUCH_OBJECT) => Ok(Applied::Absent),
            Err(e) => Err(self.pool.err("delete", &dn, e)),
        }
    }
}
