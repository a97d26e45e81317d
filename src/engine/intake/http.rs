//! The upload API (axum): a school's source posts its feed and gets the
//! import's JSON back, exactly as `rollcall import --json` prints it.
//!
//! * `POST /v1/schools/{school}/feeds?role=…&format=…&dry_run=…` — the feed
//!   is the body (at most `intake.http.max_feed_bytes`, else 413).
//!   200: imported (or planned, with `dry_run=true`); 422: refused (the
//!   import JSON, `refused` says why); 409: an import of the school is
//!   running (`run_id` names it).
//! * `GET /v1/runs/{id}`, `GET /v1/runs/{id}/input`, `GET
//!   /v1/schools/{school}/runs?limit=N`.
//!
//! Every request needs `Authorization: Bearer <token>`: no token or a wrong
//! one is 401, before anything else is looked at (nothing tells whether a
//! school exists); a token used for a school outside its scope is 403 and
//! audited; a run outside the token's schools is 404 like an unknown one.
//! Errors are `{"error": KIND, "message": …}` with the CLI's messages.

use super::tokens::{Token, Tokens};
use super::{Busy, EnginePool, StopWhen, resolve_role};
use crate::engine::audit::{Actor, AuditLog};
use crate::engine::feed::Format;
use crate::engine::import::ImportRequest;
use crate::engine::jobs::CancelToken;
use crate::engine::runs::{Origin, RunError, RunKind, Runs};
use crate::engine::{EngineError, EngineResult, Settings};
use crate::model::{Role, validate_school_name};
use axum::Router;
use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures_util::StreamExt;
use serde::Serialize;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;

/// Everything the handlers share.
pub struct Api {
    settings: Settings,
    tokens: Tokens,
    pool: Arc<EnginePool>,
    busy: Arc<Busy>,
    audit: AuditLog,
    runs: Runs,
    uploads: PathBuf,
    max_bytes: u64,
    timeout: Duration,
    pub(super) stop: CancelToken,
}

impl Api {
    /// Reads the tokens (refusing files others may read) and prepares the
    /// upload folder.
    pub fn new(settings: &Settings, pool: Arc<EnginePool>, busy: Arc<Busy>) -> EngineResult<Api> {
        let cfg = &settings.config.intake;
        let tokens = Tokens::load(cfg)?;
        if tokens.is_empty() {
            tracing::warn!(
                "intake.http.listen is set but no [intake.tokens.NAME] is configured: every request gets 401"
            );
        }
        let uploads = settings.paths.root().join("uploads");
        crate::engine::paths::create_private_dir(&uploads).map_err(super::io_err(&uploads))?;
        Ok(Api {
            settings: settings.clone(),
            tokens,
            pool,
            busy,
            audit: AuditLog::new(settings.paths.audit_log(), Actor::current()),
            runs: Runs::new(settings.paths.runs()),
            uploads,
            max_bytes: cfg.http.max_feed_bytes,
            timeout: Duration::from_secs(cfg.http.request_timeout_secs),
            stop: CancelToken::default(),
        })
    }

    pub fn request_timeout(&self) -> Duration {
        self.timeout
    }
}

/// The routes.
pub fn router(api: Arc<Api>) -> Router {
    Router::new()
        .route("/v1/schools/{school}/feeds", post(post_feed))
        .route("/v1/schools/{school}/runs", get(school_runs))
        .route("/v1/runs/{id}", get(show_run))
        .route("/v1/runs/{id}/input", get(run_input))
        .fallback(fallback)
        .with_state(api)
}

/// An error answer: `{error, message}` (and `run_id` for 409).
#[derive(Debug)]
pub struct Failure {
    status: StatusCode,
    kind: &'static str,
    message: String,
    run_id: Option<String>,
}

