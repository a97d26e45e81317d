//! Consequences before the confirmation (issue 17, point 9): adding a school
//! to an authority says how many objects would be queued and how many would
//! fail to map (and go to the trash) — and exactly that many do; removing
//! one says how many objects would be deleted on the target; the CLI has the
//! same dry run (`--dry-run`), and both take their defaults from the engine.

use super::harness::{Harness, open};
use crossterm::event::KeyCode;
use rollcall::engine::jobs::Quiet;
use rollcall::store::{Batch, UserChange, UserQuery};

/// A school lernplattform does not sync. Its users have no e-mail address
/// (the demo gives addresses in the first school only), which lernplattform
/// takes as userName: they cannot be mapped for it. `n` more lose theirs.
fn school_without_emails(h: &Harness, n: usize) -> String {
    let mut engine = open(&h.data_dir(), false);
    let synced = engine.authority_schools("lernplattform");
    let school = engine
        .directory()
        .schools()
        .expect("schools")
        .into_iter()
        .map(|s| s.name)
        .find(|s| !synced.contains(s) && s != "limbo")
        .expect("a school");
    let users = engine
        .directory()
        .users(&UserQuery {
            school: Some(school.clone()),
            limit: Some(n as u64),
            ..UserQuery::default()
        })
        .expect("users");
    let changes = users
        .into_iter()
        .map(|before| {
            let mut after = before.clone();
            after.email = None;
            UserChange::Update { before, after }
        })
        .collect();
    engine
        .directory_mut()
        .apply(&Batch {
            users: changes,
            ..Batch::default()
        })
        .expect("write");
    school
}

fn rollcall(h: &Harness, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_rollcall"))
        .arg("--data-dir")
        .arg(h.data_dir())
        .args(args)
        .output()
        .expect("rollcall")
}

#[test]
fn adding_a_school_says_how_many_objects_fail_to_map_before_asking() {
    let mut h = Harness::new();
    let school = school_without_emails(&h, 0);
    let trash_before = open(&h.data_dir(), false)
        .trash_list(Some("lernplattform"))
        .expect("trash")
        .len();
    h.resize(120, 40);
    h.type_str("0/lernplattform");
    h.key(KeyCode::Enter);
    h.type_str("a");
    h.type_str(&school);
    h.type_str(" ");
    h.key(KeyCode::Enter);
    let screen = h.screen();
    assert!(screen.contains("Add schools"), "{screen}");
    let line = screen
        .lines()
        .find(|l| l.contains("failing to map"))
        .unwrap_or_else(|| panic!("{screen}"));
    let failing: usize = line
        .split(" · ")
        .find(|p| p.contains("failing to map"))
        .and_then(|p| p.split_whitespace().next())
        .and_then(|n| n.replace(',', "").parse().ok())
        .expect("a count");
    assert!(failing > 0, "{line}");
    assert!(
        screen.contains("userName is required"),
        "the reason comes too: {screen}"
    );
    assert!(screen.contains("would be queued for lernplattform"), "{screen}");
    h.type_str("y");
    assert!(h.screen().contains("now syncs"), "{}", h.screen());
    // What the dry run said is what happens.
    let mut engine = open(&h.data_dir(), false);
    engine
        .sync_run(
            &rollcall::engine::sync::SyncOptions {
                authority: Some("lernplattform".into()),
                once: true,
                workers: None,
                max_wait: std::time::Duration::from_secs(1),
            },
            &mut Quiet,
        )
        .expect("sync");
    let trashed = engine.trash_list(Some("lernplattform")).expect("trash").len() - trash_before;
    assert_eq!(trashed, failing, "the dry run's count is what went to the trash");

    // Removing it says how many objects are deleted on the target.
    h.type_str("x");
    let screen = h.screen();
    assert!(
        screen.contains("[x] delete on target"),
        "the engine's default: {screen}"
    );
    h.key(KeyCode::Enter);
    let screen = h.screen();
    assert!(
        screen.contains("deleted on the target") && screen.contains("Type 'delete'"),
        "{screen}"
    );
    let line = screen
        .lines()
        .find(|l| l.contains("deleted on the target"))
        .expect("the count");
    let n: u64 = line
        .split_whitespace()
        .find_map(|w| w.replace(',', "").parse().ok())
        .expect("a number");
    assert!(n > 0, "{line}");
    h.key(KeyCode::Esc);
}

#[test]
fn the_cli_dry_run_writes_nothing_and_agrees_with_the_console() {
    let h = Harness::new();
    let school = school_without_emails(&h, 0);
    let out = rollcall(
        &h,
        &[
            "sync-schools",
            "add",
            "--authority",
            "lernplattform",
            &school,
            "--dry-run",
        ],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("dry run") && text.contains("failing to map") && text.contains("fails to map:"),
        "{text}"
    );
    let out = rollcall(
        &h,
        &[
            "--json",
            "sync-schools",
            "add",
            "--authority",
            "lernplattform",
            &school,
            "--dry-run",
        ],
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let users_without_email = open(&h.data_dir(), false)
        .directory()
        .users(&UserQuery {
            school: Some(school.clone()),
            ..UserQuery::default()
        })
        .expect("users")
        .iter()
        .filter(|u| u.email.is_none())
        .count();
    assert_eq!(v["unmappable"], users_without_email as u64, "{v}");
    assert_eq!(v["action"], "add");
    assert!(
        v["objects"].as_u64().unwrap_or(0) > v["unmappable"].as_u64().unwrap_or(0),
        "{v}"
    );
    let engine = open(&h.data_dir(), false);
    assert!(
        !engine.authority_schools("lernplattform").contains(&school),
        "a dry run assigns nothing"
    );
    assert!(engine.queue_show("lernplattform").expect("queue").is_empty());
    // Remove: the default deletes on the target; the dry run counts it.
    let first = engine.authority_schools("lernplattform")[0].clone();
    let out = rollcall(
        &h,
        &[
            "--json",
            "sync-schools",
            "remove",
            "--authority",
            "lernplattform",
            &first,
            "--dry-run",
        ],
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["schedule"], true, "delete on target by default: {v}");
    assert!(v["delete"].as_u64().unwrap_or(0) > 0, "{v}");
    assert!(engine.authority_schools("lernplattform").contains(&first));
    // A refusal is the same as without --dry-run (exit 3).
    let out = rollcall(
        &h,
        &[
            "sync-schools",
            "add",
            "--authority",
            "lernplattform",
            &first,
            "--dry-run",
        ],
    );
    assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stderr));
}
