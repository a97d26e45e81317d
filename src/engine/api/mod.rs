//! The engine's async facade, for front ends that must never block (the
//! console). Every method runs the synchronous [`Engine`] on a blocking
//! thread (`tokio::task::spawn_blocking`) and resolves when it is done; long
//! work runs as a job on its own engine connection and reports through
//! [`EngineEvent`]s on the channel handed out by [`EngineApi::new`].
//!
//! The facade knows nothing of terminals, and a front end using it needs no
//! store or file access of its own: everything it shows comes from here.

mod jobs;
mod sync;

pub use jobs::{DRAIN_MAX_WAIT, JobEnd, JobId, JobInfo, JobKind, JobOutcome};

use super::browse::{FeedFileInfo, LogTail};
use super::import::ImportRequest;
use super::overview::{Overview, SchoolRow, UserRow};
use super::runs::RunRecord;
use super::sync::assign::{AuthoritySchools, SchoolsAdd, SchoolsChanged, SchoolsRemove};
use super::sync::verify::{VerifyReport, VerifyRequest};
use super::users::{UserDetail, UserSelector};
use super::{Engine, EngineError, Settings};
use crate::model::User;
use crate::store::{BoundedCount, UserQuery};
use chrono::NaiveDate;
use jobs::Jobs;
use std::sync::{Arc, Mutex};
use thiserror::Error;
use tokio::sync::mpsc;

#[derive(Debug, Error)]
pub enum ApiError {
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The blocking worker panicked or the engine lock was poisoned.
    #[error("the engine worker failed: {0}")]
    Worker(String),
}

pub type ApiResult<T> = Result<T, ApiError>;

/// What the engine tells a front end without being asked.
#[derive(Clone, Debug)]
pub enum EngineEvent {
    JobStarted(JobInfo),
    JobProgress {
        id: JobId,
        phase: &'static str,
        done: u64,
        total: Option<u64>,
    },
    JobFinished {
        id: JobId,
        /// Done with its outcome, cancelled, or failed with the error.
        end: JobEnd,
    },
    /// Data changed (a write or a job finished): views reload what they show.
    Changed,
}

/// Settings a front end shows or decides on.
#[derive(Clone, Debug)]
pub struct ApiInfo {
    pub read_only: bool,
    pub data_dir: String,
    pub limbo_school: String,
    pub deletion_grace_days: u32,
    pub source_uid: String,
}

struct Shared {
    engine: Mutex<Engine>,
    settings: Settings,
    events: mpsc::UnboundedSender<EngineEvent>,
    jobs: Jobs,
}

/// A cloneable handle on one engine. Needs a tokio runtime.
#[derive(Clone)]
pub struct EngineApi {
    shared: Arc<Shared>,
}

impl EngineApi {
    /// Wraps an open engine; engine events arrive on the returned receiver.
    pub fn new(engine: Engine) -> (Self, mpsc::UnboundedReceiver<EngineEvent>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let settings = engine.settings().clone();
        let api = EngineApi {
            shared: Arc::new(Shared {
                engine: Mutex::new(engine),
                settings,
                events: tx,
                jobs: Jobs::default(),
            }),
        };
        (api, rx)
    }

    pub fn info(&self) -> ApiInfo {
        let s = &self.shared.settings;
        ApiInfo {
            read_only: s.read_only,
            data_dir: s.paths.root().display().to_string(),
            limbo_school: s.config.import.limbo_school.clone(),
            deletion_grace_days: s.config.import.deletion_grace_days,
            source_uid: s.config.import.source_uid.clone(),
        }
    }

