//! The daemon: syncs forever (distribute, send, probe paused authorities),
//! and once a day purges limbo users whose date has come and trash items
//! older than the retention. One run record covers each stretch of work
//! and is closed every hour it did something.

use super::sender::{SyncOptions, Targets};
use crate::engine::jobs::{Progress, ProgressEvent, Quiet};
use crate::engine::runs::{Run, RunKind, RunStatus};
use crate::engine::{Engine, EngineResult};
use std::time::{Duration, Instant};

/// How often a daemon run record is closed (when it recorded work).
const RUN_ROTATION: Duration = Duration::from_secs(3600);

impl Engine {
    /// Runs until `progress` says stop.
    pub fn daemon(&mut self, progress: &mut dyn Progress) -> EngineResult<()> {
        self.check_writable("daemon")?;
        self.audit.record("daemon start", serde_json::Value::Null, "ok");
        let poll = Duration::from_secs_f64(self.config().sync.poll_seconds);
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
        let mut sent = 0u64;
        loop {
            if progress.cancelled() {
                break;
            }
            self.daily(&mut run)?;
            let outcome = self.sync_loop(&opts, &mut Quiet, &mut run, &mut targets)?;
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
            if opened.elapsed() > RUN_ROTATION && run.record.counts.values().any(|n| *n > 0) {
                run.finish(RunStatus::Ok, None)?;
                run = self.daemon_run()?;
                opened = Instant::now();
            }
            std::thread::sleep(poll);
        }
        drop(listener);
        run.finish(RunStatus::Ok, Some("stopped".into()))?;
        self.audit.record("daemon stop", serde_json::Value::Null, "ok");
        Ok(())
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
        let purged = self.limbo_purge(None, false, &mut Quiet)?;
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
