//! From mapped feed records to validated rows: every per-row check, each
//! error naming the line and saying what to do, and the digest of what the
//! row tells the directory.

use crate::engine::mapping::{Attr, MappedRecord};
use crate::model::{Role, validate_class_name, validate_record_uid};
use chrono::{Datelike, NaiveDate};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// A valid feed row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    pub line: u64,
    pub record_uid: String,
    pub firstname: String,
    pub lastname: String,
    pub email: Option<String>,
    pub birthday: Option<NaiveDate>,
    pub roles: BTreeSet<Role>,
    /// `None` when the feed has no classes column: the roles' contributions
    /// keep their classes.
    pub classes: Option<BTreeSet<String>>,
    /// `None` when the feed has no workgroups column: keep what the user has.
    pub workgroups: Option<BTreeSet<String>>,
    /// The record as received: column → value, JSON.
    pub raw: String,
    /// Digest of the mapped record (what the directory would be told).
    pub digest: String,
}

/// A rejected row.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RowError {
    pub line: u64,
    pub record_uid: Option<String>,
    pub message: String,
}

/// What every row of one run is checked against.
pub struct RowContext<'a> {
    pub school: &'a str,
    /// The run's roles (`--role`), empty when the feed's role column decides.
    pub run_roles: &'a BTreeSet<Role>,
    pub role_aliases: &'a BTreeMap<String, Role>,
}

fn split_cell(cell: &str) -> impl Iterator<Item = &str> {
    cell.split(',').map(str::trim).filter(|s| !s.is_empty())
}

fn check_name(what: &str, value: &str) -> Result<String, String> {
    if value.is_empty() {
        return Err(format!("{what} is empty; every row needs one"));
    }
    if value.len() > 100 && value.chars().count() > 100 || value.chars().any(char::is_control) {
        return Err(format!(
            "{what} '{value}' is longer than 100 characters or contains control characters"
        ));
    }
    Ok(value.to_string())
}

fn check_email(value: &str) -> Result<Option<String>, String> {
    if value.is_empty() {
        return Ok(None);
    }
    let ok = value.len() <= 254
        && !value
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == ',' || c == ';')
        && value.split_once('@').is_some_and(|(l, d)| {
            !l.is_empty() && d.contains('.') && !d.contains('@') && !d.starts_with('.') && !d.ends_with('.')
        });
    if ok {
        Ok(Some(value.to_string()))
    } else {
        Err(format!(
            "email '{value}' is not an e-mail address (expected name@domain.example); fix it or leave the field empty"
        ))
    }
}

/// ISO `YYYY-MM-DD` or German `DD.MM.YYYY`.
pub fn parse_date(value: &str) -> Option<NaiveDate> {
    let b = value.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        let s = b.get(r)?;
        s.iter()
            .all(u8::is_ascii_digit)
            .then(|| s.iter().fold(0, |n, d| n * 10 + u32::from(d - b'0')))
    };
    // The usual padded layouts without chrono's general format parser;
    // chrono for the rest (unpadded days and months).
    let fast = match (b.len(), b.get(4), b.get(2)) {
        (10, Some(b'-'), _) if b[7] == b'-' => {
            (|| NaiveDate::from_ymd_opt(num(0..4)? as i32, num(5..7)?, num(8..10)?))()
        }
        (10, _, Some(b'.')) if b[5] == b'.' => {
            (|| NaiveDate::from_ymd_opt(num(6..10)? as i32, num(3..5)?, num(0..2)?))()
        }
        _ => None,
    };
    fast.or_else(|| {
        NaiveDate::parse_from_str(value, "%Y-%m-%d")
            .or_else(|_| NaiveDate::parse_from_str(value, "%d.%m.%Y"))
            .ok()
    })
}

fn parse_role(value: &str, aliases: &BTreeMap<String, Role>) -> Result<Role, String> {
    if let Some(r) = Role::ALL.into_iter().find(|r| r.as_str() == value) {
        return Ok(r);
    }
    if let Some((_, r)) = aliases.iter().find(|(k, _)| k.trim().eq_ignore_ascii_case(value)) {
        return Ok(*r);
    }
    value
        .parse::<Role>()
        .map_err(|e| format!("{e}; or map the value in [import.roles]"))
}

fn groups(cell: &str, what: &str) -> Result<BTreeSet<String>, String> {
    split_cell(cell)
        .map(|c| {
            validate_class_name(c)
                .map(|_| c.to_string())
                .map_err(|e| format!("{what}: {e}"))
        })
        .collect()
}

