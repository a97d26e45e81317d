//! Claiming the usernames of an import's new users in the directory before
//! they are written, for directories several writers share (rollcall nodes
//! on one LDAP server). The planner stays pure: it proposes names from what
//! it read. Here each proposed name is claimed; only the names another
//! writer took since are planned again — with every name claimed so far
//! counted as taken, so the loser moves on to the next counter — until
//! every new user holds a name of its own. A person another writer is
//! creating at this very moment is left to it: the row becomes an error
//! that says to import again.

use super::plan::{Action, Plan, PlanNames};
use super::prepare::Prepared;
use super::row::{Row, RowError};
use crate::engine::scheme::{EmailScheme, SchemeFields, UsernameScheme};
use crate::engine::{EngineError, EngineResult, Settings};
use crate::model::UserKey;
use crate::store::{ClaimLoss, Directory, StoreError};
use std::collections::HashMap;

/// Rounds of claims before giving up (each round settles at least the
/// names nobody else wanted).
const MAX_ROUNDS: usize = 64;

/// Claims every created user's name; returns how many names were planned
/// again because another writer took them.
pub(super) fn claim_new_usernames(
    settings: &Settings,
    dir: &mut dyn Directory,
    p: &mut Prepared,
    school: &str,
) -> EngineResult<usize> {
    let cfg = &settings.config.import;
    let mut replanned = 0;
    for _ in 0..MAX_ROUNDS {
        let claims: Vec<(String, UserKey)> = p
            .plan
            .items
            .iter()
            .filter(|i| i.action == Action::Created)
            .map(|i| (i.after.username.clone(), i.after.key.clone()))
            .collect();
        if claims.is_empty() {
            return Ok(replanned);
        }
        let lost = dir.claim_usernames(&claims)?;
        if lost.is_empty() {
            return Ok(replanned);
        }
        let usernames = UsernameScheme::parse(&cfg.username_scheme, cfg.username_max_length)
            .map_err(|e| EngineError::BadInput(format!("import.username_scheme: {e}")))?;
        let emails = match cfg.email_scheme.as_str() {
            "" => None,
            s => Some(EmailScheme::parse(s).map_err(|e| EngineError::BadInput(format!("import.email_scheme: {e}")))?),
        };
        let rows: HashMap<u64, &Row> = p.rows.iter().map(|r| (r.line, r)).collect();
        let outcome = rename(&*dir, &mut p.plan, &rows, &lost, &usernames, emails.as_ref(), school)?;
        replanned += outcome.renamed;
        for e in &outcome.errors {
            tracing::warn!(line = e.line, "{}", e.message);
        }
        p.errors.extend(outcome.errors);
        p.errors.sort_by_key(|e| e.line);
    }
    Err(StoreError::Backend {
        server: dir.describe(),
        message: format!(
            "other writers kept taking the usernames planned for school {school}'s new users ({MAX_ROUNDS} rounds); \
             import again"
        ),
    }
    .into())
}

fn fields(row: &Row) -> SchemeFields<'_> {
    SchemeFields {
        firstname: &row.firstname,
        lastname: &row.lastname,
        record_uid: &row.record_uid,
        username: None,
    }
}

struct Renamed {
    renamed: usize,
    errors: Vec<RowError>,
}

/// Plans new names for the created users whose names were lost; drops the
/// ones another writer is creating (a row error each).
fn rename(
    dir: &dyn Directory,
    plan: &mut Plan,
    rows: &HashMap<u64, &Row>,
    lost: &HashMap<String, ClaimLoss>,
    usernames: &UsernameScheme,
    emails: Option<&EmailScheme>,
    school: &str,
) -> EngineResult<Renamed> {
    let mut out = Renamed {
        renamed: 0,
        errors: Vec::new(),
    };
    let loss = |item: &super::plan::Planned| match item.action {
        Action::Created => lost.get(&item.after.username).copied(),
        _ => None,
    };
    let mut keep = Vec::with_capacity(plan.items.len());
    for item in plan.items.drain(..) {
        if loss(&item) == Some(ClaimLoss::SamePerson) {
            out.errors.push(RowError {
                line: item.line.unwrap_or(0),
                record_uid: Some(item.after.key.record_uid.clone()),
                message: format!(
                    "user {} is being created by another rollcall process at this moment (as '{}'); import this \
                     feed again to add it to school {school}",
                    item.after.key.record_uid, item.after.username
                ),
            });
        } else {
            keep.push(item);
        }
    }
    plan.items = keep;
    let people: Vec<SchemeFields<'_>> = plan
        .items
        .iter()
        .filter(|i| loss(i) == Some(ClaimLoss::Taken))
        .filter_map(|i| rows.get(&i.line?).map(|r| fields(r)))
        .collect();
    let mut names = PlanNames::new(dir, None);
    names.prefetch(usernames, &people)?;
    let mut failed = Vec::new();
    for (at, item) in plan.items.iter_mut().enumerate() {
        if loss(item) != Some(ClaimLoss::Taken) {
            continue;
        }
        let Some(row) = item.line.and_then(|l| rows.get(&l)) else {
            continue;
        };
        let username = match names.allocate(usernames, &fields(row)) {
            Ok(n) => n,
            Err(e) => {
                failed.push((at, format!("no username: {e}")));
                continue;
            }
        };
        let email = match (&row.email, emails) {
            (None, Some(scheme)) => match scheme.render(&SchemeFields {
                username: Some(&username),
                ..fields(row)
            }) {
                Ok(e) => Some(e),
                Err(e) => {
                    failed.push((at, format!("no e-mail address: {e}")));
                    continue;
                }
            },
            _ => item.after.email.clone(),
        };
        item.after.username = username;
        item.after.email = email;
        out.renamed += 1;
    }
    for (at, message) in failed.into_iter().rev() {
        let item = plan.items.remove(at);
        out.errors.push(RowError {
            line: item.line.unwrap_or(0),
            record_uid: Some(item.after.key.record_uid),
            message,
        });
    }
    // The counters the new names moved on to.
    let mut more = Plan::default();
    let _ = names.into_plan(&mut more);
    for (base, n) in more.counters {
        match plan.counters.iter_mut().find(|(b, _)| *b == base) {
            Some((_, old)) => *old = (*old).max(n),
            None => plan.counters.push((base, n)),
        }
    }
    Ok(out)
}
