//! The engine: configuration, imports (plan, then apply), limbo and purge,
//! runs, and the audit log. It knows nothing of terminals: callers pass a
//! [`jobs::Progress`] and render what they get back.

pub mod api;
pub mod audit;
pub mod browse;
pub mod changes;
pub mod config;
pub mod demo;
pub mod feed;
pub mod freshness;
pub mod hooks;
pub mod import;
pub mod intake;
pub mod jobs;
pub mod limbo;
pub mod listen;
pub mod lock;
pub mod mapping;
pub mod metrics;
pub mod migrate;
pub mod overview;
pub mod password;
pub mod paths;
pub mod received;
pub mod runs;
pub mod scheme;
pub mod schools;
pub mod state;
pub mod sync;
pub mod users;

use crate::store::{Directory, LdapDirectory, SqliteDirectory, StoreError};
use audit::{Actor, AuditLog};
use chrono::NaiveDate;
use config::{Backend, Config, ConfigError, ConfigSources, LoadOptions};
use paths::DataPaths;
use runs::{RunError, Runs};
use state::{StateDb, StateError};
use std::path::PathBuf;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum EngineError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Feed(#[from] feed::FeedError),
    #[error(transparent)]
    Run(#[from] RunError),
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("refused: rollcall is read-only (--read-only or read_only = true) and `{action}` changes data")]
    ReadOnly { action: String },
    /// The object asked for does not exist (exit 1).
    #[error("{0}")]
    NotFound(String),
    /// A bad argument or option value: the request itself is wrong (exit 2).
    #[error("{0}")]
    Usage(String),
    /// The object is not in a state that allows the action, e.g. restoring
    /// a user who is not in limbo (exit 1).
    #[error("{0}")]
    WrongState(String),
    /// A file or setting the action needs cannot be used as it is, e.g.
    /// mapping rules that do not parse (exit 1).
    #[error("{0}")]
    BadInput(String),
    /// A guard or rule said no (e.g. a school already assigned, without
    /// --force); audited (exit 3).
    #[error("refused: {0}")]
    Refused(String),
    #[error("cancelled: {0}")]
    Cancelled(String),
    /// Something that should not happen (a worker thread gone).
    #[error("{0}")]
    Internal(String),
    #[error(transparent)]
    Target(#[from] sync::target::TargetError),
}

/// What kind of failure an error is, for exit codes and for the console.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// Bad flags or argument values: exit 2.
    Usage,
    /// Refused by a guard, a rule or read-only mode: exit 3.
    Refused,
    /// Not found: exit 1.
    NotFound,
    /// Not in a state that allows it: exit 1.
    WrongState,
    /// Stopped by the admin.
    Cancelled,
    /// Anything else (files, stores, servers, config): exit 1.
    Failed,
}

impl EngineError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            EngineError::Usage(_) => ErrorKind::Usage,
            EngineError::Refused(_) | EngineError::ReadOnly { .. } => ErrorKind::Refused,
            EngineError::NotFound(_) => ErrorKind::NotFound,
            EngineError::WrongState(_) => ErrorKind::WrongState,
            EngineError::Cancelled(_) => ErrorKind::Cancelled,
            _ => ErrorKind::Failed,
        }
    }
}

pub type EngineResult<T> = Result<T, EngineError>;

pub(crate) fn io_error(path: &std::path::Path) -> impl Fn(std::io::Error) -> EngineError + '_ {
    move |source| EngineError::Io {
        path: path.display().to_string(),
        source: crate::store::space::explain(path, source),
    }
}

impl EngineError {
    /// Whether this is a full disk (ENOSPC, a quota, SQLITE_FULL).
    pub fn is_disk_full(&self) -> bool {
        use crate::store::space::{is_full, sqlite_full};
        match self {
            EngineError::Io { source, .. } => is_full(source),
            EngineError::Run(RunError::Io { source, .. }) => is_full(source),
            EngineError::Store(StoreError::Sqlite { disk_full, .. }) => *disk_full,
            EngineError::State(e) => sqlite_full(&e.source, std::path::Path::new(&e.path)),
            _ => false,
        }
    }
}

