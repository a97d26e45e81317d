//! Test support: the real third-party SCIM server `scim2-server` (PyPI) on a
//! random loopback port with a bearer token, stopped when dropped. Found
//! through `SCIM2_SERVER_BIN`, else `.venv/bin/scim2-server` of this
//! checkout. Missing: with `CI=true` the test fails; otherwise it is skipped
//! with a message.

use serde_json::Value;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const TOKEN: &str = "test-token-7f3a";

pub struct ScimServer {
    child: Child,
    pub port: u16,
}

fn binary() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("SCIM2_SERVER_BIN") {
        let p = PathBuf::from(p);
        if p.is_file() {
            return Some(p);
        }
    }
    let local = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/scim2-server");
    local.is_file().then_some(local)
}

pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    l.local_addr().expect("local addr").port()
}

impl ScimServer {
    /// Starts a server, or `None` (skip) when it is not installed outside CI.
    pub fn start() -> Option<Self> {
        Self::start_with(&[])
    }

    /// Starts a server with extra arguments.
    pub fn start_with(extra: &[&str]) -> Option<Self> {
        let Some(bin) = binary() else {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!(
                    "scim2-server is not installed (set SCIM2_SERVER_BIN or run scripts/test, which installs it \
                     into .venv); CI=true makes this a failure"
                );
            }
            eprintln!("SKIPPED: scim2-server not found (set SCIM2_SERVER_BIN or run scripts/test)");
            return None;
        };
        for _ in 0..5 {
            let port = free_port();
            let child = Command::new(&bin)
                .args([
                    "--hostname",
                    "127.0.0.1",
                    "--port",
                    &port.to_string(),
                    "--bearer-token",
                    TOKEN,
                ])
                .args(extra)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
            let mut server = ScimServer { child, port };
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                if server.get("/ServiceProviderConfig").0 == 200 {
                    return Some(server);
                }
                if let Ok(Some(_)) = server.child.try_wait() {
                    break; // port taken by someone else: try another
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = server.child.kill();
        }
        panic!("scim2-server did not come up");
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// A plain HTTP/1.0 request, independent of rollcall's client.
    pub fn request(&self, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
        http(self.port, method, path, body)
    }

    pub fn get(&self, path: &str) -> (u16, Value) {
        self.request("GET", path, None)
    }

    /// Every resource of an endpoint, paged.
    pub fn list(&self, endpoint: &str) -> Vec<Value> {
        let mut out = Vec::new();
        let mut start = 1;
        loop {
            let (code, v) = self.get(&format!("{endpoint}?startIndex={start}&count=100"));
            assert_eq!(code, 200, "{v}");
            let page = v["Resources"].as_array().cloned().unwrap_or_default();
            if page.is_empty() {
                return out;
            }
            start += page.len();
            out.extend(page);
        }
    }

    /// Resources by externalId.
    pub fn by_external_id(&self, endpoint: &str) -> std::collections::BTreeMap<String, Value> {
        self.list(endpoint)
            .into_iter()
            .filter_map(|r| Some((r["externalId"].as_str()?.to_string(), r)))
            .collect()
    }
}

impl Drop for ScimServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn http(port: u16, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return (0, Value::Null);
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let req = format!(
        "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {TOKEN}\r\n\
         Content-Type: application/scim+json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    if s.write_all(req.as_bytes()).is_err() {
        return (0, Value::Null);
    }
    let mut resp = Vec::new();
    let _ = s.read_to_end(&mut resp);
    let text = String::from_utf8_lossy(&resp);
    let code = text.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let json = text
        .split_once("\r\n\r\n")
        .and_then(|(_, b)| serde_json::from_str(b).ok())
        .unwrap_or(Value::Null);
    (code, json)
}
