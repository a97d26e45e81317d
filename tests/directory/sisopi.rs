//! Scenario tests for every rule of the per-school import (DESIGN §2).

use crate::common;

use chrono::{Days, Local};
use common::{District, student};
use rollcall::engine::EngineError;
use rollcall::engine::jobs::Quiet;
use rollcall::model::{Role, UserState};
use rollcall::store::UserQuery;

fn today() -> chrono::NaiveDate {
    Local::now().date_naive()
}

#[test]
fn first_import_creates_and_second_changes_nothing() {
    let mut d = District::new();
    let lines = [
        student("1", "Max", "Mustermann", "5a"),
        student("2", "Erika", "Mustermann", "5b"),
    ];
    let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
    let o = d.import("a", &lines);
    assert_eq!((o.created, o.refused.clone()), (2, None));
    assert!(o.school_created);
    let u = d.must("1");
    assert_eq!(u.username, "m.mustermann");
    assert_eq!(d.must("2").username, "e.mustermann");
    assert_eq!(u.state, UserState::Active);
    assert!(!u.disabled && u.purge_at.is_none());
    assert_eq!(u.classes()["a"], ["5a"]);
    let head = d.journal_head();
    let again = d.import("a", &lines);
    assert_eq!((again.created, again.modified, again.unchanged), (0, 0, 2));
    assert_eq!(d.journal_head(), head, "an unchanged re-import journals nothing");
}

#[test]
fn attribute_change_is_modified_and_username_never_changes() {
    let mut d = District::new();
    d.import("a", &[&student("1", "Max", "Mustermann", "5a")]);
    let o = d.import("a", &[&student("1", "Max", "Schmidt", "6a")]);
    assert_eq!(o.modified, 1);
    let u = d.must("1");
    assert_eq!((u.lastname.as_str(), u.username.as_str()), ("Schmidt", "m.mustermann"));
    assert_eq!(u.classes()["a"], ["6a"]);
}

#[test]
fn move_removed_first_goes_through_limbo_and_is_restored() {
    let mut d = District::new();
    d.import("a", &[&student("1", "Max", "M", "5a"), &student("2", "Eva", "E", "5a")]);
    d.import("b", &[&student("3", "Bo", "B", "7c")]);
    let o = d.import("a", &[&student("2", "Eva", "E", "5a")]);
    assert_eq!(o.to_limbo, 1);
    let u = d.must("1");
    assert_eq!(u.state, UserState::Limbo);
    assert!(u.disabled);
    assert_eq!(d.schools_of("1"), ["limbo"]);
    assert_eq!(u.purge_at, today().checked_add_days(Days::new(90)));
    assert!(u.classes().is_empty());
    let o = d.import("b", &[&student("3", "Bo", "B", "7c"), &student("1", "Max", "M", "8b")]);
    assert_eq!(o.restored, 1);
    let u = d.must("1");
    assert_eq!((u.state, u.disabled, u.purge_at), (UserState::Active, false, None));
    assert_eq!(d.schools_of("1"), ["b"]);
    assert_eq!(u.classes()["b"], ["8b"]);
    assert_eq!(u.username, "m.m", "the username survives the move");
}

#[test]
fn move_added_first_then_removed_keeps_user_active() {
    let mut d = District::new();
    d.import("a", &[&student("1", "Max", "M", "5a"), &student("2", "Eva", "E", "5a")]);
    let o = d.import("b", &[&student("1", "Max", "M", "8b")]);
    assert_eq!(o.added_school, 1);
    assert_eq!(
        d.schools_of("1"),
        ["a", "b"],
        "primary unchanged when a school is added"
    );
    let u = d.must("1");
    assert_eq!(u.classes()["a"], ["5a"]);
    assert_eq!(u.classes()["b"], ["8b"]);
    let o = d.import("a", &[&student("2", "Eva", "E", "5a")]);
    assert_eq!(o.removed_school, 1);
    let u = d.must("1");
    assert_eq!(d.schools_of("1"), ["b"], "the first remaining school becomes primary");
    assert_eq!(u.state, UserState::Active);
    assert!(!u.classes().contains_key("a"), "the school's classes go with it");
}

#[test]
fn both_move_orders_converge_except_primary() {
    let run = |remove_first: bool| {
        let mut d = District::new();
        d.import("a", &[&student("1", "Max", "M", "5a"), &student("2", "Eva", "E", "5a")]);
        d.import("b", &[&student("3", "Bo", "B", "7c")]);
        let a = [student("2", "Eva", "E", "5a")];
        let b = [student("3", "Bo", "B", "7c"), student("1", "Max", "M", "8b")];
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        let b: Vec<&str> = b.iter().map(String::as_str).collect();
        if remove_first {
            d.import("a", &a);
            d.import("b", &b);
        } else {
            d.import("b", &b);
            d.import("a", &a);
        }
        let u = d.must("1");
        (u.state, u.disabled, u.purge_at, u.classes(), d.schools_of("1"))
    };
    assert_eq!(run(true), run(false));
}

#[test]
fn user_in_two_schools_dropped_by_primary() {
    let mut d = District::new();
    d.import("m", &[&student("1", "Max", "M", "5a"), &student("2", "Eva", "E", "5a")]);
    d.import("z", &[&student("1", "Max", "M", "1z")]);
    d.import("c", &[&student("1", "Max", "M", "1c")]);
    assert_eq!(d.schools_of("1"), ["m", "c", "z"]);
    let o = d.import("m", &[&student("2", "Eva", "E", "5a")]);
    assert_eq!(o.removed_school, 1);
    assert_eq!(d.schools_of("1"), ["c", "z"]);
}

#[test]
fn purge_after_grace_period_and_usernames_are_not_reissued() {
    let mut d = District::new();
    d.import(
        "a",
        &[&student("1", "Max", "Mustermann", ""), &student("2", "Eva", "E", "")],
    );
    d.import("a", &[&student("2", "Eva", "E", "")]);
    let due = d.must("1").purge_at.expect("purge date");
    assert_eq!(Some(due), today().checked_add_days(Days::new(90)));
    let before = due.pred_opt().unwrap();
    let o = d.engine.limbo_purge(Some(before), false, &mut Quiet).unwrap();
    assert!(o.purged.is_empty());
    let dry = d.engine.limbo_purge(Some(due), true, &mut Quiet).unwrap();
    assert_eq!(dry.purged, ["m.mustermann"]);
    assert!(d.user("1").is_some(), "a dry run deletes nothing");
    let o = d.engine.limbo_purge(Some(due), false, &mut Quiet).unwrap();
    assert_eq!(o.purged, ["m.mustermann"]);
    assert!(d.user("1").is_none());
    // Someone new with the same name does not inherit the username.
    d.import(
        "a",
        &[&student("2", "Eva", "E", ""), &student("9", "Max", "Mustermann", "")],
    );
    assert_eq!(d.must("9").username, "m.mustermann2");
    let run = d.engine.runs().show(&o.run_id).unwrap();
    assert_eq!(run.counts["purged"], 1);
}

