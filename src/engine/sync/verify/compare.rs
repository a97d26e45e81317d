//! The actual side of verify, object by object as the target lists them:
//! ownership by external id, the filter, and the field-by-field comparison
//! with what is expected (a value counts as equal when the target holds
//! everything we send, as the sender decides when to update).

use super::expected::{Expected, RefView};
use super::{Counts, Different, FieldDifference, Missing, ObjectKind, Unexpected, VerifyKind, VerifyReport};
use crate::engine::sync::filter::Filter;
use crate::engine::sync::mapping::{Class, Mapped, Mapper, get_path};
use crate::engine::sync::target::RemoteObject;
use crate::engine::sync::target::scim::same_value;
use crate::model::ObjectRef;
use serde_json::{Value, json};
use std::collections::{BTreeSet, HashMap, HashSet};

/// The attribute name group members are compared under.
pub const FIELDS_MEMBERS: &str = "members";

pub(super) struct Comparison<'a> {
    expected: &'a Expected,
    mapper: &'a Mapper,
    kind: VerifyKind,
    filter: Option<&'a Filter>,
    /// Target user id → external id, to read members listed by id.
    user_ids: HashMap<String, String>,
    seen: HashSet<String>,
    actual: u64,
    foreign: u64,
    unexpected: Vec<Unexpected>,
    different: Vec<Different>,
}

/// The member values a group resource lists: plain strings (external ids,
/// the embedded mirror) or `{"value": id}` objects (SCIM ids, or external
/// ids where a target lists those).
fn listed_members(resource: &Value) -> Vec<&str> {
    resource
        .get(FIELDS_MEMBERS)
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(|m| m.as_str().or_else(|| m.get("value").and_then(Value::as_str)))
                .collect()
        })
        .unwrap_or_default()
}

impl<'a> Comparison<'a> {
    pub fn new(expected: &'a Expected, mapper: &'a Mapper, kind: VerifyKind, filter: Option<&'a Filter>) -> Self {
        Comparison {
            expected,
            mapper,
            kind,
            filter,
            user_ids: HashMap::new(),
            seen: HashSet::new(),
            actual: 0,
            foreign: 0,
            unexpected: Vec::new(),
            different: Vec::new(),
        }
    }

    fn selected(&self, v: &RefView<'_>) -> bool {
        self.filter.is_none_or(|f| f.matches(v))
    }

    /// One listed object.
    pub fn add(&mut self, class: Class, o: RemoteObject) {
        match class {
            Class::User => self.add_user(o),
            Class::Group => self.add_group(o),
        }
    }

    fn add_user(&mut self, o: RemoteObject) {
        let Some(ext) = o.external_id.clone() else {
            self.foreign += 1;
            return;
        };
        if self.kind.groups() {
            self.user_ids.insert(o.id.clone(), ext.clone());
        }
        if !self.kind.includes(ObjectKind::User) {
            return;
        }
        let owned = ext
            .split_once(':')
            .filter(|(s, r)| !r.is_empty() && self.expected.sources.contains(*s));
        let Some((source_uid, record_uid)) = owned else {
            self.foreign += 1;
            return;
        };
        let object = ObjectRef::User {
            source_uid: source_uid.to_string(),
            record_uid: record_uid.to_string(),
        }
        .to_string();
        if let Some(e) = self.expected.objects.get(&ext) {
            self.actual += 1;
            if self.seen.insert(ext.clone()) {
                let fields = self.fields(&e.mapped, &o.resource);
                self.push_different(ObjectKind::User, e.object.clone(), &e.mapped, &o, fields);
            }
            return;
        }
        match self.expected.others.get(&ext) {
            Some(other) if !other.selected => {}
            Some(other) => {
                self.actual += 1;
                match &other.deactivated {
                    Some(m) => {
                        let fields = self.fields(m, &o.resource);
                        self.push_different(ObjectKind::User, object, m, &o, fields);
                    }
                    None => self.push_unexpected(ObjectKind::User, object, ext, &o),
                }
            }
            None => {
                let username = o.resource.get("userName").and_then(Value::as_str);
                let view = RefView::RemoteUser {
                    source_uid,
                    record_uid,
                    external_id: &ext,
                    username,
                };
                if self.selected(&view) {
                    self.actual += 1;
                    self.push_unexpected(ObjectKind::User, object, ext.clone(), &o);
                }
            }
        }
    }

