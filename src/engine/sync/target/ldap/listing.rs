//! What the LDAP target holds, presented in the mapping's own shape for
//! verify — the inverse of `entries.rs`'s writes. Users: one key per
//! mapped attribute in the mapping's spelling (a single value as a string,
//! several as an array; `schools` and `roles` always arrays; the attribute
//! mapped to `active` as a bool: nothing = true, `1` = false, anything else
//! shown raw so it counts as different), `userName` from the attribute
//! mapped to `username`. Groups: `displayName` is what the entry's RDN
//! encodes (the layout places a group by its name: an RDN the layout would
//! give that group reads as the group's name, any other RDN reads as its
//! raw value), `members` the member DNs. Target ids are DNs, lowercased,
//! as are member values, so members resolve to the users listed.

use super::{Attrs, LdapTarget};
use crate::engine::sync::mapping::Class;
use crate::engine::sync::target::RemoteObject;
use crate::model::{GroupKey, ObjectRef};
use crate::store::ldap::write::rdn_parts;
use serde_json::{Map, Value, json};

/// Fields whose mapped value is always an array.
const ARRAY_FIELDS: &[&str] = &["schools", "roles"];

impl LdapTarget {
    /// One listed entry as verify sees it.
    pub(super) fn listed(&self, class: Class, dn: String, attrs: Attrs) -> RemoteObject {
        let key = self.key_attr(class).to_ascii_lowercase();
        let external_id = attrs.get(&key).and_then(|v| v.first()).cloned();
        let id = dn.to_ascii_lowercase();
        let mut resource = Map::new();
        resource.insert("dn".into(), json!(id));
        if let Some(e) = &external_id {
            resource.insert("externalId".into(), json!(e));
        }
        match class {
            Class::User => self.user_resource(&attrs, &mut resource),
            Class::Group => self.group_resource(&dn, external_id.as_deref(), &attrs, &mut resource),
        }
        RemoteObject {
            id,
            external_id,
            resource: Value::Object(resource),
        }
    }

    fn user_resource(&self, attrs: &Attrs, resource: &mut Map<String, Value>) {
        for (attr, field) in &self.fields {
            let values: Vec<String> = attrs.get(&attr.to_ascii_lowercase()).cloned().unwrap_or_default();
            let shown = match (field.as_str(), values.as_slice()) {
                ("active", []) => Some(json!(true)),
                ("active", [one]) if one == "1" => Some(json!(false)),
                (f, _) if ARRAY_FIELDS.contains(&f) => Some(json!(values)),
                (_, []) => None,
                (_, [one]) => Some(json!(one)),
                (_, _) => Some(json!(values)),
            };
            if let Some(v) = shown {
                if field == "username" && !resource.contains_key("userName") {
                    resource.insert("userName".into(), v.clone());
                }
                resource.insert(attr.clone(), v);
            }
        }
    }

    fn group_resource(&self, dn: &str, external_id: Option<&str>, attrs: &Attrs, resource: &mut Map<String, Value>) {
        let (rdn_attr, rdn_value) = rdn_parts(dn);
        let name = external_id.and_then(|ext| {
            let placed = self.group_dn(ext).ok()?;
            let (want_attr, want_value) = rdn_parts(&placed);
            if !want_attr.eq_ignore_ascii_case(&rdn_attr) || want_value.to_lowercase() != rdn_value.to_lowercase() {
                return None;
            }
            match ext.parse::<ObjectRef>().ok()? {
                ObjectRef::School { name } => Some(name),
                ObjectRef::Group {
                    school,
                    group_kind,
                    name,
                } => Some(GroupKey::new(school, group_kind, name).to_string()),
                _ => None,
            }
        });
        resource.insert("displayName".into(), json!(name.unwrap_or(rdn_value)));
        let members: Vec<String> = attrs
            .get(&self.cfg.group_member.to_ascii_lowercase())
            .into_iter()
            .flatten()
            .filter(|m| !m.is_empty())
            .map(|m| m.to_ascii_lowercase())
            .collect();
        resource.insert("members".into(), json!(members));
    }
}
