//! Sync at peer grade (issue 16): one scenario suite run against two
//! independent SCIM server implementations — scim2-server (Python) and
//! SCIMMY (Node; no Bulk, no enterprise extension by default, and with
//! `--raw` a server whose paging is broken). Each scenario is a function
//! of the server kind; `on_servers!` makes one test per kind.

use crate::common;

use common::hostile::{Hostile, Mode};
use common::proxy::{FaultProxy, Faults};
use common::scim::{Flavour, Kind, ScimServer};
use common::{District, scim_authority, student, token_file, with_sets_owned};
use rollcall::engine::jobs::Quiet;
use rollcall::engine::sync::verify::{VerifyKind, VerifyReport, VerifyRequest};
use rollcall::engine::sync::{SyncOptions, SyncOutcome};
use serde_json::json;
use std::collections::BTreeSet;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// One test per server kind for each scenario.
macro_rules! on_servers {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[test]
                fn scim2_server() {
                    super::$name(crate::common::scim::Kind::Scim2Server)
                }
                #[test]
                fn scimmy() {
                    super::$name(crate::common::scim::Kind::Scimmy)
                }
            }
        )*
    };
}

on_servers!(
    moved_external_ids_converge_with_the_default_workers,
    a_delete_that_overtakes_a_takeover_converges,
    the_first_drain_verifies_clean,
    undeclared_attributes_are_neither_sent_nor_compared,
    deleting_a_user_leaves_no_member_behind,
    a_resync_of_an_unchanged_target_writes_nothing,
);

fn sync(d: &mut District) -> SyncOutcome {
    d.engine
        .sync_run(
            &SyncOptions {
                max_wait: Duration::from_secs(5),
                ..SyncOptions::default()
            },
            &mut Quiet,
        )
        .expect("sync")
}

fn verify(d: &mut District, kind: VerifyKind, fix: bool) -> VerifyReport {
    d.engine
        .verify(
            &VerifyRequest {
                authority: "idb".into(),
                kind,
                filter: None,
                fix,
            },
            &mut Quiet,
        )
        .expect("verify")
}

fn roster(n: usize) -> Vec<String> {
    (1..=n)
        .map(|i| {
            student(
                &i.to_string(),
                &format!("F{i}"),
                &format!("L{i}"),
                if i % 2 == 0 { "5a" } else { "5b" },
            )
        })
        .collect()
}

/// A district of `n` students in gsmitte synced to a fresh server.
fn synced(f: Flavour, n: usize, extra: &[&str]) -> Option<(ScimServer, tempfile::TempDir, District)> {
    let server = ScimServer::start_flavour(f)?;
    let url = server.url();
    synced_at(server, &url, n, extra)
}

/// The same through `url` (a proxy in front of `server`).
fn synced_at(
    server: ScimServer,
    url: &str,
    n: usize,
    extra: &[&str],
) -> Option<(ScimServer, tempfile::TempDir, District)> {
    let (t, token) = token_file();
    let mut sets = scim_authority("idb", url, &token, &["gsmitte"]);
    sets.extend(extra.iter().map(|s| s.to_string()));
    let mut d = with_sets_owned(&sets);
    let lines: Vec<String> = (1..=n)
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
    d.import("gsmitte", &refs);
    let out = sync(&mut d);
    assert!(out.complete && out.trashed == 0, "{out:?}");
    Some((server, t, d))
}

/// Issue 16.3: accounts whose externalId was changed on the server.
/// `verify --fix` queues the missing user (create → 409 → take over by
/// userName) and the unexpected one (delete — the same account); with the
/// default 4 workers both are in flight together. They must converge.
fn moved_external_ids_converge_with_the_default_workers(kind: Kind) {
    let Some((server, _t, mut d)) = synced(kind.flavour(), 16, &[]) else {
        return;
    };
    let users = server.by_external_id("/Users");
    for i in [1, 4, 7, 10, 13] {
        let id = users[&format!("district:{i}")]["id"].as_str().unwrap().to_string();
        let code = server.patch(
            &format!("/Users/{id}"),
            json!([{"op": "replace", "path": "externalId", "value": format!("district:{}", 900 + i)}]),
        );
        assert!(matches!(code, 200 | 204), "{code}");
    }
    let r = verify(&mut d, VerifyKind::Users, true);
    assert_eq!((r.counts.missing, r.counts.unexpected), (5, 5), "{r:?}");
    let out = sync(&mut d);
    assert!(out.complete, "{out:?}");
    assert_eq!(out.trashed, 0, "{:?}", d.engine.trash_list(None).unwrap());
    let r = verify(&mut d, VerifyKind::All, false);
    assert!(r.clean, "{r:?}");
}

