//! SCIM over HTTP: one blocking reqwest client with rustls (TLS verified,
//! optional CA bundle), the bearer token, `application/scim+json`, and the
//! mapping of transport errors and status codes to error classes.
//! Filters are built here with every value escaped.

use super::super::{ErrorClass, TargetError};
use reqwest::Method;
use reqwest::blocking::{Client, Response};
use serde_json::Value;
use std::time::Duration;

pub const CONTENT_TYPE: &str = "application/scim+json";
pub const PATCH_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

/// `attr eq "value"` with the value as a JSON string (quotes and
/// backslashes escaped), as RFC 7644 §3.4.2.2 defines comparison values.
pub fn eq_filter(attr: &str, value: &str) -> String {
    let quoted = serde_json::to_string(value).unwrap_or_else(|_| "\"\"".to_string());
    format!("{attr} eq {quoted}")
}

/// An HTTP answer: status and JSON body (if any).
pub struct Answer {
    pub body: Option<Value>,
}

pub struct Http {
    base: String,
    client: Client,
    token: String,
}

/// rustls needs one process-wide crypto provider; ring is ours.
fn install_crypto() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Another thread may win the race: either provider is ring.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}

fn retry_after(resp: &Response) -> Option<Duration> {
    let v = resp.headers().get("retry-after")?.to_str().ok()?.trim().to_string();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = chrono::DateTime::parse_from_rfc2822(&v).ok()?;
    let secs = (at.with_timezone(&chrono::Utc) - chrono::Utc::now())
        .num_seconds()
        .max(0);
    Some(Duration::from_secs(secs as u64))
}

/// The `detail` of a SCIM error body, else the body's text.
fn detail(body: &Option<Value>) -> String {
    match body {
        Some(v) => v
            .get("detail")
            .and_then(|d| d.as_str())
            .map(|d| {
                let kind = v.get("scimType").and_then(|t| t.as_str()).unwrap_or("");
                if kind.is_empty() {
                    d.to_string()
                } else {
                    format!("{kind}: {d}")
                }
            })
            .unwrap_or_else(|| {
                let s = v.to_string();
                s.chars().take(300).collect()
            }),
        None => String::new(),
    }
}

