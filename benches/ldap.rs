//! LDAP benchmark. Import: generates a district (25 schools × 2,000 users
//! by default) with the demo generator and imports every school's feeds into
//! a fresh throwaway slapd; then exports what the import left in the
//! directory as LDIF and loads it with `ldapadd` into a second fresh slapd
//! with the same config, and with `slapadd -q` into a third, stopped one
//! (the physical limit of writing those entries); then re-imports one whole
//! school without changes. Listener (`listen`, on the imported district):
//! the first sync, catch-up after downtime, and the lag from a foreign
//! change's commit to its journal entry under a steady foreign load.
//!
//!     cargo bench --bench ldap
//!     cargo bench --bench ldap -- --schools 5 --users-per-school 500
//!     cargo bench --bench ldap -- import            # or: listen
//!     cargo bench --bench ldap -- import --one-by-one  # one import per feed
//!     cargo bench --bench ldap -- --set directory.ldap.max_in_flight=8
//!     cargo bench --bench ldap -- listen --catch-up 20000 --rate 2000 --seconds 10
//!
//! Prints the throughputs and their ratio (target ≥ 1.5), the no-change
//! re-import time (target < 1 s), the listener's catch-up rate (target ≥
//! 2,000 changes/s) and its lag under load (target p99 < 1 s).
#![allow(clippy::unwrap_used, unsafe_code)] // test and benchmark code: panics are failures; libc calls reviewed

#[path = "../tests/common/slapd.rs"]
mod slapd;

use rollcall::engine::config::LoadOptions;
use rollcall::engine::demo::district::{DistrictSpec, generate, write_feeds};
use rollcall::engine::import::ImportRequest;
use rollcall::engine::jobs::{Progress, ProgressEvent, Quiet};
use rollcall::engine::{Engine, Settings};
use std::collections::HashSet;
use std::process::Command;
use std::time::Instant;

/// The same allocator as the `rollcall` binary.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod common;
use common::{arg, cpu_seconds, pid_cpu_seconds, wants};
#[path = "ldap/listen.rs"]
mod listen;

