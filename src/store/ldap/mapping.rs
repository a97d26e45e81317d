//! The attribute mapping: a `User` as LDAP attribute values and back, and
//! the search filters over those attributes (every value escaped per
//! RFC 4515).

use super::settings::AttributeConfig;
use crate::model::{GroupKey, GroupKind, Membership, Role, User, UserKey, UserState};
use crate::store::UserQuery;
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use ldap3::ldap_escape;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Times as stored: RFC 3339 in UTC with microseconds.
pub fn time_str(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// One mapped field: the attribute and the prefix its values carry.
#[derive(Clone, Debug)]
pub struct Field {
    pub attr: String,
    pub prefix: String,
}

impl Field {
    /// `"attr"` or `"attr:prefix"`; empty: not stored.
    fn parse(spec: &str) -> Option<Field> {
        let spec = spec.trim();
        if spec.is_empty() {
            return None;
        }
        let (attr, prefix) = spec.split_once(':').unwrap_or((spec, ""));
        Some(Field {
            attr: attr.to_string(),
            prefix: prefix.to_string(),
        })
    }

    fn must(spec: &str) -> Field {
        Field::parse(spec).unwrap_or(Field {
            attr: spec.to_string(),
            prefix: String::new(),
        })
    }

    /// The field's values in an entry, prefix stripped.
    pub fn values<'a>(&'a self, e: &'a Attrs) -> impl Iterator<Item = &'a str> + 'a {
        e.get(&self.attr.to_ascii_lowercase())
            .into_iter()
            .flatten()
            .filter_map(|v| v.strip_prefix(self.prefix.as_str()))
    }

    fn first<'a>(&'a self, e: &'a Attrs) -> Option<&'a str> {
        self.values(e).next()
    }

    /// `(attr=prefix+value)`, escaped.
    pub fn eq(&self, value: &str) -> String {
        format!("({}={})", self.attr, ldap_escape(format!("{}{value}", self.prefix)))
    }

    /// `(attr=prefix*)`: any value of this field.
    pub fn present(&self) -> String {
        format!("({}={}*)", self.attr, ldap_escape(self.prefix.as_str()))
    }
}

/// An entry's attributes, names lowercased.
pub type Attrs = HashMap<String, Vec<String>>;

/// Attribute values to write: lowercased name → (name, values).
pub type Values = BTreeMap<String, (String, BTreeSet<String>)>;

#[derive(Clone, Debug)]
pub struct Mapping {
    pub user_classes: Vec<String>,
    pub username: Field,
    firstname: Field,
    lastname: Field,
    common_name: Option<Field>,
    email: Option<Field>,
    pub record_uid: Field,
    pub source_uid: Field,
    pub schools: Field,
    pub roles: Field,
    pub groups: Field,
    role_groups: Option<Field>,
    disabled: Option<Field>,
    password: Option<Field>,
    pub state: Field,
    purge_at: Option<Field>,
    deactivate_at: Option<Field>,
    purge_generalized: bool,
    birthday: Option<Field>,
    created_at: Option<Field>,
    pub updated_at: Field,
    pub school_classes: Vec<String>,
    pub school_marker: Option<(String, String)>,
    pub school_display: String,
    pub group_classes: Vec<String>,
    pub group_member: String,
    pub group_key: String,
    /// Every attribute a user read requests.
    pub user_attrs: Vec<String>,
}

pub fn role_value(role: Role, school: &str) -> String {
    format!("{}:school:{school}", role.as_str())
}

pub fn group_value(key: &GroupKey) -> String {
    format!("{}:{}:{}", key.kind.as_str(), key.school, key.name)
}

pub fn parse_group_value(v: &str) -> Option<GroupKey> {
    let (kind, rest) = v.split_once(':')?;
    let (school, name) = rest.split_once(':')?;
    Some(GroupKey::new(school, GroupKind::parse(kind)?, name))
}