fn failure(status: StatusCode, kind: &'static str, message: impl Into<String>) -> Failure {
    Failure {
        status,
        kind,
        message: message.into(),
        run_id: None,
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let mut body = serde_json::json!({"error": self.kind, "message": self.message});
        if let Some(id) = self.run_id {
            body["run_id"] = serde_json::Value::String(id);
        }
        let mut resp = json_response(self.status, &body);
        if self.status == StatusCode::UNAUTHORIZED {
            resp.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        resp
    }
}

fn json_response<T: Serialize + ?Sized>(status: StatusCode, value: &T) -> Response {
    // As `--json` prints it: pretty, one trailing newline.
    let mut text = serde_json::to_vec_pretty(value).unwrap_or_else(|_| b"{}".to_vec());
    text.push(b'\n');
    (status, [(header::CONTENT_TYPE, "application/json")], text).into_response()
}

/// The status an engine error answers with.
fn engine_failure(e: &EngineError) -> Failure {
    let (status, kind) = match e {
        EngineError::Feed(_) => (StatusCode::BAD_REQUEST, "feed"),
        EngineError::Usage(_) | EngineError::BadInput(_) | EngineError::Config(_) => {
            (StatusCode::BAD_REQUEST, "invalid")
        }
        EngineError::WrongState(_) => (StatusCode::CONFLICT, "wrong_state"),
        EngineError::NotFound(_) | EngineError::Run(RunError::NotFound(_) | RunError::NoInput(_)) => {
            (StatusCode::NOT_FOUND, "not_found")
        }
        EngineError::ReadOnly { .. } => (StatusCode::FORBIDDEN, "read_only"),
        EngineError::Refused(_) => (StatusCode::UNPROCESSABLE_ENTITY, "refused"),
        EngineError::Cancelled(_) => (StatusCode::SERVICE_UNAVAILABLE, "stopping"),
        _ => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
    };
    failure(status, kind, e.to_string())
}

/// The token of the request, or 401.
fn authenticate<'a>(api: &'a Api, headers: &HeaderMap) -> Result<&'a Token, Failure> {
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "))
        .map(|t| t.trim_ascii());
    presented.and_then(|t| api.tokens.check(t)).ok_or_else(|| {
        failure(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "a valid bearer token is needed (Authorization: Bearer TOKEN)",
        )
    })
}

/// 403 (audited) unless `token` may act for `school`.
fn authorize(api: &Api, token: &Token, school: &str, action: &str) -> Result<(), Failure> {
    if token.allows(school) {
        return Ok(());
    }
    api.audit.record(
        action,
        serde_json::json!({"token": token.name, "school": school, "via": "http"}),
        "refused: the token is not allowed this school",
    );
    tracing::warn!(token = %token.name, school = %school, "intake: a token used for a school outside its scope");
    Err(failure(
        StatusCode::FORBIDDEN,
        "forbidden",
        format!("token '{}' may not act for school '{school}'", token.name),
    ))
}

fn bad_query(e: QueryRejection) -> Failure {
    failure(
        StatusCode::BAD_REQUEST,
        "invalid",
        format!("the query string: {}", e.body_text()),
    )
}

/// The query of a feed upload.
struct FeedQuery {
    roles: Vec<Role>,
    format: Option<Format>,
    dry_run: bool,
}

fn feed_query(api: &Api, pairs: &[(String, String)]) -> Result<FeedQuery, Failure> {
    let bad = |m: String| failure(StatusCode::BAD_REQUEST, "invalid", m);
    let mut q = FeedQuery {
        roles: Vec::new(),
        format: None,
        dry_run: false,
    };
    for (k, v) in pairs {
        match k.as_str() {
            "role" => {
                for r in v.split(',').filter(|r| !r.is_empty()) {
                    q.roles.push(resolve_role(&api.settings.config.import, r).ok_or_else(|| {
                        bad(format!(
                            "role '{r}' is not a role; use student, teacher, staff or school_admin (or an import.roles value)"
                        ))
                    })?);
                }
            }
            "format" => {
                q.format = Some(
                    Format::parse(v)
                        .ok_or_else(|| bad(format!("'{v}' is not a feed format; use csv, tsv, json, jsonl or xml")))?,
                )
            }
            "dry_run" => {
                q.dry_run = match v.as_str() {
                    "true" | "1" | "yes" | "" => true,
                    "false" | "0" | "no" => false,
                    _ => return Err(bad(format!("dry_run='{v}': use true or false"))),
                }
            }
            other => {
                return Err(bad(format!(
                    "unknown parameter '{other}'; use role, format and dry_run"
                )));
            }
        }
    }
    Ok(q)
}

/// Frees the school when the upload ends, however it ends.
struct Held<'a> {
    busy: &'a Busy,
    school: String,
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.busy.release(&self.school);
    }
}

/// Removes an upload's folder when the request ends.
struct Upload(PathBuf);

