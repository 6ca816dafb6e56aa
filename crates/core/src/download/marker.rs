//! Which processes are downloading a repo, so that `mm cancel` in another terminal can stop them. Each download
//! holds an `flock` on a marker of its own, `{cache}/.locks/model-manager/{repo folder}.{pid}-{n}.pid`, for as long
//! as it runs. A marker whose lock is free was left by a process that died (its pid may belong to another
//! program by now): it is removed, never signalled. Two downloads of one repo have two markers.

use crate::cache::{layout::RepoKind, lock, RepoId};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

fn markers_dir(cache_dir: &Path) -> PathBuf {
    cache_dir.join(".locks").join("model-manager")
}

/// Held while this process downloads the repo: the marker's lock; the marker is removed when dropped.
pub struct MarkerGuard {
    path: PathBuf,
    _lock: lock::BlobLock,
}

impl Drop for MarkerGuard {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

/// Records that this process downloads `repo`, until the guard is dropped.
pub fn mark(cache_dir: &Path, repo: &RepoId) -> io::Result<MarkerGuard> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let name = format!(
        "{}.{}-{}.pid",
        repo.folder_name(RepoKind::Model),
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    let path = markers_dir(cache_dir).join(name);
    // Locked under a name no one reads, then renamed into view: `running` never sees it unlocked.
    let temp = crate::disk::temp_beside(&path);
    let lock = lock::try_lock_at(&temp)?.ok_or_else(|| io::Error::other("a fresh marker is locked"))?;
    std::fs::rename(&temp, &path)?;
    Ok(MarkerGuard { path, _lock: lock })
}

/// The pids of the live processes (other than this one) downloading `repo`: those that hold their marker's
/// lock. Markers that dead processes left are removed on the way.
pub fn running(cache_dir: &Path, repo: &RepoId) -> Vec<u32> {
    let mut pids: Vec<u32> = held(cache_dir, repo).into_iter().map(|(pid, _)| pid).collect();
    pids.sort_unstable();
    pids.dedup();
    pids
}

/// One scan of the markers at a time in this process: a lock is per open file, so a scan that briefly locks a
/// stale marker (to remove it) would make another scan take it for held, and signal whatever process has that pid
/// now.
static SCANNING: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// The live markers of `repo`: each pid with its marker's path.
fn held(cache_dir: &Path, repo: &RepoId) -> Vec<(u32, std::path::PathBuf)> {
    let _one = SCANNING.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let prefix = format!("{}.", repo.folder_name(RepoKind::Model));
    let Ok(entries) = fs::read_dir(markers_dir(cache_dir)) else { return Vec::new() };
    let mut pids = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        // `{folder}.{pid}-{n}.pid`, read from the right: another repo whose name starts with this one's
        // (`Qwen2` and `Qwen2.5-7B`) has another folder before the pid, and is not this repo's.
        let Some(pid) = name
            .strip_suffix(".pid")
            .and_then(|rest| rest.rsplit_once('-'))
            .filter(|(_, n)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|(rest, _)| rest.rsplit_once('.'))
            .filter(|(folder, pid)| {
                folder.len() + 1 == prefix.len() && !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit())
            })
            .and_then(|(_, pid)| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if !name.starts_with(&prefix) {
            continue;
        }
        match lock::try_lock_at(&entry.path()) {
            // Free: its process is gone.
            Ok(Some(_stale)) => {
                let _ = fs::remove_file(entry.path());
            }
            Ok(None) if pid != std::process::id() => pids.push((pid, entry.path())),
            _ => {}
        }
    }
    pids
}

/// Whether `pid` is a process of this user that has `marker` open, as the kernel says (`/proc/{pid}/fd`): what
/// makes a pid read from a file name safe to signal. A name that says 0, 1 or more than a pid can be, a marker
/// planted by another user, or a process that only reuses a dead download's pid, is none.
fn holds(pid: u32, marker: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    // SAFETY: getuid cannot fail.
    let uid = unsafe { libc::getuid() };
    if pid <= 1 || pid > i32::MAX as u32 {
        return false;
    }
    let ours = |p: &Path| fs::symlink_metadata(p).is_ok_and(|m| m.uid() == uid);
    let Ok(canonical) = fs::canonicalize(marker) else { return false };
    let marker_is_ours = fs::symlink_metadata(marker).is_ok_and(|m| m.is_file() && m.uid() == uid);
    let proc_dir = std::path::PathBuf::from(format!("/proc/{pid}"));
    if !marker_is_ours || !ours(&proc_dir) {
        return false;
    }
    let Ok(fds) = fs::read_dir(proc_dir.join("fd")) else { return false };
    fds.flatten().any(|fd| fs::read_link(fd.path()).is_ok_and(|target| target == canonical))
}

