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

    /// Whether a user created on the target sends its groups again at once
    /// (SCIM: a group sent before it left it out, or it replaces an account
    /// deleted meanwhile). LDAP leaves unknown members out too, but its
    /// groups that wait for members retry after the members' next chance
    /// (settling's rule), without a directory read per created user; the
    /// embedded mirror writes members as they are.
    pub fn drops_unknown_members(self) -> bool {
        self == AuthorityKind::Scim
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
fn default_lookup_batch() -> usize {
    50
}
fn default_max_response_bytes() -> u64 {
    64 << 20
}
fn default_max_listing() -> u64 {
    1_000_000
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
    /// scim: a group's members looked up per request
    /// (`externalId eq … or …`); 1 looks each up alone, for servers that
    /// refuse `or` filters (rollcall falls back to 1 by itself on a 400
    /// answer) or scan every user for one (scim2-server).
    #[serde(default = "default_lookup_batch")]
    pub lookup_batch: usize,
    /// scim: the largest answer read from the server, in bytes; a larger
    /// one is an error (the rest is never read).
    #[serde(default = "default_max_response_bytes")]
    pub max_response_bytes: u64,
    /// scim: follow HTTP redirects, and then only to the same scheme, host
    /// and port (by default a redirect is an error: the authority pauses).
    #[serde(default)]
    pub follow_redirects: bool,
    /// scim: the most resources one listing may hold (verify, the listing
    /// of a resync or first sync); a server claiming more is refused by
    /// verify, and a sync looks objects up one by one instead.
    #[serde(default = "default_max_listing")]
    pub max_listing: u64,
    /// scim: use Bulk requests (RFC 7644 §3.7) when the server declares
    /// them; `false` sends one request per operation.
    #[serde(default = "yes")]
    pub bulk: bool,
    #[serde(default)]
    pub on_removal: OnRemoval,
    #[serde(default)]
    pub mapping: MappingConfig,
    /// ldap: where and how entries are written on the remote directory.
    #[serde(default)]
    pub ldap: LdapTargetConfig,
}

/// `[authorities.<name>.ldap]`: a remote LDAP directory as a sync target.
/// The user attributes are `mapping.user` (LDAP attribute = field).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LdapTargetConfig {
    pub base_dn: String,
    /// Upgrade an `ldap://` connection with StartTLS.
    pub starttls: bool,
    /// Connections to the server (requests are multiplexed over them).
    pub connections: usize,
    /// Entries per page of a paged search (RFC 2696).
    pub page_size: i32,
    pub layout: LdapTargetLayout,
    pub user_object_classes: Vec<String>,
    pub group_object_classes: Vec<String>,
    /// The attribute holding a user's external id (`<source>:<record>`).
    pub user_key: String,
    /// The attribute holding a group's external id (`class:<school>:<name>`).
    pub group_key: String,
    /// The group attribute listing member DNs.
    pub group_member: String,
}

/// DN templates of a target; placeholders `<base>`, `<school>`,
/// `<username>`, `<name>`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LdapTargetLayout {
    pub user: String,
    pub class: String,
    pub workgroup: String,
    /// Schools sent as groups (`mapping.school_groups`).
    pub school_group: String,
}

impl Default for LdapTargetLayout {
    fn default() -> Self {
        LdapTargetLayout {
            user: "uid=<username>,cn=users,ou=<school>,<base>".into(),
            class: "cn=<school>-<name>,cn=classes,cn=groups,ou=<school>,<base>".into(),
            workgroup: "cn=<school>-<name>,cn=workgroups,cn=groups,ou=<school>,<base>".into(),
            school_group: "cn=<school>,cn=schools,cn=groups,<base>".into(),
        }
    }
}

impl Default for LdapTargetConfig {
    fn default() -> Self {
        LdapTargetConfig {
            base_dn: String::new(),
            starttls: false,
            connections: 4,
            page_size: 500,
            layout: LdapTargetLayout::default(),
            user_object_classes: vec!["inetOrgPerson".into(), "shadowAccount".into()],
            group_object_classes: vec!["groupOfNames".into()],
            user_key: "employeeNumber".into(),
            group_key: "businessCategory".into(),
            group_member: "member".into(),
        }
    }
}

/// The user attributes an ldap authority writes when it names no mapping:
/// only schemas every OpenLDAP ships (core, cosine, inetorgperson, nis).
pub fn default_ldap_user_mapping() -> BTreeMap<String, String> {
    [
        ("uid", "username"),
        ("givenName", "firstname"),
        ("sn", "lastname"),
        ("cn", "display_name"),
        ("mail", "email"),
        ("ou", "schools"),
        ("departmentNumber", "primary_school"),
        ("employeeType", "roles"),
        ("shadowExpire", "active"),
    ]
    .into_iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect()
}

