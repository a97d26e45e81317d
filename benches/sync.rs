//! Sync benchmarks (issue: sync pipeline). Three parts, all by default:
//!
//!     cargo bench --bench sync                          # all three
//!     cargo bench --bench sync -- embedded --users 100000
//!     cargo bench --bench sync -- scim --users 2000 --workers 4
//!     cargo bench --bench sync -- coalesce --users 1000 --changes 100000
//!     cargo bench --bench sync -- --dir /dev/shm        # where data dirs go
//!
//! * embedded: drain N queued users to the embedded target (items/s of the
//!   drain alone; queueing is timed separately).
//! * scim: the initial sync of N users with their classes and school groups
//!   to scim2-server through rollcall (list, then diff; Bulk), against a
//!   minimal direct client sending the same objects with one request per
//!   operation (a lookup and a create) to another tenant of the same
//!   server process; prints both rates, the ratio (target ≥ 2) and
//!   rollcall's HTTP requests per object. Then a resync of the unchanged
//!   target: writes (target 0) and time against the server's own listing
//!   time (target ≤ 1.2×; the mean of a listing just before and one just
//!   after, as the server's speed drifts). Needs `SCIM2_SERVER_BIN` or
//!   `.venv/bin/scim2-server`.
//! * coalesce: M changes to N users while the authority is down (the
//!   distributor and sender run after every 1,000 changes, as a daemon
//!   would); prints the number of queue files left.
#![allow(clippy::unwrap_used, unsafe_code)] // test and benchmark code: panics are failures; libc calls reviewed

use rollcall::engine::jobs::Quiet;
use rollcall::engine::sync::SyncOptions;
use rollcall::engine::sync::mapping::Mapper;
use rollcall::store::{Batch, UserChange, UserQuery};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The same allocator as the `rollcall` binary.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod common;
use common::scim;
use common::{arg, cpu_seconds, engine, populate, wants};

const PARTS: &[&str] = &["embedded", "scim", "coalesce"];

fn count_files(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .filter(|e| e.file_name().to_string_lossy().ends_with(".json"))
                .count()
        })
        .unwrap_or(0)
}

