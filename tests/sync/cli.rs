//! The sync commands' contract through the real binary: names, `--json`
//! fields, exit codes (0 ok, 2 invalid, 3 read-only, 4 incomplete), item
//! names that cannot leave the queue folders, and the demo's authorities.

use serde_json::Value;
use std::path::PathBuf;
use std::process::{Command, Output};

struct Cli {
    dir: tempfile::TempDir,
}

const FEED: &str = "record_uid,firstname,lastname,email,birthday,classes\n\
                    1,Anna,Alt,anna@x.example,,5a\n2,Ben,Bauer,,,5a\n3,Cem,Celik,cem@x.example,,5b\n";

impl Cli {
    /// A data dir with an embedded mirror of every school and a mirror that
    /// needs an e-mail as userName (Ben has none: his item goes to trash).
    fn new(extra: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir_all(&data).unwrap();
        std::fs::write(
            data.join("rollcall.toml"),
            format!(
                "[authorities.mirror]\nkind = \"embedded\"\nschools = [\"*\"]\n\n\
                 [authorities.strict]\nkind = \"embedded\"\nschools = [\"gsmitte\"]\n\
                 [authorities.strict.mapping.user]\nuserName = \"email\"\n\n{extra}"
            ),
        )
        .unwrap();
        let c = Cli { dir };
        let feed = c.dir.path().join("feed.csv");
        std::fs::write(&feed, FEED).unwrap();
        let out = c.run(&[
            "import",
            "--school",
            "gsmitte",
            "--role",
            "student",
            feed.to_str().unwrap(),
        ]);
        assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
        c
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_rollcall"))
            .arg("--data-dir")
            .arg(self.data())
            .args(args)
            .env_remove("ROLLCALL_DATA_DIR")
            .env("HOME", self.dir.path())
            .env("XDG_CONFIG_HOME", self.dir.path().join("xdg"))
            .output()
            .unwrap()
    }

    fn json(&self, args: &[&str]) -> (i32, Value) {
        let mut a = vec!["--json"];
        a.extend_from_slice(args);
        let out = self.run(&a);
        let v = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "{args:?}: not JSON ({e}): {}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        });
        (out.status.code().unwrap(), v)
    }

    fn code(&self, args: &[&str]) -> (i32, String) {
        let out = self.run(args);
        (
            out.status.code().unwrap(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    }
}

#[test]
fn authorities_queue_sync_and_trash_contract() {
    let c = Cli::new("");
    let (code, v) = c.json(&["authorities", "list"]);
    assert_eq!(code, 0);
    let names: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["mirror", "strict"]);
    let (code, v) = c.json(&["authorities", "show", "strict"]);
    assert_eq!(code, 0);
    for key in [
        "kind",
        "url",
        "active",
        "schools",
        "workers",
        "max_attempts",
        "on_removal",
        "mapping",
        "queue",
    ] {
        assert!(v.get(key).is_some(), "authorities show lacks {key}: {v}");
    }
    assert_eq!(v["mapping"]["userName"], "email");
    assert_eq!(c.code(&["authorities", "show", "nope"]).0, 1);

    // Drained, but an item went to trash in this run: exit 5.
    let (code, v) = c.json(&["sync", "run", "--once"]);
    assert_eq!(code, 5, "{v}");
    assert_eq!(v["complete"], true);
    assert_eq!(v["trashed"], 1, "{v}");
    let strict = v["authorities"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["authority"] == "strict")
        .unwrap();
    assert_eq!(strict["trashed"], 1, "{v}");

    let (code, v) = c.json(&["queue", "list"]);
    assert_eq!(code, 0);
    for q in v.as_array().unwrap() {
        for key in [
            "authority",
            "depth",
            "oldest_age_seconds",
            "paused",
            "trash",
            "retrying",
            "journal_lag",
        ] {
            assert!(q.get(key).is_some(), "queue list lacks {key}: {q}");
        }
        assert_eq!(q["depth"], 0);
    }

    // Schedules queue items that `queue show` lists.
    let (code, v) = c.json(&["schedule", "user", "b.bauer"]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["queued"]["mirror"], 2, "the user and its class: {v}");
    let (code, v) = c.json(&["schedule", "group", "gsmitte-5a"]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["coalesced"]["mirror"], 1, "already waiting: {v}");
    let (code, v) = c.json(&["schedule", "school", "gsmitte", "--workers", "2"]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["objects"], 1 + 3 + 2);
    let (code, v) = c.json(&["queue", "show", "mirror"]);
    assert_eq!(code, 0);
    let objects: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["object"].as_str().unwrap())
        .collect();
    assert_eq!(objects[0], "school:gsmitte", "schools first: {objects:?}");
    assert_eq!(
        objects.last().map(|o| o.starts_with("class:")),
        Some(true),
        "groups last: {objects:?}"
    );
    assert_eq!(c.code(&["schedule", "user", "nobody"]).0, 1);
    assert_eq!(c.code(&["schedule", "group", "../etc"]).0, 1);

