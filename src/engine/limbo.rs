//! Limbo: users who left their last school wait here, deactivated (or, with
//! `import.deactivation_grace_days`, still active until their deactivation
//! day), until another school's import restores them or their purge date
//! passes. Manual actions: list, restore to a school, extend the purge date,
//! purge (which also deactivates those whose day has come). Restores and
//! purges run the `move` and `purge` hooks.

use super::hooks::{HookAction, HookEvent, HookFailure, HookRunner, Phase};
use super::jobs::{Progress, ProgressEvent};
use super::runs::{RunKind, RunStatus};
use super::{Engine, EngineError, EngineResult};
use crate::model::{Membership, User, UserKey, UserState};
use crate::store::{Batch, UserChange, UserQuery, UserSort};
use chrono::{Days, NaiveDate, Utc};
use serde::Serialize;

/// The result of a purge (also its `--json` output).
#[derive(Clone, Debug, Serialize)]
pub struct PurgeOutcome {
    pub run_id: String,
    pub as_of: NaiveDate,
    pub dry_run: bool,
    pub purged: Vec<String>,
    /// Limbo users whose deactivation day (`import.deactivation_grace_days`)
    /// has come: disabled now.
    pub deactivated: Vec<String>,
    /// Users a pre_purge hook kept (not purged), and post-hook failures.
    pub hook_failures: Vec<HookFailure>,
}

/// Users are deleted in transactions of this many.
const PURGE_BATCH: usize = 5000;

impl Engine {
    /// Users in limbo, soonest purge first.
    pub fn limbo_list(&self) -> EngineResult<Vec<User>> {
        Ok(self.dir.users(&UserQuery {
            state: Some(UserState::Limbo),
            sort: UserSort::PurgeAt,
            ..UserQuery::default()
        })?)
    }

    /// The limbo user an admin action (`action`) is about; a refusal (no
    /// such user, not in limbo) is audited like the action would have been.
    fn limbo_user(&self, username: &str, action: &str) -> EngineResult<User> {
        let found = self
            .dir
            .user_by_username(username)?
            .ok_or_else(|| EngineError::NotFound(format!("no user '{username}'")))
            .and_then(|user| {
                if user.state != UserState::Limbo {
                    return Err(EngineError::WrongState(format!(
                        "user '{username}' is not in limbo (it is active in {})",
                        user.school_names().collect::<Vec<_>>().join(", ")
                    )));
                }
                Ok(user)
            });
        if let Err(e) = &found {
            self.audit.record(
                action,
                serde_json::json!({"username": username}),
                &format!("refused: {e}"),
            );
        }
        found
    }

    /// Moves a user from limbo into a school and activates it; keeps the
    /// roles it had.
    pub fn limbo_restore(&mut self, username: &str, school: &str) -> EngineResult<User> {
        self.check_writable("limbo restore")?;
        let before = self.limbo_user(username, "limbo restore")?;
        let school = &self.resolve_school(school)?;
        if school.eq_ignore_ascii_case(&self.config().import.limbo_school) {
            return Err(EngineError::Usage(format!(
                "'{school}' is the limbo school; restore into a real school"
            )));
        }
        if self.dir.school(school)?.is_none() {
            return Err(EngineError::NotFound(format!(
                "school '{school}' does not exist (see `rollcall schools list`)"
            )));
        }
        let mut after = before.clone();
        after.memberships = vec![Membership::new(school.as_str(), before.roles())];
        after.state = UserState::Active;
        after.disabled = false;
        after.purge_at = None;
        after.deactivate_at = None;
        after.updated_at = Utc::now();
        let (hooks_cfg, root) = (
            self.settings.config.hooks.clone(),
            self.settings.paths.root().to_path_buf(),
        );
        let hooks = HookRunner::new(&hooks_cfg, &root, "limbo-restore");
        let ev = HookEvent {
            action: HookAction::Move,
            change: "restored",
            school: Some(school),
            line: None,
            before: Some(&before),
            after: Some(&after),
        };
        if let Some(f) = hooks.run(Phase::Pre, &ev).into_iter().next() {
            return Err(self.refuse(
                "limbo restore",
                serde_json::json!({"username": username, "school": school}),
                format!("{} said no: {}", f.hook, f.message),
            ));
        }
        self.write_one(before.clone(), after.clone())?;
        let post: Vec<String> = hooks
            .run(Phase::Post, &ev)
            .into_iter()
            .map(|f| format!("{} failed: {}", f.hook, f.message))
            .collect();
        for message in &post {
            tracing::warn!(user = %username, "{message}");
        }
        self.audit.record(
            "limbo restore",
            serde_json::json!({"username": username, "school": school}),
            &if post.is_empty() {
                "ok".to_string()
            } else {
                format!("ok; {}", post.join("; "))
            },
        );
        Ok(after)
    }

