//! Disk-full sweep (issue 18.8): the real `rollcall` binary on a small
//! tmpfs, at 10 levels of free space, then with the space given back.
//!
//!     cargo build --release --bin rollcall
//!     sudo cargo run --release --example disk_full -- [--users 2000] [--size-mib 48]
//!
//! Needs root (it mounts a tmpfs; unmounted at the end). Per level: a fresh
//! data dir on the tmpfs with an embedded mirror authority, a filler file
//! leaving that much space free, then `import` of a feed of `--users`
//! students, `sync run --once` and `queue list`. Recorded: exit codes,
//! whether each failure message names a file and the free space, temp files
//! left, run records still `running`. Then the filler is removed and the
//! same import and sync run again: they must succeed, `verify users` must be
//! clean, no temp file may be left, and no run may say `running` or
//! `interrupted` for an import that committed. Prints a Markdown table;
//! exits 1 when a level broke an invariant.
#![allow(clippy::unwrap_used, unsafe_code)] // test and benchmark code: panics are failures; libc calls reviewed

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn binary() -> PathBuf {
    std::env::var_os("ROLLCALL_BIN").map(PathBuf::from).unwrap_or_else(|| {
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
        target.join("release/rollcall")
    })
}

fn rollcall(data: &Path, args: &[&str]) -> Output {
    Command::new(binary())
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .env_remove("ROLLCALL_DATA_DIR")
        .env("HOME", data.parent().unwrap_or(data))
        .output()
        .expect("run rollcall")
}

fn free_bytes(path: &Path) -> u64 {
    let out = Command::new("df")
        .args(["-B1", "--output=avail"])
        .arg(path)
        .output()
        .expect("df");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .nth(1)
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or(0)
}

/// Fills the file system of `dir` until `leave` bytes are free.
fn fill(dir: &Path, leave: u64) {
    let free = free_bytes(dir);
    let size = free.saturating_sub(leave);
    let status = Command::new("fallocate")
        .args(["-l", &size.to_string()])
        .arg(dir.join("filler"))
        .status()
        .expect("fallocate");
    assert!(status.success(), "fallocate");
}

fn count_files(dir: &Path, pred: &dyn Fn(&Path) -> bool) -> usize {
    let mut n = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if pred(&p) {
                n += 1;
            }
        }
    }
    n
}

fn temp_files(data: &Path) -> usize {
    count_files(data, &|p| {
        let name = p
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        p.components().any(|c| c.as_os_str() == ".tmp") || name.ends_with(".tmp")
    })
}

fn runs_with(data: &Path, status: &str) -> usize {
    let out = rollcall(data, &["--json", "runs", "list", "--limit", "100"]);
    serde_json::from_slice::<Value>(&out.stdout)
        .ok()
        .and_then(|v| v.as_array().map(|a| a.iter().filter(|r| r["status"] == status).count()))
        .unwrap_or(0)
}

fn first_error(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .find(|l| l.contains("error") || l.contains("warning"))
        .unwrap_or("")
        .chars()
        .take(160)
        .collect()
}

/// Whether a failure message says where and how much is free.
fn explains(out: &Output) -> bool {
    let err = String::from_utf8_lossy(&out.stderr);
    out.status.success() || !err.to_lowercase().contains("space") || err.contains("free on the file system of")
}

