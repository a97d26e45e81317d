//! Trust nothing at the edges: the real `rollcall` binary against the
//! hostile SCIM server (`tests/common/hostile.rs`), one test per mode. Each
//! asserts that nothing foreign was written, that no success was counted
//! without evidence, that the process's peak memory stayed under 200 MB
//! (`VmHWM` of the rollcall process), and that the run ended
//! within its bound. RELIABILITY.md ("Hostile SCIM servers") has the figures.

use crate::common;

use common::hostile::{Hostile, Mode, Sink};
use common::measured::{self, Measured};
use common::scim::ScimServer;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

const MAX_RSS: u64 = 200 << 20;
const USERS: usize = 20;

struct Case {
    dir: tempfile::TempDir,
    hostile: Hostile,
    upstream: Option<ScimServer>,
    _sink: Option<Sink>,
}

impl Case {
    /// A data dir whose authority `hostile` points at a hostile server in
    /// `mode` (forwarding to a fresh scim2-server when `upstream`), with
    /// 20 students in two classes queued for it.
    fn new(mode: Mode, upstream: bool, sink: Option<Sink>, extra: &str) -> Option<Self> {
        Self::with_timeout(mode, upstream, sink, extra, 5.0)
    }

    fn with_timeout(mode: Mode, upstream: bool, sink: Option<Sink>, extra: &str, timeout: f64) -> Option<Self> {
        let upstream = if upstream { Some(ScimServer::start()?) } else { None };
        let hostile = Hostile::start(mode, upstream.as_ref().map(|s| s.port), sink.as_ref());
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir_all(&data).unwrap();
        let token = dir.path().join("token");
        std::fs::write(&token, common::scim::TOKEN).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::write(
            data.join("rollcall.toml"),
            format!(
                "[authorities.hostile]\nkind = \"scim\"\nurl = \"{}\"\ntoken_file = \"{}\"\n\
                 schools = [\"gsmitte\"]\nmax_attempts = 2\ntimeout_seconds = {timeout}\n{extra}\n\
                 [authorities.hostile.retry]\nbase_seconds = 0.2\nmax_seconds = 0.4\n",
                hostile.url(),
                token.display()
            ),
        )
        .unwrap();
        let mut feed = String::from("record_uid,firstname,lastname,email,birthday,classes\n");
        for i in 1..=USERS {
            feed.push_str(&format!("{i},F{i},L{i},,,{}\n", if i % 2 == 0 { "5a" } else { "5b" }));
        }
        let file = dir.path().join("feed.csv");
        std::fs::write(&file, feed).unwrap();
        let c = Case {
            dir,
            hostile,
            upstream,
            _sink: sink,
        };
        let out = c.run(
            &[
                "import",
                "--school",
                "gsmitte",
                "--role",
                "student",
                file.to_str().unwrap(),
            ],
            Duration::from_secs(60),
        );
        assert_eq!(out.code, Some(0), "{}", out.stderr_text());
        Some(c)
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_rollcall"));
        cmd.arg("--data-dir")
            .arg(self.data())
            .args(args)
            .env_remove("ROLLCALL_DATA_DIR")
            .env("HOME", self.dir.path())
            .env("XDG_CONFIG_HOME", self.dir.path().join("xdg"));
        cmd
    }

    fn run(&self, args: &[&str], limit: Duration) -> Measured {
        measured::run(self.command(args), limit)
    }

    /// `sync run --once --json` with this `--max-wait`; checks memory and
    /// the time bound.
    fn sync(&self, max_wait: u64, bound: Duration) -> (Measured, Value) {
        let out = self.run(
            &["--json", "sync", "run", "--once", "--max-wait", &max_wait.to_string()],
            bound + Duration::from_secs(30),
        );
        report("sync run --once", &out);
        assert!(out.max_rss < MAX_RSS, "max RSS {} bytes", out.max_rss);
        assert!(out.elapsed < bound, "took {:?} (bound {bound:?})", out.elapsed);
        let v = out.json();
        (out, v)
    }

    fn trash(&self) -> Vec<Value> {
        let out = self.run(&["--json", "trash", "list"], Duration::from_secs(30));
        out.json().as_array().cloned().unwrap_or_default()
    }
}

/// One line per measured run (RELIABILITY.md takes its figures from it).
fn report(what: &str, out: &Measured) {
    eprintln!(
        "FIGURE {what}: exit {:?} in {:.2} s, max RSS {:.1} MiB",
        out.code,
        out.elapsed.as_secs_f64(),
        out.max_rss as f64 / (1 << 20) as f64
    );
}

/// Nothing was counted as done.
fn nothing_succeeded(v: &Value) {
    let a = &v["authorities"][0];
    assert_eq!(a["sent"], 0, "{v}");
    assert_eq!(a["applied"], json!({}), "{v}");
}

fn without_meta(mut v: Value) -> Value {
    if let Some(o) = v.as_object_mut() {
        o.remove("meta");
    }
    v
}

