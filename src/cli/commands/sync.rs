//! `rollcall authorities | sync run | daemon | queue | schedule | resync | trash`.

use crate::cli::Exit;
use crate::cli::args::{AuthoritiesCmd, QueueCmd, ScheduleCmd, SyncCmd, TrashCmd};
use crate::cli::output::{self, Table};
use crate::cli::progress::Bar;
use crate::engine::Engine;
use crate::engine::jobs::{Progress, ProgressEvent};
use crate::engine::sync::{QueueStatus, Scheduled, SyncOptions};
use chrono::{DateTime, Utc};
use std::sync::atomic::{AtomicBool, Ordering};
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
    let mut t = Table::new(&["AUTHORITY", "KIND", "DEPTH", "RETRYING", "TRASH", "OLDEST", "PAUSED"]);
    for q in queues {
        t.row(vec![
            q.authority.clone(),
            q.kind.to_string(),
            q.depth.to_string(),
            q.retrying.to_string(),
            q.trash.to_string(),
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
                eprintln!("no authorities configured: add an [authorities.NAME] table (see configs/rollcall.toml)");
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
                for a in &list {
                    for p in &a.problems {
                        eprintln!("{}: {p}", a.name);
                    }
                }
            }
        }
        AuthoritiesCmd::Pause { name, reason } => {
            engine.authority_pause(&name, &reason)?;
            if json {
                output::json(&serde_json::json!({ "authority": name, "paused": true, "reason": reason }))?;
            } else {
                println!("{name}: paused ({reason}); `rollcall authorities resume {name}` sends again");
            }
        }
        AuthoritiesCmd::Resume { name } => {
            let was = engine.authority_resume(&name)?;
            if json {
                output::json(&serde_json::json!({ "authority": name, "resumed": was }))?;
            } else if was {
                println!("{name}: resumed");
            } else {
                println!("{name}: was not paused");
            }
        }
        AuthoritiesCmd::Refresh { name } => {
            let a = engine.authority_refresh(&name)?;
            if json {
                output::json(&a)?;
            } else {
                print_capabilities(&a);
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
                println!("\nmapping (target attribute = directory field):");
                for (attr, field) in &a.mapping {
                    println!("  {attr} = {field}");
                }
                if a.kind == "scim" {
                    println!();
                    print_capabilities(&a);
                }
                for p in &a.problems {
                    println!("problem: {p}");
                }
            }
        }
    }
    Ok(Exit::Ok)
}