#[test]
fn other_sources_users_are_untouched() {
    let mut d = District::new();
    let f = d.feed(&[&student("1", "Max", "M", "5a")]);
    let mut req = District::request("a", Role::Student, f);
    req.source_uid = Some("other".into());
    d.import_req(req);
    d.import("a", &[&student("2", "Eva", "E", "")]);
    // The district's feed for a does not list other:1, and must not touch it.
    let o = d.import("a", &[&student("2", "Eva", "E", "")]);
    assert_eq!(o.to_limbo + o.removed_school, 0);
    let other = d
        .engine
        .directory()
        .user(&rollcall::model::UserKey::new("other", "1"))
        .unwrap()
        .unwrap();
    assert_eq!(other.state, UserState::Active);
    // Same record uid in another source is another person.
    d.import("a", &[&student("2", "Eva", "E", ""), &student("1", "Max", "M", "")]);
    assert_ne!(d.must("1").username, other.username);
}

fn many(n: usize) -> Vec<String> {
    (1..=n)
        .map(|i| student(&format!("{i}"), "Kim", &format!("Nr{i}"), ""))
        .collect()
}

#[test]
fn mass_removal_guard_refuses_and_force_applies() {
    let mut d = District::new();
    let all = many(20);
    d.import("a", &all.iter().map(String::as_str).collect::<Vec<_>>());
    let head = d.journal_head();
    let kept: Vec<&str> = all[..12].iter().map(String::as_str).collect();
    let o = d.import("a", &kept);
    let reason = o.refused.expect("refused");
    assert!(reason.contains("8 of 20") && reason.contains("--force"), "{reason}");
    assert_eq!(o.to_limbo, 8, "the plan is still reported");
    assert_eq!(d.journal_head(), head, "a refused run writes nothing");
    assert_eq!(d.must("20").state, UserState::Active);
    let run = d.engine.runs().show(&o.run_id).unwrap();
    assert_eq!(run.status, rollcall::engine::runs::RunStatus::Refused);
    let mut req = District::request("a", Role::Student, d.feed(&kept));
    req.force = true;
    let o = d.import_req(req);
    assert_eq!((o.refused, o.to_limbo), (None, 8));
    // Within the limits (≤ 5 removals) no --force is needed.
    let fewer: Vec<&str> = all[..7].iter().map(String::as_str).collect();
    let o = d.import("a", &fewer);
    assert_eq!((o.refused, o.to_limbo), (None, 5));
}

#[test]
fn empty_feed_for_a_non_empty_scope_is_refused() {
    let mut d = District::new();
    d.import("a", &[&student("1", "Max", "M", "")]);
    let o = d.import("a", &[]);
    assert!(o.refused.unwrap().contains("no valid rows"));
    assert_eq!(d.must("1").state, UserState::Active);
    // An empty feed for an empty scope is fine.
    let o = d.import_role("a", Role::Staff, &[]);
    assert!(o.refused.is_none());
}

#[test]
fn a_bad_row_never_sends_its_user_to_limbo() {
    let mut d = District::with_sets(&["import.max_row_errors=-1"]);
    d.import("a", &[&student("1", "Max", "M", "5a"), &student("2", "Eva", "E", "5a")]);
    let o = d.import("a", &["1,Max,M,,31.02.2010,5a,,", &student("2", "Eva", "E", "5a")]);
    assert_eq!(o.errors.len(), 1);
    assert_eq!(o.errors[0].line, 2);
    assert_eq!(o.errors[0].record_uid.as_deref(), Some("1"));
    assert!(o.errors[0].message.contains("not a date"));
    assert_eq!(o.to_limbo, 0);
    let u = d.must("1");
    assert_eq!(u.state, UserState::Active);
    assert!(u.birthday.is_none(), "the bad row changed nothing");
}

#[test]
fn a_bad_row_without_record_uid_blocks_all_removals() {
    let mut d = District::with_sets(&["import.max_row_errors=-1"]);
    d.import("a", &[&student("1", "Max", "M", ""), &student("2", "Eva", "E", "")]);
    let o = d.import("a", &[",Max,M,,,,,", &student("2", "Eva", "E", "")]);
    assert_eq!(o.to_limbo, 0);
    assert!(!o.warnings.is_empty());
    assert_eq!(d.must("1").state, UserState::Active);
}

#[test]
fn row_errors_beyond_the_limit_write_nothing() {
    let mut d = District::new();
    let o = d.import("a", &[&student("1", "Max", "M", ""), "2,,E,,,,,"]);
    let reason = o.refused.expect("refused");
    assert!(reason.contains("max_row_errors"), "{reason}");
    assert!(d.user("1").is_none());
    assert_eq!(d.journal_head(), 0);
    let mut d = District::with_sets(&["import.max_row_errors=1"]);
    let o = d.import("a", &[&student("1", "Max", "M", ""), "2,,E,,,,,"]);
    assert!(o.refused.is_none());
    assert_eq!(o.created, 1);
}

#[test]
fn dry_run_writes_nothing() {
    let mut d = District::new();
    d.import("a", &[&student("1", "Max", "M", "")]);
    let head = d.journal_head();
    let mut req = District::request("a", Role::Student, d.feed(&[&student("2", "Eva", "E", "")]));
    req.dry_run = true;
    let o = d.import_req(req);
    assert!(o.dry_run);
    assert_eq!((o.created, o.to_limbo), (1, 1));
    assert_eq!(o.changes.len(), 2);
    assert_eq!(d.journal_head(), head);
    assert!(d.user("2").is_none());
    assert_eq!(d.must("1").state, UserState::Active);
    // The username the dry run showed was not reserved.
    let o = d.import("a", &[&student("1", "Max", "M", ""), &student("2", "Eva", "E", "")]);
    assert_eq!(o.created, 1);
    assert_eq!(d.must("2").username, "e.e");
}

#[test]
fn duplicate_record_uid_first_row_wins() {
    let mut d = District::with_sets(&["import.max_row_errors=5"]);
    let o = d.import(
        "a",
        &[&student("1", "Max", "M", "5a"), &student("1", "Moritz", "M", "6a")],
    );
    assert_eq!(o.created, 1);
    assert_eq!(o.errors.len(), 1);
    assert!(o.errors[0].message.contains("line 2"), "{}", o.errors[0].message);
    assert_eq!(d.must("1").firstname, "Max");
}

