//! Moving a model between Hugging Face cache folders ("tiered storage": the main cache on a fast disk, a library
//! folder on a large slow one) without ever holding less than one whole copy:
//!
//! 1. the repo's folder is copied into a hidden staging folder beside its new place (`.models--org--name.moving`,
//!    which no scan lists): each blob copied, hashed against its name (sha256, or git's sha1 for small files) and
//!    synced, then its refs, snapshot links and the app's records;
//! 2. the staging folder is renamed into place (the commit point: the new copy is whole the moment it has its name);
//! 3. the old folder is removed.
//!
//! A crash before 2 leaves the old copy whole and a staging folder the next move resumes from (blobs already
//! copied and verified are kept); a crash between 2 and 3 leaves two whole copies, and the next move of the model
//! only removes the old one.

use crate::cache::{RepoId, RepoKind};
use crate::{ErrorCode, ErrorPayload};
use serde::{Deserialize, Serialize};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use ts_rs::TS;

/// What a move did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MoveReport {
    pub id: String,
    pub from: String,
    pub to: String,
    /// Blobs copied (and hashed) now; those a resumed move found copied already are not counted.
    pub blobs_copied: u32,
    pub bytes_copied: u64,
}

fn io_err(what: &str, path: &Path, e: io::Error) -> ErrorPayload {
    ErrorPayload::new(ErrorCode::of_io(&e), format!("{what} {} failed: {e}", path.display()))
}

/// Moves `repo`'s folder from the cache `from` to the cache `to`.
pub fn move_repo(repo: &RepoId, from: &Path, to: &Path) -> Result<MoveReport, ErrorPayload> {
    let name = repo.folder_name(RepoKind::Model);
    let (source, target) = (from.join(&name), to.join(&name));
    let staging = to.join(format!(".{name}.moving"));
    let mut report = MoveReport {
        id: repo.to_string(),
        from: source.display().to_string(),
        to: target.display().to_string(),
        blobs_copied: 0,
        bytes_copied: 0,
    };
    if target.exists() {
        // A move that stopped after its commit point: the new copy is whole, the old one goes.
        if source.exists() && !staging.exists() {
            fs::remove_dir_all(&source).map_err(|e| io_err("removing", &source, e))?;
            return Ok(report);
        }
        return Err(ErrorPayload::new(ErrorCode::Conflict, format!("{} is there already", target.display())));
    }
    if !source.is_dir() {
        return Err(ErrorPayload::new(ErrorCode::NotFound, format!("{repo} is not in {}", from.display())));
    }
    fs::create_dir_all(staging.join("blobs")).map_err(|e| io_err("creating", &staging, e))?;
    // Blobs: copied beside their name, hashed against it, synced, then named.
    for entry in fs::read_dir(source.join("blobs")).map_err(|e| io_err("reading", &source, e))?.flatten() {
        let blob = entry.file_name().to_string_lossy().to_string();
        let hashed = blob.len() == 64 || blob.len() == 40;
        if !hashed || !blob.chars().all(|c| c.is_ascii_hexdigit()) || !entry.file_type().is_ok_and(|t| t.is_file()) {
            continue; // partial downloads and their records stay behind
        }
        let done = staging.join("blobs").join(&blob);
        if done.exists() {
            continue;
        }
        let temp = staging.join("blobs").join(format!("{blob}.copying"));
        let size = fs::copy(entry.path(), &temp).map_err(|e| io_err("copying", &entry.path(), e))?;
        let got = super::verify::hash_file(&temp, &blob, size, |_| {}).map_err(|e| io_err("hashing", &temp, e))?;
        if got != blob {
            let _ = fs::remove_file(&temp);
            return Err(ErrorPayload::new(
                ErrorCode::ChecksumMismatch,
                format!(
                    "{} of {repo} hashes to {got}, not its name: run mm verify {repo} --repair first",
                    entry.path().display()
                ),
            ));
        }
        fs::File::open(&temp).and_then(|f| f.sync_all()).map_err(|e| io_err("syncing", &temp, e))?;
        fs::rename(&temp, &done).map_err(|e| io_err("naming", &done, e))?;
        report.blobs_copied += 1;
        report.bytes_copied += size;
    }
    crate::disk::sync_dir(&staging.join("blobs")).map_err(|e| io_err("syncing", &staging, e))?;
    // Refs, snapshots (their links, relative, as the cache keeps them) and the app's records.
    copy_tree(&source, &staging, &source).map_err(|e| io_err("copying", &source, e))?;
    crate::disk::sync_dir(&staging).map_err(|e| io_err("syncing", &staging, e))?;
    fs::rename(&staging, &target).map_err(|e| io_err("placing", &target, e))?;
    crate::disk::sync_dir(to).map_err(|e| io_err("syncing", to, e))?;
    fs::remove_dir_all(&source).map_err(|e| io_err("removing", &source, e))?;
    Ok(report)
}

/// Copies everything under `dir` (of the repo folder `root`) but its blobs: folders, small files, and links as
/// links.
fn copy_tree(dir: &Path, into: &Path, root: &Path) -> io::Result<()> {
    for entry in fs::read_dir(dir)?.flatten() {
        let path = entry.path();
        if path == root.join("blobs") {
            continue;
        }
        let rel: PathBuf = path.strip_prefix(root).map_err(io::Error::other)?.to_path_buf();
        let dest = into.join(&rel);
        let kind = entry.file_type()?;
        if kind.is_symlink() {
            if !dest.exists() {
                std::os::unix::fs::symlink(fs::read_link(&path)?, &dest)?;
            }
        } else if kind.is_dir() {
            fs::create_dir_all(&dest)?;
            copy_tree(&path, into, root)?;
        } else if kind.is_file() {
            fs::copy(&path, &dest)?;
        }
    }
    Ok(())
}
