//! The drop folder: complete files only, failed/ with reasons, the guard
//! never forced by itself, per-school order, a restart mid-import.

use super::{Daemon, appears_under, feed, import_runs, quick, rollcall, users_of, wait_for};
use std::fs;
use std::io::Write;
use std::path::Path;
use std::time::Duration;

fn inbox(data: &Path) -> std::path::PathBuf {
    data.join("inbox")
}

/// Writes `text` as `rel` inside the inbox the way an SFTP upload script
/// does: to a `.part` name, then `mv` into place.
fn drop_renamed(data: &Path, rel: &str, text: &str) {
    let dest = inbox(data).join(rel);
    fs::create_dir_all(dest.parent().unwrap()).unwrap();
    let part = dest.with_file_name(format!("{}.part", dest.file_name().unwrap().to_string_lossy()));
    fs::write(&part, text).unwrap();
    fs::rename(&part, &dest).unwrap();
}

fn runs_of_file(data: &Path, school: &str) -> Vec<serde_json::Value> {
    import_runs(data)
        .into_iter()
        .filter(|r| r["school"] == school)
        .collect()
}

fn inbox_is_settled(data: &Path) -> bool {
    let processing = fs::read_dir(inbox(data).join(".processing"))
        .map(|d| d.filter_map(|e| e.ok()).filter(|e| e.path().is_dir()).count())
        .unwrap_or(0);
    processing == 0
}

#[test]
fn a_file_written_slowly_in_pieces_is_not_taken_early() {
    let tmp = tempfile::tempdir().unwrap();
    let data = super::data_dir(tmp.path());
    // School folders exist before files arrive (as an SFTP setup has them):
    // a folder made at the moment a file is moved into it may show that
    // file only after settle_secs.
    fs::create_dir_all(inbox(&data).join("gsmitte")).unwrap();
    let daemon = Daemon::start(&data, &quick(1.0));
    let path = inbox(&data).join("gsmitte").join("student.csv");
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    let text = feed("slow", 40);
    let lines: Vec<&str> = text.lines().collect();
    let mut f = fs::File::create(&path).unwrap();
    // Four pieces, 0.4 s apart: longer in all than settle_secs, never
    // quiet for that long.
    for piece in lines.chunks(11) {
        for l in piece {
            writeln!(f, "{l}").unwrap();
        }
        f.flush().unwrap();
        std::thread::sleep(Duration::from_millis(400));
        assert!(path.exists(), "taken while it was still being written");
        assert!(runs_of_file(&data, "gsmitte").is_empty());
    }
    drop(f);
    wait_for(20, "the settled file to be imported", || {
        !path.exists() && inbox_is_settled(&data) && !runs_of_file(&data, "gsmitte").is_empty()
    });
    let runs = runs_of_file(&data, "gsmitte");
    assert_eq!(runs.len(), 1, "{runs:#?}");
    assert_eq!(runs[0]["status"], "ok");
    assert_eq!(runs[0]["origin"], "inbox");
    assert_eq!(runs[0]["counts"]["created"], 40, "every piece was imported");
    assert_eq!(users_of(&data, "gsmitte").len(), 40);
    daemon.stop();
}

