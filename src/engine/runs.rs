//! Run records: every import and purge (and later sync and verify) gets
//! `runs/<run-id>/` with `run.json` (who, when, arguments, counts, status),
//! `log.txt`, `summary.csv` and, for imports, the archived input file.
//!
//! A run in progress is marked by `runs/.active/<run-id>`, written whole
//! (temp file, rename) and locked by its process for as long as the run is
//! open; a marker nobody holds belongs to a run whose process ended
//! without finishing it, whatever its PID (containers reuse PIDs).

use super::audit::Actor;
use super::paths::create_private_dir;
use chrono::{DateTime, Utc};
use rand::Rng;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum RunError {
    #[error("run {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("no run '{0}' (see `rollcall runs list`)")]
    NotFound(String),
    #[error("run '{0}' has no archived input (only imports keep their input)")]
    NoInput(String),
    #[error("run {path}: run.json is damaged: {message}")]
    Damaged { path: String, message: String },
}

fn io_err(path: &Path) -> impl Fn(io::Error) -> RunError + '_ {
    move |source| RunError::Io {
        path: path.display().to_string(),
        source: crate::store::space::explain(path, source),
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunKind {
    Import,
    Purge,
    Sync,
    Verify,
}

impl RunKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RunKind::Import => "import",
            RunKind::Purge => "purge",
            RunKind::Sync => "sync",
            RunKind::Verify => "verify",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Running,
    Ok,
    Refused,
    Failed,
    /// The process ended without finishing the run (killed, crashed, power
    /// lost); found and marked by the next engine that opened the data dir.
    Interrupted,
    /// Stopped on request (a job cancelled in the console, Ctrl-C) before
    /// it finished; what it did until then is kept and counted.
    Cancelled,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Ok => "ok",
            RunStatus::Refused => "refused",
            RunStatus::Failed => "failed",
            RunStatus::Interrupted => "interrupted",
            RunStatus::Cancelled => "cancelled",
        }
    }
}

/// Where a run was started from: the command line, the console, the
/// intake drop folder or the intake upload API.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    #[default]
    Cli,
    Console,
    Inbox,
    Http,
}

impl Origin {
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Cli => "cli",
            Origin::Console => "console",
            Origin::Inbox => "inbox",
            Origin::Http => "http",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    pub id: String,
    pub kind: RunKind,
    pub status: RunStatus,
    pub user: String,
    pub sudo_user: Option<String>,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub args: serde_json::Value,
    pub school: Option<String>,
    pub dry_run: bool,
    pub counts: BTreeMap<String, u64>,
    /// Refusal reason or failure.
    pub message: Option<String>,
    /// File name of the archived input inside the run dir.
    pub input: Option<String>,
    /// Row errors: line and message.
    #[serde(default)]
    pub errors: Vec<RunRowError>,
    /// Where the run was started from (absent in records written before
    /// runs recorded it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<Origin>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunRowError {
    pub line: Option<u64>,
    pub record_uid: Option<String>,
    pub message: String,
}

/// The runs folder.
#[derive(Clone, Debug)]
pub struct Runs {
    dir: PathBuf,
    /// Recorded in every run this handle starts.
    origin: Origin,
}

/// A run in progress.
pub struct Run {
    pub record: RunRecord,
    dir: PathBuf,
    log: Option<File>,
    /// The locked "in progress" marker; its lock is the run's ownership.
    marker: Option<File>,
}

/// Run ids sort by start time: `20261121-201530-123-import-a1b2`.
fn new_id(kind: RunKind, now: DateTime<Utc>) -> String {
    let tag: u16 = rand::thread_rng().r#gen();
    format!("{}-{}-{tag:04x}", now.format("%Y%m%d-%H%M%S-%3f"), kind.as_str())
}

/// Run ids come from the command line: allow nothing that could leave the
/// runs folder.
fn valid_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 80 && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

impl Runs {
    pub fn new(dir: PathBuf) -> Self {
        Runs {
            dir,
            origin: Origin::default(),
        }
    }

    /// Where the runs started through this handle come from.
    pub fn set_origin(&mut self, origin: Origin) {
        self.origin = origin;
    }

