//! Feed intake benchmark (issue 21).
//!
//!     cargo bench --bench intake                          # both parts, full size
//!     cargo bench --bench intake -- inbox --schools 50    # the drop folder, smaller
//!     cargo bench --bench intake -- http --reps 7         # the upload API only
//!     cargo bench --bench intake -- inbox --reference     # + import_batch of the same feeds
//!
//! * `inbox`: the demo district's feeds (N schools × M users, one file per
//!   school and role) are moved into the drop folder at once, as an SFTP
//!   script would (`mv`), with the intake running (watcher, `intake.workers`
//!   threads); timed from the first `mv` until every file's run ended.
//!   Prints users/s end to end; `--reference` also imports the same feeds
//!   with `import_batch` (the `cargo bench --bench import` figure) into a
//!   fresh data dir, for a ratio measured under the same load.
//! * `http`: a 2,000-user feed uploaded (reqwest, keep-alive) vs the same
//!   feed imported by `Engine::import` in-process and by the `rollcall
//!   import` command; alternating, each into a school of its own so every
//!   run creates its users. Prints medians and the ratios.
//!
//! `--set KEY=VALUE` (repeatable) changes the config of every data dir,
//! e.g. `--set import.password_scheme=ssha256`.

#![allow(clippy::unwrap_used, unsafe_code)] // test and benchmark code: panics are failures; libc calls reviewed

use rollcall::engine::config::LoadOptions;
use rollcall::engine::demo::district::{DistrictSpec, generate, write_feeds};
use rollcall::engine::import::ImportRequest;
use rollcall::engine::intake::Intake;
use rollcall::engine::jobs::Quiet;
use rollcall::engine::runs::RunStatus;
use rollcall::engine::{Engine, Settings};
use std::collections::HashSet;
use std::path::Path;
use std::time::{Duration, Instant};

/// The same allocator as the `rollcall` binary.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod common;
use common::{arg, wants};

fn sets(extra: &[String]) -> Vec<String> {
    let args: Vec<String> = std::env::args().collect();
    let mut out: Vec<String> = args
        .windows(2)
        .filter(|w| w[0] == "--set")
        .map(|w| w[1].clone())
        .collect();
    out.extend(extra.iter().cloned());
    out
}

fn settings(data: &Path, extra: &[String]) -> Settings {
    let opts = LoadOptions {
        sets: sets(extra),
        ..LoadOptions::default()
    };
    Settings::load(&opts, Some(data.to_path_buf()), false).expect("settings")
}

fn main() {
    let parts = ["inbox", "http"];
    if wants("inbox", &parts) {
        inbox();
    }
    if wants("http", &parts) {
        http();
    }
}

fn inbox() {
    let schools = arg("--schools", 500);
    let per_school = arg("--users-per-school", 2000);
    let workers = arg("--workers", 2usize);
    let tmp = tempfile::tempdir().expect("tempdir");
    let t = Instant::now();
    let district = generate(&DistrictSpec {
        schools,
        users_per_school: per_school,
        seed: 7,
    });
    let people = district.people.len();
    let staged = tmp.path().join("staged");
    let feeds = write_feeds(&district, &staged, &HashSet::new()).expect("write feeds");
    drop(district);
    let rows: usize = feeds.iter().map(|f| f.rows).sum();
    eprintln!(
        "generated {people} people, {} feeds, {rows} rows in {:.1} s",
        feeds.len(),
        t.elapsed().as_secs_f64()
    );
    let data = tmp.path().join("data");
    let inbox = data.join("inbox");
    for f in &feeds {
        std::fs::create_dir_all(inbox.join(&f.school)).expect("school folder");
    }
    let s = settings(
        &data,
        &[
            "intake.settle_secs=30".into(),
            "intake.scan_secs=1".into(),
            format!("intake.workers={workers}"),
        ],
    );
    let intake = Intake::start(&s).expect("intake");
    let t = Instant::now();
    for f in &feeds {
        std::fs::rename(&f.path, inbox.join(&f.school).join(format!("{}.csv", f.role.as_str()))).expect("drop");
    }
    let dropped = t.elapsed();
    let runs = rollcall::engine::runs::Runs::new(data.join("runs"));
    let processing = inbox.join(".processing");
    let busy = |dir: &Path| {
        std::fs::read_dir(dir)
            .map(|d| d.filter_map(|e| e.ok()).any(|e| e.path().is_dir()))
            .unwrap_or(false)
    };
    let mut last = Instant::now();
    loop {
        std::thread::sleep(Duration::from_millis(50));
        let waiting = feeds
            .iter()
            .any(|f| inbox.join(&f.school).join(format!("{}.csv", f.role.as_str())).exists());
        if !waiting && !busy(&processing) {
            break;
        }
        if last.elapsed() > Duration::from_secs(10) {
            let left = std::fs::read_dir(&processing).map(|d| d.count()).unwrap_or(0);
            eprintln!(
                "  {:.0} s: {left} claim(s) in progress or queued",
                t.elapsed().as_secs_f64()
            );
            last = Instant::now();
        }
    }
    let secs = t.elapsed().as_secs_f64();
    intake.stop();
    let all = runs
        .list(&|r| r.kind == rollcall::engine::runs::RunKind::Import, usize::MAX)
        .expect("runs");
    let ok = all.iter().filter(|r| r.status == RunStatus::Ok).count();
    let failed = std::fs::read_dir(inbox.join("failed")).map(|d| d.count()).unwrap_or(0);
    println!("intake: drop folder, {schools} schools × {per_school} users, {workers} workers");
    println!(
        "  feeds dropped (mv)     {} in {:.2} s",
        feeds.len(),
        dropped.as_secs_f64()
    );
    println!(
        "  imported               {ok} runs ok of {} runs; {failed} file(s) in failed/",
        all.len()
    );
    println!("  end to end             {secs:.1} s");
    println!(
        "  throughput             {:.0} users/s ({:.0} rows/s)",
        people as f64 / secs,
        rows as f64 / secs
    );
    assert_eq!(ok, feeds.len(), "every feed imported once");
    if std::env::args().any(|a| a == "--reference") {
        let reference = reference(tmp.path(), schools, per_school);
        println!(
            "  import_batch reference {reference:.0} users/s (same feeds, same load) → ratio {:.2}",
            people as f64 / secs / reference
        );
    }
}

