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
use super::classify::{Classified, Classifier};
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
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| crate::store::sqlite::sqlite_err(&self.path, e))?;
        let mut d = Decider {
            tx: &tx,
            path: &self.path,
            generation,
            compare: mode == Mode::Compare,
            journal: Journaling::default(),
            out: Applied::default(),
        };
        for (change, since) in changes {
            match &change {
                Change::Present { uuid } => d.mark(uuid)?,
                Change::Entry { uuid, dn, attrs, csn } => {
                    if !d.entry(cls, uuid, dn, attrs, csn.as_deref(), since)? {
                        d.out.deferred.push((change, since));
                    }
                }
                Change::Delete { uuid } => {
                    if !d.delete(uuid, since)? {
                        d.out.deferred.push((change, since));
                    }
                }
            }
        }
        if sweep {
            d.sweep()?;
        }
        let out = d.finish(cookie)?;
        tx.commit()
            .map_err(|e| crate::store::sqlite::sqlite_err(&self.path, e))?;
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

/// The journal entries of one batch, coalesced per object: the schools
/// an object was in before and after.
#[derive(Default)]
struct Journaling(BTreeMap<ObjectRef, BTreeSet<String>>);

impl Journaling {
    fn add<'a>(&mut self, object: &ObjectRef, schools: impl IntoIterator<Item = &'a String>) {
        self.0
            .entry(object.clone())
            .or_default()
            .extend(schools.into_iter().cloned());
    }

    /// A group whose members (as rollcall reads them: the users that list
    /// it) changed.
    fn group(&mut self, group: &ObjectRef) {
        if let ObjectRef::Group { school, .. } = group {
            self.add(group, [school]);
        }
    }

    /// An object that is no longer there (or no longer rollcall's).
    fn gone(&mut self, c: &Classified) {
        self.add(&c.object, &c.schools);
        for g in &c.groups {
            self.group(g);
        }
    }

    /// An object added or changed: its old and new schools, and the groups
    /// it joined or left.
    fn changed(&mut self, old: Option<&Classified>, new: &Classified) {
        match old {
            Some(o) if o.object == new.object => {
                self.add(&new.object, o.schools.iter().chain(&new.schools));
                for g in o.groups.symmetric_difference(&new.groups) {
                    self.group(g);
                }
            }
            Some(o) => {
                self.gone(o);
                self.changed(None, new);
            }
            None => {
                self.add(&new.object, &new.schools);
                for g in &new.groups {
                    self.group(g);
                }
            }
        }
    }
}

/// One batch being decided, inside its transaction.
struct Decider<'t> {
    tx: &'t rusqlite::Transaction<'t>,
    path: &'t Path,
    generation: i64,
    /// `false` in the baseline: record, journal nothing.
    compare: bool,
    journal: Journaling,
    out: Applied,
}

