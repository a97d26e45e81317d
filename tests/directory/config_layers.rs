//! Overrides of an authority defined in an earlier layer (issue 20): the
//! layers are merged, then deserialized, so `--set` and `ROLLCALL_…` of one
//! key of an authority from the data dir's rollcall.toml or a `--config`
//! file work (before: "missing field kind").

use std::process::Command;

fn rollcall(data: &std::path::Path, home: &std::path::Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_rollcall"));
    c.arg("--data-dir")
        .arg(data)
        .env_remove("ROLLCALL_DATA_DIR")
        .env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join("xdg"));
    c
}

fn max_attempts(out: std::process::Output) -> u64 {
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v["max_attempts"].as_u64().unwrap()
}

#[test]
fn set_and_env_override_an_authority_of_an_earlier_layer() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(
        data.join("rollcall.toml"),
        "[authorities.schulportal]\nkind = \"embedded\"\nschools = [\"*\"]\n",
    )
    .unwrap();
    let show = ["--json", "authorities", "show", "schulportal"];
    assert_eq!(
        max_attempts(rollcall(&data, dir.path()).args(show).output().unwrap()),
        8
    );
    let out = rollcall(&data, dir.path())
        .args(["--set", "authorities.schulportal.max_attempts=3"])
        .args(show)
        .output()
        .unwrap();
    assert_eq!(max_attempts(out), 3);
    let out = rollcall(&data, dir.path())
        .env("ROLLCALL_AUTHORITIES__SCHULPORTAL__MAX_ATTEMPTS", "4")
        .args(show)
        .output()
        .unwrap();
    assert_eq!(max_attempts(out), 4);
    // --set wins over the environment; both over the file.
    let out = rollcall(&data, dir.path())
        .env("ROLLCALL_AUTHORITIES__SCHULPORTAL__MAX_ATTEMPTS", "4")
        .args(["--set", "authorities.schulportal.max_attempts=5"])
        .args(show)
        .output()
        .unwrap();
    assert_eq!(max_attempts(out), 5);
    // An authority from a --config overlay, overridden by --set.
    let overlay = dir.path().join("overlay.toml");
    std::fs::write(
        &overlay,
        "[authorities.extra]\nkind = \"embedded\"\nschools = [\"a\"]\n",
    )
    .unwrap();
    let out = rollcall(&data, dir.path())
        .args([
            "--config",
            overlay.to_str().unwrap(),
            "--set",
            "authorities.extra.max_attempts=2",
        ])
        .args(["--json", "authorities", "show", "extra"])
        .output()
        .unwrap();
    assert_eq!(max_attempts(out), 2);
    // An override of an authority nobody defined still names what is missing.
    let out = rollcall(&data, dir.path())
        .args(["--set", "authorities.nobody.max_attempts=2", "authorities", "list"])
        .output()
        .unwrap();
    assert_ne!(out.status.code(), Some(0));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("authorities.nobody") && err.contains("kind"), "{err}");
}
