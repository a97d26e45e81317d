//! What a SCIM update must change: PATCH operations (explicit `path`,
//! lowercase `op`) for the mapped attributes that differ, and the member
//! ids to add and remove. The server may add detail (`primary`, `meta`…);
//! a value counts as equal when everything we send is there.

use crate::engine::sync::mapping::{Mapped, get_path};
use serde_json::{Map, Value, json};
use std::collections::BTreeSet;

/// Whether `current` holds everything `wanted` says.
pub fn covers(current: &Value, wanted: &Value) -> bool {
    match (wanted, current) {
        (Value::Object(w), Value::Object(c)) => w.iter().all(|(k, v)| c.get(k).is_some_and(|cv| covers(cv, v))),
        (Value::Array(w), Value::Array(c)) => w.len() == c.len() && w.iter().zip(c).all(|(wv, cv)| covers(cv, wv)),
        (w, c) => w == c,
    }
}

/// Two arrays of strings holding the same values in any order: a
/// multi-valued attribute is a set (RFC 7643 §2.4; LDAP values too).
fn same_strings(have: &Value, want: &Value) -> bool {
    let set = |v: &Value| -> Option<BTreeSet<String>> {
        v.as_array()?
            .iter()
            .map(|x| x.as_str().map(str::to_string))
            .collect::<Option<BTreeSet<_>>>()
    };
    match (set(have), set(want)) {
        (Some(h), Some(w)) => h == w && have.as_array().map(Vec::len) == want.as_array().map(Vec::len),
        _ => false,
    }
}

/// Whether the target's value `have` already is what would be sent
/// (`want`): the one rule of both the sender's no-op skip and verify.
pub fn same_value(have: &Value, want: &Value) -> bool {
    covers(have, want) || same_strings(have, want)
}

/// `attributes` without these paths (attributes the server does not
/// declare); an extension left empty leaves `schemas` too.
pub fn without_paths(attributes: &Map<String, Value>, dropped: &[String]) -> Map<String, Value> {
    let mut out = attributes.clone();
    for path in dropped {
        let (container, rest): (&str, &str) = match path.rfind(':') {
            Some(i) if path.starts_with("urn:") => (&path[..i], &path[i + 1..]),
            _ => ("", path.as_str()),
        };
        let mut parts: Vec<&str> = rest.split('.').collect();
        let Some(last) = parts.pop() else { continue };
        let mut cur: Option<&mut Map<String, Value>> = if container.is_empty() {
            Some(&mut out)
        } else {
            out.get_mut(container).and_then(Value::as_object_mut)
        };
        for p in parts {
            cur = cur.and_then(|c| c.get_mut(p)).and_then(Value::as_object_mut);
        }
        if let Some(c) = cur {
            c.remove(last);
        }
        if !container.is_empty() && out.get(container).and_then(Value::as_object).is_some_and(Map::is_empty) {
            out.remove(container);
            if let Some(Value::Array(schemas)) = out.get_mut("schemas") {
                schemas.retain(|s| s != container);
            }
        }
    }
    out
}

/// Operations for the attributes this mapping owns that the server takes
/// (`paths`).
pub fn attribute_ops(m: &Mapped, paths: &[&String], current: &Map<String, Value>) -> Vec<Value> {
    let mut ops = Vec::new();
    for path in paths {
        let path = path.as_str();
        let want = get_path(&m.attributes, path);
        let have = get_path(current, path).filter(|v| !v.is_null());
        match (want, have) {
            (Some(w), Some(h)) if same_value(h, w) => {}
            (Some(w), _) => ops.push(json!({"op": "replace", "path": path, "value": w})),
            (None, Some(_)) => ops.push(json!({"op": "remove", "path": path})),
            (None, None) => {}
        }
    }
    ops
}

/// The member ids a group resource lists.
pub fn current_members(current: &Map<String, Value>) -> BTreeSet<String> {
    current
        .get("members")
        .and_then(|m| m.as_array())
        .map(|items| {
            items
                .iter()
                .filter_map(|i| i.get("value").and_then(|v| v.as_str()).map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// (ids to add, ids to remove).
pub fn member_changes(current: &Map<String, Value>, wanted: &BTreeSet<String>) -> (Vec<String>, Vec<String>) {
    let have = current_members(current);
    (
        wanted.difference(&have).cloned().collect(),
        have.difference(wanted).cloned().collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::sync::mapping::Class;

    #[test]
    fn dropped_paths_leave_the_body_and_empty_extensions_leave_schemas() {
        let ext = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
        let attrs = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ext],
            "userName": "a", "name": {"givenName": "A", "familyName": "B"}, ext: {"organization": "gs"}});
        let out = without_paths(
            attrs.as_object().unwrap(),
            &[format!("{ext}:organization"), "name.givenName".into()],
        );
        assert_eq!(
            Value::Object(out),
            json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "a",
                "name": {"familyName": "B"}})
        );
    }

    #[test]
    fn only_differing_owned_attributes_become_ops() {
        let mut attributes = Map::new();
        attributes.insert("userName".into(), json!("a.b"));
        attributes.insert("name".into(), json!({"givenName": "A", "familyName": "B"}));
        attributes.insert(
            "emails".into(),
            json!([{"value": "a@x", "type": "work", "primary": true}]),
        );
        let m = Mapped {
            class: Class::User,
            external_id: "d:1".into(),
            name: "a.b".into(),
            attributes,
            paths: vec![
                "userName".into(),
                "name.givenName".into(),
                "name.familyName".into(),
                "emails".into(),
                "displayName".into(),
            ],
            members: None,
            school_groups: vec![],
            left_school_groups: vec![],
        };
        let current = json!({
            "id": "1", "userName": "a.b", "name": {"givenName": "Old", "familyName": "B"},
            "emails": [{"value": "a@x", "type": "work", "primary": true, "display": "x"}],
            "displayName": "gone", "title": "not ours"
        });
        let paths: Vec<&String> = m.paths.iter().collect();
        let ops = attribute_ops(&m, &paths, current.as_object().unwrap());
        assert_eq!(
            ops,
            vec![
                json!({"op": "replace", "path": "name.givenName", "value": "A"}),
                json!({"op": "remove", "path": "displayName"}),
            ]
        );
        let want: BTreeSet<String> = ["2", "3"].iter().map(|s| s.to_string()).collect();
        let cur = json!({"members": [{"value": "1"}, {"value": "2"}]});
        let (add, remove) = member_changes(cur.as_object().unwrap(), &want);
        assert_eq!((add, remove), (vec!["3".to_string()], vec!["1".to_string()]));
    }
}
