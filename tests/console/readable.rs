//! Nothing hidden, cut off or obeyed (issue 17, points 2 and 7): data shown
//! escaped (the run input pane shows the feed decompressed, as text; names
//! with bidi overrides show them), every table's describe popup shows the
//! full text, cut cells end in `…`, a terminal below 80×24 gets a notice,
//! and the y/n line of a confirmation is never pushed out by its text.

use super::harness::{Harness, buffer_text, open};
use super::hostile::{HOSTILE, raw_controls};
use crossterm::event::KeyCode;
use rollcall::engine::import::ImportRequest;
use rollcall::engine::jobs::Quiet;

/// Imports (dry run) a feed whose names carry escape sequences, through
/// another connection as the CLI would; returns the run id.
fn hostile_dry_run(h: &Harness) -> String {
    let mut engine = open(&h.data_dir(), false);
    let school = engine.directory().schools().expect("schools")[0].name.clone();
    let feed = h.data_dir().join("hostile.csv");
    std::fs::write(
        &feed,
        format!(
            "record_uid,firstname,lastname,email,birthday,classes,role,schools\n\
             h1,Eve{HOSTILE},Null,,,,student,{school}\n"
        ),
    )
    .expect("feed");
    let outcome = engine
        .import(
            &ImportRequest {
                school,
                file: feed,
                dry_run: true,
                ..ImportRequest::default()
            },
            &mut Quiet,
        )
        .expect("import");
    outcome.run_id
}

#[test]
fn the_run_input_pane_shows_the_feed_as_text_escaped() {
    let mut h = Harness::new();
    hostile_dry_run(&h);
    h.type_str("7");
    h.key_mod(KeyCode::Char('r'), crossterm::event::KeyModifiers::CONTROL);
    h.key(KeyCode::Enter);
    h.type_str("vv");
    h.resize(160, 48);
    let buf = h.draw();
    let screen = buffer_text(&buf);
    assert!(screen.contains("[input]"), "{screen}");
    assert!(
        screen.contains("record_uid,firstname,lastname"),
        "the archived gzip is shown decompressed: {screen}"
    );
    assert!(
        screen.contains("\\x1b]0;pwned\\x07") && screen.contains("⟨U+202E⟩"),
        "escapes are shown, not obeyed: {screen}"
    );
    assert!(!raw_controls(&screen), "{screen:?}");
}

#[test]
fn bidi_overrides_in_names_are_shown_in_tables() {
    let mut h = Harness::new();
    let mut engine = open(&h.data_dir(), false);
    let mut u = engine
        .directory()
        .users(&rollcall::store::UserQuery {
            limit: Some(1),
            ..Default::default()
        })
        .expect("users")
        .remove(0);
    let before = u.clone();
    u.firstname = "Ann\u{202e}evil".into();
    engine
        .directory_mut()
        .apply(&rollcall::store::Batch {
            users: vec![rollcall::store::UserChange::Update {
                before,
                after: u.clone(),
            }],
            ..Default::default()
        })
        .expect("write");
    h.type_str("3");
    h.key_mod(KeyCode::Char('r'), crossterm::event::KeyModifiers::CONTROL);
    let screen = h.screen();
    assert!(screen.contains("Ann⟨U+202E⟩ev"), "{screen}");
    assert!(!raw_controls(&screen));
}

#[test]
fn describe_shows_a_long_trash_error_in_full() {
    let mut h = Harness::new();
    h.resize(120, 40);
    h.type_str("6");
    let error = h.rt.block_on(h.api.trash_list()).expect("trash")[0].error.clone();
    let screen = h.screen();
    assert!(!screen.contains(&error), "the table cuts the error: {screen}");
    assert!(screen.contains('…'), "a cut cell ends in …: {screen}");
    h.type_str("d");
    let screen = h.screen();
    let flat: String = screen
        .lines()
        .map(|l| l.trim_matches(|c| c == '│' || c == ' '))
        .collect::<Vec<_>>()
        .join(" ");
    assert!(flat.contains("Trash item"), "{screen}");
    // Wrapped over lines, every word of the error is there.
    for word in error.split_whitespace() {
        assert!(flat.contains(word), "{word} missing: {screen}");
    }
    h.key(KeyCode::Esc);
    assert!(!h.screen().contains("Esc closes"));
}

