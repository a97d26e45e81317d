//! `rollcall sync-schools list|add|remove` and `rollcall verify`.

use crate::cli::Exit;
use crate::cli::args::{SyncSchoolsCmd, VerifyArgs, VerifyKindArg};
use crate::cli::lifecycle::Stoppable;
use crate::cli::output::{self, Table};
use crate::cli::output::{errln, outln};
use crate::cli::progress::Bar;
use crate::engine::Engine;
use crate::engine::sync::assign::{SchoolsAdd, SchoolsChanged, SchoolsRemove};
use crate::engine::sync::assign_preview::SchoolsPreview;
use crate::engine::sync::verify::{VerifyKind, VerifyReport, VerifyRequest};
use serde_json::Value;

fn when(t: Option<chrono::DateTime<chrono::Utc>>) -> String {
    t.map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_else(|| "-".into())
}

fn print_changed(c: &SchoolsChanged) -> std::io::Result<()> {
    let verb = if c.action == "add" {
        "assigned to"
    } else {
        "removed from"
    };
    if c.schools.is_empty() {
        outln!("no school {verb} {}", c.authority)?;
    } else {
        outln!("{} {verb} {}", output::list(&c.schools), c.authority)?;
    }
    if !c.forced.is_empty() {
        outln!("forced: {}", output::list(&c.forced))?;
    }
    if !c.skipped.is_empty() {
        outln!("already assigned, left alone: {}", output::list(&c.skipped))?;
    }
    if !c.schedule {
        outln!(
            "nothing scheduled ({})",
            if c.action == "add" {
                "--initial-sync false"
            } else {
                "--delete-on-target false"
            }
        )?;
        return Ok(());
    }
    let q = |m: &std::collections::BTreeMap<String, u64>| m.get(&c.authority).copied().unwrap_or(0);
    outln!(
        "scheduled {} object(s) for {}: {} queued, {} already waiting; `rollcall sync run --once` sends them",
        c.scheduled.objects,
        c.authority,
        q(&c.scheduled.queued),
        q(&c.scheduled.coalesced)
    )
}

/// `--dry-run`: what add or remove would do.
fn print_preview(p: &SchoolsPreview, json: bool) -> anyhow::Result<Exit> {
    if json {
        output::json(p)?;
        return Ok(Exit::Ok);
    }
    let (verb, option) = if p.action == "add" {
        ("assign", "--initial-sync false")
    } else {
        ("remove", "--delete-on-target false")
    };
    outln!(
        "dry run: would {verb} {} {} {} (nothing written)",
        output::list(&p.schools),
        if p.action == "add" { "to" } else { "from" },
        p.authority
    )?;
    if !p.schedule {
        outln!("nothing would be queued ({option})")?;
        return Ok(Exit::Ok);
    }
    outln!(
        "would queue {} object(s) for {} ({} already waiting): {} sent, {} deleted on the target, {} skipped, {} failing to map",
        p.objects,
        p.authority,
        p.waiting,
        p.send,
        p.delete,
        p.skip,
        p.unmappable
    )?;
    for f in &p.failures {
        outln!("  fails to map: {f}")?;
    }
    if p.unmappable > p.failures.len() as u64 {
        outln!("  … and {} more", p.unmappable - p.failures.len() as u64)?;
    }
    Ok(Exit::Ok)
}

