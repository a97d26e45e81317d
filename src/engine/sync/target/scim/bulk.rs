//! Bulk (RFC 7644 §3.7): when the server declares `bulk.supported` (and
//! the authority has not set `bulk = false`), a batch of items travels in
//! Bulk requests of at most `maxOperations` operations and
//! `maxPayloadSize` bytes instead of one request each.
//!
//! A batch is planned first: every object's current state (from the
//! drain's listing, else `externalId eq … or …` lookups), what each item
//! must send (a create, an update — nothing when the server already holds
//! it — or a delete), and the school-group memberships its users must
//! gain or lose, gathered into one PATCH per group. Creates carry a
//! `bulkId`, and a group's PATCH in the same request names the users
//! created there as `bulkId:…`. Each operation's answer follows the rules
//! of a single request: an id (or Location) as evidence of a create, the
//! status's error class otherwise. What Bulk cannot settle goes as single
//! requests: a create answered 409 (the takeover by name), a write
//! answered 404 (read again and retried once), deleting a user (it
//! leaves its groups first), and everything when the server turns out not
//! to take Bulk requests after all.

use super::http::{PATCH_SCHEMA, eq_filter, resources};
use super::write::{Change, location_id};
use super::{ScimTarget, endpoint, id_of, identity};
use crate::engine::sync::mapping::{Class, Desired, Mapped};
use crate::engine::sync::target::{Applied, ErrorClass, TargetError, cap_text, members_delivered};
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};

pub const BULK_REQUEST: &str = "urn:ietf:params:scim:api:messages:2.0:BulkRequest";

/// What one item does in a batch.
enum Step {
    /// Settled without a request.
    Done(Result<Applied, TargetError>),
    /// As a single request (after the Bulk requests).
    Alone,
    /// One operation of a Bulk request.
    Op(Planned),
}

struct Planned {
    op: Value,
    /// Its size in bytes (serialized).
    size: usize,
    /// The target id (updates, deletes); creates learn theirs.
    id: Option<String>,
    applied: Applied,
    /// The resource as it was (updates), for the memberships' skip.
    current: Option<Value>,
    /// A group's members the target does not hold yet (left out).
    missing: Vec<String>,
}

/// The items of one Bulk request and its school-group changes.
type Request = (std::ops::Range<usize>, BTreeMap<String, GroupOps>);

/// One school group's member changes in one request.
#[derive(Default)]
struct GroupOps {
    gid: String,
    add: Vec<Value>,
    remove: Vec<String>,
    /// The items whose users it moves.
    items: Vec<usize>,
}

fn status_of(op: &Value) -> Option<u16> {
    match op.get("status") {
        Some(Value::String(s)) => s.trim().parse().ok(),
        Some(Value::Number(n)) => n.as_u64().and_then(|n| u16::try_from(n).ok()),
        // RFC 7644 §3.7.3 shows status objects in older drafts.
        Some(Value::Object(o)) => o.get("code").and_then(|c| c.as_str()?.parse().ok()),
        _ => None,
    }
}

/// The error one failed operation means (a single request's rules).
fn op_error(what: &str, status: u16, op: &Value) -> TargetError {
    let detail = op
        .pointer("/response/detail")
        .and_then(Value::as_str)
        .map(|d| match op.pointer("/response/scimType").and_then(Value::as_str) {
            Some(t) if !t.is_empty() => format!(": {t}: {}", cap_text(d)),
            _ => format!(": {}", cap_text(d)),
        })
        .unwrap_or_default();
    let class = match status {
        429 | 500..=599 | 408 => ErrorClass::Transient,
        401 | 403 => ErrorClass::Unreachable,
        _ => ErrorClass::Permanent,
    };
    TargetError {
        http_status: Some(status),
        ..TargetError::new(class, format!("{what} (in a Bulk request): HTTP {status}{detail}"))
    }
}

/// The batch's positions with each run of users (present or deactivated)
/// sorted, stably, by the school groups they join and leave; every other
/// item keeps its place, so users still go before the groups naming them.
fn by_school(items: &[&Desired]) -> Vec<usize> {
    fn user(d: &Desired) -> Option<&Mapped> {
        match d {
            Desired::Present(m) | Desired::Deactivated(m) if m.class == Class::User => Some(m),
            _ => None,
        }
    }
    let key = |i: usize| user(items[i]).map(|m| (&m.school_groups, &m.left_school_groups));
    let mut order: Vec<usize> = (0..items.len()).collect();
    let mut start = 0;
    while start < items.len() {
        let mut end = start;
        while end < items.len() && user(items[end]).is_some() {
            end += 1;
        }
        order[start..end].sort_by(|&a, &b| key(a).cmp(&key(b)));
        start = end + 1;
    }
    order
}

