//! Username and e-mail schemes: parsing scheme strings such as
//! `<:umlauts><firstname>[0].<lastname>[COUNTER2]`, rendering them for one
//! person, and allocating usernames with persistent counters so that a name
//! once issued is never handed to someone else. What has been issued is
//! answered by the caller through [`NameRegistry`].

use std::fmt;

use thiserror::Error;
use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

/// The username scheme used when the configuration names none.
pub const DEFAULT_USERNAME_SCHEME: &str = "<:umlauts><firstname>[0].<lastname>[COUNTER2]";
/// The maximum username length (counter included) used when the configuration names none.
pub const DEFAULT_MAX_LENGTH: usize = 20;
/// The smallest maximum length [`UsernameScheme::parse`] accepts.
pub const MIN_MAX_LENGTH: usize = 4;
/// The longest e-mail address [`EmailScheme::render`] produces.
pub const MAX_EMAIL_LENGTH: usize = 254;
/// How many counter values [`UsernameScheme::allocate`] tries before giving up.
const MAX_TRIES: u32 = 1_000_000;

const USERNAME_FIELDS: &str = "<firstname>, <lastname>, <record_uid>";
const EMAIL_FIELDS: &str = "<firstname>, <lastname>, <record_uid>, <username>";
const ANGLE_MODIFIERS: &str = "<:umlauts>";
const USERNAME_BRACKETS: &str =
    "a slice like [0] or [0:3] after a field, or [COUNTER2] or [ALWAYSCOUNTER] at the end";
const EMAIL_BRACKETS: &str = "a slice like [0] or [0:3] after a field";

/// Which kind of scheme an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SchemeKind {
    Username,
    Email,
}

impl fmt::Display for SchemeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SchemeKind::Username => "username",
            SchemeKind::Email => "e-mail",
        })
    }
}

/// What is wrong with a scheme string. Columns count characters from 1.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ParseProblem {
    #[error("the scheme is empty")]
    Empty,
    #[error("maximum length {0} is too small (at least {MIN_MAX_LENGTH})")]
    MaxLengthTooSmall(usize),
    #[error("unclosed '<' at column {0}")]
    UnclosedAngle(usize),
    #[error("unclosed '[' at column {0}")]
    UnclosedBracket(usize),
    #[error("unexpected '{ch}' at column {column}")]
    Unexpected { ch: char, column: usize },
    #[error("empty field name <> at column {0}")]
    EmptyField(usize),
    #[error("unknown field <{name}> (expected {expected}) at column {column}")]
    UnknownField {
        name: String,
        expected: &'static str,
        column: usize,
    },
    #[error(
        "field <username> can only be used in e-mail schemes (expected {USERNAME_FIELDS}) at column {0}"
    )]
    UsernameField(usize),
    #[error("unknown modifier {text} (expected {expected}) at column {column}")]
    UnknownModifier {
        text: String,
        expected: &'static str,
        column: usize,
    },
    #[error("invalid slice [{text}] (expected [n], [n:m], [:m] or [n:]) at column {column}")]
    BadSlice { text: String, column: usize },
    #[error("slice [{text}] must directly follow a field at column {column}")]
    SliceWithoutField { text: String, column: usize },
    #[error("counter [{text}] must be at the end of the scheme (column {column})")]
    CounterNotAtEnd { text: String, column: usize },
    #[error("counters are not allowed in e-mail schemes: [{text}] at column {column}")]
    CounterInEmail { text: String, column: usize },
    #[error("the scheme uses no field, so every user would get the same name")]
    NoField,
    #[error("missing '@' (an e-mail scheme needs exactly one)")]
    MissingAt,
    #[error("second '@' at column {0} (an e-mail scheme needs exactly one)")]
    ExtraAt(usize),
    #[error("field <{name}> after '@' at column {column} (the domain must be literal text)")]
    FieldInDomain { name: &'static str, column: usize },
    #[error("invalid domain \"{domain}\": {reason}")]
    BadDomain {
        domain: String,
        reason: &'static str,
    },
}

/// Everything that can go wrong parsing a scheme or producing a name from it.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SchemeError {
    #[error("{kind} scheme \"{scheme}\": {problem}")]
    Parse {
        kind: SchemeKind,
        scheme: String,
        problem: ParseProblem,
    },
    #[error(
        "{kind} scheme \"{scheme}\" gives an empty name for record \"{record_uid}\" \
         (firstname \"{firstname}\", lastname \"{lastname}\"): nothing usable is left \
         after dropping unsupported characters"
    )]
    Empty {
        kind: SchemeKind,
        scheme: String,
        record_uid: String,
        firstname: String,
        lastname: String,
    },
    #[error(
        "username \"{username}\" is already taken and username scheme \"{scheme}\" has no counter; \
         add [COUNTER2] or [ALWAYSCOUNTER] at the end of the scheme"
    )]
    Taken { scheme: String, username: String },
    #[error("username scheme \"{scheme}\": no free username left for \"{base}\"")]
    Exhausted { scheme: String, base: String },
    #[error("e-mail scheme \"{scheme}\" uses <username> but the user has no username yet")]
    MissingUsername { scheme: String },
    #[error(
        "e-mail scheme \"{scheme}\" gives \"{address}\", longer than {MAX_EMAIL_LENGTH} characters"
    )]
    EmailTooLong { scheme: String, address: String },
    #[error("name registry: {0}")]
    Registry(String),
}

/// The counter at the end of a username scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counter {
    /// No counter: a taken name is an error.
    None,
    /// `[COUNTER2]`: the bare name first, then 2, 3, …
    Counter2,
    /// `[ALWAYSCOUNTER]`: 1, 2, 3, …
    Always,
}

/// The fields a scheme can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SchemeFields<'a> {
    pub firstname: &'a str,
    pub lastname: &'a str,
    pub record_uid: &'a str,
    /// Only e-mail schemes can use it (`<username>`).
    pub username: Option<&'a str>,
}

/// What `allocate` needs to know about names already issued. The import planner implements it
/// over the directory plus the names reserved earlier in the same plan.
pub trait NameRegistry {
    /// Whether this exact username was ever issued or is in use.
    fn is_taken(&mut self, username: &str) -> Result<bool, SchemeError>;
    /// The next counter value stored for this base (None if never used).
    fn counter(&mut self, base: &str) -> Result<Option<u32>, SchemeError>;
    /// Record the issued name and the next counter value for its base.
    fn issue(&mut self, username: &str, base: &str, next_counter: Option<u32>);
}

