//! Schools: listing with member counts, and creating them.

use super::{Engine, EngineError, EngineResult};
use crate::model::{School, UserState, validate_school_name};
use crate::store::{Batch, UserQuery};
use serde::Serialize;

#[derive(Clone, Debug, Serialize)]
pub struct SchoolView {
    pub name: String,
    pub display_name: String,
    /// Users with this school (active, or in limbo for the limbo school).
    pub users: u64,
    pub limbo: bool,
    /// When its last feed arrived, and whether that is longer ago than
    /// `import.stale_after_days` (`last_feed_at`, `last_feed_age_seconds`,
    /// `stale`).
    #[serde(flatten)]
    pub feed: super::freshness::Freshness,
}

impl Engine {
    pub fn schools_list(&self) -> EngineResult<Vec<SchoolView>> {
        let limbo = &self.config().import.limbo_school;
        let feeds = self.last_feeds()?;
        let now = chrono::Utc::now();
        self.dir
            .schools()?
            .into_iter()
            .map(|s| {
                let users = self.dir.count_users(&UserQuery {
                    school: Some(s.name.clone()),
                    ..UserQuery::default()
                })?;
                Ok(SchoolView {
                    feed: self.freshness(feeds.get(&s.name.to_lowercase()), now),
                    limbo: &s.name == limbo,
                    name: s.name,
                    display_name: s.display_name,
                    users,
                })
            })
            .collect()
    }

    pub fn school_create(&mut self, name: &str, display_name: Option<&str>) -> EngineResult<School> {
        self.check_writable("schools create")?;
        validate_school_name(name).map_err(|e| EngineError::Invalid(e.to_string()))?;
        if self.dir.school(name)?.is_some() {
            return Err(EngineError::Invalid(format!("school '{name}' already exists")));
        }
        let school = School {
            name: name.to_string(),
            display_name: display_name.unwrap_or(name).to_string(),
        };
        self.dir.apply(&Batch {
            schools: vec![school.clone()],
            ..Batch::default()
        })?;
        self.audit.record(
            "schools create",
            serde_json::json!({"name": name, "display_name": school.display_name}),
            "ok",
        );
        Ok(school)
    }

    /// Users by state, for summaries.
    pub fn count_by_state(&self, state: UserState) -> EngineResult<u64> {
        Ok(self.dir.count_users(&UserQuery {
            state: Some(state),
            ..UserQuery::default()
        })?)
    }
}