#[test]
fn classes_change_only_in_the_imported_school() {
    let mut d = District::new();
    d.import("a", &[&student("1", "Max", "M", "5a")]);
    d.import("b", &[&student("1", "Max", "M", "9x,9y")]);
    d.import("a", &[&student("1", "Max", "M", "6a")]);
    let u = d.must("1");
    assert_eq!(u.classes()["a"], ["6a"]);
    assert_eq!(u.classes()["b"], ["9x", "9y"]);
    let g = d
        .engine
        .directory()
        .group(&rollcall::model::GroupKey::new(
            "a",
            rollcall::model::GroupKind::Class,
            "5a",
        ))
        .unwrap();
    assert!(g.is_none(), "5a lost its last member and is gone: {g:?}");
}

#[test]
fn roles_of_one_school_are_imported_independently() {
    let mut d = District::new();
    d.import_role("a", Role::Student, &[&student("1", "Max", "M", "")]);
    d.import_role("a", Role::Teacher, &[&student("2", "Tina", "T", "5a")]);
    // The teachers' feed does not list the student: nothing happens to it.
    let o = d.import_role("a", Role::Teacher, &[&student("2", "Tina", "T", "5a")]);
    assert_eq!((o.unchanged, o.to_limbo), (1, 0));
    // A person who is teacher and staff keeps the school when one role ends.
    d.import_role("a", Role::Staff, &[&student("2", "Tina", "T", "")]);
    let o = d.import_role("a", Role::Teacher, &[]);
    assert!(o.refused.is_some(), "empty feed, non-empty scope");
    let mut req = District::request("a", Role::Teacher, d.feed(&[]));
    req.force = true;
    let o = d.import_req(req);
    assert_eq!((o.modified, o.to_limbo), (1, 0));
    let u = d.must("2");
    assert_eq!(u.roles().into_iter().collect::<Vec<_>>(), [Role::Staff]);
    assert_eq!(u.state, UserState::Active);
}

#[test]
fn role_column_decides_when_no_role_is_given() {
    let mut d = District::new();
    let f = d.feed(&["1,Max,M,,,5a,student,a", "2,Tina,T,,,,teacher,a"]);
    let mut req = District::request("a", Role::Student, f);
    req.roles.clear();
    let o = d.import_req(req);
    assert_eq!(o.created, 2);
    assert_eq!(d.must("2").roles().into_iter().collect::<Vec<_>>(), [Role::Teacher]);
}

#[test]
fn a_row_for_another_school_is_rejected() {
    let mut d = District::with_sets(&["import.max_row_errors=-1"]);
    let o = d.import("a", &["1,Max,M,,,,,b", "2,Eva,E,,,,,\"a,b,c\"", "3,Bo,B,,,,,A"]);
    assert_eq!(o.created, 1, "only the row of school a (any case) is imported");
    assert!(d.user("3").is_some());
    let e: Vec<(u64, &str)> = o.errors.iter().map(|e| (e.line, e.message.as_str())).collect();
    assert_eq!(e.len(), 2, "{e:?}");
    assert_eq!(e[0].0, 2);
    assert!(e[0].1.contains("(b)") && e[0].1.contains("right file"), "{}", e[0].1);
    // A row naming S and other schools speaks for those too: an error.
    assert_eq!(e[1].0, 3);
    assert!(
        e[1].1.contains("(b, c)") && e[1].1.contains("only for that school"),
        "{}",
        e[1].1
    );
    assert!(d.user("2").is_none());
}

#[test]
fn workgroups_are_kept_unless_the_feed_maps_them() {
    let mut d = District::new();
    let f = d.raw_feed(b"record_uid,firstname,lastname,workgroups\n1,Max,M,Chor\n", "csv");
    d.import_req(District::request("a", Role::Student, f));
    assert_eq!(d.must("1").workgroups()["a"], ["Chor"]);
    d.import("a", &[&student("1", "Max", "M", "5a")]);
    assert_eq!(d.must("1").workgroups()["a"], ["Chor"]);
    let f = d.raw_feed(b"record_uid,firstname,lastname,workgroups\n1,Max,M,\n", "csv");
    d.import_req(District::request("a", Role::Student, f));
    assert!(d.must("1").workgroups().is_empty());
}

#[test]
fn passwords_are_hashed_and_written_mode_0600() {
    use std::os::unix::fs::PermissionsExt;
    let mut d = District::new();
    let csv = d.data_dir().join("pw.csv");
    let mut req = District::request("a", Role::Student, d.feed(&[&student("1", "Max", "M", "")]));
    req.passwords_csv = Some(csv.clone());
    let o = d.import_req(req);
    assert_eq!(o.passwords_csv.as_deref(), Some(csv.to_str().unwrap()));
    let mode = std::fs::metadata(&csv).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let text = std::fs::read_to_string(&csv).unwrap();
    let line = text.lines().nth(1).unwrap();
    let pw = line.rsplit(',').next().unwrap();
    let hash = d.must("1").password_hash.unwrap();
    assert!(rollcall::engine::password::verify(pw, &hash));
    assert!(!hash.contains(pw));
    let run_dir = d.data_dir().join("runs").join(&o.run_id);
    for f in ["run.json", "summary.csv", "log.txt"] {
        let text = std::fs::read_to_string(run_dir.join(f)).unwrap();
        assert!(!text.contains(pw), "{f} leaks the password");
    }
}

#[test]
fn email_scheme_fills_missing_addresses() {
    let mut d = District::with_sets(&["import.email_scheme=\"<username>@schule.example\""]);
    d.import(
        "a",
        &[&student("1", "Jörg", "Müller", ""), "2,Eva,E,eva@home.example,,,,"],
    );
    assert_eq!(d.must("1").email.as_deref(), Some("j.mueller@schule.example"));
    assert_eq!(d.must("2").email.as_deref(), Some("eva@home.example"));
}

#[test]
fn runs_keep_record_input_summary_log_and_last_row() {
    let mut d = District::new();
    let bytes = "\u{feff}record_uid;firstname;lastname\n1;Jörg;Müller\n".as_bytes();
    let f = d.raw_feed(bytes, "csv");
    let o = d.import_req(District::request("a", Role::Student, f));
    let rec = d.engine.runs().show(&o.run_id).unwrap();
    assert_eq!(rec.kind, rollcall::engine::runs::RunKind::Import);
    assert_eq!(rec.school.as_deref(), Some("a"));
    assert_eq!(rec.counts["created"], 1);
    assert!(!rec.user.is_empty() && rec.finished_at.is_some());
    let dir = d.data_dir().join("runs").join(&o.run_id);
    let mut archived = Vec::new();
    std::io::Read::read_to_end(&mut d.engine.runs().input(&o.run_id).unwrap(), &mut archived).unwrap();
    assert_eq!(archived, bytes, "the archive holds exactly the bytes received");
    assert!(dir.join("input.csv.gz").is_file());
    let summary = std::fs::read_to_string(dir.join("summary.csv")).unwrap();
    assert!(summary.starts_with("line,action,username,record_uid,schools,classes,error\n"));
    assert!(summary.contains("2,created,j.mueller,1,a,,"), "{summary}");
    assert!(
        std::fs::read_to_string(dir.join("log.txt"))
            .unwrap()
            .contains("created 1")
    );
    let detail = d
        .engine
        .user_detail(&rollcall::engine::users::UserSelector::Username("j.mueller".into()))
        .unwrap();
    let last = detail.last_received.unwrap();
    assert_eq!((last.run_id.as_str(), last.line), (o.run_id.as_str(), 2));
    assert_eq!(last.row["firstname"], "Jörg");
}