/// A parsed username scheme.
#[derive(Debug, Clone)]
pub struct UsernameScheme {
    scheme: String,
    template: Template,
    max_length: usize,
}

impl UsernameScheme {
    /// Parses `scheme`; `max_length` (counter included) must be at least [`MIN_MAX_LENGTH`].
    pub fn parse(scheme: &str, max_length: usize) -> Result<Self, SchemeError> {
        let error = |problem| SchemeError::Parse {
            kind: SchemeKind::Username,
            scheme: scheme.to_string(),
            problem,
        };
        if max_length < MIN_MAX_LENGTH {
            return Err(error(ParseProblem::MaxLengthTooSmall(max_length)));
        }
        let template = parse_template(scheme, SchemeKind::Username).map_err(error)?;
        if !template.has_field() {
            return Err(error(ParseProblem::NoField));
        }
        Ok(UsernameScheme {
            scheme: scheme.to_string(),
            template,
            max_length,
        })
    }

    /// The scheme text as given.
    pub fn as_str(&self) -> &str {
        &self.scheme
    }

    /// The maximum username length, counter included.
    pub fn max_length(&self) -> usize {
        self.max_length
    }

    pub fn counter(&self) -> Counter {
        self.template.counter
    }

    /// The cleaned base name (no counter), cut to `max_length`; making room for a counter is
    /// left to [`candidate`](Self::candidate). This is also the key counters are stored under,
    /// so every counter width shares one counter.
    pub fn base(&self, fields: &SchemeFields<'_>) -> Result<String, SchemeError> {
        let cleaned = render_parts(&self.template.parts, fields)
            .map(|raw| clean(&raw, self.template.umlauts, false))
            .unwrap_or_default();
        let base = cut(&cleaned, self.max_length);
        if base.is_empty() {
            return Err(empty_error(SchemeKind::Username, &self.scheme, fields));
        }
        Ok(base)
    }

    /// The username for counter value `n` (None = no counter), cut so that the whole fits max_length.
    /// Only when the counter alone is as long as max_length does the result exceed it (one
    /// character of the base is always kept); `allocate` treats that as exhaustion.
    pub fn candidate(&self, base: &str, n: Option<u32>) -> String {
        let Some(n) = n else {
            return cut(base, self.max_length);
        };
        let digits = n.to_string();
        let mut head = cut(base, self.max_length.saturating_sub(digits.len()));
        if head.is_empty() {
            head = cut(base, 1);
        }
        head.push_str(&digits);
        head
    }

    /// Picks the first free username. `registry` answers which names are taken and remembers counters.
    pub fn allocate(
        &self,
        fields: &SchemeFields<'_>,
        registry: &mut dyn NameRegistry,
    ) -> Result<String, SchemeError> {
        let base = self.base(fields)?;
        match self.template.counter {
            Counter::None => {
                if registry.is_taken(&base)? {
                    return Err(SchemeError::Taken {
                        scheme: self.scheme.clone(),
                        username: base,
                    });
                }
                registry.issue(&base, &base, None);
                Ok(base)
            }
            Counter::Counter2 => {
                let start = match registry.counter(&base)? {
                    Some(stored) => stored.max(2),
                    None if !registry.is_taken(&base)? => {
                        registry.issue(&base, &base, Some(2));
                        return Ok(base);
                    }
                    None => 2,
                };
                self.count_from(&base, start, registry)
            }
            Counter::Always => {
                let start = registry.counter(&base)?.unwrap_or(1).max(1);
                self.count_from(&base, start, registry)
            }
        }
    }

    /// Tries `base` with counters `start`, `start + 1`, … and issues the first free one.
    fn count_from(
        &self,
        base: &str,
        start: u32,
        registry: &mut dyn NameRegistry,
    ) -> Result<String, SchemeError> {
        let mut n = start;
        for _ in 0..MAX_TRIES {
            let name = self.candidate(base, Some(n));
            if name.chars().count() > self.max_length {
                break;
            }
            if !registry.is_taken(&name)? {
                registry.issue(&name, base, Some(n.saturating_add(1)));
                return Ok(name);
            }
            match n.checked_add(1) {
                Some(next) => n = next,
                None => break,
            }
        }
        Err(SchemeError::Exhausted {
            scheme: self.scheme.clone(),
            base: base.to_string(),
        })
    }
}

/// A parsed e-mail scheme such as `<firstname>.<lastname>@schule.example`.
#[derive(Debug, Clone)]
pub struct EmailScheme {
    scheme: String,
    local: Vec<Part>,
    umlauts: bool,
    domain: String,
}

impl EmailScheme {
    pub fn parse(scheme: &str) -> Result<Self, SchemeError> {
        let error = |problem| SchemeError::Parse {
            kind: SchemeKind::Email,
            scheme: scheme.to_string(),
            problem,
        };
        let template = parse_template(scheme, SchemeKind::Email).map_err(error)?;
        let mut local = Vec::new();
        let mut domain: Option<String> = None;
        for part in template.parts {
            match part {
                Part::Field { field, column, .. } if domain.is_some() => {
                    return Err(error(ParseProblem::FieldInDomain {
                        name: field.name(),
                        column,
                    }));
                }
                Part::Field { .. } => local.push(part),
                Part::Literal { text, column } => {
                    let mut before = String::new();
                    for (offset, c) in text.chars().enumerate() {
                        match (&mut domain, c) {
                            (Some(_), '@') => {
                                return Err(error(ParseProblem::ExtraAt(column + offset)));
                            }
                            (None, '@') => domain = Some(String::new()),
                            (Some(domain), c) => domain.push(c),
                            (None, c) => before.push(c),
                        }
                    }
                    if !before.is_empty() {
                        local.push(Part::Literal {
                            text: before,
                            column,
                        });
                    }
                }
            }
        }
        let domain = domain.ok_or_else(|| error(ParseProblem::MissingAt))?;
        let domain = domain.to_lowercase();
        if let Err(reason) = validate_domain(&domain) {
            return Err(error(ParseProblem::BadDomain { domain, reason }));
        }
        if !local.iter().any(|part| matches!(part, Part::Field { .. })) {
            return Err(error(ParseProblem::NoField));
        }
        Ok(EmailScheme {
            scheme: scheme.to_string(),
            local,
            umlauts: template.umlauts,
            domain,
        })
    }