#[test]
fn a_server_that_ignores_filter_gets_nothing_written() {
    let Some(case) = Case::new(Mode::FilterIgnored, true, None, "") else {
        return;
    };
    let up = case.upstream.as_ref().unwrap();
    let (code, victim) = up.request(
        "POST",
        "/Users",
        Some(&json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": "victim", "externalId": "other:victim", "name": {"familyName": "Opfer"}})),
    );
    assert_eq!(code, 201);
    let (out, v) = case.sync(10, Duration::from_secs(20));
    assert_eq!(out.code, Some(5), "items went to trash: {v}");
    nothing_succeeded(&v);
    assert_eq!(v["trashed"], json!(USERS + 3), "{v}");
    // The foreign account is exactly as it was, and no group lists it.
    let users = up.list("/Users");
    assert_eq!(users.len(), 1, "{users:?}");
    assert_eq!(without_meta(users[0].clone()), without_meta(victim));
    assert!(up.list("/Groups").is_empty());
    for t in case.trash() {
        let e = t["error"].as_str().unwrap();
        assert!(e.contains("does not apply the filter"), "{e}");
    }
}

#[test]
fn an_empty_200_is_no_success() {
    let Some(case) = Case::new(Mode::Empty200, false, None, "") else {
        return;
    };
    let (out, v) = case.sync(10, Duration::from_secs(20));
    assert_eq!(out.code, Some(5), "{v}");
    nothing_succeeded(&v);
    for t in case.trash() {
        assert!(t["error"].as_str().unwrap().contains("empty body"), "{t}");
    }
}

#[test]
fn a_create_answered_without_an_id_is_no_success() {
    let Some(case) = Case::new(Mode::NoId, true, None, "") else {
        return;
    };
    let (out, v) = case.sync(10, Duration::from_secs(20));
    assert_eq!(out.code, Some(5), "{v}");
    nothing_succeeded(&v);
    assert!(case.upstream.as_ref().unwrap().list("/Users").is_empty());
    let trash = case.trash();
    assert!(
        trash
            .iter()
            .any(|t| t["error"].as_str().unwrap().contains("without an id or a Location")),
        "{trash:?}"
    );
}

#[test]
fn a_huge_body_is_not_read() {
    let Some(case) = Case::new(Mode::HugeBody, false, None, "") else {
        return;
    };
    let (out, v) = case.sync(10, Duration::from_secs(20));
    assert_eq!(out.code, Some(5), "{v}");
    nothing_succeeded(&v);
    for t in case.trash() {
        assert!(t["error"].as_str().unwrap().contains("max_response_bytes"), "{t}");
    }
}

#[test]
fn an_endless_chunked_answer_is_cut_at_max_response_bytes() {
    let Some(case) = Case::new(Mode::EndlessChunked, false, None, "") else {
        return;
    };
    let (out, v) = case.sync(10, Duration::from_secs(60));
    assert_eq!(out.code, Some(5), "{v}");
    nothing_succeeded(&v);
    for t in case.trash() {
        assert!(t["error"].as_str().unwrap().contains("max_response_bytes"), "{t}");
    }
}

#[test]
fn endless_paging_ends_at_the_first_total() {
    let Some(case) = Case::new(Mode::EndlessPaging, false, None, "") else {
        return;
    };
    let out = case.run(
        &["--json", "verify", "users", "--authority", "hostile"],
        Duration::from_secs(60),
    );
    report("verify users", &out);
    assert!(out.max_rss < MAX_RSS, "{}", out.max_rss);
    assert!(out.elapsed < Duration::from_secs(20), "{:?}", out.elapsed);
    assert_eq!(out.code, Some(1), "{}", out.stderr_text());
    let v = out.json();
    // The first page said 401 in all: so many were read, none of them ours.
    assert_eq!(v["foreign"], 401, "{v}");
    assert_eq!(v["counts"]["missing"], json!(USERS), "{v}");
    let requests = case
        .hostile
        .counters()
        .requests
        .load(std::sync::atomic::Ordering::SeqCst);
    assert!(requests < 10, "{requests} requests");
}

#[test]
fn an_absurd_totalresults_is_refused() {
    let Some(case) = Case::new(Mode::AbsurdTotals, true, None, "") else {
        return;
    };
    let out = case.run(&["verify", "users", "--authority", "hostile"], Duration::from_secs(60));
    report("verify users", &out);
    assert!(out.max_rss < MAX_RSS, "{}", out.max_rss);
    assert_eq!(out.code, Some(1), "{}", out.stderr_text());
    assert!(
        out.stderr_text().contains("more than max_listing"),
        "{}",
        out.stderr_text()
    );
}

#[test]
fn a_redirect_is_not_followed() {
    let sink = Sink::start();
    let connections = sink.connections.clone();
    let Some(case) = Case::new(Mode::Redirect, false, Some(sink), "") else {
        return;
    };
    let (out, v) = case.sync(10, Duration::from_secs(20));
    assert_eq!(out.code, Some(4), "{v}");
    nothing_succeeded(&v);
    let why = v["authorities"][0]["incomplete"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(why.contains("redirect"), "{why}");
    assert_eq!(connections.load(std::sync::atomic::Ordering::SeqCst), 0);
}

#[test]
fn a_redirect_to_another_host_is_not_followed_even_when_allowed() {
    let sink = Sink::start();
    let connections = sink.connections.clone();
    let Some(case) = Case::new(Mode::Redirect, false, Some(sink), "follow_redirects = true") else {
        return;
    };
    let (out, v) = case.sync(10, Duration::from_secs(20));
    assert_eq!(out.code, Some(4), "{v}");
    nothing_succeeded(&v);
    assert_eq!(connections.load(std::sync::atomic::Ordering::SeqCst), 0);
}

#[test]
fn a_huge_error_detail_is_capped_in_trash_and_logs() {
    let Some(case) = Case::new(Mode::HugeErrorDetail, true, None, "") else {
        return;
    };
    let (out, v) = case.sync(10, Duration::from_secs(30));
    assert_eq!(out.code, Some(5), "{v}");
    nothing_succeeded(&v);
    let trash = case.trash();
    assert_eq!(trash.len(), USERS + 3);
    for t in &trash {
        let e = t["error"].as_str().unwrap();
        assert!(e.len() < 5000, "{} bytes", e.len());
        assert!(
            e.contains("bytes"),
            "the size is noted: {}",
            &e[e.len().saturating_sub(200)..]
        );
    }
    let listed = case.run(&["trash", "list"], Duration::from_secs(30));
    report("trash list", &listed);
    eprintln!(
        "FIGURE trash list printed {} bytes for {} items",
        listed.stdout.len(),
        trash.len()
    );
    assert!(
        listed.stdout.len() < 200_000,
        "trash list printed {} bytes",
        listed.stdout.len()
    );
    let size = |dir: PathBuf| -> u64 {
        walk(&dir)
            .iter()
            .map(|p| p.metadata().map(|m| m.len()).unwrap_or(0))
            .sum()
    };
    let (logs, trash_dir, runs) = (
        size(case.data().join("logs")),
        size(case.data().join("queues/out/hostile/trash")),
        size(case.data().join("runs")),
    );
    eprintln!("FIGURE 20 MB details: logs {logs} bytes, trash {trash_dir} bytes, runs {runs} bytes");
    assert!(logs < 1 << 20, "logs");
    assert!(trash_dir < 1 << 20, "trash");
    assert!(runs < 4 << 20, "runs");
}

fn walk(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// The items of the queue (pending and retrying) with their attempts.
fn attempts(case: &Case) -> Vec<u64> {
    let out = case.run(&["--json", "queue", "show", "hostile"], Duration::from_secs(30));
    out.json()
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|i| i["attempts"].as_u64().unwrap_or(99))
        .collect()
}

fn claimed(case: &Case) -> usize {
    walk(&case.data().join("queues/out/hostile/claimed")).len()
}

#[test]
fn a_round_of_timeouts_pauses_the_authority_without_spending_attempts() {
    let Some(case) = Case::with_timeout(Mode::Silent, false, None, "", 1.0) else {
        return;
    };
    let (out, v) = case.sync(10, Duration::from_secs(10));
    assert_eq!(out.code, Some(4), "{v}");
    nothing_succeeded(&v);
    let left = attempts(&case);
    assert_eq!(left.len(), USERS + 3);
    assert!(left.iter().all(|a| *a == 0), "{left:?}");
    let q = case.run(&["--json", "queue", "list"], Duration::from_secs(30)).json();
    let reason = q[0]["paused"]["reason"].as_str().unwrap_or_default().to_string();
    assert!(reason.contains("stalled"), "{q}");
}

#[test]
fn max_wait_bounds_a_run_against_a_server_that_never_answers() {
    let Some(case) = Case::with_timeout(Mode::Silent, false, None, "", 30.0) else {
        return;
    };
    let (out, v) = case.sync(3, Duration::from_secs(8));
    assert_eq!(out.code, Some(4), "{v}");
    let left = attempts(&case);
    assert_eq!(left.len(), USERS + 3);
    assert!(left.iter().all(|a| *a == 0), "{left:?}");
    assert_eq!(claimed(&case), 0);
}

#[test]
fn sigterm_interrupts_a_request_in_flight() {
    let Some(case) = Case::with_timeout(Mode::Silent, false, None, "", 30.0) else {
        return;
    };
    let child = case
        .command(&["sync", "run", "--once", "--max-wait", "60"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let counters = case.hostile.counters();
    let t0 = std::time::Instant::now();
    while counters.requests.load(std::sync::atomic::Ordering::SeqCst) == 0 {
        assert!(t0.elapsed() < Duration::from_secs(20), "no request reached the server");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(300));
    // SAFETY: signals our own child.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    let t1 = std::time::Instant::now();
    let mut child = child;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(t1.elapsed() < Duration::from_secs(5), "still running 5 s after SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    };
    eprintln!(
        "FIGURE SIGTERM: stopped {:.2} s after the signal ({status})",
        t1.elapsed().as_secs_f64()
    );
    let left = attempts(&case);
    assert_eq!(left.len(), USERS + 3, "every item is back in the queue");
    assert!(left.iter().all(|a| *a == 0), "{left:?}");
    assert_eq!(claimed(&case), 0);
}