/// Loaded configuration plus where things live; enough for `info`, before
/// any store is opened.
#[derive(Clone, Debug)]
pub struct Settings {
    pub config: Config,
    pub sources: ConfigSources,
    pub paths: DataPaths,
    pub read_only: bool,
}

impl Settings {
    /// Loads the config layers; `data_dir` is `--data-dir`, `read_only`
    /// is `--read-only` (either it or the config switches read-only on).
    pub fn load(opts: &LoadOptions, data_dir: Option<PathBuf>, read_only: bool) -> EngineResult<Self> {
        // Where the data dir is comes first: its own rollcall.toml is a
        // layer too (it cannot move the data dir), and only the merge of
        // every layer is deserialized.
        let configured = config::configured_data_dir(opts)?;
        let paths = DataPaths::resolve(data_dir, configured).map_err(|e| EngineError::BadInput(e.to_string()))?;
        let local = paths.local_config();
        let (config, sources) = if opts.data_files.is_empty() && local.is_file() {
            let mut with_local = opts.clone();
            with_local.data_files.push(local);
            config::load(&with_local)?
        } else {
            config::load(opts)?
        };
        let read_only = read_only || config.read_only;
        Ok(Settings {
            config,
            sources,
            paths,
            read_only,
        })
    }
}

/// A second connection to the directory beside a writer of this process
/// (the batch import's planner): it leaves the writer's unfinished work alone.
pub(crate) fn open_directory_beside(settings: &Settings) -> EngineResult<Box<dyn Directory>> {
    Ok(match settings.config.directory.backend {
        Backend::Sqlite => Box::new(SqliteDirectory::open(&settings.paths.directory_db())?),
        Backend::Ldap => Box::new(LdapDirectory::open_beside(
            &settings.config.directory.ldap,
            &settings.paths.ldap_journal(),
        )?),
    })
}

/// Opens a connection to the configured directory.
pub(crate) fn open_directory(settings: &Settings) -> EngineResult<Box<dyn Directory>> {
    Ok(match settings.config.directory.backend {
        Backend::Sqlite => Box::new(SqliteDirectory::open(&settings.paths.directory_db())?),
        Backend::Ldap => Box::new(LdapDirectory::open(
            &settings.config.directory.ldap,
            &settings.paths.ldap_journal(),
        )?),
    })
}

/// Every queue folder below `queues/out/` (configured or not), opened.
fn queue_folders(paths: &DataPaths) -> Vec<sync::queue::Queue> {
    let out = paths.queues().join("out");
    let Ok(entries) = std::fs::read_dir(&out) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|e| e.path().join(".tmp").is_dir())
        .filter_map(|e| e.file_name().into_string().ok())
        .filter_map(|name| match sync::queue::Queue::open(&out, &name) {
            Ok(q) => Some(q),
            Err(err) => {
                tracing::warn!(queue = %name, error = %err, "cannot open the queue folder");
                None
            }
        })
        .collect()
}

/// Removes temp files of queue writers that are gone (any queue folder,
/// configured or not) and of run markers never renamed into place; returns
/// how many. Failures are logged: this only frees space.
pub fn clean_temp_files(paths: &DataPaths) -> u64 {
    let mut removed = 0;
    for q in queue_folders(paths) {
        match q.clean_temp(false) {
            Ok(n) => removed += n,
            Err(err) => tracing::warn!(queue = %q.authority(), error = %err, "cannot clean the queue's temp files"),
        }
    }
    removed += Runs::new(paths.runs()).clean_temp();
    if removed > 0 {
        tracing::info!(removed, "removed temp files of writers that are gone");
    }
    removed
}

/// Gives back spent item files (see [`sync::spent`]) beyond `keep` per
/// queue, at most `at_most` per queue; returns how many went.
pub fn trim_spent_files(paths: &DataPaths, keep: usize, at_most: usize) -> u64 {
    let mut removed = 0;
    for q in queue_folders(paths) {
        match q.trim_spent(keep, at_most) {
            Ok(n) => removed += n,
            Err(err) => tracing::warn!(queue = %q.authority(), error = %err, "cannot trim the queue's spent files"),
        }
    }
    removed
}

/// What can go when the disk is full: dead writers' temp files and every
/// queue's spent files; returns how many files went.
pub fn free_disk(paths: &DataPaths) -> u64 {
    clean_temp_files(paths) + trim_spent_files(paths, 0, usize::MAX)
}