fn embedded(base: &Path) {
    let n: usize = arg("--users", 100_000);
    let tmp = tempfile::tempdir_in(base).expect("tempdir");
    let sets = vec![
        "authorities.mirror.kind=\"embedded\"".to_string(),
        "authorities.mirror.schools=[\"*\"]".to_string(),
        "authorities.mirror.mapping.school_groups=false".to_string(),
    ];
    let mut e = engine(tmp.path(), &sets);
    let t = Instant::now();
    populate(&mut e, n);
    println!(
        "embedded: {n} users created in the directory in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let t = Instant::now();
    let d = e.distribute(None).expect("distribute");
    let queued = d.queued.get("mirror").copied().unwrap_or(0);
    println!(
        "embedded: {queued} items queued (journal {} entries) in {:.1} s",
        d.entries,
        t.elapsed().as_secs_f64()
    );
    let t = Instant::now();
    let cpu0 = cpu_seconds();
    let out = e.sync_run(&SyncOptions::default(), &mut Quiet).expect("sync");
    let secs = t.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu0;
    let sent = out.authorities[0].sent;
    assert!(out.complete && sent == queued, "{out:?}");
    println!(
        "embedded: drained {sent} items in {secs:.2} s = {:.0} items/s (target ≥ 10,000)",
        sent as f64 / secs
    );
    // CPU time (user + system, all threads) is what other load on the
    // machine inflates least.
    println!(
        "embedded: CPU time {cpu:.2} s = {:.0} items per CPU-second",
        sent as f64 / cpu.max(1e-9)
    );
}

/// A minimal client's listing of an endpoint, as the server pages it
/// (`count=1000`): how long the server itself takes to list.
fn listing_seconds(port: u16, endpoint: &str) -> (f64, usize) {
    let t = Instant::now();
    let mut start = 1;
    let mut seen = 0;
    loop {
        let (code, body) = scim::request(port, "GET", &format!("{endpoint}?startIndex={start}&count=1000"), "");
        assert_eq!(code, 200);
        let v: serde_json::Value = serde_json::from_slice(&body).expect("json");
        let n = v["Resources"].as_array().map_or(0, Vec::len);
        let total = v["totalResults"].as_u64().unwrap_or(0) as usize;
        seen += n;
        start += n;
        if n == 0 || seen >= total {
            return (t.elapsed().as_secs_f64(), seen);
        }
    }
}

fn scim(base: &Path) {
    let n: usize = arg("--users", 2000);
    let workers: usize = arg("--workers", 4);
    let Some(bin) = scim::bin() else {
        println!("scim: skipped, no scim2-server (set SCIM2_SERVER_BIN)");
        return;
    };
    let port = scim::free_port();
    let _server = scim::start(&bin, port, &["direct", "rollcall"]);
    let tmp = tempfile::tempdir_in(base).expect("tempdir");
    let token = scim::token_file(tmp.path());
    let data = tmp.path().join("data");
    let sets = vec![
        "authorities.idb.kind=\"scim\"".to_string(),
        format!("authorities.idb.url=\"http://127.0.0.1:{port}/rollcall\""),
        format!("authorities.idb.token_file=\"{}\"", token.display()),
        "authorities.idb.schools=[\"*\"]".to_string(),
        format!("authorities.idb.workers={workers}"),
    ];
    let mut e = engine(&data, &sets);
    populate(&mut e, n);
    e.distribute(None).expect("distribute");
    let queued = count_files(&data.join("queues/out/idb"));

    // The direct client: the same objects with one request per operation
    // (a lookup, then a create), users first, then the classes and school
    // groups with their members; the same concurrency.
    let cfg = e.config().authorities["idb"].clone();
    let mapper = Mapper::new(&cfg, &["*".to_string()], "limbo");
    let mut users = Vec::with_capacity(n);
    e.directory()
        .for_each_user(&UserQuery::default(), &mut |u| {
            users.push(u);
            true
        })
        .expect("users");
    let lookup = |ext: &str, endpoint: &str| {
        let filter = rollcall::engine::sync::target::scim::scim_eq_filter("externalId", ext);
        format!("/direct/{endpoint}?filter={}&count=2", scim::encode(&filter))
    };
    let user_jobs: Vec<(String, String, String)> = users
        .iter()
        .map(|u| {
            let m = mapper.map_user(u, &Default::default(), true);
            (
                m.external_id.clone(),
                lookup(&m.external_id, "Users"),
                serde_json::Value::Object(m.attributes).to_string(),
            )
        })
        .collect();
    // Groups: (external id, name, member external ids).
    let mut groups: std::collections::BTreeMap<String, (String, Vec<String>)> = Default::default();
    for u in &users {
        let ext = rollcall::engine::sync::mapping::user_external_id(&u.key);
        for m in &u.memberships {
            groups
                .entry(format!("school:{}", m.school))
                .or_insert_with(|| (m.school.clone(), Vec::new()))
                .1
                .push(ext.clone());
            for c in &m.classes {
                groups
                    .entry(format!("class:{}:{c}", m.school))
                    .or_insert_with(|| (format!("{}-{c}", m.school), Vec::new()))
                    .1
                    .push(ext.clone());
            }
        }
    }
    let groups: Vec<(String, String, Vec<String>)> = groups.into_iter().map(|(k, (n, m))| (k, n, m)).collect();
    let ids = std::sync::Mutex::new(std::collections::HashMap::<String, String>::new());
    let t = Instant::now();
    let next = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some((ext, lookup, body)) = user_jobs.get(i) else {
                        break;
                    };
                    assert_eq!(scim::request(port, "GET", lookup, "").0, 200);
                    let (code, created) = scim::request(port, "POST", "/direct/Users", body);
                    assert_eq!(code, 201);
                    let v: serde_json::Value = serde_json::from_slice(&created).expect("json");
                    let id = v["id"].as_str().expect("id").to_string();
                    ids.lock().expect("ids").insert(ext.clone(), id);
                }
            });
        }
    });
    let ids = ids.into_inner().expect("ids");
    let next = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some((ext, name, members)) = groups.get(i) else {
                        break;
                    };
                    assert_eq!(scim::request(port, "GET", &lookup(ext, "Groups"), "").0, 200);
                    let body = serde_json::json!({
                        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                        "externalId": ext, "displayName": name,
                        "members": members.iter().map(|m| serde_json::json!({"value": ids[m]})).collect::<Vec<_>>(),
                    });
                    assert_eq!(scim::request(port, "POST", "/direct/Groups", &body.to_string()).0, 201);
                }
            });
        }
    });
    let objects = user_jobs.len() + groups.len();
    let direct_secs = t.elapsed().as_secs_f64();
    let direct = objects as f64 / direct_secs;

    let t = Instant::now();
    let out = e.sync_run(&SyncOptions::default(), &mut Quiet).expect("sync");
    let secs = t.elapsed().as_secs_f64();
    let a = &out.authorities[0];
    assert!(out.complete && a.sent as usize == queued && out.trashed == 0, "{out:?}");
    let ours = a.sent as f64 / secs;
    println!(
        "scim: initial sync of {n} users with {} groups ({objects} objects), {workers} workers: direct client \
         {direct:.0} objects/s ({:.1} s, 2 requests per object), rollcall {ours:.0} objects/s ({secs:.1} s, \
         {:.3} requests per object, {} in all), ratio {:.2} (target ≥ 2)",
        groups.len(),
        direct_secs,
        a.requests as f64 / a.sent.max(1) as f64,
        a.requests,
        ours / direct
    );

    // Resync of the unchanged target: everything queued again, nothing
    // written; against the server's own listing time.
    let (users_secs, listed_users) = listing_seconds(port, "/rollcall/Users");
    let (groups_secs, listed_groups) = listing_seconds(port, "/rollcall/Groups");
    let listing = users_secs + groups_secs;
    let t = Instant::now();
    let scheduled = e.resync(Some("idb"), &mut Quiet).expect("resync");
    let queue_secs = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let out = e.sync_run(&SyncOptions::default(), &mut Quiet).expect("sync");
    let drain_secs = t.elapsed().as_secs_f64();
    let a = &out.authorities[0];
    let unchanged = a.applied.get("unchanged").copied().unwrap_or(0);
    assert!(out.complete && unchanged == a.sent, "{out:?}");
    // The server's speed drifts from one listing to the next: it lists
    // again after the resync, and the figure is against the mean of both.
    let after = listing_seconds(port, "/rollcall/Users").0 + listing_seconds(port, "/rollcall/Groups").0;
    let mean = (listing + after) / 2.0;
    println!(
        "scim: resync of the unchanged target ({} objects): {} written, {} requests; queueing {queue_secs:.2} s, \
         drain {drain_secs:.2} s; the server's own listing of {listed_users} users and {listed_groups} groups \
         {listing:.2} s before, {after:.2} s after; drain / listing {:.2}, (queueing + drain) / listing {:.2} \
         (target ≤ 1.2; {:.2} against the listing before, {:.2} against the one after)",
        scheduled.objects,
        a.sent - unchanged,
        a.requests,
        drain_secs / mean,
        (queue_secs + drain_secs) / mean,
        (queue_secs + drain_secs) / listing,
        (queue_secs + drain_secs) / after
    );
}

