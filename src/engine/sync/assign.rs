//! Schools to sync: which schools each authority receives. The TOML's
//! `schools` list is the starting point; `sync-schools add|remove` records
//! changes in `state.sqlite` (table `sync_schools`), so they survive
//! restarts and config reloads:
//!
//! * effective schools = (TOML `schools` ∪ data-dir `assigned`) −
//!   data-dir `excluded`;
//! * `add` records `assigned` (and drops an exclusion);
//! * `remove` drops the `assigned` record and, when the TOML lists the
//!   school (or `*`), records `excluded` so the TOML cannot bring it back.
//!
//! Every change is audited. The distributor, the sender and verify all read
//! the effective list through [`Engine::authority`], so a change holds
//! from the next journal entry on.

use super::item::Reason;
use super::queue::Enqueued;
use super::schedule::Scheduled;
use crate::engine::state::{Migration, StateDb, StateError};
use crate::engine::{Engine, EngineError, EngineResult, io_error};
use chrono::{DateTime, Utc};
use rusqlite::params;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

pub const MIGRATIONS: &[Migration] = &[Migration {
    name: "sync-schools-1",
    sql: r#"
CREATE TABLE sync_schools (
    authority TEXT NOT NULL,
    school    TEXT NOT NULL,
    -- 'assigned' or 'excluded'
    state     TEXT NOT NULL,
    at        TEXT NOT NULL,
    by        TEXT NOT NULL,
    PRIMARY KEY (authority, school)
);
"#,
}];

/// One data-dir record.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Record {
    pub school: String,
    pub excluded: bool,
    pub at: DateTime<Utc>,
    pub by: String,
}

impl StateDb {
    pub fn school_records(&self, authority: &str) -> Result<Vec<Record>, StateError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT school, state, at, by FROM sync_schools WHERE authority = ?1 ORDER BY school")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([authority], |r| {
                let at: String = r.get(2)?;
                Ok(Record {
                    school: r.get(0)?,
                    excluded: r.get::<_, String>(1)? == "excluded",
                    at: DateTime::parse_from_rfc3339(&at)
                        .map(|t| t.with_timezone(&Utc))
                        .unwrap_or_default(),
                    by: r.get(3)?,
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(|e| self.err(e))
    }

    fn school_set(&self, authority: &str, school: &str, state: Option<&str>, by: &str) -> Result<(), StateError> {
        let r = match state {
            Some(state) => self.conn.execute(
                "INSERT INTO sync_schools (authority, school, state, at, by) VALUES (?1, ?2, ?3, ?4, ?5) \
                 ON CONFLICT (authority, school) DO UPDATE SET state = ?3, at = ?4, by = ?5",
                params![
                    authority,
                    school,
                    state,
                    Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                    by
                ],
            ),
            None => self.conn.execute(
                "DELETE FROM sync_schools WHERE authority = ?1 AND school = ?2",
                params![authority, school],
            ),
        };
        r.map(|_| ()).map_err(|e| self.err(e))
    }
}

/// Where an assignment comes from.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AssignedSchool {
    pub school: String,
    /// `config` (the TOML lists it, or `*`), `data_dir` (`sync-schools
    /// add`), or `config+data_dir`.
    pub source: &'static str,
    /// When and by whom the data-dir record was written (none for config).
    pub since: Option<DateTime<Utc>>,
    pub by: Option<String>,
}

/// `sync-schools list`: one authority's schools.
#[derive(Clone, Debug, Serialize)]
pub struct AuthoritySchools {
    pub authority: String,
    pub kind: &'static str,
    pub active: bool,
    /// The TOML says `schools = ["*"]`: every school (but the excluded).
    pub config_all: bool,
    pub schools: Vec<AssignedSchool>,
    /// Config schools taken away with `sync-schools remove`.
    pub excluded: Vec<AssignedSchool>,
}

/// What `sync-schools add|remove` did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct SchoolsChanged {
    pub authority: String,
    /// `add` or `remove`.
    pub action: &'static str,
    /// The schools the command changed.
    pub schools: Vec<String>,
    /// Of those, the ones that were assigned already (`--force` on add) or
    /// not assigned (`--force` on remove).
    pub forced: Vec<String>,
    /// `--all-schools` without `--force`: schools already assigned, left
    /// alone.
    pub skipped: Vec<String>,
    /// Whether objects were scheduled (`--initial-sync`,
    /// `--delete-on-target`).
    pub schedule: bool,
    /// Objects queued for the authority.
    pub scheduled: Scheduled,
}

