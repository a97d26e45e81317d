//! Parsing scheme strings into templates: fields, slices, literals, the
//! `<:umlauts>` modifier and counters, with errors that point at a column.

use super::{
    ANGLE_MODIFIERS, Counter, EMAIL_BRACKETS, EMAIL_FIELDS, ParseProblem, SchemeFields, SchemeKind, USERNAME_BRACKETS,
    USERNAME_FIELDS,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Field {
    Firstname,
    Lastname,
    RecordUid,
    Username,
}

impl Field {
    pub(super) fn name(self) -> &'static str {
        match self {
            Field::Firstname => "firstname",
            Field::Lastname => "lastname",
            Field::RecordUid => "record_uid",
            Field::Username => "username",
        }
    }

    pub(super) fn value<'a>(self, fields: &SchemeFields<'a>) -> Option<&'a str> {
        match self {
            Field::Firstname => Some(fields.firstname),
            Field::Lastname => Some(fields.lastname),
            Field::RecordUid => Some(fields.record_uid),
            Field::Username => fields.username,
        }
    }
}

/// A python-like slice over characters, clamped to the value's length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Slice {
    /// `[n]`: one character (none when out of range).
    Index(i64),
    /// `[n:m]`, `[:m]`, `[n:]`, `[:]`.
    Range(Option<i64>, Option<i64>),
}

