//! Adds grouped in LDAP transactions (RFC 5805). A server that commits
//! every Add on its own pays a database commit per entry (slapd's back-mdb:
//! one write transaction, its dirty pages written, per entry); in a
//! transaction of a few hundred Adds it pays one, which halves what an
//! entry costs the server (measured: 0.47 → 0.23 ms of slapd CPU per entry).
//!
//! All or nothing: a transaction either commits every Add in it or none
//! (one entry that exists already aborts it). Callers therefore add what a
//! transaction did not write one by one, exactly as without transactions,
//! so a conflict is seen and handled entry by entry; an Add that commits in
//! a transaction succeeded for this writer only, as a lone Add does (the
//! username claims rely on that).
//!
//! NOT SAFE WITH OpenLDAP 2.5.13: under concurrent load slapd crashes
//! (SIGSEGV/abort in `txn_preop` → `send_ldap_result`: the End Transaction
//! frees the queued operations while the worker threads that queued them
//! are still finishing their responses). Kept in history only; reverted.
//!
//! Not used while a change listener follows the directory (slapd refuses
//! Post-Read in a transaction, and the listener needs this node's entryCSNs),
//! nor by a server that refuses transactions (then never asked again).

use super::LdapDirectory;
use super::conn::OpError;
use crate::store::{StoreError, StoreResult};
use futures_util::{StreamExt, TryStreamExt};
use ldap3::Ldap;
use ldap3::controls::{RawControl, TxnSpec};
use ldap3::exop::{EndTxn, StartTxn};
use std::collections::HashSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

/// Adds per transaction: large enough that the server's commit is shared
/// (100 → 0.23 ms, 500 → 0.20 ms of slapd CPU per entry), small enough
/// that several transactions keep the server busy and a failed one costs
/// little to redo one by one.
pub const TXN_SIZE: usize = 200;

/// An entry to add: its DN and attributes.
pub type NewEntry = (String, Vec<(String, HashSet<String>)>);

/// Whether transactions are worth trying, and idle connections for them (a
/// connection holds one transaction at a time, so they are not the pool's
/// shared ones).
pub struct Txns {
    usable: AtomicBool,
    idle: Mutex<Vec<Ldap>>,
}

impl Txns {
    pub fn new() -> Self {
        Txns {
            usable: AtomicBool::new(true),
            idle: Mutex::new(Vec::new()),
        }
    }
}

/// What a transaction did.
enum Outcome {
    /// Every Add in it is written.
    Committed,
    /// Nothing is written (an entry exists, or the server refused).
    Aborted,
}

fn result(r: Result<ldap3::result::ExopResult, ldap3::LdapError>) -> Result<(), OpError> {
    let r = r.map_err(OpError::from)?;
    match r.1.rc {
        0 => Ok(()),
        rc => Err(OpError {
            code: Some(rc),
            message: r.1.text,
        }),
    }
}

impl LdapDirectory {
    /// Adds these entries in transactions of [`TXN_SIZE`], several at once;
    /// returns which were written. The others (a transaction that aborted,
    /// or none tried) are for the caller to add one by one.
    pub(super) async fn add_in_txns(&self, entries: &[NewEntry]) -> StoreResult<Vec<bool>> {
        let mut written = vec![false; entries.len()];
        if entries.len() < 2 || !self.txns.usable.load(Ordering::Relaxed) || self.read_back(false).is_some() {
            return Ok(written);
        }
        let outcomes: Vec<(usize, usize, Outcome)> = futures_util::stream::iter(entries.chunks(TXN_SIZE).enumerate())
            .map(|(i, chunk)| async move {
                let outcome = self.add_txn(chunk).await?;
                Ok::<_, StoreError>((i * TXN_SIZE, chunk.len(), outcome))
            })
            .buffer_unordered(self.pool.connections())
            .try_collect()
            .await?;
        for (from, len, outcome) in outcomes {
            if matches!(outcome, Outcome::Committed) {
                written[from..from + len].fill(true);
            }
        }
        Ok(written)
    }

