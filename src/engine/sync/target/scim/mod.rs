//! The SCIM 2.0 target (RFC 7643/7644): Users and Groups keyed by
//! `externalId`. Each object is looked up with `filter=externalId eq "…"`
//! (and the answer checked: [`identity`]), then created (a 409 takes over
//! the account holding the name, when it is not someone else's), updated
//! with PATCH (explicit paths, lowercase ops) when the server declares it,
//! else with PUT, deactivated or deleted; nothing is written when the
//! server already holds what would be sent. Group members change by PATCH
//! add/remove of the difference.
//!
//! * [`http`]: the bounded, interruptible transport and its error classes;
//! * [`discovery`]: what the server declares (cached in the data dir);
//! * [`listing`]: paging that cannot lie;
//! * [`identity`]: every looked-up resource carries what was asked for;
//! * [`accounts`]: one remote account, one operation at a time;
//! * [`write`]: creates, takeovers, updates, deletes, school groups;
//! * [`patch`]: the PATCH operations and member differences.

mod accounts;
mod bulk;
pub mod discovery;
mod http;
mod identity;
mod listing;
mod members;
mod patch;
mod snapshot;
mod write;

use super::{Applied, ErrorClass, Interrupt, RemoteObject, Target, TargetError, read_secret};
use crate::engine::config::AuthorityConfig;
use crate::engine::sync::mapping::{Class, Desired};
use accounts::Accounts;
use discovery::Capabilities;
use http::{Http, HttpSettings, eq_filter};
use listing::ListRequest;
use reqwest::Method;
use serde_json::Value;
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

pub use http::eq_filter as scim_eq_filter;
pub use patch::{covers, same_value};

/// Resources asked for per page of a listing.
const PAGE: usize = 200;

pub struct ScimTarget {
    http: Http,
    /// What the server declares; read on first use (cache file, else the
    /// server), again by [`ScimTarget::refresh`].
    caps: RwLock<Option<Arc<Capabilities>>>,
    cache: Option<PathBuf>,
    accounts: Accounts,
    /// School groups' ids by external id (users join them on every send).
    group_ids: Mutex<HashMap<String, write::SchoolGroup>>,
    /// Without PATCH a membership change is GET, change, PUT of the whole
    /// group: workers take turns, or one would undo another's change.
    put_members: Mutex<()>,
    /// Members looked up per request (`lookup_batch`); drops to 1 for good
    /// when the server refuses an `or` filter.
    lookup_batch: AtomicUsize,
    max_listing: u64,
    /// The listing of a large drain (list, then diff).
    snapshot: RwLock<Option<snapshot::Snapshot>>,
    /// When discovery last failed transiently (its answer is assumed).
    provisional: Mutex<Option<std::time::Instant>>,
    /// `bulk` of the authority: Bulk requests where declared.
    bulk: bool,
    /// The server answered a Bulk request as if it had none.
    bulk_refused: std::sync::atomic::AtomicBool,
    /// Operations per Bulk request: halved when one times out.
    bulk_cap: AtomicUsize,
    /// Bulk requests sent side by side (`workers`).
    workers: usize,
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
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .ok_or_else(|| {
            TargetError::permanent(format!(
                "the server answered a resource without an id ({})",
                identity::describe(resource)
            ))
        })
}

/// (id, external id, member ids) of a resource in an answer.
#[doc(hidden)]
pub type ReadResource = (String, Option<String>, BTreeSet<String>);

