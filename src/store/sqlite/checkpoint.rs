//! Checkpoints off the writer's thread. By default SQLite copies the
//! write-ahead log back into the database file (a checkpoint) on the thread
//! that committed, and waits there for two fsyncs: a large import on a real
//! disk spent a fifth of its writer's time so. With a [`Checkpointer`]
//! attached, a commit only nudges a thread with its own connection, which
//! runs passive checkpoints (they never block a writer or a reader). When
//! the log still grows past the hard limit (the thread cannot keep up, or a
//! reader pins the log), the committing connection checkpoints itself, as
//! SQLite would: the log stays bounded either way.

use rusqlite::wal::CheckpointMode;
use rusqlite::{Connection, OpenFlags};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

/// Log frames (pages) after which the thread is nudged; SQLite's own
/// default is 1,000, the directory used 20,000 before.
pub const SOFT_FRAMES: i32 = 20_000;
/// Log frames after which the writer checkpoints itself (~160 MB of log
/// with 4 KiB pages). The thread has copied most of them by then, so this
/// costs the writer the rest and two fsyncs; it is also what lets SQLite
/// start the log from its beginning again, which it can only do when a
/// checkpoint finished between two commits.
pub const HARD_FRAMES: i32 = 2 * SOFT_FRAMES;

/// What the writer's hook and the thread share.
struct Shared {
    path: PathBuf,
    wake: Mutex<Wake>,
    cv: Condvar,
    thread: Mutex<Option<JoinHandle<()>>>,
    /// Passive checkpoints the thread ran.
    runs: AtomicU64,
}

#[derive(Default)]
struct Wake {
    due: bool,
    stop: bool,
}

/// Background checkpoints of one database file; stops (and waits for a
/// checkpoint under way) when dropped. A connection that goes on writing
/// after that checkpoints itself at the hard limit only.
pub struct Checkpointer {
    shared: Arc<Shared>,
}

impl Checkpointer {
    /// Takes over the checkpoints of `conn`, a connection in WAL mode to the
    /// file at `path`, with the default limits.
    pub fn attach(conn: &mut Connection, path: &Path) -> rusqlite::Result<Self> {
        Self::attach_with(conn, path, SOFT_FRAMES, HARD_FRAMES)
    }

    /// [`Self::attach`] with other limits (tests use small ones).
    pub fn attach_with(conn: &mut Connection, path: &Path, soft: i32, hard: i32) -> rusqlite::Result<Self> {
        let shared = Arc::new(Shared {
            path: path.to_path_buf(),
            wake: Mutex::new(Wake::default()),
            cv: Condvar::new(),
            thread: Mutex::new(None),
            runs: AtomicU64::new(0),
        });
        let hook = shared.clone();
        // Replaces SQLite's automatic checkpoints (they use the same hook).
        conn.wal_hook(Some(move |wal: &mut rusqlite::hooks::Wal, frames: i32| {
            if frames >= hard {
                // A checkpoint that fails or finds the log busy is tried
                // again at the next commit; the commit itself succeeded, so
                // no error may travel back to it.
                let _ = wal.checkpoint_v2(CheckpointMode::PASSIVE);
            } else if frames >= soft {
                hook.nudge();
            }
            Ok(())
        }))?;
        Ok(Checkpointer { shared })
    }

    /// Checkpoints the background thread ran so far.
    pub fn runs(&self) -> u64 {
        self.shared.runs.load(Ordering::Relaxed)
    }
}

impl Shared {
    /// Asks for a checkpoint; starts the thread on first use.
    fn nudge(self: &Arc<Self>) {
        if let Ok(mut w) = self.wake.lock() {
            if w.stop {
                return;
            }
            w.due = true;
        }
        self.cv.notify_one();
        let Ok(mut thread) = self.thread.lock() else { return };
        if thread.is_some() {
            return;
        }
        let shared = self.clone();
        match std::thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn(move || shared.run())
        {
            Ok(handle) => *thread = Some(handle),
            Err(e) => tracing::warn!(path = %self.path.display(), error = %e,
                "cannot start the checkpoint thread; the writer checkpoints at the hard limit"),
        }
    }

