//! The sync pipeline against the real third-party SCIM server: create,
//! update, class membership changes, school move, limbo/deactivate, purge/
//! delete, uniqueness adoption, a full resync converging after hand edits
//! on the server, and secrets refused when their file is too open.

use crate::common;

use common::scim::ScimServer;
use common::{District, scim_authority, student, token_file, with_sets_owned};
use rollcall::engine::jobs::Quiet;
use rollcall::engine::sync::{SyncOptions, SyncOutcome};
use rollcall::model::Role;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

fn sync(d: &mut District) -> SyncOutcome {
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
    out
}

/// Member externalIds of each group, by the group's externalId.
fn memberships(server: &ScimServer) -> BTreeMap<String, BTreeSet<String>> {
    let users: BTreeMap<String, String> = server
        .list("/Users")
        .into_iter()
        .map(|u| {
            (
                u["id"].as_str().unwrap().to_string(),
                u["externalId"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    server
        .by_external_id("/Groups")
        .into_iter()
        .map(|(ext, g)| {
            let members = g["members"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .map(|m| {
                    users
                        .get(m["value"].as_str().unwrap())
                        .cloned()
                        .unwrap_or_else(|| "?".into())
                })
                .collect();
            (ext, members)
        })
        .collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

#[test]
fn lifecycle_create_update_move_limbo_purge() {
    let Some(server) = ScimServer::start() else { return };
    let (_t, token) = token_file();
    let mut d = with_sets_owned(&scim_authority("idb", &server.url(), &token, &["gsmitte", "gsnord"]));
    d.import(
        "gsmitte",
        &[
            &student("1", "Anna", "Alt", "5a"),
            &student("2", "Ben", "Bauer", "5a"),
            &student("3", "Cem", "Celik", "5b"),
        ],
    );
    // Another school's users never reach this authority.
    d.import("gssued", &[&student("9", "Zoe", "Zorn", "1a")]);
    let out = sync(&mut d);
    assert_eq!(out.authorities[0].applied.get("created"), Some(&6), "{out:?}");

    let users = server.by_external_id("/Users");
    assert_eq!(
        users.keys().cloned().collect::<BTreeSet<_>>(),
        set(&["district:1", "district:2", "district:3"])
    );
    let anna = &users["district:1"];
    assert_eq!(anna["userName"], "a.alt");
    assert_eq!(anna["name"]["familyName"], "Alt");
    assert_eq!(anna["active"], true);
    assert_eq!(
        anna["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"]["organization"],
        "gsmitte"
    );
    let groups = memberships(&server);
    assert_eq!(
        groups["school:gsmitte"],
        set(&["district:1", "district:2", "district:3"])
    );
    assert_eq!(groups["class:gsmitte:5a"], set(&["district:1", "district:2"]));
    assert_eq!(groups["class:gsmitte:5b"], set(&["district:3"]));
    assert!(!groups.contains_key("school:gssued"));

    // Update and class change: Anna renamed, Ben moves to 5b.
    d.import(
        "gsmitte",
        &[
            &student("1", "Anna", "Altmann", "5a"),
            &student("2", "Ben", "Bauer", "5b"),
            &student("3", "Cem", "Celik", "5b"),
        ],
    );
    let out = sync(&mut d);
    assert_eq!(
        server.by_external_id("/Users")["district:1"]["name"]["familyName"],
        "Altmann"
    );
    let groups = memberships(&server);
    assert_eq!(groups["class:gsmitte:5a"], set(&["district:1"]));
    assert_eq!(groups["class:gsmitte:5b"], set(&["district:2", "district:3"]));
    assert!(
        out.authorities[0].applied.get("updated").is_some_and(|n| *n >= 3),
        "{out:?}"
    );

    // Nothing changed: a replay is idempotent (no duplicates, no changes).
    d.engine.schedule_user("a.alt").expect("schedule");
    let out = sync(&mut d);
    assert_eq!(out.authorities[0].applied.get("created"), None, "{out:?}");
    assert_eq!(server.list("/Users").len(), 3);

    // School move: Cem joins gsnord, then leaves gsmitte.
    d.import("gsnord", &[&student("3", "Cem", "Celik", "6c")]);
    d.import(
        "gsmitte",
        &[
            &student("1", "Anna", "Altmann", "5a"),
            &student("2", "Ben", "Bauer", "5b"),
        ],
    );
    sync(&mut d);
    let cem = &server.by_external_id("/Users")["district:3"];
    assert_eq!(
        cem["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"]["organization"],
        "gsnord"
    );
    let groups = memberships(&server);
    assert_eq!(groups["school:gsmitte"], set(&["district:1", "district:2"]));
    assert_eq!(groups["school:gsnord"], set(&["district:3"]));
    assert_eq!(groups["class:gsmitte:5b"], set(&["district:2"]));
    assert_eq!(groups["class:gsnord:6c"], set(&["district:3"]));

    // Limbo: Cem leaves gsnord, his last school → deactivated, out of groups.
    let file = d.feed(&[]);
    let mut req = District::request("gsnord", Role::Student, file);
    req.force = true;
    d.import_req(req);
    sync(&mut d);
    let cem = &server.by_external_id("/Users")["district:3"];
    assert_eq!(cem["active"], false, "{cem}");
    let groups = memberships(&server);
    assert_eq!(groups["school:gsnord"], BTreeSet::new());
    // Its last member left: the class is removed (import.keep_empty_classes
    // = false), and so is its group.
    assert!(!groups.contains_key("class:gsnord:6c"), "{groups:?}");

    // Purge: gone from the directory → deleted on the target.
    let far = chrono::Local::now().date_naive() + chrono::Days::new(1000);
    d.engine.limbo_purge(Some(far), false, &mut Quiet).expect("purge");
    sync(&mut d);
    let users = server.by_external_id("/Users");
    assert_eq!(
        users.keys().cloned().collect::<BTreeSet<_>>(),
        set(&["district:1", "district:2"])
    );
}

#[test]
fn on_removal_delete_and_adoption_of_a_conflicting_name() {
    let Some(server) = ScimServer::start() else { return };
    let (_t, token) = token_file();
    // Someone created Anna's account by hand, without externalId.
    let (code, _) = server.request(
        "POST",
        "/Users",
        Some(&json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "a.alt", "title": "hand-made"})),
    );
    assert_eq!(code, 201);
    let mut sets = scim_authority("idb", &server.url(), &token, &["gsmitte"]);
    sets.push("authorities.idb.on_removal=\"delete\"".into());
    sets.push("authorities.idb.mapping.school_groups=false".into());
    let mut d = with_sets_owned(&sets);
    d.import(
        "gsmitte",
        &[&student("1", "Anna", "Alt", "5a"), &student("2", "Ben", "Bauer", "5a")],
    );
    sync(&mut d);
    let users = server.list("/Users");
    assert_eq!(users.len(), 2, "adopted, not duplicated: {users:?}");
    let anna = users.iter().find(|u| u["userName"] == "a.alt").expect("anna");
    assert_eq!(anna["externalId"], "district:1");
    assert_eq!(anna["title"], "hand-made", "attributes we do not map are left alone");
    assert!(!server.by_external_id("/Groups").contains_key("school:gsmitte"));

    // Ben leaves: with on_removal = delete he is deleted at once.
    d.import("gsmitte", &[&student("1", "Anna", "Alt", "5a")]);
    sync(&mut d);
    let users = server.by_external_id("/Users");
    assert_eq!(
        users.keys().cloned().collect::<Vec<_>>(),
        vec!["district:1".to_string()]
    );
}

#[test]
fn resync_converges_after_hand_edits_on_the_server() {
    let Some(server) = ScimServer::start() else { return };
    let (_t, token) = token_file();
    let mut d = with_sets_owned(&scim_authority("idb", &server.url(), &token, &["*"]));
    let lines: Vec<String> = (1..=12)
        .map(|i| {
            student(
                &i.to_string(),
                &format!("F{i}"),
                &format!("L{i}"),
                if i % 2 == 0 { "5a" } else { "5b" },
            )
        })
        .collect();
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    d.import("gsmitte", &refs[..6]);
    d.import("gsnord", &refs[6..]);
    sync(&mut d);
    let before_users = server.by_external_id("/Users");
    let before_groups = memberships(&server);
    assert_eq!(before_users.len(), 12);

    // Hand edits: two users and a class deleted, a name changed, a member removed.
    for ext in ["district:3", "district:8"] {
        let id = before_users[ext]["id"].as_str().unwrap();
        assert_eq!(server.request("DELETE", &format!("/Users/{id}"), None).0, 204);
    }
    let groups = server.by_external_id("/Groups");
    let id = groups["class:gsnord:5a"]["id"].as_str().unwrap();
    assert_eq!(server.request("DELETE", &format!("/Groups/{id}"), None).0, 204);
    let id = before_users["district:1"]["id"].as_str().unwrap();
    let patch = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": "name.familyName", "value": "Wrong"}]});
    assert!(matches!(
        server.request("PATCH", &format!("/Users/{id}"), Some(&patch)).0,
        200 | 204
    ));
    assert_ne!(memberships(&server), before_groups);

    let scheduled = d.engine.resync(Some("idb"), &mut Quiet).expect("resync");
    assert!(scheduled.objects >= 12 + 4 + 2, "{scheduled:?}");
    sync(&mut d);
    let after_users = server.by_external_id("/Users");
    assert_eq!(
        after_users.keys().collect::<Vec<_>>(),
        before_users.keys().collect::<Vec<_>>()
    );
    assert_eq!(after_users["district:1"]["name"]["familyName"], "L1");
    for (ext, u) in &after_users {
        let strip = |v: &Value| json!({"userName": v["userName"], "name": v["name"], "active": v["active"]});
        assert_eq!(strip(u), strip(&before_users[ext]), "{ext}");
    }
    assert_eq!(memberships(&server), before_groups);
}

#[test]
fn a_token_file_readable_by_others_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let Some(server) = ScimServer::start() else { return };
    let (_t, token) = token_file();
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o644)).unwrap();
    let mut d = with_sets_owned(&scim_authority("idb", &server.url(), &token, &["gsmitte"]));
    d.import("gsmitte", &[&student("1", "Anna", "Alt", "5a")]);
    let out = d.engine.sync_run(&SyncOptions::default(), &mut Quiet).expect("sync");
    assert!(!out.complete);
    let why = out.authorities[0].incomplete.clone().unwrap_or_default();
    assert!(
        why.contains(&token.display().to_string()) && why.contains("chmod 600"),
        "{why}"
    );
    assert!(server.list("/Users").is_empty());
    let problems = d.engine.authority_show("idb").unwrap().problems;
    assert!(problems.iter().any(|p| p.contains("chmod 600")), "{problems:?}");
    // Nothing was lost: fixed, it goes through.
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600)).unwrap();
    sync(&mut d);
    assert_eq!(server.list("/Users").len(), 1);
}

