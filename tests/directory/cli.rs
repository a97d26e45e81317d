//! The CLI contract, exercised through the real binary: command names,
//! flags, `--json` field names and exit codes.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

struct Cli {
    dir: tempfile::TempDir,
}

impl Cli {
    fn new() -> Self {
        Cli {
            dir: tempfile::tempdir().unwrap(),
        }
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
        let code = out.status.code().unwrap();
        let v = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "{args:?}: stdout is not JSON ({e}): {}\nstderr: {}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        });
        (code, v)
    }

    fn file(&self, name: &str, text: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    }
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

const FEED: &str = "record_uid,firstname,lastname,email,birthday,classes\n\
                    1,Jörg,Müller,,2012-03-04,\"5a,5b\"\n2,Eva,Klein,eva@x.example,,5a\n";

#[test]
fn import_json_contract() {
    let c = Cli::new();
    let f = c.file("a.csv", FEED);
    let (code, v) = c.json(&["import", "--school", "gsmitte", "--role", "student", s(&f)]);
    assert_eq!(code, 0);
    for key in [
        "run_id",
        "school",
        "dry_run",
        "created",
        "modified",
        "unchanged",
        "added_school",
        "removed_school",
        "to_limbo",
        "restored",
        "errors",
        "refused",
    ] {
        assert!(v.get(key).is_some(), "missing {key} in {v}");
    }
    assert_eq!(v["created"], 2);
    assert_eq!(v["school"], "gsmitte");
    assert_eq!(v["dry_run"], false);
    assert_eq!(v["refused"], Value::Null);
    assert_eq!(v["errors"], serde_json::json!([]));

    let (code, u) = c.json(&["users", "show", "j.mueller"]);
    assert_eq!(code, 0);
    for key in [
        "username",
        "record_uid",
        "source_uid",
        "firstname",
        "lastname",
        "email",
        "roles",
        "schools",
        "primary_school",
        "classes",
        "workgroups",
        "disabled",
        "state",
        "purge_at",
    ] {
        assert!(u.get(key).is_some(), "missing {key} in {u}");
    }
    assert_eq!(u["roles"], serde_json::json!(["student"]));
    assert_eq!(u["schools"], serde_json::json!(["gsmitte"]));
    assert_eq!(u["classes"], serde_json::json!({"gsmitte": ["5a", "5b"]}));
    assert_eq!(u["state"], "active");
    assert_eq!(u["purge_at"], Value::Null);
    let (_, by_uid) = c.json(&["users", "show", "--record-uid", "1"]);
    assert_eq!(by_uid["username"], "j.mueller");
    let (_, by_src) = c.json(&["users", "show", "--record-uid", "1", "--source", "district"]);
    assert_eq!(by_src["username"], "j.mueller");

    let (code, list) = c.json(&[
        "users", "list", "--school", "gsmitte", "--state", "active", "--role", "student",
    ]);
    assert_eq!(code, 0);
    assert_eq!(list.as_array().unwrap().len(), 2);
    let (_, none) = c.json(&["users", "list", "--state", "limbo"]);
    assert_eq!(none, serde_json::json!([]));
}

#[test]
fn errors_refusals_and_exit_codes() {
    let c = Cli::new();
    let f = c.file("a.csv", FEED);
    assert_eq!(
        c.run(&["import", "--school", "gsmitte", "--role", "student", s(&f)])
            .status
            .code(),
        Some(0)
    );
    // Bad row with the default max_row_errors = 0: refused, exit 3, row error with line.
    let bad = c.file("bad.csv", "record_uid,firstname,lastname\n1,Jörg,Müller\n2,,Klein\n");
    let (code, v) = c.json(&["import", "--school", "gsmitte", "--role", "student", s(&bad)]);
    assert_eq!(code, 3);
    assert_eq!(v["errors"][0]["line"], 3);
    assert_eq!(v["errors"][0]["record_uid"], "2");
    assert!(v["refused"].as_str().unwrap().contains("max_row_errors"));
    // Same with the limit lifted: applies, the bad row's user is untouched.
    let (code, v) = c.json(&[
        "--set",
        "import.max_row_errors=-1",
        "import",
        "--school",
        "gsmitte",
        "--role",
        "student",
        s(&bad),
    ]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["to_limbo"], 0);
    // Missing column: exit 1, names file and column.
    let nocol = c.file("nocol.csv", "record_uid,firstname\n1,Jörg\n");
    let out = c.run(&["import", "--school", "gsmitte", "--role", "student", s(&nocol)]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("nocol.csv") && err.contains("lastname"), "{err}");
    // Usage errors: exit 2.
    assert_eq!(c.run(&["import", "--school", "x"]).status.code(), Some(2));
    assert_eq!(c.run(&["frobnicate"]).status.code(), Some(2));
    assert_eq!(
        c.run(&["import", "--school", "a b", "--role", "student", s(&f)])
            .status
            .code(),
        Some(2)
    );
    // Unknown user: exit 1.
    assert_eq!(c.run(&["users", "show", "nobody"]).status.code(), Some(1));
    // Read-only: refused, exit 3.
    let out = c.run(&[
        "--read-only",
        "import",
        "--school",
        "gsmitte",
        "--role",
        "student",
        s(&f),
    ]);
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("read-only"));
}

