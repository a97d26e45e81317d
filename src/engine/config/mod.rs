//! rollcall's configuration: the typed settings and their validation. How
//! the layers (defaults, files, environment, `--set`) are found and merged
//! lives in [`layers`].

mod authority;
mod layers;
pub mod secrets;

pub use authority::{
    AuthorityConfig, AuthorityKind, LdapTargetConfig, LdapTargetLayout, MappingConfig, OnRemoval, RetryConfig,
    SyncConfig, USER_FIELDS, default_ldap_user_mapping, default_user_mapping, valid_authority_name,
};
pub use layers::{ConfigSources, Layer, LoadOptions, Origin, data_dir as configured_data_dir, load};

use crate::model::{Role, validate_school_name, validate_source_uid};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;
use thiserror::Error;

/// The built-in defaults: the shipped `configs/rollcall.toml` itself.
pub const DEFAULTS: &str = include_str!("../../../configs/rollcall.toml");

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("config file {path}: {message}")]
    File { path: String, message: String },
    #[error("config key `{key}` (set in {origin}): {message}")]
    Key {
        key: String,
        origin: String,
        message: String,
    },
    #[error("{origin}: {message}")]
    Override { origin: String, message: String },
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub data_dir: String,
    pub read_only: bool,
    pub log: LogConfig,
    pub logs: LogsConfig,
    pub directory: DirectoryConfig,
    pub import: ImportConfig,
    pub runs: RunsConfig,
    pub console: ConsoleConfig,
    pub sync: SyncConfig,
    pub hooks: crate::engine::hooks::HooksConfig,
    /// Remote authorities by name (none by default).
    #[serde(default)]
    pub authorities: BTreeMap<String, AuthorityConfig>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    pub level: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogsConfig {
    /// Daily log files kept (older ones are deleted).
    pub max_files: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    Sqlite,
    Ldap,
}