    // Trash: list, show with diff, requeue, delete, purge.
    let (_, v) = c.json(&["trash", "list"]);
    let items = v.as_array().unwrap();
    assert_eq!(items.len(), 1);
    let item = items[0]["item"].as_str().unwrap().to_string();
    assert!(item.starts_with("strict/"), "{item}");
    assert_eq!(items[0]["object"], "user:district:2");
    assert!(items[0]["error"].as_str().unwrap().contains("userName is required"));
    let (code, v) = c.json(&["trash", "show", &item]);
    assert_eq!(code, 0);
    assert!(
        v.get("diff").is_some() && v.get("now").is_some() && v.get("payload").is_some(),
        "{v}"
    );
    // A bare file name works when it is in one trash only.
    let file = item.split_once('/').unwrap().1;
    assert_eq!(c.json(&["trash", "show", file]).0, 0);

    // Names that could leave the queue folders are refused (exit 2).
    for bad in [
        "../../../etc/passwd",
        "strict/../../x.json",
        "strict/..json",
        "../strict/x.json",
        "strict/a/b.json",
        "/etc/passwd",
    ] {
        for cmd in ["show", "delete", "requeue"] {
            let (code, err) = c.code(&["trash", cmd, bad]);
            assert_eq!(code, 2, "trash {cmd} {bad}: {err}");
        }
    }

    let (code, v) = c.json(&["trash", "requeue", &item]);
    assert_eq!(code, 0, "{v}");
    let (_, v) = c.json(&["trash", "list"]);
    assert!(v.as_array().unwrap().is_empty());
    // It fails again on the next sync (Ben still has no e-mail) → trash.
    let (code, _) = c.json(&["sync", "run", "--once"]);
    assert_eq!(code, 5);
    let (_, v) = c.json(&["trash", "list", "--authority", "strict"]);
    let item = v[0]["item"].as_str().unwrap().to_string();
    let (code, v) = c.json(&["trash", "purge", "--older-than", "1"]);
    assert_eq!(
        (code, v["purged"].as_array().unwrap().len()),
        (0, 0),
        "too young to purge: {v}"
    );
    let (code, v) = c.json(&["trash", "purge", "--older-than", "0"]);
    assert_eq!((code, v["purged"].as_array().unwrap().len()), (0, 1), "{v}");
    assert_eq!(c.code(&["trash", "delete", &item]).0, 1, "already purged");

    // A sync run leaves a run record.
    let (_, runs) = c.json(&["runs", "list", "--kind", "sync"]);
    assert!(!runs.as_array().unwrap().is_empty());
}

#[test]
fn read_only_refuses_every_destructive_sync_command() {
    let c = Cli::new("");
    for args in [
        vec!["sync", "run", "--once"],
        vec!["schedule", "user", "a.alt"],
        vec!["schedule", "school", "gsmitte"],
        vec!["resync"],
        vec!["trash", "purge"],
        vec!["trash", "delete", "mirror/0-x-0.json"],
        vec!["trash", "requeue", "mirror/0-x-0.json"],
    ] {
        let mut a = vec!["--read-only"];
        a.extend(args.iter().copied());
        let (code, err) = c.code(&a);
        assert_eq!(code, 3, "{args:?}: {err}");
        assert!(err.contains("read-only"), "{err}");
    }
    // Reading is fine.
    assert_eq!(c.code(&["--read-only", "queue", "list"]).0, 0);
    assert_eq!(c.code(&["--read-only", "trash", "list"]).0, 0);
    let audit = std::fs::read_to_string(c.data().join("logs/audit.log")).unwrap();
    assert!(
        audit.contains("refused: read-only") && audit.contains("resync"),
        "{audit}"
    );
}

