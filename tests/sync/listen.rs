//! The directory change listener (RFC 4533 content sync from slapd's
//! syncprov): foreign `ldapadd`/`ldapmodify`/`ldapmodrdn`/`ldapdelete`
//! become journal entries with the objects' old and new schools and reach
//! an embedded and a SCIM authority; rollcall's own writes are not
//! journalled twice; the first sync journals nothing; a lost cookie means a
//! full refresh that journals only what differs; a kill -9 at any point
//! loses no change; the listener follows a read-only consumer.

use crate::common;

use common::scim::ScimServer;
use common::slapd::{self, Slapd};
use common::{District, scim_authority, student, token_file};
use rollcall::engine::jobs::{CancelToken, Progress, ProgressEvent, Quiet};
use rollcall::engine::sync::SyncOptions;
use rollcall::engine::sync::verify::{VerifyKind, VerifyRequest};
use rollcall::model::{JournalEntry, ObjectRef};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Stops a job when its token is cancelled.
struct Until(CancelToken);

impl Progress for Until {
    fn update(&mut self, _: ProgressEvent) {}
    fn cancelled(&self) -> bool {
        self.0.is_cancelled()
    }
}

/// A listener on its own engine (same data dir and settings as `d`).
pub struct Running {
    stop: CancelToken,
    handle: Option<JoinHandle<()>>,
}

impl Running {
    pub fn start(d: &District, extra: &[String]) -> Running {
        let mut sets = d.backend_sets().to_vec();
        sets.extend(extra.iter().cloned());
        Running::start_on(d.data_dir(), &sets, &d.engine)
    }