/// Wall time per import phase (reading, planning, applying), summed over
/// runs: where the time goes.
#[derive(Default)]
struct Phases {
    current: Option<(&'static str, Instant)>,
    totals: Vec<(&'static str, f64)>,
    /// A batch import: plans made again.
    replanned: Option<usize>,
}

impl Phases {
    fn close(&mut self) {
        if let Some((phase, since)) = self.current.take() {
            let secs = since.elapsed().as_secs_f64();
            match self.totals.iter_mut().find(|(p, _)| *p == phase) {
                Some((_, t)) => *t += secs,
                None => self.totals.push((phase, secs)),
            }
        }
    }
}

impl Progress for Phases {
    fn update(&mut self, event: ProgressEvent) {
        if self.current.is_some_and(|(p, _)| p == event.phase) {
            return;
        }
        self.close();
        self.current = Some((event.phase, Instant::now()));
    }
}

fn request(f: &rollcall::engine::demo::district::FeedFile) -> ImportRequest {
    ImportRequest {
        school: f.school.clone(),
        roles: vec![f.role],
        file: f.path.clone(),
        ..ImportRequest::default()
    }
}

fn main() {
    // RUST_LOG=rollcall::store::ldap=debug shows where each batch's time goes.
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .init();
    }
    let schools = arg("--schools", 25);
    let per_school = arg("--users-per-school", 2000);
    let tmp = tempfile::tempdir().expect("tempdir");
    let district = generate(&DistrictSpec {
        schools,
        users_per_school: per_school,
        seed: 7,
    });
    let people = district.people.len();
    assert_eq!(people, schools * per_school, "the district's size");
    let feeds = write_feeds(&district, &tmp.path().join("feeds"), &HashSet::new()).expect("write feeds");
    drop(district);

    let parts = ["import", "listen"];
    let a = slapd::Slapd::start().expect("slapd (set SLAPD_BIN)");
    let base = format!("ou=district,{}", slapd::SUFFIX);
    let data = tmp.path().join("data");
    std::fs::create_dir_all(&data).expect("data dir");
    // Extra `--set KEY=VALUE` arguments go to rollcall's config.
    let args: Vec<String> = std::env::args().collect();
    let mut sets = a.sets(tmp.path(), &base);
    sets.extend(args.windows(2).filter(|w| w[0] == "--set").map(|w| w[1].clone()));
    let opts = LoadOptions {
        sets,
        ..LoadOptions::default()
    };
    let settings = Settings::load(&opts, Some(data), false).expect("settings");
    let mut engine = Engine::open(settings.clone()).expect("engine");

    // The district load: one batch (the next feed is planned while the
    // current one is written), or with --one-by-one one import per feed
    // (then the time per phase is shown).
    let t = Instant::now();
    let server_cpu = pid_cpu_seconds(a.pid().unwrap_or(0));
    let own_cpu = cpu_seconds();
    let mut phases = Phases::default();
    if args.iter().any(|a| a == "--one-by-one") {
        for f in &feeds {
            let o = engine.import(&request(f), &mut phases).expect("import");
            phases.close();
            assert!(o.refused.is_none(), "{:?}", o.refused);
        }
    } else {
        let reqs: Vec<ImportRequest> = feeds.iter().map(request).collect();
        let out = engine.import_batch(&reqs, &mut Quiet).expect("import batch");
        assert!(out.imports.iter().all(|o| o.refused.is_none()));
        phases.replanned = Some(out.replanned);
    }
    let import_secs = t.elapsed().as_secs_f64();
    let import_cpu = Cpu {
        server: pid_cpu_seconds(a.pid().unwrap_or(0)) - server_cpu,
        client: cpu_seconds() - own_cpu,
    };
    if wants("import", &parts) {
        compare(
            &a,
            &base,
            tmp.path(),
            &mut engine,
            &feeds,
            (import_secs, import_cpu),
            &phases,
            (schools, per_school),
        );
    }
    if wants("listen", &parts) {
        listen::run(
            &a,
            &base,
            &settings,
            &engine,
            arg("--catch-up", 20_000),
            arg("--rate", 2000.0),
            arg("--seconds", 10.0),
        );
    }
}

/// CPU seconds spent during a load: by the server (slapd) and by the client
/// (rollcall: the whole bench process, planning thread included; ldapadd).
#[derive(Clone, Copy)]
struct Cpu {
    server: f64,
    client: f64,
}

/// ldapadd and slapadd of what the import left, and the no-change re-import.
#[allow(clippy::too_many_arguments)]
fn compare(
    a: &slapd::Slapd,
    base: &str,
    tmp: &std::path::Path,
    engine: &mut Engine,
    feeds: &[rollcall::engine::demo::district::FeedFile],
    (import_secs, import_cpu): (f64, Cpu),
    phases: &Phases,
    (schools, per_school): (usize, usize),
) {
    let people: usize = schools * per_school;
    let rows: usize = feeds.iter().map(|f| f.rows).sum();

    // What the import left, as LDIF (user attributes only), for ldapadd.
    let ldif = tmp.join("district.ldif");
    let out = Command::new("ldapsearch")
        .args([
            "-x",
            "-LLL",
            "-o",
            "ldif-wrap=no",
            "-H",
            &a.url(),
            "-D",
            slapd::ROOT_DN,
            "-w",
            slapd::ROOT_PW,
        ])
        .args(["-b", base, "-E", "pr=1000/noprompt", "(objectClass=*)", "*"])
        .output()
        .expect("ldapsearch (ldap-utils)");
    assert!(
        out.status.success(),
        "ldapsearch: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Paged output carries "# pagedresults" comment lines; ldapadd skips comments.
    std::fs::write(&ldif, &out.stdout).expect("write ldif");
    let entries = out
        .stdout
        .split(|b| *b == b'\n')
        .filter(|l| l.starts_with(b"dn:"))
        .count();

    let b = slapd::Slapd::start().expect("slapd (set SLAPD_BIN)");
    let server_cpu = pid_cpu_seconds(b.pid().unwrap_or(0));
    let client_cpu = common::children_cpu_seconds();
    let t = Instant::now();
    let add = Command::new("ldapadd")
        .args(["-x", "-H", &b.url(), "-D", slapd::ROOT_DN, "-w", slapd::ROOT_PW, "-f"])
        .arg(&ldif)
        .output()
        .expect("ldapadd (ldap-utils)");
    let ldapadd_secs = t.elapsed().as_secs_f64();
    let ldapadd_cpu = Cpu {
        server: pid_cpu_seconds(b.pid().unwrap_or(0)) - server_cpu,
        client: common::children_cpu_seconds() - client_cpu,
    };
    assert!(
        add.status.success(),
        "ldapadd: {}",
        String::from_utf8_lossy(&add.stderr)
    );

    drop(b);
    let c = slapd::Slapd::offline(slapd::Options::default()).expect("slapd (set SLAPD_BIN)");
    let t = Instant::now();
    c.slapadd(&ldif);
    let slapadd_secs = t.elapsed().as_secs_f64();

    // No-change re-import of one whole school (all its role feeds).
    let school = feeds[0].school.clone();
    let school_feeds: Vec<_> = feeds.iter().filter(|f| f.school == school).collect();
    let school_rows: usize = school_feeds.iter().map(|f| f.rows).sum();
    let mut times = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        for f in &school_feeds {
            let o = engine.import(&request(f), &mut Quiet).expect("re-import");
            assert_eq!(o.created + o.modified + o.to_limbo + o.removed_school, 0);
        }
        times.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);

    if std::env::var_os("SLAPD_DEBUG").is_some() {
        // Operation counts of the import server (slapd -d stats).
        let log = std::fs::read_to_string(a.dir.path().join("slapd.log")).unwrap_or_default();
        let _ = std::fs::copy(a.dir.path().join("slapd.log"), "/tmp/slapd-rollcall.log");
        for op in ["ADD dn=", "MOD dn=", "MODRDN dn=", "DEL dn=", "SRCH base=", "BIND dn="] {
            println!("  slapd ops {op:<12} {}", log.matches(op).count());
        }
    }
    let ours = people as f64 / import_secs;
    let theirs = people as f64 / ldapadd_secs;
    println!("LDAP import benchmark: {schools} schools x {per_school} users");
    println!(
        "  users imported          {people} ({rows} feed rows in {} feeds)",
        feeds.len()
    );
    println!("  rollcall import         {import_secs:.1} s, {ours:.0} users/s");
    println!("  ldapadd of the result   {ldapadd_secs:.1} s ({entries} entries), {theirs:.0} users/s");
    let split: Vec<String> = phases.totals.iter().map(|(p, t)| format!("{p} {t:.1} s")).collect();
    match phases.replanned {
        Some(n) => {
            println!("  import                  one batch, next feed planned while writing; {n} plans made again")
        }
        None => println!("  import phases           {}", split.join(", ")),
    }
    // Where the time goes: slapd's write path is one core at most (mdb
    // writes one transaction at a time).
    for (who, secs, cpu) in [
        ("rollcall", import_secs, import_cpu),
        ("ldapadd", ldapadd_secs, ldapadd_cpu),
    ] {
        println!(
            "  slapd CPU under {who:<9}{:.1} s = {:.2} ms per user, busy {:.0} % of the wall time; client CPU {:.1} s ({:.0} %)",
            cpu.server,
            cpu.server * 1000.0 / people as f64,
            cpu.server * 100.0 / secs,
            cpu.client,
            cpu.client * 100.0 / secs
        );
    }
    println!(
        "  slapadd -q (offline)    {slapadd_secs:.1} s, {:.0} users/s: the physical limit",
        people as f64 / slapadd_secs
    );
    println!("  ratio rollcall/ldapadd  {:.2} (target >= 1.5)", ours / theirs);
    println!(
        "  no-change re-import     {school} ({school_rows} rows, {} feeds): median {:.0} ms, min {:.0} ms (target < 1000 ms)",
        school_feeds.len(),
        times[times.len() / 2],
        times[0]
    );
}
