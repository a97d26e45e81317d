//! The inbox's `failed/` folder: a refused or failed feed waits there, at
//! its inbox path, beside `<name>.error.txt` (its run and the reason), for
//! an admin: `rollcall intake retry FILE [--force]` imports it again
//! (audited; the mass-removal guard is only ever forced there). Also what
//! `rollcall intake list` shows: waiting, in-progress and failed files.

use super::claim::Claim;
use super::{InboxPaths, feed_of, inbox};
use crate::engine::import::{ImportOutcome, ImportRequest};
use crate::engine::jobs::Progress;
use crate::engine::runs::Origin;
use crate::engine::{Engine, EngineError, EngineResult, Settings};
use crate::model::Role;
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// Why a file is in `failed/`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// Its path relative to the inbox.
    pub file: String,
    pub school: Option<String>,
    pub roles: Vec<Role>,
    pub run_id: Option<String>,
    pub at: DateTime<Utc>,
    pub reason: String,
}

impl Failure {
    fn text(&self, retry_path: &Path) -> String {
        format!(
            "file: {}\nschool: {}\nrole: {}\nrun: {}\nat: {}\nretry: rollcall intake retry {} [--force]\nreason: {}\n",
            self.file,
            self.school.as_deref().unwrap_or("-"),
            if self.roles.is_empty() {
                "-".to_string()
            } else {
                self.roles.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(",")
            },
            self.run_id
                .as_deref()
                .unwrap_or("none (refused before an import run started)"),
            self.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            retry_path.display(),
            self.reason.replace('\n', " "),
        )
    }

    /// Reads an `.error.txt` back.
    fn parse(text: &str) -> Failure {
        let field = |key: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(key).and_then(|v| v.strip_prefix(": ")))
                .map(str::to_string)
        };
        let some = |v: Option<String>| v.filter(|v| v != "-" && !v.starts_with("none"));
        Failure {
            file: field("file").unwrap_or_default(),
            school: some(field("school")),
            roles: some(field("role"))
                .map(|r| r.split(',').filter_map(|r| r.parse().ok()).collect())
                .unwrap_or_default(),
            run_id: some(field("run")),
            at: field("at")
                .and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
                .map(|t| t.with_timezone(&Utc))
                .unwrap_or_default(),
            reason: field("reason").unwrap_or_default(),
        }
    }
}

fn error_txt(file: &Path) -> PathBuf {
    let mut name = file.file_name().unwrap_or_default().to_os_string();
    name.push(".error.txt");
    file.with_file_name(name)
}

/// Moves `from` to `failed/<failure.file>` (replacing an older failed
/// feed of the same name: a newer feed supersedes it) and writes its
/// `.error.txt`. Returns where it went.
pub fn put(paths: &InboxPaths, from: &Path, failure: &Failure) -> io::Result<PathBuf> {
    let to = paths.failed().join(&failure.file);
    if let Some(parent) = to.parent() {
        crate::engine::paths::create_private_dir(parent)?;
    }
    let txt = error_txt(&to);
    let tmp = txt.with_extension("txt.tmp");
    fs::write(&tmp, failure.text(&to))?;
    fs::rename(from, &to)?;
    fs::rename(&tmp, &txt)?;
    Ok(to)
}

/// A file waiting in the inbox.
#[derive(Clone, Debug, Serialize)]
pub struct WaitingFile {
    pub file: String,
    /// `None`: the name does not match `intake.pattern` (it moves to
    /// `failed/` once it settled).
    pub school: Option<String>,
    pub roles: Vec<Role>,
    pub bytes: u64,
    pub modified: Option<DateTime<Utc>>,
}

/// A file being imported.
#[derive(Clone, Debug, Serialize)]
pub struct ProcessingFile {
    pub file: String,
    pub school: String,
    pub roles: Vec<Role>,
    pub claimed_at: DateTime<Utc>,
}

/// A file in `failed/`.
#[derive(Clone, Debug, Serialize)]
pub struct FailedFile {
    pub file: String,
    pub path: String,
    pub school: Option<String>,
    pub run_id: Option<String>,
    pub at: Option<DateTime<Utc>>,
    pub reason: String,
}

/// `rollcall intake list`.
#[derive(Clone, Debug, Serialize)]
pub struct IntakeListing {
    pub inbox: String,
    pub waiting: Vec<WaitingFile>,
    pub processing: Vec<ProcessingFile>,
    pub failed: Vec<FailedFile>,
}

pub fn list(settings: &Settings) -> EngineResult<IntakeListing> {
    let paths = InboxPaths::of(settings);
    let depth = super::pattern::Pattern::parse(&settings.config.intake.pattern)
        .map(|p| p.depth())
        .unwrap_or(1);
    let mut waiting: Vec<WaitingFile> = inbox::walk(&paths.root, depth)
        .into_iter()
        .map(|(rel, meta)| {
            let feed = feed_of(&settings.config, &rel);
            WaitingFile {
                file: rel.display().to_string(),
                school: feed.as_ref().map(|f| f.school.clone()),
                roles: feed.map(|f| f.roles).unwrap_or_default(),
                bytes: meta.len(),
                modified: meta.modified().ok().map(DateTime::<Utc>::from),
            }
        })
        .collect();
    waiting.sort_by(|a, b| a.modified.cmp(&b.modified).then(a.file.cmp(&b.file)));
    let processing = Claim::found_quietly(&paths)
        .into_iter()
        .map(|c| ProcessingFile {
            file: c.rel,
            school: c.school,
            roles: c.roles,
            claimed_at: c.claimed_at,
        })
        .collect();
    Ok(IntakeListing {
        inbox: paths.root.display().to_string(),
        waiting,
        processing,
        failed: failed_files(&paths),
    })
}