#[test]
fn journal_records_old_and_new_schools() {
    let mut d = District::new();
    d.import("a", &[&student("1", "Max", "M", "5a"), &student("2", "Eva", "E", "")]);
    let head = d.journal_head();
    d.import("a", &[&student("2", "Eva", "E", "")]);
    let entries = d.engine.directory().journal_after(head, 100).unwrap();
    let user = entries
        .iter()
        .find(|e| e.object.to_string() == "user:district:1")
        .expect("user journalled");
    assert!(user.schools.contains(&"a".to_string()) && user.schools.contains(&"limbo".to_string()));
    assert!(entries.iter().any(|e| e.object.to_string() == "class:a:5a"));
}

#[test]
fn limbo_restore_extend_and_read_only() {
    let mut d = District::new();
    d.import("a", &[&student("1", "Max", "M", ""), &student("2", "Eva", "E", "")]);
    d.import("b", &[&student("3", "Bo", "B", "")]);
    d.import("a", &[&student("2", "Eva", "E", "")]);
    let due = d.must("1").purge_at.unwrap();
    let u = d.engine.limbo_extend("m.m", 10).unwrap();
    assert_eq!(u.purge_at, due.checked_add_days(Days::new(10)));
    assert!(matches!(
        d.engine.limbo_restore("m.m", "nope"),
        Err(EngineError::NotFound(_))
    ));
    assert!(matches!(
        d.engine.limbo_restore("e.e", "b"),
        Err(EngineError::WrongState(_))
    ));
    d.reopen(&[], true);
    assert!(matches!(
        d.engine.limbo_restore("m.m", "b"),
        Err(EngineError::ReadOnly { .. })
    ));
    assert!(matches!(
        d.engine.limbo_extend("m.m", 1),
        Err(EngineError::ReadOnly { .. })
    ));
    assert!(matches!(
        d.engine.limbo_purge(None, false, &mut Quiet),
        Err(EngineError::ReadOnly { .. })
    ));
    let f = d.feed(&[]);
    assert!(matches!(
        d.engine
            .import(&District::request("a", Role::Student, f.clone()), &mut Quiet),
        Err(EngineError::ReadOnly { .. })
    ));
    let mut dry = District::request("a", Role::Student, f);
    dry.dry_run = true;
    assert!(
        d.engine.import(&dry, &mut Quiet).is_ok(),
        "a dry run is allowed read-only"
    );
    d.reopen(&[], false);
    let u = d.engine.limbo_restore("m.m", "b").unwrap();
    assert_eq!((u.state, u.purge_at), (UserState::Active, None));
    assert_eq!(u.school_names().collect::<Vec<_>>(), ["b"]);
    assert_eq!(u.roles().into_iter().collect::<Vec<_>>(), [Role::Student]);
    let audit = std::fs::read_to_string(d.data_dir().join("logs/audit.log")).unwrap();
    assert!(audit.contains("\"limbo restore\"") && audit.contains("refused: read-only"));
}

#[test]
fn missing_column_is_one_clear_error() {
    let mut d = District::new();
    let f = d.raw_feed(b"record_uid,firstname\n1,Max\n", "csv");
    let e = d
        .engine
        .import(&District::request("a", Role::Student, f.clone()), &mut Quiet)
        .unwrap_err()
        .to_string();
    assert!(e.contains(f.to_str().unwrap()) && e.contains("'lastname'"), "{e}");
    assert_eq!(d.engine.directory().count_users(&UserQuery::default()).unwrap(), 0);
}

#[test]
fn a_batch_ends_like_one_import_after_another() {
    let mut d = District::new();
    // Feed 2 names a user feed 1 creates: a plan made while feed 1 was
    // written is stale and is made again.
    let a = d.feed(&[&student("1", "Max", "Mustermann", "5a"), &student("2", "Eva", "E", "")]);
    let b = d.feed(&[&student("1", "Max", "Mustermann", "9b")]);
    let c = d.feed(&[&student("3", "Max", "Mustermann", "")]);
    let reqs = [
        District::request("a", Role::Student, a),
        District::request("b", Role::Student, b),
        District::request("c", Role::Student, c),
    ];
    let out = d.engine.import_batch(&reqs, &mut Quiet).unwrap();
    // (Whether feed 2 was planned before feed 1 was written is up to the
    // threads; either way the result must be the one-by-one result.)
    assert_eq!(out.imports[1].added_school, 1);
    assert_eq!(d.schools_of("1"), ["a", "b"]);
    // Names reserved by a plan not yet written are not handed out twice (a
    // plan made again may leave a gap in the counter: usernames may depend
    // on the order of planning).
    let third = d.must("3").username;
    assert!(
        third.starts_with("m.mustermann") && third != d.must("1").username,
        "{third}"
    );
    for o in &out.imports {
        let run = d.engine.runs().show(&o.run_id).unwrap();
        assert_eq!(run.status, rollcall::engine::runs::RunStatus::Ok);
    }
}

const TEACHERS: &[u8] = b"record_uid,firstname,lastname,classes,workgroups\nr-7,Tina,Lehr,\"5a,6b\",chor\n";
const STAFF: &[u8] = b"record_uid,firstname,lastname\nr-7,Tina,Lehr\n";

fn role_feed(d: &mut District, school: &str, role: Role, bytes: &[u8]) -> rollcall::engine::import::ImportOutcome {
    let f = d.raw_feed(bytes, "csv");
    d.import_req(District::request(school, role, f))
}

fn sorted_roles(u: &rollcall::model::User) -> Vec<Role> {
    u.roles().into_iter().collect()
}

#[test]
fn per_role_feeds_of_one_school_commute() {
    let run = |teacher_first: bool| {
        let mut d = District::new();
        let mut order = [(Role::Teacher, TEACHERS), (Role::Staff, STAFF)];
        if !teacher_first {
            order.reverse();
        }
        for (role, feed) in order {
            role_feed(&mut d, "gsa", role, feed);
        }
        let u = d.must("r-7");
        assert_eq!(u.classes()["gsa"], ["5a", "6b"], "teacher first: {teacher_first}");
        assert_eq!(u.workgroups()["gsa"], ["chor"]);
        // Unchanged feeds, again and again, in either order: nothing changes.
        let head = d.journal_head();
        for round in 0..2 {
            for (role, feed) in order {
                let o = role_feed(&mut d, "gsa", role, feed);
                assert_eq!((o.modified, o.unchanged), (0, 1), "round {round}, {role}");
            }
            order.reverse();
        }
        assert_eq!(d.journal_head(), head, "unchanged feeds journal nothing");
        let u = d.must("r-7");
        (u.classes(), u.workgroups(), sorted_roles(&u))
    };
    assert_eq!(run(true), run(false));
}

