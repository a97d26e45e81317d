//! The LDAP target: a remote directory (OpenLDAP or any RFC 4511 server)
//! written through the LDAP store's code — its connection pool (TLS,
//! StartTLS, ldapi, CA bundle, bind password file), DN layout and RFC 4514 /
//! RFC 4515 escaping. Users and groups are found by their external id in a
//! configured attribute (`ldap.user_key`, `ldap.group_key`), then created,
//! updated, moved (ModifyDN when the primary school changes), deactivated or
//! deleted; group members change by adding and deleting member values.
//! `entries.rs` holds the writes, `listing.rs` the shape verify sees; this
//! file the setup, lookups, errors and the listing search.

mod entries;
mod listing;

use super::{Applied, ErrorClass, RemoteObject, Target, TargetError, members_delivered};
use crate::engine::config::{AuthorityConfig, LdapTargetConfig};
use crate::engine::sync::mapping::{Class, Desired};
use crate::store::StoreError;
use crate::store::ldap::LayoutConfig;
use crate::store::ldap::code_name;
use crate::store::ldap::conn::{Pool, PoolSettings};
use crate::store::ldap::layout::Layout;
use ldap3::{Scope, SearchEntry, ldap_escape};
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

/// An entry's attributes, names lowercased.
type Attrs = HashMap<String, Vec<String>>;

pub struct LdapTarget {
    pool: Pool,
    base: String,
    layout: Layout,
    cfg: LdapTargetConfig,
    /// LDAP attribute → directory field (the authority's user mapping).
    fields: BTreeMap<String, String>,
}

/// Result codes that say "try again later".
const TRANSIENT_CODES: &[u32] = &[3, 11, 51, 52, 80];
/// Result codes that say "this authority refuses us as a whole": a bind
/// that fails or an account without rights pauses the authority.
const REFUSED_CODES: &[u32] = &[8, 13, 48, 49, 50];

/// A store error as a target error: transient, unreachable or permanent by
/// its LDAP result code, naming the server, operation, DN and code.
fn classify(e: StoreError) -> TargetError {
    match e {
        StoreError::Ldap {
            server,
            op,
            dn,
            code,
            message,
        } => {
            let class = match code {
                None if op == "connect" => ErrorClass::Unreachable,
                None => ErrorClass::Transient,
                Some(c) if REFUSED_CODES.contains(&c) => ErrorClass::Unreachable,
                Some(c) if TRANSIENT_CODES.contains(&c) => ErrorClass::Transient,
                Some(_) => ErrorClass::Permanent,
            };
            let what = if dn.is_empty() { op } else { format!("{op} {dn}") };
            let text = match code {
                Some(c) if message.is_empty() => format!("ldap {server}: {what}: LDAP result {c} ({})", code_name(c)),
                Some(c) => format!("ldap {server}: {what}: LDAP result {c} ({}): {message}", code_name(c)),
                None => format!("ldap {server}: {what}: {message}"),
            };
            let mut err = TargetError::new(class, text);
            err.ldap_code = code;
            err
        }
        StoreError::Backend { server, message } => TargetError::permanent(format!("ldap {server}: {message}")),
        other => TargetError::permanent(other.to_string()),
    }
}

fn lower(e: SearchEntry) -> (String, Attrs) {
    let attrs = e.attrs.into_iter().map(|(k, v)| (k.to_ascii_lowercase(), v)).collect();
    (e.dn, attrs)
}

impl LdapTarget {
    pub fn new(config: &AuthorityConfig) -> Result<Self, TargetError> {
        let cfg = config.ldap.clone();
        let timeout = Duration::from_secs_f64(config.timeout_seconds.max(0.1));
        let pool = Pool::open(&PoolSettings {
            url: &config.url,
            starttls: cfg.starttls,
            ca_bundle: &config.ca_bundle,
            bind_dn: &config.bind_dn,
            bind_password_file: &config.bind_password_file,
            connect_timeout: timeout.min(Duration::from_secs(10)),
            timeout,
            connections: cfg.connections,
        })
        .map_err(classify)?;
        let base = cfg.base_dn.trim().to_string();
        let layout = Layout::new(
            &LayoutConfig {
                school: "ou=<school>,<base>".into(),
                user: cfg.layout.user.clone(),
                class: cfg.layout.class.clone(),
                workgroup: cfg.layout.workgroup.clone(),
                rollcall: "cn=rollcall,<base>".into(),
            },
            &base,
        );
        Ok(LdapTarget {
            pool,
            base,
            layout,
            cfg,
            fields: config.user_mapping(),
        })
    }

    fn object_class(&self, class: Class) -> &str {
        let list = match class {
            Class::User => &self.cfg.user_object_classes,
            Class::Group => &self.cfg.group_object_classes,
        };
        list.first().map(String::as_str).unwrap_or("top")
    }

