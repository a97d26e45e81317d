//! `rollcall sync-schools list|add|remove` and `rollcall verify`.

use crate::cli::Exit;
use crate::cli::args::{SyncSchoolsCmd, VerifyArgs, VerifyKindArg};
use crate::cli::lifecycle::Stoppable;
use crate::cli::output::{self, Table};
use crate::cli::progress::Bar;
use crate::engine::Engine;
use crate::engine::sync::assign::{SchoolsAdd, SchoolsChanged, SchoolsRemove};
use crate::engine::sync::verify::{VerifyKind, VerifyReport, VerifyRequest};
use serde_json::Value;

fn when(t: Option<chrono::DateTime<chrono::Utc>>) -> String {
    t.map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_else(|| "-".into())
}

fn print_changed(c: &SchoolsChanged) {
    let verb = if c.action == "add" {
        "assigned to"
    } else {
        "removed from"
    };
    if c.schools.is_empty() {
        println!("no school {verb} {}", c.authority);
    } else {
        println!("{} {verb} {}", output::list(&c.schools), c.authority);
    }
    if !c.forced.is_empty() {
        println!("forced: {}", output::list(&c.forced));
    }
    if !c.skipped.is_empty() {
        println!("already assigned, left alone: {}", output::list(&c.skipped));
    }
    if !c.schedule {
        println!(
            "nothing scheduled ({})",
            if c.action == "add" {
                "--initial-sync false"
            } else {
                "--delete-on-target false"
            }
        );
        return;
    }
    let q = |m: &std::collections::BTreeMap<String, u64>| m.get(&c.authority).copied().unwrap_or(0);
    println!(
        "scheduled {} object(s) for {}: {} queued, {} already waiting; `rollcall sync run --once` sends them",
        c.scheduled.objects,
        c.authority,
        q(&c.scheduled.queued),
        q(&c.scheduled.coalesced)
    );
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
                eprintln!("no authorities configured");
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
        } => {
            let c = engine.sync_schools_add(&SchoolsAdd {
                authority,
                schools,
                all_schools,
                initial_sync,
                force,
            })?;
            if json {
                output::json(&c)?;
            } else {
                print_changed(&c);
            }
        }
        SyncSchoolsCmd::Remove {
            authority,
            schools,
            delete_on_target,
            force,
        } => {
            let c = engine.sync_schools_remove(&SchoolsRemove {
                authority,
                schools,
                delete_on_target,
                force,
            })?;
            if json {
                output::json(&c)?;
            } else {
                print_changed(&c);
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

fn print_report(r: &VerifyReport) {
    println!(
        "verify {} on {} ({}): {} expected, {} of ours on the target, {} foreign (left alone), {:.1} s",
        r.kind.as_str(),
        r.authority,
        r.target,
        r.expected,
        r.actual,
        r.foreign,
        r.seconds
    );
    let kind = |k| {
        serde_json::to_value(k)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
    };
    if !r.missing.is_empty() {
        println!("\nmissing on the target ({}):", r.missing.len());
        for m in &r.missing {
            println!("  {:<9} {}  {}", kind(m.kind).unwrap_or_default(), m.object, m.name);
        }
    }
    if !r.unexpected.is_empty() {
        println!("\nunexpected on the target ({}):", r.unexpected.len());
        for u in &r.unexpected {
            println!(
                "  {:<9} {}  {}  (target id {})",
                kind(u.kind).unwrap_or_default(),
                u.object,
                u.name.as_deref().unwrap_or("-"),
                u.id
            );
        }
    }
    if !r.different.is_empty() {
        println!("\ndifferent ({}):", r.different.len());
        for d in &r.different {
            println!("  {:<9} {}  {}", kind(d.kind).unwrap_or_default(), d.object, d.name);
            for f in &d.fields {
                if f.attribute == "members" {
                    println!(
                        "      members: lacking {}, not expected {}",
                        show(&f.expected),
                        show(&f.actual)
                    );
                } else {
                    println!(
                        "      {}: expected {}, actual {}",
                        f.attribute,
                        show(&f.expected),
                        show(&f.actual)
                    );
                }
            }
        }
    }
    let n = r.counts.missing + r.counts.unexpected + r.counts.different;
    if r.clean {
        println!("clean");
    } else {
        println!("\n{n} difference(s)");
    }
    if let Some(f) = &r.fixed {
        println!(
            "fix: queued {} object(s) ({} already waiting); `rollcall sync run --once` sends them, then verify again",
            f.queued, f.coalesced
        );
    }
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
        print_report(&report);
    }
    Ok(if report.clean { Exit::Ok } else { Exit::Error })
}
