//! Nothing from data or from a server reaches a terminal raw: a feed whose
//! names carry escape sequences and a SCIM server whose error bodies do
//! (an OSC 52 clipboard write, `ESC[2J`, an OSC 0 title change, a C1 CSI,
//! a bidi override) go through every human-facing CLI output of the real
//! binary — import row errors on stderr, `runs log`, `schools list`,
//! `users list`, `sync run`'s stderr, `authorities list`, `queue list` and
//! `show`, `trash list` and `show` — and come out shown, not obeyed. JSON
//! stays JSON with those characters escaped.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Output};

/// What a hostile feed or server sends.
pub const HOSTILE: &str = "\u{1b}]52;c;cHduZWQ=\u{7}\u{1b}[2J\u{1b}]0;pwned\u{7}\u{9b}31m\u{202e}";

/// Whether text carries anything a terminal would obey.
pub fn raw_controls(s: &str) -> bool {
    s.chars()
        .any(|c| (c.is_control() && c != '\n' && c != '\t') || ('\u{202a}'..='\u{202e}').contains(&c))
}

/// A SCIM "server" that refuses every request with a hostile error body.
fn hostile_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            let mut buf = [0u8; 8192];
            let _ = s.read(&mut buf);
            let body = serde_json::json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
                "status": "401",
                "detail": HOSTILE,
            })
            .to_string();
            let _ = write!(
                s,
                "HTTP/1.1 401 Unauthorized\r\nContent-Type: application/scim+json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    port
}

fn rollcall(data: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rollcall"))
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .env_remove("ROLLCALL_DATA_DIR")
        .output()
        .expect("run rollcall")
}

/// Asserts a human-facing output shows the hostile text escaped.
fn shown_not_obeyed(what: &str, out: &[u8]) {
    let text = String::from_utf8_lossy(out);
    assert!(
        !raw_controls(&text),
        "{what}: raw controls reach the terminal:\n{text:?}"
    );
    assert!(
        text.contains("\\x1b]0;pwned\\x07") && text.contains("\\x9b31m") && text.contains("⟨U+202E⟩"),
        "{what}: the hostile text is not shown:\n{text}"
    );
}

/// Asserts a `--json` output is JSON, escaped, holding the hostile text.
fn json_escaped(what: &str, out: &[u8]) -> serde_json::Value {
    let text = String::from_utf8_lossy(out);
    assert!(!raw_controls(&text), "{what}: raw controls in JSON:\n{text:?}");
    let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{what}: not JSON: {e}\n{text}"));
    assert!(v.to_string().contains("pwned"), "{what}: {v}");
    v
}

