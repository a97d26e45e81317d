//! The directory change listener (RFC 4533 content sync from slapd's
//! syncprov): foreign `ldapadd`/`ldapmodify`/`ldapmodrdn`/`ldapdelete`
//! become journal entries with the objects' old and new schools and reach
//! an embedded and a SCIM authority; rollcall's own writes are not
//! journalled twice; the first sync journals nothing; a lost cookie means a
//! full refresh that journals only what differs; a kill -9 at any point
//! loses no change; the listener follows a read-only consumer.

use crate::common;

use common::slapd;
use common::{District, student};
use rollcall::engine::jobs::{CancelToken, Progress, ProgressEvent};
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
        let stop = CancelToken::default();
        let token = stop.clone();
        let data = d.data_dir().to_path_buf();
        let mut sets = d.backend_sets().to_vec();
        sets.extend(extra.iter().cloned());
        let handle = std::thread::spawn(move || {
            let engine = common::open_owned(&data, &sets, false);
            engine.listen(&mut Until(token)).expect("listen");
        });
        let r = Running {
            stop,
            handle: Some(handle),
        };
        wait_for(d, "the listener to persist", |d| {
            d.engine
                .listener_status()
                .expect("status")
                .is_some_and(|s| s.connected && s.phase == "persisting")
        });
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
