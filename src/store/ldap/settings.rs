//! The LDAP backend's settings (`[directory.ldap]`): server, credentials,
//! timeouts, the DN layout and the attribute mapping. Plain data with serde,
//! embedded in rollcall's `Config`; [`LdapConfig::check`] validates what
//! types alone cannot.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LdapConfig {
    /// `ldap://host[:port]`, `ldaps://host[:port]` or `ldapi://<url-encoded socket path>`.
    pub url: String,
    /// Upgrade an `ldap://` connection with StartTLS.
    pub starttls: bool,
    /// PEM file with the CA certificate(s) to trust; empty: the system's.
    pub ca_bundle: String,
    /// Empty: anonymous (or SASL EXTERNAL over `ldapi://`).
    pub bind_dn: String,
    /// File holding the bind password; must not be readable by group or others.
    pub bind_password_file: String,
    pub base_dn: String,
    pub connect_timeout_secs: u64,
    /// Time limit of one LDAP operation.
    pub timeout_secs: u64,
    /// Connections opened for writes (and reads).
    pub connections: usize,
    /// Operations in flight at once over all connections.
    pub max_in_flight: usize,
    /// Entries per page of a paged search (RFC 2696).
    pub page_size: i32,
    /// Whether `rollcall daemon` follows the directory's change stream
    /// (RFC 4533; `rollcall listen` does it alone).
    pub listen: bool,
    /// The server whose change stream is followed (e.g. a read-only
    /// replica); empty: `url`. Writes always go to `url`.
    pub listen_url: String,
    pub layout: LayoutConfig,
    pub attributes: AttributeConfig,
}

/// DN templates. Placeholders: `<base>`, `<school>`, `<username>`, `<name>`
/// (class or workgroup name).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LayoutConfig {
    pub school: String,
    pub user: String,
    pub class: String,
    pub workgroup: String,
    /// rollcall's own entries: issued usernames and counters.
    pub rollcall: String,
}

/// Which attribute holds what. A field is `"attribute"` or
/// `"attribute:prefix"`: the latter stores `prefix` + value, so several
/// fields can share one multi-valued attribute.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttributeConfig {
    pub user_object_classes: Vec<String>,
    pub username: String,
    pub firstname: String,
    pub lastname: String,
    /// Written as "<firstname> <lastname>" (required by `person`).
    pub common_name: String,
    pub email: String,
    pub record_uid: String,
    pub source_uid: String,
    /// One value per school the user is in.
    pub schools: String,
    /// `<role>:school:<school>`, one value per role and school.
    pub roles: String,
    /// `class:<school>:<name>` and `workgroup:<school>:<name>`.
    pub groups: String,
    /// Each role's own classes and workgroups when a person holds several
    /// roles in a school: `<role>:class:<school>:<name>`. Empty: not kept
    /// (every role then counts as contributing all of the school's groups).
    #[serde(default)]
    pub role_groups: String,
    /// Holds `1` while the account is disabled.
    pub disabled: String,
    pub password_hash: String,
    /// `active` or `limbo`.
    pub state: String,
    pub purge_at: String,
    /// The day a user in limbo who is still active gets deactivated
    /// (YYYY-MM-DD). Empty: not stored.
    #[serde(default)]
    pub deactivate_at: String,
    /// `date` (YYYY-MM-DD) or `generalized_time` (YYYYMMDDhhmmssZ).
    pub purge_at_format: String,
    pub birthday: String,
    pub created_at: String,
    /// Compared on every update and delete (optimistic concurrency).
    pub updated_at: String,
    pub school_object_classes: Vec<String>,
    /// `attribute=value` written on schools and required when listing them;
    /// empty: the object classes alone mark a school.
    pub school_marker: String,
    pub school_display_name: String,
    pub group_object_classes: Vec<String>,
    pub group_member: String,
    /// Holds the group's key (`class:<school>:<name>`) on the group entry.
    pub group_key: String,
}

impl LdapConfig {
    /// The server the change listener follows.
    pub fn follow_url(&self) -> &str {
        match self.listen_url.trim() {
            "" => &self.url,
            u => u,
        }
    }

