//! Queueing objects fresh, outside the journal: `schedule user|group|school`
//! and `resync`. Items are the same as the distributor's; the sender reads
//! the current state, so scheduling is always safe to repeat.

use super::authority::Authority;
use super::item::{QueueItem, Reason};
use super::queue::Enqueued;
use crate::engine::jobs::{Progress, ProgressEvent};
use crate::engine::{Engine, EngineError, EngineResult, io_error};
use crate::model::{GroupKey, GroupKind, ObjectRef, User};
use crate::store::UserQuery;
use serde::Serialize;
use std::collections::BTreeMap;

/// What a schedule or resync queued.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Scheduled {
    /// The objects asked for (`user:…`, `class:…`, `school:…`).
    pub objects: u64,
    /// New items per authority.
    pub queued: BTreeMap<String, u64>,
    /// Objects that already had a waiting item, per authority.
    pub coalesced: BTreeMap<String, u64>,
}

/// Items queued per write (one syncfs each).
const CHUNK: usize = 5000;

fn user_items(user: &User, reason: Reason) -> Vec<QueueItem> {
    let schools: Vec<String> = user.school_names().map(str::to_string).collect();
    let mut items = vec![QueueItem::new(ObjectRef::user(&user.key), schools, reason)];
    for m in &user.memberships {
        for (kind, names) in [(GroupKind::Class, &m.classes), (GroupKind::Workgroup, &m.workgroups)] {
            for n in names {
                let key = GroupKey::new(m.school.clone(), kind, n.clone());
                items.push(QueueItem::new(ObjectRef::group(&key), [m.school.clone()], reason));
            }
        }
    }
    items
}

impl Scheduled {
    fn add(&mut self, authority: &str, results: &[Enqueued]) {
        for r in results {
            let map = match r {
                Enqueued::Created => &mut self.queued,
                Enqueued::Coalesced => &mut self.coalesced,
            };
            *map.entry(authority.to_string()).or_default() += 1;
        }
    }
}

impl Engine {
    /// Objects that go along with `object` when it is scheduled: a user's
    /// classes and workgroups (so memberships it missed are made good).
    pub(crate) fn companions(&self, object: &ObjectRef, reason: Reason) -> EngineResult<Vec<QueueItem>> {
        if let ObjectRef::User { source_uid, record_uid } = object
            && let Some(u) = self
                .dir
                .user(&crate::model::UserKey::new(source_uid.clone(), record_uid.clone()))?
        {
            return Ok(user_items(&u, reason).into_iter().skip(1).collect());
        }
        Ok(Vec::new())
    }

    fn active_authorities(&self) -> EngineResult<Vec<Authority>> {
        Ok(self
            .authorities_selected(None)?
            .into_iter()
            .filter(|a| a.config.active)
            .collect())
    }

    fn enqueue_everywhere(&self, items: &[QueueItem], what: &str) -> EngineResult<Scheduled> {
        let mut out = Scheduled {
            objects: items.len() as u64,
            ..Scheduled::default()
        };
        let authorities = self.active_authorities()?;
        if authorities.is_empty() {
            return Err(EngineError::WrongState(format!(
                "no active authority to schedule {what} for (see `rollcall authorities list`)"
            )));
        }
        for a in authorities {
            let r = a.queue.enqueue_many(items).map_err(io_error(a.queue.root()))?;
            out.add(&a.name, &r);
        }
        Ok(out)
    }

    /// `schedule user USERNAME`: the user and its groups, for every active
    /// authority (where it does not belong, the send removes or ignores it).
    pub fn schedule_user(&mut self, username: &str) -> EngineResult<Scheduled> {
        self.check_writable("schedule user")?;
        let user = self
            .dir
            .user_by_username(username)?
            .ok_or_else(|| EngineError::NotFound(format!("no user '{username}'")))?;
        let out = self.enqueue_everywhere(&user_items(&user, Reason::Schedule), &format!("user {username}"))?;
        self.audit
            .record("schedule user", serde_json::json!({"username": username}), "ok");
        Ok(out)
    }