#[test]
fn guard_limbo_and_purge_json() {
    let c = Cli::new();
    let mut text = String::from("record_uid,firstname,lastname\n");
    for i in 0..10 {
        text.push_str(&format!("{i},Kim,Nr{i}\n"));
    }
    let all = c.file("all.csv", &text);
    c.run(&["import", "--school", "a", "--role", "student", s(&all)]);
    let few = c.file("few.csv", "record_uid,firstname,lastname\n0,Kim,Nr0\n");
    let (code, v) = c.json(&["import", "--school", "a", "--role", "student", s(&few)]);
    assert_eq!(code, 3);
    assert!(v["refused"].as_str().unwrap().contains("--force"));
    let (code, v) = c.json(&[
        "import",
        "--school",
        "a",
        "--role",
        "student",
        "--dry-run",
        "--force",
        s(&few),
    ]);
    assert_eq!(
        (code, v["dry_run"].clone(), v["to_limbo"].clone()),
        (0, Value::Bool(true), 9.into())
    );
    let (_, list) = c.json(&["users", "list", "--state", "limbo"]);
    assert_eq!(list.as_array().unwrap().len(), 0, "dry run wrote nothing");
    let (code, v) = c.json(&["import", "--school", "a", "--role", "student", "--force", s(&few)]);
    assert_eq!((code, v["to_limbo"].clone()), (0, 9.into()));
    let (_, limbo) = c.json(&["limbo", "list"]);
    assert_eq!(limbo.as_array().unwrap().len(), 9);
    let purge_at = limbo[0]["purge_at"].as_str().unwrap().to_string();
    assert_eq!(limbo[0]["state"], "limbo");
    assert_eq!(limbo[0]["disabled"], true);

    let (code, v) = c.json(&["limbo", "extend", "k.nr1", "--days", "30"]);
    assert_eq!(code, 0);
    assert_ne!(v["purge_at"].as_str().unwrap(), purge_at);
    c.run(&["schools", "create", "b", "--display-name", "Schule B"]);
    let (code, v) = c.json(&["limbo", "restore", "k.nr2", "--school", "b"]);
    assert_eq!(
        (code, v["state"].clone(), v["schools"].clone()),
        (0, "active".into(), serde_json::json!(["b"]))
    );

    let (code, v) = c.json(&["limbo", "purge", "--as-of", &purge_at, "--dry-run"]);
    assert_eq!(code, 0);
    assert_eq!(v["dry_run"], true);
    assert_eq!(v["purged"].as_array().unwrap().len(), 7);
    let (code, v) = c.json(&["limbo", "purge", "--as-of", &purge_at]);
    assert_eq!((code, v["purged"].as_array().unwrap().len()), (0, 7));
    assert!(v["purged"].as_array().unwrap().contains(&Value::from("k.nr3")));
    let (_, limbo) = c.json(&["limbo", "list"]);
    assert_eq!(limbo.as_array().unwrap().len(), 1, "the extended one is left");
    assert_eq!(
        c.run(&["limbo", "purge", "--as-of", "2026-13-01"]).status.code(),
        Some(2)
    );

    let (code, runs) = c.json(&["runs", "list"]);
    assert_eq!(code, 0);
    let runs = runs.as_array().unwrap();
    assert_eq!(runs[0]["kind"], "purge");
    let id = runs[0]["id"].as_str().unwrap();
    let (code, run) = c.json(&["runs", "show", id]);
    assert_eq!((code, run["status"].clone()), (0, "ok".into()));
    assert!(run["user"].as_str().is_some() && run["started_at"].as_str().is_some());
    let (_, imports) = c.json(&["runs", "list", "--kind", "import", "--school", "a"]);
    assert!(imports.as_array().unwrap().iter().all(|r| r["kind"] == "import"));
    assert_eq!(c.run(&["runs", "show", "../../etc/passwd"]).status.code(), Some(1));
}

