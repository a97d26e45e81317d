//! The distributor: reads the journal after each authority's cursor and
//! fans every entry out to the out-queue of each active authority that
//! syncs one of the object's schools (old or new). Items coalesce per
//! object, so a flood of changes to few objects leaves few files. Cursors
//! live in `state.sqlite` and only move forward; running two distributors
//! at once queues nothing twice (coalescing) and loses nothing.

use super::authority::Authority;
use super::item::{QueueItem, Reason};
use crate::engine::config::Config;
use crate::engine::state::StateDb;
use crate::engine::{Engine, EngineResult, io_error};
use crate::model::ObjectRef;
use crate::store::Directory;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// Journal entries read per step.
const PAGE: usize = 5000;

#[derive(Clone, Debug, Default, Serialize)]
pub struct Distributed {
    pub entries: u64,
    /// Items written, per authority.
    pub queued: BTreeMap<String, u64>,
    /// Changes that joined a waiting item, per authority.
    pub coalesced: BTreeMap<String, u64>,
}

/// Starts the cursor of every configured authority not seen before at the
/// journal's head: it receives changes from now on.
pub fn register(state: &StateDb, dir: &dyn Directory, config: &Config) -> EngineResult<()> {
    if config.authorities.is_empty() {
        return Ok(());
    }
    let head = dir.journal_head()?;
    for name in config.authorities.keys() {
        state.sync_register(name, head)?;
    }
    Ok(())
}

fn touches(authority: &Authority, object: &ObjectRef, schools: &[String]) -> bool {
    let scope = &authority.mapper.scope;
    match object {
        ObjectRef::School { name } => scope.contains(name) || schools.iter().any(|s| scope.contains(s)),
        // A user in limbo may be held deactivated by any authority that
        // keeps leavers: its purge must reach them all.
        ObjectRef::User { .. } if authority.mapper.keeps_leavers() && schools.iter().any(|s| scope.is_limbo(s)) => true,
        _ => scope.any(schools.iter().map(String::as_str)),
    }
}

impl Engine {
    /// Moves journal entries into the queues of the active authorities
    /// (all, or the one named).
    pub fn distribute(&mut self, only: Option<&str>) -> EngineResult<Distributed> {
        self.check_writable("sync distribute")?;
        let authorities: Vec<Authority> = self
            .authorities_selected(only)?
            .into_iter()
            .filter(|a| a.config.active)
            .collect();
        let mut report = Distributed::default();
        if authorities.is_empty() {
            return Ok(report);
        }
        // One distributor at a time (a daemon and a console may both run):
        // two reading the same entries could queue an object twice.
        let out = self.settings().paths.queues().join("out");
        crate::engine::paths::create_private_dir(&out).map_err(io_error(&out))?;
        let lock_path = out.join(".distribute.lock");
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io_error(&lock_path))?;
        lock.lock().map_err(io_error(&lock_path))?;
        let mut cursors = Vec::with_capacity(authorities.len());
        for a in &authorities {
            cursors.push(self.state.sync_state(&a.name)?.map(|s| s.cursor).unwrap_or(0));
        }
        let Some(mut from) = cursors.iter().copied().min() else {
            return Ok(report);
        };
        loop {
            let entries = self.dir.journal_after(from, PAGE)?;
            let Some(last) = entries.last().map(|e| e.seq) else {
                break;
            };
            report.entries += entries.len() as u64;
            for (a, cursor) in authorities.iter().zip(cursors.iter_mut()) {
                // One item per object per page, with every school seen.
                let mut page: BTreeMap<&ObjectRef, BTreeSet<String>> = BTreeMap::new();
                let mut changes = 0u64;
                for e in entries.iter().filter(|e| e.seq > *cursor) {
                    if touches(a, &e.object, &e.schools) {
                        changes += 1;
                        page.entry(&e.object).or_default().extend(e.schools.iter().cloned());
                    }
                }
                let items: Vec<QueueItem> = page
                    .into_iter()
                    .map(|(object, schools)| QueueItem::new(object.clone(), schools, Reason::Change))
                    .collect();
                let results = a.queue.enqueue_many(&items).map_err(io_error(a.queue.root()))?;
                let created = results
                    .iter()
                    .filter(|r| **r == super::queue::Enqueued::Created)
                    .count() as u64;
                *report.queued.entry(a.name.clone()).or_default() += created;
                *report.coalesced.entry(a.name.clone()).or_default() += changes.saturating_sub(created);
                self.state.sync_advance(&a.name, last)?;
                *cursor = (*cursor).max(last);
            }
            from = last;
            if entries.len() < PAGE {
                break;
            }
        }
        Ok(report)
    }
}
