//! The SCIM 2.0 target (RFC 7643/7644): Users and Groups keyed by
//! `externalId`. Each object is looked up with `filter=externalId eq "…"`,
//! then created (a 409 uniqueness answer adopts the existing resource),
//! updated with PATCH (explicit paths, lowercase ops) when the server's
//! `/ServiceProviderConfig` offers it, else with PUT, deactivated or
//! deleted. Group members change by PATCH add/remove of the difference.

mod http;
mod patch;

use super::{Applied, ErrorClass, RemoteObject, Target, TargetError, read_secret};
use crate::engine::config::AuthorityConfig;
use crate::engine::sync::mapping::{Class, Desired, Mapped};
use http::{Http, PATCH_SCHEMA, eq_filter};
use reqwest::Method;
use serde_json::{Map, Value, json};
use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

pub use http::eq_filter as scim_eq_filter;
pub use patch::covers;

/// Member changes per PATCH request.
const MEMBER_OPS: usize = 200;
const PAGE: usize = 200;

pub struct ScimTarget {
    http: Http,
    patch: OnceLock<bool>,
    /// School groups' ids by external id (users join them on every send).
    group_ids: Mutex<HashMap<String, String>>,
    /// Without PATCH a membership change is GET, change, PUT of the whole
    /// group: workers take turns, or one would undo another's change.
    put_members: Mutex<()>,
    /// Members looked up per request (`lookup_batch`); drops to 1 for good
    /// when the server refuses an `or` filter.
    lookup_batch: AtomicUsize,
}

fn endpoint(class: Class) -> &'static str {
    match class {
        Class::User => "/Users",
        Class::Group => "/Groups",
    }
}

fn id_of(resource: &Value) -> Result<String, TargetError> {
    resource
        .get("id")
        .and_then(|v| v.as_str())
        .map(str::to_string)
        .ok_or_else(|| TargetError::permanent("the server answered a resource without an id"))
}

/// (id, external id, member ids) of a resource in an answer.
#[doc(hidden)]
pub type ReadResource = (String, Option<String>, BTreeSet<String>);

/// Reads one HTTP answer the way the target does: the status and SCIM
/// error body, the `Resources` of a list, each resource's id, external id
/// and members. The fuzz target and the corpus replay call it.
#[doc(hidden)]
pub fn read_answer(status: u16, bytes: &[u8]) -> Result<Vec<ReadResource>, TargetError> {
    let answer = http::answer("GET /Users", status, None, bytes)?;
    let mut out = Vec::new();
    for r in http::resources(answer.body.as_ref()) {
        let id = id_of(&r)?;
        let members = r.as_object().map(patch::current_members).unwrap_or_default();
        debug_assert!(patch::covers(&r, &r));
        out.push((
            id,
            r.get("externalId").and_then(|v| v.as_str()).map(str::to_string),
            members,
        ));
    }
    Ok(out)
}

impl ScimTarget {
    pub fn new(config: &AuthorityConfig) -> Result<Self, TargetError> {
        let token = read_secret(Path::new(&config.token_file), "token_file")?;
        let ca =
            if config.ca_bundle.is_empty() {
                None
            } else {
                Some(std::fs::read(&config.ca_bundle).map_err(|e| {
                    TargetError::permanent(format!("ca_bundle {}: cannot read it: {e}", config.ca_bundle))
                })?)
            };
        let http = Http::new(
            &config.url,
            token,
            ca.as_deref(),
            Duration::from_secs_f64(config.timeout_seconds),
        )?;
        Ok(ScimTarget {
            http,
            patch: OnceLock::new(),
            group_ids: Mutex::new(HashMap::new()),
            put_members: Mutex::new(()),
            lookup_batch: AtomicUsize::new(config.lookup_batch.max(1)),
        })
    }

    /// Whether the server takes PATCH (read once from ServiceProviderConfig).
    fn supports_patch(&self) -> Result<bool, TargetError> {
        if let Some(p) = self.patch.get() {
            return Ok(*p);
        }
        let supported = match self.http.call(Method::GET, "/ServiceProviderConfig", &[], None) {
            Ok(a) => a
                .body
                .as_ref()
                .and_then(|b| b.pointer("/patch/supported"))
                .and_then(|v| v.as_bool())
                .unwrap_or(false),
            Err(e) if e.http_status == Some(404) => false,
            Err(e) => return Err(e),
        };
        let _ = self.patch.set(supported);
        Ok(supported)
    }

