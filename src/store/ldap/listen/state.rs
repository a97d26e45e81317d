//! The listener's side of `ldap-journal.sqlite`: what it last saw of each
//! entry (`listen_entries`: object, schools, digest), its place in the
//! change stream (`listen_state`: the cookie), rollcall's own writes
//! (`own_changes`, recorded by this data dir's writers), and its status for
//! other processes (`listen_status`).
//!
//! A batch of changes is decided and written in one transaction: its
//! journal entries, the entries' new state and the cookie that covers them
//! commit together, so a crash anywhere re-delivers the batch and deciding
//! it again journals the same. A change of an object whose write by this
//! data dir is still in flight (a pending intent) waits: the writer records
//! its entryCSN when it completes, and the change is then recognised as its
//! own instead of being journalled twice.

use super::super::journal::SCHEMA;
use super::super::mapping::{Attrs, time_str};
use super::classify::Classifier;
use super::proto::Uuid;
use crate::model::ObjectRef;
use crate::store::{StoreError, StoreResult};
use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How long a change waits for this data dir's write of the same object
/// to complete before it is journalled anyway.
pub const DEFER_LIMIT: Duration = Duration::from_secs(10);
/// Own writes nobody consumed (no listener ran) are forgotten after this.
const OWN_RETENTION_DAYS: i64 = 7;

/// One change of the stream, as the listener decides it.
#[derive(Clone, Debug)]
pub enum Change {
    /// An entry added or modified (its state now), with its entryCSN.
    Entry {
        uuid: Uuid,
        dn: String,
        attrs: Attrs,
        csn: Option<String>,
    },
    /// An entry unchanged since the cookie (the present phase).
    Present {
        uuid: Uuid,
    },
    Delete {
        uuid: Uuid,
    },
}

/// What one batch did.
#[derive(Debug, Default)]
pub struct Applied {
    pub journaled: u64,
    /// Changes that wait for a write of this data dir (with since when).
    pub deferred: Vec<(Change, Instant)>,
    /// The commit time of the newest change decided (from its entryCSN).
    pub newest: Option<DateTime<Utc>>,
    pub cookie_saved: bool,
}

/// How the changes of a session are decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// The first sync of this data dir: record what is there, journal
    /// nothing (it was rollcall's own doing, or predates the listener).
    Baseline,
    /// Journal what differs from what was last seen.
    Compare,
}

/// The commit time in an entryCSN (`YYYYmmddHHMMSS.ffffffZ#…`).
pub fn csn_time(csn: &str) -> Option<DateTime<Utc>> {
    let stamp = csn.split('#').next()?.trim_end_matches('Z');
    chrono::NaiveDateTime::parse_from_str(stamp, "%Y%m%d%H%M%S%.f")
        .ok()
        .map(|t| t.and_utc())
}

pub struct State {
    conn: Connection,
    path: PathBuf,
}

/// What the listener last saw of an entry.
struct Seen {
    object: ObjectRef,
    schools: BTreeSet<String>,
    digest: i64,
}

impl State {
    pub fn open(path: &Path) -> StoreResult<Self> {
        let conn = Connection::open(path).map_err(|e| crate::store::sqlite::sqlite_err(path, e))?;
        let s = State {
            conn,
            path: path.to_path_buf(),
        };
        s.conn.busy_timeout(Duration::from_secs(30)).map_err(|e| s.err(e))?;
        s.conn
            .pragma_update(None, "journal_mode", "WAL")
            .map_err(|e| s.err(e))?;
        s.conn.execute_batch(SCHEMA).map_err(|e| s.err(e))?;
        s.conn
            .execute("INSERT OR IGNORE INTO listen_state (id, gen) VALUES (1, 0)", [])
            .map_err(|e| s.err(e))?;
        Ok(s)
    }

    fn err(&self, e: rusqlite::Error) -> StoreError {
        crate::store::sqlite::sqlite_err(&self.path, e)
    }

    pub fn cookie(&self) -> StoreResult<Option<Vec<u8>>> {
        self.conn
            .query_row("SELECT cookie FROM listen_state WHERE id = 1", [], |r| r.get(0))
            .optional()
            .map(Option::flatten)
            .map_err(|e| self.err(e))
    }

