//! Connections to the LDAP server: the tokio runtime the store owns, a
//! small pool of multiplexed ldap3 connections (reconnected when the server
//! went away), TLS and bind, and errors that name the server, the operation,
//! the DN and the LDAP result code.
//!
//! The engine is synchronous: it calls the store from plain threads, and
//! every store method enters the runtime with [`Pool::block_on`]. Calling
//! it from inside an async context is refused with an error (tokio would
//! panic), so async callers must use `spawn_blocking`.

use super::settings::LdapConfig;
use crate::store::{StoreError, StoreResult};
use ldap3::adapters::{Adapter, EntriesOnly, PagedResults};
use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, LdapError, LdapResult, Scope, SearchEntry};
use rustls::RootCertStore;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The name of an LDAP result code (RFC 4511 appendix A), for messages.
pub fn code_name(rc: u32) -> &'static str {
    match rc {
        0 => "success",
        1 => "operationsError",
        2 => "protocolError",
        3 => "timeLimitExceeded",
        4 => "sizeLimitExceeded",
        8 => "strongerAuthRequired",
        11 => "adminLimitExceeded",
        12 => "unavailableCriticalExtension",
        13 => "confidentialityRequired",
        16 => "noSuchAttribute",
        17 => "undefinedAttributeType",
        18 => "inappropriateMatching",
        19 => "constraintViolation",
        20 => "attributeOrValueExists",
        21 => "invalidAttributeSyntax",
        32 => "noSuchObject",
        34 => "invalidDNSyntax",
        48 => "inappropriateAuthentication",
        49 => "invalidCredentials",
        50 => "insufficientAccessRights",
        51 => "busy",
        52 => "unavailable",
        53 => "unwillingToPerform",
        64 => "namingViolation",
        65 => "objectClassViolation",
        66 => "notAllowedOnNonLeaf",
        67 => "notAllowedOnRDN",
        68 => "entryAlreadyExists",
        69 => "objectClassModsProhibited",
        80 => "other",
        122 => "assertionFailed",
        _ => "unknown",
    }
}

pub const NO_SUCH_OBJECT: u32 = 32;
pub const ALREADY_EXISTS: u32 = 68;
pub const ASSERTION_FAILED: u32 = 122;
pub const NO_SUCH_ATTRIBUTE: u32 = 16;
pub const VALUE_EXISTS: u32 = 20;

/// An LDAP failure: the result code when the server answered, else why no
/// answer came.
#[derive(Debug)]
pub struct OpError {
    pub code: Option<u32>,
    pub message: String,
}

impl OpError {
    pub fn is(&self, code: u32) -> bool {
        self.code == Some(code)
    }
}

impl From<LdapError> for OpError {
    fn from(e: LdapError) -> Self {
        match e {
            LdapError::LdapResult { result } => OpError {
                code: Some(result.rc),
                message: result.text,
            },
            other => {
                let mut message = other.to_string();
                let mut src = std::error::Error::source(&other);
                while let Some(s) = src {
                    let s_text = s.to_string();
                    if !message.contains(&s_text) {
                        message.push_str(": ");
                        message.push_str(&s_text);
                    }
                    src = s.source();
                }
                OpError { code: None, message }
            }
        }
    }
}

/// `Ok` for success, the code and text otherwise.
pub fn checked(r: Result<LdapResult, LdapError>) -> Result<LdapResult, OpError> {
    let r = r.map_err(OpError::from)?;
    if r.rc == 0 {
        Ok(r)
    } else {
        Err(OpError {
            code: Some(r.rc),
            message: r.text,
        })
    }
}

enum Bind {
    Anonymous,
    Simple { dn: String, password: String },
    External,
}

pub struct Pool {
    pub server: String,
    url: String,
    tls: Option<Arc<rustls::ClientConfig>>,
    starttls: bool,
    bind: Bind,
    connect_timeout: Duration,
    pub timeout: Duration,
    slots: Mutex<Vec<Option<Ldap>>>,
    next: AtomicUsize,
    rt: tokio::runtime::Runtime,
}

