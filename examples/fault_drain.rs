//! The 30 % fault drain at full size (RELIABILITY.md, "Target faults"):
//! 10,000 queued items (users and their class groups) drained to a real
//! scim2-server through the fault proxy with every fault kind at a combined
//! 30 % of requests; trash requeued after recovery; `verify all` clean.
//! The scenario is `tests/common/fault_drain.rs`, which
//! `tests/sync/faults.rs` also runs at a few hundred items.
//!
//!     SCIM2_SERVER_BIN=.venv/bin/scim2-server \
//!       cargo run --release --example fault_drain -- [--users 9630] [--class-size 25] \
//!       [--workers 8] [--lookup-batch 50] [--max-attempts 3] [--rate 0.3]
//!
//! Prints a line per round and the figures; panics (exit 101) naming what
//! did not converge.
#![allow(clippy::unwrap_used, unsafe_code)] // test and benchmark code: panics are failures; libc calls reviewed

#[path = "../tests/common/mod.rs"]
mod common;

use common::fault_drain::{Plan, run};
use common::scim::ScimServer;
use std::time::Instant;

fn arg(name: &str, default: f64) -> f64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let plan = Plan {
        users: arg("--users", 9630.0) as usize,
        class_size: arg("--class-size", 25.0) as usize,
        workers: arg("--workers", 8.0) as usize,
        lookup_batch: arg("--lookup-batch", 50.0) as usize,
        max_attempts: arg("--max-attempts", 3.0) as u32,
        fault_rate: arg("--rate", 0.3),
        verbose: true,
    };
    let server = ScimServer::start().expect("scim2-server (set SCIM2_SERVER_BIN)");
    println!("fault drain: {plan:?}");
    let t = Instant::now();
    let r = run(&server, &plan);
    println!("items queued: {}", r.items);
    println!(
        "faulty drain: {:.0} s in {} rounds; sent {}, retried {}, trashed {}",
        r.faulty_seconds, r.faulty_rounds, r.sent, r.retried, r.trashed
    );
    let total: u64 = r.injected.iter().map(|(_, n)| n).sum();
    // Garbled answers were forwarded (and counted there) too.
    let garbled = r
        .injected
        .iter()
        .find(|(k, _)| *k == "malformed")
        .map_or(0, |(_, n)| *n);
    let requests = total - garbled + r.forwarded;
    println!(
        "injected: {total} faults in {requests} requests ({:.1} %): {}",
        100.0 * total as f64 / requests.max(1) as f64,
        r.injected
            .iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "recovery: {} requeued, {} sent, {:.0} s",
        r.requeued, r.recovery_sent, r.recovery_seconds
    );
    println!(
        "verify all: clean, {} objects expected, {:.1} s; server: {} users, {} groups",
        r.verify_expected, r.verify_seconds, r.server_users, r.server_groups
    );
    println!("total {:.0} s", t.elapsed().as_secs_f64());
}
