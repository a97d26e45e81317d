//! Targets: where an authority's objects are written. A target receives
//! what the authority should hold for one object ([`Desired`]) and makes it
//! so, idempotently: it looks the object up by its external id, then
//! creates, updates, deactivates or deletes it. Kinds: `scim` (SCIM 2.0 over
//! HTTP(S)), `ldap` (a remote directory through the LDAP store's code) and
//! `embedded` (a local SQLite mirror).

pub mod embedded;
pub mod ldap;
pub mod scim;

use super::mapping::{Class, Desired, Mapped};
use crate::engine::config::{AuthorityConfig, AuthorityKind};
use crate::engine::paths::DataPaths;
use serde::Serialize;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How a failure is handled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorClass {
    /// Retried with back-off up to max_attempts (timeouts, resets, 429, 5xx).
    Transient,
    /// To trash at once (other 4xx, mapping errors).
    Permanent,
    /// The authority cannot be reached or refuses us as a whole (connect
    /// errors, 401/403, redirects): it is paused and probed; items keep
    /// their attempts.
    Unreachable,
    /// The request was stopped by rollcall itself (SIGTERM, the end of a
    /// `--once` run's wait): the item goes back untouched.
    Interrupted,
}

impl ErrorClass {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorClass::Transient => "transient",
            ErrorClass::Permanent => "permanent",
            ErrorClass::Unreachable => "unreachable",
            ErrorClass::Interrupted => "interrupted",
        }
    }
}

#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct TargetError {
    pub class: ErrorClass,
    pub message: String,
    pub http_status: Option<u16>,
    pub ldap_code: Option<u32>,
    /// A server's Retry-After.
    pub retry_after: Option<Duration>,
    /// No (complete) answer within the timeout: a round of nothing else
    /// pauses the authority like an unreachable one.
    pub timed_out: bool,
    /// A group written without these members (external ids), which the
    /// target does not hold yet: it waits for them (see
    /// [`members_delivered`]).
    pub waiting_for: Vec<String>,
}

impl TargetError {
    pub fn new(class: ErrorClass, message: impl Into<String>) -> Self {
        TargetError {
            class,
            message: message.into(),
            http_status: None,
            ldap_code: None,
            retry_after: None,
            timed_out: false,
            waiting_for: Vec::new(),
        }
    }

    pub fn permanent(message: impl Into<String>) -> Self {
        Self::new(ErrorClass::Permanent, message)
    }

    pub fn transient(message: impl Into<String>) -> Self {
        Self::new(ErrorClass::Transient, message)
    }
}

/// How many missing members an error names.
const NAMED_MEMBERS: usize = 3;

/// `Ok` when the group `m`, written without the members `missing` (the
/// target does not hold them yet), counts as delivered: nothing was
/// missing, or it is a school group — its users join it when they are
/// sent. A class or workgroup is not delivered: no user write joins it
/// later, so it fails, transiently, carrying the members it waits for;
/// settling keeps it waiting while they are on their way.
pub fn members_delivered(m: &Mapped, missing: &[String]) -> Result<(), TargetError> {
    if missing.is_empty() || m.class != Class::Group || m.external_id.starts_with("school:") {
        return Ok(());
    }
    let named: Vec<&str> = missing.iter().take(NAMED_MEMBERS).map(String::as_str).collect();
    let more = if missing.len() > NAMED_MEMBERS { ", …" } else { "" };
    Err(TargetError {
        waiting_for: missing.to_vec(),
        ..TargetError::transient(format!(
            "{} member(s) not on the target yet ({}{more}): the group was written without them and is \
             sent again until they are in it",
            missing.len(),
            named.join(", ")
        ))
    })
}

/// The longest error text kept (trash, queue items, logs): a server may
/// answer with megabytes of "detail".
pub const MAX_ERROR_TEXT: usize = 4096;

/// `text`, cut to [`MAX_ERROR_TEXT`] bytes (on a character boundary) with
/// its full size noted.
pub fn cap_text(text: &str) -> String {
    if text.len() <= MAX_ERROR_TEXT {
        return text.to_string();
    }
    let mut end = MAX_ERROR_TEXT;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… (cut; {} bytes in all)", &text[..end], text.len())
}