    pub fn start(
        &self,
        kind: RunKind,
        actor: &Actor,
        args: serde_json::Value,
        school: Option<&str>,
        dry_run: bool,
    ) -> Result<Run, RunError> {
        let now = Utc::now();
        let id = new_id(kind, now);
        // Marks the run as owned by this process until it finishes, before
        // anything of it is written: a process killed at any later point
        // leaves a marker for `recover_interrupted` to find.
        let active = self.active_dir();
        create_private_dir(&active).map_err(io_err(&active))?;
        let marker_path = active.join(&id);
        let marker = super::lock::locked_file(&marker_path, std::process::id().to_string().as_bytes())
            .map_err(io_err(&marker_path))?;
        let dir = self.dir.join(&id);
        create_private_dir(&dir).map_err(io_err(&dir))?;
        let log_path = dir.join("log.txt");
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(io_err(&log_path))?;
        let run = Run {
            record: RunRecord {
                id,
                kind,
                status: RunStatus::Running,
                user: actor.user.clone(),
                sudo_user: actor.sudo_user.clone(),
                started_at: now,
                finished_at: None,
                args,
                school: school.map(str::to_string),
                dry_run,
                counts: BTreeMap::new(),
                message: None,
                input: None,
                errors: Vec::new(),
                origin: Some(self.origin),
            },
            dir,
            log: Some(log),
            marker: Some(marker),
        };
        run.save()?;
        Ok(run)
    }

    fn active_dir(&self) -> PathBuf {
        self.dir.join(".active")
    }

