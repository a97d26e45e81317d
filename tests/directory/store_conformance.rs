//! The `Directory` contract, one test body per property, run against both
//! backends: the embedded SQLite store and an LdapDirectory on the shared
//! throwaway slapd (each test under its own base DN).

use crate::common;

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use common::slapd;
use rollcall::engine::config::{LoadOptions, load};
use rollcall::model::{GroupKey, GroupKind, Membership, Role, School, User, UserKey, UserState};
use rollcall::store::{Batch, Directory, LdapDirectory, SqliteDirectory, StoreError, UserChange, UserQuery, UserSort};

/// A store and what keeps it alive.
struct Fixture {
    _tmp: tempfile::TempDir,
    dir: Box<dyn Directory>,
}

fn sqlite() -> Option<Fixture> {
    Some(Fixture {
        _tmp: tempfile::tempdir().expect("tempdir"),
        dir: Box::new(SqliteDirectory::in_memory().expect("sqlite")),
    })
}

fn ldap() -> Option<Fixture> {
    let server = slapd::shared()?;
    let tmp = tempfile::tempdir().expect("tempdir");
    let sets = server.sets(tmp.path(), &slapd::fresh_base());
    let (config, _) = load(&LoadOptions {
        sets,
        ..LoadOptions::default()
    })
    .expect("config");
    let dir = LdapDirectory::open(&config.directory.ldap, &tmp.path().join("ldap-journal.sqlite")).expect("ldap");
    Some(Fixture {
        _tmp: tmp,
        dir: Box::new(dir),
    })
}

fn t(micros: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_760_000_000, 0).single().expect("time") + chrono::Duration::microseconds(micros)
}

fn membership(school: &str, roles: &[Role], classes: &[&str], workgroups: &[&str]) -> Membership {
    Membership {
        school: school.into(),
        roles: roles.iter().copied().collect(),
        classes: classes.iter().map(|c| c.to_string()).collect(),
        workgroups: workgroups.iter().map(|c| c.to_string()).collect(),
        by_role: Default::default(),
    }
}

fn user(record: &str, username: &str, first: &str, last: &str, memberships: Vec<Membership>) -> User {
    User {
        key: UserKey::new("district", record),
        username: username.into(),
        firstname: first.into(),
        lastname: last.into(),
        email: None,
        birthday: None,
        memberships,
        disabled: false,
        state: UserState::Active,
        purge_at: None,
        deactivate_at: None,
        password_hash: Some("{SSHA256}abc".into()),
        created_at: t(1),
        updated_at: t(1),
    }
}

fn create(dir: &mut dyn Directory, schools: &[&str], users: Vec<User>) {
    dir.apply(&Batch {
        schools: schools.iter().map(|s| School::new(*s)).collect(),
        users: users.into_iter().map(UserChange::Create).collect(),
        counters: Vec::new(),
    })
    .expect("create");
}

fn update(dir: &mut dyn Directory, before: &User, change: impl FnOnce(&mut User)) -> User {
    let mut after = before.clone();
    change(&mut after);
    after.updated_at = before.updated_at + chrono::Duration::microseconds(7);
    dir.apply(&Batch {
        users: vec![UserChange::Update {
            before: before.clone(),
            after: after.clone(),
        }],
        ..Batch::default()
    })
    .expect("update");
    after
}

fn sample() -> Vec<User> {
    let mut max = user(
        "1",
        "m.mustermann",
        "Max",
        "Mustermann",
        vec![membership("a", &[Role::Student], &["5a", "Mathe (LK)*"], &["Chor"]), {
            // Student and staff in b: only the student role gives 9x.
            let mut b = membership("b", &[Role::Student, Role::Staff], &["9x"], &[]);
            b.by_role.insert(
                Role::Student,
                rollcall::model::Contribution {
                    classes: ["9x".to_string()].into(),
                    workgroups: Default::default(),
                },
            );
            b
        }],
    );
    max.email = Some("max@example.org".into());
    max.birthday = NaiveDate::from_ymd_opt(2010, 3, 1);
    let mut eva = user(
        "2",
        "e.schmidt",
        "Eva",
        "schmidt",
        vec![membership("b", &[Role::Teacher], &["9x"], &[])],
    );
    eva.created_at = t(3);
    eva.updated_at = t(5);
    let mut bo = user(
        "3",
        "b.limbo",
        "Bo",
        "Zett",
        vec![membership("limbo", &[Role::Student], &[], &[])],
    );
    bo.state = UserState::Limbo;
    bo.disabled = true;
    bo.purge_at = NaiveDate::from_ymd_opt(2026, 2, 1);
    let mut other = user(
        "1",
        "o.ther",
        "Otto",
        "Ther",
        vec![membership("a", &[Role::Teacher], &[], &[])],
    );
    other.key.source_uid = "other".into();
    vec![max, eva, bo, other]
}

