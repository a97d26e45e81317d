//! A group's wanted members as the target knows them: their SCIM ids, and
//! the members it does not hold yet (which keep a class or workgroup from
//! counting as delivered: [`members_delivered`]).

use super::ScimTarget;
use crate::engine::sync::mapping::Mapped;
use crate::engine::sync::target::TargetError;
#[cfg(doc)]
use crate::engine::sync::target::members_delivered;

/// A group's members on the target.
#[derive(Default)]
pub(super) struct Members {
    /// SCIM ids of the members the target holds, sorted.
    pub ids: Vec<String>,
    /// External ids of the members it does not hold yet.
    pub missing: Vec<String>,
}

impl ScimTarget {
    /// The members of `m` (`None`: not a group, or its members are not
    /// managed).
    pub(super) fn members(&self, m: &Mapped) -> Result<Option<Members>, TargetError> {
        let Some(wanted) = &m.members else {
            return Ok(None);
        };
        let found = self.resolve(wanted)?;
        let missing: Vec<String> = wanted.iter().filter(|e| !found.contains_key(*e)).cloned().collect();
        if !missing.is_empty() {
            tracing::debug!(group = %m.external_id, missing = missing.len(), "members not on the target yet");
        }
        let mut ids: Vec<String> = found.into_values().collect();
        ids.sort_unstable();
        ids.dedup();
        Ok(Some(Members { ids, missing }))
    }
}