/// Moves the externalIds of these users' accounts to 900+i.
fn move_external_ids(server: &ScimServer, users: &[usize]) {
    let by = server.by_external_id("/Users");
    for i in users {
        let id = by[&format!("district:{i}")]["id"].as_str().unwrap().to_string();
        let code = server.patch(
            &format!("/Users/{id}"),
            json!([{"op": "replace", "path": "externalId", "value": format!("district:{}", 900 + i)}]),
        );
        assert!(matches!(code, 200 | 204), "{code}");
    }
}

/// Issue 16.3, made certain: the takeover's lookup by userName is held
/// back until the delete of the same account (under its moved externalId)
/// has gone through. The takeover then finds its account changed (404, or
/// another externalId), reads again and creates the user afresh.
fn a_delete_that_overtakes_a_takeover_converges(kind: Kind) {
    let Some(server) = ScimServer::start_kind(kind) else {
        return;
    };
    let proxy = FaultProxy::start(server.port);
    let url = format!("{}{}", proxy.url(), server.base);
    let Some((server, _t, mut d)) = synced_at(server, &url, 6, &[]) else {
        return;
    };
    move_external_ids(&server, &[2, 3]);
    let r = verify(&mut d, VerifyKind::Users, true);
    assert_eq!((r.counts.missing, r.counts.unexpected), (2, 2), "{r:?}");
    proxy.set(Faults {
        slow_user_name_lookups: Duration::from_millis(700),
        ..Faults::default()
    });
    let out = sync(&mut d);
    assert!(
        out.complete && out.trashed == 0,
        "{out:?} {:?}",
        d.engine.trash_list(None).unwrap()
    );
    proxy.set(Faults::default());
    let r = verify(&mut d, VerifyKind::All, false);
    assert!(r.clean, "{r:?}");
}

/// Issue 16.1 for SCIM: schools created before their users (as the demo
/// does), one drain, and verify is clean with nothing in trash.
fn the_first_drain_verifies_clean(kind: Kind) {
    let Some(server) = ScimServer::start_kind(kind) else {
        return;
    };
    let (_t, token) = token_file();
    let mut d = with_sets_owned(&scim_authority("idb", &server.url(), &token, &["*"]));
    for s in ["gsmitte", "gsnord"] {
        d.engine.school_create(s, None).expect("school");
    }
    let lines = roster(10);
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    d.import("gsmitte", &refs[..5]);
    d.import("gsnord", &refs[5..]);
    let out = sync(&mut d);
    assert!(out.complete && out.trashed == 0, "{out:?}");
    let r = verify(&mut d, VerifyKind::All, false);
    assert!(r.clean, "{r:?}");
    // 10 users, 4 classes, 2 school groups.
    assert_eq!(r.expected, 16, "{r:?}");
    let groups = server.by_external_id("/Groups");
    assert!(groups.contains_key("school:gsmitte") && groups.contains_key("school:gsnord"));
}