impl ScimTarget {
    /// The Bulk limits to use, when items go in Bulk requests.
    pub(super) fn bulk_limits(&self) -> Option<(usize, usize)> {
        if !self.bulk || self.bulk_refused.load(std::sync::atomic::Ordering::Relaxed) {
            return None;
        }
        let caps = self.capabilities().ok()?;
        let b = caps.bulk()?;
        let ops =
            (b.max_operations.clamp(1, 10_000) as usize).min(self.bulk_cap.load(std::sync::atomic::Ordering::Relaxed));
        // Room for the envelope; no limit said: 1 MiB.
        let payload = if b.max_payload_size == 0 {
            1 << 20
        } else {
            (b.max_payload_size as usize).saturating_sub(1024).max(4096)
        };
        Some((ops, payload))
    }

    /// The current resources of many objects of one class: from the
    /// drain's listing, else `externalId eq … or …` lookups (every answer
    /// checked like a single lookup). Errors per external id.
    fn current_many(&self, class: Class, ids: &[&str]) -> HashMap<String, Result<Option<Value>, TargetError>> {
        let mut out = HashMap::new();
        let mut ask: Vec<&str> = Vec::new();
        for e in ids {
            match self.with_snapshot(|s| s.lookup(class, e)).flatten() {
                Some(r) => {
                    out.insert(e.to_string(), r);
                }
                None => ask.push(e),
            }
        }
        let batch = self.lookup_batch.load(std::sync::atomic::Ordering::Relaxed).max(1);
        for chunk in ask.chunks(batch) {
            if chunk.len() == 1 {
                out.insert(chunk[0].to_string(), self.lookup(class, chunk[0], true));
                continue;
            }
            let filter = chunk
                .iter()
                .map(|e| eq_filter("externalId", e))
                .collect::<Vec<_>>()
                .join(" or ");
            let what = format!(
                "GET {}?filter={}",
                endpoint(class),
                filter.chars().take(120).collect::<String>()
            );
            let query = [("filter", filter.clone()), ("count", (chunk.len() * 2).to_string())];
            let found = self
                .http
                .call(Method::GET, endpoint(class), &query, None)
                .and_then(|a| {
                    let body = a.body.unwrap_or(Value::Null);
                    if body.get("totalResults").is_none() && body.get("Resources").is_none() {
                        return Err(TargetError::transient(format!(
                            "{what}: the answer is not a SCIM ListResponse"
                        )));
                    }
                    let all = resources(Some(&body));
                    let asked: Vec<String> = chunk.iter().map(|s| s.to_string()).collect();
                    identity::members(&what, &asked, all.iter())?;
                    if body.get("totalResults").and_then(Value::as_u64).unwrap_or(0) > all.len() as u64 {
                        return Err(TargetError::transient(format!(
                            "{what}: the answer holds fewer than it found"
                        )));
                    }
                    Ok(all)
                });
            match found {
                Ok(all) => {
                    let mut by: HashMap<&str, Vec<Value>> = HashMap::new();
                    for r in &all {
                        if let Some(e) = identity::str_field(r, "externalId") {
                            by.entry(e).or_default().push(r.clone());
                        }
                    }
                    for e in chunk {
                        let hits = by.remove(e).unwrap_or_default();
                        out.insert(e.to_string(), identity::by_external_id(&what, e, hits));
                    }
                }
                // A server that refuses `or` (or pages it short): alone.
                Err(e) if e.class != ErrorClass::Unreachable && e.class != ErrorClass::Interrupted => {
                    for id in chunk {
                        out.insert(id.to_string(), self.lookup(class, id, true));
                    }
                    let _ = e;
                }
                Err(e) => {
                    for id in chunk {
                        out.insert(id.to_string(), Err(e.clone()));
                    }
                }
            }
        }
        out
    }