fn main() {
    let users = arg("--users", 2000) as usize;
    let size_mib = arg("--size-mib", 48);
    let base = tempfile::tempdir().expect("tempdir");
    let mnt = base.path().join("mnt");
    std::fs::create_dir_all(&mnt).unwrap();
    let status = Command::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size={size_mib}m"), "tmpfs"])
        .arg(&mnt)
        .status()
        .expect("mount");
    assert!(status.success(), "mount a tmpfs (needs root)");
    let feed = base.path().join("feed.csv");
    let mut text = String::from("record_uid,firstname,lastname,email,birthday,classes\n");
    for i in 0..users {
        text.push_str(&format!(
            "u{i},Vorname{i},Nachname{i},u{i}@schule.example,2010-01-01,{}{}\n",
            5 + i % 5,
            ["a", "b", "c"][i % 3]
        ));
    }
    std::fs::write(&feed, text).unwrap();
    let config = "[authorities.mirror]\nkind = \"embedded\"\nschools = [\"*\"]\n";
    let import = |data: &Path| {
        rollcall(
            data,
            &[
                "--json",
                "import",
                "--school",
                "gs-nord",
                "--role",
                "student",
                feed.to_str().unwrap(),
            ],
        )
    };
    // What a whole run needs: measured once with plenty of space.
    let data = mnt.join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("rollcall.toml"), config).unwrap();
    let before = free_bytes(&mnt);
    assert!(import(&data).status.success());
    assert!(rollcall(&data, &["sync", "run", "--once"]).status.success());
    let need = before - free_bytes(&mnt);
    std::fs::remove_dir_all(&data).unwrap();
    println!(
        "rollcall disk-full sweep: {users} users, tmpfs {size_mib} MiB, a full import + sync needs {:.1} MiB\n",
        need as f64 / 1048576.0
    );
    println!(
        "| free | import | sync | queue list | messages name file + free space | temp files left | runs `running` | after space is back |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- |");
    let mut broken = 0;
    for level in [0u64, 1, 2, 5, 10, 20, 40, 60, 80, 100] {
        let leave = need * level / 100 + if level == 0 { 0 } else { 4096 };
        std::fs::create_dir_all(&data).unwrap();
        std::fs::write(data.join("rollcall.toml"), config).unwrap();
        // The data dir exists with its layout before the disk fills.
        let _ = rollcall(&data, &["queue", "list"]);
        fill(&mnt, leave);
        let imp = import(&data);
        let sync = rollcall(&data, &["--json", "sync", "run", "--once"]);
        let list = rollcall(&data, &["queue", "list"]);
        let said = explains(&imp) && explains(&sync) && explains(&list);
        let temps = temp_files(&data);
        let running = runs_with(&data, "running");
        std::fs::remove_file(mnt.join("filler")).unwrap();
        // Space is back: everything must converge.
        let imp2 = import(&data);
        let sync2 = rollcall(&data, &["--json", "sync", "run", "--once"]);
        let verify = rollcall(&data, &["verify", "users", "--authority", "mirror"]);
        let left = temp_files(&data);
        let still_running = runs_with(&data, "running");
        let imported_ok = imp.status.success();
        let interrupted_ok = imported_ok && runs_with(&data, "interrupted") > 0;
        let ok = imp2.status.success()
            && sync2.status.success()
            && verify.status.success()
            && left == 0
            && still_running == 0
            && !interrupted_ok
            && said;
        if !ok {
            broken += 1;
        }
        let word = |o: &Output| match o.status.code() {
            Some(0) => "ok".to_string(),
            Some(c) => format!("exit {c}: {}", first_error(o).replace('|', "/")),
            None => "killed".to_string(),
        };
        println!(
            "| {} KiB ({level}%) | {} | {} | {} | {} | {temps} | {running} | {} |",
            leave / 1024,
            word(&imp),
            word(&sync),
            if list.status.success() { "ok" } else { "failed" },
            if said { "yes" } else { "NO" },
            if ok {
                "converged: import, sync, verify clean, no temp file, no run left running".to_string()
            } else {
                format!(
                    "BROKEN: import {:?} sync {:?} verify {:?}, {left} temp files, {still_running} running",
                    imp2.status.code(),
                    sync2.status.code(),
                    verify.status.code()
                )
            }
        );
        std::fs::remove_dir_all(&data).unwrap();
    }
    let _ = Command::new("umount").arg(&mnt).status();
    println!("\n{} of 10 levels held", 10 - broken);
    if broken > 0 {
        std::process::exit(1);
    }
}