/// The feeds in `failed/`, oldest failure first.
pub fn failed_files(paths: &InboxPaths) -> Vec<FailedFile> {
    let root = paths.failed();
    let mut out = Vec::new();
    let mut stack = vec![root.clone()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = fs::read_dir(&dir) else { continue };
        for e in entries.filter_map(|e| e.ok()) {
            let path = e.path();
            let name = e.file_name().to_string_lossy().to_string();
            if path.is_dir() {
                if out.len() < 100_000 && !name.starts_with('.') {
                    stack.push(path);
                }
                continue;
            }
            if name.ends_with(".error.txt") || name.ends_with(".txt.tmp") || name.starts_with('.') {
                continue;
            }
            let failure = fs::read_to_string(error_txt(&path)).ok().map(|t| Failure::parse(&t));
            out.push(FailedFile {
                file: path.strip_prefix(&root).unwrap_or(&path).display().to_string(),
                path: path.display().to_string(),
                school: failure.as_ref().and_then(|f| f.school.clone()),
                run_id: failure.as_ref().and_then(|f| f.run_id.clone()),
                at: failure.as_ref().map(|f| f.at),
                reason: failure
                    .map(|f| f.reason)
                    .unwrap_or_else(|| "no .error.txt beside it".into()),
            });
        }
    }
    out.sort_by(|a, b| a.at.cmp(&b.at).then(a.file.cmp(&b.file)));
    out
}

/// What `rollcall intake retry` did.
#[derive(Clone, Debug, Serialize)]
pub struct RetryOutcome {
    pub file: String,
    /// Whether the file left `failed/` (imported).
    pub imported: bool,
    pub import: ImportOutcome,
}

impl Engine {
    /// Imports a file of `failed/` again; `force` overrides the
    /// mass-removal guard. Imported: the file and its `.error.txt` are
    /// removed. Refused or failed again: its `.error.txt` says why now.
    pub fn intake_retry(
        &mut self,
        file: &Path,
        force: bool,
        progress: &mut dyn Progress,
    ) -> EngineResult<RetryOutcome> {
        self.check_writable("intake retry")?;
        let paths = InboxPaths::of(&self.settings);
        let failed_root = paths.failed();
        let candidates = [file.to_path_buf(), failed_root.join(file)];
        let path = candidates
            .iter()
            .find(|p| p.is_file())
            .ok_or_else(|| {
                EngineError::NotFound(format!(
                    "{} is not a file in the failed intake folder {} (see `rollcall intake list`)",
                    file.display(),
                    failed_root.display()
                ))
            })?
            .clone();
        let (canon, canon_root) = (
            path.canonicalize().map_err(super::io_err(&path))?,
            failed_root.canonicalize().map_err(super::io_err(&failed_root))?,
        );
        let rel = canon
            .strip_prefix(&canon_root)
            .ok()
            .filter(|r| !r.as_os_str().is_empty())
            .filter(|_| !canon.to_string_lossy().ends_with(".error.txt"))
            .ok_or_else(|| {
                EngineError::Usage(format!(
                    "{} is not a feed in the failed intake folder {}",
                    file.display(),
                    failed_root.display()
                ))
            })?
            .to_path_buf();
        let recorded = fs::read_to_string(error_txt(&canon)).ok().map(|t| Failure::parse(&t));
        let by_name = feed_of(&self.settings.config, &rel);
        let school = recorded
            .as_ref()
            .and_then(|f| f.school.clone())
            .or_else(|| by_name.as_ref().map(|f| f.school.clone()))
            .ok_or_else(|| {
                EngineError::Usage(format!(
                    "{} does not match intake.pattern '{}': rename it and drop it into the inbox again, or import it with `rollcall import`",
                    rel.display(),
                    self.settings.config.intake.pattern
                ))
            })?;
        let roles = match (&recorded, &by_name) {
            (Some(f), _) if f.school.is_some() => f.roles.clone(),
            (_, Some(n)) => n.roles.clone(),
            _ => Vec::new(),
        };
        let req = ImportRequest {
            school: school.clone(),
            roles: roles.clone(),
            file: canon.clone(),
            format: by_name.and_then(|n| n.format),
            force,
            ..Default::default()
        };
        let details = serde_json::json!({
            "file": rel.display().to_string(), "school": school, "force": force,
        });
        let previous = self.runs.clone();
        self.set_origin(Origin::Inbox);
        let result = self.import(&req, progress);
        self.runs = previous;
        let failure = |run_id: Option<String>, reason: String| Failure {
            file: rel.display().to_string(),
            school: Some(school.clone()),
            roles: roles.clone(),
            run_id,
            at: Utc::now(),
            reason,
        };
        match result {
            Ok(outcome) => {
                let imported = outcome.refused.is_none();
                if imported {
                    fs::remove_file(&canon).map_err(super::io_err(&canon))?;
                    let _ = fs::remove_file(error_txt(&canon));
                } else {
                    let f = failure(
                        Some(outcome.run_id.clone()),
                        format!("refused: {}", outcome.refused.clone().unwrap_or_default()),
                    );
                    let _ = fs::write(error_txt(&canon), f.text(&canon));
                }
                self.audit.record(
                    "intake retry",
                    details,
                    &format!(
                        "run {}: {}",
                        outcome.run_id,
                        if imported { "imported" } else { "refused" }
                    ),
                );
                Ok(RetryOutcome {
                    file: rel.display().to_string(),
                    imported,
                    import: outcome,
                })
            }
            Err(e) => {
                let _ = fs::write(error_txt(&canon), failure(None, e.to_string()).text(&canon));
                self.audit.record("intake retry", details, &format!("failed: {e}"));
                Err(e)
            }
        }
    }
}
