//! The users view's "authorities" pane: what each authority holds for the
//! selected user, asked on demand from the real targets of the demo (two
//! embedded mirrors and an unreachable SCIM authority), and a difference
//! made by hand on a mirror showing up field by field.

use super::harness::{Harness, open};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use rollcall::model::UserState;
use rollcall::store::UserQuery;

/// An active user of lernplattform's school who has an e-mail address (so
/// lernplattform can map it), and the school.
pub fn user_of_first_school(h: &Harness) -> (String, String) {
    let engine = open(&h.data_dir(), false);
    let school = engine.config().authorities["lernplattform"].schools[0].clone();
    let users = engine
        .directory()
        .users(&UserQuery {
            school: Some(school.clone()),
            state: Some(UserState::Active),
            limit: Some(50),
            ..UserQuery::default()
        })
        .expect("users");
    let u = users
        .into_iter()
        .find(|u| u.email.is_some())
        .expect("a user with e-mail");
    (u.username, school)
}

pub fn open_authorities_pane(h: &mut Harness, username: &str) {
    h.type_str("3/");
    h.type_str(username);
    h.key(KeyCode::Enter);
    // Info → sync → history → authorities.
    h.type_str("dvvv");
}

#[test]
fn authorities_pane_shows_what_each_target_holds() {
    let mut h = Harness::new();
    let (user, _) = user_of_first_school(&h);
    open_authorities_pane(&mut h, &user);
    h.resize(160, 48);
    let screen = h.screen();
    assert!(screen.contains("[authorities]"), "{screen}");
    let line = |name: &str| {
        screen
            .lines()
            .find(|l| {
                l.contains(name)
                    && (l.contains("present") || l.contains("error") || l.contains("differs") || l.contains("missing"))
            })
            .unwrap_or_else(|| panic!("no line for {name}: {screen}"))
            .to_string()
    };
    assert!(line("schulportal").contains("present"), "{screen}");
    assert!(line("lernplattform").contains("present"), "{screen}");
    // Nothing listens on idbroker's port: its error, not a guess.
    assert!(line("idbroker").contains("error"), "{screen}");
    assert!(screen.contains("unreachable"), "{screen}");
}

#[test]
fn a_field_changed_on_the_mirror_shows_as_a_difference() {
    let mut h = Harness::new();
    let (user, _) = user_of_first_school(&h);
    let engine = open(&h.data_dir(), false);
    let key = engine
        .directory()
        .user_by_username(&user)
        .expect("read")
        .expect("user")
        .key;
    drop(engine);
    let ext = format!("{}:{}", key.source_uid, key.record_uid);
    let mirror = rusqlite::Connection::open(h.data_dir().join("mirrors/schulportal.sqlite")).expect("mirror");
    let n = mirror
        .execute(
            "UPDATE resources SET attributes = json_set(attributes, '$.name.familyName', 'Handmade') \
             WHERE class = 'user' AND external_id = ?1",
            [&ext],
        )
        .expect("update");
    assert_eq!(n, 1);
    open_authorities_pane(&mut h, &user);
    h.resize(160, 48);
    let screen = h.screen();
    assert!(screen.contains("differs"), "{screen}");
    assert!(
        screen
            .lines()
            .any(|l| l.contains("name.familyName") && l.contains("Handmade →")),
        "{screen}"
    );
    // Put it back; ^r asks again and the pane follows.
    mirror
        .execute(
            "UPDATE resources SET attributes = json_remove(attributes, '$.name.familyName') \
             WHERE class = 'user' AND external_id = ?1",
            [&ext],
        )
        .expect("update");
    h.app.on_key(KeyEvent::new(KeyCode::Char('r'), KeyModifiers::CONTROL));
    h.settle();
    let screen = h.screen();
    assert!(
        screen
            .lines()
            .any(|l| l.contains("name.familyName") && l.contains("(absent) →")),
        "{screen}"
    );
}

/// Asking the authorities is a read: read-only mode shows the pane, and
/// neither pane offers the sync it would refuse.
#[test]
fn read_only_shows_holdings_without_offering_a_sync() {
    let mut h = Harness::with(true, rollcall::tui::theme::Theme::default_theme());
    let (user, _) = user_of_first_school(&h);
    open_authorities_pane(&mut h, &user);
    let screen = h.screen();
    assert!(screen.contains("schulportal") && screen.contains("present"), "{screen}");
    assert!(!screen.contains("y schedules"), "{screen}");
    // Back to the sync pane (v cycles: authorities → info → sync).
    h.type_str("vv");
    let screen = h.screen();
    assert!(screen.contains("[sync]") && !screen.contains("y schedules"), "{screen}");
}
