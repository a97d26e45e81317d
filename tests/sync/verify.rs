//! Verify and fix against the embedded mirror and the real scim2-server:
//! drift made by hand on the target (an object deleted, modified, added; a
//! class member taken away; a school assignment removed without deleting on
//! the target) is named precisely, `--fix` plus a drain makes it clean, and
//! foreign objects on the target stay untouched.

use crate::common;

use common::scim::ScimServer;
use common::{District, scim_authority, student, token_file, with_sets_owned};
use rollcall::engine::jobs::Quiet;
use rollcall::engine::sync::SyncOptions;
use rollcall::engine::sync::assign::SchoolsRemove;
use rollcall::engine::sync::verify::{ObjectKind, VerifyKind, VerifyReport, VerifyRequest};
use serde_json::{Value, json};
use std::time::Duration;

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
}

fn verify(d: &mut District, authority: &str, kind: VerifyKind, filter: Option<&str>, fix: bool) -> VerifyReport {
    d.engine
        .verify(
            &VerifyRequest {
                authority: authority.into(),
                kind,
                filter: filter.map(str::to_string),
                fix,
            },
            &mut Quiet,
        )
        .expect("verify")
}

fn objects<T>(items: &[T], f: impl Fn(&T) -> String) -> Vec<String> {
    items.iter().map(f).collect()
}

fn mirror_sets() -> Vec<String> {
    vec![
        "authorities.mirror.kind=\"embedded\"".into(),
        "authorities.mirror.schools=[\"gsmitte\", \"gsnord\"]".into(),
    ]
}

fn district(sets: Vec<String>) -> District {
    let mut d = with_sets_owned(&sets);
    d.import(
        "gsmitte",
        &[
            &student("1", "Anna", "Alt", "5a"),
            &student("2", "Ben", "Bauer", "5a"),
            &student("3", "Cem", "Celik", "5b"),
        ],
    );
    d.import("gsnord", &[&student("4", "Dora", "Dorn", "1a")]);
    d.import("gssued", &[&student("9", "Zoe", "Zorn", "1a")]);
    d
}

fn mirror(d: &District) -> rusqlite::Connection {
    rusqlite::Connection::open(d.data_dir().join("mirrors/mirror.sqlite")).expect("mirror")
}