    /// Applies a batch with Bulk requests (see the module comment). Runs
    /// of users go sorted by their school groups, so that each request
    /// changes few school groups: each such PATCH makes the server copy a
    /// group of thousands (the results keep the batch's order).
    pub(super) fn apply_bulk(&self, items: &[&Desired], limits: (usize, usize)) -> Vec<Result<Applied, TargetError>> {
        let order = by_school(items);
        let sorted: Vec<&Desired> = order.iter().map(|&i| items[i]).collect();
        // One result per sorted item: put back in the batch's order.
        let mut results: Vec<(usize, Result<Applied, TargetError>)> = order
            .into_iter()
            .zip(self.apply_bulk_in_order(&sorted, limits))
            .collect();
        results.sort_unstable_by_key(|(i, _)| *i);
        results.into_iter().map(|(_, r)| r).collect()
    }

    fn apply_bulk_in_order(&self, items: &[&Desired], limits: (usize, usize)) -> Vec<Result<Applied, TargetError>> {
        let (max_ops, max_size) = limits;
        // Small enough that `workers` requests share the batch.
        let max_ops = max_ops.min(items.len().div_ceil(self.workers).max(50));
        let mut current: HashMap<(Class, String), Result<Option<Value>, TargetError>> = HashMap::new();
        for class in [Class::User, Class::Group] {
            let ids: Vec<&str> = items
                .iter()
                .filter_map(|d| match d {
                    Desired::Present(m) | Desired::Deactivated(m) if m.class == class => Some(m.external_id.as_str()),
                    Desired::Absent { class: c, external_id } if *c == class => Some(external_id.as_str()),
                    _ => None,
                })
                .collect();
            for (e, r) in self.current_many(class, &ids) {
                current.insert((class, e), r);
            }
        }
        let mut steps: Vec<Step> = items
            .iter()
            .enumerate()
            .map(|(i, d)| self.plan(i, d, &mut current))
            .collect();
        let mut results: Vec<Option<Result<Applied, TargetError>>> = items.iter().map(|_| None).collect();
        for (i, s) in steps.iter_mut().enumerate() {
            if let Step::Done(r) = s {
                results[i] = Some(std::mem::replace(r, Ok(Applied::Skipped)));
            }
        }
        // Requests: item operations in order, each request closed by the
        // school-group changes of its users.
        let mut requests: Vec<Request> = Vec::new();
        let mut start = 0;
        while start < steps.len() {
            let mut end = start;
            let mut size = 0;
            let mut count = 0;
            let mut groups: BTreeMap<String, GroupOps> = BTreeMap::new();
            while end < steps.len() {
                let joins = match (&steps[end], items[end]) {
                    (Step::Op(p), Desired::Present(m) | Desired::Deactivated(m)) => Some(self.memberships_for(m, p)),
                    (Step::Op(_), _) => Some(Ok(Vec::new())),
                    _ => None,
                };
                let joins = match joins {
                    None => {
                        end += 1;
                        continue;
                    }
                    Some(Ok(j)) => j,
                    Some(Err(e)) => {
                        results[end] = Some(Err(e));
                        steps[end] = Step::Done(Ok(Applied::Skipped));
                        end += 1;
                        continue;
                    }
                };
                if let Step::Op(p) = &steps[end] {
                    let new_groups = joins.iter().filter(|(g, _, _)| !groups.contains_key(g)).count();
                    if count > 0 && (count + 1 + groups.len() + new_groups > max_ops || size + p.size > max_size) {
                        break;
                    }
                    count += usize::from(!p.op.is_null());
                    size += p.size + 200 * joins.len();
                    for (group, gid, join) in joins {
                        let g = groups.entry(group).or_insert_with(|| GroupOps {
                            gid,
                            ..GroupOps::default()
                        });
                        let who = match &p.id {
                            Some(id) => id.clone(),
                            None => format!("bulkId:b{end}"),
                        };
                        if join {
                            g.add.push(json!({"value": who}));
                        } else {
                            g.remove.push(who);
                        }
                        g.items.push(end);
                    }
                }
                end += 1;
            }
            if steps[start..end].iter().any(|s| matches!(s, Step::Op(_))) {
                requests.push((start..end, groups));
            }
            start = end.max(start + 1);
        }
        // The requests go side by side, `workers` at a time (with nothing
        // to send, one only settles the unchanged).
        let next = std::sync::atomic::AtomicUsize::new(0);
        let done = std::sync::Mutex::new(Vec::new());
        let requests: Vec<std::sync::Mutex<Option<Request>>> =
            requests.into_iter().map(|r| std::sync::Mutex::new(Some(r))).collect();
        std::thread::scope(|s| {
            for _ in 0..self.workers.clamp(1, requests.len().max(1)) {
                s.spawn(|| {
                    loop {
                        let k = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(slot) = requests.get(k) else { break };
                        let Some((range, groups)) = slot.lock().ok().and_then(|mut r| r.take()) else {
                            continue;
                        };
                        let mut local: Vec<Option<Result<Applied, TargetError>>> = results.clone();
                        self.send_bulk(items, &steps, range.clone(), groups, &mut local);
                        if let Ok(mut d) = done.lock() {
                            d.push((range, local));
                        }
                    }
                });
            }
        });
        for (range, local) in done.into_inner().unwrap_or_default() {
            for i in range {
                results[i] = local[i].clone();
            }
        }
        // A group written without members the target does not hold yet (those that
        // went alone were judged by their own write).
        for (i, s) in steps.iter().enumerate() {
            if let (Step::Op(p), Desired::Present(m), Some(Ok(_))) = (s, items[i], &results[i])
                && let Err(e) = members_delivered(m, &p.missing)
            {
                results[i] = Some(Err(e));
            }
        }

        for (i, s) in steps.iter().enumerate() {
            if results[i].is_none() && matches!(s, Step::Alone | Step::Op(_)) {
                results[i] = Some(self.alone(items[i]));
            }
        }
        results
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(TargetError::transient("the batch left this item unsettled"))))
            .collect()
    }

    /// An item on its own, reading its object afresh.
    fn alone(&self, desired: &Desired) -> Result<Applied, TargetError> {
        match desired {
            Desired::Skip => Ok(Applied::Skipped),
            Desired::Absent { class, external_id } => self.once_more(|_| self.delete(*class, external_id, true)),
            Desired::Present(m) => self.once_more(|_| self.present(m, true)),
            Desired::Deactivated(m) => self.once_more(|_| self.deactivate(m, true)),
        }
    }

    /// What item `i` does, given the current resources.
    fn plan(
        &self,
        i: usize,
        d: &Desired,
        current: &mut HashMap<(Class, String), Result<Option<Value>, TargetError>>,
    ) -> Step {
        let (class, ext) = match d {
            Desired::Skip => return Step::Done(Ok(Applied::Skipped)),
            Desired::Absent { class, external_id } => (*class, external_id.clone()),
            Desired::Present(m) | Desired::Deactivated(m) => (m.class, m.external_id.clone()),
        };
        let cur = match current.remove(&(class, ext.clone())) {
            Some(Ok(c)) => c,
            Some(Err(e)) => return Step::Done(Err(e)),
            None => return Step::Alone,
        };
        let step = match (d, cur) {
            (Desired::Absent { .. }, None) | (Desired::Deactivated(_), None) => return Step::Done(Ok(Applied::Absent)),
            // A user leaves its groups before it goes: alone.
            (Desired::Absent { class: Class::User, .. }, Some(_)) => return Step::Alone,
            (Desired::Absent { .. }, Some(r)) => {
                let Ok(id) = id_of(&r) else { return Step::Alone };
                Planned {
                    op: json!({"method": "DELETE", "path": format!("{}/{id}", endpoint(class))}),
                    size: 0,
                    id: Some(id),
                    applied: Applied::Deleted,
                    current: None,
                    missing: Vec::new(),
                }
            }
            (Desired::Present(m), None) => match self.create_op(i, m) {
                Ok(p) => p,
                Err(e) => return Step::Done(Err(e)),
            },
            (Desired::Present(m) | Desired::Deactivated(m), Some(r)) => {
                let Ok(id) = id_of(&r) else { return Step::Alone };
                let applied = if matches!(d, Desired::Deactivated(_)) {
                    Applied::Deactivated
                } else {
                    Applied::Updated
                };
                match self.change(m, &r, false) {
                    Err(e) => return Step::Done(Err(e)),
                    Ok((Change::None, missing)) => {
                        if m.class == Class::Group {
                            self.remember_group(m, &id, &r);
                        }
                        Planned {
                            op: Value::Null,
                            size: 0,
                            id: Some(id),
                            applied: Applied::Unchanged,
                            current: Some(r),
                            missing,
                        }
                    }
                    Ok((Change::Patch(ops), missing)) => Planned {
                        op: json!({"method": "PATCH", "path": format!("{}/{id}", endpoint(m.class)),
                            "data": {"schemas": [PATCH_SCHEMA], "Operations": ops}}),
                        size: 0,
                        id: Some(id),
                        applied,
                        current: Some(r),
                        missing,
                    },
                    Ok((Change::Put(mut body), missing)) => {
                        body.insert("id".into(), json!(id));
                        Planned {
                            op: json!({"method": "PUT", "path": format!("{}/{id}", endpoint(m.class)), "data": body}),
                            size: 0,
                            id: Some(id),
                            applied,
                            current: Some(r),
                            missing,
                        }
                    }
                }
            }
            (Desired::Skip, _) => return Step::Done(Ok(Applied::Skipped)),
        };
        let size = if step.op.is_null() {
            0
        } else {
            serde_json::to_vec(&step.op).map(|v| v.len()).unwrap_or(usize::MAX)
        };
        Step::Op(Planned { size, ..step })
    }

    fn create_op(&self, i: usize, m: &Mapped) -> Result<Planned, TargetError> {
        let mut body = self.body_of(m)?;
        let members = self.members(m)?.unwrap_or_default();
        if m.members.is_some() {
            body.insert(
                "members".into(),
                json!(members.ids.iter().map(|id| json!({"value": id})).collect::<Vec<_>>()),
            );
        }
        Ok(Planned {
            op: json!({"method": "POST", "path": endpoint(m.class), "bulkId": format!("b{i}"), "data": body}),
            size: 0,
            id: None,
            applied: Applied::Created,
            current: None,
            missing: members.missing,
        })
    }

    /// The school-group changes of item `i`'s user.
    fn memberships_for(&self, m: &Mapped, p: &Planned) -> Result<Vec<(String, String, bool)>, TargetError> {
        if m.class != Class::User {
            return Ok(Vec::new());
        }
        let id = p.id.clone().unwrap_or_default();
        self.membership_changes(m, &id, p.current.as_ref())
    }

    /// Sends the operations of items `range` and the group changes as
    /// Bulk requests (split when the server finds one too large) and
    /// settles what they answer.
    fn send_bulk(
        &self,
        items: &[&Desired],
        steps: &[Step],
        range: std::ops::Range<usize>,
        groups: BTreeMap<String, GroupOps>,
        results: &mut [Option<Result<Applied, TargetError>>],
    ) {
        let mut ops: Vec<Value> = Vec::new();
        let mut owners: Vec<Option<usize>> = Vec::new();
        for i in range.clone() {
            if let Step::Op(p) = &steps[i] {
                if p.op.is_null() {
                    continue;
                }
                ops.push(p.op.clone());
                owners.push(Some(i));
            }
        }
        let mut group_ops: Vec<(String, usize)> = Vec::new();
        for (group, g) in &groups {
            let mut patch = Vec::new();
            if !g.add.is_empty() {
                patch.push(json!({"op": "add", "path": "members", "value": g.add}));
            }
            for who in &g.remove {
                patch.push(json!({"op": "remove", "path": format!("members[value eq {}]", json!(who))}));
            }
            ops.push(json!({"method": "PATCH", "path": format!("/Groups/{}", g.gid),
                "data": {"schemas": [PATCH_SCHEMA], "Operations": patch}}));
            owners.push(None);
            group_ops.push((group.clone(), ops.len() - 1));
        }
        let answers: Result<Vec<Value>, TargetError> = if ops.is_empty() {
            Ok(Vec::new())
        } else {
            self.post_bulk(&ops)
        };
        let answers = match answers {
            Ok(a) => a,
            Err(e) if matches!(e.http_status, Some(404 | 405 | 501)) => {
                tracing::warn!(url = %self.http.base(), error = %e.message, "the server does not take Bulk requests after all: one request each from now on");
                self.bulk_refused.store(true, std::sync::atomic::Ordering::Relaxed);
                return; // every item goes alone
            }
            // The request as a whole refused (a 4xx): its items go as
            // single requests, whose answers decide.
            Err(e) if e.class == ErrorClass::Permanent => {
                tracing::warn!(url = %self.http.base(), error = %e.message, "a Bulk request was refused: its items go one by one");
                return;
            }
            Err(e) => {
                if e.timed_out {
                    // Too much for the server within the timeout: smaller
                    // requests from now on (the items are retried).
                    let half = (ops.len() / 2).max(1);
                    self.bulk_cap.fetch_min(half, std::sync::atomic::Ordering::Relaxed);
                    tracing::warn!(url = %self.http.base(), operations = ops.len(), "a Bulk request timed out: at most {half} operations per request from now on");
                }
                for i in range {
                    if results[i].is_none() && matches!(steps[i], Step::Op(_)) {
                        results[i] = Some(Err(e.clone()));
                    }
                }
                return;
            }
        };
        // The items' own operations.
        let mut ids: HashMap<usize, String> = HashMap::new();
        let mut failed: std::collections::HashSet<usize> = std::collections::HashSet::new();
        for (k, owner) in owners.iter().enumerate() {
            let Some(i) = owner else { continue };
            let Step::Op(p) = &steps[*i] else { continue };
            let answer = answers.get(k).cloned().unwrap_or(Value::Null);
            let what = format!(
                "{} {}",
                p.op["method"].as_str().unwrap_or(""),
                p.op["path"].as_str().unwrap_or("")
            );
            let status = status_of(&answer);
            let r = match status {
                None => Err(TargetError::transient(format!(
                    "{what}: the Bulk answer has no status for this operation; will try again"
                ))),
                Some(s) if (200..300).contains(&s) => self.settled(items[*i], p, &answer, &what),
                // 409 on a create (a takeover), 404 on a write: alone.
                Some(409) if p.applied == Applied::Created => {
                    failed.insert(*i);
                    continue;
                }
                Some(404) => {
                    failed.insert(*i);
                    continue;
                }
                Some(s) => Err(op_error(&what, s, &answer)),
            };
            match &r {
                Ok(_) => {
                    if let Some(id) = p.id.clone().or_else(|| {
                        identity::str_field(&answer, "location")
                            .and_then(location_id)
                            .or_else(|| {
                                answer
                                    .pointer("/response/id")
                                    .and_then(Value::as_str)
                                    .map(str::to_string)
                            })
                    }) {
                        ids.insert(*i, id);
                    }
                }
                Err(_) => {
                    failed.insert(*i);
                }
            }
            results[*i] = Some(r);
        }
        // Unchanged items are done too.
        for i in range {
            if let Step::Op(p) = &steps[i]
                && p.op.is_null()
            {
                results[i] = Some(Ok(Applied::Unchanged));
            }
        }
        // The group changes: a failed one is made again, alone, for each
        // user whose own operation went through.
        for (group, k) in group_ops {
            let answer = answers.get(k).cloned().unwrap_or(Value::Null);
            let ok = status_of(&answer).is_some_and(|s| (200..300).contains(&s));
            let g = &groups[&group];
            for &i in &g.items {
                let Some(Some(Ok(_))) = results.get(i) else { continue };
                let Some(user_id) = ids.get(&i) else { continue };
                let join = g.add.iter().any(|v| {
                    v["value"]
                        .as_str()
                        .is_some_and(|s| s == user_id || s == format!("bulkId:b{i}"))
                });
                if ok {
                    self.note_member(&group, user_id, join);
                } else if let Err(e) = self.membership(&group, &g.gid, user_id, join) {
                    results[i] = Some(Err(e));
                }
            }
        }
        for i in failed {
            if results[i].as_ref().is_some_and(|r| r.is_err()) {
                continue;
            }
            results[i] = None; // alone, afterwards
        }
    }

    /// What a successful operation did, with its evidence.
    fn settled(&self, d: &Desired, p: &Planned, answer: &Value, what: &str) -> Result<Applied, TargetError> {
        match d {
            Desired::Present(m) | Desired::Deactivated(m) => {
                if let Some(r) = answer.get("response").filter(|r| r.is_object()) {
                    identity::answered(what, p.id.as_deref(), &m.external_id, r)?;
                }
                let id = match &p.id {
                    Some(id) => id.clone(),
                    None => identity::str_field(answer, "location")
                        .and_then(location_id)
                        .or_else(|| {
                            answer
                                .pointer("/response/id")
                                .and_then(Value::as_str)
                                .map(str::to_string)
                        })
                        .ok_or_else(|| {
                            TargetError::transient(format!(
                                "{what}: created without an id or a Location in the Bulk answer: no evidence of \
                                 what was created; will look it up again"
                            ))
                        })?,
                };
                match p.applied {
                    Applied::Created => {
                        let mut held = answer
                            .get("response")
                            .cloned()
                            .unwrap_or_else(|| p.op.get("data").cloned().unwrap_or(Value::Null));
                        if let Some(o) = held.as_object_mut() {
                            o.insert("id".into(), json!(id));
                        }
                        if m.class == Class::Group {
                            self.remember_group(m, &id, &held);
                        }
                        self.update_snapshot(|s| s.put(m.class, &m.external_id, held));
                    }
                    _ => {
                        self.update_snapshot(|s| s.forget(&m.external_id));
                        if m.class == Class::Group && m.external_id.starts_with("school:") {
                            self.forget_group(&m.external_id);
                        }
                    }
                }
                Ok(p.applied)
            }
            Desired::Absent { class, external_id } => {
                if *class == Class::Group {
                    self.forget_group(external_id);
                }
                self.update_snapshot(|s| s.remove(*class, external_id));
                Ok(Applied::Deleted)
            }
            Desired::Skip => Ok(Applied::Skipped),
        }
    }

    /// One Bulk request, halved while the server finds it too large; the
    /// answers in the order of `ops`.
    fn post_bulk(&self, ops: &[Value]) -> Result<Vec<Value>, TargetError> {
        let body = json!({"schemas": [BULK_REQUEST], "Operations": ops});
        match self.http.call(Method::POST, "/Bulk", &[], Some(&body)) {
            Ok(a) => {
                let answers = a
                    .body
                    .as_ref()
                    .and_then(|b| b.get("Operations"))
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                if answers.len() != ops.len() {
                    return Err(TargetError::transient(format!(
                        "POST /Bulk: {} operations sent, {} answered: the answer cannot be matched; will try again",
                        ops.len(),
                        answers.len()
                    )));
                }
                for (sent, got) in ops.iter().zip(&answers) {
                    let same_method = got
                        .get("method")
                        .and_then(Value::as_str)
                        .is_none_or(|m| Some(m) == sent["method"].as_str());
                    let same_bulk_id = sent
                        .get("bulkId")
                        .is_none_or(|b| got.get("bulkId").is_none_or(|g| g == b));
                    if !same_method || !same_bulk_id {
                        return Err(TargetError::transient(
                            "POST /Bulk: the answers are not in the order of the operations; will try again",
                        ));
                    }
                }
                Ok(answers)
            }
            Err(e) if e.http_status == Some(413) && ops.len() > 1 => {
                let (a, b) = ops.split_at(ops.len() / 2);
                let mut out = self.post_bulk(a)?;
                out.extend(self.post_bulk(b)?);
                Ok(out)
            }
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mapped(class: Class, external_id: &str, schools: &[&str]) -> Mapped {
        Mapped {
            class,
            external_id: external_id.into(),
            name: external_id.into(),
            attributes: serde_json::Map::new(),
            paths: Vec::new(),
            members: None,
            school_groups: schools.iter().map(|s| format!("school:{s}")).collect(),
            left_school_groups: Vec::new(),
        }
    }

    #[test]
    fn runs_of_users_go_by_school_and_everything_else_keeps_its_place() {
        let items = [
            Desired::Present(mapped(Class::User, "u0", &["b"])),
            Desired::Present(mapped(Class::User, "u1", &["a"])),
            Desired::Deactivated(mapped(Class::User, "u2", &["b"])),
            Desired::Present(mapped(Class::User, "u3", &["a"])),
            Desired::Present(mapped(Class::Group, "class:a:5a", &[])),
            Desired::Present(mapped(Class::User, "u5", &["b"])),
            Desired::Absent {
                class: Class::User,
                external_id: "u6".into(),
            },
            Desired::Present(mapped(Class::User, "u7", &["c"])),
            Desired::Present(mapped(Class::User, "u8", &["a"])),
        ];
        let refs: Vec<&Desired> = items.iter().collect();
        assert_eq!(by_school(&refs), vec![1, 3, 0, 2, 4, 5, 6, 8, 7]);
        assert!(by_school(&[]).is_empty());
    }
}
