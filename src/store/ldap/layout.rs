//! Where entries live: DNs built from the layout templates (every value
//! escaped per RFC 4514), and the reverse — which school a user's DN puts
//! it in.

use super::settings::LayoutConfig;
use crate::model::{GroupKey, GroupKind};
use ldap3::dn_escape;

#[derive(Clone, Debug)]
pub struct Layout {
    base: String,
    school: String,
    user: String,
    class: String,
    workgroup: String,
    rollcall: String,
    /// The user template's parent with `<base>` filled in, split around
    /// `<school>`: a user's container is `prefix + school + suffix`.
    users_prefix: String,
    users_suffix: String,
}

fn fill(template: &str, base: &str, pairs: &[(&str, &str)]) -> String {
    let mut out = template.replace("<base>", base);
    for (k, v) in pairs {
        out = out.replace(k, &dn_escape(*v));
    }
    out
}

/// The parent of a DN (everything after the first unescaped comma).
pub fn parent(dn: &str) -> Option<&str> {
    let bytes = dn.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b',' => return Some(&dn[i + 1..]),
            _ => i += 1,
        }
    }
    None
}

/// The first RDN of a DN.
pub fn first_rdn(dn: &str) -> &str {
    match parent(dn) {
        Some(p) => &dn[..dn.len() - p.len() - 1],
        None => dn,
    }
}

/// The DNs between `base` (exclusive) and `dn` (inclusive), outermost first.
pub fn chain<'a>(dn: &'a str, base: &str) -> Vec<&'a str> {
    let mut out = Vec::new();
    let mut cur = Some(dn);
    while let Some(d) = cur {
        if d.eq_ignore_ascii_case(base) || d.len() <= base.len() {
            break;
        }
        out.push(d);
        cur = parent(d);
    }
    out.reverse();
    out
}

impl Layout {
    pub fn new(cfg: &LayoutConfig, base: &str) -> Self {
        let users_parent = parent(&cfg.user).unwrap_or("").replace("<base>", base);
        let (users_prefix, users_suffix) = match users_parent.split_once("<school>") {
            Some((p, s)) => (p.to_string(), s.to_string()),
            None => (users_parent.clone(), String::new()),
        };
        Layout {
            base: base.to_string(),
            school: cfg.school.clone(),
            user: cfg.user.clone(),
            class: cfg.class.clone(),
            workgroup: cfg.workgroup.clone(),
            rollcall: cfg.rollcall.clone(),
            users_prefix,
            users_suffix,
        }
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    pub fn school_dn(&self, school: &str) -> String {
        fill(&self.school, &self.base, &[("<school>", school)])
    }

    pub fn user_dn(&self, username: &str, school: &str) -> String {
        fill(
            &self.user,
            &self.base,
            &[("<username>", username), ("<school>", school)],
        )
    }

    pub fn group_dn(&self, key: &GroupKey) -> String {
        let tpl = match key.kind {
            GroupKind::Class => &self.class,
            GroupKind::Workgroup => &self.workgroup,
        };
        fill(tpl, &self.base, &[("<school>", &key.school), ("<name>", &key.name)])
    }

    pub fn rollcall_dn(&self) -> String {
        fill(&self.rollcall, &self.base, &[])
    }

    pub fn usernames_dn(&self) -> String {
        format!("cn=usernames,{}", self.rollcall_dn())
    }

    pub fn tombstone_dn(&self, username: &str) -> String {
        format!("uid={},{}", dn_escape(username), self.usernames_dn())
    }

    pub fn counters_dn(&self) -> String {
        format!("cn=counters,{}", self.rollcall_dn())
    }

    pub fn counter_dn(&self, base: &str) -> String {
        format!("cn={},{}", dn_escape(base), self.counters_dn())
    }

    /// The school whose user container holds this user DN, if it fits the
    /// layout. School names never need escaping (`[A-Za-z0-9_-]`).
    pub fn school_of_user_dn(&self, dn: &str) -> Option<String> {
        let container = parent(dn)?;
        let lower = container.to_ascii_lowercase();
        let (p, s) = (
            self.users_prefix.to_ascii_lowercase(),
            self.users_suffix.to_ascii_lowercase(),
        );
        if lower.len() < p.len() + s.len() || !lower.starts_with(&p) || !lower.ends_with(&s) {
            return None;
        }
        let school = &container[p.len()..container.len() - s.len()];
        (!school.is_empty() && !school.contains([',', '=', '\\'])).then(|| school.to_string())
    }

    /// The school named by a school entry's DN (its first RDN's value).
    pub fn school_of_school_dn(&self, dn: &str) -> Option<String> {
        let rdn = first_rdn(dn);
        let value = rdn.split_once('=')?.1;
        (self.school_dn(value).eq_ignore_ascii_case(dn)).then(|| value.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout() -> Layout {
        Layout::new(
            &LayoutConfig {
                school: "ou=<school>,<base>".into(),
                user: "uid=<username>,cn=users,ou=<school>,<base>".into(),
                class: "cn=<school>-<name>,cn=classes,cn=groups,ou=<school>,<base>".into(),
                workgroup: "cn=<school>-<name>,cn=workgroups,cn=groups,ou=<school>,<base>".into(),
                rollcall: "cn=rollcall,<base>".into(),
            },
            "dc=x,dc=y",
        )
    }

    #[test]
    fn builds_and_parses_dns() {
        let l = layout();
        let dn = l.user_dn("m.muster", "gs-a");
        assert_eq!(dn, "uid=m.muster,cn=users,ou=gs-a,dc=x,dc=y");
        assert_eq!(l.school_of_user_dn(&dn).as_deref(), Some("gs-a"));
        assert_eq!(l.school_of_user_dn("uid=x,cn=other,ou=a,dc=x,dc=y"), None);
        assert_eq!(l.school_of_school_dn("ou=gs-a,dc=x,dc=y").as_deref(), Some("gs-a"));
        let g = l.group_dn(&GroupKey::new("a", GroupKind::Class, "5a, b+c"));
        assert_eq!(g, "cn=a-5a\\2c b\\2bc,cn=classes,cn=groups,ou=a,dc=x,dc=y");
        assert_eq!(first_rdn(&g), "cn=a-5a\\2c b\\2bc");
        assert_eq!(
            chain("cn=users,ou=a,dc=x,dc=y", "dc=x,dc=y"),
            ["ou=a,dc=x,dc=y", "cn=users,ou=a,dc=x,dc=y"]
        );
    }
}