/// `sync-schools add`.
#[derive(Clone, Debug, Default)]
pub struct SchoolsAdd {
    pub authority: String,
    pub schools: Vec<String>,
    pub all_schools: bool,
    pub initial_sync: bool,
    pub force: bool,
}

/// `sync-schools remove`.
#[derive(Clone, Debug, Default)]
pub struct SchoolsRemove {
    pub authority: String,
    pub schools: Vec<String>,
    pub delete_on_target: bool,
    pub force: bool,
}

impl Engine {
    /// The TOML list (may hold `*`) merged with the data dir's records:
    /// (schools, excluded).
    pub(crate) fn effective_schools(&self, name: &str) -> EngineResult<(Vec<String>, BTreeSet<String>)> {
        let config: Vec<String> = self
            .config()
            .authorities
            .get(name)
            .map(|a| a.schools.clone())
            .unwrap_or_default();
        let mut schools: BTreeSet<String> = config.into_iter().collect();
        let mut excluded = BTreeSet::new();
        for r in self.state.school_records(name)? {
            if r.excluded {
                schools.remove(&r.school);
                excluded.insert(r.school);
            } else {
                schools.insert(r.school);
            }
        }
        Ok((schools.into_iter().collect(), excluded))
    }

    /// `sync-schools list`.
    pub fn sync_schools_list(&self, only: Option<&str>) -> EngineResult<Vec<AuthoritySchools>> {
        let mut out = Vec::new();
        for a in self.authorities_selected(only)? {
            let config: BTreeSet<&String> = a.config.schools.iter().collect();
            let config_all = a.config.schools.iter().any(|s| s == "*");
            let records: BTreeMap<String, super::assign::Record> = self
                .state
                .school_records(&a.name)?
                .into_iter()
                .map(|r| (r.school.clone(), r))
                .collect();
            let mut names: BTreeSet<String> = config.iter().map(|s| s.to_string()).collect();
            names.extend(records.keys().cloned());
            let mut schools = Vec::new();
            let mut excluded = Vec::new();
            for name in names {
                let record = records.get(&name);
                let in_config = config.contains(&name);
                let entry = |source| AssignedSchool {
                    school: name.clone(),
                    source,
                    since: record.map(|r| r.at),
                    by: record.map(|r| r.by.clone()),
                };
                match record {
                    Some(r) if r.excluded => excluded.push(entry("config")),
                    Some(_) if in_config => schools.push(entry("config+data_dir")),
                    Some(_) => schools.push(entry("data_dir")),
                    None => schools.push(entry("config")),
                }
            }
            out.push(AuthoritySchools {
                authority: a.name.clone(),
                kind: a.config.kind.as_str(),
                active: a.config.active,
                config_all,
                schools,
                excluded,
            });
        }
        Ok(out)
    }

    fn by(&self) -> String {
        let a = self.audit.actor();
        match &a.sudo_user {
            Some(s) => format!("{} (sudo {s})", a.user),
            None => a.user.clone(),
        }
    }

    /// Queues every object of `schools` for one authority.
    fn schedule_schools(&self, authority: &str, schools: &[String], reason: Reason) -> EngineResult<Scheduled> {
        let a = self.authority(authority)?;
        let mut out = Scheduled::default();
        for school in schools {
            let items = self.school_items(school, reason)?;
            out.objects += items.len() as u64;
            for chunk in items.chunks(5000) {
                for r in a.queue.enqueue_many(chunk).map_err(io_error(a.queue.root()))? {
                    let map = match r {
                        Enqueued::Created => &mut out.queued,
                        Enqueued::Coalesced => &mut out.coalesced,
                    };
                    *map.entry(a.name.clone()).or_default() += 1;
                }
            }
        }
        Ok(out)
    }

