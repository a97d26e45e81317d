//! Who is acting (OS user and `SUDO_USER`) and the append-only audit log of
//! every admin action, one JSON object per line in `logs/audit.log`.

use chrono::Utc;
use serde::Serialize;
use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

/// The person behind an action.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Actor {
    pub user: String,
    pub sudo_user: Option<String>,
}

impl Actor {
    /// The OS user of this process and, under sudo, who invoked sudo.
    pub fn current() -> Self {
        let user = std::env::var("USER")
            .or_else(|_| std::env::var("LOGNAME"))
            .ok()
            .filter(|u| !u.is_empty())
            .or_else(uid_name)
            .unwrap_or_else(|| "unknown".to_string());
        let sudo_user = std::env::var("SUDO_USER").ok().filter(|u| !u.is_empty());
        Actor { user, sudo_user }
    }
}

/// The user name of the real uid, from /proc and /etc/passwd.
fn uid_name() -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let uid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))?
        .split_whitespace()
        .next()?
        .to_string();
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.len() > 2 && f[2] == uid)
        .map(|f| f[0].to_string())
        .or(Some(format!("uid:{uid}")))
}

#[derive(Clone, Debug)]
pub struct AuditLog {
    path: PathBuf,
    actor: Actor,
}

#[derive(Serialize)]
struct Entry<'a> {
    at: String,
    user: &'a str,
    sudo_user: Option<&'a str>,
    action: &'a str,
    details: &'a serde_json::Value,
    outcome: &'a str,
}

impl AuditLog {
    pub fn new(path: PathBuf, actor: Actor) -> Self {
        AuditLog { path, actor }
    }

    pub fn actor(&self) -> &Actor {
        &self.actor
    }

    /// Appends one line. A failure to audit is reported to the log but never
    /// hides the action's own result.
    pub fn record(&self, action: &str, details: serde_json::Value, outcome: &str) {
        let entry = Entry {
            at: Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            user: &self.actor.user,
            sudo_user: self.actor.sudo_user.as_deref(),
            action,
            details: &details,
            outcome,
        };
        let Ok(mut line) = serde_json::to_string(&entry) else {
            return;
        };
        line.push('\n');
        let written = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&self.path)
            .and_then(|mut f| f.write_all(line.as_bytes()));
        if let Err(e) = written {
            tracing::error!(path = %self.path.display(), error = %e, "cannot write the audit log");
        }
    }
}