#[test]
fn each_role_gives_its_own_classes_and_takes_them_when_it_ends() {
    let mut d = District::new();
    let teachers =
        b"record_uid,firstname,lastname,classes,workgroups\nr-7,Tina,Lehr,\"5a,6b\",chor\nr-8,Udo,Lehr,7c,\n";
    role_feed(&mut d, "gsa", Role::Teacher, teachers);
    role_feed(
        &mut d,
        "gsa",
        Role::Staff,
        b"record_uid,firstname,lastname,classes\nr-7,Tina,Lehr,sek\n",
    );
    assert_eq!(d.must("r-7").classes()["gsa"], ["5a", "6b", "sek"]);
    // The teachers' feed replaces only the teacher's classes.
    let o = role_feed(
        &mut d,
        "gsa",
        Role::Teacher,
        b"record_uid,firstname,lastname,classes,workgroups\nr-7,Tina,Lehr,5a,chor\nr-8,Udo,Lehr,7c,\n",
    );
    assert_eq!(o.modified, 1);
    assert_eq!(d.must("r-7").classes()["gsa"], ["5a", "sek"]);
    // Tina stops teaching: her teacher classes and workgroups go, the staff's stay.
    let o = role_feed(
        &mut d,
        "gsa",
        Role::Teacher,
        b"record_uid,firstname,lastname,classes,workgroups\nr-8,Udo,Lehr,7c,\n",
    );
    assert_eq!((o.modified, o.removed_school, o.to_limbo), (1, 0, 0));
    let u = d.must("r-7");
    assert_eq!(sorted_roles(&u), [Role::Staff]);
    assert_eq!(u.classes()["gsa"], ["sek"]);
    assert!(u.workgroups().is_empty(), "{:?}", u.workgroups());
    let members = |kind, name: &str| {
        d.engine
            .directory()
            .group(&rollcall::model::GroupKey::new("gsa", kind, name))
            .unwrap()
            .map(|g| g.members.len())
            .unwrap_or(0)
    };
    assert_eq!(members(rollcall::model::GroupKind::Class, "5a"), 0);
    assert_eq!(members(rollcall::model::GroupKind::Class, "sek"), 1);
    assert_eq!(members(rollcall::model::GroupKind::Workgroup, "chor"), 0);
    // Both feeds again: unchanged.
    let head = d.journal_head();
    role_feed(
        &mut d,
        "gsa",
        Role::Teacher,
        b"record_uid,firstname,lastname,classes,workgroups\nr-8,Udo,Lehr,7c,\n",
    );
    let o = role_feed(
        &mut d,
        "gsa",
        Role::Staff,
        b"record_uid,firstname,lastname,classes\nr-7,Tina,Lehr,sek\n",
    );
    assert_eq!((o.modified, o.unchanged), (0, 1));
    assert_eq!(d.journal_head(), head);
}

/// A directory written before per-role contributions: a teacher-and-staff
/// person whose one set of classes counts for both roles. On SQLite the named
/// migration wrote it out when the store was opened; on LDAP `migrate` does
/// (and reading it already means the same).
#[test]
fn classes_from_before_count_for_every_role() {
    use rollcall::store::{Batch, UserChange};
    let mut d = District::new();
    role_feed(&mut d, "gsa", Role::Teacher, TEACHERS);
    role_feed(&mut d, "gsa", Role::Staff, STAFF);
    // Make the user look as an older version left it.
    let before = d.must("r-7");
    let mut legacy = before.clone();
    legacy.memberships[0].by_role.clear();
    d.engine
        .directory_mut()
        .apply(&Batch {
            users: vec![UserChange::Update {
                before,
                after: legacy.clone(),
            }],
            ..Batch::default()
        })
        .unwrap();
    assert!(d.must("r-7").memberships[0].is_legacy());
    let dry = d.engine.migrate(true).unwrap();
    assert_eq!(dry.contributions, 1);
    assert!(d.must("r-7").memberships[0].is_legacy(), "a dry run changes nothing");
    let o = d.engine.migrate(false).unwrap();
    assert_eq!((o.contributions, o.users.as_slice()), (1, &["t.lehr".to_string()][..]));
    let u = d.must("r-7");
    assert!(!u.memberships[0].is_legacy());
    assert_eq!(u.memberships[0].by_role.len(), 2, "both roles give 5a, 6b, chor");
    assert_eq!(d.engine.migrate(false).unwrap().contributions, 0, "idempotent");
    // The staff's feed now says: no classes. The teacher's stay.
    role_feed(
        &mut d,
        "gsa",
        Role::Staff,
        b"record_uid,firstname,lastname,classes,workgroups\nr-7,Tina,Lehr,,\n",
    );
    let u = d.must("r-7");
    assert_eq!(u.classes()["gsa"], ["5a", "6b"]);
    assert_eq!(u.workgroups()["gsa"], ["chor"]);
}

#[test]
fn school_names_are_case_insensitive() {
    let mut d = District::new();
    let o = d.import("GSA", &[&student("1", "Max", "M", "5a")]);
    assert_eq!((o.school.as_str(), o.created), ("GSA", 1), "the first spelling is kept");
    // --school gsa means GSA; so does a feed's schools column in any case.
    let o = d.import("gsa", &[&student("1", "Max", "M", "5a"), "2,Eva,E,,,6b,,gsa"]);
    assert_eq!((o.school.as_str(), o.created, o.unchanged), ("GSA", 1, 1));
    assert!(o.errors.is_empty(), "{:?}", o.errors);
    assert_eq!(d.schools_of("2"), ["GSA"]);
    let names: Vec<String> = d.engine.schools_list().unwrap().into_iter().map(|s| s.name).collect();
    assert_eq!(names, ["GSA"]);
    // A second spelling is never created.
    let e = d.engine.school_create("gsa", None).unwrap_err();
    assert!(matches!(e, EngineError::Refused(_)), "{e}");
    assert!(
        e.to_string().contains("'GSA' already exists") && e.to_string().contains("case-insensitive"),
        "{e}"
    );
    let audit = std::fs::read_to_string(d.data_dir().join("logs/audit.log")).unwrap();
    assert!(
        audit.contains("\"schools create\"") && audit.contains("refused: school 'GSA'"),
        "{audit}"
    );
    // Limbo and restore name the school in any case too.
    d.import("b", &[&student("3", "Bo", "B", "")]);
    d.import("Gsa", &[&student("2", "Eva", "E", "6b")]);
    assert_eq!(d.must("1").state, UserState::Limbo);
    let u = d.engine.limbo_restore("m.m", "gSa").unwrap();
    assert_eq!(u.school_names().collect::<Vec<_>>(), ["GSA"]);
    assert_eq!(d.engine.resolve_school("gsa").unwrap(), "GSA");
    assert_eq!(d.engine.resolve_school("neu").unwrap(), "neu");
}

