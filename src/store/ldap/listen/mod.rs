//! The directory change listener: follows the server's change stream with
//! the LDAP Content Synchronization operation (RFC 4533, served by
//! OpenLDAP's `syncprov` overlay) in refreshAndPersist mode, and turns
//! every add, modify, rename and delete of a user, group or school entry
//! under `base_dn` into a journal entry carrying the object's old and new
//! schools — so changes made by any tool or any rollcall node reach the
//! authorities, not only this node's own writes.
//!
//! * The cookie is stored in `ldap-journal.sqlite` in the same transaction
//!   as the journal entries it covers (`state`): a crash re-delivers, and
//!   deciding a change again gives the same answer.
//! * What it last saw of each entry (object, schools, digest) tells a
//!   change's old schools and whether anything rollcall reads changed; so a
//!   lost or expired cookie means a full refresh that journals only what
//!   differs, and the very first sync of a data dir journals nothing (it
//!   records the directory as it is).
//! * This data dir's own writes record the entryCSNs they produced; the
//!   listener recognises them and does not journal them twice.
//! * It follows `listen_url` (a read-only replica) when set, else `url`.
//! * One listener per data dir: it holds `ldap-listener.lock`.

mod classify;
pub(super) mod proto;
mod state;
mod status;

pub use status::{ListenerStatus, status};

use super::conn::{Pool, PoolSettings};
use super::layout::Layout;
use super::mapping::Mapping;
use super::settings::LdapConfig;
use crate::store::{StoreError, StoreResult};
use chrono::Utc;
use classify::Classifier;
use ldap3::controls::{MakeCritical, RawControl, RefreshMode, SyncRequest};
use ldap3::{Ldap, Scope};
use proto::{EntryState, Message};
use state::{Applied, Change, Mode, State, StatusRow};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Changes decided in one transaction at most.
const BATCH: usize = 2000;
/// How long the first change of a batch waits for more.
const BATCH_WINDOW: Duration = Duration::from_millis(20);
/// How often the status is written while nothing happens, and the stop
/// flag checked.
const HEARTBEAT: Duration = Duration::from_secs(2);
/// How often an idle session proves that the server still answers.
const PROBE_EVERY: Duration = Duration::from_secs(30);
/// The result code of a refused cookie (RFC 4533 e-syncRefreshRequired).
const REFRESH_REQUIRED: u32 = 4096;

/// The lock file that makes one listener per data dir.
pub fn lock_path(journal_path: &Path) -> PathBuf {
    journal_path.with_file_name("ldap-listener.lock")
}

pub struct Listener {
    pool: Pool,
    follower: Follower,
    _lock: File,
}

/// Everything a session changes.
struct Follower {
    url: String,
    base: String,
    classifier: Classifier,
    state: State,
    status: StatusRow,
}

/// Why a session ended without an error.
enum End {
    Stopped,
    /// Start again at once (the cookie was refused and dropped).
    Again,
}

impl Listener {
    /// Takes the data dir's listener lock (refused with
    /// [`StoreError::ListenerBusy`] when another listener holds it) and
    /// opens the state; connects in [`run`](Listener::run).
    pub fn open(cfg: &LdapConfig, journal_path: &Path) -> StoreResult<Self> {
        cfg.check().map_err(|(key, message)| StoreError::Backend {
            server: cfg.url.clone(),
            message: format!("{key}: {message}"),
        })?;
        let lock_file = lock_path(journal_path);
        let lock = File::create(&lock_file).map_err(|e| StoreError::Backend {
            server: cfg.url.clone(),
            message: format!("{}: {e}", lock_file.display()),
        })?;
        if lock.try_lock().is_err() {
            return Err(StoreError::ListenerBusy {
                path: lock_file.display().to_string(),
            });
        }
        let url = cfg.follow_url().to_string();
        let pool = Pool::open(&PoolSettings {
            url: &url,
            starttls: cfg.starttls,
            ca_bundle: &cfg.ca_bundle,
            bind_dn: &cfg.bind_dn,
            bind_password_file: &cfg.bind_password_file,
            connect_timeout: Duration::from_secs(cfg.connect_timeout_secs.max(1)),
            timeout: Duration::from_secs(cfg.timeout_secs.max(1)),
            connections: 1,
        })?;
        let base = cfg.base_dn.trim().to_string();
        let classifier = Classifier::new(Layout::new(&cfg.layout, &base), Mapping::new(&cfg.attributes));
        Ok(Listener {
            pool,
            follower: Follower {
                status: StatusRow {
                    url: url.clone(),
                    connected: false,
                    phase: "connecting",
                    since: Utc::now(),
                    last_change_at: None,
                    lag_ms: None,
                    journaled: 0,
                    error: None,
                },
                url,
                base,
                classifier,
                state: State::open(journal_path)?,
            },
            _lock: lock,
        })
    }