    /// `sync-schools add`: assigns schools to an authority and (with
    /// initial sync) queues all their objects for it.
    pub fn sync_schools_add(&mut self, req: &SchoolsAdd) -> EngineResult<SchoolsChanged> {
        self.check_writable("sync-schools add")?;
        let a = self.authority(&req.authority)?;
        let limbo = self.config().import.limbo_school.clone();
        let mut schools: Vec<String> = if req.all_schools {
            if !req.schools.is_empty() {
                return Err(EngineError::Usage("give SCHOOL… or --all-schools, not both".into()));
            }
            self.dir
                .schools()?
                .into_iter()
                .map(|s| s.name)
                .filter(|s| *s != limbo)
                .collect()
        } else {
            req.schools
                .iter()
                .map(|s| self.resolve_school(s))
                .collect::<EngineResult<_>>()?
        };
        schools.sort();
        schools.dedup();
        if schools.is_empty() {
            return Err(EngineError::Usage(
                "no school given: name schools or use --all-schools".into(),
            ));
        }
        let mut forced = Vec::new();
        let mut refused = Vec::new();
        for s in &schools {
            if *s == limbo {
                return Err(EngineError::Usage(format!(
                    "'{s}' is the limbo school; it is never synced"
                )));
            }
            if self.dir.school(s)?.is_none() {
                return Err(EngineError::NotFound(format!(
                    "no school '{s}' in the directory (see `rollcall schools list`)"
                )));
            }
            if a.mapper.scope.contains(s) {
                if req.force {
                    forced.push(s.clone());
                } else {
                    refused.push(s.clone());
                }
            }
        }
        if !refused.is_empty() && !req.all_schools {
            let detail = serde_json::json!({"authority": req.authority, "schools": refused});
            self.audit
                .record("sync-schools add", detail, "refused: already assigned");
            return Err(EngineError::Refused(format!(
                "{} already assigned to {}: nothing done; use --force to assign and schedule again",
                refused.join(", "),
                req.authority
            )));
        }
        // --all-schools without --force adds the schools not yet assigned.
        schools.retain(|s| !refused.contains(s));
        let skipped = refused;
        let by = self.by();
        for s in &schools {
            self.state.school_set(&req.authority, s, Some("assigned"), &by)?;
        }
        let scheduled = if req.initial_sync {
            self.schedule_schools(&req.authority, &schools, Reason::Schedule)?
        } else {
            Scheduled::default()
        };
        self.audit.record(
            "sync-schools add",
            serde_json::json!({
                "authority": req.authority, "schools": schools, "forced": forced,
                "initial_sync": req.initial_sync, "objects": scheduled.objects,
            }),
            "ok",
        );
        Ok(SchoolsChanged {
            authority: req.authority.clone(),
            action: "add",
            schools,
            forced,
            skipped,
            schedule: req.initial_sync,
            scheduled,
        })
    }

    /// `sync-schools remove`: takes schools from an authority and (with
    /// delete on target) queues their objects, which the sender then
    /// removes: groups are deleted, and users without another school synced
    /// to the authority are deleted (even where `on_removal = "deactivate"`
    /// would keep a leaver; items of reason `unassigned`).
    pub fn sync_schools_remove(&mut self, req: &SchoolsRemove) -> EngineResult<SchoolsChanged> {
        self.check_writable("sync-schools remove")?;
        let a = self.authority(&req.authority)?;
        let mut schools: Vec<String> = req
            .schools
            .iter()
            .map(|s| self.resolve_school(s))
            .collect::<EngineResult<_>>()?;
        schools.sort();
        schools.dedup();
        if schools.is_empty() {
            return Err(EngineError::Usage("no school given".into()));
        }
        let mut forced = Vec::new();
        let mut refused = Vec::new();
        for s in &schools {
            if !a.mapper.scope.contains(s) {
                if req.force {
                    forced.push(s.clone());
                } else {
                    refused.push(s.clone());
                }
            }
        }
        if !refused.is_empty() {
            let detail = serde_json::json!({"authority": req.authority, "schools": refused});
            self.audit
                .record("sync-schools remove", detail, "refused: not assigned");
            return Err(EngineError::Refused(format!(
                "{} not assigned to {}: nothing done; use --force to remove it from the target anyway",
                refused.join(", "),
                req.authority
            )));
        }
        let in_config = |s: &String| a.config.schools.iter().any(|c| c == s || c == "*");
        let by = self.by();
        for s in &schools {
            let state = in_config(s).then_some("excluded");
            self.state.school_set(&req.authority, s, state, &by)?;
        }
        let scheduled = if req.delete_on_target {
            self.schedule_schools(&req.authority, &schools, Reason::Unassigned)?
        } else {
            Scheduled::default()
        };
        self.audit.record(
            "sync-schools remove",
            serde_json::json!({
                "authority": req.authority, "schools": schools, "forced": forced,
                "delete_on_target": req.delete_on_target, "objects": scheduled.objects,
            }),
            "ok",
        );
        Ok(SchoolsChanged {
            authority: req.authority.clone(),
            action: "remove",
            schools,
            forced,
            skipped: Vec::new(),
            schedule: req.delete_on_target,
            scheduled,
        })
    }
}
