//! Durability of the queues through the real binary: `kill -9` of
//! `rollcall sync run` in the middle of a 5,000-item drain loses nothing
//! (a restart converges the target), and two senders running at once never
//! send an item twice (claims are atomic).

use crate::common;

use rollcall::engine::sync::mapping::Class;
use rollcall::engine::sync::target::Target;
use rollcall::engine::sync::target::embedded::EmbeddedTarget;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const USERS: usize = 5000;

/// A data dir whose own rollcall.toml configures an embedded authority,
/// with `USERS` students imported (their changes are in the journal).
fn district(batch_per_worker: usize) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("rollcall.toml"),
        format!(
            "[sync]\nbatch_per_worker = {batch_per_worker}\npoll_seconds = 0.02\n\n\
             [authorities.mirror]\nkind = \"embedded\"\nschools = [\"*\"]\nworkers = 1\n"
        ),
    )
    .expect("config");
    let mut engine = common::open(dir.path(), &[], false);
    let mut feed = String::from(common::HEADER);
    feed.push('\n');
    for i in 0..USERS {
        feed.push_str(&common::student(
            &format!("r{i}"),
            &format!("Vor{i}"),
            &format!("Nach{i}"),
            "5a",
        ));
        feed.push('\n');
    }
    let file = dir.path().join("feed.csv");
    std::fs::write(&file, feed).expect("feed");
    let req = common::District::request("gsmitte", rollcall::model::Role::Student, file);
    engine.import(&req, &mut rollcall::engine::jobs::Quiet).expect("import");
    dir
}

fn rollcall(data: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_rollcall"));
    c.arg("--data-dir")
        .arg(data)
        .env_remove("ROLLCALL_DATA_DIR")
        .env("HOME", data)
        .env("XDG_CONFIG_HOME", data.join("xdg"));
    c
}

fn items_in(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .filter(|e| e.file_name().to_string_lossy().ends_with(".json"))
                .count()
        })
        .unwrap_or(0)
}

fn mirror_users(data: &Path) -> Vec<(String, String)> {
    let t = EmbeddedTarget::open(&data.join("mirrors/mirror.sqlite")).expect("mirror");
    let mut out = Vec::new();
    t.list(Class::User, &mut |o| {
        out.push((
            o.external_id.clone().unwrap_or_default(),
            o.resource["name"]["familyName"].as_str().unwrap_or("").to_string(),
        ));
        true
    })
    .expect("list");
    out.sort();
    out
}

fn drained(out: &Output) -> serde_json::Value {
    assert_eq!(
        out.status.code(),
        Some(0),
        "sync failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("json")
}

#[test]
fn kill_9_mid_drain_loses_nothing() {
    let dir = district(4);
    let data = dir.path();
    let queue = data.join("queues/out/mirror");
    let mut child = rollcall(data)
        .args(["sync", "run", "--once"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    // Wait until the distributor queued everything and the sender is well
    // into it, then kill it without warning.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut seen_full = false;
    loop {
        let n = items_in(&queue);
        seen_full |= n >= USERS;
        if seen_full && n < USERS * 3 / 4 {
            break;
        }
        assert!(Instant::now() < deadline, "the drain never got going ({n} items)");
        assert!(
            child.try_wait().expect("wait").is_none(),
            "sync finished before it could be killed"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    // SIGKILL: no cleanup of any kind.
    child.kill().expect("kill -9");
    child.wait().expect("reap");
    let left = items_in(&queue);
    let claimed = items_in(&queue.join("claimed"));
    let sent = mirror_users(data).len();
    assert!(left > 0 && sent > 0, "killed mid-drain: {left} queued, {sent} sent");
    assert!(
        left + claimed + sent >= USERS,
        "nothing is lost: {left} + {claimed} + {sent}"
    );

    let out = drained(
        &rollcall(data)
            .args(["--json", "sync", "run", "--once"])
            .output()
            .expect("run"),
    );
    assert_eq!(out["complete"], true, "{out}");
    assert_eq!(items_in(&queue), 0);
    assert_eq!(
        items_in(&queue.join("claimed")),
        0,
        "claims of the dead process were put back"
    );
    let users = mirror_users(data);
    assert_eq!(users.len(), USERS);
    for (ext, family) in &users {
        let i = ext.trim_start_matches("district:r");
        assert_eq!(family, &format!("Nach{i}"));
    }
}

#[test]
fn two_senders_at_once_never_send_an_item_twice() {
    let dir = district(16);
    let data = dir.path();
    // Queue everything first, so both senders race for the same files.
    let mut engine = common::open(data, &[], false);
    let d = engine.distribute(None).expect("distribute");
    assert_eq!(d.queued["mirror"], (USERS + 2) as u64);
    drop(engine);
    let a = rollcall(data)
        .args(["--json", "sync", "run", "--once"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("a");
    let b = rollcall(data)
        .args(["--json", "sync", "run", "--once"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("b");
    let a = drained(&a.wait_with_output().expect("a"));
    let b = drained(&b.wait_with_output().expect("b"));
    let created = |v: &serde_json::Value| v["authorities"][0]["applied"]["created"].as_u64().unwrap_or(0);
    let sent = |v: &serde_json::Value| v["authorities"][0]["sent"].as_u64().unwrap_or(0);
    // Every object is created exactly once, and nothing was sent twice
    // (a second send would show up as "unchanged").
    let groups = 2; // school:gsmitte, class:gsmitte:5a
    assert_eq!(created(&a) + created(&b), (USERS + groups) as u64, "a: {a}\nb: {b}");
    assert_eq!(sent(&a) + sent(&b), (USERS + groups) as u64, "a: {a}\nb: {b}");
    assert_eq!(mirror_users(data).len(), USERS);
}