#[test]
fn once_exits_4_naming_a_paused_authority_and_never_waits_forever() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "t").unwrap();
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600)).unwrap();
    // A port where nothing listens (held, so no other test's server takes
    // it: one that answered or stalled made this run wait 20 s once).
    let (_held, port) = crate::common::refused_port();
    let c = Cli::new(&format!(
        "[authorities.remote]\nkind = \"scim\"\nurl = \"http://127.0.0.1:{port}\"\ntoken_file = \"{}\"\n\
         schools = [\"gsmitte\"]\n[authorities.remote.retry]\nbase_seconds = 0.2\nmax_seconds = 1.0\n",
        token.display()
    ));
    let started = std::time::Instant::now();
    let out = c.run(&["--json", "sync", "run", "--once", "--max-wait", "1"]);
    assert!(started.elapsed().as_secs() < 20);
    assert_eq!(out.status.code(), Some(4), "{}", String::from_utf8_lossy(&out.stderr));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("remote") && err.contains("paused"), "{err}");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let remote = v["authorities"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["authority"] == "remote")
        .unwrap();
    assert!(remote["left"].as_u64().unwrap() > 0);
    // The mirrors were drained all the same.
    let mirror = v["authorities"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["authority"] == "mirror")
        .unwrap();
    assert_eq!(mirror["left"], 0);
    let (_, q) = c.json(&["queue", "list", "--authority", "remote"]);
    assert!(q[0]["paused"].is_object(), "{q}");
    // The pause does not spend attempts.
    let (_, items) = c.json(&["queue", "show", "remote"]);
    assert!(items.as_array().unwrap().iter().all(|i| i["attempts"] == 0), "{items}");
}

#[test]
fn config_errors_name_the_key() {
    let c = Cli::new("");
    let (code, err) = c.code(&["--set", "authorities.x.kind=\"scim\"", "queue", "list"]);
    assert_eq!(code, 1);
    assert!(err.contains("authorities.x.url"), "{err}");
    let (code, err) = c.code(&["--set", "authorities.mirror.workers=0", "queue", "list"]);
    assert_eq!(code, 1);
    assert!(err.contains("authorities.mirror.workers"), "{err}");
    let (code, err) = c.code(&[
        "--set",
        "authorities.mirror.mapping.user.userName=\"shoe_size\"",
        "queue",
        "list",
    ]);
    assert_eq!(code, 1);
    assert!(err.contains("shoe_size"), "{err}");
    let (code, err) = c.code(&["--set", "authorities.mirror.colour=\"red\"", "queue", "list"]);
    assert_eq!(code, 1);
    assert!(err.contains("colour"), "{err}");
}

