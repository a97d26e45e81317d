//! One authority's out-queue on disk, `queues/out/<authority>/`:
//!
//! * `*.json` — pending items, one per object (a newer change coalesces into
//!   the pending item: it is simply not written again);
//! * `retry/` — items waiting for their back-off; the file's mtime is the
//!   time they may be sent again;
//! * `claimed/<owner>~<name>` — items a sender is working on; claiming is a
//!   rename, so two processes never take the same item; a claim whose owner
//!   holds no lock (`queues/owners/<owner>.lock`, see [`crate::engine::lock`])
//!   is put back, whatever its PID;
//! * `trash/` — items given up on, with their failure;
//! * `.tmp/<0-7>/` — files being written (temp file, fsync, rename), spread
//!   over eight folders: a file system creates files in one folder one at a
//!   time (the folder's lock), so parallel writers each take their own;
//! * `.spent/` — sent items' files kept for the next enqueues to overwrite
//!   (see [`super::spent`]).
//!
//! An admin may `ls`, `jq` and `mv` these files; an item moved from
//! `trash/` back into the queue is sent again.

use super::item::{QueueItem, file_name, valid_file_name};
use super::spent::Spent;
use crate::engine::lock::Owner;
use crate::engine::paths::{create_private_dir, in_private_dir};
use chrono::{DateTime, Utc};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// Subfolders of `.tmp/` that temp files are spread over.
const TEMP_DIRS: u32 = 8;

/// A queue folder of one authority.
#[derive(Clone, Debug)]
pub struct Queue {
    authority: String,
    root: PathBuf,
    /// `queues/owners/`: the lock files of processes holding claims.
    owners: PathBuf,
    spent: Spent,
}

/// What happened to an enqueued item.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Enqueued {
    Created,
    /// An item for the object was already waiting: the change joined it.
    Coalesced,
}

/// An item taken by this process.
#[derive(Debug)]
pub struct Claim {
    pub name: String,
    pub item: QueueItem,
    path: PathBuf,
}

/// Counts and ages of one queue, from the file system.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct QueueCounts {
    pub pending: u64,
    pub retrying: u64,
    pub claimed: u64,
    pub trash: u64,
    pub oldest: Option<DateTime<Utc>>,
    pub next_retry: Option<DateTime<Utc>>,
}

fn mtime(meta: &fs::Metadata) -> Option<DateTime<Utc>> {
    meta.modified().ok().map(DateTime::<Utc>::from)
}

/// Item file names in a folder, sorted (schools, users, groups).
fn list_names(dir: &Path) -> io::Result<Vec<String>> {
    let mut out = Vec::new();
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        if let Ok(name) = entry.file_name().into_string()
            && valid_file_name(&name)
        {
            out.push(name);
        }
    }
    out.sort_unstable();
    Ok(out)
}

/// `<owner>~<name>` → (owner, name).
fn parse_claim(file: &str) -> Option<(&str, &str)> {
    file.split_once('~')
}

impl Queue {
    /// The queue of `authority` below `queues/out/`, creating its folders.
    pub fn open(out_dir: &Path, authority: &str) -> io::Result<Self> {
        let root = out_dir.join(authority);
        for dir in [
            root.clone(),
            root.join("retry"),
            root.join("claimed"),
            root.join("trash"),
            root.join(".tmp"),
        ] {
            create_private_dir(&dir)?;
        }
        Ok(Queue {
            authority: authority.to_string(),
            spent: Spent::new(&root),
            root,
            owners: out_dir.parent().unwrap_or(out_dir).join("owners"),
        })
    }

