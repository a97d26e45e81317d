//! Verify: what an authority should hold against what it holds, and the
//! fix. The expected side is the directory's objects in the authority's
//! schools, mapped as the sender maps them ([`super::mapping`]); the actual
//! side is the target's listing ([`Target::list`], paginated: never one
//! request per object). Differences come in three kinds:
//!
//! * **missing**: should be on the target and is not;
//! * **unexpected**: on the target, ours by its external id (a user key of a
//!   known source, `school:…`, `class:…`, `workgroup:…`), and not expected;
//!   objects without such an external id are foreign and never touched;
//! * **different**: field by field over the attributes the mapping owns,
//!   and for groups their members (by the members' external ids).
//!
//! `--fix` queues the missing and different objects and the unexpected ones
//! (whose send deletes them, since the directory no longer wants them): the
//! sender settles everything, so a drained queue verifies clean. The
//! comparison itself lives in [`compare`].

mod compare;
mod expected;

use super::filter::{Filter, FilterError};
use super::item::{QueueItem, Reason};
use super::mapping::Class;
use super::queue::Enqueued;
use crate::engine::jobs::{Progress, ProgressEvent};
use crate::engine::{Engine, EngineError, EngineResult, io_error};
use crate::model::ObjectRef;
use serde::Serialize;
use serde_json::Value;
use std::time::Instant;

pub use compare::FIELDS_MEMBERS;
pub(crate) use compare::field_differences;
pub use expected::FILTER_ATTRIBUTES;

/// What to verify.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum VerifyKind {
    Schools,
    Classes,
    Workgroups,
    Users,
    All,
}

impl VerifyKind {
    pub fn as_str(self) -> &'static str {
        match self {
            VerifyKind::Schools => "schools",
            VerifyKind::Classes => "classes",
            VerifyKind::Workgroups => "workgroups",
            VerifyKind::Users => "users",
            VerifyKind::All => "all",
        }
    }

    fn includes(self, k: ObjectKind) -> bool {
        matches!(
            (self, k),
            (VerifyKind::All, _)
                | (VerifyKind::Schools, ObjectKind::School)
                | (VerifyKind::Classes, ObjectKind::Class)
                | (VerifyKind::Workgroups, ObjectKind::Workgroup)
                | (VerifyKind::Users, ObjectKind::User)
        )
    }

    fn groups(self) -> bool {
        self != VerifyKind::Users
    }
}

/// The kind of one object.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ObjectKind {
    School,
    Class,
    Workgroup,
    User,
}

impl ObjectKind {
    fn of(object: &ObjectRef) -> Self {
        match object {
            ObjectRef::School { .. } => ObjectKind::School,
            ObjectRef::User { .. } => ObjectKind::User,
            ObjectRef::Group { group_kind, .. } => match group_kind {
                crate::model::GroupKind::Class => ObjectKind::Class,
                crate::model::GroupKind::Workgroup => ObjectKind::Workgroup,
            },
        }
    }
}

/// `verify` as asked.
#[derive(Clone, Debug)]
pub struct VerifyRequest {
    pub authority: String,
    pub kind: VerifyKind,
    /// RFC 4515 filter over [`FILTER_ATTRIBUTES`].
    pub filter: Option<String>,
    pub fix: bool,
}

/// On the target, not there.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Missing {
    pub kind: ObjectKind,
    /// `user:SOURCE:RECORD`, `class:SCHOOL:NAME`, `school:NAME`…
    pub object: String,
    pub external_id: String,
    /// userName or displayName.
    pub name: String,
}

/// Ours on the target, but not expected there.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Unexpected {
    pub kind: ObjectKind,
    pub object: String,
    pub external_id: String,
    /// The target's own id.
    pub id: String,
    /// userName or displayName as the target has it.
    pub name: Option<String>,
}

/// One attribute that differs.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FieldDifference {
    /// The target attribute path (`name.familyName`, `active`, `members`).
    pub attribute: String,
    /// What the directory says (`null`: the attribute should be absent).
    /// For `members`: the members the target lacks (external ids).
    pub expected: Value,
    /// What the target holds (`null`: absent). For `members`: the members
    /// it holds that it should not (external ids, or its own ids when the
    /// member is not one of our users).
    pub actual: Value,
}

/// On both sides, not the same.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Different {
    pub kind: ObjectKind,
    pub object: String,
    pub external_id: String,
    pub id: String,
    pub name: String,
    pub fields: Vec<FieldDifference>,
}

/// What `--fix` queued.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Fixed {
    /// New queue items.
    pub queued: u64,
    /// Objects that already had a waiting item.
    pub coalesced: u64,
    /// The objects queued (`user:…`, `class:…`), missing and different
    /// first, then the unexpected (to be deleted).
    pub objects: Vec<String>,
}

/// Counts per difference kind.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Counts {
    pub missing: u64,
    pub unexpected: u64,
    pub different: u64,
}

/// The result of one verify.
#[derive(Clone, Debug, Serialize)]
pub struct VerifyReport {
    pub authority: String,
    /// `scim`, `ldap`, `embedded`.
    pub target: &'static str,
    pub kind: VerifyKind,
    pub filter: Option<String>,
    /// No differences.
    pub clean: bool,
    /// Objects the directory says the target should hold (after the filter).
    pub expected: u64,
    /// Objects of ours listed on the target (after the filter).
    pub actual: u64,
    /// Objects on the target that are not ours (never touched).
    pub foreign: u64,
    pub counts: Counts,
    pub missing: Vec<Missing>,
    pub unexpected: Vec<Unexpected>,
    pub different: Vec<Different>,
    /// With `--fix`: what was queued.
    pub fixed: Option<Fixed>,
    pub seconds: f64,
}