impl Decider<'_> {
    fn err(&self, e: rusqlite::Error) -> StoreError {
        crate::store::sqlite::sqlite_err(self.path, e)
    }

    fn corrupt(&self, uuid: &str, message: String) -> StoreError {
        StoreError::Corrupt {
            path: self.path.display().to_string(),
            message: format!("listen entry {uuid}: {message}"),
        }
    }

    /// What was last seen of an entry.
    fn seen(&self, uuid: &str) -> StoreResult<Option<Classified>> {
        let row: Option<(String, String, String, i64)> = self
            .tx
            .prepare_cached("SELECT object, schools, groups, digest FROM listen_entries WHERE uuid = ?1")
            .and_then(|mut s| {
                s.query_row([uuid], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
                    .optional()
            })
            .map_err(|e| self.err(e))?;
        let Some((object, schools, groups, digest)) = row else {
            return Ok(None);
        };
        let groups: Vec<String> = serde_json::from_str(&groups).map_err(|m| self.corrupt(uuid, m.to_string()))?;
        Ok(Some(Classified {
            object: object.parse().map_err(|m| self.corrupt(uuid, format!("{m}")))?,
            schools: serde_json::from_str(&schools).map_err(|m| self.corrupt(uuid, m.to_string()))?,
            groups: groups
                .iter()
                .map(|g| g.parse().map_err(|m| self.corrupt(uuid, format!("{m}"))))
                .collect::<StoreResult<_>>()?,
            digest,
        }))
    }

    fn put(&self, uuid: &str, c: &Classified) -> StoreResult<()> {
        let schools = serde_json::to_string(&c.schools).unwrap_or_else(|_| "[]".into());
        let groups: Vec<String> = c.groups.iter().map(ToString::to_string).collect();
        let groups = serde_json::to_string(&groups).unwrap_or_else(|_| "[]".into());
        self.tx
            .prepare_cached(
                "INSERT OR REPLACE INTO listen_entries (uuid, object, schools, groups, digest, gen) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    uuid,
                    c.object.to_string(),
                    schools,
                    groups,
                    c.digest,
                    self.generation
                ])
            })
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    fn forget(&self, uuid: &str) -> StoreResult<()> {
        self.tx
            .prepare_cached("DELETE FROM listen_entries WHERE uuid = ?1")
            .and_then(|mut s| s.execute([uuid]))
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    /// Marks an entry seen in this session.
    fn mark(&self, uuid: &str) -> StoreResult<()> {
        self.tx
            .prepare_cached("UPDATE listen_entries SET gen = ?2 WHERE uuid = ?1")
            .and_then(|mut s| s.execute(params![uuid, self.generation]))
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    /// Whether this data dir's writer made this change (and consumes the
    /// record of it, and of its earlier writes of the entry).
    fn own(&self, uuid: &str, csn: &str) -> StoreResult<bool> {
        let mine: bool = self
            .tx
            .prepare_cached("SELECT EXISTS (SELECT 1 FROM own_changes WHERE uuid = ?1 AND csn = ?2)")
            .and_then(|mut s| s.query_row(params![uuid, csn], |r| r.get(0)))
            .map_err(|e| self.err(e))?;
        if mine {
            self.tx
                .prepare_cached("DELETE FROM own_changes WHERE uuid = ?1 AND csn <= ?2")
                .and_then(|mut s| s.execute(params![uuid, csn]))
                .map_err(|e| self.err(e))?;
        }
        Ok(mine)
    }

    /// Whether a change must wait: this data dir is writing one of these
    /// objects right now (its entryCSN is recorded when the write completes).
    fn waits<'a>(&self, objects: impl IntoIterator<Item = &'a ObjectRef>, since: Instant) -> StoreResult<bool> {
        if !self.compare || since.elapsed() >= DEFER_LIMIT {
            return Ok(false);
        }
        for o in objects {
            let busy: bool = self
                .tx
                .prepare_cached("SELECT EXISTS (SELECT 1 FROM intents WHERE object = ?1 AND journal = 1)")
                .and_then(|mut s| s.query_row([o.to_string()], |r| r.get(0)))
                .map_err(|e| self.err(e))?;
            if busy {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// An entry added or modified; `false`: it waits.
    fn entry(
        &mut self,
        cls: &Classifier,
        uuid: &str,
        dn: &str,
        attrs: &Attrs,
        csn: Option<&str>,
        since: Instant,
    ) -> StoreResult<bool> {
        let old = self.seen(uuid)?;
        let new = cls.classify(dn, attrs);
        let mine = match csn {
            Some(c) => self.own(uuid, c)?,
            None => false,
        };
        if !mine && self.waits(new.iter().chain(old.as_ref()).map(|c| &c.object), since)? {
            self.mark(uuid)?;
            return Ok(false);
        }
        if let Some(t) = csn.and_then(csn_time) {
            self.out.newest = self.out.newest.max(Some(t));
        }
        let journal = self.compare && !mine;
        match (&old, &new) {
            (None, None) => {}
            (Some(o), None) => {
                if journal {
                    self.journal.gone(o);
                }
                self.forget(uuid)?;
            }
            (old, Some(n)) => {
                let unchanged = old
                    .as_ref()
                    .is_some_and(|o| o.object == n.object && o.digest == n.digest);
                if journal && !unchanged {
                    self.journal.changed(old.as_ref(), n);
                }
                self.put(uuid, n)?;
            }
        }
        Ok(true)
    }

    /// An entry deleted (or moved out of sight); `false`: it waits.
    fn delete(&mut self, uuid: &str, since: Instant) -> StoreResult<bool> {
        let Some(o) = self.seen(uuid)? else {
            return Ok(true);
        };
        let mine = self.own(uuid, "")?;
        if !mine && self.waits([&o.object], since)? {
            return Ok(false);
        }
        if self.compare && !mine {
            self.journal.gone(&o);
        }
        self.forget(uuid)?;
        Ok(true)
    }

    /// Entries not seen in this session are gone.
    fn sweep(&mut self) -> StoreResult<()> {
        let stale: Vec<String> = self
            .tx
            .prepare("SELECT uuid FROM listen_entries WHERE gen < ?1")
            .and_then(|mut s| {
                s.query_map([self.generation], |r| r.get(0))?
                    .collect::<Result<Vec<String>, _>>()
            })
            .map_err(|e| self.err(e))?;
        for uuid in stale {
            if let Some(o) = self.seen(&uuid)?
                && self.compare
            {
                self.journal.gone(&o);
            }
            self.forget(&uuid)?;
        }
        Ok(())
    }

    /// Writes the journal entries, and the cookie when nothing waits.
    fn finish(mut self, cookie: Option<&[u8]>) -> StoreResult<Applied> {
        let at = time_str(Utc::now());
        {
            let mut insert = self
                .tx
                .prepare_cached("INSERT INTO journal (object, schools, at) VALUES (?1, ?2, ?3)")
                .map_err(|e| self.err(e))?;
            for (object, schools) in &self.journal.0 {
                let schools = serde_json::to_string(schools).unwrap_or_else(|_| "[]".into());
                insert
                    .execute(params![object.to_string(), schools, at])
                    .map_err(|e| self.err(e))?;
            }
        }
        self.out.journaled = self.journal.0.len() as u64;
        if self.out.deferred.is_empty()
            && let Some(c) = cookie
        {
            self.tx
                .execute(
                    "UPDATE listen_state SET cookie = ?1, cookie_at = ?2 WHERE id = 1",
                    params![c, at],
                )
                .map_err(|e| self.err(e))?;
            self.out.cookie_saved = true;
        }
        Ok(self.out)
    }
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
