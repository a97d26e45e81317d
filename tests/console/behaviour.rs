//! What the console does: restore from limbo, filters, read-only, import
//! dry run then apply, purge confirmation, quitting with running jobs, and an
//! event flood that must not stall input.

use super::harness::Harness;
use crossterm::event::{Event, KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use rollcall::engine::api::{EngineEvent, JobInfo, JobKind};
use rollcall::model::UserState;
use rollcall::store::UserQuery;
use rollcall::tui::theme::Theme;
use rollcall::tui::views::ViewId;

fn first_limbo_user(h: &Harness) -> String {
    let engine = super::harness::open(&h.data_dir(), false);
    engine.limbo_list().expect("limbo")[0].username.clone()
}

#[test]
fn restore_from_limbo_through_picker_and_confirmation() {
    let mut h = Harness::new();
    let user = first_limbo_user(&h);
    h.type_str("4");
    assert!(h.screen().contains(&user), "{}", h.screen());
    h.type_str("r");
    assert!(h.screen().contains(&format!("Restore {user} into")), "{}", h.screen());
    h.key(KeyCode::Enter);
    assert!(h.screen().contains("Restore from limbo"));
    h.type_str("y");
    assert!(h.screen().contains("restored"), "{}", h.screen());
    let engine = super::harness::open(&h.data_dir(), false);
    let u = engine.directory().user_by_username(&user).expect("read").expect("user");
    assert_eq!(u.state, UserState::Active);
    let audit = std::fs::read_to_string(h.data_dir().join("logs/audit.log")).expect("audit");
    assert!(audit.contains("limbo restore") && audit.contains(&user));
}

#[test]
fn slash_filters_users_and_esc_clears() {
    let mut h = Harness::new();
    h.type_str("3");
    let all = h.screen();
    assert!(all.contains("users"), "{all}");
    let engine = super::harness::open(&h.data_dir(), false);
    let some = engine
        .directory()
        .users(&UserQuery {
            limit: Some(1),
            offset: 7,
            ..UserQuery::default()
        })
        .expect("users")[0]
        .username
        .clone();
    h.type_str("/");
    h.type_str(&some);
    let screen = h.screen();
    assert!(
        screen.contains(&format!("/{some}")) && screen.contains("1 user "),
        "{screen}"
    );
    h.key(KeyCode::Esc);
    assert!(!h.screen().contains(&format!("/{some}")));
}

#[test]
fn read_only_hides_and_refuses_destructive_actions() {
    let mut h = Harness::with(true, Theme::default_theme());
    h.type_str("4");
    let screen = h.screen();
    assert!(screen.contains("READ-ONLY"));
    assert!(!screen.contains("restore"), "footer must not offer restore: {screen}");
    h.type_str("x");
    assert!(h.app.overlay.is_none(), "no purge confirmation in read-only");
    h.app.dispatch(rollcall::tui::action::Action::PurgeUser);
    assert!(h.screen().contains("refused: read-only"));
    h.type_str("?");
    assert!(h.screen().contains("hidden"));
    // The engine refuses too, whatever the console does.
    let user = first_limbo_user(&h);
    let err = h.rt.block_on(h.api.limbo_purge_user(user)).expect_err("refused");
    assert!(err.to_string().contains("read-only"));
}

#[test]
fn import_dry_run_previews_then_applies() {
    let mut h = Harness::new();
    // Edit one feed so the plan has something to do: drop its last row.
    let feeds = h.data_dir().join("feeds");
    let mut files: Vec<_> = walk(&feeds)
        .into_iter()
        .filter(|p| p.to_string_lossy().contains("student"))
        .collect();
    files.sort();
    let feed = files[0].clone();
    let text = std::fs::read_to_string(&feed).expect("feed");
    let mut lines: Vec<&str> = text.lines().collect();
    lines.pop();
    std::fs::write(&feed, lines.join("\n") + "\n").expect("write");
    let school = feed
        .file_name()
        .expect("name")
        .to_string_lossy()
        .split('-')
        .take(3)
        .collect::<Vec<_>>()
        .join("-");
    let school = school.trim_end_matches(".csv").to_string();
    let school_dir = h.rt.block_on(h.api.school_names()).expect("schools");
    let school = school_dir
        .iter()
        .find(|s| feed.to_string_lossy().contains(s.as_str()))
        .cloned()
        .unwrap_or(school);

    h.type_str("7i");
    assert!(h.screen().contains("Import into school"), "{}", h.screen());
    h.type_str(&school);
    h.key(KeyCode::Enter);
    h.key(KeyCode::Enter); // student
    h.type_str(&feed.display().to_string());
    h.key(KeyCode::Enter);
    h.wait_jobs();
    let screen = h.screen();
    assert!(screen.contains("Apply import"), "{screen}");
    assert!(
        screen.contains("to limbo 1") || screen.contains("removed school 1"),
        "{screen}"
    );
    // Removals need the school's name typed.
    h.type_str(&school);
    h.key(KeyCode::Enter);
    h.wait_jobs();
    let runs = super::harness::open(&h.data_dir(), false)
        .runs()
        .list(&|_| true, 3)
        .expect("runs");
    assert!(!runs[0].dry_run && runs[1].dry_run, "a dry run, then the real import");
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).expect("dir").flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn purge_due_needs_a_dry_run_and_the_typed_word() {
    let mut h = Harness::new();
    h.type_str("7p");
    // As of far in the future: everyone in limbo is due.
    h.type_str("2100-01-01");
    h.key(KeyCode::Enter);
    h.wait_jobs();
    assert!(h.screen().contains("Purge limbo"), "{}", h.screen());
    h.type_str("y");
    h.key(KeyCode::Enter);
    assert!(h.app.overlay.is_some(), "y is not the word");
    h.type_str("\u{8}");
    let Some(rollcall::tui::overlay::Overlay::Confirm(c)) = &mut h.app.overlay else {
        panic!("confirm")
    };
    c.typed.clear();
    h.type_str("purge");
    h.key(KeyCode::Enter);
    h.wait_jobs();
    let engine = super::harness::open(&h.data_dir(), false);
    assert!(engine.limbo_list().expect("limbo").is_empty());
}

#[test]
fn quitting_with_running_jobs_asks_first() {
    let mut h = Harness::new();
    h.app.on_engine(EngineEvent::JobStarted(JobInfo {
        id: 99,
        kind: JobKind::Import,
        label: "import gs-x student".into(),
        dry_run: false,
        started_at: chrono::Utc::now(),
    }));
    h.type_str("q");
    assert!(!h.app.quit);
    assert!(h.screen().contains("still running"));
    h.type_str("y");
    assert!(h.app.quit);
}

#[test]
fn palette_jumps_to_views() {
    let mut h = Harness::new();
    h.type_str(":limbo");
    h.key(KeyCode::Enter);
    assert_eq!(h.app.current, ViewId::Limbo);
    h.type_str(":sch");
    h.key(KeyCode::Enter);
    assert_eq!(h.app.current, ViewId::Schools);
    h.key(KeyCode::Enter); // open the selected school's users
    assert_eq!(h.app.current, ViewId::Users);
    assert!(h.screen().contains("school "), "{}", h.screen());
}

/// A flood of job progress must not stall input or cost a frame per event.
#[test]
fn event_flood_is_coalesced_and_input_still_handled() {
    let mut h = Harness::new();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    for i in 0..200_000u64 {
        let _ = tx.send(EngineEvent::JobProgress {
            id: 1,
            phase: "planning",
            done: i,
            total: Some(200_000),
        });
    }
    let keys = futures_util::stream::iter(vec![
        Ok(Event::Key(KeyEvent::new(KeyCode::Char('4'), KeyModifiers::NONE))),
        Ok(Event::Key(KeyEvent::new(KeyCode::Char('q'), KeyModifiers::NONE))),
    ]);
    let backend = TestBackend::new(80, 24);
    let mut term = Terminal::new(backend).expect("term");
    let api = h.api.clone();
    let start = std::time::Instant::now();
    h.rt.block_on(rollcall::tui::event_loop::run(
        &mut term,
        &mut h.app,
        api,
        rx,
        keys,
        30,
        &mut rollcall::tui::event_loop::NoHost,
    ))
    .expect("loop");
    assert!(h.app.quit);
    assert_eq!(
        h.app.current,
        ViewId::Limbo,
        "input was handled before the flood drained"
    );
    assert!(start.elapsed().as_secs() < 5);
    drop(tx);
}
