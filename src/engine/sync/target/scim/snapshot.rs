//! List, then diff. Before a large drain (a resync, the initial sync of
//! added schools, an authority's first sync: whenever more items wait than
//! listing the server would take requests) the target lists what the
//! server holds once — users and groups, paged as [`super::listing`] pages
//! — and the drain's lookups are answered from that listing instead of one
//! request per object. The target's own writes keep it current; a write
//! that meets a 404 reads the object live (see `once_more`). Only what is
//! compared is kept: for users the mapped attributes (asked for with
//! `attributes=`), their groups, id and external id; for groups the name
//! and member ids. About half a kilobyte per object.

use super::identity;
use super::listing::{self, ListRequest};
use super::{ScimTarget, endpoint};
use crate::engine::sync::mapping::Class;
use crate::engine::sync::target::TargetError;
use serde_json::{Map, Value};
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

/// A listing older than this is not used (a daemon's drains are apart).
const MAX_AGE: Duration = Duration::from_secs(600);

/// Fewer waiting items than this never list.
const MIN_ITEMS: usize = 50;

pub(super) struct Snapshot {
    taken: Instant,
    users: HashMap<String, Value>,
    groups: HashMap<String, Value>,
    /// External ids listed more than once (a lookup of one is an error).
    duplicates: HashSet<String>,
    /// External ids whose account we wrote since: asked live again.
    live: HashSet<String>,
    /// Group lists carried their members (else member lists are read live).
    pub group_members: bool,
}

