//! The trash: items the sender gave up on, in `queues/out/<authority>/trash/`,
//! each with its failure (error, HTTP status or LDAP code, attempts, first
//! and last failure, the payload sent). Admins list and inspect them (with
//! a diff against what would be sent now), delete them, requeue them (a
//! fresh schedule of the object: never the stale payload) and purge old
//! ones; retention applies to every authority's trash.

use super::item::{QueueItem, Reason, valid_file_name};
use super::mapping::{FieldDiff, diff};
use super::queue::ItemDir;
use crate::engine::config::valid_authority_name;
use crate::engine::{Engine, EngineError, EngineResult, io_error};
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::time::Duration;

/// One trash item in a listing. `item` (`<authority>/<file>`) names it for
/// `trash show|delete|requeue`.
#[derive(Clone, Debug, Serialize)]
pub struct TrashEntry {
    pub item: String,
    pub authority: String,
    pub file: String,
    pub object: String,
    pub class: String,
    pub error: String,
    pub http_status: Option<u16>,
    pub ldap_code: Option<u32>,
    pub attempts: u32,
    pub first_failure: Option<DateTime<Utc>>,
    pub last_failure: Option<DateTime<Utc>>,
    pub trashed_at: Option<DateTime<Utc>>,
}

/// `trash show`: the item, and how what would be sent now differs from
/// what was sent then.
#[derive(Clone, Debug, Serialize)]
pub struct TrashDetail {
    #[serde(flatten)]
    pub entry: TrashEntry,
    pub raw: QueueItem,
    pub payload: serde_json::Value,
    pub now: serde_json::Value,
    pub diff: Vec<FieldDiff>,
}

fn entry(authority: &str, file: &str, item: &QueueItem) -> TrashEntry {
    let f = item.failure.as_ref();
    TrashEntry {
        item: format!("{authority}/{file}"),
        authority: authority.to_string(),
        file: file.to_string(),
        object: item.object.to_string(),
        class: f.map(|f| f.class.clone()).unwrap_or_default(),
        error: f
            .map(|f| f.error.clone())
            .or_else(|| item.last_error.clone())
            .unwrap_or_default(),
        http_status: f.and_then(|f| f.http_status),
        ldap_code: f.and_then(|f| f.ldap_code),
        attempts: f.map(|f| f.attempts).unwrap_or(item.attempts),
        first_failure: f.map(|f| f.first_failure).or(item.first_failure),
        last_failure: f.map(|f| f.last_failure).or(item.last_failure),
        trashed_at: f.map(|f| f.trashed_at),
    }
}

/// A trash file that is not a trash item: where, what, what to do.
fn unreadable(authority: &str, file: &str, e: &std::io::Error) -> String {
    let detail = match e.get_ref().and_then(|s| s.downcast_ref::<serde_json::Error>()) {
        Some(j) if j.is_eof() => format!(
            "line {}, column {}: the file ends early (truncated?)",
            j.line(),
            j.column()
        ),
        Some(j) if j.is_syntax() => format!("line {}, column {}: not valid JSON", j.line(), j.column()),
        Some(j) => {
            let text = j.to_string();
            let text = text.split(" at line ").next().unwrap_or(&text).to_string();
            format!("line {}, column {}: not a trash item: {text}", j.line(), j.column())
        }
        None => e.to_string(),
    };
    format!(
        "queues/out/{authority}/trash/{file}: {detail}; fix the file by hand, or remove it with \
         rollcall trash delete {authority}/{file}"
    )
}

impl Engine {
    /// Splits `AUTHORITY/FILE` (or a bare `FILE` found in exactly one
    /// trash), refusing anything that could leave the trash folders.
    fn trash_ref(&self, spec: &str) -> EngineResult<(String, String)> {
        let bad = || EngineError::Usage(format!("'{spec}' is not a trash item (expected AUTHORITY/FILE.json)"));
        if let Some((authority, file)) = spec.split_once('/') {
            if !valid_authority_name(authority) || !valid_file_name(file) {
                return Err(bad());
            }
            return Ok((authority.to_string(), file.to_string()));
        }
        if !valid_file_name(spec) {
            return Err(bad());
        }
        let mut found = Vec::new();
        for a in self.authorities_selected(None)? {
            if a.queue.item_path(ItemDir::Trash, spec).is_file() {
                found.push(a.name.clone());
            }
        }
        match found.len() {
            0 => Err(EngineError::NotFound(format!("no trash item '{spec}'"))),
            1 => Ok((found.remove(0), spec.to_string())),
            _ => Err(EngineError::Usage(format!(
                "'{spec}' is in the trash of {}; name one as AUTHORITY/{spec}",
                found.join(", ")
            ))),
        }
    }

