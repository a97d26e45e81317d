//! The fault drain (RELIABILITY.md, "Target faults"): a district's users
//! and class groups are queued for a SCIM authority on a real scim2-server
//! behind the fault proxy; the drain runs with every fault kind the proxy
//! has at a combined 30 % of requests (500, 429 with Retry-After, stalls
//! past the client timeout, resets, injected 409s, garbled bodies: 5 %
//! each). Items that exhaust their attempts land in trash. Then the faults
//! stop, the trash is requeued, the queue drains, and `verify all` must be
//! clean with the server holding exactly the directory's users. Run small
//! by `tests/sync/faults.rs`, at 10,000 items by `examples/fault_drain.rs`.
//! Panics (with what broke) when anything does not converge.

use super::proxy::{FaultProxy, Faults};
use super::scim::ScimServer;
use super::{District, scim_authority, student, token_file, with_sets_owned};
use rollcall::engine::jobs::Quiet;
use rollcall::engine::sync::verify::VerifyKind;
use rollcall::engine::sync::{SyncOptions, SyncOutcome};
use std::time::{Duration, Instant};

pub const SCHOOLS: [&str; 3] = ["s1", "s2", "s3"];

#[derive(Clone, Debug)]
pub struct Plan {
    /// Users in all (spread over three schools).
    pub users: usize,
    /// Students per class (every class is a group item).
    pub class_size: usize,
    pub workers: usize,
    /// Class members looked up per request (`lookup_batch`).
    pub lookup_batch: usize,
    /// Attempts before an item goes to trash.
    pub max_attempts: u32,
    /// Combined share of requests that fail.
    pub fault_rate: f64,
    /// Prints a line per round.
    pub verbose: bool,
}

