//! Crash trials: runs the real `rollcall` binary, kills it with SIGKILL at a
//! random moment, runs it again, and checks that nothing was lost.
//!
//!     cargo build --release --bin rollcall
//!     cargo run --release --example crash_trials -- import-sqlite [--trials 100] [--users 400] [--seed 1]
//!     cargo run --release --example crash_trials -- import-ldap   [...]   # needs slapd (SLAPD_BIN)
//!     cargo run --release --example crash_trials -- sync-scim     [...]   # needs scim2-server (SCIM2_SERVER_BIN)
//!
//! Import trials: three schools import feeds A, then school 1 imports feed B
//! (moves out, leavers, newcomers, renames, class changes) and is killed at a
//! random point of that import; then the B feeds of all three schools are
//! imported. Checked: at the moment of the kill no user of school 1's B feed
//! that existed before is in limbo or gone; after the re-run the directory
//! equals a clean run's (every user, username, state, school, class, name,
//! e-mail, purge date), no user present in a B feed is in limbo, and no temp
//! file is left behind.
//!
//! Sync trials: a SCIM authority on a fresh scim2-server; a drain of the
//! district (odd trials: of the changes feed B makes) is killed at a random
//! point, then `sync run --once` runs again. Checked: it completes, no queue
//! item is left, none is in trash, no claim or temp file is left, and the
//! server holds exactly the directory's users (externalId, userName, active).
//!
//! The kill moment is uniform over the duration of an uninterrupted run,
//! measured first. Prints one line per trial and a summary; exits 1 when any
//! trial broke an invariant.
#![allow(clippy::unwrap_used, unsafe_code)] // test and benchmark code: panics are failures; libc calls reviewed

#[path = "../tests/common/scim.rs"]
#[allow(dead_code)]
mod scim;
#[path = "../tests/common/slapd.rs"]
mod slapd;

use rand::{Rng, SeedableRng};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const SCHOOLS: [&str; 3] = ["s1", "s2", "s3"];
const HEADER: &str = "record_uid,firstname,lastname,email,birthday,classes,role,schools";

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// One person of the generated district.
#[derive(Clone)]
struct Person {
    uid: String,
    first: String,
    last: String,
    class: String,
}

impl Person {
    fn row(&self) -> String {
        format!("{},{},{},,,{},,", self.uid, self.first, self.last, self.class)
    }
}

/// Feeds A and B per school.
struct Feeds {
    a: BTreeMap<&'static str, Vec<Person>>,
    b: BTreeMap<&'static str, Vec<Person>>,
}

fn feeds(users: usize) -> Feeds {
    let mut a = BTreeMap::new();
    let mut b: BTreeMap<&'static str, Vec<Person>> = BTreeMap::new();
    let mut next = 0usize;
    for (si, s) in SCHOOLS.iter().enumerate() {
        let people: Vec<Person> = (0..users)
            .map(|i| {
                next += 1;
                Person {
                    uid: format!("u{next}"),
                    // Shared names make username counters matter.
                    first: format!("Kim{}", i % 40),
                    last: format!("Lee{}", i % 25),
                    class: format!("{}{}", 5 + i % 4, ["a", "b"][si % 2]),
                }
            })
            .collect();
        a.insert(*s, people);
    }
    let mut push = |s: &'static str, p: Person| b.entry(s).or_default().push(p);
    for (i, p) in a["s1"].iter().enumerate() {
        match i % 10 {
            0 => push("s2", p.clone()), // moves to s2
            1 => {}                     // leaves
            2 => push(
                "s1",
                Person {
                    last: format!("{}-Neu", p.last),
                    ..p.clone()
                },
            ),
            3 => push(
                "s1",
                Person {
                    class: "9z".into(),
                    ..p.clone()
                },
            ),
            _ => push("s1", p.clone()),
        }
    }
    for s in ["s2", "s3"] {
        for p in &a[s] {
            push(s, p.clone());
        }
    }
    for i in 0..users / 10 {
        next += 1;
        push(
            "s1",
            Person {
                uid: format!("u{next}"),
                first: format!("Kim{}", i % 40),
                last: format!("Lee{}", i % 25),
                class: "5a".into(),
            },
        );
    }
    Feeds { a, b }
}

fn write_feed(dir: &Path, name: &str, people: &[Person]) -> PathBuf {
    let mut text = String::from(HEADER);
    text.push('\n');
    for p in people {
        text.push_str(&p.row());
        text.push('\n');
    }
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write feed");
    path
}