impl Drop for Upload {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

async fn post_feed(
    State(api): State<Arc<Api>>,
    Path(school): Path<String>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, Failure> {
    let token = authenticate(&api, &headers)?;
    authorize(&api, token, &school, "intake upload")?;
    let Query(pairs) = query.map_err(bad_query)?;
    validate_school_name(&school).map_err(|e| failure(StatusCode::BAD_REQUEST, "invalid", e.to_string()))?;
    let q = feed_query(&api, &pairs)?;
    let too_large = || {
        failure(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!(
                "the feed is larger than intake.http.max_feed_bytes ({} bytes)",
                api.max_bytes
            ),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > api.max_bytes) {
        return Err(too_large());
    }
    // The body goes to a file named like a drop-folder feed, so messages
    // read as the CLI's for the same file.
    let ext = q.format.unwrap_or(Format::Csv).as_str();
    let role = q.roles.first().map(|r| r.as_str()).unwrap_or("feed");
    let dir = api.uploads.join(format!("{:016x}", rand::random::<u64>()));
    let upload = Upload(dir.clone());
    tokio::fs::create_dir(&dir)
        .await
        .map_err(|e| engine_failure(&super::io_err(&dir)(e)))?;
    let file = dir.join(format!("{school}_{role}.{ext}"));
    let bytes = tokio::time::timeout(api.timeout, receive(body, &file, api.max_bytes))
        .await
        .map_err(|_| {
            failure(
                StatusCode::REQUEST_TIMEOUT,
                "timeout",
                format!(
                    "the feed did not arrive within intake.http.request_timeout_secs ({} s)",
                    api.timeout.as_secs()
                ),
            )
        })?
        .map_err(|e| match e {
            Received::TooLarge => too_large(),
            Received::Io(e) => failure(StatusCode::BAD_REQUEST, "upload", format!("the upload broke off: {e}")),
        })?;
    let held = hold(&api, &school).await?;
    // Messages name the feed as the client sent it, not where it was kept.
    let (kept, name) = (
        file.display().to_string(),
        file.file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default(),
    );
    let req = ImportRequest {
        school: school.clone(),
        roles: q.roles.clone(),
        dry_run: q.dry_run,
        file,
        format: q.format,
        ..Default::default()
    };
    let worker = api.clone();
    let result = tokio::task::spawn_blocking(move || {
        worker.pool.with(Origin::Http, |engine| {
            // A user it planned changed meanwhile (an import of another
            // school): plan again.
            let mut tries = 0;
            loop {
                tries += 1;
                match engine.import(&req, &mut StopWhen(worker.stop.clone())) {
                    Err(EngineError::Store(crate::store::StoreError::Conflict { .. })) if tries < 3 => {}
                    other => return other,
                }
            }
        })?
    })
    .await
    .map_err(|e| {
        failure(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("the import worker failed: {e}"),
        )
    })?;
    drop(held);
    drop(upload);
    let details = serde_json::json!({
        "token": token.name, "school": school, "roles": q.roles, "dry_run": q.dry_run, "bytes": bytes,
    });
    match result {
        Ok(outcome) => {
            let status = if outcome.refused.is_some() {
                StatusCode::UNPROCESSABLE_ENTITY
            } else {
                StatusCode::OK
            };
            api.audit
                .record("intake upload", details, &format!("run {}", outcome.run_id));
            Ok(json_response(status, &outcome))
        }
        Err(e) => {
            api.audit.record("intake upload", details, &format!("failed: {e}"));
            let mut f = engine_failure(&e);
            f.message = f.message.replace(&kept, &name);
            Err(f)
        }
    }
}

enum Received {
    TooLarge,
    Io(std::io::Error),
}

/// Streams the body into `file`, at most `max` bytes.
async fn receive(body: Body, file: &std::path::Path, max: u64) -> Result<u64, Received> {
    let out = tokio::fs::File::create(file).await.map_err(Received::Io)?;
    let mut out = tokio::io::BufWriter::with_capacity(1 << 20, out);
    let mut stream = body.into_data_stream();
    let mut total = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| Received::Io(std::io::Error::other(e)))?;
        total += chunk.len() as u64;
        if total > max {
            return Err(Received::TooLarge);
        }
        out.write_all(&chunk).await.map_err(Received::Io)?;
    }
    out.flush().await.map_err(Received::Io)?;
    Ok(total)
}

/// Marks the school busy, or 409 naming the import that runs (in this
/// process or another: the run markers tell).
async fn hold<'a>(api: &'a Api, school: &str) -> Result<Held<'a>, Failure> {
    let running = |api: &Api| -> Option<String> {
        api.runs
            .active()
            .ok()?
            .into_iter()
            .find(|r| r.kind == RunKind::Import && r.school.as_deref().is_some_and(|s| s.eq_ignore_ascii_case(school)))
            .map(|r| r.id)
    };
    let busy = |run_id: Option<String>| Failure {
        status: StatusCode::CONFLICT,
        kind: "busy",
        message: format!(
            "an import of school '{school}' is running{}; try again when it is done",
            run_id.as_deref().map(|id| format!(" (run {id})")).unwrap_or_default()
        ),
        run_id,
    };
    if !api.busy.try_take(school) {
        // Ours: its run record appears as soon as it starts.
        let until = Instant::now() + Duration::from_secs(2);
        loop {
            if let Some(id) = running(api) {
                return Err(busy(Some(id)));
            }
            if Instant::now() >= until || !api.busy.is_busy(school) {
                return Err(busy(None));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let held = Held {
        busy: &api.busy,
        school: school.to_string(),
    };
    if let Some(id) = running(api) {
        return Err(busy(Some(id)));
    }
    Ok(held)
}

async fn show_run(
    State(api): State<Arc<Api>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, Failure> {
    let token = authenticate(&api, &headers)?;
    let record = visible_run(&api, token, &id)?;
    Ok(json_response(StatusCode::OK, &record))
}

/// The run, when the token may see it (its school is in scope; runs of no
/// school only for `*`); else 404 as for an unknown run.
fn visible_run(api: &Api, token: &Token, id: &str) -> Result<crate::engine::runs::RunRecord, Failure> {
    let not_found = || engine_failure(&EngineError::Run(RunError::NotFound(id.to_string())));
    let record = api.runs.show(id).map_err(|e| match e {
        RunError::NotFound(_) => not_found(),
        e => engine_failure(&EngineError::Run(e)),
    })?;
    let visible = match &record.school {
        Some(s) => token.allows(s),
        None => token.all_schools(),
    };
    if visible { Ok(record) } else { Err(not_found()) }
}

async fn run_input(
    State(api): State<Arc<Api>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, Failure> {
    let token = authenticate(&api, &headers)?;
    let record = visible_run(&api, token, &id)?;
    if record.input.is_none() {
        return Err(engine_failure(&EngineError::Run(RunError::NoInput(id))));
    }
    // Read on a blocking thread, handed over in chunks: the archive may
    // be as large as the largest feed.
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Vec<u8>>>(4);
    let runs = api.runs.clone();
    tokio::task::spawn_blocking(move || {
        let mut input = match runs.input(&id) {
            Ok(i) => i,
            Err(e) => {
                let _ = tx.blocking_send(Err(std::io::Error::other(e.to_string())));
                return;
            }
        };
        loop {
            let mut buf = vec![0u8; 256 * 1024];
            match std::io::Read::read(&mut input, &mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    buf.truncate(n);
                    if tx.blocking_send(Ok(buf)).is_err() {
                        break;
                    }
                }
                Err(e) => {
                    let _ = tx.blocking_send(Err(e));
                    break;
                }
            }
        }
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|c| (c, rx)) });
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/octet-stream")],
        Body::from_stream(stream),
    )
        .into_response())
}

