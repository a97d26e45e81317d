//! Several rollcall nodes on one OpenLDAP server: two data dirs (two real
//! `rollcall` processes) import two schools at the same moment, each feed
//! holding the same new names under different record uids. Usernames are
//! claimed atomically in the directory, so none is issued twice, and every
//! person is created exactly once.

use crate::common::HEADER;
use crate::common::slapd::{self, Slapd};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Child, Command, Stdio};

const FIRST: [&str; 10] = [
    "Anna", "Ben", "Clara", "David", "Emma", "Felix", "Greta", "Hannes", "Ida", "Jonas",
];
const LAST: [&str; 25] = [
    "Kroll",
    "Meier",
    "Schulz",
    "Weber",
    "Wagner",
    "Becker",
    "Hoffmann",
    "Koch",
    "Richter",
    "Klein",
    "Wolf",
    "Neumann",
    "Schwarz",
    "Braun",
    "Zimmermann",
    "Krüger",
    "Hartmann",
    "Lange",
    "Werner",
    "Krause",
    "Lehmann",
    "Köhler",
    "Maier",
    "Huber",
    "Frank",
];

/// The feed of school `prefix` after `rounds` rounds of `n` newcomers
/// each: people whose names repeat (every base is shared by several of
/// them), record uids `<prefix><round>-<i>`.
fn feed(dir: &Path, prefix: &str, rounds: usize, n: usize) -> std::path::PathBuf {
    let mut text = format!("{HEADER}\n");
    for round in 0..rounds {
        for i in 0..n {
            // Initials repeat every 10, last names every 50 people: a base
            // (`a.kroll`) is shared by n / 50 people of each feed and round.
            let first = FIRST[i % FIRST.len()];
            let last = LAST[(i / 2) % LAST.len()];
            text.push_str(&format!("{prefix}{round}-{i},{first},{last},,,5a,,\n"));
        }
    }
    let p = dir.join(format!("{prefix}{rounds}.csv"));
    std::fs::write(&p, text).expect("feed");
    p
}

/// Starts `rollcall import` of `file` into `school` with its own data dir.
fn import(server: &Slapd, tmp: &Path, node: &str, base: &str, school: &str, file: &Path) -> Child {
    let data = tmp.join(node);
    std::fs::create_dir_all(&data).expect("data dir");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rollcall"));
    cmd.arg("--data-dir").arg(&data).arg("--json");
    for s in server.sets(&data, base) {
        cmd.arg("--set").arg(s);
    }
    cmd.args(["import", "--school", school, "--role", "student"])
        .arg(file)
        .env("HOME", &data)
        .env("XDG_CONFIG_HOME", data.join("xdg"))
        .env_remove("ROLLCALL_DATA_DIR")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("rollcall")
}

