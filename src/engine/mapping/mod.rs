//! Mapping feed records onto model attributes. Rules come from a rules file
//! (see [`rules`]) and/or the simple header renames of
//! `[import.csv.mapping]`; without either, a field named like an attribute
//! feeds it. Unknown fields are refused unless ignored, so a renamed column
//! in an export is noticed instead of silently dropped.

mod filters;
pub mod rules;

use crate::engine::config::{FEED_ATTRIBUTES, IGNORE};
use crate::engine::feed::RawRecord;
use crate::model::Role;
use filters::Filter;
pub use rules::RulesFile;
use std::collections::{BTreeMap, HashMap, HashSet};

/// The model attributes a feed can fill, in [`FEED_ATTRIBUTES`] order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Attr {
    RecordUid,
    Firstname,
    Lastname,
    Email,
    Birthday,
    Classes,
    Workgroups,
    Role,
    Schools,
}

pub const ATTRS: [Attr; 9] = [
    Attr::RecordUid,
    Attr::Firstname,
    Attr::Lastname,
    Attr::Email,
    Attr::Birthday,
    Attr::Classes,
    Attr::Workgroups,
    Attr::Role,
    Attr::Schools,
];

impl Attr {
    pub fn parse(name: &str) -> Option<Attr> {
        FEED_ATTRIBUTES.iter().position(|a| *a == name).map(|i| ATTRS[i])
    }

    pub fn name(self) -> &'static str {
        FEED_ATTRIBUTES[self as usize]
    }
}

#[derive(Clone, Debug)]
enum Source {
    /// Index into the mapper's source-field slots.
    Slot(usize),
    /// Any one of these fields (header aliases from `[import.csv.mapping]`).
    AnyOf(Vec<usize>),
    Constant(String),
}

#[derive(Clone, Debug)]
struct Compiled {
    /// `fields.birthday`, for messages.
    rule: String,
    source: Source,
    filters: Vec<Filter>,
    default: Option<String>,
}

#[derive(Clone, Debug)]
struct Skip {
    rule: String,
    slot: usize,
    one_of: Vec<String>,
    if_empty: bool,
}

type AttrRules = [Option<Compiled>; 9];

/// A record mapped onto attributes. `None`: the record gives the attribute
/// no value at all (no such field), which differs from an empty one (e.g.
/// workgroups are kept when not given).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MappedRecord {
    pub line: u64,
    pub index: u64,
    pub values: [Option<String>; 9],
}

impl MappedRecord {
    pub fn get(&self, attr: Attr) -> &str {
        self.values[attr as usize].as_deref().unwrap_or("")
    }

    pub fn given(&self, attr: Attr) -> bool {
        self.values[attr as usize].is_some()
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mapped {
    Record(MappedRecord),
    /// A skip rule matched.
    Skipped {
        line: u64,
        rule: String,
    },
}

/// A rule failed for a record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MapError {
    pub rule: String,
    pub message: String,
}

/// Compiled rules plus what is known of the current feed's fields.
pub struct Mapper {
    base: AttrRules,
    roles: BTreeMap<Role, AttrRules>,
    base_skip: Vec<Skip>,
    role_skip: BTreeMap<Role, Vec<Skip>>,
    /// Source field names (lower-case) the rules read.
    slots: Vec<String>,
    slot_of: HashMap<String, usize>,
    ignore: HashSet<String>,
    ignore_unknown: bool,
    /// Field id of the feed → slot (None: ignored).
    id_slot: Vec<Option<usize>>,
    /// Where the rules came from, for messages.
    origin: Option<String>,
    role_aliases: BTreeMap<String, Role>,
}

/// Reads a mapping-rules file; errors name the file (and the TOML line).
pub fn load_rules(path: &std::path::Path) -> Result<RulesFile, String> {
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("mapping rules {}: cannot read: {e}", path.display()))?;
    toml::from_str(&text).map_err(|e| {
        format!(
            "mapping rules {}: {}",
            path.display(),
            e.to_string().trim_end().replace('\n', "\n  ")
        )
    })
}

fn lower(s: &str) -> String {
    s.trim().to_lowercase()
}