/// Asks the processes downloading `repo` to cancel (SIGTERM), and waits up to `wait` for them to let go.
/// Returns the pids that were asked.
pub async fn stop(cache_dir: &Path, repo: &RepoId, wait: std::time::Duration) -> Vec<u32> {
    let mut pids = Vec::new();
    for (pid, marker) in held(cache_dir, repo) {
        if !holds(pid, &marker) {
            tracing::warn!(pid, marker = %marker.display(), "a marker's pid does not hold it: not signalled");
            continue;
        }
        // SAFETY: a signal to a process of this user that has its marker open and locked: the download.
        unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) };
        pids.push(pid);
    }
    pids.sort_unstable();
    pids.dedup();
    let deadline = std::time::Instant::now() + wait;
    while !pids.is_empty() && !running(cache_dir, repo).is_empty() && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    pids
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_marker_left_by_a_dead_process_is_never_taken_for_a_running_download() {
        let tmp = tempfile::tempdir().unwrap();
        let repo = RepoId::parse("acme/m").unwrap();
        // A killed download's marker, naming a pid that now belongs to someone else (here: pid 1).
        let stale = markers_dir(tmp.path()).join("models--acme--m.1-0.pid");
        fs::create_dir_all(stale.parent().unwrap()).unwrap();
        fs::write(&stale, b"").unwrap();
        assert!(running(tmp.path(), &repo).is_empty(), "no one holds its lock");
        assert!(!stale.exists(), "it is swept");
    }

    #[test]
    fn a_repo_whose_name_starts_with_another_ones_is_not_that_one() {
        let tmp = tempfile::tempdir().unwrap();
        let long = RepoId::parse("Qwen/Qwen2.5-7B-Instruct").unwrap();
        let _running = mark(tmp.path(), &long).unwrap();
        assert!(running(tmp.path(), &RepoId::parse("Qwen/Qwen2").unwrap()).is_empty());
        assert!(running(tmp.path(), &RepoId::parse("Qwen/Qwen2.5-7B").unwrap()).is_empty());
    }

    #[test]
    fn two_downloads_of_one_repo_keep_two_markers() {
        let tmp = tempfile::tempdir().unwrap();
        let repo = RepoId::parse("acme/m").unwrap();
        let (a, b) = (mark(tmp.path(), &repo).unwrap(), mark(tmp.path(), &repo).unwrap());
        assert_ne!(a.path, b.path);
        drop(a);
        assert!(b.path.exists(), "the second run's marker outlives the first");
        drop(b);
        assert_eq!(fs::read_dir(markers_dir(tmp.path())).unwrap().count(), 0);
    }

    #[tokio::test]
    async fn a_held_marker_that_names_a_process_which_does_not_hold_it_is_not_signalled() {
        let tmp = tempfile::tempdir().unwrap();
        let repo = RepoId::parse("acme/m").unwrap();
        let mut bystander = std::process::Command::new("sleep").arg("30").spawn().unwrap();
        for pid in [bystander.id(), 0, u32::MAX] {
            // Planted and held by someone, in the name of a process that is not a download.
            let planted = markers_dir(tmp.path()).join(format!("models--acme--m.{pid}-0.pid"));
            fs::create_dir_all(planted.parent().unwrap()).unwrap();
            fs::write(&planted, b"").unwrap();
            let _held = lock::try_lock_at(&planted).unwrap().unwrap();
            assert_eq!(running(tmp.path(), &repo), [pid], "it is held");
            let asked = stop(tmp.path(), &repo, std::time::Duration::from_millis(50)).await;
            assert!(asked.is_empty(), "pid {pid} was signalled");
        }
        assert!(bystander.try_wait().unwrap().is_none(), "the bystander still runs");
        bystander.kill().unwrap();
        bystander.wait().unwrap();
    }
}