    pub fn authority(&self) -> &str {
        &self.authority
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn trash_dir(&self) -> PathBuf {
        self.root.join("trash")
    }

    fn retry_dir(&self) -> PathBuf {
        self.root.join("retry")
    }

    fn claimed_dir(&self) -> PathBuf {
        self.root.join("claimed")
    }

    /// Writes `item` to a temp file (synced when `sync`), returns its path.
    /// With `recycled`, a spent file is taken and overwritten if it is still
    /// there; otherwise a file is created.
    fn write_temp(&self, name: &str, item: &QueueItem, sync: bool, recycled: Option<&Path>) -> io::Result<PathBuf> {
        // Temp files are named after this process: its lock must be held
        // first, or another process's clean_temp takes it for dead and
        // removes the file before it is renamed (an enqueue-only process
        // such as `verify --fix` never claims).
        Owner::get().hold(&self.owners)?;
        let nonce = rand::random::<u32>();
        let dir = self.root.join(".tmp").join((nonce % TEMP_DIRS).to_string());
        let tmp = dir.join(format!("{}.{nonce}.{name}", Owner::get().id()));
        let mut text = serde_json::to_vec_pretty(item).map_err(io::Error::other)?;
        // One write: each costs a file system journal handle.
        text.push(b'\n');
        // The subfolder is made on first use.
        let create = || in_private_dir(&dir, || OpenOptions::new().write(true).create_new(true).open(&tmp));
        let reuse = |spent: &Path| -> io::Result<File> {
            in_private_dir(&dir, || fs::rename(spent, &tmp))?;
            OpenOptions::new().write(true).open(&tmp)
        };
        let opened = match recycled.map(reuse) {
            Some(Ok(f)) => Ok((f, true)),
            // Another process took it first.
            Some(Err(_)) | None => create().map(|f| (f, false)),
        };
        let written = opened.and_then(|(mut f, reused)| {
            f.write_all(&text)?;
            if reused {
                // The spent file may have been longer.
                f.set_len(text.len() as u64)?;
            }
            if sync {
                f.sync_all()?;
            }
            Ok(())
        });
        if let Err(e) = written {
            // Half a file is garbage; on a full disk it is space too. The
            // error names the file (and the free space when full).
            let _ = fs::remove_file(&tmp);
            let e = crate::store::space::explain(&tmp, e);
            return Err(io::Error::new(e.kind(), format!("{}: {e}", tmp.display())));
        }
        Ok(tmp)
    }

    fn sync_dir(dir: &Path) -> io::Result<()> {
        File::open(dir)?.sync_all()
    }

    /// Whether an item for this file name waits (pending or in back-off).
    pub fn holds(&self, name: &str) -> bool {
        self.root.join(name).exists() || self.retry_dir().join(name).exists()
    }

    /// The file names of the items being sent now (by any process).
    pub fn claimed_names(&self) -> io::Result<std::collections::HashSet<String>> {
        let mut out = std::collections::HashSet::new();
        let entries = match fs::read_dir(self.claimed_dir()) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(e),
        };
        for entry in entries {
            if let Ok(file) = entry?.file_name().into_string()
                && let Some((_, name)) = parse_claim(&file)
                && valid_file_name(name)
            {
                out.insert(name.to_string());
            }
        }
        Ok(out)
    }

    /// When the item of this file name is next sent: `now` when pending or
    /// being sent (`claimed`: from [`Queue::claimed_names`]), the end of its
    /// back-off when in retry; `None` when no item waits.
    pub fn next_chance(
        &self,
        name: &str,
        claimed: &std::collections::HashSet<String>,
        now: SystemTime,
    ) -> Option<SystemTime> {
        if claimed.contains(name) || self.root.join(name).exists() {
            return Some(now);
        }
        let meta = fs::metadata(self.retry_dir().join(name)).ok()?;
        Some(meta.modified().unwrap_or(now).max(now))
    }

