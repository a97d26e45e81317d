//! Property tests of the import: any order of the per-school, per-role
//! imports of one snapshot (people in two role feeds of one school, feeds
//! with and without classes and workgroups columns) converges to the same
//! people (primary school and usernames aside), a second pass changes
//! nothing, and a user present in any feed is never deleted and ends up
//! active.

use crate::common;

use common::District;
use proptest::prelude::*;
use rollcall::engine::import::ImportRequest;
use rollcall::model::{Role, UserKey, UserState};
use rollcall::store::UserQuery;
use std::collections::{BTreeMap, BTreeSet};

const SCHOOLS: [&str; 3] = ["a", "b", "c"];
const ROLES: [Role; 2] = [Role::Student, Role::Teacher];

/// One role's classes and workgroups (indices) in one school.
type Groups = (BTreeSet<u8>, BTreeSet<u8>);

/// One person in one snapshot: where they appear, as what, in which classes
/// and workgroups.
#[derive(Clone, Debug)]
struct Presence {
    lastname: u8,
    /// school index → role index → (classes, workgroups): each role's feed
    /// of a school gives its own, and a person may be in two role feeds of
    /// one school.
    at: BTreeMap<usize, BTreeMap<usize, Groups>>,
}

/// One snapshot: the people, and per (school, role) feed whether it has a
/// classes and a workgroups column.
#[derive(Clone, Debug)]
struct Snapshot {
    people: Vec<Presence>,
    columns: Vec<(bool, bool)>,
}

fn presence() -> impl Strategy<Value = Presence> {
    let groups = (
        proptest::collection::btree_set(0u8..3, 0..=2),
        proptest::collection::btree_set(0u8..2, 0..=1),
    );
    let roles = proptest::collection::btree_map(0..ROLES.len(), groups, 1..=2);
    (0u8..2, proptest::collection::btree_map(0..SCHOOLS.len(), roles, 0..=2))
        .prop_map(|(lastname, at)| Presence { lastname, at })
}

fn snapshot() -> impl Strategy<Value = Snapshot> {
    (
        proptest::collection::vec(presence(), 1..=7),
        // Mostly with columns, sometimes without.
        proptest::collection::vec((prop::bool::weighted(0.75), prop::bool::weighted(0.6)), FEEDS),
    )
        .prop_map(|(people, columns)| Snapshot { people, columns })
}

const FEEDS: usize = SCHOOLS.len() * ROLES.len();

/// The feeds of a snapshot, one per (school, role): school, role, file text.
fn feeds(snap: &Snapshot) -> Vec<(usize, usize, String)> {
    let mut out = Vec::new();
    for s in 0..SCHOOLS.len() {
        for r in 0..ROLES.len() {
            let (with_classes, with_workgroups) = snap.columns[s * ROLES.len() + r];
            let mut text = String::from("record_uid,firstname,lastname");
            if with_classes {
                text.push_str(",classes");
            }
            if with_workgroups {
                text.push_str(",workgroups");
            }
            text.push('\n');
            for (p, pres) in snap.people.iter().enumerate() {
                let Some((classes, workgroups)) = pres.at.get(&s).and_then(|roles| roles.get(&r)) else {
                    continue;
                };
                text.push_str(&format!("p{p},Kim,Name{}", pres.lastname));
                if with_classes {
                    let c: Vec<String> = classes.iter().map(|c| format!("k{c}")).collect();
                    text.push_str(&format!(",\"{}\"", c.join(",")));
                }
                if with_workgroups {
                    let w: Vec<String> = workgroups.iter().map(|w| format!("ag{w}")).collect();
                    text.push_str(&format!(",\"{}\"", w.join(",")));
                }
                text.push('\n');
            }
            out.push((s, r, text));
        }
    }
    out
}

fn import_feed(d: &mut District, s: usize, r: usize, text: &str) -> rollcall::engine::import::ImportOutcome {
    let file = d.raw_feed(text.as_bytes(), "csv");
    d.import_req(ImportRequest {
        school: SCHOOLS[s].into(),
        roles: vec![ROLES[r]],
        force: true,
        file,
        ..ImportRequest::default()
    })
}

type Canon = BTreeMap<
    String,
    (
        UserState,
        bool,
        Option<chrono::NaiveDate>,
        String,
        BTreeMap<String, (Vec<Role>, Vec<String>, Vec<String>)>,
    ),
>;

