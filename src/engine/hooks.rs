//! Hooks: executables an admin configures in `[hooks]`, run before and after
//! the changes an import, a restore or a purge makes (UCS@school's hooks):
//! one JSON document on stdin, a clean environment, a time limit that kills
//! the hook's whole process group. A pre-hook that fails vetoes its change;
//! a post-hook's failure is reported, never undone.

use crate::engine::users::UserView;
use crate::model::User;
use serde::{Deserialize, Serialize};
use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// `[hooks]`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HooksConfig {
    pub timeout_secs: u64,
    pub pre_create: Vec<String>,
    pub post_create: Vec<String>,
    pub pre_modify: Vec<String>,
    pub post_modify: Vec<String>,
    pub pre_move: Vec<String>,
    pub post_move: Vec<String>,
    pub pre_to_limbo: Vec<String>,
    pub post_to_limbo: Vec<String>,
    pub pre_purge: Vec<String>,
    pub post_purge: Vec<String>,
}

/// What a hook is run for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HookAction {
    Create,
    Modify,
    /// A school added or removed, or a restore from limbo.
    Move,
    ToLimbo,
    Purge,
}

impl HookAction {
    pub fn as_str(self) -> &'static str {
        match self {
            HookAction::Create => "create",
            HookAction::Modify => "modify",
            HookAction::Move => "move",
            HookAction::ToLimbo => "to_limbo",
            HookAction::Purge => "purge",
        }
    }
}

/// Before or after the write.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Pre,
    Post,
}

/// The document a hook reads on stdin.
#[derive(Debug, Serialize)]
pub struct HookInput<'a> {
    /// `pre_create`, `post_move`, …
    pub hook: String,
    pub action: HookAction,
    pub phase: Phase,
    pub run_id: &'a str,
    /// The school of the import (or of the restore); `null` for a purge.
    pub school: Option<&'a str>,
    /// The import's word for the change (`created`, `added_school`, …), or
    /// `restored` / `purged` for the limbo commands.
    pub change: &'a str,
    /// The feed line, for rows of a feed.
    pub line: Option<u64>,
    /// The user as stored before (`null` for a create).
    pub user_before: Option<UserView>,
    /// The user as written (`null` for a purge).
    pub user_after: Option<UserView>,
}

/// A hook that failed: which one, for whom, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct HookFailure {
    pub hook: String,
    pub program: String,
    pub username: String,
    pub line: Option<u64>,
    pub message: String,
}

/// How much of a hook's output is kept for the message.
const OUTPUT_CAP: usize = 4096;

impl HooksConfig {
    /// Checks the key values; the error names the key.
    pub fn check(&self) -> Result<(), (String, String)> {
        if self.timeout_secs == 0 {
            return Err(("hooks.timeout_secs".into(), "must be at least 1".into()));
        }
        for (key, list) in self.all() {
            for p in list {
                if !Path::new(p).is_absolute() {
                    return Err((
                        format!("hooks.{key}"),
                        format!("'{p}' is not an absolute path; name the executable with its full path"),
                    ));
                }
            }
        }
        Ok(())
    }

    fn all(&self) -> [(&'static str, &Vec<String>); 10] {
        [
            ("pre_create", &self.pre_create),
            ("post_create", &self.post_create),
            ("pre_modify", &self.pre_modify),
            ("post_modify", &self.post_modify),
            ("pre_move", &self.pre_move),
            ("post_move", &self.post_move),
            ("pre_to_limbo", &self.pre_to_limbo),
            ("post_to_limbo", &self.post_to_limbo),
            ("pre_purge", &self.pre_purge),
            ("post_purge", &self.post_purge),
        ]
    }

    /// The executables of one hook.
    pub fn programs(&self, action: HookAction, phase: Phase) -> &[String] {
        let key = hook_name(action, phase);
        self.all()
            .into_iter()
            .find(|(k, _)| *k == key)
            .map_or(&[][..], |(_, v)| v.as_slice())
    }

    /// Whether any hook is configured for this phase.
    pub fn any(&self, phase: Phase) -> bool {
        self.all()
            .iter()
            .any(|(k, v)| !v.is_empty() && k.starts_with(if phase == Phase::Pre { "pre_" } else { "post_" }))
    }
}

fn hook_name(action: HookAction, phase: Phase) -> String {
    let p = match phase {
        Phase::Pre => "pre",
        Phase::Post => "post",
    };
    format!("{p}_{}", action.as_str())
}

/// Runs hooks for one engine action.
pub struct HookRunner<'a> {
    cfg: &'a HooksConfig,
    /// The working directory of every hook (the data dir).
    dir: &'a Path,
    run_id: &'a str,
}