    /// Removes temp files nobody writes any more: markers never renamed
    /// into place, and `run.json` temp files of runs no process holds.
    /// Returns how many.
    pub fn clean_temp(&self) -> u64 {
        let mut removed = 0;
        let active = self.active_dir();
        for e in fs::read_dir(&active).into_iter().flatten().flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            let path = e.path();
            if name.starts_with('.') {
                if super::lock::stale_temp(&path).unwrap_or(false) && fs::remove_file(&path).is_ok() {
                    removed += 1;
                }
            } else if !super::lock::is_held(&path).unwrap_or(true) {
                let tmp = self.dir.join(&name).join(".run.json.tmp");
                if valid_id(&name) && fs::remove_file(&tmp).is_ok() {
                    removed += 1;
                }
            }
        }
        removed
    }

    /// Runs whose process died before finishing them (`kill -9`, a crash):
    /// marked `interrupted` with a message, their half-written `run.json`
    /// temp file removed. Returns how many. Cheap: only the runs still marked
    /// active are looked at.
    pub fn recover_interrupted(&self) -> Result<usize, RunError> {
        let active = self.active_dir();
        let entries = match fs::read_dir(&active) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(io_err(&active)(e)),
        };
        let mut recovered = 0;
        for e in entries.filter_map(|e| e.ok()) {
            let Ok(id) = e.file_name().into_string() else { continue };
            let marker = e.path();
            if id.starts_with('.') {
                // A marker's temp file: its writer died before the rename.
                if super::lock::stale_temp(&marker).map_err(io_err(&marker))? {
                    let _ = fs::remove_file(&marker);
                }
                continue;
            }
            if let Some((run_id, status)) = id.split_once('.') {
                // A run that ended when its record could not be written.
                if valid_id(run_id) && !super::lock::is_held(&marker).map_err(io_err(&marker))? {
                    self.close_deferred(run_id, status, &marker)?;
                }
                continue;
            }
            if !valid_id(&id) || super::lock::is_held(&marker).map_err(io_err(&marker))? {
                continue;
            }
            let pid: Option<i32> = fs::read_to_string(&marker).ok().and_then(|t| t.trim().parse().ok());
            let dir = self.dir.join(&id);
            let tmp = dir.join(".run.json.tmp");
            if tmp.exists() {
                fs::remove_file(&tmp).map_err(io_err(&tmp))?;
            }
            if !dir.join("run.json").exists() {
                // Killed before its first record was written: nothing but
                // an empty log to keep.
                if dir.is_dir() {
                    fs::remove_dir_all(&dir).map_err(io_err(&dir))?;
                }
                fs::remove_file(&marker).map_err(io_err(&marker))?;
                continue;
            }
            match self.show(&id) {
                Ok(mut record) if record.status == RunStatus::Running => {
                    record.status = RunStatus::Interrupted;
                    record.message = Some(format!(
                        "process {} ended without finishing this run (killed or crashed); nothing it did not commit was written — run it again",
                        pid.map(|p| p.to_string()).unwrap_or_else(|| "?".into())
                    ));
                    let run = Run {
                        record,
                        dir,
                        log: None,
                        marker: None,
                    };
                    run.save()?;
                    tracing::warn!(run = %id, "marked interrupted: its process ended without finishing it");
                    recovered += 1;
                }
                _ => {}
            }
            fs::remove_file(&marker).map_err(io_err(&marker))?;
        }
        Ok(recovered)
    }

    /// Records the outcome a run left in its marker's name (see
    /// [`Run::defer_finish`]).
    fn close_deferred(&self, id: &str, status: &str, marker: &Path) -> Result<(), RunError> {
        let status: RunStatus = match serde_json::from_value(serde_json::Value::String(status.to_string())) {
            Ok(s) => s,
            Err(_) => return Ok(()),
        };
        if let Ok(mut record) = self.show(id)
            && record.status == RunStatus::Running
        {
            let at = fs::metadata(marker)
                .and_then(|m| m.modified())
                .map(DateTime::<Utc>::from)
                .unwrap_or_else(|_| Utc::now());
            record.status = status;
            record.finished_at = Some(at);
            record.message = Some(record.message.take().map_or_else(
                || "recorded late: the disk was full when the run ended".to_string(),
                |m| format!("{m} (recorded late: the disk was full when the run ended)"),
            ));
            let run = Run {
                record,
                dir: self.dir.join(id),
                log: None,
                marker: None,
            };
            run.save()?;
        }
        fs::remove_file(marker).map_err(io_err(marker))
    }

    pub fn dir_of(&self, id: &str) -> Result<PathBuf, RunError> {
        if !valid_id(id) {
            return Err(RunError::NotFound(id.to_string()));
        }
        let dir = self.dir.join(id);
        if dir.join("run.json").is_file() {
            Ok(dir)
        } else {
            Err(RunError::NotFound(id.to_string()))
        }
    }

    pub fn show(&self, id: &str) -> Result<RunRecord, RunError> {
        let path = self.dir_of(id)?.join("run.json");
        let text = fs::read_to_string(&path).map_err(io_err(&path))?;
        serde_json::from_str(&text).map_err(|e| RunError::Damaged {
            path: path.display().to_string(),
            message: e.to_string(),
        })
    }

    /// The run's log.
    pub fn log_text(&self, id: &str) -> Result<String, RunError> {
        let path = self.dir_of(id)?.join("log.txt");
        fs::read_to_string(&path).map_err(io_err(&path))
    }

    /// The archived input, decompressed: exactly the bytes received.
    pub fn input(&self, id: &str) -> Result<Box<dyn io::Read>, RunError> {
        let rec = self.show(id)?;
        let name = rec.input.ok_or_else(|| RunError::NoInput(id.to_string()))?;
        let path = self.dir_of(id)?.join(&name);
        let f = File::open(&path).map_err(io_err(&path))?;
        Ok(if name.ends_with(".gz") {
            Box::new(flate2::read::GzDecoder::new(io::BufReader::new(f)))
        } else {
            Box::new(io::BufReader::new(f))
        })
    }

    /// Deletes runs that started more than `days` days before `now`, at most
    /// once a day (a marker file remembers the last pass). Returns how many.
    pub fn prune(&self, days: u32, now: DateTime<Utc>) -> Result<usize, RunError> {
        let marker = self.dir.join(".pruned");
        let today = now.format("%Y%m%d").to_string();
        if fs::read_to_string(&marker).is_ok_and(|d| d.trim() == today) {
            return Ok(0);
        }
        let cutoff = (now - chrono::Duration::days(i64::from(days)))
            .format("%Y%m%d")
            .to_string();
        let mut removed = 0;
        if let Ok(entries) = fs::read_dir(&self.dir) {
            for e in entries.filter_map(|e| e.ok()) {
                let Ok(name) = e.file_name().into_string() else {
                    continue;
                };
                // Ids start with the start date: 20261121-…
                if valid_id(&name)
                    && name.len() > 8
                    && name[..8] < *cutoff
                    && name[..8].bytes().all(|b| b.is_ascii_digit())
                {
                    let path = e.path();
                    fs::remove_dir_all(&path).map_err(io_err(&path))?;
                    removed += 1;
                }
            }
        }
        fs::write(&marker, &today).map_err(io_err(&marker))?;
        if removed > 0 {
            tracing::info!(removed, days, "pruned old runs");
        }
        Ok(removed)
    }

    /// The runs in progress right now (their markers are held), any process.
    pub fn active(&self) -> Result<Vec<RunRecord>, RunError> {
        let active = self.active_dir();
        let entries = match fs::read_dir(&active) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_err(&active)(e)),
        };
        let mut out = Vec::new();
        for e in entries.filter_map(|e| e.ok()) {
            let Ok(id) = e.file_name().into_string() else { continue };
            if !valid_id(&id) || !super::lock::is_held(&e.path()).unwrap_or(false) {
                continue;
            }
            if let Ok(rec) = self.show(&id)
                && rec.status == RunStatus::Running
            {
                out.push(rec);
            }
        }
        out.sort_unstable_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }

    /// Runs started at or after `since`, newest first, filtered (only their
    /// records are read).
    pub fn list_since(
        &self,
        since: DateTime<Utc>,
        filter: &dyn Fn(&RunRecord) -> bool,
    ) -> Result<Vec<RunRecord>, RunError> {
        // Ids start with their start time in a sortable form.
        let from = since.format("%Y%m%d-%H%M%S-%3f").to_string();
        let mut ids: Vec<String> = match fs::read_dir(&self.dir) {
            Ok(entries) => entries
                .filter_map(|e| e.ok())
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|n| valid_id(n) && n.as_str() >= from.as_str())
                .collect(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_err(&self.dir)(e)),
        };
        ids.sort_unstable_by(|a, b| b.cmp(a));
        Ok(ids
            .iter()
            .filter_map(|id| self.show(id).ok())
            .filter(|r| filter(r))
            .collect())
    }

    /// Runs newest first, filtered, at most `limit`.
    pub fn list(&self, filter: &dyn Fn(&RunRecord) -> bool, limit: usize) -> Result<Vec<RunRecord>, RunError> {
        let mut ids: Vec<String> = match fs::read_dir(&self.dir) {
            Ok(entries) => entries
                .filter_map(|e| e.ok())
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|n| valid_id(n))
                .collect(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_err(&self.dir)(e)),
        };
        ids.sort_unstable_by(|a, b| b.cmp(a));
        let mut out = Vec::new();
        for id in ids {
            if out.len() >= limit {
                break;
            }
            match self.show(&id) {
                Ok(rec) if filter(&rec) => out.push(rec),
                Ok(_) | Err(RunError::NotFound(_)) => {}
                Err(e) => tracing::warn!(run = %id, error = %e, "skipping unreadable run"),
            }
        }
        Ok(out)
    }
}