/// Everything that must not depend on import order.
fn canonical(d: &District) -> Canon {
    let users = d.engine.directory().users(&UserQuery::default()).unwrap();
    users
        .into_iter()
        .map(|u| {
            let m = u
                .memberships
                .iter()
                .map(|m| {
                    // The roles a limbo user remembers are the ones it held
                    // when its last role ended, which depends on which role's
                    // feed came last. They are informational: a restore by
                    // import takes the row's roles.
                    let roles = if u.state == UserState::Limbo {
                        Vec::new()
                    } else {
                        m.roles.iter().copied().collect()
                    };
                    (
                        m.school.clone(),
                        (
                            roles,
                            m.classes.iter().cloned().collect(),
                            m.workgroups.iter().cloned().collect(),
                        ),
                    )
                })
                .collect();
            (
                u.key.record_uid.clone(),
                (u.state, u.disabled, u.purge_at, u.lastname.clone(), m),
            )
        })
        .collect()
}

fn district() -> District {
    District::with_sets(&["import.guard.max_removal_percent=100"])
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, .. ProptestConfig::default() })]

    #[test]
    fn imports_converge_in_any_order_and_are_idempotent(
        s1 in snapshot(),
        s2 in snapshot(),
        order1 in Just((0..6).collect::<Vec<usize>>()).prop_shuffle(),
        order2 in Just((0..6).collect::<Vec<usize>>()).prop_shuffle(),
    ) {
        let f1 = feeds(&s1);
        let f2 = feeds(&s2);
        let mut results = Vec::new();
        for order in [&order1, &order2] {
            let mut d = district();
            for (s, r, lines) in &f1 {
                import_feed(&mut d, *s, *r, lines);
            }
            let mut ever: BTreeSet<String> = canonical(&d).keys().cloned().collect();
            for &i in order.iter() {
                let (s, r, lines) = &f2[i];
                import_feed(&mut d, *s, *r, lines);
                let now = canonical(&d);
                // Imports never delete anybody.
                for uid in &ever {
                    prop_assert!(now.contains_key(uid), "{uid} was deleted by an import");
                }
                ever.extend(now.keys().cloned());
            }
            // Everyone present in a feed of the snapshot is active.
            for (p, pres) in s2.people.iter().enumerate() {
                if !pres.at.is_empty() {
                    let u = d.engine.directory().user(&UserKey::new("district", format!("p{p}"))).unwrap().unwrap();
                    prop_assert_eq!(u.state, UserState::Active);
                }
            }
            // A second pass over the same snapshot changes nothing.
            let head = d.journal_head();
            for &i in order.iter() {
                let (s, r, lines) = &f2[i];
                let o = import_feed(&mut d, *s, *r, lines);
                prop_assert_eq!(
                    (o.created, o.modified, o.added_school, o.removed_school, o.to_limbo, o.restored),
                    (0, 0, 0, 0, 0, 0)
                );
            }
            prop_assert_eq!(d.journal_head(), head);
            results.push(canonical(&d));
        }
        prop_assert_eq!(&results[0], &results[1]);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, .. ProptestConfig::default() })]

    /// Importing a snapshot's feeds as one pipelined batch ends where importing
    /// them one by one does, also when plans had to be made again.
    #[test]
    fn a_batch_equals_importing_one_by_one(
        s1 in snapshot(),
        s2 in snapshot(),
        order in Just((0..6).collect::<Vec<usize>>()).prop_shuffle(),
    ) {
        let f1 = feeds(&s1);
        let f2 = feeds(&s2);
        let mut one_by_one = district();
        let mut batched = district();
        for d in [&mut one_by_one, &mut batched] {
            for (s, r, lines) in &f1 {
                import_feed(d, *s, *r, lines);
            }
        }
        for &i in &order {
            let (s, r, lines) = &f2[i];
            import_feed(&mut one_by_one, *s, *r, lines);
        }
        let reqs: Vec<ImportRequest> = order
            .iter()
            .map(|&i| {
                let (s, r, text) = &f2[i];
                ImportRequest {
                    school: SCHOOLS[*s].into(),
                    roles: vec![ROLES[*r]],
                    force: true,
                    file: batched.raw_feed(text.as_bytes(), "csv"),
                    ..ImportRequest::default()
                }
            })
            .collect();
        let out = batched.engine.import_batch(&reqs, &mut rollcall::engine::jobs::Quiet).unwrap();
        prop_assert_eq!(out.imports.len(), reqs.len());
        prop_assert_eq!(canonical(&one_by_one), canonical(&batched));
        // Exactly the same, usernames and primary schools included.
        let exact = |d: &District| -> Vec<(String, String, String)> {
            d.engine
                .directory()
                .users(&UserQuery::default())
                .unwrap()
                .into_iter()
                .map(|u| (u.key.record_uid.clone(), u.username.clone(), u.primary_school().to_string()))
                .collect()
        };
        prop_assert_eq!(exact(&one_by_one), exact(&batched));
    }
}
