//! Feed intake: feeds that arrive without an admin at the keyboard. The
//! daemon watches a drop folder ([`inbox`]) and serves an upload API
//! ([`http`]); every feed becomes an ordinary import run of its school,
//! recorded with its origin (`inbox`, `http`). Imports of one school run
//! one at a time; different schools side by side.
//!
//! * [`pattern`]: which file is which school's feed; temp names.
//! * [`inbox`]: the watcher (inotify plus a periodic scan), settling,
//!   claiming a complete file into `.processing/`.
//! * [`claim`]: importing a claimed file, and what happens to it after
//!   (gone, or `failed/` with its reason); recovery after a restart.
//! * [`failed`]: the `failed/` folder, `intake list` and `intake retry`.
//! * [`tokens`], [`http`], [`listener`]: the upload API (bearer tokens
//!   scoped to schools, axum on tokio, TLS with rustls).

pub mod claim;
pub mod failed;
pub mod http;
pub mod inbox;
pub mod listener;
pub mod pattern;
pub mod tokens;

use super::config::{Config, ImportConfig};
use super::feed::Format;
use super::jobs::CancelToken;
use super::runs::Origin;
use super::{Engine, EngineError, EngineResult, Settings};
use crate::model::{Role, validate_school_name};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

/// The drop folder's layout.
#[derive(Clone, Debug)]
pub struct InboxPaths {
    pub root: PathBuf,
}

impl InboxPaths {
    pub fn of(settings: &Settings) -> Self {
        let configured = &settings.config.intake.inbox;
        InboxPaths {
            root: if configured.is_empty() {
                settings.paths.root().join("inbox")
            } else {
                PathBuf::from(configured)
            },
        }
    }
    /// Refused and failed files, each with `<name>.error.txt`.
    pub fn failed(&self) -> PathBuf {
        self.root.join("failed")
    }
    /// Files taken and being imported: `.processing/<claim>/<rel>`.
    pub fn processing(&self) -> PathBuf {
        self.root.join(".processing")
    }
}

/// One school's feed as a file name says it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FeedName {
    pub school: String,
    pub roles: Vec<Role>,
    pub format: Option<Format>,
}

/// A role as a file name or query gives it: a role name, or an
/// `import.roles` value.
pub fn resolve_role(cfg: &ImportConfig, text: &str) -> Option<Role> {
    cfg.roles
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(text))
        .map(|(_, r)| *r)
        .or_else(|| text.parse().ok())
}

/// What `rel` (relative to the inbox) is a feed of, by `intake.pattern`;
/// `None` when the name is no feed.
pub fn feed_of(config: &Config, rel: &Path) -> Option<FeedName> {
    let pattern = pattern::Pattern::parse(&config.intake.pattern).ok()?;
    let accept = |m: &pattern::Matched| {
        validate_school_name(&m.school).is_ok()
            && m.role
                .as_deref()
                .is_none_or(|r| resolve_role(&config.import, r).is_some())
            && m.ext.as_deref().is_none_or(|e| Format::parse(e).is_some())
    };
    let m = pattern.matches(rel, &accept)?;
    Some(FeedName {
        school: m.school,
        roles: m
            .role
            .and_then(|r| resolve_role(&config.import, &r))
            .into_iter()
            .collect(),
        format: m.ext.as_deref().and_then(Format::parse),
    })
}

/// Which schools have an import of this process in progress (the inbox's
/// workers and the upload API share it), and the waiting work.
#[derive(Default)]
pub struct Busy {
    state: Mutex<HashSet<String>>,
    changed: Condvar,
}

impl Busy {
    fn lock(&self) -> MutexGuard<'_, HashSet<String>> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Marks `school` busy; `false` when it was already.
    pub fn try_take(&self, school: &str) -> bool {
        self.lock().insert(school.to_lowercase())
    }

    pub fn release(&self, school: &str) {
        self.lock().remove(&school.to_lowercase());
        self.changed.notify_all();
    }

    pub fn is_busy(&self, school: &str) -> bool {
        self.lock().contains(&school.to_lowercase())
    }