    /// The scheme text as given.
    pub fn as_str(&self) -> &str {
        &self.scheme
    }

    /// Whether the scheme needs the username (so it must be allocated first).
    pub fn uses_username(&self) -> bool {
        self.local.iter().any(|part| {
            matches!(
                part,
                Part::Field {
                    field: Field::Username,
                    ..
                }
            )
        })
    }

    pub fn render(&self, fields: &SchemeFields<'_>) -> Result<String, SchemeError> {
        let raw =
            render_parts(&self.local, fields).ok_or_else(|| SchemeError::MissingUsername {
                scheme: self.scheme.clone(),
            })?;
        let local = clean(&raw, self.umlauts, true);
        if local.is_empty() {
            return Err(empty_error(SchemeKind::Email, &self.scheme, fields));
        }
        let address = format!("{local}@{}", self.domain);
        if address.len() > MAX_EMAIL_LENGTH {
            return Err(SchemeError::EmailTooLong {
                scheme: self.scheme.clone(),
                address,
            });
        }
        Ok(address)
    }
}

fn empty_error(kind: SchemeKind, scheme: &str, fields: &SchemeFields<'_>) -> SchemeError {
    SchemeError::Empty {
        kind,
        scheme: scheme.to_string(),
        record_uid: fields.record_uid.to_string(),
        firstname: fields.firstname.to_string(),
        lastname: fields.lastname.to_string(),
    }
}

// ---------------------------------------------------------------------------
// Parsing

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Firstname,
    Lastname,
    RecordUid,
    Username,
}

impl Field {
    fn name(self) -> &'static str {
        match self {
            Field::Firstname => "firstname",
            Field::Lastname => "lastname",
            Field::RecordUid => "record_uid",
            Field::Username => "username",
        }
    }

    fn value<'a>(self, fields: &SchemeFields<'a>) -> Option<&'a str> {
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
enum Slice {
    /// `[n]`: one character (none when out of range).
    Index(i64),
    /// `[n:m]`, `[:m]`, `[n:]`, `[:]`.
    Range(Option<i64>, Option<i64>),
}

