//! Free space on a file system, for disk-full messages: every "no space
//! left" error names the file and how much space is free where it lives.

use std::path::Path;

/// Bytes free for unprivileged writers on the file system holding `path`
/// (or its nearest existing ancestor).
#[allow(unsafe_code)] // reviewed: statvfs into a zeroed struct we own
pub fn free_bytes(path: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let mut p = Some(path);
    while let Some(cur) = p {
        if cur.exists() {
            let c = std::ffi::CString::new(cur.as_os_str().as_bytes()).ok()?;
            let mut st = std::mem::MaybeUninit::<libc::statvfs>::zeroed();
            // SAFETY: `c` is a valid NUL-terminated path and `st` points to
            // writable memory of the right size; statvfs only writes it.
            let rc = unsafe { libc::statvfs(c.as_ptr(), st.as_mut_ptr()) };
            if rc != 0 {
                return None;
            }
            // SAFETY: statvfs returned 0, so it filled the struct.
            let st = unsafe { st.assume_init() };
            #[allow(clippy::unnecessary_cast)] // c_ulong is u32 on some targets
            return Some(st.f_bavail as u64 * st.f_frsize as u64);
        }
        p = cur.parent();
    }
    None
}

/// `"1.5 MiB free on the file system of PATH"`, for messages.
pub fn describe_free(path: &Path) -> String {
    match free_bytes(path) {
        Some(b) => format!("{} free on the file system of {}", human(b), path.display()),
        None => format!("free space unknown on the file system of {}", path.display()),
    }
}

pub fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["bytes", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} bytes")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// Whether an I/O error is "no space left" (or over quota).
pub fn is_full(e: &std::io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENOSPC) | Some(libc::EDQUOT)) || e.kind() == std::io::ErrorKind::StorageFull
}

/// The error, with the free space appended when it is a full disk.
pub fn explain(path: &Path, e: std::io::Error) -> std::io::Error {
    if is_full(&e) {
        std::io::Error::new(e.kind(), format!("{e}; {}", describe_free(path)))
    } else {
        e
    }
}

/// Whether a SQLite error is a full disk (SQLITE_FULL, or an I/O error
/// with ENOSPC underneath).
pub fn sqlite_full(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::DiskFull)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_space_is_found_for_missing_paths_too() {
        let dir = tempfile::tempdir().unwrap();
        assert!(free_bytes(&dir.path().join("not/yet/there")).is_some());
        assert!(describe_free(dir.path()).contains("free on the file system of"));
        assert_eq!(human(512), "512 bytes");
        assert_eq!(human(1536), "1.5 KiB");
        let full = std::io::Error::from_raw_os_error(libc::ENOSPC);
        let e = explain(dir.path(), full);
        assert!(e.to_string().contains("free on the file system of"));
    }
}
