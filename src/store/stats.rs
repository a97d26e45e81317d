//! Aggregate reads for overviews (the console's dashboard and schools
//! table): counts a backend can compute in one pass instead of one query per
//! school and role. Each has a default built on the basic reads, so a backend
//! only overrides what it can do faster.

use super::{Directory, StoreResult, UserQuery, UserSort};
use crate::model::{GroupKind, Role, UserState};
use chrono::NaiveDate;
use std::collections::BTreeMap;

/// Users holding `role` in `school` (a user with two roles there counts
/// under both).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MembershipCount {
    pub school: String,
    pub role: Role,
    pub users: u64,
}

/// A count that may have stopped early: `capped` means "at least `n`".
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BoundedCount {
    pub n: u64,
    pub capped: bool,
}

/// Membership counts per school and role, computed with `count_users`.
pub fn membership_counts_default<D: Directory + ?Sized>(dir: &D) -> StoreResult<Vec<MembershipCount>> {
    let mut out = Vec::new();
    for school in dir.schools()? {
        for role in Role::ALL {
            let users = dir.count_users(&UserQuery {
                school: Some(school.name.clone()),
                roles: vec![role],
                ..UserQuery::default()
            })?;
            if users > 0 {
                out.push(MembershipCount {
                    school: school.name.clone(),
                    role,
                    users,
                });
            }
        }
    }
    Ok(out)
}

/// Limbo users per purge date, soonest first, streaming the limbo users.
pub fn purge_dates_default<D: Directory + ?Sized>(dir: &D, limit: usize) -> StoreResult<Vec<(NaiveDate, u64)>> {
    let mut by_day: BTreeMap<NaiveDate, u64> = BTreeMap::new();
    dir.for_each_user(
        &UserQuery {
            state: Some(UserState::Limbo),
            sort: UserSort::PurgeAt,
            ..UserQuery::default()
        },
        &mut |u| {
            if let Some(d) = u.purge_at {
                *by_day.entry(d).or_default() += 1;
            }
            true
        },
    )?;
    Ok(by_day.into_iter().take(limit).collect())
}

/// Classes per school, from the group list.
pub fn class_counts_default<D: Directory + ?Sized>(dir: &D) -> StoreResult<BTreeMap<String, u64>> {
    let mut out: BTreeMap<String, u64> = BTreeMap::new();
    for g in dir.groups(None, Some(GroupKind::Class))? {
        *out.entry(g.key.school).or_default() += 1;
    }
    Ok(out)
}
