//! The hostile SCIM server (issue "trust nothing at the edges"): a small
//! HTTP server on a loopback port that lies, stalls and floods. Where a
//! mode needs real data it forwards to a real SCIM server (scim2-server)
//! and bends the answer, so what reached the real server can be checked
//! afterwards. It speaks HTTP like any server; rollcall's client is not
//! mocked. Modes:
//!
//! * `FilterIgnored`: lookups are forwarded without their `filter`, so they
//!   answer with whatever accounts the server holds;
//! * `Empty200`: every request is answered `200` with no body;
//! * `NoId`: a create is answered `201` with the resource sent, but no id
//!   and no Location (nothing created), a Bulk request with every
//!   operation "201" and no Location either; reads are forwarded;
//! * `HugeBody`: every answer is `200` with a 500 MB whitespace body;
//! * `EndlessChunked`: every answer is `200`, chunked, and never ends;
//! * `EndlessPaging`: listings always have another page of new users;
//! * `Silent`: accepts, reads the request, never answers;
//! * `Redirect`: `307` to the same path on another loopback address (a
//!   [`Sink`] that counts what reaches it);
//! * `AbsurdTotals`: listings forwarded with `totalResults` a quadrillion;
//! * `HugeErrorDetail`: writes answered `400` with a 20 MB `detail`; reads
//!   forwarded;
//! * `IgnorePaging`: listings always answer the first 20 (issue 16.2).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    FilterIgnored,
    Empty200,
    NoId,
    HugeBody,
    EndlessChunked,
    EndlessPaging,
    Silent,
    Redirect,
    AbsurdTotals,
    HugeErrorDetail,
    /// Listings forwarded without `startIndex` and with `count=20`: always
    /// the first 20, whatever page was asked for.
    IgnorePaging,
}

#[derive(Default)]
pub struct Counters {
    pub requests: AtomicU64,
    pub forwarded: AtomicU64,
    /// POST, PUT, PATCH and DELETE requests received.
    pub writes: AtomicU64,
    /// Bytes of bodies sent (floods).
    pub sent_bytes: AtomicU64,
}

struct Shared {
    mode: Mutex<Mode>,
    upstream: Option<u16>,
    /// The redirect's target port (on 127.0.0.2).
    sink: Option<u16>,
    stop: AtomicBool,
    counters: Counters,
}

