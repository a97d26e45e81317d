//! What each authority holds for one user, looked up on demand (the
//! console's user detail, `users show`-like checks): for every active
//! authority whose schools include the user (for a user in limbo: every
//! active authority, since leavers are deactivated or deleted there), the
//! target's resource found by the user's external id ([`Target::fetch`],
//! one lookup, never a listing) compared field by field with what the sender
//! would send now — the same comparison verify makes.
//!
//! Planning reads the directory (under the engine's lock); the lookups need
//! no engine and run afterwards, one thread per authority, so a slow or
//! unreachable authority delays only its own answer.

use super::mapping::{Class, Desired, user_external_id};
use super::target::{self, Target};
use super::verify::{FieldDifference, field_differences};
use crate::engine::config::AuthorityConfig;
use crate::engine::paths::DataPaths;
use crate::engine::users::UserSelector;
use crate::engine::{Engine, EngineResult};
use crate::model::{ObjectRef, UserState};
use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeSet, HashMap};

/// How an authority's copy of the user compares with what would be sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Holding {
    /// Held as it would be sent now.
    Present,
    /// Should be there (active or deactivated) and is not.
    Missing,
    /// Held, with the fields in `differences` not as they would be sent.
    Differs,
    /// Not held, and should not be (deleted on removal).
    Absent,
    /// Held, though the authority should not hold it any more.
    Unexpected,
    /// The authority could not be asked (or the user not mapped).
    Error,
}

impl Holding {
    pub fn as_str(self) -> &'static str {
        match self {
            Holding::Present => "present",
            Holding::Missing => "missing",
            Holding::Differs => "differs",
            Holding::Absent => "absent",
            Holding::Unexpected => "unexpected",
            Holding::Error => "error",
        }
    }
}

/// One authority's answer for one user.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AuthorityHolding {
    pub authority: String,
    /// `scim`, `ldap`, `embedded`.
    pub kind: &'static str,
    /// What would be sent now: `active`, `deactivated` or `absent`.
    pub expected: &'static str,
    pub holding: Holding,
    /// The target's own id of the resource, when it holds one.
    pub id: Option<String>,
    pub differences: Vec<FieldDifference>,
    pub error: Option<String>,
}

/// One authority to ask: what is expected, and how to reach it.
pub struct HoldingProbe {
    authority: String,
    config: AuthorityConfig,
    paths: DataPaths,
    external_id: String,
    /// `Err`: the user could not be mapped for this authority.
    desired: Result<Desired, String>,
}

/// The user and the authorities to ask about it.
pub struct HoldingsPlan {
    pub username: String,
    pub probes: Vec<HoldingProbe>,
}

impl Engine {
    /// Which authorities to ask about a user, and what each should hold.
    /// Reads only the directory and the config; [`HoldingsPlan::fetch`]
    /// asks the targets.
    pub fn user_holdings_plan(&self, selector: &UserSelector) -> EngineResult<HoldingsPlan> {
        let user = self.find_user(selector)?;
        let object = ObjectRef::User {
            source_uid: user.key.source_uid.clone(),
            record_uid: user.key.record_uid.clone(),
        };
        let external_id = user_external_id(&user.key);
        let mut probes = Vec::new();
        for name in self.config().authorities.keys() {
            let authority = self.authority(name)?;
            if !authority.config.active {
                continue;
            }
            let relevant = match user.state {
                UserState::Active => authority.mapper.scope.any(user.school_names()),
                UserState::Limbo => true,
            };
            if !relevant {
                continue;
            }
            let desired = authority
                .mapper
                .desired(self.directory(), &object, &BTreeSet::new())
                .map_err(|e| e.to_string());
            probes.push(HoldingProbe {
                authority: authority.name,
                config: authority.config,
                paths: self.settings().paths.clone(),
                external_id: external_id.clone(),
                desired,
            });
        }
        Ok(HoldingsPlan {
            username: user.username,
            probes,
        })
    }

    /// Plans and fetches in one go (the CLI and tests; the console's facade
    /// fetches outside the engine's lock).
    pub fn user_holdings(&self, selector: &UserSelector) -> EngineResult<Vec<AuthorityHolding>> {
        Ok(self.user_holdings_plan(selector)?.fetch())
    }
}

impl HoldingsPlan {
    /// Asks every authority, in parallel; answers in authority order.
    pub fn fetch(self) -> Vec<AuthorityHolding> {
        std::thread::scope(|s| {
            let handles: Vec<_> = self.probes.iter().map(|p| s.spawn(move || p.fetch())).collect();
            handles
                .into_iter()
                .zip(&self.probes)
                .map(|(h, p)| {
                    h.join()
                        .unwrap_or_else(|_| p.answer("-", Holding::Error, None, Some("the lookup panicked".into())))
                })
                .collect()
        })
    }
}

impl HoldingProbe {
    fn answer(
        &self,
        expected: &'static str,
        holding: Holding,
        id: Option<String>,
        error: Option<String>,
    ) -> AuthorityHolding {
        AuthorityHolding {
            authority: self.authority.clone(),
            kind: self.config.kind.as_str(),
            expected,
            holding,
            id,
            differences: Vec::new(),
            error,
        }
    }

    fn fetch(&self) -> AuthorityHolding {
        let desired = match &self.desired {
            Ok(d) => d,
            Err(e) => return self.answer("-", Holding::Error, None, Some(e.clone())),
        };
        let (expected, mapped) = match desired {
            Desired::Present(m) => ("active", Some(m)),
            Desired::Deactivated(m) => ("deactivated", Some(m)),
            Desired::Absent { .. } | Desired::Skip => ("absent", None),
        };
        let found = target::open(&self.authority, &self.config, &self.paths)
            .and_then(|t: Box<dyn Target>| t.fetch(Class::User, &self.external_id));
        let remote = match found {
            Ok(r) => r,
            Err(e) => {
                return self.answer(
                    expected,
                    Holding::Error,
                    None,
                    Some(format!("{} ({})", e.message, e.class.as_str())),
                );
            }
        };
        match (mapped, remote) {
            (Some(_), None) => self.answer(expected, Holding::Missing, None, None),
            (None, None) => self.answer(expected, Holding::Absent, None, None),
            (None, Some(r)) => self.answer(expected, Holding::Unexpected, Some(r.id), None),
            (Some(m), Some(r)) => {
                let differences = field_differences(m, &r.resource, &HashMap::new());
                let holding = if differences.is_empty() {
                    Holding::Present
                } else {
                    Holding::Differs
                };
                AuthorityHolding {
                    differences,
                    ..self.answer(expected, holding, Some(r.id), None)
                }
            }
        }
    }
}

/// A field's value as one short line (the console, messages).
pub fn short_value(v: &Value) -> String {
    match v {
        Value::Null => "(absent)".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}
