//! The sync-schools view through the real App and engine: add a school to
//! an authority (multi-select chooser, initial-sync option, y/n), remove it
//! again with delete-on-target (typed word), several schools at once and the
//! force option, all audited by the engine; read-only mode hides and refuses
//! them.

use super::harness::Harness;
use crossterm::event::KeyCode;
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
        h.screen().contains(&format!("Add schools to {}", first.authority)),
        "{}",
        h.screen()
    );
    // Filter to the school, mark it, switch the initial sync off.
    h.type_str(&school);
    h.type_str(" ");
    assert!(h.screen().contains(&format!("[x] {school}")), "{}", h.screen());
    h.key(KeyCode::Tab);
    h.type_str(" ");
    assert!(h.screen().contains("[ ] initial sync"), "{}", h.screen());
    h.key(KeyCode::Enter);
    assert!(
        h.screen().contains(&format!("Add {school} to {}?", first.authority)),
        "{}",
        h.screen()
    );
    assert!(h.screen().contains("Nothing is queued"), "{}", h.screen());
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
    let screen = h.screen();
    assert!(
        screen.contains(&format!("Remove schools from {}", first.authority))
            && screen.contains(&format!("[x] {school}")),
        "the school under the cursor comes marked: {screen}"
    );
    // Deleting on the target is the engine's default, as in the CLI.
    assert!(h.screen().contains("[x] delete on target"), "{}", h.screen());
    h.key(KeyCode::Enter);
    let screen = h.screen();
    assert!(screen.contains("Type 'delete'"), "{screen}");
    assert!(
        screen.contains("deleted on the target"),
        "the dry run's count comes first: {screen}"
    );
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

fn lern(h: &Harness) -> Vec<String> {
    h.rt.block_on(h.api.sync_schools(Some("lernplattform".into())))
        .expect("list")[0]
        .schools
        .iter()
        .map(|s| s.school.clone())
        .collect()
}

#[test]
fn several_schools_at_once_and_force_for_assigned_ones() {
    let mut h = Harness::new();
    let names = h.rt.block_on(h.api.school_names()).expect("schools");
    let before = lern(&h);
    assert_eq!(before.len(), 1, "{before:?}");
    let others: Vec<&String> = names.iter().filter(|n| !before.contains(n)).take(2).collect();
    h.type_str("0/lernplattform");
    h.key(KeyCode::Enter);
    h.type_str("a");
    // Mark two new schools and the one it syncs already.
    for name in others.iter().copied().chain(before.iter()) {
        h.type_str(name);
        h.type_str(" ");
        for _ in 0..name.len() {
            h.key(KeyCode::Backspace);
        }
    }
    assert!(h.screen().contains("3 chosen"), "{}", h.screen());
    h.key(KeyCode::Enter);
    assert!(
        h.screen().contains("syncs") && h.screen().contains("switch force on"),
        "{}",
        h.screen()
    );
    assert_eq!(lern(&h), before, "nothing added without force");
    // The chooser is gone; open it again, mark the same, force on.
    h.type_str("a");
    for name in others.iter().copied().chain(before.iter()) {
        h.type_str(name);
        h.type_str(" ");
        for _ in 0..name.len() {
            h.key(KeyCode::Backspace);
        }
    }
    h.key(KeyCode::Tab);
    h.key(KeyCode::Down);
    h.type_str(" ");
    assert!(h.screen().contains("[x] force"), "{}", h.screen());
    h.key(KeyCode::Enter);
    assert!(h.screen().contains("(force)?"), "{}", h.screen());
    h.type_str("y");
    let mut want: Vec<String> = before
        .iter()
        .cloned()
        .chain(others.iter().map(|s| s.to_string()))
        .collect();
    want.sort();
    let mut now = lern(&h);
    now.sort();
    assert_eq!(now, want);
    let a = audit(&h);
    assert!(a.contains("sync-schools add") && a.contains("\"forced\":[\""), "{a}");

    // Remove a school it does not sync: refused until force is on.
    let stray = names
        .iter()
        .find(|n| !want.contains(n))
        .expect("a school not synced")
        .clone();
    h.type_str("x");
    h.type_str(&stray);
    h.type_str(" ");
    h.key(KeyCode::Enter);
    assert!(h.screen().contains("does not sync"), "{}", h.screen());
    h.type_str("x");
    h.type_str(&stray);
    h.type_str(" ");
    // Keep the objects on the target (delete on target is on by default),
    // force on.
    h.key(KeyCode::Tab);
    h.type_str(" ");
    h.key(KeyCode::Down);
    h.type_str(" ");
    h.key(KeyCode::Enter);
    // The school under the cursor comes marked too.
    let screen = h.screen();
    assert!(
        screen.contains(&stray) && screen.contains("to lernplattform") && screen.contains("(force)?"),
        "{screen}"
    );
    h.type_str("y");
    assert!(audit(&h).contains("sync-schools remove"), "{}", audit(&h));
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
    let summary = match row.state {
        rollcall::tui::jobboard::JobState::Done(s) => s,
        other => panic!("not done: {other:?}"),
    };
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

/// The schools view names the authorities syncing each school, following
/// an assignment made in the sync-schools view.
#[test]
fn schools_view_names_the_authorities_syncing_each_school() {
    let mut h = Harness::new();
    let synced = lern(&h);
    let names = h.rt.block_on(h.api.school_names()).expect("schools");
    let other = names
        .iter()
        .find(|n| !synced.contains(n))
        .expect("another school")
        .clone();
    let line_of = |h: &mut Harness, school: &str| {
        h.resize(160, 48);
        let screen = h.screen();
        screen
            .lines()
            .find(|l| l.starts_with(&format!("│{school} ")))
            .unwrap_or_else(|| panic!("no row for {school}: {screen}"))
            .to_string()
    };
    h.type_str("2");
    assert!(line_of(&mut h, &synced[0]).contains("lernplattform"));
    assert!(!line_of(&mut h, &other).contains("lernplattform"));
    h.rt.block_on(h.api.sync_schools_add(rollcall::engine::sync::assign::SchoolsAdd {
        authority: "lernplattform".into(),
        schools: vec![other.clone()],
        ..Default::default()
    }))
    .expect("add");
    h.app.dispatch(Action::Refresh);
    h.settle();
    assert!(line_of(&mut h, &other).contains("lernplattform"), "{}", h.screen());
}
