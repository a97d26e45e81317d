//! Test support: real third-party SCIM servers on random loopback ports
//! with a bearer token, stopped when dropped.
//!
//! * `scim2-server` (PyPI), found through `SCIM2_SERVER_BIN`, else
//!   `.venv/bin/scim2-server` of this checkout;
//! * SCIMMY (npm: `scimmy` + `scimmy-routers` on Express), an independent
//!   implementation, through the glue in `tests/scim-servers/scimmy/`
//!   (`npm ci` there installs it; `scripts/test` does). Started without
//!   the enterprise User extension unless asked, and with `--raw` as a
//!   server whose paging is broken (a `startIndex` past the end answers
//!   the first page again; `itemsPerPage` says the count asked for).
//!
//! Missing: with `CI=true` the test fails; otherwise it is skipped with a
//! message.

use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const TOKEN: &str = "test-token-7f3a";

/// Which server implementation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// scim2-server (Python): every feature declared, Bulk included.
    Scim2Server,
    /// SCIMMY (Node): no Bulk, no enterprise extension by default.
    Scimmy,
}

/// How a server is started.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Flavour {
    pub kind: Kind,
    /// SCIMMY: declare the enterprise User extension.
    pub enterprise: bool,
    /// SCIMMY: its own paging (a start past the end repeats the first page).
    pub raw: bool,
}

impl Kind {
    pub fn flavour(self) -> Flavour {
        Flavour {
            kind: self,
            enterprise: false,
            raw: false,
        }
    }
}

pub struct ScimServer {
    child: Child,
    pub port: u16,
    /// The path the SCIM endpoints live under (`/scim/v2` for SCIMMY).
    pub base: String,
    pub kind: Kind,
}

fn required() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
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

/// The SCIMMY glue folder, when its packages are installed.
fn scimmy_dir() -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/scim-servers/scimmy");
    let installed = dir.join("node_modules/scimmy").is_dir() && dir.join("node_modules/express").is_dir();
    let node = Command::new("node")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    (installed && node).then_some(dir)
}

pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    l.local_addr().expect("local addr").port()
}

fn missing(what: &str, how: &str) -> Option<ScimServer> {
    if required() {
        panic!("{what} is not installed ({how}); CI=true makes this a failure");
    }
    eprintln!("SKIPPED: {what} not found ({how})");
    None
}

impl ScimServer {
    /// Starts scim2-server, or `None` (skip) when it is not installed outside CI.
    pub fn start() -> Option<Self> {
        Self::start_with(&[])
    }

    /// Starts a server of this kind with its defaults.
    pub fn start_kind(kind: Kind) -> Option<Self> {
        Self::start_flavour(kind.flavour())
    }

    pub fn start_flavour(f: Flavour) -> Option<Self> {
        match f.kind {
            Kind::Scim2Server => Self::start_with(&[]),
            Kind::Scimmy => Self::start_scimmy(f.enterprise, f.raw),
        }
    }

    /// Starts scim2-server with extra arguments.
    pub fn start_with(extra: &[&str]) -> Option<Self> {
        let Some(bin) = binary() else {
            return missing(
                "scim2-server",
                "set SCIM2_SERVER_BIN or run scripts/test, which installs it into .venv",
            );
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
            let mut server = ScimServer {
                child,
                port,
                base: String::new(),
                kind: Kind::Scim2Server,
            };
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

    /// Starts SCIMMY; it picks its own port and says which.
    fn start_scimmy(enterprise: bool, raw: bool) -> Option<Self> {
        let Some(dir) = scimmy_dir() else {
            return missing(
                "SCIMMY (node and tests/scim-servers/scimmy/node_modules)",
                "run `npm ci` in tests/scim-servers/scimmy, or scripts/test",
            );
        };
        let mut cmd = Command::new("node");
        cmd.current_dir(&dir)
            .args(["server.mjs", "--port", "0", "--host", "127.0.0.1", "--token", TOKEN]);
        if enterprise {
            cmd.arg("--enterprise");
        }
        if raw {
            cmd.arg("--raw");
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start node: {e}"));
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx.recv_timeout(Duration::from_secs(30)).unwrap_or_default();
        let Some(url) = line.trim().strip_prefix("LISTENING ") else {
            let _ = child.kill();
            panic!("SCIMMY did not come up: {line:?}");
        };
        let rest = url.strip_prefix("http://127.0.0.1:").expect("loopback url");
        let (port, base) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        Some(ScimServer {
            child,
            port: port.parse().expect("port"),
            base: base.to_string(),
            kind: Kind::Scimmy,
        })
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}{}", self.port, self.base)
    }

    /// A plain HTTP/1.0 request, independent of rollcall's client.
    pub fn request(&self, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
        http(self.port, method, &format!("{}{path}", self.base), body)
    }

    pub fn get(&self, path: &str) -> (u16, Value) {
        self.request("GET", path, None)
    }

    /// Every resource of an endpoint, paged by startIndex and totalResults.
    pub fn list(&self, endpoint: &str) -> Vec<Value> {
        let mut out = Vec::new();
        let mut start = 1;
        loop {
            let (code, v) = self.get(&format!("{endpoint}?startIndex={start}&count=100"));
            assert_eq!(code, 200, "{v}");
            let total = v["totalResults"].as_u64().unwrap_or(0) as usize;
            let page = v["Resources"].as_array().cloned().unwrap_or_default();
            if page.is_empty() || start > total {
                return out;
            }
            start += page.len();
            out.extend(page);
            if out.len() >= total {
                return out;
            }
        }
    }

    /// Resources by externalId.
    pub fn by_external_id(&self, endpoint: &str) -> std::collections::BTreeMap<String, Value> {
        self.list(endpoint)
            .into_iter()
            .filter_map(|r| Some((r["externalId"].as_str()?.to_string(), r)))
            .collect()
    }

    /// PATCH one resource (any status).
    pub fn patch(&self, path: &str, ops: Value) -> u16 {
        let body = serde_json::json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": ops});
        self.request("PATCH", path, Some(&body)).0
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
         Content-Type: application/scim+json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
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