impl Mapper {
    /// Builds a mapper from a rules file (with its path, for messages),
    /// header renames (`[import.csv.mapping]`) and role aliases.
    pub fn new(
        rules: Option<(&RulesFile, &str)>,
        renames: &BTreeMap<String, String>,
        role_aliases: &BTreeMap<String, Role>,
    ) -> Result<Mapper, String> {
        let mut m = Mapper {
            base: Default::default(),
            roles: BTreeMap::new(),
            base_skip: Vec::new(),
            role_skip: BTreeMap::new(),
            slots: Vec::new(),
            slot_of: HashMap::new(),
            ignore: HashSet::new(),
            ignore_unknown: false,
            id_slot: Vec::new(),
            origin: rules.map(|(_, o)| o.to_string()),
            role_aliases: role_aliases.clone(),
        };
        let empty = RulesFile::default();
        let file = rules.map(|(r, _)| r).unwrap_or(&empty);
        m.ignore_unknown = file.ignore_unknown;
        m.ignore.extend(file.ignore.iter().map(|s| lower(s)));
        // Renames give attributes their source fields (aliases) unless a
        // rule does; the attribute's own name always counts too.
        let mut aliases: BTreeMap<Attr, Vec<String>> = BTreeMap::new();
        for (header, target) in renames {
            if target == IGNORE {
                m.ignore.insert(lower(header));
                continue;
            }
            let attr = Attr::parse(target)
                .ok_or_else(|| format!("[import.csv.mapping] \"{header}\" = \"{target}\": not an attribute"))?;
            aliases.entry(attr).or_default().push(header.clone());
        }
        for attr in ATTRS {
            let compiled = match file.fields.get(attr.name()) {
                Some(rule) => m.compile(&format!("fields.{}", attr.name()), attr, rule)?,
                None => {
                    let mut fields = aliases.remove(&attr).unwrap_or_default();
                    fields.push(attr.name().to_string());
                    let slots: Vec<usize> = fields.iter().map(|f| m.slot(f)).collect();
                    Compiled {
                        rule: format!("field {}", fields.join(" / ")),
                        source: Source::AnyOf(slots),
                        filters: Vec::new(),
                        default: None,
                    }
                }
            };
            m.base[attr as usize] = Some(compiled);
        }
        for name in file.fields.keys() {
            if Attr::parse(name).is_none() {
                return Err(format!(
                    "[fields.{name}]: '{name}' is not an attribute (use {})",
                    FEED_ATTRIBUTES.join(", ")
                ));
            }
        }
        m.base_skip = m.compile_skips("skip", &file.skip)?;
        for (role, rr) in &file.roles {
            let mut rules: AttrRules = Default::default();
            for (name, rule) in &rr.fields {
                let attr = Attr::parse(name)
                    .ok_or_else(|| format!("[roles.{role}.fields.{name}]: '{name}' is not an attribute"))?;
                rules[attr as usize] = Some(m.compile(&format!("roles.{role}.fields.{name}"), attr, rule)?);
            }
            m.roles.insert(*role, rules);
            let skips = m.compile_skips(&format!("roles.{role}.skip"), &rr.skip)?;
            m.role_skip.insert(*role, skips);
        }
        Ok(m)
    }

    fn slot(&mut self, field: &str) -> usize {
        let key = lower(field);
        if let Some(s) = self.slot_of.get(&key) {
            return *s;
        }
        self.slots.push(key.clone());
        self.slot_of.insert(key, self.slots.len() - 1);
        self.slots.len() - 1
    }

