//! What the console asks the engine and what comes back. Views never call
//! the engine: they queue [`Request`]s ([`Call`]s), the event loop runs each
//! on the engine's async facade ([`execute`]) and routes the [`Reply`] —
//! the call it answers and its [`Data`] — to the view that asked. Views
//! match on those enums, never on names. Tests run the same requests
//! synchronously.

use super::ids::ViewId;
use crate::engine::api::{EngineApi, JobId, JobInfo};
use crate::engine::browse::{FeedFileInfo, LogTail};
use crate::engine::changes::ChangeStamps;
use crate::engine::import::ImportRequest;
use crate::engine::overview::{Overview, SchoolRow, UserRow};
use crate::engine::received::HistoryEntry;
use crate::engine::runs::RunRecord;
use crate::engine::sync::assign::{AuthoritySchools, SchoolsAdd, SchoolsRemove};
use crate::engine::sync::assign_preview::SchoolsPreview;
use crate::engine::sync::holdings::AuthorityHolding;
use crate::engine::sync::queue_items::{QueueItemDetail, QueueItems};
use crate::engine::sync::{QueueStatus, TrashDetail, TrashEntry, UserSyncItem};
use crate::engine::users::UserDetail;
use crate::store::{BoundedCount, UserQuery};
use chrono::NaiveDate;

/// A call on the engine.
#[derive(Clone, Debug)]
pub enum Call {
    Overview,
    RoleCounts,
    SchoolRows,
    SchoolNames,
    /// A page of users; `generation` lets the view drop stale answers.
    UserRows {
        generation: u64,
        query: UserQuery,
    },
    CountUsers {
        generation: u64,
        query: UserQuery,
        cap: u64,
    },
    UserDetail(String),
    Runs(usize),
    RunDetail(String),
    LogTail(usize),
    FeedFiles,
    Restore {
        username: String,
        school: String,
    },
    Extend {
        username: String,
        days: u32,
    },
    PurgeUser(String),
    StartImport(ImportRequest),
    StartPurge {
        as_of: Option<NaiveDate>,
        dry_run: bool,
    },
    CancelJob(JobId),
    QueueList,
    PauseAuthority(String),
    ResumeAuthority(String),
    StartDrain(String),
    TrashList,
    TrashShow(String),
    TrashDelete(Vec<String>),
    TrashRequeue(Vec<String>),
    ScheduleUser(String),
    UserSyncItems(String),
    UserHistory(String),
    /// What each authority holds for the user (remote lookups).
    UserHoldings(String),
    SyncSchools,
    StartVerify(crate::engine::sync::verify::VerifyRequest),
    /// Fix only these objects of the last verify.
    VerifyFixObjects {
        authority: String,
        objects: Vec<String>,
    },
    SchoolsAdd(SchoolsAdd),
    SchoolsRemove(SchoolsRemove),
    /// What an add or remove would do (nothing written).
    SchoolsAddPreview(SchoolsAdd),
    SchoolsRemovePreview(SchoolsRemove),
    /// The change stamps (live views).
    Stamps,
    /// An authority's waiting items.
    QueueItems(String),
    QueueItemShow(String),
    QueueRetryNow(Vec<String>),
    QueueToTrash(Vec<String>),
    QueueAfresh(Vec<String>),
    /// Where a user now stands in a table's query (the cursor follows it).
    UserPosition {
        generation: u64,
        query: UserQuery,
        username: String,
    },
}

#[derive(Clone, Debug)]
pub struct Request {
    pub to: ViewId,
    pub call: Call,
}

/// A run with its log and the head of its archived input.
#[derive(Clone, Debug)]
pub struct RunDetail {
    pub record: RunRecord,
    pub log: String,
    pub input: Option<String>,
}