    /// Ends the back-off of the item of this file name if it waits only
    /// for members (`waiting_for_members`): it is sent at the next round.
    /// Other back-offs (a server's Retry-After, its own errors) stand.
    /// `true` when it was woken.
    pub fn wake(&self, name: &str) -> io::Result<bool> {
        let path = self.retry_dir().join(name);
        // Gone, or unreadable (the claim that takes it reports that).
        let Ok(item) = self.read(ItemDir::Retry, name) else {
            return Ok(false);
        };
        if !item.waiting_for_members {
            return Ok(false);
        }
        match File::options().write(true).open(&path) {
            Ok(f) => f.set_modified(SystemTime::now()).map(|()| true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Whether the object of this file name has an item in trash.
    pub fn in_trash(&self, name: &str) -> bool {
        self.trash_dir().join(name).exists()
    }

    /// Queues items, one per object: an object that already has a waiting
    /// item is coalesced into it. Durable when this returns.
    pub fn enqueue_many(&self, items: &[QueueItem]) -> io::Result<Vec<Enqueued>> {
        let mut out = Vec::with_capacity(items.len());
        let mut fresh: Vec<(String, &QueueItem)> = Vec::new();
        let mut seen = std::collections::HashSet::with_capacity(items.len());
        for item in items {
            let name = file_name(&item.object);
            if seen.contains(&name) || self.holds(&name) {
                out.push(Enqueued::Coalesced);
                continue;
            }
            seen.insert(name.clone());
            fresh.push((name, item));
            out.push(Enqueued::Created);
        }
        if fresh.is_empty() {
            return Ok(out);
        }
        // Few files: fsync each. Many: written by parallel threads (creating
        // a file is latency-bound), then one syncfs for the whole batch.
        let each = fresh.len() <= 16;
        let mut recycled = self.spent.candidates(fresh.len()).into_iter();
        let fresh: Vec<(String, &QueueItem, Option<PathBuf>)> = fresh
            .into_iter()
            .map(|(name, item)| (name, item, recycled.next()))
            .collect();
        let temps: Vec<(String, PathBuf)> = if each {
            fresh
                .iter()
                .map(|(name, item, spent)| Ok((name.clone(), self.write_temp(name, item, true, spent.as_deref())?)))
                .collect::<io::Result<_>>()?
        } else {
            parallel(&fresh, WRITE_THREADS, |(name, item, spent)| {
                Ok((name.clone(), self.write_temp(name, item, false, spent.as_deref())?))
            })?
        };
        if !each {
            sync_filesystem(&self.root)?;
        }
        for (name, tmp) in &temps {
            fs::rename(tmp, self.root.join(name))?;
        }
        Self::sync_dir(&self.root)?;
        Ok(out)
    }

    /// Forgets many sent items at once (removing files is latency-bound:
    /// parallel threads do it many times faster).
    pub fn complete_many(&self, claims: &[Claim]) -> io::Result<()> {
        let keep = self.spent.has_room();
        if claims.len() <= 4 {
            return claims.iter().try_for_each(|c| self.forget(c, keep));
        }
        // Renames between folders queue on the file system's rename lock:
        // more threads only spin on it.
        let threads = if keep { SPEND_THREADS } else { REMOVE_THREADS };
        parallel(claims, threads, |c| self.forget(c, keep)).map(|_| ())
    }

    /// Forgets sent items on a background thread, so the sender goes on
    /// with the next batch while the disk frees the files. One batch is in
    /// flight per [`Reaper`]; a crash before it finishes leaves claims that
    /// `recover_claims` puts back and a resend finds already applied.
    pub fn complete_later(&self, claims: Vec<Claim>, reaper: &mut Reaper) -> io::Result<()> {
        reaper.wait()?;
        if claims.is_empty() {
            return Ok(());
        }
        let queue = self.clone();
        reaper.pending = Some(std::thread::spawn(move || queue.complete_many(&claims)));
        Ok(())
    }

    pub fn enqueue(&self, item: &QueueItem) -> io::Result<Enqueued> {
        Ok(self.enqueue_many(std::slice::from_ref(item))?.remove(0))
    }

    /// Pending item names, in send order.
    pub fn pending_names(&self) -> io::Result<Vec<String>> {
        list_names(&self.root)
    }

    /// Items in back-off whose time has come, and the next time one will.
    pub fn due_retries(&self, now: SystemTime) -> io::Result<(Vec<String>, Option<SystemTime>)> {
        let mut due = Vec::new();
        let mut next: Option<SystemTime> = None;
        for name in list_names(&self.retry_dir())? {
            let Ok(meta) = fs::metadata(self.retry_dir().join(&name)) else {
                continue;
            };
            let at = meta.modified().unwrap_or(now);
            if at <= now {
                due.push(name);
            } else {
                next = Some(next.map_or(at, |n| n.min(at)));
            }
        }
        Ok((due, next))
    }

    fn claim_path(&self, name: &str) -> PathBuf {
        self.claimed_dir().join(format!("{}~{name}", Owner::get().id()))
    }

    /// Takes an item (pending, or from retry when `from_retry`). `None`
    /// when another process took it first or it is gone.
    pub fn claim(&self, name: &str, from_retry: bool) -> io::Result<Option<Result<Claim, (String, String)>>> {
        if !valid_file_name(name) {
            return Ok(None);
        }
        let src = if from_retry {
            self.retry_dir().join(name)
        } else {
            self.root.join(name)
        };
        // The lock that says this process lives is held before its first claim.
        Owner::get().hold(&self.owners)?;
        let dst = self.claim_path(name);
        match fs::rename(&src, &dst) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        }
        let text = fs::read(&dst)?;
        match serde_json::from_slice::<QueueItem>(&text) {
            Ok(item) => Ok(Some(Ok(Claim {
                name: name.to_string(),
                item,
                path: dst,
            }))),
            Err(e) => Ok(Some(Err((
                name.to_string(),
                unreadable_item(&self.authority, name, &e, &text),
            )))),
        }
    }

    /// The item was sent: forget it (its file goes to the spent pool while
    /// the disk has room).
    pub fn complete(&self, claim: &Claim) -> io::Result<()> {
        self.forget(claim, self.spent.has_room())
    }

    fn forget(&self, claim: &Claim, keep: bool) -> io::Result<()> {
        if keep {
            self.spent.spend(&claim.path)
        } else {
            remove_if_present(&claim.path)
        }
    }

    /// Gives back spent files beyond `keep`, at most `at_most` of them;
    /// returns how many.
    pub fn trim_spent(&self, keep: usize, at_most: usize) -> io::Result<u64> {
        self.spent.trim(keep, at_most, |paths| {
            if paths.len() <= 4 {
                return paths.iter().try_for_each(|p| remove_if_present(p));
            }
            parallel(paths, REMOVE_THREADS, |p| remove_if_present(p)).map(|_| ())
        })
    }

    /// The files in the spent pool.
    pub fn spent_files(&self) -> u64 {
        self.spent.files().len() as u64
    }

    /// Drops the claimed file of an unreadable item (its content went to trash).
    pub fn drop_claimed(&self, name: &str) -> io::Result<()> {
        remove_if_present(&self.claim_path(name))
    }

    /// Puts an item back, unchanged (the authority is unreachable: no
    /// attempt was spent). A newer pending item for the object wins.
    pub fn unclaim(&self, claim: &Claim) -> io::Result<()> {
        let dst = self.root.join(&claim.name);
        if self.holds(&claim.name) {
            return remove_if_present(&claim.path);
        }
        fs::rename(&claim.path, dst)
    }

    /// Puts an item into back-off until `not_before`. A newer pending item
    /// for the object wins (it will be sent with the current state anyway).
    pub fn retry_later(&self, claim: &Claim, item: &QueueItem, not_before: DateTime<Utc>) -> io::Result<()> {
        if self.holds(&claim.name) {
            return remove_if_present(&claim.path);
        }
        let tmp = self.write_temp(&claim.name, item, true, None)?;
        let at: SystemTime = not_before.into();
        File::options().write(true).open(&tmp)?.set_modified(at)?;
        fs::rename(&tmp, self.retry_dir().join(&claim.name))?;
        Self::sync_dir(&self.retry_dir())?;
        remove_if_present(&claim.path)
    }

    /// Moves an item to trash with its failure recorded.
    pub fn trash(&self, name: &str, item: &QueueItem) -> io::Result<()> {
        let tmp = self.write_temp(name, item, true, None)?;
        fs::rename(&tmp, self.trash_dir().join(name))?;
        Self::sync_dir(&self.trash_dir())?;
        remove_if_present(&self.claim_path(name))
    }

    /// Puts back claims whose owner holds no lock (a process killed
    /// mid-send, whatever its PID was); with `own`, also this process's (at
    /// start, none can be in flight). Temp files of such owners go too.
    pub fn recover_claims(&self, own: bool) -> io::Result<u64> {
        let me = Owner::get();
        let gone = |owner: &str| -> io::Result<bool> {
            Ok(if owner == me.id() {
                own
            } else {
                !me.alive(&self.owners, owner)?
            })
        };
        let mut recovered = 0;
        let entries = match fs::read_dir(self.claimed_dir()) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(e),
        };
        for entry in entries {
            let entry = entry?;
            let Ok(file) = entry.file_name().into_string() else {
                continue;
            };
            let Some((owner, name)) = parse_claim(&file) else {
                continue;
            };
            if !valid_file_name(name) || !gone(owner)? {
                continue;
            }
            let path = entry.path();
            if self.holds(name) {
                remove_if_present(&path)?;
            } else {
                match fs::rename(&path, self.root.join(name)) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(e),
                }
            }
            recovered += 1;
        }
        self.clean_temp(own)?;
        Ok(recovered)
    }