    fn compile(&mut self, rule: &str, attr: Attr, r: &rules::FieldRule) -> Result<Compiled, String> {
        let source = match (&r.from, &r.value) {
            (Some(_), Some(_)) => return Err(format!("[{rule}]: give either `from` or `value`, not both")),
            (Some(f), None) => Source::Slot(self.slot(f)),
            (None, Some(v)) => Source::Constant(v.clone()),
            (None, None) => Source::Slot(self.slot(attr.name())),
        };
        let filters = r
            .filters
            .iter()
            .map(|f| Filter::parse(f).map_err(|e| format!("[{rule}]: {e}")))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Compiled {
            rule: rule.to_string(),
            source,
            filters,
            default: r.default.clone(),
        })
    }

    fn compile_skips(&mut self, prefix: &str, skips: &[rules::SkipRule]) -> Result<Vec<Skip>, String> {
        skips
            .iter()
            .enumerate()
            .map(|(i, s)| {
                if s.one_of_is_empty_and_not_if_empty() {
                    return Err(format!("[{prefix}[{i}]]: give `if_value_one_of` or `if_empty = true`"));
                }
                Ok(Skip {
                    rule: format!("{prefix}[{i}] ({})", s.field),
                    slot: self.slot(&s.field),
                    one_of: s.if_value_one_of.iter().map(|v| v.trim().to_lowercase()).collect(),
                    if_empty: s.if_empty,
                })
            })
            .collect()
    }

    /// Takes note of field names the reader reports (all of them, in id
    /// order; only new ones are checked). Errors name the first unknown one.
    pub fn learn_fields(&mut self, names: &[String]) -> Result<(), FieldProblem> {
        if names.len() == self.id_slot.len() {
            return Ok(());
        }
        for name in names.iter().skip(self.id_slot.len()) {
            let key = lower(name);
            let slot = self.slot_of.get(&key).copied();
            if slot.is_none() && !self.ignore.contains(&key) && !self.ignore_unknown {
                return Err(FieldProblem {
                    field: name.clone(),
                    problem: match &self.origin {
                        Some(path) => format!(
                            "is not mapped: no rule in {path} uses it; map it under [fields] or list it in `ignore`"
                        ),
                        None => format!(
                            "is not an attribute; map it in [import.csv.mapping] (\"{name}\" = \"lastname\", say) \
                             or ignore it with \"{name}\" = \"{IGNORE}\""
                        ),
                    },
                });
            }
            self.id_slot.push(slot);
        }
        // Two present fields feeding one attribute through aliases.
        for c in self.base.iter().flatten() {
            if let Source::AnyOf(slots) = &c.source {
                let present: Vec<&str> = names
                    .iter()
                    .zip(&self.id_slot)
                    .filter(|(_, s)| s.is_some_and(|s| slots.contains(&s)))
                    .map(|(n, _)| n.as_str())
                    .collect();
                if present.len() > 1 {
                    return Err(FieldProblem {
                        field: present[1].to_string(),
                        problem: format!(
                            "feeds the same attribute as '{}'; keep one of them or map one to \"{IGNORE}\"",
                            present[0]
                        ),
                    });
                }
            }
        }
        Ok(())
    }

    /// Whether an attribute gets a value from a field among `names` (or a
    /// constant). For formats with a header, before the first record.
    pub fn sourced(&self, attr: Attr) -> bool {
        match self.base[attr as usize].as_ref().map(|c| &c.source) {
            Some(Source::Constant(_)) => true,
            Some(Source::Slot(s)) => self.id_slot.contains(&Some(*s)),
            Some(Source::AnyOf(slots)) => slots.iter().any(|s| self.id_slot.contains(&Some(*s))),
            None => false,
        }
    }

    /// The source field name of an attribute's base rule, for messages.
    pub fn source_name(&self, attr: Attr) -> String {
        match self.base[attr as usize].as_ref().map(|c| &c.source) {
            Some(Source::Slot(s)) => self.slots[*s].clone(),
            Some(Source::AnyOf(slots)) => slots.last().map(|s| self.slots[*s].clone()).unwrap_or_default(),
            Some(Source::Constant(c)) => format!("the constant '{c}'"),
            None => attr.name().to_string(),
        }
    }

    fn role_of(&self, value: &str) -> Option<Role> {
        let first = value.split(',').map(str::trim).find(|s| !s.is_empty())?;
        self.role_aliases
            .iter()
            .find(|(k, _)| k.trim().eq_ignore_ascii_case(first))
            .map(|(_, r)| *r)
            .or_else(|| first.parse().ok())
    }

    /// The record uid a record maps to, when it can be told (for errors).
    pub fn record_uid(&self, rec: &RawRecord) -> Option<String> {
        let c = self.base[Attr::RecordUid as usize].as_ref()?;
        let mut vals: Vec<Option<&str>> = vec![None; self.slots.len()];
        for (id, v) in &rec.fields {
            if let Some(Some(slot)) = self.id_slot.get(*id) {
                vals[*slot] = Some(v.as_str());
            }
        }
        apply(c, &vals)
            .ok()
            .flatten()
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    }

    /// Maps one record. `run_role`: the run's role when it imports exactly one.
    pub fn map(&self, rec: &RawRecord, run_role: Option<Role>) -> Result<Mapped, MapError> {
        let mut vals: Vec<Option<&str>> = vec![None; self.slots.len()];
        for (id, v) in &rec.fields {
            if let Some(Some(slot)) = self.id_slot.get(*id) {
                vals[*slot] = Some(v.as_str());
            }
        }
        if let Some(rule) = skipped(&self.base_skip, &vals) {
            return Ok(Mapped::Skipped { line: rec.line, rule });
        }
        let mut values: [Option<String>; 9] = Default::default();
        for attr in ATTRS {
            if let Some(c) = &self.base[attr as usize] {
                values[attr as usize] = apply(c, &vals)?;
            }
        }
        let role = values[Attr::Role as usize]
            .as_deref()
            .and_then(|v| self.role_of(v))
            .or(run_role);
        if let Some(role) = role {
            if let Some(rule) = self.role_skip.get(&role).and_then(|s| skipped(s, &vals)) {
                return Ok(Mapped::Skipped { line: rec.line, rule });
            }
            if let Some(over) = self.roles.get(&role) {
                for attr in ATTRS {
                    if let Some(c) = &over[attr as usize] {
                        values[attr as usize] = apply(c, &vals)?;
                    }
                }
            }
        }
        Ok(Mapped::Record(MappedRecord {
            line: rec.line,
            index: rec.index,
            values,
        }))
    }
}