    /// Moves a limbo user's purge date `days` later.
    pub fn limbo_extend(&mut self, username: &str, days: u32) -> EngineResult<User> {
        self.check_writable("limbo extend")?;
        if days == 0 {
            return Err(EngineError::Usage("--days must be at least 1".into()));
        }
        let before = self.limbo_user(username, "limbo extend")?;
        let mut after = before.clone();
        let from = before.purge_at.unwrap_or_else(|| self.today());
        after.purge_at = from.checked_add_days(Days::new(u64::from(days)));
        after.updated_at = Utc::now();
        self.write_one(before, after.clone())?;
        self.audit.record(
            "limbo extend",
            serde_json::json!({"username": username, "days": days, "purge_at": after.purge_at}),
            "ok",
        );
        Ok(after)
    }

    fn write_one(&mut self, before: User, after: User) -> EngineResult<()> {
        self.dir.apply(&Batch {
            users: vec![UserChange::Update { before, after }],
            ..Batch::default()
        })?;
        Ok(())
    }

    /// Deletes every limbo user whose purge date is on or before `as_of`
    /// (default today).
    pub fn limbo_purge(
        &mut self,
        as_of: Option<NaiveDate>,
        dry_run: bool,
        progress: &mut dyn Progress,
    ) -> EngineResult<PurgeOutcome> {
        let as_of = as_of.unwrap_or_else(|| self.today());
        if !dry_run {
            self.check_writable("limbo purge")?;
        }
        let due = self.dir.users(&UserQuery {
            purge_due: Some(as_of),
            sort: UserSort::PurgeAt,
            ..UserQuery::default()
        })?;
        let deactivated = self.deactivate_due(as_of, dry_run, &due)?;
        let mut out = self.purge_users(
            due,
            as_of,
            dry_run,
            serde_json::json!({"as_of": as_of, "dry_run": dry_run}),
            progress,
        )?;
        out.deactivated = deactivated;
        Ok(out)
    }

    /// Disables the limbo users whose deactivation day has come (and who are
    /// not purged in the same pass); returns their usernames.
    fn deactivate_due(&mut self, as_of: NaiveDate, dry_run: bool, purged: &[User]) -> EngineResult<Vec<String>> {
        let purged: std::collections::HashSet<&UserKey> = purged.iter().map(|u| &u.key).collect();
        let due: Vec<User> = self
            .dir
            .users(&UserQuery {
                state: Some(UserState::Limbo),
                ..UserQuery::default()
            })?
            .into_iter()
            .filter(|u| u.deactivate_at.is_some_and(|d| d <= as_of) && !purged.contains(&u.key))
            .collect();
        let names: Vec<String> = due.iter().map(|u| u.username.clone()).collect();
        if dry_run || due.is_empty() {
            return Ok(names);
        }
        let now = Utc::now();
        for chunk in due.chunks(PURGE_BATCH) {
            let users = chunk
                .iter()
                .map(|before| {
                    let mut after = before.clone();
                    after.disabled = true;
                    after.deactivate_at = None;
                    after.updated_at = now;
                    UserChange::Update {
                        before: before.clone(),
                        after,
                    }
                })
                .collect();
            self.dir.apply(&Batch {
                users,
                ..Batch::default()
            })?;
        }
        self.audit.record(
            "limbo deactivate",
            serde_json::json!({"as_of": as_of, "usernames": names}),
            &format!("ok: {} deactivated (import.deactivation_grace_days)", names.len()),
        );
        Ok(names)
    }

    /// Purges one limbo user now, whatever its purge date.
    pub fn limbo_purge_user(&mut self, username: &str, dry_run: bool) -> EngineResult<PurgeOutcome> {
        let user = self.limbo_user(username, "limbo purge")?;
        let today = self.today();
        self.purge_users(
            vec![user],
            today,
            dry_run,
            serde_json::json!({"username": username, "dry_run": dry_run}),
            &mut super::jobs::Quiet,
        )
    }

