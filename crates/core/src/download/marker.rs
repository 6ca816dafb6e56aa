//! Which process is downloading a repo, so that `mm cancel` in another terminal can stop it:
//! `{cache}/.locks/model-manager/{repo folder}.pid` holds the pid while a download of that repo runs.

use crate::cache::{layout::RepoKind, lock, RepoId};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

pub fn marker_path(cache_dir: &Path, repo: &RepoId) -> PathBuf {
    cache_dir.join(".locks").join("model-manager").join(format!("{}.pid", repo.folder_name(RepoKind::Model)))
}

/// Removes the marker when dropped.
pub struct MarkerGuard(PathBuf);

impl Drop for MarkerGuard {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

/// Records that this process downloads `repo`.
pub fn mark(cache_dir: &Path, repo: &RepoId) -> io::Result<MarkerGuard> {
    let path = marker_path(cache_dir, repo);
    fs::create_dir_all(path.parent().unwrap())?;
    fs::write(&path, std::process::id().to_string())?;
    Ok(MarkerGuard(path))
}

/// The pid of a live process downloading `repo`, if any.
pub fn running(cache_dir: &Path, repo: &RepoId) -> Option<u32> {
    let pid: u32 = fs::read_to_string(marker_path(cache_dir, repo)).ok()?.trim().parse().ok()?;
    // SAFETY: signal 0 only checks that the process exists.
    (pid != std::process::id() && unsafe { libc::kill(pid as libc::pid_t, 0) } == 0).then_some(pid)
}

/// Asks the process downloading `repo` to cancel (SIGTERM), and waits up to `wait` for it to let go.
pub async fn stop(cache_dir: &Path, repo: &RepoId, wait: std::time::Duration) -> Option<u32> {
    let pid = running(cache_dir, repo)?;
    // SAFETY: sending SIGTERM to a pid read from our own marker.
    unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) };
    let deadline = std::time::Instant::now() + wait;
    while running(cache_dir, repo).is_some() && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    Some(pid)
}

/// Deletes the `.incomplete` files of `repo` that no one is writing; returns the bytes freed.
pub fn discard_partials(cache_dir: &Path, repo: &RepoId) -> io::Result<u64> {
    let folder = repo.folder_name(RepoKind::Model);
    let blobs = cache_dir.join(&folder).join("blobs");
    let mut freed = 0;
    let entries = match fs::read_dir(&blobs) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        let Some(blob) = name.strip_suffix(".incomplete") else { continue };
        if let Some(_lock) = lock::try_lock(cache_dir, &folder, blob)? {
            let len = entry.metadata().map(|m| m.len()).unwrap_or(0);
            fs::remove_file(entry.path())?;
            freed += len;
        }
    }
    Ok(freed)
}
