//! The upload API's listener: a socket bound before the daemon reports
//! ready (an address in use stops it), its own tokio runtime on one
//! thread, TLS through rustls when `intake.http.cert`/`key` are set, plain
//! HTTP only on loopback unless `allow_plain_http`. Slow clients are cut
//! off: the TLS handshake and the request headers must arrive within
//! `request_timeout_secs` (the body within the same, in the handler).

use super::http::{Api, router};
use crate::engine::config::IntakeHttpConfig;
use crate::engine::{EngineError, EngineResult};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio_rustls::TlsAcceptor;

/// Connections served at once; more wait in the kernel's backlog.
const MAX_CONNECTIONS: usize = 64;

/// The running listener.
pub struct Listener {
    pub addr: SocketAddr,
    shutdown: tokio::sync::watch::Sender<bool>,
    stop_imports: crate::engine::jobs::CancelToken,
    thread: std::thread::JoinHandle<()>,
}

fn invalid(key: &str, message: impl std::fmt::Display) -> EngineError {
    EngineError::BadInput(format!("{key}: {message}"))
}

impl Listener {
    pub fn start(cfg: &IntakeHttpConfig, api: Api) -> EngineResult<Listener> {
        let addr: SocketAddr = cfg
            .listen
            .parse()
            .map_err(|_| invalid("intake.http.listen", format!("'{}' is not ADDR:PORT", cfg.listen)))?;
        let tls = if cfg.cert.is_empty() {
            if !addr.ip().is_loopback() && !cfg.allow_plain_http {
                return Err(invalid(
                    "intake.http.listen",
                    format!(
                        "{addr} is not a loopback address: set intake.http.cert and intake.http.key for HTTPS, \
                         or intake.http.allow_plain_http = true behind a TLS proxy"
                    ),
                ));
            }
            None
        } else {
            Some(tls_acceptor(cfg)?)
        };
        let std_listener = std::net::TcpListener::bind(addr)
            .and_then(|l| l.set_nonblocking(true).map(|()| l))
            .map_err(|e| invalid("intake.http.listen", format!("cannot listen on {addr}: {e}")))?;
        let local = std_listener
            .local_addr()
            .map_err(|e| invalid("intake.http.listen", e))?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("intake-http")
            .enable_all()
            .build()
            .map_err(|e| invalid("intake.http", format!("cannot start the HTTP runtime: {e}")))?;
        let (shutdown, stopped) = tokio::sync::watch::channel(false);
        let stop_imports = api.stop.clone();
        let api = Arc::new(api);
        let thread = std::thread::Builder::new()
            .name("intake-http".into())
            .spawn(move || {
                runtime.block_on(async move {
                    match tokio::net::TcpListener::from_std(std_listener) {
                        Ok(listener) => serve(listener, tls, api, stopped).await,
                        Err(e) => tracing::error!(error = %e, "intake: the HTTP listener failed"),
                    }
                });
                runtime.shutdown_timeout(Duration::from_secs(5));
            })
            .map_err(|e| invalid("intake.http", format!("cannot start the HTTP thread: {e}")))?;
        tracing::info!(addr = %local, tls = !cfg.cert.is_empty(), "intake: upload API listening");
        Ok(Listener {
            addr: local,
            shutdown,
            stop_imports,
            thread,
        })
    }

    /// Stops accepting, lets requests in flight end (imports stop before
    /// they write), closes.
    pub fn stop(self) {
        self.stop_imports.cancel();
        let _ = self.shutdown.send(true);
        let _ = self.thread.join();
    }
}

async fn serve(
    listener: tokio::net::TcpListener,
    tls: Option<TlsAcceptor>,
    api: Arc<Api>,
    mut stopped: tokio::sync::watch::Receiver<bool>,
) {
    let timeout = api.request_timeout();
    let app = router(api);
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        let permit = tokio::select! {
            _ = stopped.changed() => return,
            p = slots.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => return },
        };
        let accepted = tokio::select! {
            _ = stopped.changed() => return,
            a = listener.accept() => a,
        };
        let stream = match accepted {
            Ok((stream, _peer)) => stream,
            Err(e) => {
                // Out of file descriptors and the like: do not spin.
                tracing::warn!(error = %e, "intake: accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let (app, tls) = (app.clone(), tls.clone());
        tokio::spawn(async move {
            let _permit = permit;
            let service = hyper_util::service::TowerToHyperService::new(app);
            let mut http = hyper::server::conn::http1::Builder::new();
            http.timer(TokioTimer::new()).header_read_timeout(timeout);
            let served = match tls {
                Some(acceptor) => match tokio::time::timeout(timeout, acceptor.accept(stream)).await {
                    Ok(Ok(s)) => http.serve_connection(TokioIo::new(s), service).await,
                    Ok(Err(e)) => {
                        tracing::debug!(error = %e, "intake: TLS handshake failed");
                        return;
                    }
                    Err(_) => return,
                },
                None => http.serve_connection(TokioIo::new(stream), service).await,
            };
            if let Err(e) = served {
                tracing::debug!(error = %e, "intake: connection ended with an error");
            }
        });
    }
}

/// The server's certificate and key (the key file only its owner may read).
fn tls_acceptor(cfg: &IntakeHttpConfig) -> EngineResult<TlsAcceptor> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cfg.cert)
        .and_then(|it| it.collect::<Result<_, _>>())
        .map_err(|e| invalid("intake.http.cert", format!("{}: {e}", cfg.cert)))?;
    if certs.is_empty() {
        return Err(invalid(
            "intake.http.cert",
            format!("{}: no certificate in it", cfg.cert),
        ));
    }
    let key_text = crate::engine::sync::target::read_secret(Path::new(&cfg.key), "intake.http.key")?;
    let key = PrivateKeyDer::from_pem_slice(key_text.as_bytes())
        .map_err(|e| invalid("intake.http.key", format!("{}: {e}", cfg.key)))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid("intake.http", e))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| invalid("intake.http.cert", format!("{} with {}: {e}", cfg.cert, cfg.key)))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}