impl Backend {
    /// Whether a batch import may plan the next feed on a second connection
    /// while the current one is written (a second SQLite connection is a
    /// plain reader; a second LDAP store would repair the journal the first
    /// is writing).
    pub fn plans_in_parallel(self) -> bool {
        matches!(self, Backend::Sqlite)
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirectoryConfig {
    pub backend: Backend,
    /// Used when `backend = "ldap"`.
    pub ldap: crate::store::ldap::LdapConfig,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportConfig {
    pub source_uid: String,
    pub limbo_school: String,
    pub deletion_grace_days: u32,
    pub max_row_errors: i64,
    pub username_scheme: String,
    pub username_max_length: usize,
    pub email_scheme: String,
    pub passwords_csv: String,
    /// How initial passwords are hashed: crypt (SHA-512), ssha256, argon2.
    pub password_scheme: crate::engine::password::Scheme,
    /// A school whose last feed is older than this many days is stale.
    pub stale_after_days: u32,
    pub create_schools: bool,
    /// Days a user who left their last school stays active in limbo.
    pub deactivation_grace_days: u32,
    /// Users missing from a feed are left alone (partial feeds).
    pub no_delete: bool,
    /// New users are created active (else disabled).
    pub activate_new_users: bool,
    /// A class whose last member left stays (else it is removed).
    pub keep_empty_classes: bool,
    /// The feeds' character set (an encoding_rs label); empty: UTF-8 or
    /// UTF-16 with BOM only.
    pub encoding: String,
    /// Feeds larger than this many bytes are refused; 0: no limit.
    pub max_feed_bytes: u64,
    pub guard: GuardConfig,
    pub csv: CsvConfig,
    pub xml: XmlConfig,
    /// Feed format → mapping-rules file.
    pub mappings: BTreeMap<String, String>,
    pub roles: BTreeMap<String, Role>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct XmlConfig {
    pub fields: crate::engine::feed::XmlFields,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GuardConfig {
    pub max_removal_percent: f64,
    pub min_removals: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CsvConfig {
    pub delimiter: String,
    pub mapping: BTreeMap<String, String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunsConfig {
    pub retention_days: u32,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsoleConfig {
    /// Theme name: built-in or `NAME.toml` in `theme_dir`.
    pub theme: String,
    /// Folder of user themes; empty: the user config dir's `themes/`.
    pub theme_dir: String,
    /// Capture the mouse (wheel scrolls tables).
    pub mouse: bool,
    /// Frames per second at most.
    pub max_fps: u32,
}

/// The attributes a feed column can map to.
pub const FEED_ATTRIBUTES: &[&str] = &[
    "record_uid",
    "firstname",
    "lastname",
    "email",
    "birthday",
    "classes",
    "workgroups",
    "role",
    "schools",
];

/// The mapping target that drops a column.
pub const IGNORE: &str = "__ignore";

impl ImportConfig {
    /// `max_row_errors` as a limit (`None` = unlimited).
    pub fn row_error_limit(&self) -> Option<u64> {
        u64::try_from(self.max_row_errors).ok()
    }

    /// The configured delimiter, if any.
    pub fn delimiter(&self) -> Option<u8> {
        match self.csv.delimiter.as_str() {
            "" => None,
            "\\t" | "tab" => Some(b'\t'),
            d => d.bytes().next(),
        }
    }
}

impl Config {
    /// Checks what types alone cannot: names, ranges, schemes, mappings.
    /// Each error names the key.
    pub fn validate(&self, sources: &ConfigSources) -> Result<(), ConfigError> {
        let fail = |key: &str, message: String| ConfigError::Key {
            key: key.to_string(),
            origin: sources.origin_of(key),
            message,
        };
        let imp = &self.import;
        validate_source_uid(&imp.source_uid).map_err(|e| fail("import.source_uid", e.to_string()))?;
        validate_school_name(&imp.limbo_school).map_err(|e| fail("import.limbo_school", e.to_string()))?;
        if imp.max_row_errors < -1 {
            return Err(fail(
                "import.max_row_errors",
                "must be -1 (unlimited) or a count ≥ 0".into(),
            ));
        }
        if !(0.0..=100.0).contains(&imp.guard.max_removal_percent) {
            return Err(fail(
                "import.guard.max_removal_percent",
                "must be between 0 and 100".into(),
            ));
        }
        crate::engine::scheme::UsernameScheme::parse(&imp.username_scheme, imp.username_max_length)
            .map_err(|e| fail("import.username_scheme", e.to_string()))?;
        if !imp.email_scheme.is_empty() {
            crate::engine::scheme::EmailScheme::parse(&imp.email_scheme)
                .map_err(|e| fail("import.email_scheme", e.to_string()))?;
        }
        if !imp.encoding.is_empty() && encoding_rs::Encoding::for_label(imp.encoding.as_bytes()).is_none() {
            return Err(fail(
                "import.encoding",
                format!(
                    "'{}' is not an encoding label; use e.g. windows-1252, iso-8859-15, utf-8 (WHATWG labels)",
                    imp.encoding
                ),
            ));
        }
        self.hooks.check().map_err(|(key, message)| fail(&key, message))?;
        if !matches!(imp.csv.delimiter.as_str(), "" | "," | ";" | "\t" | "\\t" | "tab" | "|") {
            return Err(fail(
                "import.csv.delimiter",
                format!(
                    "'{}' is not a delimiter; use \",\", \";\", \"\\t\" or \"\" to sniff",
                    imp.csv.delimiter
                ),
            ));
        }
        for format in imp.mappings.keys() {
            if crate::engine::feed::Format::parse(format).is_none() {
                return Err(fail(
                    &format!("import.mappings.{format}"),
                    format!("'{format}' is not a feed format; use csv, tsv, json, jsonl or xml"),
                ));
            }
        }
        for (header, attr) in &imp.csv.mapping {
            if attr != IGNORE && !FEED_ATTRIBUTES.contains(&attr.as_str()) {
                return Err(fail(
                    &format!("import.csv.mapping.{header}"),
                    format!(
                        "'{attr}' is not an attribute; use one of {} or \"{IGNORE}\"",
                        FEED_ATTRIBUTES.join(", ")
                    ),
                ));
            }
        }
        // Credentials only from files: a URL's userinfo is refused
        // wherever it is, before anything could print or use it.
        secrets::check_url(&self.directory.ldap.url, "directory.ldap.bind_password_file")
            .map_err(|m| fail("directory.ldap.url", m))?;
        for (name, authority) in &self.authorities {
            let file = match authority.kind {
                AuthorityKind::Ldap => "bind_password_file",
                _ => "token_file",
            };
            secrets::check_url(&authority.url, &format!("authorities.{name}.{file}"))
                .map_err(|m| fail(&format!("authorities.{name}.url"), m))?;
        }
        if self.directory.backend == Backend::Ldap
            && let Err((key, message)) = self.directory.ldap.check()
        {
            return Err(fail(&key, message));
        }
        if !(1..=240).contains(&self.console.max_fps) {
            return Err(fail("console.max_fps", "must be between 1 and 240".into()));
        }
        if self.console.theme.is_empty() {
            return Err(fail(
                "console.theme",
                "must name a theme (default, light, high-contrast, mono)".into(),
            ));
        }
        for (name, authority) in &self.authorities {
            authority.check(name).map_err(|(key, message)| fail(&key, message))?;
        }
        if self.sync.batch_per_worker == 0 {
            return Err(fail("sync.batch_per_worker", "must be at least 1".into()));
        }
        if !(self.sync.poll_seconds > 0.0 && self.sync.poll_seconds.is_finite()) {
            return Err(fail("sync.poll_seconds", "must be > 0".into()));
        }
        if !matches!(self.log.level.as_str(), "error" | "warn" | "info" | "debug" | "trace") {
            return Err(fail(
                "log.level",
                format!(
                    "'{}' is not a level; use error, warn, info, debug or trace",
                    self.log.level
                ),
            ));
        }
        Ok(())
    }

    /// The data dir the config names, if any (`data_dir = ""` means none).
    pub fn data_dir(&self) -> Option<PathBuf> {
        (!self.data_dir.is_empty()).then(|| PathBuf::from(&self.data_dir))
    }
}