impl rules::SkipRule {
    fn one_of_is_empty_and_not_if_empty(&self) -> bool {
        self.if_value_one_of.is_empty() && !self.if_empty
    }
}

/// A field the rules cannot take: unknown, or a second source of one
/// attribute. `problem` completes "field 'X' …".
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldProblem {
    pub field: String,
    pub problem: String,
}

fn skipped(skips: &[Skip], vals: &[Option<&str>]) -> Option<String> {
    skips.iter().find_map(|s| {
        let v = vals[s.slot].unwrap_or("").trim();
        let hit = (s.if_empty && v.is_empty()) || s.one_of.iter().any(|o| o.eq_ignore_ascii_case(v));
        hit.then(|| s.rule.clone())
    })
}

fn apply(c: &Compiled, vals: &[Option<&str>]) -> Result<Option<String>, MapError> {
    let mut value = match &c.source {
        Source::Constant(v) => Some(v.clone()),
        Source::Slot(s) => vals[*s].map(str::to_string),
        Source::AnyOf(slots) => slots.iter().find_map(|s| vals[*s]).map(str::to_string),
    };
    if let Some(v) = value.take() {
        let mut v = v;
        for f in &c.filters {
            v = f.apply(v).map_err(|message| MapError {
                rule: format!("{} filter {f}", c.rule),
                message,
            })?;
        }
        value = Some(v);
    }
    if value.as_deref().is_none_or(|v| v.trim().is_empty())
        && let Some(d) = &c.default
    {
        value = Some(d.clone());
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(fields: &[(usize, &str)]) -> RawRecord {
        RawRecord {
            line: 7,
            index: 3,
            fields: fields.iter().map(|(i, v)| (*i, v.to_string())).collect(),
        }
    }

    fn rules(text: &str) -> RulesFile {
        toml::from_str(text).unwrap()
    }

    fn names(n: &[&str]) -> Vec<String> {
        n.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn rename_constant_filters_default_and_skip() {
        let r = rules(
            r#"
ignore = ["Note"]
[fields]
record_uid = { from = "ID" }
firstname = { from = "Vorname", filters = ["trim", "upper"] }
lastname = { from = "Nachname" }
birthday = { from = "Geb", filters = ["date(%d.%m.%Y)"] }
classes = { from = "Klassen", filters = ["split(;)"], default = "none" }
role = { value = "student" }
[[skip]]
field = "Status"
if_value_one_of = ["weg"]
"#,
        );
        let mut m = Mapper::new(Some((&r, "m.toml")), &BTreeMap::new(), &BTreeMap::new()).unwrap();
        m.learn_fields(&names(&[
            "ID", "Vorname", "Nachname", "Geb", "Klassen", "Status", "Note",
        ]))
        .unwrap();
        let Mapped::Record(out) = m
            .map(
                &rec(&[
                    (0, "1"),
                    (1, " max "),
                    (2, "M"),
                    (3, "04.03.2012"),
                    (4, "5a;5b"),
                    (5, "da"),
                    (6, "x"),
                ]),
                None,
            )
            .unwrap()
        else {
            panic!()
        };
        assert_eq!(out.get(Attr::Firstname), "MAX");
        assert_eq!(out.get(Attr::Birthday), "2012-03-04");
        assert_eq!(out.get(Attr::Classes), "5a,5b");
        assert_eq!(out.get(Attr::Role), "student");
        assert!(!out.given(Attr::Workgroups));
        let Mapped::Record(out) = m.map(&rec(&[(0, "2"), (4, "")]), None).unwrap() else {
            panic!()
        };
        assert_eq!(out.get(Attr::Classes), "none");
        assert!(matches!(
            m.map(&rec(&[(0, "3"), (5, "WEG")]), None).unwrap(),
            Mapped::Skipped { .. }
        ));
        let e = m.map(&rec(&[(0, "4"), (3, "31.02.2012")]), None).unwrap_err();
        assert!(e.rule.contains("fields.birthday") && e.rule.contains("date"), "{e:?}");
    }

    #[test]
    fn unknown_fields_are_refused_unless_ignored() {
        let mut m = Mapper::new(None, &BTreeMap::new(), &BTreeMap::new()).unwrap();
        let e = m.learn_fields(&names(&["record_uid", "Foo"])).unwrap_err();
        assert_eq!(e.field, "Foo");
        let r = rules("ignore_unknown = true");
        let mut m = Mapper::new(Some((&r, "x")), &BTreeMap::new(), &BTreeMap::new()).unwrap();
        assert!(m.learn_fields(&names(&["record_uid", "Foo"])).is_ok());
        assert!(m.sourced(Attr::RecordUid) && !m.sourced(Attr::Lastname));
    }

    #[test]
    fn per_role_overrides() {
        let r = rules(
            r#"
[fields]
classes = { from = "Klasse" }
[roles.teacher.fields]
classes = { from = "Unterricht", filters = ["split(/)"] }
"#,
        );
        let mut m = Mapper::new(Some((&r, "x")), &BTreeMap::new(), &BTreeMap::new()).unwrap();
        m.learn_fields(&names(&["record_uid", "role", "Klasse", "Unterricht"]))
            .unwrap();
        let map = |role: &str| match m
            .map(&rec(&[(0, "1"), (1, role), (2, "5a"), (3, "6b/7c")]), None)
            .unwrap()
        {
            Mapped::Record(r) => r.get(Attr::Classes).to_string(),
            Mapped::Skipped { .. } => panic!(),
        };
        assert_eq!(map("student"), "5a");
        assert_eq!(map("teacher"), "6b,7c");
    }

    #[test]
    fn bad_rules_are_refused() {
        for (text, needle) in [
            ("[fields]\nnickname = { from = \"x\" }", "not an attribute"),
            ("[fields]\nfirstname = { from = \"a\", value = \"b\" }", "either"),
            ("[fields]\nfirstname = { filters = [\"shout\"] }", "unknown filter"),
            ("[[skip]]\nfield = \"x\"", "if_value_one_of"),
        ] {
            let r = rules(text);
            let e = Mapper::new(Some((&r, "x")), &BTreeMap::new(), &BTreeMap::new())
                .err()
                .unwrap();
            assert!(e.contains(needle), "{e}");
        }
    }
}