#[test]
fn put_replaces_when_the_server_offers_no_patch() {
    let spc = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        spc.path(),
        json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
            "patch": {"supported": false}, "bulk": {"supported": false, "maxOperations": 0, "maxPayloadSize": 0},
            "filter": {"supported": true, "maxResults": 1000}, "changePassword": {"supported": false},
            "sort": {"supported": false}, "etag": {"supported": false},
            "authenticationSchemes": []})
        .to_string(),
    )
    .unwrap();
    let Some(server) = ScimServer::start_with(&["--service-provider-config", spc.path().to_str().unwrap()]) else {
        return;
    };
    // The server answers PATCH with 501 now: any PATCH would end in trash.
    let (_t, token) = token_file();
    let mut d = with_sets_owned(&scim_authority("idb", &server.url(), &token, &["gsmitte"]));
    d.import(
        "gsmitte",
        &[&student("1", "Anna", "Alt", "5a"), &student("2", "Ben", "Bauer", "5a")],
    );
    sync(&mut d);
    d.import(
        "gsmitte",
        &[
            &student("1", "Anna", "Altmann", "5b"),
            &student("2", "Ben", "Bauer", "5a"),
        ],
    );
    let out = sync(&mut d);
    assert_eq!(out.authorities[0].trashed, 0, "{out:?}");
    assert_eq!(
        server.by_external_id("/Users")["district:1"]["name"]["familyName"],
        "Altmann"
    );
    let groups = memberships(&server);
    assert_eq!(groups["class:gsmitte:5a"], set(&["district:2"]));
    assert_eq!(groups["class:gsmitte:5b"], set(&["district:1"]));
    assert_eq!(groups["school:gsmitte"], set(&["district:1", "district:2"]));
}

