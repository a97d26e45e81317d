//! Failures between rollcall and a real SCIM server, injected by a loopback
//! proxy: 500s, 429 with Retry-After, stalls past the timeout, connection
//! resets. Items are retried with back-off, exhausted ones reach trash with
//! their reason, an unreachable authority pauses (items keep their
//! attempts) and resumes, and after `trash requeue` everything converges.

use crate::common;

use common::proxy::{FaultProxy, Faults};
use common::scim::ScimServer;
use common::{District, scim_authority, student, token_file, with_sets_owned};
use rollcall::engine::sync::SyncOutcome;
use rollcall::engine::sync::verify::VerifyKind;
use std::collections::BTreeSet;
use std::sync::atomic::Ordering;
use std::time::Duration;

fn sync(d: &mut District, max_wait: f64) -> SyncOutcome {
    d.sync_for(Duration::from_secs_f64(max_wait))
}

fn roster(n: usize, suffix: &str) -> Vec<String> {
    (1..=n)
        .map(|i| {
            student(
                &i.to_string(),
                &format!("F{i}"),
                &format!("L{i}{suffix}"),
                if i % 2 == 0 { "5a" } else { "5b" },
            )
        })
        .collect()
}

fn import(d: &mut District, lines: &[String]) {
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    d.import("gsmitte", &refs);
}

#[test]
fn faults_are_retried_trashed_paused_and_converge_after_requeue() {
    let Some(server) = ScimServer::start() else { return };
    let mut proxy = FaultProxy::start(server.port);
    let (_t, token) = token_file();
    let mut sets = scim_authority("idb", &proxy.url(), &token, &["gsmitte"]);
    sets.extend([
        "authorities.idb.max_attempts=3".to_string(),
        "authorities.idb.timeout_seconds=0.5".to_string(),
        "authorities.idb.workers=4".to_string(),
    ]);
    let mut d = with_sets_owned(&sets);
    import(&mut d, &roster(30, ""));

    // 1. A hostile network: about 45 % of requests fail one way or another.
    proxy.set(Faults {
        error_500: 0.15,
        throttle_429: 0.10,
        retry_after_secs: 0,
        timeout: 0.05,
        stall: Duration::from_millis(800),
        reset: 0.15,
        ..Faults::default()
    });
    let out = sync(&mut d, 10.0);
    let a = &out.authorities[0];
    assert!(a.retried > 0, "{out:?}");
    assert!(a.trashed > 0, "{out:?}");
    assert_eq!(a.left, 0, "every item is settled: sent or trashed: {out:?}");
    let c = proxy.counters();
    for (what, n) in [
        ("500", &c.error_500),
        ("429", &c.throttle_429),
        ("timeout", &c.timeout),
        ("reset", &c.reset),
    ] {
        assert!(n.load(Ordering::Relaxed) > 0, "no {what} injected");
    }
    let trash = d.engine.trash_list(Some("idb")).expect("trash list");
    assert_eq!(trash.len() as u64, a.trashed);
    for t in &trash {
        assert_eq!(t.attempts, 3, "{t:?}");
        assert_eq!(t.class, "transient", "{t:?}");
        assert!(t.error.contains("gave up after 3 attempts"), "{t:?}");
        assert!(t.first_failure <= t.last_failure);
    }
    let reasons: BTreeSet<String> = trash
        .iter()
        .map(|t| match t.http_status {
            Some(s) => s.to_string(),
            None => "transport".into(),
        })
        .collect();
    assert!(!reasons.is_empty());
    let shown = d.engine.trash_show(&trash[0].item).expect("trash show");
    assert!(!shown.payload.is_null(), "the payload sent is recorded: {shown:?}");
    assert!(
        !shown.payload.to_string().to_lowercase().contains("password"),
        "no secrets in trash"
    );

    // 2. The server goes away: the authority pauses, items keep their attempts.
    proxy.set(Faults::default());
    proxy.down();
    import(&mut d, &roster(30, "x"));
    let out = sync(&mut d, 1.0);
    assert!(!out.complete);
    let why = out.authorities[0].incomplete.clone().unwrap_or_default();
    assert!(why.contains("paused"), "{why}");
    let status = &d.engine.queue_list(Some("idb")).expect("queue list")[0];
    assert!(status.paused.is_some(), "{status:?}");
    assert!(status.depth > 0);
    for item in d.engine.queue_show("idb").expect("queue show") {
        assert_eq!(item.attempts, 0, "an outage spends no attempts: {item:?}");
    }

    // 3. It comes back: resumed, drained.
    proxy.up();
    let out = sync(&mut d, 10.0);
    assert!(out.complete, "{out:?}");
    assert!(d.engine.queue_list(Some("idb")).expect("queue")[0].paused.is_none());

    // 4. Requeue the trash: everything converges on the current state.
    let items: Vec<String> = d
        .engine
        .trash_list(Some("idb"))
        .expect("list")
        .into_iter()
        .map(|t| t.item)
        .collect();
    d.engine.trash_requeue(&items).expect("requeue");
    let out = sync(&mut d, 10.0);
    assert!(out.complete, "{out:?}");
    assert!(d.engine.trash_list(None).expect("list").is_empty());
    let users = server.by_external_id("/Users");
    assert_eq!(users.len(), 30);
    for i in 1..=30 {
        assert_eq!(users[&format!("district:{i}")]["name"]["familyName"], format!("L{i}x"));
    }
    let groups = server.by_external_id("/Groups");
    for g in ["class:gsmitte:5a", "class:gsmitte:5b"] {
        assert_eq!(groups[g]["members"].as_array().map(|m| m.len()), Some(15), "{g}");
    }
    assert_eq!(
        groups["school:gsmitte"]["members"].as_array().map(|m| m.len()),
        Some(30)
    );
}

