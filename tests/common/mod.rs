//! Shared test fixtures: a throwaway data dir with an engine, feed writing,
//! and imports with defaults that tests override. A district uses the
//! embedded store, or the shared throwaway slapd inside [`on_ldap`].
#![allow(dead_code)]

pub mod fault_drain;
pub mod hostile;
pub mod listen_trial;
pub mod measured;
pub mod proxy;
pub mod scim;
pub mod slapd;

use rollcall::engine::config::LoadOptions;
use rollcall::engine::import::{ImportOutcome, ImportRequest};
use rollcall::engine::jobs::Quiet;
use rollcall::engine::{Engine, Settings};
use rollcall::model::{Role, User, UserKey};
use std::path::{Path, PathBuf};

pub struct District {
    pub dir: tempfile::TempDir,
    pub engine: Engine,
    feeds: usize,
    /// The `--set`s that select the directory backend.
    backend_sets: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BackendKind {
    Sqlite,
    Ldap,
}

thread_local! {
    static BACKEND: std::cell::Cell<BackendKind> = const { std::cell::Cell::new(BackendKind::Sqlite) };
}

/// Runs a test body whose districts live in the shared slapd, each under
/// its own base DN. Without slapd: skipped (outside CI) or failed (CI).
pub fn on_ldap(body: impl FnOnce()) {
    if slapd::shared().is_none() {
        return;
    }
    BACKEND.with(|b| b.set(BackendKind::Ldap));
    body();
}

pub fn backend() -> BackendKind {
    BACKEND.with(|b| b.get())
}

pub const HEADER: &str = "record_uid,firstname,lastname,email,birthday,classes,role,schools";

impl District {
    pub fn new() -> Self {
        Self::with_sets(&[])
    }

    /// A district with `--set` style config overrides.
    pub fn with_sets(sets: &[&str]) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let backend_sets = match backend() {
            BackendKind::Sqlite => Vec::new(),
            BackendKind::Ldap => slapd::shared()
                .expect("on_ldap checked the server")
                .sets(dir.path(), &slapd::fresh_base()),
        };
        Self::assemble(dir, sets, backend_sets)
    }

    /// A district in this server under a fresh base DN.
    pub fn on_server(server: &slapd::Slapd, sets: &[&str]) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let backend_sets = server.sets(dir.path(), &slapd::fresh_base());
        Self::assemble(dir, sets, backend_sets)
    }

    fn assemble(dir: tempfile::TempDir, sets: &[&str], backend_sets: Vec<String>) -> Self {
        let all: Vec<String> = backend_sets
            .iter()
            .cloned()
            .chain(sets.iter().map(|s| s.to_string()))
            .collect();
        let engine = open_owned(dir.path(), &all, false);
        District {
            dir,
            engine,
            feeds: 0,
            backend_sets,
        }
    }

    /// The `--set`s selecting this district's backend.
    pub fn backend_sets(&self) -> &[String] {
        &self.backend_sets
    }

    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    /// Re-opens the engine with other settings (same data dir).
    pub fn reopen(&mut self, sets: &[&str], read_only: bool) {
        let all: Vec<String> = self
            .backend_sets
            .iter()
            .cloned()
            .chain(sets.iter().map(|s| s.to_string()))
            .collect();
        self.engine = open_owned(self.dir.path(), &all, read_only);
    }

    /// Writes a feed file with the default header and these data lines.
    pub fn feed(&mut self, lines: &[&str]) -> PathBuf {
        let mut text = String::from(HEADER);
        text.push('\n');
        for l in lines {
            text.push_str(l);
            text.push('\n');
        }
        self.raw_feed(text.as_bytes(), "csv")
    }

    pub fn raw_feed(&mut self, bytes: &[u8], ext: &str) -> PathBuf {
        self.feeds += 1;
        let p = self.dir.path().join(format!("feed-{}.{ext}", self.feeds));
        std::fs::write(&p, bytes).expect("write feed");
        p
    }

    pub fn request(school: &str, role: Role, file: PathBuf) -> ImportRequest {
        ImportRequest {
            school: school.into(),
            roles: vec![role],
            file,
            ..ImportRequest::default()
        }
    }

    /// Imports students of `school` from these lines; panics on engine errors.
    pub fn import(&mut self, school: &str, lines: &[&str]) -> ImportOutcome {
        let file = self.feed(lines);
        self.import_req(Self::request(school, Role::Student, file))
    }

    pub fn import_role(&mut self, school: &str, role: Role, lines: &[&str]) -> ImportOutcome {
        let file = self.feed(lines);
        self.import_req(Self::request(school, role, file))
    }

    pub fn import_req(&mut self, req: ImportRequest) -> ImportOutcome {
        self.engine.import(&req, &mut Quiet).expect("import")
    }

    pub fn user(&self, record_uid: &str) -> Option<User> {
        self.engine
            .directory()
            .user(&UserKey::new("district", record_uid))
            .expect("read user")
    }

    pub fn must(&self, record_uid: &str) -> User {
        self.user(record_uid)
            .unwrap_or_else(|| panic!("user {record_uid} missing"))
    }

    pub fn schools_of(&self, record_uid: &str) -> Vec<String> {
        self.must(record_uid).school_names().map(str::to_string).collect()
    }

    pub fn journal_head(&self) -> u64 {
        self.engine.directory().journal_head().expect("journal head")
    }

    /// `sync run --once` with this `--max-wait`, whatever it leaves.
    pub fn sync_for(&mut self, max_wait: std::time::Duration) -> rollcall::engine::sync::SyncOutcome {
        self.engine
            .sync_run(
                &rollcall::engine::sync::SyncOptions {
                    max_wait,
                    ..rollcall::engine::sync::SyncOptions::default()
                },
                &mut Quiet,
            )
            .expect("sync")
    }

    /// `verify` of one authority.
    pub fn verify(
        &mut self,
        authority: &str,
        kind: rollcall::engine::sync::verify::VerifyKind,
        fix: bool,
    ) -> rollcall::engine::sync::verify::VerifyReport {
        self.engine
            .verify(
                &rollcall::engine::sync::verify::VerifyRequest {
                    authority: authority.into(),
                    kind,
                    filter: None,
                    fix,
                },
                &mut Quiet,
            )
            .expect("verify")
    }
}