#[test]
fn every_table_view_describes_its_selected_row() {
    let mut h = Harness::new();
    h.resize(120, 40);
    for (view, title) in [
        ("2", "School "),
        ("4", "Limbo user "),
        ("5", "Authority "),
        ("6", "Trash item "),
        ("7", "Run "),
        ("8", "Log entry"),
        ("0", "Authority "),
    ] {
        h.type_str(view);
        h.type_str("d");
        let screen = h.screen();
        assert!(
            screen.contains(title) && screen.contains("Esc closes"),
            "{view}: {screen}"
        );
        h.key(KeyCode::Esc);
    }
    // Users: `d` is the detail pane.
    h.type_str("3d");
    assert!(h.screen().contains("[info]"), "{}", h.screen());
}

#[test]
fn below_80_by_24_the_terminal_is_too_small() {
    let mut h = Harness::new();
    h.resize(79, 24);
    let screen = h.screen();
    assert!(
        screen.contains("terminal too small") && screen.contains("79×24, needs 80×24"),
        "{screen}"
    );
    h.resize(80, 23);
    assert!(h.screen().contains("80×23"));
    h.resize(80, 24);
    assert!(!h.screen().contains("too small"));
}

#[test]
fn the_yes_no_line_of_a_confirmation_always_shows() {
    let mut h = Harness::new();
    h.type_str("6x");
    let screen = h.screen();
    assert!(screen.contains("Delete 1 trash item"), "{screen}");
    assert!(
        screen.contains(" y  yes") && screen.contains(" n  no / Esc"),
        "the answer line is not pushed out by the long item name: {screen}"
    );
    assert!(
        screen.contains("until they change."),
        "the question is not cut either: {screen}"
    );
}

#[test]
fn sideways_scroll_shows_the_columns_that_do_not_fit() {
    let mut h = Harness::new();
    h.type_str("5");
    let header = |h: &mut Harness| h.screen().lines().take(3).collect::<Vec<_>>().join("\n");
    let top = header(&mut h);
    assert!(top.contains("more columns →") && !top.contains("journal lag"), "{top}");
    for _ in 0..6 {
        h.key(KeyCode::Right);
    }
    let top = header(&mut h);
    assert!(top.contains("journal lag") && top.contains("← "), "{top}");
    assert!(top.contains("authority"), "the first column stays: {top}");
    h.key(KeyCode::Left);
    assert!(h.screen().contains("more →"), "{}", h.screen());
}

#[test]
fn wide_characters_are_cut_by_display_width() {
    let mut h = Harness::new();
    let mut engine = open(&h.data_dir(), false);
    let mut u = engine
        .directory()
        .users(&rollcall::store::UserQuery {
            limit: Some(1),
            ..Default::default()
        })
        .expect("users")
        .remove(0);
    let before = u.clone();
    u.lastname = "長い名前の人長い名前の人長い名前の人".into();
    engine
        .directory_mut()
        .apply(&rollcall::store::Batch {
            users: vec![rollcall::store::UserChange::Update {
                before,
                after: u.clone(),
            }],
            ..Default::default()
        })
        .expect("write");
    h.type_str("3");
    let buf = h.draw();
    let screen = buffer_text(&buf);
    let row = screen
        .lines()
        .position(|l| l.contains(&u.username))
        .expect("the user's row") as u16;
    assert!(
        screen.lines().nth(row as usize).is_some_and(|l| l.contains('…')),
        "{screen}"
    );
    // The next column starts where the header says: the name was cut by
    // display width (two columns a character), not by characters.
    let header = screen.lines().position(|l| l.starts_with("│username")).expect("header") as u16;
    let state_x = (0..buf.area.width)
        .find(|&x| buf[(x, header)].symbol() == "s" && buf[(x + 1, header)].symbol() == "t")
        .expect("state column");
    let cell = buf[(state_x, row)].symbol().to_string();
    assert!(cell == "a" || cell == "l", "the state column is shifted: {screen}");
}