/// An open engine: settings, the directory, local state, audit.
pub struct Engine {
    settings: Settings,
    dir: Box<dyn Directory>,
    state: StateDb,
    audit: AuditLog,
    runs: Runs,
}

impl Engine {
    /// Opens the data dir (creating it) and the configured directory.
    /// Refuses a directory holding two spellings of one school (see
    /// [`schools`]).
    pub fn open(settings: Settings) -> EngineResult<Self> {
        let engine = Self::open_unchecked(settings)?;
        engine.check_schools()?;
        Ok(engine)
    }

    /// Refuses a directory that holds two spellings of one school.
    pub fn check_schools(&self) -> EngineResult<()> {
        schools::check_case_variants(self.dir.as_ref())
    }

    /// Opens without looking for two spellings of one school: for
    /// `schools list` and `schools merge`, the way out of that state.
    pub fn open_unchecked(settings: Settings) -> EngineResult<Self> {
        let paths = &settings.paths;
        paths.ensure().map_err(io_error(paths.root()))?;
        // Before anything else writes: temp files of writers that died
        // (a full disk may be full of them).
        clean_temp_files(paths);
        let dir = open_directory(&settings)?;
        let state = StateDb::open(&paths.state_db())?;
        sync::distributor::register(&state, dir.as_ref(), &settings.config)?;
        let audit = AuditLog::new(paths.audit_log(), Actor::current());
        let runs = Runs::new(paths.runs());
        if let Err(e) = runs.recover_interrupted() {
            tracing::warn!(error = %e, "cannot look for interrupted runs");
        }
        Ok(Engine {
            settings,
            dir,
            state,
            audit,
            runs,
        })
    }

    /// An engine over given parts, for tests and embedding.
    pub fn with_parts(settings: Settings, dir: Box<dyn Directory>, state: StateDb) -> EngineResult<Self> {
        settings.paths.ensure().map_err(io_error(settings.paths.root()))?;
        sync::distributor::register(&state, dir.as_ref(), &settings.config)?;
        let audit = AuditLog::new(settings.paths.audit_log(), Actor::current());
        let runs = Runs::new(settings.paths.runs());
        Ok(Engine {
            settings,
            dir,
            state,
            audit,
            runs,
        })
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    pub fn config(&self) -> &Config {
        &self.settings.config
    }

    pub fn directory(&self) -> &dyn Directory {
        self.dir.as_ref()
    }

    /// The directory for writing, bypassing the engine's checks (benchmarks
    /// and tests that set up data).
    pub fn directory_mut(&mut self) -> &mut dyn Directory {
        self.dir.as_mut()
    }

    pub fn runs(&self) -> &Runs {
        &self.runs
    }

    /// Where the runs this engine starts come from (default: the CLI).
    pub fn set_origin(&mut self, origin: runs::Origin) {
        self.runs.set_origin(origin);
    }

    pub fn audit(&self) -> &AuditLog {
        &self.audit
    }

    pub fn read_only(&self) -> bool {
        self.settings.read_only
    }

    /// Refuses a destructive action in read-only mode (and audits the
    /// refusal).
    pub(crate) fn check_writable(&self, action: &str) -> EngineResult<()> {
        if self.settings.read_only {
            self.audit.record(action, serde_json::Value::Null, "refused: read-only");
            return Err(EngineError::ReadOnly {
                action: action.to_string(),
            });
        }
        Ok(())
    }

    /// Audits a refusal and returns it as the error to give back.
    pub(crate) fn refuse(&self, action: &str, details: serde_json::Value, why: String) -> EngineError {
        self.audit.record(action, details, &format!("refused: {why}"));
        EngineError::Refused(why)
    }

    /// Deletes run records older than `runs.retention_days` (at most one
    /// pass a day). A failure is logged, never fatal.
    pub(crate) fn prune_runs(&self) {
        if let Err(e) = self
            .runs
            .prune(self.settings.config.runs.retention_days, chrono::Utc::now())
        {
            tracing::warn!(error = %e, "pruning old runs failed");
        }
    }

    /// Today in local time, the day purge dates count in.
    pub fn today(&self) -> NaiveDate {
        chrono::Local::now().date_naive()
    }
}