impl Http {
    pub fn new(base: &str, token: String, ca_bundle: Option<&[u8]>, timeout: Duration) -> Result<Self, TargetError> {
        install_crypto();
        let mut builder = Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .pool_max_idle_per_host(64)
            .user_agent(concat!("rollcall/", env!("CARGO_PKG_VERSION")));
        if let Some(pem) = ca_bundle {
            let certs = reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|e| TargetError::permanent(format!("ca_bundle: not a PEM bundle: {e}")))?;
            if certs.is_empty() {
                return Err(TargetError::permanent("ca_bundle: no certificate in the file"));
            }
            builder = builder.tls_certs_only(certs);
        }
        let client = builder
            .build()
            .map_err(|e| TargetError::permanent(format!("cannot set up the HTTP client: {e}")))?;
        Ok(Http {
            base: base.trim_end_matches('/').to_string(),
            client,
            token,
        })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// One request. `path` is relative to the base URL (`/Users`).
    pub fn call(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> Result<Answer, TargetError> {
        let mut url = reqwest::Url::parse(&format!("{}{path}", self.base))
            .map_err(|e| TargetError::permanent(format!("{}{path}: {e}", self.base)))?;
        if !query.is_empty() {
            let mut pairs = url.query_pairs_mut();
            for (k, v) in query {
                pairs.append_pair(k, v);
            }
        }
        let mut req = self
            .client
            .request(method.clone(), url)
            .bearer_auth(&self.token)
            .header("Accept", CONTENT_TYPE);
        if let Some(b) = body {
            let bytes = serde_json::to_vec(b).map_err(|e| TargetError::permanent(e.to_string()))?;
            req = req.header("Content-Type", CONTENT_TYPE).body(bytes);
        }
        let what = format!("{method} {path}");
        let resp = req.send().map_err(|e| transport_error(&what, &e))?;
        let status = resp.status().as_u16();
        let after = retry_after(&resp);
        let bytes = resp.bytes().map_err(|e| transport_error(&what, &e))?;
        answer(&what, status, after, &bytes)
    }

    /// Every resource of an endpoint matching `filter`, by `startIndex` and
    /// `count` pages; stops at the first empty page whatever
    /// `totalResults` claims.
    pub fn list(
        &self,
        path: &str,
        filter: Option<&str>,
        attributes: Option<&str>,
        page: usize,
        visit: &mut dyn FnMut(Value) -> bool,
    ) -> Result<(), TargetError> {
        let mut start = 1usize;
        let mut previous_first: Option<Value> = None;
        loop {
            let mut query = vec![("startIndex", start.to_string()), ("count", page.to_string())];
            if let Some(f) = filter {
                query.push(("filter", f.to_string()));
            }
            if let Some(a) = attributes {
                query.push(("attributes", a.to_string()));
            }
            let answer = self.call(Method::GET, path, &query, None)?;
            let resources = resources(answer.body.as_ref());
            if resources.is_empty() {
                return Ok(());
            }
            // A server that ignores startIndex would repeat its first page.
            let first = resources.first().and_then(|r| r.get("id")).cloned();
            if start > 1 && first.is_some() && first == previous_first {
                return Ok(());
            }
            previous_first = first;
            start += resources.len();
            for r in resources {
                if !visit(r) {
                    return Ok(());
                }
            }
        }
    }
}

/// Reads an HTTP answer: a 2xx with its JSON body, else the error the
/// status and the SCIM error body say. A 2xx whose body is not JSON is a
/// transient error: read as "no body", a garbled list would look empty
/// (a group sent without members the listing did not show, as if they did
/// not exist) and a garbled create would lose the new resource's id.
pub fn answer(what: &str, status: u16, after: Option<Duration>, bytes: &[u8]) -> Result<Answer, TargetError> {
    let blank = bytes.iter().all(u8::is_ascii_whitespace);
    let parsed = if blank {
        None
    } else {
        Some(serde_json::from_slice::<Value>(bytes))
    };
    if (200..300).contains(&status) {
        return match parsed {
            None => Ok(Answer { body: None }),
            Some(Ok(v)) => Ok(Answer { body: Some(v) }),
            Some(Err(e)) => Err(TargetError {
                class: ErrorClass::Transient,
                message: format!("{what}: HTTP {status} with a body that is not JSON ({e}); will retry"),
                http_status: Some(status),
                ldap_code: None,
                retry_after: None,
            }),
        };
    }
    let body = parsed.and_then(Result::ok);
    let text = detail(&body);
    let message = format!(
        "{what}: HTTP {status}{}",
        if text.is_empty() {
            String::new()
        } else {
            format!(": {text}")
        }
    );
    let class = match status {
        429 | 500..=599 | 408 => ErrorClass::Transient,
        401 | 403 => ErrorClass::Unreachable,
        _ => ErrorClass::Permanent,
    };
    // 404 and 409 are answers the caller may handle.
    Err(TargetError {
        class,
        message,
        http_status: Some(status),
        ldap_code: None,
        retry_after: after,
    })
}

/// The `Resources` of a list response (none when the body has no array).
pub fn resources(body: Option<&Value>) -> Vec<Value> {
    body.and_then(|b| b.get("Resources"))
        .and_then(|r| r.as_array())
        .cloned()
        .unwrap_or_default()
}

fn transport_error(what: &str, e: &reqwest::Error) -> TargetError {
    // The chain says what really happened (refused, reset, certificate…).
    let mut message = what.to_string();
    let mut source: Option<&dyn std::error::Error> = Some(e);
    while let Some(s) = source {
        // reqwest's own message repeats the URL with its query: leave it out.
        let text = s.to_string();
        let text = match text.split_once(" for url (") {
            Some((head, _)) => head.to_string(),
            None => text,
        };
        if !message.ends_with(&text) {
            message.push_str(&format!(": {text}"));
        }
        source = s.source();
    }
    let class = if e.is_connect() {
        ErrorClass::Unreachable
    } else {
        ErrorClass::Transient
    };
    TargetError::new(class, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_success_with_a_garbled_body_is_a_transient_error() {
        let ok = answer("GET /Users", 200, None, br#"{"Resources": []}"#).unwrap();
        assert!(ok.body.is_some());
        assert!(answer("DELETE /Users/1", 204, None, b"").unwrap().body.is_none());
        assert!(answer("DELETE /Users/1", 200, None, b" \r\n").unwrap().body.is_none());
        let e = answer("GET /Users", 200, None, br#"{"Resources": [{"id": "#)
            .err()
            .unwrap();
        assert_eq!((e.class, e.http_status), (ErrorClass::Transient, Some(200)));
        assert!(e.message.contains("not JSON"), "{}", e.message);
        // Error bodies that are not JSON still give the status's error.
        let e = answer("GET /Users", 503, None, b"<html>busy</html>").err().unwrap();
        assert_eq!((e.class, e.http_status), (ErrorClass::Transient, Some(503)));
    }

    #[test]
    fn filter_values_are_escaped() {
        assert_eq!(eq_filter("externalId", "district:1"), r#"externalId eq "district:1""#);
        assert_eq!(
            eq_filter("userName", r#"a" or userName pr or "x\"#),
            r#"userName eq "a\" or userName pr or \"x\\""#
        );
    }
}