/// A server's text made safe for a terminal: controls and bidi overrides
/// shown as escapes. (To be replaced by the CLI's one sanitizer.)
fn visible(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control()
                || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
            {
                c.escape_unicode().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

/// What a SCIM server declared (discovery), and what is not sent to it.
fn print_capabilities(a: &crate::engine::sync::AuthorityView) {
    let Some(c) = &a.capabilities else {
        println!(
            "server capabilities: not asked yet (the first sync asks; `rollcall authorities refresh {}` asks now)",
            a.name
        );
        return;
    };
    let when = c.fetched_at.map(|t| when(Some(t))).unwrap_or_else(|| "-".into());
    println!("server capabilities (asked {when}):");
    match &c.provider {
        None => println!("  /ServiceProviderConfig: none (PUT, no Bulk, every mapped attribute sent)"),
        Some(p) => {
            println!("  patch: {}", yes_no(p.patch));
            if p.bulk.supported {
                println!(
                    "  bulk: yes (maxOperations {}, maxPayloadSize {} bytes)",
                    p.bulk.max_operations, p.bulk.max_payload_size
                );
            } else {
                println!("  bulk: no");
            }
            if p.filter.supported {
                println!("  filter: yes (maxResults {})", p.filter.max_results);
            } else {
                println!("  filter: no");
            }
            println!("  etag: {}, sort: {}", yes_no(p.etag), yes_no(p.sort));
        }
    }
    for (what, rt) in [("Users", &c.users), ("Groups", &c.groups)] {
        match rt {
            Some(rt) => {
                let ext: Vec<String> = rt
                    .extensions
                    .iter()
                    .map(|e| format!("{}{}", e.schema, if e.required { " (required)" } else { "" }))
                    .collect();
                println!(
                    "  {what}: {} at {}; extensions: {}",
                    visible(&rt.schema),
                    visible(&rt.endpoint),
                    if ext.is_empty() {
                        "none".to_string()
                    } else {
                        visible(&ext.join(", "))
                    }
                );
            }
            None => println!("  {what}: not described"),
        }
    }
    if !c.schemas.is_empty() {
        println!(
            "  schemas: {}",
            visible(&c.schemas.keys().cloned().collect::<Vec<_>>().join(", "))
        );
    }
    if a.dropped.is_empty() {
        println!("  mapped attributes not declared by the server: none");
    } else {
        println!(
            "  mapped attributes not declared by the server (never sent, never compared): {}",
            a.dropped.join(", ")
        );
    }
}

pub fn sync(engine: &mut Engine, cmd: SyncCmd, json: bool) -> anyhow::Result<Exit> {
    let SyncCmd::Run {
        authority,
        once,
        workers,
        max_wait,
    } = cmd;
    if !(max_wait >= 0.0 && max_wait.is_finite()) {
        return Err(crate::engine::EngineError::Invalid("--max-wait must be ≥ 0 seconds".into()).into());
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
        println!("run {} in {:.1} s", outcome.run_id, outcome.seconds);
    }
    for a in &outcome.authorities {
        if let Some(why) = &a.incomplete {
            eprintln!("rollcall: {}: incomplete: {why}", a.authority);
        }
    }
    Ok(if !outcome.complete {
        Exit::Incomplete
    } else if outcome.trashed > 0 {
        eprintln!(
            "rollcall: {} item(s) went to trash in this run (rollcall trash list)",
            outcome.trashed
        );
        Exit::Trashed
    } else {
        Exit::Ok
    })
}

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
    // Requests in flight end now; their items go back to the queue.
    crate::engine::sync::target::stop_all_requests();
}

/// Stops a long job on SIGTERM or SIGINT, after the item in hand.
pub(super) struct Stoppable<P: Progress> {
    inner: P,
}

impl<P: Progress> Stoppable<P> {
    pub(super) fn new(inner: P) -> Self {
        // SAFETY: the handler only stores to an atomic, which is
        // async-signal-safe.
        unsafe {
            libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
            libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
        }
        Stoppable { inner }
    }
}

impl<P: Progress> Progress for Stoppable<P> {
    fn update(&mut self, event: ProgressEvent) {
        self.inner.update(event);
    }
    fn cancelled(&self) -> bool {
        STOP.load(Ordering::SeqCst) || self.inner.cancelled()
    }
}

pub fn daemon(engine: &mut Engine, json: bool) -> anyhow::Result<Exit> {
    if !json {
        eprintln!("rollcall daemon: syncing; stop with SIGTERM or Ctrl-C");
    }
    engine.daemon(&mut Stoppable::new(crate::engine::jobs::Quiet))?;
    if json {
        output::json(&serde_json::json!({"stopped": true}))?;
    }
    Ok(Exit::Ok)
}

pub fn queue(engine: &Engine, cmd: QueueCmd, json: bool) -> anyhow::Result<Exit> {
    match cmd {
        QueueCmd::List { authority } => {
            let list = engine.queue_list(authority.as_deref())?;
            if json {
                output::json(&list)?;
            } else if list.is_empty() {
                eprintln!("no authorities configured");
            } else {
                queue_table(&list)?;
            }
        }
        QueueCmd::Show { authority } => {
            let items = engine.queue_show(&authority)?;
            if json {
                output::json(&items)?;
            } else if items.is_empty() {
                eprintln!("the queue of {authority} is empty");
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
        println!(
            "{name}: {} queued, {} already waiting",
            s.queued.get(name).copied().unwrap_or(0),
            s.coalesced.get(name).copied().unwrap_or(0)
        );
    }
    println!("{} object(s) scheduled", s.objects);
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
                eprintln!("the trash is empty");
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
                println!("item:      {}", d.entry.item);
                println!("object:    {}", d.entry.object);
                println!("error:     {} ({})", d.entry.error, d.entry.class);
                if let Some(s) = d.entry.http_status {
                    println!("http:      {s}");
                }
                println!("attempts:  {}", d.entry.attempts);
                println!(
                    "first/last failure: {} / {}",
                    when(d.entry.first_failure),
                    when(d.entry.last_failure)
                );
                if d.payload.is_null() {
                    println!("\nnothing was sent; what would be sent now:");
                    println!("{}", serde_json::to_string_pretty(&d.now)?);
                    return Ok(Exit::Ok);
                }
                println!("\npayload sent:\n{}", serde_json::to_string_pretty(&d.payload)?);
                if d.diff.is_empty() {
                    println!("\nwhat would be sent now is the same");
                } else {
                    println!("\nwhat would be sent now differs:");
                    for f in &d.diff {
                        let show = |v: &Option<serde_json::Value>| {
                            v.as_ref().map(|v| v.to_string()).unwrap_or("(none)".into())
                        };
                        println!("  {}: {} → {}", f.path, show(&f.before), show(&f.now));
                    }
                }
            }
        }
        TrashCmd::Delete { items } => {
            let done = engine.trash_delete(&items)?;
            if json {
                output::json(&serde_json::json!({"deleted": done}))?;
            } else {
                println!("deleted {} item(s)", done.len());
            }
        }
        TrashCmd::Requeue { items } => {
            let done = engine.trash_requeue(&items)?;
            if json {
                output::json(&serde_json::json!({"requeued": done}))?;
            } else {
                println!("requeued {} item(s); `rollcall sync run --once` sends them", done.len());
            }
        }
        TrashCmd::Purge { older_than, authority } => {
            let done = engine.trash_purge(older_than, authority.as_deref())?;
            if json {
                output::json(&serde_json::json!({"purged": done}))?;
            } else {
                println!("purged {} item(s)", done.len());
            }
        }
    }
    Ok(Exit::Ok)
}
