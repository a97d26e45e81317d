//! The daemon's HTTP listener (`rollcall daemon --listen ADDR`): one axum
//! router on a tokio runtime beside the daemon's sync thread. Routes:
//!
//! * `GET /metrics` — the Prometheus text format, as gathered by the
//!   daemon after its last cycle (at most [`Health::metrics_every`] old);
//! * `GET /healthz` — `200 ok` while the daemon shows signs of life (a
//!   heartbeat younger than [`Health::stall_after`]), else `503`.
//!
//! More routes (e.g. an upload API) are added in [`router`]; handlers get
//! the shared [`Shared`] state. The server never opens a store: what it
//! serves is published by the daemon's thread.

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// What the daemon publishes for the listener.
#[derive(Debug)]
pub struct Health {
    /// The metrics text of the last gathering.
    metrics: RwLock<String>,
    /// Unix time in milliseconds of the daemon's last sign of life.
    heartbeat_ms: AtomicI64,
    /// A heartbeat older than this makes `/healthz` answer 503.
    pub stall_after: Duration,
    /// How often the daemon gathers metrics.
    pub metrics_every: Duration,
}

pub type Shared = Arc<Health>;

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl Health {
    pub fn new(stall_after: Duration, metrics_every: Duration) -> Shared {
        Arc::new(Health {
            metrics: RwLock::new(String::new()),
            heartbeat_ms: AtomicI64::new(now_ms()),
            stall_after,
            metrics_every,
        })
    }

    /// A sign of life of the daemon.
    pub fn beat(&self) {
        self.heartbeat_ms.store(now_ms(), Ordering::SeqCst);
    }

    pub fn set_metrics(&self, text: String) {
        if let Ok(mut m) = self.metrics.write() {
            *m = text;
        }
    }

    /// Milliseconds since the last heartbeat.
    pub fn silence(&self) -> Duration {
        Duration::from_millis((now_ms() - self.heartbeat_ms.load(Ordering::SeqCst)).max(0) as u64)
    }
}

/// Every route of the listener.
pub fn router(shared: Shared) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .with_state(shared)
}

async fn metrics(State(h): State<Shared>) -> impl IntoResponse {
    let text = h.metrics.read().map(|m| m.clone()).unwrap_or_default();
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        text,
    )
}

async fn healthz(State(h): State<Shared>) -> impl IntoResponse {
    let silence = h.silence();
    if silence <= h.stall_after {
        (StatusCode::OK, "ok\n".to_string())
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("stalled: no sign of life from the daemon for {} s\n", silence.as_secs()),
        )
    }
}

/// A listener running on its own runtime; dropping it stops it.
pub struct Listener {
    pub addr: SocketAddr,
    runtime: tokio::runtime::Runtime,
}

impl Listener {
    /// Binds `addr` (errors name it) and serves [`router`] in the background.
    pub fn start(addr: SocketAddr, shared: Shared) -> std::io::Result<Listener> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("rollcall-http")
            .enable_all()
            .build()?;
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind(addr))
            .map_err(|e| std::io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))?;
        let addr = listener.local_addr()?;
        let app = router(shared);
        runtime.spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(error = %e, "the HTTP listener stopped");
            }
        });
        tracing::info!(%addr, "listening for /metrics and /healthz");
        Ok(Listener { addr, runtime })
    }

    /// Stops serving (open connections are dropped).
    pub fn stop(self) {
        self.runtime.shutdown_timeout(Duration::from_millis(500));
    }
}
