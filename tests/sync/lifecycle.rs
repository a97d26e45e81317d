//! Running rollcall as a service (issue 20), through the real binary:
//! SIGTERM/SIGINT stop `sync run` and the daemon within 2 s against a slow
//! server (claims put back), a second signal forces, SIGHUP reloads the
//! authorities (a bad file keeps the running ones), systemd's notify
//! protocol on a real datagram socket, journald-format logs, rolled log
//! files kept to `logs.max_files`, `/metrics` and `/healthz` read with a real
//! Prometheus text parser, stale schools, and ownership by lock across PID
//! namespaces (`unshare -pf`: rollcall is PID 1 every time); sent items'
//! files kept and reused by the next enqueues (issue 16).

use crate::common::{self, scim::ScimServer};
use serde_json::Value;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

const HEADER: &str = "record_uid,firstname,lastname,email,birthday,classes";

struct Site {
    dir: tempfile::TempDir,
}

impl Site {
    /// A data dir with this config and `users` students of `nord` imported.
    fn new(config: &str, users: usize) -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("data")).unwrap();
        let s = Site { dir };
        s.write_config(config);
        if users > 0 {
            s.import("nord", users, "Alt");
        }
        s
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn write_config(&self, text: &str) {
        std::fs::write(self.data().join("rollcall.toml"), text).unwrap();
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_rollcall"));
        c.arg("--data-dir")
            .arg(self.data())
            .args(args)
            .env_remove("ROLLCALL_DATA_DIR")
            .env_remove("NOTIFY_SOCKET")
            .env_remove("JOURNAL_STREAM")
            .env_remove("WATCHDOG_USEC")
            .env("HOME", self.dir.path())
            .env("XDG_CONFIG_HOME", self.dir.path().join("xdg"));
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    fn json(&self, args: &[&str]) -> Value {
        let mut a = vec!["--json"];
        a.extend_from_slice(args);
        let out = self.run(&a);
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{args:?}: {e}: {}", String::from_utf8_lossy(&out.stderr)))
    }

    fn import(&self, school: &str, users: usize, last: &str) {
        let mut feed = format!("{HEADER}\n");
        for i in 0..users {
            feed.push_str(&format!("{school}{i},Vor{i},{last}{i},,,5a\n"));
        }
        let path = self.dir.path().join(format!("{school}.csv"));
        std::fs::write(&path, feed).unwrap();
        let out = self.run(&[
            "import",
            "--school",
            school,
            "--role",
            "student",
            "--force",
            path.to_str().unwrap(),
        ]);
        assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    }

    fn spawn(&self, args: &[&str]) -> Child {
        self.command(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    fn queue(&self, authority: &str) -> Value {
        let list = self.json(&["queue", "list"]);
        list.as_array()
            .unwrap()
            .iter()
            .find(|q| q["authority"] == authority)
            .cloned()
            .unwrap_or_else(|| panic!("no queue {authority}: {list}"))
    }

    fn claimed(&self, authority: &str) -> usize {
        std::fs::read_dir(self.data().join("queues/out").join(authority).join("claimed"))
            .map(|d| d.count())
            .unwrap_or(0)
    }

    fn log(&self) -> String {
        let mut all = String::new();
        for e in std::fs::read_dir(self.data().join("logs"))
            .into_iter()
            .flatten()
            .flatten()
        {
            if e.file_name().to_string_lossy().starts_with("rollcall.log") {
                all.push_str(&std::fs::read_to_string(e.path()).unwrap_or_default());
            }
        }
        all
    }
}

fn signal(child: &Child, sig: i32) {
    // SAFETY: signalling our own child by its id.
    unsafe {
        libc::kill(child.id() as libc::pid_t, sig);
    }
}

fn wait_for(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits for a child's exit, at most `limit`; its time to exit.
fn exit_within(child: &mut Child, limit: Duration) -> (std::process::ExitStatus, Duration) {
    let t0 = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return (status, t0.elapsed());
        }
        if t0.elapsed() > limit {
            let _ = child.kill();
            panic!("did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A loopback proxy that holds every chunk the client sends for `delay`
/// before passing it on: a server that answers each request slowly.
struct SlowProxy {
    port: u16,
    stop: Arc<AtomicBool>,
}

impl SlowProxy {
    fn start(upstream: u16, delay: Duration) -> Self {
        Self::start_with(upstream, delay, false)
    }

    /// Only writes (POST, PUT, PATCH, DELETE) are slow: discovery, the
    /// probe and lookups answer at once, so a drain claims its items and
    /// then waits on a write.
    fn start_writes(upstream: u16, delay: Duration) -> Self {
        Self::start_with(upstream, delay, true)
    }

    fn start_with(upstream: u16, delay: Duration, writes_only: bool) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let halt = stop.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if halt.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = client else { continue };
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                    continue;
                };
                let (mut c_in, mut s_out) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                let (mut s_in, mut c_out) = (server, client);
                let halt = halt.clone();
                std::thread::spawn(move || {
                    let mut buf = [0u8; 65536];
                    while let Ok(n) = c_in.read(&mut buf) {
                        if n == 0 || halt.load(Ordering::SeqCst) {
                            break;
                        }
                        let write = [&b"POST "[..], b"PUT ", b"PATCH ", b"DELETE "]
                            .iter()
                            .any(|m| buf[..n].starts_with(m));
                        if write || !writes_only {
                            std::thread::sleep(delay);
                        }
                        if s_out.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                    let _ = s_out.shutdown(std::net::Shutdown::Both);
                });
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut s_in, &mut c_out);
                    let _ = c_out.shutdown(std::net::Shutdown::Both);
                });
            }
        });
        SlowProxy { port, stop }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for SlowProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn scim_config(url: &str, token: &Path, workers: usize) -> String {
    format!(
        "[sync]\npoll_seconds = 0.05\n\n[authorities.portal]\nkind = \"scim\"\nurl = \"{url}\"\n\
         token_file = \"{}\"\nschools = [\"*\"]\nworkers = {workers}\ntimeout_seconds = 30.0\n",
        token.display()
    )
}

