//! OpenLDAP-specific behaviour against a real slapd: the DN layout and the
//! entries it leaves, TLS (StartTLS, ldaps://, a wrong CA), ldapi://, the
//! bind password file's permissions, error messages, a UCS@school-style
//! mapping, and faults: slapd dying in the middle of an import, then the
//! re-run converging.

use crate::common;

use common::slapd::{self, Slapd};
use common::{District, student};
use rollcall::engine::config::{LoadOptions, load};
use rollcall::engine::jobs::{Progress, ProgressEvent, Quiet};
use rollcall::model::{GroupKind, School, UserState};
use rollcall::store::{Batch, Directory, LdapDirectory, UserQuery};
use std::path::Path;

/// An LdapDirectory on `url` with these extra `--set`s (the root bind of the
/// test servers unless overridden).
fn open_dir(server: &Slapd, tmp: &Path, extra: &[String]) -> Result<LdapDirectory, rollcall::store::StoreError> {
    let mut sets = server.sets(tmp, &slapd::fresh_base());
    sets.extend(extra.iter().cloned());
    let (config, _) = load(&LoadOptions {
        sets,
        ..LoadOptions::default()
    })
    .expect("config");
    LdapDirectory::open(&config.directory.ldap, &tmp.join("ldap-journal.sqlite"))
}

fn create_school(dir: &mut dyn Directory, name: &str) -> Result<(), rollcall::store::StoreError> {
    dir.apply(&Batch {
        schools: vec![School::new(name)],
        ..Batch::default()
    })
    .map(|_| ())
}

/// The entry `dn` of an LDIF dump, as its lines.
fn entry<'a>(ldif: &'a str, dn: &str) -> Vec<&'a str> {
    ldif.split("\n\n")
        .find(|e| {
            e.lines()
                .next()
                .is_some_and(|l| l.eq_ignore_ascii_case(&format!("dn: {dn}")))
        })
        .map(|e| e.lines().collect())
        .unwrap_or_default()
}

#[test]
fn entries_follow_the_layout_and_moves_keep_group_members() {
    let Some(server) = slapd::shared() else { return };
    // Empty classes stay, to show the empty member value they keep.
    let mut d = District::on_server(server, &["import.keep_empty_classes=true"]);
    let base = d
        .backend_sets()
        .iter()
        .find_map(|s| s.strip_prefix("directory.ldap.base_dn="))
        .expect("base");
    let base = base.trim_matches('"').to_string();
    d.import(
        "a",
        &[&student("1", "Max", "Muster", "5a"), &student("2", "Eva", "E", "5a")],
    );
    d.import("b", &[&student("1", "Max", "Muster", "9x")]);
    let ldif = server.dump(&base);
    let max_a = format!("uid=m.muster,cn=users,ou=a,{base}");
    let user = entry(&ldif, &max_a);
    for line in [
        "objectClass: inetOrgPerson",
        "objectClass: shadowAccount",
        "employeeNumber: 1",
        "departmentNumber: district",
        "ou: a",
        "ou: b",
        "employeeType: student:school:a",
        "businessCategory: class:a:5a",
        "businessCategory: class:b:9x",
        "description: rollcall-state=active",
        "cn: Max Muster",
    ] {
        assert!(user.contains(&line), "{line} missing in {user:#?}");
    }
    let class_a = format!("cn=a-5a,cn=classes,cn=groups,ou=a,{base}");
    let class_b = format!("cn=b-9x,cn=classes,cn=groups,ou=b,{base}");
    assert!(entry(&ldif, &class_a).contains(&format!("member: {max_a}").as_str()));
    assert!(entry(&ldif, &format!("ou=a,{base}")).contains(&"businessCategory: rollcall-school"));
    // a drops Max: b becomes primary, the entry moves, the groups follow.
    d.import("a", &[&student("2", "Eva", "E", "5a")]);
    let ldif = server.dump(&base);
    let max_b = format!("uid=m.muster,cn=users,ou=b,{base}");
    assert!(entry(&ldif, &max_a).is_empty(), "moved away");
    assert!(!entry(&ldif, &max_b).is_empty(), "moved to b");
    assert!(
        entry(&ldif, &class_b).contains(&format!("member: {max_b}").as_str()),
        "{ldif}"
    );
    assert!(
        !ldif.contains(&format!("member: {max_a}")),
        "no member points at the old DN"
    );
    // Eva to limbo: ou=limbo, disabled, purge date.
    let mut req = District::request("a", rollcall::model::Role::Student, d.feed(&[]));
    req.force = true;
    d.import_req(req);
    let ldif = server.dump(&base);
    let eva = entry(&ldif, &format!("uid=e.e,cn=users,ou=limbo,{base}"));
    assert!(
        eva.contains(&"shadowExpire: 1") && eva.contains(&"description: rollcall-state=limbo"),
        "{eva:#?}"
    );
    assert!(eva.iter().any(|l| l.starts_with("description: rollcall-purge=")));
    assert!(
        entry(&ldif, &class_a).iter().all(|l| !l.starts_with("member: uid=")),
        "class 5a is empty now"
    );
    assert!(
        entry(&ldif, &class_a).contains(&"member:"),
        "an empty group keeps its empty member value"
    );
}

