//! Console tests over a fixed demo district: insta snapshots of every view
//! at 80×24 and 160×48 (also written as SVG screenshots, checked for
//! staleness), and behaviour through the real App and engine facade.
#![allow(clippy::unwrap_used, unsafe_code)] // test and benchmark code: panics are failures; libc calls reviewed

mod assign;
mod behaviour;
mod consequences;
mod e2e;
mod harness;
mod holdings;
mod hostile;
mod jobs;
mod keys;
mod live;
mod queue_items;
mod readable;
mod svg;
mod sync;
mod verify;

use crossterm::event::KeyCode;
use harness::{Harness, buffer_text};

/// Renders the current screen at both sizes; the 160×48 frame is also the
/// view's screenshot.
fn shoot(h: &mut Harness, name: &str) {
    for (w, ht) in [(80u16, 24u16), (160, 48)] {
        h.resize(w, ht);
        let buf = h.draw();
        insta::assert_snapshot!(format!("{name}_{w}x{ht}"), buffer_text(&buf));
        if w == 160 {
            check_screenshot(name, &svg::render(&buf));
        }
    }
    h.resize(80, 24);
}

/// Compares `screenshots/NAME.svg`; `UPDATE_SCREENSHOTS=1` rewrites it.
fn check_screenshot(name: &str, svg: &str) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("screenshots")
        .join(format!("{name}.svg"));
    if std::env::var_os("UPDATE_SCREENSHOTS").is_some() {
        std::fs::write(&path, svg).expect("write screenshot");
        return;
    }
    let old = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        old == svg,
        "screenshots/{name}.svg is stale: run `UPDATE_SCREENSHOTS=1 cargo test --test console` and commit it"
    );
}

#[test]
fn dashboard() {
    let mut h = Harness::new();
    shoot(&mut h, "dashboard");
}

#[test]
fn schools() {
    let mut h = Harness::new();
    h.type_str("2");
    h.key(KeyCode::Down);
    shoot(&mut h, "schools");
}

#[test]
fn users_with_detail() {
    let mut h = Harness::new();
    h.type_str("3");
    h.key(KeyCode::Down);
    h.key(KeyCode::Down);
    h.type_str("d");
    shoot(&mut h, "users");
}

#[test]
fn limbo() {
    let mut h = Harness::new();
    h.type_str("4");
    shoot(&mut h, "limbo");
}

#[test]
fn jobs_and_run_detail() {
    let mut h = Harness::new();
    h.type_str("7");
    h.key(KeyCode::Enter);
    shoot(&mut h, "jobs");
}

#[test]
fn log() {
    let mut h = Harness::new();
    h.type_str("8");
    shoot(&mut h, "log");
}

#[test]
fn help_overlay() {
    let mut h = Harness::new();
    h.type_str("4?");
    shoot(&mut h, "help");
}

#[test]
fn palette_overlay() {
    let mut h = Harness::new();
    h.type_str(":li");
    shoot(&mut h, "palette");
}

#[test]
fn typed_confirmation() {
    let mut h = Harness::new();
    h.type_str("4x");
    shoot(&mut h, "confirm-purge-user");
}

#[test]
fn themes_render() {
    for name in ["light", "high-contrast", "mono"] {
        let theme = rollcall::tui::theme::Theme::load(name, None).expect("theme");
        let mut h = Harness::with(false, theme);
        h.type_str("3");
        h.resize(160, 48);
        let buf = h.draw();
        check_screenshot(&format!("theme-{name}"), &svg::render(&buf));
    }
}

#[test]
fn queues() {
    let mut h = Harness::new();
    h.type_str("5");
    shoot(&mut h, "queues");
}

#[test]
fn verify() {
    let mut h = Harness::new();
    h.type_str("9");
    h.type_str("v");
    h.type_str("schulportal");
    h.key(KeyCode::Enter);
    h.type_str("all");
    h.key(KeyCode::Enter);
    h.key(KeyCode::Enter);
    h.wait_jobs();
    shoot(&mut h, "verify");
}

#[test]
fn sync_schools() {
    let mut h = Harness::new();
    h.type_str("0");
    shoot(&mut h, "sync-schools");
}

#[test]
fn trash() {
    let mut h = Harness::new();
    h.type_str("6");
    shoot(&mut h, "trash");
}

#[test]
fn trash_inspector() {
    let mut h = Harness::new();
    h.type_str("6");
    h.key(KeyCode::Enter);
    // Fold the item file's object reference.
    for _ in 0..7 {
        h.key(KeyCode::Down);
    }
    h.type_str("z");
    shoot(&mut h, "trash-inspector");
}

#[test]
fn users_sync_pane() {
    let mut h = Harness::new();
    h.type_str("3dv");
    shoot(&mut h, "users-sync");
}

#[test]
fn users_authorities_pane() {
    let mut h = Harness::new();
    let (user, _) = holdings::user_of_first_school(&h);
    holdings::open_authorities_pane(&mut h, &user);
    shoot(&mut h, "users-authorities");
}

#[test]
fn sync_schools_add_chooser() {
    let mut h = Harness::new();
    h.type_str("0a ");
    h.key(KeyCode::Down);
    h.type_str(" ");
    shoot(&mut h, "sync-schools-add");
}