#[test]
fn a_listing_whose_totalresults_contradicts_its_pages_fails() {
    use common::proxy::{FaultProxy, Faults};
    use rollcall::engine::config::AuthorityConfig;
    use rollcall::engine::sync::mapping::Class;
    use rollcall::engine::sync::target::Target;
    use rollcall::engine::sync::target::scim::ScimTarget;
    let Some(server) = ScimServer::start() else { return };
    let proxy = FaultProxy::start(server.port);
    for i in 0..450 {
        let body = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": format!("u{i}"), "externalId": format!("x:{i}")});
        assert_eq!(server.request("POST", "/Users", Some(&body)).0, 201);
    }
    let (_t, token) = token_file();
    let config: AuthorityConfig = toml::from_str(&format!(
        "kind = \"scim\"\nurl = \"{}\"\ntoken_file = \"{}\"\n",
        proxy.url(),
        token.display()
    ))
    .unwrap();
    let target = ScimTarget::new(&config, None).unwrap();
    let list = || {
        let mut seen = BTreeSet::new();
        target
            .list(Class::User, &mut |o| {
                seen.insert(o.external_id.unwrap_or_default());
                true
            })
            .map(|()| seen.len())
    };
    // Honest pages: every user once, and the listing stops at totalResults.
    assert_eq!(list(), Ok(450));
    // totalResults says 1 while the first page holds 200: not believed.
    proxy.set(Faults {
        wrong_totals: true,
        ..Faults::default()
    });
    let e = list().unwrap_err();
    assert!(e.message.contains("contradicts itself"), "{}", e.message);
}

