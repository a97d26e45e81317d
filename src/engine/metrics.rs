//! Metrics for monitoring, in the Prometheus text format (version 0.0.4):
//! every metric is named `rollcall_…`. Per authority: queue depth, items in
//! back-off, claimed, temp files, trash, oldest item age, sent and failed
//! totals, paused, active, last successful send; per school: the last feed
//! and its age, stale or not; per run kind: the last run's duration, end
//! and status. `rollcall daemon --listen` serves them at `/metrics`,
//! `rollcall metrics --textfile` writes them for node_exporter.

use super::runs::{RunKind, RunStatus};
use super::state::{Migration, StateDb, StateError};
use super::{Engine, EngineResult};
use chrono::Utc;
use rusqlite::{OptionalExtension, params};
use std::collections::BTreeMap;
use std::fmt::Write as _;

pub const MIGRATIONS: &[Migration] = &[Migration {
    name: "metrics-1-failed",
    sql: "ALTER TABLE sync_authorities ADD COLUMN failed_total INTEGER NOT NULL DEFAULT 0;",
}];

impl StateDb {
    /// Counts items an authority gave up on (trashed).
    pub fn sync_failed(&self, authority: &str, failed: u64) -> Result<(), StateError> {
        if failed == 0 {
            return Ok(());
        }
        self.conn
            .execute(
                "UPDATE sync_authorities SET failed_total = failed_total + ?2 WHERE authority = ?1",
                params![authority, failed as i64],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    pub fn failed_total(&self, authority: &str) -> Result<u64, StateError> {
        let n: Option<i64> = self
            .conn
            .query_row(
                "SELECT failed_total FROM sync_authorities WHERE authority = ?1",
                [authority],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.err(e))?;
        Ok(n.unwrap_or(0).max(0) as u64)
    }
}

/// One metric family being written.
struct Family<'a> {
    out: &'a mut String,
}

impl Family<'_> {
    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                let _ = write!(self.out, "{k}=\"{}\"", escape_label(v));
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {}", number(value));
    }
}

fn family<'a>(out: &'a mut String, name: &str, kind: &str, help: &str) -> Family<'a> {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
    Family { out }
}

