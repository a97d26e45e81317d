//! Build script: puts the commit into `rollcall --version` as
//! `BUILD_COMMIT`: the short hash of HEAD, or "unknown" outside a git
//! checkout (a source tarball: set `BUILD_COMMIT` to name it). Not
//! `ROLLCALL_…`: cargo also sets it when it runs tests, and every
//! `ROLLCALL_*` variable is a config layer.

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
        .filter(|s| !s.is_empty())
}

fn main() {
    let commit = std::env::var("BUILD_COMMIT")
        .ok()
        .or_else(|| git(&["rev-parse", "--short=12", "HEAD"]));
    println!(
        "cargo:rustc-env=BUILD_COMMIT={}",
        commit.as_deref().unwrap_or("unknown")
    );
    println!("cargo:rerun-if-env-changed=BUILD_COMMIT");
    // A new commit or checkout moves HEAD's reflog.
    for path in ["HEAD", "logs/HEAD"] {
        if let Some(p) = git(&["rev-parse", "--git-path", path]) {
            println!("cargo:rerun-if-changed={p}");
        }
    }
}
