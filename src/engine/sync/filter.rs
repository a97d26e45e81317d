//! LDAP-style filters (RFC 4515 string syntax) over the model's attributes,
//! for `verify --filter`: `&`, `|`, `!`, equality, `~=` (the same as `=`),
//! `>=` and `<=` (string order), presence `attr=*` and substrings with `*`.
//! Values escape `*`, `(`, `)`, `\` and NUL as `\2a`, `\28`, `\29`, `\5c`,
//! `\00` (any byte as `\XX`). Attribute names and values compare without
//! regard to case. The outer parentheses may be left out for one item
//! (`username=a.*`). Errors name the position (1-based character). Filters
//! nest at most [`MAX_DEPTH`] levels (the parser recurses; a hostile
//! `(&(&(&…` must not overflow the stack).

use std::fmt;

/// How deep `&`, `|` and `!` may nest.
pub const MAX_DEPTH: usize = 64;

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("filter {text:?}: at position {position}: {message}")]
pub struct FilterError {
    pub text: String,
    /// 1-based character position of the problem.
    pub position: usize,
    pub message: String,
}

/// How an item compares.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Test {
    Equal(String),
    Greater(String),
    Less(String),
    Present,
    /// `initial*any*…*final`: each part lowercase, empty when absent.
    Substring {
        initial: String,
        any: Vec<String>,
        last: String,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Filter {
    And(Vec<Filter>),
    Or(Vec<Filter>),
    Not(Box<Filter>),
    /// Attribute (lowercase) and test.
    Item(String, Test),
}

/// Something a filter looks at: the values of an attribute (none when it
/// has no such attribute; several for multi-valued ones such as `school`).
pub trait Attributes {
    fn values(&self, attribute: &str) -> Vec<String>;
}

impl Filter {
    /// Parses a filter; `known` lists the attribute names allowed.
    pub fn parse(text: &str, known: &[&str]) -> Result<Filter, FilterError> {
        let chars: Vec<char> = text.chars().collect();
        let mut p = Parser {
            text,
            chars: &chars,
            pos: 0,
            depth: 0,
            known,
        };
        p.skip_space();
        let f = if p.peek() == Some('(') {
            p.filter()?
        } else {
            p.item(None)?
        };
        p.skip_space();
        if p.pos < chars.len() {
            return Err(p.error("unexpected text after the filter; combine filters with (&…) or (|…)"));
        }
        Ok(f)
    }

    pub fn matches(&self, object: &dyn Attributes) -> bool {
        match self {
            Filter::And(list) => list.iter().all(|f| f.matches(object)),
            Filter::Or(list) => list.iter().any(|f| f.matches(object)),
            Filter::Not(f) => !f.matches(object),
            Filter::Item(attr, test) => {
                let values = object.values(attr);
                values.iter().any(|v| test.matches(&v.to_lowercase()))
            }
        }
    }
}

impl Test {
    fn matches(&self, v: &str) -> bool {
        match self {
            Test::Present => true,
            Test::Equal(w) => v == w,
            Test::Greater(w) => v >= w.as_str(),
            Test::Less(w) => v <= w.as_str(),
            Test::Substring { initial, any, last } => {
                let Some(mut rest) = v.strip_prefix(initial.as_str()) else {
                    return false;
                };
                for part in any {
                    match rest.find(part.as_str()) {
                        Some(i) => rest = &rest[i + part.len()..],
                        None => return false,
                    }
                }
                rest.len() >= last.len() && rest.ends_with(last.as_str())
            }
        }
    }
}

impl fmt::Display for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Filter::And(l) | Filter::Or(l) => {
                write!(f, "({}", if matches!(self, Filter::And(_)) { "&" } else { "|" })?;
                for x in l {
                    write!(f, "{x}")?;
                }
                write!(f, ")")
            }
            Filter::Not(x) => write!(f, "(!{x})"),
            Filter::Item(a, t) => match t {
                Test::Present => write!(f, "({a}=*)"),
                Test::Equal(v) => write!(f, "({a}={})", escape(v)),
                Test::Greater(v) => write!(f, "({a}>={})", escape(v)),
                Test::Less(v) => write!(f, "({a}<={})", escape(v)),
                Test::Substring { initial, any, last } => {
                    write!(f, "({a}={}*", escape(initial))?;
                    for p in any {
                        write!(f, "{}*", escape(p))?;
                    }
                    write!(f, "{})", escape(last))
                }
            },
        }
    }
}