/// Label values: backslash, double quote and line feed escaped.
fn escape_label(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf".into() } else { "-Inf".into() }
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

fn bool_f(b: bool) -> f64 {
    if b { 1.0 } else { 0.0 }
}

impl Engine {
    /// Every metric, in the Prometheus text format.
    pub fn metrics_text(&self) -> EngineResult<String> {
        let now = Utc::now();
        let mut out = String::new();
        let queues = self.queue_list(None)?;
        let mut rows = Vec::with_capacity(queues.len());
        for q in &queues {
            rows.push((q, q.temp_files, self.state.failed_total(&q.authority)?));
        }
        type Get = fn(&(&crate::engine::sync::QueueStatus, u64, u64)) -> Option<f64>;
        let per_authority: [(&str, &str, &str, Get); 12] = [
            (
                "rollcall_queue_depth",
                "gauge",
                "Items waiting to be sent (pending and in back-off).",
                |r| Some(r.0.depth as f64),
            ),
            (
                "rollcall_queue_backoff",
                "gauge",
                "Items waiting for their back-off after a failure.",
                |r| Some(r.0.retrying as f64),
            ),
            (
                "rollcall_queue_claimed",
                "gauge",
                "Items a sender is working on.",
                |r| Some(r.0.claimed as f64),
            ),
            (
                "rollcall_queue_temp_files",
                "gauge",
                "Files in the queue's .tmp/ (being written or left by a writer that died).",
                |r| Some(r.1 as f64),
            ),
            (
                "rollcall_queue_spent_files",
                "gauge",
                "Sent items' files kept in the queue's .spent/ for the next enqueues to overwrite.",
                |r| Some(r.0.spent_files as f64),
            ),
            ("rollcall_trash_items", "gauge", "Items given up on, in trash.", |r| {
                Some(r.0.trash as f64)
            }),
            (
                "rollcall_queue_oldest_item_age_seconds",
                "gauge",
                "Age of the oldest waiting item (absent when none waits).",
                |r| r.0.oldest_age_seconds.map(|s| s as f64),
            ),
            (
                "rollcall_sent_total",
                "counter",
                "Items settled by the target (sent, or given up on).",
                |r| Some(r.0.sent_total as f64),
            ),
            (
                "rollcall_failed_total",
                "counter",
                "Items given up on (moved to trash) by the sender.",
                |r| Some(r.2 as f64),
            ),
            (
                "rollcall_authority_paused",
                "gauge",
                "1 when the authority is paused (unreachable or by an admin).",
                |r| Some(bool_f(r.0.paused.is_some())),
            ),
            (
                "rollcall_authority_active",
                "gauge",
                "1 when the authority is active in the configuration.",
                |r| Some(bool_f(r.0.active)),
            ),
            (
                "rollcall_last_successful_send_timestamp_seconds",
                "gauge",
                "When the authority last accepted an item (Unix time; absent when never).",
                |r| r.0.last_sent_at.map(|t| t.timestamp() as f64),
            ),
        ];
        for (name, kind, help, get) in per_authority {
            let mut f = family(&mut out, name, kind, help);
            for r in &rows {
                if let Some(v) = get(r) {
                    f.sample(name, &[("authority", &r.0.authority)], v);
                }
            }
        }
        // Schools.
        let feeds = self.last_feeds()?;
        let schools = self.schools_list()?;
        let fresh: Vec<(String, super::freshness::Freshness)> = schools
            .iter()
            .filter(|s| !s.limbo)
            .map(|s| (s.name.clone(), self.freshness(feeds.get(&s.name.to_lowercase()), now)))
            .collect();
        let mut f = family(
            &mut out,
            "rollcall_school_last_feed_timestamp_seconds",
            "gauge",
            "When the school's last feed arrived (Unix time; absent when never).",
        );
        for (name, fr) in &fresh {
            if let Some(at) = fr.last_feed_at {
                f.sample(
                    "rollcall_school_last_feed_timestamp_seconds",
                    &[("school", name)],
                    at.timestamp() as f64,
                );
            }
        }
        let mut f = family(
            &mut out,
            "rollcall_school_last_feed_age_seconds",
            "gauge",
            "Seconds since the school's last feed arrived.",
        );
        for (name, fr) in &fresh {
            if let Some(age) = fr.last_feed_age_seconds {
                f.sample("rollcall_school_last_feed_age_seconds", &[("school", name)], age as f64);
            }
        }
        let mut f = family(
            &mut out,
            "rollcall_school_stale",
            "gauge",
            "1 when the school's last feed is older than import.stale_after_days.",
        );
        for (name, fr) in &fresh {
            f.sample("rollcall_school_stale", &[("school", name)], bool_f(fr.stale));
        }
        let mut f = family(
            &mut out,
            "rollcall_school_users",
            "gauge",
            "Users with the school (active; in limbo for the limbo school).",
        );
        for s in &schools {
            f.sample("rollcall_school_users", &[("school", &s.name)], s.users as f64);
        }
        // Runs: the last finished one of each kind.
        let mut last: BTreeMap<&'static str, (f64, f64, RunStatus)> = BTreeMap::new();
        let recent = self.runs.list(&|r| r.finished_at.is_some(), 200)?;
        for r in &recent {
            let Some(end) = r.finished_at else { continue };
            let seconds = (end - r.started_at).num_milliseconds().max(0) as f64 / 1000.0;
            last.entry(r.kind.as_str())
                .or_insert((seconds, end.timestamp() as f64, r.status));
        }
        let kinds = [RunKind::Import, RunKind::Purge, RunKind::Sync, RunKind::Verify];
        let mut f = family(
            &mut out,
            "rollcall_last_run_duration_seconds",
            "gauge",
            "How long the last finished run of each kind took.",
        );
        for k in kinds {
            if let Some((s, _, _)) = last.get(k.as_str()) {
                f.sample("rollcall_last_run_duration_seconds", &[("kind", k.as_str())], *s);
            }
        }
        let mut f = family(
            &mut out,
            "rollcall_last_run_timestamp_seconds",
            "gauge",
            "When the last run of each kind finished (Unix time).",
        );
        for k in kinds {
            if let Some((_, at, _)) = last.get(k.as_str()) {
                f.sample("rollcall_last_run_timestamp_seconds", &[("kind", k.as_str())], *at);
            }
        }
        let mut f = family(
            &mut out,
            "rollcall_last_run_ok",
            "gauge",
            "1 when the last run of each kind ended ok.",
        );
        for k in kinds {
            if let Some((_, _, status)) = last.get(k.as_str()) {
                f.sample(
                    "rollcall_last_run_ok",
                    &[("kind", k.as_str())],
                    bool_f(*status == RunStatus::Ok),
                );
            }
        }
        let mut f = family(
            &mut out,
            "rollcall_metrics_timestamp_seconds",
            "gauge",
            "When these metrics were gathered (Unix time).",
        );
        f.sample("rollcall_metrics_timestamp_seconds", &[], now.timestamp() as f64);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_and_numbers_are_written_as_the_format_says() {
        assert_eq!(escape_label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
        assert_eq!(number(3.0), "3");
        assert_eq!(number(0.25), "0.25");
        assert_eq!(number(f64::INFINITY), "+Inf");
    }
}