/// How to run rollcall on one data dir.
struct Rollcall {
    bin: PathBuf,
    data: PathBuf,
    sets: Vec<String>,
}

impl Rollcall {
    fn cmd(&self) -> Command {
        let mut c = Command::new(&self.bin);
        c.arg("--data-dir").arg(&self.data);
        for s in &self.sets {
            c.arg("--set").arg(s);
        }
        c.env_remove("ROLLCALL_DATA_DIR")
            .env("HOME", &self.data)
            .env("XDG_CONFIG_HOME", self.data.join("xdg"))
            .stdin(Stdio::null());
        c
    }

    /// Runs to the end; panics with its output unless the exit code is 0.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.cmd().args(args).output().expect("run rollcall");
        assert!(
            out.status.success(),
            "rollcall {args:?} failed ({:?}):\n{}{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn import(&self, school: &str, file: &Path) {
        self.ok(&[
            "import",
            "--force",
            "--school",
            school,
            "--role",
            "student",
            &file.to_string_lossy(),
        ]);
    }

    /// Starts `args`, kills it with SIGKILL after `after`; `true` when it was
    /// still running (the kill interrupted it).
    fn killed(&self, args: &[&str], after: Duration) -> bool {
        let mut child = self
            .cmd()
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn rollcall");
        let until = Instant::now() + after;
        while Instant::now() < until {
            if child.try_wait().ok().flatten().is_some() {
                return false;
            }
            std::thread::sleep(Duration::from_micros(200));
        }
        let running = child.try_wait().ok().flatten().is_none();
        let _ = child.kill();
        let _ = child.wait();
        running
    }

    /// Every user, without timestamps, by record uid.
    fn users(&self) -> BTreeMap<String, Value> {
        let out = self.ok(&["--json", "users", "list"]);
        let list: Value = serde_json::from_str(&out).expect("users list --json");
        let rows = list
            .as_array()
            .cloned()
            .or_else(|| list["users"].as_array().cloned())
            .unwrap_or_default();
        rows.into_iter()
            .map(|mut u| {
                if let Some(o) = u.as_object_mut() {
                    o.retain(|k, _| !(k.ends_with("_at") && k != "purge_at"));
                }
                (u["record_uid"].as_str().unwrap_or_default().to_string(), u)
            })
            .collect()
    }
}

/// Temp files a crash may leave that a later run could trip over.
fn leftovers(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return found;
    };
    for e in entries.flatten() {
        let p = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        if p.is_dir() {
            if name == "claimed" && std::fs::read_dir(&p).map(|d| d.count()).unwrap_or(0) > 0 {
                found.push(p.clone());
            }
            // A queue's temp files are in `.tmp/` and its subfolders.
            if name == ".tmp" && files_below(&p) > 0 {
                found.push(p.clone());
            }
            found.extend(leftovers(&p));
        } else if name.ends_with(".tmp") {
            found.push(p);
        }
    }
    found
}

/// Regular files in `dir` and in its subfolders.
fn files_below(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| match e.path().is_dir() {
                    true => files_below(&e.path()),
                    false => 1,
                })
                .sum()
        })
        .unwrap_or(0)
}

fn state(u: &Value) -> &str {
    u["state"].as_str().unwrap_or("?")
}

/// One import trial; `Err` names the broken invariant.
fn import_trial(
    rc: &Rollcall,
    f: &Feeds,
    kill_after: Duration,
    reference: &BTreeMap<String, Value>,
) -> Result<bool, String> {
    let dir = rc.data.join("feeds");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    for s in SCHOOLS {
        rc.import(s, &write_feed(&dir, &format!("{s}-a.csv"), &f.a[s]));
    }
    let before = rc.users();
    let b1 = write_feed(&dir, "s1-b.csv", &f.b["s1"]);
    let args = [
        "import",
        "--force",
        "--school",
        "s1",
        "--role",
        "student",
        &b1.to_string_lossy(),
    ];
    let interrupted = rc.killed(&args, kill_after);
    let mid = rc.users();
    for p in &f.b["s1"] {
        if before.contains_key(&p.uid) {
            match mid.get(&p.uid) {
                None => return Err(format!("{} (in s1's feed) was deleted by the killed import", p.uid)),
                Some(u) if state(u) != "active" => {
                    return Err(format!("{} (in s1's feed) is {} after the kill", p.uid, state(u)));
                }
                _ => {}
            }
        }
    }
    for s in SCHOOLS {
        rc.import(s, &write_feed(&dir, &format!("{s}-b.csv"), &f.b[s]));
    }
    let after = rc.users();
    for s in SCHOOLS {
        for p in &f.b[s] {
            match after.get(&p.uid) {
                Some(u) if state(u) == "active" => {}
                other => {
                    return Err(format!(
                        "{} (in {s}'s B feed) is {:?} after the re-run",
                        p.uid,
                        other.map(state)
                    ));
                }
            }
        }
    }
    if &after != reference {
        let diff = reference
            .iter()
            .find(|(k, v)| after.get(*k) != Some(v))
            .map(|(k, v)| format!("{k}: clean {v} vs {:?}", after.get(k)))
            .unwrap_or_else(|| format!("{} users vs {} in a clean run", after.len(), reference.len()));
        return Err(format!("differs from a clean run: {diff}"));
    }
    let left = leftovers(&rc.data);
    if !left.is_empty() {
        return Err(format!("temp files left: {left:?}"));
    }
    Ok(interrupted)
}