#[test]
fn a_renamed_file_is_taken_at_once_and_archived_by_its_run() {
    let tmp = tempfile::tempdir().unwrap();
    let data = super::data_dir(tmp.path());
    // School folders exist before files arrive (as an SFTP setup has them):
    // a folder made at the moment a file is moved into it may show that
    // file only after settle_secs.
    fs::create_dir_all(inbox(&data).join("gsmitte")).unwrap();
    // Settling would take a minute: only the rename can make it quick.
    let daemon = Daemon::start(&data, &quick(60.0));
    let text = feed("mv", 5);
    let started = std::time::Instant::now();
    drop_renamed(&data, "gsmitte/student.csv", &text);
    wait_for(15, "the renamed file to be imported", || {
        runs_of_file(&data, "gsmitte").iter().any(|r| r["status"] == "ok") && inbox_is_settled(&data)
    });
    assert!(started.elapsed() < Duration::from_secs(30), "waited for settle_secs");
    assert!(!inbox(&data).join("gsmitte/student.csv").exists(), "it left the inbox");
    let run = &runs_of_file(&data, "gsmitte")[0];
    assert_eq!(run["origin"], "inbox");
    assert_eq!(run["args"]["roles"][0], "student");
    // The run archived exactly what was dropped.
    let id = run["id"].as_str().unwrap();
    let input = rollcall(&data, &[], &["runs", "input", id]);
    assert_eq!(String::from_utf8_lossy(&input.stdout), text);
    // Temp names are never taken.
    for name in [".hidden.csv", "student.csv.part", "teacher.csv.tmp"] {
        fs::write(inbox(&data).join("gsmitte").join(name), feed("t", 2)).unwrap();
    }
    let listed = rollcall(&data, &[], &["intake", "list", "--json"]);
    let listed: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(listed["waiting"].as_array().unwrap().len(), 0, "{listed:#}");
    daemon.stop();
    assert!(inbox(&data).join("gsmitte/student.csv.part").exists());
}

