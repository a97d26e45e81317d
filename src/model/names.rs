//! Validation of the identifiers that end up in DNs, file names, queue items
//! and remote external ids.

use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{what} '{value}' is not valid: {reason}")]
pub struct NameError {
    pub what: &'static str,
    pub value: String,
    pub reason: &'static str,
}

fn err(what: &'static str, value: &str, reason: &'static str) -> NameError {
    NameError {
        what,
        value: value.to_string(),
        reason,
    }
}

/// School names: 1–64 chars of `[A-Za-z0-9_-]`, starting with a letter or digit.
pub fn validate_school_name(name: &str) -> Result<(), NameError> {
    const REASON: &str = "use 1-64 letters, digits, '-' or '_', starting with a letter or digit";
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(err("school name", name, REASON))
    }
}

/// Source uids: 1–64 chars, no ':' (it separates source and record in external ids).
pub fn validate_source_uid(uid: &str) -> Result<(), NameError> {
    if uid.is_empty() || uid.len() > 64 {
        return Err(err("source_uid", uid, "must be 1-64 characters"));
    }
    if uid.chars().any(|c| c == ':' || c.is_control() || c.is_whitespace()) {
        return Err(err(
            "source_uid",
            uid,
            "must not contain ':', spaces or control characters",
        ));
    }
    Ok(())
}

/// Record uids: 1–256 chars without control characters or surrounding space.
pub fn validate_record_uid(uid: &str) -> Result<(), NameError> {
    if uid.is_empty() {
        return Err(err("record_uid", uid, "is empty"));
    }
    if uid.len() > 256 {
        return Err(err("record_uid", uid, "is longer than 256 characters"));
    }
    if uid.chars().any(char::is_control) || uid.trim() != uid {
        return Err(err(
            "record_uid",
            uid,
            "contains control characters or surrounding spaces",
        ));
    }
    Ok(())
}

/// Class and workgroup names: 1–64 chars, no control characters, no ',' (the
/// in-cell delimiter) and no '/' or '\' (they end up in file names and DNs).
pub fn validate_class_name(name: &str) -> Result<(), NameError> {
    if name.is_empty() || name.chars().count() > 64 {
        return Err(err("group name", name, "must be 1-64 characters"));
    }
    if name
        .chars()
        .any(|c| c.is_control() || matches!(c, ',' | '/' | '\\' | '"' | '+' | '<' | '>' | ';' | '=' | '#'))
    {
        return Err(err(
            "group name",
            name,
            "must not contain control characters or any of , / \\ \" + < > ; = #",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn school_names() {
        assert!(validate_school_name("gs-mitte_2").is_ok());
        assert!(validate_school_name("").is_err());
        assert!(validate_school_name("-x").is_err());
        assert!(validate_school_name("a b").is_err());
        assert!(validate_school_name("../etc").is_err());
    }

    #[test]
    fn record_and_source_uids() {
        assert!(validate_record_uid("abc:1").is_ok());
        assert!(validate_record_uid(" a").is_err());
        assert!(validate_source_uid("district").is_ok());
        assert!(validate_source_uid("a:b").is_err());
    }

    #[test]
    fn class_names() {
        assert!(validate_class_name("5a").is_ok());
        assert!(validate_class_name("Mathe AG").is_ok());
        assert!(validate_class_name("a/b").is_err());
    }
}