/// Escapes a value for a filter (RFC 4515 §3).
pub fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '*' => out.push_str("\\2a"),
            '(' => out.push_str("\\28"),
            ')' => out.push_str("\\29"),
            '\\' => out.push_str("\\5c"),
            '\0' => out.push_str("\\00"),
            c => out.push(c),
        }
    }
    out
}

struct Parser<'a> {
    text: &'a str,
    chars: &'a [char],
    pos: usize,
    /// Open parentheses around the current position.
    depth: usize,
    known: &'a [&'a str],
}

impl Parser<'_> {
    fn error(&self, message: impl Into<String>) -> FilterError {
        self.error_at(self.pos, message)
    }

    fn error_at(&self, pos: usize, message: impl Into<String>) -> FilterError {
        FilterError {
            text: self.text.to_string(),
            position: pos + 1,
            message: message.into(),
        }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn skip_space(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.pos += 1;
        }
    }

    fn expect(&mut self, c: char) -> Result<(), FilterError> {
        match self.peek() {
            Some(x) if x == c => {
                self.pos += 1;
                Ok(())
            }
            Some(x) => Err(self.error(format!("expected '{c}', found '{x}'"))),
            None => Err(self.error(format!("expected '{c}', found the end of the filter"))),
        }
    }

    /// `(` filtercomp `)`.
    fn filter(&mut self) -> Result<Filter, FilterError> {
        if self.depth >= MAX_DEPTH {
            return Err(self.error(format!(
                "filters nest deeper than {MAX_DEPTH} levels; write a flatter filter"
            )));
        }
        self.depth += 1;
        let f = self.filter_inner();
        self.depth -= 1;
        f
    }

    fn filter_inner(&mut self) -> Result<Filter, FilterError> {
        self.expect('(')?;
        self.skip_space();
        let f = match self.peek() {
            Some('&') => {
                self.pos += 1;
                Filter::And(self.list('&')?)
            }
            Some('|') => {
                self.pos += 1;
                Filter::Or(self.list('|')?)
            }
            Some('!') => {
                self.pos += 1;
                self.skip_space();
                if self.peek() != Some('(') {
                    return Err(self.error("'!' takes one filter in parentheses, e.g. (!(role=student))"));
                }
                Filter::Not(Box::new(self.filter()?))
            }
            _ => self.item(Some(')'))?,
        };
        self.skip_space();
        self.expect(')')?;
        Ok(f)
    }

    fn list(&mut self, op: char) -> Result<Vec<Filter>, FilterError> {
        let mut out = Vec::new();
        loop {
            self.skip_space();
            match self.peek() {
                Some('(') => out.push(self.filter()?),
                _ if out.is_empty() => {
                    return Err(self.error(format!("'{op}' needs at least one filter in parentheses")));
                }
                _ => return Ok(out),
            }
        }
    }

    /// `attr op value`, up to `end` (or the end of the text).
    fn item(&mut self, end: Option<char>) -> Result<Filter, FilterError> {
        let start = self.pos;
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            self.pos += 1;
        }
        if self.pos == start {
            return Err(match self.peek() {
                Some(c) => self.error(format!("expected an attribute name, found '{c}'")),
                None => self.error("expected an attribute name, found the end of the filter"),
            });
        }
        let attr: String = self.chars[start..self.pos].iter().collect::<String>().to_lowercase();
        if !self.known.contains(&attr.as_str()) {
            return Err(self.error_at(
                start,
                format!("unknown attribute '{attr}'; known: {}", self.known.join(", ")),
            ));
        }
        let op_at = self.pos;
        let op = match (self.peek(), self.chars.get(self.pos + 1).copied()) {
            (Some('='), _) => "=",
            (Some('~'), Some('=')) => "~=",
            (Some('>'), Some('=')) => ">=",
            (Some('<'), Some('=')) => "<=",
            (Some(c), _) => return Err(self.error(format!("expected =, ~=, >= or <= after '{attr}', found '{c}'"))),
            (None, _) => return Err(self.error(format!("expected =, ~=, >= or <= after '{attr}'"))),
        };
        self.pos += op.len();
        // The value: parts split at unescaped '*'.
        let mut parts: Vec<String> = vec![String::new()];
        let mut bytes: Vec<u8> = Vec::new();
        let flush = |bytes: &mut Vec<u8>, part: &mut String, at: usize, p: &Self| -> Result<(), FilterError> {
            if !bytes.is_empty() {
                let s = String::from_utf8(std::mem::take(bytes))
                    .map_err(|_| p.error_at(at, "the escaped bytes are not UTF-8"))?;
                part.push_str(&s);
            }
            Ok(())
        };
        loop {
            let at = self.pos;
            match self.peek() {
                None if end.is_some() => return Err(self.error("the filter ends inside a value; a ')' is missing")),
                None => break,
                Some(c) if Some(c) == end => break,
                Some('(') => {
                    return Err(self.error("'(' in a value must be escaped as \\28"));
                }
                Some(')') => {
                    return Err(self.error("')' in a value must be escaped as \\29 (or a '(' is missing)"));
                }
                Some('*') => {
                    let last = parts.len() - 1;
                    flush(&mut bytes, &mut parts[last], at, self)?;
                    parts.push(String::new());
                    self.pos += 1;
                }
                Some('\\') => {
                    let hex: String = self.chars.iter().skip(self.pos + 1).take(2).collect();
                    // Two hex digits exactly (`from_str_radix` alone would take "+f").
                    let byte = (hex.len() == 2 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
                        .then(|| u8::from_str_radix(&hex, 16).ok())
                        .flatten()
                        .ok_or_else(|| self.error("'\\' must be followed by two hex digits, e.g. \\2a for '*'"))?;
                    bytes.push(byte);
                    self.pos += 3;
                }
                Some(c) => {
                    let last = parts.len() - 1;
                    flush(&mut bytes, &mut parts[last], at, self)?;
                    parts[last].push(c);
                    self.pos += 1;
                }
            }
        }
        let last = parts.len() - 1;
        flush(&mut bytes, &mut parts[last], self.pos, self)?;
        let parts: Vec<String> = parts.into_iter().map(|p| p.to_lowercase()).collect();
        let test = if parts.len() == 1 {
            let v = parts.into_iter().next().unwrap_or_default();
            match op {
                ">=" => Test::Greater(v),
                "<=" => Test::Less(v),
                _ => Test::Equal(v),
            }
        } else if op != "=" {
            return Err(self.error_at(op_at, format!("'*' is only allowed with '=' (found '{op}')")));
        } else if parts.iter().all(String::is_empty) {
            // `*`, `**`, …: any value at all.
            Test::Present
        } else {
            let n = parts.len();
            let mut it = parts.into_iter();
            let initial = it.next().unwrap_or_default();
            let mut middle: Vec<String> = it.collect();
            let last = middle.pop().unwrap_or_default();
            let any: Vec<String> = middle.into_iter().filter(|p| !p.is_empty()).collect();
            debug_assert!(n >= 2);
            Test::Substring { initial, any, last }
        };
        Ok(Filter::Item(attr, test))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    const KNOWN: &[&str] = &["school", "role", "username", "firstname", "lastname", "email"];

    struct Obj(BTreeMap<&'static str, Vec<&'static str>>);

    impl Attributes for Obj {
        fn values(&self, a: &str) -> Vec<String> {
            self.0
                .get(a)
                .map(|v| v.iter().map(|s| s.to_string()).collect())
                .unwrap_or_default()
        }
    }

    fn anna() -> Obj {
        Obj(BTreeMap::from([
            ("school", vec!["gsmitte", "gsnord"]),
            ("role", vec!["student"]),
            ("username", vec!["a.alt"]),
            ("firstname", vec!["Anna (Ann)"]),
            ("lastname", vec!["Alt*"]),
        ]))
    }

    fn m(f: &str) -> bool {
        Filter::parse(f, KNOWN).unwrap().matches(&anna())
    }

    #[test]
    fn boolean_operators_equality_presence_and_substrings() {
        assert!(m("(&(school=gsmitte)(role=student))"));
        assert!(m("(&(school=GSNORD)(role=student))"), "values ignore case");
        assert!(!m("(&(school=gssued)(role=student))"));
        assert!(m("(|(school=gssued)(username=a.alt))"));
        assert!(m("(!(role=teacher))"));
        assert!(!m("(!(role=student))"));
        assert!(m("(username=a.*)"));
        assert!(m("username=a.*"), "outer parentheses may be left out");
        assert!(m("(username=*alt)"));
        assert!(m("(username=a*l*t)"));
        assert!(!m("(username=a*x*t)"));
        assert!(!m("(username=*alt*x)"));
        assert!(m("(firstname=*)"));
        assert!(!m("(email=*)"), "absent attribute is not present");
        assert!(!m("(email=x)"));
        assert!(m("(!(email=*))"));
        assert!(m("(USERNAME=a.alt)"), "attribute names ignore case");
        assert!(m("(username>=a)"));
        assert!(!m("(username<=a)"));
        assert!(m("(username~=A.ALT)"));
        assert!(m(" ( & (school=gsmitte) (role=student) ) "));
    }

    #[test]
    fn escapes_match_literal_specials() {
        assert!(m("(lastname=Alt\\2a)"), "\\2a is a literal '*'");
        assert!(!m("(lastname=Al\\2a)"));
        assert!(m("(firstname=Anna \\28Ann\\29)"));
        assert!(m("(firstname=*\\28*)"));
        assert!(m("(lastname=alt\\2A)"), "hex digits in either case");
        let f = Filter::parse("(lastname=a\\5cb\\c3\\a4)", KNOWN).unwrap();
        assert_eq!(f, Filter::Item("lastname".into(), Test::Equal("a\\bä".into())));
        assert_eq!(escape("a*(b)\\"), "a\\2a\\28b\\29\\5c");
        let round = Filter::parse(&format!("(lastname={})", escape("x*(y)")), KNOWN).unwrap();
        assert_eq!(round, Filter::Item("lastname".into(), Test::Equal("x*(y)".into())));
        assert_eq!(round.to_string(), "(lastname=x\\2a\\28y\\29)");
    }

    #[test]
    fn errors_name_the_position() {
        let e = |f: &str| Filter::parse(f, KNOWN).unwrap_err();
        let x = e("(&(school=gsmitte)(role=student)");
        assert_eq!(x.position, 33, "{x}");
        assert!(x.message.contains("expected ')'"), "{x}");
        let x = e("(colour=red)");
        assert_eq!(x.position, 2);
        assert!(x.message.contains("unknown attribute 'colour'") && x.message.contains("username"));
        let x = e("(username=a\\2)");
        assert_eq!(x.position, 12);
        assert!(x.message.contains("two hex digits"));
        let x = e("(username=a(b)");
        assert_eq!(x.position, 12);
        let x = e("(&)");
        assert_eq!(x.position, 3);
        let x = e("(!role=student)");
        assert!(x.message.contains("'!' takes one filter"), "{x}");
        let x = e("(username>=a*)");
        assert_eq!(x.position, 10);
        let x = e("(school=a)(role=b)");
        assert_eq!(x.position, 11);
        assert!(
            x.to_string()
                .starts_with("filter \"(school=a)(role=b)\": at position 11")
        );
        let x = e("(username)");
        assert!(x.message.contains("expected =, ~=, >= or <="), "{x}");
        let x = e("(lastname=\\ff)");
        assert!(x.message.contains("UTF-8"), "{x}");
        let x = e("(username=\\+f)");
        assert!(x.message.contains("two hex digits"), "a sign is not a hex digit: {x}");
    }

    #[test]
    fn deep_nesting_is_refused_not_a_stack_overflow() {
        let nested = |n: usize| format!("{}(role=student){}", "(!".repeat(n), ")".repeat(n));
        assert!(Filter::parse(&nested(MAX_DEPTH - 1), KNOWN).is_ok());
        let x = Filter::parse(&nested(MAX_DEPTH), KNOWN).unwrap_err();
        assert!(x.message.contains("nest deeper"), "{x}");
        let x = Filter::parse(&"(&".repeat(100_000), KNOWN).unwrap_err();
        assert_eq!(x.position, 2 * MAX_DEPTH + 1, "{x}");
    }

    #[test]
    fn only_stars_is_presence_and_prints_back_the_same() {
        for f in ["(username=**)", "(username=***)"] {
            let p = Filter::parse(f, KNOWN).unwrap();
            assert_eq!(p, Filter::Item("username".into(), Test::Present), "{f}");
            assert_eq!(Filter::parse(&p.to_string(), KNOWN).unwrap(), p);
        }
    }
}