/// `import_batch` of the same district into a fresh data dir (as `cargo
/// bench --bench import` does), users/s.
fn reference(tmp: &Path, schools: usize, per_school: usize) -> f64 {
    let district = generate(&DistrictSpec {
        schools,
        users_per_school: per_school,
        seed: 7,
    });
    let people = district.people.len();
    let feeds = write_feeds(&district, &tmp.join("ref-feeds"), &HashSet::new()).expect("write feeds");
    drop(district);
    let mut engine = Engine::open(settings(&tmp.join("ref-data"), &[])).expect("engine");
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
    engine.import_batch(&reqs, &mut Quiet).expect("batch import");
    people as f64 / t.elapsed().as_secs_f64()
}

fn feed(prefix: &str, n: usize) -> String {
    let mut text = String::from("record_uid,firstname,lastname,email,birthday,classes,role,schools\n");
    for i in 0..n {
        text.push_str(&format!(
            "{prefix}{i},Vorname{i},{prefix}Nachname{i},,,\"{}a\",,\n",
            i % 9 + 1
        ));
    }
    text
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn http() {
    use std::os::unix::fs::PermissionsExt;
    let reps = arg("--reps", 5usize);
    let users = arg("--users", 2000usize);
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    let token = "bench-token-not-secret";
    let token_file = tmp.path().join("token");
    std::fs::write(&token_file, token).expect("token");
    std::fs::set_permissions(&token_file, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let s = settings(
        &data,
        &[
            "intake.watch=false".into(),
            "intake.http.listen=127.0.0.1:0".into(),
            format!("intake.tokens.bench.token_file={}", token_file.display()),
            "intake.tokens.bench.schools=[\"*\"]".into(),
        ],
    );
    let intake = Intake::start(&s).expect("intake");
    let addr = intake.http_addr().expect("listening");
    let mut engine = Engine::open(s.clone()).expect("engine");
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(600))
        .build()
        .expect("client");
    let exe = env!("CARGO_BIN_EXE_rollcall");
    let (mut api, mut http, mut cli) = (Vec::new(), Vec::new(), Vec::new());
    let set_args: Vec<String> = sets(&[]).into_iter().flat_map(|s| ["--set".to_string(), s]).collect();
    // One warm-up of each, not counted.
    for rep in 0..=reps {
        let file = tmp.path().join(format!("e{rep}.csv"));
        std::fs::write(&file, feed(&format!("e{rep}-"), users)).expect("feed");
        let t = Instant::now();
        let o = engine
            .import(
                &ImportRequest {
                    school: format!("engine{rep}"),
                    roles: vec![rollcall::model::Role::Student],
                    file,
                    ..ImportRequest::default()
                },
                &mut Quiet,
            )
            .expect("import");
        let engine_secs = t.elapsed().as_secs_f64();
        assert_eq!(o.created as usize, users);

        let body = feed(&format!("h{rep}-"), users);
        let t = Instant::now();
        let r = client
            .post(format!("http://{addr}/v1/schools/http{rep}/feeds?role=student"))
            .bearer_auth(token)
            .body(body)
            .send()
            .expect("upload");
        let status = r.status();
        let out: serde_json::Value = serde_json::from_slice(&r.bytes().expect("body")).expect("json");
        let http_secs = t.elapsed().as_secs_f64();
        assert!(status.is_success(), "{out}");
        assert_eq!(out["created"].as_u64(), Some(users as u64));

        let file = tmp.path().join(format!("c{rep}.csv"));
        std::fs::write(&file, feed(&format!("c{rep}-"), users)).expect("feed");
        let t = Instant::now();
        let done = std::process::Command::new(exe)
            .arg("--data-dir")
            .arg(&data)
            .args(&set_args)
            .args([
                "import",
                "--school",
                &format!("cli{rep}"),
                "--role",
                "student",
                "--json",
            ])
            .arg(&file)
            .output()
            .expect("rollcall import");
        let cli_secs = t.elapsed().as_secs_f64();
        assert!(done.status.success(), "{}", String::from_utf8_lossy(&done.stderr));
        if rep > 0 {
            api.push(engine_secs);
            http.push(http_secs);
            cli.push(cli_secs);
        }
    }
    intake.stop();
    let (e, h, c) = (median(&mut api), median(&mut http), median(&mut cli));
    println!("intake: upload of a {users}-user feed, median of {reps}");
    println!("  Engine::import in-process   {:.1} ms", e * 1000.0);
    println!("  rollcall import (process)   {:.1} ms", c * 1000.0);
    println!("  HTTP upload to response     {:.1} ms", h * 1000.0);
    println!("  ratio HTTP / rollcall import {:.2}  (target ≤ 1.2)", h / c);
    println!("  ratio HTTP / Engine::import  {:.2}", h / e);
}
