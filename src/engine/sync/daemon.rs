//! The daemon: syncs forever (distribute, send, probe paused authorities),
//! and once a day purges limbo users whose date has come and trash items
//! older than the retention. One run record covers each stretch of work
//! and is closed every hour it did something.
//!
//! Its caller steers it through [`DaemonHooks`]: a stop request (the
//! progress's cancellation, looked at between items), a new configuration
//! to switch to (SIGHUP), and a look at the engine after every cycle
//! (health, metrics, the service manager's status line).

use super::sender::{SyncOptions, Targets};
use crate::engine::jobs::{Progress, ProgressEvent};
use crate::engine::runs::{Run, RunKind, RunStatus};
use crate::engine::{Engine, EngineError, EngineResult, Settings};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// How often a daemon run record is closed (when it recorded work).
const RUN_ROTATION: Duration = Duration::from_secs(3600);
/// Spent item files given back per trim at most (see [`super::spent`]):
/// removing one waits ~1 ms on a disk that discards.
const TRIM_PER_CYCLE: usize = 2_000;
/// How often the daemon trims the spent pools (each trim lists them).
const TRIM_EVERY: Duration = Duration::from_secs(30);

/// What the daemon's caller provides besides progress and cancellation.
pub trait DaemonHooks {
    /// A new configuration when one was asked for (SIGHUP), else `None`.
    /// An `Err` (a bad file) is logged and the running one kept.
    fn reload(&mut self) -> Option<EngineResult<Settings>> {
        None
    }
    /// Called after every cycle (and once before the first), with the
    /// engine: the place for health, metrics and status.
    fn cycle(&mut self, _engine: &Engine, _sent: u64) {}
}

/// No hooks.
pub struct NoHooks;

impl DaemonHooks for NoHooks {}

/// What a reload changed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Reloaded {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub changed: Vec<String>,
}

impl std::fmt::Display for Reloaded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let list = |v: &[String]| if v.is_empty() { "-".to_string() } else { v.join(", ") };
        write!(
            f,
            "authorities added: {}; removed: {}; changed: {}",
            list(&self.added),
            list(&self.removed),
            list(&self.changed)
        )
    }
}

/// Forwards the sync's progress to the daemon's and asks it whether to stop.
struct Within<'a>(&'a mut dyn Progress);

impl Progress for Within<'_> {
    fn update(&mut self, event: ProgressEvent) {
        self.0.update(event);
    }
    fn cancelled(&self) -> bool {
        self.0.cancelled()
    }
}