/// Reads one HTTP answer the way the target does: the status and SCIM
/// error body, the `Resources` of a list, each resource's id, external id
/// and members. The fuzz target and the corpus replay call it.
#[doc(hidden)]
pub fn read_answer(status: u16, bytes: &[u8]) -> Result<Vec<ReadResource>, TargetError> {
    let answer = http::read("GET /Users", status, bytes)?;
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
    /// A target for the authority; `cache`: where its discovery is kept.
    pub fn new(config: &AuthorityConfig, cache: Option<PathBuf>) -> Result<Self, TargetError> {
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
            HttpSettings {
                timeout: Duration::from_secs_f64(config.timeout_seconds),
                max_response_bytes: config.max_response_bytes,
                follow_redirects: config.follow_redirects,
            },
        )?;
        Ok(ScimTarget {
            http,
            caps: RwLock::new(None),
            cache,
            accounts: Accounts::default(),
            group_ids: Mutex::new(HashMap::new()),
            put_members: Mutex::new(()),
            lookup_batch: AtomicUsize::new(config.lookup_batch.max(1)),
            max_listing: config.max_listing,
            snapshot: RwLock::new(None),
            provisional: Mutex::new(None),
            bulk: config.bulk,
            bulk_refused: std::sync::atomic::AtomicBool::new(false),
            bulk_cap: AtomicUsize::new(usize::MAX),
            workers: config.workers.max(1),
        })
    }

    /// What the server declares: from memory, the cache file, or the server
    /// (then cached). A server that cannot answer discovery now (it keeps
    /// failing with 5xx, 429, resets or timeouts) is treated, for a minute
    /// and without caching, as one that declares nothing — the behaviour
    /// of a server without discovery — rather than holding every item back.
    pub fn capabilities(&self) -> Result<Arc<Capabilities>, TargetError> {
        if let Ok(c) = self.caps.read()
            && let Some(c) = c.as_ref()
            && !self.provisional_expired()
        {
            return Ok(c.clone());
        }
        if let Some(c) = self.cache.as_deref().and_then(Capabilities::load) {
            let c = Arc::new(c);
            if let Ok(mut slot) = self.caps.write() {
                *slot = Some(c.clone());
            }
            return Ok(c);
        }
        match self.refresh() {
            Ok(c) => Ok(c),
            Err(e) if e.class == ErrorClass::Transient && !e.timed_out => {
                tracing::warn!(
                    url = %self.http.base(), error = %e.message,
                    "the server does not answer discovery now: sending as to a server that declares nothing"
                );
                let c = Arc::new(Capabilities::default());
                if let Ok(mut slot) = self.caps.write() {
                    *slot = Some(c.clone());
                }
                if let Ok(mut at) = self.provisional.lock() {
                    *at = Some(std::time::Instant::now());
                }
                Ok(c)
            }
            Err(e) => Err(e),
        }
    }

    /// Capabilities assumed after a failed discovery are asked for again
    /// after a minute.
    fn provisional_expired(&self) -> bool {
        self.provisional
            .lock()
            .ok()
            .and_then(|at| *at)
            .is_some_and(|at| at.elapsed() > Duration::from_secs(60))
    }

    /// Asks the server again and rewrites the cache.
    pub fn refresh(&self) -> Result<Arc<Capabilities>, TargetError> {
        let c = Arc::new(Capabilities::discover(&self.http)?);
        if let Some(path) = &self.cache
            && let Err(e) = c.save(path)
        {
            tracing::warn!(file = %path.display(), error = %e, "cannot write the discovery cache");
        }
        if let Ok(mut slot) = self.caps.write() {
            *slot = Some(c.clone());
        }
        if let Ok(mut at) = self.provisional.lock() {
            *at = None;
        }
        Ok(c)
    }

    /// One page of resources matching `filter` (a lookup, never a listing).
    fn find(&self, class: Class, filter: &str) -> Result<(String, Vec<Value>), TargetError> {
        let query = [("filter", filter.to_string()), ("count", "2".to_string())];
        let what = format!("GET {}?filter={filter}", endpoint(class));
        let answer = self.http.call(Method::GET, endpoint(class), &query, None)?;
        let body = answer.body.unwrap_or(Value::Null);
        let found = match body.get("Resources") {
            Some(Value::Array(items)) => items.clone(),
            None | Some(Value::Null) if body.get("totalResults").is_some() => Vec::new(),
            _ => {
                return Err(TargetError::transient(format!(
                    "{what}: the answer is not a SCIM ListResponse; cannot tell whether the object exists; \
                     will try again"
                )));
            }
        };
        Ok((what, found))
    }

    /// The resource with this external id, if the target has one: from the
    /// drain's listing when there is one (unless `fresh`), else asked.
    fn lookup(&self, class: Class, external_id: &str, fresh: bool) -> Result<Option<Value>, TargetError> {
        if !fresh && let Some(found) = self.with_snapshot(|s| s.lookup(class, external_id)).flatten() {
            return found;
        }
        let (what, found) = self.find(class, &eq_filter("externalId", external_id))?;
        identity::by_external_id(&what, external_id, found)
    }

    /// A resource by its id (`None`: 404).
    fn get(&self, class: Class, id: &str) -> Result<Option<Value>, TargetError> {
        let path = format!("{}/{id}", endpoint(class));
        match self.http.call(Method::GET, &path, &[], None) {
            Ok(a) => match a.body {
                Some(v) if v.is_object() => Ok(Some(v)),
                _ => Err(TargetError::transient(format!(
                    "GET {path}: the answer is not a resource"
                ))),
            },
            Err(e) if e.http_status == Some(404) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// A write that failed may still have happened on the server (a
    /// timeout, a lost answer): the drain's listing no longer speaks for
    /// this account, which is asked for live from now on.
    fn uncertain(&self, desired: &Desired) {
        let external_id = match desired {
            Desired::Skip => return,
            Desired::Absent { external_id, .. } => external_id,
            Desired::Present(m) | Desired::Deactivated(m) => &m.external_id,
        };
        self.update_snapshot(|s| s.forget(external_id));
    }

    /// SCIM ids of users by external id; unknown ones are left out.
    /// Looks up `lookup_batch` users per request; a server that answers an
    /// `or` filter with 400 gets one `eq` per user from then on.
    fn resolve(&self, external_ids: &[String]) -> Result<HashMap<String, String>, TargetError> {
        let mut out = HashMap::with_capacity(external_ids.len());
        // The drain's listing knows them (with what this drain wrote): one
        // it does not list is not on the target, unless a write of it
        // failed in this drain (then it is asked for, see `uncertain`).
        let unknown: Vec<String> = self
            .with_snapshot(|s| {
                external_ids
                    .iter()
                    .filter(|e| match s.user_id(e) {
                        Some(id) => {
                            out.insert((*e).clone(), id.to_string());
                            false
                        }
                        None => s.is_live(e),
                    })
                    .cloned()
                    .collect()
            })
            .unwrap_or_else(|| external_ids.to_vec());
        let mut rest = unknown.as_slice();
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
        let what = format!("GET /Users?filter={}", filter.chars().take(120).collect::<String>());
        let req = ListRequest {
            path: "/Users",
            filter: Some(&filter),
            attributes: Some("externalId"),
            page: PAGE,
            max: self.max_listing,
            worth: None,
        };
        listing::list(&self.http, &req, &mut |r| {
            identity::members(&what, chunk, [&r])?;
            if let (Some(id), Some(ext)) = (identity::str_field(&r, "id"), identity::str_field(&r, "externalId")) {
                out.insert(ext.to_string(), id.to_string());
            }
            Ok(true)
        })?;
        Ok(())
    }

    /// `op` again once when it met a 404: the account it read was deleted
    /// or taken over meanwhile; reading it afresh (`fresh`: not from the
    /// drain's listing) decides anew.
    fn once_more(&self, op: impl Fn(bool) -> Result<Applied, TargetError>) -> Result<Applied, TargetError> {
        match op(false) {
            Err(e) if e.http_status == Some(404) => {
                tracing::info!(url = %self.http.base(), error = %e.message, "a 404 while writing: reading the object again");
                op(true)
            }
            other => other,
        }
    }
}

impl Target for ScimTarget {
    fn describe(&self) -> String {
        format!("scim {}", self.http.base())
    }

    fn probe(&self) -> Result<(), TargetError> {
        // An endpoint that needs the token: servers answer
        // /ServiceProviderConfig without one (RFC 7644 §4), so it would call
        // an authority with a wrong token reachable. A reset is tried again
        // (twice): one probe should not fail on one dropped connection.
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self
                .http
                .call(Method::GET, "/Users", &[("count", "1".to_string())], None)
            {
                Ok(_) => return Ok(()),
                // It answers (an error, a throttle, a body we cannot read):
                // it is reachable; items meet what it answers. 401/403 and
                // refused connections are not.
                Err(e) if e.class == ErrorClass::Unreachable || e.class == ErrorClass::Interrupted => return Err(e),
                Err(e) if e.http_status.is_some() => return Ok(()),
                Err(e) if e.timed_out || attempt >= 3 => return Err(e),
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }

    fn discover(&self) -> Result<(), TargetError> {
        self.capabilities().map(|_| ())
    }

    fn rediscover(&self) -> Result<(), TargetError> {
        self.refresh().map(|_| ())
    }

    fn parallel(&self) -> bool {
        // Bulk batches go from one thread; single requests from workers.
        self.bulk_limits().is_none()
    }

    fn apply_batch(&self, desired: &[&Desired]) -> Vec<Result<Applied, TargetError>> {
        match self.bulk_limits() {
            Some(limits) => {
                let results = self.apply_bulk(desired, limits);
                for (d, r) in desired.iter().zip(&results) {
                    if r.is_err() {
                        self.uncertain(d);
                    }
                }
                results
            }
            None => desired.iter().map(|d| self.apply(d)).collect(),
        }
    }

    fn apply(&self, desired: &Desired) -> Result<Applied, TargetError> {
        let result = match desired {
            Desired::Skip => Ok(Applied::Skipped),
            Desired::Absent { class, external_id } => self.once_more(|fresh| self.delete(*class, external_id, fresh)),
            Desired::Present(m) => self.once_more(|fresh| self.present(m, fresh)),
            Desired::Deactivated(m) => self.once_more(|fresh| self.deactivate(m, fresh)),
        };
        if result.is_err() {
            self.uncertain(desired);
        }
        result
    }

    fn fetch(&self, class: Class, external_id: &str) -> Result<Option<RemoteObject>, TargetError> {
        let Some(r) = self.lookup(class, external_id, true)? else {
            return Ok(None);
        };
        Ok(Some(RemoteObject {
            id: id_of(&r)?,
            external_id: r.get("externalId").and_then(|v| v.as_str()).map(str::to_string),
            resource: r,
        }))
    }

    fn list(&self, class: Class, visit: &mut dyn FnMut(RemoteObject) -> bool) -> Result<(), TargetError> {
        let req = ListRequest {
            path: endpoint(class),
            filter: None,
            attributes: None,
            page: self.listing_page(),
            max: self.max_listing,
            worth: None,
        };
        listing::list(&self.http, &req, &mut |r| {
            let id = id_of(&r)?;
            Ok(visit(RemoteObject {
                id,
                external_id: r.get("externalId").and_then(|v| v.as_str()).map(str::to_string),
                resource: r,
            }))
        })?;
        Ok(())
    }

    fn interrupt(&self) -> Option<&Interrupt> {
        Some(self.http.interrupt())
    }

    fn prefetch(&self, items: usize, user_paths: &[String]) -> Result<bool, TargetError> {
        self.take_snapshot(items, user_paths)
    }

    fn requests(&self) -> u64 {
        self.http.requests()
    }

    fn forget_prefetch(&self) {
        self.drop_snapshot();
    }
}