/// An answer.
#[derive(Clone, Debug)]
pub enum Data {
    Overview(Box<Overview>),
    RoleCounts(Vec<(crate::model::Role, u64)>),
    SchoolRows(Vec<SchoolRow>),
    SchoolNames(Vec<String>),
    UserRows {
        generation: u64,
        offset: u64,
        rows: Vec<UserRow>,
    },
    UserCount {
        generation: u64,
        count: BoundedCount,
    },
    UserDetail(Box<UserDetail>),
    Runs(Vec<RunRecord>),
    RunDetail(Box<RunDetail>),
    LogTail(LogTail),
    FeedFiles(Vec<FeedFileInfo>),
    /// A write succeeded; the message says what was done.
    Done(String),
    JobStarted(JobInfo),
    Cancelled(bool),
    Queues(Vec<QueueStatus>),
    Trash(Vec<TrashEntry>),
    TrashDetail(Box<TrashDetail>),
    /// The user, and its queue and trash items.
    UserSyncItems(String, Vec<UserSyncItem>),
    UserHistory(String, Vec<HistoryEntry>),
    UserHoldings(String, Vec<AuthorityHolding>),
    SyncSchools(Vec<AuthoritySchools>),
    Preview(Box<SchoolsPreview>),
    Stamps(ChangeStamps),
    QueueItems(Box<QueueItems>),
    QueueItem(Box<QueueItemDetail>),
    UserPosition {
        generation: u64,
        username: String,
        row: Option<u64>,
    },
}

#[derive(Clone, Debug)]
pub struct Reply {
    pub to: ViewId,
    /// The call this answers.
    pub call: Call,
    pub result: Result<Data, String>,
}

/// How much of a run's log and input the run detail shows.
pub const RUN_LOG_BYTES: u64 = 64 * 1024;
pub const RUN_INPUT_BYTES: u64 = 16 * 1024;

impl Call {
    pub fn name(&self) -> &'static str {
        match self {
            Call::Overview => "overview",
            Call::RoleCounts => "role counts",
            Call::SchoolRows => "schools",
            Call::SchoolNames => "school names",
            Call::UserRows { .. } => "users",
            Call::CountUsers { .. } => "count",
            Call::UserDetail(_) => "user",
            Call::Runs(_) => "runs",
            Call::RunDetail(_) => "run",
            Call::LogTail(_) => "log",
            Call::FeedFiles => "feeds",
            Call::Restore { .. } => "restore",
            Call::Extend { .. } => "extend",
            Call::PurgeUser(_) => "purge user",
            Call::StartImport(_) => "import",
            Call::StartPurge { .. } => "purge",
            Call::CancelJob(_) => "cancel",
            Call::QueueList => "queues",
            Call::PauseAuthority(_) => "pause",
            Call::ResumeAuthority(_) => "resume",
            Call::StartDrain(_) => "drain",
            Call::TrashList => "trash",
            Call::TrashShow(_) => "trash item",
            Call::TrashDelete(_) => "trash delete",
            Call::TrashRequeue(_) => "trash requeue",
            Call::ScheduleUser(_) => "schedule",
            Call::UserSyncItems(_) => "user sync items",
            Call::UserHistory(_) => "user history",
            Call::UserHoldings(_) => "user authorities",
            Call::SyncSchools => "sync schools",
            Call::StartVerify(_) => "verify",
            Call::VerifyFixObjects { .. } => "verify fix",
            Call::SchoolsAdd(_) => "sync-schools add",
            Call::SchoolsRemove(_) => "sync-schools remove",
            Call::SchoolsAddPreview(_) => "sync-schools add (dry run)",
            Call::SchoolsRemovePreview(_) => "sync-schools remove (dry run)",
            Call::Stamps => "changes",
            Call::QueueItems(_) => "queue items",
            Call::QueueItemShow(_) => "queue item",
            Call::QueueRetryNow(_) => "retry now",
            Call::QueueToTrash(_) => "move to trash",
            Call::QueueAfresh(_) => "schedule afresh",
            Call::UserPosition { .. } => "user position",
        }
    }
}

