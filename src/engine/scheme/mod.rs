//! Username and e-mail schemes: parsing scheme strings such as
//! `<:umlauts><firstname>[0].<lastname>[COUNTER2]`, rendering them for one
//! person, and allocating usernames with persistent counters so that a name
//! once issued is never handed to someone else. What has been issued is
//! answered by the caller through [`NameRegistry`].

use std::fmt;

use thiserror::Error;

mod template;
#[cfg(test)]
mod tests;
mod text;

use template::*;
use text::*;

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
const USERNAME_BRACKETS: &str = "a slice like [0] or [0:3] after a field, or [COUNTER2] or [ALWAYSCOUNTER] at the end";
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
    #[error("field <username> can only be used in e-mail schemes (expected {USERNAME_FIELDS}) at column {0}")]
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
    BadDomain { domain: String, reason: &'static str },
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
    #[error("e-mail scheme \"{scheme}\" gives \"{address}\", longer than {MAX_EMAIL_LENGTH} characters")]
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

    /// The first name `allocate` tries for a base (before any counter is
    /// known): the bare base, or the base with counter 1 for `[ALWAYSCOUNTER]`.
    pub fn first_candidate(&self, base: &str) -> String {
        match self.template.counter {
            Counter::Always => self.candidate(base, Some(1)),
            Counter::None | Counter::Counter2 => self.candidate(base, None),
        }
    }

    /// Picks the first free username. `registry` answers which names are taken and remembers counters.
    pub fn allocate(&self, fields: &SchemeFields<'_>, registry: &mut dyn NameRegistry) -> Result<String, SchemeError> {
        let base = self.base(fields)?;
        self.allocate_base(base, registry)
    }

    /// [`allocate`](Self::allocate) for a base computed already with [`base`](Self::base).
    pub fn allocate_base(&self, base: String, registry: &mut dyn NameRegistry) -> Result<String, SchemeError> {
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
    fn count_from(&self, base: &str, start: u32, registry: &mut dyn NameRegistry) -> Result<String, SchemeError> {
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
                        local.push(Part::Literal { text: before, column });
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
        let raw = render_parts(&self.local, fields).ok_or_else(|| SchemeError::MissingUsername {
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