/// Two spellings of one school, as an older version could leave them (only
/// the embedded store can: LDAP DNs ignore case).
#[test]
fn two_spellings_of_a_school_refuse_to_open_until_merged() {
    use rollcall::model::{GroupKey, GroupKind, School};
    use rollcall::store::{Batch, UserChange};
    let mut d = District::new();
    d.import(
        "gsa",
        &[&student("1", "Max", "M", "5a"), &student("2", "Eva", "E", "5a")],
    );
    d.import_role("gsa", Role::Teacher, &[&student("3", "Tina", "T", "5a")]);
    let before = d.must("2");
    let mut after = before.clone();
    after.memberships[0].school = "GSA".into();
    d.engine
        .directory_mut()
        .apply(&Batch {
            schools: vec![School::new("GSA")],
            users: vec![UserChange::Update { before, after }],
            ..Batch::default()
        })
        .unwrap();
    let settings = d.engine.settings().clone();
    let e = rollcall::engine::Engine::open(settings.clone()).err().expect("refused");
    let msg = e.to_string();
    assert!(
        msg.contains("'GSA' and 'gsa'") && msg.contains("rollcall schools merge gsa GSA"),
        "{msg}"
    );
    // The way out: merge one spelling into the other.
    let mut engine = rollcall::engine::Engine::open_unchecked(settings.clone()).unwrap();
    let o = engine.schools_merge("GSA", "gsa").unwrap();
    assert_eq!((o.users, o.school_removed), (1, true));
    d.engine = rollcall::engine::Engine::open(settings).expect("opens again");
    assert_eq!(d.schools_of("2"), ["gsa"]);
    let class = d
        .engine
        .directory()
        .group(&GroupKey::new("gsa", GroupKind::Class, "5a"))
        .unwrap()
        .unwrap();
    assert_eq!(class.members.len(), 3, "5a holds all three again");
    assert!(
        d.engine
            .directory()
            .group(&GroupKey::new("GSA", GroupKind::Class, "5a"))
            .unwrap()
            .is_none()
    );
    let audit = std::fs::read_to_string(d.data_dir().join("logs/audit.log")).unwrap();
    assert!(audit.contains("\"schools merge\"") && audit.contains("1 users moved from GSA to gsa"));
    // Unchanged feeds change nothing after the merge.
    let o = d.import(
        "GSA",
        &[&student("1", "Max", "M", "5a"), &student("2", "Eva", "E", "5a")],
    );
    assert_eq!((o.school.as_str(), o.unchanged), ("gsa", 2));
    // Only spellings of one school merge.
    let e = d.engine.schools_merge("gsa", "b").unwrap_err();
    assert!(matches!(e, EngineError::Usage(_)), "{e}");
}

// --- the import options UCS@school admins rely on

#[test]
fn deletion_grace_days_zero_deletes_in_the_same_run() {
    let mut d = District::with_sets(&["import.deletion_grace_days=0"]);
    d.import("a", &[&student("1", "Max", "M", "5a"), &student("2", "Eva", "E", "5a")]);
    d.import("b", &[&student("2", "Eva", "E", "")]);
    let head = d.journal_head();
    let o = d.import("a", &[&student("2", "Eva", "E", "5a")]);
    assert_eq!((o.deleted, o.to_limbo, o.removed_school), (1, 0, 0));
    assert!(d.user("1").is_none(), "deleted, not parked in limbo");
    let entries = d.engine.directory().journal_after(head, 100).unwrap();
    assert!(
        entries.iter().any(|e| e.object.to_string() == "user:district:1"),
        "journalled"
    );
    let audit = std::fs::read_to_string(d.data_dir().join("logs/audit.log")).unwrap();
    assert!(
        audit.contains("\"import delete\"") && audit.contains("\"m.m\""),
        "{audit}"
    );
    let run = d.engine.runs().show(&o.run_id).unwrap();
    assert_eq!(run.counts["deleted"], 1);
    // A user still in another school is not deleted, and the name stays issued.
    let o = d.import("b", &[&student("3", "Max", "M", "")]);
    assert_eq!(o.deleted, 0);
    assert_eq!(d.must("2").state, UserState::Active);
    assert_eq!(d.must("3").username, "m.m2");
}

#[test]
fn deactivation_grace_days_keep_leavers_active_until_their_day() {
    let mut d = District::with_sets(&["import.deactivation_grace_days=7"]);
    d.import("a", &[&student("1", "Max", "M", ""), &student("2", "Eva", "E", "")]);
    let o = d.import("a", &[&student("2", "Eva", "E", "")]);
    assert_eq!(o.to_limbo, 1);
    let u = d.must("1");
    let day = today().checked_add_days(Days::new(7));
    assert_eq!((u.state, u.disabled, u.deactivate_at), (UserState::Limbo, false, day));
    // The daily pass (limbo purge) deactivates on that day, not before.
    let o = d
        .engine
        .limbo_purge(today().checked_add_days(Days::new(6)), false, &mut Quiet)
        .unwrap();
    assert!(o.deactivated.is_empty());
    assert!(!d.must("1").disabled);
    let dry = d.engine.limbo_purge(day, true, &mut Quiet).unwrap();
    assert_eq!(dry.deactivated, ["m.m"]);
    assert!(!d.must("1").disabled, "a dry run changes nothing");
    let o = d.engine.limbo_purge(day, false, &mut Quiet).unwrap();
    assert_eq!(
        (o.deactivated.as_slice(), o.purged.len()),
        (&["m.m".to_string()][..], 0)
    );
    let u = d.must("1");
    assert_eq!((u.disabled, u.deactivate_at, u.state), (true, None, UserState::Limbo));
    // By default (0) a leaver is deactivated at once.
    let mut d = District::new();
    d.import("a", &[&student("1", "Max", "M", ""), &student("2", "Eva", "E", "")]);
    d.import("a", &[&student("2", "Eva", "E", "")]);
    assert!(d.must("1").disabled);
    assert_eq!(d.must("1").deactivate_at, None);
}