fn stored(dir: &dyn Directory, record: &str) -> User {
    dir.user(&UserKey::new("district", record))
        .expect("read")
        .unwrap_or_else(|| panic!("user {record} missing"))
}

fn names(users: &[User]) -> Vec<&str> {
    users.iter().map(|u| u.username.as_str()).collect()
}

fn users_round_trip(dir: &mut dyn Directory) {
    let users = sample();
    create(dir, &["a", "b", "limbo"], users.clone());
    for u in &users {
        let got = dir.user(&u.key).expect("read").expect("present");
        assert_eq!(&got, u, "round trip of {}", u.username);
        assert_eq!(dir.user_by_username(&u.username).expect("read").as_ref(), Some(u));
    }
    let found = dir
        .users_by_record_uids("district", &["1".into(), "3".into(), "404".into()])
        .expect("by record uids");
    let mut found = names(&found);
    found.sort();
    assert_eq!(found, ["b.limbo", "m.mustermann"]);
    assert!(dir.user(&UserKey::new("district", "404")).expect("read").is_none());
    assert_eq!(
        dir.schools()
            .expect("schools")
            .iter()
            .map(|s| s.name.as_str())
            .collect::<Vec<_>>(),
        ["a", "b", "limbo"]
    );
}

fn queries_filter_sort_and_page(dir: &mut dyn Directory) {
    create(dir, &["a", "b", "limbo"], sample());
    let q = |q: UserQuery| names(&dir.users(&q).expect("query")).join(" ");
    assert_eq!(q(UserQuery::default()), "b.limbo e.schmidt m.mustermann o.ther");
    assert_eq!(
        q(UserQuery {
            school: Some("b".into()),
            ..UserQuery::default()
        }),
        "e.schmidt m.mustermann"
    );
    assert_eq!(
        q(UserQuery {
            state: Some(UserState::Limbo),
            ..UserQuery::default()
        }),
        "b.limbo"
    );
    assert_eq!(
        q(UserQuery {
            roles: vec![Role::Staff],
            ..UserQuery::default()
        }),
        "m.mustermann"
    );
    assert_eq!(
        q(UserQuery {
            school: Some("a".into()),
            roles: vec![Role::Staff],
            ..UserQuery::default()
        }),
        "",
        "staff only in b"
    );
    assert_eq!(
        q(UserQuery {
            source_uid: Some("other".into()),
            ..UserQuery::default()
        }),
        "o.ther"
    );
    assert_eq!(
        q(UserQuery {
            text: Some("SCHMI".into()),
            ..UserQuery::default()
        }),
        "e.schmidt"
    );
    assert_eq!(
        q(UserQuery {
            text: Some("*)(".into()),
            ..UserQuery::default()
        }),
        "",
        "filter characters are literal"
    );
    let due = |d| {
        q(UserQuery {
            purge_due: NaiveDate::from_ymd_opt(2026, 2, d),
            ..UserQuery::default()
        })
    };
    assert_eq!((due(1).as_str(), due(28).as_str()), ("b.limbo", "b.limbo"));
    assert_eq!(
        q(UserQuery {
            purge_due: NaiveDate::from_ymd_opt(2026, 1, 31),
            ..UserQuery::default()
        }),
        ""
    );
    assert_eq!(
        q(UserQuery {
            sort: UserSort::Lastname,
            ..UserQuery::default()
        }),
        "m.mustermann e.schmidt o.ther b.limbo"
    );
    assert_eq!(
        q(UserQuery {
            sort: UserSort::Username,
            descending: true,
            offset: 1,
            limit: Some(2),
            ..UserQuery::default()
        }),
        "m.mustermann e.schmidt"
    );
    assert_eq!(
        q(UserQuery {
            sort: UserSort::UpdatedAt,
            limit: Some(1),
            descending: true,
            ..UserQuery::default()
        }),
        "e.schmidt"
    );
    let count = |q: UserQuery| dir.count_users(&q).expect("count");
    assert_eq!(count(UserQuery::default()), 4);
    assert_eq!(
        count(UserQuery {
            school: Some("a".into()),
            source_uid: Some("district".into()),
            ..UserQuery::default()
        }),
        1
    );
}