/// Runs one request on the engine.
pub async fn execute(api: &EngineApi, req: Request) -> Reply {
    let call = req.call.clone();
    let result = run(api, req.call).await.map_err(|e| e.to_string());
    Reply {
        to: req.to,
        call,
        result,
    }
}

/// How many waiting items the queue items table loads.
pub const QUEUE_ITEMS: usize = 5000;
/// How far a table looks for a user whose row moved.
pub const POSITION_CAP: u64 = 20_000;

async fn run(api: &EngineApi, call: Call) -> Result<Data, crate::engine::api::ApiError> {
    Ok(match call {
        Call::Overview => Data::Overview(Box::new(api.overview().await?)),
        Call::RoleCounts => Data::RoleCounts(api.role_memberships().await?),
        Call::SchoolRows => Data::SchoolRows(api.school_rows().await?),
        Call::SchoolNames => Data::SchoolNames(api.school_names().await?),
        Call::UserRows { generation, query } => {
            let offset = query.offset;
            Data::UserRows {
                generation,
                offset,
                rows: api.user_rows(query).await?,
            }
        }
        Call::CountUsers { generation, query, cap } => Data::UserCount {
            generation,
            count: api.count_users(query, cap).await?,
        },
        Call::UserDetail(name) => Data::UserDetail(Box::new(api.user_detail(name).await?)),
        Call::Runs(limit) => Data::Runs(api.runs(limit).await?),
        Call::RunDetail(id) => {
            let record = api.run(id.clone()).await?;
            let log = api.run_log(id.clone(), RUN_LOG_BYTES).await?;
            let input = api.run_input(id, RUN_INPUT_BYTES).await?;
            Data::RunDetail(Box::new(RunDetail { record, log, input }))
        }
        Call::LogTail(n) => Data::LogTail(api.log_tail(n).await?),
        Call::FeedFiles => Data::FeedFiles(api.feed_files().await?),
        Call::Restore { username, school } => {
            api.limbo_restore(username.clone(), school.clone()).await?;
            Data::Done(format!("restored {username} into {school}"))
        }
        Call::Extend { username, days } => {
            let u = api.limbo_extend(username.clone(), days).await?;
            let until = u.purge_at.map(|d| d.to_string()).unwrap_or_default();
            Data::Done(format!("{username} stays in limbo until {until}"))
        }
        Call::PurgeUser(username) => {
            api.limbo_purge_user(username.clone()).await?;
            Data::Done(format!("purged {username}"))
        }
        Call::StartImport(req) => Data::JobStarted(api.start_import(req).await?),
        Call::StartPurge { as_of, dry_run } => Data::JobStarted(api.start_purge(as_of, dry_run).await?),
        Call::CancelJob(id) => Data::Cancelled(api.cancel_job(id).await?),
        Call::QueueList => Data::Queues(api.queue_list().await?),
        Call::PauseAuthority(a) => {
            api.authority_pause(a.clone(), String::new()).await?;
            Data::Done(format!("paused {a}: nothing is sent to it until it is resumed"))
        }
        Call::ResumeAuthority(a) => {
            let was = api.authority_resume(a.clone()).await?;
            Data::Done(if was {
                format!("resumed {a}")
            } else {
                format!("{a} was not paused")
            })
        }
        Call::StartDrain(a) => Data::JobStarted(api.start_drain(a).await?),
        Call::SyncSchools => Data::SyncSchools(api.sync_schools(None).await?),
        Call::StartVerify(req) => Data::JobStarted(api.start_verify(req).await?),
        Call::VerifyFixObjects { authority, objects } => {
            let f = api.verify_fix_objects(authority.clone(), objects).await?;
            Data::Done(format!(
                "fix queued {} for {authority} ({} already waiting); drain or wait for the sender",
                plural(f.queued as usize, "item"),
                f.coalesced
            ))
        }
        Call::SchoolsAdd(req) => {
            let c = api.sync_schools_add(req).await?;
            Data::Done(format!(
                "{} now syncs {}{}",
                c.authority,
                c.schools.join(", "),
                if c.schedule {
                    format!(
                        " ({} queued)",
                        plural(c.scheduled.queued.values().sum::<u64>() as usize, "item")
                    )
                } else {
                    String::new()
                }
            ))
        }
        Call::SchoolsRemove(req) => {
            let c = api.sync_schools_remove(req).await?;
            Data::Done(format!(
                "{} no longer syncs {}{}",
                c.authority,
                c.schools.join(", "),
                if c.schedule {
                    format!(
                        " ({} queued)",
                        plural(c.scheduled.queued.values().sum::<u64>() as usize, "delete")
                    )
                } else {
                    String::new()
                }
            ))
        }
        Call::SchoolsAddPreview(req) => Data::Preview(Box::new(api.sync_schools_add_preview(req).await?)),
        Call::SchoolsRemovePreview(req) => Data::Preview(Box::new(api.sync_schools_remove_preview(req).await?)),
        Call::Stamps => Data::Stamps(api.change_stamps().await?),
        Call::QueueItems(a) => Data::QueueItems(Box::new(api.queue_items(a, QUEUE_ITEMS).await?)),
        Call::QueueItemShow(i) => Data::QueueItem(Box::new(api.queue_item_show(i).await?)),
        Call::QueueRetryNow(items) => {
            let done = api.queue_retry_now(items).await?;
            Data::Done(format!("{}: sent at the next round", plural(done.len(), "item")))
        }
        Call::QueueToTrash(items) => {
            let done = api.queue_to_trash(items).await?;
            Data::Done(format!("moved {} to the trash", plural(done.len(), "item")))
        }
        Call::QueueAfresh(items) => {
            let done = api.queue_afresh(items).await?;
            Data::Done(format!(
                "scheduled {} afresh: attempts start over",
                plural(done.len(), "object")
            ))
        }
        Call::UserPosition {
            generation,
            query,
            username,
        } => {
            let row = api.user_position(query, username.clone(), POSITION_CAP).await?;
            Data::UserPosition {
                generation,
                username,
                row,
            }
        }
        Call::TrashList => Data::Trash(api.trash_list().await?),
        Call::TrashShow(item) => Data::TrashDetail(Box::new(api.trash_show(item).await?)),
        Call::TrashDelete(items) => {
            let done = api.trash_delete(items).await?;
            Data::Done(format!("deleted {}", plural(done.len(), "trash item")))
        }
        Call::TrashRequeue(items) => {
            let done = api.trash_requeue(items).await?;
            Data::Done(format!("requeued {}: scheduled afresh", plural(done.len(), "item")))
        }
        Call::ScheduleUser(u) => {
            let s = api.schedule_user(u.clone()).await?;
            let n: u64 = s.queued.values().sum();
            let c: u64 = s.coalesced.values().sum();
            Data::Done(format!(
                "scheduled {u}: {} queued, {c} already waiting, {}",
                plural(n as usize, "item"),
                plural(s.queued.len().max(s.coalesced.len()), "authority")
            ))
        }
        Call::UserSyncItems(u) => {
            let items = api.user_sync_items(u.clone()).await?;
            Data::UserSyncItems(u, items)
        }
        Call::UserHoldings(u) => {
            let h = api.user_holdings(u.clone()).await?;
            Data::UserHoldings(u, h)
        }
        Call::UserHistory(u) => {
            let h = api.user_history(u.clone()).await?;
            Data::UserHistory(u, h)
        }
    })
}

/// `1 item`, `2 items` (English plurals by `s`, `y` → `ies`).
fn plural(n: usize, noun: &str) -> String {
    let many = match noun.strip_suffix('y') {
        Some(stem) => format!("{stem}ies"),
        None => format!("{noun}s"),
    };
    crate::tui::widgets::plural(n as u64, noun, &many)
}