/// One change a hook is told about.
pub struct HookEvent<'a> {
    pub action: HookAction,
    pub change: &'a str,
    pub school: Option<&'a str>,
    pub line: Option<u64>,
    pub before: Option<&'a User>,
    pub after: Option<&'a User>,
}

impl<'a> HookRunner<'a> {
    pub fn new(cfg: &'a HooksConfig, dir: &'a Path, run_id: &'a str) -> Self {
        HookRunner { cfg, dir, run_id }
    }

    /// Runs the hooks of one phase for one change, in order; stops at the
    /// first failure of a pre-hook. Returns the failures.
    pub fn run(&self, phase: Phase, ev: &HookEvent<'_>) -> Vec<HookFailure> {
        let programs = self.cfg.programs(ev.action, phase);
        if programs.is_empty() {
            return Vec::new();
        }
        let hook = hook_name(ev.action, phase);
        let input = HookInput {
            hook: hook.clone(),
            action: ev.action,
            phase,
            run_id: self.run_id,
            school: ev.school,
            change: ev.change,
            line: ev.line,
            user_before: ev.before.map(UserView::from),
            user_after: ev.after.map(UserView::from),
        };
        let doc = serde_json::to_vec(&input).unwrap_or_default();
        let username = ev.after.or(ev.before).map(|u| u.username.clone()).unwrap_or_default();
        let mut failures = Vec::new();
        for program in programs {
            if let Err(message) = self.run_one(program, &hook, &doc) {
                failures.push(HookFailure {
                    hook: hook.clone(),
                    program: program.clone(),
                    username: username.clone(),
                    line: ev.line,
                    message,
                });
                if phase == Phase::Pre {
                    break;
                }
            }
        }
        failures
    }

    fn run_one(&self, program: &str, hook: &str, doc: &[u8]) -> Result<(), String> {
        let timeout = Duration::from_secs(self.cfg.timeout_secs);
        let mut child = Command::new(program)
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .env("LANG", "C.UTF-8")
            .env("ROLLCALL_HOOK", hook)
            .current_dir(self.dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own process group, so a timeout kills what it started too.
            .process_group(0)
            .spawn()
            .map_err(|e| format!("cannot start {program}: {e}"))?;
        // Feed stdin and drain the outputs on threads: a hook that does not
        // read its input, or writes a lot, must not block us.
        let stdin = child.stdin.take();
        let doc = doc.to_vec();
        let writer = std::thread::spawn(move || {
            if let Some(mut s) = stdin {
                let _ = s.write_all(&doc);
            }
        });
        let out = child.stdout.take().map(capture);
        let err = child.stderr.take().map(capture);
        let status = wait(&mut child, timeout);
        let _ = writer.join();
        // A grandchild that left the process group may hold the pipes open:
        // its output is not waited for.
        let grace = Duration::from_millis(500);
        let stderr = err.and_then(|rx| rx.recv_timeout(grace).ok()).unwrap_or_default();
        drop(out);
        let detail = |s: &str| {
            let t = s.trim();
            if t.is_empty() {
                String::new()
            } else {
                format!(
                    ": {}",
                    t.chars().filter(|c| !c.is_control() || *c == ' ').collect::<String>()
                )
            }
        };
        match status {
            Ok(s) if s.success() => Ok(()),
            Ok(s) => Err(match s.code() {
                Some(code) => format!("{program} exited with {code}{}", detail(&stderr)),
                None => format!("{program} was killed by a signal{}", detail(&stderr)),
            }),
            Err(()) => Err(format!(
                "{program} did not finish within {} s (hooks.timeout_secs) and was killed",
                timeout.as_secs()
            )),
        }
    }
}

/// Reads a pipe to its end on a thread, keeping the first [`OUTPUT_CAP`]
/// bytes, and sends them when the pipe closes.
fn capture(mut r: impl Read + Send + 'static) -> std::sync::mpsc::Receiver<String> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut kept = Vec::new();
        let mut buf = [0u8; 8192];
        while let Ok(n) = r.read(&mut buf) {
            if n == 0 {
                break;
            }
            let room = OUTPUT_CAP.saturating_sub(kept.len());
            kept.extend_from_slice(&buf[..n.min(room)]);
        }
        let _ = tx.send(String::from_utf8_lossy(&kept).into_owned());
    });
    rx
}

