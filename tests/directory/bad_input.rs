//! The bad-input corpus (`tests/data/bad/`): malformed feeds, config files,
//! mapping rules, queue items and trash files, each run through the real
//! binary. Beside each input, `NAME.expected` holds what the user sees:
//! the first line `exit N`, then the exact stderr (for queue items: the
//! error the trash records, for trash files: the error `trash show`
//! prints). Placeholders: `{file}` the input's path, `{bad}` the corpus
//! folder, `{name}` the queue file name. Every case also checks that
//! nothing was written or lost.
//!
//! `BLESS_BAD_INPUT=1 cargo test --test directory bad_input::` rewrites the expected
//! files from what the binary says now (review the diff before committing).

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Queue and trash inputs are placed under this (valid) item name.
const ITEM: &str = "1-user_district_9-0123456789abcdef0123456789abcdef.json";

fn bad() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/bad")
}

struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn new() -> Self {
        Env {
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

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn json(&self, args: &[&str]) -> Value {
        let mut a = vec!["--json"];
        a.extend_from_slice(args);
        serde_json::from_str(&self.ok(&a)).unwrap()
    }

    /// Users without the clock fields.
    fn users(&self) -> Value {
        let mut v = self.json(&["users", "list"]);
        for u in v.as_array_mut().unwrap() {
            let o = u.as_object_mut().unwrap();
            o.remove("created_at");
            o.remove("updated_at");
        }
        v
    }
}

/// The inputs of one corpus folder, sorted.
fn cases(folder: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(bad().join(folder))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_none_or(|e| e != "expected"))
        .collect();
    v.sort();
    v
}

fn expected_path(case: &Path) -> PathBuf {
    let mut s = case.as_os_str().to_owned();
    s.push(".expected");
    PathBuf::from(s)
}

fn placeholders(text: &str, case: &Path) -> String {
    text.replace(case.to_str().unwrap(), "{file}")
        .replace(bad().to_str().unwrap(), "{bad}")
        .replace(ITEM, "{name}")
}

