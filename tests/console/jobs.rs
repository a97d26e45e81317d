//! Jobs tell the truth (issue 17, point 3): a finished job shows its last
//! done/total, `c` cancels the job under the cursor (not the first one
//! running), the engine records a cancelled run as `cancelled` (also in
//! `rollcall runs list`), and running, done, cancelled and failed jobs each
//! say so — at 80 columns too.

use super::harness::{Harness, open, stalled_server};
use crossterm::event::KeyCode;
use rollcall::engine::import::ImportRequest;
use rollcall::engine::runs::{RunKind, RunStatus};
use rollcall::tui::jobboard::JobState;
use rollcall::tui::theme::Theme;
use std::time::{Duration, Instant};

/// Settles until `done` holds (a job event came), at most 20 s.
fn until(h: &mut Harness, what: &str, done: impl Fn(&Harness) -> bool) {
    let start = Instant::now();
    loop {
        h.settle();
        if done(h) {
            return;
        }
        assert!(start.elapsed() < Duration::from_secs(20), "waited for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_finished_import_shows_its_last_done_of_total() {
    let mut h = Harness::new();
    let feed = std::fs::read_dir(h.data_dir().join("feeds"))
        .expect("feeds")
        .flatten()
        .map(|e| e.path())
        .find(|p| p.to_string_lossy().contains("student"))
        .expect("a student feed");
    let school =
        h.rt.block_on(h.api.school_names())
            .expect("schools")
            .into_iter()
            .find(|s| feed.to_string_lossy().contains(s.as_str()))
            .expect("its school");
    h.rt.block_on(h.api.start_import(ImportRequest {
        school,
        file: feed,
        dry_run: true,
        ..ImportRequest::default()
    }))
    .expect("job");
    h.wait_jobs();
    let row = h.app.jobs.rows[0].clone();
    assert!(matches!(row.state, JobState::Done(_)), "{:?}", row.state);
    let total = row.total.expect("a total");
    assert!(total > 0);
    assert_eq!(row.done, total, "the bar ends full: {row:?}");
    h.type_str("7");
    let screen = h.screen();
    let line = screen.lines().find(|l| l.contains("import ")).expect("job row");
    assert!(
        line.contains("done") && line.contains(&format!("{total}/{total}")),
        "{line}"
    );
}

#[test]
fn c_cancels_the_job_under_the_cursor_and_the_run_says_cancelled() {
    // idbroker on a server that accepts and never answers: each drain waits
    // for its first answer (an unreachable one pauses at once instead).
    let port = stalled_server();
    let mut h = Harness::with_data(false, Theme::default_theme(), |dir| {
        let config = dir.join("rollcall.toml");
        let text = std::fs::read_to_string(&config).expect("config");
        assert!(text.contains("http://127.0.0.1:9/scim/v2"), "{text}");
        let text = text.replace(
            "http://127.0.0.1:9/scim/v2",
            &format!("http://127.0.0.1:{port}/scim/v2"),
        );
        std::fs::write(&config, text).expect("config");
        // The demo paused it when nothing answered on its old port.
        open(dir, false).authority_resume("idbroker").expect("resume");
    });
    // Two drains of the stalled authority: each waits for it.
    h.type_str("5n");
    h.type_str("n");
    until(&mut h, "two jobs", |h| h.app.jobs.rows.len() == 2);
    let (newer, older) = (h.app.jobs.rows[0].info.id, h.app.jobs.rows[1].info.id);
    h.type_str("7");
    assert!(h.screen().contains("running"), "{}", h.screen());
    // Focus the jobs table, go to the older job, cancel it.
    h.type_str("wj");
    h.type_str("c");
    until(&mut h, "the older job to end", |h| {
        h.app.jobs.get(older).is_some_and(|j| !j.running())
    });
    assert!(
        matches!(h.app.jobs.get(older).map(|j| &j.state), Some(JobState::Cancelled(_))),
        "{:?}",
        h.app.jobs.get(older)
    );
    // The other job is not cancelled by it (it runs on until its own
    // --max-wait ends it).
    assert!(
        !matches!(h.app.jobs.get(newer).map(|j| &j.state), Some(JobState::Cancelled(_))),
        "the other job was cancelled too: {:?}",
        h.app.jobs.get(newer)
    );
    assert!(h.screen().contains("cancelled"), "{}", h.screen());
    until(&mut h, "the newer job to end", |h| {
        h.app.jobs.get(newer).is_some_and(|j| !j.running())
    });
    // Cancelling a job that has ended says so. (Asked once both have ended:
    // the newer job's outcome, arriving in between, replaced the message.)
    h.type_str("c");
    assert!(h.screen().contains("nothing to cancel"), "{}", h.screen());
    let runs = open(&h.data_dir(), false)
        .runs()
        .list(&|r| r.kind == RunKind::Sync, 2)
        .expect("runs");
    let statuses: Vec<RunStatus> = runs.iter().map(|r| r.status).collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == RunStatus::Cancelled).count(),
        1,
        "the cancelled job's run, and only it, says cancelled: {statuses:?}"
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_rollcall"))
        .arg("--data-dir")
        .arg(h.data_dir())
        .args(["runs", "list", "--kind", "sync", "--limit", "2"])
        .output()
        .expect("rollcall runs list");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.matches("cancelled").count(), 1, "{text}");
}

#[test]
fn a_failed_job_says_why_at_80_columns() {
    let mut h = Harness::new();
    let school = h.rt.block_on(h.api.school_names()).expect("schools")[0].clone();
    h.rt.block_on(h.api.start_import(ImportRequest {
        school,
        file: h.data_dir().join("no-such-feed.csv"),
        dry_run: true,
        ..ImportRequest::default()
    }))
    .expect("job");
    h.wait_jobs();
    assert!(matches!(h.app.jobs.rows[0].state, JobState::Failed(_)));
    h.type_str("7");
    let screen = h.screen();
    let line = screen.lines().find(|l| l.contains("import ")).expect("job row");
    assert!(line.contains("failed") && line.contains("feed file"), "{screen}");
    // The full reason: describe.
    h.type_str("wd");
    let screen = h.screen();
    assert!(
        screen.contains("outcome") && screen.contains("no-such-feed.csv does not exist"),
        "{screen}"
    );
    h.key(KeyCode::Esc);
}
