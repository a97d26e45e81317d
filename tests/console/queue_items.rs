//! An authority's waiting items (issue 17, point 8): Enter on an authority
//! in Queues lists them — object, username, state, reason, attempts, next
//! try, last error, who is sending it — filterable; Enter inspects one
//! (what would be sent now); `r` retries now, `x` moves to the trash, `a`
//! schedules afresh, each through the engine (audited).

use super::harness::{Harness, open};
use crossterm::event::KeyCode;
use rollcall::engine::sync::queue::ItemDir;

/// The idbroker queue's folder and its first pending item's file name.
fn first_item(h: &Harness) -> (std::path::PathBuf, String) {
    let dir = h.data_dir().join("queues/out/idbroker");
    let engine = open(&h.data_dir(), false);
    let items = engine.queue_show("idbroker").expect("queue");
    let user = items
        .iter()
        .find(|i| i.object.starts_with("user:"))
        .expect("a user item");
    (dir, user.file.clone())
}

/// Puts an item into back-off by hand, as the sender does after a failure.
fn into_backoff(dir: &std::path::Path, file: &str) {
    let mut item: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join(file)).expect("item")).expect("json");
    item["attempts"] = 2.into();
    item["last_error"] = "PUT /Users/7: HTTP 503: the target is overloaded, try again later".into();
    item["last_status"] = 503.into();
    let when = std::time::SystemTime::now() + std::time::Duration::from_secs(600);
    let path = dir.join("retry").join(file);
    std::fs::write(&path, item.to_string()).expect("write");
    std::fs::File::options()
        .write(true)
        .open(&path)
        .expect("open")
        .set_modified(when)
        .expect("mtime");
    std::fs::remove_file(dir.join(file)).expect("remove pending");
}

fn audit(h: &Harness) -> String {
    std::fs::read_to_string(h.data_dir().join("logs/audit.log")).expect("audit")
}

#[test]
fn enter_on_an_authority_lists_its_items_and_inspects_one() {
    let mut h = Harness::new();
    h.resize(160, 48);
    let (dir, file) = first_item(&h);
    into_backoff(&dir, &file);
    // One item being sent by another process.
    let (total, other) = {
        let engine = open(&h.data_dir(), false);
        let items = engine.queue_show("idbroker").expect("queue");
        (
            items.len(),
            items
                .iter()
                .rev()
                .find(|i| i.state == "pending")
                .expect("pending")
                .file
                .clone(),
        )
    };
    std::fs::rename(dir.join(&other), dir.join("claimed").join(format!("4242~{other}"))).expect("claim");
    h.type_str("5");
    h.key(KeyCode::Enter);
    let screen = h.screen();
    // Every item of the queue, the one being sent too.
    let waiting = format!("Queue of idbroker · {total} items waiting");
    assert!(screen.contains(&waiting), "{waiting}: {screen}");
    for header in [
        "object",
        "username",
        "state",
        "reason",
        "tries",
        "next try",
        "last error",
        "claimed by",
    ] {
        assert!(screen.contains(header), "{header}: {screen}");
    }
    assert!(screen.contains("sending") && screen.contains("4242"), "{screen}");
    assert!(screen.contains("l.frank"), "usernames: {screen}");
    // Filter down to the item in back-off, inspect it.
    h.type_str("/retrying");
    h.key(KeyCode::Enter);
    let screen = h.screen();
    assert!(screen.contains("1 of 1"), "{screen}");
    assert!(screen.contains("retrying") && screen.contains("HTTP 503"), "{screen}");
    assert!(screen.contains("in 10m") || screen.contains("in 9m"), "{screen}");
    h.key(KeyCode::Enter);
    let screen = h.screen();
    assert!(
        screen.contains("would send now") && screen.contains("item file") && screen.contains("2 attempts"),
        "{screen}"
    );
    // `d` shows every field in full.
    h.type_str("d");
    let screen = h.screen();
    assert!(screen.contains("the target is overloaded, try again later"), "{screen}");
    h.key(KeyCode::Esc);
    // Retry now: no confirmation needed; the back-off is gone.
    h.type_str("r");
    assert!(h.screen().contains("sent at the next round"), "{}", h.screen());
    let engine = open(&h.data_dir(), false);
    let a = engine.authority("idbroker").expect("authority");
    assert!(a.queue.read(ItemDir::Pending, &file).is_ok(), "back in the queue");
    assert!(audit(&h).contains("queue retry-now"));
    // Esc: back to the authorities.
    h.key(KeyCode::Esc);
    h.key(KeyCode::Esc);
    assert!(h.screen().contains("Queues · 3 authorities"), "{}", h.screen());
}

#[test]
fn an_item_goes_to_the_trash_or_is_scheduled_afresh() {
    let mut h = Harness::new();
    let (dir, file) = first_item(&h);
    into_backoff(&dir, &file);
    h.type_str("5");
    h.key(KeyCode::Enter);
    h.type_str("/retrying");
    h.key(KeyCode::Enter);
    // Afresh: y/n, then attempts start over.
    h.type_str("a");
    let screen = h.screen();
    assert!(
        screen.contains("Schedule afresh") && screen.contains("2 attempts"),
        "{screen}"
    );
    h.type_str("y");
    assert!(h.screen().contains("scheduled 1 object afresh"), "{}", h.screen());
    let engine = open(&h.data_dir(), false);
    let a = engine.authority("idbroker").expect("authority");
    let item = a.queue.read(ItemDir::Pending, &file).expect("pending again");
    assert_eq!(item.attempts, 0);
    assert!(item.last_error.is_none());
    assert!(audit(&h).contains("queue afresh"));
    // To the trash: y/n; the item leaves the queue for the trash.
    h.key(KeyCode::Esc);
    h.type_str("/");
    h.type_str(&file[..20]);
    h.key(KeyCode::Enter);
    h.type_str("x");
    assert!(h.screen().contains("Move to the trash"), "{}", h.screen());
    h.type_str("y");
    assert!(h.screen().contains("moved 1 item to the trash"), "{}", h.screen());
    let trash = engine.trash_list(Some("idbroker")).expect("trash");
    let t = trash.iter().find(|t| t.file == file).expect("in the trash");
    assert!(t.error.contains("moved to the trash by"), "{t:?}");
    assert!(audit(&h).contains("queue to-trash"));
}

#[test]
fn read_only_hides_the_item_actions() {
    let mut h = Harness::with(true, rollcall::tui::theme::Theme::default_theme());
    h.type_str("5");
    h.key(KeyCode::Enter);
    assert!(h.screen().contains("Queue of idbroker"), "{}", h.screen());
    h.type_str("x");
    assert!(h.app.overlay.is_none());
    let err =
        h.rt.block_on(h.api.queue_to_trash(vec!["idbroker/x.json".into()]))
            .expect_err("refused");
    assert!(err.to_string().contains("read-only"), "{err}");
}
