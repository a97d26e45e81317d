//! Authorities at run time: a configured authority with its schools, its
//! mapper and its queue, and the plain-data views `authorities list|show`,
//! `queue list` and the console show.

use super::mapping::{Class, Mapper};
use super::pause::Paused;
use super::queue::Queue;
use super::target::scim::discovery::Capabilities;
use super::target::{self, Target, TargetError};
use crate::engine::config::{AuthorityConfig, AuthorityKind, OnRemoval};
use crate::engine::{Engine, EngineError, EngineResult, io_error};
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::path::Path;

/// One configured authority, ready to queue and send.
#[derive(Clone, Debug)]
pub struct Authority {
    pub name: String,
    pub config: AuthorityConfig,
    pub mapper: Mapper,
    pub queue: Queue,
}

impl Authority {
    pub fn open_target(&self, engine: &Engine) -> Result<Box<dyn Target>, TargetError> {
        target::open(&self.name, &self.config, &engine.settings().paths)
    }
}

/// An authority's queue as admins see it.
#[derive(Clone, Debug, Serialize)]
pub struct QueueStatus {
    pub authority: String,
    pub kind: &'static str,
    pub active: bool,
    /// Items waiting: pending plus in back-off.
    pub depth: u64,
    pub pending: u64,
    pub retrying: u64,
    /// Items being sent right now (by any process).
    pub claimed: u64,
    /// Files in `.tmp/`: being written, or left by a writer that died
    /// (cleaned at the next start; they take disk space meanwhile).
    pub temp_files: u64,
    /// Sent items' files kept for the next enqueues to overwrite (the
    /// daemon gives back those beyond 10,000).
    pub spent_files: u64,
    pub trash: u64,
    pub oldest_item_at: Option<DateTime<Utc>>,
    pub oldest_age_seconds: Option<i64>,
    pub next_retry_at: Option<DateTime<Utc>>,
    pub paused: Option<Paused>,
    /// Journal entries not yet looked at for this authority.
    pub journal_lag: u64,
    pub sent_total: u64,
    pub last_sent_at: Option<DateTime<Utc>>,
    /// Items per second of the last round that sent something.
    pub last_rate: Option<f64>,
}

/// `authorities list|show`.
#[derive(Clone, Debug, Serialize)]
pub struct AuthorityView {
    pub name: String,
    pub kind: &'static str,
    pub url: String,
    pub active: bool,
    pub schools: Vec<String>,
    pub workers: usize,
    pub max_attempts: u32,
    pub retry_base_seconds: f64,
    pub retry_max_seconds: f64,
    pub on_removal: &'static str,
    pub school_groups: bool,
    pub mapping: std::collections::BTreeMap<String, String>,
    pub token_file: String,
    pub ca_bundle: String,
    /// Configuration problems found without contacting the target (an
    /// unreadable or too open token file, a missing CA bundle…).
    pub problems: Vec<String>,
    pub queue: QueueStatus,
    /// scim: what the server declared when last asked (discovery), if it
    /// was asked yet.
    pub capabilities: Option<Capabilities>,
    /// Mapped target attributes the server does not declare: never sent,
    /// never compared.
    pub dropped: Vec<String>,
    /// The directory change listener that journals changes made outside
    /// rollcall (LDAP directories; `null` otherwise or before it first ran).
    pub listener: Option<crate::store::ldap::ListenerStatus>,
}

impl Engine {
    /// The schools an authority receives: the config's list (which may
    /// say `*`) merged with the data dir's assignments (see [`super::assign`]).
    pub fn authority_schools(&self, name: &str) -> Vec<String> {
        match self.effective_schools(name) {
            Ok((schools, _)) => schools,
            Err(e) => {
                tracing::warn!(authority = name, error = %e, "reading the schools to sync failed");
                Vec::new()
            }
        }
    }

    /// A configured authority by name.
    pub fn authority(&self, name: &str) -> EngineResult<Authority> {
        let config = self.config().authorities.get(name).cloned().ok_or_else(|| {
            let known: Vec<&str> = self.config().authorities.keys().map(String::as_str).collect();
            EngineError::NotFound(format!(
                "no authority '{name}' (configured: {})",
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            ))
        })?;
        let out = self.settings().paths.queues().join("out");
        let queue = Queue::open(&out, name).map_err(io_error(&out))?;
        let (schools, excluded) = self.effective_schools(name)?;
        let mut mapper = Mapper::new(&config, &schools, &self.config().import.limbo_school);
        mapper.scope = mapper.scope.excluding(excluded);
        if let Some(caps) = self.capabilities(name, &config) {
            let mapped: Vec<String> = config.user_mapping().into_keys().collect();
            mapper = mapper.without(&caps.dropped(Class::User, &mapped));
        }
        Ok(Authority {
            name: name.to_string(),
            config,
            mapper,
            queue,
        })
    }

