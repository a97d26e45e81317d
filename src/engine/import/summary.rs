//! The files an import leaves behind: `summary.csv` in the run dir (line,
//! action, username, record_uid, schools, classes, error — a post-hook's
//! failure goes in `error`) and the optional initial-password CSV, mode
//! 0600, written and synced before the directory commit.

use super::Quiet;
use super::plan::{Action, Plan};
use super::row::RowError;
use crate::engine::runs::Run;
use crate::engine::{EngineError, EngineResult, io_error};
use std::fs::OpenOptions;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

fn csv_err(path: &Path) -> impl Fn(csv::Error) -> EngineError + '_ {
    move |e| EngineError::Io {
        path: path.display().to_string(),
        source: std::io::Error::other(e.to_string()),
    }
}

pub fn write(
    run: &Run,
    plan: &Plan,
    quiet: &[Quiet],
    skipped: &[(u64, String)],
    errors: &[RowError],
    school: &str,
    notes: &std::collections::HashMap<usize, String>,
) -> EngineResult<()> {
    let (file, path) = run.create_file("summary.csv")?;
    let mut w = csv::Writer::from_writer(std::io::BufWriter::new(file));
    let e = csv_err(&path);
    w.write_record([
        "line",
        "action",
        "username",
        "record_uid",
        "schools",
        "classes",
        "error",
    ])
    .map_err(&e)?;
    for (i, p) in plan.items.iter().enumerate() {
        let line = p.line.map(|l| l.to_string()).unwrap_or_default();
        let schools = p.after.school_names().collect::<Vec<_>>().join(",");
        let classes = p
            .after
            .membership(school)
            .map(|m| m.classes.iter().cloned().collect::<Vec<_>>().join(","))
            .unwrap_or_default();
        w.write_record([
            line.as_str(),
            p.action.as_str(),
            &p.after.username,
            &p.after.key.record_uid,
            &schools,
            &classes,
            notes.get(&i).map_or("", String::as_str),
        ])
        .map_err(&e)?;
    }
    for q in quiet {
        let line = q.line.to_string();
        w.write_record([line.as_str(), "unchanged", &q.username, &q.record_uid, "", "", ""])
            .map_err(&e)?;
    }
    for (line, rule) in skipped {
        let line = line.to_string();
        let why = format!("skipped by {rule}");
        w.write_record([line.as_str(), "skipped", "", "", "", "", &why])
            .map_err(&e)?;
    }
    for err in errors {
        w.write_record([
            err.line.to_string().as_str(),
            "error",
            "",
            err.record_uid.as_deref().unwrap_or(""),
            "",
            "",
            &err.message,
        ])
        .map_err(&e)?;
    }
    w.flush().map_err(io_error(&path))
}

/// The initial passwords of a run, written before the directory commit: a
/// temp file beside the wanted one (mode 0600, fsynced), renamed into place
/// once the users exist. If it cannot be written, nothing is imported; if
/// the directory write fails, it is removed.
pub struct StagedPasswords {
    tmp: PathBuf,
    path: PathBuf,
}

/// Writes `username,record_uid,firstname,lastname,password` for every
/// created user to a temp file only its owner can read, and syncs it.
pub fn stage_passwords(path: &Path, plan: &Plan, run_id: &str) -> EngineResult<StagedPasswords> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| EngineError::Usage(format!("--passwords-csv {}: not a file name", path.display())))?;
    let tmp = dir.join(format!(".{name}.{run_id}.tmp"));
    let fail = |what: &str, e: std::io::Error| EngineError::Io {
        path: tmp.display().to_string(),
        source: std::io::Error::new(
            e.kind(),
            format!(
                "{what} the initial passwords: {e}{}; nothing was imported (the users would exist without their \
                 passwords). Choose a --passwords-csv in a writable directory with free space",
                free_space_note(&dir, &e)
            ),
        ),
    };
    let file = OpenOptions::new()
        .create_new(true)
        .write(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| fail("cannot create the file for", e))?;
    let staged = StagedPasswords {
        tmp: tmp.clone(),
        path: path.to_path_buf(),
    };
    let written = (|| -> std::io::Result<()> {
        // The umask may have taken bits away, never added: make sure.
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        let mut w = csv::Writer::from_writer(std::io::BufWriter::new(file));
        w.write_record(["username", "record_uid", "firstname", "lastname", "password"])?;
        for p in plan.items.iter().filter(|p| p.action == Action::Created) {
            if let Some(pw) = &p.password {
                w.write_record([
                    p.after.username.as_str(),
                    &p.after.key.record_uid,
                    &p.after.firstname,
                    &p.after.lastname,
                    pw,
                ])?;
            }
        }
        let inner = w.into_inner().map_err(|e| std::io::Error::other(e.to_string()))?;
        let file = inner.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()
    })();
    if let Err(e) = written {
        staged.abandon();
        return Err(fail("cannot write", e));
    }
    Ok(staged)
}

impl StagedPasswords {
    /// Renames the file into place (after the directory commit). On failure
    /// the passwords stay in the temp file, whose path the error names.
    pub fn commit(self) -> Result<PathBuf, String> {
        match std::fs::rename(&self.tmp, &self.path) {
            Ok(()) => {
                if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty())
                    && let Ok(d) = std::fs::File::open(dir)
                {
                    let _ = d.sync_all();
                }
                Ok(self.path)
            }
            Err(e) => Err(format!(
                "the initial passwords are in {} (mode 0600): renaming it to {} failed: {e}; move it by hand",
                self.tmp.display(),
                self.path.display()
            )),
        }
    }

    /// Removes the temp file (the directory write failed).
    pub fn abandon(self) {
        let _ = std::fs::remove_file(&self.tmp);
    }
}

/// `" (N MiB free)"` for a full disk, else nothing.
fn free_space_note(dir: &Path, e: &std::io::Error) -> String {
    if e.raw_os_error() != Some(libc::ENOSPC) {
        return String::new();
    }
    let Some(free) = crate::store::space::free_bytes(dir).map(u128::from) else {
        return String::new();
    };
    format!(" ({} free on {})", human_bytes(free), dir.display())
}

fn human_bytes(n: u128) -> String {
    if n >= 1 << 20 {
        format!("{:.1} MiB", n as f64 / f64::from(1u32 << 20))
    } else {
        format!("{n} bytes")
    }
}
