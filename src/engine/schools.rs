//! Schools: listing with member counts, creating them, and the rule that
//! school names are case-insensitive (as LDAP `ou` values and UCS@school OU
//! names are): a name given in any case means the school stored under that
//! name, whose first spelling stays; a second spelling is never created, a
//! data dir holding two is refused until `schools merge` joins them.

use super::{Engine, EngineError, EngineResult};
use crate::model::{Membership, School, User, UserState, validate_school_name};
use crate::store::{Batch, Directory, StoreError, UserChange, UserQuery};
use chrono::Utc;
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Clone, Debug, Serialize)]
pub struct SchoolView {
    pub name: String,
    pub display_name: String,
    /// Users with this school (active, or in limbo for the limbo school).
    pub users: u64,
    pub limbo: bool,
    /// When its last feed arrived, and whether that is longer ago than
    /// `import.stale_after_days` (`last_feed_at`, `last_feed_age_seconds`,
    /// `stale`).
    #[serde(flatten)]
    pub feed: super::freshness::Freshness,
}

/// What `schools merge` did.
#[derive(Clone, Debug, Serialize)]
pub struct MergeOutcome {
    pub from: String,
    pub into: String,
    /// Users whose membership moved from `from` to `into`.
    pub users: u64,
    /// Whether the school `from` was a school of its own and is gone.
    pub school_removed: bool,
}

/// The stored school a name means, ignoring case.
pub(crate) fn find_school(dir: &dyn Directory, name: &str) -> Result<Option<School>, StoreError> {
    if let Some(s) = dir.school(name)? {
        return Ok(Some(s));
    }
    Ok(dir.schools()?.into_iter().find(|s| s.name.eq_ignore_ascii_case(name)))
}

/// Schools whose names differ only in case, as groups of two or more.
pub(crate) fn case_variants(schools: &[School]) -> Vec<Vec<String>> {
    let mut by_lower: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for s in schools {
        by_lower
            .entry(s.name.to_ascii_lowercase())
            .or_default()
            .push(s.name.clone());
    }
    by_lower.into_values().filter(|v| v.len() > 1).collect()
}

/// Refuses a directory that holds two spellings of one school.
pub(crate) fn check_case_variants(dir: &dyn Directory) -> EngineResult<()> {
    let variants = case_variants(&dir.schools()?);
    let Some(first) = variants.first() else {
        return Ok(());
    };
    let names = first.iter().map(|n| format!("'{n}'")).collect::<Vec<_>>().join(" and ");
    Err(EngineError::WrongState(format!(
        "the directory holds schools whose names differ only in case ({names}{}); school names are \
         case-insensitive, so these are one school. Join them with `rollcall schools merge {} {}` (the users, \
         classes and workgroups of {} move to {}, audited), then run this again",
        if variants.len() > 1 {
            format!(", and {} more such groups", variants.len() - 1)
        } else {
            String::new()
        },
        first[1],
        first[0],
        first[1],
        first[0],
    )))
}

/// Joins the membership in `from` into the one in `into` (which may not
/// exist yet): roles and each role's classes and workgroups add up. The
/// merged membership keeps `from`'s place when that was the primary one.
fn merge_membership(user: &mut User, from: &str, into: &str) -> bool {
    let Some(i) = user.memberships.iter().position(|m| m.school == from) else {
        return false;
    };
    let moved = user.memberships.remove(i);
    let target = user.memberships.iter().position(|m| m.school == into);
    let mut merged = match target {
        Some(j) => user.memberships.remove(j),
        None => Membership::new(into, Default::default()),
    };
    let mut by_role = merged.contributions();
    for (role, c) in moved.contributions() {
        let e = by_role.entry(role).or_default();
        e.classes.extend(c.classes);
        e.workgroups.extend(c.workgroups);
    }
    merged.set_contributions(by_role);
    let was_primary = i == 0 || target == Some(0);
    if was_primary {
        user.memberships.insert(0, merged);
    } else {
        user.add_membership(merged);
    }
    true
}

impl Engine {
    pub fn schools_list(&self) -> EngineResult<Vec<SchoolView>> {
        let limbo = &self.config().import.limbo_school;
        let feeds = self.last_feeds()?;
        let now = chrono::Utc::now();
        self.dir
            .schools()?
            .into_iter()
            .map(|s| {
                let users = self.dir.count_users(&UserQuery {
                    school: Some(s.name.clone()),
                    ..UserQuery::default()
                })?;
                Ok(SchoolView {
                    feed: self.freshness(feeds.get(&s.name.to_lowercase()), now),
                    limbo: s.name.eq_ignore_ascii_case(limbo),
                    name: s.name,
                    display_name: s.display_name,
                    users,
                })
            })
            .collect()
    }

    /// The name a school given by an admin or a feed is stored under: the
    /// stored spelling of the school it names in any case, else the name
    /// as given (a new school keeps its first spelling).
    pub fn resolve_school(&self, name: &str) -> EngineResult<String> {
        Ok(find_school(self.dir.as_ref(), name)?.map_or_else(|| name.to_string(), |s| s.name))
    }