fn moves_and_groups_follow_the_user(dir: &mut dyn Directory) {
    create(dir, &["a", "b", "limbo"], sample());
    let class = |s: &str, n: &str| GroupKey::new(s, GroupKind::Class, n);
    let members = |dir: &dyn Directory, k: &GroupKey| -> Vec<String> {
        dir.group(k)
            .expect("group")
            .map(|g| g.members.into_iter().map(|m| m.username).collect())
            .unwrap_or_default()
    };
    assert_eq!(members(dir, &class("b", "9x")), ["e.schmidt", "m.mustermann"]);
    let summary = dir.groups(Some("a"), None).expect("groups");
    let listed: Vec<(String, u64)> = summary.iter().map(|g| (g.key.to_string(), g.members)).collect();
    assert_eq!(
        listed,
        [
            ("a-5a".to_string(), 1),
            ("a-Mathe (LK)*".to_string(), 1),
            ("a-Chor".to_string(), 1)
        ]
    );
    assert_eq!(dir.groups(None, Some(GroupKind::Workgroup)).expect("groups").len(), 1);
    // The primary school a goes; b becomes primary (a move of the entry).
    let max = stored(dir, "1");
    let after = update(dir, &max, |u| {
        u.remove_membership("a");
        u.membership_mut("b").expect("b").classes.insert("10y".into());
    });
    let got = stored(dir, "1");
    assert_eq!(got, after);
    assert_eq!(got.primary_school(), "b");
    assert!(members(dir, &class("a", "5a")).is_empty(), "left a's class");
    assert_eq!(
        dir.group(&class("a", "5a")).expect("group").map(|g| g.key),
        Some(class("a", "5a")),
        "the group stays"
    );
    assert_eq!(members(dir, &class("b", "10y")), ["m.mustermann"]);
    assert_eq!(members(dir, &class("b", "9x")), ["e.schmidt", "m.mustermann"]);
    let counts: Vec<u64> = dir
        .groups(Some("b"), Some(GroupKind::Class))
        .expect("groups")
        .iter()
        .map(|g| g.members)
        .collect();
    assert_eq!(counts, [1, 2], "10y, 9x");
    // To limbo and back.
    let limbo = update(dir, &got, |u| {
        u.memberships = vec![Membership::new("limbo", [Role::Student].into())];
        u.state = UserState::Limbo;
        u.disabled = true;
        u.purge_at = NaiveDate::from_ymd_opt(2027, 1, 1);
    });
    assert_eq!(stored(dir, "1"), limbo);
    assert!(members(dir, &class("b", "9x")) == ["e.schmidt"]);
    let back = update(dir, &limbo, |u| {
        u.memberships = vec![membership("a", &[Role::Student], &["6a"], &[])];
        u.state = UserState::Active;
        u.disabled = false;
        u.purge_at = None;
    });
    assert_eq!(stored(dir, "1"), back);
    assert_eq!(members(dir, &class("a", "6a")), ["m.mustermann"]);
}

fn stale_writes_are_conflicts(dir: &mut dyn Directory) {
    create(dir, &["a", "b", "limbo"], sample());
    let read = stored(dir, "2");
    update(dir, &read, |u| u.lastname = "Neu".into());
    let mut late = read.clone();
    late.firstname = "Eve".into();
    let e = dir
        .apply(&Batch {
            users: vec![UserChange::Update {
                before: read.clone(),
                after: late,
            }],
            ..Batch::default()
        })
        .expect_err("stale update");
    assert!(matches!(e, StoreError::Conflict { .. }), "{e}");
    let e = dir
        .apply(&Batch {
            users: vec![UserChange::Delete(read)],
            ..Batch::default()
        })
        .expect_err("stale delete");
    assert!(matches!(e, StoreError::Conflict { .. }), "{e}");
    assert_eq!(stored(dir, "2").lastname, "Neu");
    assert_eq!(stored(dir, "2").firstname, "Eva");
    let mut clash = user(
        "9",
        "e.schmidt",
        "E",
        "S",
        vec![membership("b", &[Role::Student], &[], &[])],
    );
    clash.key.record_uid = "9".into();
    let e = dir
        .apply(&Batch {
            users: vec![UserChange::Create(clash)],
            ..Batch::default()
        })
        .expect_err("taken");
    assert!(matches!(e, StoreError::UsernameTaken(ref n) if n == "e.schmidt"), "{e}");
}