#[test]
fn schools_info_and_config_layers() {
    let c = Cli::new();
    let (code, v) = c.json(&["schools", "create", "gsmitte", "--display-name", "Grundschule Mitte"]);
    assert_eq!((code, v["name"].clone()), (0, "gsmitte".into()));
    assert_eq!(c.run(&["schools", "create", "gsmitte"]).status.code(), Some(3));
    let (_, list) = c.json(&["schools", "list"]);
    assert_eq!(list[0]["display_name"], "Grundschule Mitte");

    let overlay = c.file("o.toml", "[import]\nlimbo_school = \"parked\"\n");
    let (code, info) = c.json(&["--config", s(&overlay), "--set", "import.deletion_grace_days=7", "info"]);
    assert_eq!(code, 0);
    assert_eq!(info["config"]["import"]["limbo_school"], "parked");
    assert_eq!(info["config"]["import"]["deletion_grace_days"], 7);
    assert!(
        info["paths"]["directory"]
            .as_str()
            .unwrap()
            .ends_with("directory.sqlite")
    );
    let layers = info["layers"].to_string();
    assert!(layers.contains("o.toml") && layers.contains("--set"));
    // Bad config: error names the file and the line.
    let bad = c.file("bad.toml", "[import]\nmax_row_errors = \"x\"\n");
    let out = c.run(&["--config", s(&bad), "info"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.toml") && err.contains("import.max_row_errors"),
        "{err}"
    );
    // Human info works and prints the data dir.
    let out = c.run(&["info"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("data dir:"));
}

#[test]
fn german_mapping_overlay() {
    let c = Cli::new();
    let cfg = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/mapping-de.toml");
    let f = c.file(
        "de.csv",
        "\u{feff}Schule;Vorname;Nachname;Klassen;EMail;Geburtstag;Rolle;Personalnummer;Bemerkung\n\
         gsmitte;Jörg;Müller;5a;;04.03.2012;Schüler;100;neu\n\
         gsmitte;Anna;Weiß;;;;Lehrerin;101;\n",
    );
    let (code, v) = c.json(&["--config", s(&cfg), "import", "--school", "gsmitte", s(&f)]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["created"], 2);
    let (_, u) = c.json(&["users", "show", "a.weiss"]);
    assert_eq!(u["roles"], serde_json::json!(["teacher"]));
    let (_, u) = c.json(&["users", "show", "j.mueller"]);
    assert_eq!(u["birthday"], "2012-03-04");
}

#[test]
fn no_subcommand_without_a_terminal_prints_help() {
    let c = Cli::new();
    let out = c.run(&[]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("Usage"));
}

#[test]
fn demo_builds_a_district() {
    let c = Cli::new();
    let (code, v) = c.json(&["demo", "--schools", "3", "--users-per-school", "60", "--no-tui"]);
    assert_eq!(code, 0);
    assert_eq!(v["schools"], 3);
    assert!(v["limbo"].as_u64().unwrap() > 0);
    assert!(v["multi_school"].as_u64().is_some());
    let feeds = std::fs::read_dir(c.data().join("feeds")).unwrap().count();
    assert!(feeds >= 6, "{feeds} feeds");
    // Same spec again: reused; another spec: refused.
    let (code, v) = c.json(&["demo", "--schools", "3", "--users-per-school", "60", "--no-tui"]);
    assert_eq!((code, v["reused"].clone()), (0, Value::Bool(true)));
    assert_eq!(c.run(&["demo", "--schools", "4", "--no-tui"]).status.code(), Some(3));
}

/// Engine errors exit by meaning (README, exit codes): not found and wrong
/// state 1, usage 2, refusals 3; school names in any case.
#[test]
fn exit_codes_by_meaning_and_school_case() {
    let c = Cli::new();
    let f = c.file("f.csv", "record_uid,firstname,lastname\n1,Max,Muster\n2,Eva,Muster\n");
    let (code, v) = c.json(&["import", "--school", "GSA", "--role", "student", s(&f)]);
    assert_eq!((code, v["school"].clone()), (0, "GSA".into()));
    let (code, v) = c.json(&["import", "--school", "gsa", "--role", "student", s(&f)]);
    assert_eq!(
        (code, v["school"].clone(), v["unchanged"].clone()),
        (0, "GSA".into(), 2.into())
    );
    // A second spelling: refused.
    let out = c.run(&["schools", "create", "gsa"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("case-insensitive"));
    // Restoring a user who is not in limbo: wrong state, exit 1.
    let out = c.run(&["limbo", "restore", "m.muster", "--school", "gsa"]);
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not in limbo"));
    // A bad value: usage, exit 2; an unknown school: not found, exit 1.
    assert_eq!(
        c.run(&["limbo", "extend", "m.muster", "--days", "0"]).status.code(),
        Some(2)
    );
    let (code, list) = c.json(&["users", "list", "--school", "gSa"]);
    assert_eq!((code, list.as_array().map(Vec::len)), (0, Some(2)));
    assert_eq!(c.run(&["schools", "merge", "gsa", "other"]).status.code(), Some(2));
    assert_eq!(c.run(&["schools", "merge", "gSa", "GSA"]).status.code(), Some(1));
}

/// Runs the binary and returns its exit code, stderr and peak RSS in KiB.
// wait4 reaps the child (for its rusage); a later Child::wait could reap a
// process of another test that got the same pid.
#[allow(clippy::zombie_processes)]
fn run_measured(c: &Cli, args: &[&str]) -> (i32, String, i64) {
    use std::io::Read;
    let mut child = Command::new(env!("CARGO_BIN_EXE_rollcall"))
        .arg("--data-dir")
        .arg(c.data())
        .args(args)
        .env_remove("ROLLCALL_DATA_DIR")
        .env("HOME", c.dir.path())
        .env("XDG_CONFIG_HOME", c.dir.path().join("xdg"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = String::new();
    child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    let mut status = 0;
    // SAFETY: wait4 on our own child, with zeroed out-parameters.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut usage) };
    assert!(pid > 0, "wait4 failed");
    (libc::WEXITSTATUS(status), stderr, usage.ru_maxrss)
}

/// Issue 18, points 4 and 12: a directory, a FIFO or /dev/zero as a feed is
/// refused with what it is; a huge sparse feed is refused by size, or
/// without the limit fails on its first line in bounded memory.
#[test]
fn feeds_that_are_not_plain_small_files_are_refused_with_what_they_are() {
    let c = Cli::new();
    let import = |feed: &str| c.run(&["import", "--school", "a", "--role", "student", "--dry-run", feed]);
    let dir = c.dir.path().to_str().unwrap().to_string();
    for (feed, what) in [(dir.as_str(), "is a directory"), ("/dev/zero", "is a character device")] {
        let out = import(feed);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{feed}: {err}");
        assert!(err.contains(what) && !err.contains("does not exist"), "{feed}: {err}");
    }
    let fifo = c.dir.path().join("feed.fifo");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    let out = import(s(&fifo));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("is a FIFO (named pipe)") && err.contains("save the feed to a file"),
        "{err}"
    );
    let out = import(s(&c.dir.path().join("missing.csv")));
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not exist"));
    // 2 GB of nothing (a sparse file): refused by import.max_feed_bytes.
    let sparse = c.dir.path().join("sparse.csv");
    std::fs::File::create(&sparse).unwrap().set_len(2 << 30).unwrap();
    let (code, err, _) = run_measured(
        &c,
        &["import", "--school", "a", "--role", "student", "--dry-run", s(&sparse)],
    );
    assert_eq!(code, 3, "{err}");
    assert!(
        err.contains("2147483648 bytes") && err.contains("import.max_feed_bytes"),
        "{err}"
    );
    // Without the limit (a smaller one, to keep the archive quick): the
    // first line is too long, and memory stays bounded.
    std::fs::File::create(&sparse).unwrap().set_len(200 << 20).unwrap();
    let (code, err, rss_kib) = run_measured(
        &c,
        &[
            "--set",
            "import.max_feed_bytes=0",
            "import",
            "--school",
            "a",
            "--role",
            "student",
            "--dry-run",
            s(&sparse),
        ],
    );
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("line 1 is longer than 1024 KiB"), "{err}");
    assert!(rss_kib < 200 * 1024, "peak RSS {rss_kib} KiB");
}

/// `--encoding` on the command line, and `deleted` in `--json`.
#[test]
fn encoding_flag_and_deleted_count() {
    let c = Cli::new();
    let f = c.dir.path().join("cp1252.csv");
    std::fs::write(
        &f,
        b"record_uid,firstname,lastname\n1,J\xf6rg,Stra\xdfe\n2,Eva,\x80uro\n",
    )
    .unwrap();
    let out = c.run(&["import", "--school", "a", "--role", "student", s(&f)]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--encoding LABEL"));
    let (code, v) = c.json(&[
        "import",
        "--school",
        "a",
        "--role",
        "student",
        "--encoding",
        "windows-1252",
        s(&f),
    ]);
    assert_eq!((code, v["created"].clone()), (0, 2.into()));
    let (_, u) = c.json(&["users", "show", "j.strasse"]);
    assert_eq!(
        (u["firstname"].clone(), u["lastname"].clone()),
        ("Jörg".into(), "Straße".into())
    );
    let one = c.file("one.csv", "record_uid,firstname,lastname\n1,Jörg,Straße\n");
    let (code, v) = c.json(&[
        "--set",
        "import.deletion_grace_days=0",
        "import",
        "--school",
        "a",
        "--role",
        "student",
        s(&one),
    ]);
    assert_eq!(
        (code, v["deleted"].clone(), v["to_limbo"].clone()),
        (0, 1.into(), 0.into())
    );
    assert_eq!(
        c.run(&["users", "show", "--record-uid", "2"]).status.code(),
        Some(1),
        "deleted"
    );
}