/// Issue 16.4: SCIMMY without the enterprise extension: the mapped
/// `organization` is never sent (no PATCH to trash) and verify does not
/// ask for it; a server that declares it gets it.
fn undeclared_attributes_are_neither_sent_nor_compared(kind: Kind) {
    const ORG: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:organization";
    let flavours = match kind {
        Kind::Scim2Server => vec![kind.flavour()],
        Kind::Scimmy => vec![
            kind.flavour(),
            Flavour {
                enterprise: true,
                ..kind.flavour()
            },
        ],
    };
    for f in flavours {
        let declared = f.kind == Kind::Scim2Server || f.enterprise;
        let Some((server, _t, mut d)) = synced(f, 4, &[]) else {
            return;
        };
        // A change that touches every user: with the extension undeclared,
        // the old code PATCHed it and every PATCH went to trash.
        let lines: Vec<String> = roster(4).iter().map(|l| l.replace(",F", ",G")).collect();
        let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
        d.import("gsmitte", &refs);
        let out = sync(&mut d);
        assert!(out.complete && out.trashed == 0, "{f:?}: {out:?}");
        let r = verify(&mut d, VerifyKind::All, false);
        assert!(r.clean, "{f:?}: {r:?}");
        let shown = d.engine.authority_show("idb").unwrap();
        let caps = shown.capabilities.expect("discovered");
        assert!(caps.provider.is_some(), "{f:?}");
        let users = server.by_external_id("/Users");
        let org =
            users["district:1"]["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"]["organization"].clone();
        if declared {
            assert!(shown.dropped.is_empty(), "{f:?}: {:?}", shown.dropped);
            assert_eq!(org, json!("gsmitte"), "{f:?}");
        } else {
            assert_eq!(shown.dropped, vec![ORG.to_string()], "{f:?}");
            assert!(org.is_null(), "{f:?}: {org}");
        }
        assert_eq!(users["district:1"]["name"]["givenName"], "G1");
    }
}

/// Issue 16.5: with on_removal = "delete", a user that leaves is taken out
/// of its school and class groups even on a server that keeps deleted
/// users in groups (scim2-server does).
fn deleting_a_user_leaves_no_member_behind(kind: Kind) {
    let Some((server, _t, mut d)) = synced(kind.flavour(), 4, &["authorities.idb.on_removal=\"delete\""]) else {
        return;
    };
    let lines = roster(4);
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    d.import("gsmitte", &refs[..3]);
    let out = sync(&mut d);
    assert!(out.complete && out.trashed == 0, "{out:?}");
    let users = server.by_external_id("/Users");
    assert!(!users.contains_key("district:4"));
    let ids: BTreeSet<String> = users.values().map(|u| u["id"].as_str().unwrap().to_string()).collect();
    for (ext, g) in server.by_external_id("/Groups") {
        for m in g["members"].as_array().cloned().unwrap_or_default() {
            let v = m["value"].as_str().unwrap().to_string();
            assert!(ids.contains(&v), "{ext} still lists {v}, a deleted user");
        }
    }
    let r = verify(&mut d, VerifyKind::All, false);
    assert!(r.clean, "{r:?}");
}

/// Issue 16.6: a resync of a target that already holds everything sends
/// no write at all; a large one lists the server instead of looking each
/// object up.
fn a_resync_of_an_unchanged_target_writes_nothing(kind: Kind) {
    let Some(server) = ScimServer::start_kind(kind) else {
        return;
    };
    let proxy = FaultProxy::start(server.port);
    let url = format!("{}{}", proxy.url(), server.base);
    let Some((_server, _t, mut d)) = synced_at(server, &url, 60, &[]) else {
        return;
    };
    let c = proxy.counters();
    let before = (
        c.writes.load(Ordering::Relaxed),
        c.bulk.load(Ordering::Relaxed),
        c.lookups.load(Ordering::Relaxed),
    );
    let scheduled = d.engine.resync(Some("idb"), &mut Quiet).expect("resync");
    assert_eq!(scheduled.objects, 63, "{scheduled:?}");
    let out = sync(&mut d);
    assert!(out.complete && out.trashed == 0, "{out:?}");
    assert_eq!(out.authorities[0].applied.get("unchanged"), Some(&63), "{out:?}");
    let after = (
        c.writes.load(Ordering::Relaxed),
        c.bulk.load(Ordering::Relaxed),
        c.lookups.load(Ordering::Relaxed),
    );
    assert_eq!(
        (after.0 - before.0, after.1 - before.1),
        (0, 0),
        "writes, bulk requests"
    );
    assert!(
        after.2 - before.2 < 10,
        "{} lookups for 63 objects: listed, then diffed",
        after.2 - before.2
    );
}