    pub fn school_create(&mut self, name: &str, display_name: Option<&str>) -> EngineResult<School> {
        self.check_writable("schools create")?;
        validate_school_name(name).map_err(|e| EngineError::Usage(e.to_string()))?;
        let details = serde_json::json!({"name": name, "display_name": display_name});
        if let Some(existing) = find_school(self.dir.as_ref(), name)? {
            let why = if existing.name == name {
                format!("school '{name}' already exists")
            } else {
                format!(
                    "school '{}' already exists, and school names are case-insensitive: '{name}' is that school",
                    existing.name
                )
            };
            return Err(self.refuse("schools create", details, why));
        }
        let school = School {
            name: name.to_string(),
            display_name: display_name.unwrap_or(name).to_string(),
        };
        self.dir.apply(&Batch {
            schools: vec![school.clone()],
            ..Batch::default()
        })?;
        self.audit.record(
            "schools create",
            serde_json::json!({"name": name, "display_name": school.display_name}),
            "ok",
        );
        Ok(school)
    }

    /// Joins the spelling `from` of a school into `into` (the same name in
    /// another case): every user's membership in `from` moves to `into`
    /// (roles, classes and workgroups add up), and the school `from` with its
    /// classes and workgroups goes. Audited.
    pub fn schools_merge(&mut self, from: &str, into: &str) -> EngineResult<MergeOutcome> {
        self.check_writable("schools merge")?;
        let details = serde_json::json!({"from": from, "into": into});
        if from == into {
            return Err(EngineError::Usage(format!("merging '{from}' into itself does nothing")));
        }
        if !from.eq_ignore_ascii_case(into) {
            return Err(EngineError::Usage(format!(
                "'{from}' and '{into}' are different schools; `schools merge` joins two spellings of one school \
                 (names that differ only in case)"
            )));
        }
        let schools = self.dir.schools()?;
        if !schools.iter().any(|s| s.name == into) {
            return Err(EngineError::NotFound(format!(
                "there is no school spelled '{into}' (see `rollcall schools list`)"
            )));
        }
        let from_school = schools.iter().any(|s| s.name == from);
        let mut changes = Vec::new();
        let now = Utc::now();
        self.dir.for_each_user(
            &UserQuery {
                school: Some(from.to_string()),
                ..UserQuery::default()
            },
            &mut |u| {
                let mut after = u.clone();
                if merge_membership(&mut after, from, into) {
                    after.updated_at = now;
                    changes.push(UserChange::Update { before: u, after });
                }
                true
            },
        )?;
        if changes.is_empty() && !from_school {
            return Err(EngineError::NotFound(format!(
                "no school and no user is spelled '{from}' (see `rollcall schools list`)"
            )));
        }
        let users = changes.len() as u64;
        self.dir.apply(&Batch {
            users: changes,
            ..Batch::default()
        })?;
        if from_school && !self.dir.drop_school_spelling(from)? && self.dir.school(from)?.is_some() {
            return Err(EngineError::WrongState(format!(
                "users joined '{from}' while it was merged; run `rollcall schools merge {from} {into}` again"
            )));
        }
        self.audit.record(
            "schools merge",
            details,
            &format!("ok: {users} users moved from {from} to {into}"),
        );
        Ok(MergeOutcome {
            from: from.to_string(),
            into: into.to_string(),
            users,
            school_removed: from_school,
        })
    }

    /// Users by state, for summaries.
    pub fn count_by_state(&self, state: UserState) -> EngineResult<u64> {
        Ok(self.dir.count_users(&UserQuery {
            state: Some(state),
            ..UserQuery::default()
        })?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Role, UserKey};

    fn user(schools: &[(&str, Role, &[&str])]) -> User {
        let now = Utc::now();
        User {
            key: UserKey::new("s", "1"),
            username: "u".into(),
            firstname: "F".into(),
            lastname: "L".into(),
            email: None,
            birthday: None,
            memberships: schools
                .iter()
                .map(|(s, r, classes)| {
                    let mut m = Membership::new(*s, [*r].into());
                    m.classes = classes.iter().map(|c| c.to_string()).collect();
                    m
                })
                .collect(),
            disabled: false,
            state: UserState::Active,
            purge_at: None,
            deactivate_at: None,
            password_hash: None,
            created_at: now,
            updated_at: now,
        }
    }

    #[test]
    fn merging_adds_roles_and_their_classes_up() {
        let mut u = user(&[
            ("GSA", Role::Teacher, &["5a"]),
            ("b", Role::Student, &[]),
            ("gsa", Role::Staff, &["sek"]),
        ]);
        assert!(merge_membership(&mut u, "GSA", "gsa"));
        assert_eq!(
            u.school_names().collect::<Vec<_>>(),
            ["gsa", "b"],
            "the primary stays first"
        );
        let m = &u.memberships[0];
        assert_eq!(m.roles, [Role::Teacher, Role::Staff].into());
        assert_eq!(m.contribution(Role::Teacher).classes, ["5a".to_string()].into());
        assert_eq!(m.contribution(Role::Staff).classes, ["sek".to_string()].into());
        assert!(!merge_membership(&mut u, "GSA", "gsa"), "nothing left to move");
    }

    #[test]
    fn variants_are_found_per_lowercase_name() {
        let s = |n: &str| School::new(n);
        let v = case_variants(&[s("GSA"), s("b"), s("gsa"), s("Gsa")]);
        assert_eq!(v, [vec!["GSA".to_string(), "gsa".into(), "Gsa".into()]]);
        assert!(case_variants(&[s("a"), s("b")]).is_empty());
    }
}
