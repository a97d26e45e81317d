//! Ownership by OS file lock (`flock` through `std::fs::File::lock`), never
//! by PID: a lock is held exactly as long as the process that took it lives
//! (the kernel drops it when the process ends, however it ends), so it
//! works in containers where every run is PID 1.
//!
//! * [`Owner`]: this process's identity in the queues. Each data dir gets
//!   `queues/owners/<owner>.lock`, locked for the life of the process; a
//!   claim `claimed/<owner>~<item>` belongs to a live sender exactly when
//!   that file is locked.
//! * [`locked_file`]: a file written to a temp name, locked, then renamed
//!   into place — so it is never seen unlocked while its writer lives (run
//!   markers). A guard file per folder ([`TEMP_GUARD`]) makes a temp file
//!   a killed writer left recognizable at once ([`stale_temp`]).
//! * [`SchoolLock`]: imports of one school wait for each other, so the
//!   second plans on the first's result.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

/// Whether the file at `path` is locked by a live process. A missing file
/// is not held. Opening a file to probe it never takes a lock away from
/// its holder: a successful probe is released at once.
pub fn is_held(path: &Path) -> io::Result<bool> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    };
    match file.try_lock() {
        Ok(()) => Ok(false),
        Err(TryLockError::WouldBlock) => Ok(true),
        Err(TryLockError::Error(e)) => Err(e),
    }
}

/// A file in each folder [`locked_file`] writes to. A writer holds it shared
/// from creating its temp file until that file is locked; [`stale_temp`]
/// holds it exclusively while it judges a temp file. So a temp file found
/// unlocked has no living writer, however young it is.
pub const TEMP_GUARD: &str = ".temp.guard";

fn temp_guard(dir: &Path, exclusive: bool) -> io::Result<File> {
    let f = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join(TEMP_GUARD))?;
    match exclusive {
        true => f.lock()?,
        false => f.lock_shared()?,
    }
    Ok(f)
}

/// Whether a temp file left by [`locked_file`] is garbage: its writer is
/// gone (nobody holds it, and nobody is between creating and locking it).
pub fn stale_temp(path: &Path) -> io::Result<bool> {
    if path.file_name().is_some_and(|n| n == TEMP_GUARD) {
        return Ok(false);
    }
    let _guard = temp_guard(path.parent().unwrap_or(Path::new(".")), true)?;
    Ok(!is_held(path)?)
}

/// Writes `contents` to `path` atomically (temp file in the same folder,
/// fsync, rename) with an exclusive lock taken before the rename: the
/// returned file holds it. Whoever sees `path` sees it complete and locked
/// for as long as the returned `File` is open; a temp file its writer left
/// (killed before the rename) is [`stale_temp`] at once.
pub fn locked_file(path: &Path, contents: &[u8]) -> io::Result<File> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{}.tmp", rand::random::<u32>()));
    let guard = temp_guard(dir, false)?;
    let mut f = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
    let locked = f.try_lock().map_err(|e| match e {
        TryLockError::WouldBlock => io::Error::other("a fresh file is locked by someone else"),
        TryLockError::Error(e) => e,
    });
    drop(guard);
    let written = locked
        .and_then(|()| f.write_all(contents))
        .and_then(|()| f.sync_all())
        .and_then(|()| fs::rename(&tmp, path));
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    Ok(f)
}

/// This process's owner identity (`p<pid>-<random>`): the PID is there for
/// people reading `ls`, the random part makes it unique across PID
/// namespaces and reuse. Ownership itself is the lock.
pub struct Owner {
    id: String,
    /// Per owners folder, the open locked file.
    held: Mutex<HashMap<PathBuf, File>>,
}

impl Owner {
    /// The one owner of this process.
    pub fn get() -> &'static Owner {
        static OWNER: OnceLock<Owner> = OnceLock::new();
        OWNER.get_or_init(|| Owner {
            id: format!("p{}-{:08x}", std::process::id(), rand::random::<u32>()),
            held: Mutex::new(HashMap::new()),
        })
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// Makes sure this process holds its lock in `owners` (created and
    /// locked on first use, kept until the process ends).
    pub fn hold(&self, owners: &Path) -> io::Result<()> {
        let mut held = self.held.lock().map_err(|_| io::Error::other("owner lock poisoned"))?;
        if held.contains_key(owners) {
            return Ok(());
        }
        crate::engine::paths::create_private_dir(owners)?;
        let file = locked_file(&owners.join(format!("{}.lock", self.id)), self.id.as_bytes())?;
        held.insert(owners.to_path_buf(), file);
        Ok(())
    }

    /// Whether `owner` (an id found in a claim's name) is a live process:
    /// this one, or one holding its lock file in `owners`.
    pub fn alive(&self, owners: &Path, owner: &str) -> io::Result<bool> {
        if owner == self.id {
            return Ok(true);
        }
        if !valid_owner(owner) {
            // Not an owner id at all (e.g. a PID from an older version).
            return Ok(false);
        }
        is_held(&owners.join(format!("{owner}.lock")))
    }

