//! A fault-injecting loopback HTTP proxy for the sync tests: sits between
//! rollcall and scim2-server and, at configurable rates, answers 500, 429
//! with Retry-After, stalls past the client's timeout, resets the
//! connection, answers 409 (a uniqueness conflict that is not there), or
//! forwards the request and garbles the answer's body (the server did the
//! work, the client cannot read the reply); it can also go down (connection refused) and come back on
//! the same port. Every request is bounded; the proxy stops when dropped.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

#[derive(Clone, Debug, Default)]
pub struct Faults {
    pub error_500: f64,
    pub throttle_429: f64,
    pub retry_after_secs: u64,
    pub timeout: f64,
    /// How long a stalled request is held (longer than the client timeout).
    pub stall: Duration,
    pub reset: f64,
    /// Answered 409 without forwarding.
    pub conflict_409: f64,
    /// Forwarded, then the response body is cut in half (padded to the
    /// same length, so the client reads it whole and cannot parse it).
    pub malformed: f64,
    /// Rewrites every `"totalResults": N` to claim 1 (same length).
    pub wrong_totals: bool,
    /// Answers a filter with `or` in it 400 invalidFilter, as servers that
    /// take only single comparisons do (not counted as a fault).
    pub refuse_or_filters: bool,
    /// Holds lookups by `userName` this long before forwarding them (a
    /// takeover's lookup that another item's delete overtakes).
    pub slow_user_name_lookups: Duration,
    /// Answers every user create (`POST …/Users`) 500 without forwarding
    /// (not counted as a fault): users that cannot be created for a while.
    pub refuse_user_creates: bool,
}

#[derive(Default)]
pub struct Counters {
    pub forwarded: AtomicU64,
    pub error_500: AtomicU64,
    pub throttle_429: AtomicU64,
    pub timeout: AtomicU64,
    pub reset: AtomicU64,
    pub conflict_409: AtomicU64,
    pub malformed: AtomicU64,
    /// Filters with `or` answered 400 (`refuse_or_filters`).
    pub refused_or: AtomicU64,
    /// What was forwarded, by kind: POST, PUT, PATCH and DELETE requests
    /// other than Bulk; Bulk requests; GETs with a filter; other GETs.
    pub writes: AtomicU64,
    pub bulk: AtomicU64,
    pub lookups: AtomicU64,
    pub reads: AtomicU64,
}

impl Counters {
    /// (kind, injected) for every fault kind.
    pub fn injected(&self) -> Vec<(&'static str, u64)> {
        [
            ("500", &self.error_500),
            ("429", &self.throttle_429),
            ("timeout", &self.timeout),
            ("reset", &self.reset),
            ("409", &self.conflict_409),
            ("malformed", &self.malformed),
        ]
        .into_iter()
        .map(|(k, n)| (k, n.load(Ordering::Relaxed)))
        .collect()
    }
}

struct Shared {
    faults: Mutex<Faults>,
    up: AtomicBool,
    stop: AtomicBool,
    counters: Counters,
    seed: AtomicU64,
}

pub struct FaultProxy {
    pub port: u16,
    upstream: u16,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl FaultProxy {
    pub fn start(upstream: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let port = listener.local_addr().expect("addr").port();
        let shared = Arc::new(Shared {
            faults: Mutex::new(Faults::default()),
            up: AtomicBool::new(true),
            stop: AtomicBool::new(false),
            counters: Counters::default(),
            seed: AtomicU64::new(0x9e37_79b9_7f4a_7c15),
        });
        let mut p = FaultProxy {
            port,
            upstream,
            shared,
            thread: None,
        };
        p.thread = Some(p.spawn(listener));
        p
    }

    fn spawn(&self, listener: TcpListener) -> JoinHandle<()> {
        listener.set_nonblocking(true).expect("nonblocking");
        let shared = self.shared.clone();
        let upstream = self.upstream;
        std::thread::spawn(move || {
            while shared.up.load(Ordering::SeqCst) && !shared.stop.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((conn, _)) => {
                        let shared = shared.clone();
                        std::thread::spawn(move || handle(conn, upstream, &shared));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(2)),
                }
            }
            // Dropping the listener closes the port: connections are refused.
        })
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn set(&self, faults: Faults) {
        *self.shared.faults.lock().expect("faults") = faults;
    }

