//! The security review, one test per point, through the real binary where
//! the point is about what a user can do: `--read-only` refused by every
//! destructive call, trash item names that cannot leave the queue folders,
//! secret files refused when others may read them, secrets never written
//! anywhere, no switch that turns TLS verification off, filter values
//! escaped, the audit log, the password CSV's mode.
//!
//! LDAP TLS (StartTLS, ldaps://, a wrong CA refused with a clear error) is
//! exercised against a real slapd in `tests/directory/ldap.rs`
//! (`tls_starttls_and_ldaps_verify_the_server`).

use serde_json::Value;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const FEED: &str = "record_uid,firstname,lastname\n1,Anna,Alt\n2,Bernd,Berg\n";
const SECRET: &str = "S3cr3t-T0ken-4e7c1f0d9b";

struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn new() -> Self {
        Env {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn data(&self) -> PathBuf {
        self.path("data")
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_rollcall"))
            .arg("--data-dir")
            .arg(self.data())
            .args(args)
            .env_remove("ROLLCALL_DATA_DIR")
            .env("HOME", self.dir.path())
            .env("USER", "alice")
            .env("SUDO_USER", "bob")
            .env("XDG_CONFIG_HOME", self.path("xdg"))
            .output()
            .unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn file(&self, name: &str, text: &str, mode: u32) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, text).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        p
    }

    /// A district with one school, an embedded mirror authority and one
    /// user in limbo and one trash item.
    fn district(&self) -> String {
        let config = self.file(
            "mirror.toml",
            "[authorities.mirror]\nkind = \"embedded\"\nschools = [\"*\"]\n",
            0o644,
        );
        let c = config.to_str().unwrap().to_string();
        let feed = self.file("a.csv", FEED, 0o644);
        self.ok(&[
            "--config",
            &c,
            "import",
            "--school",
            "gs",
            "--role",
            "student",
            feed.to_str().unwrap(),
        ]);
        let one = self.file("b.csv", "record_uid,firstname,lastname\n1,Anna,Alt\n", 0o644);
        self.ok(&[
            "--config",
            &c,
            "import",
            "--school",
            "gs",
            "--role",
            "student",
            one.to_str().unwrap(),
        ]);
        c
    }
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Every file under `dir`, with its bytes.
fn all_files(dir: &Path, out: &mut Vec<(PathBuf, Vec<u8>)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            all_files(&p, out);
        } else if let Ok(b) = std::fs::read(&p) {
            out.push((p, b));
        }
    }
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

// --- read-only: every destructive engine call refuses (exit 3) and audits.

fn refused_read_only(args: &[&str], action: &str) {
    let env = Env::new();
    let c = env.district();
    let feed = env.path("a.csv");
    let before = env.ok(&["--json", "--config", &c, "users", "list", "--state", "all"]);
    let mut full = vec!["--read-only", "--config", c.as_str()];
    let args: Vec<String> = args.iter().map(|a| a.replace("{feed}", s(&feed))).collect();
    full.extend(args.iter().map(String::as_str));
    let out = env.run(&full);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{args:?}: {stderr}");
    assert!(
        stderr.contains("read-only") && stderr.contains(&format!("`{action}`")),
        "{args:?}: {stderr}"
    );
    let after = env.ok(&["--json", "--config", &c, "users", "list", "--state", "all"]);
    assert_eq!(before, after, "{args:?} changed the directory");
    let audit = std::fs::read_to_string(env.data().join("logs/audit.log")).unwrap();
    let last: Value = serde_json::from_str(audit.lines().last().unwrap()).unwrap();
    assert_eq!(last["action"], action, "{audit}");
    assert_eq!(last["outcome"], "refused: read-only");
}

macro_rules! read_only {
    ($($name:ident: [$($arg:expr),*] => $action:expr;)*) => {$(
        #[test]
        fn $name() {
            refused_read_only(&[$($arg),*], $action);
        }
    )*};
}