#[test]
fn embedded_drift_is_named_fixed_and_foreign_objects_stay() {
    let mut d = district(mirror_sets());
    sync(&mut d);
    let r = verify(&mut d, "mirror", VerifyKind::All, None, false);
    assert!(r.clean, "{r:#?}");
    // 4 users, 3 classes, 2 school groups.
    assert_eq!((r.expected, r.actual, r.foreign), (9, 9, 0));

    let db = mirror(&d);
    // Deleted by hand: Ben (and so his memberships).
    db.execute_batch(
        "DELETE FROM resources WHERE external_id = 'district:2';
         DELETE FROM members WHERE member_id = 'district:2';
         UPDATE resources SET attributes = json_set(attributes, '$.name.familyName', 'Hacked')
           WHERE external_id = 'district:1';
         DELETE FROM members WHERE group_id = 'class:gsmitte:5b' AND member_id = 'district:3';
         INSERT INTO resources VALUES ('district:77', 'user', '{\"userName\":\"x.y\"}', 'now');
         INSERT INTO resources VALUES ('hr-7', 'user', '{\"userName\":\"boss\"}', 'now');
         INSERT INTO resources VALUES ('team-x', 'group', '{\"displayName\":\"team\"}', 'now');
         INSERT INTO members VALUES ('team-x', 'district:1');",
    )
    .expect("drift");

    let r = verify(&mut d, "mirror", VerifyKind::All, None, false);
    assert!(!r.clean);
    assert_eq!(r.foreign, 2, "hr-7 and team-x are not ours");
    assert_eq!(objects(&r.missing, |m| m.object.clone()), vec!["user:district:2"]);
    assert_eq!(r.missing[0].name, "b.bauer");
    assert_eq!(objects(&r.unexpected, |u| u.object.clone()), vec!["user:district:77"]);
    assert_eq!(r.unexpected[0].name.as_deref(), Some("x.y"));
    let diff: Vec<(String, String, Value, Value)> = r
        .different
        .iter()
        .flat_map(|d| {
            d.fields.iter().map(|f| {
                (
                    d.object.clone(),
                    f.attribute.clone(),
                    f.expected.clone(),
                    f.actual.clone(),
                )
            })
        })
        .collect();
    assert_eq!(
        diff,
        vec![
            (
                "school:gsmitte".into(),
                "members".into(),
                json!(["district:2"]),
                json!([])
            ),
            (
                "class:gsmitte:5a".into(),
                "members".into(),
                json!(["district:2"]),
                json!([])
            ),
            (
                "class:gsmitte:5b".into(),
                "members".into(),
                json!(["district:3"]),
                json!([])
            ),
            (
                "user:district:1".into(),
                "name.familyName".into(),
                json!("Alt"),
                json!("Hacked")
            ),
        ]
    );
    assert_eq!(r.different[0].kind, ObjectKind::School);
    assert_eq!(r.different[3].kind, ObjectKind::User);

    // Each kind alone, and a filter over both sides.
    let u = verify(&mut d, "mirror", VerifyKind::Users, None, false);
    assert_eq!((u.counts.missing, u.counts.unexpected, u.counts.different), (1, 1, 1));
    let c = verify(&mut d, "mirror", VerifyKind::Classes, None, false);
    assert_eq!((c.counts.missing, c.counts.unexpected, c.counts.different), (0, 0, 2));
    let s = verify(&mut d, "mirror", VerifyKind::Schools, None, false);
    assert_eq!((s.expected, s.counts.different), (2, 1));
    let w = verify(&mut d, "mirror", VerifyKind::Workgroups, None, false);
    assert!(w.clean);
    let f = verify(&mut d, "mirror", VerifyKind::Users, Some("(username=a.*)"), false);
    assert_eq!((f.expected, f.counts.missing, f.counts.unexpected), (1, 0, 0), "{f:#?}");
    assert_eq!(objects(&f.different, |d| d.object.clone()), vec!["user:district:1"]);
    let f = verify(
        &mut d,
        "mirror",
        VerifyKind::All,
        Some("(&(school=gsmitte)(!(kind=user)))"),
        false,
    );
    assert_eq!(
        objects(&f.different, |d| d.object.clone()),
        vec!["school:gsmitte", "class:gsmitte:5a", "class:gsmitte:5b"]
    );
    let f = verify(&mut d, "mirror", VerifyKind::Users, Some("(record_uid=77)"), false);
    assert_eq!(
        (f.counts.missing, f.counts.unexpected, f.counts.different),
        (0, 1, 0),
        "a user only the target holds is filtered by its external id"
    );

    // Fix, drain, clean; the foreign objects are still there.
    let r = verify(&mut d, "mirror", VerifyKind::All, None, true);
    let fixed = r.fixed.expect("fixed");
    assert_eq!(
        fixed.objects,
        vec![
            "user:district:2",
            "school:gsmitte",
            "class:gsmitte:5a",
            "class:gsmitte:5b",
            "user:district:1",
            "user:district:77"
        ]
    );
    assert_eq!(fixed.queued, 6);
    sync(&mut d);
    let r = verify(&mut d, "mirror", VerifyKind::All, None, false);
    assert!(r.clean, "{r:#?}");
    assert_eq!(r.foreign, 2);
    let foreign: i64 = db
        .query_row(
            "SELECT count(*) FROM resources WHERE external_id IN ('hr-7', 'team-x')",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(foreign, 2);
    let member: i64 = db
        .query_row("SELECT count(*) FROM members WHERE group_id = 'team-x'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(member, 1);
}

#[test]
fn removed_assignment_without_delete_shows_unexpected_then_fix_deletes() {
    let mut d = district(mirror_sets());
    sync(&mut d);
    let out = d
        .engine
        .sync_schools_remove(&SchoolsRemove {
            authority: "mirror".into(),
            schools: vec!["gsnord".into()],
            delete_on_target: false,
            force: false,
        })
        .expect("remove");
    assert_eq!(out.scheduled.objects, 0);
    let r = verify(&mut d, "mirror", VerifyKind::All, None, false);
    assert_eq!(
        objects(&r.unexpected, |u| u.object.clone()),
        vec!["school:gsnord", "class:gsnord:1a"]
    );
    // The authority keeps leavers (on_removal = "deactivate", the default):
    // Dora should be there deactivated, without her school.
    assert_eq!(objects(&r.different, |d| d.object.clone()), vec!["user:district:4"]);
    let fields: Vec<(String, Value, Value)> = r.different[0]
        .fields
        .iter()
        .map(|f| (f.attribute.clone(), f.expected.clone(), f.actual.clone()))
        .collect();
    assert_eq!(
        fields,
        vec![
            ("active".into(), json!(false), json!(true)),
            (
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:organization".into(),
                Value::Null,
                json!("gsnord")
            ),
        ]
    );
    assert!(r.missing.is_empty(), "{r:#?}");
    verify(&mut d, "mirror", VerifyKind::All, None, true);
    sync(&mut d);
    let r = verify(&mut d, "mirror", VerifyKind::All, None, false);
    assert!(r.clean, "{r:#?}");
    assert_eq!(r.expected, 6);
}

#[test]
fn leavers_kept_deactivated_are_compared_not_unexpected() {
    let mut sets = mirror_sets();
    sets.push("authorities.mirror.on_removal=\"deactivate\"".into());
    let mut d = district(sets);
    sync(&mut d);
    // Cem leaves gsmitte: limbo, deactivated on the mirror.
    d.import(
        "gsmitte",
        &[&student("1", "Anna", "Alt", "5a"), &student("2", "Ben", "Bauer", "5a")],
    );
    sync(&mut d);
    let r = verify(&mut d, "mirror", VerifyKind::Users, None, false);
    assert!(r.clean, "{r:#?}");
    mirror(&d)
        .execute(
            "UPDATE resources SET attributes = json_set(attributes, '$.active', json('true')) \
             WHERE external_id = 'district:3'",
            [],
        )
        .unwrap();
    let r = verify(&mut d, "mirror", VerifyKind::Users, None, false);
    assert_eq!(r.different.len(), 1, "{r:#?}");
    assert_eq!(r.different[0].object, "user:district:3");
    assert_eq!(r.different[0].fields[0].attribute, "active");
    assert_eq!(
        (&r.different[0].fields[0].expected, &r.different[0].fields[0].actual),
        (&json!(false), &json!(true))
    );
    verify(&mut d, "mirror", VerifyKind::Users, None, true);
    sync(&mut d);
    assert!(verify(&mut d, "mirror", VerifyKind::Users, None, false).clean);
}

#[test]
fn bad_filter_and_read_only_fix_are_refused() {
    let mut d = district(mirror_sets());
    let e = d
        .engine
        .verify(
            &VerifyRequest {
                authority: "mirror".into(),
                kind: VerifyKind::Users,
                filter: Some("(&(school=gsmitte)(colour=red))".into()),
                fix: false,
            },
            &mut Quiet,
        )
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("position 20") && e.contains("unknown attribute 'colour'"),
        "{e}"
    );
    let sets = mirror_sets();
    let refs: Vec<&str> = sets.iter().map(String::as_str).collect();
    d.reopen(&refs, true);
    let e = d
        .engine
        .verify(
            &VerifyRequest {
                authority: "mirror".into(),
                kind: VerifyKind::Users,
                filter: None,
                fix: true,
            },
            &mut Quiet,
        )
        .unwrap_err();
    assert!(matches!(e, rollcall::engine::EngineError::ReadOnly { .. }), "{e}");
    // Without --fix, read-only may verify.
    assert!(!verify(&mut d, "mirror", VerifyKind::Users, None, false).clean);
}

#[test]
fn scim_drift_is_named_fixed_and_foreign_objects_stay() {
    let Some(server) = ScimServer::start() else { return };
    let (_t, token) = token_file();
    let mut d = district(scim_authority("idb", &server.url(), &token, &["gsmitte", "gsnord"]));
    sync(&mut d);
    let r = verify(&mut d, "idb", VerifyKind::All, None, false);
    assert!(r.clean, "{r:#?}");
    assert_eq!((r.expected, r.actual), (9, 9));

    let users = server.by_external_id("/Users");
    let groups = server.by_external_id("/Groups");
    let id = |m: &std::collections::BTreeMap<String, Value>, ext: &str| m[ext]["id"].as_str().unwrap().to_string();
    // Deleted, modified and added by hand; a class member taken away.
    // scim2-server keeps the deleted user's id in the groups it was in.
    let ben = id(&users, "district:2");
    let (s, _) = server.request("DELETE", &format!("/Users/{ben}"), None);
    assert_eq!(s, 204);
    let mut anna = users["district:1"].clone();
    anna["name"]["familyName"] = json!("Hacked");
    anna.as_object_mut().unwrap().remove("meta");
    let (s, _) = server.request("PUT", &format!("/Users/{}", id(&users, "district:1")), Some(&anna));
    assert_eq!(s, 200, "{anna}");
    let (s, _) = server.request(
        "POST",
        "/Users",
        Some(&json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                     "userName": "x.y", "externalId": "district:77"})),
    );
    assert_eq!(s, 201);
    let (s, foreign) = server.request(
        "POST",
        "/Users",
        Some(&json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "boss"})),
    );
    assert_eq!(s, 201);
    let (s, _) = server.request(
        "POST",
        "/Groups",
        Some(&json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                     "displayName": "team", "externalId": "team-x",
                     "members": [{"value": foreign["id"]}]})),
    );
    assert_eq!(s, 201);
    let cem = id(&users, "district:3");
    let patch = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "remove", "path": format!("members[value eq \"{cem}\"]")}]});
    let (s, _) = server.request(
        "PATCH",
        &format!("/Groups/{}", id(&groups, "class:gsmitte:5b")),
        Some(&patch),
    );
    assert!(s == 200 || s == 204, "{s}");

    let r = verify(&mut d, "idb", VerifyKind::All, None, false);
    assert_eq!(r.foreign, 2, "{r:#?}");
    assert_eq!(objects(&r.missing, |m| m.object.clone()), vec!["user:district:2"]);
    assert_eq!(objects(&r.unexpected, |u| u.object.clone()), vec!["user:district:77"]);
    let diff: Vec<(String, String, Value, Value)> = r
        .different
        .iter()
        .flat_map(|d| {
            d.fields.iter().map(|f| {
                (
                    d.object.clone(),
                    f.attribute.clone(),
                    f.expected.clone(),
                    f.actual.clone(),
                )
            })
        })
        .collect();
    assert_eq!(
        diff,
        vec![
            (
                "school:gsmitte".into(),
                "members".into(),
                json!(["district:2"]),
                json!([ben])
            ),
            (
                "class:gsmitte:5a".into(),
                "members".into(),
                json!(["district:2"]),
                json!([ben])
            ),
            (
                "class:gsmitte:5b".into(),
                "members".into(),
                json!(["district:3"]),
                json!([])
            ),
            (
                "user:district:1".into(),
                "name.familyName".into(),
                json!("Alt"),
                json!("Hacked")
            ),
        ],
        "{r:#?}"
    );

    let r = verify(&mut d, "idb", VerifyKind::All, None, true);
    assert_eq!(r.fixed.as_ref().map(|f| f.queued), Some(6));
    sync(&mut d);
    let r = verify(&mut d, "idb", VerifyKind::All, None, false);
    assert!(r.clean, "{r:#?}");
    assert_eq!(r.foreign, 2);
    let after = server.list("/Users");
    assert!(after.iter().any(|u| u["userName"] == "boss"), "foreign user kept");
    let team: Vec<Value> = server
        .list("/Groups")
        .into_iter()
        .filter(|g| g["externalId"] == "team-x")
        .collect();
    assert_eq!(team.len(), 1);
    assert_eq!(team[0]["members"][0]["value"], foreign["id"]);

    // A removed assignment without delete-on-target: unexpected, then fixed.
    d.engine
        .sync_schools_remove(&SchoolsRemove {
            authority: "idb".into(),
            schools: vec!["gsnord".into()],
            delete_on_target: false,
            force: false,
        })
        .expect("remove");
    let r = verify(&mut d, "idb", VerifyKind::All, None, true);
    assert_eq!(
        objects(&r.unexpected, |u| u.object.clone()),
        vec!["school:gsnord", "class:gsnord:1a"]
    );
    assert_eq!(objects(&r.different, |d| d.object.clone()), vec!["user:district:4"]);
    assert_eq!(r.different[0].fields[0].attribute, "active");
    sync(&mut d);
    let r = verify(&mut d, "idb", VerifyKind::All, None, false);
    assert!(r.clean, "{r:#?}");
    assert_eq!(server.by_external_id("/Users")["district:4"]["active"], false);
    assert!(!server.by_external_id("/Groups").contains_key("school:gsnord"));
}

