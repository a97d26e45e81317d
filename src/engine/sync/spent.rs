//! Recycled item files: `queues/out/<authority>/.spent/`.
//!
//! A sent item's claimed file is moved here instead of removed, and the
//! next enqueue takes one back (rename, overwrite in place) instead of
//! creating a file.
//! On ext4, creating a file searches the inode bitmap past recently deleted
//! inodes and, mounted with `discard`, removing one waits for its freed
//! block to be discarded: each costs about five renames (RELIABILITY.md,
//! "Recycled item files"). What a spent file holds is garbage that nothing
//! reads; a spent file is never an item.
//!
//! The pool holds at most as many files as the queue held at its peak (each
//! is a sent item's file); the daemon gives back what exceeds [`KEEP`] a
//! little at a time, every 30 s ([`Spent::trim`]); with less than
//! [`MIN_FREE_BYTES`] free, sent files are removed instead of kept; and when
//! a write finds the disk full, the pool is emptied first.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// Spent files a queue keeps for the next enqueues (about 4 KiB each).
pub const KEEP: usize = 10_000;

/// Below this much free space on the queue's file system, sent items'
/// files are removed rather than kept.
pub const MIN_FREE_BYTES: u64 = 256 << 20;

/// The pool of one queue.
#[derive(Clone, Debug)]
pub struct Spent {
    dir: PathBuf,
}

/// Whether a name in the pool is one this module gave (16 hex digits).
fn is_spent(name: &str) -> bool {
    name.len() == 16 && name.bytes().all(|b| b.is_ascii_hexdigit())
}

impl Spent {
    /// The pool below a queue's root (the folder is made on first use).
    pub fn new(queue_root: &Path) -> Self {
        Spent {
            dir: queue_root.join(".spent"),
        }
    }

    /// Whether the file system has room to keep sent files.
    pub fn has_room(&self) -> bool {
        crate::store::space::free_bytes(&self.dir).is_some_and(|free| free >= MIN_FREE_BYTES)
    }

    /// Moves a sent item's file into the pool. A file already gone is fine
    /// (another process settled it); if the move fails otherwise, the file
    /// is removed as before.
    pub fn spend(&self, path: &Path) -> io::Result<()> {
        let dst = self.dir.join(format!("{:016x}", rand::random::<u64>()));
        match crate::engine::paths::in_private_dir(&self.dir, || fs::rename(path, &dst)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(_) => match fs::remove_file(path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
                _ => Ok(()),
            },
        }
    }

    /// Up to `n` spent files to take back. Reading stops after `n` names,
    /// so a large pool costs no more than a small one. Another process may
    /// take the same file first: the caller's rename then fails, and it
    /// creates a file instead.
    pub fn candidates(&self, n: usize) -> Vec<PathBuf> {
        if n == 0 {
            return Vec::new();
        }
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        entries
            .flatten()
            .filter(|e| e.file_name().to_str().is_some_and(is_spent))
            .map(|e| e.path())
            .take(n)
            .collect()
    }

    /// Every file in the pool.
    pub fn files(&self) -> Vec<PathBuf> {
        self.candidates(usize::MAX)
    }

    /// Removes at most `at_most` files beyond the first `keep`; returns how
    /// many went. `remove` does the removing (in parallel for many).
    pub fn trim(
        &self,
        keep: usize,
        at_most: usize,
        remove: impl FnOnce(&[PathBuf]) -> io::Result<()>,
    ) -> io::Result<u64> {
        let files = self.candidates(keep.saturating_add(at_most));
        let extra = files.get(keep..).unwrap_or_default();
        if extra.is_empty() {
            return Ok(0);
        }
        remove(extra)?;
        Ok(extra.len() as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spent_file_is_taken_back_once_and_the_pool_trims_beyond_keep() {
        let tmp = tempfile::tempdir().unwrap();
        let pool = Spent::new(tmp.path());
        assert!(pool.candidates(4).is_empty(), "no folder yet: nothing to take");
        for i in 0..5 {
            let f = tmp.path().join(format!("p1~item{i}.json"));
            fs::write(&f, b"{}").unwrap();
            pool.spend(&f).unwrap();
            assert!(!f.exists());
        }
        // A file another process already settled is not an error.
        pool.spend(&tmp.path().join("p1~gone.json")).unwrap();
        assert!(!is_spent("p1~1-user-x.json") && !is_spent("00000000000000fg") && is_spent("00000000000000ff"));
        assert_eq!(pool.files().len(), 5);
        assert_eq!(pool.candidates(2).len(), 2);
        // Something that is not a spent file is never taken.
        fs::write(pool.dir.join("notes.txt"), b"x").unwrap();
        assert_eq!(pool.files().len(), 5);
        let trimmed = pool
            .trim(2, 10, |paths| paths.iter().try_for_each(fs::remove_file))
            .unwrap();
        assert_eq!(trimmed, 3);
        assert_eq!(pool.files().len(), 2);
        let trimmed = pool
            .trim(0, 1, |paths| paths.iter().try_for_each(fs::remove_file))
            .unwrap();
        assert_eq!(trimmed, 1, "at most at_most per call");
        assert_eq!(pool.files().len(), 1);
        assert!(pool.dir.join("notes.txt").exists());
    }
}