    /// Finds a group by `class:SCHOOL:NAME`, `workgroup:SCHOOL:NAME` or the
    /// name remote systems show, `SCHOOL-NAME`.
    pub fn find_group(&self, spec: &str) -> EngineResult<GroupKey> {
        if let Ok(ObjectRef::Group {
            school,
            group_kind,
            name,
        }) = spec.parse::<ObjectRef>()
        {
            let key = GroupKey::new(school, group_kind, name);
            return match self.dir.group(&key)? {
                Some(_) => Ok(key),
                None => Err(EngineError::NotFound(format!("no group '{spec}'"))),
            };
        }
        let mut found = Vec::new();
        for (i, _) in spec.match_indices('-') {
            let (school, name) = (&spec[..i], &spec[i + 1..]);
            for kind in [GroupKind::Class, GroupKind::Workgroup] {
                let key = GroupKey::new(school, kind, name);
                if self.dir.group(&key)?.is_some() {
                    found.push(key);
                }
            }
        }
        match found.len() {
            0 => Err(EngineError::NotFound(format!(
                "no group '{spec}' (give SCHOOL-NAME or class:SCHOOL:NAME)"
            ))),
            1 => Ok(found.remove(0)),
            _ => Err(EngineError::Usage(format!(
                "'{spec}' names several groups ({}); give one as class:SCHOOL:NAME or workgroup:SCHOOL:NAME",
                found
                    .iter()
                    .map(|k| ObjectRef::group(k).to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
        }
    }

    pub fn schedule_group(&mut self, spec: &str) -> EngineResult<Scheduled> {
        self.check_writable("schedule group")?;
        let key = self.find_group(spec)?;
        let item = QueueItem::new(ObjectRef::group(&key), [key.school.clone()], Reason::Schedule);
        let out = self.enqueue_everywhere(&[item], &format!("group {spec}"))?;
        self.audit.record(
            "schedule group",
            serde_json::json!({"group": ObjectRef::group(&key).to_string()}),
            "ok",
        );
        Ok(out)
    }

    /// Every object of one school: the school, its users, its groups,
    /// written by `workers` threads, for the authorities that sync it.
    pub fn schedule_school(&mut self, school: &str, workers: usize) -> EngineResult<Scheduled> {
        self.check_writable("schedule school")?;
        let school = &self.resolve_school(school)?;
        if self.dir.school(school)?.is_none() {
            return Err(EngineError::NotFound(format!("no school '{school}'")));
        }
        let items = self.school_items(school, Reason::Schedule)?;
        let authorities: Vec<Authority> = self
            .active_authorities()?
            .into_iter()
            .filter(|a| a.mapper.scope.contains(school))
            .collect();
        if authorities.is_empty() {
            return Err(EngineError::WrongState(format!(
                "no active authority syncs school '{school}'"
            )));
        }
        let mut out = Scheduled {
            objects: items.len() as u64,
            ..Scheduled::default()
        };
        let workers = workers.clamp(1, 64);
        let per = items.len().div_ceil(workers).max(1);
        for a in &authorities {
            let results: Vec<std::io::Result<Vec<Enqueued>>> = std::thread::scope(|s| {
                let handles: Vec<_> = items
                    .chunks(per)
                    .map(|chunk| s.spawn(|| a.queue.enqueue_many(chunk)))
                    .collect();
                handles
                    .into_iter()
                    .map(|h| {
                        h.join()
                            .unwrap_or_else(|_| Err(std::io::Error::other("worker panicked")))
                    })
                    .collect()
            });
            for r in results {
                out.add(&a.name, &r.map_err(io_error(a.queue.root()))?);
            }
        }
        self.audit.record(
            "schedule school",
            serde_json::json!({"school": school, "workers": workers, "objects": out.objects}),
            "ok",
        );
        Ok(out)
    }

    pub(crate) fn school_items(&self, school: &str, reason: Reason) -> EngineResult<Vec<QueueItem>> {
        let mut items = vec![QueueItem::new(ObjectRef::school(school), [school.to_string()], reason)];
        self.dir.for_each_user(
            &UserQuery {
                school: Some(school.to_string()),
                ..UserQuery::default()
            },
            &mut |u| {
                items.push(QueueItem::new(
                    ObjectRef::user(&u.key),
                    u.school_names().map(str::to_string),
                    reason,
                ));
                true
            },
        )?;
        for g in self.dir.groups(Some(school), None)? {
            items.push(QueueItem::new(ObjectRef::group(&g.key), [school.to_string()], reason));
        }
        Ok(items)
    }

    /// `resync`: every school, user and group an authority should hold,
    /// queued afresh (all active authorities, or the one named).
    pub fn resync(&mut self, authority: Option<&str>, progress: &mut dyn Progress) -> EngineResult<Scheduled> {
        self.check_writable("resync")?;
        let authorities: Vec<Authority> = self
            .authorities_selected(authority)?
            .into_iter()
            .filter(|a| a.config.active)
            .collect();
        if authorities.is_empty() {
            return Err(EngineError::WrongState("no active authority to resync".into()));
        }
        let mut out = Scheduled::default();
        let schools = self.dir.schools()?;
        for a in &authorities {
            let mut done = 0u64;
            // Items of several schools go to the queue together: each
            // `enqueue_many` pays one filesystem sync, whatever its size.
            let mut pending: Vec<QueueItem> = Vec::new();
            let mut in_scope = schools.iter().filter(|s| a.mapper.scope.contains(&s.name)).peekable();
            while let Some(s) = in_scope.next() {
                pending.extend(self.school_items(&s.name, Reason::Resync)?);
                let last = in_scope.peek().is_none();
                while pending.len() >= CHUNK || (last && !pending.is_empty()) {
                    let chunk: Vec<QueueItem> = pending.drain(..pending.len().min(CHUNK)).collect();
                    let r = a.queue.enqueue_many(&chunk).map_err(io_error(a.queue.root()))?;
                    out.add(&a.name, &r);
                    done += chunk.len() as u64;
                    out.objects += chunk.len() as u64;
                    progress.update(ProgressEvent {
                        phase: "queueing",
                        done,
                        total: None,
                    });
                }
                if progress.cancelled() {
                    return Err(EngineError::Cancelled("resync".into()));
                }
            }
        }
        self.audit.record(
            "resync",
            serde_json::json!({"authority": authority, "objects": out.objects, "queued": out.queued}),
            "ok",
        );
        Ok(out)
    }
}