    /// Drops the cookie (the server refused it): the next session refreshes fully.
    pub fn forget_cookie(&mut self) -> StoreResult<()> {
        self.conn
            .execute("UPDATE listen_state SET cookie = NULL WHERE id = 1", [])
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    pub fn mirror_is_empty(&self) -> StoreResult<bool> {
        self.conn
            .query_row("SELECT NOT EXISTS (SELECT 1 FROM listen_entries)", [], |r| r.get(0))
            .map_err(|e| self.err(e))
    }

    /// A new session's generation (entries seen in it are marked with it);
    /// old own writes are forgotten.
    pub fn start_session(&mut self) -> StoreResult<i64> {
        let cutoff = time_str(Utc::now() - chrono::TimeDelta::days(OWN_RETENTION_DAYS));
        self.conn
            .execute("DELETE FROM own_changes WHERE at < ?1", [cutoff])
            .map_err(|e| self.err(e))?;
        self.conn
            .query_row(
                "UPDATE listen_state SET gen = gen + 1 WHERE id = 1 RETURNING gen",
                [],
                |r| r.get(0),
            )
            .map_err(|e| self.err(e))
    }

    /// Decides a batch of changes and writes the outcome, with `cookie`
    /// when nothing of it waits; with `sweep`, entries not seen in session
    /// `generation` are gone (the end of a present phase or of a full refresh).
    pub fn apply(
        &mut self,
        cls: &Classifier,
        mode: Mode,
        generation: i64,
        changes: Vec<(Change, Instant)>,
        sweep: bool,
        cookie: Option<&[u8]>,
    ) -> StoreResult<Applied> {
        let path = self.path.clone();
        let e = |err| crate::store::sqlite::sqlite_err(&path, err);
        let corrupt = |message: String| StoreError::Corrupt {
            path: path.display().to_string(),
            message,
        };
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(e)?;
        let mut out = Applied::default();
        let mut journal: BTreeMap<ObjectRef, BTreeSet<String>> = BTreeMap::new();
        let compare = mode == Mode::Compare;
        {
            let mut seen_stmt = tx
                .prepare_cached("SELECT object, schools, digest FROM listen_entries WHERE uuid = ?1")
                .map_err(e)?;
            let mut seen = |uuid: &str| -> StoreResult<Option<Seen>> {
                let row = seen_stmt
                    .query_row([uuid], |r| {
                        Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, i64>(2)?))
                    })
                    .optional()
                    .map_err(e)?;
                row.map(|(object, schools, digest)| {
                    Ok(Seen {
                        object: object
                            .parse()
                            .map_err(|m| corrupt(format!("listen entry {uuid}: {m}")))?,
                        schools: serde_json::from_str(&schools)
                            .map_err(|m| corrupt(format!("listen entry {uuid}: schools: {m}")))?,
                        digest,
                    })
                })
                .transpose()
            };
            let mut mark = tx
                .prepare_cached("UPDATE listen_entries SET gen = ?2 WHERE uuid = ?1")
                .map_err(e)?;
            let mut put = tx
                .prepare_cached(
                    "INSERT OR REPLACE INTO listen_entries (uuid, object, schools, digest, gen) VALUES (?1, ?2, ?3, ?4, ?5)",
                )
                .map_err(e)?;
            let mut forget = tx
                .prepare_cached("DELETE FROM listen_entries WHERE uuid = ?1")
                .map_err(e)?;
            let mut own = tx
                .prepare_cached("SELECT EXISTS (SELECT 1 FROM own_changes WHERE uuid = ?1 AND csn = ?2)")
                .map_err(e)?;
            let mut consume = tx
                .prepare_cached("DELETE FROM own_changes WHERE uuid = ?1 AND csn <= ?2")
                .map_err(e)?;
            let mut in_flight = tx
                .prepare_cached("SELECT EXISTS (SELECT 1 FROM intents WHERE object = ?1 AND journal = 1)")
                .map_err(e)?;
            let mut waits = |objects: &[&ObjectRef], since: Instant| -> StoreResult<bool> {
                if !compare || since.elapsed() >= DEFER_LIMIT {
                    return Ok(false);
                }
                for o in objects {
                    if in_flight
                        .query_row([o.to_string()], |r| r.get::<_, bool>(0))
                        .map_err(e)?
                    {
                        return Ok(true);
                    }
                }
                Ok(false)
            };
            for (change, since) in changes {
                match &change {
                    Change::Present { uuid } => {
                        mark.execute(params![uuid, generation]).map_err(e)?;
                    }
                    Change::Entry { uuid, dn, attrs, csn } => {
                        let old = seen(uuid)?;
                        let new = cls.classify(dn, attrs);
                        if let Some(t) = csn.as_deref().and_then(csn_time) {
                            out.newest = out.newest.max(Some(t));
                        }
                        let mine = match csn {
                            Some(c) => own.query_row(params![uuid, c], |r| r.get::<_, bool>(0)).map_err(e)?,
                            None => false,
                        };
                        if mine {
                            consume.execute(params![uuid, csn]).map_err(e)?;
                        } else {
                            let objects: Vec<&ObjectRef> = new
                                .iter()
                                .map(|n| &n.object)
                                .chain(old.iter().map(|o| &o.object))
                                .collect();
                            if waits(&objects, since)? {
                                mark.execute(params![uuid, generation]).map_err(e)?;
                                out.deferred.push((change.clone(), since));
                                continue;
                            }
                        }
                        let journal_it = compare && !mine;
                        match (&old, &new) {
                            (None, None) => {}
                            (Some(o), None) => {
                                if journal_it {
                                    journal.entry(o.object.clone()).or_default().extend(o.schools.clone());
                                }
                                forget.execute([uuid]).map_err(e)?;
                            }
                            (old, Some(n)) => {
                                let unchanged = old
                                    .as_ref()
                                    .is_some_and(|o| o.object == n.object && o.digest == n.digest);
                                if journal_it && !unchanged {
                                    let schools = journal.entry(n.object.clone()).or_default();
                                    schools.extend(n.schools.iter().cloned());
                                    if let Some(o) = old {
                                        if o.object == n.object {
                                            schools.extend(o.schools.iter().cloned());
                                        } else {
                                            journal.entry(o.object.clone()).or_default().extend(o.schools.clone());
                                        }
                                    }
                                }
                                let schools = serde_json::to_string(&n.schools).unwrap_or_else(|_| "[]".into());
                                put.execute(params![uuid, n.object.to_string(), schools, n.digest, generation])
                                    .map_err(e)?;
                            }
                        }
                    }
                    Change::Delete { uuid } => {
                        let Some(o) = seen(uuid)? else { continue };
                        let mine = own.query_row(params![uuid, ""], |r| r.get::<_, bool>(0)).map_err(e)?;
                        if mine {
                            consume.execute(params![uuid, ""]).map_err(e)?;
                        } else if waits(&[&o.object], since)? {
                            out.deferred.push((change.clone(), since));
                            continue;
                        } else if compare {
                            journal.entry(o.object.clone()).or_default().extend(o.schools.clone());
                        }
                        forget.execute([uuid]).map_err(e)?;
                    }
                }
            }
        }
        if sweep {
            let gone: Vec<(String, String, String)> = {
                let mut stmt = tx
                    .prepare("SELECT uuid, object, schools FROM listen_entries WHERE gen < ?1")
                    .map_err(e)?;
                let rows = stmt
                    .query_map([generation], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                    .map_err(e)?;
                rows.collect::<Result<_, _>>().map_err(e)?
            };
            for (uuid, object, schools) in gone {
                if compare {
                    let object: ObjectRef = object
                        .parse()
                        .map_err(|m| corrupt(format!("listen entry {uuid}: {m}")))?;
                    let schools: BTreeSet<String> = serde_json::from_str(&schools)
                        .map_err(|m| corrupt(format!("listen entry {uuid}: schools: {m}")))?;
                    journal.entry(object).or_default().extend(schools);
                }
            }
            tx.execute("DELETE FROM listen_entries WHERE gen < ?1", [generation])
                .map_err(e)?;
        }
        let at = time_str(Utc::now());
        {
            let mut insert = tx
                .prepare_cached("INSERT INTO journal (object, schools, at) VALUES (?1, ?2, ?3)")
                .map_err(e)?;
            for (object, schools) in &journal {
                let schools = serde_json::to_string(schools).unwrap_or_else(|_| "[]".into());
                insert.execute(params![object.to_string(), schools, at]).map_err(e)?;
            }
        }
        out.journaled = journal.len() as u64;
        if out.deferred.is_empty()
            && let Some(c) = cookie
        {
            tx.execute(
                "UPDATE listen_state SET cookie = ?1, cookie_at = ?2 WHERE id = 1",
                params![c, at],
            )
            .map_err(e)?;
            out.cookie_saved = true;
        }
        tx.commit().map_err(e)?;
        Ok(out)
    }

