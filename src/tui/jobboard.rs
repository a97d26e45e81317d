//! The jobs of this console session as the engine reports them: progress
//! (done/total, rate, ETA) and how each ended — done, cancelled or failed
//! with its reason. Fed by engine events; read by the jobs view, the top
//! bar and the quit check.

use crate::engine::api::{EngineEvent, JobEnd, JobId, JobInfo, JobOutcome};
use chrono::{DateTime, Utc};

/// Where a job stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JobState {
    Running,
    /// Asked to stop; it stops at its next check.
    Cancelling,
    /// Finished; the outcome in one line.
    Done(String),
    /// Stopped on request; what it did until then, if it said.
    Cancelled(Option<String>),
    /// The error that stopped it.
    Failed(String),
}

impl JobState {
    /// The one word the jobs table shows.
    pub fn word(&self) -> &'static str {
        match self {
            JobState::Running => "running",
            JobState::Cancelling => "cancelling",
            JobState::Done(_) => "done",
            JobState::Cancelled(_) => "cancelled",
            JobState::Failed(_) => "failed",
        }
    }

    /// The outcome, the reason or nothing.
    pub fn detail(&self) -> Option<&str> {
        match self {
            JobState::Done(s) | JobState::Failed(s) | JobState::Cancelled(Some(s)) => Some(s),
            _ => None,
        }
    }
}

#[derive(Clone, Debug)]
pub struct JobRow {
    pub info: JobInfo,
    pub phase: &'static str,
    pub done: u64,
    pub total: Option<u64>,
    pub finished_at: Option<DateTime<Utc>>,
    pub state: JobState,
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
            _ if matches!(self.state, JobState::Done(_)) => 1.0,
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
            "{} {} due on or before {}",
            if p.dry_run { "would purge" } else { "purged" },
            crate::tui::widgets::plural(p.purged.len() as u64, "user", "users"),
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
        if let Some(r) = self.rows.iter_mut().find(|r| r.info.id == id)
            && r.state == JobState::Running
        {
            r.state = JobState::Cancelling;
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
                            state: JobState::Running,
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
            EngineEvent::JobFinished { id, end } => {
                if let Some(r) = self.rows.iter_mut().find(|r| r.info.id == *id) {
                    r.finished_at = Some(now);
                    r.state = match end {
                        JobEnd::Done(o) => JobState::Done(summarize(o)),
                        JobEnd::Cancelled(o) => JobState::Cancelled(o.as_ref().map(summarize)),
                        JobEnd::Failed(e) => JobState::Failed(e.clone()),
                    };
                    r.phase = r.state.word();
                }
            }
            EngineEvent::Changed => {}
        }
    }
}