    /// Follows the change stream until `stop` says so; reconnects with
    /// back-off after errors (each logged and shown in the status).
    pub fn run(&mut self, stop: &dyn Fn() -> bool) -> StoreResult<()> {
        let mut backoff = Duration::from_millis(250);
        let Listener { pool, follower, .. } = self;
        while !stop() {
            let started = Instant::now();
            match pool.block_on(follower.session(pool, stop)) {
                Ok(End::Stopped) => break,
                Ok(End::Again) => continue,
                Err(e) => {
                    tracing::warn!(error = %e, url = %follower.url, "directory change listener: session ended; reconnecting");
                    follower.status.connected = false;
                    follower.status.phase = "disconnected";
                    follower.status.error = Some(e.to_string());
                    follower.write_status();
                    if started.elapsed() > Duration::from_secs(60) {
                        backoff = Duration::from_millis(250);
                    }
                    let until = Instant::now() + backoff;
                    while Instant::now() < until && !stop() {
                        std::thread::sleep(Duration::from_millis(50));
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                }
            }
        }
        follower.status.connected = false;
        follower.status.phase = "stopped";
        follower.write_status();
        Ok(())
    }
}

/// The changes of a session not decided yet.
struct Pending {
    batch: Vec<(Change, Instant)>,
    /// Changes waiting for this data dir's writes (decided again later).
    deferred: Vec<(Change, Instant)>,
    /// The newest cookie not stored yet.
    cookie: Option<Vec<u8>>,
    /// The end of a present phase or full refresh was reached: entries not
    /// seen in this session are gone.
    sweep: bool,
}

impl Follower {
    fn write_status(&mut self) {
        if let Err(e) = self.state.set_status(&self.status) {
            tracing::warn!(error = %e, "directory change listener: cannot write its status");
        }
    }

    fn fail(&self, op: &str, message: String) -> StoreError {
        StoreError::Ldap {
            server: self.url.clone(),
            op: op.to_string(),
            dn: self.base.clone(),
            code: None,
            message,
        }
    }