    /// Removes temp files of writers that are gone (with `own`, also this
    /// process's); returns how many. Cheap, and it frees the disk first
    /// when a write failed for want of space.
    pub fn clean_temp(&self, own: bool) -> io::Result<u64> {
        let me = Owner::get();
        let mut removed = 0;
        for path in self.temp_paths() {
            let name = path.file_name().unwrap_or_default().to_string_lossy().to_string();
            let owner = name.split('.').next().unwrap_or_default();
            let dead = if owner == me.id() {
                own
            } else {
                !me.alive(&self.owners, owner)?
            };
            if dead && fs::remove_file(&path).is_ok() {
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// Files in `.tmp/` (being written, or left by a writer that died).
    pub fn temp_files(&self) -> u64 {
        self.temp_paths().len() as u64
    }

    /// The temp files: in `.tmp/`'s subfolders, and in `.tmp/` itself
    /// (where earlier versions wrote them).
    fn temp_paths(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        let Ok(entries) = fs::read_dir(self.root.join(".tmp")) else {
            return out;
        };
        for entry in entries.flatten() {
            match entry.file_type() {
                Ok(t) if t.is_dir() => {
                    if let Ok(inner) = fs::read_dir(entry.path()) {
                        out.extend(inner.flatten().map(|e| e.path()));
                    }
                }
                Ok(_) => out.push(entry.path()),
                Err(_) => {}
            }
        }
        out
    }

    /// Reads a pending, retrying or trash item by name.
    pub fn read(&self, dir: ItemDir, name: &str) -> io::Result<QueueItem> {
        if !valid_file_name(name) {
            return Err(io::Error::new(io::ErrorKind::NotFound, format!("no item '{name}'")));
        }
        let path = self.item_path(dir, name);
        // Items are plain files: a planted link must not read elsewhere.
        if fs::symlink_metadata(&path)?.file_type().is_symlink() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} is a symbolic link; queue items are plain files", path.display()),
            ));
        }
        let text = fs::read(&path)?;
        serde_json::from_slice(&text).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
    }

    pub fn item_path(&self, dir: ItemDir, name: &str) -> PathBuf {
        match dir {
            ItemDir::Pending => self.root.join(name),
            ItemDir::Retry => self.retry_dir().join(name),
            ItemDir::Trash => self.trash_dir().join(name),
        }
    }

    pub fn names(&self, dir: ItemDir) -> io::Result<Vec<String>> {
        match dir {
            ItemDir::Pending => list_names(&self.root),
            ItemDir::Retry => list_names(&self.retry_dir()),
            ItemDir::Trash => list_names(&self.trash_dir()),
        }
    }

    /// Deletes a trash item.
    pub fn delete_trash(&self, name: &str) -> io::Result<()> {
        if !valid_file_name(name) {
            return Err(io::Error::new(io::ErrorKind::NotFound, format!("no item '{name}'")));
        }
        fs::remove_file(self.trash_dir().join(name))
    }

    /// Counts and ages, for `queue list` and the console.
    pub fn counts(&self) -> io::Result<QueueCounts> {
        let mut c = QueueCounts::default();
        for name in list_names(&self.root)? {
            if let Ok(meta) = fs::metadata(self.root.join(&name)) {
                c.pending += 1;
                let t = mtime(&meta);
                c.oldest = match (c.oldest, t) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
            }
        }
        for name in list_names(&self.retry_dir())? {
            if let Ok(meta) = fs::metadata(self.retry_dir().join(&name)) {
                c.retrying += 1;
                let t = mtime(&meta);
                c.next_retry = match (c.next_retry, t) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
            }
        }
        if let Ok(oldest_retry) = self.oldest_retry_enqueued() {
            c.oldest = match (c.oldest, oldest_retry) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
        c.claimed = fs::read_dir(self.claimed_dir()).map(|d| d.count() as u64).unwrap_or(0);
        c.trash = list_names(&self.trash_dir())?.len() as u64;
        Ok(c)
    }

    /// Retry items keep their original enqueue time inside the file.
    fn oldest_retry_enqueued(&self) -> io::Result<Option<DateTime<Utc>>> {
        let mut oldest: Option<DateTime<Utc>> = None;
        for name in list_names(&self.retry_dir())?.iter().take(10_000) {
            if let Ok(item) = self.read(ItemDir::Retry, name) {
                oldest = Some(oldest.map_or(item.enqueued_at, |o| o.min(item.enqueued_at)));
            }
        }
        Ok(oldest)
    }

    /// Items being sent right now, by any process: (who claimed it, as the
    /// claim records it; the item's name; the item, when readable).
    pub fn claimed_items(&self) -> io::Result<Vec<(String, String, Option<QueueItem>)>> {
        let mut out = Vec::new();
        let entries = match fs::read_dir(self.claimed_dir()) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(e),
        };
        for entry in entries.flatten() {
            let Ok(file) = entry.file_name().into_string() else {
                continue;
            };
            let Some((owner, name)) = file.split_once('~') else {
                continue;
            };
            if !valid_file_name(name) {
                continue;
            }
            let item = fs::read(entry.path())
                .ok()
                .and_then(|t| serde_json::from_slice::<QueueItem>(&t).ok());
            out.push((owner.to_string(), name.to_string(), item));
        }
        out.sort_by(|a, b| a.1.cmp(&b.1));
        Ok(out)
    }

    /// Deletes trash items whose failure is older than `max_age`; returns
    /// their names.
    pub fn purge_trash(&self, max_age: Duration, dry_run: bool) -> io::Result<Vec<String>> {
        let now = SystemTime::now();
        let mut purged = Vec::new();
        for name in list_names(&self.trash_dir())? {
            let path = self.trash_dir().join(&name);
            let Ok(meta) = fs::metadata(&path) else { continue };
            let age = now.duration_since(meta.modified().unwrap_or(now)).unwrap_or_default();
            if age >= max_age {
                if !dry_run {
                    remove_if_present(&path)?;
                }
                purged.push(name);
            }
        }
        Ok(purged)
    }
}

