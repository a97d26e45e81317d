//! A school (an organisational unit in LDAP terms).

use serde::{Deserialize, Serialize};

/// A school. `name` is the short, immutable identifier used everywhere
/// (feeds, DNs, queue items); `display_name` is free text.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct School {
    pub name: String,
    pub display_name: String,
}

impl School {
    pub fn new(name: impl Into<String>) -> Self {
        let name = name.into();
        School {
            display_name: name.clone(),
            name,
        }
    }
}