#[derive(Debug, Default)]
pub struct Report {
    /// Items queued before the faulty drain.
    pub items: u64,
    pub faulty_rounds: usize,
    pub faulty_seconds: f64,
    pub sent: u64,
    pub retried: u64,
    pub trashed: u64,
    /// (kind, injected).
    pub injected: Vec<(&'static str, u64)>,
    pub forwarded: u64,
    pub requeued: usize,
    pub recovery_seconds: f64,
    pub recovery_sent: u64,
    pub verify_seconds: f64,
    pub verify_expected: u64,
    pub server_users: usize,
    pub server_groups: usize,
}

fn sync(d: &mut District, max_wait: f64) -> SyncOutcome {
    d.engine
        .sync_run(
            &SyncOptions {
                max_wait: Duration::from_secs_f64(max_wait),
                ..SyncOptions::default()
            },
            &mut Quiet,
        )
        .expect("sync run")
}

/// Imports `plan.users` students, a third per school, in classes of
/// `plan.class_size`.
fn populate(d: &mut District, plan: &Plan) {
    let per_school = plan.users.div_ceil(SCHOOLS.len());
    for (s, school) in SCHOOLS.iter().enumerate() {
        let first = s * per_school + 1;
        let last = ((s + 1) * per_school).min(plan.users);
        let lines: Vec<String> = (first..=last)
            .map(|uid| {
                let i = uid - first;
                student(
                    &format!("u{uid}"),
                    &format!("Kim{}", uid % 97),
                    &format!("Lee{uid}"),
                    &format!("c{}", i / plan.class_size.max(1)),
                )
            })
            .collect();
        let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
        d.import(school, &refs);
    }
}

/// Sends until nothing is pending or retrying (everything sent or in
/// trash); panics after `max_rounds`.
fn drain(d: &mut District, report: &mut Report, verbose: bool, max_rounds: usize) {
    for round in 1..=max_rounds {
        let out = sync(d, 5.0);
        let a = &out.authorities[0];
        report.sent += a.sent;
        report.retried += a.retried;
        report.trashed += a.trashed;
        report.faulty_rounds = round;
        if verbose {
            println!(
                "  round {round}: sent {}, retried {}, trashed {}, left {} ({:.1} s){}",
                a.sent,
                a.retried,
                a.trashed,
                a.left,
                out.seconds,
                a.incomplete.as_deref().map(|w| format!(": {w}")).unwrap_or_default()
            );
        }
        let status = &d.engine.queue_list(Some("idb")).expect("queue list")[0];
        if status.depth == 0 && status.claimed == 0 {
            return;
        }
    }
    panic!("the faulty drain did not settle every item in {max_rounds} rounds");
}

/// Runs the whole scenario against `server`.
pub fn run(server: &ScimServer, plan: &Plan) -> Report {
    let mut report = Report::default();
    let proxy = FaultProxy::start(server.port);
    let (_t, token) = token_file();
    let mut sets = scim_authority("idb", &proxy.url(), &token, &SCHOOLS);
    sets.extend([
        format!("authorities.idb.max_attempts={}", plan.max_attempts),
        "authorities.idb.timeout_seconds=0.5".to_string(),
        format!("authorities.idb.workers={}", plan.workers),
        format!("authorities.idb.lookup_batch={}", plan.lookup_batch),
        // School groups of thousands of members: scim2-server re-validates
        // the whole group on every change. Class groups stay.
        "authorities.idb.mapping.school_groups=false".to_string(),
    ]);
    let mut d = with_sets_owned(&sets);
    populate(&mut d, plan);
    d.engine.distribute(Some("idb")).expect("distribute");
    report.items = d.engine.queue_list(Some("idb")).expect("queue list")[0].depth;

    // 1. The faulty drain.
    let each = plan.fault_rate / 6.0;
    proxy.set(Faults {
        error_500: each,
        throttle_429: each,
        retry_after_secs: 1,
        timeout: each,
        stall: Duration::from_millis(800),
        reset: each,
        conflict_409: each,
        malformed: each,
        ..Faults::default()
    });
    let t = Instant::now();
    drain(&mut d, &mut report, plan.verbose, 200);
    report.faulty_seconds = t.elapsed().as_secs_f64();
    let c = proxy.counters();
    report.injected = c.injected();
    report.forwarded = c.forwarded.load(std::sync::atomic::Ordering::Relaxed);
    for (kind, n) in &report.injected {
        assert!(*n > 0, "no {kind} fault was injected: {report:?}");
    }
    let trash = d.engine.trash_list(Some("idb")).expect("trash list");
    assert_eq!(trash.len() as u64, report.trashed, "every trashed item is in trash");

    // 2. Recovery: faults off, the trash requeued, drained. The client
    // timeout was short so that stalls fail fast; scim2-server itself
    // takes seconds to resolve a class's members (an `externalId eq … or …`
    // listing scans every user) once it holds thousands, and it serves one
    // request at a time: with many workers and a short timeout the requests
    // that time out still cost it their work, and every later one times
    // out too. So: two workers, a generous timeout.
    proxy.set(Faults::default());
    sets.push("authorities.idb.timeout_seconds=120".to_string());
    sets.push(format!("authorities.idb.workers={}", plan.workers.min(2)));
    d.reopen(&sets.iter().map(String::as_str).collect::<Vec<_>>(), false);
    let t = Instant::now();
    let items: Vec<String> = trash.into_iter().map(|t| t.item).collect();
    for chunk in items.chunks(500) {
        report.requeued += d.engine.trash_requeue(chunk).expect("trash requeue").len();
    }
    let mut complete = false;
    for _ in 0..20 {
        let out = sync(&mut d, 5.0);
        report.recovery_sent += out.authorities[0].sent;
        if out.complete {
            complete = true;
            break;
        }
    }
    report.recovery_seconds = t.elapsed().as_secs_f64();
    assert!(complete, "the recovery drain did not complete: {report:?}");
    let trash = d.engine.trash_list(None).expect("trash list");
    assert!(trash.is_empty(), "trash after recovery: {trash:?}");

    // 3. Verify: no differences, and the server holds exactly our users.
    let t = Instant::now();
    let v = d.verify("idb", VerifyKind::All, false);
    report.verify_seconds = t.elapsed().as_secs_f64();
    report.verify_expected = v.expected;
    assert!(
        v.clean,
        "verify after recovery: {:?} missing, {} unexpected, {} different; first: {:?} {:?} {:?}",
        v.counts,
        v.unexpected.len(),
        v.different.len(),
        v.missing.first(),
        v.unexpected.first(),
        v.different.first()
    );
    let users = server.by_external_id("/Users");
    report.server_users = users.len();
    report.server_groups = server.by_external_id("/Groups").len();
    assert_eq!(users.len(), plan.users, "users on the server");
    for i in 1..=plan.users {
        let u = &users[&format!("district:u{i}")];
        assert_eq!(u["name"]["familyName"], format!("Lee{i}"), "{u}");
    }
    report
}
