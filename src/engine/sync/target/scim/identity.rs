//! Identity is verified, never assumed. A server that ignores a filter
//! answers a lookup with someone else's account; writing to it would
//! overwrite an account that is not ours. So every resource a lookup
//! returns must carry what was asked for:
//!
//! * by `externalId`: exactly that external id;
//! * by `userName` / `displayName` (the takeover after a 409 on create):
//!   that name (userName compared without case, RFC 7643 §4.1.1), and an
//!   account we may take over — one with no external id, or with an
//!   external id of ours (a user key of the same source, a `school:`,
//!   `class:` or `workgroup:` group). An account with a foreign external id
//!   is never taken over;
//! * member lookups (`externalId eq … or …`): only the external ids asked
//!   for, so a group's members are only ever our own users' ids.
//!
//! Anything else is a permanent error that names the server's answer.

use super::super::TargetError;
use crate::engine::sync::mapping::Class;
use crate::model::ObjectRef;
use serde_json::Value;

/// At most this much of a server's answer is quoted in a message.
const QUOTE: usize = 200;

pub fn str_field<'a>(resource: &'a Value, name: &str) -> Option<&'a str> {
    resource.get(name).and_then(Value::as_str)
}

/// A short description of a resource for messages: id, externalId and name.
pub fn describe(resource: &Value) -> String {
    let mut parts = Vec::new();
    for key in ["id", "externalId", "userName", "displayName"] {
        if let Some(v) = resource.get(key) {
            let text = v.to_string();
            let text: String = text.chars().take(QUOTE).collect();
            parts.push(format!("{key} {text}"));
        }
    }
    if parts.is_empty() {
        let text: String = resource.to_string().chars().take(QUOTE).collect();
        return format!("a resource without id, externalId or name: {text}");
    }
    parts.join(", ")
}

/// Whether `external_id` is one rollcall manages for this class. Users:
/// `SOURCE:RECORD` of the same source as `ours` (the external id being
/// written); groups: `school:…`, `class:…`, `workgroup:…`.
pub fn owned(class: Class, external_id: &str, ours: &str) -> bool {
    match class {
        Class::User => {
            let source = |e: &str| e.split_once(':').map(|(s, r)| (s.to_string(), r.is_empty()));
            match (source(external_id), source(ours)) {
                (Some((a, false)), Some((b, _))) => a == b,
                _ => false,
            }
        }
        Class::Group => external_id
            .parse::<ObjectRef>()
            .is_ok_and(|o| !matches!(o, ObjectRef::User { .. })),
    }
}

/// The one resource a lookup by external id found (or none). `what` is
/// the request (`GET /Users?filter=externalId eq "…"`) for messages.
pub fn by_external_id(what: &str, external_id: &str, found: Vec<Value>) -> Result<Option<Value>, TargetError> {
    if let Some(other) = found.iter().find(|r| str_field(r, "externalId") != Some(external_id)) {
        return Err(TargetError::permanent(format!(
            "{what} answered a resource that does not carry externalId {external_id:?} ({}): the server \
             does not apply the filter; nothing was written to it. Fix the server (or its filter support) \
             before syncing to it",
            describe(other)
        )));
    }
    match found.len() {
        0 => Ok(None),
        1 => Ok(found.into_iter().next()),
        n => Err(TargetError::permanent(format!(
            "{n} resources carry externalId {external_id:?}: the target holds duplicates; remove all but one"
        ))),
    }
}

fn same_name(class: Class, a: &str, b: &str) -> bool {
    match class {
        // userName is caseExact = false (RFC 7643 §4.1.1).
        Class::User => a.to_lowercase() == b.to_lowercase(),
        Class::Group => a == b,
    }
}

/// The name attribute a takeover looks for.
pub fn name_attribute(class: Class) -> &'static str {
    match class {
        Class::User => "userName",
        Class::Group => "displayName",
    }
}

/// The account a takeover by name may claim for `external_id`, from what a
/// lookup by name found: it must carry the name, and hold no external id or
/// one of ours. `None`: no account holds the name.
pub fn takeover(
    what: &str,
    class: Class,
    name: &str,
    external_id: &str,
    found: Vec<Value>,
) -> Result<Option<Value>, TargetError> {
    let attr = name_attribute(class);
    if let Some(other) = found
        .iter()
        .find(|r| !str_field(r, attr).is_some_and(|n| same_name(class, n, name)))
    {
        return Err(TargetError::permanent(format!(
            "{what} answered a resource that does not carry {attr} {name:?} ({}): the server does not \
             apply the filter; nothing was written to it",
            describe(other)
        )));
    }
    let mut found = found;
    if found.len() > 1 {
        return Err(TargetError::permanent(format!(
            "{} resources carry {attr} {name:?}; remove all but one on the target",
            found.len()
        )));
    }
    let Some(account) = found.pop() else { return Ok(None) };
    claimable(class, name, external_id, &account)?;
    Ok(Some(account))
}