    /// Runs `f` on the shared engine on a blocking thread.
    async fn call<T, F>(&self, f: F) -> ApiResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Engine) -> Result<T, EngineError> + Send + 'static,
    {
        let shared = self.shared.clone();
        tokio::task::spawn_blocking(move || {
            let mut engine = shared.engine.lock().map_err(|e| ApiError::Worker(e.to_string()))?;
            f(&mut engine).map_err(ApiError::from)
        })
        .await
        .map_err(|e| ApiError::Worker(e.to_string()))?
    }

    /// A write through the shared engine; announces the change.
    async fn write<T, F>(&self, f: F) -> ApiResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Engine) -> Result<T, EngineError> + Send + 'static,
    {
        let out = self.call(f).await;
        if out.is_ok() {
            let _ = self.shared.events.send(EngineEvent::Changed);
        }
        out
    }

    pub async fn overview(&self) -> ApiResult<Overview> {
        self.call(|e| e.overview()).await
    }

    /// School names, the limbo school left out (for pickers).
    pub async fn school_names(&self) -> ApiResult<Vec<String>> {
        self.call(|e| {
            let limbo = e.config().import.limbo_school.clone();
            Ok(e.directory()
                .schools()?
                .into_iter()
                .map(|s| s.name)
                .filter(|n| *n != limbo)
                .collect())
        })
        .await
    }

    pub async fn role_memberships(&self) -> ApiResult<Vec<(crate::model::Role, u64)>> {
        self.call(|e| e.role_memberships()).await
    }

    pub async fn school_rows(&self) -> ApiResult<Vec<SchoolRow>> {
        self.call(|e| e.school_rows()).await
    }

    /// One page of users: the query's offset and limit.
    pub async fn user_rows(&self, query: UserQuery) -> ApiResult<Vec<UserRow>> {
        self.call(move |e| e.user_rows(&query)).await
    }

    /// How many users match, counting at most `cap`.
    pub async fn count_users(&self, query: UserQuery, cap: u64) -> ApiResult<BoundedCount> {
        self.call(move |e| e.count_users_bounded(&query, cap)).await
    }

    /// Where the user `username` stands in a query's order (its row
    /// number), looking at most `cap` rows; `None` when it is not among
    /// them. Lets a table keep its cursor on a user whose row moved.
    pub async fn user_position(&self, query: UserQuery, username: String, cap: u64) -> ApiResult<Option<u64>> {
        self.call(move |e| {
            const PAGE: u64 = 1000;
            let mut offset = 0;
            while offset < cap {
                let page = e.user_rows(&UserQuery {
                    offset,
                    limit: Some(PAGE),
                    ..query.clone()
                })?;
                if let Some(i) = page.iter().position(|r| r.username == username) {
                    return Ok(Some(offset + i as u64));
                }
                if (page.len() as u64) < PAGE {
                    break;
                }
                offset += PAGE;
            }
            Ok(None)
        })
        .await
    }

    /// Cheap stamps of the directory, queues, runs and state: a live view
    /// asks every second and reloads only what changed.
    pub async fn change_stamps(&self) -> ApiResult<super::changes::ChangeStamps> {
        self.call(|e| e.change_stamps()).await
    }

    pub async fn user_detail(&self, username: String) -> ApiResult<UserDetail> {
        self.call(move |e| e.user_detail(&UserSelector::Username(username)))
            .await
    }

    pub async fn runs(&self, limit: usize) -> ApiResult<Vec<RunRecord>> {
        self.call(move |e| Ok(e.runs().list(&|_| true, limit)?)).await
    }

    pub async fn run(&self, id: String) -> ApiResult<RunRecord> {
        self.call(move |e| Ok(e.runs().show(&id)?)).await
    }

    pub async fn run_log(&self, id: String, max_bytes: u64) -> ApiResult<String> {
        self.call(move |e| e.run_log(&id, max_bytes)).await
    }

    pub async fn run_input(&self, id: String, max_bytes: u64) -> ApiResult<Option<String>> {
        self.call(move |e| e.run_input(&id, max_bytes)).await
    }

    pub async fn log_tail(&self, max_lines: usize) -> ApiResult<LogTail> {
        self.call(move |e| e.log_tail(max_lines)).await
    }

    pub async fn feed_files(&self) -> ApiResult<Vec<FeedFileInfo>> {
        self.call(|e| e.feed_files()).await
    }

    pub async fn limbo_restore(&self, username: String, school: String) -> ApiResult<User> {
        self.write(move |e| e.limbo_restore(&username, &school)).await
    }

    pub async fn limbo_extend(&self, username: String, days: u32) -> ApiResult<User> {
        self.write(move |e| e.limbo_extend(&username, days)).await
    }

    /// Deletes one limbo user now, whatever its purge date.
    pub async fn limbo_purge_user(&self, username: String) -> ApiResult<Vec<String>> {
        self.write(move |e| Ok(e.limbo_purge_user(&username, false)?.purged))
            .await
    }

    /// `sync-schools list`.
    pub async fn sync_schools(&self, authority: Option<String>) -> ApiResult<Vec<AuthoritySchools>> {
        self.call(move |e| e.sync_schools_list(authority.as_deref())).await
    }

    pub async fn sync_schools_add(&self, req: SchoolsAdd) -> ApiResult<SchoolsChanged> {
        self.write(move |e| e.sync_schools_add(&req)).await
    }

    /// What `sync_schools_add` would do (nothing written).
    pub async fn sync_schools_add_preview(
        &self,
        req: SchoolsAdd,
    ) -> ApiResult<super::sync::assign_preview::SchoolsPreview> {
        self.call(move |e| e.sync_schools_add_preview(&req)).await
    }

    /// What `sync_schools_remove` would do (nothing written).
    pub async fn sync_schools_remove_preview(
        &self,
        req: SchoolsRemove,
    ) -> ApiResult<super::sync::assign_preview::SchoolsPreview> {
        self.call(move |e| e.sync_schools_remove_preview(&req)).await
    }

    pub async fn sync_schools_remove(&self, req: SchoolsRemove) -> ApiResult<SchoolsChanged> {
        self.write(move |e| e.sync_schools_remove(&req)).await
    }

    /// Verifies (and with `fix` repairs) one authority on the shared
    /// engine, without progress events (`start_verify` runs it as a job).
    pub async fn verify(&self, req: VerifyRequest) -> ApiResult<VerifyReport> {
        self.write(move |e| e.verify(&req, &mut super::jobs::Quiet)).await
    }

    /// Starts an import as a job (a dry run previews the plan).
    pub async fn start_import(&self, req: ImportRequest) -> ApiResult<JobInfo> {
        if !req.dry_run {
            self.call(|e| e.check_writable("import")).await?;
        }
        Ok(jobs::spawn_import(&self.shared, req))
    }

    /// Starts a purge of the limbo users due on or before `as_of` (default
    /// today) as a job.
    pub async fn start_purge(&self, as_of: Option<NaiveDate>, dry_run: bool) -> ApiResult<JobInfo> {
        if !dry_run {
            self.call(|e| e.check_writable("limbo purge")).await?;
        }
        Ok(jobs::spawn_purge(&self.shared, as_of, dry_run))
    }

    /// Asks a job to stop; it stops at its next check and reports.
    pub async fn cancel_job(&self, id: JobId) -> ApiResult<bool> {
        let found = self.shared.jobs.cancel(id);
        if let Some(info) = &found {
            let details = serde_json::json!({"job": id, "kind": info.kind.as_str(), "label": info.label});
            self.call(move |e| {
                e.audit().record("job cancel", details, "requested");
                Ok(())
            })
            .await?;
        }
        Ok(found.is_some())
    }

    /// Jobs still running.
    pub fn running_jobs(&self) -> Vec<JobInfo> {
        self.shared.jobs.running()
    }

    /// Records an admin action of the front end itself (opening the console,
    /// quitting with running jobs) in the audit log.
    pub async fn audit(&self, action: &'static str, details: serde_json::Value) -> ApiResult<()> {
        self.call(move |e| {
            e.audit().record(action, details, "ok");
            Ok(())
        })
        .await
    }
}