impl Slice {
    fn apply(self, value: &str) -> String {
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
        chars
            .get(start..end)
            .map(String::from_iter)
            .unwrap_or_default()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
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
struct Template {
    parts: Vec<Part>,
    umlauts: bool,
    counter: Counter,
}

impl Template {
    fn has_field(&self) -> bool {
        self.parts
            .iter()
            .any(|part| matches!(part, Part::Field { .. }))
    }
}

/// The index of the `close` character that ends the bracket opened at `open`, or None when
/// the end of the scheme or another bracket character comes first.
fn find_close(chars: &[char], open: usize, close: char) -> Option<usize> {
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

fn parse_field(name: &str, kind: SchemeKind, column: usize) -> Result<Field, ParseProblem> {
    let field = [
        Field::Firstname,
        Field::Lastname,
        Field::RecordUid,
        Field::Username,
    ]
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

fn parse_counter(text: &str) -> Option<Counter> {
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
fn looks_like_slice(text: &str) -> bool {
    text.chars()
        .all(|c| c.is_ascii_digit() || matches!(c, ':' | '-' | ' '))
}

fn parse_slice(text: &str) -> Option<Slice> {
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

fn parse_template(scheme: &str, kind: SchemeKind) -> Result<Template, ParseProblem> {
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
                let close =
                    find_close(&chars, i, '>').ok_or(ParseProblem::UnclosedAngle(column))?;
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
                let close =
                    find_close(&chars, i, ']').ok_or(ParseProblem::UnclosedBracket(column))?;
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

// ---------------------------------------------------------------------------
// Rendering

/// Concatenates literals and (sliced) field values; None when a field has no value.
/// Field values are trimmed and NFC-composed before slicing, so slices count the
/// characters a reader sees.
fn render_parts(parts: &[Part], fields: &SchemeFields<'_>) -> Option<String> {
    let mut out = String::new();
    for part in parts {
        match part {
            Part::Literal { text, .. } => out.push_str(text),
            Part::Field { field, slice, .. } => {
                let value: String = field.value(fields)?.trim().nfc().collect();
                match slice {
                    Some(slice) => out.push_str(&slice.apply(&value)),
                    None => out.push_str(&value),
                }
            }
        }
    }
    Some(out)
}

/// German umlauts expanded (when `umlauts`), a few letters NFKD leaves alone mapped,
/// then every other diacritic stripped.
fn transliterate(text: &str, umlauts: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.nfc() {
        match c {
            'ä' | 'Ä' if umlauts => out.push_str("ae"),
            'ö' | 'Ö' if umlauts => out.push_str("oe"),
            'ü' | 'Ü' if umlauts => out.push_str("ue"),
            'ß' | 'ẞ' => out.push_str("ss"),
            'æ' | 'Æ' => out.push_str("ae"),
            'œ' | 'Œ' => out.push_str("oe"),
            'ø' | 'Ø' => out.push('o'),
            'ł' | 'Ł' => out.push('l'),
            'đ' | 'Đ' | 'ð' | 'Ð' => out.push('d'),
            'þ' | 'Þ' => out.push_str("th"),
            'ħ' | 'Ħ' => out.push('h'),
            'ı' => out.push('i'),
            other => out.push(other),
        }
    }
    out.nfkd().filter(|&c| !is_combining_mark(c)).collect()
}

/// Lowercased, transliterated, only `[a-z0-9.-]` (plus `_` when `underscore`) kept,
/// runs of `.` collapsed, leading and trailing `.`/`-` trimmed.
fn clean(raw: &str, umlauts: bool, underscore: bool) -> String {
    let lowered = transliterate(raw, umlauts).to_lowercase();
    let mut out = String::with_capacity(lowered.len());
    for c in lowered.chars() {
        let keep = c.is_ascii_lowercase()
            || c.is_ascii_digit()
            || c == '.'
            || c == '-'
            || (underscore && c == '_');
        if keep && !(c == '.' && out.ends_with('.')) {
            out.push(c);
        }
    }
    out.trim_matches(['.', '-']).to_string()
}

/// The first `max` characters, trailing `.`/`-` trimmed.
fn cut(text: &str, max: usize) -> String {
    let head: String = text.chars().take(max).collect();
    head.trim_end_matches(['.', '-']).to_string()
}

fn validate_domain(domain: &str) -> Result<(), &'static str> {
    if domain.is_empty() {
        return Err("the domain after '@' is empty");
    }
    if !domain.is_ascii() {
        return Err("must be plain ASCII (write international domains in their xn-- form)");
    }
    if domain.len() > 253 {
        return Err("longer than 253 characters");
    }
    for label in domain.split('.') {
        if label.is_empty() {
            return Err("has an empty label (leading, trailing or double '.')");
        }
        if label.len() > 63 {
            return Err("has a label longer than 63 characters");
        }
        if !label
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        {
            return Err("may only contain letters, digits, '-' and '.'");
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err("has a label starting or ending with '-'");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{HashMap, HashSet};

    /// The directory (`in_use`) plus everything ever issued (`issued`) plus counters.
    #[derive(Default)]
    struct MemRegistry {
        in_use: HashSet<String>,
        issued: HashSet<String>,
        counters: HashMap<String, u32>,
        broken: bool,
    }

    impl MemRegistry {
        fn delete_user(&mut self, username: &str) {
            self.in_use.remove(username);
        }
    }

    impl NameRegistry for MemRegistry {
        fn is_taken(&mut self, username: &str) -> Result<bool, SchemeError> {
            if self.broken {
                return Err(SchemeError::Registry("directory unreachable".into()));
            }
            Ok(self.in_use.contains(username) || self.issued.contains(username))
        }

        fn counter(&mut self, base: &str) -> Result<Option<u32>, SchemeError> {
            Ok(self.counters.get(base).copied())
        }

        fn issue(&mut self, username: &str, base: &str, next_counter: Option<u32>) {
            self.in_use.insert(username.to_string());
            self.issued.insert(username.to_string());
            if let Some(next) = next_counter {
                self.counters.insert(base.to_string(), next);
            }
        }
    }

    fn person<'a>(firstname: &'a str, lastname: &'a str) -> SchemeFields<'a> {
        SchemeFields {
            firstname,
            lastname,
            record_uid: "r1",
            username: None,
        }
    }

    fn default_scheme() -> UsernameScheme {
        UsernameScheme::parse(DEFAULT_USERNAME_SCHEME, DEFAULT_MAX_LENGTH).unwrap()
    }

    fn base_of(scheme: &str, firstname: &str, lastname: &str) -> String {
        UsernameScheme::parse(scheme, DEFAULT_MAX_LENGTH)
            .unwrap()
            .base(&person(firstname, lastname))
            .unwrap()
    }

    fn problem(result: Result<impl fmt::Debug, SchemeError>) -> ParseProblem {
        match result {
            Err(SchemeError::Parse { problem, .. }) => problem,
            other => panic!("expected a parse error, got {other:?}"),
        }
    }

    fn username_problem(scheme: &str) -> ParseProblem {
        problem(UsernameScheme::parse(scheme, DEFAULT_MAX_LENGTH))
    }

    fn email_problem(scheme: &str) -> ParseProblem {
        problem(EmailScheme::parse(scheme))
    }

    // --- allocation ---------------------------------------------------------

    #[test]
    fn default_scheme_counts_from_two() {
        let scheme = default_scheme();
        assert_eq!(scheme.counter(), Counter::Counter2);
        let mut registry = MemRegistry::default();
        let max = person("Max", "Mustermann");
        let names: Vec<String> = (0..3)
            .map(|_| scheme.allocate(&max, &mut registry).unwrap())
            .collect();
        assert_eq!(names, ["m.mustermann", "m.mustermann2", "m.mustermann3"]);
        assert_eq!(registry.counters.get("m.mustermann"), Some(&4));
    }

    #[test]
    fn always_counter_counts_from_one() {
        let scheme = UsernameScheme::parse("<firstname>[0].<lastname>[ALWAYSCOUNTER]", 20).unwrap();
        assert_eq!(scheme.counter(), Counter::Always);
        let mut registry = MemRegistry::default();
        let max = person("Max", "Mustermann");
        let names: Vec<String> = (0..3)
            .map(|_| scheme.allocate(&max, &mut registry).unwrap())
            .collect();
        assert_eq!(names, ["m.mustermann1", "m.mustermann2", "m.mustermann3"]);
        assert!(!registry.issued.contains("m.mustermann"));
    }

    #[test]
    fn freed_names_are_not_reissued() {
        let scheme = default_scheme();
        let mut registry = MemRegistry::default();
        let max = person("Max", "Mustermann");
        assert_eq!(
            scheme.allocate(&max, &mut registry).unwrap(),
            "m.mustermann"
        );
        registry.delete_user("m.mustermann");
        assert_eq!(
            scheme.allocate(&max, &mut registry).unwrap(),
            "m.mustermann2"
        );
        registry.delete_user("m.mustermann2");
        // Even with the counter lost, the issued set keeps both names away.
        registry.counters.clear();
        assert_eq!(
            scheme.allocate(&max, &mut registry).unwrap(),
            "m.mustermann3"
        );
    }

    #[test]
    fn freed_name_without_counter_is_an_error() {
        let scheme = UsernameScheme::parse("<firstname>.<lastname>", 20).unwrap();
        assert_eq!(scheme.counter(), Counter::None);
        let mut registry = MemRegistry::default();
        let max = person("Max", "Mustermann");
        assert_eq!(
            scheme.allocate(&max, &mut registry).unwrap(),
            "max.mustermann"
        );
        assert!(registry.counters.is_empty());
        registry.delete_user("max.mustermann");
        let err = scheme.allocate(&max, &mut registry).unwrap_err();
        assert_eq!(
            err,
            SchemeError::Taken {
                scheme: "<firstname>.<lastname>".into(),
                username: "max.mustermann".into()
            }
        );
        let message = err.to_string();
        assert!(
            message.contains("\"max.mustermann\" is already taken"),
            "{message}"
        );
        assert!(message.contains("[COUNTER2]"), "{message}");
    }

    #[test]
    fn existing_directory_names_without_counter_are_skipped() {
        let scheme = default_scheme();
        let mut registry = MemRegistry::default();
        registry.in_use.insert("m.mustermann".into());
        registry.in_use.insert("m.mustermann2".into());
        let max = person("Max", "Mustermann");
        assert_eq!(
            scheme.allocate(&max, &mut registry).unwrap(),
            "m.mustermann3"
        );
        assert_eq!(registry.counters.get("m.mustermann"), Some(&4));
    }

    #[test]
    fn stored_counter_is_the_start_and_taken_values_are_skipped() {
        let scheme = default_scheme();
        let mut registry = MemRegistry::default();
        registry.counters.insert("m.mustermann".into(), 5);
        registry.in_use.insert("m.mustermann5".into());
        registry.in_use.insert("m.mustermann6".into());
        let max = person("Max", "Mustermann");
        // The bare name is free, but the stored counter says it was issued once.
        assert_eq!(
            scheme.allocate(&max, &mut registry).unwrap(),
            "m.mustermann7"
        );
        assert_eq!(registry.counters.get("m.mustermann"), Some(&8));
    }

    #[test]
    fn nonsense_stored_counters_are_raised_to_the_first_value() {
        let mut registry = MemRegistry::default();
        registry.counters.insert("m.mustermann".into(), 0);
        let max = person("Max", "Mustermann");
        assert_eq!(
            default_scheme().allocate(&max, &mut registry).unwrap(),
            "m.mustermann2"
        );
        let always = UsernameScheme::parse("<firstname>[0].<lastname>[ALWAYSCOUNTER]", 20).unwrap();
        registry.counters.insert("m.mustermann".into(), 0);
        assert_eq!(
            always.allocate(&max, &mut registry).unwrap(),
            "m.mustermann1"
        );
    }

    #[test]
    fn long_names_are_cut_to_fit_the_counter() {
        let scheme = default_scheme();
        let mut registry = MemRegistry::default();
        let lastname = "Abcdefghijklmnopqrstuvwxyzabcd";
        assert_eq!(lastname.len(), 30);
        let long = person("Max", lastname);
        let first = scheme.allocate(&long, &mut registry).unwrap();
        assert_eq!(first, "m.abcdefghijklmnopqr");
        assert_eq!(first.len(), 20);
        let second = scheme.allocate(&long, &mut registry).unwrap();
        assert_eq!(second, "m.abcdefghijklmnopq2");
        assert_eq!(second.len(), 20);
        for _ in 3..10 {
            scheme.allocate(&long, &mut registry).unwrap();
        }
        let tenth = scheme.allocate(&long, &mut registry).unwrap();
        assert_eq!(tenth, "m.abcdefghijklmnop10");
        assert_eq!(tenth.len(), 20);
        // One counter for the base, whatever the counter width.
        assert_eq!(registry.counters.len(), 1);
        assert_eq!(registry.counters.get("m.abcdefghijklmnopqr"), Some(&11));
    }

    #[test]
    fn cutting_trims_a_trailing_dot() {
        let scheme = UsernameScheme::parse("<firstname>.<lastname>[COUNTER2]", 20).unwrap();
        let fields = person("Abcdefghijklmnopqrs", "Z");
        let base = scheme.base(&fields).unwrap();
        assert_eq!(base, "abcdefghijklmnopqrs");
        assert_eq!(scheme.candidate(&base, Some(2)), "abcdefghijklmnopqrs2");
        let fields = person("Abcdefghijklmnopq", "Zett");
        let base = scheme.base(&fields).unwrap();
        assert_eq!(base, "abcdefghijklmnopq.ze");
        // Cut to 18 gives "abcdefghijklmnopq." whose dot goes before the counter.
        assert_eq!(scheme.candidate(&base, Some(10)), "abcdefghijklmnopq10");
    }

    #[test]
    fn candidate_fits_max_length() {
        let scheme = UsernameScheme::parse("<lastname>[COUNTER2]", 8).unwrap();
        assert_eq!(scheme.candidate("mustermann", None), "musterma");
        assert_eq!(scheme.candidate("mustermann", Some(2)), "musterm2");
        assert_eq!(scheme.candidate("mustermann", Some(123)), "muste123");
        assert_eq!(scheme.candidate("kurz", Some(2)), "kurz2");
        assert_eq!(scheme.max_length(), 8);
        assert_eq!(scheme.as_str(), "<lastname>[COUNTER2]");
    }

    #[test]
    fn counter_that_cannot_fit_is_exhaustion() {
        let scheme = UsernameScheme::parse("<firstname>[0][COUNTER2]", 4).unwrap();
        let mut registry = MemRegistry::default();
        let max = person("Max", "Mustermann");
        registry.counters.insert("m".into(), 999);
        assert_eq!(scheme.allocate(&max, &mut registry).unwrap(), "m999");
        let err = scheme.allocate(&max, &mut registry).unwrap_err();
        assert_eq!(
            err,
            SchemeError::Exhausted {
                scheme: "<firstname>[0][COUNTER2]".into(),
                base: "m".into()
            }
        );
        assert!(err.to_string().contains("no free username left"));
    }

    #[test]
    fn counter_overflow_is_exhaustion_not_a_panic() {
        let scheme = UsernameScheme::parse("<lastname>[ALWAYSCOUNTER]", 40).unwrap();
        let mut registry = MemRegistry::default();
        registry.counters.insert("m".into(), u32::MAX);
        registry.in_use.insert(format!("m{}", u32::MAX));
        let err = scheme
            .allocate(&person("", "M"), &mut registry)
            .unwrap_err();
        assert!(matches!(err, SchemeError::Exhausted { .. }), "{err:?}");
    }

    #[test]
    fn registry_errors_propagate() {
        let mut registry = MemRegistry {
            broken: true,
            ..MemRegistry::default()
        };
        let err = default_scheme()
            .allocate(&person("Max", "Mustermann"), &mut registry)
            .unwrap_err();
        assert_eq!(err, SchemeError::Registry("directory unreachable".into()));
        assert_eq!(err.to_string(), "name registry: directory unreachable");
        assert!(registry.issued.is_empty());
    }

    // --- cleaning and transliteration -------------------------------------

    #[test]
    fn umlauts_are_expanded_with_the_modifier() {
        let scheme = default_scheme();
        let mut registry = MemRegistry::default();
        assert_eq!(
            scheme
                .allocate(&person("Jörg", "Müller"), &mut registry)
                .unwrap(),
            "j.mueller"
        );
        assert_eq!(
            scheme
                .allocate(&person("Ägidius", "Ößwald"), &mut registry)
                .unwrap(),
            "ae.oesswald"
        );
        assert_eq!(
            scheme
                .allocate(&person("Änne", "Schmidt"), &mut registry)
                .unwrap(),
            "ae.schmidt"
        );
        assert_eq!(
            base_of("<:umlauts><firstname>.<lastname>", "ÜLRICH", "STRAẞE"),
            "uelrich.strasse"
        );
    }

    #[test]
    fn other_diacritics_are_stripped() {
        assert_eq!(base_of(DEFAULT_USERNAME_SCHEME, "José", "Núñez"), "j.nunez");
        assert_eq!(
            base_of(DEFAULT_USERNAME_SCHEME, "Łukasz", "Wałęsa"),
            "l.walesa"
        );
        assert_eq!(base_of(DEFAULT_USERNAME_SCHEME, "Søren", "Ærø"), "s.aero");
        assert_eq!(base_of(DEFAULT_USERNAME_SCHEME, "Zoë", "Çelik"), "z.celik");
        assert_eq!(
            base_of(DEFAULT_USERNAME_SCHEME, "Đorđe", "Þórsson"),
            "d.thorsson"
        );
    }

    #[test]
    fn without_the_modifier_umlauts_lose_their_dots() {
        let scheme = "<firstname>[0].<lastname>[COUNTER2]";
        assert_eq!(base_of(scheme, "Jörg", "Müller"), "j.muller");
        assert_eq!(base_of(scheme, "Ägidius", "Ößwald"), "a.osswald");
        assert_eq!(base_of(scheme, "José", "Núñez"), "j.nunez");
    }

    #[test]
    fn the_modifier_applies_wherever_it_is() {
        assert_eq!(
            base_of("<firstname>[0].<lastname><:umlauts>", "Jörg", "Müller"),
            "j.mueller"
        );
        assert_eq!(
            base_of("<firstname>[0].<:umlauts><lastname>", "Jörg", "Müller"),
            "j.mueller"
        );
        assert_eq!(
            base_of("<:UMLAUTS><firstname>.<lastname>", "Jörg", "Müller"),
            "joerg.mueller"
        );
    }

    #[test]
    fn decomposed_input_is_handled_like_composed_input() {
        assert_eq!(
            base_of(DEFAULT_USERNAME_SCHEME, "A\u{308}nne", "Mu\u{308}ller"),
            "ae.mueller"
        );
        assert_eq!(
            base_of("<:umlauts><firstname>[0:2]", "O\u{308}dön", ""),
            "oed"
        );
    }

    #[test]
    fn double_dots_are_collapsed() {
        assert_eq!(
            base_of("<firstname>..<lastname>", "Max", "Mustermann"),
            "max.mustermann"
        );
        assert_eq!(
            base_of("<firstname>.<lastname>", "Max.", ".Mustermann"),
            "max.mustermann"
        );
        assert_eq!(
            base_of("<firstname>.'.<lastname>", "Max", "Mustermann"),
            "max.mustermann"
        );
    }

    #[test]
    fn apostrophes_and_spaces_are_removed() {
        assert_eq!(base_of("<lastname>", "Sean", "O'Brien"), "obrien");
        assert_eq!(base_of("<firstname>", "Anna Lena", "Schmidt"), "annalena");
        assert_eq!(
            base_of("<firstname>.<lastname>", " Anna Lena ", "Schmidt"),
            "annalena.schmidt"
        );
        assert_eq!(
            base_of("<:umlauts><lastname>", "", "Groß-Müller"),
            "gross-mueller"
        );
    }

    #[test]
    fn leading_and_trailing_separators_are_trimmed() {
        assert_eq!(
            base_of("<firstname>.<lastname>", "", "Mustermann"),
            "mustermann"
        );
        assert_eq!(base_of("<firstname>.<lastname>", "Max", ""), "max");
        assert_eq!(base_of("<firstname>", "-Max-", ""), "max");
        assert_eq!(base_of("<firstname>", ".-.Max", ""), "max");
    }

    #[test]
    fn record_uid_field() {
        let fields = SchemeFields {
            firstname: "Max",
            lastname: "Mustermann",
            record_uid: "ABC_123",
            username: None,
        };
        let scheme = UsernameScheme::parse("s<record_uid>", 20).unwrap();
        assert_eq!(scheme.base(&fields).unwrap(), "sabc123");
        let scheme = UsernameScheme::parse("<lastname>[0:3]-<record_uid>[-3:]", 20).unwrap();
        assert_eq!(scheme.base(&fields).unwrap(), "mus-123");
    }

    #[test]
    fn symbol_only_names_are_an_error() {
        let scheme = default_scheme();
        let mut registry = MemRegistry::default();
        let err = scheme
            .allocate(&person("!!!", "???"), &mut registry)
            .unwrap_err();
        assert_eq!(
            err,
            SchemeError::Empty {
                kind: SchemeKind::Username,
                scheme: DEFAULT_USERNAME_SCHEME.into(),
                record_uid: "r1".into(),
                firstname: "!!!".into(),
                lastname: "???".into(),
            }
        );
        assert!(
            err.to_string()
                .contains("gives an empty name for record \"r1\"")
        );
        // Scripts without a Latin transliteration end up empty too.
        assert!(matches!(
            scheme.base(&person("李", "王")),
            Err(SchemeError::Empty { .. })
        ));
        assert!(registry.issued.is_empty());
    }

    // --- slices -----------------------------------------------------------

    #[test]
    fn slices_count_characters() {
        assert_eq!(base_of("<firstname>[0:3]", "Maximilian", ""), "max");
        assert_eq!(base_of("<firstname>[:2]", "Maximilian", ""), "ma");
        assert_eq!(base_of("<firstname>[2:]", "Maximilian", ""), "ximilian");
        assert_eq!(base_of("<firstname>[0]", "Maximilian", ""), "m");
        assert_eq!(base_of("<firstname>[1]", "Maximilian", ""), "a");
        assert_eq!(base_of("<firstname>[:]", "Maximilian", ""), "maximilian");
        assert_eq!(base_of("<firstname>[-3:]", "Maximilian", ""), "ian");
        assert_eq!(base_of("<firstname>[:-3]", "Maximilian", ""), "maximil");
        assert_eq!(base_of("<firstname>[-1]", "Maximilian", ""), "n");
        assert_eq!(base_of("<firstname>[ 1 : 3 ]", "Maximilian", ""), "ax");
        // Characters, not bytes: "Ö" is two bytes.
        assert_eq!(base_of("<:umlauts><firstname>[0:2]", "Ödön", ""), "oed");
        assert_eq!(base_of("<:umlauts><lastname>[1:3]", "", "Jürgens"), "uer");
    }

    #[test]
    fn out_of_range_slices_are_clamped() {
        assert_eq!(
            base_of("<firstname>[0:100].<lastname>", "Max", "M"),
            "max.m"
        );
        assert_eq!(base_of("<firstname>[5:100].<lastname>", "Max", "M"), "m");
        assert_eq!(base_of("<firstname>[10].<lastname>", "Max", "M"), "m");
        assert_eq!(base_of("<firstname>[-10].<lastname>", "Max", "M"), "m");
        assert_eq!(base_of("<firstname>[-10:2].<lastname>", "Max", "M"), "ma.m");
        assert_eq!(base_of("<firstname>[2:1].<lastname>", "Max", "M"), "m");
        assert_eq!(base_of("<firstname>[0].<lastname>", "", "M"), "m");
    }

    // --- parse errors -----------------------------------------------------

    #[test]
    fn parse_error_messages_name_scheme_problem_and_column() {
        let err = UsernameScheme::parse("<firstname[0]", 20).unwrap_err();
        assert_eq!(
            err.to_string(),
            "username scheme \"<firstname[0]\": unclosed '<' at column 1"
        );
        let err = UsernameScheme::parse("<nickname>", 20).unwrap_err();
        assert_eq!(
            err.to_string(),
            "username scheme \"<nickname>\": unknown field <nickname> \
             (expected <firstname>, <lastname>, <record_uid>) at column 1"
        );
        let err = UsernameScheme::parse("<lastname>[COUNTER2].x", 20).unwrap_err();
        assert!(
            err.to_string()
                .contains("counter [COUNTER2] must be at the end of the scheme (column 11)"),
            "{err}"
        );
        let err = UsernameScheme::parse("<lastname>.[FOO]", 20).unwrap_err();
        assert!(err.to_string().contains("unknown modifier [FOO]"), "{err}");
        assert!(err.to_string().contains("at column 12"), "{err}");
    }

    #[test]
    fn every_username_parse_error() {
        use ParseProblem as P;
        assert_eq!(username_problem(""), P::Empty);
        assert_eq!(
            problem(UsernameScheme::parse("<lastname>", 3)),
            P::MaxLengthTooSmall(3)
        );
        assert_eq!(username_problem("x.<lastname"), P::UnclosedAngle(3));
        assert_eq!(username_problem("<lastname>[0"), P::UnclosedBracket(11));
        assert_eq!(username_problem("<lastname>[0<x>]"), P::UnclosedBracket(11));
        assert_eq!(
            username_problem("<lastname>>"),
            P::Unexpected {
                ch: '>',
                column: 11
            }
        );
        assert_eq!(
            username_problem("a]<lastname>"),
            P::Unexpected { ch: ']', column: 2 }
        );
        assert_eq!(username_problem("<lastname><>"), P::EmptyField(11));
        assert_eq!(
            username_problem("<lastname>.<nick>"),
            P::UnknownField {
                name: "nick".into(),
                expected: USERNAME_FIELDS,
                column: 12
            }
        );
        assert_eq!(username_problem("<username>"), P::UsernameField(1));
        assert_eq!(
            username_problem("<:ascii><lastname>"),
            P::UnknownModifier {
                text: "<:ascii>".into(),
                expected: ANGLE_MODIFIERS,
                column: 1
            }
        );
        assert_eq!(
            username_problem("<lastname>[FOO]"),
            P::UnknownModifier {
                text: "[FOO]".into(),
                expected: USERNAME_BRACKETS,
                column: 11
            }
        );
        for bad in ["1:2:3", "a", "--1", "", " ", "1-"] {
            let scheme = format!("<lastname>[{bad}]");
            if looks_like_slice(bad) {
                assert_eq!(
                    username_problem(&scheme),
                    P::BadSlice {
                        text: bad.into(),
                        column: 11
                    },
                    "{scheme}"
                );
            } else {
                assert!(
                    matches!(username_problem(&scheme), P::UnknownModifier { .. }),
                    "{scheme}"
                );
            }
        }
        assert_eq!(
            username_problem("x[0]<lastname>"),
            P::SliceWithoutField {
                text: "0".into(),
                column: 2
            }
        );
        assert_eq!(
            username_problem("<lastname>[0][1]"),
            P::SliceWithoutField {
                text: "1".into(),
                column: 14
            }
        );
        assert_eq!(
            username_problem("<lastname>.[0]"),
            P::SliceWithoutField {
                text: "0".into(),
                column: 12
            }
        );
        assert_eq!(
            username_problem("<lastname>[COUNTER2][ALWAYSCOUNTER]"),
            P::CounterNotAtEnd {
                text: "COUNTER2".into(),
                column: 11
            }
        );
        assert_eq!(
            username_problem("<lastname>[ALWAYSCOUNTER]<:umlauts>"),
            P::CounterNotAtEnd {
                text: "ALWAYSCOUNTER".into(),
                column: 11
            }
        );
        assert_eq!(username_problem("schueler"), P::NoField);
        assert_eq!(username_problem("schueler[ALWAYSCOUNTER]"), P::NoField);
        assert_eq!(username_problem("<:umlauts>"), P::NoField);
    }

    #[test]
    fn lenient_spelling_is_accepted() {
        let scheme = UsernameScheme::parse("<Firstname>[0].<LASTNAME>[counter2]", 20).unwrap();
        assert_eq!(scheme.counter(), Counter::Counter2);
        assert_eq!(
            scheme.base(&person("Max", "Mustermann")).unwrap(),
            "m.mustermann"
        );
    }

    // --- e-mail -------------------------------------------------------------

    #[test]
    fn email_from_names() {
        let scheme = EmailScheme::parse("<firstname>.<lastname>@Schule.Example").unwrap();
        assert!(!scheme.uses_username());
        assert_eq!(
            scheme.render(&person("Max", "Mustermann")).unwrap(),
            "max.mustermann@schule.example"
        );
        assert_eq!(
            scheme.render(&person("Jörg", "Müller")).unwrap(),
            "jorg.muller@schule.example"
        );
        let scheme = EmailScheme::parse("<:umlauts><firstname>.<lastname>@schule.example").unwrap();
        assert_eq!(
            scheme.render(&person("Jörg", "Müller")).unwrap(),
            "joerg.mueller@schule.example"
        );
        assert_eq!(
            scheme.render(&person("Anna Lena", "O'Brien")).unwrap(),
            "annalena.obrien@schule.example"
        );
        let scheme = EmailScheme::parse("<firstname>[0]_<lastname>@x.org").unwrap();
        assert_eq!(scheme.as_str(), "<firstname>[0]_<lastname>@x.org");
        assert_eq!(
            scheme.render(&person("Max", "Mustermann")).unwrap(),
            "m_mustermann@x.org"
        );
    }

    #[test]
    fn email_from_username() {
        let scheme = EmailScheme::parse("<username>@x.org").unwrap();
        assert!(scheme.uses_username());
        let fields = SchemeFields {
            username: Some("m.mustermann2"),
            ..person("Max", "Mustermann")
        };
        assert_eq!(scheme.render(&fields).unwrap(), "m.mustermann2@x.org");
        let err = scheme.render(&person("Max", "Mustermann")).unwrap_err();
        assert_eq!(
            err,
            SchemeError::MissingUsername {
                scheme: "<username>@x.org".into()
            }
        );
    }

    #[test]
    fn email_render_errors() {
        let scheme = EmailScheme::parse("<firstname>.<lastname>@x.org").unwrap();
        assert!(matches!(
            scheme.render(&person("!!", "??")),
            Err(SchemeError::Empty {
                kind: SchemeKind::Email,
                ..
            })
        ));
        let long = "a".repeat(260);
        let err = scheme.render(&person("Max", &long)).unwrap_err();
        assert!(matches!(err, SchemeError::EmailTooLong { .. }), "{err:?}");
        let fits = "a".repeat(MAX_EMAIL_LENGTH - "m.@x.org".len());
        let address = scheme.render(&person("M", &fits)).unwrap();
        assert_eq!(address.len(), MAX_EMAIL_LENGTH);
    }

    #[test]
    fn email_parse_errors() {
        use ParseProblem as P;
        let err = EmailScheme::parse("<username>[COUNTER2]@x.org").unwrap_err();
        assert_eq!(
            err.to_string(),
            "e-mail scheme \"<username>[COUNTER2]@x.org\": counters are not allowed in \
             e-mail schemes: [COUNTER2] at column 11"
        );
        assert_eq!(
            email_problem("<username>@x.org[ALWAYSCOUNTER]"),
            P::CounterInEmail {
                text: "ALWAYSCOUNTER".into(),
                column: 17
            }
        );
        assert_eq!(email_problem("<firstname>.<lastname>"), P::MissingAt);
        assert_eq!(
            email_problem("<firstname>@<lastname>@x.org"),
            P::FieldInDomain {
                name: "lastname",
                column: 13
            }
        );
        assert_eq!(email_problem("<firstname>@x@y.org"), P::ExtraAt(14));
        assert_eq!(email_problem("<firstname>@@x.org"), P::ExtraAt(13));
        assert_eq!(email_problem("@x.org"), P::NoField);
        assert_eq!(email_problem("info@x.org"), P::NoField);
        assert_eq!(
            email_problem("<nickname>@x.org"),
            P::UnknownField {
                name: "nickname".into(),
                expected: EMAIL_FIELDS,
                column: 1
            }
        );
        assert_eq!(
            email_problem("<username>[X]@x.org"),
            P::UnknownModifier {
                text: "[X]".into(),
                expected: EMAIL_BRACKETS,
                column: 11
            }
        );
        for domain in [
            "",
            "x..org",
            ".x.org",
            "x.org.",
            "-x.org",
            "x-.org",
            "sch ule.de",
            "schüle.de",
            "x_y.org",
        ] {
            let scheme = format!("<username>@{domain}");
            assert!(
                matches!(email_problem(&scheme), P::BadDomain { .. }),
                "{scheme}"
            );
        }
        let label = "a".repeat(64);
        assert!(matches!(
            email_problem(&format!("<username>@{label}.org")),
            P::BadDomain { .. }
        ));
        let err = EmailScheme::parse("<username>@x..org").unwrap_err();
        assert!(
            err.to_string().contains("invalid domain \"x..org\""),
            "{err}"
        );
        assert!(EmailScheme::parse("<username>@xn--schle-kva.de").is_ok());
        assert!(EmailScheme::parse("<username>@schule").is_ok());
    }

    // --- properties ---------------------------------------------------------

    proptest::proptest! {
        #[test]
        fn usernames_are_always_clean(
            firstname in "\\PC{0,25}",
            lastname in "\\PC{0,40}",
            n in proptest::option::of(1u32..10_000_000),
        ) {
            let scheme = default_scheme();
            if let Ok(base) = scheme.base(&person(&firstname, &lastname)) {
                let name = scheme.candidate(&base, n);
                proptest::prop_assert!(name.len() <= DEFAULT_MAX_LENGTH, "{name}");
                proptest::prop_assert!(!name.is_empty());
                proptest::prop_assert!(name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-'));
                proptest::prop_assert!(!name.contains(".."), "{name}");
                proptest::prop_assert!(!name.starts_with(['.', '-']), "{name}");
                proptest::prop_assert!(!name.ends_with(['.', '-']), "{name}");
            }
        }

        #[test]
        fn slices_never_panic(scheme in "<firstname>\\[-?[0-9]{0,3}(:-?[0-9]{0,3})?\\]x", name in "\\PC{0,10}") {
            if let Ok(scheme) = UsernameScheme::parse(&scheme, 20) {
                let _ = scheme.base(&person(&name, ""));
            }
        }
    }
}
