//! `rollcall authorities | sync run | daemon | queue | schedule | resync | trash`.

use crate::cli::Exit;
use crate::cli::args::{AuthoritiesCmd, QueueCmd, ScheduleCmd, SyncCmd, TrashCmd};
use crate::cli::lifecycle::Stoppable;
use crate::cli::output::{self, Table};
use crate::cli::output::{errln, outln};
use crate::cli::progress::Bar;
use crate::engine::Engine;
use crate::engine::sync::{QueueStatus, Scheduled, SyncOptions};
use chrono::{DateTime, Utc};
use std::time::Duration;

fn age(seconds: Option<i64>) -> String {
    match seconds {
        None => "-".into(),
        Some(s) if s < 120 => format!("{s}s"),
        Some(s) if s < 7200 => format!("{}m", s / 60),
        Some(s) if s < 172_800 => format!("{}h", s / 3600),
        Some(s) => format!("{}d", s / 86_400),
    }
}

fn when(t: Option<DateTime<Utc>>) -> String {
    t.map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_else(|| "-".into())
}

fn paused(q: &QueueStatus) -> String {
    match &q.paused {
        Some(p) => {
            let reason: String = p.reason.chars().take(80).collect();
            format!("paused since {} ({reason})", when(Some(p.since)))
        }
        None if !q.active => "inactive".into(),
        None => "no".into(),
    }
}

fn queue_table(queues: &[QueueStatus]) -> std::io::Result<()> {
    let mut t = Table::new(&[
        "AUTHORITY",
        "KIND",
        "DEPTH",
        "RETRYING",
        "TRASH",
        "TEMP",
        "OLDEST",
        "PAUSED",
    ]);
    for q in queues {
        t.row(vec![
            q.authority.clone(),
            q.kind.to_string(),
            q.depth.to_string(),
            q.retrying.to_string(),
            q.trash.to_string(),
            q.temp_files.to_string(),
            age(q.oldest_age_seconds),
            paused(q),
        ]);
    }
    t.print()
}

pub fn authorities(engine: &mut Engine, cmd: AuthoritiesCmd, json: bool) -> anyhow::Result<Exit> {
    match cmd {
        AuthoritiesCmd::List => {
            let list = engine.authorities_list()?;
            if json {
                output::json(&list)?;
            } else if list.is_empty() {
                errln!("no authorities configured: add an [authorities.NAME] table (see configs/rollcall.toml)")?;
            } else {
                let mut t = Table::new(&["NAME", "KIND", "ACTIVE", "SCHOOLS", "DEPTH", "TRASH", "PAUSED", "URL"]);
                for a in &list {
                    t.row(vec![
                        a.name.clone(),
                        a.kind.to_string(),
                        a.active.to_string(),
                        output::list(&a.schools),
                        a.queue.depth.to_string(),
                        a.queue.trash.to_string(),
                        paused(&a.queue),
                        a.url.clone(),
                    ]);
                }
                t.print()?;
                if engine.config().directory.backend == crate::engine::config::Backend::Ldap {
                    println!("{}", super::listen::describe(list[0].listener.as_ref()));
                }
                for a in &list {
                    for p in &a.problems {
                        errln!("{}: {p}", a.name)?;
                    }
                }
            }
        }
        AuthoritiesCmd::Pause { name, reason } => {
            engine.authority_pause(&name, &reason)?;
            if json {
                output::json(&serde_json::json!({ "authority": name, "paused": true, "reason": reason }))?;
            } else {
                outln!("{name}: paused ({reason}); `rollcall authorities resume {name}` sends again")?;
            }
        }
        AuthoritiesCmd::Resume { name } => {
            let was = engine.authority_resume(&name)?;
            if json {
                output::json(&serde_json::json!({ "authority": name, "resumed": was }))?;
            } else if was {
                outln!("{name}: resumed")?;
            } else {
                outln!("{name}: was not paused")?;
            }
        }
        AuthoritiesCmd::Show { name } => {
            let a = engine.authority_show(&name)?;
            if json {
                output::json(&a)?;
            } else {
                let mut t = Table::new(&["", ""]);
                for (k, v) in [
                    ("name", a.name.clone()),
                    ("kind", a.kind.to_string()),
                    ("url", a.url.clone()),
                    ("active", a.active.to_string()),
                    ("schools", output::list(&a.schools)),
                    ("workers", a.workers.to_string()),
                    ("max_attempts", a.max_attempts.to_string()),
                    (
                        "retry",
                        format!("{} s doubling to {} s", a.retry_base_seconds, a.retry_max_seconds),
                    ),
                    ("on_removal", a.on_removal.to_string()),
                    ("school_groups", a.school_groups.to_string()),
                    ("token_file", a.token_file.clone()),
                    ("ca_bundle", a.ca_bundle.clone()),
                    ("queue depth", a.queue.depth.to_string()),
                    ("trash", a.queue.trash.to_string()),
                    ("oldest item", age(a.queue.oldest_age_seconds)),
                    ("paused", paused(&a.queue)),
                    ("sent", a.queue.sent_total.to_string()),
                    ("last sent", when(a.queue.last_sent_at)),
                ] {
                    t.row(vec![k.to_string(), v]);
                }
                t.print()?;
                outln!("\nmapping (target attribute = directory field):")?;
                for (attr, field) in &a.mapping {
                    outln!("  {attr} = {field}")?;
                }
                for p in &a.problems {
                    outln!("problem: {p}")?;
                }
            }
        }
    }
    Ok(Exit::Ok)
}

