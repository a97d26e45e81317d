//! Tests of the username and e-mail schemes.

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
    let names: Vec<String> = (0..3).map(|_| scheme.allocate(&max, &mut registry).unwrap()).collect();
    assert_eq!(names, ["m.mustermann", "m.mustermann2", "m.mustermann3"]);
    assert_eq!(registry.counters.get("m.mustermann"), Some(&4));
}

#[test]
fn always_counter_counts_from_one() {
    let scheme = UsernameScheme::parse("<firstname>[0].<lastname>[ALWAYSCOUNTER]", 20).unwrap();
    assert_eq!(scheme.counter(), Counter::Always);
    let mut registry = MemRegistry::default();
    let max = person("Max", "Mustermann");
    let names: Vec<String> = (0..3).map(|_| scheme.allocate(&max, &mut registry).unwrap()).collect();
    assert_eq!(names, ["m.mustermann1", "m.mustermann2", "m.mustermann3"]);
    assert!(!registry.issued.contains("m.mustermann"));
}

#[test]
fn freed_names_are_not_reissued() {
    let scheme = default_scheme();
    let mut registry = MemRegistry::default();
    let max = person("Max", "Mustermann");
    assert_eq!(scheme.allocate(&max, &mut registry).unwrap(), "m.mustermann");
    registry.delete_user("m.mustermann");
    assert_eq!(scheme.allocate(&max, &mut registry).unwrap(), "m.mustermann2");
    registry.delete_user("m.mustermann2");
    // Even with the counter lost, the issued set keeps both names away.
    registry.counters.clear();
    assert_eq!(scheme.allocate(&max, &mut registry).unwrap(), "m.mustermann3");
}

#[test]
fn freed_name_without_counter_is_an_error() {
    let scheme = UsernameScheme::parse("<firstname>.<lastname>", 20).unwrap();
    assert_eq!(scheme.counter(), Counter::None);
    let mut registry = MemRegistry::default();
    let max = person("Max", "Mustermann");
    assert_eq!(scheme.allocate(&max, &mut registry).unwrap(), "max.mustermann");
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
    assert!(message.contains("\"max.mustermann\" is already taken"), "{message}");
    assert!(message.contains("[COUNTER2]"), "{message}");
}

#[test]
fn existing_directory_names_without_counter_are_skipped() {
    let scheme = default_scheme();
    let mut registry = MemRegistry::default();
    registry.in_use.insert("m.mustermann".into());
    registry.in_use.insert("m.mustermann2".into());
    let max = person("Max", "Mustermann");
    assert_eq!(scheme.allocate(&max, &mut registry).unwrap(), "m.mustermann3");
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
    assert_eq!(scheme.allocate(&max, &mut registry).unwrap(), "m.mustermann7");
    assert_eq!(registry.counters.get("m.mustermann"), Some(&8));
}

#[test]
fn nonsense_stored_counters_are_raised_to_the_first_value() {
    let mut registry = MemRegistry::default();
    registry.counters.insert("m.mustermann".into(), 0);
    let max = person("Max", "Mustermann");
    assert_eq!(default_scheme().allocate(&max, &mut registry).unwrap(), "m.mustermann2");
    let always = UsernameScheme::parse("<firstname>[0].<lastname>[ALWAYSCOUNTER]", 20).unwrap();
    registry.counters.insert("m.mustermann".into(), 0);
    assert_eq!(always.allocate(&max, &mut registry).unwrap(), "m.mustermann1");
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
    let err = scheme.allocate(&person("", "M"), &mut registry).unwrap_err();
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
        scheme.allocate(&person("Jörg", "Müller"), &mut registry).unwrap(),
        "j.mueller"
    );
    assert_eq!(
        scheme.allocate(&person("Ägidius", "Ößwald"), &mut registry).unwrap(),
        "ae.oesswald"
    );
    assert_eq!(
        scheme.allocate(&person("Änne", "Schmidt"), &mut registry).unwrap(),
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
    assert_eq!(base_of(DEFAULT_USERNAME_SCHEME, "Łukasz", "Wałęsa"), "l.walesa");
    assert_eq!(base_of(DEFAULT_USERNAME_SCHEME, "Søren", "Ærø"), "s.aero");
    assert_eq!(base_of(DEFAULT_USERNAME_SCHEME, "Zoë", "Çelik"), "z.celik");
    assert_eq!(base_of(DEFAULT_USERNAME_SCHEME, "Đorđe", "Þórsson"), "d.thorsson");
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
    assert_eq!(base_of("<:umlauts><firstname>[0:2]", "O\u{308}dön", ""), "oed");
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
    assert_eq!(base_of("<:umlauts><lastname>", "", "Groß-Müller"), "gross-mueller");
}

#[test]
fn leading_and_trailing_separators_are_trimmed() {
    assert_eq!(base_of("<firstname>.<lastname>", "", "Mustermann"), "mustermann");
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
    let err = scheme.allocate(&person("!!!", "???"), &mut registry).unwrap_err();
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
    assert!(err.to_string().contains("gives an empty name for record \"r1\""));
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
    assert_eq!(base_of("<firstname>[0:100].<lastname>", "Max", "M"), "max.m");
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
    assert_eq!(problem(UsernameScheme::parse("<lastname>", 3)), P::MaxLengthTooSmall(3));
    assert_eq!(username_problem("x.<lastname"), P::UnclosedAngle(3));
    assert_eq!(username_problem("<lastname>[0"), P::UnclosedBracket(11));
    assert_eq!(username_problem("<lastname>[0<x>]"), P::UnclosedBracket(11));
    assert_eq!(username_problem("<lastname>>"), P::Unexpected { ch: '>', column: 11 });
    assert_eq!(username_problem("a]<lastname>"), P::Unexpected { ch: ']', column: 2 });
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
    assert_eq!(scheme.base(&person("Max", "Mustermann")).unwrap(), "m.mustermann");
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
        assert!(matches!(email_problem(&scheme), P::BadDomain { .. }), "{scheme}");
    }
    let label = "a".repeat(64);
    assert!(matches!(
        email_problem(&format!("<username>@{label}.org")),
        P::BadDomain { .. }
    ));
    let err = EmailScheme::parse("<username>@x..org").unwrap_err();
    assert!(err.to_string().contains("invalid domain \"x..org\""), "{err}");
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
