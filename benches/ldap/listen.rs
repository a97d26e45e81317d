//! The listener part of the LDAP benchmark: on the server the import
//! filled, (1) catch-up: foreign changes made while no listener runs, then
//! the time from its start until every one is journalled; (2) under load:
//! foreign `ldapmodify` changes at a steady rate while it runs, each
//! change's lag from its commit on the server (its entryCSN) to its
//! journal entry.

use super::slapd::{self, Slapd};
use rollcall::engine::jobs::{CancelToken, Progress, ProgressEvent};
use rollcall::engine::{Engine, Settings};
use rollcall::model::ObjectRef;
use std::collections::{BTreeMap, HashSet};
use std::io::Write;
use std::process::{Command, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

struct Until(CancelToken);

impl Progress for Until {
    fn update(&mut self, _: ProgressEvent) {}
    fn cancelled(&self) -> bool {
        self.0.is_cancelled()
    }
}

/// A listener on its own engine; stops when dropped.
struct Running(CancelToken, Option<JoinHandle<()>>);

impl Running {
    fn start(settings: &Settings, engine: &Engine) -> Running {
        let token = CancelToken::default();
        let stop = token.clone();
        let settings = settings.clone();
        let handle = std::thread::spawn(move || {
            let e = Engine::open(settings).expect("listener engine");
            e.listen(&mut Until(stop)).expect("listen");
        });
        let t = Instant::now();
        while !engine
            .listener_status()
            .expect("status")
            .is_some_and(|s| s.connected && s.phase == "persisting")
        {
            assert!(t.elapsed() < Duration::from_secs(600), "the listener never persisted");
            std::thread::sleep(Duration::from_millis(5));
        }
        Running(token, Some(handle))
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.0.cancel();
        if let Some(h) = self.1.take() {
            let _ = h.join();
        }
    }
}

/// Users (DN, record uid) of the district, from the server.
fn users(server: &Slapd, base: &str) -> Vec<(String, String)> {
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
        .args([
            "-b",
            base,
            "-E",
            "pr=1000/noprompt",
            "(objectClass=inetOrgPerson)",
            "employeeNumber",
        ])
        .output()
        .expect("ldapsearch");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut v = Vec::new();
    for block in text.split("\n\n") {
        let dn = block.lines().find_map(|l| l.strip_prefix("dn: "));
        let uid = block.lines().find_map(|l| l.strip_prefix("employeeNumber: "));
        if let (Some(dn), Some(uid)) = (dn, uid) {
            v.push((dn.to_string(), uid.to_string()));
        }
    }
    v
}

/// entryCSN commit times of these record uids' users.
fn csn_times(server: &Slapd, base: &str, wanted: &HashSet<String>) -> BTreeMap<String, chrono::DateTime<chrono::Utc>> {
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
        .args([
            "-b",
            base,
            "-E",
            "pr=1000/noprompt",
            "(objectClass=inetOrgPerson)",
            "employeeNumber",
            "entryCSN",
        ])
        .output()
        .expect("ldapsearch");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut m = BTreeMap::new();
    for block in text.split("\n\n") {
        let uid = block.lines().find_map(|l| l.strip_prefix("employeeNumber: "));
        let csn = block.lines().find_map(|l| l.strip_prefix("entryCSN: "));
        if let (Some(uid), Some(csn)) = (uid, csn)
            && wanted.contains(uid)
        {
            let stamp = csn.split('#').next().unwrap_or("").trim_end_matches('Z');
            if let Ok(t) = chrono::NaiveDateTime::parse_from_str(stamp, "%Y%m%d%H%M%S%.f") {
                m.insert(uid.to_string(), t.and_utc());
            }
        }
    }
    m
}

fn change(dn: &str, k: usize) -> String {
    format!("dn: {dn}\nchangetype: modify\nreplace: givenName\ngivenName: Changed{k}\n\n")
}

/// Feeds these changes to `writers` parallel `ldapmodify` processes at
/// `rate` changes per second in total (0: as fast as they go).
fn write_changes(server: &Slapd, changes: &[String], writers: usize, rate: f64) -> f64 {
    let t = Instant::now();
    let chunks: Vec<Vec<String>> = (0..writers)
        .map(|w| changes.iter().skip(w).step_by(writers).cloned().collect())
        .collect();
    std::thread::scope(|s| {
        for chunk in &chunks {
            s.spawn(move || {
                let mut child = Command::new("ldapmodify")
                    .args(["-x", "-H", &server.url(), "-D", slapd::ROOT_DN, "-w", slapd::ROOT_PW])
                    .stdin(Stdio::piped())
                    .stdout(Stdio::null())
                    .stderr(Stdio::piped())
                    .spawn()
                    .expect("ldapmodify");
                let mut stdin = child.stdin.take().expect("stdin");
                let per = if rate > 0.0 { writers as f64 / rate } else { 0.0 };
                let start = Instant::now();
                for (i, c) in chunk.iter().enumerate() {
                    if per > 0.0 {
                        let due = Duration::from_secs_f64(per * i as f64);
                        if let Some(wait) = due.checked_sub(start.elapsed()) {
                            std::thread::sleep(wait);
                        }
                    }
                    stdin.write_all(c.as_bytes()).expect("feed ldapmodify");
                    stdin.flush().expect("flush");
                }
                drop(stdin);
                let out = child.wait_with_output().expect("ldapmodify");
                assert!(
                    out.status.success(),
                    "ldapmodify: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            });
        }
    });
    t.elapsed().as_secs_f64()
}

/// The first journal entry after `seq` of each user record uid.
fn journalled(engine: &Engine, seq: u64) -> BTreeMap<String, chrono::DateTime<chrono::Utc>> {
    let mut m = BTreeMap::new();
    let mut after = seq;
    loop {
        let entries = engine.directory().journal_after(after, 100_000).expect("journal");
        let Some(last) = entries.last() else { break };
        after = last.seq;
        for e in entries {
            if let ObjectRef::User { record_uid, .. } = e.object {
                m.entry(record_uid).or_insert(e.at);
            }
        }
    }
    m
}

fn wait_journalled(engine: &Engine, seq: u64, wanted: &HashSet<String>) -> Instant {
    let t = Instant::now();
    loop {
        let got = journalled(engine, seq);
        if wanted.iter().all(|u| got.contains_key(u)) {
            return Instant::now();
        }
        assert!(
            t.elapsed() < Duration::from_secs(600),
            "not every change was journalled"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

pub fn run(server: &Slapd, base: &str, settings: &Settings, engine: &Engine, catch_up: usize, rate: f64, seconds: f64) {
    let all = users(server, base);
    println!("Listener benchmark ({} users in the directory)", all.len());
    // The first sync: records the directory, journals nothing.
    let t = Instant::now();
    drop(Running::start(settings, engine));
    println!("  first sync (baseline)   {:.1} s", t.elapsed().as_secs_f64());

    // (1) Catch-up after downtime.
    let n = catch_up.min(all.len());
    let picked: Vec<&(String, String)> = all.iter().take(n).collect();
    let changes: Vec<String> = picked.iter().enumerate().map(|(k, (dn, _))| change(dn, k)).collect();
    let write_secs = write_changes(server, &changes, 4, 0.0);
    let wanted: HashSet<String> = picked.iter().map(|(_, u)| u.clone()).collect();
    let seq = engine.directory().journal_head().expect("head");
    let t = Instant::now();
    let running = Running::start(settings, engine);
    let done = wait_journalled(engine, seq, &wanted);
    let secs = done.duration_since(t).as_secs_f64();
    println!(
        "  catch-up                {n} changes made while stopped (written in {write_secs:.1} s): journalled in {secs:.1} s \
         from the listener's start, {:.0} changes/s (target >= 2,000)",
        n as f64 / secs
    );

    // (2) Under a steady foreign load.
    let count = ((rate * seconds) as usize).min(all.len().saturating_sub(n));
    let picked: Vec<&(String, String)> = all.iter().skip(n).take(count).collect();
    let changes: Vec<String> = picked.iter().enumerate().map(|(k, (dn, _))| change(dn, k)).collect();
    let wanted: HashSet<String> = picked.iter().map(|(_, u)| u.clone()).collect();
    let seq = engine.directory().journal_head().expect("head");
    let write_secs = write_changes(server, &changes, 4, rate);
    wait_journalled(engine, seq, &wanted);
    drop(running);
    let csn = csn_times(server, base, &wanted);
    let at = journalled(engine, seq);
    let mut lags: Vec<f64> = wanted
        .iter()
        .filter_map(|u| Some((*at.get(u)? - *csn.get(u)?).num_microseconds()? as f64 / 1e6))
        .collect();
    lags.sort_by(f64::total_cmp);
    let first = csn.values().min().copied();
    let last = at.values().max().copied();
    let span = match (first, last) {
        (Some(f), Some(l)) => (l - f).num_milliseconds() as f64 / 1000.0,
        _ => f64::NAN,
    };
    println!(
        "  under load              {count} changes by 4 ldapmodify at {rate:.0}/s asked, {:.0}/s achieved ({write_secs:.1} s); \
         journalled {:.0}/s",
        count as f64 / write_secs,
        count as f64 / span
    );
    if !lags.is_empty() {
        println!(
            "  lag commit -> journal   p50 {:.3} s, p99 {:.3} s, max {:.3} s over {} changes (target p99 < 1 s)",
            percentile(&lags, 0.5),
            percentile(&lags, 0.99),
            lags[lags.len() - 1],
            lags.len()
        );
    }
}