#[test]
fn hostile_feeds_and_servers_never_reach_the_terminal_raw() {
    let data = tempfile::tempdir().expect("tempdir");
    let dir = data.path();
    let port = hostile_server();
    let token = dir.join("evil.token");
    std::fs::write(&token, "t0ken\n").expect("token");
    std::fs::set_permissions(&token, std::os::unix::fs::PermissionsExt::from_mode(0o600)).expect("chmod");
    std::fs::write(
        dir.join("rollcall.toml"),
        format!(
            "[import]\nmax_row_errors = -1\n\n[authorities.evil]\nkind = \"scim\"\nurl = \"http://127.0.0.1:{port}/scim/v2\"\ntoken_file = \"{}\"\nschools = [\"*\"]\n",
            token.display()
        ),
    )
    .expect("config");

    // A school whose display name, and a feed whose names, carry it.
    let out = rollcall(
        dir,
        &[
            "schools",
            "create",
            "gs-evil",
            "--display-name",
            &format!("Evil{HOSTILE}"),
        ],
    );
    if out.status.success() {
        shown_not_obeyed("schools create", &out.stdout);
        let out = rollcall(dir, &["schools", "list"]);
        shown_not_obeyed("schools list", &out.stdout);
        json_escaped(
            "schools list --json",
            &rollcall(dir, &["--json", "schools", "list"]).stdout,
        );
    } else {
        shown_not_obeyed("schools create refused", &out.stderr);
        let out = rollcall(dir, &["schools", "create", "gs-evil"]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    let feed = dir.join("evil.csv");
    std::fs::write(
        &feed,
        format!(
            "record_uid,firstname,lastname,email,birthday,classes,role,schools\n\
             1,Ann\u{202e}Lee,Lee,,,5a\u{202e},student,gs-evil\n\
             2,Bob,Ray,,{HOSTILE},5a,student,gs-evil\n"
        ),
    )
    .expect("feed");
    let out = rollcall(dir, &["import", "--school", "gs-evil", feed.to_str().expect("path")]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    shown_not_obeyed("import row errors (stderr)", &out.stderr);
    let runs: serde_json::Value =
        serde_json::from_slice(&rollcall(dir, &["--json", "runs", "list"]).stdout).expect("json");
    let run = runs[0]["id"].as_str().expect("run id").to_string();
    shown_not_obeyed("runs log", &rollcall(dir, &["runs", "log", &run]).stdout);
    let shown = rollcall(dir, &["runs", "show", &run]).stdout;
    assert!(!raw_controls(&String::from_utf8_lossy(&shown)), "runs show");
    // Bidi overrides pass the import's checks (they are not controls).
    let users = String::from_utf8_lossy(&rollcall(dir, &["users", "list"]).stdout).into_owned();
    assert!(!raw_controls(&users) && users.contains("Ann⟨U+202E⟩Lee"), "{users}");
    let users = String::from_utf8_lossy(&rollcall(dir, &["--json", "users", "list"]).stdout).into_owned();
    assert!(!raw_controls(&users) && users.contains("Ann\\u202eLee"), "{users}");
    json_escaped(
        "runs show --json",
        &rollcall(dir, &["--json", "runs", "show", &run]).stdout,
    );

    // The server answers with the hostile body: the authority is paused.
    let out = rollcall(dir, &["sync", "run", "--once", "--max-wait", "1"]);
    shown_not_obeyed("sync run (stderr)", &out.stderr);
    shown_not_obeyed("authorities list", &rollcall(dir, &["authorities", "list"]).stdout);
    shown_not_obeyed("queue list", &rollcall(dir, &["queue", "list"]).stdout);
    json_escaped("queue list --json", &rollcall(dir, &["--json", "queue", "list"]).stdout);

    // A waiting item and a trash item whose last error is the server's body.
    let queue = dir.join("queues/out/evil");
    let name = std::fs::read_dir(&queue)
        .expect("queue dir")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .find(|n| n.ends_with(".json"))
        .expect("a queued item");
    let mut item: serde_json::Value =
        serde_json::from_slice(&std::fs::read(queue.join(&name)).expect("item")).expect("json");
    item["attempts"] = 1.into();
    item["last_error"] = format!("PUT /Users: HTTP 400: {HOSTILE}").into();
    std::fs::write(queue.join(&name), item.to_string()).expect("write item");
    shown_not_obeyed("queue show", &rollcall(dir, &["queue", "show", "evil"]).stdout);
    item["failure"] = serde_json::json!({
        "class": "permanent", "error": format!("PUT /Users: HTTP 400: {HOSTILE}"), "http_status": 400,
        "attempts": 1, "first_failure": "2025-03-03T08:00:00Z", "last_failure": "2025-03-03T08:00:00Z",
        "trashed_at": "2025-03-03T08:00:00Z", "payload": {"userName": format!("x{HOSTILE}")}
    });
    std::fs::write(queue.join("trash").join(&name), item.to_string()).expect("write trash");
    shown_not_obeyed("trash list", &rollcall(dir, &["trash", "list"]).stdout);
    shown_not_obeyed(
        "trash show",
        &rollcall(dir, &["trash", "show", &format!("evil/{name}")]).stdout,
    );
    json_escaped("trash list --json", &rollcall(dir, &["--json", "trash", "list"]).stdout);
    json_escaped(
        "trash show --json",
        &rollcall(dir, &["--json", "trash", "show", &format!("evil/{name}")]).stdout,
    );
    // An error message that quotes data is sanitized too.
    let out = rollcall(dir, &["users", "show", &format!("nobody{HOSTILE}")]);
    assert!(!out.status.success());
    shown_not_obeyed("an error (stderr)", &out.stderr);
}