    /// The resource with this external id, if the target has one.
    fn lookup(&self, class: Class, external_id: &str) -> Result<Option<Value>, TargetError> {
        self.find(class, &eq_filter("externalId", external_id))
    }

    fn find(&self, class: Class, filter: &str) -> Result<Option<Value>, TargetError> {
        let query = [("filter", filter.to_string()), ("count", "2".to_string())];
        let answer = self.http.call(Method::GET, endpoint(class), &query, None)?;
        let mut found = answer
            .body
            .and_then(|mut b| b.get_mut("Resources").map(Value::take))
            .and_then(|r| match r {
                Value::Array(items) => Some(items),
                _ => None,
            })
            .unwrap_or_default();
        match found.len() {
            0 => Ok(None),
            1 => Ok(found.pop()),
            n => Err(TargetError::permanent(format!(
                "{n} resources match {filter}: the target holds duplicates; remove all but one"
            ))),
        }
    }

    /// SCIM ids of users by external id; unknown ones are left out.
    /// Looks up `lookup_batch` users per request; a server that answers an
    /// `or` filter with 400 gets one `eq` per user from then on.
    fn resolve(&self, external_ids: &[String]) -> Result<HashMap<String, String>, TargetError> {
        let mut out = HashMap::with_capacity(external_ids.len());
        let mut rest = external_ids;
        while !rest.is_empty() {
            let batch = self.lookup_batch.load(Ordering::Relaxed).clamp(1, rest.len());
            let (chunk, tail) = rest.split_at(batch);
            match self.resolve_chunk(chunk, &mut out) {
                Ok(()) => rest = tail,
                Err(e) if chunk.len() > 1 && e.http_status == Some(400) => {
                    if self.lookup_batch.swap(1, Ordering::Relaxed) > 1 {
                        tracing::warn!(
                            url = %self.http.base(),
                            error = %e.message,
                            "the server refuses `or` filters: members are looked up one by one \
                             from now on (set lookup_batch = 1 for this authority to skip the try)"
                        );
                    }
                }
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    fn resolve_chunk(&self, chunk: &[String], out: &mut HashMap<String, String>) -> Result<(), TargetError> {
        let filter = chunk
            .iter()
            .map(|e| eq_filter("externalId", e))
            .collect::<Vec<_>>()
            .join(" or ");
        self.http
            .list("/Users", Some(&filter), Some("externalId"), PAGE, &mut |r| {
                if let (Some(id), Some(ext)) = (
                    r.get("id").and_then(|v| v.as_str()),
                    r.get("externalId").and_then(|v| v.as_str()),
                ) {
                    out.insert(ext.to_string(), id.to_string());
                }
                true
            })
    }

    fn create(&self, m: &Mapped, members: Option<&[String]>) -> Result<Applied, TargetError> {
        let mut body = m.attributes.clone();
        if let Some(ids) = members {
            body.insert(
                "members".into(),
                json!(ids.iter().map(|id| json!({"value": id})).collect::<Vec<_>>()),
            );
        }
        match self
            .http
            .call(Method::POST, endpoint(m.class), &[], Some(&Value::Object(body)))
        {
            Ok(answer) => {
                if let Some(id) = answer.body.as_ref().and_then(|b| id_of(b).ok()) {
                    self.after_write(m, &id)?;
                }
                Ok(Applied::Created)
            }
            Err(e) if e.http_status == Some(409) => self.adopt(m, e),
            Err(e) => Err(e),
        }
    }

    /// A 409 on create: someone holds the name (or created the object a
    /// moment ago). Take that resource over instead of failing.
    fn adopt(&self, m: &Mapped, conflict: TargetError) -> Result<Applied, TargetError> {
        let existing = match self.lookup(m.class, &m.external_id)? {
            Some(r) => Some(r),
            None => {
                let attr = match m.class {
                    Class::User => "userName",
                    Class::Group => "displayName",
                };
                self.find(m.class, &eq_filter(attr, &m.name))?
            }
        };
        let Some(existing) = existing else {
            return Err(TargetError::transient(format!(
                "{}; and no resource with externalId {:?} or name {:?} to adopt",
                conflict.message, m.external_id, m.name
            )));
        };
        self.update(m, &existing, true)?;
        Ok(Applied::Updated)
    }

    /// Brings an existing resource to `m`; `Unchanged` when it already is.
    fn update(&self, m: &Mapped, current: &Value, force_external_id: bool) -> Result<Applied, TargetError> {
        let id = id_of(current)?;
        let empty = Map::new();
        let cur = current.as_object().unwrap_or(&empty);
        let mut ops = patch::attribute_ops(m, cur);
        if force_external_id && cur.get("externalId").and_then(|v| v.as_str()) != Some(m.external_id.as_str()) {
            ops.push(json!({"op": "replace", "path": "externalId", "value": m.external_id}));
        }
        let (add, remove) = match &m.members {
            Some(wanted) => {
                let ids = self.resolve(wanted)?;
                let missing = wanted.len() - ids.len();
                if missing > 0 {
                    tracing::warn!(group = %m.external_id, missing, "members not on the target yet are left out");
                }
                let want: BTreeSet<String> = ids.into_values().collect();
                patch::member_changes(cur, &want)
            }
            None => (Vec::new(), Vec::new()),
        };
        if ops.is_empty() && add.is_empty() && remove.is_empty() {
            self.after_write(m, &id)?;
            return Ok(Applied::Unchanged);
        }
        let path = format!("{}/{}", endpoint(m.class), id);
        if self.supports_patch()? {
            let mut member_ops: Vec<Value> = Vec::new();
            for chunk in add.chunks(MEMBER_OPS) {
                member_ops.push(json!({
                    "op": "add", "path": "members",
                    "value": chunk.iter().map(|id| json!({"value": id})).collect::<Vec<_>>()
                }));
            }
            for id in &remove {
                member_ops.push(json!({"op": "remove", "path": format!("members[value eq {}]", json!(id))}));
            }
            let mut all = ops;
            all.extend(member_ops);
            for chunk in all.chunks(MEMBER_OPS) {
                let body = json!({"schemas": [PATCH_SCHEMA], "Operations": chunk});
                self.http.call(Method::PATCH, &path, &[], Some(&body))?;
            }
        } else {
            let mut body = m.attributes.clone();
            body.insert("id".into(), json!(id));
            if m.members.is_some() {
                let mut members: BTreeSet<String> = patch::current_members(cur);
                members.extend(add);
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
            self.http.call(Method::PUT, &path, &[], Some(&Value::Object(body)))?;
        }
        self.after_write(m, &id)?;
        Ok(Applied::Updated)
    }

    /// A user's school groups: join the current ones, leave the others.
    fn after_write(&self, m: &Mapped, user_id: &str) -> Result<(), TargetError> {
        if m.class != Class::User {
            return Ok(());
        }
        for (group, join) in m
            .school_groups
            .iter()
            .map(|g| (g, true))
            .chain(m.left_school_groups.iter().map(|g| (g, false)))
        {
            let Some(gid) = self.school_group_id(group)? else {
                continue;
            };
            let op = if join {
                json!({"op": "add", "path": "members", "value": [{"value": user_id}]})
            } else {
                json!({"op": "remove", "path": format!("members[value eq {}]", json!(user_id))})
            };
            let path = format!("/Groups/{gid}");
            if self.supports_patch()? {
                let body = json!({"schemas": [PATCH_SCHEMA], "Operations": [op]});
                match self.http.call(Method::PATCH, &path, &[], Some(&body)) {
                    Ok(_) => {}
                    // Removing a member that is not there.
                    Err(e) if !join && e.http_status == Some(400) => {}
                    Err(e) if e.http_status == Some(404) => self.forget_group(group),
                    Err(e) => return Err(e),
                }
            } else {
                self.put_membership(&path, user_id, join)?;
            }
        }
        Ok(())
    }

    fn put_membership(&self, path: &str, user_id: &str, join: bool) -> Result<(), TargetError> {
        let _turn = self.put_members.lock().unwrap_or_else(|e| e.into_inner());
        let current = self
            .http
            .call(Method::GET, path, &[], None)?
            .body
            .unwrap_or(Value::Null);
        let Some(cur) = current.as_object() else { return Ok(()) };
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

    fn school_group_id(&self, external_id: &str) -> Result<Option<String>, TargetError> {
        if let Ok(cache) = self.group_ids.lock()
            && let Some(id) = cache.get(external_id)
        {
            return Ok(Some(id.clone()));
        }
        let Some(found) = self.lookup(Class::Group, external_id)? else {
            return Ok(None);
        };
        let id = id_of(&found)?;
        if let Ok(mut cache) = self.group_ids.lock() {
            cache.insert(external_id.to_string(), id.clone());
        }
        Ok(Some(id))
    }

    fn forget_group(&self, external_id: &str) {
        if let Ok(mut cache) = self.group_ids.lock() {
            cache.remove(external_id);
        }
    }

    fn delete(&self, class: Class, external_id: &str) -> Result<Applied, TargetError> {
        let Some(found) = self.lookup(class, external_id)? else {
            return Ok(Applied::Absent);
        };
        let id = id_of(&found)?;
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
        Ok(Applied::Deleted)
    }
}

impl Target for ScimTarget {
    fn describe(&self) -> String {
        format!("scim {}", self.http.base())
    }

    fn probe(&self) -> Result<(), TargetError> {
        // An endpoint that needs the token: servers answer
        // /ServiceProviderConfig without one (RFC 7644 §4), so it would call
        // an authority with a wrong token reachable.
        match self
            .http
            .call(Method::GET, "/Users", &[("count", "1".to_string())], None)
        {
            Ok(_) => Ok(()),
            // It answers; it just has no such endpoint.
            Err(e) if e.http_status == Some(404) => Ok(()),
            Err(e) if e.class == ErrorClass::Permanent => Ok(()),
            Err(e) => Err(e),
        }
    }

    fn apply(&self, desired: &Desired) -> Result<Applied, TargetError> {
        match desired {
            Desired::Skip => Ok(Applied::Skipped),
            Desired::Absent { class, external_id } => self.delete(*class, external_id),
            Desired::Present(m) => match self.lookup(m.class, &m.external_id)? {
                Some(current) => self.update(m, &current, false),
                None => {
                    let members = match &m.members {
                        Some(wanted) => {
                            let ids = self.resolve(wanted)?;
                            let mut ids: Vec<String> = ids.into_values().collect();
                            ids.sort_unstable();
                            Some(ids)
                        }
                        None => None,
                    };
                    self.create(m, members.as_deref())
                }
            },
            Desired::Deactivated(m) => match self.lookup(m.class, &m.external_id)? {
                // Never create a user just to deactivate it.
                None => Ok(Applied::Absent),
                Some(current) => match self.update(m, &current, false)? {
                    Applied::Unchanged => Ok(Applied::Unchanged),
                    _ => Ok(Applied::Deactivated),
                },
            },
        }
    }

    fn fetch(&self, class: Class, external_id: &str) -> Result<Option<RemoteObject>, TargetError> {
        let Some(r) = self.lookup(class, external_id)? else {
            return Ok(None);
        };
        Ok(Some(RemoteObject {
            id: id_of(&r)?,
            external_id: r.get("externalId").and_then(|v| v.as_str()).map(str::to_string),
            resource: r,
        }))
    }

    fn list(&self, class: Class, visit: &mut dyn FnMut(RemoteObject) -> bool) -> Result<(), TargetError> {
        let mut failed = None;
        self.http
            .list(endpoint(class), None, None, PAGE, &mut |r| match id_of(&r) {
                Ok(id) => visit(RemoteObject {
                    id,
                    external_id: r.get("externalId").and_then(|v| v.as_str()).map(str::to_string),
                    resource: r,
                }),
                Err(e) => {
                    failed = Some(e);
                    false
                }
            })?;
        failed.map_or(Ok(()), Err)
    }
}
