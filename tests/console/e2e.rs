//! End to end: the real binary in tmux. Opens the demo, jumps to the trash
//! with `:trash`, inspects an item and requeues it, jumps to limbo with
//! `:limbo`, restores a user through the picker, filters users with `/`,
//! starts an import dry run and watches it, quits; asserts on what
//! `tmux capture-pane` shows and on the audit log.
//!
//! The binary is `CONSOLE_E2E_BIN` when set (scripts/test points it at the
//! release build), else the one cargo built for this test run. Without tmux
//! the test is skipped, unless `CI=true`, where that is a failure.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

fn tmux(args: &[&str]) -> String {
    let out = Command::new("tmux").args(args).output().expect("run tmux");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

struct Session(String);

impl Drop for Session {
    fn drop(&mut self) {
        let _ = Command::new("tmux").args(["kill-session", "-t", &self.0]).output();
    }
}

impl Session {
    fn screen(&self) -> String {
        tmux(&["capture-pane", "-p", "-t", &self.0])
    }

    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", &self.0];
        args.extend_from_slice(keys);
        tmux(&args);
        std::thread::sleep(Duration::from_millis(150));
    }

    /// Types literal text.
    fn text(&self, s: &str) {
        tmux(&["send-keys", "-t", &self.0, "-l", s]);
        std::thread::sleep(Duration::from_millis(150));
    }

    fn wait_for(&self, what: &str, secs: u64) -> String {
        let start = Instant::now();
        loop {
            let s = self.screen();
            if s.contains(what) {
                return s;
            }
            if start.elapsed() > Duration::from_secs(secs) {
                panic!("waited {secs} s for {what:?}; screen:\n{s}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn alive(&self) -> bool {
        Command::new("tmux")
            .args(["has-session", "-t", &self.0])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false)
    }
}

fn have_tmux() -> bool {
    Command::new("tmux")
        .arg("-V")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

#[test]
fn console_end_to_end_in_tmux() {
    if !have_tmux() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "tmux is missing (scripts/test installs it)"
        );
        eprintln!("skipping: tmux is not installed");
        return;
    }
    let bin = std::env::var("CONSOLE_E2E_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_rollcall").to_string());
    let data = tempfile::tempdir().expect("tempdir");
    let name = format!("rollcall-e2e-{}", std::process::id());
    let cmd = format!(
        "TERM=xterm-256color {bin} --data-dir {} demo --schools 3 --users-per-school 60",
        data.path().display()
    );
    tmux(&["new-session", "-d", "-s", &name, "-x", "120", "-y", "32", &cmd]);
    let s = Session(name);
    s.wait_for("Last runs", 60);

    // :trash, inspect the item the demo's sync trashed, requeue it.
    s.keys(&[":"]);
    s.text("trash");
    s.keys(&["Enter"]);
    let screen = s.wait_for("Trash · 1 item", 10);
    assert!(screen.contains("lernplattform"), "{screen}");
    s.keys(&["Enter"]);
    let screen = s.wait_for("would send now", 10);
    assert!(
        screen.contains("item file") && screen.contains("userName is required"),
        "{screen}"
    );
    s.keys(&["r"]);
    s.wait_for("Requeue 1 trash item", 10);
    s.keys(&["y"]);
    s.wait_for("requeued 1 item", 10);
    s.wait_for("Trash · 0 items", 10);

    // :limbo, restore the first user into the first school.
    s.keys(&[":"]);
    s.text("limbo");
    s.keys(&["Enter"]);
    s.wait_for("waiting", 10);
    let start = Instant::now();
    let user = loop {
        let screen = s.screen();
        let row = screen
            .lines()
            .find(|l| l.contains(" in ") && l.trim_end().ends_with("d     │") || l.contains(" d  "))
            .and_then(|l| l.trim_start_matches('│').split_whitespace().next());
        if let Some(u) = row {
            break u.to_string();
        }
        assert!(start.elapsed() < Duration::from_secs(10), "no limbo row:\n{screen}");
        std::thread::sleep(Duration::from_millis(100));
    };
    s.keys(&["r"]);
    s.wait_for(&format!("Restore {user} into"), 10);
    s.keys(&["Enter"]);
    s.wait_for("Restore from limbo", 10);
    s.keys(&["y"]);
    s.wait_for(&format!("restored {user}"), 10);

    // Users, filtered with / down to that user.
    s.keys(&["3"]);
    s.wait_for("Users ·", 10);
    s.keys(&["/"]);
    s.text(&user);
    s.keys(&["Enter"]);
    s.wait_for(&format!("/{user}"), 10);
    let screen = s.wait_for("1 user ", 10);
    assert!(screen.contains(&user) && screen.contains("active"), "{screen}");

    // An import dry run: school, role, feed; watch it finish.
    s.keys(&[":"]);
    s.text("jobs");
    s.keys(&["Enter"]);
    s.wait_for("Runs (", 10);
    s.keys(&["i"]);
    s.wait_for("Import into school", 10);
    s.keys(&["Enter"]);
    s.wait_for("Roles the", 10);
    s.keys(&["Enter"]);
    let screen = s.wait_for("Feed file", 10);
    assert!(screen.contains("student"), "{screen}");
    s.text("student");
    s.keys(&["Enter"]);
    let screen = s.wait_for("student (dry run)", 20);
    assert!(screen.contains("import "), "{screen}");
    // The restored user is back in a school whose feed lacks them: the plan
    // either changes nothing or asks to apply; either way the job finished.
    let start = Instant::now();
    let screen = loop {
        let sc = s.screen();
        if sc.contains("Apply import") || sc.contains("changes nothing") || sc.contains("created 0") {
            break sc;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "import preview never came:\n{sc}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    if screen.contains("Apply import") {
        s.keys(&["Escape"]);
    }

    s.keys(&["q"]);
    let start = Instant::now();
    while s.alive() && start.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(!s.alive(), "the console did not quit");
    let audit = std::fs::read_to_string(Path::new(data.path()).join("logs/audit.log")).expect("audit log");
    assert!(
        audit.contains("console open")
            && audit.contains("trash requeue")
            && audit.contains("limbo restore")
            && audit.contains("console close"),
        "{audit}"
    );
}
