//! One kill -9 trial of the directory change listener, shared by the test
//! suite (`tests/sync/listen.rs`, a few small trials) and
//! `examples/listen_trials.rs` (many, with results in RELIABILITY.md).
//!
//! A district of `users` students is imported with the real binary into a
//! fresh base on a slapd, and `rollcall listen` is started. A foreign
//! writer (one `ldapmodify` fed change by change) then modifies, adds and
//! deletes users while the listener is killed with SIGKILL at `kills`
//! random moments and started again at once. When the writer is done and
//! the listener has caught up, every change must be covered: for each user
//! changed, a journal entry written no earlier than its last change (its
//! entryCSN on the server); for each user deleted that was ever journalled,
//! a journal entry written after the delete began (a user added and deleted
//! while nobody listened was never sent anywhere).
#![allow(dead_code)]

use super::slapd::{self, Slapd};
use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[derive(Clone, Debug)]
pub struct Spec {
    pub users: usize,
    pub changes: usize,
    pub kills: usize,
    /// Pause between two foreign changes.
    pub pace: Duration,
    pub seed: u64,
}

#[derive(Debug)]
pub struct Outcome {
    pub changes: usize,
    pub kills: usize,
    /// Journal entries the listener wrote.
    pub journaled: u64,
    /// Changes without a journal entry after them (must be empty).
    pub lost: Vec<String>,
    pub seconds: f64,
}

fn rollcall(bin: &Path, data: &Path, sets: &[String]) -> Command {
    let mut cmd = Command::new(bin);
    cmd.arg("--data-dir").arg(data);
    for s in sets {
        cmd.arg("--set").arg(s);
    }
    cmd.env_remove("ROLLCALL_DATA_DIR")
        .env("HOME", data)
        .env("XDG_CONFIG_HOME", data.join("xdg"));
    cmd
}

fn listen(bin: &Path, data: &Path, sets: &[String]) -> Child {
    rollcall(bin, data, sets)
        .arg("listen")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("rollcall listen")
}

fn journal(data: &Path) -> rusqlite::Connection {
    let c = rusqlite::Connection::open(data.join("ldap-journal.sqlite")).expect("journal");
    c.busy_timeout(Duration::from_secs(10)).expect("busy timeout");
    c
}

fn phase(data: &Path) -> Option<String> {
    if !data.join("ldap-journal.sqlite").exists() {
        return None;
    }
    journal(data)
        .query_row("SELECT phase FROM listen_status WHERE id = 1", [], |r| r.get(0))
        .ok()
}

