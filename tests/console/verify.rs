//! The verify view: fixing only the marked differences (the others stay
//! unqueued), the typed word when a marked object would be deleted, and the
//! running verify's progress shown in the view itself.

use super::harness::{Harness, fixed_now, open};
use crossterm::event::KeyCode;
use rollcall::engine::api::{EngineEvent, JobInfo, JobKind};
use rollcall::engine::sync::item::file_name;
use rollcall::model::{ObjectRef, UserState};
use rollcall::store::UserQuery;
use rollcall::tui::overlay::Overlay;

/// Deletes `n` users from schulportal's mirror by hand (they become
/// "missing") and returns their objects, none of them queued.
fn drift(h: &Harness, n: usize) -> Vec<ObjectRef> {
    let engine = open(&h.data_dir(), false);
    let queue = h.data_dir().join("queues/out/schulportal");
    let users = engine
        .directory()
        .users(&UserQuery {
            state: Some(UserState::Active),
            limit: Some(200),
            ..UserQuery::default()
        })
        .expect("users");
    let mirror = rusqlite::Connection::open(h.data_dir().join("mirrors/schulportal.sqlite")).expect("mirror");
    let mut out = Vec::new();
    for u in users {
        let object = ObjectRef::user(&u.key);
        if queue.join(file_name(&object)).exists() {
            continue;
        }
        let ext = format!("{}:{}", u.key.source_uid, u.key.record_uid);
        let gone = mirror
            .execute(
                "DELETE FROM resources WHERE class = 'user' AND external_id = ?1",
                [&ext],
            )
            .expect("delete");
        if gone == 1 {
            out.push(object);
        }
        if out.len() == n {
            break;
        }
    }
    assert_eq!(out.len(), n);
    out
}

fn queued(h: &Harness, o: &ObjectRef) -> bool {
    h.data_dir().join("queues/out/schulportal").join(file_name(o)).exists()
}

fn verify_users(h: &mut Harness, filter: &str) {
    h.type_str("9v");
    h.type_str("schulportal");
    h.key(KeyCode::Enter);
    h.type_str("users");
    h.key(KeyCode::Enter);
    h.type_str(filter);
    h.key(KeyCode::Enter);
    h.wait_jobs();
}

#[test]
fn fix_selected_queues_only_the_marked_rows() {
    let mut h = Harness::new();
    let objects = drift(&h, 2);
    verify_users(&mut h, "");
    let (first, other) = (objects[0].clone(), objects[1].clone());
    let screen = h.screen();
    assert!(screen.contains("Differences ·"), "{screen}");
    // Filter down to the first one and mark it; the mark outlives the filter.
    h.type_str("/");
    h.type_str(&first.to_string());
    h.key(KeyCode::Enter);
    assert!(h.screen().contains("Differences · 1"), "{}", h.screen());
    h.type_str(" ");
    h.key(KeyCode::Esc);
    assert!(h.screen().contains("1 marked"), "{}", h.screen());
    h.type_str("F");
    assert!(
        matches!(&h.app.overlay, Some(Overlay::Confirm(c)) if c.word.is_none()),
        "{}",
        h.screen()
    );
    assert!(
        h.screen().contains("1 marked object(s) on schulportal"),
        "{}",
        h.screen()
    );
    h.type_str("y");
    assert!(h.screen().contains("fix queued 1 item "), "{}", h.screen());
    assert!(queued(&h, &first), "the marked object is queued");
    assert!(!queued(&h, &other), "the unmarked one is not");
    let audit = std::fs::read_to_string(h.data_dir().join("logs/audit.log")).expect("audit");
    let last = audit
        .lines()
        .rev()
        .find(|l| l.contains("verify --fix"))
        .expect("audited");
    assert!(
        last.contains("\"selected\":1") && last.contains(&first.to_string()),
        "{last}"
    );
}

#[test]
fn fix_selected_needs_marks_and_the_word_to_delete() {
    let mut h = Harness::new();
    verify_users(&mut h, "");
    h.type_str("F");
    assert!(h.app.overlay.is_none());
    assert!(h.screen().contains("mark rows with Space first"), "{}", h.screen());
    // An object the target holds and the directory does not: unexpected.
    let mirror = rusqlite::Connection::open(h.data_dir().join("mirrors/schulportal.sqlite")).expect("mirror");
    mirror
        .execute(
            "INSERT INTO resources (class, external_id, attributes, updated_at) \
             VALUES ('user', ?1, '{\"userName\":\"ghost\"}', '2025-03-03T08:00:00Z')",
            [format!("{}:ghost-1", h.app.info.source_uid)],
        )
        .expect("insert");
    h.key(KeyCode::Esc);
    verify_users(&mut h, "");
    h.type_str("/unexpected");
    h.key(KeyCode::Enter);
    assert!(h.screen().contains("ghost"), "{}", h.screen());
    h.type_str(" F");
    assert!(
        matches!(&h.app.overlay, Some(Overlay::Confirm(c)) if c.word.as_deref() == Some("fix")),
        "{}",
        h.screen()
    );
    assert!(h.screen().contains("DELETED on the target"), "{}", h.screen());
}

#[test]
fn a_running_verify_shows_its_progress_in_the_view() {
    let mut h = Harness::new();
    h.type_str("9");
    let info = JobInfo {
        id: 77,
        kind: JobKind::Verify,
        label: "verify schulportal users".into(),
        dry_run: false,
        started_at: fixed_now() - chrono::Duration::seconds(4),
    };
    h.app.on_engine(EngineEvent::JobStarted(info));
    h.app.on_engine(EngineEvent::JobProgress {
        id: 77,
        phase: "listing users",
        done: 12_000,
        total: Some(48_000),
    });
    h.resize(160, 48);
    let screen = h.screen();
    let line = screen
        .lines()
        .find(|l| l.contains("progress"))
        .unwrap_or_else(|| panic!("no progress line: {screen}"));
    assert!(
        line.contains("12,000/48,000 · 3,000/s · ETA 12.0s · listing users · c cancels"),
        "{line}"
    );
    super::shoot(&mut h, "verify-running");
}