/// Whether `account` (holding our name) may be taken over for `external_id`.
pub fn claimable(class: Class, name: &str, external_id: &str, account: &Value) -> Result<(), TargetError> {
    match str_field(account, "externalId") {
        None | Some("") => Ok(()),
        Some(e) if e == external_id || owned(class, e, external_id) => Ok(()),
        Some(e) => Err(TargetError::permanent(format!(
            "{} {name:?} is held on the target by an account that is not ours (externalId {e:?}, {}): \
             rollcall never takes over an account with a foreign externalId; rename or remove that \
             account on the target, or clear its externalId",
            name_attribute(class),
            describe(account)
        ))),
    }
}

/// The resources of a member lookup: each must carry one of the external
/// ids asked for.
pub fn members<'a>(
    what: &str,
    asked: &[String],
    found: impl IntoIterator<Item = &'a Value>,
) -> Result<(), TargetError> {
    for r in found {
        let ok = str_field(r, "externalId").is_some_and(|e| asked.iter().any(|a| a == e));
        if !ok {
            return Err(TargetError::permanent(format!(
                "{what} answered a resource that is none of the users asked for ({}): the server does not \
                 apply the filter; the group was not written",
                describe(r)
            )));
        }
    }
    Ok(())
}

/// Checks a write's answer: the resource returned must be the one written
/// (same id where we know it, same external id where it says one).
pub fn answered(what: &str, id: Option<&str>, external_id: &str, resource: &Value) -> Result<(), TargetError> {
    if !resource.is_object() {
        return Err(TargetError::transient(format!(
            "{what}: the answer is not a resource ({}); cannot tell what the server did; will look again",
            resource.to_string().chars().take(QUOTE).collect::<String>()
        )));
    }
    if let (Some(want), Some(got)) = (id, str_field(resource, "id"))
        && want != got
    {
        return Err(TargetError::permanent(format!(
            "{what} answered another resource ({}): the server's answer cannot be trusted",
            describe(resource)
        )));
    }
    match str_field(resource, "externalId") {
        Some(e) if e != external_id => Err(TargetError::permanent(format!(
            "{what} answered a resource with externalId {e:?} instead of {external_id:?} ({})",
            describe(resource)
        ))),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_lookup_must_return_the_external_id_asked_for() {
        let asked = "district:1";
        let what = "GET /Users";
        assert_eq!(by_external_id(what, asked, vec![]).unwrap(), None);
        let ours = json!({"id": "1", "externalId": "district:1"});
        assert_eq!(by_external_id(what, asked, vec![ours.clone()]).unwrap(), Some(ours));
        let victim = json!({"id": "victim", "externalId": "other:victim", "userName": "v"});
        let e = by_external_id(what, asked, vec![victim]).unwrap_err();
        assert!(e.message.contains("other:victim") && e.message.contains("does not apply the filter"));
        let none = json!({"id": "x", "userName": "x"});
        assert!(by_external_id(what, asked, vec![none]).is_err());
    }

    #[test]
    fn takeovers_claim_only_accounts_without_a_foreign_external_id() {
        let t = |r: Value| takeover("GET", Class::User, "a.alt", "district:5", vec![r]);
        assert!(t(json!({"id": "1", "userName": "A.Alt"})).unwrap().is_some());
        assert!(t(json!({"id": "1", "userName": "a.alt", "externalId": "district:77"})).is_ok());
        let e = t(json!({"id": "1", "userName": "a.alt", "externalId": "other:victim"})).unwrap_err();
        assert!(e.message.contains("not ours"), "{}", e.message);
        let e = t(json!({"id": "1", "userName": "b.bauer"})).unwrap_err();
        assert!(e.message.contains("does not apply the filter"), "{}", e.message);
        assert!(owned(Class::Group, "class:gs:5a", "school:gs"));
        assert!(!owned(Class::Group, "district:1", "school:gs"));
        assert!(!owned(Class::User, "other:1", "district:2"));
    }
}