    fn purge_users(
        &mut self,
        users: Vec<User>,
        as_of: NaiveDate,
        dry_run: bool,
        args: serde_json::Value,
        progress: &mut dyn Progress,
    ) -> EngineResult<PurgeOutcome> {
        if !dry_run {
            self.check_writable("limbo purge")?;
        }
        let mut run = self
            .runs
            .start(RunKind::Purge, self.audit.actor(), args.clone(), None, dry_run)?;
        run.log(&format!(
            "purge of {} limbo user(s) due on or before {as_of}{}",
            users.len(),
            if dry_run { " (dry run)" } else { "" }
        ));
        // A pre_purge hook may keep a user; post_purge runs after each chunk.
        let (hooks_cfg, root) = (
            self.settings.config.hooks.clone(),
            self.settings.paths.root().to_path_buf(),
        );
        let run_id = run.id().to_string();
        let hooks = HookRunner::new(&hooks_cfg, &root, &run_id);
        fn event(u: &User) -> HookEvent<'_> {
            HookEvent {
                action: HookAction::Purge,
                change: "purged",
                school: None,
                line: None,
                before: Some(u),
                after: None,
            }
        }
        let mut hook_failures = Vec::new();
        let users: Vec<User> = if dry_run || !hooks_cfg.any(Phase::Pre) {
            users
        } else {
            users
                .into_iter()
                .filter(|u| {
                    let f = hooks.run(Phase::Pre, &event(u));
                    let keep = f.is_empty();
                    for f in f {
                        run.log(&format!("{} kept {}: {}", f.hook, u.username, f.message));
                        hook_failures.push(f);
                    }
                    keep
                })
                .collect()
        };
        let total = users.len() as u64;
        let mut purged = Vec::with_capacity(users.len());
        let mut result = Ok(());
        for chunk in users.chunks(PURGE_BATCH) {
            if progress.cancelled() {
                run.log("cancelled");
                break;
            }
            if !dry_run {
                let batch = Batch {
                    users: chunk.iter().cloned().map(UserChange::Delete).collect(),
                    ..Batch::default()
                };
                if let Err(e) = self.dir.apply(&batch) {
                    result = Err(e);
                    break;
                }
                for u in chunk {
                    for f in hooks.run(Phase::Post, &event(u)) {
                        run.log(&format!("{} for {} failed: {}", f.hook, u.username, f.message));
                        hook_failures.push(f);
                    }
                }
            }
            purged.extend(chunk.iter().map(|u| u.username.clone()));
            progress.update(ProgressEvent {
                phase: "purging",
                done: purged.len() as u64,
                total: Some(total),
            });
        }
        let (file, path) = run.create_file("summary.csv")?;
        let mut w = csv::Writer::from_writer(file);
        let write = (|| -> Result<(), csv::Error> {
            w.write_record([
                "line",
                "action",
                "username",
                "record_uid",
                "schools",
                "classes",
                "error",
            ])?;
            for u in users.iter().take(purged.len()) {
                let action = if dry_run { "would_purge" } else { "purged" };
                w.write_record(["", action, &u.username, &u.key.record_uid, "", "", ""])?;
            }
            w.flush()?;
            Ok(())
        })();
        if let Err(e) = write {
            run.log(&format!("cannot write {}: {e}", path.display()));
        }
        for name in &purged {
            run.log(&format!("{} {name}", if dry_run { "would purge" } else { "purged" }));
        }
        run.record.counts.insert("purged".into(), purged.len() as u64);
        let run_id = run.id().to_string();
        match result {
            Ok(()) => {
                let status = if progress.cancelled() {
                    RunStatus::Cancelled
                } else {
                    RunStatus::Ok
                };
                run.finish(status, None)?;
                self.audit
                    .record("limbo purge", args, &format!("run {run_id}: {} purged", purged.len()));
                Ok(PurgeOutcome {
                    run_id,
                    as_of,
                    dry_run,
                    purged,
                    deactivated: Vec::new(),
                    hook_failures,
                })
            }
            Err(e) => {
                run.finish(RunStatus::Failed, Some(e.to_string()))?;
                self.audit
                    .record("limbo purge", args, &format!("run {run_id}: failed: {e}"));
                Err(e.into())
            }
        }
    }
}