read_only! {
    read_only_refuses_import: ["import", "--school", "gs", "--role", "student", "{feed}"] => "import";
    read_only_refuses_import_dry_run_free_batch: ["import", "--school", "gs2", "--role", "student", "{feed}"] => "import";
    read_only_refuses_schools_create: ["schools", "create", "newschool"] => "schools create";
    read_only_refuses_limbo_restore: ["limbo", "restore", "b.berg", "--school", "gs"] => "limbo restore";
    read_only_refuses_limbo_extend: ["limbo", "extend", "b.berg", "--days", "5"] => "limbo extend";
    read_only_refuses_limbo_purge: ["limbo", "purge", "--as-of", "2100-01-01"] => "limbo purge";
    read_only_refuses_limbo_purge_user: ["limbo", "purge", "--user", "b.berg"] => "limbo purge";
    read_only_refuses_sync_run: ["sync", "run", "--once"] => "sync run";
    read_only_refuses_schedule_user: ["schedule", "user", "a.alt"] => "schedule user";
    read_only_refuses_schedule_group: ["schedule", "group", "class:gs:5a"] => "schedule group";
    read_only_refuses_schedule_school: ["schedule", "school", "gs"] => "schedule school";
    read_only_refuses_resync: ["resync", "--authority", "mirror"] => "resync";
    read_only_refuses_trash_delete: ["trash", "delete", "mirror/1-user_x-0123456789abcdef0123456789abcdef.json"] => "trash delete";
    read_only_refuses_trash_requeue: ["trash", "requeue", "mirror/1-user_x-0123456789abcdef0123456789abcdef.json"] => "trash requeue";
    read_only_refuses_trash_purge: ["trash", "purge", "--older-than", "0"] => "trash purge";
    read_only_refuses_daemon: ["daemon"] => "daemon";
    read_only_refuses_demo: ["demo", "--schools", "1", "--users-per-school", "5", "--no-tui"] => "demo";
    read_only_refuses_authority_pause: ["authorities", "pause", "mirror"] => "authority pause";
    read_only_refuses_authority_resume: ["authorities", "resume", "mirror"] => "authority resume";
    read_only_refuses_sync_schools_add: ["sync-schools", "add", "--authority", "mirror", "gs"] => "sync-schools add";
    read_only_refuses_sync_schools_remove: ["sync-schools", "remove", "--authority", "mirror", "gs"] => "sync-schools remove";
    read_only_refuses_verify_fix: ["verify", "users", "--authority", "mirror", "--fix"] => "verify --fix";
    read_only_refuses_migrate: ["migrate"] => "migrate";
    read_only_refuses_schools_merge: ["schools", "merge", "GS", "gs"] => "schools merge";
}

/// Every `check_writable("<action>")` in the engine has a test above, so a
/// new destructive call without one is noticed.
#[test]
fn every_guarded_action_has_a_read_only_test() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/engine");
    let mut files = Vec::new();
    all_files(&src, &mut files);
    let me = std::fs::read_to_string(file!()).unwrap();
    let mut actions = Vec::new();
    for (_, text) in files {
        let text = String::from_utf8_lossy(&text);
        for part in text.split("check_writable(\"").skip(1) {
            actions.push(part.split('"').next().unwrap().to_string());
        }
    }
    assert!(actions.len() >= 15, "{actions:?}");
    for a in actions {
        // Internal steps of a guarded call are covered by that call.
        if a == "sync distribute" {
            continue;
        }
        assert!(me.contains(&format!("=> \"{a}\";")), "no read-only test for `{a}`");
    }
}

// --- trash item names never leave the trash folders.