/// Waits for the child up to `timeout`; then kills its process group.
#[allow(unsafe_code)] // reviewed: kill(2) of the hook's process group
fn wait(child: &mut Child, timeout: Duration) -> Result<std::process::ExitStatus, ()> {
    let start = Instant::now();
    let mut pause = Duration::from_millis(1);
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Ok(status),
            Ok(None) if start.elapsed() < timeout => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(50));
            }
            _ => break,
        }
    }
    if let Ok(pid) = i32::try_from(child.id()) {
        // SAFETY: kill(2) with a negative pid signals the process group the
        // child leads (process_group(0) above); no memory is touched.
        unsafe {
            libc::kill(-pid, libc::SIGKILL);
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    Err(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn script(dir: &Path, name: &str, body: &str) -> String {
        use std::os::unix::fs::PermissionsExt;
        let p = dir.join(name);
        std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        p.display().to_string()
    }

    fn event() -> HookEvent<'static> {
        HookEvent {
            action: HookAction::Create,
            change: "created",
            school: Some("gsa"),
            line: Some(2),
            before: None,
            after: None,
        }
    }

    #[test]
    fn a_hook_reads_the_document_in_a_clean_environment() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("seen");
        let hook = script(tmp.path(), "h", &format!("cat > {0}; env | sort >> {0}", out.display()));
        let cfg = HooksConfig {
            timeout_secs: 5,
            post_create: vec![hook],
            ..HooksConfig::default()
        };
        // SAFETY: tests in this module do not read the environment.
        #[allow(unsafe_code)]
        unsafe {
            std::env::set_var("ROLLCALL_TEST_SECRET", "s3cret")
        };
        let failures = HookRunner::new(&cfg, tmp.path(), "run-1").run(Phase::Post, &event());
        assert!(failures.is_empty(), "{failures:?}");
        let seen = std::fs::read_to_string(&out).unwrap();
        assert!(
            seen.starts_with("{\"hook\":\"post_create\",\"action\":\"create\",\"phase\":\"post\""),
            "{seen}"
        );
        assert!(seen.contains("ROLLCALL_HOOK=post_create"), "{seen}");
        assert!(!seen.contains("s3cret"), "the environment leaks: {seen}");
    }

    #[test]
    fn failures_and_timeouts_are_reported() {
        let tmp = tempfile::tempdir().unwrap();
        let fails = script(tmp.path(), "fails", "echo 'no mailbox quota' >&2; exit 3");
        let hangs = script(tmp.path(), "hangs", "sleep 30 & sleep 30");
        let cfg = HooksConfig {
            timeout_secs: 1,
            pre_create: vec![fails.clone(), hangs.clone()],
            post_create: vec![hangs.clone()],
            ..HooksConfig::default()
        };
        let r = HookRunner::new(&cfg, tmp.path(), "run-1");
        let f = r.run(Phase::Pre, &event());
        assert_eq!(f.len(), 1, "a pre-hook failure stops the others: {f:?}");
        assert!(
            f[0].message.contains("exited with 3: no mailbox quota"),
            "{}",
            f[0].message
        );
        let start = Instant::now();
        let f = r.run(Phase::Post, &event());
        assert!(start.elapsed() < Duration::from_secs(5));
        assert!(f[0].message.contains("did not finish within 1 s"), "{}", f[0].message);
    }
}
