//! The writes of the SCIM target: create (with the evidence a create must
//! give: an id or Location, and the resource), take over an account after
//! a 409, update only what differs (nothing when the server already holds
//! what would be sent), deactivate, delete (after taking the user out of
//! the groups that still list it, for servers that do not), and keep
//! users' school-group memberships. Each write holds its account
//! ([`super::accounts`]); a write that finds the account changed under it
//! answers 404, so [`ScimTarget::once_more`] reads it afresh.

use super::accounts::Ticket;
use super::http::{PATCH_SCHEMA, eq_filter};
use super::listing::{self, ListRequest};
use super::{PAGE, ScimTarget, endpoint, id_of, identity, patch};
use crate::engine::sync::mapping::{Class, Mapped};
use crate::engine::sync::target::{Applied, ErrorClass, TargetError, members_delivered};
use reqwest::Method;
use serde_json::{Map, Value, json};
use std::collections::{BTreeSet, HashSet};
use std::time::{Duration, Instant};

/// Member changes per PATCH request.
const MEMBER_OPS: usize = 200;

/// How long a school group's member list read from the server is trusted
/// for skipping joins that are already true.
const MEMBERS_FRESH: Duration = Duration::from_secs(300);

/// What an update sends.
pub(super) enum Change {
    /// The server already holds what would be sent.
    None,
    Patch(Vec<Value>),
    Put(Map<String, Value>),
}

/// A school group as the target last saw it.
#[derive(Clone, Debug)]
pub(super) struct SchoolGroup {
    pub id: String,
    /// Member ids, when read (with when).
    pub members: Option<(HashSet<String>, Instant)>,
}

/// The 404 that makes [`ScimTarget::once_more`] read the object again.
fn moved(message: String) -> TargetError {
    TargetError {
        http_status: Some(404),
        ..TargetError::transient(message)
    }
}

/// The last path segment of a Location header.
pub(super) fn location_id(location: &str) -> Option<String> {
    let path = location.split(['?', '#']).next()?.trim_end_matches('/');
    let id = path.rsplit('/').next()?;
    (!id.is_empty()).then(|| id.to_string())
}

