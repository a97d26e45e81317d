//! The upload API with a real HTTP client (reqwest): the import's JSON as
//! `rollcall import --json` prints it, dry runs, 401/403/404/409/413, TLS
//! with a CA made here, and the token nowhere in logs, records or answers.

use super::{Daemon, appears_under, feed, quick, rollcall};
use reqwest::blocking::{Body, Client, Response};
use serde_json::Value;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const SIS: &str = "sis-token-6f1d2a9c-only-gsmitte";
const ALL: &str = "district-token-0b7e55c3-every-school";

fn secret(dir: &Path, name: &str, value: &str, mode: u32) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, format!("{value}\n")).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
    p
}

/// `--set`s for an API on a free loopback port with two tokens.
fn api_sets(dir: &Path) -> Vec<String> {
    let sis = secret(dir, "sis.token", SIS, 0o600);
    let all = secret(dir, "all.token", ALL, 0o600);
    let mut sets = quick(60.0);
    sets.extend([
        "intake.http.listen=127.0.0.1:0".to_string(),
        format!("intake.tokens.sis.token_file={}", sis.display()),
        "intake.tokens.sis.schools=[\"gsmitte\"]".into(),
        format!("intake.tokens.all.token_file={}", all.display()),
        "intake.tokens.all.schools=[\"*\"]".into(),
    ]);
    sets
}

fn client(ca: Option<&[u8]>) -> Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut b = Client::builder().timeout(Duration::from_secs(120));
    if let Some(pem) = ca {
        b = b.tls_certs_only(reqwest::Certificate::from_pem_bundle(pem).unwrap());
    }
    b.build().unwrap()
}

fn url(d: &Daemon, path: &str) -> String {
    format!("http://{}{path}", d.http.expect("listening"))
}

fn post(d: &Daemon, token: &str, path: &str, body: impl Into<Body>) -> Response {
    client(None)
        .post(url(d, path))
        .bearer_auth(token)
        .body(body)
        .send()
        .expect("request")
}

fn get(d: &Daemon, token: &str, path: &str) -> Response {
    client(None)
        .get(url(d, path))
        .bearer_auth(token)
        .send()
        .expect("request")
}

fn json(r: Response) -> (u16, Value) {
    let status = r.status().as_u16();
    let text = r.text().unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or_else(|_| Value::String(text)),
    )
}

fn without_run_id(mut v: Value) -> Value {
    v.as_object_mut().unwrap().remove("run_id");
    v
}