/// Set when the process is asked to stop (SIGTERM): every target request
/// in flight in this process ends at once.
static STOPPING: AtomicBool = AtomicBool::new(false);

/// Stops every target request in flight in this process, now and from now
/// on (their items go back to the queue). Async-signal-safe: a signal
/// handler may call it.
pub fn stop_all_requests() {
    STOPPING.store(true, Ordering::SeqCst);
}

/// Stops a target's requests in flight: set on SIGTERM, or when a `--once`
/// run has waited as long as it may. Requests then fail at once with
/// [`ErrorClass::Interrupted`] and their items go back to the queue.
#[derive(Debug, Default)]
pub struct Interrupt {
    stop: AtomicBool,
    deadline: Mutex<Option<Instant>>,
}

impl Interrupt {
    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
    }

    /// Requests end by `at` (none: no deadline).
    pub fn set_deadline(&self, at: Option<Instant>) {
        if let Ok(mut d) = self.deadline.lock() {
            *d = at;
        }
    }

    /// Lets requests run again.
    pub fn clear(&self) {
        self.stop.store(false, Ordering::SeqCst);
        self.set_deadline(None);
    }

    pub fn due(&self) -> bool {
        STOPPING.load(Ordering::SeqCst)
            || self.stop.load(Ordering::SeqCst)
            || self
                .deadline
                .lock()
                .ok()
                .and_then(|d| *d)
                .is_some_and(|d| Instant::now() >= d)
    }

    /// Resolves once the interrupt is due (polled every 25 ms).
    pub async fn wait(&self) {
        while !self.due() {
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

/// What a target did with one object.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Applied {
    Created,
    Updated,
    Unchanged,
    Deactivated,
    Deleted,
    /// To be deleted or deactivated, and not there: nothing to do.
    Absent,
    /// Nothing to send for this object on this kind of target.
    Skipped,
}

impl Applied {
    pub fn as_str(self) -> &'static str {
        match self {
            Applied::Created => "created",
            Applied::Updated => "updated",
            Applied::Unchanged => "unchanged",
            Applied::Deactivated => "deactivated",
            Applied::Deleted => "deleted",
            Applied::Absent => "absent",
            Applied::Skipped => "skipped",
        }
    }
}

/// One resource as a target lists it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RemoteObject {
    /// The target's own id.
    pub id: String,
    pub external_id: Option<String>,
    /// Members' external ids where the target can tell them (embedded), or
    /// the target's member ids (scim).
    pub resource: Value,
}

/// A remote authority's store of users and groups.
pub trait Target: Send + Sync {
    /// For messages: `scim https://…`, `embedded /path`.
    fn describe(&self) -> String;
    /// A cheap request that tells whether the target answers at all.
    fn probe(&self) -> Result<(), TargetError>;
    /// Makes one object as desired.
    fn apply(&self, desired: &Desired) -> Result<Applied, TargetError>;
    /// Makes many objects as desired; a target that writes locally does it
    /// in one transaction. Results are in order.
    fn apply_batch(&self, desired: &[&Desired]) -> Vec<Result<Applied, TargetError>> {
        desired.iter().map(|d| self.apply(d)).collect()
    }
    /// Whether the sender should call [`Target::apply`] from its workers in
    /// parallel (remote targets) or hand whole batches to
    /// [`Target::apply_batch`] (local ones).
    fn parallel(&self) -> bool {
        true
    }
    /// Lists every resource of a class, page by page, handing each to
    /// `visit` until it returns `false`.
    fn list(&self, class: Class, visit: &mut dyn FnMut(RemoteObject) -> bool) -> Result<(), TargetError>;
    /// The one resource of a class holding this external id, as
    /// [`Target::list`] would show it (one lookup, never a listing).
    fn fetch(&self, class: Class, external_id: &str) -> Result<Option<RemoteObject>, TargetError>;
    /// Learns what the target supports, once (SCIM discovery: from the
    /// data dir's cache, else from the server, then cached).
    fn discover(&self) -> Result<(), TargetError> {
        Ok(())
    }
    /// Asks the target again what it supports (resume, `authorities refresh`).
    fn rediscover(&self) -> Result<(), TargetError> {
        Ok(())
    }
    /// A drain of `items` is about to start. A target that can list what
    /// it holds with fewer requests than looking each object up does so now
    /// and diffs against the listing (`user_paths`: the user attributes
    /// compared). `true` when it listed.
    fn prefetch(&self, items: usize, user_paths: &[String]) -> Result<bool, TargetError> {
        let _ = (items, user_paths);
        Ok(false)
    }
    /// The drain is over: forget the listing.
    fn forget_prefetch(&self) {}
    /// Requests sent to the target so far (0 where it does not count them).
    fn requests(&self) -> u64 {
        0
    }
    /// What stops this target's requests in flight, if they can be stopped.
    fn interrupt(&self) -> Option<&Interrupt> {
        None
    }
}

