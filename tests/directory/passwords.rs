//! Initial passwords a stock OpenLDAP verifies (issue 20): a user created
//! by an import binds to the test slapd — which loads no password module —
//! with the initial password from `--passwords-csv`; the hash is
//! `{CRYPT}$6$…` by default, `{SSHA256}` or `{ARGON2}` when selected.

use crate::common::{self, District, slapd};
use rollcall::model::Role;
use std::process::Command;

/// Imports one new student with a passwords CSV; returns (username,
/// initial password, stored hash, base DN).
fn import_one(d: &mut District) -> (String, String, String) {
    let feed = d.feed(&[&common::student("p1", "Paula", "Passwort", "5a")]);
    let csv = d.data_dir().join("passwords.csv");
    let mut req = District::request("gsbind", Role::Student, feed);
    req.passwords_csv = Some(csv.clone());
    let out = d.import_req(req);
    assert_eq!(out.created, 1);
    let text = std::fs::read_to_string(&csv).unwrap();
    let mut rows = csv::Reader::from_reader(text.as_bytes());
    let headers = rows.headers().unwrap().clone();
    let row = rows.records().next().unwrap().unwrap();
    let col = |name: &str| {
        row.get(headers.iter().position(|h| h == name).unwrap())
            .unwrap()
            .to_string()
    };
    let user = d.must("p1");
    (col("username"), col("password"), user.password_hash.unwrap())
}

fn bind(server: &slapd::Slapd, dn: &str, password: &str) -> std::process::Output {
    Command::new("ldapwhoami")
        .args(["-x", "-H", &server.url(), "-D", dn, "-w", password])
        .output()
        .expect("ldapwhoami (ldap-utils)")
}

fn user_dn(server: &slapd::Slapd, d: &District, username: &str) -> String {
    let base = d
        .backend_sets()
        .iter()
        .find_map(|s| {
            s.strip_prefix("directory.ldap.base_dn=")
                .map(|b| b.trim_matches('"').to_string())
        })
        .expect("the district's base DN");
    server
        .entries(&base)
        .into_iter()
        // The person's entry, not the claim of its name under cn=usernames.
        .find(|(_, attrs)| {
            attrs.get("uid").is_some_and(|v| v.contains(username))
                && attrs
                    .get("objectclass")
                    .is_some_and(|v| v.iter().any(|c| c.eq_ignore_ascii_case("inetOrgPerson")))
        })
        .map(|(dn, _)| dn)
        .expect("the new user's entry")
}

#[test]
fn a_new_user_binds_to_a_stock_slapd_with_the_initial_password() {
    common::on_ldap(|| {
        let server = slapd::shared().expect("on_ldap checked the server");
        let mut d = District::new();
        let (username, password, hash) = import_one(&mut d);
        assert!(hash.starts_with("{CRYPT}$6$"), "{hash}");
        let dn = user_dn(server, &d, &username);
        let ok = bind(server, &dn, &password);
        assert!(
            ok.status.success(),
            "bind as {dn}: {}",
            String::from_utf8_lossy(&ok.stderr)
        );
        assert!(String::from_utf8_lossy(&ok.stdout).to_lowercase().contains(&dn));
        let wrong = bind(server, &dn, "not-the-password");
        assert_eq!(wrong.status.code(), Some(49), "invalid credentials");
        // The report: {SSHA256} (the old default) cannot be
        // verified by a slapd without pw-sha2, so the same bind fails.
        let mut old = District::with_sets(&["import.password_scheme=\"ssha256\""]);
        let (username, password, hash) = import_one(&mut old);
        assert!(hash.starts_with("{SSHA256}"));
        let dn = user_dn(server, &old, &username);
        assert!(!bind(server, &dn, &password).status.success());
    });
}

#[test]
fn other_schemes_are_selectable() {
    for (scheme, prefix) in [("ssha256", "{SSHA256}"), ("argon2", "{ARGON2}$argon2id$")] {
        let mut d = District::with_sets(&[&format!("import.password_scheme=\"{scheme}\"")]);
        let (_, password, hash) = import_one(&mut d);
        assert!(hash.starts_with(prefix), "{hash}");
        assert!(rollcall::engine::password::verify(&password, &hash));
    }
}

#[test]
fn without_a_passwords_file_no_password_is_set() {
    // Nobody could ever read it: no hash is computed or stored.
    let mut d = District::new();
    let feed = d.feed(&[&common::student("p1", "Paula", "Passwort", "5a")]);
    let out = d.import_req(District::request("gsbind", Role::Student, feed));
    assert_eq!(out.created, 1);
    assert_eq!(d.must("p1").password_hash, None);
}