#[test]
fn an_upload_answers_the_import_json_and_its_runs_are_readable() {
    let tmp = tempfile::tempdir().unwrap();
    let data = super::data_dir(tmp.path());
    let daemon = Daemon::start(&data, &api_sets(tmp.path()));
    let text = feed("h", 12);

    // A dry run plans and writes nothing.
    let (status, dry) = json(post(
        &daemon,
        SIS,
        "/v1/schools/gsmitte/feeds?role=student&dry_run=true",
        text.clone(),
    ));
    assert_eq!(status, 200, "{dry:#}");
    assert_eq!(dry["dry_run"], true);
    assert_eq!(dry["created"], 12);
    assert!(super::users_of(&data, "gsmitte").is_empty());

    let (status, done) = json(post(
        &daemon,
        SIS,
        "/v1/schools/gsmitte/feeds?role=student&format=csv",
        text.clone(),
    ));
    assert_eq!(status, 200, "{done:#}");
    assert_eq!(super::users_of(&data, "gsmitte").len(), 12);
    // Exactly what `rollcall import --json` says for the same feed.
    let cli_data = super::data_dir(&tmp.path().join("cli"));
    let file = tmp.path().join("student.csv");
    std::fs::write(&file, &text).unwrap();
    let cli = rollcall(
        &cli_data,
        &[],
        &[
            "import",
            "--school",
            "gsmitte",
            "--role",
            "student",
            "--json",
            file.to_str().unwrap(),
        ],
    );
    assert!(cli.status.success());
    let cli: Value = serde_json::from_slice(&cli.stdout).unwrap();
    assert_eq!(without_run_id(done.clone()), without_run_id(cli));

    // The run, its input, the school's runs.
    let id = done["run_id"].as_str().unwrap();
    let (status, run) = json(get(&daemon, SIS, &format!("/v1/runs/{id}")));
    assert_eq!(status, 200);
    assert_eq!(run["origin"], "http");
    assert_eq!(run["status"], "ok");
    let input = get(&daemon, SIS, &format!("/v1/runs/{id}/input"));
    assert_eq!(input.status().as_u16(), 200);
    assert_eq!(input.text().unwrap(), text);
    let (status, runs) = json(get(&daemon, SIS, "/v1/schools/gsmitte/runs"));
    assert_eq!(status, 200);
    assert_eq!(runs.as_array().unwrap().len(), 2, "the dry run and the import");
    assert!(runs.as_array().unwrap().iter().all(|r| r["origin"] == "http"));

    // A run of another school is unknown to a token without it.
    let (status, other) = json(post(&daemon, ALL, "/v1/schools/gsost/feeds?role=teacher", feed("o", 2)));
    assert_eq!(status, 200, "{other:#}");
    let other_id = other["run_id"].as_str().unwrap();
    let (status, hidden) = json(get(&daemon, SIS, &format!("/v1/runs/{other_id}")));
    assert_eq!(status, 404);
    let (_, unknown) = json(get(&daemon, SIS, "/v1/runs/20000101-000000-000-import-0000"));
    assert_eq!(hidden["error"], unknown["error"]);

    // Row errors come back with their lines; the run is refused (422).
    let bad = format!("{}\nb1,Bea,Bauer,,,\"1a\",,\nb2,Ben,,,,\"1a\",,\n", super::HEADER);
    let (status, refused) = json(post(&daemon, SIS, "/v1/schools/gsmitte/feeds?role=teacher", bad));
    assert_eq!(status, 422, "{refused:#}");
    assert_eq!(refused["errors"][0]["line"], 3);
    assert!(refused["refused"].is_string());
    // A feed the reader stops on: {error, message} as the CLI says it.
    let (status, err) = json(post(
        &daemon,
        SIS,
        "/v1/schools/gsmitte/feeds?role=teacher",
        "record_uid,firstname\nx,y\n",
    ));
    assert_eq!(status, 400);
    assert_eq!(err["error"], "feed");
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .starts_with("gsmitte_teacher.csv: missing mandatory column 'lastname'"),
        "{err:#}"
    );
    let (status, err) = json(post(&daemon, SIS, "/v1/schools/gsmitte/feeds?role=pupil", "x"));
    assert_eq!((status, err["error"].as_str()), (400, Some("invalid")));
    daemon.stop();
    assert_eq!(
        std::fs::read_dir(data.join("uploads")).unwrap().count(),
        0,
        "uploads are removed once their run archived them"
    );
}