impl Run {
    pub fn id(&self) -> &str {
        &self.record.id
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes run.json atomically (temp file + rename).
    pub fn save(&self) -> Result<(), RunError> {
        let path = self.dir.join("run.json");
        let tmp = self.dir.join(".run.json.tmp");
        let text = serde_json::to_vec_pretty(&self.record).map_err(|e| RunError::Damaged {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        fs::write(&tmp, text).map_err(io_err(&tmp))?;
        fs::rename(&tmp, &path).map_err(io_err(&path))
    }

    /// One line in the run's log (and in the main log).
    pub fn log(&mut self, line: &str) {
        tracing::info!(run = %self.record.id, "{line}");
        if let Some(f) = self.log.as_mut() {
            let stamp = Utc::now().format("%Y-%m-%dT%H:%M:%S%.3fZ");
            if writeln!(f, "{stamp} {line}").is_err() {
                self.log = None;
            }
        }
    }

    /// The archive's file name for an input file.
    pub fn archive_name(input: &Path) -> String {
        let ext = input
            .extension()
            .and_then(|e| e.to_str())
            .filter(|e| e.chars().all(|c| c.is_ascii_alphanumeric()) && e.len() <= 8)
            .unwrap_or("dat");
        format!("input.{ext}.gz")
    }

    /// Compresses the input into the run dir, byte for byte as received.
    /// Needs no `&mut` so it can run beside the import; record the name
    /// with [`Run::set_input`] when done.
    pub fn archive(dir: &Path, input: &Path) -> Result<String, RunError> {
        let name = Self::archive_name(input);
        let dest = dir.join(&name);
        let mut src = File::open(input).map_err(io_err(input))?;
        let out = File::create(&dest).map_err(io_err(&dest))?;
        let mut gz = flate2::write::GzEncoder::new(io::BufWriter::new(out), flate2::Compression::fast());
        io::copy(&mut src, &mut gz).map_err(io_err(&dest))?;
        gz.finish().and_then(|mut w| w.flush()).map_err(io_err(&dest))?;
        Ok(name)
    }

    pub fn set_input(&mut self, name: String) {
        self.record.input = Some(name);
    }

    /// Creates a file in the run dir.
    pub fn create_file(&self, name: &str) -> Result<(File, PathBuf), RunError> {
        let path = self.dir.join(name);
        let f = File::create(&path).map_err(io_err(&path))?;
        Ok((f, path))
    }

    /// Removes a run that never happened (a plan thrown away unwritten).
    pub fn discard(mut self) {
        self.unmark();
        if let Err(e) = fs::remove_dir_all(&self.dir) {
            tracing::warn!(run = %self.record.id, error = %e, "cannot remove a discarded run");
        }
    }

    pub fn finish(mut self, status: RunStatus, message: Option<String>) -> Result<RunRecord, RunError> {
        self.try_finish(status, message)
    }

    /// [`Run::finish`] that leaves the run in hand when its record cannot
    /// be written (to try again, or [`Run::defer_finish`]).
    pub fn try_finish(&mut self, status: RunStatus, message: Option<String>) -> Result<RunRecord, RunError> {
        self.record.status = status;
        self.record.message = message;
        self.record.finished_at = Some(Utc::now());
        let line = format!(
            "finished: {} {}",
            serde_json::to_string(&status).unwrap_or_default().trim_matches('"'),
            self.record.message.clone().unwrap_or_default()
        );
        self.log(line.trim_end());
        self.save()?;
        self.unmark();
        Ok(self.record.clone())
    }

    /// The run is over but its record cannot be written (a full disk): its
    /// status goes into the marker's name (a rename needs no space), the
    /// lock is let go, and the next process that looks for interrupted runs
    /// records the status instead of calling it interrupted.
    pub fn defer_finish(&mut self, status: RunStatus) {
        if let Some(runs) = self.dir.parent() {
            let active = runs.join(".active");
            let word = serde_json::to_string(&status).unwrap_or_default();
            let to = active.join(format!("{}.{}", self.record.id, word.trim_matches('"')));
            if let Err(e) = fs::rename(active.join(&self.record.id), &to) {
                tracing::warn!(run = %self.record.id, error = %e, "cannot mark the run's outcome for later");
            }
        }
        self.marker = None;
    }

    /// Drops the run's "in progress" marker (then its lock).
    fn unmark(&mut self) {
        if let Some(runs) = self.dir.parent() {
            let _ = fs::remove_file(runs.join(".active").join(&self.record.id));
        }
        self.marker = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_safe_and_sortable() {
        let a = new_id(RunKind::Import, Utc::now());
        assert!(valid_id(&a));
        assert!(!valid_id("../x"));
        assert!(!valid_id("a/b"));
    }

    #[test]
    fn start_finish_list_show() {
        let dir = tempfile::tempdir().unwrap();
        let runs = Runs::new(dir.path().to_path_buf());
        let actor = Actor {
            user: "admin".into(),
            sudo_user: Some("alice".into()),
        };
        let mut run = runs
            .start(
                RunKind::Purge,
                &actor,
                serde_json::json!({"as_of": "2026-01-01"}),
                None,
                false,
            )
            .unwrap();
        run.log("hello");
        let id = run.id().to_string();
        let rec = run.finish(RunStatus::Ok, None).unwrap();
        assert_eq!(runs.show(&id).unwrap(), rec);
        assert_eq!(runs.list(&|_| true, 10).unwrap().len(), 1);
        assert!(matches!(runs.show("../../etc"), Err(RunError::NotFound(_))));
        let log = fs::read_to_string(dir.path().join(&id).join("log.txt")).unwrap();
        assert!(log.contains("hello"));
    }

    #[test]
    fn runs_of_dead_processes_are_marked_interrupted() {
        let dir = tempfile::tempdir().unwrap();
        let runs = Runs::new(dir.path().to_path_buf());
        let actor = Actor {
            user: "admin".into(),
            sudo_user: None,
        };
        let start = || {
            runs.start(RunKind::Import, &actor, serde_json::json!({}), Some("s1"), false)
                .unwrap()
        };
        let (mut dead, alive) = (start(), start());
        // `dead`'s process has ended: nothing holds its marker's lock, and
        // its PID is that of a live process (this one: PIDs are reused).
        dead.marker = None;
        fs::write(dead.dir().join(".run.json.tmp"), "{half").unwrap();
        assert_eq!(runs.recover_interrupted().unwrap(), 1);
        let rec = runs.show(dead.id()).unwrap();
        assert_eq!(rec.status, RunStatus::Interrupted);
        assert!(rec.message.unwrap().contains("killed or crashed"));
        assert!(!dead.dir().join(".run.json.tmp").exists());
        assert!(!dir.path().join(".active").join(dead.id()).exists());
        assert_eq!(runs.show(alive.id()).unwrap().status, RunStatus::Running);
        let id = alive.id().to_string();
        alive.finish(RunStatus::Ok, None).unwrap();
        assert!(!dir.path().join(".active").join(&id).exists());
        assert_eq!(runs.recover_interrupted().unwrap(), 0);
    }

    #[test]
    fn an_outcome_that_could_not_be_written_is_recorded_later_not_as_interrupted() {
        let dir = tempfile::tempdir().unwrap();
        let runs = Runs::new(dir.path().to_path_buf());
        let actor = Actor {
            user: "admin".into(),
            sudo_user: None,
        };
        let mut run = runs
            .start(RunKind::Import, &actor, serde_json::json!({}), Some("s"), false)
            .unwrap();
        // As a full disk leaves it: the record still says running.
        run.defer_finish(RunStatus::Ok);
        let id = run.id().to_string();
        drop(run);
        assert_eq!(runs.show(&id).unwrap().status, RunStatus::Running);
        assert_eq!(runs.recover_interrupted().unwrap(), 0);
        let rec = runs.show(&id).unwrap();
        assert_eq!(rec.status, RunStatus::Ok);
        assert!(rec.message.unwrap().contains("disk was full"));
        let left: Vec<_> = fs::read_dir(dir.path().join(".active"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .filter(|n| n != crate::engine::lock::TEMP_GUARD)
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }

    #[test]
    fn a_run_killed_before_its_first_record_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let runs = Runs::new(dir.path().to_path_buf());
        let actor = Actor {
            user: "admin".into(),
            sudo_user: None,
        };
        let mut run = runs
            .start(RunKind::Import, &actor, serde_json::json!({}), None, false)
            .unwrap();
        let id = run.id().to_string();
        run.marker = None;
        // As a kill between writing the first record's temp file and
        // renaming it leaves it: the marker, the log, the temp file.
        fs::remove_file(run.dir().join("run.json")).unwrap();
        fs::write(run.dir().join(".run.json.tmp"), "{half").unwrap();
        drop(run);
        assert_eq!(runs.recover_interrupted().unwrap(), 0);
        assert!(!dir.path().join(&id).exists());
        assert!(!dir.path().join(".active").join(&id).exists());
        assert!(runs.list(&|_| true, 10).unwrap().is_empty());
    }
}
