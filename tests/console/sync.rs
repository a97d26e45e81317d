//! The sync views through the real App and engine: requeue from the trash
//! after inspecting an item, delete with y/n, bulk actions that need the
//! verb and count typed, pause and resume (audited), drain now as a job,
//! schedule a user, and read-only mode hiding and refusing all of it.

use super::harness::{Harness, open};
use crossterm::event::KeyCode;
use rollcall::engine::sync::item::file_name;
use rollcall::model::ObjectRef;
use rollcall::store::UserQuery;
use rollcall::tui::action::Action;
use rollcall::tui::overlay::Overlay;
use rollcall::tui::theme::Theme;

fn trash_items(h: &Harness) -> Vec<String> {
    let engine = open(&h.data_dir(), false);
    engine
        .trash_list(None)
        .expect("trash")
        .into_iter()
        .map(|e| e.item)
        .collect()
}

fn audit(h: &Harness) -> String {
    std::fs::read_to_string(h.data_dir().join("logs/audit.log")).expect("audit")
}

/// Puts `n` more items into lernplattform's trash, shaped like the one the
/// demo's sync left there (as an admin could, by moving files).
fn more_trash(h: &Harness, n: usize) {
    let dir = h.data_dir().join("queues/out/lernplattform/trash");
    let first = std::fs::read_dir(&dir)
        .expect("trash dir")
        .flatten()
        .next()
        .expect("an item")
        .path();
    let template: serde_json::Value = serde_json::from_slice(&std::fs::read(&first).expect("read")).expect("json");
    let engine = open(&h.data_dir(), false);
    let users = engine
        .directory()
        .users(&UserQuery {
            limit: Some(n as u64),
            offset: 3,
            ..UserQuery::default()
        })
        .expect("users");
    for u in users {
        let object = ObjectRef::user(&u.key);
        let mut item = template.clone();
        item["object"] = serde_json::to_value(&object).expect("object");
        std::fs::write(
            dir.join(file_name(&object)),
            serde_json::to_vec_pretty(&item).expect("json"),
        )
        .expect("write");
    }
}

#[test]
fn inspect_then_requeue_from_trash() {
    let mut h = Harness::new();
    let before = trash_items(&h);
    assert_eq!(before.len(), 1, "the demo leaves one trash item: {before:?}");
    let (authority, file) = before[0].split_once('/').expect("item");
    h.type_str(":trash");
    h.key(KeyCode::Enter);
    h.key(KeyCode::Enter);
    let screen = h.screen();
    assert!(
        screen.contains("would send now") && screen.contains("item file") && screen.contains("userName is required"),
        "{screen}"
    );
    // Folding the top-level "would send now" object hides its error line.
    h.key(KeyCode::Down);
    h.key(KeyCode::Down);
    h.key(KeyCode::Enter);
    assert!(h.screen().contains("\"would send now\": {…} 1 keys"), "{}", h.screen());
    h.type_str("r");
    assert!(h.screen().contains("Requeue 1 trash item"), "{}", h.screen());
    h.type_str("y");
    assert!(h.screen().contains("requeued 1 item:"), "{}", h.screen());
    assert!(trash_items(&h).is_empty());
    let engine = open(&h.data_dir(), false);
    let queued = engine.queue_show(authority).expect("queue");
    assert!(
        queued
            .iter()
            .any(|i| i.file == file && i.reason == rollcall::engine::sync::item::Reason::Requeue)
    );
    assert!(audit(&h).contains("trash requeue"));
}

#[test]
fn delete_asks_and_n_keeps_the_item() {
    let mut h = Harness::new();
    h.type_str("6x");
    assert!(h.screen().contains("Delete 1 trash item"), "{}", h.screen());
    h.type_str("n");
    assert!(h.app.overlay.is_none());
    assert_eq!(trash_items(&h).len(), 1, "n keeps it");
    h.type_str("xy");
    assert!(h.screen().contains("deleted 1 trash item"), "{}", h.screen());
    assert!(trash_items(&h).is_empty());
    assert!(audit(&h).contains("trash delete"));
}

#[test]
fn bulk_requeue_needs_the_verb_and_count_typed() {
    let mut h = Harness::new();
    more_trash(&h, 2);
    h.type_str("6");
    assert!(h.screen().contains("Trash · 3 items"), "{}", h.screen());
    h.type_str("  ");
    assert!(h.screen().contains("2 selected"), "{}", h.screen());
    h.type_str("a"); // clears
    h.type_str("a"); // selects all three
    assert!(h.screen().contains("3 selected"), "{}", h.screen());
    h.type_str("r");
    assert!(h.screen().contains("Type 'requeue 3'"), "{}", h.screen());
    h.type_str("y");
    h.key(KeyCode::Enter);
    assert!(h.app.overlay.is_some(), "y is not the confirmation");
    let Some(Overlay::Confirm(c)) = &mut h.app.overlay else {
        panic!("confirm")
    };
    c.typed.clear();
    h.type_str("requeue 3");
    h.key(KeyCode::Enter);
    assert!(h.screen().contains("requeued 3 items"), "{}", h.screen());
    assert!(trash_items(&h).is_empty());
}