#[test]
fn wrong_tokens_get_401_other_schools_403_and_the_token_leaks_nowhere() {
    let tmp = tempfile::tempdir().unwrap();
    let data = super::data_dir(tmp.path());
    let daemon = Daemon::start(&data, &api_sets(tmp.path()));
    let (status, ok) = json(post(
        &daemon,
        SIS,
        "/v1/schools/gsmitte/feeds?role=student",
        feed("w", 3),
    ));
    assert_eq!(status, 200, "{ok:#}");

    // 401 without a hint whether the school exists.
    let wrong = format!("{SIS}x");
    let (s1, known) = json(post(
        &daemon,
        &wrong,
        "/v1/schools/gsmitte/feeds?role=student",
        feed("w", 1),
    ));
    let (s2, unknown) = json(post(
        &daemon,
        &wrong,
        "/v1/schools/nowhere/feeds?role=student",
        feed("w", 1),
    ));
    assert_eq!((s1, s2), (401, 401));
    assert_eq!(known, unknown);
    let none = client(None)
        .get(url(&daemon, "/v1/schools/gsmitte/runs"))
        .send()
        .unwrap();
    assert_eq!(none.status().as_u16(), 401);
    assert_eq!(none.headers()["www-authenticate"], "Bearer");

    // A token for gsmitte posting to gsost: 403, audited, nothing imported.
    let (status, forbidden) = json(post(&daemon, SIS, "/v1/schools/gsost/feeds?role=student", feed("x", 3)));
    assert_eq!(status, 403);
    assert_eq!(forbidden["error"], "forbidden");
    let (status, _) = json(get(&daemon, SIS, "/v1/schools/gsost/runs"));
    assert_eq!(status, 403);
    let audit = std::fs::read_to_string(data.join("logs/audit.log")).unwrap();
    let entry = audit
        .lines()
        .find(|l| l.contains("\"intake upload\"") && l.contains("gsost"))
        .expect("the refusal is audited");
    assert!(
        entry.contains("\"token\":\"sis\"") && entry.contains("refused"),
        "{entry}"
    );
    assert!(super::users_of(&data, "gsost").is_empty());
    daemon.stop();

    // Neither token's value is in any log, run record, archive or answer.
    for t in [SIS, ALL, wrong.as_str()] {
        assert_eq!(appears_under(&data, t), Vec::<PathBuf>::new(), "the token leaked");
        for v in [&ok, &known, &forbidden] {
            assert!(!v.to_string().contains(t));
        }
    }
}

#[test]
fn a_feed_above_max_feed_bytes_gets_413() {
    let tmp = tempfile::tempdir().unwrap();
    let data = super::data_dir(tmp.path());
    let mut sets = api_sets(tmp.path());
    sets.push("intake.http.max_feed_bytes=2000".into());
    let daemon = Daemon::start(&data, &sets);
    let big = feed("b", 100);
    assert!(big.len() > 2000);
    let (status, err) = json(post(
        &daemon,
        SIS,
        "/v1/schools/gsmitte/feeds?role=student",
        big.clone(),
    ));
    assert_eq!(status, 413, "{err:#}");
    assert_eq!(err["error"], "too_large");
    // Without a Content-Length (chunked): cut off while it streams.
    let (status, _) = json(post(
        &daemon,
        SIS,
        "/v1/schools/gsmitte/feeds?role=student",
        Body::new(std::io::Cursor::new(big.into_bytes())),
    ));
    assert_eq!(status, 413);
    let (status, runs) = json(get(&daemon, SIS, "/v1/schools/gsmitte/runs"));
    assert_eq!((status, runs.as_array().unwrap().len()), (200, 0));
    let (status, _) = json(post(
        &daemon,
        SIS,
        "/v1/schools/gsmitte/feeds?role=student",
        feed("s", 5),
    ));
    assert_eq!(status, 200, "a small one still goes in");
    daemon.stop();
}

#[test]
fn a_second_upload_while_the_school_imports_gets_409_with_the_running_run() {
    let tmp = tempfile::tempdir().unwrap();
    let data = super::data_dir(tmp.path());
    let daemon = Daemon::start(&data, &api_sets(tmp.path()));
    let addr = daemon.http.unwrap();
    let big = feed("r", 8000);
    let first = std::thread::spawn(move || {
        let r = client(None)
            .post(format!("http://{addr}/v1/schools/gsmitte/feeds?role=student"))
            .bearer_auth(SIS)
            .body(big)
            .send()
            .unwrap();
        json(r)
    });
    let active = data.join("runs/.active");
    let mut running = None;
    super::wait_for(60, "the first import to run", || {
        running = std::fs::read_dir(&active).ok().and_then(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().to_string())
                // Not the marker's temp file (`.<id>.<n>.tmp`), renamed
                // into place a moment later.
                .find(|n| n.contains("-import-") && !n.starts_with('.'))
        });
        running.is_some()
    });
    let (status, busy) = json(post(
        &daemon,
        SIS,
        "/v1/schools/gsmitte/feeds?role=teacher",
        feed("t", 2),
    ));
    let (first_status, first_out) = first.join().unwrap();
    assert_eq!(status, 409, "{busy:#}");
    assert_eq!(busy["error"], "busy");
    assert_eq!(busy["run_id"].as_str(), running.as_deref());
    assert_eq!(first_status, 200);
    assert_eq!(first_out["run_id"].as_str(), running.as_deref());
    // Another school is not held up.
    let (status, _) = json(post(&daemon, ALL, "/v1/schools/gsost/feeds?role=student", feed("o", 2)));
    assert_eq!(status, 200);
    daemon.stop();
}