    /// A connection for one transaction.
    async fn txn_conn(&self) -> StoreResult<Ldap> {
        let idle = self.txns.idle.lock().ok().and_then(|mut v| v.pop());
        if let Some(mut l) = idle
            && !l.is_closed()
        {
            return Ok(l);
        }
        self.pool.dedicated().await
    }

    fn txn_conn_back(&self, ldap: Ldap) {
        if let Ok(mut v) = self.txns.idle.lock() {
            v.push(ldap);
        }
    }

    /// The server will not do transactions: say so once, stop asking.
    fn no_txns(&self, why: &OpError) {
        if self.txns.usable.swap(false, Ordering::Relaxed) {
            tracing::info!(
                server = %self.pool.server,
                code = ?why.code,
                message = %why.message,
                "the LDAP server refuses transactions (RFC 5805); adding entries one by one"
            );
        }
    }

    /// One transaction: every Add is sent (the server queues them), then
    /// the transaction ends — committed when all were queued, else aborted.
    async fn add_txn(&self, chunk: &[NewEntry]) -> StoreResult<Outcome> {
        let mut ldap = self.txn_conn().await?;
        let timeout = self.pool.timeout;
        let id = match ldap.with_timeout(timeout).extended(StartTxn).await {
            Ok(r) if r.1.rc == 0 => String::from_utf8(r.0.val.unwrap_or_default()),
            Ok(r) => {
                self.no_txns(&OpError {
                    code: Some(r.1.rc),
                    message: r.1.text,
                });
                self.txn_conn_back(ldap);
                return Ok(Outcome::Aborted);
            }
            Err(e) => return Err(self.pool.err("start transaction", "", e.into())),
        };
        let Ok(id) = id else {
            // Not an identifier ldap3 can send back; end it and stay away.
            self.no_txns(&OpError {
                code: None,
                message: "a transaction identifier that is not UTF-8".into(),
            });
            return Ok(Outcome::Aborted);
        };
        let spec: RawControl = TxnSpec { txn_id: &id }.into();
        let queued: Vec<Result<(), OpError>> = futures_util::stream::iter(chunk)
            .map(|(dn, attrs)| {
                let mut l = ldap.clone();
                let spec = spec.clone();
                async move {
                    let r = l.with_timeout(timeout).with_controls(spec).add(dn, attrs.clone()).await;
                    super::conn::checked(r).map(|_| ())
                }
            })
            .buffer_unordered(64)
            .collect()
            .await;
        if let Some(e) = queued
            .iter()
            .filter_map(|r| r.as_ref().err())
            .find(|e| e.code.is_none())
        {
            // No answer: the connection is gone, and the transaction with it.
            return Err(self.pool.err(
                "add in transaction",
                "",
                OpError {
                    code: None,
                    message: e.message.clone(),
                },
            ));
        }
        let refused = queued.into_iter().find_map(Result::err);
        let commit = refused.is_none();
        let end = result(
            ldap.with_timeout(timeout)
                .extended(EndTxn { txn_id: &id, commit })
                .await,
        );
        match (end, refused) {
            (Ok(()), None) => {
                self.txn_conn_back(ldap);
                Ok(Outcome::Committed)
            }
            // The server would not queue an Add in a transaction.
            (Ok(()), Some(why)) => {
                self.no_txns(&why);
                self.txn_conn_back(ldap);
                Ok(Outcome::Aborted)
            }
            // Aborted by the server (an entry exists, ...): nothing written.
            (Err(e), _) if e.code.is_some() => {
                tracing::debug!(code = ?e.code, message = %e.message, entries = chunk.len(), "LDAP transaction aborted; adding its entries one by one");
                self.txn_conn_back(ldap);
                Ok(Outcome::Aborted)
            }
            // No answer: whether it committed is unknown.
            (Err(e), _) => Err(self.pool.err("end transaction", "", e)),
        }
    }
}