#[test]
fn tls_starttls_and_ldaps_verify_the_server() {
    let tmp = tempfile::tempdir().expect("tempdir");
    if slapd::binary().is_none() {
        return;
    }
    let good = slapd::make_certs(tmp.path(), "good");
    let other = slapd::make_certs(tmp.path(), "other");
    let server = Slapd::start_with(Some(good.clone())).expect("slapd");
    let ca = |p: &Path| format!("directory.ldap.ca_bundle=\"{}\"", p.display());
    let mut starttls = open_dir(
        &server,
        tmp.path(),
        &["directory.ldap.starttls=true".into(), ca(&good.ca)],
    )
    .expect("open");
    create_school(&mut starttls, "a").expect("StartTLS with the right CA");
    assert_eq!(starttls.schools().expect("schools").len(), 1);
    let url = format!("directory.ldap.url=\"{}\"", server.ldaps_url());
    let mut ldaps = open_dir(&server, tmp.path(), &[url.clone(), ca(&good.ca)]).expect("open");
    create_school(&mut ldaps, "b").expect("ldaps with the right CA");
    for extra in [
        vec![url.clone(), ca(&other.ca)],
        vec!["directory.ldap.starttls=true".into(), ca(&other.ca)],
        vec![url.clone()],
    ] {
        let mut dir = open_dir(&server, tmp.path(), &extra).expect("open");
        let e = create_school(&mut dir, "c")
            .expect_err("an unknown CA is refused")
            .to_string();
        assert!(
            e.contains("127.0.0.1") && e.to_lowercase().contains("certificate"),
            "{e}"
        );
    }
    let e = open_dir(&server, tmp.path(), &[ca(&tmp.path().join("missing.pem"))])
        .err()
        .expect("missing CA file");
    assert!(e.to_string().contains("missing.pem"), "{e}");
}

#[test]
fn ldapi_socket_works() {
    let Some(server) = slapd::shared() else { return };
    let tmp = tempfile::tempdir().expect("tempdir");
    let url = format!("directory.ldap.url=\"{}\"", server.ldapi_url());
    let mut dir = open_dir(server, tmp.path(), &[url]).expect("open");
    create_school(&mut dir, "a").expect("write over ldapi");
    assert_eq!(dir.school("a").expect("read").map(|s| s.name), Some("a".into()));
}

#[test]
fn bind_password_file_must_be_private() {
    use std::os::unix::fs::PermissionsExt;
    let Some(server) = slapd::shared() else { return };
    let tmp = tempfile::tempdir().expect("tempdir");
    let pw = server.password_file(tmp.path());
    std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o640)).expect("chmod");
    let e = open_dir(server, tmp.path(), &[]).err().expect("refused").to_string();
    assert!(e.contains(&pw.display().to_string()) && e.contains("chmod 600"), "{e}");
}

#[test]
fn errors_name_server_dn_and_result_code() {
    let Some(server) = slapd::shared() else { return };
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut dir = open_dir(server, tmp.path(), &[]).expect("open");
    let bad = tmp.path().join("wrong.pw");
    std::fs::write(&bad, "wrong\n").expect("write");
    std::fs::set_permissions(&bad, std::os::unix::fs::PermissionsExt::from_mode(0o600)).expect("chmod");
    let bad = format!("directory.ldap.bind_password_file=\"{}\"", bad.display());
    let mut wrong = open_dir(server, tmp.path(), &[bad]).expect("open");
    let e = create_school(&mut wrong, "a").expect_err("bad password").to_string();
    assert!(
        e.contains(&server.url()) && e.contains(slapd::ROOT_DN) && e.contains("LDAP result 49 (invalidCredentials)"),
        "{e}"
    );
    let outside = "directory.ldap.base_dn=\"ou=x,dc=elsewhere\"".to_string();
    let mut lost = open_dir(server, &tempdir_with_pw(server), &[outside]).expect("open");
    let e = create_school(&mut lost, "a")
        .expect_err("outside the suffix")
        .to_string();
    assert!(
        e.contains(&server.url()) && e.contains("dc=elsewhere") && e.contains("LDAP result"),
        "{e}"
    );
    create_school(&mut dir, "a").expect("the right password works");
}

