//! The sync-schools view through the real App and engine: add a school to
//! an authority (picker, initial-sync choice, y/n), remove it again with
//! delete-on-target (typed word), both audited by the engine; read-only
//! mode hides and refuses both.

use super::harness::Harness;
use rollcall::tui::action::Action;
use rollcall::tui::theme::Theme;

fn audit(h: &Harness) -> String {
    std::fs::read_to_string(h.data_dir().join("logs/audit.log")).expect("audit")
}

#[test]
fn add_a_school_then_remove_it_deleting_on_target() {
    let mut h = Harness::new();
    let before = h.rt.block_on(h.api.sync_schools(None)).expect("list");
    let first = before.first().expect("an authority").clone();
    let names = h.rt.block_on(h.api.school_names()).expect("schools");
    let school = names
        .iter()
        .find(|n| !first.schools.iter().any(|s| &s.school == *n))
        .expect("a school the first authority does not sync")
        .clone();
    h.type_str("0");
    assert!(
        h.screen().contains(&format!("Authority {}", first.authority)),
        "{}",
        h.screen()
    );
    h.type_str("a");
    assert!(
        h.screen().contains(&format!("Add a school to {}", first.authority)),
        "{}",
        h.screen()
    );
    h.type_str(&school);
    h.key(crossterm::event::KeyCode::Enter);
    assert!(h.screen().contains("add only"), "{}", h.screen());
    h.type_str("add only");
    h.key(crossterm::event::KeyCode::Enter);
    assert!(
        h.screen().contains(&format!("Sync {school} to {}?", first.authority)),
        "{}",
        h.screen()
    );
    h.type_str("y");
    let screen = h.screen();
    assert!(
        screen.contains(&format!("{} now syncs {school}", first.authority)),
        "{screen}"
    );
    let after =
        h.rt.block_on(h.api.sync_schools(Some(first.authority.clone())))
            .expect("list");
    let added = after[0].schools.iter().find(|s| s.school == school).expect("added");
    assert!(added.source.contains("data_dir"), "{added:?}");
    assert!(audit(&h).contains("sync-schools add"));

    // The first line matching the school is the first authority's.
    h.type_str("/");
    h.type_str(&school);
    h.key(crossterm::event::KeyCode::Enter);
    h.type_str("x");
    assert!(
        h.screen().contains("delete its objects on the target"),
        "{}",
        h.screen()
    );
    h.type_str("delete");
    h.key(crossterm::event::KeyCode::Enter);
    assert!(h.screen().contains("Type delete to confirm"), "{}", h.screen());
    // `y` alone does not confirm a typed confirmation.
    h.type_str("y");
    h.key(crossterm::event::KeyCode::Enter);
    let still =
        h.rt.block_on(h.api.sync_schools(Some(first.authority.clone())))
            .expect("list");
    assert!(
        still[0].schools.iter().any(|s| s.school == school),
        "removed without the word"
    );
    h.key(crossterm::event::KeyCode::Backspace);
    h.type_str("delete");
    h.key(crossterm::event::KeyCode::Enter);
    let screen = h.screen();
    assert!(
        screen.contains(&format!("{} no longer syncs {school}", first.authority)),
        "{screen}"
    );
    let gone =
        h.rt.block_on(h.api.sync_schools(Some(first.authority.clone())))
            .expect("list");
    assert!(!gone[0].schools.iter().any(|s| s.school == school), "{gone:?}");
    let a = audit(&h);
    assert!(
        a.contains("sync-schools remove") && a.contains("\"delete_on_target\":true"),
        "{a}"
    );
}

#[test]
fn read_only_hides_and_refuses_add_and_remove() {
    let mut h = Harness::with(true, Theme::default_theme());
    h.type_str("0");
    let screen = h.screen();
    assert!(screen.contains("Sync schools"), "{screen}");
    let footer = screen.lines().last().unwrap_or_default();
    assert!(!footer.contains("assign"), "{screen}");
    assert!(!screen.contains("a adds a school"), "{screen}");
    h.type_str("ax");
    assert!(h.app.overlay.is_none());
    h.app.dispatch(Action::AddSchool);
    assert!(h.screen().contains("refused: read-only"));
}

/// The facade's verify job on the demo's embedded mirror: it finishes with
/// a report whose summary matches the report the plain call gives.
#[test]
fn verify_runs_as_a_job_on_the_embedded_mirror() {
    use rollcall::engine::api::{JobKind, JobOutcome};
    use rollcall::engine::sync::verify::{VerifyKind, VerifyRequest};
    let mut h = Harness::new();
    let req = VerifyRequest {
        authority: "schulportal".into(),
        kind: VerifyKind::All,
        filter: None,
        fix: false,
    };
    let info = h.rt.block_on(h.api.start_verify(req.clone())).expect("started");
    assert_eq!(info.kind, JobKind::Verify);
    h.wait_jobs();
    let row = h.app.jobs.rows.first().expect("verify job").clone();
    let summary = row.result.expect("finished").expect("ok");
    let plain = h.rt.block_on(h.api.verify(req)).expect("verify");
    let expect = rollcall::tui::jobboard::summarize(&JobOutcome::Verify(Box::new(plain.clone())));
    assert_eq!(summary, expect);
    assert!(summary.starts_with("schulportal all: "), "{summary}");
    assert!(plain.expected > 0, "{plain:?}");
}

#[test]
fn verify_view_runs_a_job_and_read_only_hides_fix() {
    let mut h = Harness::new();
    h.type_str("9v");
    assert!(h.screen().contains("Verify which authority"), "{}", h.screen());
    h.type_str("schulportal");
    h.key(crossterm::event::KeyCode::Enter);
    h.type_str("users");
    h.key(crossterm::event::KeyCode::Enter);
    h.key(crossterm::event::KeyCode::Enter);
    h.wait_jobs();
    let screen = h.screen();
    assert!(screen.contains("schulportal (embedded) · users"), "{screen}");
    let r =
        h.rt.block_on(h.api.verify(rollcall::engine::sync::verify::VerifyRequest {
            authority: "schulportal".into(),
            kind: rollcall::engine::sync::verify::VerifyKind::Users,
            filter: None,
            fix: false,
        }))
        .expect("verify");
    let n = r.missing.len() + r.unexpected.len() + r.different.len();
    assert!(screen.contains(&format!("Differences · {n}")), "{screen}");

    let mut ro = Harness::with(true, Theme::default_theme());
    ro.type_str("9");
    let screen = ro.screen();
    let footer = screen.lines().last().unwrap_or_default();
    assert!(!footer.contains("fix"), "{screen}");
    ro.type_str("f");
    assert!(ro.app.overlay.is_none());
    ro.app.dispatch(Action::FixAll);
    assert!(ro.screen().contains("refused: read-only"));
}