#[test]
fn a_bad_feed_lands_in_failed_with_its_run_and_reason() {
    let tmp = tempfile::tempdir().unwrap();
    let data = super::data_dir(tmp.path());
    // School folders exist before files arrive (as an SFTP setup has them):
    // a folder made at the moment a file is moved into it may show that
    // file only after settle_secs.
    fs::create_dir_all(inbox(&data).join("gsmitte")).unwrap();
    let daemon = Daemon::start(&data, &quick(60.0));
    drop_renamed(&data, "gsmitte/teacher.csv", "record_uid,firstname\nt1,Tina\n");
    drop_renamed(&data, "gsmitte/pupils.csv", &feed("p", 1));
    let failed = inbox(&data).join("failed/gsmitte/teacher.csv");
    let reason = failed.with_file_name("teacher.csv.error.txt");
    wait_for(15, "the bad feed in failed/", || reason.exists());
    assert!(failed.exists());
    let text = fs::read_to_string(&reason).unwrap();
    let run = runs_of_file(&data, "gsmitte").into_iter().next().expect("a run");
    assert_eq!(run["status"], "failed");
    assert_eq!(run["origin"], "inbox");
    assert!(
        text.contains(&format!("run: {}", run["id"].as_str().unwrap())),
        "{text}"
    );
    assert!(text.contains("missing mandatory column 'lastname'"), "{text}");
    // A name that is no feed (pupils is no role) settles into failed/ too,
    // without a run. Its settle time is a minute: restart with a short one.
    daemon.stop();
    let daemon = Daemon::start(&data, &quick(0.3));
    let unmatched = inbox(&data).join("failed/gsmitte/pupils.csv.error.txt");
    wait_for(15, "the unmatched file in failed/", || unmatched.exists());
    assert!(
        fs::read_to_string(&unmatched)
            .unwrap()
            .contains("does not match intake.pattern")
    );
    let listed = rollcall(&data, &[], &["intake", "list", "--json"]);
    let listed: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    let failed: Vec<&str> = listed["failed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["file"].as_str().unwrap())
        .collect();
    assert_eq!(failed.len(), 2, "{listed:#}");
    assert!(failed.contains(&"gsmitte/teacher.csv"));
    daemon.stop();
}

#[test]
fn a_guard_refusal_is_never_forced_but_waits_for_intake_retry_force() {
    let tmp = tempfile::tempdir().unwrap();
    let data = super::data_dir(tmp.path());
    // School folders exist before files arrive (as an SFTP setup has them):
    // a folder made at the moment a file is moved into it may show that
    // file only after settle_secs.
    fs::create_dir_all(inbox(&data).join("gsmitte")).unwrap();
    let daemon = Daemon::start(&data, &quick(60.0));
    drop_renamed(&data, "gsmitte/student.csv", &feed("g", 30));
    wait_for(15, "the first feed", || users_of(&data, "gsmitte").len() == 30);
    // The next feed would remove 29 of 30: the guard refuses.
    drop_renamed(&data, "gsmitte/student.csv", &feed("g", 1));
    let failed = inbox(&data).join("failed/gsmitte/student.csv");
    let reason = failed.with_file_name("student.csv.error.txt");
    wait_for(15, "the refused feed in failed/", || reason.exists());
    assert!(fs::read_to_string(&reason).unwrap().contains("refused"));
    assert_eq!(users_of(&data, "gsmitte").len(), 30, "nothing was removed");
    let refused = runs_of_file(&data, "gsmitte").into_iter().next().unwrap();
    assert_eq!(refused["status"], "refused");
    assert_eq!(refused["args"]["force"], false);
    // A retry without --force is refused again, and the file stays.
    let again = rollcall(&data, &[], &["intake", "retry", failed.to_str().unwrap()]);
    assert_eq!(
        again.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    assert!(failed.exists());
    assert_eq!(users_of(&data, "gsmitte").len(), 30);
    // The admin forces it: applied, audited, gone from failed/.
    let forced = rollcall(
        &data,
        &[],
        &["intake", "retry", "gsmitte/student.csv", "--force", "--json"],
    );
    assert!(forced.status.success(), "{}", String::from_utf8_lossy(&forced.stderr));
    let out: serde_json::Value = serde_json::from_slice(&forced.stdout).unwrap();
    assert_eq!(out["imported"], true);
    assert_eq!(out["import"]["to_limbo"], 29);
    assert!(!failed.exists() && !reason.exists());
    assert_eq!(users_of(&data, "gsmitte"), vec!["g0".to_string()]);
    let audit = fs::read_to_string(data.join("logs/audit.log")).unwrap();
    let retry = audit
        .lines()
        .rfind(|l| l.contains("\"intake retry\""))
        .expect("an audit entry");
    assert!(retry.contains("\"force\":true"), "{retry}");
    let run = runs_of_file(&data, "gsmitte").into_iter().next().unwrap();
    assert_eq!(run["origin"], "inbox");
    assert_eq!(run["args"]["force"], true);
    daemon.stop();
}

#[test]
fn files_of_one_school_are_imported_one_at_a_time_in_arrival_order() {
    let tmp = tempfile::tempdir().unwrap();
    let data = super::data_dir(tmp.path());
    // School folders exist before files arrive (as an SFTP setup has them):
    // a folder made at the moment a file is moved into it may show that
    // file only after settle_secs.
    fs::create_dir_all(inbox(&data).join("gsmitte")).unwrap();
    // Dropped while no daemon runs: found by the first scan, by mtime.
    let first = inbox(&data).join("gsmitte/student.csv");
    fs::create_dir_all(first.parent().unwrap()).unwrap();
    fs::write(&first, feed("s", 400)).unwrap();
    let second = inbox(&data).join("gsmitte/teacher.csv");
    fs::write(&second, feed("t", 3)).unwrap();
    let old = std::time::SystemTime::now() - Duration::from_secs(60);
    fs::File::options()
        .write(true)
        .open(&first)
        .unwrap()
        .set_modified(old)
        .unwrap();
    let daemon = Daemon::start(&data, &quick(0.3));
    wait_for(30, "both feeds", || {
        runs_of_file(&data, "gsmitte")
            .iter()
            .filter(|r| r["status"] == "ok")
            .count()
            == 2
    });
    let runs = runs_of_file(&data, "gsmitte");
    let (teacher, student) = (&runs[0], &runs[1]);
    assert_eq!(student["args"]["roles"][0], "student", "{runs:#?}");
    assert_eq!(teacher["args"]["roles"][0], "teacher");
    let (done, next) = (
        student["finished_at"].as_str().unwrap(),
        teacher["started_at"].as_str().unwrap(),
    );
    assert!(
        next >= done,
        "the second began ({next}) before the first ended ({done})"
    );
    daemon.stop();
}

#[test]
fn a_daemon_killed_mid_import_loses_no_file_and_imports_none_twice() {
    let tmp = tempfile::tempdir().unwrap();
    let data = super::data_dir(tmp.path());
    // School folders exist before files arrive (as an SFTP setup has them):
    // a folder made at the moment a file is moved into it may show that
    // file only after settle_secs.
    fs::create_dir_all(inbox(&data).join("gsmitte")).unwrap();
    let daemon = Daemon::start(&data, &quick(60.0));
    let text = feed("k", 6000);
    drop_renamed(&data, "gsmitte/student.csv", &text);
    // Killed while its import runs (its run marker is held).
    wait_for(30, "the import to start", || {
        fs::read_dir(data.join("runs/.active"))
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().to_string())
                    .any(|n| n.contains("-import-") && !n.starts_with('.'))
            })
            .unwrap_or(false)
    });
    daemon.kill();
    assert!(!inbox(&data).join("gsmitte/student.csv").exists());
    let daemon = Daemon::start(&data, &quick(60.0));
    wait_for(60, "the import to finish after the restart", || {
        inbox_is_settled(&data) && runs_of_file(&data, "gsmitte").iter().any(|r| r["status"] == "ok")
    });
    daemon.stop();
    let runs = runs_of_file(&data, "gsmitte");
    let ok: Vec<_> = runs.iter().filter(|r| r["status"] == "ok").collect();
    assert_eq!(ok.len(), 1, "imported exactly once: {runs:#?}");
    assert!(
        runs.iter().all(|r| r["status"] == "ok" || r["status"] == "interrupted"),
        "{runs:#?}"
    );
    assert_eq!(users_of(&data, "gsmitte").len(), 6000);
    assert!(appears_under(&inbox(&data).join("failed"), "k1,").is_empty());
    let input = rollcall(&data, &[], &["runs", "input", ok[0]["id"].as_str().unwrap()]);
    assert_eq!(input.stdout, text.as_bytes(), "the run archived the file");
}

