//! What the benchmarks share: argument parsing, CPU time, an engine on a
//! data dir, and users written straight through the store.
#![allow(dead_code)]

use rollcall::engine::config::LoadOptions;
use rollcall::engine::{Engine, Settings};
use rollcall::model::{Membership, Role, School, User, UserKey, UserState};
use rollcall::store::{Batch, UserChange};
use std::path::Path;

pub mod scim;

pub fn arg<T: std::str::FromStr>(name: &str, default: T) -> T {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Whether the command line names `part` among `parts` (none named: all).
pub fn wants(part: &str, parts: &[&str]) -> bool {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let named: Vec<&String> = args.iter().filter(|a| parts.contains(&a.as_str())).collect();
    named.is_empty() || named.iter().any(|a| *a == part)
}

/// User + system CPU seconds of the waited-for children so far.
pub fn children_cpu_seconds() -> f64 {
    rusage_seconds(libc::RUSAGE_CHILDREN)
}

/// User + system CPU seconds of another (running) process so far, from
/// /proc; 0 when it cannot be read.
pub fn pid_cpu_seconds(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // After "pid (comm) ": state is field 3; utime and stime are 14 and 15.
    let rest = stat.rsplit_once(") ").map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    (ticks(11) + ticks(12)) / hz
}

/// User + system CPU seconds of this process so far.
pub fn cpu_seconds() -> f64 {
    rusage_seconds(libc::RUSAGE_SELF)
}

/// User + system CPU seconds that `getrusage(who)` reports.
fn rusage_seconds(who: libc::c_int) -> f64 {
    let mut u = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage fills the struct it is given; `who` is RUSAGE_SELF
    // or RUSAGE_CHILDREN.
    let u = unsafe {
        libc::getrusage(who, u.as_mut_ptr());
        u.assume_init()
    };
    let t = |v: libc::timeval| v.tv_sec as f64 + v.tv_usec as f64 / 1e6;
    t(u.ru_utime) + t(u.ru_stime)
}

pub fn engine(dir: &Path, sets: &[String]) -> Engine {
    let opts = LoadOptions {
        sets: sets.to_vec(),
        ..LoadOptions::default()
    };
    let settings = Settings::load(&opts, Some(dir.to_path_buf()), false).expect("settings");
    Engine::open(settings).expect("engine")
}

pub fn user(i: usize, school: &str) -> User {
    let now = chrono::Utc::now();
    let mut m = Membership::new(school, [Role::Student].into());
    m.classes.insert(format!("{}a", 5 + i % 6));
    User {
        key: UserKey::new("district", format!("r{i:07}")),
        username: format!("u{i:07}"),
        firstname: format!("Vor{i}"),
        lastname: format!("Nach{i}"),
        email: Some(format!("u{i:07}@schule.example")),
        birthday: None,
        memberships: vec![m],
        disabled: false,
        state: UserState::Active,
        purge_at: None,
        deactivate_at: None,
        password_hash: None,
        created_at: now,
        updated_at: now,
    }
}

/// `n` users in 10 schools, straight through the store.
pub fn populate(e: &mut Engine, n: usize) {
    let schools: Vec<String> = (0..10).map(|s| format!("school{s}")).collect();
    for chunk in (0..n).collect::<Vec<_>>().chunks(20_000) {
        let batch = Batch {
            schools: schools.iter().map(|s| School::new(s.clone())).collect(),
            users: chunk
                .iter()
                .map(|i| UserChange::Create(user(*i, &schools[i % 10])))
                .collect(),
            counters: Vec::new(),
        };
        e.directory_mut().apply(&batch).expect("apply");
    }
}