pub fn sync_schools(engine: &mut Engine, cmd: SyncSchoolsCmd, json: bool) -> anyhow::Result<Exit> {
    match cmd {
        SyncSchoolsCmd::List { authority } => {
            let list = engine.sync_schools_list(authority.as_deref())?;
            if json {
                output::json(&list)?;
                return Ok(Exit::Ok);
            }
            if list.is_empty() {
                errln!("no authorities configured")?;
                return Ok(Exit::Ok);
            }
            let mut t = Table::new(&["AUTHORITY", "SCHOOL", "SOURCE", "SINCE", "BY"]);
            for a in &list {
                for s in &a.schools {
                    t.row(vec![
                        a.authority.clone(),
                        s.school.clone(),
                        s.source.to_string(),
                        when(s.since),
                        s.by.clone().unwrap_or_else(|| "-".into()),
                    ]);
                }
                for s in &a.excluded {
                    t.row(vec![
                        a.authority.clone(),
                        s.school.clone(),
                        "excluded (removed from the config's list)".into(),
                        when(s.since),
                        s.by.clone().unwrap_or_else(|| "-".into()),
                    ]);
                }
                if a.schools.is_empty() && a.excluded.is_empty() {
                    t.row(vec![
                        a.authority.clone(),
                        "-".into(),
                        "none".into(),
                        "-".into(),
                        "-".into(),
                    ]);
                }
            }
            t.print()?;
        }
        SyncSchoolsCmd::Add {
            authority,
            schools,
            all_schools,
            initial_sync,
            force,
            dry_run,
        } => {
            let req = SchoolsAdd {
                authority,
                schools,
                all_schools,
                initial_sync,
                force,
            };
            if dry_run {
                return print_preview(&engine.sync_schools_add_preview(&req)?, json);
            }
            let c = engine.sync_schools_add(&req)?;
            if json {
                output::json(&c)?;
            } else {
                print_changed(&c)?;
            }
        }
        SyncSchoolsCmd::Remove {
            authority,
            schools,
            delete_on_target,
            force,
            dry_run,
        } => {
            let req = SchoolsRemove {
                authority,
                schools,
                delete_on_target,
                force,
            };
            if dry_run {
                return print_preview(&engine.sync_schools_remove_preview(&req)?, json);
            }
            let c = engine.sync_schools_remove(&req)?;
            if json {
                output::json(&c)?;
            } else {
                print_changed(&c)?;
            }
        }
    }
    Ok(Exit::Ok)
}

fn show(v: &Value) -> String {
    match v {
        Value::Null => "(absent)".into(),
        v => v.to_string(),
    }
}

fn print_report(r: &VerifyReport) -> std::io::Result<()> {
    outln!(
        "verify {} on {} ({}): {} expected, {} of ours on the target, {} foreign (left alone), {:.1} s",
        r.kind.as_str(),
        r.authority,
        r.target,
        r.expected,
        r.actual,
        r.foreign,
        r.seconds
    )?;
    let kind = |k| {
        serde_json::to_value(k)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
    };
    if !r.missing.is_empty() {
        outln!("\nmissing on the target ({}):", r.missing.len())?;
        for m in &r.missing {
            outln!("  {:<9} {}  {}", kind(m.kind).unwrap_or_default(), m.object, m.name)?;
        }
    }
    if !r.unexpected.is_empty() {
        outln!("\nunexpected on the target ({}):", r.unexpected.len())?;
        for u in &r.unexpected {
            outln!(
                "  {:<9} {}  {}  (target id {})",
                kind(u.kind).unwrap_or_default(),
                u.object,
                u.name.as_deref().unwrap_or("-"),
                u.id
            )?;
        }
    }
    if !r.different.is_empty() {
        outln!("\ndifferent ({}):", r.different.len())?;
        for d in &r.different {
            outln!("  {:<9} {}  {}", kind(d.kind).unwrap_or_default(), d.object, d.name)?;
            for f in &d.fields {
                if f.attribute == "members" {
                    outln!(
                        "      members: lacking {}, not expected {}",
                        show(&f.expected),
                        show(&f.actual)
                    )?;
                } else {
                    outln!(
                        "      {}: expected {}, actual {}",
                        f.attribute,
                        show(&f.expected),
                        show(&f.actual)
                    )?;
                }
            }
        }
    }
    let n = r.counts.missing + r.counts.unexpected + r.counts.different;
    if r.clean {
        outln!("clean")?;
    } else {
        outln!("\n{n} difference(s)")?;
    }
    if let Some(f) = &r.fixed {
        outln!(
            "fix: queued {} object(s) ({} already waiting); `rollcall sync run --once` sends them, then verify again",
            f.queued,
            f.coalesced
        )?;
    }
    Ok(())
}

pub fn verify(engine: &mut Engine, args: VerifyArgs, json: bool) -> anyhow::Result<Exit> {
    let kind = match args.kind {
        VerifyKindArg::Schools => VerifyKind::Schools,
        VerifyKindArg::Classes => VerifyKind::Classes,
        VerifyKindArg::Workgroups => VerifyKind::Workgroups,
        VerifyKindArg::Users => VerifyKind::Users,
        VerifyKindArg::All => VerifyKind::All,
    };
    let req = VerifyRequest {
        authority: args.authority,
        kind,
        filter: args.filter,
        fix: args.fix,
    };
    let report = {
        let mut progress = Stoppable::new(Bar::new());
        engine.verify(&req, &mut progress)?
    };
    if json {
        output::json(&report)?;
    } else {
        print_report(&report)?;
    }
    Ok(if report.clean { Exit::Ok } else { Exit::Error })
}