fn tempdir_with_pw(server: &Slapd) -> std::path::PathBuf {
    let d = tempfile::tempdir().expect("tempdir").keep();
    server.password_file(&d);
    d
}

/// A minimal UCS@school-like schema (made-up OIDs in a private arc).
const UCS_SCHEMA: &str = r#"
attributetype ( 1.3.6.1.4.1.99999.1.1 NAME 'ucsschoolRecordUID' EQUALITY caseExactMatch SUBSTR caseExactSubstringsMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
attributetype ( 1.3.6.1.4.1.99999.1.2 NAME 'ucsschoolSourceUID' EQUALITY caseExactMatch SUBSTR caseExactSubstringsMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
attributetype ( 1.3.6.1.4.1.99999.1.3 NAME 'ucsschoolSchool' EQUALITY caseExactMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 )
attributetype ( 1.3.6.1.4.1.99999.1.4 NAME 'ucsschoolRole' EQUALITY caseExactMatch SUBSTR caseExactSubstringsMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 )
attributetype ( 1.3.6.1.4.1.99999.1.5 NAME 'ucsschoolPurgeTimestamp' EQUALITY generalizedTimeMatch ORDERING generalizedTimeOrderingMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.24 SINGLE-VALUE )
objectclass ( 1.3.6.1.4.1.99999.2.1 NAME 'ucsschoolType' AUXILIARY MAY ( ucsschoolRecordUID $ ucsschoolSourceUID $ ucsschoolSchool $ ucsschoolRole $ ucsschoolPurgeTimestamp ) )
objectclass ( 1.3.6.1.4.1.99999.2.2 NAME 'ucsschoolOrganizationalUnit' AUXILIARY MAY ( displayName $ ucsschoolRole ) )
"#;

#[test]
fn ucsschool_mapping_round_trips() {
    if slapd::binary().is_none() {
        return;
    }
    let server = Slapd::start_with_schema(UCS_SCHEMA).expect("slapd");
    let overlay = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/ldap-ucsschool.toml");
    let dir = tempfile::tempdir().expect("tempdir");
    let base = slapd::fresh_base();
    let mut sets = server.sets(dir.path(), &base);
    sets.push("import.deletion_grace_days=30".into());
    let opts = LoadOptions {
        files: vec![overlay],
        sets,
        ..LoadOptions::default()
    };
    let settings = rollcall::engine::Settings::load(&opts, Some(dir.path().to_path_buf()), false).expect("settings");
    let mut engine = rollcall::engine::Engine::open(settings).expect("engine");
    let feed = |name: &str, lines: &[String]| {
        let p = dir.path().join(name);
        std::fs::write(&p, format!("{}\n{}\n", common::HEADER, lines.join("\n"))).expect("feed");
        p
    };
    let import = |engine: &mut rollcall::engine::Engine, school: &str, file| {
        let o = engine
            .import(
                &District::request(school, rollcall::model::Role::Student, file),
                &mut Quiet,
            )
            .expect("import");
        assert!(o.refused.is_none(), "{:?}", o.refused);
        o
    };
    import(
        &mut engine,
        "gsmitte",
        feed("1.csv", &[student("1", "Max", "M", "5a"), student("2", "Eva", "E", "")]),
    );
    let o = import(&mut engine, "gsmitte", feed("2.csv", &[student("2", "Eva", "E", "")]));
    assert_eq!(o.to_limbo, 1);
    let ldif = server.dump(&base);
    let max = entry(&ldif, &format!("uid=m.m,cn=users,ou=limbo,{base}"));
    for line in [
        "ucsschoolRecordUID: 1",
        "ucsschoolSourceUID: district",
        "ucsschoolSchool: limbo",
        "ucsschoolRole: student:school:limbo",
    ] {
        assert!(max.contains(&line), "{line} missing in {max:#?}");
    }
    let purge = max
        .iter()
        .find_map(|l| l.strip_prefix("ucsschoolPurgeTimestamp: "))
        .expect("purge timestamp");
    assert!(purge.ends_with("000000Z") && purge.len() == 15, "{purge}");
    assert!(entry(&ldif, &format!("ou=gsmitte,{base}")).contains(&"displayName: gsmitte"));
    let u = engine.limbo_list().expect("limbo");
    assert_eq!(u.len(), 1);
    assert_eq!((u[0].state, u[0].purge_at.is_some()), (UserState::Limbo, true));
    assert_eq!(engine.schools_list().expect("schools").len(), 2);
}

/// Kills slapd once the import starts writing.
struct KillOnApply(Option<u32>);

impl Progress for KillOnApply {
    fn update(&mut self, event: ProgressEvent) {
        if event.phase == "applying"
            && let Some(pid) = self.0.take()
        {
            std::thread::spawn(move || {
                std::thread::sleep(std::time::Duration::from_millis(60));
                let _ = std::process::Command::new("kill")
                    .args(["-9", &pid.to_string()])
                    .status();
            });
        }
    }
}

/// Every group's member values agree with the users that list the group.
fn groups_consistent(dir: &dyn Directory) {
    for g in dir.groups(None, Some(GroupKind::Class)).expect("groups") {
        let members = dir.group(&g.key).expect("group").expect("present").members.len() as u64;
        assert_eq!(g.members, members, "group {} member values vs users", g.key);
    }
}

#[test]
fn slapd_dying_mid_import_fails_clearly_and_the_rerun_converges() {
    if slapd::binary().is_none() {
        return;
    }
    let mut server = Slapd::start().expect("slapd");
    let mut d = District::on_server(&server, &[]);
    let lines: Vec<String> = (0..3000)
        .map(|i| student(&i.to_string(), "Kim", &format!("Nr{i}"), &format!("{}a", i % 12)))
        .collect();
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    let file = d.feed(&refs);
    let req = District::request("a", rollcall::model::Role::Student, file.clone());
    let e = d
        .engine
        .import(&req, &mut KillOnApply(server.pid()))
        .expect_err("slapd died")
        .to_string();
    assert!(e.contains(&server.url()), "{e}");
    server.restart();
    // A new process: unfinished intents are repaired on open.
    d.reopen(&[], false);
    let dir = d.engine.directory();
    let written = dir.users(&UserQuery::default()).expect("users");
    assert!(
        written.len() < 3000,
        "slapd died before the end ({} written)",
        written.len()
    );
    for u in &written {
        let i: usize = u.key.record_uid.parse().expect("uid");
        assert_eq!(u.classes()["a"], [format!("{}a", i % 12)], "user {i} is whole");
    }
    groups_consistent(dir);
    let o = d.import_req(req.clone());
    assert_eq!(o.created as usize, 3000 - written.len());
    assert_eq!(o.unchanged as usize, written.len());
    let o = d.import_req(req);
    assert_eq!((o.created, o.modified, o.unchanged), (0, 0, 3000), "converged");
    assert_eq!(
        d.engine.directory().count_users(&UserQuery::default()).expect("count"),
        3000
    );
    groups_consistent(d.engine.directory());
    let head = d.engine.directory().journal_head().expect("head");
    let entries = d.engine.directory().journal_after(0, 100_000).expect("journal");
    assert_eq!(entries.last().map(|e| e.seq), Some(head));
    assert!(entries.iter().filter(|e| e.object.kind_str() == "user").count() >= 3000);
}

#[test]
fn cli_exits_1_with_a_clear_error_when_slapd_is_down() {
    if slapd::binary().is_none() {
        return;
    }
    let mut server = Slapd::start().expect("slapd");
    let tmp = tempfile::tempdir().expect("tempdir");
    let feed = tmp.path().join("f.csv");
    std::fs::write(&feed, format!("{}\n{}\n", common::HEADER, student("1", "Max", "M", ""))).expect("feed");
    let sets = server.sets(tmp.path(), &slapd::fresh_base());
    server.stop();
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_rollcall"));
    cmd.arg("--data-dir").arg(tmp.path().join("data"));
    for s in &sets {
        cmd.args(["--set", s]);
    }
    let out = cmd
        .args(["import", "--school", "a", "--role", "student"])
        .arg(&feed)
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(&server.url()) && stderr.contains("connect"), "{stderr}");
}

#[test]
fn info_shows_the_ldap_paths_and_never_the_password() {
    let Some(server) = slapd::shared() else { return };
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_rollcall"));
    cmd.arg("--data-dir").arg(tmp.path().join("data")).arg("--json");
    for s in server.sets(tmp.path(), &slapd::fresh_base()) {
        cmd.args(["--set", &s]);
    }
    let out = cmd.arg("info").output().expect("run");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    let info: serde_json::Value = serde_json::from_str(&text).expect("json");
    assert_eq!(info["paths"]["directory"], server.url());
    assert!(
        info["paths"]["ldap_journal"]
            .as_str()
            .is_some_and(|p| p.ends_with("ldap-journal.sqlite"))
    );
    assert_eq!(info["config"]["directory"]["backend"], "ldap");
    assert!(!text.contains(slapd::ROOT_PW), "the password is never shown");
}