pub fn sync(engine: &mut Engine, cmd: SyncCmd, json: bool) -> anyhow::Result<Exit> {
    let SyncCmd::Run {
        authority,
        once,
        workers,
        max_wait,
    } = cmd;
    if !(max_wait >= 0.0 && max_wait.is_finite()) {
        return Err(crate::engine::EngineError::Usage("--max-wait must be ≥ 0 seconds".into()).into());
    }
    let opts = SyncOptions {
        authority,
        once,
        workers,
        max_wait: Duration::from_secs_f64(max_wait),
    };
    let mut progress = Stoppable::new(Bar::new());
    let outcome = engine.sync_run(&opts, &mut progress)?;
    if json {
        output::json(&outcome)?;
    } else {
        let mut t = Table::new(&["AUTHORITY", "SENT", "RETRIED", "TRASHED", "LEFT", "DONE"]);
        for a in &outcome.authorities {
            let applied = a.applied.iter().map(|(k, n)| format!("{k} {n}")).collect::<Vec<_>>();
            t.row(vec![
                a.authority.clone(),
                a.sent.to_string(),
                a.retried.to_string(),
                a.trashed.to_string(),
                a.left.to_string(),
                output::list(applied),
            ]);
        }
        t.print()?;
        outln!("run {} in {:.1} s", outcome.run_id, outcome.seconds)?;
    }
    for a in &outcome.authorities {
        if let Some(why) = &a.incomplete {
            errln!("rollcall: {}: incomplete: {why}", a.authority)?;
        }
    }
    Ok(if outcome.complete { Exit::Ok } else { Exit::Incomplete })
}

pub fn queue(engine: &Engine, cmd: QueueCmd, json: bool) -> anyhow::Result<Exit> {
    match cmd {
        QueueCmd::List { authority } => {
            let list = engine.queue_list(authority.as_deref())?;
            if json {
                output::json(&list)?;
            } else if list.is_empty() {
                errln!("no authorities configured")?;
            } else {
                queue_table(&list)?;
            }
        }
        QueueCmd::Show { authority } => {
            let items = engine.queue_show(&authority)?;
            if json {
                output::json(&items)?;
            } else if items.is_empty() {
                errln!("the queue of {authority} is empty")?;
            } else {
                let mut t = Table::new(&["FILE", "STATE", "OBJECT", "ATTEMPTS", "NEXT TRY", "LAST ERROR"]);
                for i in items {
                    t.row(vec![
                        i.file,
                        i.state.to_string(),
                        i.object,
                        i.attempts.to_string(),
                        when(i.not_before),
                        i.last_error.unwrap_or_else(|| "-".into()),
                    ]);
                }
                t.print()?;
            }
        }
    }
    Ok(Exit::Ok)
}

fn print_scheduled(s: &Scheduled, json: bool) -> std::io::Result<()> {
    if json {
        return output::json(s);
    }
    let mut names: Vec<&String> = s.queued.keys().chain(s.coalesced.keys()).collect();
    names.sort();
    names.dedup();
    for name in names {
        outln!(
            "{name}: {} queued, {} already waiting",
            s.queued.get(name).copied().unwrap_or(0),
            s.coalesced.get(name).copied().unwrap_or(0)
        )?;
    }
    outln!("{} object(s) scheduled", s.objects)?;
    Ok(())
}

