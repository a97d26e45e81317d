//! Paging that cannot lie (RFC 7644 §3.4.2.4). A listing asks for pages by
//! `startIndex` and `count` and believes the server only as far as its
//! answers agree with each other:
//!
//! * `totalResults` is required and bounds the listing: it stops once as
//!   many objects as the first page's total are read (objects added
//!   meanwhile are not waited for, a server that always has "one more
//!   page" is not followed), and a total above `max_listing` is refused
//!   before any paging;
//! * a page whose resources run past its own `totalResults`, that answers
//!   another `startIndex` than asked, or that repeats an id already seen
//!   (a server ignoring `startIndex`, or answering a start past the end
//!   with its first page) fails the listing with an error naming what the
//!   server did — never a silent success with objects missed or counted
//!   twice;
//! * an empty page before the total is reached ends the listing (objects
//!   removed while listing), with a warning.
//!
//! Ids are remembered as 64-bit hashes, so a listing of a million objects
//! costs a few megabytes.

use super::super::TargetError;
use super::http::Http;
use reqwest::Method;
use serde_json::Value;
use std::collections::HashSet;

/// What to list.
pub struct ListRequest<'a> {
    pub path: &'a str,
    pub filter: Option<&'a str>,
    pub attributes: Option<&'a str>,
    /// Resources asked for per page.
    pub page: usize,
    /// The most objects a listing may hold (`max_listing`).
    pub max: u64,
    /// Asked with the first page's `totalResults`, before anything else:
    /// `false` ends the listing there, with nothing visited (`seen` 0).
    pub worth: Option<&'a dyn Fn(u64) -> bool>,
}

/// What a listing found out about the server's paging.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Listed {
    pub total: u64,
    pub seen: u64,
    pub requests: u64,
}

fn total_of(what: &str, body: &Value) -> Result<u64, TargetError> {
    match body.get("totalResults") {
        Some(Value::Number(n)) => n.as_u64().ok_or_else(|| {
            TargetError::permanent(format!(
                "{what}: totalResults {n} is not a count of resources; the server's listing cannot be trusted"
            ))
        }),
        Some(other) => Err(TargetError::permanent(format!(
            "{what}: totalResults {} is not a number; the server's listing cannot be trusted",
            other.to_string().chars().take(80).collect::<String>()
        ))),
        None => Err(TargetError::permanent(format!(
            "{what}: the answer is not a SCIM ListResponse (no totalResults)"
        ))),
    }
}

fn id_hash(id: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64(id.as_bytes())
}

/// Lists every resource, handing each to `visit` until it returns `false`.
pub fn list(
    http: &Http,
    req: &ListRequest<'_>,
    visit: &mut dyn FnMut(Value) -> Result<bool, TargetError>,
) -> Result<Listed, TargetError> {
    let what = format!("GET {}", req.path);
    let mut start: u64 = 1;
    let mut first_total: Option<u64> = None;
    let mut ids: HashSet<u64> = HashSet::new();
    let mut out = Listed::default();
    loop {
        let mut query = vec![("startIndex", start.to_string()), ("count", req.page.to_string())];
        if let Some(f) = req.filter {
            query.push(("filter", f.to_string()));
        }
        if let Some(a) = req.attributes {
            query.push(("attributes", a.to_string()));
        }
        let answer = http.call(Method::GET, req.path, &query, None)?;
        out.requests += 1;
        let mut body = answer.body.unwrap_or(Value::Null);
        if !body.is_object() {
            return Err(TargetError::transient(format!(
                "{what}: the answer is not a SCIM ListResponse; will try again"
            )));
        }
        let total = total_of(&what, &body)?;
        if first_total.is_none()
            && let Some(worth) = req.worth
            && !worth(total)
        {
            out.total = total;
            return Ok(out);
        }
        let bound = *first_total.get_or_insert(total);
        if total > req.max {
            return Err(TargetError::permanent(format!(
                "{what}: the server says it holds {total} resources, more than max_listing ({}); rollcall \
                 does not list that many (raise max_listing for this authority if it really holds them)",
                req.max
            )));
        }
        out.total = bound;
        if let Some(answered) = body.get("startIndex").and_then(Value::as_u64)
            && answered != start
        {
            return Err(TargetError::permanent(format!(
                "{what}: asked for startIndex {start}, the server answered startIndex {answered}: it ignores \
                 startIndex, so its listing cannot be paged; fix the server's paging"
            )));
        }
        let resources = match body.get_mut("Resources").map(Value::take) {
            Some(Value::Array(items)) => items,
            None | Some(Value::Null) => Vec::new(),
            Some(_) => {
                return Err(TargetError::permanent(format!(
                    "{what}: Resources is not a list; the answer is not a SCIM ListResponse"
                )));
            }
        };
        let n = resources.len() as u64;
        if n == 0 {
            if out.seen < bound && total > 0 {
                tracing::warn!(
                    request = %what, total = bound, seen = out.seen,
                    "the listing ended before totalResults (resources removed while listing?)"
                );
            }
            return Ok(out);
        }
        if start - 1 + n > total {
            return Err(TargetError::permanent(format!(
                "{what}: the page at startIndex {start} holds {n} resources, but the server says \
                 totalResults {total}: its listing contradicts itself and cannot be trusted"
            )));
        }
        for r in resources {
            let Some(id) = r.get("id").and_then(Value::as_str) else {
                return Err(TargetError::permanent(format!(
                    "{what}: a listed resource has no id ({}); the server's listing cannot be trusted",
                    r.to_string().chars().take(200).collect::<String>()
                )));
            };
            if !ids.insert(id_hash(id)) {
                return Err(TargetError::permanent(format!(
                    "{what}: id {id:?} came again on the page at startIndex {start}: the server repeats \
                     resources across pages (it ignores startIndex or count, or answers a start past the end \
                     with its first page), so its listing cannot be trusted; fix the server's paging"
                )));
            }
            out.seen += 1;
            if !visit(r)? || out.seen >= bound {
                return Ok(out);
            }
        }
        if out.seen >= bound {
            return Ok(out);
        }
        start += n;
    }
}