fn wait_persisting(data: &Path) {
    let t = Instant::now();
    while phase(data).as_deref() != Some("persisting") {
        assert!(t.elapsed() < Duration::from_secs(30), "the listener never persisted");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn student_ldif(base: &str, i: usize) -> String {
    format!(
        "dn: uid=n.new{i},cn=users,ou=a,{base}\nchangetype: add\nobjectClass: inetOrgPerson\n\
         objectClass: shadowAccount\nuid: n.new{i}\ncn: New {i}\nsn: New{i}\ngivenName: New\n\
         employeeNumber: {i}\ndepartmentNumber: district\nou: a\nemployeeType: student:school:a\n\
         description: rollcall-state=active\ndescription: rollcall-updated=2026-01-01T00:00:00.000000Z\n\n"
    )
}

/// Runs one trial with the `rollcall` binary `bin` on `server`.
pub fn run(server: &Slapd, bin: &Path, spec: &Spec) -> Outcome {
    let started = Instant::now();
    let tmp = tempfile::tempdir().expect("tempdir");
    let data: PathBuf = tmp.path().join("data");
    std::fs::create_dir_all(&data).expect("data dir");
    let base = slapd::fresh_base();
    let sets = server.sets(&data, &base);
    // The district, imported by rollcall itself.
    let mut feed = String::from("record_uid,firstname,lastname\n");
    for i in 0..spec.users {
        feed.push_str(&format!("{i},Kim,Nr{i}\n"));
    }
    let file = tmp.path().join("a.csv");
    std::fs::write(&file, feed).expect("feed");
    let out = rollcall(bin, &data, &sets)
        .args(["import", "--school", "a", "--role", "student"])
        .arg(&file)
        .output()
        .expect("import");
    assert!(out.status.success(), "import: {}", String::from_utf8_lossy(&out.stderr));
    let mut child = listen(bin, &data, &sets);
    wait_persisting(&data);

    // The foreign changes, decided in advance.
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(spec.seed);
    let mut alive: Vec<usize> = (0..spec.users).collect();
    let mut next_new = 100_000;
    let mut script: Vec<(String, Option<usize>)> = Vec::new(); // LDIF, user deleted
    for k in 0..spec.changes {
        let roll = rng.gen_range(0..10);
        if roll == 0 || alive.is_empty() {
            script.push((student_ldif(&base, next_new), None));
            alive.push(next_new);
            next_new += 1;
        } else if roll == 1 {
            let i = alive.swap_remove(rng.gen_range(0..alive.len()));
            let dn = if i >= 100_000 {
                format!("uid=n.new{i},cn=users,ou=a,{base}")
            } else {
                format!("uid=k.nr{i},cn=users,ou=a,{base}")
            };
            script.push((format!("dn: {dn}\nchangetype: delete\n\n"), Some(i)));
        } else {
            let i = alive[rng.gen_range(0..alive.len())];
            let dn = if i >= 100_000 {
                format!("uid=n.new{i},cn=users,ou=a,{base}")
            } else {
                format!("uid=k.nr{i},cn=users,ou=a,{base}")
            };
            script.push((
                format!("dn: {dn}\nchangetype: modify\nreplace: givenName\ngivenName: G{k}\n\n"),
                None,
            ));
        }
    }
    let span = spec.pace * spec.changes as u32;
    let mut kill_at: Vec<Duration> = (0..spec.kills).map(|_| span.mul_f64(rng.gen_range(0.0..1.0))).collect();
    kill_at.sort();

    let mut writer = Command::new("ldapmodify")
        .args(["-x", "-H", &server.url(), "-D", slapd::ROOT_DN, "-w", slapd::ROOT_PW])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ldapmodify");
    let mut stdin = writer.stdin.take().expect("stdin");
    let mut deleted: BTreeMap<usize, chrono::DateTime<chrono::Utc>> = BTreeMap::new();
    let t0 = Instant::now();
    let mut kills = 0;
    for (ldif, delete) in &script {
        while kill_at.first().is_some_and(|k| t0.elapsed() >= *k) {
            kill_at.remove(0);
            let _ = child.kill();
            let _ = child.wait();
            kills += 1;
            child = listen(bin, &data, &sets);
        }
        if let Some(i) = delete {
            deleted.insert(*i, chrono::Utc::now());
        }
        stdin.write_all(ldif.as_bytes()).expect("feed ldapmodify");
        stdin.flush().expect("flush");
        std::thread::sleep(spec.pace);
    }
    drop(stdin);
    let w = writer.wait_with_output().expect("ldapmodify");
    assert!(w.status.success(), "ldapmodify: {}", String::from_utf8_lossy(&w.stderr));

    // Every change covered: wait for the listener to catch up, then check.
    let expected = |data: &Path| -> Vec<String> {
        let csns = user_csns(server, &base);
        let last: BTreeMap<String, String> = {
            let c = journal(data);
            let mut stmt = c
                .prepare("SELECT object, MAX(at) FROM journal GROUP BY object")
                .expect("journal query");
            stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                .expect("rows")
                .collect::<Result<_, _>>()
                .expect("rows")
        };
        let mut lost = Vec::new();
        for (uid, csn) in &csns {
            let object = format!("user:district:{uid}");
            let changed = csn.get(..22).unwrap_or(csn);
            let covered = last.get(&object).is_some_and(|at| csn_covered(changed, at));
            let touched = !csn.is_empty() && script_touches(&script, *uid);
            if touched && !covered {
                lost.push(format!("{object} changed at {csn}, journalled {:?}", last.get(&object)));
            }
        }
        for (uid, at) in &deleted {
            let object = format!("user:district:{uid}");
            let when = at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
            // Journalled before (an authority may hold it): the delete must
            // be too. Added and deleted unseen: nobody ever held it.
            if last.get(&object).is_some_and(|j| *j < when) {
                lost.push(format!(
                    "{object} deleted at {when}, journalled {:?}",
                    last.get(&object)
                ));
            }
        }
        lost
    };
    let t = Instant::now();
    let mut lost = expected(&data);
    while !lost.is_empty() && t.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(50));
        lost = expected(&data);
    }
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let _ = child.wait();
    let journaled: i64 = journal(&data)
        .query_row("SELECT COUNT(*) FROM journal", [], |r| r.get(0))
        .expect("count");
    Outcome {
        changes: spec.changes,
        kills,
        journaled: journaled as u64,
        lost,
        seconds: started.elapsed().as_secs_f64(),
    }
}

/// Whether a change made at CSN time `csn` (`YYYYmmddHHMMSS.ffffffZ`) is
/// covered by a journal entry written at `at` (RFC 3339, UTC).
fn csn_covered(csn: &str, at: &str) -> bool {
    let Ok(t) = chrono::NaiveDateTime::parse_from_str(csn.trim_end_matches('Z'), "%Y%m%d%H%M%S%.f") else {
        return false;
    };
    chrono::DateTime::parse_from_rfc3339(at).is_ok_and(|a| a.naive_utc() >= t)
}

fn script_touches(script: &[(String, Option<usize>)], uid: usize) -> bool {
    let dn = |i: usize| {
        if i >= 100_000 {
            format!("uid=n.new{i},")
        } else {
            format!("uid=k.nr{i},")
        }
    };
    script.iter().any(|(l, _)| l.contains(&dn(uid)))
}

/// Record uid → entryCSN of every user under `base`.
fn user_csns(server: &Slapd, base: &str) -> BTreeMap<usize, String> {
    let out = Command::new("ldapsearch")
        .args([
            "-x",
            "-LLL",
            "-o",
            "ldif-wrap=no",
            "-H",
            &server.url(),
            "-D",
            slapd::ROOT_DN,
            "-w",
        ])
        .arg(slapd::ROOT_PW)
        .args(["-b", base, "(objectClass=inetOrgPerson)", "employeeNumber", "entryCSN"])
        .output()
        .expect("ldapsearch");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut csns = BTreeMap::new();
    for block in text.split("\n\n") {
        let get = |k: &str| {
            block
                .lines()
                .find_map(|l| l.strip_prefix(k).map(|v| v.trim().to_string()))
        };
        if let (Some(uid), Some(csn)) = (get("employeeNumber:"), get("entryCSN:"))
            && let Ok(uid) = uid.parse()
        {
            csns.insert(uid, csn);
        }
    }
    csns
}