const EMBEDDED: &str = "[sync]\npoll_seconds = 0.05\n\n[authorities.mirror]\nkind = \"embedded\"\nschools = [\"*\"]\n";

/// SIGTERM (and SIGINT) stop `sync run` and the daemon within 2 s against a
/// server answering each request in 0.3 s; nothing stays claimed and what
/// was not sent is still queued.
#[test]
fn a_stop_signal_ends_sync_and_daemon_within_two_seconds() {
    let Some(server) = ScimServer::start() else { return };
    let proxy = SlowProxy::start(server.port, Duration::from_millis(300));
    let (_t, token) = common::token_file();
    // One request per item (no Bulk), so that each of the three runs has
    // items left to stop in the middle of.
    let config = scim_config(&proxy.url(), &token, 2) + "bulk = false\n";
    let site = Site::new(&config, 120);
    for (args, sig, code) in [
        (&["sync", "run", "--once"][..], libc::SIGTERM, 4),
        (&["daemon"][..], libc::SIGTERM, 0),
        (&["sync", "run", "--once"][..], libc::SIGINT, 4),
    ] {
        let mut child = site.spawn(args);
        wait_for("the first claims", Duration::from_secs(30), || {
            site.claimed("portal") > 0
        });
        std::thread::sleep(Duration::from_millis(700));
        signal(&child, sig);
        let (status, took) = exit_within(&mut child, Duration::from_secs(20));
        let err = String::from_utf8_lossy(&child.wait_with_output().unwrap().stderr).to_string();
        assert_eq!(status.code(), Some(code), "{args:?}: {err}");
        assert!(took < Duration::from_secs(2), "{args:?} took {took:?} to stop");
        assert_eq!(site.claimed("portal"), 0, "{args:?} left claims");
        let after = site.queue("portal")["depth"].as_u64().unwrap();
        assert!(after > 0, "{args:?}: the queue drained before the signal");
        eprintln!("{args:?} stopped in {took:?} ({after} items left)");
    }
}