    /// Waits until something was released, at most `timeout`.
    pub fn wait(&self, timeout: Duration) {
        let guard = self.lock();
        let _ = self.changed.wait_timeout(guard, timeout);
    }

    pub fn notify(&self) {
        self.changed.notify_all();
    }
}

/// Engines kept open for reuse: opening one per feed would cost more than
/// a small import.
pub struct EnginePool {
    settings: Settings,
    idle: Mutex<Vec<Engine>>,
}

impl EnginePool {
    pub fn new(settings: Settings) -> Self {
        EnginePool {
            settings,
            idle: Mutex::new(Vec::new()),
        }
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Runs `f` on an engine whose runs record `origin`.
    pub fn with<T>(&self, origin: Origin, f: impl FnOnce(&mut Engine) -> T) -> EngineResult<T> {
        let taken = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let mut engine = match taken {
            Some(e) => e,
            None => Engine::open(self.settings.clone())?,
        };
        engine.set_origin(origin);
        let out = f(&mut engine);
        self.idle.lock().unwrap_or_else(|p| p.into_inner()).push(engine);
        Ok(out)
    }
}

/// A [`super::jobs::Progress`] that only says when to stop.
pub(crate) struct StopWhen(pub CancelToken);

impl super::jobs::Progress for StopWhen {
    fn update(&mut self, _event: super::jobs::ProgressEvent) {}
    fn cancelled(&self) -> bool {
        self.0.is_cancelled()
    }
}

/// The running intake: the inbox watcher and its workers, the upload API.
pub struct Intake {
    stop: CancelToken,
    threads: Vec<std::thread::JoinHandle<()>>,
    http: Option<listener::Listener>,
}

impl Intake {
    /// Starts what `[intake]` asks for: the inbox when `intake.watch`, the
    /// upload API when `intake.http.listen` is set. Errors (a token file
    /// readable by others, an address in use, plain HTTP on a public
    /// address) stop the daemon before it starts.
    pub fn start(settings: &Settings) -> EngineResult<Intake> {
        let stop = CancelToken::default();
        let busy = Arc::new(Busy::default());
        let pool = Arc::new(EnginePool::new(settings.clone()));
        let http = if settings.config.intake.http.listen.is_empty() {
            None
        } else {
            let api = http::Api::new(settings, pool.clone(), busy.clone())?;
            Some(listener::Listener::start(&settings.config.intake.http, api)?)
        };
        let threads = if settings.config.intake.watch && !settings.read_only {
            inbox::start(settings, pool, busy, stop.clone())?
        } else {
            Vec::new()
        };
        Ok(Intake { stop, threads, http })
    }

    /// Where the upload API listens, if it does.
    pub fn http_addr(&self) -> Option<std::net::SocketAddr> {
        self.http.as_ref().map(|l| l.addr)
    }

    /// Stops everything: imports in progress stop before they write (their
    /// files are taken again at the next start), the listener closes.
    pub fn stop(self) {
        self.stop.cancel();
        if let Some(h) = self.http {
            h.stop();
        }
        for t in self.threads {
            let _ = t.join();
        }
    }
}

impl Engine {
    /// Files in the inbox's failed/ folder per school (lowercase; files
    /// whose name says no school count under "").
    pub fn intake_failed_by_school(&self) -> std::collections::BTreeMap<String, u64> {
        let mut out = std::collections::BTreeMap::new();
        for f in failed::failed_files(&InboxPaths::of(&self.settings)) {
            *out.entry(f.school.unwrap_or_default().to_lowercase()).or_default() += 1;
        }
        out
    }

    /// Where the feed of run `run_id` came from.
    pub fn feed_origin(&self, run_id: &str) -> Option<Origin> {
        self.runs.show(run_id).ok().and_then(|r| r.origin)
    }

    /// The drop folder's waiting, in-progress and failed files.
    pub fn intake_list(&self) -> EngineResult<failed::IntakeListing> {
        failed::list(&self.settings)
    }
}

pub(crate) fn io_err(path: &Path) -> impl Fn(std::io::Error) -> EngineError + '_ {
    super::io_error(path)
}
