//! The jobs of this console session as the engine reports them: progress
//! (done/total, rate, ETA) and outcome. Fed by engine events; read by the
//! jobs view, the top bar and the quit check.

use crate::engine::api::{EngineEvent, JobId, JobInfo, JobOutcome};
use chrono::{DateTime, Utc};

#[derive(Clone, Debug)]
pub struct JobRow {
    pub info: JobInfo,
    pub phase: &'static str,
    pub done: u64,
    pub total: Option<u64>,
    pub finished_at: Option<DateTime<Utc>>,
    /// `Ok(summary)` or the error.
    pub result: Option<Result<String, String>>,
    pub cancel_requested: bool,
}

impl JobRow {
    pub fn running(&self) -> bool {
        self.finished_at.is_none()
    }

    /// Units per second so far.
    pub fn rate(&self, now: DateTime<Utc>) -> Option<f64> {
        let end = self.finished_at.unwrap_or(now);
        let secs = (end - self.info.started_at).num_milliseconds() as f64 / 1000.0;
        (secs > 0.2 && self.done > 0).then(|| self.done as f64 / secs)
    }

    /// Seconds left at the current rate.
    pub fn eta(&self, now: DateTime<Utc>) -> Option<f64> {
        let total = self.total?;
        let rate = self.rate(now)?;
        self.running().then(|| total.saturating_sub(self.done) as f64 / rate)
    }

    pub fn ratio(&self) -> f64 {
        match self.total {
            Some(t) if t > 0 => (self.done as f64 / t as f64).clamp(0.0, 1.0),
            _ if !self.running() => 1.0,
            _ => 0.0,
        }
    }
}

/// One line summing up a job's outcome.
pub fn summarize(outcome: &JobOutcome) -> String {
    match outcome {
        JobOutcome::Import(o) => {
            let counts = format!(
                "created {} · modified {} · added school {} · removed school {} · to limbo {} · restored {} · errors {}",
                o.created,
                o.modified,
                o.added_school,
                o.removed_school,
                o.to_limbo,
                o.restored,
                o.errors.len()
            );
            match &o.refused {
                Some(r) => format!("refused: {r} ({counts})"),
                None => counts,
            }
        }
        JobOutcome::Sync(o) => {
            let parts: Vec<String> = o
                .authorities
                .iter()
                .map(|a| {
                    let mut s = format!(
                        "{}: sent {} · retried {} · trashed {} · left {}",
                        a.authority, a.sent, a.retried, a.trashed, a.left
                    );
                    if let Some(why) = &a.incomplete {
                        s.push_str(&format!(" ({why})"));
                    }
                    s
                })
                .collect();
            if parts.is_empty() {
                "nothing to sync (inactive authority)".into()
            } else {
                parts.join("; ")
            }
        }
        JobOutcome::Verify(r) if r.clean => format!(
            "{} {}: clean ({} expected, {} on the target)",
            r.authority,
            r.kind.as_str(),
            r.expected,
            r.actual
        ),
        JobOutcome::Verify(r) => format!(
            "{} {}: {} missing · {} unexpected · {} different{}",
            r.authority,
            r.kind.as_str(),
            r.counts.missing,
            r.counts.unexpected,
            r.counts.different,
            if r.fixed.is_some() { " (fix queued)" } else { "" }
        ),
        JobOutcome::Purge(p) => format!(
            "{} {} user(s) due on or before {}",
            if p.dry_run { "would purge" } else { "purged" },
            p.purged.len(),
            p.as_of
        ),
    }
}

#[derive(Clone, Debug, Default)]
pub struct JobBoard {
    /// Newest first.
    pub rows: Vec<JobRow>,
}

impl JobBoard {
    pub fn running(&self) -> usize {
        self.rows.iter().filter(|r| r.running()).count()
    }

    pub fn get(&self, id: JobId) -> Option<&JobRow> {
        self.rows.iter().find(|r| r.info.id == id)
    }

    pub fn mark_cancel(&mut self, id: JobId) {
        if let Some(r) = self.rows.iter_mut().find(|r| r.info.id == id) {
            r.cancel_requested = true;
        }
    }

    pub fn apply(&mut self, ev: &EngineEvent, now: DateTime<Utc>) {
        match ev {
            EngineEvent::JobStarted(info) => {
                if self.get(info.id).is_none() {
                    self.rows.insert(
                        0,
                        JobRow {
                            info: info.clone(),
                            phase: "starting",
                            done: 0,
                            total: None,
                            finished_at: None,
                            result: None,
                            cancel_requested: false,
                        },
                    );
                }
            }
            EngineEvent::JobProgress { id, phase, done, total } => {
                if let Some(r) = self.rows.iter_mut().find(|r| r.info.id == *id) {
                    r.phase = phase;
                    r.done = *done;
                    r.total = *total;
                }
            }
            EngineEvent::JobFinished { id, result } => {
                if let Some(r) = self.rows.iter_mut().find(|r| r.info.id == *id) {
                    r.finished_at = Some(now);
                    r.phase = if result.is_ok() { "done" } else { "failed" };
                    r.result = Some(result.as_ref().map(summarize).map_err(Clone::clone));
                }
            }
            EngineEvent::Changed => {}
        }
    }
}
