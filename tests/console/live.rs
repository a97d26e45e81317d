//! Live views (issue 17, point 4): what another process changes (the CLI, a
//! daemon, another console — here a second engine on the same data dir)
//! shows at the next tick, by cheap change stamps; the cursor stays on its
//! object, not its row number; a footer message goes with Esc.

use super::harness::{Harness, open};
use crossterm::event::KeyCode;
use rollcall::engine::import::ImportRequest;
use rollcall::engine::jobs::Quiet;

#[test]
fn a_restore_by_the_cli_leaves_the_limbo_view_at_the_next_tick() {
    let mut h = Harness::new();
    h.type_str("4");
    h.tick(); // the first stamps: nothing to compare yet
    let user = open(&h.data_dir(), false).limbo_list().expect("limbo")[1]
        .username
        .clone();
    assert!(h.screen().contains(&user), "{}", h.screen());
    // As `rollcall limbo restore` would, from another process.
    let mut cli = open(&h.data_dir(), false);
    let school = cli.directory().schools().expect("schools")[0].name.clone();
    cli.limbo_restore(&user, &school).expect("restore");
    h.tick();
    assert!(
        !h.screen().contains(&user),
        "the restored user left limbo without a key: {}",
        h.screen()
    );
}

#[test]
fn the_cursor_stays_on_its_row_when_rows_come_in_above() {
    let mut h = Harness::new();
    h.type_str("7");
    h.tick();
    h.type_str("jj");
    h.key(KeyCode::Enter);
    let before = h.screen();
    assert!(before.contains("3 of 28"), "{before}");
    let run_line = before
        .lines()
        .find(|l| l.contains("run ") && l.contains("-000-"))
        .expect("the detail's run id")
        .to_string();
    // A new run from another process lands on top of the history.
    let mut cli = open(&h.data_dir(), false);
    let feed = std::fs::read_dir(h.data_dir().join("feeds"))
        .expect("feeds")
        .flatten()
        .map(|e| e.path())
        .find(|p| p.is_file())
        .expect("a feed");
    let school = cli.directory().schools().expect("schools")[0].name.clone();
    let _ = cli.import(
        &ImportRequest {
            school,
            file: feed,
            dry_run: true,
            ..ImportRequest::default()
        },
        &mut Quiet,
    );
    h.tick();
    let after = h.screen();
    assert!(after.contains("Runs (29)"), "the new run is listed: {after}");
    assert!(
        after.contains(run_line.trim_matches(|c| c == '│' || c == ' ')),
        "the detail still shows the run the cursor is on: {after}"
    );
    // The cursor moved down one row with its run.
    assert!(after.contains("4 of 29"), "{after}");
}

#[test]
fn a_queue_emptied_elsewhere_shows_at_the_next_tick() {
    let mut h = Harness::new();
    h.type_str("5");
    h.tick();
    let screen = h.screen();
    assert!(screen.contains("schulportal"), "{screen}");
    // Drain schulportal from another process.
    let mut cli = open(&h.data_dir(), false);
    cli.sync_run(
        &rollcall::engine::sync::SyncOptions {
            authority: Some("schulportal".into()),
            once: true,
            workers: None,
            max_wait: std::time::Duration::from_secs(1),
        },
        &mut Quiet,
    )
    .expect("sync");
    h.tick();
    let q = h.rt.block_on(h.api.queue_list()).expect("queues");
    let depth = q
        .iter()
        .find(|q| q.authority == "schulportal")
        .expect("schulportal")
        .depth;
    assert_eq!(depth, 0);
    let line = h
        .screen()
        .lines()
        .find(|l| l.contains("schulportal"))
        .expect("row")
        .to_string();
    assert!(
        line.split_whitespace().nth(3) == Some("0"),
        "depth 0 without a key: {line}"
    );
}

#[test]
fn esc_takes_a_footer_message_away() {
    let mut h = Harness::new();
    h.type_str("7i");
    assert!(h.screen().contains("Import into school"), "{}", h.screen());
    h.key(KeyCode::Esc);
    assert!(!h.screen().contains("loading schools"), "{}", h.screen());
    // A message left after an action goes with Esc too.
    h.type_str("z");
    assert!(h.screen().contains("does nothing here"));
    h.key(KeyCode::Esc);
    assert!(!h.screen().contains("does nothing here"), "{}", h.screen());
}