/// Reads a secret from a file that only its owner may read.
pub fn read_secret(path: &Path, key: &str) -> Result<String, TargetError> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path)
        .map_err(|e| TargetError::permanent(format!("{key} {}: cannot read it: {e}", path.display())))?;
    let mode = meta.permissions().mode();
    if mode & 0o077 != 0 {
        return Err(TargetError::permanent(format!(
            "{key} {} is readable by group or others (mode {:o}); run chmod 600 {}",
            path.display(),
            mode & 0o777,
            path.display()
        )));
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| TargetError::permanent(format!("{key} {}: cannot read it: {e}", path.display())))?;
    let secret = text.trim().to_string();
    if secret.is_empty() {
        return Err(TargetError::permanent(format!("{key} {} is empty", path.display())));
    }
    Ok(secret)
}

/// The mirror file of an embedded authority.
pub fn mirror_path(name: &str, config: &AuthorityConfig, paths: &DataPaths) -> PathBuf {
    if config.url.is_empty() {
        paths.mirrors().join(format!("{name}.sqlite"))
    } else {
        PathBuf::from(config.url.strip_prefix("sqlite:").unwrap_or(&config.url))
    }
}

/// Opens the target of an authority.
pub fn open(name: &str, config: &AuthorityConfig, paths: &DataPaths) -> Result<Box<dyn Target>, TargetError> {
    match config.kind {
        AuthorityKind::Scim => Ok(Box::new(scim::ScimTarget::new(
            config,
            Some(paths.discovery().join(format!("{name}.json"))),
        )?)),
        AuthorityKind::Embedded => Ok(Box::new(embedded::EmbeddedTarget::open(&mirror_path(
            name, config, paths,
        ))?)),
        AuthorityKind::Ldap => Ok(Box::new(ldap::LdapTarget::new(config)?)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Map;

    fn group(external_id: &str) -> Mapped {
        Mapped {
            class: Class::Group,
            external_id: external_id.into(),
            name: external_id.into(),
            attributes: Map::new(),
            paths: Vec::new(),
            members: Some(Vec::new()),
            school_groups: Vec::new(),
            left_school_groups: Vec::new(),
        }
    }

    #[test]
    fn a_class_without_some_members_is_not_delivered_a_school_group_is() {
        let missing: Vec<String> = (1..=5).map(|i| format!("district:u{i}")).collect();
        let e = members_delivered(&group("class:gsa:5a"), &missing).expect_err("not delivered");
        assert_eq!(e.class, ErrorClass::Transient);
        assert_eq!(e.waiting_for, missing);
        assert!(
            e.message
                .starts_with("5 member(s) not on the target yet (district:u1, district:u2, district:u3, …)"),
            "{}",
            e.message
        );
        assert!(members_delivered(&group("workgroup:gsa:chor"), &missing[..1]).is_err());
        assert!(members_delivered(&group("school:gsa"), &missing).is_ok());
        assert!(members_delivered(&group("class:gsa:5a"), &[]).is_ok());
    }
}
