//! Reads: users (paged searches, sorted and paged client-side), schools,
//! groups, issued usernames and counters. Several searches of one call run
//! concurrently.

use super::LdapDirectory;
use super::mapping::{Attrs, Mapping, group_value};
use crate::model::{Group, GroupKey, GroupKind, GroupMember, School, User, UserKey};
use crate::store::{GroupSummary, StoreError, StoreResult, UserQuery, UserSort};
use futures_util::{StreamExt, TryStreamExt};
use ldap3::{Scope, SearchEntry, ldap_escape};
use std::collections::{HashMap, HashSet};

/// Values per OR filter of a batched lookup.
const CHUNK: usize = 100;

pub fn lower_attrs(e: SearchEntry) -> (String, Attrs) {
    let attrs = e.attrs.into_iter().map(|(k, v)| (k.to_ascii_lowercase(), v)).collect();
    (e.dn, attrs)
}

fn sort_users(users: &mut [User], sort: UserSort, descending: bool) {
    match sort {
        UserSort::Username => users.sort_by(|a, b| a.username.cmp(&b.username)),
        UserSort::Lastname => users.sort_by_cached_key(|u| {
            (
                u.lastname.to_lowercase(),
                u.firstname.to_lowercase(),
                u.username.clone(),
            )
        }),
        UserSort::PurgeAt => users.sort_by(|a, b| (a.purge_at, &a.username).cmp(&(b.purge_at, &b.username))),
        UserSort::UpdatedAt => users.sort_by(|a, b| (a.updated_at, &a.username).cmp(&(b.updated_at, &b.username))),
    }
    if descending {
        users.reverse();
    }
}

impl LdapDirectory {
    /// A user from a search entry; remembers its DN.
    pub(super) fn decode_entry(&self, dn: &str, attrs: &Attrs) -> StoreResult<User> {
        let primary = self.layout.school_of_user_dn(dn);
        let user = self
            .map
            .decode(attrs, primary.as_deref())
            .map_err(|m| StoreError::Corrupt {
                path: self.pool.server.clone(),
                message: format!("{dn}: {m}"),
            })?;
        if let Ok(mut dns) = self.dns.lock() {
            dns.insert(user.key.clone(), dn.to_string());
        }
        Ok(user)
    }

    /// Every user matching an LDAP filter (entries that are not users of
    /// this mapping are skipped).
    pub(super) async fn search_users(&self, filter: &str) -> StoreResult<Vec<User>> {
        let mut raw = Vec::new();
        self.pool
            .search(
                self.layout.base(),
                Scope::Subtree,
                filter,
                &self.map.user_attrs,
                self.page_size,
                &mut |e| raw.push(lower_attrs(e)),
            )
            .await?;
        raw.iter()
            .filter(|(_, a)| self.map.is_user(a))
            .map(|(dn, a)| self.decode_entry(dn, a))
            .collect()
    }

    pub(super) async fn user_async(&self, key: &UserKey) -> StoreResult<Option<User>> {
        // The record uid is selective; the source is checked on the results.
        let users = self.search_users(&self.map.record_uid.eq(&key.record_uid)).await?;
        Ok(users.into_iter().find(|u| u.key == *key))
    }

    pub(super) fn user_impl(&self, key: &UserKey) -> StoreResult<Option<User>> {
        self.pool.block_on(self.user_async(key))
    }

    pub(super) fn user_by_username_impl(&self, username: &str) -> StoreResult<Option<User>> {
        let users = self.pool.block_on(self.search_users(&self.map.username.eq(username)))?;
        Ok(users.into_iter().find(|u| u.username == username))
    }

    pub(super) fn users_by_record_uids_impl(&self, source: &str, uids: &[String]) -> StoreResult<Vec<User>> {
        let filters: Vec<String> = uids
            .chunks(CHUNK)
            .map(|chunk| {
                let any: String = chunk.iter().map(|u| self.map.record_uid.eq(u)).collect();
                format!(
                    "(&{}{}(|{any}))",
                    self.map.user_filter(),
                    self.map.source_uid.eq(source)
                )
            })
            .collect();
        self.pool.block_on(async {
            let parts: Vec<Vec<User>> = futures_util::stream::iter(filters.iter())
                .map(|f| self.search_users(f))
                .buffer_unordered(self.max_in_flight)
                .try_collect()
                .await?;
            Ok(parts.into_iter().flatten().collect())
        })
    }