#[test]
fn files_waiting_together_are_imported_in_one_batch_and_a_bad_one_fails_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let data = super::data_dir(tmp.path());
    // Dropped while no daemon runs: the first scan takes all five at once.
    let schools = ["s1", "s2", "s3", "s4", "s5"];
    for (n, school) in schools.iter().enumerate() {
        let file = inbox(&data).join(school).join("student.csv");
        fs::create_dir_all(file.parent().unwrap()).unwrap();
        let text = match *school {
            "s3" => "record_uid,firstname\nx1,Xaver\n".to_string(),
            _ => feed(&format!("{school}-"), 20),
        };
        fs::write(&file, text).unwrap();
        let at = std::time::SystemTime::now() - Duration::from_secs(60 - n as u64);
        fs::File::options()
            .write(true)
            .open(&file)
            .unwrap()
            .set_modified(at)
            .unwrap();
    }
    let daemon = Daemon::start(&data, &quick(0.3));
    let reason = inbox(&data).join("failed/s3/student.csv.error.txt");
    wait_for(60, "four feeds imported and the bad one in failed/", || {
        reason.exists()
            && inbox_is_settled(&data)
            && ["s1", "s2", "s4", "s5"].iter().all(|s| users_of(&data, s).len() == 20)
    });
    daemon.stop();
    let text = fs::read_to_string(&reason).unwrap();
    assert!(
        text.contains("missing mandatory column 'lastname'"),
        "its own error: {text}"
    );
    for school in ["s1", "s2", "s4", "s5"] {
        let ok: Vec<_> = runs_of_file(&data, school)
            .into_iter()
            .filter(|r| r["status"] == "ok")
            .collect();
        assert_eq!(ok.len(), 1, "{school} imported exactly once");
        assert_eq!(ok[0]["origin"], "inbox");
    }
    assert!(users_of(&data, "s3").is_empty());
    // The batch ran: s1's import finished after s2's began (s2 was planned
    // while s1 was written).
    let (s1, s2) = (&runs_of_file(&data, "s1")[0], &runs_of_file(&data, "s2")[0]);
    assert!(
        s2["started_at"].as_str().unwrap() <= s1["finished_at"].as_str().unwrap(),
        "s1 {s1:#?}\ns2 {s2:#?}"
    );
}
