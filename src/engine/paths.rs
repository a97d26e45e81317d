//! The data dir layout: `directory.sqlite`, `state.sqlite`, `queues/`,
//! `runs/`, `logs/`, `feeds/`.

use std::io;
use std::path::{Path, PathBuf};

#[derive(Clone, Debug)]
pub struct DataPaths {
    root: PathBuf,
}

impl DataPaths {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        DataPaths { root: root.into() }
    }

    /// `--data-dir` (or `ROLLCALL_DATA_DIR` / `data_dir` via the config),
    /// else the user data dir.
    pub fn resolve(explicit: Option<PathBuf>, configured: Option<PathBuf>) -> io::Result<Self> {
        if let Some(p) = explicit.or(configured) {
            return Ok(DataPaths::new(p));
        }
        directories::ProjectDirs::from("", "", "rollcall")
            .map(|d| DataPaths::new(d.data_dir()))
            .ok_or_else(|| io::Error::other("no home directory; pass --data-dir or set ROLLCALL_DATA_DIR"))
    }

    pub fn root(&self) -> &Path {
        &self.root
    }
    pub fn directory_db(&self) -> PathBuf {
        self.root.join("directory.sqlite")
    }
    /// The LDAP backend's local journal (change intents and entries).
    pub fn ldap_journal(&self) -> PathBuf {
        self.root.join("ldap-journal.sqlite")
    }
    pub fn state_db(&self) -> PathBuf {
        self.root.join("state.sqlite")
    }
    pub fn queues(&self) -> PathBuf {
        self.root.join("queues")
    }
    pub fn runs(&self) -> PathBuf {
        self.root.join("runs")
    }
    pub fn logs(&self) -> PathBuf {
        self.root.join("logs")
    }
    pub fn feeds(&self) -> PathBuf {
        self.root.join("feeds")
    }
    /// The data dir's own config layer.
    pub fn local_config(&self) -> PathBuf {
        self.root.join("rollcall.toml")
    }
    /// `queues/out/<authority>/`.
    pub fn out_queue(&self, authority: &str) -> PathBuf {
        self.queues().join("out").join(authority)
    }
    /// Lock files (imports of one school wait for each other).
    pub fn locks(&self) -> PathBuf {
        self.root.join("locks")
    }
    /// Embedded targets' default mirror files.
    pub fn mirrors(&self) -> PathBuf {
        self.root.join("mirrors")
    }
    /// What each SCIM authority's server declares (`<name>.json`).
    pub fn discovery(&self) -> PathBuf {
        self.root.join("discovery")
    }
    pub fn audit_log(&self) -> PathBuf {
        self.logs().join("audit.log")
    }

    /// Creates the data dir and its folders, private to the owner.
    pub fn ensure(&self) -> io::Result<()> {
        for dir in [self.root.clone(), self.runs(), self.logs(), self.queues()] {
            create_private_dir(&dir)?;
        }
        Ok(())
    }
}

/// `mkdir -p` with mode 0700 for what it creates.
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)
}

/// Runs `op`, which writes into `dir`; when it fails with "not found" (the
/// folder may not be there yet), makes `dir` (as [`create_private_dir`],
/// which is harmless when it exists) and runs it once more. Not "only when
/// `dir` is missing": another thread may make it between the failure and
/// the look, and that thread's folder is fine for this one too.
pub fn in_private_dir<T>(dir: &Path, op: impl Fn() -> io::Result<T>) -> io::Result<T> {
    op().or_else(|e| match e.kind() {
        io::ErrorKind::NotFound => create_private_dir(dir).and_then(|()| op()),
        _ => Err(e),
    })
}
