//! Feed intake through the real binary: `rollcall daemon` watching a drop
//! folder and serving the upload API, driven by files, `mv` and a real
//! HTTP client.

mod http;
mod inbox;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub const HEADER: &str = "record_uid,firstname,lastname,email,birthday,classes,role,schools";

/// A CSV feed of `n` students `{prefix}{i}`.
pub fn feed(prefix: &str, n: usize) -> String {
    let mut text = String::from(HEADER);
    text.push('\n');
    for i in 0..n {
        text.push_str(&format!("{prefix}{i},Vor{i},Nach{i},,,\"1a\",,\n"));
    }
    text
}

/// A data dir whose imports hash initial passwords cheaply ({SSHA256}):
/// SHA-512 crypt's 5,000 rounds per new user would make these tests slow
/// in a debug build, and they are not what is tested here.
pub fn data_dir(tmp: &Path) -> PathBuf {
    let data = tmp.join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("rollcall.toml"), "[import]\npassword_scheme = \"ssha256\"\n").unwrap();
    data
}

/// A running `rollcall daemon`; stopped (SIGTERM, then kill) when dropped.
pub struct Daemon {
    child: Option<Child>,

    pub http: Option<SocketAddr>,
}

/// The `--set`s every intake test uses: quick scans, a short settle.
pub fn quick(settle: f64) -> Vec<String> {
    vec![
        format!("intake.settle_secs={settle}"),
        "intake.scan_secs=0.1".into(),
        "sync.poll_seconds=0.2".into(),
    ]
}

pub fn rollcall(data: &Path, sets: &[String], args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rollcall"));
    cmd.arg("--data-dir").arg(data);
    for s in sets {
        cmd.arg("--set").arg(s);
    }
    cmd.args(args).env("NO_COLOR", "1").output().expect("run rollcall")
}

impl Daemon {
    /// Starts the daemon and waits until it runs (and listens, when
    /// `intake.http.listen` is set).
    pub fn start(data: &Path, sets: &[String]) -> Daemon {
        Self::try_start(data, sets).unwrap_or_else(|e| panic!("the daemon did not start: {e}"))
    }

    /// Starts it; `Err` with its stderr when it exits instead.
    pub fn try_start(data: &Path, sets: &[String]) -> Result<Daemon, String> {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_rollcall"));
        cmd.arg("--data-dir").arg(data);
        for s in sets {
            cmd.arg("--set").arg(s);
        }
        let mut child = cmd
            .arg("daemon")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn the daemon");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let wants_http = sets.iter().any(|s| s.starts_with("intake.http.listen="));
        let mut http = None;
        let mut said = String::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(line) => {
                    said.push_str(&line);
                    said.push('\n');
                    if let Some(rest) = line.split("feed uploads on ").nth(1) {
                        http = rest.split_whitespace().next().and_then(|a| a.parse().ok());
                    }
                    if said.contains("syncing") && (!wants_http || http.is_some()) {
                        break;
                    }
                }
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(said);
                }
            }
        }
        // Keep draining stderr so the daemon never blocks on it.
        std::thread::spawn(move || while rx.recv().is_ok() {});
        Ok(Daemon {
            child: Some(child),

            http,
        })
    }

    /// Kills it hard (`kill -9`): whatever it was doing stops mid-way.
    pub fn kill(mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM, and waits for it to exit.
    pub fn stop(mut self) {
        self.terminate();
    }

    fn terminate(&mut self) {
        if let Some(mut c) = self.child.take() {
            // SAFETY: signalling our own child.
            unsafe {
                libc::kill(c.id() as libc::pid_t, libc::SIGTERM);
            }
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.terminate();
    }
}

/// Waits for `what` (polled every 50 ms), at most `secs`.
pub fn wait_for(secs: u64, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The import runs of the data dir, newest first (`runs list --json`).
pub fn import_runs(data: &Path) -> Vec<serde_json::Value> {
    let out = rollcall(
        data,
        &[],
        &["runs", "list", "--kind", "import", "--json", "--limit", "1000"],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("runs list --json")
}

/// The users of `school` (`users list --json`), by record uid.
pub fn users_of(data: &Path, school: &str) -> Vec<String> {
    let out = rollcall(data, &[], &["users", "list", "--school", school, "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("users list --json");
    let mut uids: Vec<String> = v
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|u| u["record_uid"].as_str().map(str::to_string))
        .collect();
    uids.sort();
    uids
}

/// Whether `needle` appears in any file under `dir` (gzip archives are
/// looked into too).
pub fn appears_under(dir: &Path, needle: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for e in entries.filter_map(|e| e.ok()) {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            let Ok(mut bytes) = std::fs::read(&p) else { continue };
            if p.extension().is_some_and(|x| x == "gz") {
                let mut out = Vec::new();
                if std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&bytes[..]), &mut out).is_ok() {
                    bytes = out;
                }
            }
            if bytes.windows(needle.len()).any(|w| w == needle.as_bytes()) {
                found.push(p);
            }
        }
    }
    found
}