fn add(out: &mut Values, f: &Field, value: &str) {
    if value.is_empty() {
        return;
    }
    out.entry(f.attr.to_ascii_lowercase())
        .or_insert_with(|| (f.attr.clone(), BTreeSet::new()))
        .1
        .insert(format!("{}{value}", f.prefix));
}

impl Mapping {
    pub fn new(a: &AttributeConfig) -> Self {
        let school_marker = a
            .school_marker
            .split_once('=')
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()));
        let mut m = Mapping {
            user_classes: a.user_object_classes.clone(),
            username: Field::must(&a.username),
            firstname: Field::must(&a.firstname),
            lastname: Field::must(&a.lastname),
            common_name: Field::parse(&a.common_name),
            email: Field::parse(&a.email),
            record_uid: Field::must(&a.record_uid),
            source_uid: Field::must(&a.source_uid),
            schools: Field::must(&a.schools),
            roles: Field::must(&a.roles),
            groups: Field::must(&a.groups),
            role_groups: Field::parse(&a.role_groups),
            disabled: Field::parse(&a.disabled),
            password: Field::parse(&a.password_hash),
            state: Field::must(&a.state),
            purge_at: Field::parse(&a.purge_at),
            deactivate_at: Field::parse(&a.deactivate_at),
            purge_generalized: a.purge_at_format == "generalized_time",
            birthday: Field::parse(&a.birthday),
            created_at: Field::parse(&a.created_at),
            updated_at: Field::must(&a.updated_at),
            school_classes: a.school_object_classes.clone(),
            school_marker,
            school_display: a.school_display_name.clone(),
            group_classes: a.group_object_classes.clone(),
            group_member: a.group_member.clone(),
            group_key: a.group_key.clone(),
            user_attrs: Vec::new(),
        };
        let mut attrs: Vec<String> = [
            Some(&m.username),
            Some(&m.firstname),
            Some(&m.lastname),
            m.email.as_ref(),
            Some(&m.record_uid),
            Some(&m.source_uid),
            Some(&m.schools),
            Some(&m.roles),
            Some(&m.groups),
            m.role_groups.as_ref(),
            m.disabled.as_ref(),
            m.password.as_ref(),
            Some(&m.state),
            m.purge_at.as_ref(),
            m.deactivate_at.as_ref(),
            m.birthday.as_ref(),
            m.created_at.as_ref(),
            Some(&m.updated_at),
        ]
        .into_iter()
        .flatten()
        .map(|f| f.attr.clone())
        .collect();
        attrs.push("objectClass".into());
        attrs.sort_by_key(|a| a.to_ascii_lowercase());
        attrs.dedup_by(|a, b| a.eq_ignore_ascii_case(b));
        m.user_attrs = attrs;
        m
    }

    fn purge_str(&self, d: NaiveDate) -> String {
        if self.purge_generalized {
            d.format("%Y%m%d000000Z").to_string()
        } else {
            d.format("%Y-%m-%d").to_string()
        }
    }

    fn parse_purge(&self, s: &str) -> Option<NaiveDate> {
        if self.purge_generalized {
            NaiveDateTime::parse_from_str(s.trim_end_matches('Z'), "%Y%m%d%H%M%S")
                .ok()
                .map(|t| t.date())
        } else {
            NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()
        }
    }

    /// The user's attribute values (object classes not included).
    pub fn encode(&self, u: &User) -> Values {
        let mut out = Values::new();
        add(&mut out, &self.username, &u.username);
        add(&mut out, &self.firstname, &u.firstname);
        add(&mut out, &self.lastname, &u.lastname);
        if let Some(f) = &self.common_name {
            add(&mut out, f, format!("{} {}", u.firstname, u.lastname).trim());
        }
        if let (Some(f), Some(v)) = (&self.email, &u.email) {
            add(&mut out, f, v);
        }
        add(&mut out, &self.record_uid, &u.key.record_uid);
        add(&mut out, &self.source_uid, &u.key.source_uid);
        for m in &u.memberships {
            add(&mut out, &self.schools, &m.school);
            for r in &m.roles {
                add(&mut out, &self.roles, &role_value(*r, &m.school));
            }
            for c in &m.classes {
                add(
                    &mut out,
                    &self.groups,
                    &group_value(&GroupKey::new(&m.school, GroupKind::Class, c)),
                );
            }
            for w in &m.workgroups {
                add(
                    &mut out,
                    &self.groups,
                    &group_value(&GroupKey::new(&m.school, GroupKind::Workgroup, w)),
                );
            }
            if let Some(f) = &self.role_groups {
                for (role, c) in &m.by_role {
                    let kinds = [(GroupKind::Class, &c.classes), (GroupKind::Workgroup, &c.workgroups)];
                    for (kind, names) in kinds {
                        for n in names {
                            let key = GroupKey::new(&m.school, kind, n);
                            add(&mut out, f, &format!("{}:{}", role.as_str(), group_value(&key)));
                        }
                    }
                }
            }
        }
        if let Some(f) = &self.disabled
            && u.disabled
        {
            add(&mut out, f, "1");
        }
        if let (Some(f), Some(v)) = (&self.password, &u.password_hash) {
            add(&mut out, f, v);
        }
        add(&mut out, &self.state, u.state.as_str());
        if let (Some(f), Some(d)) = (&self.deactivate_at, u.deactivate_at) {
            add(&mut out, f, &d.format("%Y-%m-%d").to_string());
        }
        if let (Some(f), Some(d)) = (&self.purge_at, u.purge_at) {
            add(&mut out, f, &self.purge_str(d));
        }
        if let (Some(f), Some(d)) = (&self.birthday, u.birthday) {
            add(&mut out, f, &d.format("%Y-%m-%d").to_string());
        }
        if let Some(f) = &self.created_at {
            add(&mut out, f, &time_str(u.created_at));
        }
        add(&mut out, &self.updated_at, &time_str(u.updated_at));
        out
    }

    /// A user from an entry; `primary` is the school its DN places it in.
    /// `Err` says what is missing or malformed.
    pub fn decode(&self, e: &Attrs, primary: Option<&str>) -> Result<User, String> {
        let need = |f: &Field, what: &str| f.first(e).map(str::to_string).ok_or(format!("no {what} ({})", f.attr));
        let username = need(&self.username, "username")?;
        let mut schools: Vec<&str> = self.schools.values(e).collect();
        schools.sort_unstable();
        schools.dedup();
        if schools.is_empty() {
            return Err(format!("no school ({})", self.schools.attr));
        }
        // The DN's school is primary when the user is (still) in it.
        if let Some(p) = primary
            && let Some(i) = schools.iter().position(|s| s.eq_ignore_ascii_case(p))
        {
            let s = schools.remove(i);
            schools.insert(0, s);
        }
        let mut memberships: Vec<Membership> = schools.iter().map(|s| Membership::new(*s, BTreeSet::new())).collect();
        // School names are case-insensitive (as `ou` values are).
        let index: HashMap<String, usize> = schools
            .iter()
            .enumerate()
            .map(|(i, s)| (s.to_ascii_lowercase(), i))
            .collect();
        for v in self.roles.values(e) {
            let Some((role, school)) = v.split_once(":school:") else {
                continue;
            };
            if let (Ok(role), Some(i)) = (role.parse::<Role>(), index.get(&school.to_ascii_lowercase())) {
                memberships[*i].roles.insert(role);
            }
        }
        for v in self.groups.values(e) {
            let Some(key) = parse_group_value(v) else { continue };
            let Some(i) = index.get(&key.school.to_ascii_lowercase()) else {
                continue;
            };
            match key.kind {
                GroupKind::Class => memberships[*i].classes.insert(key.name),
                GroupKind::Workgroup => memberships[*i].workgroups.insert(key.name),
            };
        }
        for v in self.role_groups.iter().flat_map(|f| f.values(e)) {
            let Some((role, rest)) = v.split_once(':') else {
                continue;
            };
            let (Ok(role), Some(key)) = (role.parse::<Role>(), parse_group_value(rest)) else {
                continue;
            };
            let Some(i) = index.get(&key.school.to_ascii_lowercase()) else {
                continue;
            };
            let c = memberships[*i].by_role.entry(role).or_default();
            match key.kind {
                GroupKind::Class => c.classes.insert(key.name),
                GroupKind::Workgroup => c.workgroups.insert(key.name),
            };
        }
        for m in &mut memberships {
            // Contributions of roles the user no longer holds, or of a
            // single role, are not part of the canonical form.
            if !m.by_role.is_empty() {
                let roles = m.roles.clone();
                m.by_role.retain(|r, _| roles.contains(r));
                if m.roles.len() < 2 {
                    m.by_role.clear();
                }
            }
        }
        let state = need(&self.state, "state")?;
        let updated = need(&self.updated_at, "updated_at")?;
        let time = |s: &str, what: &str| {
            DateTime::parse_from_rfc3339(s)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|err| format!("bad {what} '{s}': {err}"))
        };
        let updated_at = time(&updated, "updated_at")?;
        let created_at = match self.created_at.as_ref().and_then(|f| f.first(e)) {
            Some(s) => time(s, "created_at")?,
            None => updated_at,
        };
        fn opt<'a>(f: &'a Option<Field>, e: &'a Attrs) -> Option<&'a str> {
            f.as_ref().and_then(|f| f.first(e))
        }
        let date = |f: &'_ Option<Field>| -> Option<String> { opt(f, e).map(str::to_string) };
        Ok(User {
            key: UserKey::new(
                need(&self.source_uid, "source_uid")?,
                need(&self.record_uid, "record_uid")?,
            ),
            username,
            firstname: self.firstname.first(e).unwrap_or("").to_string(),
            lastname: self.lastname.first(e).unwrap_or("").to_string(),
            email: date(&self.email),
            birthday: match date(&self.birthday) {
                Some(s) => Some(
                    NaiveDate::parse_from_str(&s, "%Y-%m-%d").map_err(|err| format!("bad birthday '{s}': {err}"))?,
                ),
                None => None,
            },
            memberships,
            disabled: self.disabled.as_ref().is_some_and(|f| f.values(e).any(|v| v == "1")),
            state: UserState::parse(&state).ok_or(format!("bad state '{state}'"))?,
            deactivate_at: match date(&self.deactivate_at) {
                Some(s) => Some(
                    NaiveDate::parse_from_str(&s, "%Y-%m-%d")
                        .map_err(|err| format!("bad deactivation date '{s}': {err}"))?,
                ),
                None => None,
            },
            purge_at: match date(&self.purge_at) {
                Some(s) => Some(self.parse_purge(&s).ok_or(format!("bad purge date '{s}'"))?),
                None => None,
            },
            password_hash: date(&self.password),
            created_at,
            updated_at,
        })
    }

    /// Whether an entry is a user of this mapping: it has the first user
    /// class and a source. Searches that leave these tests out of the
    /// server filter (they match every user, which makes slapd intersect
    /// huge candidate lists) check them here.
    pub fn is_user(&self, e: &Attrs) -> bool {
        let class = self.user_classes.first().map(String::as_str).unwrap_or("inetOrgPerson");
        e.get("objectclass")
            .is_some_and(|v| v.iter().any(|c| c.eq_ignore_ascii_case(class)))
            && self.source_uid.first(e).is_some()
            && self.record_uid.first(e).is_some()
    }

    /// Whether a decoded user matches a query (what the server filter says,
    /// checked again client-side; `purge_due` is only checked here).
    pub fn matches(q: &UserQuery, u: &User) -> bool {
        let school = q.school.as_deref();
        let text_ok = || {
            let t = q.text.as_deref().unwrap_or("").to_lowercase();
            t.is_empty()
                || [&u.username, &u.firstname, &u.lastname, &u.key.record_uid]
                    .iter()
                    .any(|f| f.to_lowercase().contains(&t))
        };
        school.is_none_or(|s| u.has_school(s))
            && q.state.is_none_or(|s| s == u.state)
            && q.source_uid.as_deref().is_none_or(|s| s == u.key.source_uid)
            && (q.roles.is_empty()
                || u.memberships
                    .iter()
                    .filter(|m| school.is_none_or(|s| s == m.school))
                    .any(|m| m.roles.iter().any(|r| q.roles.contains(r))))
            && q.purge_due
                .is_none_or(|d| u.state == UserState::Limbo && u.purge_at.is_some_and(|p| p <= d))
            && text_ok()
    }

    /// The selective part of a query's filter (school, roles, text, limbo),
    /// or the whole filter when nothing is selective. Callers check
    /// [`Mapping::is_user`] and [`Mapping::matches`] on the results.
    pub fn narrow_filter(&self, q: &UserQuery) -> String {
        let selective = q.school.is_some()
            || !q.roles.is_empty()
            || q.text.as_deref().is_some_and(|t| !t.is_empty())
            || q.state == Some(UserState::Limbo)
            || q.purge_due.is_some();
        if !selective {
            return self.query_filter(q);
        }
        let narrowed = UserQuery {
            state: q.state.filter(|s| *s == UserState::Limbo),
            source_uid: None,
            ..q.clone()
        };
        let full = self.query_filter(&narrowed);
        // Drop the leading "(&<user filter>" parts that match every user.
        let common = format!("(&{}", self.user_filter());
        match full.strip_prefix(&common) {
            Some(rest) => format!("(&{rest}"),
            None => full,
        }
    }

    /// Every user this mapping can read: the first user class and a source.
    pub fn user_filter(&self) -> String {
        format!(
            "(objectClass={}){}",
            ldap_escape(self.user_classes.first().map(String::as_str).unwrap_or("inetOrgPerson")),
            self.source_uid.present()
        )
    }

    /// The server-side filter of a query. `purge_due` is left to the caller
    /// (dates are not comparable in every format).
    pub fn query_filter(&self, q: &UserQuery) -> String {
        let mut f = format!("(&{}", self.user_filter());
        if let Some(s) = &q.school {
            f.push_str(&self.schools.eq(s));
        }
        if let Some(state) = q.state {
            f.push_str(&self.state.eq(state.as_str()));
        }
        if q.purge_due.is_some() {
            f.push_str(&self.state.eq(UserState::Limbo.as_str()));
        }
        if let Some(s) = &q.source_uid {
            f.push_str(&self.source_uid.eq(s));
        }
        if !q.roles.is_empty() {
            f.push_str("(|");
            for r in &q.roles {
                match &q.school {
                    Some(s) => f.push_str(&self.roles.eq(&role_value(*r, s))),
                    None => f.push_str(&format!(
                        "({}={}*)",
                        self.roles.attr,
                        ldap_escape(format!("{}{}:school:", self.roles.prefix, r.as_str()))
                    )),
                }
            }
            f.push(')');
        }
        if let Some(t) = q.text.as_deref().filter(|t| !t.is_empty()) {
            let t = ldap_escape(t);
            f.push_str("(|");
            for field in [&self.username, &self.firstname, &self.lastname, &self.record_uid] {
                f.push_str(&format!("({}={}*{t}*)", field.attr, ldap_escape(field.prefix.as_str())));
            }
            f.push(')');
        }
        f.push(')');
        f
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_values_are_escaped() {
        let cfg: crate::store::ldap::LdapConfig = toml::from_str::<toml::Table>(crate::store::ldap::tests::DEFAULTS)
            .ok()
            .and_then(|t| t.get("directory")?.get("ldap").cloned())
            .and_then(|v| v.try_into().ok())
            .expect("defaults");
        let m = Mapping::new(&cfg.attributes);
        let f = m.query_filter(&UserQuery {
            text: Some("*)(uid=*".into()),
            source_uid: Some("a(b)".into()),
            ..UserQuery::default()
        });
        assert!(f.contains("\\2a\\29\\28uid=\\2a"), "{f}");
        assert!(f.contains("a\\28b\\29"), "{f}");
        assert!(ldap3::parse_filter(&f).is_ok(), "{f}");
    }
}