#[test]
fn no_delete_leaves_users_missing_from_the_feed_alone() {
    let mut d = District::with_sets(&["import.no_delete=true"]);
    d.import("a", &[&student("1", "Max", "M", "5a"), &student("2", "Eva", "E", "5a")]);
    d.import_role("a", Role::Teacher, &[&student("3", "Tina", "T", "")]);
    d.import_role("a", Role::Staff, &[&student("3", "Tina", "T", "")]);
    let head = d.journal_head();
    let o = d.import("a", &[&student("2", "Eva", "E", "5a")]);
    assert_eq!(
        (o.removed_school, o.to_limbo, o.modified, o.refused.clone()),
        (0, 0, 0, None)
    );
    // An empty feed takes nobody away either (and is not refused).
    let o = d.import_role("a", Role::Teacher, &[]);
    assert_eq!((o.modified, o.refused), (0, None));
    assert_eq!(d.journal_head(), head);
    assert_eq!(d.must("1").state, UserState::Active);
    assert_eq!(sorted_roles(&d.must("3")), [Role::Teacher, Role::Staff]);
}

#[test]
fn new_users_can_be_created_disabled() {
    let mut d = District::with_sets(&["import.activate_new_users=false"]);
    let o = d.import("a", &[&student("1", "Max", "M", "")]);
    assert_eq!(o.created, 1);
    assert!(d.must("1").disabled, "created disabled");
    let mut d = District::new();
    d.import("a", &[&student("1", "Max", "M", "")]);
    assert!(!d.must("1").disabled, "active by default");
}

#[test]
fn empty_classes_go_unless_kept() {
    use rollcall::model::{GroupKey, GroupKind};
    let class = |d: &District, name: &str| {
        d.engine
            .directory()
            .group(&GroupKey::new("a", GroupKind::Class, name))
            .unwrap()
    };
    for keep in [false, true] {
        let set = format!("import.keep_empty_classes={keep}");
        let mut d = District::with_sets(&[&set]);
        d.import(
            "a",
            &[&student("1", "Max", "M", "5a"), &student("2", "Eva", "E", "5a,6b")],
        );
        let head = d.journal_head();
        let o = d.import("a", &[&student("1", "Max", "M", "6b"), &student("2", "Eva", "E", "6b")]);
        assert_eq!(o.modified, 2);
        if keep {
            assert!(o.classes_removed.is_empty());
            assert_eq!(class(&d, "5a").map(|g| g.members.len()), Some(0), "kept, empty");
        } else {
            assert_eq!(o.classes_removed, ["a-5a"]);
            assert!(class(&d, "5a").is_none(), "5a lost its last member and is gone");
            let entries = d.engine.directory().journal_after(head, 100).unwrap();
            assert!(entries.iter().any(|e| e.object.to_string() == "class:a:5a"));
        }
        assert_eq!(class(&d, "6b").map(|g| g.members.len()), Some(2));
    }
}

/// A hook script in the data dir; `body` runs with the document on stdin.
fn hook(d: &District, name: &str, body: &str) -> String {
    use std::os::unix::fs::PermissionsExt;
    let p = d.data_dir().join(name);
    std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p.display().to_string()
}

#[test]
fn hooks_run_around_the_writes_and_a_pre_hook_vetoes() {
    let mut d = District::new();
    let seen = d.data_dir().join("seen.jsonl");
    // Refuses anybody called Eva; records every document it gets.
    let pre = hook(
        &d,
        "pre",
        &format!(
            "doc=$(cat); echo \"$doc\" >> {0}; case \"$doc\" in *'\"firstname\":\"Eva\"'*) echo 'no Evas here' >&2; exit 1;; esac",
            seen.display()
        ),
    );
    let post = hook(&d, "post", "cat > /dev/null; echo 'mailbox server down' >&2; exit 2");
    let sets = [
        format!("hooks.pre_create=[\"{pre}\"]"),
        format!("hooks.post_create=[\"{post}\"]"),
        format!("hooks.pre_to_limbo=[\"{pre}\"]"),
        "import.max_row_errors=-1".to_string(),
    ];
    d.reopen(&sets.iter().map(String::as_str).collect::<Vec<_>>(), false);
    let o = d.import("a", &[&student("1", "Max", "M", "5a"), &student("2", "Eva", "E", "")]);
    assert_eq!(o.created, 1, "the pre-hook kept Eva out");
    assert!(d.user("2").is_none());
    assert_eq!(o.errors.len(), 1);
    assert_eq!(o.errors[0].line, 3);
    assert!(
        o.errors[0].message.contains("pre_create hook") && o.errors[0].message.contains("no Evas here"),
        "{}",
        o.errors[0].message
    );
    // The post-hook failed: recorded, the user exists all the same.
    assert!(d.user("1").is_some());
    assert_eq!(o.hook_failures.len(), 1);
    assert!(
        o.hook_failures[0]
            .message
            .contains("exited with 2: mailbox server down")
    );
    let run = d.data_dir().join("runs").join(&o.run_id);
    let summary = std::fs::read_to_string(run.join("summary.csv")).unwrap();
    assert!(
        summary.contains("post_create failed") && summary.contains("mailbox server down"),
        "{summary}"
    );
    assert!(
        std::fs::read_to_string(run.join("log.txt"))
            .unwrap()
            .contains("mailbox server down")
    );
    let docs = std::fs::read_to_string(&seen).unwrap();
    let first: serde_json::Value = serde_json::from_str(docs.lines().next().unwrap()).unwrap();
    assert_eq!(first["hook"], "pre_create");
    assert_eq!(first["action"], "create");
    assert_eq!(first["run_id"], o.run_id.as_str());
    assert_eq!(first["school"], "a");
    assert_eq!(first["user_before"], serde_json::Value::Null);
    assert_eq!(first["user_after"]["username"], "m.m");
    assert_eq!(first["user_after"]["classes"]["a"][0], "5a");
    assert!(!docs.contains("password"), "no secrets in hook input: {docs}");
    // With the default row-error limit (0) a veto refuses the whole run.
    d.reopen(&sets[..3].iter().map(String::as_str).collect::<Vec<_>>(), false);
    let o = d.import("a", &[&student("1", "Max", "M", "5a"), &student("2", "Eva", "E", "")]);
    assert!(
        o.refused.as_deref().is_some_and(|r| r.contains("max_row_errors")),
        "{:?}",
        o.refused
    );
    assert!(d.user("2").is_none());
    // A dry run runs no hooks.
    let before = std::fs::read_to_string(&seen).unwrap().len();
    let mut req = District::request(
        "a",
        Role::Student,
        d.feed(&[&student("1", "Max", "M", "5a"), &student("7", "Kai", "K", "")]),
    );
    req.dry_run = true;
    d.import_req(req);
    assert_eq!(std::fs::read_to_string(&seen).unwrap().len(), before);
}

#[test]
fn a_hung_hook_is_killed_after_its_timeout() {
    let mut d = District::new();
    let slow = hook(&d, "slow", "sleep 30");
    d.reopen(
        &[
            &format!("hooks.pre_create=[\"{slow}\"]"),
            "hooks.timeout_secs=1",
            "import.max_row_errors=-1",
        ],
        false,
    );
    let started = std::time::Instant::now();
    let o = d.import("a", &[&student("1", "Max", "M", "")]);
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    assert_eq!(o.created, 0);
    assert!(
        o.errors[0].message.contains("did not finish within 1 s"),
        "{}",
        o.errors[0].message
    );
}