#[test]
fn a_wrong_token_pauses_the_authority_instead_of_trashing_items() {
    let Some(server) = ScimServer::start() else { return };
    let (_t, token) = token_file();
    std::fs::write(&token, "not-the-token").unwrap();
    let mut d = with_sets_owned(&scim_authority("idb", &server.url(), &token, &["gsmitte"]));
    d.import("gsmitte", &[&student("1", "Anna", "Alt", "5a")]);
    let out = d
        .engine
        .sync_run(
            &SyncOptions {
                max_wait: Duration::from_millis(500),
                ..SyncOptions::default()
            },
            &mut Quiet,
        )
        .expect("sync");
    assert!(!out.complete);
    assert_eq!(out.authorities[0].trashed, 0);
    let status = &d.engine.queue_list(Some("idb")).unwrap()[0];
    let paused = status.paused.clone().expect("paused");
    assert!(paused.reason.contains("401"), "{paused:?}");
}

#[test]
fn a_user_created_after_waiting_for_a_retry_joins_the_groups_sent_meanwhile() {
    let Some(server) = ScimServer::start() else { return };
    let (_t, token) = token_file();
    let mut d = with_sets_owned(&scim_authority("idb", &server.url(), &token, &["gsmitte"]));
    d.import(
        "gsmitte",
        &[&student("1", "Anna", "Alt", "5a"), &student("2", "Ben", "Bauer", "5a")],
    );
    d.engine.distribute(None).expect("distribute");
    // Ben's item waits in a back-off of an hour while his class goes out:
    // the server does not hold him, so the class is sent without him — and
    // is not done: it waits for him, spending no attempt.
    let queue = d.dir.path().join("queues/out/idb");
    let ben = rollcall::engine::sync::item::file_name(&rollcall::model::ObjectRef::User {
        source_uid: "district".into(),
        record_uid: "2".into(),
    });
    let text = std::fs::read_to_string(queue.join(&ben)).expect("Ben's item");
    let mut item: Value = serde_json::from_str(&text).expect("item json");
    item["attempts"] = json!(1);
    std::fs::remove_file(queue.join(&ben)).expect("set aside");
    let aside = queue.join("retry").join(&ben);
    std::fs::write(&aside, item.to_string()).expect("into retry");
    let hour = std::time::SystemTime::now() + Duration::from_secs(3600);
    std::fs::File::options()
        .write(true)
        .open(&aside)
        .and_then(|f| f.set_modified(hour))
        .expect("back-off");
    let out = d.sync_for(Duration::from_secs(2));
    assert!(!out.complete, "Ben and his class wait: {out:?}");
    assert_eq!(out.authorities[0].trashed, 0, "{out:?}");
    assert_eq!(memberships(&server)["class:gsmitte:5a"], set(&["district:1"]));
    let class = rollcall::engine::sync::item::file_name(&rollcall::model::ObjectRef::Group {
        school: "gsmitte".into(),
        group_kind: rollcall::model::GroupKind::Class,
        name: "5a".into(),
    });
    let waiting: Value =
        serde_json::from_str(&std::fs::read_to_string(queue.join("retry").join(&class)).expect("class waits"))
            .expect("class item");
    assert_eq!(
        waiting["attempts"],
        json!(0),
        "waiting for Ben spends no attempt: {waiting}"
    );
    let why = waiting["last_error"].as_str().unwrap_or_default();
    assert!(why.contains("1 member(s) not on the target yet (district:2)"), "{why}");
    let next = std::fs::metadata(queue.join("retry").join(&class))
        .and_then(|m| m.modified())
        .expect("class back-off");
    assert!(next >= hour, "the class goes again after Ben's next chance, not before");

    // Ben's back-off ends: created now, and his class goes again.
    std::fs::rename(&aside, queue.join(&ben)).expect("due");
    let out = sync(&mut d);
    assert_eq!(out.authorities[0].applied.get("created"), Some(&1), "{out:?}");
    assert_eq!(
        memberships(&server)["class:gsmitte:5a"],
        set(&["district:1", "district:2"])
    );
}
