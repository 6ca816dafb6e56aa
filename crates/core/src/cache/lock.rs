//! Exclusive locks on blobs while they are written, at the path `huggingface_hub` uses
//! (`{cache}/.locks/{repo folder}/{blob}.lock`, an `flock`), so this app, a second `mm` and `huggingface_hub`
//! never write the same blob at once.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Held while a blob is written; released when dropped.
pub struct BlobLock {
    _file: File,
}

pub fn lock_path(cache_dir: &Path, repo_folder: &str, blob: &str) -> PathBuf {
    cache_dir.join(".locks").join(repo_folder).join(format!("{blob}.lock"))
}

/// Takes the lock if it is free.
pub fn try_lock(cache_dir: &Path, repo_folder: &str, blob: &str) -> io::Result<Option<BlobLock>> {
    try_lock_at(&lock_path(cache_dir, repo_folder, blob))
}

/// Whether any blob of the repo folder `repo_folder` is being written right now (by this app in any process, or
/// by `huggingface_hub`): one of its locks is held.
pub fn any_held(cache_dir: &Path, repo_folder: &std::ffi::OsStr) -> bool {
    let Ok(entries) = fs::read_dir(cache_dir.join(".locks").join(repo_folder)) else { return false };
    entries
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".lock"))
        .any(|e| matches!(try_lock_at(&e.path()), Ok(None)))
}

/// Takes the `flock` on the file at `path` (created if missing) if it is free.
pub fn try_lock_at(path: &Path) -> io::Result<Option<BlobLock>> {
    fs::create_dir_all(path.parent().unwrap())?;
    let file = OpenOptions::new().create(true).truncate(false).write(true).open(path)?;
    // SAFETY: flock on a file descriptor we own.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
        return Ok(Some(BlobLock { _file: file }));
    }
    let err = io::Error::last_os_error();
    if err.raw_os_error() == Some(libc::EWOULDBLOCK) {
        Ok(None)
    } else {
        Err(err)
    }
}

/// Waits for the lock, polling, until `cancelled` says to stop (then `Ok(None)`).
pub async fn lock(
    cache_dir: &Path,
    repo_folder: &str,
    blob: &str,
    cancelled: impl Fn() -> bool,
) -> io::Result<Option<BlobLock>> {
    lock_at(&lock_path(cache_dir, repo_folder, blob), cancelled).await
}

/// Waits for the `flock` on the file at `path`, polling, until `cancelled` says to stop (then `Ok(None)`).
pub async fn lock_at(path: &Path, cancelled: impl Fn() -> bool) -> io::Result<Option<BlobLock>> {
    loop {
        if let Some(lock) = try_lock_at(path)? {
            return Ok(Some(lock));
        }
        if cancelled() {
            return Ok(None);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits, blocking the thread, for the `flock` on the file at `path`: for a short read-modify-write of a small
/// file that two processes may change at once.
pub fn lock_file_blocking(path: &Path) -> io::Result<BlobLock> {
    fs::create_dir_all(path.parent().unwrap())?;
    let file = OpenOptions::new().create(true).truncate(false).write(true).open(path)?;
    // SAFETY: flock on a file descriptor we own; blocks until the other holder lets go.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(BlobLock { _file: file })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_lock_is_not_taken_twice_and_is_freed_on_drop() {
        let tmp = tempfile::tempdir().unwrap();
        let first = try_lock(tmp.path(), "models--a--b", "abc").unwrap().expect("free");
        assert!(try_lock(tmp.path(), "models--a--b", "abc").unwrap().is_none());
        assert!(try_lock(tmp.path(), "models--a--b", "other").unwrap().is_some());
        drop(first);
        assert!(try_lock(tmp.path(), "models--a--b", "abc").unwrap().is_some());
        assert!(lock_path(tmp.path(), "models--a--b", "abc").ends_with(".locks/models--a--b/abc.lock"));
    }
}
