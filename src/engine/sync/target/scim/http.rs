//! SCIM over HTTP: one reqwest client with rustls (TLS verified, optional
//! CA bundle) on a small runtime of its own, the bearer token,
//! `application/scim+json`, and the mapping of transport errors and
//! status codes to error classes. Nothing from the server is trusted:
//!
//! * bodies are streamed and capped (`max_response_bytes`; an error body
//!   is read only as far as its first [`ERROR_BODY`] bytes), and only one
//!   large body is held at a time, so memory stays bounded whatever the
//!   server sends;
//! * redirects are not followed unless `follow_redirects` is set, and then
//!   only to the same scheme, host and port;
//! * a whole request (answer included) is bounded by the timeout, and
//!   [`Interrupt`] stops it at once (SIGTERM, the end of a `--once` wait);
//! * a 2xx needs evidence: a body where SCIM says there is one (only 204,
//!   and 200 to a DELETE, may be empty); a body that is not JSON is an
//!   error, never "no answer".
//!
//! Filters are built here with every value escaped.

use super::super::{ErrorClass, Interrupt, TargetError, cap_text};
use reqwest::{Client, Method, Response};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

pub const CONTENT_TYPE: &str = "application/scim+json";
pub const PATCH_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

/// Bodies above this size are read one at a time (per target).
const LARGE_BODY: usize = 1 << 20;
/// How much of an error answer is read (the rest is never read).
const ERROR_BODY: usize = 64 << 10;

/// `attr eq "value"` with the value as a JSON string (quotes and
/// backslashes escaped), as RFC 7644 §3.4.2.2 defines comparison values.
pub fn eq_filter(attr: &str, value: &str) -> String {
    let quoted = serde_json::to_string(value).unwrap_or_else(|_| "\"\"".to_string());
    format!("{attr} eq {quoted}")
}

/// An HTTP answer that passed the checks of [`answer`].
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Option<Value>,
    /// The `Location` header (creates).
    pub location: Option<String>,
}

/// How the client behaves (from the authority's settings).
#[derive(Clone, Debug)]
pub struct HttpSettings {
    pub timeout: Duration,
    pub max_response_bytes: u64,
    pub follow_redirects: bool,
}

pub struct Http {
    base: String,
    client: Client,
    runtime: Option<tokio::runtime::Runtime>,
    token: String,
    settings: HttpSettings,
    interrupt: Arc<Interrupt>,
    /// Held while a body larger than [`LARGE_BODY`] is read.
    large: Arc<tokio::sync::Mutex<()>>,
    pool: Pool,
    /// Requests sent so far.
    sent: std::sync::atomic::AtomicU64,
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
        return Some(Duration::from_secs(secs.min(86_400)));
    }
    let at = chrono::DateTime::parse_from_rfc2822(&v).ok()?;
    let secs = (at.with_timezone(&chrono::Utc) - chrono::Utc::now())
        .num_seconds()
        .clamp(0, 86_400);
    Some(Duration::from_secs(secs as u64))
}

/// The `detail` of a SCIM error body, else the body's text; capped.
fn detail(bytes: &[u8], total: Option<u64>) -> String {
    let text = match serde_json::from_slice::<Value>(bytes) {
        Ok(v) => match v.get("detail").and_then(Value::as_str) {
            Some(d) => match v.get("scimType").and_then(Value::as_str) {
                Some(kind) if !kind.is_empty() => format!("{kind}: {d}"),
                _ => d.to_string(),
            },
            None => v.to_string(),
        },
        Err(_) => String::from_utf8_lossy(bytes).trim().to_string(),
    };
    let text = cap_text(&text);
    match total {
        Some(n) if n as usize > bytes.len() => format!("{text} (an answer of {n} bytes, {} read)", bytes.len()),
        _ => text,
    }
}

fn is_blank(bytes: &[u8]) -> bool {
    bytes.iter().all(u8::is_ascii_whitespace)
}