pub fn schedule(engine: &mut Engine, cmd: ScheduleCmd, json: bool) -> anyhow::Result<Exit> {
    let s = match cmd {
        ScheduleCmd::User { username } => engine.schedule_user(&username)?,
        ScheduleCmd::Group { group } => engine.schedule_group(&group)?,
        ScheduleCmd::School { name, workers } => engine.schedule_school(&name, workers)?,
    };
    print_scheduled(&s, json)?;
    Ok(Exit::Ok)
}

pub fn resync(engine: &mut Engine, authority: Option<String>, json: bool) -> anyhow::Result<Exit> {
    let s = engine.resync(authority.as_deref(), &mut Bar::new())?;
    print_scheduled(&s, json)?;
    Ok(Exit::Ok)
}

pub fn trash(engine: &mut Engine, cmd: TrashCmd, json: bool) -> anyhow::Result<Exit> {
    match cmd {
        TrashCmd::List { authority } => {
            let mut items = engine.trash_list(authority.as_deref())?;
            items.sort_by_key(|i| i.last_failure);
            if json {
                output::json(&items)?;
            } else if items.is_empty() {
                errln!("the trash is empty")?;
            } else {
                let mut t = Table::new(&["ITEM", "OBJECT", "STATUS", "ATTEMPTS", "LAST FAILURE", "ERROR"]);
                for i in items {
                    t.row(vec![
                        i.item,
                        i.object,
                        i.http_status
                            .map(|s| s.to_string())
                            .or(i.ldap_code.map(|c| format!("ldap {c}")))
                            .unwrap_or_else(|| "-".into()),
                        i.attempts.to_string(),
                        when(i.last_failure),
                        i.error,
                    ]);
                }
                t.print()?;
            }
        }
        TrashCmd::Show { item } => {
            let d = engine.trash_show(&item)?;
            if json {
                output::json(&d)?;
            } else {
                outln!("item:      {}", d.entry.item)?;
                outln!("object:    {}", d.entry.object)?;
                outln!("error:     {} ({})", d.entry.error, d.entry.class)?;
                if let Some(s) = d.entry.http_status {
                    outln!("http:      {s}")?;
                }
                outln!("attempts:  {}", d.entry.attempts)?;
                outln!(
                    "first/last failure: {} / {}",
                    when(d.entry.first_failure),
                    when(d.entry.last_failure)
                )?;
                if d.payload.is_null() {
                    outln!("\nnothing was sent; what would be sent now:")?;
                    outln!("{}", serde_json::to_string_pretty(&d.now)?)?;
                    return Ok(Exit::Ok);
                }
                outln!("\npayload sent:\n{}", serde_json::to_string_pretty(&d.payload)?)?;
                if d.diff.is_empty() {
                    outln!("\nwhat would be sent now is the same")?;
                } else {
                    outln!("\nwhat would be sent now differs:")?;
                    for f in &d.diff {
                        let show = |v: &Option<serde_json::Value>| {
                            v.as_ref().map(|v| v.to_string()).unwrap_or("(none)".into())
                        };
                        outln!("  {}: {} → {}", f.path, show(&f.before), show(&f.now))?;
                    }
                }
            }
        }
        TrashCmd::Delete { items } => {
            let done = engine.trash_delete(&items)?;
            if json {
                output::json(&serde_json::json!({"deleted": done}))?;
            } else {
                outln!("deleted {} item(s)", done.len())?;
            }
        }
        TrashCmd::Requeue { items } => {
            let done = engine.trash_requeue(&items)?;
            if json {
                output::json(&serde_json::json!({"requeued": done}))?;
            } else {
                outln!("requeued {} item(s); `rollcall sync run --once` sends them", done.len())?;
            }
        }
        TrashCmd::Purge { older_than, authority } => {
            let done = engine.trash_purge(older_than, authority.as_deref())?;
            if json {
                output::json(&serde_json::json!({"purged": done}))?;
            } else {
                outln!("purged {} item(s)", done.len())?;
            }
        }
    }
    Ok(Exit::Ok)
}