    pub(super) fn users_impl(&self, q: &UserQuery) -> StoreResult<Vec<User>> {
        let filter = self.map.narrow_filter(q);
        let mut users = self.pool.block_on(self.search_users(&filter))?;
        users.retain(|u| Mapping::matches(q, u));
        sort_users(&mut users, q.sort, q.descending);
        let start = (q.offset as usize).min(users.len());
        let end = q.limit.map_or(users.len(), |l| (start + l as usize).min(users.len()));
        Ok(users.drain(start..end).collect())
    }

    pub(super) fn count_users_impl(&self, q: &UserQuery) -> StoreResult<u64> {
        if q.purge_due.is_some() {
            return Ok(self.users_impl(q)?.len() as u64);
        }
        let filter = self.map.query_filter(q);
        let mut n = 0u64;
        self.pool.block_on(self.pool.search(
            self.layout.base(),
            Scope::Subtree,
            &filter,
            &[],
            self.page_size,
            &mut |_| n += 1,
        ))?;
        Ok(n)
    }

    fn school_filter(&self) -> String {
        let mut f = String::from("(&");
        for c in &self.map.school_classes {
            f.push_str(&format!("(objectClass={})", ldap_escape(c.as_str())));
        }
        if let Some((k, v)) = &self.map.school_marker {
            f.push_str(&format!("({k}={})", ldap_escape(v.as_str())));
        }
        f.push(')');
        f
    }

