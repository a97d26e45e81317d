//! Verify benchmarks (issue 5). Two parts, both by default:
//!
//!     cargo bench --bench verify                          # both
//!     cargo bench --bench verify -- embedded --users 100000
//!     cargo bench --bench verify -- scim --users 5000
//!     cargo bench --bench verify -- --dir /dev/shm        # where data dirs go
//!
//! * embedded: N users in the directory and the same N on an embedded
//!   mirror (written straight through the target, as a drained queue leaves
//!   it); times `verify users` (target: < 5 s at 100,000), once clean and
//!   once with 1 % of the mirror modified by hand.
//! * scim: N users on scim2-server (created straight through the target);
//!   times the raw listing alone (the same pages, 200 a request, from a
//!   minimal HTTP client) against the whole `verify users`, and prints the
//!   share of the verify the listing accounts for. Needs `SCIM2_SERVER_BIN`
//!   or `.venv/bin/scim2-server`.
#![allow(clippy::unwrap_used, unsafe_code)] // test and benchmark code: panics are failures; libc calls reviewed

use rollcall::engine::Engine;
use rollcall::engine::jobs::Quiet;
use rollcall::engine::sync::mapping::Desired;
use rollcall::engine::sync::target::Target;
use rollcall::engine::sync::target::embedded::EmbeddedTarget;
use rollcall::engine::sync::verify::{VerifyKind, VerifyRequest};
use rollcall::store::UserQuery;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// The same allocator as the `rollcall` binary.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod common;
use common::scim;
use common::{arg, engine, populate, wants};

const PARTS: &[&str] = &["embedded", "scim"];

/// What the authority should hold for every user, as the sender maps it.
fn desired_users(e: &Engine, authority: &str) -> Vec<Desired> {
    let a = e.authority(authority).expect("authority");
    let mut out = Vec::new();
    e.directory()
        .for_each_user(&UserQuery::default(), &mut |u| {
            out.push(Desired::Present(a.mapper.map_user(&u, &Default::default(), true)));
            true
        })
        .expect("users");
    out
}

fn verify_users(e: &mut Engine, authority: &str) -> (f64, u64, u64) {
    let t = Instant::now();
    let r = e
        .verify(
            &VerifyRequest {
                authority: authority.into(),
                kind: VerifyKind::Users,
                filter: None,
                fix: false,
            },
            &mut Quiet,
        )
        .expect("verify");
    (t.elapsed().as_secs_f64(), r.actual, r.counts.different)
}

fn embedded(base: &Path) {
    let n: usize = arg("--users", 100_000);
    let tmp = tempfile::tempdir_in(base).expect("tempdir");
    let sets = vec![
        "authorities.mirror.kind=\"embedded\"".to_string(),
        "authorities.mirror.schools=[\"*\"]".to_string(),
    ];
    let mut e = engine(tmp.path(), &sets);
    populate(&mut e, n);
    let mirror = EmbeddedTarget::open(&tmp.path().join("mirrors/mirror.sqlite")).expect("mirror");
    for chunk in desired_users(&e, "mirror").chunks(10_000) {
        for r in mirror.apply_batch(&chunk.iter().collect::<Vec<_>>()) {
            r.expect("apply");
        }
    }
    drop(mirror);
    let (secs, actual, different) = verify_users(&mut e, "mirror");
    assert_eq!((actual, different), (n as u64, 0));
    println!("embedded: verify users, {n} users, clean: {secs:.2} s (target < 5 s)");
    let db = rusqlite::Connection::open(tmp.path().join("mirrors/mirror.sqlite")).expect("mirror");
    let changed = db
        .execute(
            "UPDATE resources SET attributes = json_set(attributes, '$.name.familyName', 'x') \
             WHERE rowid % 100 = 0",
            [],
        )
        .expect("drift");
    let (secs, _, different) = verify_users(&mut e, "mirror");
    assert_eq!(different, changed as u64);
    println!("embedded: verify users, {n} users, {different} different: {secs:.2} s");
}

fn scim(base: &Path) {
    let n: usize = arg("--users", 5000);
    let Some(bin) = scim::bin() else {
        println!("scim: skipped, no scim2-server (set SCIM2_SERVER_BIN)");
        return;
    };
    let port = scim::free_port();
    let _server = scim::start(&bin, port, &[]);
    let tmp = tempfile::tempdir_in(base).expect("tempdir");
    let token = scim::token_file(tmp.path());
    let data = tmp.path().join("data");
    let sets = vec![
        "authorities.idb.kind=\"scim\"".to_string(),
        format!("authorities.idb.url=\"http://127.0.0.1:{port}\""),
        format!("authorities.idb.token_file=\"{}\"", token.display()),
        "authorities.idb.schools=[\"*\"]".to_string(),
        "authorities.idb.mapping.school_groups=false".to_string(),
    ];
    let mut e = engine(&data, &sets);
    populate(&mut e, n);
    let target = e.authority("idb").expect("authority").open_target(&e).expect("target");
    let t = Instant::now();
    let desired = desired_users(&e, "idb");
    std::thread::scope(|s| {
        for part in desired.chunks(n.div_ceil(4).max(1)) {
            let target = &target;
            s.spawn(move || {
                for d in part {
                    target.apply(d).expect("create");
                }
            });
        }
    });
    println!(
        "scim: {n} users created on scim2-server in {:.1} s",
        t.elapsed().as_secs_f64()
    );

    // The raw listing: the same pages rollcall asks for.
    let t = Instant::now();
    let mut start = 1;
    let mut listed = 0usize;
    loop {
        let body = scim::request(port, "GET", &format!("/Users?startIndex={start}&count=200"), "").1;
        let v: serde_json::Value = serde_json::from_slice(&body).expect("page");
        let got = v["Resources"].as_array().map(Vec::len).unwrap_or(0);
        if got == 0 {
            break;
        }
        listed += got;
        start += got;
    }
    let raw = t.elapsed().as_secs_f64();
    assert_eq!(listed, n);
    let (secs, actual, different) = verify_users(&mut e, "idb");
    assert_eq!((actual, different), (n as u64, 0));
    println!(
        "scim: {n} users: raw listing {raw:.2} s, verify users {secs:.2} s; the listing is {:.0} % of the verify",
        100.0 * raw / secs
    );
}

fn main() {
    let base: PathBuf = arg("--dir", std::env::temp_dir());
    if wants("embedded", PARTS) {
        embedded(&base);
    }
    if wants("scim", PARTS) {
        scim(&base);
    }
}