#[test]
fn pause_resume_and_drain_an_authority() {
    let mut h = Harness::new();
    h.type_str("5");
    // idbroker, lernplattform, schulportal: select schulportal (2 queued).
    h.type_str("jj");
    assert!(h.screen().contains("Authority schulportal"), "{}", h.screen());
    h.type_str("p");
    assert!(h.screen().contains("Pause schulportal?"), "{}", h.screen());
    h.type_str("y");
    let screen = h.screen();
    assert!(screen.contains("paused schulportal"), "{screen}");
    let status = |h: &Harness| {
        open(&h.data_dir(), false)
            .queue_list(Some("schulportal"))
            .expect("queues")
            .remove(0)
    };
    assert!(status(&h).paused.is_some_and(|p| p.held_by.is_some()));
    // A paused authority keeps its queue: draining reports it left.
    h.type_str("n");
    h.wait_jobs();
    assert_eq!(status(&h).depth, 2);
    let row = h.app.jobs.rows.first().expect("drain job").clone();
    let summary = match row.state {
        rollcall::tui::jobboard::JobState::Done(s) => s,
        other => panic!("not done: {other:?}"),
    };
    assert!(summary.contains("paused by"), "{summary}");
    h.type_str("u");
    assert!(h.screen().contains("Resume schulportal?"), "{}", h.screen());
    h.type_str("y");
    assert!(h.screen().contains("resumed schulportal"), "{}", h.screen());
    assert!(status(&h).paused.is_none());
    h.type_str("n");
    h.wait_jobs();
    assert_eq!(status(&h).depth, 0, "drained");
    let a = audit(&h);
    assert!(a.contains("authority pause") && a.contains("authority resume"), "{a}");
}

#[test]
fn schedule_a_user_from_the_users_view() {
    let mut h = Harness::new();
    h.type_str("3dv");
    h.type_str("y");
    assert!(h.screen().contains("Schedule sync"), "{}", h.screen());
    h.type_str("y");
    assert!(h.screen().contains("scheduled "), "{}", h.screen());
    // The sync pane reloads after the change and lists the queued item.
    let screen = h.screen();
    assert!(screen.contains("pending"), "{screen}");
    assert!(audit(&h).contains("schedule user"));
}

#[test]
fn read_only_hides_and_refuses_sync_actions() {
    let mut h = Harness::with(true, Theme::default_theme());
    h.type_str("6");
    let screen = h.screen();
    assert!(!screen.contains("requeue") && !screen.contains("delete"), "{screen}");
    h.type_str("rx");
    assert!(h.app.overlay.is_none());
    h.app.dispatch(Action::Requeue);
    assert!(h.screen().contains("refused: read-only"));
    h.type_str("5");
    let screen = h.screen();
    let footer = screen.lines().last().unwrap_or_default();
    assert!(!footer.contains("pause") && !footer.contains("drain"), "{screen}");
    h.type_str("pn");
    assert!(h.app.overlay.is_none() && h.app.jobs.rows.is_empty());
    // The engine refuses too.
    for err in [
        h.rt.block_on(h.api.authority_pause("schulportal".into(), String::new()))
            .expect_err("pause"),
        h.rt.block_on(h.api.start_drain("schulportal".into()))
            .map(|_| ())
            .expect_err("drain"),
        h.rt.block_on(h.api.trash_requeue(trash_items(&h)))
            .map(|_| ())
            .expect_err("requeue"),
    ] {
        assert!(err.to_string().contains("read-only"), "{err}");
    }
    assert_eq!(trash_items(&h).len(), 1);
}

/// Jobs view: `n` picks an authority and syncs it now as a job, with its
/// outcome on the job board; read-only mode hides it.
#[test]
fn sync_an_authority_from_the_jobs_view() {
    let mut h = Harness::new();
    let before = h.rt.block_on(h.api.queue_list()).expect("queues");
    let depth = |qs: &[rollcall::engine::sync::QueueStatus]| {
        qs.iter()
            .find(|q| q.authority == "schulportal")
            .expect("schulportal")
            .depth
    };
    assert!(depth(&before) > 0, "the demo leaves schulportal items queued");
    h.type_str("7n");
    assert!(h.screen().contains("Sync which authority now"), "{}", h.screen());
    h.type_str("schulportal");
    h.key(KeyCode::Enter);
    h.wait_jobs();
    let row = h.app.jobs.rows.first().expect("a job").clone();
    assert_eq!(row.info.label, "sync schulportal (drain now)");
    assert!(
        matches!(row.state, rollcall::tui::jobboard::JobState::Done(_)),
        "{:?}",
        row.state
    );
    let after = h.rt.block_on(h.api.queue_list()).expect("queues");
    assert_eq!(depth(&after), 0, "drained");

    let mut ro = Harness::with(true, Theme::default_theme());
    ro.type_str("7n");
    assert!(ro.app.overlay.is_none());
    ro.app.dispatch(Action::Drain);
    assert!(ro.screen().contains("refused: read-only"));
}
