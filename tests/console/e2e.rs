//! End to end: the real binary in tmux, started from a shell. The demo
//! district (and a feed whose names carry escape sequences, imported by the
//! CLI) is opened in the console; the test jumps to the trash with
//! `:trash`, describes the long error and inspects the item and requeues
//! it; drills into a queue's items and inspects one; runs `:restore` from
//! the dashboard (limbo's restore) through the picker; filters users with
//! `/`; looks at the hostile run's input (the pane title stays); starts a
//! drain and cancels it with the job cursor; starts an import dry run and
//! watches it; suspends with Ctrl-Z and comes back with `fg`; then SIGTERM
//! ends the console with the terminal left sane (`#{alternate_on}` 0,
//! cursor shown). Asserts on what `tmux capture-pane` shows and on the
//! audit log.
//!
//! The binary is `CONSOLE_E2E_BIN` when set, else the one cargo built for
//! this test run. Without tmux
//! the test is skipped, unless `CI=true`, where that is a failure.

use super::hostile::HOSTILE;
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

    /// Esc, then waits until `gone` left the screen (two Esc bytes read at
    /// once are one Alt-Esc to a terminal program, so they never queue up).
    fn escape_until_gone(&self, gone: &str) {
        self.keys(&["Escape"]);
        let start = Instant::now();
        while self.screen().contains(gone) {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "Esc left {gone:?} on screen:\n{}",
                self.screen()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn format(&self, what: &str) -> String {
        tmux(&["display-message", "-p", "-t", &self.0, what]).trim().to_string()
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

    fn wait_format(&self, what: &str, want: &str, secs: u64) {
        let start = Instant::now();
        while self.format(what) != want {
            assert!(
                start.elapsed() < Duration::from_secs(secs),
                "waited {secs} s for {what} = {want} (is {}); screen:\n{}",
                self.format(what),
                self.screen()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The console's process: the shell's child.
    fn console_pid(&self) -> Option<u32> {
        let shell = self.format("#{pane_pid}");
        let children = std::fs::read_to_string(format!("/proc/{shell}/task/{shell}/children")).ok()?;
        children.split_whitespace().next()?.parse().ok()
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
    let dir = data.path();
    let rollcall = |args: &[&str]| {
        Command::new(&bin)
            .arg("--data-dir")
            .arg(dir)
            .args(args)
            .output()
            .expect("rollcall")
    };
    let out = rollcall(&["demo", "--no-tui", "--schools", "3", "--users-per-school", "60"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // idbroker on a server that accepts and never answers, so that a drain
    // of it runs until cancelled (an unreachable one pauses at once).
    let port = super::harness::stalled_server();
    let config = dir.join("rollcall.toml");
    let text = std::fs::read_to_string(&config).expect("config");
    std::fs::write(
        &config,
        text.replace(
            "http://127.0.0.1:9/scim/v2",
            &format!("http://127.0.0.1:{port}/scim/v2"),
        ),
    )
    .expect("config");
    assert!(rollcall(&["authorities", "resume", "idbroker"]).status.success());
    // A feed whose names carry an OSC 0 title change (and the rest): the
    // row is refused, the run keeps the feed as received.
    let schools = String::from_utf8_lossy(&rollcall(&["--json", "schools", "list"]).stdout).into_owned();
    let v: serde_json::Value = serde_json::from_str(&schools).expect("schools json");
    let school = v
        .as_array()
        .and_then(|a| a.iter().find_map(|s| s["name"].as_str().filter(|n| *n != "limbo")))
        .expect("a school")
        .to_string();
    let feed = dir.join("hostile.csv");
    std::fs::write(
        &feed,
        format!(
            "record_uid,firstname,lastname,email,birthday,classes,role,schools\n\
             h1,Eve{HOSTILE},Null,,,,student,{school}\n"
        ),
    )
    .expect("feed");
    rollcall(&["import", "--school", &school, "--dry-run", feed.to_str().expect("path")]);

    let name = format!("rollcall-e2e-{}", std::process::id());
    tmux(&[
        "new-session",
        "-d",
        "-s",
        &name,
        "-x",
        "120",
        "-y",
        "32",
        "env -i PATH=/usr/bin:/bin TERM=xterm-256color HOME=/tmp PS1='$ ' bash --norc --noprofile",
    ]);
    let s = Session(name);
    tmux(&["select-pane", "-t", &s.0, "-T", "e2e-title"]);
    let title = s.format("#{pane_title}");
    assert_eq!(title, "e2e-title");
    s.text(&format!("{bin} --data-dir {}", dir.display()));
    s.keys(&["Enter"]);
    s.wait_for("Last runs", 120);
    assert_eq!(s.format("#{alternate_on}"), "1");

    // :trash: the long error in full (d), inspect the item, requeue it.
    s.keys(&[":"]);
    s.text("trash");
    s.keys(&["Enter"]);
    let screen = s.wait_for("Trash · 1 item", 10);
    assert!(screen.contains("lernplattform"), "{screen}");
    s.keys(&["d"]);
    let screen = s.wait_for("Esc closes", 10);
    assert!(
        screen.contains("userName is required, but 'email' is empty for"),
        "the error in full: {screen}"
    );
    s.escape_until_gone("Esc closes");
    s.keys(&["Enter"]);
    let screen = s.wait_for("would send now", 10);
    assert!(screen.contains("item file"), "{screen}");
    s.keys(&["r"]);
    s.wait_for("Requeue 1 trash item", 10);
    s.keys(&["y"]);
    s.wait_for("requeued 1 item", 10);
    s.wait_for("Trash · 0 items", 10);

    // Queues: Enter on the unreachable authority lists its waiting items.
    let queues = String::from_utf8_lossy(&rollcall(&["--json", "queue", "list"]).stdout).into_owned();
    let queues: serde_json::Value = serde_json::from_str(&queues).expect("queue json");
    let depth = queues
        .as_array()
        .and_then(|a| a.iter().find(|q| q["authority"] == "idbroker"))
        .and_then(|q| q["depth"].as_u64())
        .unwrap_or_else(|| panic!("no idbroker queue: {queues}"));
    s.keys(&["5"]);
    s.wait_for("Queues · 3 authorities", 10);
    s.keys(&["Enter"]);
    s.wait_for("Queue of idbroker", 10);
    let screen = s.wait_for("pending", 20);
    assert!(
        screen.contains("username") && screen.contains(&format!("{depth} items waiting")),
        "{screen}"
    );
    s.keys(&["Enter"]);
    s.wait_for("What would be sent now", 10);
    s.escape_until_gone("What would be sent now");
    s.escape_until_gone("Queue of idbroker");

    // :restore from the dashboard: limbo's restore, through the picker.
    s.keys(&["1"]);
    s.wait_for("Last runs", 10);
    s.keys(&[":"]);
    s.text("restore");
    s.keys(&["Enter"]);
    let screen = s.wait_for(" into (", 10);
    let user = screen
        .lines()
        .find_map(|l| l.split("Restore ").nth(1))
        .and_then(|r| r.split(" into").next())
        .expect("the user in the picker's title")
        .to_string();
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

    // The hostile run's input pane: shown escaped, the title unchanged.
    s.keys(&["7"]);
    s.wait_for("Runs (", 10);
    s.keys(&["Enter"]);
    s.keys(&["v"]);
    s.keys(&["v"]);
    s.wait_for("[input]", 10);
    // The feed as text, its escape sequence shown, not sent.
    s.wait_for("\\x1b]0;pwned", 10);
    assert_eq!(s.format("#{pane_title}"), title, "a feed changed the pane title");

    // Drain the unreachable authority, cancel the job under the cursor.
    s.keys(&["n"]);
    s.wait_for("Sync which authority", 10);
    s.text("idbroker");
    s.keys(&["Enter"]);
    s.wait_for("running", 20);
    s.keys(&["w"]);
    s.keys(&["c"]);
    let screen = s.wait_for("cancelled", 30);
    assert!(screen.contains("sync idbroker"), "{screen}");

    // An import dry run: school, role, feed; watch it finish.
    s.keys(&["i"]);
    s.wait_for("Import into school", 10);
    s.keys(&["Enter"]);
    s.wait_for("Roles the", 10);
    s.keys(&["Enter"]);
    let screen = s.wait_for("Feed file", 10);
    assert!(screen.contains("student"), "{screen}");
    s.text("student");
    s.keys(&["Enter"]);
    s.wait_for("(dry run)", 20);
    let start = Instant::now();
    let screen = loop {
        let sc = s.screen();
        if sc.contains("Apply import") || sc.contains("changes nothing") || sc.contains("created 0") {
            break sc;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "import preview never came:\n{sc}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    if screen.contains("Apply import") {
        s.escape_until_gone("Apply import");
    }

    // Ctrl-Z: the shell is back, the terminal sane; fg: the console again.
    s.keys(&["C-z"]);
    s.wait_format("#{alternate_on}", "0", 10);
    s.wait_for("Stopped", 10);
    s.text("fg");
    s.keys(&["Enter"]);
    s.wait_format("#{alternate_on}", "1", 10);
    s.wait_for("Jobs & runs", 10);

    // SIGTERM: the console ends, the terminal as it was.
    let pid = s.console_pid().expect("the console's pid");
    // SAFETY: a signal to the process this test started.
    unsafe {
        libc::kill(pid as i32, libc::SIGTERM);
    }
    s.wait_format("#{alternate_on}", "0", 10);
    s.wait_format("#{cursor_flag}", "1", 10);
    let start = Instant::now();
    while Path::new(&format!("/proc/{pid}")).exists() {
        assert!(start.elapsed() < Duration::from_secs(10), "the console did not end");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(s.format("#{pane_title}"), title);
    let audit = std::fs::read_to_string(dir.join("logs/audit.log")).expect("audit log");
    assert!(
        audit.contains("console open")
            && audit.contains("trash requeue")
            && audit.contains("limbo restore")
            && audit.contains("job cancel")
            && audit.contains("console close"),
        "{audit}"
    );
}