async fn school_runs(
    State(api): State<Arc<Api>>,
    Path(school): Path<String>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, Failure> {
    let token = authenticate(&api, &headers)?;
    authorize(&api, token, &school, "intake runs")?;
    let Query(pairs) = query.map_err(bad_query)?;
    let mut limit = 50usize;
    for (k, v) in &pairs {
        match (k.as_str(), v.parse::<usize>()) {
            ("limit", Ok(n)) if (1..=1000).contains(&n) => limit = n,
            _ => {
                return Err(failure(
                    StatusCode::BAD_REQUEST,
                    "invalid",
                    format!("'{k}={v}': the only parameter is limit, 1 to 1000"),
                ));
            }
        }
    }
    let runs = api.runs.clone();
    let school_lc = school.to_lowercase();
    let list = tokio::task::spawn_blocking(move || {
        runs.list(
            &|r| r.kind == RunKind::Import && r.school.as_deref().is_some_and(|s| s.to_lowercase() == school_lc),
            limit,
        )
    })
    .await
    .map_err(|e| failure(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))?
    .map_err(|e| engine_failure(&EngineError::Run(e)))?;
    Ok(json_response(StatusCode::OK, &list))
}

async fn fallback(State(api): State<Arc<Api>>, headers: HeaderMap) -> Result<Response, Failure> {
    authenticate(&api, &headers)?;
    Err(failure(
        StatusCode::NOT_FOUND,
        "not_found",
        "no such endpoint; see POST /v1/schools/{school}/feeds, GET /v1/runs/{id}, GET /v1/runs/{id}/input, GET /v1/schools/{school}/runs",
    ))
}
