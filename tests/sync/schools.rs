//! Schools to sync: data-dir assignments on top of the TOML list, surviving
//! restarts, audited, honoured by the distributor from the next change;
//! `add`/`remove` with and without `--force`, `--initial-sync false`,
//! `--delete-on-target false`; and the CLI contract of `sync-schools` and
//! `verify` through the real binary (exit codes, `--json` fields).

use crate::common;

use common::{District, student};
use rollcall::engine::EngineError;
use rollcall::engine::jobs::Quiet;
use rollcall::engine::sync::SyncOptions;
use rollcall::engine::sync::assign::{SchoolsAdd, SchoolsRemove};
use serde_json::Value;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::Duration;

const SETS: &[&str] = &[
    "authorities.mirror.kind=\"embedded\"",
    "authorities.mirror.schools=[\"gsmitte\"]",
];

fn district() -> District {
    let mut d = District::with_sets(SETS);
    d.import(
        "gsmitte",
        &[&student("1", "Anna", "Alt", "5a"), &student("2", "Ben", "Bauer", "5a")],
    );
    d.import("gsnord", &[&student("3", "Cem", "Celik", "1a")]);
    d.import("gssued", &[&student("4", "Dora", "Dorn", "2b")]);
    d
}

fn sync(d: &mut District) {
    let out = d
        .engine
        .sync_run(
            &SyncOptions {
                max_wait: Duration::from_secs(5),
                ..SyncOptions::default()
            },
            &mut Quiet,
        )
        .expect("sync");
    assert!(out.complete, "{out:?}");
}

fn add(schools: &[&str], initial_sync: bool, force: bool) -> SchoolsAdd {
    SchoolsAdd {
        authority: "mirror".into(),
        schools: schools.iter().map(|s| s.to_string()).collect(),
        all_schools: false,
        initial_sync,
        force,
    }
}

fn remove(schools: &[&str], delete_on_target: bool, force: bool) -> SchoolsRemove {
    SchoolsRemove {
        authority: "mirror".into(),
        schools: schools.iter().map(|s| s.to_string()).collect(),
        delete_on_target,
        force,
    }
}

