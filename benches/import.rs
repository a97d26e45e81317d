//! Import benchmark (issue: core). Generates a district of N schools × M
//! users with the demo generator, imports every school's feeds into a fresh
//! embedded store, then re-imports one school without changes.
//!
//!     cargo bench --bench import                    # 500 × 2000 = 1,000,000 users
//!     cargo bench --bench import -- --schools 50    # smaller
//!     cargo bench --bench import -- --sequential    # one import after another, no batch
//!
//! Prints users/s end to end, peak RSS during the import (VmHWM, reset after
//! generating the feeds) and the no-change re-import time.
#![allow(clippy::unwrap_used, unsafe_code)] // test and benchmark code: panics are failures; libc calls reviewed

use rollcall::engine::config::LoadOptions;
use rollcall::engine::demo::district::{DistrictSpec, generate, write_feeds};
use rollcall::engine::import::ImportRequest;
use rollcall::engine::jobs::Quiet;
use rollcall::engine::{Engine, Settings};
use std::collections::HashSet;

/// The same allocator as the `rollcall` binary.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod common;
use common::arg;
use std::time::Instant;

fn vm_hwm_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

fn reset_hwm() {
    // Linux: writing 5 to clear_refs resets the peak RSS (VmHWM).
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn main() {
    let schools = arg("--schools", 500);
    let per_school = arg("--users-per-school", 2000);
    let tmp = tempfile::tempdir().expect("tempdir");
    let feeds_dir = tmp.path().join("feeds");

    let t = Instant::now();
    let district = generate(&DistrictSpec {
        schools,
        users_per_school: per_school,
        seed: 7,
    });
    let people = district.people.len();
    let feeds = write_feeds(&district, &feeds_dir, &HashSet::new()).expect("write feeds");
    drop(district);
    let rows: usize = feeds.iter().map(|f| f.rows).sum();
    eprintln!(
        "generated {people} people, {} feeds, {rows} rows in {:.1} s",
        feeds.len(),
        t.elapsed().as_secs_f64()
    );

    let settings = Settings::load(&LoadOptions::default(), Some(tmp.path().join("data")), false).expect("settings");
    let mut engine = Engine::open(settings).expect("engine");
    reset_hwm();
    let sequential = std::env::args().any(|a| a == "--sequential");
    // Role by role: the order the batch import plans best (see import::batch).
    let mut ordered: Vec<_> = feeds.iter().collect();
    ordered.sort_by_key(|f| f.role);
    let reqs: Vec<ImportRequest> = ordered
        .iter()
        .map(|f| ImportRequest {
            school: f.school.clone(),
            roles: vec![f.role],
            file: f.path.clone(),
            ..ImportRequest::default()
        })
        .collect();
    let t = Instant::now();
    let mut replanned = 0;
    if sequential {
        for (i, req) in reqs.iter().enumerate() {
            let o = engine.import(req, &mut Quiet).expect("import");
            assert!(o.refused.is_none(), "{:?}", o.refused);
            if i % 150 == 149 {
                eprintln!("  {} / {} feeds, {:.1} s", i + 1, reqs.len(), t.elapsed().as_secs_f64());
            }
        }
    } else {
        let out = engine.import_batch(&reqs, &mut Quiet).expect("batch import");
        assert!(out.imports.iter().all(|o| o.refused.is_none()));
        replanned = out.replanned;
    }
    let secs = t.elapsed().as_secs_f64();
    let hwm = vm_hwm_mib();

    // No-change re-import of one whole school (all its role feeds).
    let school = feeds[0].school.clone();
    let school_feeds: Vec<_> = feeds.iter().filter(|f| f.school == school).collect();
    let school_rows: usize = school_feeds.iter().map(|f| f.rows).sum();
    let mut times = Vec::new();
    for _ in 0..7 {
        let t = Instant::now();
        for f in &school_feeds {
            let req = ImportRequest {
                school: f.school.clone(),
                roles: vec![f.role],
                file: f.path.clone(),
                ..ImportRequest::default()
            };
            let o = engine.import(&req, &mut Quiet).expect("re-import");
            assert_eq!(o.created + o.modified + o.to_limbo + o.removed_school, 0);
        }
        times.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);

    if std::env::var_os("ROLLCALL_BENCH_KEEP").is_some() {
        let kept = tmp.keep();
        eprintln!("kept {}", kept.display());
    }
    println!(
        "import benchmark: {schools} schools x {per_school} users ({})",
        if sequential {
            "one import after another"
        } else {
            "one batch"
        }
    );
    println!("  users imported        {people}");
    println!("  feed rows             {rows} in {} feeds", feeds.len());
    println!("  import time           {secs:.1} s");
    println!("  throughput            {:.0} users/s", people as f64 / secs);
    println!("  peak RSS (import)     {hwm:.0} MiB");
    if !sequential {
        println!("  plans made again      {replanned}");
    }
    println!(
        "  no-change re-import   {school} ({school_rows} rows, {} feeds): median {:.1} ms, min {:.1} ms",
        school_feeds.len(),
        times[times.len() / 2],
        times[0]
    );
}
