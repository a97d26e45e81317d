//! `[intake]`: the drop folder the daemon watches and the upload API it
//! serves, with the bearer tokens that may post feeds and their schools.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::SocketAddr;

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntakeConfig {
    /// Whether the daemon watches the drop folder.
    pub watch: bool,
    /// The drop folder; empty: `<data-dir>/inbox`.
    pub inbox: String,
    /// Where a feed sits in the drop folder: `{school}`, `{role}` and
    /// `{ext}` placeholders, `/` between folders.
    pub pattern: String,
    /// A file is taken when it was renamed into place, or when it has not
    /// changed for this many seconds.
    pub settle_secs: f64,
    /// How often the folder is scanned besides its change events.
    pub scan_secs: f64,
    /// Threads that import the inbox; they take turns, one batch at a time.
    pub workers: usize,
    pub http: IntakeHttpConfig,
    /// Bearer tokens of the upload API by name.
    #[serde(default)]
    pub tokens: BTreeMap<String, IntakeToken>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntakeHttpConfig {
    /// `ADDR:PORT` to serve the upload API on; empty: not served.
    pub listen: String,
    /// PEM certificate chain and private key: TLS when both are set.
    pub cert: String,
    pub key: String,
    /// Serve plain HTTP on an address other than loopback.
    pub allow_plain_http: bool,
    /// Largest feed accepted (bytes); larger ones get 413.
    pub max_feed_bytes: u64,
    /// Seconds a client may take to send its request (headers and body).
    pub request_timeout_secs: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntakeToken {
    /// File holding the token (mode 0600 or stricter).
    pub token_file: String,
    /// The schools this token may post feeds for and read runs of; `"*"`
    /// is every school.
    pub schools: Vec<String>,
}

impl IntakeConfig {
    /// Checks what types alone cannot; the error names the key.
    pub fn check(&self) -> Result<(), (String, String)> {
        let fail = |key: &str, message: &str| Err((format!("intake.{key}"), message.to_string()));
        for (key, v) in [("settle_secs", self.settle_secs), ("scan_secs", self.scan_secs)] {
            if !(v.is_finite() && v > 0.0 && v <= 86_400.0) {
                return fail(key, "must be > 0 and at most 86400 seconds");
            }
        }
        if !(1..=64).contains(&self.workers) {
            return fail("workers", "must be between 1 and 64");
        }
        if let Err(e) = crate::engine::intake::pattern::Pattern::parse(&self.pattern) {
            return fail("pattern", &e);
        }
        let http = &self.http;
        if !http.listen.is_empty() && http.listen.parse::<SocketAddr>().is_err() {
            return fail(
                "http.listen",
                &format!("'{}' is not ADDR:PORT (e.g. 127.0.0.1:8443)", http.listen),
            );
        }
        if http.cert.is_empty() != http.key.is_empty() {
            return fail("http.cert", "set both cert and key for TLS, or neither");
        }
        if http.max_feed_bytes == 0 {
            return fail("http.max_feed_bytes", "must be at least 1");
        }
        if http.request_timeout_secs == 0 {
            return fail("http.request_timeout_secs", "must be at least 1");
        }
        for (name, token) in &self.tokens {
            if token.token_file.is_empty() {
                return fail(&format!("tokens.{name}.token_file"), "must name the token's file");
            }
            if token.schools.is_empty() {
                return fail(
                    &format!("tokens.{name}.schools"),
                    "must list the token's schools (or \"*\" for all)",
                );
            }
            for school in &token.schools {
                if school != "*" && crate::model::validate_school_name(school).is_err() {
                    return fail(
                        &format!("tokens.{name}.schools"),
                        &format!("'{school}' is not a school name (or \"*\")"),
                    );
                }
            }
        }
        Ok(())
    }
}