/// What one user's authorities hold, looked up by external id on the real
/// scim2-server (no listing): present, differing field by field, missing,
/// and no authority at all for a school nobody syncs.
#[test]
fn user_holdings_on_scim_name_present_differs_and_missing() {
    use rollcall::engine::sync::holdings::Holding;
    use rollcall::engine::users::UserSelector;
    let Some(server) = ScimServer::start() else { return };
    let (_t, token) = token_file();
    let mut d = district(scim_authority("idb", &server.url(), &token, &["gsmitte", "gsnord"]));
    sync(&mut d);
    let by_record = |r: &str| UserSelector::RecordUid {
        record_uid: r.into(),
        source_uid: Some("district".into()),
    };
    let holdings = |d: &District, r: &str| d.engine.user_holdings(&by_record(r)).expect("holdings");

    let dora = holdings(&d, "4");
    assert_eq!(dora.len(), 1, "{dora:?}");
    assert_eq!((dora[0].authority.as_str(), dora[0].holding), ("idb", Holding::Present));
    assert!(dora[0].id.is_some());

    let users = server.by_external_id("/Users");
    let mut anna = users["district:1"].clone();
    anna["name"]["familyName"] = json!("Hacked");
    anna.as_object_mut().unwrap().remove("meta");
    let anna_id = anna["id"].as_str().unwrap().to_string();
    let (s, _) = server.request("PUT", &format!("/Users/{anna_id}"), Some(&anna));
    assert_eq!(s, 200);
    let ben = users["district:2"]["id"].as_str().unwrap().to_string();
    let (s, _) = server.request("DELETE", &format!("/Users/{ben}"), None);
    assert_eq!(s, 204);

    let a = holdings(&d, "1");
    assert_eq!(a[0].holding, Holding::Differs, "{a:?}");
    assert_eq!(a[0].id.as_deref(), Some(anna_id.as_str()));
    let fields: Vec<(&str, &Value, &Value)> = a[0]
        .differences
        .iter()
        .map(|f| (f.attribute.as_str(), &f.expected, &f.actual))
        .collect();
    assert_eq!(fields, vec![("name.familyName", &json!("Alt"), &json!("Hacked"))]);

    let b = holdings(&d, "2");
    assert_eq!((b[0].holding, b[0].expected), (Holding::Missing, "active"), "{b:?}");
    assert!(holdings(&d, "9").is_empty(), "gssued is synced by nobody");

    // The server gone: the error, classed, instead of an answer.
    drop(server);
    let a = holdings(&d, "1");
    assert_eq!(a[0].holding, Holding::Error, "{a:?}");
    assert!(
        a[0].error.as_deref().is_some_and(|e| e.contains("unreachable")),
        "{a:?}"
    );
}