impl ScimTarget {
    /// The mapped paths the server declares (all of them without discovery).
    fn sendable<'a>(&self, m: &'a Mapped) -> Result<Vec<&'a String>, TargetError> {
        let caps = self.capabilities()?;
        Ok(m.paths.iter().filter(|p| caps.declares(m.class, p)).collect())
    }

    /// The attributes to send: the mapping's, without what the server does
    /// not declare.
    pub(super) fn body_of(&self, m: &Mapped) -> Result<Map<String, Value>, TargetError> {
        let caps = self.capabilities()?;
        let dropped = caps.dropped(m.class, &m.paths);
        Ok(patch::without_paths(&m.attributes, &dropped))
    }

    pub(super) fn present(&self, m: &Mapped, fresh: bool) -> Result<Applied, TargetError> {
        let ticket = self.accounts.ticket();
        match self.lookup(m.class, &m.external_id, fresh)? {
            Some(current) => self.update(&ticket, m, current, false),
            None => self.create(&ticket, m),
        }
    }

    pub(super) fn deactivate(&self, m: &Mapped, fresh: bool) -> Result<Applied, TargetError> {
        let ticket = self.accounts.ticket();
        match self.lookup(m.class, &m.external_id, fresh)? {
            // Never create a user just to deactivate it.
            None => Ok(Applied::Absent),
            Some(current) => match self.update(&ticket, m, current, false)? {
                Applied::Unchanged => Ok(Applied::Unchanged),
                _ => Ok(Applied::Deactivated),
            },
        }
    }

    fn create(&self, ticket: &Ticket<'_>, m: &Mapped) -> Result<Applied, TargetError> {
        let mut body = self.body_of(m)?;
        let members = self.members(m)?;
        if let Some(members) = &members {
            body.insert(
                "members".into(),
                json!(members.ids.iter().map(|id| json!({"value": id})).collect::<Vec<_>>()),
            );
        }
        let what = format!("POST {}", endpoint(m.class));
        match self
            .http
            .call(Method::POST, endpoint(m.class), &[], Some(&Value::Object(body)))
        {
            Ok(answer) => {
                let resource = answer.body.unwrap_or(Value::Null);
                identity::answered(&what, None, &m.external_id, &resource)?;
                let from_body = identity::str_field(&resource, "id").filter(|s| !s.is_empty());
                let from_location = answer.location.as_deref().and_then(location_id);
                let id = match (from_body, from_location) {
                    (Some(id), _) => id.to_string(),
                    (None, Some(id)) => id,
                    (None, None) => {
                        return Err(TargetError {
                            http_status: Some(answer.status),
                            ..TargetError::transient(format!(
                                "{what}: HTTP {} without an id or a Location: no evidence of what was \
                                 created; will look it up again",
                                answer.status
                            ))
                        });
                    }
                };
                if m.class == Class::Group {
                    self.remember_group(m, &id, &resource);
                }
                let mut held = resource;
                if let Some(o) = held.as_object_mut() {
                    o.insert("id".into(), json!(id));
                }
                self.update_snapshot(|s| s.put(m.class, &m.external_id, held));
                self.after_write(m, &id, None)?;
                members_delivered(m, &members.unwrap_or_default().missing)?;
                Ok(Applied::Created)
            }
            Err(e) if e.http_status == Some(409) => self.adopt(ticket, m, e),
            Err(e) => Err(e),
        }
    }

    /// A 409 on create: someone holds the name (or created the object a
    /// moment ago). Take that account over — when it is not someone else's.
    fn adopt(&self, ticket: &Ticket<'_>, m: &Mapped, conflict: TargetError) -> Result<Applied, TargetError> {
        if let Some(current) = self.lookup(m.class, &m.external_id, true)? {
            self.update(ticket, m, current, false)?;
            return Ok(Applied::Updated);
        }
        let attr = identity::name_attribute(m.class);
        let (what, found) = self.find(m.class, &eq_filter(attr, &m.name))?;
        let Some(account) = identity::takeover(&what, m.class, &m.name, &m.external_id, found)? else {
            return Err(TargetError::transient(format!(
                "{}; and no resource with externalId {:?} or {attr} {:?} to take over",
                conflict.message, m.external_id, m.name
            )));
        };
        tracing::info!(
            url = %self.http.base(), external_id = %m.external_id, account = %identity::describe(&account),
            "taking over the account that holds the name"
        );
        self.update(ticket, m, account, true)?;
        Ok(Applied::Updated)
    }

    /// Brings an existing resource to `m` (`takeover`: it does not carry
    /// our external id yet); `Unchanged` when it already is.
    fn update(&self, ticket: &Ticket<'_>, m: &Mapped, current: Value, takeover: bool) -> Result<Applied, TargetError> {
        let id = id_of(&current)?;
        let held = ticket.hold(&id);
        let current = if held.stale {
            // Another item wrote this account since we looked: look again.
            let Some(fresh) = self.get(m.class, &id)? else {
                return Err(moved(format!("{} {id} was deleted meanwhile", endpoint(m.class))));
            };
            match identity::str_field(&fresh, "externalId") {
                Some(e) if e == m.external_id => {}
                _ if takeover => identity::claimable(m.class, &m.name, &m.external_id, &fresh)?,
                _ => {
                    return Err(moved(format!(
                        "{} {id} no longer carries externalId {:?}",
                        endpoint(m.class),
                        m.external_id
                    )));
                }
            }
            fresh
        } else {
            current
        };
        let path = format!("{}/{}", endpoint(m.class), id);
        let (change, missing) = self.change(m, &current, takeover)?;
        match change {
            Change::None => {
                drop(held);
                if m.class == Class::Group {
                    self.remember_group(m, &id, &current);
                }
                self.after_write(m, &id, Some(&current))?;
                members_delivered(m, &missing)?;
                return Ok(Applied::Unchanged);
            }
            Change::Patch(all) => {
                for chunk in all.chunks(MEMBER_OPS) {
                    let body = json!({"schemas": [PATCH_SCHEMA], "Operations": chunk});
                    let answer = self.http.call(Method::PATCH, &path, &[], Some(&body))?;
                    if let Some(r) = &answer.body {
                        identity::answered(&format!("PATCH {path}"), Some(&id), &m.external_id, r)?;
                    }
                }
            }
            Change::Put(mut body) => {
                body.insert("id".into(), json!(id));
                let answer = self.http.call(Method::PUT, &path, &[], Some(&Value::Object(body)))?;
                if let Some(r) = &answer.body {
                    identity::answered(&format!("PUT {path}"), Some(&id), &m.external_id, r)?;
                }
            }
        }
        drop(held);
        let before = identity::str_field(&current, "externalId").map(str::to_string);
        self.update_snapshot(|s| {
            s.forget(&m.external_id);
            if let Some(b) = &before {
                s.forget(b);
            }
        });
        if m.class == Class::Group && m.external_id.starts_with("school:") {
            // The member list changed: read it again when next needed.
            self.forget_group(&m.external_id);
        }
        self.after_write(m, &id, Some(&current))?;
        members_delivered(m, &missing)?;
        Ok(Applied::Updated)
    }

    /// What an update of `current` to `m` sends (`takeover`: it does not
    /// carry our external id yet): nothing when the server already holds
    /// what would be sent (verify's rule), else PATCH operations — or,
    /// without PATCH, the whole resource for a PUT; and the group's
    /// members the target does not hold yet (left out).
    pub(super) fn change(
        &self,
        m: &Mapped,
        current: &Value,
        takeover: bool,
    ) -> Result<(Change, Vec<String>), TargetError> {
        let empty = Map::new();
        let cur = current.as_object().unwrap_or(&empty);
        let mut ops = patch::attribute_ops(m, &self.sendable(m)?, cur);
        if takeover && identity::str_field(current, "externalId") != Some(m.external_id.as_str()) {
            ops.insert(
                0,
                json!({"op": "replace", "path": "externalId", "value": m.external_id}),
            );
        }
        let members = self.members(m)?;
        let (add, remove) = match &members {
            Some(found) => {
                let want: BTreeSet<String> = found.ids.iter().cloned().collect();
                patch::member_changes(cur, &want)
            }
            None => (Vec::new(), Vec::new()),
        };
        let missing = members.map(|f| f.missing).unwrap_or_default();
        if ops.is_empty() && add.is_empty() && remove.is_empty() {
            return Ok((Change::None, missing));
        }
        if self.capabilities()?.patch() {
            let mut all = ops;
            for chunk in add.chunks(MEMBER_OPS) {
                all.push(json!({
                    "op": "add", "path": "members",
                    "value": chunk.iter().map(|id| json!({"value": id})).collect::<Vec<_>>()
                }));
            }
            for id in &remove {
                all.push(json!({"op": "remove", "path": format!("members[value eq {}]", json!(id))}));
            }
            return Ok((Change::Patch(all), missing));
        }
        let mut body = self.body_of(m)?;
        if m.members.is_some() {
            let mut members: BTreeSet<String> = patch::current_members(cur);
            members.extend(add.iter().cloned());
            for r in &remove {
                members.remove(r);
            }
            body.insert(
                "members".into(),
                json!(members.iter().map(|id| json!({"value": id})).collect::<Vec<_>>()),
            );
        } else if let Some(existing) = cur.get("members") {
            body.insert("members".into(), existing.clone());
        }
        Ok((Change::Put(body), missing))
    }

    /// A user's school groups: join the current ones, leave the others —
    /// skipped where the user's `groups` (or the group's member list, read
    /// once) says it already is so.
    fn after_write(&self, m: &Mapped, user_id: &str, user: Option<&Value>) -> Result<(), TargetError> {
        for (group, gid, join) in self.membership_changes(m, user_id, user)? {
            self.membership(&group, &gid, user_id, join)?;
        }
        Ok(())
    }

    /// The school-group memberships of a user (`user`: as the target holds
    /// it, `None` for a new one) that must change: (group external id,
    /// group id, join).
    pub(super) fn membership_changes(
        &self,
        m: &Mapped,
        user_id: &str,
        user: Option<&Value>,
    ) -> Result<Vec<(String, String, bool)>, TargetError> {
        let mut out = Vec::new();
        if m.class != Class::User {
            return Ok(out);
        }
        let listed: Option<HashSet<&str>> = user.and_then(|u| u.get("groups")).and_then(Value::as_array).map(|g| {
            g.iter()
                .filter_map(|x| x.get("value").and_then(Value::as_str))
                .collect()
        });
        // Whether skipping needs the groups' member lists.
        let need_members = user.is_some() && listed.is_none();
        for (group, join) in m
            .school_groups
            .iter()
            .map(|g| (g, true))
            .chain(m.left_school_groups.iter().map(|g| (g, false)))
        {
            let Some(g) = self.school_group(group, need_members)? else {
                continue;
            };
            let member = match (&listed, &g.members) {
                (Some(l), _) => Some(l.contains(g.id.as_str())),
                // A new user is in no group yet.
                (None, _) if user.is_none() => Some(false),
                (None, Some((set, _))) => Some(set.contains(user_id)),
                (None, None) => None,
            };
            if member == Some(join) {
                continue;
            }
            out.push((group.clone(), g.id.clone(), join));
        }
        Ok(out)
    }

    /// Adds or removes one member of a group.
    pub(super) fn membership(&self, group: &str, gid: &str, user_id: &str, join: bool) -> Result<(), TargetError> {
        let path = format!("/Groups/{gid}");
        if self.capabilities()?.patch() {
            let op = if join {
                json!({"op": "add", "path": "members", "value": [{"value": user_id}]})
            } else {
                json!({"op": "remove", "path": format!("members[value eq {}]", json!(user_id))})
            };
            let body = json!({"schemas": [PATCH_SCHEMA], "Operations": [op]});
            match self.http.call(Method::PATCH, &path, &[], Some(&body)) {
                Ok(_) => {}
                // Removing a member that is not there.
                Err(e) if !join && e.http_status == Some(400) => {}
                Err(e) if e.http_status == Some(404) => {
                    self.forget_group(group);
                    return Ok(());
                }
                Err(e) => return Err(e),
            }
        } else {
            self.put_membership(&path, user_id, join)?;
        }
        self.note_member(group, user_id, join);
        Ok(())
    }

    fn put_membership(&self, path: &str, user_id: &str, join: bool) -> Result<(), TargetError> {
        let _turn = self.put_members.lock().unwrap_or_else(|e| e.into_inner());
        let current = match self.http.call(Method::GET, path, &[], None) {
            Ok(a) => a.body.unwrap_or(Value::Null),
            Err(e) if e.http_status == Some(404) => return Ok(()),
            Err(e) => return Err(e),
        };
        let Some(cur) = current.as_object() else {
            return Err(TargetError::transient(format!(
                "GET {path}: the answer is not a resource"
            )));
        };
        let mut members = patch::current_members(cur);
        let changed = if join {
            members.insert(user_id.to_string())
        } else {
            members.remove(user_id)
        };
        if changed {
            let mut body = cur.clone();
            body.remove("meta");
            body.insert(
                "members".into(),
                json!(members.iter().map(|id| json!({"value": id})).collect::<Vec<_>>()),
            );
            self.http.call(Method::PUT, path, &[], Some(&Value::Object(body)))?;
        }
        Ok(())
    }

    /// A school group by external id: its id, and (`members`) its member
    /// list when that is needed to skip joins already made.
    fn school_group(&self, external_id: &str, members: bool) -> Result<Option<SchoolGroup>, TargetError> {
        if let Ok(cache) = self.group_ids.lock()
            && let Some(g) = cache.get(external_id)
            && (!members || g.members.as_ref().is_some_and(|(_, at)| at.elapsed() < MEMBERS_FRESH))
        {
            return Ok(Some(g.clone()));
        }
        let Some(found) = self.lookup(Class::Group, external_id, false)? else {
            return Ok(None);
        };
        let g = SchoolGroup {
            id: id_of(&found)?,
            // Only a listed "members" tells: a server may leave it out of
            // a filtered answer (and out of a group without members).
            members: found
                .as_object()
                .filter(|o| o.contains_key("members"))
                .map(|o| (patch::current_members(o).into_iter().collect(), Instant::now())),
        };
        if let Ok(mut cache) = self.group_ids.lock() {
            cache.insert(external_id.to_string(), g.clone());
        }
        Ok(Some(g))
    }

    pub(super) fn remember_group(&self, m: &Mapped, id: &str, resource: &Value) {
        if !m.external_id.starts_with("school:") {
            return;
        }
        let members = resource
            .as_object()
            .filter(|o| o.contains_key("members"))
            .map(|o| (patch::current_members(o).into_iter().collect(), Instant::now()));
        if let Ok(mut cache) = self.group_ids.lock() {
            cache.insert(
                m.external_id.clone(),
                SchoolGroup {
                    id: id.to_string(),
                    members,
                },
            );
        }
    }

    pub(super) fn note_member(&self, group: &str, user_id: &str, join: bool) {
        if let Ok(mut cache) = self.group_ids.lock()
            && let Some(SchoolGroup {
                members: Some((set, _)),
                ..
            }) = cache.get_mut(group)
        {
            if join {
                set.insert(user_id.to_string());
            } else {
                set.remove(user_id);
            }
        }
    }

    pub(super) fn forget_group(&self, external_id: &str) {
        if let Ok(mut cache) = self.group_ids.lock() {
            cache.remove(external_id);
        }
    }

    pub(super) fn delete(&self, class: Class, external_id: &str, fresh: bool) -> Result<Applied, TargetError> {
        let ticket = self.accounts.ticket();
        let Some(found) = self.lookup(class, external_id, fresh)? else {
            return Ok(Applied::Absent);
        };
        let id = id_of(&found)?;
        let held = ticket.hold(&id);
        let found = if held.stale {
            match self.get(class, &id)? {
                Some(f) if identity::str_field(&f, "externalId") == Some(external_id) => f,
                // Deleted or taken over meanwhile: not ours to delete.
                _ => return Ok(Applied::Absent),
            }
        } else {
            found
        };
        if class == Class::User {
            self.leave_groups(&id, &found)?;
        }
        match self
            .http
            .call(Method::DELETE, &format!("{}/{id}", endpoint(class)), &[], None)
        {
            Ok(_) => {}
            Err(e) if e.http_status == Some(404) => return Ok(Applied::Absent),
            Err(e) => return Err(e),
        }
        if class == Class::Group {
            self.forget_group(external_id);
        }
        self.update_snapshot(|s| s.remove(class, external_id));
        Ok(Applied::Deleted)
    }

    /// Takes a user about to be deleted out of every group that lists it,
    /// for servers that leave deleted users in groups: the groups the
    /// user's `groups` names, else those a `members.value eq` filter finds.
    fn leave_groups(&self, user_id: &str, user: &Value) -> Result<(), TargetError> {
        let mut groups: Vec<String> = Vec::new();
        match user.get("groups").and_then(Value::as_array) {
            Some(listed) => groups.extend(
                listed
                    .iter()
                    .filter_map(|g| g.get("value").and_then(Value::as_str).map(str::to_string)),
            ),
            None => {
                let filter = eq_filter("members.value", user_id);
                let req = ListRequest {
                    path: "/Groups",
                    filter: Some(&filter),
                    attributes: Some("id"),
                    page: PAGE,
                    max: self.max_listing,
                    worth: None,
                };
                let found = listing::list(&self.http, &req, &mut |g| {
                    if let Some(id) = identity::str_field(&g, "id") {
                        groups.push(id.to_string());
                    }
                    Ok(true)
                });
                match found {
                    Ok(_) => {}
                    Err(e) if e.class == ErrorClass::Permanent => {
                        tracing::warn!(
                            url = %self.http.base(), user = user_id, error = %e.message,
                            "cannot find the groups listing a user to delete; the server must drop it itself"
                        );
                        return Ok(());
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        for gid in groups {
            self.membership("", &gid, user_id, false)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::location_id;

    #[test]
    fn a_location_names_the_new_id() {
        assert_eq!(location_id("https://h/scim/v2/Users/abc").as_deref(), Some("abc"));
        assert_eq!(location_id("/Users/abc/?x=1").as_deref(), Some("abc"));
        assert_eq!(location_id(""), None);
    }
}