    /// Writes the status other processes read.
    pub fn set_status(&mut self, s: &StatusRow) -> StoreResult<()> {
        self.conn
            .execute(
                "INSERT OR REPLACE INTO listen_status \
                 (id, url, connected, phase, since, heartbeat_at, last_change_at, lag_ms, journaled, error) \
                 VALUES (1, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![
                    s.url,
                    s.connected,
                    s.phase,
                    time_str(s.since),
                    time_str(Utc::now()),
                    s.last_change_at.map(time_str),
                    s.lag_ms,
                    s.journaled as i64,
                    s.error
                ],
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
    }
}

/// The status a running listener keeps current.
#[derive(Clone, Debug)]
pub struct StatusRow {
    pub url: String,
    pub connected: bool,
    /// `connecting`, `refreshing`, `persisting`, `disconnected`, `stopped`.
    pub phase: &'static str,
    pub since: DateTime<Utc>,
    pub last_change_at: Option<DateTime<Utc>>,
    pub lag_ms: Option<i64>,
    pub journaled: u64,
    pub error: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_time_of_an_entry_csn() {
        let t = csn_time("20240131120001.123456Z#000000#000#000000").unwrap();
        assert_eq!(time_str(t), "2024-01-31T12:00:01.123456Z");
        assert!(csn_time("garbage").is_none());
    }
}
