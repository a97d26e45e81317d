//! The files an import leaves behind: `summary.csv` in the run dir (line,
//! action, username, record_uid, schools, classes, error) and the optional
//! initial-password CSV, written with mode 0600.

use super::Quiet;
use super::plan::{Action, Plan};
use super::row::RowError;
use crate::engine::runs::Run;
use crate::engine::{EngineError, EngineResult, io_error};
use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

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
    for p in &plan.items {
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
            "",
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

/// Writes `username,record_uid,firstname,lastname,password` for every
/// created user to a file only its owner can read.
pub fn write_passwords(path: &Path, plan: &Plan) -> EngineResult<()> {
    let file = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(io_error(path))?;
    // An existing file keeps its mode on open: tighten it before writing.
    file.set_permissions(std::fs::Permissions::from_mode(0o600))
        .map_err(io_error(path))?;
    let mut w = csv::Writer::from_writer(std::io::BufWriter::new(file));
    let e = csv_err(path);
    w.write_record(["username", "record_uid", "firstname", "lastname", "password"])
        .map_err(&e)?;
    for p in plan.items.iter().filter(|p| p.action == Action::Created) {
        if let Some(pw) = &p.password {
            w.write_record([
                p.after.username.as_str(),
                &p.after.key.record_uid,
                &p.after.firstname,
                &p.after.lastname,
                pw,
            ])
            .map_err(&e)?;
        }
    }
    let mut inner = w.into_inner().map_err(|e| EngineError::Io {
        path: path.display().to_string(),
        source: std::io::Error::other(e.to_string()),
    })?;
    inner.flush().map_err(io_error(path))
}