#[test]
fn demo_leaves_queues_trash_and_a_paused_authority_to_look_at() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("demo");
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_rollcall"))
            .arg("--data-dir")
            .arg(&data)
            .args(args)
            .env_remove("ROLLCALL_DATA_DIR")
            .env("HOME", dir.path())
            .env("XDG_CONFIG_HOME", dir.path().join("xdg"))
            .output()
            .unwrap()
    };
    let out = run(&["demo", "--schools", "3", "--users-per-school", "120", "--no-tui"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let out = run(&["--json", "queue", "list"]);
    let q: Value = serde_json::from_slice(&out.stdout).unwrap();
    let by: std::collections::BTreeMap<String, Value> = q
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["authority"].as_str().unwrap().to_string(), a.clone()))
        .collect();
    assert!(by["idbroker"]["paused"].is_object(), "{q}");
    assert!(by["idbroker"]["depth"].as_u64().unwrap() > 50, "{q}");
    assert!(by["lernplattform"]["trash"].as_u64().unwrap() >= 1, "{q}");
    assert!(
        by["schulportal"]["depth"].as_u64().unwrap() >= 1,
        "changes after the demo's sync: {q}"
    );
    assert_eq!(by["schulportal"]["trash"], 0);
    // The mirror holds what the directory does.
    let mirror = rusqlite::Connection::open(data.join("mirrors/schulportal.sqlite")).unwrap();
    let n: i64 = mirror
        .query_row("SELECT COUNT(*) FROM resources WHERE class = 'user'", [], |r| r.get(0))
        .unwrap();
    assert!(n > 300, "{n}");

    // Issue 16.7: the unreachable idbroker gives up after one probe, within
    // seconds (not after ~47 s of back-off), and says why.
    let t0 = std::time::Instant::now();
    let out = run(&["--json", "sync", "run", "--once"]);
    assert_eq!(out.status.code(), Some(4), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(t0.elapsed() < std::time::Duration::from_secs(10), "{:?}", t0.elapsed());
    // Issue 16.1: the demo's school groups reached the mirror with
    // everything else: verify is clean after the first drain.
    let out = run(&["--json", "verify", "all", "--authority", "schulportal"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(0), "{v}");
    assert!(v["expected"].as_u64().unwrap() > 300, "{v}");
}

#[test]
fn daemon_syncs_changes_runs_the_daily_purge_and_stops_on_sigterm() {
    let c = Cli::new("[sync]\npoll_seconds = 0.05\n");
    let mut daemon = Command::new(env!("CARGO_BIN_EXE_rollcall"))
        .arg("--data-dir")
        .arg(c.data())
        .arg("daemon")
        .env_remove("ROLLCALL_DATA_DIR")
        .env("HOME", c.dir.path())
        .env("XDG_CONFIG_HOME", c.dir.path().join("xdg"))
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mirror = c.data().join("mirrors/mirror.sqlite");
    let family = |ext: &str| -> Option<String> {
        let conn = rusqlite::Connection::open(&mirror).ok()?;
        let attrs: String = conn
            .query_row("SELECT attributes FROM resources WHERE external_id = ?1", [ext], |r| {
                r.get(0)
            })
            .ok()?;
        let v: Value = serde_json::from_str(&attrs).ok()?;
        v["name"]["familyName"].as_str().map(str::to_string)
    };
    let wait_for = |what: &dyn Fn() -> bool| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while !what() {
            assert!(std::time::Instant::now() < deadline, "the daemon did not get there");
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    };
    wait_for(&|| family("district:1").as_deref() == Some("Alt"));
    // A change while it runs reaches the mirror.
    let feed = c.dir.path().join("feed2.csv");
    std::fs::write(&feed, FEED.replace("Alt", "Altmann")).unwrap();
    let out = c.run(&[
        "import",
        "--school",
        "gsmitte",
        "--role",
        "student",
        feed.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0));
    wait_for(&|| family("district:1").as_deref() == Some("Altmann"));
    // The daily work ran: a purge run exists.
    let (_, runs) = c.json(&["runs", "list", "--kind", "purge"]);
    assert_eq!(runs.as_array().unwrap().len(), 1, "{runs}");
    // SIGTERM: it finishes what it holds and exits cleanly.
    // SAFETY: signalling our own child by its id.
    unsafe {
        libc::kill(daemon.id() as libc::pid_t, libc::SIGTERM);
    }
    let status = daemon.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    let (_, runs) = c.json(&["runs", "list", "--kind", "sync"]);
    let daemon_run = runs
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["args"]["daemon"] == true)
        .expect("the daemon's run record");
    assert_eq!(daemon_run["status"], "ok", "{daemon_run}");
    assert!(daemon_run["counts"]["sent"].as_u64().unwrap() >= 1);
}

/// `authorities refresh NAME` asks a SCIM server what it supports;
/// `authorities show` prints it and the mapped attributes it does not
/// declare (SCIMMY without the enterprise extension).
#[test]
fn authorities_refresh_and_show_print_what_the_server_declares() {
    let Some(server) = crate::common::scim::ScimServer::start_kind(crate::common::scim::Kind::Scimmy) else {
        return;
    };
    let (_t, token) = crate::common::token_file();
    let c = Cli::new(&format!(
        "[authorities.peer]\nkind = \"scim\"\nurl = \"{}\"\ntoken_file = \"{}\"\nschools = [\"gsmitte\"]\n",
        server.url(),
        token.display()
    ));
    let (code, v) = c.json(&["authorities", "show", "peer"]);
    assert_eq!(code, 0, "{v}");
    assert!(v["capabilities"].is_null(), "not asked yet: {v}");
    let (code, v) = c.json(&["authorities", "refresh", "peer"]);
    assert_eq!(code, 0, "{v}");
    let caps = &v["capabilities"];
    assert_eq!(caps["provider"]["patch"], true, "{v}");
    assert_eq!(caps["provider"]["bulk"]["supported"], false, "{v}");
    assert_eq!(caps["users"]["endpoint"], "/Users", "{v}");
    assert_eq!(
        v["dropped"],
        serde_json::json!(["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:organization"])
    );
    let out = c.run(&["authorities", "show", "peer"]);
    let text = String::from_utf8_lossy(&out.stdout);
    for want in [
        "patch: yes",
        "bulk: no",
        "filter: yes (maxResults 1000)",
        "not declared by the server",
    ] {
        assert!(text.contains(want), "{want}: {text}");
    }
    assert!(text.contains("enterprise:2.0:User:organization"), "{text}");
}
