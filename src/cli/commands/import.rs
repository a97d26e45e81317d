//! `rollcall import`.

use crate::cli::Exit;
use crate::cli::args::ImportArgs;
use crate::cli::output::{self, Table};
use crate::cli::output::{errln, outln};
use crate::cli::progress::Bar;
use crate::engine::Engine;
use crate::engine::import::{ImportOutcome, ImportRequest};

pub fn run(engine: &mut Engine, a: &ImportArgs, json: bool) -> anyhow::Result<Exit> {
    let req = ImportRequest {
        school: a.school.clone(),
        roles: a.roles.clone(),
        source_uid: a.source.clone(),
        dry_run: a.dry_run,
        force: a.force,
        file: a.file.clone(),
        passwords_csv: a.passwords_csv.clone(),
        format: a.format,
        mapping: a.mapping.clone(),
        encoding: a.encoding.clone(),
    };
    let outcome = engine.import(&req, &mut Bar::new())?;
    if json {
        output::json(&outcome)?;
    } else {
        print_human(&outcome, &a.file.display().to_string())?;
    }
    Ok(if outcome.refused.is_some() {
        Exit::Refused
    } else {
        Exit::Ok
    })
}

fn print_human(o: &ImportOutcome, file: &str) -> std::io::Result<()> {
    if o.dry_run && !o.changes.is_empty() {
        outln!("plan (dry run, nothing written):")?;
        let mut t = Table::new(&["LINE", "ACTION", "USERNAME", "RECORD_UID", "SCHOOLS", "CLASSES"]);
        for c in &o.changes {
            t.row(vec![
                c.line.map(|l| l.to_string()).unwrap_or_else(|| "-".into()),
                c.action.as_str().to_string(),
                c.username.clone(),
                c.record_uid.clone(),
                output::list(&c.schools),
                output::list(&c.classes),
            ]);
        }
        t.print()?;
        outln!()?;
    }
    for e in &o.errors {
        errln!("{file}:{}: {}", e.line, e.message)?;
    }
    for w in &o.warnings {
        errln!("warning: {w}")?;
    }
    outln!(
        "{} {} ({}): created {}, modified {}, unchanged {}, added_school {}, removed_school {}, to_limbo {}, restored {}, deleted {}, errors {}, skipped {}",
        if o.dry_run { "dry run of" } else { "import into" },
        o.school,
        o.roles.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(", "),
        o.created,
        o.modified,
        o.unchanged,
        o.added_school,
        o.removed_school,
        o.to_limbo,
        o.restored,
        o.deleted,
        o.errors.len(),
        o.skipped
    )?;
    if o.school_created {
        outln!("created school {}", o.school)?;
    }
    if let Some(p) = &o.passwords_csv {
        outln!("initial passwords: {p}")?;
    }
    if !o.classes_removed.is_empty() {
        outln!(
            "classes removed (their last member left): {}",
            output::list(&o.classes_removed)
        )?;
    }
    for f in &o.hook_failures {
        errln!("warning: {} for {}: {}", f.hook, f.username, f.message)?;
    }
    outln!("run {}", o.run_id)?;
    if let Some(r) = &o.refused {
        errln!("refused: {r}")?;
    }
    Ok(())
}