/// Validates one mapped record. `raw` is the record as received (JSON).
pub fn parse_row(rec: &MappedRecord, raw: String, ctx: &RowContext<'_>) -> Result<Row, RowError> {
    let record_uid = rec.get(Attr::RecordUid).trim().to_string();
    let fail = |message: String| RowError {
        line: rec.line,
        record_uid: (!record_uid.is_empty()).then(|| record_uid.clone()),
        message,
    };
    if record_uid.is_empty() {
        return Err(fail(
            "record_uid is empty; every row needs the person's id from the source database".into(),
        ));
    }
    validate_record_uid(&record_uid).map_err(|e| fail(e.to_string()))?;
    let firstname = check_name("firstname", rec.get(Attr::Firstname).trim()).map_err(&fail)?;
    let lastname = check_name("lastname", rec.get(Attr::Lastname).trim()).map_err(&fail)?;
    let email = check_email(rec.get(Attr::Email).trim()).map_err(&fail)?;
    let birthday = match rec.get(Attr::Birthday).trim() {
        "" => None,
        b => Some(
            parse_date(b).ok_or_else(|| fail(format!("birthday '{b}' is not a date; use YYYY-MM-DD or DD.MM.YYYY")))?,
        ),
    };
    let cell_roles = split_cell(rec.get(Attr::Role))
        .map(|r| parse_role(r, ctx.role_aliases))
        .collect::<Result<BTreeSet<Role>, String>>()
        .map_err(&fail)?;
    let roles = if ctx.run_roles.is_empty() {
        if cell_roles.is_empty() {
            return Err(fail("role is empty; fill the role column or give --role".into()));
        }
        cell_roles
    } else if cell_roles.is_empty() {
        if ctx.run_roles.len() > 1 {
            return Err(fail(format!(
                "role is empty and this run imports several roles ({}); fill the role column",
                join(ctx.run_roles)
            )));
        }
        ctx.run_roles.clone()
    } else {
        if let Some(r) = cell_roles.iter().find(|r| !ctx.run_roles.contains(r)) {
            return Err(fail(format!(
                "role '{r}' is not among the roles this run imports ({}); import this row with --role {r}",
                join(ctx.run_roles)
            )));
        }
        cell_roles
    };
    let others: Vec<&str> = split_cell(rec.get(Attr::Schools))
        .filter(|s| !s.eq_ignore_ascii_case(ctx.school))
        .collect();
    if !others.is_empty() {
        return Err(fail(format!(
            "the row names other schools than '{}' being imported ({}); a school's feed speaks only for that \
             school: import the row with its own school's feed, or is this the right file?",
            ctx.school,
            others.join(", ")
        )));
    }
    let classes = if rec.given(Attr::Classes) {
        Some(groups(rec.get(Attr::Classes), "classes").map_err(&fail)?)
    } else {
        None
    };
    let workgroups = if rec.given(Attr::Workgroups) {
        Some(groups(rec.get(Attr::Workgroups), "workgroups").map_err(&fail)?)
    } else {
        None
    };
    let mut row = Row {
        line: rec.line,
        record_uid,
        firstname,
        lastname,
        email,
        birthday,
        roles,
        classes,
        workgroups,
        raw,
        digest: String::new(),
    };
    row.digest = digest(&row, ctx.school);
    Ok(row)
}

/// The record as received, as a JSON object in field order.
pub fn raw_json(names: &[String], fields: &[(usize, String)]) -> String {
    let mut raw = String::with_capacity(24 * fields.len() + 2);
    raw.push('{');
    for (i, (id, val)) in fields.iter().enumerate() {
        if i > 0 {
            raw.push(',');
        }
        json_str(&mut raw, names.get(*id).map(String::as_str).unwrap_or("?"));
        raw.push(':');
        json_str(&mut raw, val);
    }
    raw.push('}');
    raw
}

/// Appends `s` as a JSON string literal.
fn json_str(out: &mut String, s: &str) {
    if s.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\') {
        // Rare: let serde_json escape it (writing to a String cannot fail).
        out.push_str(&serde_json::to_string(s).unwrap_or_default());
    } else {
        out.push('"');
        out.push_str(s);
        out.push('"');
    }
}

fn join(roles: &BTreeSet<Role>) -> String {
    roles.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(", ")
}

