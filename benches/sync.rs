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
//! * scim: N users to scim2-server through rollcall, and the same requests
//!   (same payloads, same concurrency) from a minimal direct HTTP client to
//!   another tenant of the same server process; prints both rates and the
//!   ratio. Needs `SCIM2_SERVER_BIN` or `.venv/bin/scim2-server`.
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
        "authorities.idb.mapping.school_groups=false".to_string(),
    ];
    let mut e = engine(&data, &sets);
    populate(&mut e, n);
    e.distribute(None).expect("distribute");
    // Only users are compared: drop the group items.
    let queue = data.join("queues/out/idb");
    for f in std::fs::read_dir(&queue).expect("queue").flatten() {
        if f.file_name().to_string_lossy().starts_with("2-") {
            std::fs::remove_file(f.path()).expect("rm");
        }
    }
    let queued = count_files(&queue);

    // The direct client: the same lookup + create per user, same payloads.
    let cfg = e.config().authorities["idb"].clone();
    let mapper = Mapper::new(&cfg, &["*".to_string()], "limbo");
    let mut users = Vec::with_capacity(n);
    e.directory()
        .for_each_user(&UserQuery::default(), &mut |u| {
            users.push(u);
            true
        })
        .expect("users");
    let payloads: Vec<(String, String)> = users
        .iter()
        .map(|u| {
            let m = mapper.map_user(u, &Default::default(), true);
            let filter = rollcall::engine::sync::target::scim::scim_eq_filter("externalId", &m.external_id);
            (
                format!("/direct/Users?filter={}&count=2", scim::encode(&filter)),
                serde_json::Value::Object(m.attributes).to_string(),
            )
        })
        .collect();
    let next = AtomicUsize::new(0);
    let t = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some((lookup, body)) = payloads.get(i) else { break };
                    assert_eq!(scim::request(port, "GET", lookup, "").0, 200);
                    assert_eq!(scim::request(port, "POST", "/direct/Users", body).0, 201);
                }
            });
        }
    });
    let direct = n as f64 / t.elapsed().as_secs_f64();

    let t = Instant::now();
    let out = e.sync_run(&SyncOptions::default(), &mut Quiet).expect("sync");
    let ours = out.authorities[0].sent as f64 / t.elapsed().as_secs_f64();
    assert!(out.complete && out.authorities[0].sent as usize == queued, "{out:?}");
    println!(
        "scim: {n} users, {workers} workers: direct client {direct:.0} users/s, rollcall {ours:.0} users/s, \
         ratio {:.2} (target ≥ 0.90)",
        ours / direct
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