    pub fn counters(&self) -> &Counters {
        &self.shared.counters
    }

    /// Stops listening: clients get "connection refused".
    pub fn down(&mut self) {
        self.shared.up.store(false, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }

    /// Listens again on the same port.
    pub fn up(&mut self) {
        self.shared.up.store(true, Ordering::SeqCst);
        let mut tries = 0;
        let listener = loop {
            match TcpListener::bind(("127.0.0.1", self.port)) {
                Ok(l) => break l,
                Err(e) if tries < 100 => {
                    tries += 1;
                    let _ = e;
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(e) => panic!("cannot listen on {} again: {e}", self.port),
            }
        };
        self.thread = Some(self.spawn(listener));
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// xorshift: deterministic enough, no dependency.
fn roll(shared: &Shared) -> f64 {
    let mut x = shared.seed.load(Ordering::Relaxed);
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    shared.seed.store(x, Ordering::Relaxed);
    (x >> 11) as f64 / (1u64 << 53) as f64
}

/// Reads one request: head and Content-Length body.
fn read_request(conn: &mut TcpStream) -> Option<Vec<u8>> {
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
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    while buf.len() < head_end + len {
        let n = conn.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Some(buf)
}

/// `POST …/Users` (not a Bulk request).
fn is_user_create(request: &[u8]) -> bool {
    let end = request.iter().position(|&b| b == b'\n').unwrap_or(request.len());
    let line = String::from_utf8_lossy(&request[..end]);
    let mut words = line.split_whitespace();
    words.next() == Some("POST")
        && words
            .next()
            .is_some_and(|t| t.split('?').next().unwrap_or("").ends_with("/Users"))
}

fn reset(conn: TcpStream) {
    use std::os::fd::AsRawFd;
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: a valid socket and a correctly sized linger struct.
    unsafe {
        libc::setsockopt(
            conn.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            &linger as *const libc::linger as *const libc::c_void,
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
    drop(conn);
}

fn handle(mut conn: TcpStream, upstream: u16, shared: &Shared) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
    let Some(request) = read_request(&mut conn) else { return };
    let faults = shared.faults.lock().map(|f| f.clone()).unwrap_or_default();
    let c = &shared.counters;
    if faults.refuse_or_filters && has_or_filter(&request) {
        c.refused_or.fetch_add(1, Ordering::Relaxed);
        let body = r#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:Error"],"status":"400","scimType":"invalidFilter","detail":"only single comparisons are supported"}"#;
        let _ = write!(
            conn,
            "HTTP/1.1 400 Bad Request\r\nContent-Type: application/scim+json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        return;
    }
    if faults.refuse_user_creates && is_user_create(&request) {
        let body = r#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:Error"],"status":"500","detail":"user creates refused"}"#;
        let _ = write!(
            conn,
            "HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/scim+json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        return;
    }
    let mut r = roll(shared);
    if r < faults.reset {
        c.reset.fetch_add(1, Ordering::Relaxed);
        return reset(conn);
    }
    r -= faults.reset;
    if r < faults.timeout {
        c.timeout.fetch_add(1, Ordering::Relaxed);
        std::thread::sleep(faults.stall);
        return;
    }
    r -= faults.timeout;
    if r < faults.error_500 {
        c.error_500.fetch_add(1, Ordering::Relaxed);
        let body = r#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:Error"],"status":"500","detail":"injected"}"#;
        let _ = write!(
            conn,
            "HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/scim+json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        return;
    }
    r -= faults.error_500;
    if r < faults.throttle_429 {
        c.throttle_429.fetch_add(1, Ordering::Relaxed);
        let _ = write!(
            conn,
            "HTTP/1.1 429 Too Many Requests\r\nRetry-After: {}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            faults.retry_after_secs
        );
        return;
    }
    r -= faults.throttle_429;
    if r < faults.conflict_409 {
        c.conflict_409.fetch_add(1, Ordering::Relaxed);
        let body = r#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:Error"],"status":"409","scimType":"uniqueness","detail":"injected"}"#;
        let _ = write!(
            conn,
            "HTTP/1.1 409 Conflict\r\nContent-Type: application/scim+json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        return;
    }
    r -= faults.conflict_409;
    let garble = r < faults.malformed;
    let line_end = request.iter().position(|&b| b == b'\n').unwrap_or(request.len());
    let line = String::from_utf8_lossy(&request[..line_end]).to_string();
    let method = line.split_whitespace().next().unwrap_or("").to_string();
    let target = line.split_whitespace().nth(1).unwrap_or("").to_string();
    match method.as_str() {
        "GET" if target.contains("filter=") => {
            c.lookups.fetch_add(1, Ordering::Relaxed);
            if !faults.slow_user_name_lookups.is_zero() && target.contains("userName") {
                std::thread::sleep(faults.slow_user_name_lookups);
            }
        }
        "GET" => {
            c.reads.fetch_add(1, Ordering::Relaxed);
        }
        "POST" if target.split('?').next().unwrap_or("").ends_with("/Bulk") => {
            c.bulk.fetch_add(1, Ordering::Relaxed);
        }
        _ => {
            c.writes.fetch_add(1, Ordering::Relaxed);
        }
    }
    // HTTP/1.0 upstream: the server closes when it has answered (no
    // keep-alive to wait out).
    let mut request = request;
    if let Some(v) = line.rfind("HTTP/1.1") {
        request.splice(v..v + 8, b"HTTP/1.0".iter().copied());
    }
    let Ok(mut up) = TcpStream::connect(("127.0.0.1", upstream)) else {
        return reset(conn);
    };
    let _ = up.set_read_timeout(Some(Duration::from_secs(30)));
    if up.write_all(&request).is_err() {
        return;
    }
    let mut response = Vec::new();
    let _ = up.read_to_end(&mut response);
    c.forwarded.fetch_add(1, Ordering::Relaxed);
    if faults.wrong_totals {
        lie_about_totals(&mut response);
    }
    if garble && cut_body(&mut response) {
        c.malformed.fetch_add(1, Ordering::Relaxed);
    }
    let _ = conn.write_all(&response);
}

/// Whether the request line carries a `filter` with an `or` (form-encoded:
/// `+or+` or `%20or%20`).
fn has_or_filter(request: &[u8]) -> bool {
    let line_end = request.iter().position(|&b| b == b'\n').unwrap_or(request.len());
    let line = String::from_utf8_lossy(&request[..line_end]).to_ascii_lowercase();
    line.contains("filter=") && (line.contains("+or+") || line.contains("%20or%20"))
}

/// Blanks the second half of a non-empty body (same length): `true` when
/// there was a body to garble.
fn cut_body(response: &mut [u8]) -> bool {
    let Some(start) = response.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4) else {
        return false;
    };
    let len = response.len() - start;
    if len < 2 {
        return false;
    }
    for b in &mut response[start + len / 2..] {
        *b = b' ';
    }
    true
}

fn lie_about_totals(response: &mut [u8]) {
    let key = b"\"totalResults\": ";
    let mut i = 0;
    while let Some(pos) = response[i..].windows(key.len()).position(|w| w == key) {
        let start = i + pos + key.len();
        let mut end = start;
        while end < response.len() && response[end].is_ascii_digit() {
            end += 1;
        }
        if end > start {
            for b in &mut response[start..end - 1] {
                *b = b' ';
            }
            response[end - 1] = b'1';
        }
        i = end;
    }
}
