//! The safety guards of an import: the row-error limit
//! (`import.max_row_errors`) and the mass-removal guard
//! (`import.guard.*`, overridden by `--force`). A refused run writes nothing.

use super::plan::Plan;
use super::row::RowError;
use crate::engine::config::ImportConfig;

/// Why the run must not write, if it must not.
pub fn refusal(
    cfg: &ImportConfig,
    plan: &Plan,
    errors: &[RowError],
    no_valid_rows: bool,
    force: bool,
) -> Option<String> {
    if let Some(limit) = cfg.row_error_limit()
        && errors.len() as u64 > limit
    {
        return Some(format!(
            "{} row error(s), more than import.max_row_errors = {limit}; nothing was written. \
             Fix the rows (see the errors and the run's summary.csv) or allow them with \
             --set import.max_row_errors=N (-1 = unlimited)",
            errors.len()
        ));
    }
    if force {
        return None;
    }
    if no_valid_rows && plan.scope_size > 0 && !cfg.no_delete {
        return Some(format!(
            "the feed has no valid rows, but {} user(s) are in scope and would all be removed; \
             check the file, or use --force if the school really has no such users any more",
            plan.scope_size
        ));
    }
    let removals = plan.removals();
    let pct = cfg.guard.max_removal_percent;
    let share = if plan.scope_size == 0 {
        0.0
    } else {
        removals as f64 * 100.0 / plan.scope_size as f64
    };
    if removals > cfg.guard.min_removals && share > pct {
        return Some(format!(
            "the run would remove {removals} of {} user(s) in scope ({share:.1}%), more than \
             import.guard.max_removal_percent = {pct}% and import.guard.min_removals = {}; \
             check the feed, or use --force to apply it",
            plan.scope_size, cfg.guard.min_removals
        ));
    }
    None
}