pub struct Hostile {
    pub port: u16,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Hostile {
    /// Starts in `mode`; `upstream`: the real server forwarded to.
    pub fn start(mode: Mode, upstream: Option<u16>, sink: Option<&Sink>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind hostile server");
        let port = listener.local_addr().expect("addr").port();
        listener.set_nonblocking(true).expect("nonblocking");
        let shared = Arc::new(Shared {
            mode: Mutex::new(mode),
            upstream,
            sink: sink.map(|s| s.port),
            stop: AtomicBool::new(false),
            counters: Counters::default(),
        });
        let s = shared.clone();
        let thread = std::thread::spawn(move || {
            while !s.stop.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((conn, _)) => {
                        let s = s.clone();
                        std::thread::spawn(move || handle(conn, &s));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(2)),
                }
            }
        });
        Hostile {
            port,
            shared,
            thread: Some(thread),
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn set(&self, mode: Mode) {
        *self.shared.mode.lock().expect("mode") = mode;
    }

    pub fn counters(&self) -> &Counters {
        &self.shared.counters
    }
}

impl Drop for Hostile {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A listener on 127.0.0.2 that counts the connections and bytes that
/// reach it (and answers nothing useful).
pub struct Sink {
    pub port: u16,
    pub connections: Arc<AtomicU64>,
    pub bytes: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl Sink {
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.2:0").expect("bind 127.0.0.2");
        listener.set_nonblocking(true).expect("nonblocking");
        let port = listener.local_addr().expect("addr").port();
        let (connections, bytes, stop) = (
            Arc::new(AtomicU64::new(0)),
            Arc::new(AtomicU64::new(0)),
            Arc::new(AtomicBool::new(false)),
        );
        let (c, b, s) = (connections.clone(), bytes.clone(), stop.clone());
        std::thread::spawn(move || {
            while !s.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((mut conn, _)) => {
                        c.fetch_add(1, Ordering::SeqCst);
                        let _ = conn.set_read_timeout(Some(Duration::from_millis(500)));
                        let mut buf = [0u8; 8192];
                        while let Ok(n) = conn.read(&mut buf) {
                            if n == 0 {
                                break;
                            }
                            b.fetch_add(n as u64, Ordering::SeqCst);
                        }
                        let _ = conn.write_all(b"HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\n{}");
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(2)),
                }
            }
        });
        Sink {
            port,
            connections,
            bytes,
            stop,
        }
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// (method, target, whole request).
fn read_request(conn: &mut TcpStream) -> Option<(String, String, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        let n = conn.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if buf.len() > 1 << 20 {
            return None;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let len: usize = head
        .lines()
        .find_map(|l| {
            let l = l.to_ascii_lowercase();
            l.strip_prefix("content-length:").map(|v| v.trim().to_string())
        })
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    while buf.len() < head_end + len {
        let n = conn.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let mut first = head.lines().next().unwrap_or("").split_whitespace();
    let method = first.next().unwrap_or("").to_string();
    let target = first.next().unwrap_or("").to_string();
    Some((method, target, buf))
}

fn respond(conn: &mut TcpStream, status: &str, headers: &str, body: &[u8]) {
    let _ = write!(
        conn,
        "HTTP/1.1 {status}\r\nContent-Type: application/scim+json\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = conn.write_all(body);
}

/// Forwards a request (its request line replaced by `target`) and returns
/// the whole answer.
fn forward(upstream: u16, method: &str, target: &str, request: &[u8], shared: &Shared) -> Option<Vec<u8>> {
    let line_end = request.windows(2).position(|w| w == b"\r\n")?;
    let mut out = format!("{method} {target} HTTP/1.0").into_bytes();
    out.extend_from_slice(&request[line_end..]);
    let mut up = TcpStream::connect(("127.0.0.1", upstream)).ok()?;
    let _ = up.set_read_timeout(Some(Duration::from_secs(30)));
    up.write_all(&out).ok()?;
    let mut response = Vec::new();
    let _ = up.read_to_end(&mut response);
    shared.counters.forwarded.fetch_add(1, Ordering::SeqCst);
    Some(response)
}

/// The target without its `filter` parameter.
fn without_filter(target: &str) -> String {
    let Some((path, query)) = target.split_once('?') else {
        return target.to_string();
    };
    let kept: Vec<&str> = query.split('&').filter(|p| !p.starts_with("filter=")).collect();
    if kept.is_empty() {
        path.to_string()
    } else {
        format!("{path}?{}", kept.join("&"))
    }
}

fn query_number(target: &str, key: &str) -> Option<u64> {
    let (_, query) = target.split_once('?')?;
    query
        .split('&')
        .find_map(|p| p.strip_prefix(&format!("{key}=")))
        .and_then(|v| v.parse().ok())
}

fn is_listing(method: &str, target: &str) -> bool {
    let path = target.split('?').next().unwrap_or("");
    method == "GET" && (path.ends_with("/Users") || path.ends_with("/Groups"))
}

fn handle(mut conn: TcpStream, shared: &Shared) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
    let Some((method, target, request)) = read_request(&mut conn) else {
        return;
    };
    let c = &shared.counters;
    c.requests.fetch_add(1, Ordering::SeqCst);
    if matches!(method.as_str(), "POST" | "PUT" | "PATCH" | "DELETE") {
        c.writes.fetch_add(1, Ordering::SeqCst);
    }
    let mode = *shared.mode.lock().expect("mode");
    let pass = |conn: &mut TcpStream, target: &str| match shared
        .upstream
        .and_then(|u| forward(u, &method, target, &request, shared))
    {
        Some(r) => {
            let _ = conn.write_all(&r);
        }
        None => respond(conn, "502 Bad Gateway", "", b""),
    };
    match mode {
        Mode::FilterIgnored => {
            let t = if method == "GET" {
                without_filter(&target)
            } else {
                target.clone()
            };
            pass(&mut conn, &t);
        }
        Mode::Empty200 => {
            let _ = conn.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        }
        Mode::NoId if method == "POST" && target.ends_with("/Bulk") => {
            // Every operation "done", with no id or Location anywhere.
            let start = request
                .windows(4)
                .position(|w| w == b"\r\n\r\n")
                .map(|i| i + 4)
                .unwrap_or(0);
            let sent: serde_json::Value = serde_json::from_slice(&request[start..]).unwrap_or_default();
            let ops: Vec<serde_json::Value> = sent["Operations"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .map(|o| serde_json::json!({"method": o["method"], "bulkId": o["bulkId"], "status": "201"}))
                .collect();
            let body = serde_json::json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkResponse"],
                "Operations": ops});
            respond(&mut conn, "200 OK", "", body.to_string().as_bytes());
        }
        Mode::NoId if method == "POST" => {
            let start = request
                .windows(4)
                .position(|w| w == b"\r\n\r\n")
                .map(|i| i + 4)
                .unwrap_or(0);
            respond(&mut conn, "201 Created", "", &request[start..]);
        }
        Mode::NoId => pass(&mut conn, &target),
        Mode::HugeBody => {
            let total: u64 = 500 << 20;
            let _ = write!(
                conn,
                "HTTP/1.1 200 OK\r\nContent-Type: application/scim+json\r\nContent-Length: {total}\r\nConnection: close\r\n\r\n"
            );
            let block = vec![b' '; 1 << 16];
            let mut sent = 0u64;
            while sent < total && !shared.stop.load(Ordering::SeqCst) {
                if conn.write_all(&block).is_err() {
                    break;
                }
                sent += block.len() as u64;
            }
            c.sent_bytes.fetch_add(sent, Ordering::SeqCst);
        }
        Mode::EndlessChunked => {
            let _ = conn.write_all(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/scim+json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
            );
            let head =
                br#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:ListResponse"],"totalResults":1,"Resources":["#;
            let _ = write!(conn, "{:x}\r\n", head.len());
            let _ = conn.write_all(head);
            let _ = conn.write_all(b"\r\n");
            let item = br#"{"id":"flood","userName":"flood","externalId":"flood:1"},"#.repeat(1000);
            let mut sent = head.len() as u64;
            while !shared.stop.load(Ordering::SeqCst) {
                if write!(conn, "{:x}\r\n", item.len()).is_err()
                    || conn.write_all(&item).is_err()
                    || conn.write_all(b"\r\n").is_err()
                {
                    break;
                }
                sent += item.len() as u64;
            }
            c.sent_bytes.fetch_add(sent, Ordering::SeqCst);
        }
        Mode::EndlessPaging if is_listing(&method, &target) && !target.contains("filter=") => {
            let start = query_number(&target, "startIndex").unwrap_or(1);
            let count = query_number(&target, "count").unwrap_or(100).min(1000);
            let resources: Vec<serde_json::Value> = (start..start + count)
                .map(|i| {
                    serde_json::json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                        "id": format!("page-{i}"), "userName": format!("p{i}"), "externalId": format!("pager:{i}")})
                })
                .collect();
            // There is always one more page.
            let body = serde_json::json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
                "totalResults": start + 2 * count, "startIndex": start, "itemsPerPage": count,
                "Resources": resources});
            respond(&mut conn, "200 OK", "", body.to_string().as_bytes());
        }
        Mode::EndlessPaging => pass(&mut conn, &target),
        Mode::Silent => {
            while !shared.stop.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        Mode::Redirect => {
            let to = format!("http://127.0.0.2:{}{}", shared.sink.unwrap_or(9), target);
            respond(&mut conn, "307 Temporary Redirect", &format!("Location: {to}\r\n"), b"");
        }
        Mode::AbsurdTotals if method == "GET" => {
            let Some(mut r) = shared
                .upstream
                .and_then(|u| forward(u, &method, &target, &request, shared))
            else {
                return respond(&mut conn, "502 Bad Gateway", "", b"");
            };
            let text = String::from_utf8_lossy(&r).to_string();
            if let Some((head, body)) = text.split_once("\r\n\r\n")
                && let Ok(mut v) = serde_json::from_str::<serde_json::Value>(body)
                && v.get("totalResults").is_some()
            {
                v["totalResults"] = serde_json::json!(1_000_000_000_000_000u64);
                let body = v.to_string();
                let head: Vec<&str> = head
                    .lines()
                    .filter(|l| !l.to_ascii_lowercase().starts_with("content-length"))
                    .collect();
                r = format!("{}\r\nContent-Length: {}\r\n\r\n{body}", head.join("\r\n"), body.len()).into_bytes();
            }
            let _ = conn.write_all(&r);
        }
        Mode::AbsurdTotals => pass(&mut conn, &target),
        Mode::HugeErrorDetail if method != "GET" => {
            let detail = "x".repeat(20 << 20);
            let body = format!(
                r#"{{"schemas":["urn:ietf:params:scim:api:messages:2.0:Error"],"status":"400","scimType":"invalidValue","detail":"{detail}"}}"#
            );
            respond(&mut conn, "400 Bad Request", "", body.as_bytes());
            c.sent_bytes.fetch_add(body.len() as u64, Ordering::SeqCst);
        }
        Mode::HugeErrorDetail => pass(&mut conn, &target),
        Mode::IgnorePaging if is_listing(&method, &target) => {
            let (path, query) = target.split_once('?').unwrap_or((&target, ""));
            let mut kept: Vec<&str> = query
                .split('&')
                .filter(|p| !p.is_empty() && !p.starts_with("startIndex=") && !p.starts_with("count="))
                .collect();
            kept.push("count=20");
            pass(&mut conn, &format!("{path}?{}", kept.join("&")));
        }
        Mode::IgnorePaging => pass(&mut conn, &target),
    }
}
