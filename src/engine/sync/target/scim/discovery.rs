//! Capability discovery (RFC 7644 §4): what a SCIM server says it supports,
//! read from `/ServiceProviderConfig`, `/ResourceTypes` and `/Schemas` the
//! first time an authority is used, kept in `<data-dir>/discovery/<name>.json`
//! and read again on resume and with `authorities refresh NAME`.
//!
//! It decides: PATCH or PUT, Bulk and its limits, the page size a filter may
//! return, and which mapped attributes the server declares — an attribute
//! or extension it does not declare is never sent (and verify does not
//! compare it). Each endpoint counts on its own; a server without any of
//! them keeps the behaviour of one that says nothing: PUT, no Bulk, every
//! mapped attribute sent.

use super::super::{ErrorClass, TargetError};
use super::http::{Http, resources};
use crate::engine::sync::mapping::{Class, GROUP_SCHEMA, USER_SCHEMA};
use chrono::{DateTime, Utc};
use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;

/// Attributes every resource has (RFC 7643 §3.1): never dropped.
const COMMON: &[&str] = &["id", "externalId", "meta", "schemas"];

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Bulk {
    pub supported: bool,
    pub max_operations: u64,
    pub max_payload_size: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FilterSupport {
    pub supported: bool,
    pub max_results: u64,
}

/// `/ServiceProviderConfig`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ProviderConfig {
    pub patch: bool,
    pub bulk: Bulk,
    pub filter: FilterSupport,
    pub etag: bool,
    pub sort: bool,
    pub change_password: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Extension {
    pub schema: String,
    pub required: bool,
}

/// One of `/ResourceTypes`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ResourceType {
    pub name: String,
    pub endpoint: String,
    pub schema: String,
    pub extensions: Vec<Extension>,
}

/// One attribute of a schema: its name, whether it may be written, and its
/// sub-attributes' names.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Attribute {
    pub name: String,
    pub read_only: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sub: Vec<String>,
}

/// What one server declares.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Capabilities {
    pub fetched_at: Option<DateTime<Utc>>,
    /// `None`: the server has no such endpoint (or it gave nothing usable).
    pub provider: Option<ProviderConfig>,
    pub users: Option<ResourceType>,
    pub groups: Option<ResourceType>,
    /// Attributes by schema URN.
    pub schemas: BTreeMap<String, Vec<Attribute>>,
}

fn flag(v: &Value, path: &str) -> bool {
    v.pointer(path).and_then(Value::as_bool).unwrap_or(false)
}

fn number(v: &Value, path: &str) -> u64 {
    v.pointer(path).and_then(Value::as_u64).unwrap_or(0)
}

fn provider(v: &Value) -> ProviderConfig {
    ProviderConfig {
        patch: flag(v, "/patch/supported"),
        bulk: Bulk {
            supported: flag(v, "/bulk/supported"),
            max_operations: number(v, "/bulk/maxOperations"),
            max_payload_size: number(v, "/bulk/maxPayloadSize"),
        },
        filter: FilterSupport {
            supported: flag(v, "/filter/supported"),
            max_results: number(v, "/filter/maxResults"),
        },
        etag: flag(v, "/etag/supported"),
        sort: flag(v, "/sort/supported"),
        change_password: flag(v, "/changePassword/supported"),
    }
}

fn resource_type(v: &Value) -> Option<ResourceType> {
    let s = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
    Some(ResourceType {
        name: s("name").or_else(|| s("id"))?,
        endpoint: s("endpoint")?,
        schema: s("schema")?,
        extensions: v
            .get("schemaExtensions")
            .and_then(Value::as_array)
            .map(|items| {
                items
                    .iter()
                    .filter_map(|e| {
                        Some(Extension {
                            schema: e.get("schema")?.as_str()?.to_string(),
                            required: e.get("required").and_then(Value::as_bool).unwrap_or(false),
                        })
                    })
                    .collect()
            })
            .unwrap_or_default(),
    })
}