    /// A listener for the data dir `data` (`engine` is one of its engines).
    pub fn start_on(data: &std::path::Path, sets: &[String], engine: &rollcall::engine::Engine) -> Running {
        let stop = CancelToken::default();
        let token = stop.clone();
        let (data, sets) = (data.to_path_buf(), sets.to_vec());
        let handle = std::thread::spawn(move || {
            let engine = common::open_owned(&data, &sets, false);
            engine.listen(&mut Until(token)).expect("listen");
        });
        let r = Running {
            stop,
            handle: Some(handle),
        };
        let t = Instant::now();
        while !engine
            .listener_status()
            .expect("status")
            .is_some_and(|s| s.connected && s.phase == "persisting")
        {
            assert!(
                t.elapsed() < Duration::from_secs(10),
                "timed out waiting for the listener to persist"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        r
    }

    pub fn stop(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        self.stop.cancel();
        if let Some(h) = self.handle.take() {
            h.join().expect("listener thread");
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            self.halt();
        }
    }
}

/// Polls until `done` (10 s at most).
pub fn wait_for(d: &District, what: &str, done: impl Fn(&District) -> bool) {
    let t = Instant::now();
    while !done(d) {
        assert!(t.elapsed() < Duration::from_secs(10), "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

pub fn entries_after(d: &District, seq: u64) -> Vec<JournalEntry> {
    d.engine.directory().journal_after(seq, 100_000).expect("journal")
}

/// Waits for a journal entry of `object` after `seq`; returns it.
pub fn wait_entry(d: &District, seq: u64, object: &str) -> JournalEntry {
    let object: ObjectRef = object.parse().expect("object");
    let mut found = None;
    let t = Instant::now();
    while found.is_none() {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "no journal entry for {object} after {seq}: {:#?}",
            entries_after(d, seq)
        );
        found = entries_after(d, seq).into_iter().find(|e| e.object == object);
        if found.is_none() {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    found.expect("found")
}

pub fn base_of(d: &District) -> String {
    d.backend_sets()
        .iter()
        .find_map(|s| s.strip_prefix("directory.ldap.base_dn="))
        .expect("base")
        .trim_matches('"')
        .to_string()
}

fn count(entries: &[JournalEntry], object: &str) -> usize {
    let object: ObjectRef = object.parse().expect("object");
    entries.iter().filter(|e| e.object == object).count()
}

#[test]
fn foreign_changes_are_journalled_once_with_old_and_new_schools() {
    let Some(server) = slapd::shared() else { return };
    let mut d = District::on_server(server, &[]);
    let base = base_of(&d);
    d.import(
        "a",
        &[
            &student("1", "Max", "Muster", "5a"),
            &student("2", "Eva", "E", "5a"),
            &student("3", "Tom", "T", "5b"),
        ],
    );
    d.import("b", &[&student("4", "Ida", "I", "7c")]);
    let head = d.journal_head();
    let listener = Running::start(&d, &[]);
    assert_eq!(
        d.journal_head(),
        head,
        "the first sync records what is there and journals nothing"
    );
    let status = d.engine.listener_status().expect("status").expect("ran");
    assert!(status.running && status.connected, "{status:?}");

    // A foreign modify of a mapped attribute.
    server.ldapmodify(&format!(
        "dn: uid=m.muster,cn=users,ou=a,{base}\nchangetype: modify\nreplace: givenName\ngivenName: Maximilian\n"
    ));
    let e = wait_entry(&d, head, "user:district:1");
    assert_eq!(e.schools, ["a"]);
    // An attribute rollcall does not read changes nothing; the next change
    // is the barrier that shows it was seen.
    let seq = d.journal_head();
    server.ldapmodify(&format!(
        "dn: uid=e.e,cn=users,ou=a,{base}\nchangetype: modify\nadd: telephoneNumber\ntelephoneNumber: 123\n"
    ));
    server.ldapmodify(&format!(
        "dn: uid=t.t,cn=users,ou=a,{base}\nchangetype: modify\nreplace: mail\nmail: tom@example.org\n"
    ));
    wait_entry(&d, seq, "user:district:3");
    assert_eq!(
        count(&entries_after(&d, seq), "user:district:2"),
        0,
        "unmapped attribute"
    );

    // rollcall's own write is journalled by the write, not again.
    let seq = d.journal_head();
    d.import(
        "a",
        &[
            &student("1", "Maximilian", "Muster", "5a"),
            &student("2", "Eva", "E", "5c"),
            &student("3", "Tom", "T", "5b"),
        ],
    );
    server.ldapmodify(&format!(
        "dn: uid=i.i,cn=users,ou=b,{base}\nchangetype: modify\nreplace: sn\nsn: Ii\n"
    ));
    wait_entry(&d, seq, "user:district:4");
    let after = entries_after(&d, seq);
    assert_eq!(count(&after, "user:district:2"), 1, "{after:#?}");
    assert_eq!(count(&after, "class:a:5c"), 1, "{after:#?}");

    // A foreign move to school b (ModifyDN, schools attribute too): both schools.
    let seq = d.journal_head();
    server.tool(
        "ldapmodrdn",
        &["-s", &format!("cn=users,ou=b,{base}")],
        &format!("uid=t.t,cn=users,ou=a,{base}\nuid=t.t\n"),
    );
    server.ldapmodify(&format!(
        "dn: uid=t.t,cn=users,ou=b,{base}\nchangetype: modify\nreplace: ou\nou: b\n"
    ));
    wait_entry(&d, seq, "user:district:3");
    for e in entries_after(&d, seq) {
        // The rename (old school a, new DN in b) and the schools value,
        // one entry each or coalesced.
        assert_eq!(e.schools, ["a", "b"], "{e:?}");
    }

    // A foreign delete carries the schools the user had.
    let seq = d.journal_head();
    server.tool("ldapdelete", &[], &format!("uid=i.i,cn=users,ou=b,{base}\n"));
    assert_eq!(wait_entry(&d, seq, "user:district:4").schools, ["b"]);

    // A foreign add of a user and of a class.
    let seq = d.journal_head();
    server.tool(
        "ldapadd",
        &[],
        &format!(
            "dn: uid=z.z,cn=users,ou=a,{base}\nobjectClass: inetOrgPerson\nobjectClass: shadowAccount\nuid: z.z\n\
             cn: Zoe Z\nsn: Z\ngivenName: Zoe\nemployeeNumber: 9\ndepartmentNumber: district\nou: a\n\
             employeeType: student:school:a\ndescription: rollcall-state=active\n\
             description: rollcall-updated=2026-01-01T00:00:00.000000Z\n\n\
             dn: cn=a-9z,cn=classes,cn=groups,ou=a,{base}\nobjectClass: groupOfNames\ncn: a-9z\n\
             businessCategory: class:a:9z\nmember: uid=z.z,cn=users,ou=a,{base}\n"
        ),
    );
    assert_eq!(wait_entry(&d, seq, "user:district:9").schools, ["a"]);
    assert_eq!(wait_entry(&d, seq, "class:a:9z").schools, ["a"]);
    listener.stop();
    let status = d.engine.listener_status().expect("status").expect("ran");
    assert!(!status.running && !status.connected, "{status:?}");
    assert!(status.cookie_age_seconds.is_some(), "{status:?}");
}

/// Drops the stored cookie, as if it was lost.
fn lose_cookie(d: &District) {
    let conn = rusqlite::Connection::open(d.data_dir().join("ldap-journal.sqlite")).expect("journal");
    conn.execute("UPDATE listen_state SET cookie = NULL", [])
        .expect("drop cookie");
}

fn district_of_five(server: &Slapd) -> (District, String) {
    let mut d = District::on_server(server, &[]);
    let base = base_of(&d);
    let lines: Vec<String> = (1..=5)
        .map(|i| student(&i.to_string(), "Kim", &format!("Nr{i}"), "5a"))
        .collect();
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    d.import("a", &refs);
    (d, base)
}

#[test]
fn a_lost_cookie_refreshes_in_full_and_journals_only_what_differs() {
    let Some(server) = slapd::shared() else { return };
    let (d, base) = district_of_five(server);
    Running::start(&d, &[]).stop();
    // Nothing changed: a full refresh journals nothing.
    lose_cookie(&d);
    let head = d.journal_head();
    Running::start(&d, &[]).stop();
    assert_eq!(entries_after(&d, head), [], "nothing differs");
    // Changes while nobody listened, then the cookie is lost: exactly those.
    server.ldapmodify(&format!(
        "dn: uid=k.nr1,cn=users,ou=a,{base}\nchangetype: modify\nreplace: sn\nsn: Eins\n"
    ));
    server.tool("ldapdelete", &[], &format!("uid=k.nr2,cn=users,ou=a,{base}\n"));
    server.ldapmodify(&format!(
        "dn: uid=k.nr3,cn=users,ou=a,{base}\nchangetype: modify\nadd: telephoneNumber\ntelephoneNumber: 1\n"
    ));
    lose_cookie(&d);
    Running::start(&d, &[]).stop();
    let mut got: Vec<String> = entries_after(&d, head).iter().map(|e| e.object.to_string()).collect();
    got.sort();
    // The deleted user's class lost a member.
    assert_eq!(got, ["class:a:5a", "user:district:1", "user:district:2"]);
}

#[test]
fn an_expired_cookie_catches_up_through_the_present_phase() {
    if slapd::binary().is_none() {
        return;
    }
    // A session log of 2 changes: five deletes are more than a cookie can
    // catch up on, so syncprov sends what is present instead.
    let server = Slapd::start_opts(slapd::Options {
        sessionlog: Some(2),
        ..slapd::Options::default()
    })
    .expect("slapd");
    let (d, base) = district_of_five(&server);
    Running::start(&d, &[]).stop();
    let head = d.journal_head();
    for i in 1..=4 {
        server.tool("ldapdelete", &[], &format!("uid=k.nr{i},cn=users,ou=a,{base}\n"));
    }
    server.ldapmodify(&format!(
        "dn: uid=k.nr5,cn=users,ou=a,{base}\nchangetype: modify\nreplace: sn\nsn: Fuenf\n"
    ));
    Running::start(&d, &[]).stop();
    let mut got: Vec<String> = entries_after(&d, head).iter().map(|e| e.object.to_string()).collect();
    got.sort();
    got.dedup();
    assert_eq!(
        got,
        [
            "class:a:5a",
            "user:district:1",
            "user:district:2",
            "user:district:3",
            "user:district:4",
            "user:district:5"
        ]
    );
    // Once caught up, the same again journals nothing.
    let head = d.journal_head();
    Running::start(&d, &[]).stop();
    assert_eq!(entries_after(&d, head), []);
}

#[test]
fn the_listener_follows_a_read_only_consumer_while_writes_go_to_the_provider() {
    if slapd::binary().is_none() {
        return;
    }
    let provider = Slapd::start().expect("provider");
    let consumer = Slapd::start_opts(slapd::Options {
        provider: Some(provider.url()),
        ..slapd::Options::default()
    })
    .expect("consumer");
    let listen_url = format!("directory.ldap.listen_url=\"{}\"", consumer.url());
    let mut d = District::on_server(&provider, &[&listen_url]);
    let base = base_of(&d);
    d.import(
        "a",
        &[&student("1", "Max", "Muster", "5a"), &student("2", "Eva", "E", "5a")],
    );
    // The consumer has what the provider has.
    let replicated = |n: usize| {
        let t = Instant::now();
        while consumer.entries(&base).len() != n {
            assert!(t.elapsed() < Duration::from_secs(20), "replication");
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    replicated(provider.entries(&base).len());
    let listener = Running::start(&d, std::slice::from_ref(&listen_url));
    let status = d.engine.listener_status().expect("status").expect("ran");
    assert_eq!(status.url, consumer.url());
    // A foreign change on the provider arrives through the consumer.
    let head = d.journal_head();
    provider.ldapmodify(&format!(
        "dn: uid=m.muster,cn=users,ou=a,{base}\nchangetype: modify\nreplace: sn\nsn: Mustermann\n"
    ));
    assert_eq!(wait_entry(&d, head, "user:district:1").schools, ["a"]);
    // rollcall's own write (to the provider) is recognised on the consumer
    // by its entryCSN, which replication keeps.
    let seq = d.journal_head();
    d.import(
        "a",
        &[
            &student("1", "Max", "Mustermann", "5a"),
            &student("2", "Eva", "E", "6b"),
        ],
    );
    provider.ldapmodify(&format!(
        "dn: uid=m.muster,cn=users,ou=a,{base}\nchangetype: modify\nreplace: mail\nmail: max@example.org\n"
    ));
    wait_entry(&d, seq, "user:district:1");
    let after = entries_after(&d, seq);
    assert_eq!(count(&after, "user:district:2"), 1, "{after:#?}");
    assert_eq!(count(&after, "class:a:6b"), 1, "{after:#?}");
    listener.stop();
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
    assert!(out.complete, "sync left work: {out:?}");
    assert!(out.authorities.iter().all(|a| a.trashed == 0), "{out:?}");
}

/// Differences between the directory and an authority (empty: clean).
fn drift(d: &mut District, authority: &str) -> Vec<String> {
    let mut out = Vec::new();
    for kind in [VerifyKind::Users, VerifyKind::Classes] {
        let r = d
            .engine
            .verify(
                &VerifyRequest {
                    authority: authority.into(),
                    kind,
                    filter: None,
                    fix: false,
                },
                &mut Quiet,
            )
            .expect("verify");
        out.extend(r.missing.iter().map(|m| format!("missing {m:?}")));
        out.extend(r.unexpected.iter().map(|m| format!("unexpected {m:?}")));
        out.extend(r.different.iter().map(|m| format!("different {m:?}")));
    }
    out
}

#[test]
fn foreign_ldap_tools_reach_an_embedded_and_a_scim_authority() {
    let Some(server) = slapd::shared() else { return };
    let Some(scim) = ScimServer::start() else { return };
    let (_token_dir, token) = token_file();
    let mut sets = vec![
        "authorities.mirror.kind=\"embedded\"".to_string(),
        "authorities.mirror.schools=[\"a\", \"b\"]".to_string(),
    ];
    sets.extend(scim_authority("scim", &scim.url(), &token, &["a"]));
    let refs: Vec<&str> = sets.iter().map(String::as_str).collect();
    let mut d = District::on_server(server, &refs);
    let base = base_of(&d);
    d.import(
        "a",
        &[
            &student("1", "Max", "Muster", "5a"),
            &student("2", "Eva", "E", "5a"),
            &student("3", "Tom", "T", "5b"),
        ],
    );
    d.import("b", &[&student("4", "Ida", "I", "7c")]);
    sync(&mut d);
    let listener = Running::start(&d, &[]);
    let head = d.journal_head();
    server.ldapmodify(&format!(
        "dn: uid=m.muster,cn=users,ou=a,{base}\nchangetype: modify\nreplace: givenName\ngivenName: Maximilian\n"
    ));
    server.tool(
        "ldapadd",
        &[],
        &format!(
            "dn: uid=z.z,cn=users,ou=a,{base}\nobjectClass: inetOrgPerson\nobjectClass: shadowAccount\nuid: z.z\n\
             cn: Zoe Z\nsn: Z\ngivenName: Zoe\nemployeeNumber: 9\ndepartmentNumber: district\nou: a\n\
             employeeType: student:school:a\nbusinessCategory: class:a:5a\ndescription: rollcall-state=active\n\
             description: rollcall-updated=2026-01-01T00:00:00.000000Z\n"
        ),
    );
    server.tool(
        "ldapmodrdn",
        &["-s", &format!("cn=users,ou=b,{base}")],
        &format!("uid=t.t,cn=users,ou=a,{base}\nuid=t.t\n"),
    );
    server.ldapmodify(&format!(
        "dn: uid=t.t,cn=users,ou=b,{base}\nchangetype: modify\nreplace: ou\nou: b\n\
         -\nreplace: employeeType\nemployeeType: student:school:b\n-\nreplace: businessCategory\n\
         businessCategory: class:b:7c\n"
    ));
    server.tool("ldapdelete", &[], &format!("uid=e.e,cn=users,ou=a,{base}\n"));
    for object in [
        "user:district:1",
        "user:district:9",
        "user:district:3",
        "user:district:2",
    ] {
        wait_entry(&d, head, object);
    }
    assert!(!drift(&mut d, "mirror").is_empty(), "the changes are not there yet");
    sync(&mut d);
    assert_eq!(drift(&mut d, "mirror"), Vec::<String>::new());
    assert_eq!(drift(&mut d, "scim"), Vec::<String>::new());
    let users = scim.by_external_id("/Users");
    assert_eq!(users["district:1"]["name"]["givenName"], "Maximilian", "{users:#?}");
    assert!(users.contains_key("district:9"), "{users:#?}");
    listener.stop();
}

/// An embedded authority of school a.
const MIRROR: [&str; 2] = [
    "authorities.mirror.kind=\"embedded\"",
    "authorities.mirror.schools=[\"a\"]",
];

/// `rollcall --data-dir … --set … ARGS` with the district's sets.
fn rollcall(d: &District, args: &[&str]) -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_rollcall"));
    cmd.arg("--data-dir").arg(d.data_dir());
    for s in d.backend_sets().iter().map(String::as_str).chain(MIRROR) {
        cmd.arg("--set").arg(s);
    }
    cmd.args(args)
        .env_remove("ROLLCALL_DATA_DIR")
        .env("HOME", d.data_dir())
        .env("XDG_CONFIG_HOME", d.data_dir().join("xdg"));
    cmd
}

fn json_of(d: &District, args: &[&str]) -> serde_json::Value {
    let out = rollcall(d, args).output().expect("rollcall");
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("json")
}

#[test]
fn rollcall_listen_runs_alone_shows_its_state_and_stops_on_sigterm() {
    let Some(server) = slapd::shared() else { return };
    let mut d = District::on_server(server, &MIRROR);
    let base = base_of(&d);
    d.import("a", &[&student("1", "Max", "Muster", "5a")]);
    let info = json_of(&d, &["--json", "info"]);
    assert!(info["listener"].is_null(), "no listener ran yet: {info}");
    let mut child = rollcall(&d, &["listen"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("rollcall listen");
    wait_for(&d, "rollcall listen to persist", |d| {
        d.engine
            .listener_status()
            .expect("status")
            .is_some_and(|s| s.connected && s.phase == "persisting")
    });
    let info = json_of(&d, &["--json", "info"]);
    assert_eq!(info["listener"]["connected"], true, "{info}");
    assert_eq!(info["listener"]["url"], server.url(), "{info}");
    let list = json_of(&d, &["--json", "authorities", "list"]);
    let l = &list[0]["listener"];
    assert!(l["running"] == true && l["connected"] == true, "{list}");
    for field in ["lag_seconds", "cookie_age_seconds", "phase", "journaled"] {
        assert!(l.get(field).is_some(), "{field} in {l}");
    }
    // A second listener on the same data dir is refused.
    let second = rollcall(&d, &["listen"]).output().expect("second listen");
    assert_eq!(second.status.code(), Some(1));
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(err.contains("already runs for this data dir"), "{err}");
    // It journals a foreign change.
    let head = d.journal_head();
    server.ldapmodify(&format!(
        "dn: uid=m.muster,cn=users,ou=a,{base}\nchangetype: modify\nreplace: sn\nsn: Mustermann\n"
    ));
    wait_entry(&d, head, "user:district:1");
    let text = rollcall(&d, &["info"]).output().expect("info");
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("directory changes: listener connected to"), "{text}");
    // SIGTERM stops it at once, cleanly.
    let t = Instant::now();
    assert!(
        std::process::Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .expect("kill")
            .success()
    );
    let status = child.wait().expect("wait");
    assert!(status.success(), "{status:?}");
    assert!(t.elapsed() < Duration::from_secs(5), "stopped in {:?}", t.elapsed());
    let info = json_of(&d, &["--json", "info"]);
    assert_eq!(info["listener"]["running"], false, "{info}");
    assert_eq!(info["listener"]["phase"], "stopped", "{info}");
}

#[test]
fn the_daemon_follows_the_directory_and_delivers_foreign_changes() {
    let Some(server) = slapd::shared() else { return };
    let mut sets: Vec<&str> = MIRROR.to_vec();
    sets.push("sync.poll_seconds=0.05");
    let mut d = District::on_server(server, &sets);
    let base = base_of(&d);
    d.import(
        "a",
        &[&student("1", "Max", "Muster", "5a"), &student("2", "Eva", "E", "5a")],
    );
    let mut daemon = rollcall(&d, &["--set", "sync.poll_seconds=0.05", "daemon"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("rollcall daemon");
    wait_for(&d, "the daemon's listener", |d| {
        d.engine
            .listener_status()
            .expect("status")
            .is_some_and(|s| s.connected && s.phase == "persisting")
    });
    // Drained: the mirror exists (an empty queue alone may be one the
    // daemon has not filled yet) and nothing waits.
    wait_for(&d, "the first drain", |d| {
        d.data_dir().join("mirrors/mirror.sqlite").exists()
            && d.engine
                .queue_list(Some("mirror"))
                .expect("queues")
                .iter()
                .all(|q| q.depth == 0)
    });
    server.ldapmodify(&format!(
        "dn: uid=e.e,cn=users,ou=a,{base}\nchangetype: modify\nreplace: givenName\ngivenName: Evelyn\n"
    ));
    // The daemon journals it, distributes it and sends it.
    let mirror = rusqlite::Connection::open(d.data_dir().join("mirrors/mirror.sqlite")).expect("mirror");
    let t = Instant::now();
    loop {
        let n: i64 = mirror
            .query_row(
                "SELECT COUNT(*) FROM resources WHERE external_id = 'district:2' AND attributes LIKE '%Evelyn%'",
                [],
                |r| r.get(0),
            )
            .unwrap_or(0);
        if n == 1 {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(15),
            "the change did not reach the mirror"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(drift(&mut d, "mirror"), Vec::<String>::new());
    assert!(
        std::process::Command::new("kill")
            .args(["-TERM", &daemon.id().to_string()])
            .status()
            .expect("kill")
            .success()
    );
    assert!(daemon.wait().expect("wait").success());
}

#[test]
fn kill_9_of_the_listener_at_random_points_loses_no_change() {
    let Some(server) = slapd::shared() else { return };
    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_rollcall"));
    for seed in 1..=2 {
        let o = common::listen_trial::run(
            server,
            bin,
            &common::listen_trial::Spec {
                users: 40,
                changes: 120,
                kills: 3,
                pace: Duration::from_millis(4),
                seed,
            },
        );
        assert_eq!(o.kills, 3, "{o:?}");
        assert!(o.lost.is_empty(), "trial {seed}: {:#?}", o.lost);
    }
}

#[test]
fn two_nodes_on_one_directory_each_journal_every_change_their_own_once() {
    let Some(server) = slapd::shared() else { return };
    let mut d = District::on_server(server, &[]);
    // A second node: its own data dir, the same directory.
    let node2 = tempfile::tempdir().expect("tempdir");
    let engine2 = common::open_owned(node2.path(), d.backend_sets(), false);
    d.import(
        "a",
        &[&student("1", "Max", "Muster", "5a"), &student("2", "Eva", "E", "5a")],
    );
    let l1 = Running::start(&d, &[]);
    let l2 = Running::start_on(node2.path(), d.backend_sets(), &engine2);
    let (head1, head2) = (d.journal_head(), engine2.directory().journal_head().expect("head"));
    d.import(
        "a",
        &[
            &student("1", "Max", "Muster", "5a"),
            &student("2", "Eva", "E", "5c"),
            &student("3", "Tom", "T", "5a"),
        ],
    );
    // Node 2 sees node 1's writes as the changes they are.
    let expected = ["user:district:2", "user:district:3", "class:a:5a", "class:a:5c"];
    let t = Instant::now();
    loop {
        let got: std::collections::BTreeSet<String> = engine2
            .directory()
            .journal_after(head2, 1000)
            .expect("journal")
            .iter()
            .map(|e| e.object.to_string())
            .collect();
        if expected.iter().all(|o| got.contains(*o)) {
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(10), "node 2 journalled {got:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
    // Node 1 journalled its own writes once (a foreign change after them
    // shows its listener has seen them).
    server.ldapmodify(&format!(
        "dn: uid=m.muster,cn=users,ou=a,{}\nchangetype: modify\nreplace: sn\nsn: Mustermann\n",
        base_of(&d)
    ));
    wait_entry(&d, head1, "user:district:1");
    let after = entries_after(&d, head1);
    for o in expected {
        assert_eq!(count(&after, o), 1, "{o}: {after:#?}");
    }
    l1.stop();
    l2.stop();
}