/// The first signal interrupts a request in flight (issue 18.7): the
/// daemon ends within 1.5 s although the server takes 20 s to answer, its
/// claim goes back to the queue, and the next sender sends it. (A second
/// signal would end the process at once; with every remote request
/// interruptible, the first one already does not wait.)
#[test]
fn the_first_signal_interrupts_a_request_in_flight_and_puts_its_claim_back() {
    let Some(server) = ScimServer::start() else { return };
    let slow = SlowProxy::start_writes(server.port, Duration::from_secs(20));
    let (_t, token) = common::token_file();
    let site = Site::new(&scim_config(&slow.url(), &token, 1), 3);
    let mut child = site.spawn(&["daemon"]);
    wait_for("a claim", Duration::from_secs(30), || site.claimed("portal") > 0);
    // The write is on its way to the server.
    std::thread::sleep(Duration::from_millis(300));
    signal(&child, libc::SIGTERM);
    let (status, took) = exit_within(&mut child, Duration::from_secs(10));
    let err = String::from_utf8_lossy(&child.wait_with_output().unwrap().stderr).to_string();
    assert_eq!(status.code(), Some(0), "{err}");
    assert!(took < Duration::from_millis(1500), "took {took:?} to stop: {err}");
    assert_eq!(site.claimed("portal"), 0, "the interrupted item stayed claimed");
    assert!(
        site.queue("portal")["depth"].as_u64().unwrap() > 0,
        "nothing left: {err}"
    );
    drop(slow);
    site.write_config(&scim_config(&server.url(), &token, 1));
    let out = site.run(&["--json", "sync", "run", "--once"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(site.claimed("portal"), 0);
    assert_eq!(site.queue("portal")["depth"], 0);
    assert_eq!(server.list("/Users").len(), 3);
}

fn mirror_family(site: &Site, mirror: &str, ext: &str) -> Option<String> {
    let conn = rusqlite::Connection::open(site.data().join("mirrors").join(format!("{mirror}.sqlite"))).ok()?;
    let attrs: String = conn
        .query_row("SELECT attributes FROM resources WHERE external_id = ?1", [ext], |r| {
            r.get(0)
        })
        .ok()?;
    let v: Value = serde_json::from_str(&attrs).ok()?;
    v["name"]["familyName"].as_str().map(str::to_string)
}

/// SIGHUP: an added authority receives the next change, a removed one no
/// longer does, a changed one uses its new settings; a broken file is
/// logged and the running configuration stays.
#[test]
fn sighup_reloads_the_authorities_and_a_bad_file_keeps_the_running_ones() {
    // The daemon's authorities come from its own --config file, which is
    // what gets rewritten (imports meanwhile read only the data dir's).
    let site = Site::new("[sync]\npoll_seconds = 0.05\n", 0);
    let conf = site.dir.path().join("daemon.toml");
    std::fs::write(&conf, EMBEDDED).unwrap();
    // The authority exists (from the journal's head) before the import.
    assert!(
        site.run(&["--config", conf.to_str().unwrap(), "queue", "list"])
            .status
            .success()
    );
    site.import("nord", 2, "Alt");
    let mut daemon = site.spawn(&["--config", conf.to_str().unwrap(), "daemon"]);
    let family = |m: &str| mirror_family(&site, m, "district:nord0");
    wait_for("the first sync", Duration::from_secs(30), || family("mirror").is_some());
    // Added.
    std::fs::write(
        &conf,
        format!("{EMBEDDED}\n[authorities.second]\nkind = \"embedded\"\nschools = [\"*\"]\n"),
    )
    .unwrap();
    signal(&daemon, libc::SIGHUP);
    wait_for("the reload", Duration::from_secs(10), || {
        site.log().contains("authorities added: second")
    });
    site.import("nord", 2, "Zwei");
    wait_for("the change on both", Duration::from_secs(30), || {
        family("mirror").as_deref() == Some("Zwei0") && family("second").as_deref() == Some("Zwei0")
    });
    // A broken file: logged, nothing changes, the daemon goes on.
    std::fs::write(&conf, "[authorities.second\nkind = ").unwrap();
    signal(&daemon, libc::SIGHUP);
    wait_for("the refusal", Duration::from_secs(10), || {
        site.log().contains("configuration not reloaded")
    });
    site.import("nord", 2, "Drei");
    wait_for("the change on both", Duration::from_secs(30), || {
        family("mirror").as_deref() == Some("Drei0") && family("second").as_deref() == Some("Drei0")
    });
    // Removed, and the other one changed (deactivated).
    std::fs::write(&conf, format!("{}\nactive = false\n", EMBEDDED.trim_end())).unwrap();
    signal(&daemon, libc::SIGHUP);
    wait_for("the reload", Duration::from_secs(10), || {
        site.log().contains("removed: second; changed: mirror")
    });
    site.import("nord", 2, "Vier");
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        family("second").as_deref(),
        Some("Drei0"),
        "a removed authority got a change"
    );
    assert_eq!(
        family("mirror").as_deref(),
        Some("Drei0"),
        "an inactive authority got a change"
    );
    signal(&daemon, libc::SIGTERM);
    let (status, _) = exit_within(&mut daemon, Duration::from_secs(5));
    assert_eq!(status.code(), Some(0));
}

/// systemd's notify protocol on a real unix datagram socket: READY=1 once
/// up, STATUS lines, WATCHDOG=1 at half of WATCHDOG_USEC, STOPPING=1 on
/// SIGTERM.
#[test]
fn systemd_notify_ready_status_watchdog_and_stopping() {
    use std::os::unix::net::UnixDatagram;
    let site = Site::new(EMBEDDED, 2);
    let sock_path = site.dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    let mut daemon = site
        .command(&["daemon"])
        .env("NOTIFY_SOCKET", &sock_path)
        .env("WATCHDOG_USEC", "400000")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut got: Vec<String> = Vec::new();
    let read_until = |what: &str, got: &mut Vec<String>| {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !got.iter().any(|m| m.lines().any(|l| l.starts_with(what))) {
            assert!(Instant::now() < deadline, "no {what} in {got:?}");
            let mut buf = [0u8; 4096];
            if let Ok(n) = sock.recv(&mut buf) {
                got.push(String::from_utf8_lossy(&buf[..n]).to_string());
            }
        }
    };
    read_until("READY=1", &mut got);
    read_until("STATUS=syncing", &mut got);
    read_until("WATCHDOG=1", &mut got);
    let pings = got.iter().filter(|m| m.contains("WATCHDOG=1")).count();
    signal(&daemon, libc::SIGTERM);
    read_until("STOPPING=1", &mut got);
    let (status, _) = exit_within(&mut daemon, Duration::from_secs(5));
    assert_eq!(status.code(), Some(0));
    assert!(pings >= 1);
}

/// Under systemd (JOURNAL_STREAM names stderr) every log event is one
/// stderr line with its syslog priority; rolled log files are kept to
/// `logs.max_files`.
#[test]
fn journald_lines_on_stderr_and_rolled_logs_kept_to_max_files() {
    use std::os::unix::fs::MetadataExt;
    let site = Site::new(&format!("[logs]\nmax_files = 3\n\n{EMBEDDED}"), 0);
    let logs = site.data().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    for day in 1..=9 {
        std::fs::write(logs.join(format!("rollcall.log.2026-01-0{day}")), "old\n").unwrap();
    }
    let err_path = site.dir.path().join("stderr");
    let err = std::fs::File::create(&err_path).unwrap();
    let meta = err.metadata().unwrap();
    let feed = site.dir.path().join("f.csv");
    std::fs::write(&feed, format!("{HEADER}\n1,Anna,Alt,,,5a\n")).unwrap();
    let status = site
        .command(&[
            "import",
            "--school",
            "sued",
            "--role",
            "student",
            feed.to_str().unwrap(),
        ])
        .env("JOURNAL_STREAM", format!("{}:{}", meta.dev(), meta.ino()))
        .stdout(Stdio::null())
        .stderr(err)
        .status()
        .unwrap();
    assert!(status.success());
    let text = std::fs::read_to_string(&err_path).unwrap();
    let lines: Vec<&str> = text.lines().filter(|l| l.starts_with('<')).collect();
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("<6>rollcall::") && l.contains("created school sued")),
        "{text}"
    );
    assert!(!lines.iter().any(|l| l.contains("\x1b[")), "no colours for the journal");
    let kept = std::fs::read_dir(&logs)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("rollcall.log"))
        .count();
    assert!(kept <= 3, "{kept} log files kept, logs.max_files = 3");
    // Without JOURNAL_STREAM nothing goes to stderr but the command's own words.
    let out = site.run(&["queue", "list"]);
    assert!(!String::from_utf8_lossy(&out.stderr).contains("<6>"));
}

