//! Kill -9 trials of the directory change listener: each trial imports a
//! district into a fresh base on one throwaway slapd (with syncprov), starts
//! `rollcall listen`, lets a foreign `ldapmodify` modify, add and delete
//! users while the listener is killed with SIGKILL at random moments and
//! started again, and checks that no change was lost (see
//! `tests/common/listen_trial.rs` for the exact check). Prints one line per
//! trial and a summary; exits 1 when any change was lost.
//!
//!     cargo build --release --bin rollcall
//!     cargo run --release --example listen_trials -- [--trials 50] [--users 200] [--changes 400] [--kills 3] [--pace-ms 2] [--seed 1] [--bin PATH]
#![allow(clippy::unwrap_used, unsafe_code)] // test and benchmark code: panics are failures; libc calls reviewed

#[path = "../tests/common/listen_trial.rs"]
mod listen_trial;
#[path = "../tests/common/slapd.rs"]
mod slapd;

use std::path::{Path, PathBuf};
use std::time::Duration;

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let trials = arg("--trials", 50);
    let spec = listen_trial::Spec {
        users: arg("--users", 200) as usize,
        changes: arg("--changes", 400) as usize,
        kills: arg("--kills", 3) as usize,
        pace: Duration::from_millis(arg("--pace-ms", 2)),
        seed: arg("--seed", 1),
    };
    let bin = std::env::args()
        .position(|a| a == "--bin")
        .and_then(|i| std::env::args().nth(i + 1))
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let target = std::env::var("CARGO_TARGET_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
            target.join("release/rollcall")
        });
    assert!(
        bin.is_file(),
        "{} is missing: cargo build --release --bin rollcall (or pass --bin)",
        bin.display()
    );
    let server = slapd::Slapd::start().expect("slapd (set SLAPD_BIN)");
    println!(
        "listener kill -9 trials: {trials} trials, {} users, {} foreign changes every {:?}, {} kills each",
        spec.users, spec.changes, spec.pace, spec.kills
    );
    let (mut failed, mut kills, mut journaled, mut changes) = (0, 0, 0, 0);
    for t in 0..trials {
        let o = listen_trial::run(
            &server,
            &bin,
            &listen_trial::Spec {
                seed: spec.seed + t,
                ..spec.clone()
            },
        );
        kills += o.kills;
        journaled += o.journaled;
        changes += o.changes;
        let verdict = if o.lost.is_empty() { "ok" } else { "LOST" };
        println!(
            "trial {:>3}: {verdict}  {} changes, {} kills, {} journal entries, {:.1} s",
            t + 1,
            o.changes,
            o.kills,
            o.journaled,
            o.seconds
        );
        for l in &o.lost {
            println!("    lost: {l}");
        }
        if !o.lost.is_empty() {
            failed += 1;
        }
    }
    println!(
        "summary: {} of {trials} trials held; {changes} foreign changes, {kills} kills, {journaled} journal entries",
        trials - failed
    );
    if failed > 0 {
        std::process::exit(1);
    }
}
