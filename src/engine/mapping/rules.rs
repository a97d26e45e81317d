//! The mapping-rules file (TOML), one per source format. Example:
//!
//! ```toml
//! ignore = ["Bemerkung"]                 # fields to drop; other unknown fields are errors
//! [fields]
//! record_uid = { from = "ID" }
//! firstname  = { from = "Vorname", filters = ["trim"] }
//! birthday   = { from = "Geburtsdatum", filters = ["date(%d.%m.%Y)"] }
//! classes    = { from = "Klassen", filters = ["split(;)"], default = "" }
//! role       = { value = "student" }     # a constant
//! [[skip]]
//! field = "Status"
//! if_value_one_of = ["abgemeldet", "beurlaubt"]
//! [roles.teacher.fields]
//! classes = { from = "Unterricht", filters = ["split(,)"] }
//! ```

use crate::engine::feed::{Format, XmlFields};
use crate::model::Role;
use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RulesFile {
    /// The format these rules are written for (documentation, and a check).
    pub format: Option<Format>,
    /// XML only: where records keep their fields.
    pub xml_fields: Option<XmlFields>,
    /// Source fields to drop.
    #[serde(default)]
    pub ignore: Vec<String>,
    /// Drop every field no rule mentions instead of refusing the file.
    #[serde(default)]
    pub ignore_unknown: bool,
    /// Attribute → rule.
    #[serde(default)]
    pub fields: BTreeMap<String, FieldRule>,
    #[serde(default)]
    pub skip: Vec<SkipRule>,
    /// Rules that replace the base ones for records of a role.
    #[serde(default)]
    pub roles: BTreeMap<Role, RoleRules>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldRule {
    /// The source field (default: the field named like the attribute).
    pub from: Option<String>,
    /// A constant instead of a field.
    pub value: Option<String>,
    #[serde(default)]
    pub filters: Vec<String>,
    /// Used when the value is empty after the filters.
    pub default: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SkipRule {
    pub field: String,
    #[serde(default)]
    pub if_value_one_of: Vec<String>,
    #[serde(default)]
    pub if_empty: bool,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleRules {
    #[serde(default)]
    pub fields: BTreeMap<String, FieldRule>,
    #[serde(default)]
    pub skip: Vec<SkipRule>,
}