    fn trash_read(&self, authority: &str, file: &str) -> EngineResult<QueueItem> {
        let a = self.authority(authority)?;
        a.queue.read(ItemDir::Trash, file).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => EngineError::NotFound(format!("no trash item '{authority}/{file}'")),
            std::io::ErrorKind::InvalidData => EngineError::BadInput(unreadable(authority, file, &e)),
            _ => io_error(&a.queue.item_path(ItemDir::Trash, file))(e),
        })
    }

    pub fn trash_list(&self, authority: Option<&str>) -> EngineResult<Vec<TrashEntry>> {
        let mut out = Vec::new();
        for a in self.authorities_selected(authority)? {
            for file in a.queue.names(ItemDir::Trash).map_err(io_error(a.queue.root()))? {
                match a.queue.read(ItemDir::Trash, &file) {
                    Ok(item) => out.push(entry(&a.name, &file, &item)),
                    Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                        // Listed, so an admin sees it and can delete it.
                        let message = unreadable(&a.name, &file, &e);
                        tracing::warn!(authority = %a.name, file, error = %message, "unreadable trash item");
                        out.push(TrashEntry {
                            item: format!("{}/{file}", a.name),
                            authority: a.name.clone(),
                            file: file.clone(),
                            object: String::new(),
                            class: "unreadable".into(),
                            error: message,
                            http_status: None,
                            ldap_code: None,
                            attempts: 0,
                            first_failure: None,
                            last_failure: None,
                            trashed_at: None,
                        });
                    }
                    Err(e) => tracing::warn!(authority = %a.name, file, error = %e, "unreadable trash item"),
                }
            }
        }
        Ok(out)
    }

    pub fn trash_show(&self, spec: &str) -> EngineResult<TrashDetail> {
        let (authority, file) = self.trash_ref(spec)?;
        let item = self.trash_read(&authority, &file)?;
        let a = self.authority(&authority)?;
        let payload = item
            .failure
            .as_ref()
            .map(|f| f.payload.clone())
            .unwrap_or(serde_json::Value::Null);
        let now = match a.mapper.desired(self.dir.as_ref(), &item.object, &item.schools) {
            Ok(d) => d.payload(),
            Err(e) => serde_json::json!({"error": e.to_string()}),
        };
        Ok(TrashDetail {
            entry: entry(&authority, &file, &item),
            diff: diff(&payload, &now),
            raw: item,
            payload,
            now,
        })
    }

    pub fn trash_delete(&mut self, specs: &[String]) -> EngineResult<Vec<String>> {
        self.check_writable("trash delete")?;
        let mut done = Vec::new();
        for spec in specs {
            let (authority, file) = self.trash_ref(spec)?;
            let a = self.authority(&authority)?;
            a.queue.delete_trash(&file).map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => EngineError::NotFound(format!("no trash item '{authority}/{file}'")),
                _ => io_error(a.queue.root())(e),
            })?;
            done.push(format!("{authority}/{file}"));
        }
        self.audit
            .record("trash delete", serde_json::json!({"items": done}), "ok");
        Ok(done)
    }

    /// Schedules each item's object afresh (its current state will be sent;
    /// a user brings its groups along) and removes the trash file.
    pub fn trash_requeue(&mut self, specs: &[String]) -> EngineResult<Vec<String>> {
        self.check_writable("trash requeue")?;
        let mut done = Vec::new();
        for spec in specs {
            let (authority, file) = self.trash_ref(spec)?;
            let item = self.trash_read(&authority, &file)?;
            let a = self.authority(&authority)?;
            let mut items = vec![item.fresh(Reason::Requeue)];
            items.extend(self.companions(&item.object, Reason::Requeue)?);
            a.queue.enqueue_many(&items).map_err(io_error(a.queue.root()))?;
            a.queue.delete_trash(&file).map_err(io_error(a.queue.root()))?;
            done.push(format!("{authority}/{file}"));
        }
        self.audit
            .record("trash requeue", serde_json::json!({"items": done}), "ok");
        Ok(done)
    }

    /// Deletes trash items older than `older_than_days` (default: the
    /// configured retention) in every authority's trash (or one's).
    pub fn trash_purge(&mut self, older_than_days: Option<u32>, authority: Option<&str>) -> EngineResult<Vec<String>> {
        self.check_writable("trash purge")?;
        let days = older_than_days.unwrap_or(self.config().sync.trash_retention_days);
        let age = Duration::from_secs(u64::from(days) * 86_400);
        let mut purged = Vec::new();
        for a in self.authorities_selected(authority)? {
            for file in a.queue.purge_trash(age, false).map_err(io_error(a.queue.root()))? {
                purged.push(format!("{}/{file}", a.name));
            }
        }
        // Trash folders of authorities no longer configured age out too.
        let out = self.settings().paths.queues().join("out");
        if authority.is_none()
            && let Ok(entries) = std::fs::read_dir(&out)
        {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().to_string();
                if valid_authority_name(&name) && !self.config().authorities.contains_key(&name) {
                    let q = super::queue::Queue::open(&out, &name).map_err(io_error(&out))?;
                    for file in q.purge_trash(age, false).map_err(io_error(&out))? {
                        purged.push(format!("{name}/{file}"));
                    }
                }
            }
        }
        self.audit.record(
            "trash purge",
            serde_json::json!({"older_than_days": days, "authority": authority, "purged": purged.len()}),
            "ok",
        );
        Ok(purged)
    }
}