fn get(port: u16, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let code = text.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (code, body)
}

/// Parses with a real Prometheus text-format parser; every metric is named
/// `rollcall_…`.
fn parse(text: &str) -> prometheus_parse::Scrape {
    let lines = text.lines().map(|l| Ok(l.to_string()));
    let scrape = prometheus_parse::Scrape::parse(lines).expect("Prometheus text format");
    assert!(!scrape.samples.is_empty());
    for s in &scrape.samples {
        assert!(s.metric.starts_with("rollcall_"), "{}", s.metric);
    }
    scrape
}

fn value(scrape: &prometheus_parse::Scrape, metric: &str, label: (&str, &str)) -> Option<f64> {
    scrape
        .samples
        .iter()
        .find(|s| s.metric == metric && s.labels.get(label.0) == Some(label.1))
        .map(|s| match s.value {
            prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Untyped(v) => v,
            _ => f64::NAN,
        })
}

#[test]
fn metrics_and_healthz_on_the_daemon_and_as_a_textfile() {
    let site = Site::new(
        &format!(
            "{EMBEDDED}\n[authorities.nowhere]\nkind = \"scim\"\nurl = \"http://127.0.0.1:9/scim\"\ntoken_file = \"/nonexistent\"\nschools = [\"*\"]\n"
        ),
        5,
    );
    let port = common::scim::free_port();
    let addr = format!("127.0.0.1:{port}");
    let mut daemon = site.spawn(&["daemon", "--listen", &addr]);
    wait_for("the listener", Duration::from_secs(20), || {
        TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    wait_for("drained metrics", Duration::from_secs(30), || {
        let (code, body) = get(port, "/metrics");
        code == 200
            && !body.is_empty()
            && value(&parse(&body), "rollcall_sent_total", ("authority", "mirror")).is_some_and(|n| n >= 5.0)
    });
    let (_, body) = get(port, "/metrics");
    let scrape = parse(&body);
    assert!(
        value(&scrape, "rollcall_sent_total", ("authority", "mirror")).unwrap() >= 5.0,
        "{body}"
    );
    assert!(value(&scrape, "rollcall_queue_depth", ("authority", "nowhere")).unwrap() > 0.0);
    assert_eq!(
        value(&scrape, "rollcall_authority_paused", ("authority", "mirror")),
        Some(0.0)
    );
    assert!(
        value(
            &scrape,
            "rollcall_last_successful_send_timestamp_seconds",
            ("authority", "mirror")
        )
        .is_some()
    );
    assert!(value(&scrape, "rollcall_school_last_feed_age_seconds", ("school", "nord")).unwrap() >= 0.0);
    assert_eq!(value(&scrape, "rollcall_school_stale", ("school", "nord")), Some(0.0));
    assert!(value(&scrape, "rollcall_last_run_duration_seconds", ("kind", "import")).is_some());
    for name in [
        "rollcall_queue_backoff",
        "rollcall_trash_items",
        "rollcall_failed_total",
        "rollcall_queue_oldest_item_age_seconds",
    ] {
        assert!(scrape.samples.iter().any(|s| s.metric == name), "no {name}: {body}");
    }
    assert_eq!(get(port, "/healthz").0, 200);
    assert_eq!(get(port, "/nothing").0, 404);
    signal(&daemon, libc::SIGTERM);
    let (status, _) = exit_within(&mut daemon, Duration::from_secs(5));
    assert_eq!(status.code(), Some(0));
    // The same without an open port.
    let file = site.dir.path().join("textfile/rollcall.prom");
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    let out = site.run(&["metrics", "--textfile", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let scrape = parse(&std::fs::read_to_string(&file).unwrap());
    assert_eq!(
        value(&scrape, "rollcall_queue_depth", ("authority", "mirror")),
        Some(0.0)
    );
    assert_eq!(
        std::fs::read_dir(file.parent().unwrap()).unwrap().count(),
        1,
        "no temp file left"
    );
}

/// `schools list` (table and JSON) shows each school's last feed and flags
/// the ones older than `import.stale_after_days`.
#[test]
fn stale_schools_are_flagged() {
    let site = Site::new(EMBEDDED, 2);
    let list = site.json(&["schools", "list"]);
    let nord = list
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "nord")
        .unwrap()
        .clone();
    assert_eq!(nord["stale"], false, "{nord}");
    assert!(nord["last_feed_at"].is_string());
    std::thread::sleep(Duration::from_millis(1100));
    let list = site.json(&["--set", "import.stale_after_days=0", "schools", "list"]);
    let nord = list
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "nord")
        .unwrap()
        .clone();
    assert_eq!(nord["stale"], true, "{nord}");
    assert!(nord["last_feed_age_seconds"].as_i64().unwrap() >= 1);
    let out = site.run(&["--set", "import.stale_after_days=0", "schools", "list"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("STALE"));
    assert!(String::from_utf8_lossy(&out.stderr).contains("import.stale_after_days"));
}

/// The container case: `unshare -pf` makes rollcall PID 1 every
/// time. A sender killed mid-drain leaves claims named after PID 1; the
/// next one — PID 1 again — must take them back, because no lock holds
/// them. Needs root (user namespaces are not used); skipped elsewhere
/// outside CI.
#[test]
fn claims_of_a_killed_pid_1_come_back_in_a_new_pid_namespace() {
    if !unshare_works() {
        let ci = std::env::var("CI").is_ok_and(|v| v == "true");
        assert!(!(ci && is_root()), "unshare -pf fails as root in CI");
        eprintln!("SKIPPED: unshare -pf does not work here");
        return;
    }
    let Some(server) = ScimServer::start() else { return };
    let slow = SlowProxy::start_writes(server.port, Duration::from_secs(30));
    let (_t, token) = common::token_file();
    let site = Site::new(&scim_config(&slow.url(), &token, 1), 3);
    let bin = env!("CARGO_BIN_EXE_rollcall");
    let in_namespace = |args: &[&str]| {
        let mut c = Command::new("unshare");
        c.args(["-pf", "--kill-child", bin, "--data-dir"])
            .arg(site.data())
            .args(args)
            .env("HOME", site.dir.path())
            .env("XDG_CONFIG_HOME", site.dir.path().join("xdg"))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        c
    };
    let mut first = in_namespace(&["sync", "run", "--once"]).spawn().unwrap();
    wait_for("a claim", Duration::from_secs(30), || site.claimed("portal") > 0);
    let claims: Vec<String> = std::fs::read_dir(site.data().join("queues/out/portal/claimed"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .collect();
    assert!(
        claims.iter().all(|c| c.starts_with("p1-")),
        "PID 1 in its namespace: {claims:?}"
    );
    first.kill().unwrap();
    first.wait().unwrap();
    drop(slow);
    site.write_config(&scim_config(&server.url(), &token, 1));
    let out = in_namespace(&["--json", "sync", "run", "--once"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(site.claimed("portal"), 0, "a claim of the killed PID 1 stayed");
    assert_eq!(site.queue("portal")["depth"], 0);
    assert_eq!(server.list("/Users").len(), 3);
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

fn unshare_works() -> bool {
    Command::new("unshare")
        .args(["-pf", "true"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Disk full (issue 18.8): temp files a dead writer left in a queue are
/// shown by `queue list` and removed before anything else when rollcall
/// starts.
#[test]
fn dead_writers_temp_files_are_shown_and_cleaned_first() {
    let site = Site::new(EMBEDDED, 2);
    assert_eq!(site.queue("mirror")["temp_files"], 0);
    let tmp = site.data().join("queues/out/mirror/.tmp");
    // As a writer killed mid-write (or stopped by a full disk) leaves them:
    // an old-style PID owner and an owner whose lock nobody holds.
    std::fs::write(tmp.join("4242.123.1-user-x.json"), "{\"half").unwrap();
    std::fs::write(tmp.join("p7-0000dead.9.1-user-y.json"), "{\"half").unwrap();
    // Where writers put them now: one of .tmp/'s subfolders.
    std::fs::create_dir_all(tmp.join("3")).unwrap();
    std::fs::write(tmp.join("3/p7-0000dead.10.1-user-z.json"), "{\"half").unwrap();
    let list = site.run(&["queue", "list"]);
    let text = String::from_utf8_lossy(&list.stdout);
    assert!(text.contains("TEMP"), "{text}");
    // `queue list` opened an engine, which cleaned them before it counted.
    assert_eq!(site.queue("mirror")["temp_files"], 0);
    let files = |dir: &std::path::Path| {
        std::fs::read_dir(dir)
            .unwrap()
            .filter(|e| e.as_ref().unwrap().path().is_file())
            .count()
    };
    assert_eq!(files(&tmp) + files(&tmp.join("3")), 0);
}

/// Sent items' files are kept for the next enqueues (issue 16): `queue list
/// --json` counts them as `spent_files`, the next changes' items take them
/// back (so the pool does not grow), and those items still reach the target
/// intact.
#[test]
fn sent_items_files_are_kept_and_taken_back_by_the_next_changes() {
    let site = Site::new(EMBEDDED, 30);
    assert_eq!(site.queue("mirror")["spent_files"], 0);
    let out = site.run(&["sync", "run", "--once"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let q = site.queue("mirror");
    assert_eq!(q["depth"], 0, "{q}");
    let spent = q["spent_files"].as_u64().unwrap();
    assert!(spent >= 30, "every sent file kept: {q}");

    // Everybody's last name changes: 30 user items, each written into a
    // spent file and kept again once sent.
    site.import("nord", 30, "Neu");
    let out = site.run(&["--json", "sync", "run", "--once"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let run: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(run["authorities"][0]["sent"].as_u64().unwrap_or(0) >= 30, "{run}");
    let q = site.queue("mirror");
    assert_eq!(q["depth"], 0, "{q}");
    assert_eq!(q["temp_files"], 0, "{q}");
    assert_eq!(
        q["spent_files"].as_u64(),
        Some(spent),
        "the pool was reused, not grown: {q}"
    );
    let out = site.run(&["--json", "verify", "users", "--authority", "mirror"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "the mirror holds the new names: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