impl Engine {
    /// Runs until `progress` says stop (checked between items: the item in
    /// hand is finished, the ones not yet sent are put back).
    pub fn daemon(&mut self, progress: &mut dyn Progress, hooks: &mut dyn DaemonHooks) -> EngineResult<()> {
        self.check_writable("daemon")?;
        self.audit.record("daemon start", serde_json::Value::Null, "ok");
        let opts = SyncOptions {
            authority: None,
            once: true,
            workers: None,
            // Return as soon as nothing is ready; the daemon comes back.
            max_wait: Duration::ZERO,
        };
        let mut targets = Targets::new();
        // The directory's change stream (LDAP), followed on its own thread.
        let listener = crate::engine::listen::ListenerThread::spawn(&self.settings)?;
        let mut run = self.daemon_run()?;
        let mut opened = Instant::now();
        let mut trimmed: Option<Instant> = None;
        let mut sent = 0u64;
        hooks.cycle(self, sent);
        loop {
            if progress.cancelled() {
                break;
            }
            if let Some(next) = hooks.reload() {
                match next.and_then(|settings| self.reload(settings)) {
                    Ok(changes) => {
                        // Changed authorities reconnect with their new settings.
                        targets.clear();
                        run.log(&format!("configuration reloaded: {changes}"));
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "configuration not reloaded; the running one stays");
                        run.log(&format!("configuration not reloaded (the running one stays): {e}"));
                    }
                }
            }
            let cycle = self
                .daily(&mut run)
                .and_then(|()| self.sync_loop(&opts, &mut Within(progress), &mut run, &mut targets));
            let outcome = match cycle {
                Ok(o) => o,
                Err(e) if e.is_disk_full() => {
                    // Free what dead writers left, say so, and try again
                    // later instead of ending the service.
                    let freed = crate::engine::free_disk(&self.settings.paths);
                    tracing::error!(error = %e, freed, "disk full; waiting before the next cycle");
                    run.log(&format!(
                        "disk full: {e}; removed {freed} temp and spent file(s); trying again in 10 s"
                    ));
                    crate::engine::jobs::sleep_unless_cancelled(Duration::from_secs(10), progress);
                    continue;
                }
                Err(e) => return Err(e),
            };
            for a in &outcome.authorities {
                let worked = a.sent + a.trashed + a.retried;
                sent += a.sent;
                for (k, n) in &a.applied {
                    *run.record.counts.entry(format!("{}.{k}", a.authority)).or_default() += n;
                }
                for (k, n) in [("sent", a.sent), ("retried", a.retried), ("trashed", a.trashed)] {
                    *run.record.counts.entry(k.to_string()).or_default() += n;
                }
                if worked > 0 {
                    run.save()?;
                }
            }
            progress.update(ProgressEvent {
                phase: "daemon",
                done: sent,
                total: None,
            });
            hooks.cycle(self, sent);
            // Sent items' files beyond what the next enqueues will reuse go
            // back to the disk a little at a time, between cycles.
            if trimmed.is_none_or(|t| t.elapsed() >= TRIM_EVERY) {
                crate::engine::trim_spent_files(&self.settings.paths, crate::engine::sync::spent::KEEP, TRIM_PER_CYCLE);
                trimmed = Some(Instant::now());
            }
            if opened.elapsed() > RUN_ROTATION && run.record.counts.values().any(|n| *n > 0) {
                run.finish(RunStatus::Ok, None)?;
                run = self.daemon_run()?;
                opened = Instant::now();
            }
            let poll = Duration::from_secs_f64(self.config().sync.poll_seconds);
            crate::engine::jobs::sleep_unless_cancelled(poll, progress);
        }
        drop(listener);
        run.finish(RunStatus::Ok, Some("stopped".into()))?;
        self.audit.record("daemon stop", serde_json::Value::Null, "ok");
        Ok(())
    }

    /// Switches to a new configuration: authorities added, removed or
    /// changed take effect from the next cycle. Refused (and nothing
    /// changes) when the new one moves the data dir or the directory, which
    /// need a restart.
    pub fn reload(&mut self, new: Settings) -> EngineResult<Reloaded> {
        if new.paths.root() != self.settings.paths.root() {
            return Err(EngineError::BadInput(format!(
                "the data dir changed ({} → {}); restart rollcall to move it",
                self.settings.paths.root().display(),
                new.paths.root().display()
            )));
        }
        let (old_dir, new_dir) = (
            serde_json::to_value(&self.settings.config.directory).ok(),
            serde_json::to_value(&new.config.directory).ok(),
        );
        if old_dir != new_dir {
            return Err(EngineError::BadInput(
                "[directory] changed; restart rollcall to switch directories".into(),
            ));
        }
        let old = &self.settings.config.authorities;
        let names: BTreeSet<&String> = old.keys().chain(new.config.authorities.keys()).collect();
        let mut changes = Reloaded::default();
        for name in names {
            match (old.get(name), new.config.authorities.get(name)) {
                (None, Some(_)) => changes.added.push(name.clone()),
                (Some(_), None) => changes.removed.push(name.clone()),
                (Some(a), Some(b)) if serde_json::to_value(a).ok() != serde_json::to_value(b).ok() => {
                    changes.changed.push(name.clone())
                }
                _ => {}
            }
        }
        super::distributor::register(&self.state, self.dir.as_ref(), &new.config)?;
        let read_only = self.settings.read_only;
        self.settings = Settings { read_only, ..new };
        tracing::info!(%changes, "configuration reloaded");
        Ok(changes)
    }

    fn daemon_run(&self) -> EngineResult<Run> {
        Ok(self.runs.start(
            RunKind::Sync,
            self.audit.actor(),
            serde_json::json!({"daemon": true}),
            None,
            false,
        )?)
    }

    /// Once per day: limbo purge and trash retention.
    fn daily(&mut self, run: &mut Run) -> EngineResult<()> {
        let today = self.today().to_string();
        if self.state.daemon_get("last_daily")?.as_deref() == Some(today.as_str()) {
            return Ok(());
        }
        let purged = self.limbo_purge(None, false, &mut crate::engine::jobs::Quiet)?;
        let trash = self.trash_purge(None, None)?;
        run.log(&format!(
            "daily: purged {} limbo user(s) (run {}), {} trash item(s) past retention",
            purged.purged.len(),
            purged.run_id,
            trash.len()
        ));
        self.state.daemon_set("last_daily", &today)?;
        Ok(())
    }
}
