//! Feed benchmark (issue: feed formats).
//!
//!     cargo bench --bench feeds                # 1,000,000 JSON-lines records
//!     cargo bench --bench feeds -- --records 200000 [--parse-only]
//!
//! 1. Parsing and mapping (read → map → validate, no directory) of a JSON-lines
//!    feed: records/s.
//! 2. A no-change re-import of one 2,000-user school (all roles in one file)
//!    in every format: median of 7 runs.
#![allow(clippy::unwrap_used, unsafe_code)] // test and benchmark code: panics are failures; libc calls reviewed

use rollcall::engine::config::LoadOptions;
use rollcall::engine::demo::district::{Appearance, DistrictSpec, Person, generate};
use rollcall::engine::import::ImportRequest;
use rollcall::engine::jobs::Quiet;
use rollcall::engine::{Engine, Settings};
use std::collections::BTreeSet;
use std::io::Write;
use std::path::Path;
use std::time::Instant;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod common;
use common::{arg, cpu_seconds};

fn esc(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

fn xml_esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('"', "&quot;")
}

type Row<'a> = (&'a Person, &'a Appearance);

/// The people of school `school` with their appearance there, or (`None`)
/// everybody with their home school.
fn rows(people: &[Person], school: Option<usize>) -> Vec<Row<'_>> {
    people
        .iter()
        .filter_map(|p| match school {
            Some(s) => p.appearances.iter().find(|a| a.school == s).map(|a| (p, a)),
            None => p.appearances.first().map(|a| (p, a)),
        })
        .collect()
}

fn write_feed(path: &Path, format: &str, people: &[Person], school: Option<usize>, school_name: &str) {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).expect("create"));
    match format {
        "jsonl" | "json" => {
            if format == "json" {
                writeln!(f, "[").unwrap();
            }
            let mut first = true;
            for (p, a) in rows(people, school) {
                let classes: Vec<String> = a.classes.iter().map(|c| esc(c)).collect();
                let sep = if format == "json" && !first { "," } else { "" };
                first = false;
                writeln!(
                    f,
                    "{sep}{{\"record_uid\":{},\"firstname\":{},\"lastname\":{},\"birthday\":\"{}\",\"classes\":[{}],\"role\":\"{}\",\"schools\":{}}}",
                    esc(&p.record_uid),
                    esc(p.firstname),
                    esc(p.lastname),
                    p.birthday,
                    classes.join(","),
                    a.role.as_str(),
                    esc(school_name)
                )
                .unwrap();
            }
            if format == "json" {
                writeln!(f, "]").unwrap();
            }
        }
        "csv" | "tsv" => {
            let d = if format == "csv" { ',' } else { '\t' };
            writeln!(
                f,
                "record_uid{d}firstname{d}lastname{d}birthday{d}classes{d}role{d}schools"
            )
            .unwrap();
            for (p, a) in rows(people, school) {
                let classes = a.classes.join(",");
                let classes = if format == "csv" {
                    format!("\"{classes}\"")
                } else {
                    classes
                };
                writeln!(
                    f,
                    "{}{d}{}{d}{}{d}{}{d}{}{d}{}{d}{}",
                    p.record_uid,
                    p.firstname,
                    p.lastname,
                    p.birthday,
                    classes,
                    a.role.as_str(),
                    school_name
                )
                .unwrap();
            }
        }
        "xml" => {
            writeln!(f, "<users>").unwrap();
            for (p, a) in rows(people, school) {
                writeln!(
                    f,
                    "  <user record_uid=\"{}\" firstname=\"{}\" lastname=\"{}\" birthday=\"{}\" classes=\"{}\" role=\"{}\" schools=\"{}\"/>",
                    xml_esc(&p.record_uid),
                    xml_esc(p.firstname),
                    xml_esc(p.lastname),
                    p.birthday,
                    xml_esc(&a.classes.join(",")),
                    a.role.as_str(),
                    school_name
                )
                .unwrap();
            }
            writeln!(f, "</users>").unwrap();
        }
        _ => unreachable!(),
    }
    f.flush().unwrap();
}

fn engine(dir: &Path) -> Engine {
    Engine::open(Settings::load(&LoadOptions::default(), Some(dir.to_path_buf()), false).expect("settings"))
        .expect("engine")
}

fn main() {
    let records: usize = arg("--records", 1_000_000);
    let tmp = tempfile::tempdir().expect("tempdir");

    // 1. Parse and map a JSON-lines feed.
    let per_school = 2000;
    let district = generate(&DistrictSpec {
        schools: records.div_ceil(per_school),
        users_per_school: per_school,
        seed: 11,
    });
    let big = tmp.path().join("big.jsonl");
    write_feed(
        &big,
        "jsonl",
        &district.people[..records.min(district.people.len())],
        None,
        "any",
    );
    let size = std::fs::metadata(&big).map(|m| m.len()).unwrap_or(0);
    let e = engine(&tmp.path().join("parse"));
    let req = ImportRequest {
        school: "any".into(),
        file: big.clone(),
        ..ImportRequest::default()
    };
    let t = Instant::now();
    let cpu0 = cpu_seconds();
    let feed = e.read_feed(&req, &BTreeSet::new(), &mut Quiet).expect("read");
    let secs = t.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu0;
    let n = feed.rows.len() + feed.errors.len();
    assert!(feed.errors.is_empty(), "{:?}", feed.errors.first());
    println!("feeds benchmark");
    println!(
        "  parse + map + validate  {n} JSON-lines records ({:.0} MB) in {secs:.2} s = {:.0} records/s",
        size as f64 / 1e6,
        n as f64 / secs
    );
    // CPU time (user + system, all threads) is what a busy machine does not
    // inflate: records per CPU-second is the rate on an idle core.
    println!(
        "  CPU time {cpu:.2} s = {:.0} records per CPU-second",
        n as f64 / cpu.max(1e-9)
    );
    drop(feed);
    if std::env::args().any(|a| a == "--parse-only") {
        return;
    }

    // 2. No-change re-import of one 2,000-user school in every format.
    let school = 0;
    let name = district.schools[school].name.clone();
    for format in ["csv", "tsv", "json", "jsonl", "xml"] {
        let dir = tmp.path().join(format!("re-{format}"));
        let path = tmp.path().join(format!("school.{format}"));
        write_feed(&path, format, &district.people, Some(school), &name);
        let mut e = engine(&dir);
        let req = ImportRequest {
            school: name.clone(),
            file: path,
            ..ImportRequest::default()
        };
        let first = e.import(&req, &mut Quiet).expect("import");
        assert!(
            first.refused.is_none() && first.errors.is_empty(),
            "{format}: {:?}",
            first.errors.first()
        );
        let mut times = Vec::new();
        for _ in 0..7 {
            let t = Instant::now();
            let o = e.import(&req, &mut Quiet).expect("re-import");
            times.push(t.elapsed().as_secs_f64() * 1000.0);
            assert_eq!(o.unchanged as usize, first.created as usize, "{format}");
        }
        times.sort_by(f64::total_cmp);
        println!(
            "  no-change re-import     {format:<5} {} users: median {:.1} ms (min {:.1})",
            first.created, times[3], times[0]
        );
    }
}
