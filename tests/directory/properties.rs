//! Property tests of the import: any order of per-school imports of one
//! snapshot converges to the same people (primary school and usernames
//! aside), a second pass changes nothing, and a user present in any feed is
//! never deleted and ends up active.

use crate::common;

use common::District;
use proptest::prelude::*;
use rollcall::engine::import::ImportRequest;
use rollcall::model::{Role, UserKey, UserState};
use rollcall::store::UserQuery;
use std::collections::{BTreeMap, BTreeSet};

const SCHOOLS: [&str; 3] = ["a", "b", "c"];
const ROLES: [Role; 2] = [Role::Student, Role::Teacher];

/// One person in one snapshot: where they appear, as what, in which classes.
#[derive(Clone, Debug)]
struct Presence {
    lastname: u8,
    /// school index → (roles, classes); classes are per person and school.
    at: BTreeMap<usize, (BTreeSet<usize>, BTreeSet<u8>)>,
}

fn presence() -> impl Strategy<Value = Presence> {
    let school = (
        proptest::collection::btree_set(0..ROLES.len(), 1..=2),
        proptest::collection::btree_set(0u8..3, 0..=2),
    );
    (0u8..2, proptest::collection::btree_map(0..SCHOOLS.len(), school, 0..=2))
        .prop_map(|(lastname, at)| Presence { lastname, at })
}

fn snapshot() -> impl Strategy<Value = Vec<Presence>> {
    proptest::collection::vec(presence(), 1..=7)
}

/// The feeds of a snapshot, one per (school, role).
fn feeds(snap: &[Presence]) -> Vec<(usize, usize, Vec<String>)> {
    let mut out = Vec::new();
    for s in 0..SCHOOLS.len() {
        for r in 0..ROLES.len() {
            let mut lines = Vec::new();
            for (p, pres) in snap.iter().enumerate() {
                if let Some((roles, classes)) = pres.at.get(&s)
                    && roles.contains(&r)
                {
                    let classes: Vec<String> = classes.iter().map(|c| format!("k{c}")).collect();
                    lines.push(format!("p{p},Kim,Name{},,,\"{}\",,", pres.lastname, classes.join(",")));
                }
            }
            out.push((s, r, lines));
        }
    }
    out
}

fn import_feed(d: &mut District, s: usize, r: usize, lines: &[String]) -> rollcall::engine::import::ImportOutcome {
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    let file = d.feed(&refs);
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
        BTreeMap<String, (Vec<Role>, Vec<String>)>,
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
                    (m.school.clone(), (roles, m.classes.iter().cloned().collect()))
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
            for (p, pres) in s2.iter().enumerate() {
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
                let (s, r, lines) = &f2[i];
                let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
                ImportRequest {
                    school: SCHOOLS[*s].into(),
                    roles: vec![ROLES[*r]],
                    force: true,
                    file: batched.feed(&refs),
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