    fn add_group(&mut self, o: RemoteObject) {
        let parsed = o.external_id.as_deref().map(str::parse::<ObjectRef>);
        let Some(Ok(object)) = parsed else {
            self.foreign += 1;
            return;
        };
        if matches!(object, ObjectRef::User { .. }) {
            self.foreign += 1;
            return;
        }
        let kind = ObjectKind::of(&object);
        // School groups are not managed when the mapping has none.
        if !self.kind.includes(kind) || (kind == ObjectKind::School && !self.mapper.school_groups()) {
            return;
        }
        if !self.selected(&RefView::Object(&object)) {
            return;
        }
        self.actual += 1;
        let ext = object.to_string();
        match self.expected.objects.get(&ext) {
            Some(e) => {
                if self.seen.insert(ext) {
                    let fields = self.fields(&e.mapped, &o.resource);
                    self.push_different(kind, e.object.clone(), &e.mapped, &o, fields);
                }
            }
            None => self.push_unexpected(kind, ext.clone(), ext, &o),
        }
    }

    fn push_unexpected(&mut self, kind: ObjectKind, object: String, external_id: String, o: &RemoteObject) {
        let name = ["userName", "displayName"]
            .iter()
            .find_map(|a| o.resource.get(*a).and_then(Value::as_str))
            .map(str::to_string);
        self.unexpected.push(Unexpected {
            kind,
            object,
            external_id,
            id: o.id.clone(),
            name,
        });
    }

    fn push_different(
        &mut self,
        kind: ObjectKind,
        object: String,
        m: &Mapped,
        o: &RemoteObject,
        fields: Vec<FieldDifference>,
    ) {
        if fields.is_empty() {
            return;
        }
        self.different.push(Different {
            kind,
            object,
            external_id: m.external_id.clone(),
            id: o.id.clone(),
            name: m.name.clone(),
            fields,
        });
    }

    /// The owned attributes (and members) that differ.
    fn fields(&self, m: &Mapped, resource: &Value) -> Vec<FieldDifference> {
        field_differences(m, resource, &self.user_ids)
    }

    /// The report (authority, target and timing filled in by the caller).
    pub fn finish(self) -> VerifyReport {
        let mut missing: Vec<Missing> = self
            .expected
            .objects
            .iter()
            .filter(|(ext, _)| !self.seen.contains(*ext))
            .map(|(ext, e)| Missing {
                kind: e.kind,
                object: e.object.clone(),
                external_id: ext.clone(),
                name: e.mapped.name.clone(),
            })
            .collect();
        missing.sort_by(|a, b| (a.kind, &a.object).cmp(&(b.kind, &b.object)));
        let mut unexpected = self.unexpected;
        unexpected.sort_by(|a, b| (a.kind, &a.object, &a.id).cmp(&(b.kind, &b.object, &b.id)));
        let mut different = self.different;
        different.sort_by(|a, b| (a.kind, &a.object).cmp(&(b.kind, &b.object)));
        let counts = Counts {
            missing: missing.len() as u64,
            unexpected: unexpected.len() as u64,
            different: different.len() as u64,
        };
        VerifyReport {
            authority: String::new(),
            target: "",
            kind: self.kind,
            filter: None,
            clean: counts.missing + counts.unexpected + counts.different == 0,
            expected: self.expected.objects.len() as u64,
            actual: self.actual,
            foreign: self.foreign,
            counts,
            missing,
            unexpected,
            different,
            fixed: None,
            seconds: 0.0,
        }
    }
}

/// The attributes a mapping owns (and a group's members) that differ between
/// what would be sent (`m`) and what the target holds (`resource`). Members
/// listed by the target's own ids translate through `user_ids`.
pub(crate) fn field_differences(
    m: &Mapped,
    resource: &Value,
    user_ids: &HashMap<String, String>,
) -> Vec<FieldDifference> {
    let mut out = Vec::new();
    let empty = serde_json::Map::new();
    let current = resource.as_object().unwrap_or(&empty);
    for path in &m.paths {
        let want = get_path(&m.attributes, path);
        let have = get_path(current, path).filter(|v| !v.is_null());
        let same = match (want, have) {
            (Some(w), Some(h)) => same_value(h, w),
            (None, None) => true,
            _ => false,
        };
        if !same {
            out.push(FieldDifference {
                attribute: path.clone(),
                expected: want.cloned().unwrap_or(Value::Null),
                actual: have.cloned().unwrap_or(Value::Null),
            });
        }
    }
    if let Some(wanted) = &m.members {
        let have: BTreeSet<String> = listed_members(resource)
            .into_iter()
            .map(|v| user_ids.get(v).cloned().unwrap_or_else(|| v.to_string()))
            .collect();
        let want: BTreeSet<&str> = wanted.iter().map(String::as_str).collect();
        let lacking: Vec<&str> = want.iter().filter(|w| !have.contains(**w)).copied().collect();
        let extra: Vec<&String> = have.iter().filter(|h| !want.contains(h.as_str())).collect();
        if !lacking.is_empty() || !extra.is_empty() {
            out.push(FieldDifference {
                attribute: FIELDS_MEMBERS.into(),
                expected: json!(lacking),
                actual: json!(extra),
            });
        }
    }
    out
}