#[test]
fn retry_after_is_honoured_and_a_requeue_never_reverts_a_newer_change() {
    let Some(server) = ScimServer::start() else { return };
    let proxy = FaultProxy::start(server.port);
    let (_t, token) = token_file();
    let mut sets = scim_authority("idb", &proxy.url(), &token, &["gsmitte"]);
    sets.push("authorities.idb.mapping.school_groups=false".into());
    sets.push("authorities.idb.max_attempts=1".into());
    let mut d = with_sets_owned(&sets);
    d.import("gsmitte", &[&student("1", "Anna", "Alt", "")]);
    proxy.set(Faults {
        throttle_429: 1.0,
        retry_after_secs: 30,
        ..Faults::default()
    });
    // One attempt allowed: the 429 sends it to trash at once.
    let out = sync(&mut d, 0.0);
    assert_eq!(out.authorities[0].trashed, 1, "{out:?}");
    let t = &d.engine.trash_list(None).expect("trash")[0];
    assert_eq!(t.http_status, Some(429));

    // Anna is renamed and sent; then the stale trash item is requeued. The
    // sender reads the current state: the rename is never reverted.
    proxy.set(Faults::default());
    d.import("gsmitte", &[&student("1", "Anna", "Neu", "")]);
    let shown = d.engine.trash_show(&t.item).expect("show");
    assert!(
        shown.diff.iter().any(|f| f.path.ends_with("familyName")),
        "the diff shows the rename: {:?}",
        shown.diff
    );
    assert_eq!(sync(&mut d, 0.0).authorities[0].applied.get("created"), Some(&1));
    let items: Vec<String> = d
        .engine
        .trash_list(None)
        .expect("list")
        .into_iter()
        .map(|t| t.item)
        .collect();
    d.engine.trash_requeue(&items).expect("requeue");
    let out = sync(&mut d, 0.0);
    assert_eq!(out.authorities[0].applied.get("unchanged"), Some(&1), "{out:?}");
    assert_eq!(
        server.by_external_id("/Users")["district:1"]["name"]["familyName"],
        "Neu"
    );

    // With attempts left, a throttled item waits at least Retry-After.
    proxy.set(Faults {
        throttle_429: 1.0,
        retry_after_secs: 30,
        ..Faults::default()
    });
    d.reopen(
        &sets
            .iter()
            .map(String::as_str)
            .filter(|s| !s.contains("max_attempts"))
            .collect::<Vec<_>>(),
        false,
    );
    d.engine.schedule_user("a.alt").expect("schedule");
    let out = sync(&mut d, 0.0);
    assert!(!out.complete);
    assert!(
        out.authorities[0]
            .incomplete
            .as_deref()
            .unwrap_or("")
            .contains("back-off"),
        "{out:?}"
    );
    let waiting = &d.engine.queue_show("idb").expect("show")[0];
    assert_eq!(waiting.state, "retrying");
    assert_eq!(waiting.attempts, 1);
    let wait = waiting.not_before.expect("not_before") - chrono::Utc::now();
    assert!(wait.num_seconds() >= 25, "Retry-After 30 s honoured: {wait}");
}

/// The fault drain of RELIABILITY.md at a few hundred items (the full
/// 10,000 is `examples/fault_drain.rs`): every fault kind at a combined
/// 30 %, trash requeued after recovery, `verify all` clean.
#[test]
fn every_fault_kind_at_30_percent_converges_after_requeue_and_verify_is_clean() {
    let Some(server) = ScimServer::start() else { return };
    let r = common::fault_drain::run(
        &server,
        &common::fault_drain::Plan {
            users: 240,
            class_size: 20,
            workers: 8,
            lookup_batch: 50,
            max_attempts: 3,
            fault_rate: 0.3,
            verbose: false,
        },
    );
    eprintln!("{r:?}");
    assert!(r.items >= 250, "{r:?}");
    assert!(r.retried > 0 && r.trashed > 0, "faults were retried and trashed: {r:?}");
    assert_eq!(r.requeued as u64, r.trashed);
    assert_eq!(r.server_users, 240);
}

