//! When each school's last feed arrived (`school_feeds` in `state.sqlite`),
//! and which schools are stale: their last feed is older than
//! `import.stale_after_days` (the source may have stopped sending). Every
//! import that read a feed (not a dry run) records it, refused or not.

use super::state::{Migration, StateDb, StateError};
use super::{Engine, EngineResult};
use chrono::{DateTime, Utc};
use rusqlite::params;
use serde::Serialize;
use std::collections::BTreeMap;

pub const MIGRATIONS: &[Migration] = &[Migration {
    name: "school-feeds-1",
    sql: r#"
CREATE TABLE school_feeds (
    school  TEXT PRIMARY KEY,   -- lowercase: school names are case-insensitive
    at      TEXT NOT NULL,      -- RFC 3339, UTC
    run_id  TEXT NOT NULL
) WITHOUT ROWID;
"#,
}];

/// A school's last feed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LastFeed {
    pub at: DateTime<Utc>,
    pub run_id: String,
}

/// A school's feed freshness, for `schools list`, the console and metrics.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Freshness {
    pub last_feed_at: Option<DateTime<Utc>>,
    pub last_feed_age_seconds: Option<i64>,
    /// The last feed is older than `import.stale_after_days` (a school
    /// that never had a feed is not stale: nothing is expected of it yet).
    pub stale: bool,
}

impl StateDb {
    pub fn record_feed(&self, school: &str, at: DateTime<Utc>, run_id: &str) -> Result<(), StateError> {
        self.conn
            .execute(
                "INSERT INTO school_feeds (school, at, run_id) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (school) DO UPDATE SET at = excluded.at, run_id = excluded.run_id \
                 WHERE excluded.at > school_feeds.at",
                params![school.to_lowercase(), at.to_rfc3339(), run_id],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Every school's last feed, by lowercase name.
    pub fn last_feeds(&self) -> Result<BTreeMap<String, LastFeed>, StateError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT school, at, run_id FROM school_feeds")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?))
            })
            .map_err(|e| self.err(e))?;
        let mut out = BTreeMap::new();
        for row in rows {
            let (school, at, run_id) = row.map_err(|e| self.err(e))?;
            if let Ok(at) = DateTime::parse_from_rfc3339(&at) {
                out.insert(
                    school,
                    LastFeed {
                        at: at.with_timezone(&Utc),
                        run_id,
                    },
                );
            }
        }
        Ok(out)
    }
}

impl Engine {
    /// Records that `school`'s feed arrived now (run `run_id`). A failure is
    /// logged: the import it belongs to has committed already.
    pub(crate) fn feed_arrived(&self, school: &str, run_id: &str) {
        if let Err(e) = self.state.record_feed(school, Utc::now(), run_id) {
            tracing::warn!(school, error = %e, "cannot record the school's last feed");
        }
    }

    /// Every school's last feed, by lowercase name.
    pub fn last_feeds(&self) -> EngineResult<BTreeMap<String, LastFeed>> {
        Ok(self.state.last_feeds()?)
    }

    /// Schools (not the limbo school) whose last feed is stale.
    pub fn stale_schools(&self) -> EngineResult<Vec<String>> {
        let feeds = self.last_feeds()?;
        let now = Utc::now();
        let limbo = &self.config().import.limbo_school;
        Ok(self
            .dir
            .schools()?
            .into_iter()
            .filter(|s| &s.name != limbo && self.freshness(feeds.get(&s.name.to_lowercase()), now).stale)
            .map(|s| s.name)
            .collect())
    }

    /// The freshness of a school given its last feed, now.
    pub fn freshness(&self, last: Option<&LastFeed>, now: DateTime<Utc>) -> Freshness {
        let days = i64::from(self.config().import.stale_after_days);
        let age = last.map(|l| (now - l.at).num_seconds().max(0));
        Freshness {
            last_feed_at: last.map(|l| l.at),
            last_feed_age_seconds: age,
            stale: age.is_some_and(|a| a > days * 86_400),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_newest_feed_wins_case_insensitively() {
        let db = StateDb::in_memory().unwrap();
        let t0 = Utc::now() - chrono::Duration::days(9);
        let t1 = Utc::now();
        db.record_feed("GS-Nord", t1, "r1").unwrap();
        db.record_feed("gs-nord", t0, "r0").unwrap();
        let feeds = db.last_feeds().unwrap();
        assert_eq!(feeds.len(), 1);
        assert_eq!(feeds["gs-nord"].run_id, "r1");
    }
}