    /// What a SCIM authority's server declared when last asked (the data
    /// dir's cache), if it was asked.
    pub fn capabilities(&self, name: &str, config: &AuthorityConfig) -> Option<Capabilities> {
        if config.kind != AuthorityKind::Scim {
            return None;
        }
        Capabilities::load(&self.settings().paths.discovery().join(format!("{name}.json")))
    }

    /// Every configured authority (or the one named), sorted by name.
    pub fn authorities_selected(&self, only: Option<&str>) -> EngineResult<Vec<Authority>> {
        match only {
            Some(name) => Ok(vec![self.authority(name)?]),
            None => self.config().authorities.keys().map(|n| self.authority(n)).collect(),
        }
    }

    pub fn queue_status(&self, authority: &Authority) -> EngineResult<QueueStatus> {
        let counts = authority.queue.counts().map_err(io_error(authority.queue.root()))?;
        let state = self.state.sync_state(&authority.name)?.unwrap_or_default();
        let head = self.dir.journal_head()?;
        let now = Utc::now();
        Ok(QueueStatus {
            authority: authority.name.clone(),
            kind: authority.config.kind.as_str(),
            active: authority.config.active,
            depth: counts.pending + counts.retrying,
            pending: counts.pending,
            retrying: counts.retrying,
            claimed: counts.claimed,
            temp_files: authority.queue.temp_files(),
            spent_files: authority.queue.spent_files(),
            trash: counts.trash,
            oldest_item_at: counts.oldest,
            oldest_age_seconds: counts.oldest.map(|t| (now - t).num_seconds().max(0)),
            next_retry_at: counts.next_retry,
            paused: state.paused,
            journal_lag: head.saturating_sub(state.cursor),
            sent_total: state.sent_total,
            last_sent_at: state.last_sent_at,
            last_rate: state.last_rate,
        })
    }

    /// `queue list`: one status per authority.
    pub fn queue_list(&self, only: Option<&str>) -> EngineResult<Vec<QueueStatus>> {
        self.authorities_selected(only)?
            .iter()
            .map(|a| self.queue_status(a))
            .collect()
    }

    pub fn authorities_list(&self) -> EngineResult<Vec<AuthorityView>> {
        self.authorities_selected(None)?
            .iter()
            .map(|a| self.authority_view(a))
            .collect()
    }

    pub fn authority_show(&self, name: &str) -> EngineResult<AuthorityView> {
        self.authority_view(&self.authority(name)?)
    }

    fn authority_view(&self, a: &Authority) -> EngineResult<AuthorityView> {
        let c = &a.config;
        let mut problems = Vec::new();
        let secret = match c.kind {
            AuthorityKind::Scim => Some(("token_file", &c.token_file)),
            AuthorityKind::Ldap => Some(("bind_password_file", &c.bind_password_file)),
            AuthorityKind::Embedded => None,
        };
        if let Some((key, file)) = secret
            && !file.is_empty()
            && let Err(e) = target::read_secret(Path::new(file), key)
        {
            problems.push(e.message);
        }
        if !c.ca_bundle.is_empty() && !Path::new(&c.ca_bundle).is_file() {
            problems.push(format!("ca_bundle {} does not exist", c.ca_bundle));
        }
        let capabilities = self.capabilities(&a.name, c);
        if self.authority_schools(&a.name).is_empty() {
            problems.push("no schools assigned: nothing is queued for it".into());
        }
        Ok(AuthorityView {
            name: a.name.clone(),
            kind: c.kind.as_str(),
            url: match c.kind {
                AuthorityKind::Embedded => target::mirror_path(&a.name, c, &self.settings().paths)
                    .display()
                    .to_string(),
                _ => crate::engine::config::secrets::redact_url(&c.url),
            },
            active: c.active,
            schools: self.authority_schools(&a.name),
            workers: c.workers,
            max_attempts: c.max_attempts,
            retry_base_seconds: c.retry.base_seconds,
            retry_max_seconds: c.retry.max_seconds,
            on_removal: match c.on_removal {
                OnRemoval::Delete => "delete",
                OnRemoval::Deactivate => "deactivate",
            },
            school_groups: c.mapping.school_groups,
            mapping: c.mapping.user.clone(),
            token_file: c.token_file.clone(),
            ca_bundle: c.ca_bundle.clone(),
            problems,
            queue: self.queue_status(a)?,
            dropped: capabilities
                .as_ref()
                .map(|caps| caps.dropped(Class::User, c.user_mapping().keys()))
                .unwrap_or_default(),
            capabilities,
            listener: self.listener_status()?,
        })
    }
}