#[test]
fn trash_names_cannot_escape_the_queue_folders() {
    let env = Env::new();
    let c = env.district();
    // A file outside the queues that a traversal would reach.
    let victim = env.data().join("queues/victim.json");
    std::fs::create_dir_all(victim.parent().unwrap()).unwrap();
    std::fs::write(&victim, "{}").unwrap();
    let outside = env.path("outside.json");
    std::fs::write(&outside, "{}").unwrap();
    let hostile = [
        "../victim.json".to_string(),
        "mirror/../../victim.json".to_string(),
        "mirror/../victim.json".to_string(),
        "../../queues/victim.json".to_string(),
        s(&outside).to_string(),
        format!("mirror/{}", s(&outside)),
        "mirror/..".to_string(),
        "../mirror/x.json".to_string(),
        "mirror/.hidden.json".to_string(),
        "mirror/trash/x.json".to_string(),
        "mirror\\..\\x.json".to_string(),
        "mirror/x.json\0.txt".replace('\0', ""),
    ];
    for h in &hostile {
        for cmd in ["show", "delete", "requeue"] {
            let out = env.run(&["--config", &c, "trash", cmd, h]);
            assert_ne!(out.status.code(), Some(0), "trash {cmd} {h} succeeded");
        }
    }
    assert!(victim.exists() && outside.exists());
    // A symlink planted in the trash: delete removes the link, never the
    // file it points to.
    let trash = env.data().join("queues/out/mirror/trash");
    std::fs::create_dir_all(&trash).unwrap();
    let link = trash.join("1-user_x-0123456789abcdef0123456789abcdef.json");
    std::fs::write(&outside, "{\"object\":{\"kind\":\"school\",\"name\":\"gs\"},\"reason\":\"change\",\"enqueued_at\":\"2026-11-21T10:00:00Z\"}").unwrap();
    std::os::unix::fs::symlink(&outside, &link).unwrap();
    let out = env.run(&[
        "--config",
        &c,
        "trash",
        "show",
        "mirror/1-user_x-0123456789abcdef0123456789abcdef.json",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "a linked file was read: {stderr}");
    assert!(stderr.contains("symbolic link"), "{stderr}");
    env.run(&[
        "--config",
        &c,
        "trash",
        "delete",
        "mirror/1-user_x-0123456789abcdef0123456789abcdef.json",
    ]);
    assert!(outside.exists(), "the symlink's target was deleted");
    // Authority names from the config cannot be paths either.
    let bad = env.file("bad.toml", "[authorities.\"../../etc\"]\nkind = \"embedded\"\n", 0o644);
    let out = env.run(&["--config", s(&bad), "queue", "list"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(!env.path("etc").exists() && !env.data().join("etc").exists());
}

// --- secrets.

fn scim_config(env: &Env, token_mode: u32, url: &str) -> String {
    let token = env.file("token", &format!("{SECRET}\n"), token_mode);
    let config = env.file(
        "scim.toml",
        &format!(
            "[authorities.idb]\nkind = \"scim\"\nurl = \"{url}\"\ntoken_file = \"{}\"\nschools = [\"*\"]\n\
             max_attempts = 1\ntimeout_seconds = 2.0\n",
            s(&token)
        ),
        0o644,
    );
    s(&config).to_string()
}

#[test]
fn a_token_file_others_may_read_is_refused() {
    for mode in [0o644, 0o640, 0o604] {
        let env = Env::new();
        let c = scim_config(&env, mode, "http://127.0.0.1:9/scim/v2");
        let feed = env.file("a.csv", FEED, 0o644);
        env.ok(&[
            "--config",
            &c,
            "import",
            "--school",
            "gs",
            "--role",
            "student",
            s(&feed),
        ]);
        let out = env.run(&["--config", &c, "sync", "run", "--once", "--max-wait", "1"]);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert_ne!(out.status.code(), Some(0), "{mode:o}: {text}");
        assert!(
            text.contains("token_file") && text.contains("chmod 600") && text.contains(s(&env.path("token"))),
            "{mode:o}: {text}"
        );
        assert!(!text.contains(SECRET));
    }
}

#[test]
fn secrets_never_reach_logs_queues_trash_runs_or_info() {
    let env = Env::new();
    // A closed port: every send fails; nothing may echo the token.
    let c = scim_config(&env, 0o600, "http://127.0.0.1:9/scim/v2");
    let feed = env.file("a.csv", FEED, 0o644);
    let mut outputs = Vec::new();
    let mut run = |args: &[&str]| {
        let mut a = vec!["--config", c.as_str()];
        a.extend_from_slice(args);
        let out = env.run(&a);
        outputs.push(out.stdout);
        outputs.push(out.stderr);
    };
    run(&["import", "--school", "gs", "--role", "student", s(&feed)]);
    run(&["--set", "log.level=trace", "sync", "run", "--once", "--max-wait", "1"]);
    run(&["--json", "sync", "run", "--once", "--max-wait", "1"]);
    run(&["info"]);
    run(&["--json", "info"]);
    run(&["--json", "authorities", "show", "idb"]);
    run(&["--json", "queue", "show", "idb"]);
    run(&["--json", "trash", "list"]);
    run(&["--json", "runs", "list"]);
    for o in &outputs {
        assert!(
            !contains(o, SECRET),
            "an output holds the token: {}",
            String::from_utf8_lossy(o)
        );
    }
    let mut files = Vec::new();
    all_files(&env.data(), &mut files);
    assert!(files.len() > 5, "{files:?}");
    assert!(files.iter().any(|(p, _)| p.to_string_lossy().contains("logs")));
    for (p, b) in &files {
        assert!(!contains(b, SECRET), "{} holds the token", p.display());
    }
}

#[test]
fn a_bind_password_file_others_may_read_is_refused() {
    // The directory's bind password (`[directory.ldap]`): refused when the
    // store opens, before any connection.
    let env = Env::new();
    let pw = env.file("bind.pw", SECRET, 0o644);
    let out = env.run(&[
        "--set",
        "directory.backend=\"ldap\"",
        "--set",
        "directory.ldap.url=\"ldap://127.0.0.1:9\"",
        "--set",
        "directory.ldap.base_dn=\"dc=example,dc=org\"",
        "--set",
        "directory.ldap.bind_dn=\"cn=admin,dc=example,dc=org\"",
        "--set",
        &format!("directory.ldap.bind_password_file=\"{}\"", s(&pw)),
        "schools",
        "list",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(s(&pw)) && stderr.contains("600"), "{stderr}");
    assert!(!stderr.contains(SECRET));
}

// --- TLS.

#[test]
fn no_setting_turns_tls_verification_off() {
    for key in [
        "tls_verify = false",
        "insecure = true",
        "verify_tls = false",
        "danger_accept_invalid_certs = true",
        "tls_insecure_skip_verify = true",
    ] {
        let env = Env::new();
        let config = env.file(
            "x.toml",
            &format!(
                "[authorities.idb]\nkind = \"scim\"\nurl = \"https://x.example/scim/v2\"\ntoken_file = \"/x\"\n{key}\n"
            ),
            0o644,
        );
        let out = env.run(&["--config", s(&config), "info"]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{key} accepted: {stderr}");
        assert!(stderr.contains("unknown field"), "{stderr}");
        let out = env.run(&["--set", &format!("directory.ldap.{key}"), "info"]);
        assert_eq!(out.status.code(), Some(1), "directory.ldap.{key} accepted");
    }
    // And nothing in the engine builds a client that skips verification.
    let mut files = Vec::new();
    all_files(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"), &mut files);
    for (p, b) in files {
        for bad in [
            "danger_accept_invalid",
            "dangerous()",
            "NoVerif",
            "set_no_tls_verify",
            "ServerCertVerifier for",
        ] {
            assert!(!contains(&b, bad), "{} contains {bad}", p.display());
        }
    }
}

#[test]
fn scim_over_tls_refuses_an_unknown_certificate_clearly() {
    // A TLS server whose certificate no trusted CA signed: the handshake
    // fails and the error says it is the certificate.
    let env = Env::new();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (cert, key) = self_signed(&env);
    std::thread::spawn(move || serve_tls_once(listener, &cert, &key));
    let c = scim_config(&env, 0o600, &format!("https://127.0.0.1:{port}/scim/v2"));
    let feed = env.file("a.csv", FEED, 0o644);
    env.ok(&[
        "--config",
        &c,
        "import",
        "--school",
        "gs",
        "--role",
        "student",
        s(&feed),
    ]);
    let out = env.run(&["--config", &c, "sync", "run", "--once", "--max-wait", "1"]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_ne!(out.status.code(), Some(0), "{text}");
    assert!(text.to_lowercase().contains("certificate"), "{text}");
}

fn self_signed(env: &Env) -> (Vec<u8>, Vec<u8>) {
    let cert = env.path("cert.pem");
    let key = env.path("key.pem");
    let out = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
        ])
        .args(["-addext", "subjectAltName=IP:127.0.0.1"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl is needed to make a test certificate");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    (std::fs::read(cert).unwrap(), std::fs::read(key).unwrap())
}

fn serve_tls_once(listener: std::net::TcpListener, cert: &[u8], key: &[u8]) {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let _ = rustls::crypto::ring::default_provider().install_default();
    let certs: Vec<CertificateDer> = CertificateDer::pem_slice_iter(cert).map(|c| c.unwrap()).collect();
    let key = PrivateKeyDer::from_pem_slice(key).unwrap();
    let config = std::sync::Arc::new(
        rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .unwrap(),
    );
    for stream in listener.incoming().take(8) {
        let Ok(mut stream) = stream else { continue };
        let Ok(mut conn) = rustls::ServerConnection::new(config.clone()) else {
            continue;
        };
        // The client aborts the handshake; that is the point.
        let _ = conn.complete_io(&mut stream);
    }
}

// --- filters.

#[test]
fn scim_filter_values_are_escaped() {
    use rollcall::engine::sync::target::scim::scim_eq_filter;
    for hostile in [
        r#"" or 1 eq 1"#,
        r#"x" or userName pr or "y"#,
        r#"\" or true or \""#,
        "a\"b\\c\nd",
        "*)(uid=*",
    ] {
        let f = scim_eq_filter("externalId", hostile);
        let value = f.strip_prefix("externalId eq ").unwrap();
        // Exactly one JSON string that decodes back to the value.
        let back: String = serde_json::from_str(value).unwrap_or_else(|e| panic!("{f}: {e}"));
        assert_eq!(back, hostile);
        assert!(value.starts_with('"') && value.ends_with('"'));
        let inner = &value[1..value.len() - 1];
        let mut escaped = false;
        for ch in inner.chars() {
            assert!(escaped || ch != '"', "unescaped quote in {f}");
            escaped = !escaped && ch == '\\';
        }
    }
}

#[test]
fn ldap_filter_values_are_escaped() {
    // The store builds every filter value with ldap3's RFC 4515 escaping.
    // Check the escaping itself on hostile values, and that no filter in
    // the LDAP store interpolates a value without it.
    for (hostile, want) in [
        ("*)(uid=*", r"\2a\29\28uid=\2a"),
        ("a\\b", r"a\5cb"),
        ("x)(|(objectClass=*", r"x\29\28|\28objectClass=\2a"),
        ("nul\0", r"nul\00"),
    ] {
        assert_eq!(ldap3::ldap_escape(hostile), want);
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/store/ldap");
    let mut files = Vec::new();
    all_files(&dir, &mut files);
    for (p, b) in files {
        let text = String::from_utf8_lossy(&b);
        for (n, line) in text.lines().enumerate() {
            // A filter fragment "(attr={…})" built with format! must take
            // its value through ldap_escape (or a helper that does).
            if line.contains("format!(\"(") && line.contains("={") && !line.contains("ldap_escape") {
                // `{k}` is a key escaped beside it; `{old}` a u32 counter.
                let ok =
                    (line.contains("={k}") && text.contains("ldap_escape(v")) || line.contains("(description={old})");
                assert!(ok, "{}:{}: unescaped filter value? {line}", p.display(), n + 1);
            }
        }
    }
}

// --- audit and passwords.

#[test]
fn the_audit_log_records_who_did_what() {
    let env = Env::new();
    let c = env.district();
    env.run(&["--read-only", "--config", &c, "schools", "create", "x"]);
    let audit = env.data().join("logs/audit.log");
    let mode = std::fs::metadata(&audit).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let entries: Vec<Value> = std::fs::read_to_string(&audit)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let imports: Vec<&Value> = entries.iter().filter(|e| e["action"] == "import").collect();
    assert_eq!(imports.len(), 2, "{entries:?}");
    for e in entries.iter() {
        assert_eq!(e["user"], "alice", "{e}");
        assert_eq!(e["sudo_user"], "bob", "{e}");
        assert!(e["at"].as_str().is_some_and(|t| t.starts_with("20")), "{e}");
    }
    assert!(imports[0]["details"].to_string().contains("gs"), "{}", imports[0]);
    let refused = entries.last().unwrap();
    assert_eq!(refused["action"], "schools create");
    assert_eq!(refused["outcome"], "refused: read-only");
}

#[test]
fn the_password_csv_is_mode_0600() {
    let env = Env::new();
    let feed = env.file("a.csv", FEED, 0o644);
    let csv = env.path("passwords-{run_id}.csv");
    env.ok(&[
        "--set",
        &format!("import.passwords_csv=\"{}\"", s(&csv)),
        "import",
        "--school",
        "gs",
        "--role",
        "student",
        s(&feed),
    ]);
    let written: Vec<PathBuf> = std::fs::read_dir(env.dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("passwords-"))
        .collect();
    assert_eq!(written.len(), 1, "{written:?}");
    let mode = std::fs::metadata(&written[0]).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let text = std::fs::read_to_string(&written[0]).unwrap();
    assert_eq!(text.lines().count(), 3, "{text}");
    // And the passwords are nowhere else.
    let pw = text.lines().nth(1).unwrap().split(',').next_back().unwrap().to_string();
    assert!(pw.len() >= 8, "{text}");
    let mut files = Vec::new();
    all_files(&env.data(), &mut files);
    for (p, b) in files {
        assert!(!contains(&b, &pw), "{} holds a password", p.display());
    }
}