/// Issue 16.2: SCIMMY's own paging (`--raw`) answers a startIndex past the
/// end with the first page again: never asked for, since listings stop at
/// totalResults — verify counts every object once.
#[test]
fn a_server_that_repeats_its_first_page_past_the_end_is_counted_once() {
    let f = Flavour {
        raw: true,
        ..Kind::Scimmy.flavour()
    };
    let Some((server, _t, mut d)) = synced(f, 30, &[]) else {
        return;
    };
    let r = verify(&mut d, VerifyKind::All, false);
    assert!(r.clean, "{r:?}");
    assert_eq!((r.expected, r.actual), (33, 33), "{r:?}");
    // The server really does repeat itself past the end.
    let (_, page) = server.get("/Users?startIndex=40&count=10");
    assert!(!page["Resources"].as_array().unwrap().is_empty(), "{page}");
}

/// Issue 16.2: a server that ignores startIndex and count (always the
/// first 20) makes verify fail naming it, and a group whose member lookup
/// pages goes to trash with it — never a silent success.
#[test]
fn a_server_that_ignores_paging_is_named_not_believed() {
    let Some(upstream) = ScimServer::start() else { return };
    let hostile = Hostile::start(Mode::FilterIgnored, Some(upstream.port), None);
    hostile.set(Mode::IgnorePaging);
    let (_t, token) = token_file();
    let mut sets = scim_authority("idb", &hostile.url(), &token, &["gsmitte"]);
    sets.push("authorities.idb.bulk=false".into());
    let mut d = with_sets_owned(&sets);
    // One class of 30: its member lookup needs two pages of 20.
    let lines: Vec<String> = (1..=30)
        .map(|i| student(&i.to_string(), &format!("F{i}"), &format!("L{i}"), "5a"))
        .collect();
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    d.import("gsmitte", &refs);
    let out = sync(&mut d);
    assert!(out.complete, "{out:?}");
    assert!(out.trashed >= 1, "{out:?}");
    let trash = d.engine.trash_list(None).unwrap();
    assert!(
        trash.iter().any(|t| t.error.contains("ignores startIndex")),
        "{trash:?}"
    );
    let e = d
        .engine
        .verify(
            &VerifyRequest {
                authority: "idb".into(),
                kind: VerifyKind::Users,
                filter: None,
                fix: false,
            },
            &mut Quiet,
        )
        .unwrap_err();
    assert!(e.to_string().contains("ignores startIndex"), "{e}");
}

/// Bulk (RFC 7644 §3.7) where declared: an initial sync of 40 users with
/// classes takes a handful of Bulk requests; `bulk = false` sends one
/// request per operation.
#[test]
fn bulk_where_declared_and_off_when_asked() {
    for bulk in [true, false] {
        let Some(server) = ScimServer::start() else { return };
        let proxy = FaultProxy::start(server.port);
        let extra: Vec<String> = if bulk {
            vec![]
        } else {
            vec!["authorities.idb.bulk=false".into()]
        };
        let refs: Vec<&str> = extra.iter().map(String::as_str).collect();
        let Some((_server, _t, mut d)) = synced_at(server, &proxy.url(), 40, &refs) else {
            return;
        };
        let c = proxy.counters();
        let (writes, requests) = (c.writes.load(Ordering::Relaxed), c.bulk.load(Ordering::Relaxed));
        if bulk {
            assert!((1..=6).contains(&requests), "{requests} Bulk requests");
            assert_eq!(writes, 0, "no single writes");
        } else {
            assert_eq!(requests, 0);
            assert!(writes >= 43, "{writes} single writes");
        }
        let r = verify(&mut d, VerifyKind::All, false);
        assert!(r.clean, "bulk {bulk}: {r:?}");
    }
}

/// Issue 16.1 for the embedded mirror: schools created before their users
/// (as the demo does), one drain, verify clean, nothing in trash.
#[test]
fn the_first_drain_verifies_clean_on_the_embedded_mirror() {
    let mut d = District::with_sets(&["authorities.idb.kind=\"embedded\"", "authorities.idb.schools=[\"*\"]"]);
    for s in ["gsmitte", "gsnord"] {
        d.engine.school_create(s, None).expect("school");
    }
    let lines = roster(10);
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    d.import("gsmitte", &refs[..5]);
    d.import("gsnord", &refs[5..]);
    let out = sync(&mut d);
    assert!(out.complete && out.trashed == 0, "{out:?}");
    let r = verify(&mut d, VerifyKind::All, false);
    assert!(r.clean, "{r:?}");
    assert_eq!(r.expected, 16, "{r:?}");
}
