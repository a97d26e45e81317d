//! Which rollcall object a directory entry is — a user, a group or a school
//! of the configured mapping and layout, or nothing rollcall reads — with
//! the schools the distributor routes it by, and a digest of everything
//! rollcall reads from it: an entry whose relevant content did not change
//! (an attribute rollcall does not map, an operational one) is not
//! journalled again.

use super::super::layout::Layout;
use super::super::mapping::{Attrs, Mapping, parse_group_value};
use crate::model::ObjectRef;
use ldap3::ldap_escape;
use std::collections::BTreeSet;
use xxhash_rust::xxh3::Xxh3;

/// A directory entry as rollcall sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Classified {
    pub object: ObjectRef,
    pub schools: BTreeSet<String>,
    /// A user's classes and workgroups (rollcall reads a group's members
    /// from the users that list it).
    pub groups: BTreeSet<ObjectRef>,
    pub digest: i64,
}

pub struct Classifier {
    layout: Layout,
    map: Mapping,
    /// Lowercased, sorted: what a user's digest covers.
    user_attrs: Vec<String>,
}

fn has_class(attrs: &Attrs, class: &str) -> bool {
    attrs
        .get("objectclass")
        .is_some_and(|v| v.iter().any(|c| c.eq_ignore_ascii_case(class)))
}

/// Feeds a DN and attribute values into a digest in a canonical order.
fn digest(dn: &str, attrs: &Attrs, names: &[String], fold_case: bool) -> i64 {
    let mut h = Xxh3::new();
    h.update(dn.to_ascii_lowercase().as_bytes());
    for name in names {
        let mut values: Vec<String> = attrs
            .get(name)
            .into_iter()
            .flatten()
            .map(|v| if fold_case { v.to_ascii_lowercase() } else { v.clone() })
            .collect();
        values.sort_unstable();
        values.dedup();
        h.update(&[0]);
        h.update(name.as_bytes());
        for v in values {
            h.update(&[1]);
            h.update(&(v.len() as u64).to_le_bytes());
            h.update(v.as_bytes());
        }
    }
    h.digest() as i64
}

impl Classifier {
    pub fn new(layout: Layout, map: Mapping) -> Self {
        let mut user_attrs: Vec<String> = map.user_attrs.iter().map(|a| a.to_ascii_lowercase()).collect();
        user_attrs.sort_unstable();
        user_attrs.dedup();
        Classifier {
            layout,
            map,
            user_attrs,
        }
    }

    /// What the sync search asks for: every attribute rollcall reads from
    /// users, groups and schools, and `entryCSN` (which write it was).
    pub fn attributes(&self) -> Vec<String> {
        let mut out: Vec<String> = self.map.user_attrs.clone();
        out.push(self.map.group_key.clone());
        out.push(self.map.group_member.clone());
        out.push(self.map.school_display.clone());
        if let Some((k, _)) = &self.map.school_marker {
            out.push(k.clone());
        }
        out.push("objectClass".into());
        out.push("entryCSN".into());
        out.sort_by_key(|a| a.to_ascii_lowercase());
        out.dedup_by(|a, b| a.eq_ignore_ascii_case(b));
        out
    }

    /// The sync search's filter: entries of the first user, group or school
    /// class (an entry that stops matching is reported deleted).
    pub fn filter(&self) -> String {
        let first = |v: &[String], default: &str| v.first().cloned().unwrap_or_else(|| default.to_string());
        let classes: BTreeSet<String> = [
            first(&self.map.user_classes, "inetOrgPerson"),
            first(&self.map.group_classes, "groupOfNames"),
            first(&self.map.school_classes, "organizationalUnit"),
        ]
        .into_iter()
        .collect();
        let any: String = classes
            .iter()
            .map(|c| format!("(objectClass={})", ldap_escape(c.as_str())))
            .collect();
        format!("(|{any})")
    }

    /// The object an entry is, if it is one of rollcall's.
    pub fn classify(&self, dn: &str, attrs: &Attrs) -> Option<Classified> {
        if self.map.is_user(attrs) {
            let source = self.map.source_uid.values(attrs).next()?;
            let record = self.map.record_uid.values(attrs).next()?;
            let mut schools: BTreeSet<String> = self.map.schools.values(attrs).map(str::to_string).collect();
            schools.extend(self.layout.school_of_user_dn(dn));
            let groups = self
                .map
                .groups
                .values(attrs)
                .filter_map(parse_group_value)
                .map(|k| ObjectRef::group(&k))
                .collect();
            return Some(Classified {
                groups,
                object: ObjectRef::User {
                    source_uid: source.to_string(),
                    record_uid: record.to_string(),
                },
                schools,
                digest: digest(dn, attrs, &self.user_attrs, false),
            });
        }
        let group_class = self
            .map
            .group_classes
            .first()
            .map(String::as_str)
            .unwrap_or("groupOfNames");
        let key_attr = self.map.group_key.to_ascii_lowercase();
        if has_class(attrs, group_class)
            && let Some(key) = attrs
                .get(&key_attr)
                .into_iter()
                .flatten()
                .find_map(|v| parse_group_value(v))
        {
            let names = [key_attr, self.map.group_member.to_ascii_lowercase()];
            return Some(Classified {
                groups: BTreeSet::new(),
                schools: BTreeSet::from([key.school.clone()]),
                object: ObjectRef::group(&key),
                digest: digest(dn, attrs, &names, true),
            });
        }
        let is_school = self.map.school_classes.iter().all(|c| has_class(attrs, c))
            && self.map.school_marker.as_ref().is_none_or(|(k, v)| {
                attrs
                    .get(&k.to_ascii_lowercase())
                    .is_some_and(|vals| vals.iter().any(|x| x.eq_ignore_ascii_case(v)))
            });
        if is_school && let Some(name) = self.layout.school_of_school_dn(dn) {
            let mut names = vec![self.map.school_display.to_ascii_lowercase()];
            names.extend(self.map.school_marker.as_ref().map(|(k, _)| k.to_ascii_lowercase()));
            return Some(Classified {
                groups: BTreeSet::new(),
                schools: BTreeSet::from([name.clone()]),
                object: ObjectRef::school(&name),
                digest: digest(dn, attrs, &names, false),
            });
        }
        None
    }
}