/// The keys of a resource worth keeping: the top-level names of the
/// compared paths (`name` of `name.givenName`, the extension URN of
/// `urn:…:User:organization`).
fn top_keys(paths: &[String]) -> HashSet<String> {
    let mut keys: HashSet<String> = ["id", "externalId", "groups", "active", "userName", "displayName"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    for p in paths {
        let top = match p.rfind(':') {
            Some(i) if p.starts_with("urn:") => &p[..i],
            _ => p.split('.').next().unwrap_or(p),
        };
        keys.insert(top.to_string());
    }
    keys
}

fn project(resource: Value, keep: &HashSet<String>) -> Value {
    match resource {
        Value::Object(map) => {
            let mut out = Map::new();
            for (k, v) in map {
                if keep.contains(&k) {
                    out.insert(k, v);
                }
            }
            Value::Object(out)
        }
        other => other,
    }
}

/// One class's listing.
#[derive(Default)]
struct Listed {
    found: HashMap<String, Value>,
    duplicates: HashSet<String>,
    seen: u64,
    with_members: u64,
}

impl Snapshot {
    fn map(&self, class: Class) -> &HashMap<String, Value> {
        match class {
            Class::User => &self.users,
            Class::Group => &self.groups,
        }
    }

    fn map_mut(&mut self, class: Class) -> &mut HashMap<String, Value> {
        match class {
            Class::User => &mut self.users,
            Class::Group => &mut self.groups,
        }
    }

    /// What the listing says about this external id (`None`: ask the
    /// server, the listing no longer knows).
    pub fn lookup(&self, class: Class, external_id: &str) -> Option<Result<Option<Value>, TargetError>> {
        if self.live.contains(external_id) {
            return None;
        }
        if self.duplicates.contains(external_id) {
            return Some(Err(TargetError::permanent(format!(
                "several resources carry externalId {external_id:?}: the target holds duplicates; remove all but one"
            ))));
        }
        Some(Ok(self.map(class).get(external_id).cloned()))
    }

    /// Whether the listing no longer knows this external id (ask the server).
    pub fn is_live(&self, external_id: &str) -> bool {
        self.live.contains(external_id)
    }

    /// The account of this external id was written: ask the server next time.
    pub fn forget(&mut self, external_id: &str) {
        self.live.insert(external_id.to_string());
    }

    /// A user's id, by external id.
    pub fn user_id(&self, external_id: &str) -> Option<&str> {
        self.users.get(external_id).and_then(|u| identity::str_field(u, "id"))
    }

    pub fn put(&mut self, class: Class, external_id: &str, resource: Value) {
        self.live.remove(external_id);
        self.map_mut(class).insert(external_id.to_string(), resource);
    }

    pub fn remove(&mut self, class: Class, external_id: &str) {
        self.live.remove(external_id);
        self.map_mut(class).remove(external_id);
    }

    pub fn len(&self) -> usize {
        self.users.len() + self.groups.len()
    }
}

impl ScimTarget {
    /// The page size of listings: the server's `filter.maxResults` when it
    /// says one (at most 1,000), else 200.
    pub(super) fn listing_page(&self) -> usize {
        let declared = self.capabilities().map(|c| c.max_results()).unwrap_or(0);
        if declared == 0 {
            200
        } else {
            declared.clamp(50, 1000) as usize
        }
    }

    /// Lists the server once for a drain of `items`, when that takes fewer
    /// requests than looking the items up; `true` when it did. Whether it
    /// does is decided on the first page of each listing (its
    /// `totalResults`), so deciding costs no request of its own.
    pub(super) fn take_snapshot(&self, items: usize, user_paths: &[String]) -> Result<bool, TargetError> {
        if items < MIN_ITEMS {
            return Ok(false);
        }
        if let Ok(s) = self.snapshot.read()
            && s.as_ref().is_some_and(|s| s.taken.elapsed() < MAX_AGE)
        {
            return Ok(true);
        }
        let page = self.listing_page() as u64;
        let t0 = Instant::now();
        let keep = top_keys(user_paths);
        let mut snap = Snapshot {
            taken: Instant::now(),
            users: HashMap::new(),
            groups: HashMap::new(),
            duplicates: HashSet::new(),
            live: HashSet::new(),
            group_members: true,
        };
        let mut user_attributes: Vec<String> = keep.iter().cloned().collect();
        user_attributes.sort();
        let user_attributes = user_attributes.join(",");
        let group_keep: HashSet<String> = ["id", "externalId", "displayName", "members"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        // Listing is worth it while it takes fewer than half as many
        // requests as the items' lookups, and holds at most max_listing.
        let users_total = std::cell::Cell::new(0u64);
        let worth = |objects: u64, requests: u64| objects <= self.max_listing && (items as u64) >= 2 * requests;
        let users_worth = |total: u64| {
            users_total.set(total);
            // At least one more request lists the groups.
            worth(total, total.div_ceil(page) + 1)
        };
        let groups_worth = |total: u64| {
            let users = users_total.get();
            worth(users + total, users.div_ceil(page) + total.div_ceil(page))
        };
        for (class, attributes, keep, decide) in [
            (
                Class::User,
                user_attributes.as_str(),
                &keep,
                &users_worth as &dyn Fn(u64) -> bool,
            ),
            (
                Class::Group,
                "externalId,displayName,members",
                &group_keep,
                &groups_worth,
            ),
        ] {
            let listed = match self.list_class(class, Some(attributes), keep, page as usize, decide) {
                // A server that refuses `attributes=`: the whole resources.
                Err(e) if e.http_status == Some(400) => self.list_class(class, None, keep, page as usize, decide)?,
                other => other?,
            };
            let Some(listed) = listed else {
                tracing::debug!(items, "looking objects up one by one instead of listing");
                return Ok(false);
            };
            *snap.map_mut(class) = listed.found;
            snap.duplicates.extend(listed.duplicates);
            if class == Class::Group && listed.seen > 0 && listed.with_members == 0 {
                // The server leaves members out of listings: read them live.
                snap.group_members = false;
            }
        }
        tracing::info!(
            url = %self.http.base(), items, objects = snap.len(), seconds = t0.elapsed().as_secs_f64(),
            "listed the target once for this drain (list, then diff)"
        );
        if let Ok(mut slot) = self.snapshot.write() {
            *slot = Some(snap);
        }
        Ok(true)
    }

    /// One class's listing; `None` when `worth` declined it.
    fn list_class(
        &self,
        class: Class,
        attributes: Option<&str>,
        keep: &HashSet<String>,
        page: usize,
        worth: &dyn Fn(u64) -> bool,
    ) -> Result<Option<Listed>, TargetError> {
        let mut out = Listed::default();
        let declined = std::cell::Cell::new(false);
        let decide = |total: u64| {
            let yes = worth(total);
            declined.set(!yes);
            yes
        };
        let req = ListRequest {
            path: endpoint(class),
            filter: None,
            attributes,
            page,
            max: self.max_listing,
            worth: Some(&decide),
        };
        listing::list(&self.http, &req, &mut |r| {
            let Some(ext) = identity::str_field(&r, "externalId").map(str::to_string) else {
                return Ok(true);
            };
            out.seen += 1;
            if r.get("members").is_some() {
                out.with_members += 1;
            }
            if out.found.insert(ext.clone(), project(r, keep)).is_some() {
                out.duplicates.insert(ext);
            }
            Ok(true)
        })?;
        Ok((!declined.get()).then_some(out))
    }

    pub(super) fn drop_snapshot(&self) {
        if let Ok(mut slot) = self.snapshot.write() {
            *slot = None;
        }
    }

    /// Runs `f` on the listing, when there is a fresh one.
    pub(super) fn with_snapshot<T>(&self, f: impl FnOnce(&Snapshot) -> T) -> Option<T> {
        let s = self.snapshot.read().ok()?;
        s.as_ref().filter(|s| s.taken.elapsed() < MAX_AGE).map(f)
    }

    /// Changes the listing after a write of ours.
    pub(super) fn update_snapshot(&self, f: impl FnOnce(&mut Snapshot)) {
        if let Ok(mut s) = self.snapshot.write()
            && let Some(s) = s.as_mut()
        {
            f(s);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_compared_attributes_are_kept() {
        let keep = top_keys(&[
            "name.givenName".to_string(),
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:organization".to_string(),
        ]);
        let r = json!({"id": "1", "externalId": "d:1", "name": {"givenName": "A"}, "meta": {"x": 1},
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"organization": "gs"},
            "phoneNumbers": [{"value": "1"}]});
        let p = project(r, &keep);
        assert!(p.get("meta").is_none() && p.get("phoneNumbers").is_none());
        assert!(p.get("name").is_some());
        assert!(
            p.get("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User")
                .is_some()
        );
    }
}