/// A digest of everything the row tells the directory about the user in
/// this school. It detects change, not tampering (whoever writes the feed
/// decides its content anyway), so a fast 128-bit hash is enough.
fn digest(row: &Row, school: &str) -> String {
    // One buffer, hashed once: parts separated by a byte that cannot occur
    // in validated values.
    let mut buf = String::with_capacity(160);
    let mut part = |s: &str| {
        buf.push_str(s);
        buf.push('\u{1f}');
    };
    part(school);
    for r in &row.roles {
        part(r.as_str());
    }
    part("");
    part(&row.record_uid);
    part(&row.firstname);
    part(&row.lastname);
    part(row.email.as_deref().unwrap_or(""));
    let days = row.birthday.map(|b| b.num_days_from_ce()).unwrap_or(i32::MIN);
    part(&days.to_string());
    match &row.classes {
        Some(c) => c.iter().for_each(|c| part(c)),
        None => part("\u{1}"),
    }
    part("");
    match &row.workgroups {
        Some(w) => w.iter().for_each(|g| part(g)),
        None => part("\u{1}"),
    }
    let h = xxhash_rust::xxh3::xxh3_128(buf.as_bytes());
    let mut out = String::with_capacity(32);
    for b in h.to_be_bytes() {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        out.push(HEX[usize::from(b >> 4)] as char);
        out.push(HEX[usize::from(b & 15)] as char);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(line: u64, v: &[&str]) -> MappedRecord {
        let mut values: [Option<String>; 9] = Default::default();
        for (i, x) in v.iter().enumerate() {
            values[i] = Some(x.to_string());
        }
        MappedRecord { line, index: 1, values }
    }

    #[test]
    fn rows_validate_with_line_numbers() {
        let roles: BTreeSet<Role> = [Role::Student].into();
        let aliases = BTreeMap::new();
        let ctx = RowContext {
            school: "s",
            run_roles: &roles,
            role_aliases: &aliases,
        };
        // record_uid, firstname, lastname, email, birthday, classes, workgroups, role, schools
        let ok = parse_row(
            &rec(2, &["1", "Jörg", "Müller", "", "01.02.2010", "5a, 5b"]),
            "{}".into(),
            &ctx,
        )
        .unwrap();
        assert_eq!(ok.classes.as_ref().map(BTreeSet::len), Some(2));
        assert_eq!(ok.birthday, NaiveDate::from_ymd_opt(2010, 2, 1));
        assert_eq!(ok.roles, roles);
        assert_eq!(ok.workgroups, None);
        for (vals, needle) in [
            (["", "a", "b", "", "", "", "", ""], "record_uid is empty"),
            (["1", "", "b", "", "", "", "", ""], "firstname is empty"),
            (["1", "a", "b", "", "31.02.2010", "", "", ""], "not a date"),
            (["1", "a", "b", "", "", "", "", "teacher"], "not among the roles"),
            (["1", "a", "b", "", "", "", "", "pupil"], "unknown role"),
            (["1", "a", "b", "", "", "a/b", "", ""], "classes"),
            (["1", "a", "b", "nope", "", "", "", ""], "not an e-mail"),
        ] {
            let e = parse_row(&rec(9, &vals), "{}".into(), &ctx).unwrap_err();
            assert_eq!(e.line, 9);
            assert!(e.message.contains(needle), "{} !~ {needle}", e.message);
        }
    }

    #[test]
    fn dates() {
        let d = |s: &str| parse_date(s).map(|d| d.to_string());
        assert_eq!(d("2012-03-04").as_deref(), Some("2012-03-04"));
        assert_eq!(d("04.03.2012").as_deref(), Some("2012-03-04"));
        assert_eq!(d("4.3.2012").as_deref(), Some("2012-03-04"));
        assert_eq!(d("2012-3-4").as_deref(), Some("2012-03-04"));
        for bad in ["2012-13-01", "31.02.2012", "2012/03/04", "", "yesterday", "2012-03-0x"] {
            assert_eq!(d(bad), None, "{bad}");
        }
    }

    #[test]
    fn raw_json_keeps_field_order() {
        let names = vec!["b".to_string(), "a".to_string()];
        assert_eq!(
            raw_json(&names, &[(0, "1".into()), (1, "x\"y".into())]),
            r#"{"b":"1","a":"x\"y"}"#
        );
    }
}