    /// Checks the URL, templates and mapping; the message names the key.
    pub fn check(&self) -> Result<(), (String, String)> {
        let fail = |k: &str, m: String| Err((format!("directory.ldap.{k}"), m));
        let scheme_ok = ["ldap://", "ldaps://", "ldapi://"]
            .iter()
            .any(|s| self.url.to_ascii_lowercase().starts_with(s));
        if !scheme_ok {
            return fail(
                "url",
                format!("'{}' is not an LDAP URL (ldap://, ldaps:// or ldapi://)", self.url),
            );
        }
        let listen_ok = self.listen_url.trim().is_empty()
            || ["ldap://", "ldaps://", "ldapi://"]
                .iter()
                .any(|s| self.listen_url.trim().to_ascii_lowercase().starts_with(s));
        if !listen_ok {
            return fail(
                "listen_url",
                format!(
                    "'{}' is not an LDAP URL (ldap://, ldaps:// or ldapi://; empty: url)",
                    self.listen_url
                ),
            );
        }
        if self.starttls && !self.url.to_ascii_lowercase().starts_with("ldap://") {
            return fail("starttls", "StartTLS needs an ldap:// URL".into());
        }
        if self.base_dn.trim().is_empty() {
            return fail(
                "base_dn",
                "must name the directory's base DN, e.g. dc=school,dc=example".into(),
            );
        }
        if !self.bind_dn.is_empty() && self.bind_password_file.is_empty() {
            return fail(
                "bind_password_file",
                "bind_dn is set, so a password file is needed".into(),
            );
        }
        if self.connections == 0 || self.max_in_flight == 0 || self.page_size <= 0 {
            return fail(
                "connections",
                "connections, max_in_flight and page_size must be at least 1".into(),
            );
        }
        let l = &self.layout;
        for (key, tpl, needs) in [
            ("layout.school", &l.school, &["<school>"][..]),
            ("layout.user", &l.user, &["<username>", "<school>"][..]),
            ("layout.class", &l.class, &["<school>", "<name>"][..]),
            ("layout.workgroup", &l.workgroup, &["<school>", "<name>"][..]),
            ("layout.rollcall", &l.rollcall, &[][..]),
        ] {
            if !tpl.ends_with(",<base>") {
                return fail(key, format!("'{tpl}' must end with ,<base>"));
            }
            if let Some(n) = needs.iter().find(|n| !tpl.contains(**n)) {
                return fail(key, format!("'{tpl}' must contain {n}"));
            }
        }
        if !l.user.split(',').next().is_some_and(|r| r.ends_with("=<username>")) {
            return fail("layout.user", "the first RDN must be ATTRIBUTE=<username>".into());
        }
        if !l.school.split(',').next().is_some_and(|r| r.ends_with("=<school>")) {
            return fail("layout.school", "the first RDN must be ATTRIBUTE=<school>".into());
        }
        let a = &self.attributes;
        if !matches!(a.purge_at_format.as_str(), "date" | "generalized_time") {
            return fail(
                "attributes.purge_at_format",
                format!("'{}' is not a format; use date or generalized_time", a.purge_at_format),
            );
        }
        if a.user_object_classes.is_empty() || a.school_object_classes.is_empty() || a.group_object_classes.is_empty() {
            return fail("attributes", "the object class lists must not be empty".into());
        }
        for (k, v) in [
            ("username", &a.username),
            ("firstname", &a.firstname),
            ("lastname", &a.lastname),
            ("record_uid", &a.record_uid),
            ("source_uid", &a.source_uid),
            ("schools", &a.schools),
            ("roles", &a.roles),
            ("groups", &a.groups),
            ("state", &a.state),
            ("updated_at", &a.updated_at),
            ("group_member", &a.group_member),
            ("group_key", &a.group_key),
            ("school_display_name", &a.school_display_name),
        ] {
            if v.trim().is_empty() {
                return fail(&format!("attributes.{k}"), "must name an attribute".into());
            }
        }
        if !a.school_marker.is_empty() && !a.school_marker.contains('=') {
            return fail(
                "attributes.school_marker",
                "use attribute=value, or empty for none".into(),
            );
        }
        Ok(())
    }
}