fn setup_err(server: &str, message: String) -> StoreError {
    StoreError::Backend {
        server: server.to_string(),
        message,
    }
}

/// Reads a secret from a file that only its owner may read.
pub fn read_secret_file(server: &str, path: &Path) -> StoreResult<String> {
    let meta = std::fs::metadata(path)
        .map_err(|e| setup_err(server, format!("bind_password_file {}: {e}", path.display())))?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(setup_err(
            server,
            format!(
                "bind_password_file {} is readable by group or others (mode {mode:03o}); run `chmod 600 {}`",
                path.display(),
                path.display()
            ),
        ));
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| setup_err(server, format!("bind_password_file {}: {e}", path.display())))?;
    Ok(text.trim_end_matches(['\n', '\r']).to_string())
}

fn tls_config(server: &str, ca_bundle: &str) -> StoreResult<Option<Arc<rustls::ClientConfig>>> {
    if ca_bundle.is_empty() {
        return Ok(None);
    }
    let bad = |m: String| setup_err(server, format!("ca_bundle {ca_bundle}: {m}"));
    let mut roots = RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(ca_bundle).map_err(|e| bad(e.to_string()))?;
    for cert in certs {
        roots
            .add(cert.map_err(|e| bad(e.to_string()))?)
            .map_err(|e| bad(e.to_string()))?;
    }
    if roots.is_empty() {
        return Err(bad("holds no PEM certificate".into()));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| bad(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Some(Arc::new(config)))
}

/// What a pool needs to reach and bind to a server (the directory's
/// `[directory.ldap]` or a sync target's authority settings).
pub struct PoolSettings<'a> {
    pub url: &'a str,
    pub starttls: bool,
    pub ca_bundle: &'a str,
    pub bind_dn: &'a str,
    pub bind_password_file: &'a str,
    pub connect_timeout: Duration,
    pub timeout: Duration,
    pub connections: usize,
}

impl Pool {
    pub fn new(cfg: &LdapConfig) -> StoreResult<Self> {
        Self::open(&PoolSettings {
            url: &cfg.url,
            starttls: cfg.starttls,
            ca_bundle: &cfg.ca_bundle,
            bind_dn: &cfg.bind_dn,
            bind_password_file: &cfg.bind_password_file,
            connect_timeout: Duration::from_secs(cfg.connect_timeout_secs.max(1)),
            timeout: Duration::from_secs(cfg.timeout_secs.max(1)),
            connections: cfg.connections,
        })
    }

    pub fn open(cfg: &PoolSettings<'_>) -> StoreResult<Self> {
        let server = cfg.url.to_string();
        let bind = if !cfg.bind_dn.is_empty() {
            Bind::Simple {
                dn: cfg.bind_dn.to_string(),
                password: read_secret_file(&server, Path::new(cfg.bind_password_file))?,
            }
        } else if cfg.url.to_ascii_lowercase().starts_with("ldapi://") {
            Bind::External
        } else {
            Bind::Anonymous
        };
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("rollcall-ldap")
            .enable_all()
            .build()
            .map_err(|e| setup_err(&server, format!("cannot start the LDAP runtime: {e}")))?;
        Ok(Pool {
            tls: tls_config(&server, cfg.ca_bundle)?,
            url: cfg.url.to_string(),
            starttls: cfg.starttls,
            bind,
            connect_timeout: cfg.connect_timeout,
            timeout: cfg.timeout,
            slots: Mutex::new(vec![None; cfg.connections.max(1)]),
            next: AtomicUsize::new(0),
            rt,
            server,
        })
    }

