//! One-off conversions of directory data written by older versions, for
//! backends whose data the engine cannot migrate when it opens them (the
//! embedded store runs the same conversions as named schema migrations).
//!
//! * per-role contributions (DESIGN §2): a membership with several roles that
//!   kept one set of classes and workgroups for all of them gets that set
//!   written out as the contribution of each of its roles. Such an entry is
//!   read with exactly that meaning already; the conversion only stores it.

use super::{Engine, EngineResult};
use crate::model::Membership;
use crate::store::{Batch, UserChange, UserQuery};
use serde::Serialize;

/// What `rollcall migrate` did (or, with `dry_run`, would do).
#[derive(Clone, Debug, Serialize)]
pub struct MigrateOutcome {
    pub dry_run: bool,
    /// Users whose memberships got per-role contributions written out.
    pub contributions: u64,
    /// Their usernames (the first 100).
    pub users: Vec<String>,
}

/// Users written per batch.
const CHUNK: usize = 500;

impl Engine {
    /// Converts what older versions wrote. Idempotent: a second run finds
    /// nothing to do.
    pub fn migrate(&mut self, dry_run: bool) -> EngineResult<MigrateOutcome> {
        if !dry_run {
            self.check_writable("migrate")?;
        }
        let mut changes = Vec::new();
        self.dir.for_each_user(&UserQuery::default(), &mut |u| {
            if u.memberships.iter().any(Membership::is_legacy) {
                let mut after = u.clone();
                after
                    .memberships
                    .iter_mut()
                    .filter(|m| m.is_legacy())
                    .for_each(Membership::make_explicit);
                changes.push(UserChange::Update { before: u, after });
            }
            true
        })?;
        let users: Vec<String> = changes
            .iter()
            .take(100)
            .map(|c| match c {
                UserChange::Update { after, .. } => after.username.clone(),
                UserChange::Create(u) | UserChange::Delete(u) => u.username.clone(),
            })
            .collect();
        let outcome = MigrateOutcome {
            dry_run,
            contributions: changes.len() as u64,
            users,
        };
        if dry_run {
            return Ok(outcome);
        }
        for chunk in changes.chunks(CHUNK) {
            self.dir.apply(&Batch {
                users: chunk.to_vec(),
                ..Batch::default()
            })?;
        }
        self.audit.record(
            "migrate",
            serde_json::json!({"dry_run": dry_run}),
            &format!("contributions written out for {} users", outcome.contributions),
        );
        Ok(outcome)
    }
}
