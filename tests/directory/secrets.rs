//! Credentials only from files (issue 18.9): a URL with `user:password@` is
//! refused with a message that names the key and where credentials go, and
//! the password is printed nowhere — not by `info`, `authorities list` or
//! `show`, and not in the refusal itself.

use std::process::Command;

#[test]
fn a_url_with_credentials_is_refused_and_never_printed() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "t\n").unwrap();
    for (config, key) in [
        (
            format!(
                "[authorities.idm]\nkind = \"scim\"\nurl = \"https://admin:Hunter2pw@idm.example/scim/v2\"\n\
                 token_file = \"{}\"\nschools = [\"*\"]\n",
                token.display()
            ),
            "authorities.idm.url",
        ),
        (
            "[directory]\nbackend = \"ldap\"\n[directory.ldap]\nurl = \"ldap://cn=admin:Hunter2pw@ldap.example\"\n"
                .to_string(),
            "directory.ldap.url",
        ),
    ] {
        std::fs::write(data.join("rollcall.toml"), &config).unwrap();
        for args in [
            &["info"][..],
            &["authorities", "list"],
            &["authorities", "show", "idm"],
            &["--json", "info"],
        ] {
            let out = Command::new(env!("CARGO_BIN_EXE_rollcall"))
                .arg("--data-dir")
                .arg(&data)
                .args(args)
                .env_remove("ROLLCALL_DATA_DIR")
                .env("HOME", dir.path())
                .env("XDG_CONFIG_HOME", dir.path().join("xdg"))
                .output()
                .unwrap();
            let all = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            assert_ne!(out.status.code(), Some(0), "{args:?} accepted it: {all}");
            assert!(!all.contains("Hunter2pw"), "{args:?} printed the password: {all}");
            assert!(
                all.contains(key) && all.contains("carries credentials"),
                "{args:?}: {all}"
            );
            assert!(all.contains("_file"), "names where credentials go: {all}");
        }
    }
}