fn mirror_ids(d: &District) -> Vec<String> {
    let db = rusqlite::Connection::open(d.data_dir().join("mirrors/mirror.sqlite")).expect("mirror");
    let mut stmt = db
        .prepare("SELECT external_id FROM resources ORDER BY external_id")
        .unwrap();
    stmt.query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

fn sources(d: &District) -> Vec<(String, String)> {
    d.engine
        .sync_schools_list(Some("mirror"))
        .unwrap()
        .remove(0)
        .schools
        .into_iter()
        .map(|s| (s.school, s.source.to_string()))
        .collect()
}

#[test]
fn add_schedules_survives_restart_and_feeds_the_distributor() {
    let mut d = district();
    sync(&mut d);
    assert_eq!(
        mirror_ids(&d),
        vec!["class:gsmitte:5a", "district:1", "district:2", "school:gsmitte"]
    );
    assert_eq!(sources(&d), vec![("gsmitte".to_string(), "config".to_string())]);

    // Already assigned (by the config): refused, nothing done.
    let e = d.engine.sync_schools_add(&add(&["gsmitte"], true, false)).unwrap_err();
    assert!(matches!(e, EngineError::Refused(_)), "{e}");
    assert!(e.to_string().contains("--force"), "{e}");
    assert!(d.engine.queue_show("mirror").unwrap().is_empty());
    // Unknown school: not found.
    let e = d.engine.sync_schools_add(&add(&["nowhere"], true, false)).unwrap_err();
    assert!(matches!(e, EngineError::NotFound(_)), "{e}");

    // Initial sync: the school's users, classes and school group.
    let out = d.engine.sync_schools_add(&add(&["gsnord"], true, false)).unwrap();
    assert_eq!((out.action, out.schools.clone()), ("add", vec!["gsnord".to_string()]));
    assert_eq!(out.scheduled.objects, 3, "{out:?}");
    assert_eq!(out.scheduled.queued.get("mirror"), Some(&3));
    sync(&mut d);
    assert!(mirror_ids(&d).contains(&"district:3".to_string()));
    assert!(mirror_ids(&d).contains(&"class:gsnord:1a".to_string()));

    // --force: assigned again and scheduled again.
    let out = d.engine.sync_schools_add(&add(&["gsnord"], true, true)).unwrap();
    assert_eq!(out.forced, vec!["gsnord".to_string()]);
    assert_eq!(out.scheduled.objects, 3);

    // --initial-sync false: only the assignment; the next change flows.
    sync(&mut d);
    let out = d.engine.sync_schools_add(&add(&["gssued"], false, false)).unwrap();
    assert_eq!(out.scheduled.objects, 0);
    assert!(d.engine.queue_show("mirror").unwrap().is_empty());
    // A restart keeps it.
    d.reopen(SETS, false);
    assert_eq!(
        sources(&d),
        vec![
            ("gsmitte".to_string(), "config".to_string()),
            ("gsnord".to_string(), "data_dir".to_string()),
            ("gssued".to_string(), "data_dir".to_string()),
        ]
    );
    assert!(!mirror_ids(&d).contains(&"district:4".to_string()));
    d.import(
        "gssued",
        &[
            &student("4", "Dora", "Dorn", "2b"),
            &student("5", "Emil", "Ernst", "2b"),
        ],
    );
    sync(&mut d);
    let ids = mirror_ids(&d);
    assert!(ids.contains(&"district:5".to_string()), "{ids:?}");
    assert!(
        !ids.contains(&"district:4".to_string()),
        "Dora did not change: no initial sync, so not sent"
    );

    let audit = std::fs::read_to_string(d.data_dir().join("logs/audit.log")).unwrap();
    assert!(audit.contains("\"sync-schools add\""), "{audit}");
    assert!(audit.contains("refused: already assigned"));
}

#[test]
fn remove_with_and_without_delete_on_target() {
    let mut d = district();
    d.engine.sync_schools_add(&add(&["gsnord"], true, false)).unwrap();
    sync(&mut d);
    // Cem in gsnord and gsmitte: he stays when gsnord goes.
    d.import(
        "gsmitte",
        &[
            &student("1", "Anna", "Alt", "5a"),
            &student("2", "Ben", "Bauer", "5a"),
            &student("3", "Cem", "Celik", "5a"),
        ],
    );
    sync(&mut d);

    // Not assigned: refused; --force goes ahead.
    let e = d
        .engine
        .sync_schools_remove(&remove(&["gssued"], true, false))
        .unwrap_err();
    assert!(matches!(e, EngineError::Refused(_)), "{e}");
    let out = d.engine.sync_schools_remove(&remove(&["gssued"], true, true)).unwrap();
    assert_eq!(out.forced, vec!["gssued".to_string()]);

    // --delete-on-target false: the assignment goes, the objects stay.
    let out = d
        .engine
        .sync_schools_remove(&remove(&["gsnord"], false, false))
        .unwrap();
    assert_eq!((out.schedule, out.scheduled.objects), (false, 0));
    sync(&mut d);
    assert!(mirror_ids(&d).contains(&"class:gsnord:1a".to_string()));
    // Changes in gsnord no longer flow.
    d.import(
        "gsnord",
        &[
            &student("3", "Cem", "Celik", "1a"),
            &student("6", "Finn", "Fuchs", "1a"),
        ],
    );
    sync(&mut d);
    assert!(!mirror_ids(&d).contains(&"district:6".to_string()));

    // Back, then removed with delete on target: groups and the users with
    // no other synced school are deleted (the authority keeps leavers
    // deactivated otherwise); Cem stays, he is in gsmitte too.
    d.engine.sync_schools_add(&add(&["gsnord"], true, false)).unwrap();
    sync(&mut d);
    assert!(mirror_ids(&d).contains(&"district:6".to_string()));
    let out = d.engine.sync_schools_remove(&remove(&["gsnord"], true, false)).unwrap();
    assert!(out.scheduled.objects >= 4, "{out:?}");
    sync(&mut d);
    assert_eq!(
        mirror_ids(&d),
        vec![
            "class:gsmitte:5a",
            "district:1",
            "district:2",
            "district:3",
            "school:gsmitte"
        ]
    );

    // A config school removed: an exclusion record, shown as such.
    d.engine
        .sync_schools_remove(&remove(&["gsmitte"], false, false))
        .unwrap();
    let list = d.engine.sync_schools_list(Some("mirror")).unwrap().remove(0);
    assert!(list.schools.is_empty(), "{list:?}");
    assert_eq!(list.excluded.len(), 1);
    assert_eq!(list.excluded[0].school, "gsmitte");
    assert!(list.excluded[0].since.is_some() && list.excluded[0].by.is_some());
    assert!(
        d.engine
            .authority_show("mirror")
            .unwrap()
            .problems
            .iter()
            .any(|p| p.contains("no schools")),
        "an authority with nothing left says so"
    );
    // And add brings it back from the config.
    d.engine.sync_schools_add(&add(&["gsmitte"], false, false)).unwrap();
    assert_eq!(
        sources(&d),
        vec![("gsmitte".to_string(), "config+data_dir".to_string())]
    );
}

#[test]
fn all_schools_adds_the_rest_and_read_only_refuses() {
    let mut d = district();
    let out = d
        .engine
        .sync_schools_add(&SchoolsAdd {
            authority: "mirror".into(),
            all_schools: true,
            initial_sync: false,
            ..SchoolsAdd::default()
        })
        .unwrap();
    assert_eq!(out.schools, vec!["gsnord".to_string(), "gssued".to_string()]);
    assert_eq!(out.skipped, vec!["gsmitte".to_string()]);
    d.reopen(SETS, true);
    let e = d.engine.sync_schools_add(&add(&["gsnord"], true, true)).unwrap_err();
    assert!(matches!(e, EngineError::ReadOnly { .. }), "{e}");
    let e = d
        .engine
        .sync_schools_remove(&remove(&["gsnord"], true, true))
        .unwrap_err();
    assert!(matches!(e, EngineError::ReadOnly { .. }), "{e}");
    assert_eq!(d.engine.sync_schools_list(None).unwrap()[0].schools.len(), 3);
}

// ---- the CLI contract ----

struct Cli {
    dir: tempfile::TempDir,
}

impl Cli {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir_all(&data).unwrap();
        std::fs::write(
            data.join("rollcall.toml"),
            "[authorities.mirror]\nkind = \"embedded\"\nschools = [\"gsmitte\"]\n",
        )
        .unwrap();
        let c = Cli { dir };
        for (school, feed) in [
            (
                "gsmitte",
                "record_uid,firstname,lastname,classes\n1,Anna,Alt,5a\n2,Ben,Bauer,5a\n",
            ),
            ("gsnord", "record_uid,firstname,lastname,classes\n3,Cem,Celik,1a\n"),
        ] {
            let f = c.dir.path().join(format!("{school}.csv"));
            std::fs::write(&f, feed).unwrap();
            let out = c.run(&["import", "--school", school, "--role", "student", f.to_str().unwrap()]);
            assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
        }
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

    fn code(&self, args: &[&str]) -> (i32, String, String) {
        let out = self.run(args);
        (
            out.status.code().unwrap(),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    }
}

#[test]
fn cli_sync_schools_and_verify_contract() {
    let c = Cli::new();
    let (code, v) = c.json(&["sync-schools", "list"]);
    assert_eq!(code, 0);
    let a = &v[0];
    for k in ["authority", "kind", "active", "config_all", "schools", "excluded"] {
        assert!(a.get(k).is_some(), "list lacks {k}: {a}");
    }
    assert_eq!(a["schools"][0]["school"], "gsmitte");
    assert_eq!(a["schools"][0]["source"], "config");
    for k in ["since", "by"] {
        assert!(a["schools"][0].get(k).is_some(), "{a}");
    }

    // Refused without --force: 3.
    let (code, _, err) = c.code(&["sync-schools", "add", "--authority", "mirror", "gsmitte"]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("already assigned") && err.contains("--force"), "{err}");
    // Usage: no school and no --all-schools, a bad bool, both: 2.
    assert_eq!(c.code(&["sync-schools", "add", "--authority", "mirror"]).0, 2);
    assert_eq!(
        c.code(&[
            "sync-schools",
            "add",
            "--authority",
            "mirror",
            "--initial-sync",
            "maybe",
            "gsnord"
        ])
        .0,
        2
    );
    assert_eq!(
        c.code(&[
            "sync-schools",
            "add",
            "--authority",
            "mirror",
            "--all-schools",
            "gsnord"
        ])
        .0,
        2
    );
    // Read-only: 3.
    assert_eq!(
        c.code(&["--read-only", "sync-schools", "add", "--authority", "mirror", "gsnord"])
            .0,
        3
    );

    let (code, v) = c.json(&["sync-schools", "add", "--authority", "mirror", "gsnord"]);
    assert_eq!(code, 0, "{v}");
    for k in [
        "authority",
        "action",
        "schools",
        "forced",
        "skipped",
        "schedule",
        "scheduled",
    ] {
        assert!(v.get(k).is_some(), "add lacks {k}: {v}");
    }
    assert_eq!(v["action"], "add");
    assert_eq!(v["scheduled"]["objects"], 3);
    assert_eq!(v["scheduled"]["queued"]["mirror"], 3);
    let (code, out, _) = c.code(&["sync-schools", "add", "--authority", "mirror", "--force", "gsnord"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("gsnord assigned to mirror") && out.contains("scheduled 3 object(s)"),
        "{out}"
    );

    // Before the queue drains: differences, exit 1.
    let (code, v) = c.json(&["verify", "all", "--authority", "mirror"]);
    assert_eq!(code, 1, "{v}");
    for k in [
        "authority",
        "target",
        "kind",
        "filter",
        "clean",
        "expected",
        "actual",
        "foreign",
        "counts",
        "missing",
        "unexpected",
        "different",
        "fixed",
        "seconds",
    ] {
        assert!(v.get(k).is_some(), "verify lacks {k}: {v}");
    }
    assert_eq!(v["clean"], false);
    assert_eq!(v["counts"]["missing"], 7, "{v}");
    for k in ["kind", "object", "external_id", "name"] {
        assert!(v["missing"][0].get(k).is_some(), "{v}");
    }
    let out = c.run(&["sync", "run", "--once"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let (code, v) = c.json(&["verify", "users", "--authority", "mirror"]);
    assert_eq!(
        (code, &v["clean"], &v["expected"]),
        (0, &Value::Bool(true), &Value::from(3))
    );
    let (code, out, _) = c.code(&["verify", "all", "--authority", "mirror"]);
    assert_eq!(code, 0);
    assert!(out.contains("clean"), "{out}");

    // Drift by hand, then verify, fix, drain, verify.
    let db = rusqlite::Connection::open(c.data().join("mirrors/mirror.sqlite")).unwrap();
    db.execute(
        "UPDATE resources SET attributes = json_set(attributes, '$.userName', 'zz') WHERE external_id = 'district:1'",
        [],
    )
    .unwrap();
    let (code, v) = c.json(&[
        "verify",
        "users",
        "--authority",
        "mirror",
        "--filter",
        "(school=gsmitte)",
    ]);
    assert_eq!(code, 1);
    let d = &v["different"][0];
    for k in ["kind", "object", "external_id", "id", "name", "fields"] {
        assert!(d.get(k).is_some(), "{v}");
    }
    assert_eq!(d["fields"][0]["attribute"], "userName");
    assert_eq!(d["fields"][0]["expected"], "a.alt");
    assert_eq!(d["fields"][0]["actual"], "zz");
    let (code, out, _) = c.code(&["verify", "users", "--authority", "mirror"]);
    assert_eq!(code, 1);
    assert!(out.contains("userName: expected \"a.alt\", actual \"zz\""), "{out}");
    // Bad filter, unknown kind: 2. Read-only fix: 3. Unknown authority: 1.
    let (code, _, err) = c.code(&["verify", "users", "--authority", "mirror", "--filter", "(school=a"]);
    assert_eq!(code, 2);
    assert!(err.contains("position 10"), "{err}");
    assert_eq!(c.code(&["verify", "people", "--authority", "mirror"]).0, 2);
    assert_eq!(
        c.code(&["--read-only", "verify", "users", "--authority", "mirror", "--fix"])
            .0,
        3
    );
    assert_eq!(c.code(&["verify", "users", "--authority", "nobody"]).0, 1);

    let (code, v) = c.json(&["verify", "users", "--authority", "mirror", "--fix"]);
    assert_eq!(code, 1, "differences were found (and queued)");
    assert_eq!(v["fixed"]["queued"], 1);
    assert_eq!(v["fixed"]["objects"][0], "user:district:1");
    for k in ["queued", "coalesced", "objects"] {
        assert!(v["fixed"].get(k).is_some(), "{v}");
    }
    assert_eq!(c.run(&["sync", "run", "--once"]).status.code(), Some(0));
    assert_eq!(c.json(&["verify", "all", "--authority", "mirror"]).0, 0);

    // remove with --delete-on-target false, then list.
    let (code, v) = c.json(&[
        "sync-schools",
        "remove",
        "--authority",
        "mirror",
        "--delete-on-target",
        "false",
        "gsnord",
    ]);
    assert_eq!(code, 0);
    assert_eq!(
        (&v["action"], &v["schedule"]),
        (&Value::from("remove"), &Value::Bool(false))
    );
    let (code, _, err) = c.code(&["sync-schools", "remove", "--authority", "mirror", "gsnord"]);
    assert_eq!(code, 3, "{err}");
    let (code, out, _) = c.code(&["sync-schools", "list"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("gsmitte") && out.contains("config") && !out.contains("gsnord"),
        "{out}"
    );
}