fn coalesce(base: &Path) {
    let n: usize = arg("--users", 1000);
    let changes: usize = arg("--changes", 100_000);
    let tmp = tempfile::tempdir_in(base).expect("tempdir");
    let token = scim::token_file(tmp.path());
    let port = scim::free_port();
    let data = tmp.path().join("data");
    let sets = vec![
        "authorities.down.kind=\"scim\"".to_string(),
        // Nothing listens there.
        format!("authorities.down.url=\"http://127.0.0.1:{port}\""),
        format!("authorities.down.token_file=\"{}\"", token.display()),
        "authorities.down.schools=[\"*\"]".to_string(),
    ];
    let mut e = engine(&data, &sets);
    populate(&mut e, n);
    let t = Instant::now();
    let mut made = 0;
    let mut round = 0;
    let opts = SyncOptions {
        max_wait: Duration::ZERO,
        ..SyncOptions::default()
    };
    while made < changes {
        round += 1;
        let mut users = Vec::with_capacity(n);
        e.directory()
            .for_each_user(&UserQuery::default(), &mut |u| {
                users.push(u);
                true
            })
            .expect("users");
        let take = (changes - made).min(n);
        let batch = Batch {
            users: users
                .into_iter()
                .take(take)
                .map(|before| {
                    let mut after = before.clone();
                    after.lastname = format!("Nach{round}");
                    after.updated_at = chrono::Utc::now();
                    UserChange::Update { before, after }
                })
                .collect(),
            ..Batch::default()
        };
        e.directory_mut().apply(&batch).expect("apply");
        made += take;
        // What a daemon does between changes: distribute and try to send.
        let out = e.sync_run(&opts, &mut Quiet).expect("sync");
        assert!(!out.complete);
    }
    let dirs = [data.join("queues/out/down"), data.join("queues/out/down/retry")];
    let files: usize = dirs.iter().map(|d| count_files(d)).sum();
    // User items ("1-…"); the rest are the schools and classes the initial
    // population queued, which the 100,000 name changes do not touch.
    let user_files: usize = dirs
        .iter()
        .flat_map(|d| std::fs::read_dir(d).into_iter().flatten().flatten())
        .filter(|f| {
            let name = f.file_name().to_string_lossy().into_owned();
            name.starts_with("1-") && name.ends_with(".json")
        })
        .count();
    let status = &e.queue_list(Some("down")).expect("status")[0];
    println!(
        "coalesce: {made} changes to {n} users with the authority down: {user_files} user queue files \
         (target ≤ {n}); {files} files in all (schools and classes of the initial population included); \
         paused: {}; {:.1} s",
        status.paused.is_some(),
        t.elapsed().as_secs_f64()
    );
    assert!(user_files <= n);
}

fn main() {
    // RUST_LOG=rollcall=debug shows where a drain's time goes.
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .init();
    }
    let base: PathBuf = arg("--dir", std::env::temp_dir());
    println!(
        "data dirs in {} ({})",
        base.display(),
        std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|c| c.lines().find(|l| l.starts_with("model name")).map(|l| l.to_string()))
            .unwrap_or_default()
    );
    if wants("embedded", PARTS) {
        embedded(&base);
    }
    if wants("scim", PARTS) {
        scim(&base);
    }
    if wants("coalesce", PARTS) {
        coalesce(&base);
    }
}