impl Slice {
    pub(super) fn apply(self, value: &str) -> String {
        let chars: Vec<char> = value.chars().collect();
        let len = i64::try_from(chars.len()).unwrap_or(i64::MAX);
        let from_end = |i: i64| if i < 0 { i.saturating_add(len) } else { i };
        let clamp = |i: i64| usize::try_from(from_end(i).clamp(0, len)).unwrap_or(0);
        let (start, end) = match self {
            Slice::Index(i) => {
                let i = from_end(i);
                if i < 0 || i >= len {
                    return String::new();
                }
                let i = clamp(i);
                (i, i + 1)
            }
            Slice::Range(start, end) => (start.map_or(0, clamp), end.map_or(chars.len(), clamp)),
        };
        chars.get(start..end).map(String::from_iter).unwrap_or_default()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Part {
    Literal {
        text: String,
        column: usize,
    },
    Field {
        field: Field,
        slice: Option<Slice>,
        column: usize,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Template {
    pub(super) parts: Vec<Part>,
    pub(super) umlauts: bool,
    pub(super) counter: Counter,
}

impl Template {
    pub(super) fn has_field(&self) -> bool {
        self.parts.iter().any(|part| matches!(part, Part::Field { .. }))
    }
}

/// The index of the `close` character that ends the bracket opened at `open`, or None when
/// the end of the scheme or another bracket character comes first.
pub(super) fn find_close(chars: &[char], open: usize, close: char) -> Option<usize> {
    for (index, &c) in chars.iter().enumerate().skip(open + 1) {
        if c == close {
            return Some(index);
        }
        if matches!(c, '<' | '>' | '[' | ']') {
            return None;
        }
    }
    None
}

pub(super) fn parse_field(name: &str, kind: SchemeKind, column: usize) -> Result<Field, ParseProblem> {
    let field = [Field::Firstname, Field::Lastname, Field::RecordUid, Field::Username]
        .into_iter()
        .find(|field| field.name().eq_ignore_ascii_case(name));
    match (field, kind) {
        (Some(Field::Username), SchemeKind::Username) => Err(ParseProblem::UsernameField(column)),
        (Some(field), _) => Ok(field),
        (None, _) => Err(ParseProblem::UnknownField {
            name: name.to_string(),
            expected: match kind {
                SchemeKind::Username => USERNAME_FIELDS,
                SchemeKind::Email => EMAIL_FIELDS,
            },
            column,
        }),
    }
}

pub(super) fn parse_counter(text: &str) -> Option<Counter> {
    let text = text.trim();
    if text.eq_ignore_ascii_case("COUNTER2") {
        Some(Counter::Counter2)
    } else if text.eq_ignore_ascii_case("ALWAYSCOUNTER") {
        Some(Counter::Always)
    } else {
        None
    }
}

/// Whether bracket content is meant as a slice (digits, ':', '-' and spaces only).
pub(super) fn looks_like_slice(text: &str) -> bool {
    text.chars().all(|c| c.is_ascii_digit() || matches!(c, ':' | '-' | ' '))
}

pub(super) fn parse_slice(text: &str) -> Option<Slice> {
    let bound = |s: &str| -> Option<Option<i64>> {
        let s = s.trim();
        if s.is_empty() {
            Some(None)
        } else {
            s.parse().ok().map(Some)
        }
    };
    match text.split(':').collect::<Vec<_>>().as_slice() {
        [index] => bound(index)?.map(Slice::Index),
        [start, end] => Some(Slice::Range(bound(start)?, bound(end)?)),
        _ => None,
    }
}

pub(super) fn parse_template(scheme: &str, kind: SchemeKind) -> Result<Template, ParseProblem> {
    let chars: Vec<char> = scheme.chars().collect();
    if chars.is_empty() {
        return Err(ParseProblem::Empty);
    }
    let mut parts: Vec<Part> = Vec::new();
    let mut umlauts = false;
    // The counter found so far, its text and column.
    let mut counter: Option<(Counter, String, usize)> = None;
    // Whether the previous element was a field (a slice may follow) or literal text.
    let mut after_field = false;
    let mut in_literal = false;
    let mut i = 0;
    while i < chars.len() {
        let column = i + 1;
        if let Some((_, text, column)) = counter {
            return Err(ParseProblem::CounterNotAtEnd { text, column });
        }
        let was_after_field = std::mem::replace(&mut after_field, false);
        match chars[i] {
            '<' => {
                in_literal = false;
                let close = find_close(&chars, i, '>').ok_or(ParseProblem::UnclosedAngle(column))?;
                let name: String = chars[i + 1..close].iter().collect();
                i = close + 1;
                if name.is_empty() {
                    return Err(ParseProblem::EmptyField(column));
                }
                if let Some(modifier) = name.strip_prefix(':') {
                    if !modifier.eq_ignore_ascii_case("umlauts") {
                        return Err(ParseProblem::UnknownModifier {
                            text: format!("<{name}>"),
                            expected: ANGLE_MODIFIERS,
                            column,
                        });
                    }
                    umlauts = true;
                    continue;
                }
                let field = parse_field(&name, kind, column)?;
                parts.push(Part::Field {
                    field,
                    slice: None,
                    column,
                });
                after_field = true;
            }
            '[' => {
                in_literal = false;
                let close = find_close(&chars, i, ']').ok_or(ParseProblem::UnclosedBracket(column))?;
                let text: String = chars[i + 1..close].iter().collect();
                i = close + 1;
                if looks_like_slice(&text) {
                    let parsed = parse_slice(&text).ok_or_else(|| ParseProblem::BadSlice {
                        text: text.clone(),
                        column,
                    })?;
                    match parts.last_mut() {
                        Some(Part::Field { slice, .. }) if was_after_field && slice.is_none() => {
                            *slice = Some(parsed);
                        }
                        _ => return Err(ParseProblem::SliceWithoutField { text, column }),
                    }
                } else if let Some(found) = parse_counter(&text) {
                    if kind == SchemeKind::Email {
                        return Err(ParseProblem::CounterInEmail { text, column });
                    }
                    counter = Some((found, text, column));
                } else {
                    return Err(ParseProblem::UnknownModifier {
                        text: format!("[{text}]"),
                        expected: match kind {
                            SchemeKind::Username => USERNAME_BRACKETS,
                            SchemeKind::Email => EMAIL_BRACKETS,
                        },
                        column,
                    });
                }
            }
            ch @ ('>' | ']') => return Err(ParseProblem::Unexpected { ch, column }),
            ch => {
                match parts.last_mut() {
                    Some(Part::Literal { text, .. }) if in_literal => text.push(ch),
                    _ => parts.push(Part::Literal {
                        text: ch.to_string(),
                        column,
                    }),
                }
                in_literal = true;
                i += 1;
            }
        }
    }
    Ok(Template {
        parts,
        umlauts,
        counter: counter.map_or(Counter::None, |(counter, _, _)| counter),
    })
}