pub fn open(data_dir: &Path, sets: &[&str], read_only: bool) -> Engine {
    open_owned(
        data_dir,
        &sets.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
        read_only,
    )
}

pub fn open_owned(data_dir: &Path, sets: &[String], read_only: bool) -> Engine {
    let opts = LoadOptions {
        sets: sets.to_vec(),
        ..LoadOptions::default()
    };
    let settings = Settings::load(&opts, Some(data_dir.to_path_buf()), read_only).expect("settings");
    Engine::open(settings).expect("engine")
}

/// A student line: `uid,first,last,,,classes,student,school`.
pub fn student(uid: &str, first: &str, last: &str, classes: &str) -> String {
    format!("{uid},{first},{last},,,\"{classes}\",,")
}

/// A token file (mode 0600) in its own temp dir, for SCIM authorities.
pub fn token_file() -> (tempfile::TempDir, PathBuf) {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("token");
    std::fs::write(&path, format!("{}\n", scim::TOKEN)).expect("write token");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    (dir, path)
}

/// `--set` lines configuring a SCIM authority `name` with quick retries.
pub fn scim_authority(name: &str, url: &str, token: &Path, schools: &[&str]) -> Vec<String> {
    let schools = schools
        .iter()
        .map(|s| format!("\"{s}\""))
        .collect::<Vec<_>>()
        .join(", ");
    vec![
        format!("authorities.{name}.kind=\"scim\""),
        format!("authorities.{name}.url=\"{url}\""),
        format!("authorities.{name}.token_file=\"{}\"", token.display()),
        format!("authorities.{name}.schools=[{schools}]"),
        format!("authorities.{name}.retry.base_seconds=0.05"),
        format!("authorities.{name}.retry.max_seconds=0.4"),
        format!("authorities.{name}.timeout_seconds=2.0"),
        "sync.poll_seconds=0.05".to_string(),
    ]
}

/// Opens an engine with owned `--set` strings.
pub fn with_sets_owned(sets: &[String]) -> District {
    let refs: Vec<&str> = sets.iter().map(String::as_str).collect();
    District::with_sets(&refs)
}

/// A loopback TCP port that refuses connections for as long as the returned
/// socket lives: bound, never listening. (A port found free and let go may
/// be taken by another test's server a moment later, which then answers —
/// or stalls.)
pub fn refused_port() -> (std::os::fd::OwnedFd, u16) {
    use std::os::fd::FromRawFd;
    // SAFETY: plain socket calls on a fresh descriptor, with correctly
    // sized address structs; the descriptor is owned by the OwnedFd.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        assert!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
        let owned = std::os::fd::OwnedFd::from_raw_fd(fd);
        let mut addr: libc::sockaddr_in = std::mem::zeroed();
        addr.sin_family = libc::AF_INET as libc::sa_family_t;
        addr.sin_addr.s_addr = u32::from_ne_bytes([127, 0, 0, 1]);
        addr.sin_port = 0;
        let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        let rc = libc::bind(fd, &addr as *const libc::sockaddr_in as *const libc::sockaddr, len);
        assert_eq!(rc, 0, "bind: {}", std::io::Error::last_os_error());
        let mut got: libc::sockaddr_in = std::mem::zeroed();
        let mut got_len = len;
        let rc = libc::getsockname(
            fd,
            &mut got as *mut libc::sockaddr_in as *mut libc::sockaddr,
            &mut got_len,
        );
        assert_eq!(rc, 0, "getsockname: {}", std::io::Error::last_os_error());
        (owned, u16::from_be(got.sin_port))
    }
}