#[test]
fn a_server_that_refuses_or_filters_gets_members_looked_up_one_by_one() {
    let Some(server) = ScimServer::start() else { return };
    let proxy = FaultProxy::start(server.port);
    proxy.set(Faults {
        refuse_or_filters: true,
        ..Faults::default()
    });
    let (_t, token) = token_file();
    let mut sets = scim_authority("idb", &proxy.url(), &token, &["gsmitte"]);
    sets.push("authorities.idb.workers=2".to_string());
    let mut d = with_sets_owned(&sets);
    import(&mut d, &roster(30, ""));

    // The default lookup (50 members per `or` filter) is refused with 400;
    // the target falls back to one `eq` per member, nothing goes to trash.
    let out = sync(&mut d, 10.0);
    assert!(out.complete, "{out:?}");
    assert!(d.engine.trash_list(None).expect("trash").is_empty());
    let refused = proxy.counters().refused_or.load(Ordering::Relaxed);
    assert!((1..=2).contains(&refused), "refused once per worker at most: {refused}");
    let members = |server: &ScimServer, class: &str| -> usize {
        server.by_external_id("/Groups")[&format!("class:gsmitte:{class}")]["members"]
            .as_array()
            .map_or(0, Vec::len)
    };
    assert_eq!((members(&server, "5a"), members(&server, "5b")), (15, 15));

    // Configured to look up one by one, it never tries an `or`.
    sets.push("authorities.idb.lookup_batch=1".to_string());
    d.reopen(&sets.iter().map(String::as_str).collect::<Vec<_>>(), false);
    let mut moved = roster(30, "");
    moved[1] = student("2", "F2", "L2", "5b");
    import(&mut d, &moved);
    let out = sync(&mut d, 10.0);
    assert!(out.complete, "{out:?}");
    assert_eq!(proxy.counters().refused_or.load(Ordering::Relaxed), refused);
    assert_eq!((members(&server, "5a"), members(&server, "5b")), (14, 16));
}

/// A class sent while its members cannot be created must not count as
/// delivered: it waits for them (retried, then trash beside them), and a
/// requeue of the trash leaves the class with every member.
#[test]
fn a_group_sent_before_its_members_exist_is_not_done_until_they_are_in_it() {
    let Some(server) = ScimServer::start() else { return };
    let proxy = FaultProxy::start(server.port);
    let (_t, token) = token_file();
    let mut sets = scim_authority("idb", &proxy.url(), &token, &["gsmitte"]);
    sets.extend([
        "authorities.idb.max_attempts=2".to_string(),
        "authorities.idb.bulk=false".to_string(),
        "authorities.idb.workers=2".to_string(),
    ]);
    let mut d = with_sets_owned(&sets);
    import(&mut d, &roster(6, ""));
    proxy.set(Faults {
        refuse_user_creates: true,
        ..Faults::default()
    });
    let out = sync(&mut d, 10.0);
    let a = &out.authorities[0];
    assert_eq!(a.left, 0, "{out:?}");
    let trash = d.engine.trash_list(Some("idb")).expect("trash list");
    let trashed: BTreeSet<String> = trash.iter().map(|t| t.object.clone()).collect();
    for class in ["class:gsmitte:5a", "class:gsmitte:5b"] {
        assert!(
            trashed.contains(class),
            "a class whose members could not be created is not done: {trashed:?}"
        );
    }
    let class = trash
        .iter()
        .find(|t| t.object == "class:gsmitte:5a")
        .expect("class in trash");
    assert!(class.error.contains("not on the target"), "{class:?}");

    proxy.set(Faults::default());
    let items: Vec<String> = trash.into_iter().map(|t| t.item).collect();
    d.engine.trash_requeue(&items).expect("requeue");
    let out = sync(&mut d, 10.0);
    assert!(out.complete, "{out:?}");
    assert!(d.engine.trash_list(None).expect("list").is_empty());
    let groups = server.by_external_id("/Groups");
    for g in ["class:gsmitte:5a", "class:gsmitte:5b"] {
        assert_eq!(
            groups[g]["members"].as_array().map(|m| m.len()),
            Some(3),
            "{g}: {}",
            groups[g]
        );
    }
    let v = d.verify("idb", VerifyKind::All, false);
    assert!(v.clean, "{:?} {:?}", v.missing.first(), v.different.first());
}