    fn run(&self) {
        let conn = match Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        ) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(path = %self.path.display(), error = %e,
                    "cannot open a connection for checkpoints; the writer checkpoints at the hard limit");
                return;
            }
        };
        // A connection finds the log only when it first reads the file; a
        // checkpoint before that does nothing and says it succeeded.
        if let Err(e) = conn.query_row("SELECT COUNT(*) FROM sqlite_master", [], |r| r.get::<_, i64>(0)) {
            tracing::warn!(path = %self.path.display(), error = %e,
                "cannot read the database for checkpoints; the writer checkpoints at the hard limit");
            return;
        }
        let mut warned = false;
        loop {
            {
                let Ok(mut w) = self.wake.lock() else { return };
                while !w.due && !w.stop {
                    w = match self.cv.wait(w) {
                        Ok(w) => w,
                        Err(_) => return,
                    };
                }
                if w.stop {
                    return;
                }
                w.due = false;
            }
            match conn.wal_checkpoint_v2(None::<&str>, CheckpointMode::PASSIVE) {
                Ok(_) => {
                    self.runs.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy) => {}
                Err(e) if !warned => {
                    warned = true;
                    tracing::warn!(path = %self.path.display(), error = %e, "a background checkpoint failed");
                }
                Err(_) => {}
            }
        }
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        if let Ok(mut w) = self.shared.wake.lock() {
            w.stop = true;
        }
        self.shared.cv.notify_all();
        let handle = self.shared.thread.lock().ok().and_then(|mut t| t.take());
        if let Some(h) = handle {
            let _ = h.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(path: &Path) -> Connection {
        let conn = Connection::open(path).unwrap();
        conn.pragma_update(None, "journal_mode", "WAL").unwrap();
        conn.pragma_update(None, "synchronous", "NORMAL").unwrap();
        conn.execute_batch("CREATE TABLE IF NOT EXISTS t (v BLOB)").unwrap();
        conn
    }

    /// Commits of ~10 pages each.
    fn write(conn: &Connection, commits: usize) {
        for _ in 0..commits {
            conn.execute("INSERT INTO t (v) VALUES (zeroblob(40000))", []).unwrap();
        }
    }

    fn size(path: &Path) -> u64 {
        std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
    }

    #[test]
    fn the_thread_copies_the_log_into_the_database_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.sqlite");
        let mut conn = open(&path);
        let cp = Checkpointer::attach_with(&mut conn, &path, 50, 1_000_000).unwrap();
        let before = size(&path);
        write(&conn, 40);
        // The thread runs on its own; give it a moment.
        for _ in 0..200 {
            if cp.runs() > 0 && size(&path) > before + 100_000 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert!(cp.runs() > 0, "no background checkpoint ran");
        assert!(
            size(&path) > before + 100_000,
            "the database file did not grow: {before} -> {}, runs {}, wal {}",
            size(&path),
            cp.runs(),
            size(&dir.path().join("db.sqlite-wal"))
        );
        drop(cp);
        let n: i64 = conn.query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0)).unwrap();
        assert_eq!(n, 40);
    }

    #[test]
    fn the_log_stays_bounded_when_the_thread_is_gone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.sqlite");
        let mut conn = open(&path);
        // Soft above hard: the thread is never nudged, only the writer's
        // own checkpoint at the hard limit keeps the log short.
        let _cp = Checkpointer::attach_with(&mut conn, &path, i32::MAX, 100).unwrap();
        write(&conn, 200);
        let wal = dir.path().join("db.sqlite-wal");
        // 200 commits of ~10 pages would be ~8 MB of log without checkpoints.
        assert!(size(&wal) < 2_000_000, "log of {} bytes", size(&wal));
        // And without the hook (SQLite's checkpoints off) it would not be.
        let other = dir.path().join("plain.sqlite");
        let plain = open(&other);
        plain.pragma_update(None, "wal_autocheckpoint", 0).unwrap();
        write(&plain, 200);
        assert!(size(&dir.path().join("plain.sqlite-wal")) > 4_000_000);
    }
}
