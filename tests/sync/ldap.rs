//! The LDAP sync target against two real slapd instances: rollcall's own
//! directory on slapd A (`[directory] backend = "ldap"`) or SQLite, the
//! authority on slapd B. Create, update, school move (ModifyDN), limbo
//! (deactivate), purge (delete), class membership changes, a replay that
//! changes nothing, `resync` converging after hand edits on B (checked by
//! searching B), a wrong bind password pausing the authority, a wrong CA
//! refused with a clear error, and config errors naming the key; verify
//! naming hand drift on B precisely and `--fix` repairing it.

use crate::common;

use common::slapd::{self, Entries, Slapd, Tls};
use common::{District, student, with_sets_owned};
use rollcall::engine::config::{LoadOptions, load};
use rollcall::engine::jobs::Quiet;
use rollcall::engine::sync::verify::{VerifyKind, VerifyReport, VerifyRequest};
use rollcall::engine::sync::{SyncOptions, SyncOutcome};
use rollcall::model::Role;
use serde_json::json;
use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

fn sync(d: &mut District) -> SyncOutcome {
    let out = d
        .engine
        .sync_run(
            &SyncOptions {
                max_wait: Duration::from_secs(5),
                ..SyncOptions::default()
            },
            &mut Quiet,
        )
        .expect("sync");
    assert!(out.complete, "sync left work: {out:?}");
    assert_eq!(out.authorities[0].trashed, 0, "{out:?}");
    out
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// The values of one attribute of one entry (both lowercased keys).
fn values(e: &Entries, dn: &str, attr: &str) -> BTreeSet<String> {
    e.get(&dn.to_ascii_lowercase())
        .unwrap_or_else(|| panic!("no entry {dn} in {:#?}", e.keys().collect::<Vec<_>>()))
        .get(attr)
        .cloned()
        .unwrap_or_default()
}

/// Member DNs of a group (lowercased; the empty placeholder left out).
fn members(e: &Entries, dn: &str) -> BTreeSet<String> {
    values(e, dn, "member")
        .into_iter()
        .filter(|m| !m.is_empty())
        .map(|m| m.to_ascii_lowercase())
        .collect()
}

fn user_dn(name: &str, school: &str, base: &str) -> String {
    format!("uid={name},cn=users,ou={school},{base}").to_ascii_lowercase()
}

fn class_dn(school: &str, class: &str, base: &str) -> String {
    format!("cn={school}-{class},cn=classes,cn=groups,ou={school},{base}")
}

fn school_dn(school: &str, base: &str) -> String {
    format!("cn={school},cn=schools,cn=groups,{base}")
}

fn users(e: &Entries) -> BTreeSet<String> {
    e.iter()
        .filter(|(_, a)| a.contains_key("employeenumber"))
        .map(|(dn, _)| dn.clone())
        .collect()
}

fn two_servers() -> Option<(Slapd, Slapd)> {
    Some((Slapd::start()?, Slapd::start()?))
}

#[test]
fn ldap_directory_to_ldap_target_lifecycle() {
    let Some((a, b)) = two_servers() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let base = format!("ou=idm,{}", slapd::SUFFIX);
    let sets = b.authority_sets("idm", tmp.path(), &base, &["gsmitte", "gsnord"]);
    let refs: Vec<&str> = sets.iter().map(String::as_str).collect();
    let mut d = District::on_server(&a, &refs);
    d.import(
        "gsmitte",
        &[
            &student("1", "Anna", "Alt", "5a"),
            &student("2", "Ben", "Bauer", "5a"),
            &student("3", "Cem", "Celik", "5b"),
        ],
    );
    // Another school's users never reach this authority.
    d.import("gssued", &[&student("9", "Zoe", "Zorn", "1a")]);
    let out = sync(&mut d);
    // 3 users, 2 classes, 1 school group.
    assert_eq!(out.authorities[0].applied.get("created"), Some(&6), "{out:?}");

    let e = b.entries(&base);
    let anna = user_dn("a.alt", "gsmitte", &base);
    let ben = user_dn("b.bauer", "gsmitte", &base);
    let cem = user_dn("c.celik", "gsmitte", &base);
    assert_eq!(users(&e), set(&[&anna, &ben, &cem]));
    assert_eq!(values(&e, &anna, "employeenumber"), set(&["district:1"]));
    assert_eq!(values(&e, &anna, "sn"), set(&["Alt"]));
    assert_eq!(values(&e, &anna, "cn"), set(&["Anna Alt"]));
    assert_eq!(values(&e, &anna, "departmentnumber"), set(&["gsmitte"]));
    assert_eq!(values(&e, &anna, "employeetype"), set(&["student"]));
    assert!(values(&e, &anna, "shadowexpire").is_empty());
    assert_eq!(members(&e, &class_dn("gsmitte", "5a", &base)), set(&[&anna, &ben]));
    assert_eq!(members(&e, &class_dn("gsmitte", "5b", &base)), set(&[&cem]));
    assert_eq!(members(&e, &school_dn("gsmitte", &base)), set(&[&anna, &ben, &cem]));
    assert_eq!(
        values(&e, &class_dn("gsmitte", "5a", &base), "businesscategory"),
        set(&["class:gsmitte:5a"])
    );
    assert!(!e.keys().any(|dn| dn.contains("gssued")));

    // Update and class change: Anna renamed, Ben moves to 5b.
    d.import(
        "gsmitte",
        &[
            &student("1", "Anna", "Altmann", "5a"),
            &student("2", "Ben", "Bauer", "5b"),
            &student("3", "Cem", "Celik", "5b"),
        ],
    );
    sync(&mut d);
    let e = b.entries(&base);
    assert_eq!(values(&e, &anna, "sn"), set(&["Altmann"]));
    assert_eq!(members(&e, &class_dn("gsmitte", "5a", &base)), set(&[&anna]));
    assert_eq!(members(&e, &class_dn("gsmitte", "5b", &base)), set(&[&ben, &cem]));

    // A replay changes nothing.
    d.engine.schedule_user("a.alt").expect("schedule");
    let out = sync(&mut d);
    assert_eq!(
        out.authorities[0].applied.keys().collect::<Vec<_>>(),
        ["unchanged"],
        "{out:?}"
    );
    assert_eq!(b.entries(&base), e);

    // School move: Cem joins gsnord, then leaves gsmitte → ModifyDN.
    d.import("gsnord", &[&student("3", "Cem", "Celik", "6c")]);
    d.import(
        "gsmitte",
        &[
            &student("1", "Anna", "Altmann", "5a"),
            &student("2", "Ben", "Bauer", "5b"),
        ],
    );
    sync(&mut d);
    let e = b.entries(&base);
    let cem_nord = user_dn("c.celik", "gsnord", &base);
    assert_eq!(users(&e), set(&[&anna, &ben, &cem_nord]));
    assert_eq!(values(&e, &cem_nord, "departmentnumber"), set(&["gsnord"]));
    assert_eq!(members(&e, &class_dn("gsmitte", "5b", &base)), set(&[&ben]));
    assert_eq!(members(&e, &class_dn("gsnord", "6c", &base)), set(&[&cem_nord]));
    assert_eq!(members(&e, &school_dn("gsmitte", &base)), set(&[&anna, &ben]));
    assert_eq!(members(&e, &school_dn("gsnord", &base)), set(&[&cem_nord]));
    assert!(
        !e.values()
            .flat_map(|a| a.get("member").into_iter().flatten())
            .any(|m| m.eq_ignore_ascii_case(&cem)),
        "no member value names Cem's old DN"
    );

    // Limbo: Cem leaves gsnord, his last school → deactivated, out of groups.
    let file = d.feed(&[]);
    let mut req = District::request("gsnord", Role::Student, file);
    req.force = true;
    d.import_req(req);
    sync(&mut d);
    let e = b.entries(&base);
    assert_eq!(values(&e, &cem_nord, "shadowexpire"), set(&["1"]), "deactivated");
    assert_eq!(members(&e, &school_dn("gsnord", &base)), BTreeSet::new());
    // Its last member left: the class is removed (import.keep_empty_classes
    // = false), and so is its entry.
    let class = class_dn("gsnord", "6c", &base).to_ascii_lowercase();
    assert!(!e.contains_key(&class), "{class} is still there");

    // Purge: gone from the directory → deleted on the target.
    let far = chrono::Local::now().date_naive() + chrono::Days::new(1000);
    d.engine.limbo_purge(Some(far), false, &mut Quiet).expect("purge");
    sync(&mut d);
    assert_eq!(users(&b.entries(&base)), set(&[&anna, &ben]));
}

/// Users and groups on B without the operational noise: for comparisons.
fn snapshot(e: &Entries) -> Entries {
    e.iter()
        .filter(|(_, a)| a.contains_key("employeenumber") || a.contains_key("businesscategory"))
        .map(|(dn, a)| {
            let mut a = a.clone();
            if let Some(m) = a.get_mut("member") {
                *m = m.iter().map(|v| v.to_ascii_lowercase()).collect();
            }
            (dn.clone(), a)
        })
        .collect()
}

#[test]
fn sqlite_directory_resync_converges_after_hand_edits_on_the_target() {
    let Some(b) = Slapd::start() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let base = format!("ou=idm,{}", slapd::SUFFIX);
    let mut sets = b.authority_sets("idm", tmp.path(), &base, &["*"]);
    sets.push("authorities.idm.on_removal=\"delete\"".into());
    let mut d = with_sets_owned(&sets);
    let lines: Vec<String> = (1..=12)
        .map(|i| {
            student(
                &i.to_string(),
                &format!("F{i}"),
                &format!("L{i}"),
                if i % 2 == 0 { "5a" } else { "5b" },
            )
        })
        .collect();
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    d.import("gsmitte", &refs[..6]);
    d.import("gsnord", &refs[6..]);
    sync(&mut d);
    let before = snapshot(&b.entries(&base));
    assert_eq!(users(&before).len(), 12);

    // Hand edits on B: a user and a class deleted, a name changed, a member
    // removed, a stranger added to a class.
    let u3 = user_dn("f.l3", "gsmitte", &base);
    let u1 = user_dn("f.l1", "gsmitte", &base);
    let u2 = user_dn("f.l2", "gsmitte", &base);
    let c5a = class_dn("gsmitte", "5a", &base);
    b.ldapmodify(&format!(
        "dn: {c5a}\nchangetype: modify\ndelete: member\nmember: {u2}\n-\nadd: member\nmember: cn=stranger,{base}\n\n\
         dn: {u1}\nchangetype: modify\nreplace: sn\nsn: Wrong\n\n\
         dn: {u3}\nchangetype: delete\n\n\
         dn: {}\nchangetype: delete\n",
        class_dn("gsnord", "5b", &base)
    ));
    assert_ne!(snapshot(&b.entries(&base)), before);

    let scheduled = d.engine.resync(Some("idm"), &mut Quiet).expect("resync");
    assert!(scheduled.objects >= 12 + 4 + 2, "{scheduled:?}");
    sync(&mut d);
    assert_eq!(snapshot(&b.entries(&base)), before);

    // Leavers are deleted (on_removal = delete), and leave their groups.
    d.import("gsnord", &refs[6..11]);
    sync(&mut d);
    let e = b.entries(&base);
    assert_eq!(users(&e).len(), 11);
    let u12 = user_dn("f.l12", "gsnord", &base);
    assert!(!members(&e, &class_dn("gsnord", "5a", &base)).contains(&u12));
    assert!(!members(&e, &school_dn("gsnord", &base)).contains(&u12));

    // verify's listing: paged, only objects under the target base.
    use rollcall::engine::sync::mapping::Class;
    use rollcall::engine::sync::target::Target;
    let config: rollcall::engine::config::AuthorityConfig = toml::from_str(&format!(
        "kind = \"ldap\"\nurl = \"{}\"\nbind_dn = \"{}\"\nbind_password_file = \"{}\"\n[ldap]\nbase_dn = \"{base}\"\npage_size = 3\n",
        b.url(),
        slapd::ROOT_DN,
        tmp.path().join("idm.pw").display()
    ))
    .unwrap();
    let target = rollcall::engine::sync::target::ldap::LdapTarget::new(&config).unwrap();
    let mut seen = BTreeSet::new();
    target
        .list(Class::User, &mut |o| {
            seen.insert(o.external_id.unwrap_or_default());
            true
        })
        .unwrap();
    assert_eq!(seen.len(), 11, "{seen:?}");
    let mut groups = 0;
    target
        .list(Class::Group, &mut |_| {
            groups += 1;
            true
        })
        .unwrap();
    assert_eq!(groups, 6, "4 classes and 2 school groups");
}

#[test]
fn a_wrong_bind_password_pauses_the_authority_instead_of_trashing_items() {
    let Some(b) = Slapd::start() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let base = format!("ou=idm,{}", slapd::SUFFIX);
    let sets = b.authority_sets("idm", tmp.path(), &base, &["gsmitte"]);
    std::fs::write(tmp.path().join("idm.pw"), "not-the-password\n").unwrap();
    let mut d = with_sets_owned(&sets);
    d.import("gsmitte", &[&student("1", "Anna", "Alt", "5a")]);
    let out = d
        .engine
        .sync_run(
            &SyncOptions {
                max_wait: Duration::from_millis(500),
                ..SyncOptions::default()
            },
            &mut Quiet,
        )
        .expect("sync");
    assert!(!out.complete);
    assert_eq!(out.authorities[0].trashed, 0);
    let status = &d.engine.queue_list(Some("idm")).unwrap()[0];
    let paused = status.paused.clone().expect("paused");
    assert!(
        paused.reason.contains("49") && paused.reason.contains("invalidCredentials"),
        "{paused:?}"
    );
    assert!(
        paused.reason.contains(&b.url()) && paused.reason.contains(slapd::ROOT_DN),
        "{paused:?}"
    );
    assert!(status.depth > 0, "items kept: {status:?}");
    // Fixed: everything goes through.
    std::fs::write(tmp.path().join("idm.pw"), format!("{}\n", slapd::ROOT_PW)).unwrap();
    sync(&mut d);
    assert_eq!(users(&b.entries(&base)).len(), 1);
}

fn tls_server(dir: &Path) -> Option<(Slapd, Tls)> {
    let tls = slapd::make_certs(dir, "b");
    Some((Slapd::start_with(Some(tls.clone()))?, tls))
}

#[test]
fn a_wrong_ca_is_refused_with_a_clear_error_and_the_right_one_works() {
    let tmp = tempfile::tempdir().unwrap();
    let Some((b, tls)) = tls_server(tmp.path()) else { return };
    let other = slapd::make_certs(tmp.path(), "other");
    let base = format!("ou=idm,{}", slapd::SUFFIX);
    let mut sets = b.authority_sets("idm", tmp.path(), &base, &["gsmitte"]);
    sets.push(format!("authorities.idm.url=\"{}\"", b.ldaps_url()));
    sets.push(format!("authorities.idm.ca_bundle=\"{}\"", other.ca.display()));
    let mut d = with_sets_owned(&sets);
    d.import("gsmitte", &[&student("1", "Anna", "Alt", "5a")]);
    let out = d
        .engine
        .sync_run(
            &SyncOptions {
                max_wait: Duration::from_millis(500),
                ..SyncOptions::default()
            },
            &mut Quiet,
        )
        .expect("sync");
    assert!(!out.complete);
    assert_eq!(out.authorities[0].trashed, 0);
    let status = &d.engine.queue_list(Some("idm")).unwrap()[0];
    let reason = status.paused.clone().map(|p| p.reason).unwrap_or_default();
    assert!(
        reason.contains(&b.ldaps_url()) && reason.to_lowercase().contains("certificate"),
        "{reason}"
    );

    // The right CA over StartTLS.
    sets.push(format!("authorities.idm.url=\"{}\"", b.url()));
    sets.push("authorities.idm.ldap.starttls=true".into());
    sets.push(format!("authorities.idm.ca_bundle=\"{}\"", tls.ca.display()));
    d.reopen(&sets.iter().map(String::as_str).collect::<Vec<_>>(), false);
    sync(&mut d);
    assert_eq!(users(&b.entries(&base)).len(), 1);
}

#[test]
fn config_errors_name_the_key() {
    let err = |extra: &[&str]| -> String {
        let mut sets: Vec<String> = vec![
            "authorities.idm.kind=\"ldap\"".into(),
            "authorities.idm.url=\"ldap://127.0.0.1:1\"".into(),
            "authorities.idm.ldap.base_dn=\"dc=x\"".into(),
        ];
        sets.extend(extra.iter().map(|s| s.to_string()));
        match load(&LoadOptions {
            sets,
            ..LoadOptions::default()
        }) {
            Ok(_) => String::new(),
            Err(e) => e.to_string(),
        }
    };
    assert_eq!(err(&[]), "");
    assert!(err(&["authorities.idm.ldap.base_dn=\"\""]).contains("authorities.idm.ldap.base_dn"));
    assert!(err(&["authorities.idm.url=\"http://x\""]).contains("authorities.idm.url"));
    assert!(err(&["authorities.idm.ldap.layout.user=\"cn=x,<base>\""]).contains("authorities.idm.ldap.layout.user"));
    assert!(
        err(&[
            "authorities.idm.ldap.starttls=true",
            "authorities.idm.url=\"ldaps://h\""
        ])
        .contains("authorities.idm.ldap.starttls")
    );
    assert!(err(&["authorities.idm.bind_dn=\"cn=a\""]).contains("authorities.idm.bind_password_file"));
    assert!(
        err(&[
            "authorities.idm.mapping.user={\"name.givenName\" = \"firstname\", uid = \"username\", ou = \"schools\"}"
        ])
        .contains("authorities.idm.mapping.user.name.givenName")
    );
}

#[test]
fn a_permanent_ldap_error_goes_to_trash_with_its_result_code() {
    let Some(b) = Slapd::start() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let base = format!("ou=idm,{}", slapd::SUFFIX);
    let mut sets = b.authority_sets("idm", tmp.path(), &base, &["gsmitte"]);
    // An attribute no schema of the server defines: undefinedAttributeType.
    sets.push(
        "authorities.idm.mapping.user={uid = \"username\", sn = \"lastname\", cn = \"display_name\", \
         departmentNumber = \"primary_school\", rollcallNoSuchAttr = \"firstname\"}"
            .into(),
    );
    sets.push("authorities.idm.mapping.school_groups=false".into());
    let mut d = with_sets_owned(&sets);
    d.import("gsmitte", &[&student("1", "Anna", "Alt", "5a")]);
    let out = d.sync_for(Duration::from_secs(2));
    // The user, and its class: a class cannot be delivered without its
    // member, and once the member is in trash it stops waiting for it.
    assert_eq!(out.authorities[0].trashed, 2, "{out:?}");
    let trash = d.engine.trash_list(Some("idm")).unwrap();
    let class = trash
        .iter()
        .find(|t| t.object == "class:gsmitte:5a")
        .expect("the class in trash");
    assert!(
        class.error.contains("1 member(s) not on the target yet (district:1)"),
        "{}",
        class.error
    );
    assert_eq!(class.class, "transient", "{class:?}");
    let item = trash
        .iter()
        .find(|t| t.object.starts_with("user:"))
        .expect("the user in trash");
    assert_eq!(item.ldap_code, Some(17), "{item:?}");
    assert_eq!(item.attempts, 1, "permanent: not retried");
    let dn = user_dn("a.alt", "gsmitte", &base);
    assert!(
        item.error.contains(&b.url()) && item.error.to_ascii_lowercase().contains(&dn) && item.error.contains("17"),
        "{}",
        item.error
    );
}

fn verify(d: &mut District, kind: VerifyKind, fix: bool) -> VerifyReport {
    d.engine
        .verify(
            &VerifyRequest {
                authority: "idm".into(),
                kind,
                filter: None,
                fix,
            },
            &mut Quiet,
        )
        .expect("verify")
}

#[test]
fn verify_names_hand_drift_on_the_ldap_target_and_fix_repairs_it() {
    let Some(b) = Slapd::start() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let base = format!("ou=idm,{}", slapd::SUFFIX);
    let sets = b.authority_sets("idm", tmp.path(), &base, &["gsmitte", "gsnord"]);
    let mut d = with_sets_owned(&sets);
    d.import(
        "gsmitte",
        &[
            &student("1", "Anna", "Alt", "5a"),
            &student("2", "Ben", "Bauer", "5a"),
            &student("3", "Cem", "Celik", "5b"),
        ],
    );
    d.import("gsnord", &[&student("4", "Dora", "Dorn", "1a")]);
    d.import("gssued", &[&student("9", "Zoe", "Zorn", "1a")]);
    sync(&mut d);
    let r = verify(&mut d, VerifyKind::All, false);
    assert!(r.clean, "{r:#?}");
    // 4 users, 3 classes, 2 school groups.
    assert_eq!((r.expected, r.actual, r.foreign), (9, 9, 0));

    // Hand drift on B: Ben's entry deleted (his member values dangle),
    // Anna's sn changed, Cem taken out of 5b, an entry of another system
    // (a key not ours) and one without any key, and one with our key for
    // an identity the directory does not know.
    let anna = user_dn("a.alt", "gsmitte", &base);
    let ben = user_dn("b.bauer", "gsmitte", &base);
    let cem = user_dn("c.celik", "gsmitte", &base);
    let person = |uid: &str, key: &str| {
        format!(
            "dn: uid={uid},{base}\nchangetype: add\nobjectClass: inetOrgPerson\nobjectClass: shadowAccount\n\
             uid: {uid}\ncn: {uid}\nsn: {uid}\n{key}\n"
        )
    };
    b.ldapmodify(&format!(
        "dn: {ben}\nchangetype: delete\n\n\
         dn: {anna}\nchangetype: modify\nreplace: sn\nsn: Hacked\n\n\
         dn: {}\nchangetype: modify\ndelete: member\nmember: {cem}\n\n{}\n{}\n{}",
        class_dn("gsmitte", "5b", &base),
        person("boss", "employeeNumber: hr-7"),
        person("guest", "description: no key"),
        person("x.y", "employeeNumber: district:77"),
    ));

    let r = verify(&mut d, VerifyKind::All, false);
    assert!(!r.clean);
    assert_eq!(
        r.foreign, 1,
        "hr-7 is not ours; the keyless entry is not listed: {r:#?}"
    );
    let missing: Vec<(&str, &str)> = r.missing.iter().map(|m| (m.object.as_str(), m.name.as_str())).collect();
    assert_eq!(missing, vec![("user:district:2", "b.bauer")]);
    let unexpected: Vec<(&str, Option<&str>, &str)> = r
        .unexpected
        .iter()
        .map(|u| (u.object.as_str(), u.name.as_deref(), u.id.as_str()))
        .collect();
    let stray = format!("uid=x.y,{base}").to_ascii_lowercase();
    assert_eq!(unexpected, vec![("user:district:77", Some("x.y"), stray.as_str())]);
    let diff: Vec<(String, String, serde_json::Value, serde_json::Value)> = r
        .different
        .iter()
        .flat_map(|d| {
            d.fields.iter().map(|f| {
                (
                    d.object.clone(),
                    f.attribute.clone(),
                    f.expected.clone(),
                    f.actual.clone(),
                )
            })
        })
        .collect();
    assert_eq!(
        diff,
        vec![
            (
                "school:gsmitte".into(),
                "members".into(),
                json!(["district:2"]),
                json!([ben])
            ),
            (
                "class:gsmitte:5a".into(),
                "members".into(),
                json!(["district:2"]),
                json!([ben])
            ),
            (
                "class:gsmitte:5b".into(),
                "members".into(),
                json!(["district:3"]),
                json!([])
            ),
            ("user:district:1".into(), "sn".into(), json!("Alt"), json!("Hacked")),
        ],
        "{r:#?}"
    );
    assert_eq!(r.different[3].id, anna);

    // Fix, drain, clean; the foreign entries are untouched.
    let r = verify(&mut d, VerifyKind::All, true);
    assert_eq!(r.fixed.expect("fixed").queued, 6);
    sync(&mut d);
    let r = verify(&mut d, VerifyKind::All, false);
    assert!(r.clean, "{r:#?}");
    assert_eq!(r.foreign, 1);
    let e = b.entries(&base);
    assert_eq!(
        values(&e, &format!("uid=boss,{base}"), "employeenumber"),
        set(&["hr-7"])
    );
    assert_eq!(
        values(&e, &format!("uid=guest,{base}"), "description"),
        set(&["no key"])
    );
    assert!(!e.contains_key(&stray));
    assert_eq!(values(&e, &anna, "sn"), set(&["Alt"]));
    assert_eq!(members(&e, &class_dn("gsmitte", "5b", &base)), set(&[&cem]));
    assert!(users(&e).contains(&ben));
}

/// Issue 16.1 for an LDAP target: schools created before their users (as
/// the demo does), one drain, verify clean, nothing in trash.
#[test]
fn the_first_drain_verifies_clean_on_an_ldap_target() {
    let Some(b) = Slapd::start() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let base = format!("ou=idm,{}", slapd::SUFFIX);
    let mut d = with_sets_owned(&b.authority_sets("idm", tmp.path(), &base, &["*"]));
    for s in ["gsmitte", "gsnord"] {
        d.engine.school_create(s, None).expect("school");
    }
    d.import(
        "gsmitte",
        &[&student("1", "Anna", "Alt", "5a"), &student("2", "Ben", "Bauer", "5b")],
    );
    d.import("gsnord", &[&student("3", "Cem", "Celik", "1a")]);
    sync(&mut d);
    let r = verify(&mut d, VerifyKind::All, false);
    assert!(r.clean, "{r:#?}");
    // 3 users, 3 classes, 2 school groups.
    assert_eq!((r.expected, r.actual), (8, 8), "{r:#?}");
    assert!(d.engine.trash_list(None).unwrap().is_empty());
}