/// A CA and a server certificate for 127.0.0.1 and localhost, made with
/// the openssl command.
fn test_ca(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let run = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    let mut ca = vec!["req", "-x509"];
    ca.extend(ec);
    ca.extend([
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=rollcall test CA",
    ]);
    run(&ca);
    let mut csr = vec!["req"];
    csr.extend(ec);
    csr.extend(["-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost"]);
    run(&csr);
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
    ]);
    std::fs::set_permissions(dir.join("server.key"), std::fs::Permissions::from_mode(0o600)).unwrap();
    (dir.join("ca.pem"), dir.join("server.pem"), dir.join("server.key"))
}

#[test]
fn tls_with_a_test_ca_and_plain_http_only_on_loopback() {
    let tmp = tempfile::tempdir().unwrap();
    let (ca, cert, key) = test_ca(tmp.path());
    let data = super::data_dir(tmp.path());
    let mut sets = api_sets(tmp.path());
    sets.push(format!("intake.http.cert={}", cert.display()));
    sets.push(format!("intake.http.key={}", key.display()));
    let daemon = Daemon::start(&data, &sets);
    let port = daemon.http.unwrap().port();
    let pem = std::fs::read(&ca).unwrap();
    let r = client(Some(&pem))
        .post(format!(
            "https://localhost:{port}/v1/schools/gsmitte/feeds?role=student"
        ))
        .bearer_auth(SIS)
        .body(feed("tls", 4))
        .send()
        .expect("https with the test CA");
    let (status, out) = json(r);
    assert_eq!(status, 200, "{out:#}");
    assert_eq!(out["created"], 4);
    // Not trusted without the CA; not served as plain HTTP.
    let untrusted = client(None)
        .get(format!("https://localhost:{port}/v1/schools/gsmitte/runs"))
        .bearer_auth(SIS)
        .send();
    assert!(untrusted.is_err(), "a certificate of an unknown CA was accepted");
    let plain = client(None)
        .get(format!("http://127.0.0.1:{port}/v1/schools/gsmitte/runs"))
        .bearer_auth(SIS)
        .send();
    assert!(plain.is_err() || plain.unwrap().status().as_u16() != 200);
    daemon.stop();

    // Plain HTTP on a non-loopback address is refused at start.
    let mut open = api_sets(tmp.path());
    open.retain(|s| !s.starts_with("intake.http.listen"));
    open.push("intake.http.listen=0.0.0.0:0".into());
    let said = Daemon::try_start(&super::data_dir(&tmp.path().join("d2")), &open)
        .err()
        .expect("refused");
    assert!(
        said.contains("intake.http.listen") && said.contains("allow_plain_http"),
        "{said}"
    );
    // A key or token file others may read is refused too.
    let mut loose = api_sets(tmp.path());
    secret(tmp.path(), "sis.token", SIS, 0o644);
    loose.push("intake.watch=false".into());
    let said = Daemon::try_start(&super::data_dir(&tmp.path().join("d3")), &loose)
        .err()
        .expect("refused");
    assert!(
        said.contains("intake.tokens.sis.token_file") && said.contains("chmod 600"),
        "{said}"
    );
    assert!(!said.contains(SIS));
}