fn usernames_stay_issued_and_counters_persist(dir: &mut dyn Directory) {
    create(dir, &["a", "b", "limbo"], sample());
    let bo = stored(dir, "3");
    dir.apply(&Batch {
        users: vec![UserChange::Delete(bo)],
        counters: vec![("m.mustermann".into(), 5), ("x.y".into(), 3)],
        ..Batch::default()
    })
    .expect("delete");
    assert!(dir.user(&UserKey::new("district", "3")).expect("read").is_none());
    assert!(dir.username_issued("b.limbo").expect("issued"), "kept after the purge");
    assert!(dir.username_issued("e.schmidt").expect("issued"));
    assert!(!dir.username_issued("n.new").expect("issued"));
    let issued = dir
        .usernames_issued(&["b.limbo".into(), "n.new".into(), "m.mustermann".into()])
        .expect("issued");
    let mut issued: Vec<_> = issued.into_iter().collect();
    issued.sort();
    assert_eq!(issued, ["b.limbo", "m.mustermann"]);
    dir.apply(&Batch {
        counters: vec![("m.mustermann".into(), 4), ("x.y".into(), 9)],
        ..Batch::default()
    })
    .expect("counters");
    assert_eq!(
        dir.username_counter("m.mustermann").expect("counter"),
        Some(5),
        "never lowered"
    );
    assert_eq!(dir.username_counter("x.y").expect("counter"), Some(9));
    assert_eq!(dir.username_counter("none").expect("counter"), None);
    let all = dir.username_counters(&["x.y".into(), "none".into()]).expect("counters");
    assert_eq!(all.into_iter().collect::<Vec<_>>(), [("x.y".to_string(), 9)]);
}

fn journal_records_objects_and_schools(dir: &mut dyn Directory) {
    assert_eq!(dir.journal_head().expect("head"), 0);
    create(dir, &["a", "b", "limbo"], sample());
    let head = dir.journal_head().expect("head");
    let max = stored(dir, "1");
    update(dir, &max, |u| {
        u.remove_membership("a");
    });
    // Unchanged display name: nothing to journal; a new one: the school.
    dir.apply(&Batch {
        schools: vec![School::new("a")],
        ..Batch::default()
    })
    .expect("school");
    dir.apply(&Batch {
        schools: vec![School {
            name: "b".into(),
            display_name: "Schule B".into(),
        }],
        ..Batch::default()
    })
    .expect("school");
    assert_eq!(
        dir.school("b").expect("school").map(|s| s.display_name),
        Some("Schule B".into())
    );
    let entries = dir.journal_after(head, 100).expect("journal");
    let got: Vec<String> = entries
        .iter()
        .map(|e| format!("{} {}", e.object, e.schools.join(",")))
        .collect();
    assert_eq!(
        got,
        [
            "user:district:1 a,b",
            "class:a:5a a",
            "class:a:Mathe (LK)* a",
            "workgroup:a:Chor a",
            "school:b b",
        ]
    );
    assert!(entries.windows(2).all(|w| w[0].seq < w[1].seq));
    assert_eq!(
        dir.journal_head().expect("head"),
        entries.last().map(|e| e.seq).unwrap_or(0)
    );
    let first = dir.journal_after(0, 3).expect("journal");
    let objs: Vec<String> = first.iter().map(|e| e.object.to_string()).collect();
    assert_eq!(objs, ["school:a", "school:b", "school:limbo"], "schools first");
}

macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod sqlite_backend {
            $(
                #[test]
                fn $name() {
                    let Some(mut f) = super::sqlite() else { return };
                    super::$name(&mut *f.dir);
                }
            )*
        }
        mod ldap_backend {
            $(
                #[test]
                fn $name() {
                    let Some(mut f) = super::ldap() else { return };
                    super::$name(&mut *f.dir);
                }
            )*
        }
    };
}

conformance!(
    users_round_trip,
    queries_filter_sort_and_page,
    moves_and_groups_follow_the_user,
    stale_writes_are_conflicts,
    usernames_stay_issued_and_counters_persist,
    journal_records_objects_and_schools,
);