    /// One sync session: connect, refresh from the stored cookie (or in
    /// full), then persist until stopped or the connection fails.
    async fn session(&mut self, pool: &Pool, stop: &dyn Fn() -> bool) -> StoreResult<End> {
        self.status.phase = "connecting";
        self.write_status();
        let mut ldap: Ldap = pool.dedicated().await?;
        let cookie = self.state.cookie()?;
        let full = cookie.is_none();
        let mut mode = if full && self.state.mirror_is_empty()? {
            Mode::Baseline
        } else {
            Mode::Compare
        };
        let generation = self.state.start_session()?;
        let request: RawControl = SyncRequest {
            mode: RefreshMode::RefreshAndPersist,
            cookie,
            reload_hint: false,
        }
        .critical()
        .into();
        let attrs = self.classifier.attributes();
        let filter = self.classifier.filter();
        let mut stream = ldap
            .with_controls(request)
            .streaming_search(&self.base, Scope::Subtree, &filter, attrs)
            .await
            .map_err(|e| self.fail("sync search", e.to_string()))?;
        let mut prober = ldap.clone();
        self.status.connected = true;
        self.status.phase = "refreshing";
        self.status.error = None;
        self.status.since = Utc::now();
        self.write_status();
        tracing::info!(url = %self.url, base = %self.base, full, ?mode, "directory change listener connected");
        let mut pending = Pending {
            batch: Vec::new(),
            deferred: Vec::new(),
            cookie: None,
            sweep: false,
        };
        let mut present_phase = full;
        let mut refresh_done = false;
        let mut heartbeat = Instant::now();
        let mut probed = Instant::now();
        loop {
            let wait = match pending.batch.first() {
                Some((_, at)) => BATCH_WINDOW.saturating_sub(at.elapsed()),
                None if !pending.deferred.is_empty() => Duration::from_millis(50),
                None => HEARTBEAT.saturating_sub(heartbeat.elapsed()),
            };
            let mut flush_now = false;
            match tokio::time::timeout(wait, stream.next()).await {
                Err(_) => flush_now = true,
                Ok(Err(e)) => return Err(self.fail("sync search", e.to_string())),
                Ok(Ok(Some(entry))) => {
                    probed = Instant::now();
                    let now = Instant::now();
                    match proto::message(entry).map_err(|m| self.fail("sync search", m))? {
                        Message::Entry {
                            state,
                            uuid,
                            dn,
                            attrs,
                            cookie,
                        } => {
                            let change = match state {
                                EntryState::Present => {
                                    present_phase = true;
                                    Change::Present { uuid }
                                }
                                EntryState::Delete => Change::Delete { uuid },
                                EntryState::Add | EntryState::Modify => Change::Entry {
                                    csn: attrs.get("entrycsn").and_then(|v| v.first()).cloned(),
                                    uuid,
                                    dn,
                                    attrs,
                                },
                            };
                            pending.batch.push((change, now));
                            if cookie.is_some() {
                                pending.cookie = cookie;
                            }
                        }
                        Message::NewCookie(c) => {
                            pending.cookie = Some(c);
                            flush_now = true;
                        }
                        Message::IdSet { deletes, uuids, cookie } => {
                            if !deletes {
                                present_phase = true;
                            }
                            for uuid in uuids {
                                let change = match deletes {
                                    true => Change::Delete { uuid },
                                    false => Change::Present { uuid },
                                };
                                pending.batch.push((change, now));
                            }
                            if cookie.is_some() {
                                pending.cookie = cookie;
                            }
                        }
                        Message::RefreshDone { present, done, cookie } => {
                            present_phase |= present;
                            if cookie.is_some() {
                                pending.cookie = cookie;
                            }
                            if done {
                                pending.sweep = present_phase;
                                refresh_done = true;
                                flush_now = true;
                            }
                        }
                    }
                }
                Ok(Ok(None)) => {
                    let res = stream.finish().await;
                    if res.rc == 0 {
                        // A refresh the server ended (it does not persist):
                        // store where it ended, and follow again.
                        let done = res.ctrls.iter().find(|c| c.1.ctype == proto::SYNC_DONE_OID);
                        if let Some(v) = done.and_then(|c| c.1.val.as_deref()) {
                            let (cookie, _) = proto::sync_done(v).map_err(|m| self.fail("sync search", m))?;
                            if cookie.is_some() {
                                pending.cookie = cookie;
                            }
                        }
                        self.flush(&mut pending, mode, generation)?;
                        return Ok(End::Again);
                    }
                    if res.rc == REFRESH_REQUIRED {
                        tracing::info!(url = %self.url, "the server refused the stored cookie; refreshing in full");
                        self.flush(&mut pending, mode, generation)?;
                        self.state.forget_cookie()?;
                        return Ok(End::Again);
                    }
                    return Err(StoreError::Ldap {
                        server: self.url.clone(),
                        op: "sync search".into(),
                        dn: self.base.clone(),
                        code: Some(res.rc),
                        message: format!("the server ended the change stream: {}", res.text),
                    });
                }
            }
            if flush_now || pending.batch.len() >= BATCH || stop() {
                self.flush(&mut pending, mode, generation)?;
            }
            if refresh_done {
                // From here on every change is a change.
                refresh_done = false;
                mode = Mode::Compare;
                self.status.phase = "persisting";
                self.write_status();
            }
            if stop() {
                let _ = stream.finish().await;
                let _ = ldap.unbind().await;
                return Ok(End::Stopped);
            }
            if heartbeat.elapsed() >= HEARTBEAT {
                heartbeat = Instant::now();
                self.write_status();
            }
            if probed.elapsed() >= PROBE_EVERY {
                probed = Instant::now();
                let probe = tokio::time::timeout(pool.timeout, prober.extended(ldap3::exop::WhoAmI)).await;
                if !matches!(probe, Ok(Ok(_))) {
                    return Err(self.fail("probe", "the server stopped answering".into()));
                }
            }
        }
    }

    /// Decides what is pending (deferred changes first, in order).
    fn flush(&mut self, p: &mut Pending, mode: Mode, generation: i64) -> StoreResult<()> {
        if p.batch.is_empty() && p.deferred.is_empty() && p.cookie.is_none() && !p.sweep {
            return Ok(());
        }
        let mut changes = std::mem::take(&mut p.deferred);
        changes.append(&mut p.batch);
        // Deferred entries count as seen: the sweep does not take them.
        let applied: Applied = self.state.apply(
            &self.classifier,
            mode,
            generation,
            changes,
            p.sweep,
            p.cookie.as_deref(),
        )?;
        if applied.cookie_saved {
            p.cookie = None;
        }
        p.sweep = false;
        p.deferred = applied.deferred;
        self.status.journaled += applied.journaled;
        if let Some(t) = applied.newest {
            self.status.last_change_at = Some(t);
            self.status.lag_ms = Some((Utc::now() - t).num_milliseconds().max(0));
        }
        Ok(())
    }
}