fn filter_error(e: FilterError) -> EngineError {
    EngineError::Usage(format!("--filter: {e}"))
}

impl Engine {
    /// `verify KIND --authority NAME [--filter F] [--fix]`.
    pub fn verify(&mut self, req: &VerifyRequest, progress: &mut dyn Progress) -> EngineResult<VerifyReport> {
        if req.fix {
            self.check_writable("verify --fix")?;
        }
        let t0 = Instant::now();
        let filter = req
            .filter
            .as_deref()
            .map(|f| Filter::parse(f, FILTER_ATTRIBUTES))
            .transpose()
            .map_err(filter_error)?;
        let authority = self.authority(&req.authority)?;
        let target = authority.open_target(self)?;
        let expected = expected::Expected::build(self, &authority, req.kind, filter.as_ref(), progress)?;
        if progress.cancelled() {
            return Err(EngineError::Cancelled("verify".into()));
        }

        // The target's listing, users first (group members may be listed by
        // the target's user ids).
        let mut cmp = compare::Comparison::new(&expected, &authority.mapper, req.kind, filter.as_ref());
        let classes: &[(Class, &'static str)] = if req.kind.groups() {
            &[(Class::User, "listing users"), (Class::Group, "listing groups")]
        } else {
            &[(Class::User, "listing users")]
        };
        for (class, phase) in classes {
            let mut n = 0u64;
            let mut cancelled = false;
            target.list(*class, &mut |o| {
                cmp.add(*class, o);
                n += 1;
                if n.is_multiple_of(1000) {
                    progress.update(ProgressEvent {
                        phase,
                        done: n,
                        total: None,
                    });
                    if progress.cancelled() {
                        cancelled = true;
                        return false;
                    }
                }
                true
            })?;
            if cancelled {
                return Err(EngineError::Cancelled("verify".into()));
            }
            progress.update(ProgressEvent {
                phase,
                done: n,
                total: Some(n),
            });
        }
        progress.update(ProgressEvent {
            phase: "comparing",
            done: 0,
            total: None,
        });
        let mut report = cmp.finish();
        report.authority = authority.name.clone();
        report.target = authority.config.kind.as_str();
        report.filter = req.filter.clone();

        if req.fix && !report.clean {
            report.fixed = Some(self.verify_fix(&authority, &report)?);
        }
        report.seconds = t0.elapsed().as_secs_f64();
        let detail = serde_json::json!({
            "authority": report.authority, "kind": req.kind.as_str(), "filter": req.filter,
            "fix": req.fix, "counts": report.counts,
            "queued": report.fixed.as_ref().map(|f| f.queued),
        });
        self.audit.record(
            if req.fix { "verify --fix" } else { "verify" },
            detail,
            if report.clean { "clean" } else { "differences" },
        );
        Ok(report)
    }

    fn verify_fix(&self, authority: &super::Authority, report: &VerifyReport) -> EngineResult<Fixed> {
        let objects: Vec<String> = report
            .missing
            .iter()
            .map(|m| m.object.clone())
            .chain(report.different.iter().map(|d| d.object.clone()))
            .chain(report.unexpected.iter().map(|u| u.object.clone()))
            .collect();
        self.enqueue_fix(authority, objects)
    }

    /// Queues repairs of some objects of a verify report (the console's
    /// "fix selected"): each is scheduled afresh, so the sender creates,
    /// updates or deletes it as the directory now says. Audited as
    /// `verify --fix`; refused read-only.
    pub fn verify_fix_objects(&mut self, authority: &str, objects: &[String]) -> EngineResult<Fixed> {
        self.check_writable("verify --fix")?;
        let authority = self.authority(authority)?;
        let fixed = self.enqueue_fix(&authority, objects.to_vec())?;
        self.audit.record(
            "verify --fix",
            serde_json::json!({
                "authority": authority.name, "selected": objects.len(),
                "objects": fixed.objects, "queued": fixed.queued,
            }),
            "queued",
        );
        Ok(fixed)
    }

    /// Schedules `objects` (`user:…`, `class:…`) on the authority's queue.
    fn enqueue_fix(&self, authority: &super::Authority, mut objects: Vec<String>) -> EngineResult<Fixed> {
        let mut seen = std::collections::HashSet::new();
        objects.retain(|o| seen.insert(o.clone()));
        let mut items = Vec::with_capacity(objects.len());
        for o in &objects {
            let object: ObjectRef = o
                .parse()
                .map_err(|_| EngineError::Internal(format!("verify produced an unreadable object {o}")))?;
            let schools: Vec<String> = match &object {
                ObjectRef::School { name } => vec![name.clone()],
                ObjectRef::Group { school, .. } => vec![school.clone()],
                ObjectRef::User { source_uid, record_uid } => self
                    .dir
                    .user(&crate::model::UserKey::new(source_uid.clone(), record_uid.clone()))?
                    .map(|u| u.school_names().map(str::to_string).collect())
                    .unwrap_or_default(),
            };
            items.push(QueueItem::new(object, schools, Reason::Schedule));
        }
        let mut fixed = Fixed {
            objects,
            ..Fixed::default()
        };
        for chunk in items.chunks(5000) {
            for r in authority
                .queue
                .enqueue_many(chunk)
                .map_err(io_error(authority.queue.root()))?
            {
                match r {
                    Enqueued::Created => fixed.queued += 1,
                    Enqueued::Coalesced => fixed.coalesced += 1,
                }
            }
        }
        Ok(fixed)
    }
}