/// Which folder of a queue an item is in.
/// What a queue file that is not a queue item is trashed with: where,
/// what is wrong, what to do, and the raw text (cut at 4 KiB).
pub fn unreadable_item(authority: &str, name: &str, e: &serde_json::Error, raw: &[u8]) -> String {
    let what = match e.classify() {
        serde_json::error::Category::Eof => "the file ends early (truncated?)".to_string(),
        serde_json::error::Category::Syntax => "not valid JSON".to_string(),
        serde_json::error::Category::Io => "cannot be read".to_string(),
        serde_json::error::Category::Data => {
            let text = e.to_string();
            let text = text.split(" at line ").next().unwrap_or(&text).to_string();
            format!("not a queue item: {text}")
        }
    };
    let raw = String::from_utf8_lossy(&raw[..raw.len().min(4096)]).to_string();
    format!(
        "queues/out/{authority}/{name}: line {}, column {}: {what}; the item was moved to the trash: \
         schedule the object again (rollcall schedule user|group|school …) and then \
         rollcall trash delete {authority}/{name}; the raw file was: {raw}",
        e.line(),
        e.column()
    )
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ItemDir {
    Pending,
    Retry,
    Trash,
}

/// Threads for writing item files (creating a file waits on the disk).
const WRITE_THREADS: usize = 8;

/// Threads for removing sent items' files: on a file system that discards
/// freed blocks (ext4 `-o discard`) an unlink waits ~1 ms, so many run at
/// once (measured: 8 threads 10,000/s, 32 threads 19,000/s).
const REMOVE_THREADS: usize = 32;

/// Threads for keeping sent items' files (a rename within `claimed/`).
const SPEND_THREADS: usize = 1;

/// The background removal of one batch of sent items (see
/// [`Queue::complete_later`]). Dropping it waits for the batch.
#[derive(Debug, Default)]
pub struct Reaper {
    pending: Option<std::thread::JoinHandle<io::Result<()>>>,
}

impl Reaper {
    /// Waits for the batch in flight, if any.
    pub fn wait(&mut self) -> io::Result<()> {
        match self.pending.take() {
            Some(h) => h.join().map_err(|_| io::Error::other("a queue thread panicked"))?,
            None => Ok(()),
        }
    }
}

impl Drop for Reaper {
    fn drop(&mut self) {
        let _ = self.wait();
    }
}

/// Runs `f` over `items` in up to `threads` threads; results in order.
fn parallel<T: Sync, R: Send>(
    items: &[T],
    threads: usize,
    f: impl Fn(&T) -> io::Result<R> + Sync,
) -> io::Result<Vec<R>> {
    let per = items.len().div_ceil(threads).max(1);
    std::thread::scope(|s| {
        let handles: Vec<_> = items
            .chunks(per)
            .map(|chunk| s.spawn(|| chunk.iter().map(&f).collect::<io::Result<Vec<R>>>()))
            .collect();
        let mut out = Vec::with_capacity(items.len());
        for h in handles {
            out.extend(h.join().map_err(|_| io::Error::other("a queue thread panicked"))??);
        }
        Ok(out)
    })
}

fn remove_if_present(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Flushes the file system holding `path` to disk: one call instead of an
/// fsync per file when many items are written at once.
#[allow(unsafe_code)] // reviewed: one syscall on a descriptor we own
fn sync_filesystem(path: &Path) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let dir = File::open(path)?;
    // SAFETY: syncfs only reads the descriptor, which `dir` keeps open.
    let rc = unsafe { libc::syncfs(dir.as_raw_fd()) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::sync::item::Reason;

    fn items(prefix: &str, n: usize, school: &str) -> Vec<QueueItem> {
        (0..n)
            .map(|i| {
                let object = format!("user:district:{prefix}{i}").parse().unwrap();
                QueueItem::new(object, [school.to_string()], Reason::Change)
            })
            .collect()
    }

    fn drain(q: &Queue) {
        for name in q.pending_names().unwrap() {
            let claim = q.claim(&name, false).unwrap().unwrap().unwrap();
            q.complete(&claim).unwrap();
        }
    }

    /// A group waiting only for its members is woken; one in back-off for
    /// its own failure (a Retry-After) is not. A claimed item counts as on
    /// its way.
    #[test]
    fn only_items_waiting_for_members_are_woken_and_a_claimed_one_is_on_its_way() {
        let dir = tempfile::tempdir().unwrap();
        let q = Queue::open(dir.path(), "idb").unwrap();
        let class: QueueItem = QueueItem::new("class:gsa:5a".parse().unwrap(), ["gsa".to_string()], Reason::Change);
        let club: QueueItem = QueueItem::new(
            "workgroup:gsa:chor".parse().unwrap(),
            ["gsa".to_string()],
            Reason::Change,
        );
        let member = items("m", 1, "gsa").remove(0);
        q.enqueue_many(&[class.clone(), club.clone(), member.clone()]).unwrap();
        let hour = Utc::now() + chrono::Duration::hours(1);
        for (item, waiting) in [(&class, true), (&club, false)] {
            let name = file_name(&item.object);
            let claim = q.claim(&name, false).unwrap().unwrap().unwrap();
            let mut later = item.clone();
            later.waiting_for_members = waiting;
            q.retry_later(&claim, &later, hour).unwrap();
        }
        let now = SystemTime::now();
        let (due, _) = q.due_retries(now).unwrap();
        assert!(due.is_empty(), "{due:?}");
        assert!(q.wake(&file_name(&class.object)).unwrap());
        assert!(!q.wake(&file_name(&club.object)).unwrap(), "its own back-off stands");
        assert!(!q.wake("no-such-item").unwrap());
        let (due, _) = q.due_retries(SystemTime::now()).unwrap();
        assert_eq!(due, vec![file_name(&class.object)]);

        let member_name = file_name(&member.object);
        let none = std::collections::HashSet::new();
        assert_eq!(q.next_chance(&member_name, &none, now), Some(now), "pending");
        let claim = q.claim(&member_name, false).unwrap().unwrap().unwrap();
        let claimed = q.claimed_names().unwrap();
        assert_eq!(q.next_chance(&member_name, &none, now), None);
        assert_eq!(q.next_chance(&member_name, &claimed, now), Some(now), "being sent");
        q.complete(&claim).unwrap();
        assert_eq!(q.next_chance(&member_name, &q.claimed_names().unwrap(), now), None);
    }

    /// Sent items' files are overwritten by the next enqueue: each item
    /// reads back exactly as written, with nothing of the longer file it
    /// replaced, on both the many-items and the fsync-each path.
    #[test]
    fn the_next_enqueue_overwrites_sent_items_files() {
        let tmp = tempfile::tempdir().unwrap();
        let q = Queue::open(&tmp.path().join("out"), "a").unwrap();
        q.enqueue_many(&items("a", 40, &"a-long-school-name-".repeat(20)))
            .unwrap();
        drain(&q);
        assert_eq!(q.spent_files(), 40);
        assert!(q.pending_names().unwrap().is_empty());

        // Temp subfolders not made yet (a fresh queue, or one that only
        // wrote to some): taking a spent file into one still works.
        fs::remove_dir_all(q.root.join(".tmp")).unwrap();
        create_private_dir(&q.root.join(".tmp")).unwrap();
        let second = items("b", 30, "gs");
        q.enqueue_many(&second).unwrap();
        assert_eq!(q.spent_files(), 10, "30 of the 40 spent files taken back");
        let mut read: Vec<QueueItem> = q
            .pending_names()
            .unwrap()
            .iter()
            .map(|n| q.read(ItemDir::Pending, n).unwrap())
            .collect();
        read.sort_by_key(|i| i.object.to_string());
        let mut want = second.clone();
        want.sort_by_key(|i| i.object.to_string());
        assert_eq!(read, want);
        assert_eq!(q.temp_files(), 0);

        q.enqueue_many(&items("c", 3, "gs")).unwrap();
        assert_eq!(q.spent_files(), 7, "few items take spent files too");
        assert_eq!(
            q.read(ItemDir::Pending, &file_name(&"user:district:c1".parse().unwrap()))
                .unwrap()
                .object
                .to_string(),
            "user:district:c1"
        );

        assert_eq!(q.trim_spent(2, 100).unwrap(), 5);
        assert_eq!(q.spent_files(), 2);
        assert_eq!(q.trim_spent(0, usize::MAX).unwrap(), 2);
        assert_eq!(q.pending_names().unwrap().len(), 33, "trimming never touches items");
    }
}