impl Http {
    pub fn new(
        base: &str,
        token: String,
        ca_bundle: Option<&[u8]>,
        settings: HttpSettings,
    ) -> Result<Self, TargetError> {
        install_crypto();
        let redirect = if settings.follow_redirects {
            reqwest::redirect::Policy::custom(|attempt| {
                let same = attempt.previous().first().is_some_and(|first| {
                    let next = attempt.url();
                    first.scheme() == next.scheme()
                        && first.host_str() == next.host_str()
                        && first.port_or_known_default() == next.port_or_known_default()
                });
                if same && attempt.previous().len() < 5 {
                    attempt.follow()
                } else {
                    attempt.stop()
                }
            })
        } else {
            reqwest::redirect::Policy::none()
        };
        let mut builder = Client::builder()
            .connect_timeout(settings.timeout.min(Duration::from_secs(10)))
            .pool_max_idle_per_host(64)
            .redirect(redirect)
            .user_agent(concat!("rollcall/", env!("CARGO_PKG_VERSION")));
        if let Some(pem) = ca_bundle {
            let certs = reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|e| TargetError::permanent(format!("ca_bundle: not a PEM bundle: {e}")))?;
            if certs.is_empty() {
                return Err(TargetError::permanent("ca_bundle: no certificate in the file"));
            }
            builder = builder.tls_certs_only(certs);
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("rollcall-scim")
            .enable_all()
            .build()
            .map_err(|e| TargetError::permanent(format!("cannot start the HTTP client's runtime: {e}")))?;
        let client = {
            let _in = runtime.enter();
            builder
                .build()
                .map_err(|e| TargetError::permanent(format!("cannot set up the HTTP client: {e}")))?
        };
        Ok(Http {
            base: base.trim_end_matches('/').to_string(),
            client,
            runtime: Some(runtime),
            token,
            settings,
            interrupt: Arc::new(Interrupt::default()),
            large: Arc::new(tokio::sync::Mutex::new(())),
            pool: Pool::default(),
            sent: std::sync::atomic::AtomicU64::new(0),
        })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    pub fn interrupt(&self) -> &Interrupt {
        &self.interrupt
    }

    /// HTTP requests sent so far.
    pub fn requests(&self) -> u64 {
        self.sent.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn url(&self, path: &str, query: &[(&str, String)]) -> Result<reqwest::Url, TargetError> {
        let mut url = reqwest::Url::parse(&format!("{}{path}", self.base))
            .map_err(|e| TargetError::permanent(format!("{}{path}: {e}", self.base)))?;
        if !query.is_empty() {
            let mut pairs = url.query_pairs_mut();
            for (k, v) in query {
                pairs.append_pair(k, v);
            }
        }
        Ok(url)
    }

    /// One request. `path` is relative to the base URL (`/Users`).
    pub fn call(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> Result<Answer, TargetError> {
        let url = self.url(path, query)?;
        let what = format!("{method} {path}");
        self.sent.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let bytes = match body {
            Some(b) => Some(serde_json::to_vec(b).map_err(|e| TargetError::permanent(e.to_string()))?),
            None => None,
        };
        let mut req = self
            .client
            .request(method.clone(), url)
            .bearer_auth(&self.token)
            .header("Accept", CONTENT_TYPE);
        if let Some(b) = bytes {
            req = req.header("Content-Type", CONTENT_TYPE).body(b);
        }
        let max = self.settings.max_response_bytes;
        let large = self.large.clone();
        let pool = self.pool.clone();
        let w = what.clone();
        // The whole exchange runs on the runtime's one worker thread, so
        // the transport's buffers come from one heap and are reused.
        let fetched = self.block(&what, async move {
            let task = tokio::spawn(async move {
                let resp = req.send().await.map_err(|e| transport_error(&w, &e))?;
                let status = resp.status().as_u16();
                let after = retry_after(&resp);
                let location = resp
                    .headers()
                    .get("location")
                    .and_then(|v| v.to_str().ok())
                    .map(cap_text);
                let total = resp.content_length();
                let body = if (300..400).contains(&status) {
                    Body::Small(Vec::new())
                } else if (200..300).contains(&status) {
                    read_body(resp, max, &large, &pool, &w, true).await?
                } else {
                    read_body(resp, ERROR_BODY as u64, &large, &pool, &w, false).await?
                };
                Ok(Fetched {
                    status,
                    after,
                    location,
                    total,
                    body,
                })
            });
            let mut task = AbortOnDrop(task);
            (&mut task.0)
                .await
                .unwrap_or_else(|e| Err(TargetError::transient(format!("the request failed: {e}"))))
        })?;
        let Fetched {
            status,
            after,
            location,
            total,
            body,
        } = fetched;
        if (300..400).contains(&status) {
            return Err(TargetError {
                http_status: Some(status),
                ..TargetError::new(
                    ErrorClass::Unreachable,
                    format!(
                        "{what}: HTTP {status}, a redirect to {}: rollcall does not follow redirects (set \
                         follow_redirects = true for this authority to follow those to the same host), \
                         or point url at where the server really is",
                        location.as_deref().unwrap_or("nowhere")
                    ),
                )
            });
        }
        if !(200..300).contains(&status) {
            return Err(status_error(&what, status, after, &body.small(), total));
        }
        match body {
            Body::Small(bytes) => answer(&what, &method, status, location, &bytes),
            Body::Large(blocks) => large_answer(&what, status, location, blocks),
        }
    }

    /// Runs a request on the client's runtime, bounded by the timeout and
    /// stopped by the interrupt.
    fn block<T>(
        &self,
        what: &str,
        fut: impl std::future::Future<Output = Result<T, TargetError>>,
    ) -> Result<T, TargetError> {
        let Some(rt) = self.runtime.as_ref() else {
            return Err(TargetError::new(
                ErrorClass::Interrupted,
                format!("{what}: the client is closed"),
            ));
        };
        if self.interrupt.due() {
            return Err(TargetError::new(
                ErrorClass::Interrupted,
                format!("{what}: interrupted"),
            ));
        }
        let timeout = self.settings.timeout;
        let interrupt = self.interrupt.clone();
        rt.block_on(async move {
            tokio::select! {
                r = tokio::time::timeout(timeout, fut) => match r {
                    Ok(r) => r,
                    Err(_) => Err(TargetError {
                        timed_out: true,
                        ..TargetError::transient(format!(
                            "{what}: no complete answer within {} s (timeout_seconds)",
                            timeout.as_secs_f64()
                        ))
                    }),
                },
                _ = interrupt.wait() => Err(TargetError::new(
                    ErrorClass::Interrupted,
                    format!("{what}: interrupted; the item goes back to the queue"),
                )),
            }
        })
    }
}

impl Drop for Http {
    fn drop(&mut self) {
        // Never block (or panic) when dropped inside another runtime.
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

fn too_big(what: &str, max: u64, n: u64) -> TargetError {
    TargetError::permanent(format!(
        "{what}: the answer is larger than max_response_bytes ({max} bytes{}); rollcall stopped reading it. \
         Raise max_response_bytes for this authority if its answers are really that large",
        if n > max {
            format!(", it says {n}")
        } else {
            String::new()
        }
    ))
}

/// What came back, before it is read as SCIM.
struct Fetched {
    status: u16,
    after: Option<Duration>,
    location: Option<String>,
    total: Option<u64>,
    body: Body,
}

/// A body as read: small ones in one buffer; large ones as the chunks they
/// came in (no buffer of the whole size, which the allocator would keep
/// per thread).
pub enum Body {
    Small(Vec<u8>),
    Large(Blocks),
}

impl Body {
    fn small(self) -> Vec<u8> {
        match self {
            Body::Small(b) => b,
            Body::Large(blocks) => blocks.parts.concat(),
        }
    }
}

/// Spare blocks of [`Blocks::SIZE`] bytes, kept for the next large body:
/// memory freed to the allocator is not at once reusable (it is purged
/// later), so a server that sends one huge answer after another would
/// otherwise hold several of them in memory at a time. At most
/// `max_response_bytes` are kept.
pub type Pool = Arc<std::sync::Mutex<Vec<Vec<u8>>>>;

/// Bytes gathered in blocks of one size, taken from and given back to the
/// pool.
pub struct Blocks {
    parts: Vec<Vec<u8>>,
    len: usize,
    pool: Pool,
}

impl Blocks {
    const SIZE: usize = 64 << 10;

    fn new(pool: Pool) -> Self {
        Blocks {
            parts: Vec::new(),
            len: 0,
            pool,
        }
    }

    fn push(&mut self, mut data: &[u8]) {
        self.len += data.len();
        while !data.is_empty() {
            if self.parts.last().is_none_or(|p| p.len() == Self::SIZE) {
                let spare = self.pool.lock().ok().and_then(|mut p| p.pop());
                self.parts.push(spare.unwrap_or_else(|| Vec::with_capacity(Self::SIZE)));
            }
            let Some(last) = self.parts.last_mut() else { return };
            let take = (Self::SIZE - last.len()).min(data.len());
            last.extend_from_slice(&data[..take]);
            data = &data[take..];
        }
    }
}

impl Drop for Blocks {
    fn drop(&mut self) {
        if let Ok(mut pool) = self.pool.lock() {
            for mut p in self.parts.drain(..) {
                p.clear();
                pool.push(p);
            }
        }
    }
}

/// Reads the blocks of a large body in order.
struct Chunks<'a> {
    parts: std::slice::Iter<'a, Vec<u8>>,
    current: &'a [u8],
}

impl std::io::Read for Chunks<'_> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        loop {
            let n = self.current.read(out)?;
            if n > 0 || out.is_empty() {
                return Ok(n);
            }
            match self.parts.next() {
                Some(p) => self.current = p,
                None => return Ok(0),
            }
        }
    }
}

/// Reads a body up to `max` bytes (leading whitespace is not kept); `max`
/// exceeded: an error when `strict`, else the first `max` bytes. A body
/// past [`LARGE_BODY`] is read on while holding `large` (one at a time),
/// on the runtime's one worker thread, chunk by chunk, so its memory is
/// reused by the next large body instead of piling up in several
/// threads' heaps.
async fn read_body(
    mut resp: Response,
    max: u64,
    large: &Arc<tokio::sync::Mutex<()>>,
    pool: &Pool,
    what: &str,
    strict: bool,
) -> Result<Body, TargetError> {
    if strict && let Some(n) = resp.content_length().filter(|n| *n > max) {
        return Err(too_big(what, max, n));
    }
    let mut buf: Vec<u8> = Vec::new();
    let mut seen: u64 = 0;
    loop {
        let chunk = match resp.chunk().await {
            Ok(Some(c)) => c,
            Ok(None) => return Ok(Body::Small(buf)),
            Err(e) => return Err(transport_error(what, &e)),
        };
        seen += chunk.len() as u64;
        let skip = if buf.is_empty() {
            chunk.iter().take_while(|b| b.is_ascii_whitespace()).count()
        } else {
            0
        };
        let data = &chunk[skip..];
        if seen > max {
            if strict {
                return Err(too_big(what, max, seen));
            }
            let room = (max as usize).saturating_sub(buf.len()).min(data.len());
            buf.extend_from_slice(&data[..room]);
            return Ok(Body::Small(buf));
        }
        if buf.len() + data.len() <= LARGE_BODY {
            buf.extend_from_slice(data);
            continue;
        }
        let turn = large.clone().lock_owned().await;
        let owned = what.to_string();
        let first = data.to_vec();
        let pool = pool.clone();
        let task = tokio::spawn(async move {
            let _turn = turn;
            let what = owned;
            let mut blocks = Blocks::new(pool);
            blocks.push(&buf);
            drop(buf);
            blocks.push(&first);
            loop {
                match resp.chunk().await {
                    Ok(Some(c)) => {
                        seen += c.len() as u64;
                        if seen > max {
                            if strict {
                                return Err(too_big(&what, max, seen));
                            }
                            let room = (max as usize).saturating_sub(blocks.len).min(c.len());
                            blocks.push(&c[..room]);
                            return Ok(Body::Large(blocks));
                        }
                        blocks.push(&c);
                    }
                    Ok(None) => return Ok(Body::Large(blocks)),
                    Err(e) => return Err(transport_error(&what, &e)),
                }
            }
        });
        // Stopped (timeout, interrupt) while reading: the task stops too.
        let mut task = AbortOnDrop(task);
        return (&mut task.0).await.unwrap_or_else(|e| {
            Err(TargetError::transient(format!(
                "{what}: reading the answer failed: {e}"
            )))
        });
    }
}

/// Aborts a spawned task when the future awaiting it is dropped.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The error a non-2xx status (with its capped body) means.
fn status_error(what: &str, status: u16, after: Option<Duration>, bytes: &[u8], total: Option<u64>) -> TargetError {
    let text = if is_blank(bytes) {
        String::new()
    } else {
        detail(bytes, total)
    };
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
    TargetError {
        http_status: Some(status),
        retry_after: after,
        ..TargetError::new(class, message)
    }
}

/// Reads a 2xx answer. A body that is not JSON is a transient error: read
/// as "no body", a garbled list would look empty (a group sent without
/// members the listing did not show) and a garbled create would lose the
/// new resource's id. An empty body is an answer only where SCIM allows
/// one: 204, or 200 to a DELETE; an empty 200 to anything else proves
/// nothing and is an error too.
pub fn answer(
    what: &str,
    method: &Method,
    status: u16,
    location: Option<String>,
    bytes: &[u8],
) -> Result<Answer, TargetError> {
    if is_blank(bytes) {
        if status == 204 || (*method == Method::DELETE && status == 200) {
            return Ok(Answer {
                status,
                body: None,
                location,
            });
        }
        return Err(TargetError {
            http_status: Some(status),
            ..TargetError::transient(format!(
                "{what}: HTTP {status} with an empty body, where SCIM answers with a resource: no evidence \
                 of what the server did; will try again"
            ))
        });
    }
    match serde_json::from_slice::<Value>(bytes) {
        Ok(v) => Ok(Answer {
            status,
            body: Some(v),
            location,
        }),
        Err(e) => Err(TargetError {
            http_status: Some(status),
            ..TargetError::transient(format!(
                "{what}: HTTP {status} with a body that is not JSON ({e}); will try again"
            ))
        }),
    }
}

/// A large 2xx body (never blank: its first bytes were not whitespace),
/// parsed from its chunks.
fn large_answer(what: &str, status: u16, location: Option<String>, blocks: Blocks) -> Result<Answer, TargetError> {
    let reader = Chunks {
        parts: blocks.parts.iter(),
        current: &[],
    };
    match serde_json::from_reader::<_, Value>(std::io::BufReader::with_capacity(1 << 16, reader)) {
        Ok(v) => Ok(Answer {
            status,
            body: Some(v),
            location,
        }),
        Err(e) => Err(TargetError {
            http_status: Some(status),
            ..TargetError::transient(format!(
                "{what}: HTTP {status} with a body that is not JSON ({e}); will try again"
            ))
        }),
    }
}

/// Reads a status and body the way the target does (the fuzz target).
pub fn read(what: &str, status: u16, bytes: &[u8]) -> Result<Answer, TargetError> {
    if (200..300).contains(&status) {
        answer(what, &Method::GET, status, None, bytes)
    } else {
        Err(status_error(what, status, None, bytes, None))
    }
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
    TargetError {
        timed_out: e.is_timeout(),
        ..TargetError::new(class, cap_text(&message))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_success_needs_evidence() {
        let ok = read("GET /Users", 200, br#"{"Resources": []}"#).unwrap();
        assert!(ok.body.is_some());
        assert!(
            answer("DELETE /Users/1", &Method::DELETE, 204, None, b"")
                .unwrap()
                .body
                .is_none()
        );
        assert!(
            answer("DELETE /Users/1", &Method::DELETE, 200, None, b" \r\n")
                .unwrap()
                .body
                .is_none()
        );
        assert!(answer("PATCH /Users/1", &Method::PATCH, 204, None, b"").is_ok());
        for (m, s) in [
            (Method::GET, 200),
            (Method::POST, 201),
            (Method::POST, 200),
            (Method::PUT, 200),
            (Method::PATCH, 200),
        ] {
            let e = answer("x", &m, s, None, b"").unwrap_err();
            assert_eq!(e.class, ErrorClass::Transient, "{m} {s}");
            assert!(e.message.contains("empty body"), "{}", e.message);
        }
        let e = read("GET /Users", 200, br#"{"Resources": [{"id": "#).err().unwrap();
        assert_eq!((e.class, e.http_status), (ErrorClass::Transient, Some(200)));
        assert!(e.message.contains("not JSON"), "{}", e.message);
        // Error bodies that are not JSON still give the status's error.
        let e = read("GET /Users", 503, b"<html>busy</html>").err().unwrap();
        assert_eq!((e.class, e.http_status), (ErrorClass::Transient, Some(503)));
    }

    #[test]
    fn error_details_are_capped_with_their_size() {
        let big = format!(r#"{{"detail": "{}", "scimType": "invalidValue"}}"#, "x".repeat(100_000));
        let e = status_error(
            "POST /Users",
            400,
            None,
            &big.as_bytes()[..ERROR_BODY],
            Some(big.len() as u64),
        );
        assert!(e.message.len() < 5_000, "{}", e.message.len());
        assert!(
            e.message.contains(&format!("an answer of {} bytes", big.len())),
            "{}",
            &e.message[4000..]
        );
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
