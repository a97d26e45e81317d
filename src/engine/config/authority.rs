//! The settings of remote authorities (`[authorities.<name>]`) and of the
//! sync pipeline (`[sync]`): what each authority is, where it lives, which
//! schools it receives, how items are retried and how objects are mapped.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// `[sync]`: settings shared by every authority.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncConfig {
    /// Trash items older than this many days are deleted by the daemon and
    /// by `trash purge`.
    pub trash_retention_days: u32,
    /// How often an idle daemon looks at the journal and the queues.
    pub poll_seconds: f64,
    /// Items claimed per round and authority (times its workers).
    pub batch_per_worker: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthorityKind {
    Scim,
    Ldap,
    Embedded,
}

impl AuthorityKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthorityKind::Scim => "scim",
            AuthorityKind::Ldap => "ldap",
            AuthorityKind::Embedded => "embedded",
        }
    }
}

/// What happens on the target to a user that no longer belongs there (left
/// the authority's schools or went to limbo). Users purged from the
/// directory and groups are always deleted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnRemoval {
    Delete,
    #[default]
    Deactivate,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetryConfig {
    /// The first back-off; each further failure doubles it (plus jitter).
    #[serde(default = "default_base")]
    pub base_seconds: f64,
    /// The longest back-off, also for probing an unreachable authority.
    #[serde(default = "default_max")]
    pub max_seconds: f64,
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig {
            base_seconds: default_base(),
            max_seconds: default_max(),
        }
    }
}

fn default_base() -> f64 {
    2.0
}
fn default_max() -> f64 {
    600.0
}

/// How directory objects become target resources.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MappingConfig {
    /// Target attribute → directory field, for users. Target attributes are
    /// SCIM paths (`userName`, `name.givenName`, or an extension attribute
    /// `urn:…:User:attr`); fields: username, firstname, lastname,
    /// display_name, email, birthday, record_uid, source_uid,
    /// primary_school, schools, roles, active.
    #[serde(default = "default_user_mapping")]
    pub user: BTreeMap<String, String>,
    /// Each school is a group (external id `school:<name>`) whose members are
    /// the school's users. `false`: schools are not sent as objects; map
    /// `schools` or `primary_school` into a user attribute instead.
    #[serde(default = "yes")]
    pub school_groups: bool,
}

impl Default for MappingConfig {
    fn default() -> Self {
        MappingConfig {
            user: default_user_mapping(),
            school_groups: true,
        }
    }
}

/// The user attributes sent when an authority names no mapping.
pub fn default_user_mapping() -> BTreeMap<String, String> {
    [
        ("userName", "username"),
        ("name.givenName", "firstname"),
        ("name.familyName", "lastname"),
        ("displayName", "display_name"),
        ("emails", "email"),
        ("active", "active"),
        (
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:organization",
            "primary_school",
        ),
    ]
    .into_iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect()
}

/// The directory fields a user mapping can read.
pub const USER_FIELDS: &[&str] = &[
    "username",
    "firstname",
    "lastname",
    "display_name",
    "email",
    "birthday",
    "record_uid",
    "source_uid",
    "primary_school",
    "schools",
    "roles",
    "active",
];

fn yes() -> bool {
    true
}
fn default_workers() -> usize {
    4
}
fn default_attempts() -> u32 {
    8
}
fn default_timeout() -> f64 {
    30.0
}

/// `[authorities.<name>]`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthorityConfig {
    pub kind: AuthorityKind,
    /// scim: the base URL (`https://host/scim/v2`); ldap: `ldaps://host`;
    /// embedded: the mirror's SQLite file (empty: `<data_dir>/mirrors/<name>.sqlite`).
    #[serde(default)]
    pub url: String,
    /// scim: file holding the bearer token (mode 0600).
    #[serde(default)]
    pub token_file: String,
    /// ldap: the DN to bind as.
    #[serde(default)]
    pub bind_dn: String,
    /// ldap: file holding the bind password (mode 0600).
    #[serde(default)]
    pub bind_password_file: String,
    /// PEM file of the CA certificates to trust instead of the system's.
    #[serde(default)]
    pub ca_bundle: String,
    /// An inactive authority gets no queue items and is not synced.
    #[serde(default = "yes")]
    pub active: bool,
    /// The schools this authority receives; `"*"` = every school.
    #[serde(default)]
    pub schools: Vec<String>,
    /// Parallel requests to the target.
    #[serde(default = "default_workers")]
    pub workers: usize,
    /// Attempts of one item before it goes to trash.
    #[serde(default = "default_attempts")]
    pub max_attempts: u32,
    #[serde(default)]
    pub retry: RetryConfig,
    /// Timeout of one request.
    #[serde(default = "default_timeout")]
    pub timeout_seconds: f64,
    #[serde(default)]
    pub on_removal: OnRemoval,
    #[serde(default)]
    pub mapping: MappingConfig,
}