fn sync_config(data: &Path, server: &scim::ScimServer) {
    use std::os::unix::fs::PermissionsExt;
    let token = data.join("token");
    std::fs::write(&token, scim::TOKEN).expect("token");
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    std::fs::write(
        data.join("rollcall.toml"),
        format!(
            "[sync]\npoll_seconds = 0.05\n\n[authorities.idb]\nkind = \"scim\"\nurl = \"{}\"\n\
             token_file = \"{}\"\nschools = [\"*\"]\nworkers = 4\n[authorities.idb.retry]\nbase_seconds = 0.1\nmax_seconds = 1.0\n",
            server.url(),
            token.display()
        ),
    )
    .expect("config");
}

/// The server's users as (externalId → (userName, active)).
fn server_users(server: &scim::ScimServer) -> BTreeMap<String, (String, bool)> {
    server
        .by_external_id("/Users")
        .into_iter()
        .map(|(ext, r)| {
            let name = r["userName"].as_str().unwrap_or_default().to_string();
            (ext, (name, r["active"].as_bool().unwrap_or(true)))
        })
        .collect()
}

fn sync_trial(rc: &Rollcall, f: &Feeds, kill_after: Duration, odd: bool) -> Result<bool, String> {
    let dir = rc.data.join("feeds");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    for s in SCHOOLS {
        rc.import(s, &write_feed(&dir, &format!("{s}-a.csv"), &f.a[s]));
    }
    if odd {
        rc.ok(&["sync", "run", "--once"]);
        for s in SCHOOLS {
            rc.import(s, &write_feed(&dir, &format!("{s}-b.csv"), &f.b[s]));
        }
    }
    let interrupted = rc.killed(&["sync", "run", "--once"], kill_after);
    let out = rc.ok(&["--json", "sync", "run", "--once"]);
    let v: Value = serde_json::from_str(&out).map_err(|e| format!("sync --json: {e}"))?;
    if v["complete"] != Value::Bool(true) {
        return Err(format!("the re-run did not complete: {v}"));
    }
    let queue = rc.data.join("queues/out/idb");
    let count = |p: PathBuf| {
        std::fs::read_dir(p)
            .map(|d| d.flatten().filter(|e| e.path().is_file()).count())
            .unwrap_or(0)
    };
    let (waiting, trash, retry) = (
        count(queue.clone()),
        count(queue.join("trash")),
        count(queue.join("retry")),
    );
    if waiting + trash + retry > 0 {
        return Err(format!("left: {waiting} queued, {retry} retrying, {trash} in trash"));
    }
    let left = leftovers(&rc.data);
    if !left.is_empty() {
        return Err(format!("temp files or claims left: {left:?}"));
    }
    Ok(interrupted)
}

fn expected_on_server(users: &BTreeMap<String, Value>) -> BTreeMap<String, (String, bool)> {
    users
        .values()
        .map(|u| {
            let key = format!(
                "{}:{}",
                u["source_uid"].as_str().unwrap_or("district"),
                u["record_uid"].as_str().unwrap_or_default()
            );
            (
                key,
                (
                    u["username"].as_str().unwrap_or_default().to_string(),
                    state(u) == "active",
                ),
            )
        })
        .collect()
}

