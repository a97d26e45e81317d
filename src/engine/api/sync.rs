//! The facade's sync methods: queue statuses, pause and resume, "drain now"
//! (a sync job for one authority, with progress and cancel), the trash
//! (list, show with the diff against what would be sent now, delete and
//! requeue, one item or many), and a user's sync: schedule, items, history.

use super::{ApiResult, EngineApi, JobInfo, jobs};
use crate::engine::received::HistoryEntry;
use crate::engine::sync::holdings::AuthorityHolding;
use crate::engine::sync::queue_items::{QueueItemDetail, QueueItems};
use crate::engine::sync::{QueueStatus, Scheduled, TrashDetail, TrashEntry, UserSyncItem};
use crate::engine::users::UserSelector;

impl EngineApi {
    /// One status per configured authority (depth, oldest item, paused…).
    pub async fn queue_list(&self) -> ApiResult<Vec<QueueStatus>> {
        self.call(|e| e.queue_list(None)).await
    }

    /// Pauses an authority until resumed (audited; refused read-only).
    pub async fn authority_pause(&self, authority: String, reason: String) -> ApiResult<()> {
        self.write(move |e| e.authority_pause(&authority, &reason)).await
    }

    /// Resumes an authority; `true` when it was paused.
    pub async fn authority_resume(&self, authority: String) -> ApiResult<bool> {
        self.write(move |e| e.authority_resume(&authority)).await
    }

    /// "Drain now": a sync of one authority as a job.
    pub async fn start_drain(&self, authority: String) -> ApiResult<JobInfo> {
        let name = authority.clone();
        self.call(move |e| {
            e.check_writable("sync run")?;
            e.authority(&name).map(|_| ())
        })
        .await?;
        Ok(jobs::spawn_drain(&self.shared, authority))
    }

    /// Verify (with `fix`, repair) one authority as a job: progress events
    /// as it lists the target, the report as the job's outcome.
    pub async fn start_verify(&self, req: crate::engine::sync::verify::VerifyRequest) -> ApiResult<JobInfo> {
        let name = req.authority.clone();
        let fix = req.fix;
        self.call(move |e| {
            if fix {
                e.check_writable("verify --fix")?;
            }
            e.authority(&name).map(|_| ())
        })
        .await?;
        Ok(jobs::spawn_verify(&self.shared, req))
    }

    /// Queues repairs of the chosen objects of a verify report only.
    pub async fn verify_fix_objects(
        &self,
        authority: String,
        objects: Vec<String>,
    ) -> ApiResult<crate::engine::sync::verify::Fixed> {
        self.write(move |e| e.verify_fix_objects(&authority, &objects)).await
    }

    /// The items waiting in one authority's queue (at most `limit`).
    pub async fn queue_items(&self, authority: String, limit: usize) -> ApiResult<QueueItems> {
        self.call(move |e| e.queue_items(&authority, limit)).await
    }

    /// One waiting item and what would be sent for it now.
    pub async fn queue_item_show(&self, item: String) -> ApiResult<QueueItemDetail> {
        self.call(move |e| e.queue_item_show(&item)).await
    }

    /// Sends waiting items at the next round (their back-off forgotten).
    pub async fn queue_retry_now(&self, items: Vec<String>) -> ApiResult<Vec<String>> {
        self.write(move |e| e.queue_retry_now(&items)).await
    }

    /// Gives waiting items up by hand: into the trash.
    pub async fn queue_to_trash(&self, items: Vec<String>) -> ApiResult<Vec<String>> {
        self.write(move |e| e.queue_to_trash(&items)).await
    }

    /// Schedules waiting items' objects afresh (attempts start over).
    pub async fn queue_afresh(&self, items: Vec<String>) -> ApiResult<Vec<String>> {
        self.write(move |e| e.queue_afresh(&items)).await
    }

    /// Every authority's trash, oldest failure first.
    pub async fn trash_list(&self) -> ApiResult<Vec<TrashEntry>> {
        self.call(|e| {
            let mut items = e.trash_list(None)?;
            items.sort_by(|a, b| (a.last_failure, &a.item).cmp(&(b.last_failure, &b.item)));
            Ok(items)
        })
        .await
    }

    /// One trash item: the file, what was sent, what would be sent now, and
    /// the difference.
    pub async fn trash_show(&self, item: String) -> ApiResult<TrashDetail> {
        self.call(move |e| e.trash_show(&item)).await
    }

    pub async fn trash_delete(&self, items: Vec<String>) -> ApiResult<Vec<String>> {
        self.write(move |e| e.trash_delete(&items)).await
    }

    /// Schedules the items' objects afresh and removes them from the trash.
    pub async fn trash_requeue(&self, items: Vec<String>) -> ApiResult<Vec<String>> {
        self.write(move |e| e.trash_requeue(&items)).await
    }

    /// Queues the user (and its groups) for every active authority.
    pub async fn schedule_user(&self, username: String) -> ApiResult<Scheduled> {
        self.write(move |e| e.schedule_user(&username)).await
    }

    /// The user's queue and trash items across authorities.
    pub async fn user_sync_items(&self, username: String) -> ApiResult<Vec<UserSyncItem>> {
        self.call(move |e| e.user_sync_items(&username)).await
    }

    /// What each authority whose schools include the user holds for it,
    /// against what would be sent now. The directory is read under the
    /// engine's lock; the targets are asked after it is released, so a slow
    /// authority never stalls the rest of the console.
    pub async fn user_holdings(&self, username: String) -> ApiResult<Vec<AuthorityHolding>> {
        let plan = self
            .call(move |e| e.user_holdings_plan(&UserSelector::Username(username)))
            .await?;
        tokio::task::spawn_blocking(move || plan.fetch())
            .await
            .map_err(|e| super::ApiError::Worker(e.to_string()))
    }

    /// The feed rows received for the user, newest last.
    pub async fn user_history(&self, username: String) -> ApiResult<Vec<HistoryEntry>> {
        self.call(move |e| Ok(e.user_history(&UserSelector::Username(username))?.1))
            .await
    }
}