/// Runs both imports at once; returns the usernames planned again (the
/// race was lost) per node.
fn race(server: &Slapd, tmp: &Path, base: &str, rounds: usize, n: usize) -> usize {
    let (fa, fb) = (feed(tmp, "a", rounds, n), feed(tmp, "b", rounds, n));
    let a = import(server, tmp, "node1", base, "a", &fa);
    let b = import(server, tmp, "node2", base, "b", &fb);
    let mut replanned = 0;
    for (node, child) in [("node1", a), ("node2", b)] {
        let out = child.wait_with_output().expect("wait");
        assert!(
            out.status.success(),
            "{node}: exit {:?}\n{}\n{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
        assert_eq!(v["created"], n as u64, "{node}: {}", v["errors"]);
        for w in v["warnings"].as_array().into_iter().flatten() {
            let w = w.as_str().unwrap_or_default();
            if let Some(k) =
                w.strip_suffix(" username(s) planned again: another writer of the directory took them meanwhile")
            {
                replanned += k.parse::<usize>().expect("count");
            }
        }
    }
    replanned
}

#[test]
fn two_nodes_importing_the_same_new_names_never_issue_one_twice() {
    let Some(server) = slapd::shared() else { return };
    let tmp = tempfile::tempdir().expect("tempdir");
    let base = slapd::fresh_base();
    let n = 500;
    // Rounds of 500 newcomers per school until the two imports have
    // overlapped (each planned before the other claimed): a round where one
    // process started late is no race.
    let mut rounds = 0;
    let mut replanned = 0;
    while replanned == 0 && rounds < 6 {
        rounds += 1;
        replanned += race(server, tmp.path(), &base, rounds, n);
    }
    assert!(replanned > 0, "the two imports never overlapped in {rounds} rounds");
    // Every user entry: its username and record uid.
    let entries = server.entries(&base);
    let mut by_name: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut records: BTreeMap<String, usize> = BTreeMap::new();
    let mut claims = BTreeSet::new();
    for (dn, attrs) in &entries {
        let classes = attrs.get("objectclass").cloned().unwrap_or_default();
        let uid = attrs.get("uid").and_then(|v| v.iter().next()).cloned();
        if classes.iter().any(|c| c.eq_ignore_ascii_case("inetOrgPerson")) {
            let uid = uid.expect("uid");
            let record = attrs["employeenumber"].iter().next().cloned().expect("record uid");
            by_name.entry(uid).or_default().push(record.clone());
            *records.entry(record).or_default() += 1;
        } else if dn.contains(",cn=usernames,")
            && let Some(uid) = uid
        {
            claims.insert(uid);
        }
    }
    let twice: Vec<_> = by_name.iter().filter(|(_, r)| r.len() > 1).collect();
    assert!(
        twice.is_empty(),
        "{} usernames issued twice, e.g. {:?}",
        twice.len(),
        twice.iter().take(5).collect::<Vec<_>>()
    );
    assert_eq!(records.len(), 2 * n * rounds, "every person is created");
    assert!(records.values().all(|c| *c == 1), "no person created twice");
    let missing: Vec<_> = by_name.keys().filter(|u| !claims.contains(*u)).collect();
    assert!(missing.is_empty(), "every username is claimed: {missing:?}");
    assert_eq!(claims.len(), by_name.len(), "no claim left without its user");
}

#[test]
fn the_same_new_person_imported_by_two_nodes_at_once_is_created_once() {
    let Some(server) = slapd::shared() else { return };
    let tmp = tempfile::tempdir().expect("tempdir");
    let base = slapd::fresh_base();
    let n = 300;
    // The same record uids in the feeds of schools a and b.
    let text: String = std::iter::once(format!("{HEADER}\n"))
        .chain((0..n).map(|i| format!("p{i},{},{},,,5a,,\n", FIRST[i % 10], LAST[i % 25])))
        .collect();
    let file = tmp.path().join("same.csv");
    std::fs::write(&file, &text).expect("feed");
    let mut overlapped = false;
    for _ in 0..6 {
        let a = import(server, tmp.path(), "node1", &base, "a", &file);
        let b = import(server, tmp.path(), "node2", &base, "b", &file);
        let mut errors = 0;
        for child in [a, b] {
            let out = child.wait_with_output().expect("wait");
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
            for e in v["errors"].as_array().into_iter().flatten() {
                let m = e["message"].as_str().unwrap_or_default();
                assert!(m.contains("is being created by another rollcall process"), "{m}");
                errors += 1;
            }
        }
        overlapped |= errors > 0;
        // Each person exists once, whoever created it.
        let entries = server.entries(&base);
        let mut records: BTreeMap<String, usize> = BTreeMap::new();
        for attrs in entries.values() {
            if let Some(r) = attrs.get("employeenumber").and_then(|v| v.iter().next()) {
                *records.entry(r.clone()).or_default() += 1;
            }
        }
        assert_eq!(records.len(), n, "every person exists");
        assert!(records.values().all(|c| *c == 1), "nobody twice");
        if overlapped {
            break;
        }
    }
    assert!(overlapped, "the two imports never overlapped");
    // Importing again puts everybody in both schools.
    for (node, school) in [("node1", "a"), ("node2", "b")] {
        let out = import(server, tmp.path(), node, &base, school, &file)
            .wait_with_output()
            .expect("wait");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    let entries = server.entries(&base);
    let both = entries
        .values()
        .filter(|a| a.get("ou").is_some_and(|ou| ou.contains("a") && ou.contains("b")))
        .count();
    assert_eq!(both, n);
}

#[test]
fn a_claim_whose_user_was_never_created_is_released_after_the_claimer_died() {
    use rollcall::engine::config::{LoadOptions, load};
    use rollcall::model::UserKey;
    use rollcall::store::{Directory, LdapDirectory};
    let Some(server) = slapd::shared() else { return };
    let tmp = tempfile::tempdir().expect("tempdir");
    let base = slapd::fresh_base();
    let (config, _) = load(&LoadOptions {
        sets: server.sets(tmp.path(), &base),
        ..LoadOptions::default()
    })
    .expect("config");
    let journal = tmp.path().join("ldap-journal.sqlite");
    let open = || LdapDirectory::open(&config.directory.ldap, &journal).expect("open");
    let key = UserKey::new("district", "1");
    let claim =
        |dir: &mut LdapDirectory, name: &str| dir.claim_usernames(&[(name.to_string(), key.clone())]).expect("claim");
    let claimed = |name: &str| {
        server
            .entries(&base)
            .contains_key(&format!("uid={name},cn=usernames,cn=rollcall,{base}").to_ascii_lowercase())
    };
    // A process claims a name and dies before it creates the user.
    let mut first = open();
    assert!(claim(&mut first, "m.muster").is_empty());
    assert!(claimed("m.muster"));
    // A second one (another process of the same data dir) must not take it.
    let mut second = open();
    assert!(claimed("m.muster"), "the claimer still lives");
    assert_eq!(
        claim(&mut second, "m.muster").get("m.muster"),
        Some(&rollcall::store::ClaimLoss::SamePerson)
    );
    drop(first);
    // The next writer of the data dir releases it: the name is free again.
    drop(second);
    let mut third = open();
    assert!(!claimed("m.muster"), "released on open");
    assert!(!third.username_issued("m.muster").expect("issued"));
    assert!(claim(&mut third, "m.muster").is_empty());
}