#[test]
fn a_cp1252_feed_reads_with_its_encoding_named() {
    let mut d = District::new();
    // "Jörg Müßig-Äpfel, Ö €" in Windows-1252, as Excel saves it.
    let bytes = b"record_uid;firstname;lastname;classes\n1;J\xf6rg;M\xfc\xdfig-\xc4pfel;5\x80\n2;\xd6zlem;\xdcnal;5a\n";
    let f = d.raw_feed(bytes, "csv");
    let e = d
        .engine
        .import(&District::request("a", Role::Student, f.clone()), &mut Quiet)
        .unwrap_err()
        .to_string();
    assert!(e.contains("not UTF-8") && e.contains("--encoding"), "{e}");
    let mut req = District::request("a", Role::Student, f.clone());
    req.encoding = Some("windows-1252".into());
    let o = d.import_req(req);
    assert_eq!(o.created, 2, "{:?}", o.errors);
    let u = d.must("1");
    assert_eq!((u.firstname.as_str(), u.lastname.as_str()), ("Jörg", "Müßig-Äpfel"));
    assert_eq!(u.classes()["a"], ["5€"]);
    assert_eq!(u.username, "j.muessig-aepfel");
    assert_eq!(d.must("2").firstname, "Özlem");
    // The same from the config key; an unknown label is a usage error.
    d.reopen(&["import.encoding=\"cp1252\""], false);
    let o = d.import_req(District::request("a", Role::Student, f.clone()));
    assert_eq!(o.unchanged, 2);
    let mut req = District::request("a", Role::Student, f);
    req.encoding = Some("klingon".into());
    assert!(matches!(d.engine.import(&req, &mut Quiet), Err(EngineError::Usage(_))));
}

#[test]
fn passwords_that_cannot_be_written_import_nothing() {
    let mut d = District::new();
    let mut req = District::request("a", Role::Student, d.feed(&[&student("1", "Max", "M", "")]));
    req.passwords_csv = Some("/nonexistent/p.csv".into());
    let e = d.engine.import(&req, &mut Quiet).unwrap_err().to_string();
    assert!(e.contains("/nonexistent") && e.contains("nothing was imported"), "{e}");
    assert!(d.user("1").is_none(), "no user without its initial password");
    assert_eq!(d.journal_head(), 0);
    // Written: the file is in place and no temp file is left.
    let csv = d.data_dir().join("pw.csv");
    req.passwords_csv = Some(csv.clone());
    let o = d.import_req(req);
    assert_eq!(o.created, 1);
    let text = std::fs::read_to_string(&csv).unwrap();
    assert!(text.lines().nth(1).unwrap().starts_with("m.m,1,Max,M,"));
    let leftovers: Vec<_> = std::fs::read_dir(d.data_dir())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

/// The example hook in `examples/hooks/` does what it says (needs jq).
#[test]
fn the_example_hook_makes_and_archives_home_directories() {
    if std::process::Command::new("jq").arg("--version").output().is_err() {
        eprintln!("jq is not installed: the example hook is not run");
        return;
    }
    let mut d = District::new();
    let homes = d.data_dir().join("homes");
    let example = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/hooks/home-directory.sh"))
        .unwrap()
        .replace("/srv/homes", homes.to_str().unwrap());
    let script = hook(&d, "home-directory.sh", &example);
    d.reopen(
        &[
            &format!("hooks.post_create=[\"{script}\"]"),
            &format!("hooks.pre_purge=[\"{script}\"]"),
        ],
        false,
    );
    let o = d.import("gsa", &[&student("1", "Max", "M", ""), &student("2", "Eva", "E", "")]);
    assert!(o.hook_failures.is_empty(), "{:?}", o.hook_failures);
    assert!(homes.join("gsa/m.m").is_dir() && homes.join("gsa/e.e").is_dir());
    d.import("gsa", &[&student("2", "Eva", "E", "")]);
    let o = d.engine.limbo_purge_user("m.m", false).unwrap();
    assert_eq!((o.purged.len(), o.hook_failures.len()), (1, 0), "{:?}", o.hook_failures);
    assert!(!homes.join("gsa/m.m").exists());
    assert!(homes.join(".archive/m.m.tar.gz").is_file());
}

/// The same scenarios on OpenLDAP: each test above, with its districts in
/// the shared throwaway slapd.
mod on_ldap {
    macro_rules! on_ldap {
        ($($name:ident),* $(,)?) => {
            $(
                #[test]
                fn $name() {
                    crate::common::on_ldap(super::$name)
                }
            )*
        };
    }

    on_ldap!(
        first_import_creates_and_second_changes_nothing,
        attribute_change_is_modified_and_username_never_changes,
        move_removed_first_goes_through_limbo_and_is_restored,
        move_added_first_then_removed_keeps_user_active,
        both_move_orders_converge_except_primary,
        user_in_two_schools_dropped_by_primary,
        purge_after_grace_period_and_usernames_are_not_reissued,
        other_sources_users_are_untouched,
        mass_removal_guard_refuses_and_force_applies,
        empty_feed_for_a_non_empty_scope_is_refused,
        a_bad_row_never_sends_its_user_to_limbo,
        a_bad_row_without_record_uid_blocks_all_removals,
        row_errors_beyond_the_limit_write_nothing,
        dry_run_writes_nothing,
        duplicate_record_uid_first_row_wins,
        classes_change_only_in_the_imported_school,
        roles_of_one_school_are_imported_independently,
        role_column_decides_when_no_role_is_given,
        a_row_for_another_school_is_rejected,
        workgroups_are_kept_unless_the_feed_maps_them,
        passwords_are_hashed_and_written_mode_0600,
        email_scheme_fills_missing_addresses,
        runs_keep_record_input_summary_log_and_last_row,
        journal_records_old_and_new_schools,
        limbo_restore_extend_and_read_only,
        missing_column_is_one_clear_error,
        a_batch_ends_like_one_import_after_another,
        per_role_feeds_of_one_school_commute,
        each_role_gives_its_own_classes_and_takes_them_when_it_ends,
        classes_from_before_count_for_every_role,
        school_names_are_case_insensitive,
        deletion_grace_days_zero_deletes_in_the_same_run,
        deactivation_grace_days_keep_leavers_active_until_their_day,
        no_delete_leaves_users_missing_from_the_feed_alone,
        new_users_can_be_created_disabled,
        empty_classes_go_unless_kept,
        hooks_run_around_the_writes_and_a_pre_hook_vetoes,
        a_cp1252_feed_reads_with_its_encoding_named,
        passwords_that_cannot_be_written_import_nothing,
    );
}