/// Compares (or, when blessing, records) one case's exit code and message.
fn check(case: &Path, code: i32, message: &str, failures: &mut Vec<String>) {
    let got = format!("exit {code}\n{}", placeholders(message, case));
    let path = expected_path(case);
    if std::env::var_os("BLESS_BAD_INPUT").is_some() {
        std::fs::write(&path, &got).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    if want != got {
        failures.push(format!(
            "{}\n--- expected\n{want}\n--- got\n{got}",
            case.strip_prefix(bad()).unwrap().display()
        ));
    }
}

fn finish(failures: Vec<String>, at_least: usize, n: usize) {
    assert!(n >= at_least, "only {n} cases");
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// Every message names the file (or config key, or queue item) and says
/// what to do: a line with a path or key, and an instruction word.
fn helpful(message: &str) -> bool {
    let names_place = message.contains("{file}") || message.contains("{name}") || message.contains('`');
    let says_what_to_do = [
        "use ", "add ", "fix", "save ", "map ", "check", "remove", "rename", "change", "close", "export", "delete",
        "keep", "set ", "write", "list ",
    ]
    .iter()
    .any(|w| message.to_lowercase().contains(w));
    names_place && says_what_to_do
}

#[test]
fn bad_feeds_are_refused_with_file_line_and_advice() {
    let env = Env::new();
    let good = bad().join("good.csv");
    env.ok(&["import", "--school", "gs", "--role", "student", good.to_str().unwrap()]);
    let before = env.users();
    let mut failures = Vec::new();
    let all = cases("feeds");
    for case in &all {
        let out = env.run(&["import", "--school", "gs", "--role", "student", case.to_str().unwrap()]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        check(case, out.status.code().unwrap(), &stderr, &mut failures);
        if !helpful(&placeholders(&stderr, case)) {
            failures.push(format!(
                "{}: names no place or gives no advice: {stderr}",
                case.display()
            ));
        }
        assert_eq!(env.users(), before, "{}: the directory changed", case.display());
    }
    finish(failures, 25, all.len());
}

#[test]
fn bad_configs_are_refused_with_key_origin_and_advice() {
    let mut failures = Vec::new();
    let all = cases("configs");
    for case in &all {
        let env = Env::new();
        let out = env.run(&["--config", case.to_str().unwrap(), "info"]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        check(case, out.status.code().unwrap(), &stderr, &mut failures);
        let text = placeholders(&stderr, case);
        assert!(
            text.contains("{file}") || text.contains("built-in defaults"),
            "{}: no origin in {stderr}",
            case.display()
        );
        assert!(
            out.stdout.is_empty(),
            "{}: info printed despite the error",
            case.display()
        );
        assert!(!env.data().exists(), "{}: the data dir was created", case.display());
    }
    finish(failures, 12, all.len());
}

#[test]
fn bad_mapping_rules_are_refused_with_file_rule_and_advice() {
    let env = Env::new();
    let good = bad().join("good.csv");
    env.ok(&["import", "--school", "gs", "--role", "student", good.to_str().unwrap()]);
    let before = env.users();
    let feed = bad().join("mapping-feed.csv");
    let mut failures = Vec::new();
    let all = cases("mapping");
    for case in &all {
        let out = env.run(&[
            "import",
            "--school",
            "gs",
            "--role",
            "student",
            "--mapping",
            case.to_str().unwrap(),
            feed.to_str().unwrap(),
        ]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        check(case, out.status.code().unwrap(), &stderr, &mut failures);
        assert_ne!(out.status.code(), Some(0), "{}", case.display());
        assert_eq!(env.users(), before, "{}: the directory changed", case.display());
    }
    finish(failures, 6, all.len());
}

fn mirror(env: &Env) -> PathBuf {
    let config = env.dir.path().join("mirror.toml");
    std::fs::write(
        &config,
        "[authorities.mirror]\nkind = \"embedded\"\nschools = [\"*\"]\n",
    )
    .unwrap();
    config
}

#[test]
fn bad_queue_items_go_to_trash_with_their_raw_text() {
    let mut failures = Vec::new();
    let all = cases("queue");
    for case in &all {
        let env = Env::new();
        let config = mirror(&env);
        let c = config.to_str().unwrap();
        let queue = env.data().join("queues/out/mirror");
        std::fs::create_dir_all(&queue).unwrap();
        let raw = std::fs::read_to_string(case).unwrap();
        std::fs::write(queue.join(ITEM), &raw).unwrap();
        let out = env.run(&["--config", c, "sync", "run", "--once"]);
        // Exit 5: the queue drained, but items went to trash in this run.
        assert_eq!(out.status.code(), Some(5), "{}: {out:?}", case.display());
        // Not lost: the trash holds it, with where, what and what to do.
        let trash = env.json(&["--config", c, "trash", "list"]);
        let items = trash.as_array().unwrap();
        assert_eq!(items.len(), 1, "{}: {trash}", case.display());
        let error = items[0]["error"].as_str().unwrap();
        assert!(error.contains(raw.trim()), "{}: raw text lost: {error}", case.display());
        assert!(!queue.join(ITEM).exists());
        check(case, 0, &format!("{error}\n"), &mut failures);
    }
    finish(failures, 5, all.len());
}

#[test]
fn bad_trash_files_are_named_and_kept() {
    let mut failures = Vec::new();
    let all = cases("trash");
    for case in &all {
        let env = Env::new();
        let config = mirror(&env);
        let c = config.to_str().unwrap();
        let trash = env.data().join("queues/out/mirror/trash");
        std::fs::create_dir_all(&trash).unwrap();
        std::fs::copy(case, trash.join(ITEM)).unwrap();
        let spec = format!("mirror/{ITEM}");
        let out = env.run(&["--config", c, "trash", "show", &spec]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        check(case, out.status.code().unwrap(), &stderr, &mut failures);
        // Listed (so an admin sees it) with the same error, and still there.
        let list = env.json(&["--config", c, "trash", "list"]);
        assert_eq!(list[0]["class"], "unreadable", "{}: {list}", case.display());
        assert!(
            stderr.contains(list[0]["error"].as_str().unwrap()),
            "{}",
            case.display()
        );
        assert_eq!(std::fs::read(trash.join(ITEM)).unwrap(), std::fs::read(case).unwrap());
        // And it can be deleted by the name the message gives.
        env.ok(&["--config", c, "trash", "delete", &spec]);
        assert!(!trash.join(ITEM).exists());
    }
    finish(failures, 5, all.len());
}

#[test]
fn the_corpus_holds_at_least_forty_inputs_each_with_its_message() {
    let mut n = 0;
    for folder in ["feeds", "configs", "mapping", "queue", "trash"] {
        for case in cases(folder) {
            assert!(expected_path(&case).is_file(), "{} has no .expected", case.display());
            n += 1;
        }
    }
    assert!(n >= 40, "{n}");
}