fn main() {
    let kind = std::env::args().nth(1).unwrap_or_default();
    let trials = arg("--trials", 100);
    let users = arg("--users", 400) as usize;
    let seed = arg("--seed", 1);
    let bin = std::env::args()
        .position(|a| a == "--bin")
        .and_then(|i| std::env::args().nth(i + 1))
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/release/rollcall"));
    assert!(
        bin.is_file(),
        "{} is missing: cargo build --release --bin rollcall",
        bin.display()
    );
    if !["import-sqlite", "import-ldap", "sync-scim"].contains(&kind.as_str()) {
        eprintln!(
            "usage: crash_trials (import-sqlite|import-ldap|sync-scim) [--trials N] [--users N] [--seed N] [--bin PATH]"
        );
        std::process::exit(2);
    }
    let f = feeds(users);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let ldap = (kind == "import-ldap").then(|| slapd::Slapd::start().expect("slapd (set SLAPD_BIN)"));
    let fresh = |t: u64| -> (tempfile::TempDir, Rollcall) {
        let tmp = tempfile::Builder::new().prefix("crash").tempdir().expect("tempdir");
        let mut sets = Vec::new();
        if let Some(s) = &ldap {
            let base = format!("ou=trial{t},{}", slapd::SUFFIX);
            sets = s.sets(tmp.path(), &base);
        }
        let rc = Rollcall {
            bin: bin.clone(),
            data: tmp.path().join("data"),
            sets,
        };
        std::fs::create_dir_all(&rc.data).expect("data dir");
        (tmp, rc)
    };

    // An uninterrupted run: the reference result and the duration to kill in.
    let started = Instant::now();
    let (span, reference) = if kind == "sync-scim" {
        let server = scim::ScimServer::start().expect("scim2-server (set SCIM2_SERVER_BIN)");
        let (_tmp, rc) = fresh(0);
        sync_config(&rc.data, &server);
        for s in SCHOOLS {
            let dir = rc.data.clone();
            rc.import(s, &write_feed(&dir, &format!("{s}-a.csv"), &f.a[s]));
        }
        let t = Instant::now();
        rc.ok(&["sync", "run", "--once"]);
        (t.elapsed(), BTreeMap::new())
    } else {
        let (_tmp, rc) = fresh(0);
        for s in SCHOOLS {
            let dir = rc.data.clone();
            rc.import(s, &write_feed(&dir, &format!("{s}-a.csv"), &f.a[s]));
        }
        let b1 = write_feed(&rc.data, "s1-b.csv", &f.b["s1"]);
        let t = Instant::now();
        rc.import("s1", &b1);
        let span = t.elapsed();
        for s in &SCHOOLS[1..] {
            let dir = rc.data.clone();
            rc.import(s, &write_feed(&dir, &format!("{s}-b.csv"), &f.b[*s]));
        }
        (span, rc.users())
    };
    println!(
        "{kind}: {trials} trials, {} users per school, an uninterrupted run takes {:.0} ms (setup {:.1} s)",
        users,
        span.as_secs_f64() * 1000.0,
        started.elapsed().as_secs_f64()
    );

    let (mut passed, mut interrupted, mut failures) = (0, 0, Vec::new());
    for t in 1..=trials {
        let kill_after = span.mul_f64(rng.gen_range(0.0..1.0));
        let (_tmp, rc) = fresh(t);
        let result = if kind == "sync-scim" {
            let server = scim::ScimServer::start().expect("scim2-server");
            sync_config(&rc.data, &server);
            let r = sync_trial(&rc, &f, kill_after, t % 2 == 1);
            r.and_then(|i| {
                let want = expected_on_server(&rc.users());
                let have = server_users(&server);
                if want == have {
                    Ok(i)
                } else {
                    Err(format!(
                        "server holds {} users, directory {} (first difference: {:?})",
                        have.len(),
                        want.len(),
                        want.iter().find(|(k, v)| have.get(*k) != Some(v))
                    ))
                }
            })
        } else {
            import_trial(&rc, &f, kill_after, &reference)
        };
        match result {
            Ok(i) => {
                passed += 1;
                interrupted += usize::from(i);
                println!(
                    "trial {t:3}: kill after {:6.1} ms: {} ok",
                    kill_after.as_secs_f64() * 1000.0,
                    if i { "interrupted," } else { "had finished," }
                );
            }
            Err(e) => {
                println!(
                    "trial {t:3}: kill after {:6.1} ms: FAILED: {e}",
                    kill_after.as_secs_f64() * 1000.0
                );
                failures.push((t, e));
            }
        }
    }
    println!(
        "{kind}: {passed}/{trials} trials held ({interrupted} killed mid-run), {} failed, {:.0} s",
        failures.len(),
        started.elapsed().as_secs_f64()
    );
    if !failures.is_empty() {
        std::process::exit(1);
    }
}
