//! The import's hooks (see [`crate::engine::hooks`]): pre-hooks run for every
//! planned change before the directory is written, and a failure turns that
//! change into a row error (the user is left alone); post-hooks run after
//! the write, and their failures are reported, never undone.

use super::plan::{Action, Plan, Planned};
use super::row::RowError;
use crate::engine::hooks::{HookAction, HookEvent, HookFailure, HookRunner, Phase};

/// The hook a planned change runs, if any.
pub(super) fn hook_action(a: Action) -> Option<HookAction> {
    match a {
        Action::Created => Some(HookAction::Create),
        Action::Modified => Some(HookAction::Modify),
        Action::AddedSchool | Action::RemovedSchool | Action::Restored => Some(HookAction::Move),
        Action::ToLimbo => Some(HookAction::ToLimbo),
        Action::Deleted => Some(HookAction::Purge),
        Action::Unchanged => None,
    }
}

fn event<'a>(p: &'a Planned, school: &'a str) -> Option<HookEvent<'a>> {
    Some(HookEvent {
        action: hook_action(p.action)?,
        change: p.action.as_str(),
        school: Some(school),
        line: p.line,
        before: p.before.as_ref(),
        after: (p.action != Action::Deleted).then_some(&p.after),
    })
}

/// Runs the pre-hooks; drops the changes they veto and returns those as row
/// errors.
pub(super) fn run_pre(runner: &HookRunner<'_>, plan: &mut Plan, school: &str) -> Vec<RowError> {
    let mut errors = Vec::new();
    plan.items.retain(|p| {
        let Some(ev) = event(p, school) else { return true };
        let failures = runner.run(Phase::Pre, &ev);
        let Some(f) = failures.first() else { return true };
        errors.push(RowError {
            line: p.line.unwrap_or(0),
            record_uid: Some(p.after.key.record_uid.clone()),
            message: format!(
                "{} hook refused to {} {}: {}; the user was left as it is",
                f.hook,
                p.action.as_str(),
                p.after.username,
                f.message
            ),
        });
        false
    });
    errors
}

/// Runs the post-hooks; returns the failures by the change's place in the
/// plan.
pub(super) fn run_post(runner: &HookRunner<'_>, plan: &Plan, school: &str) -> Vec<(usize, HookFailure)> {
    let mut out = Vec::new();
    for (i, p) in plan.items.iter().enumerate() {
        if let Some(ev) = event(p, school) {
            out.extend(runner.run(Phase::Post, &ev).into_iter().map(|f| (i, f)));
        }
    }
    out
}