    fn key_attr(&self, class: Class) -> &str {
        match class {
            Class::User => &self.cfg.user_key,
            Class::Group => &self.cfg.group_key,
        }
    }

    /// `(&(objectClass=…)(<key>=<value>))`, every value escaped.
    fn key_filter(&self, class: Class, external_id: &str) -> String {
        format!(
            "(&(objectClass={})({}={}))",
            ldap_escape(self.object_class(class)),
            self.key_attr(class),
            ldap_escape(external_id)
        )
    }

    /// The attributes read for a class.
    fn read_attrs(&self, class: Class) -> Vec<String> {
        let mut attrs = vec!["objectClass".to_string(), self.key_attr(class).to_string()];
        match class {
            Class::User => attrs.extend(self.fields.keys().cloned()),
            Class::Group => attrs.push(self.cfg.group_member.clone()),
        }
        attrs
    }

    /// The entry holding this external id, if any (more than one: the
    /// target holds duplicates, which only a person can sort out).
    async fn find(&self, class: Class, external_id: &str) -> Result<Option<(String, Attrs)>, StoreError> {
        let filter = self.key_filter(class, external_id);
        let mut found = Vec::new();
        self.pool
            .search(
                &self.base,
                Scope::Subtree,
                &filter,
                &self.read_attrs(class),
                self.cfg.page_size,
                &mut |e| found.push(lower(e)),
            )
            .await?;
        if found.len() > 1 {
            let dns: Vec<&str> = found.iter().map(|(dn, _)| dn.as_str()).collect();
            return Err(StoreError::Backend {
                server: self.pool.server.clone(),
                message: format!(
                    "{} entries hold {}={external_id} ({}): remove all but one",
                    found.len(),
                    self.key_attr(class),
                    dns.join("; ")
                ),
            });
        }
        Ok(found.pop())
    }
}

impl Target for LdapTarget {
    fn describe(&self) -> String {
        format!("ldap {} ({})", self.pool.server, self.base)
    }

    fn probe(&self) -> Result<(), TargetError> {
        // Connects and binds; a missing base is an answer too.
        self.pool
            .block_on(
                self.pool
                    .search(&self.base, Scope::Base, "(objectClass=*)", &[], 1, &mut |_| {}),
            )
            .map_err(classify)
    }

    fn apply(&self, desired: &Desired) -> Result<Applied, TargetError> {
        match desired {
            Desired::Skip => Ok(Applied::Skipped),
            _ => {
                let (applied, missing) = self.pool.block_on(self.write(desired)).map_err(classify)?;
                if let Desired::Present(m) = desired {
                    members_delivered(m, &missing)?;
                }
                Ok(applied)
            }
        }
    }

    fn fetch(&self, class: Class, external_id: &str) -> Result<Option<RemoteObject>, TargetError> {
        let found = self.pool.block_on(self.find(class, external_id)).map_err(classify)?;
        Ok(found.map(|(dn, attrs)| self.listed(class, dn, attrs)))
    }

    fn list(&self, class: Class, visit: &mut dyn FnMut(RemoteObject) -> bool) -> Result<(), TargetError> {
        let filter = format!(
            "(&(objectClass={})({}=*))",
            ldap_escape(self.object_class(class)),
            self.key_attr(class)
        );
        let mut found = Vec::new();
        self.pool
            .block_on(self.pool.search(
                &self.base,
                Scope::Subtree,
                &filter,
                &self.read_attrs(class),
                self.cfg.page_size,
                &mut |e| found.push(lower(e)),
            ))
            .map_err(classify)?;
        for (dn, attrs) in found {
            if !visit(self.listed(class, dn, attrs)) {
                break;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_classified_by_result_code() {
        let e = |op: &str, code: Option<u32>| {
            classify(StoreError::Ldap {
                server: "ldap://b".into(),
                op: op.into(),
                dn: "uid=x,dc=t".into(),
                code,
                message: "why".into(),
            })
        };
        assert_eq!(e("connect", None).class, ErrorClass::Unreachable);
        assert_eq!(e("modify", None).class, ErrorClass::Transient);
        assert_eq!(e("bind as", Some(49)).class, ErrorClass::Unreachable);
        assert_eq!(e("modify", Some(51)).class, ErrorClass::Transient);
        let bad = e("add user", Some(21));
        assert_eq!(bad.class, ErrorClass::Permanent);
        assert_eq!(bad.ldap_code, Some(21));
        assert_eq!(
            bad.message,
            "ldap ldap://b: add user uid=x,dc=t: LDAP result 21 (invalidAttributeSyntax): why"
        );
    }
}
