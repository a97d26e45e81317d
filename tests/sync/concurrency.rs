//! Several admins and a daemon at once (issue 18.5): every writer waits for
//! SQLite's lock instead of failing with "database is locked", and two
//! imports of one school serialize. Through the real binary, as admins run it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

struct Site {
    dir: tempfile::TempDir,
}

const HEADER: &str = "record_uid,firstname,lastname,email,birthday,classes";

/// A feed of `n` students of `school`, variant `v` (names and classes move).
fn feed(school: &str, n: usize, v: usize) -> String {
    let mut out = format!("{HEADER}\n");
    for i in 0..n {
        // Variant 1 drops five users (not more: the removal guard) and renames every fifth.
        if v == 1 && i % 13 == 3 {
            continue;
        }
        let last = if v == 1 && i % 5 == 0 { "Neu" } else { "Alt" };
        out.push_str(&format!(
            "{school}-{i},Vor{i},{last}{i},,,{}{}\n",
            5 + i % 4,
            ["a", "b"][v % 2]
        ));
    }
    out
}

impl Site {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir_all(&data).unwrap();
        std::fs::write(
            data.join("rollcall.toml"),
            "[sync]\npoll_seconds = 0.05\n\n[authorities.mirror]\nkind = \"embedded\"\nschools = [\"*\"]\n",
        )
        .unwrap();
        let s = Site { dir };
        for school in ["nord", "sued", "mitte"] {
            for v in 0..2 {
                std::fs::write(s.feed_path(school, v), feed(school, 60, v)).unwrap();
            }
        }
        s
    }

    fn feed_path(&self, school: &str, v: usize) -> PathBuf {
        self.dir.path().join(format!("{school}-{v}.csv"))
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_rollcall"));
        c.arg("--data-dir")
            .arg(self.dir.path().join("data"))
            .args(args)
            .env_remove("ROLLCALL_DATA_DIR")
            .env("HOME", self.dir.path())
            .env("XDG_CONFIG_HOME", self.dir.path().join("xdg"));
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    fn import(&self, school: &str, v: usize) -> Output {
        let path = self.feed_path(school, v);
        self.run(&[
            "--json",
            "import",
            "--school",
            school,
            "--role",
            "student",
            path.to_str().unwrap(),
        ])
    }

    fn spawn(&self, args: &[&str]) -> Child {
        self.command(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }
}

fn busy(text: &str) -> bool {
    let t = text.to_lowercase();
    // SQLITE_BUSY (5) and SQLITE_BUSY_SNAPSHOT (517) both read "database is locked".
    t.contains("database is locked") || t.contains("sqlite_busy") || t.contains("database is busy")
}

/// An import that did not exit 0, or said anything about SQLite's lock.
fn failure(what: &str, out: &Output) -> Option<String> {
    let err = String::from_utf8_lossy(&out.stderr);
    (out.status.code() != Some(0) || busy(&err)).then(|| format!("{what}: exit {:?}: {err}", out.status.code()))
}

#[test]
fn two_imports_of_one_school_serialize_and_the_second_plans_on_the_first() {
    let site = Site::new();
    assert!(failure("first import", &site.import("mitte", 0)).is_none());
    let json = |o: &Output| -> serde_json::Value { serde_json::from_slice(&o.stdout).unwrap() };
    for _ in 0..3 {
        let (a, b) = std::thread::scope(|s| {
            let a = s.spawn(|| site.import("mitte", 1));
            let b = s.spawn(|| site.import("mitte", 0));
            (a.join().unwrap(), b.join().unwrap())
        });
        let fails: Vec<String> = [("variant 1", &a), ("variant 0", &b)]
            .iter()
            .filter_map(|(w, o)| failure(w, o))
            .collect();
        assert!(fails.is_empty(), "{fails:#?}");
        // The school holds what the import that finished last was given:
        // it planned on the other's result, not on what both saw at start.
        let finished = |o: &Output| {
            let id = json(o)["run_id"].as_str().unwrap().to_string();
            let run = json(&site.run(&["--json", "runs", "show", &id]));
            run["finished_at"].as_str().unwrap().to_string()
        };
        let last = if finished(&a) > finished(&b) { 1 } else { 0 };
        let schools = json(&site.run(&["--json", "schools", "list"]));
        let users = schools
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == "mitte")
            .unwrap()["users"]
            .as_u64()
            .unwrap();
        let expected = feed("mitte", 60, last).lines().count() as u64 - 1;
        assert_eq!(
            users,
            expected,
            "variant {last} finished last\n{}\n{}",
            json(&a),
            json(&b)
        );
    }
}

/// The mixed load: a daemon, two import loops of different
/// schools, pairs of same-school imports and `verify --fix`, for
/// `ROLLCALL_LOAD_SECONDS` (default 20) — zero busy errors.
#[test]
fn mixed_load_has_no_busy_errors() {
    let site = Site::new();
    for school in ["nord", "sued", "mitte"] {
        assert!(failure("setup", &site.import(school, 0)).is_none());
    }
    let seconds: u64 = std::env::var("ROLLCALL_LOAD_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    let until = Instant::now() + Duration::from_secs(seconds);
    let mut daemon = site.spawn(&["daemon"]);
    let fails = std::sync::Mutex::new(Vec::<String>::new());
    let runs = std::sync::atomic::AtomicU64::new(0);
    let note = |what: &str, out: &Output| {
        runs.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if let Some(f) = failure(what, out) {
            fails.lock().unwrap().push(f);
        }
    };
    std::thread::scope(|s| {
        for school in ["nord", "sued"] {
            let (site, note) = (&site, &note);
            s.spawn(move || {
                let mut v = 1;
                while Instant::now() < until {
                    note(&format!("import {school} {v}"), &site.import(school, v));
                    v = 1 - v;
                }
            });
        }
        for v in 0..2 {
            let (site, note) = (&site, &note);
            s.spawn(move || {
                let mut v = v;
                while Instant::now() < until {
                    note(&format!("import mitte {v}"), &site.import("mitte", v));
                    v = 1 - v;
                }
            });
        }
        let (site, fails) = (&site, &fails);
        s.spawn(move || {
            while Instant::now() < until {
                let out = site.run(&["verify", "users", "--authority", "mirror", "--fix"]);
                // Drift is expected while the daemon catches up; errors are not.
                let err = String::from_utf8_lossy(&out.stderr).to_string();
                if busy(&err) || !matches!(out.status.code(), Some(0) | Some(1)) {
                    fails
                        .lock()
                        .unwrap()
                        .push(format!("verify: exit {:?}: {err}", out.status.code()));
                }
            }
        });
    });
    stop(&mut daemon);
    let out = daemon.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "daemon: {err}");
    assert!(!busy(&err), "daemon: {err}");
    let log = logs(&site.dir.path().join("data/logs"));
    let locked: Vec<&str> = log.lines().filter(|l| busy(l)).take(5).collect();
    assert!(locked.is_empty(), "the log names busy errors: {locked:#?}");
    let fails = fails.into_inner().unwrap();
    let n = runs.into_inner();
    assert!(n >= 8, "only {n} imports ran");
    assert!(
        fails.is_empty(),
        "{} of {n} imports failed:\n{}",
        fails.len(),
        fails.join("\n")
    );
}

fn stop(child: &mut Child) {
    // SAFETY: signalling our own child by its id.
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
    }
}

fn logs(dir: &Path) -> String {
    let mut all = String::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if e.file_name().to_string_lossy().starts_with("rollcall.log") {
            all.push_str(&std::fs::read_to_string(e.path()).unwrap_or_default());
        }
    }
    all
}
