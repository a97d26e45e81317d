//! Sync at peer grade (issue 16): one scenario suite run against two
//! independent SCIM server implementations — scim2-server (Python) and
//! SCIMMY (Node; no Bulk, no enterprise extension by default, and with
//! `--raw` a server whose paging is broken). Each scenario is a function
//! of the server kind; `on_servers!` makes one test per kind.

use crate::common;

use common::scim::{Flavour, Kind, ScimServer};
use common::{District, scim_authority, student, token_file, with_sets_owned};
use rollcall::engine::jobs::Quiet;
use rollcall::engine::sync::verify::{VerifyKind, VerifyReport, VerifyRequest};
use rollcall::engine::sync::{SyncOptions, SyncOutcome};
use serde_json::json;
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

on_servers!(moved_external_ids_converge_with_the_default_workers);

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

/// A district of `n` students in gsmitte synced to a fresh server.
fn synced(f: Flavour, n: usize, extra: &[&str]) -> Option<(ScimServer, tempfile::TempDir, District)> {
    let server = ScimServer::start_flavour(f)?;
    let (t, token) = token_file();
    let mut sets = scim_authority("idb", &server.url(), &token, &["gsmitte"]);
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
