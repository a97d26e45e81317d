//! `rollcall intake list | retry`, and what the daemon says about intake
//! when it starts.

use crate::cli::Exit;
use crate::cli::args::IntakeCmd;
use crate::cli::output::{self, Table};
use crate::cli::output::{errln, outln};
use crate::cli::progress::Bar;
use crate::engine::Engine;
use crate::engine::intake::Intake;

pub fn run(engine: &mut Engine, cmd: IntakeCmd, json: bool) -> anyhow::Result<Exit> {
    match cmd {
        IntakeCmd::List => {
            let l = engine.intake_list()?;
            if json {
                output::json(&l)?;
                return Ok(Exit::Ok);
            }
            outln!("inbox: {}", &l.inbox)?;
            if l.waiting.is_empty() && l.processing.is_empty() && l.failed.is_empty() {
                outln!("no files waiting, none failed")?;
                return Ok(Exit::Ok);
            }
            let mut t = Table::new(&["STATE", "FILE", "SCHOOL", "WHEN", "RUN", "DETAIL"]);
            for w in &l.waiting {
                t.row(vec![
                    "waiting".into(),
                    w.file.clone(),
                    w.school.clone().unwrap_or_else(|| "-".into()),
                    w.modified
                        .map(|m| m.format("%Y-%m-%d %H:%M:%S").to_string())
                        .unwrap_or_default(),
                    "-".into(),
                    match &w.school {
                        Some(_) => format!("{} bytes", w.bytes),
                        None => "name does not match intake.pattern".into(),
                    },
                ]);
            }
            for p in &l.processing {
                t.row(vec![
                    "importing".into(),
                    p.file.clone(),
                    p.school.clone(),
                    p.claimed_at.format("%Y-%m-%d %H:%M:%S").to_string(),
                    "-".into(),
                    "-".into(),
                ]);
            }
            for f in &l.failed {
                t.row(vec![
                    "failed".into(),
                    f.file.clone(),
                    f.school.clone().unwrap_or_else(|| "-".into()),
                    f.at.map(|a| a.format("%Y-%m-%d %H:%M:%S").to_string())
                        .unwrap_or_default(),
                    f.run_id.clone().unwrap_or_else(|| "-".into()),
                    f.reason.clone(),
                ]);
            }
            t.print()?;
            if !l.failed.is_empty() {
                errln!(
                    "retry a failed file with `rollcall intake retry FILE` (--force to override the mass-removal guard)"
                )?;
            }
            Ok(Exit::Ok)
        }
        IntakeCmd::Retry { file, force } => {
            let r = engine.intake_retry(&file, force, &mut Bar::new())?;
            if json {
                output::json(&r)?;
            } else {
                let o = &r.import;
                outln!(
                    "{} {}: run {}: created {}, modified {}, unchanged {}, removed_school {}, to_limbo {}",
                    if r.imported { "imported" } else { "refused" },
                    &r.file,
                    o.run_id,
                    o.created,
                    o.modified,
                    o.unchanged,
                    o.removed_school,
                    o.to_limbo
                )?;
                if let Some(reason) = &o.refused {
                    errln!("refused: {}", reason)?;
                    errln!("the file stays in failed/; --force applies it anyway")?;
                }
            }
            Ok(if r.imported { Exit::Ok } else { Exit::Refused })
        }
    }
}

/// Says where intake listens, when the daemon starts.
pub fn announce(intake: &Intake) {
    if let Some(addr) = intake.http_addr() {
        let _ = errln!("rollcall daemon: feed uploads on {addr} (POST /v1/schools/SCHOOL/feeds)");
    }
}