fn attributes(v: &Value) -> Vec<Attribute> {
    v.get("attributes")
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(|a| {
                    Some(Attribute {
                        name: a.get("name")?.as_str()?.to_string(),
                        read_only: a.get("mutability").and_then(Value::as_str) == Some("readOnly"),
                        sub: a
                            .get("subAttributes")
                            .and_then(Value::as_array)
                            .map(|s| {
                                s.iter()
                                    .filter(|x| x.get("mutability").and_then(Value::as_str) != Some("readOnly"))
                                    .filter_map(|x| x.get("name")?.as_str().map(str::to_string))
                                    .collect()
                            })
                            .unwrap_or_default(),
                    })
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Tries of one discovery request that fails transiently (5xx, 429, a
/// reset or a timeout).
const TRIES: u32 = 3;

/// A discovery endpoint's answer; `None` when the server has none (404,
/// another 4xx, an answer that is no JSON object or list). A server that
/// keeps failing transiently is an error (nothing is cached; see
/// `ScimTarget::capabilities`).
fn fetch(http: &Http, path: &str) -> Result<Option<Value>, TargetError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        match http.call(Method::GET, path, &[], None) {
            Ok(a) => return Ok(a.body.filter(|b| b.is_object() || b.is_array())),
            // Unreachable or stopped: no use asking again now; stalled
            // twice: the server does not answer.
            Err(e) if matches!(e.class, ErrorClass::Unreachable | ErrorClass::Interrupted) => return Err(e),
            Err(e) if e.timed_out && attempt >= 2 => return Err(e),
            Err(e) if e.class == ErrorClass::Transient => {
                if attempt >= TRIES {
                    return Err(TargetError {
                        message: format!("asking what the server supports failed {attempt} times: {}", e.message),
                        ..e
                    });
                }
                std::thread::sleep(std::time::Duration::from_millis(100 << attempt));
            }
            Err(e) => {
                tracing::info!(url = %http.base(), path, error = %e.message, "no SCIM discovery from this endpoint");
                return Ok(None);
            }
        }
    }
}

/// The items of a discovery list: a ListResponse, or a bare array.
fn items(v: &Value) -> Vec<Value> {
    match v {
        Value::Array(items) => items.clone(),
        other => resources(Some(other)),
    }
}

impl Capabilities {
    /// Asks the server.
    pub fn discover(http: &Http) -> Result<Self, TargetError> {
        let mut caps = Capabilities {
            fetched_at: Some(Utc::now()),
            ..Capabilities::default()
        };
        if let Some(v) = fetch(http, "/ServiceProviderConfig")?
            && v.is_object()
        {
            caps.provider = Some(provider(&v));
        }
        if let Some(v) = fetch(http, "/ResourceTypes")? {
            for rt in items(&v).iter().filter_map(resource_type) {
                if rt.schema == USER_SCHEMA || rt.endpoint.trim_end_matches('/') == "/Users" {
                    caps.users.get_or_insert(rt);
                } else if rt.schema == GROUP_SCHEMA || rt.endpoint.trim_end_matches('/') == "/Groups" {
                    caps.groups.get_or_insert(rt);
                }
            }
        }
        if let Some(v) = fetch(http, "/Schemas")? {
            for s in items(&v) {
                if let Some(id) = s.get("id").and_then(Value::as_str) {
                    caps.schemas.insert(id.to_string(), attributes(&s));
                }
            }
        }
        Ok(caps)
    }

    /// The cached capabilities of an authority, if any.
    pub fn load(path: &Path) -> Option<Self> {
        let text = std::fs::read(path).ok()?;
        match serde_json::from_slice(&text) {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::warn!(file = %path.display(), error = %e, "unreadable discovery cache: asking the server again");
                None
            }
        }
    }

    /// Writes the cache (temp file, rename).
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        if let Some(dir) = path.parent() {
            crate::engine::paths::create_private_dir(dir)?;
        }
        let tmp = path.with_extension("json.tmp");
        let text = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        std::fs::write(&tmp, text)?;
        std::fs::rename(&tmp, path)
    }

    /// Whether the server said anything at all.
    pub fn any(&self) -> bool {
        self.provider.is_some() || self.users.is_some() || self.groups.is_some() || !self.schemas.is_empty()
    }

    pub fn patch(&self) -> bool {
        self.provider.as_ref().is_some_and(|p| p.patch)
    }

    /// Bulk limits when the server takes Bulk requests.
    pub fn bulk(&self) -> Option<&Bulk> {
        self.provider
            .as_ref()
            .map(|p| &p.bulk)
            .filter(|b| b.supported && b.max_operations > 0)
    }

    /// The most resources a filtered request returns (0: not said).
    pub fn max_results(&self) -> u64 {
        self.provider.as_ref().map(|p| p.filter.max_results).unwrap_or(0)
    }

    fn resource_type(&self, class: Class) -> Option<&ResourceType> {
        match class {
            Class::User => self.users.as_ref(),
            Class::Group => self.groups.as_ref(),
        }
    }

    fn core_schema(class: Class) -> &'static str {
        match class {
            Class::User => USER_SCHEMA,
            Class::Group => GROUP_SCHEMA,
        }
    }

    /// Whether the server declares a mapped attribute path
    /// (`name.givenName`, `urn:…:User:organization`) for this class.
    pub fn declares(&self, class: Class, path: &str) -> bool {
        let (schema, rest) = match path.rfind(':') {
            Some(i) if path.starts_with("urn:") => (&path[..i], &path[i + 1..]),
            _ => (Self::core_schema(class), path),
        };
        let (top, sub) = match rest.split_once('.') {
            Some((t, s)) => (t, Some(s)),
            None => (rest, None),
        };
        let core = Self::core_schema(class);
        if schema == core && COMMON.iter().any(|c| c.eq_ignore_ascii_case(top)) {
            return true;
        }
        // Extensions: the resource type says which schemas it has (or,
        // without resource types, the schemas the server describes).
        if schema != core {
            let declared = match self.resource_type(class) {
                Some(rt) => rt.schema == schema || rt.extensions.iter().any(|e| e.schema == schema),
                None => self.schemas.is_empty() || self.schemas.contains_key(schema),
            };
            if !declared {
                return false;
            }
        }
        // Attributes: the schema says which it has, and which are read-only.
        let Some(attrs) = self.schemas.get(schema) else {
            return true;
        };
        let Some(a) = attrs.iter().find(|a| a.name.eq_ignore_ascii_case(top)) else {
            return false;
        };
        if a.read_only {
            return false;
        }
        match sub {
            Some(s) if !a.sub.is_empty() => a.sub.iter().any(|x| x.eq_ignore_ascii_case(s)),
            _ => true,
        }
    }

    /// The mapped paths the server does not declare.
    pub fn dropped<'a>(&self, class: Class, paths: impl IntoIterator<Item = &'a String>) -> Vec<String> {
        paths
            .into_iter()
            .filter(|p| !self.declares(class, p))
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

    fn caps(extension: bool) -> Capabilities {
        let mut c = Capabilities {
            provider: Some(provider(&json!({"patch": {"supported": true},
                "bulk": {"supported": true, "maxOperations": 1000, "maxPayloadSize": 1048576}}))),
            ..Capabilities::default()
        };
        let rt = json!({"name": "User", "endpoint": "/Users", "schema": USER_SCHEMA,
            "schemaExtensions": if extension { json!([{"schema": ENTERPRISE, "required": false}]) } else { json!([]) }});
        c.users = resource_type(&rt);
        let user = json!({"id": USER_SCHEMA, "attributes": [
            {"name": "userName", "mutability": "readWrite"},
            {"name": "name", "subAttributes": [{"name": "givenName"}, {"name": "familyName"}]},
            {"name": "groups", "mutability": "readOnly"},
            {"name": "active"}]});
        c.schemas.insert(USER_SCHEMA.into(), attributes(&user));
        if extension {
            let ext = json!({"id": ENTERPRISE, "attributes": [{"name": "organization"}]});
            c.schemas.insert(ENTERPRISE.into(), attributes(&ext));
        }
        c
    }

    #[test]
    fn undeclared_attributes_and_extensions_are_dropped() {
        let org = format!("{ENTERPRISE}:organization");
        let with = caps(true);
        assert!(with.declares(Class::User, &org));
        assert!(with.declares(Class::User, "name.givenName"));
        assert!(with.declares(Class::User, "externalId"));
        assert!(!with.declares(Class::User, "groups"), "read-only");
        assert!(!with.declares(Class::User, "name.middle"));
        assert!(!with.declares(Class::User, "title"));
        let without = caps(false);
        assert!(!without.declares(Class::User, &org));
        assert_eq!(
            without.dropped(Class::User, &[org.clone(), "userName".to_string()]),
            vec![org]
        );
        // A server that says nothing: everything is sent.
        let none = Capabilities::default();
        assert!(none.declares(Class::User, "title"));
        assert!(none.declares(Class::User, &format!("{ENTERPRISE}:organization")));
        assert!(!none.patch() && none.bulk().is_none());
        assert_eq!(with.bulk().map(|b| b.max_operations), Some(1000));
    }
}