    /// Runs a future on the store's runtime from a plain thread.
    pub fn block_on<F: std::future::Future<Output = StoreResult<T>>, T>(&self, f: F) -> StoreResult<T> {
        if tokio::runtime::Handle::try_current().is_ok() {
            return Err(setup_err(
                &self.server,
                "the LDAP store was called from inside an async runtime; call it from a plain thread \
                 (e.g. tokio::task::spawn_blocking)"
                    .into(),
            ));
        }
        self.rt.block_on(f)
    }

    /// An error of one operation on one DN.
    pub fn err(&self, op: &str, dn: &str, e: OpError) -> StoreError {
        StoreError::Ldap {
            server: self.server.clone(),
            op: op.to_string(),
            dn: dn.to_string(),
            code: e.code,
            message: e.message,
        }
    }

    async fn connect(&self) -> StoreResult<Ldap> {
        let mut settings = LdapConnSettings::new()
            .set_conn_timeout(self.connect_timeout)
            .set_starttls(self.starttls);
        if let Some(tls) = &self.tls {
            settings = settings.set_config(tls.clone());
        }
        let (conn, mut ldap) = LdapConnAsync::with_settings(settings, &self.url)
            .await
            .map_err(|e| self.err("connect", "", e.into()))?;
        ldap3::drive!(conn);
        let bound = match &self.bind {
            Bind::Anonymous => return Ok(ldap),
            Bind::Simple { dn, password } => (dn.as_str(), ldap.simple_bind(dn, password).await),
            Bind::External => ("(SASL EXTERNAL)", ldap.sasl_external_bind().await),
        };
        checked(bound.1).map_err(|e| self.err("bind as", bound.0, e))?;
        Ok(ldap)
    }

    /// A connection of its own — not shared, without an operation time
    /// limit — for a search that runs as long as the session (the change
    /// listener's).
    pub async fn dedicated(&self) -> StoreResult<Ldap> {
        self.connect().await
    }

    /// A connection, round robin; reconnects one the server closed.
    pub async fn conn(&self) -> StoreResult<Ldap> {
        let n = self.slots.lock().map(|s| s.len()).unwrap_or(1);
        let i = self.next.fetch_add(1, Ordering::Relaxed) % n;
        let cached = self.slots.lock().ok().and_then(|s| s[i].clone());
        if let Some(mut l) = cached
            && !l.is_closed()
        {
            let mut l = l.clone();
            l.with_timeout(self.timeout);
            return Ok(l);
        }
        let fresh = self.connect().await?;
        if let Ok(mut slots) = self.slots.lock() {
            slots[i] = Some(fresh.clone());
        }
        let mut l = fresh;
        l.with_timeout(self.timeout);
        Ok(l)
    }

    /// A paged search (RFC 2696); `visit` sees every entry. A missing base
    /// is an empty result.
    pub async fn search(
        &self,
        base: &str,
        scope: Scope,
        filter: &str,
        attrs: &[String],
        page_size: i32,
        visit: &mut (dyn FnMut(SearchEntry) + Send),
    ) -> StoreResult<()> {
        let mut ldap = self.conn().await?;
        let adapters: Vec<Box<dyn Adapter<String, Vec<String>>>> =
            vec![Box::new(EntriesOnly::new()), Box::new(PagedResults::new(page_size))];
        let attrs: Vec<String> = if attrs.is_empty() {
            vec!["1.1".into()]
        } else {
            attrs.to_vec()
        };
        let fail = |e: LdapError| self.err("search", &format!("{base} {filter}"), e.into());
        let mut stream = ldap
            .streaming_search_with(adapters, base, scope, filter, attrs)
            .await
            .map_err(fail)?;
        while let Some(entry) = stream.next().await.map_err(fail)? {
            visit(SearchEntry::construct(entry));
        }
        let res = stream.finish().await;
        match res.rc {
            0 => Ok(()),
            NO_SUCH_OBJECT => Ok(()),
            rc => Err(self.err(
                "search",
                &format!("{base} {filter}"),
                OpError {
                    code: Some(rc),
                    message: res.text,
                },
            )),
        }
    }
}