    fn schools_under(&self, base: &str, scope: Scope) -> StoreResult<Vec<School>> {
        let mut raw = Vec::new();
        let attrs = vec![self.map.school_display.clone()];
        self.pool.block_on(
            self.pool
                .search(base, scope, &self.school_filter(), &attrs, self.page_size, &mut |e| {
                    raw.push(lower_attrs(e))
                }),
        )?;
        let display = self.map.school_display.to_ascii_lowercase();
        let mut out: Vec<School> = raw
            .into_iter()
            .filter_map(|(dn, a)| {
                let name = self.layout.school_of_school_dn(&dn)?;
                let display_name = a.get(&display).and_then(|v| v.first()).cloned().unwrap_or(name.clone());
                Some(School { name, display_name })
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    pub(super) fn schools_impl(&self) -> StoreResult<Vec<School>> {
        self.schools_under(self.layout.base(), Scope::Subtree)
    }

    pub(super) fn school_impl(&self, name: &str) -> StoreResult<Option<School>> {
        Ok(self
            .schools_under(&self.layout.school_dn(name), Scope::Base)?
            .into_iter()
            .find(|s| s.name == name))
    }

    pub(super) fn groups_impl(&self, school: Option<&str>, kind: Option<GroupKind>) -> StoreResult<Vec<GroupSummary>> {
        let pattern = match (kind, school) {
            (Some(k), Some(s)) => format!("{}:{}:*", k.as_str(), ldap_escape(s)),
            (Some(k), None) => format!("{}:*", k.as_str()),
            (None, Some(s)) => format!("*:{}:*", ldap_escape(s)),
            (None, None) => "*".to_string(),
        };
        let filter = format!(
            "(&(objectClass={})({}={pattern}))",
            ldap_escape(self.map.group_classes[0].as_str()),
            self.map.group_key
        );
        let attrs = vec![self.map.group_key.clone(), self.map.group_member.clone()];
        let mut raw = Vec::new();
        self.pool.block_on(self.pool.search(
            self.layout.base(),
            Scope::Subtree,
            &filter,
            &attrs,
            self.page_size,
            &mut |e| raw.push(lower_attrs(e)),
        ))?;
        let (key_attr, member_attr) = (
            self.map.group_key.to_ascii_lowercase(),
            self.map.group_member.to_ascii_lowercase(),
        );
        let mut out: Vec<GroupSummary> = raw
            .into_iter()
            .filter_map(|(_, a)| {
                let key = a
                    .get(&key_attr)?
                    .iter()
                    .find_map(|v| super::mapping::parse_group_value(v))?;
                if school.is_some_and(|s| s != key.school) || kind.is_some_and(|k| k != key.kind) {
                    return None;
                }
                let members = a
                    .get(&member_attr)
                    .map_or(0, |m| m.iter().filter(|v| !v.is_empty()).count());
                Some(GroupSummary {
                    key,
                    members: members as u64,
                })
            })
            .collect();
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    pub(super) fn group_impl(&self, key: &GroupKey) -> StoreResult<Option<Group>> {
        let dn = self.layout.group_dn(key);
        let mut found = false;
        let attrs = vec![self.map.group_key.clone()];
        self.pool.block_on(self.pool.search(
            &dn,
            Scope::Base,
            "(objectClass=*)",
            &attrs,
            self.page_size,
            &mut |_| found = true,
        ))?;
        if !found {
            return Ok(None);
        }
        let filter = self.map.groups.eq(&group_value(key));
        let mut members: Vec<GroupMember> = self
            .pool
            .block_on(self.search_users(&filter))?
            .into_iter()
            .map(|u| GroupMember {
                key: u.key,
                username: u.username,
            })
            .collect();
        members.sort_by(|a, b| a.username.cmp(&b.username));
        Ok(Some(Group {
            key: key.clone(),
            members,
        }))
    }

    /// Which of these names are issued: used by a user or kept by a
    /// tombstone of a purged one.
    pub(super) fn usernames_issued_impl(&self, names: &[String]) -> StoreResult<HashSet<String>> {
        let user_attr = self.map.username.attr.to_ascii_lowercase();
        let filters: Vec<String> = names
            .chunks(CHUNK)
            .map(|chunk| {
                // Users by their username attribute, tombstones by uid.
                let plain_uid =
                    self.map.username.attr.eq_ignore_ascii_case("uid") && self.map.username.prefix.is_empty();
                let any: String = chunk
                    .iter()
                    .map(|n| match plain_uid {
                        true => self.map.username.eq(n),
                        false => format!("{}(uid={})", self.map.username.eq(n), ldap_escape(n.as_str())),
                    })
                    .collect();
                format!("(|{any})")
            })
            .collect();
        let attrs = vec![self.map.username.attr.clone(), "uid".to_string()];
        let wanted: HashSet<&str> = names.iter().map(String::as_str).collect();
        self.pool.block_on(async {
            let parts: Vec<Vec<(String, Attrs)>> = futures_util::stream::iter(filters.iter())
                .map(|f| async {
                    let mut raw = Vec::new();
                    self.pool
                        .search(
                            self.layout.base(),
                            Scope::Subtree,
                            f,
                            &attrs,
                            self.page_size,
                            &mut |e| raw.push(lower_attrs(e)),
                        )
                        .await?;
                    Ok::<_, StoreError>(raw)
                })
                .buffer_unordered(self.max_in_flight)
                .try_collect()
                .await?;
            let mut out = HashSet::new();
            for (_, a) in parts.iter().flatten() {
                for attr in [user_attr.as_str(), "uid"] {
                    for v in a.get(attr).into_iter().flatten() {
                        let v = v.strip_prefix(self.map.username.prefix.as_str()).unwrap_or(v);
                        if wanted.contains(v) {
                            out.insert(v.to_string());
                        }
                    }
                }
            }
            Ok(out)
        })
    }

    pub(super) fn username_counters_impl(&self, bases: &[String]) -> StoreResult<HashMap<String, u32>> {
        self.pool.block_on(self.counters_async(bases))
    }

    pub(super) async fn counters_async(&self, bases: &[String]) -> StoreResult<HashMap<String, u32>> {
        let filters: Vec<String> = bases
            .chunks(CHUNK)
            .map(|chunk| {
                let any: String = chunk
                    .iter()
                    .map(|b| format!("(cn={})", ldap_escape(b.as_str())))
                    .collect();
                format!("(&(objectClass=applicationProcess)(|{any}))")
            })
            .collect();
        let attrs = vec!["cn".to_string(), "description".to_string()];
        let counters = self.layout.counters_dn();
        let parts: Vec<Vec<(String, Attrs)>> = futures_util::stream::iter(filters.iter())
            .map(|f| async {
                let mut raw = Vec::new();
                self.pool
                    .search(&counters, Scope::OneLevel, f, &attrs, self.page_size, &mut |e| {
                        raw.push(lower_attrs(e))
                    })
                    .await?;
                Ok::<_, StoreError>(raw)
            })
            .buffer_unordered(self.max_in_flight)
            .try_collect()
            .await?;
        let mut out = HashMap::new();
        for (_, a) in parts.iter().flatten() {
            let base = a.get("cn").and_then(|v| v.first());
            let next = a
                .get("description")
                .and_then(|v| v.first())
                .and_then(|v| v.parse::<u32>().ok());
            if let (Some(b), Some(n)) = (base, next) {
                out.insert(b.clone(), n);
            }
        }
        Ok(out)
    }
}
