//! What `sync-schools add|remove` would do, before it is done (the CLI's
//! `--dry-run`, the console's confirmation): how many objects would be
//! queued for the authority, how many of them would be sent, deleted on the
//! target or skipped, and how many would fail to map (and so go to the
//! trash at their first try — a missing e-mail where the authority's
//! `userName` comes from it, say), with the first reasons. Each object is
//! mapped with the authority's schools as they would be after the change,
//! exactly as the sender will map it. Nothing is written.
//!
//! The defaults of the options live here too, so the CLI and the console
//! offer the same ones.

use super::assign::{SchoolsAdd, SchoolsRemove};
use super::item::{Reason, file_name};
use super::mapping::{Desired, Mapper};
use crate::engine::{Engine, EngineError, EngineResult};
use serde::Serialize;
use std::collections::BTreeSet;

impl SchoolsAdd {
    /// `--initial-sync` unless told otherwise: queue the schools' objects.
    pub const DEFAULT_INITIAL_SYNC: bool = true;
}

impl SchoolsRemove {
    /// `--delete-on-target` unless told otherwise: delete the schools'
    /// objects on the target.
    pub const DEFAULT_DELETE_ON_TARGET: bool = true;
}

/// Reasons shown for objects that would fail to map.
const FAILURES_SHOWN: usize = 5;

/// `sync-schools add|remove --dry-run`.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct SchoolsPreview {
    pub authority: String,
    /// `add` or `remove`.
    pub action: &'static str,
    pub schools: Vec<String>,
    /// Whether objects would be queued at all (initial sync, delete on
    /// target); without, only the assignment changes.
    pub schedule: bool,
    /// Objects that would be queued (users, groups, school groups).
    pub objects: u64,
    /// Of those, already waiting in the queue (they would join that item).
    pub waiting: u64,
    /// Would be created or updated on the target.
    pub send: u64,
    /// Would be deleted on the target.
    pub delete: u64,
    /// Nothing to send for them (e.g. schools when they are not groups).
    pub skip: u64,
    /// Would fail to map: trashed at their first try.
    pub unmappable: u64,
    /// The first of those, `object: reason`.
    pub failures: Vec<String>,
}

impl Engine {
    /// The authority's mapper with its schools changed: `added` in,
    /// `removed` out (as the config and data dir would then say).
    fn mapper_after(&self, authority: &str, added: &[String], removed: &[String]) -> EngineResult<Mapper> {
        let a = self.authority(authority)?;
        let (mut schools, mut excluded) = self.effective_schools(authority)?;
        for s in added {
            excluded.remove(s);
            if !schools.contains(s) {
                schools.push(s.clone());
            }
        }
        let in_config = |s: &String| a.config.schools.iter().any(|c| c == s || c == "*");
        for s in removed {
            schools.retain(|x| x != s);
            if in_config(s) {
                excluded.insert(s.clone());
            }
        }
        let mut mapper = Mapper::new(&a.config, &schools, &self.config().import.limbo_school);
        mapper.scope = mapper.scope.excluding(excluded);
        Ok(mapper)
    }

    /// Maps every object of `schools` as the sender would after the change.
    fn preview_schools(
        &self,
        authority: &str,
        schools: &[String],
        mapper: &Mapper,
        reason: Reason,
        out: &mut SchoolsPreview,
    ) -> EngineResult<()> {
        let a = self.authority(authority)?;
        let mut seen = BTreeSet::new();
        for school in schools {
            for item in self.school_items(school, reason)? {
                let name = file_name(&item.object);
                if !seen.insert(name.clone()) {
                    continue;
                }
                out.objects += 1;
                if a.queue.holds(&name) {
                    out.waiting += 1;
                }
                match mapper.desired(self.dir.as_ref(), &item.object, &item.schools) {
                    Ok(Desired::Present(_)) => out.send += 1,
                    // A leaver the authority would keep deactivated is
                    // deleted when its school is removed with delete on target.
                    Ok(Desired::Deactivated(_)) if reason == Reason::Unassigned => out.delete += 1,
                    Ok(Desired::Deactivated(_)) => out.send += 1,
                    Ok(Desired::Absent { .. }) => out.delete += 1,
                    Ok(Desired::Skip) => out.skip += 1,
                    Err(e) => {
                        out.unmappable += 1;
                        if out.failures.len() < FAILURES_SHOWN {
                            out.failures.push(e.to_string());
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// What `sync-schools add` would do: the same checks (and refusals),
    /// then every object mapped; nothing written.
    pub fn sync_schools_add_preview(&self, req: &SchoolsAdd) -> EngineResult<SchoolsPreview> {
        let a = self.authority(&req.authority)?;
        let limbo = self.config().import.limbo_school.clone();
        let mut schools: Vec<String> = if req.all_schools {
            self.dir
                .schools()?
                .into_iter()
                .map(|s| s.name)
                .filter(|s| *s != limbo && (req.force || !a.mapper.scope.contains(s)))
                .collect()
        } else {
            req.schools.clone()
        };
        schools.sort();
        schools.dedup();
        if schools.is_empty() && !req.all_schools {
            return Err(EngineError::Usage(
                "no school given: name schools or use --all-schools".into(),
            ));
        }
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
            if a.mapper.scope.contains(s) && !req.force {
                refused.push(s.clone());
            }
        }
        if !refused.is_empty() {
            return Err(EngineError::Refused(format!(
                "{} already assigned to {}: nothing would be done; use --force to assign and schedule again",
                refused.join(", "),
                req.authority
            )));
        }
        let mut out = SchoolsPreview {
            authority: req.authority.clone(),
            action: "add",
            schools: schools.clone(),
            schedule: req.initial_sync,
            ..SchoolsPreview::default()
        };
        if req.initial_sync {
            let mapper = self.mapper_after(&req.authority, &schools, &[])?;
            self.preview_schools(&req.authority, &schools, &mapper, Reason::Schedule, &mut out)?;
        }
        Ok(out)
    }

    /// What `sync-schools remove` would do: how many objects would be
    /// deleted on the target (and updated, for users still synced through
    /// another school); nothing written.
    pub fn sync_schools_remove_preview(&self, req: &SchoolsRemove) -> EngineResult<SchoolsPreview> {
        let a = self.authority(&req.authority)?;
        let mut schools = req.schools.clone();
        schools.sort();
        schools.dedup();
        if schools.is_empty() {
            return Err(EngineError::Usage("no school given".into()));
        }
        let refused: Vec<&String> = schools
            .iter()
            .filter(|s| !a.mapper.scope.contains(s) && !req.force)
            .collect();
        if !refused.is_empty() {
            return Err(EngineError::Refused(format!(
                "{} not assigned to {}: nothing would be done; use --force to remove it from the target anyway",
                refused.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", "),
                req.authority
            )));
        }
        let mut out = SchoolsPreview {
            authority: req.authority.clone(),
            action: "remove",
            schools: schools.clone(),
            schedule: req.delete_on_target,
            ..SchoolsPreview::default()
        };
        if req.delete_on_target {
            let mapper = self.mapper_after(&req.authority, &[], &schools)?;
            self.preview_schools(&req.authority, &schools, &mapper, Reason::Unassigned, &mut out)?;
        }
        Ok(out)
    }
}
