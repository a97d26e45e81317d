//! A throwaway scim2-server for the sync and verify benchmarks: its binary,
//! a free port, the process (killed on drop), the bearer token file, and
//! the minimal client the benches measure against (one request per
//! connection).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const TOKEN: &str = "bench-token";

/// The running server; killed when dropped.
pub struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `SCIM2_SERVER_BIN`, else the project's venv; `None` when absent.
pub fn bin() -> Option<PathBuf> {
    let bin = std::env::var("SCIM2_SERVER_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/scim2-server"));
    bin.is_file().then_some(bin)
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("port")
        .local_addr()
        .expect("addr")
        .port()
}

/// Starts the server on `port` with these tenants (none: the root) and
/// waits until it accepts connections.
pub fn start(bin: &Path, port: u16, tenants: &[&str]) -> Server {
    let mut cmd = Command::new(bin);
    cmd.args(["--port", &port.to_string(), "--bearer-token", TOKEN]);
    for t in tenants {
        cmd.args(["--tenant", t]);
    }
    let server = Server(
        cmd.stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start scim2-server"),
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "scim2-server did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    server
}

/// Writes the bearer token to `dir/token` with mode 0600; its path.
pub fn token_file(dir: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let token = dir.join("token");
    std::fs::write(&token, TOKEN).expect("token");
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    token
}

/// One request on a fresh connection (as a minimal client would): the
/// status and the body.
pub fn request(port: u16, method: &str, path: &str, body: &str) -> (u16, Vec<u8>) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {TOKEN}\r\n\
         Accept: application/scim+json\r\nContent-Type: application/scim+json\r\n\
         Connection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).expect("write");
    let mut resp = Vec::new();
    s.read_to_end(&mut resp).expect("read");
    let status = String::from_utf8_lossy(&resp[..resp.len().min(32)])
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let at = resp
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(resp.len(), |i| i + 4);
    (status, resp.split_off(at))
}

/// Percent-encodes a query parameter's value.
pub fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