fn is_ldap_attribute(name: &str) -> bool {
    name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
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
    /// The user mapping in effect: an ldap authority that names none gets
    /// LDAP attributes instead of SCIM paths.
    pub fn user_mapping(&self) -> BTreeMap<String, String> {
        if self.kind == AuthorityKind::Ldap && self.mapping.user == default_user_mapping() {
            default_ldap_user_mapping()
        } else {
            self.mapping.user.clone()
        }
    }

    fn check_ldap(&self, key: &dyn Fn(&str) -> String) -> Result<(), (String, String)> {
        if self.url.is_empty() {
            return Err((
                key("url"),
                "not set: an ldap authority needs url = \"ldaps://host\" (or ldap://, ldapi://)".into(),
            ));
        }
        let url = self.url.to_ascii_lowercase();
        if !["ldap://", "ldaps://", "ldapi://"].iter().any(|s| url.starts_with(s)) {
            return Err((
                key("url"),
                format!(
                    "'{}' is not an ldap://, ldaps:// or ldapi:// URL; use url = \"ldaps://host\"",
                    self.url
                ),
            ));
        }
        let l = &self.ldap;
        if l.starttls && !url.starts_with("ldap://") {
            return Err((key("ldap.starttls"), "StartTLS needs an ldap:// URL".into()));
        }
        if l.base_dn.trim().is_empty() {
            return Err((
                key("ldap.base_dn"),
                "an ldap authority needs the target's base DN, e.g. dc=school,dc=example".into(),
            ));
        }
        if !self.bind_dn.is_empty() && self.bind_password_file.is_empty() {
            return Err((
                key("bind_password_file"),
                "bind_dn is set, so a password file is needed".into(),
            ));
        }
        if l.connections == 0 || l.page_size <= 0 {
            return Err((
                key("ldap.connections"),
                "connections and page_size must be at least 1".into(),
            ));
        }
        for (k, tpl, needs) in [
            ("ldap.layout.user", &l.layout.user, &["<username>"][..]),
            ("ldap.layout.class", &l.layout.class, &["<school>", "<name>"][..]),
            (
                "ldap.layout.workgroup",
                &l.layout.workgroup,
                &["<school>", "<name>"][..],
            ),
            ("ldap.layout.school_group", &l.layout.school_group, &["<school>"][..]),
        ] {
            if !tpl.ends_with(",<base>") {
                return Err((key(k), format!("'{tpl}' must end with ,<base>")));
            }
            if let Some(n) = needs.iter().find(|n| !tpl.contains(**n)) {
                return Err((key(k), format!("'{tpl}' must contain {n}")));
            }
        }
        if !l
            .layout
            .user
            .split(',')
            .next()
            .is_some_and(|r| r.ends_with("=<username>"))
        {
            return Err((
                key("ldap.layout.user"),
                "the first RDN must be ATTRIBUTE=<username>".into(),
            ));
        }
        let mapping = self.user_mapping();
        if l.layout.user.contains("<school>") && !mapping.values().any(|f| f == "primary_school" || f == "schools") {
            return Err((
                key("mapping.user"),
                "ldap.layout.user places users by <school>: map primary_school (or schools) to an attribute".into(),
            ));
        }
        if !mapping.values().any(|f| f == "username") {
            return Err((key("mapping.user"), "an ldap mapping must map username".into()));
        }
        for (k, v) in [
            ("ldap.user_key", &l.user_key),
            ("ldap.group_key", &l.group_key),
            ("ldap.group_member", &l.group_member),
        ] {
            if !is_ldap_attribute(v) {
                return Err((key(k), format!("'{v}' is not an LDAP attribute name")));
            }
        }
        for attr in mapping.keys() {
            if !is_ldap_attribute(attr) {
                return Err((
                    key(&format!("mapping.user.{attr}")),
                    "an ldap mapping names LDAP attributes (letters, digits, '-')".into(),
                ));
            }
        }
        if l.user_object_classes.is_empty() || l.group_object_classes.is_empty() {
            return Err((
                key("ldap.user_object_classes"),
                "the object class lists must not be empty".into(),
            ));
        }
        Ok(())
    }

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
        if self.kind == AuthorityKind::Ldap {
            self.check_ldap(&key)?;
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
        if !(1..=200).contains(&self.lookup_batch) {
            return Err((key("lookup_batch"), "must be between 1 and 200".into()));
        }
        if self.max_response_bytes < 4096 {
            return Err((key("max_response_bytes"), "must be at least 4096".into()));
        }
        if self.max_listing == 0 {
            return Err((key("max_listing"), "must be at least 1".into()));
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
