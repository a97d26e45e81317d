//! The directory change listener as the engine runs it (the listener itself
//! is `store::ldap::listen`): alone until stopped (`rollcall listen`), or
//! on a thread of its own inside `rollcall daemon` ([`ListenerThread`]),
//! and its status for `info`, `authorities list` and the console. Only an
//! LDAP directory has a change stream; with the embedded store every change
//! is rollcall's own and is journalled as it is made.

use super::config::Backend;
use super::jobs::{CancelToken, Progress};
use super::{Engine, EngineError, EngineResult, Settings};
use crate::store::StoreError;
use crate::store::ldap::{Listener, ListenerStatus};
use std::thread::JoinHandle;

impl Engine {
    /// Follows the directory's change stream until `progress` says stop.
    pub fn listen(&self, progress: &mut dyn Progress) -> EngineResult<()> {
        self.check_writable("listen")?;
        if self.settings.config.directory.backend != Backend::Ldap {
            return Err(EngineError::BadInput(
                "the directory is the embedded store (directory.backend = \"sqlite\"): every change is journalled \
                 as it is made, there is no change stream to follow; listen is for directory.backend = \"ldap\""
                    .into(),
            ));
        }
        let mut listener = Listener::open(
            &self.settings.config.directory.ldap,
            &self.settings.paths.ldap_journal(),
        )?;
        self.audit.record("listen start", serde_json::Value::Null, "ok");
        let result = listener.run(&|| progress.cancelled());
        self.audit.record(
            "listen stop",
            serde_json::Value::Null,
            if result.is_ok() { "ok" } else { "failed" },
        );
        Ok(result?)
    }

    /// The listener's status: `None` unless the directory is LDAP and a
    /// listener ran for this data dir.
    pub fn listener_status(&self) -> EngineResult<Option<ListenerStatus>> {
        listener_status(&self.settings)
    }
}

/// The listener status of these settings' data dir (see [`Engine::listener_status`]).
pub fn listener_status(settings: &Settings) -> EngineResult<Option<ListenerStatus>> {
    if settings.config.directory.backend != Backend::Ldap {
        return Ok(None);
    }
    Ok(crate::store::ldap::listen::status(&settings.paths.ldap_journal())?)
}

/// A listener on a thread of its own (the daemon's), stopped on drop.
pub struct ListenerThread {
    stop: CancelToken,
    handle: Option<JoinHandle<()>>,
}

impl ListenerThread {
    /// Starts following the directory when it is LDAP and
    /// `directory.ldap.listen` is on. `None` otherwise, or when another
    /// process (e.g. `rollcall listen`) follows it already.
    pub fn spawn(settings: &Settings) -> EngineResult<Option<ListenerThread>> {
        let ldap = &settings.config.directory.ldap;
        if settings.config.directory.backend != Backend::Ldap || !ldap.listen || settings.read_only {
            return Ok(None);
        }
        let mut listener = match Listener::open(ldap, &settings.paths.ldap_journal()) {
            Ok(l) => l,
            Err(StoreError::ListenerBusy { path }) => {
                tracing::info!(lock = %path, "another process follows the directory's changes; the daemon leaves it to it");
                return Ok(None);
            }
            Err(e) => return Err(e.into()),
        };
        let stop = CancelToken::default();
        let flag = stop.clone();
        let handle = std::thread::Builder::new()
            .name("rollcall-listen".into())
            .spawn(move || {
                if let Err(e) = listener.run(&|| flag.is_cancelled()) {
                    tracing::error!(error = %e, "the directory change listener stopped");
                }
            })
            .map_err(|e| EngineError::Internal(format!("cannot start the directory change listener: {e}")))?;
        Ok(Some(ListenerThread {
            stop,
            handle: Some(handle),
        }))
    }

    /// Stops the listener and waits for it (it stores where it is).
    pub fn stop(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        self.stop.cancel();
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

impl Drop for ListenerThread {
    fn drop(&mut self) {
        self.halt();
    }
}