    /// Removes lock files of owners that are gone (nothing holds them), and
    /// temp files of lock files never renamed into place.
    pub fn sweep(&self, owners: &Path) -> io::Result<usize> {
        let entries = match fs::read_dir(owners) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(e),
        };
        let mut removed = 0;
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().to_string();
            let path = entry.path();
            if let Some(owner) = name.strip_suffix(".lock") {
                if owner != self.id && !is_held(&path)? {
                    let _ = fs::remove_file(&path);
                    removed += 1;
                }
            } else if name.starts_with('.') && name.ends_with(".tmp") && stale_temp(&path)? {
                let _ = fs::remove_file(&path);
                removed += 1;
            }
        }
        Ok(removed)
    }
}

fn valid_owner(owner: &str) -> bool {
    owner.len() <= 40 && owner.starts_with('p') && owner[1..].chars().all(|c| c.is_ascii_hexdigit() || c == '-')
}

/// Held while one school is imported: a second import of the same school
/// (in this or another process) waits for it, then plans on its result.
pub struct SchoolLock {
    _file: File,
}

impl SchoolLock {
    /// Locks `school` (case-insensitive, as school names are) in `locks`,
    /// waiting for whoever holds it; `waiting` is called once if it must.
    pub fn acquire(locks: &Path, school: &str, waiting: &mut dyn FnMut()) -> io::Result<SchoolLock> {
        crate::engine::paths::create_private_dir(locks)?;
        let name: String = school
            .to_lowercase()
            .chars()
            .map(|c| {
                if c.is_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let digest = xxhash_rust::xxh3::xxh3_64(school.to_lowercase().as_bytes());
        let path = locks.join(format!("import-{name}-{digest:016x}.lock"));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                waiting();
                file.lock()?;
            }
            Err(TryLockError::Error(e)) => return Err(e),
        }
        Ok(SchoolLock { _file: file })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_locked_file_is_held_until_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("marker");
        let f = locked_file(&path, b"123").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"123");
        assert!(is_held(&path).unwrap());
        drop(f);
        assert!(!is_held(&path).unwrap());
        assert!(!is_held(&dir.path().join("missing")).unwrap());
        // No temp file is left (the guard stays).
        let names: Vec<String> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
        assert!(names.contains(&TEMP_GUARD.to_string()));
    }

    /// Crash trials (issue 20) found a run marker's temp file left after a
    /// kill: it was judged stale only after a minute. Now at once, and a
    /// temp file whose writer lives is never judged stale.
    #[test]
    fn a_dead_writers_temp_file_is_stale_at_once_a_live_ones_never() {
        let dir = tempfile::tempdir().unwrap();
        let left = dir.path().join(".marker.1.tmp");
        fs::write(&left, b"12").unwrap();
        assert!(stale_temp(&left).unwrap(), "killed between create and rename");
        let live = dir.path().join(".marker.2.tmp");
        let f = File::create(&live).unwrap();
        f.try_lock().unwrap();
        assert!(!stale_temp(&live).unwrap(), "locked by its writer");
        drop(f);
        assert!(stale_temp(&live).unwrap());
        assert!(!stale_temp(&dir.path().join(TEMP_GUARD)).unwrap());
        // A writer between creating its temp file and locking it holds the
        // guard shared: the judge waits for it.
        let guard = temp_guard(dir.path(), false).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let judged = left.clone();
        let judge = std::thread::spawn(move || {
            let stale = stale_temp(&judged).unwrap();
            tx.send(()).unwrap();
            stale
        });
        assert!(
            rx.recv_timeout(std::time::Duration::from_millis(200)).is_err(),
            "waits for the writer"
        );
        drop(guard);
        assert!(judge.join().unwrap());
    }

    #[test]
    fn owners_are_alive_while_they_hold_their_lock() {
        let dir = tempfile::tempdir().unwrap();
        let me = Owner::get();
        me.hold(dir.path()).unwrap();
        assert!(me.alive(dir.path(), me.id()).unwrap());
        // A dead owner: its file exists, nobody holds it.
        fs::write(dir.path().join("p1-0000beef.lock"), "p1-0000beef").unwrap();
        assert!(!me.alive(dir.path(), "p1-0000beef").unwrap());
        // A PID from an older version's claim names.
        assert!(!me.alive(dir.path(), "1").unwrap());
        assert_eq!(me.sweep(dir.path()).unwrap(), 1);
        assert!(dir.path().join(format!("{}.lock", me.id())).exists());
    }

    #[test]
    fn school_locks_exclude_each_other_case_insensitively() {
        let dir = tempfile::tempdir().unwrap();
        let first = SchoolLock::acquire(dir.path(), "GS-Nord", &mut || {}).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let locks = dir.path().to_path_buf();
        let t = std::thread::spawn(move || {
            let mut waited = false;
            let second = SchoolLock::acquire(&locks, "gs-nord", &mut || waited = true).unwrap();
            tx.send(waited).unwrap();
            drop(second);
        });
        std::thread::sleep(std::time::Duration::from_millis(100));
        assert!(rx.try_recv().is_err(), "the second import did not wait");
        drop(first);
        assert!(rx.recv().unwrap());
        t.join().unwrap();
    }
}