/// Authority names become folder names: keep them plain.
pub fn valid_authority_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
        && !name.starts_with('-')
}

impl AuthorityConfig {
    /// Checks one authority; errors name the key below `authorities.<name>`.
    pub fn check(&self, name: &str) -> Result<(), (String, String)> {
        let key = |k: &str| format!("authorities.{name}.{k}");
        if !valid_authority_name(name) {
            return Err((
                format!("authorities.{name}"),
                format!(
                    "'{name}' is not an authority name: use 1-64 characters of a-z, 0-9, '-' and '_' \
                     (not starting with '-'); rename the [authorities.…] table"
                ),
            ));
        }
        if self.kind == AuthorityKind::Scim {
            if self.url.is_empty() {
                return Err((
                    key("url"),
                    "not set: a scim authority needs url = \"https://host/scim/v2\"".into(),
                ));
            }
            if !(self.url.starts_with("https://") || self.url.starts_with("http://")) {
                return Err((
                    key("url"),
                    format!(
                        "'{}' is not an http(s) URL; use url = \"https://host/scim/v2\"",
                        self.url
                    ),
                ));
            }
            if self.token_file.is_empty() {
                return Err((key("token_file"), "not set: a scim authority needs token_file = \"/path/to/token\" (a file of mode 0600 holding the bearer token)".into()));
            }
        }
        if self.kind == AuthorityKind::Ldap && self.url.is_empty() {
            return Err((
                key("url"),
                "not set: an ldap authority needs url = \"ldaps://host\" (or ldap://)".into(),
            ));
        }
        if self.kind == AuthorityKind::Ldap && !(self.url.starts_with("ldap://") || self.url.starts_with("ldaps://")) {
            return Err((
                key("url"),
                format!(
                    "'{}' is not an ldap:// or ldaps:// URL; use url = \"ldaps://host\"",
                    self.url
                ),
            ));
        }
        if self.workers == 0 || self.workers > 256 {
            return Err((key("workers"), "must be between 1 and 256".into()));
        }
        if self.max_attempts == 0 {
            return Err((key("max_attempts"), "must be at least 1".into()));
        }
        let r = &self.retry;
        if !(r.base_seconds > 0.0 && r.max_seconds >= r.base_seconds && r.max_seconds.is_finite()) {
            return Err((
                key("retry"),
                "base_seconds must be > 0 and max_seconds ≥ base_seconds".into(),
            ));
        }
        if !(self.timeout_seconds > 0.0 && self.timeout_seconds.is_finite()) {
            return Err((key("timeout_seconds"), "must be > 0".into()));
        }
        for school in &self.schools {
            if school != "*" {
                crate::model::validate_school_name(school).map_err(|e| (key("schools"), e.to_string()))?;
            }
        }
        for (attr, field) in &self.mapping.user {
            if !USER_FIELDS.contains(&field.as_str()) {
                return Err((
                    key(&format!("mapping.user.{attr}")),
                    format!("'{field}' is not a user field; use one of {}", USER_FIELDS.join(", ")),
                ));
            }
            if attr.is_empty() || attr.contains(['"', ' ', '[', ']']) {
                return Err((key("mapping.user"), format!("'{attr}' is not an attribute path")));
            }
        }
        if !self.mapping.user.contains_key("userName") && self.kind == AuthorityKind::Scim {
            return Err((key("mapping.user"), "a scim mapping must map userName".into()));
        }
        Ok(())
    }
}
