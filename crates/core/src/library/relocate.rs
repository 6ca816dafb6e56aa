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

/// Moves `repo`'s folder from the cache `from` to the cache `to`, leaving `keep_free` bytes free there.
pub fn move_repo(repo: &RepoId, from: &Path, to: &Path, keep_free: u64) -> Result<MoveReport, ErrorPayload> {
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
    let marker_of = |dir: &Path| dir.join(".model-manager").join("moved-from");
    if target.exists() {
        // A move that stopped after its commit point: the new copy says it came from here, and the old copy goes.
        let committed = fs::read_to_string(marker_of(&target)).is_ok_and(|from| Path::new(from.trim()) == source);
        if committed {
            if source.exists() {
                fs::remove_dir_all(&source).map_err(|e| io_err("removing", &source, e))?;
            }
            let _ = fs::remove_file(marker_of(&target));
            return Ok(report);
        }
        return Err(ErrorPayload::new(
            ErrorCode::Conflict,
            format!("{} is there already: {repo} is in both folders; remove one copy first", target.display()),
        ));
    }
    if !source.is_dir() {
        return Err(ErrorPayload::new(ErrorCode::NotFound, format!("{repo} is not in {}", from.display())));
    }
    // A staging folder left by a move that stopped is resumed only if it is ours: a plain folder of this user.
    match fs::symlink_metadata(&staging) {
        Ok(meta) => {
            use std::os::unix::fs::MetadataExt as _;
            if !meta.is_dir() || meta.uid() != unsafe { libc::geteuid() } {
                return Err(ErrorPayload::new(
                    ErrorCode::Permission,
                    format!("{} is not a folder of this user's: remove it, then move again", staging.display()),
                ));
            }
            // All but the blobs is written again.
            for entry in fs::read_dir(&staging).map_err(|e| io_err("reading", &staging, e))?.flatten() {
                if entry.file_name() != "blobs" {
                    let path = entry.path();
                    let gone = if entry.file_type().is_ok_and(|t| t.is_dir()) {
                        fs::remove_dir_all(&path)
                    } else {
                        fs::remove_file(&path)
                    };
                    gone.map_err(|e| io_err("clearing", &path, e))?;
                }
            }
        }
        Err(_) => {
            use std::os::unix::fs::DirBuilderExt as _;
            fs::DirBuilder::new().mode(0o700).create(&staging).map_err(|e| io_err("creating", &staging, e))?;
        }
    }
    let staged_blobs = staging.join("blobs");
    match fs::symlink_metadata(&staged_blobs) {
        Ok(meta) if !meta.is_dir() => {
            return Err(ErrorPayload::new(ErrorCode::Permission, format!("{} is not a folder", staged_blobs.display())))
        }
        Ok(_) => {}
        Err(_) => fs::create_dir(&staged_blobs).map_err(|e| io_err("creating", &staged_blobs, e))?,
    }
    // Room for what is still to copy, beside the floor the settings keep.
    let to_copy: u64 = fs::read_dir(source.join("blobs"))
        .map_err(|e| io_err("reading", &source, e))?
        .flatten()
        .filter(|e| !staged_blobs.join(e.file_name()).exists())
        .filter_map(|e| e.metadata().ok().filter(|m| m.is_file()).map(|m| m.len()))
        .sum();
    let free = crate::disk::free_space(to).map_err(|e| io_err("reading the free space of", to, e))?;
    if to_copy.saturating_add(keep_free) > free {
        return Err(ErrorPayload::new(
            ErrorCode::InsufficientSpace,
            format!(
                "moving {repo} needs {} in {} and it has {} free{}",
                crate::format::bytes(to_copy),
                to.display(),
                crate::format::bytes(free),
                if keep_free > 0 {
                    format!(" (keeping {} free)", crate::format::bytes(keep_free))
                } else {
                    String::new()
                }
            ),
        ));
    }
    // Blobs: copied beside their name, hashed against it, synced, then named; one already staged is hashed again.
    for entry in fs::read_dir(source.join("blobs")).map_err(|e| io_err("reading", &source, e))?.flatten() {
        let blob = entry.file_name().to_string_lossy().to_string();
        let hashed = blob.len() == 64 || blob.len() == 40;
        if !hashed || !blob.chars().all(|c| c.is_ascii_hexdigit()) || !entry.file_type().is_ok_and(|t| t.is_file()) {
            continue; // partial downloads and their records stay behind
        }
        let done = staged_blobs.join(&blob);
        if let Ok(meta) = fs::symlink_metadata(&done) {
            let size = meta.len();
            let ok =
                meta.is_file() && super::verify::hash_file(&done, &blob, size, |_| {}).is_ok_and(|got| got == blob);
            if ok {
                continue;
            }
            fs::remove_file(&done).map_err(|e| io_err("removing", &done, e))?;
        }
        let temp = staged_blobs.join(format!("{blob}.copying"));
        let _ = fs::remove_file(&temp);
        let copied = copy_file(&entry.path(), &temp);
        let size = match copied {
            Ok(size) => size,
            Err(e) => {
                let _ = fs::remove_file(&temp);
                return Err(io_err("copying", &entry.path(), e));
            }
        };
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
        fs::rename(&temp, &done).map_err(|e| io_err("naming", &done, e))?;
        report.blobs_copied += 1;
        report.bytes_copied += size;
    }
    crate::disk::sync_dir(&staging.join("blobs")).map_err(|e| io_err("syncing", &staging, e))?;
    // Refs, snapshots (their links, relative, as the cache keeps them) and the app's records.
    copy_tree(&source, &staging, &source).map_err(|e| io_err("copying", &source, e))?;
    // The commit point's record: where the copy came from (what a resumed move checks before removing it).
    fs::create_dir_all(staging.join(".model-manager")).map_err(|e| io_err("creating", &staging, e))?;
    crate::disk::write_atomic(&marker_of(&staging), source.display().to_string().as_bytes(), 0o600)
        .map_err(|e| io_err("writing", &staging, e))?;
    crate::disk::sync_dir(&staging).map_err(|e| io_err("syncing", &staging, e))?;
    fs::rename(&staging, &target).map_err(|e| io_err("placing", &target, e))?;
    crate::disk::sync_dir(to).map_err(|e| io_err("syncing", to, e))?;
    fs::remove_dir_all(&source).map_err(|e| io_err("removing", &source, e))?;
    let _ = fs::remove_file(marker_of(&target));
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
            if !fs::symlink_metadata(&dest).is_ok_and(|m| m.is_dir()) {
                fs::create_dir(&dest)?;
            }
            copy_tree(&path, into, root)?;
        } else if kind.is_file() {
            copy_file(&path, &dest)?;
        }
    }
    Ok(())
}

/// Copies a regular file into a new file (never through a link, never over one), synced.
fn copy_file(from: &Path, to: &Path) -> io::Result<u64> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut source = fs::OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW).open(from)?;
    let mut dest = fs::OpenOptions::new().write(true).create_new(true).mode(0o644).open(to)?;
    let bytes = io::copy(&mut source, &mut dest)?;
    dest.sync_all()?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::Digest as _;

    /// A repo folder with one blob linked from a snapshot, in the cache `cache`.
    fn repo(cache: &Path, content: &[u8]) -> String {
        let blob = crate::format::hex(&sha2::Sha256::digest(content));
        let dir = cache.join("models--acme--m");
        fs::create_dir_all(dir.join("blobs")).unwrap();
        fs::create_dir_all(dir.join("snapshots/c1")).unwrap();
        fs::create_dir_all(dir.join("refs")).unwrap();
        fs::write(dir.join("blobs").join(&blob), content).unwrap();
        std::os::unix::fs::symlink(format!("../../blobs/{blob}"), dir.join("snapshots/c1/m.bin")).unwrap();
        fs::write(dir.join("refs/main"), "c1").unwrap();
        blob
    }

    #[test]
    fn a_planted_staging_folder_is_refused_and_a_stale_staged_blob_is_copied_again() {
        let (from, to, elsewhere) =
            (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let blob = repo(from.path(), b"weights");
        let id = RepoId::parse("acme/m").unwrap();
        let staging = to.path().join(".models--acme--m.moving");
        std::os::unix::fs::symlink(elsewhere.path(), &staging).unwrap();
        let err = move_repo(&id, from.path(), to.path(), 0).unwrap_err();
        assert_eq!(err.code, ErrorCode::Permission, "{err:?}");
        assert!(from.path().join("models--acme--m/blobs").join(&blob).exists(), "nothing moved");
        fs::remove_file(&staging).unwrap();
        // A staged blob of ours with other bytes than its name says: hashed, found wrong, copied again.
        fs::create_dir_all(staging.join("blobs")).unwrap();
        fs::write(staging.join("blobs").join(&blob), b"tampered").unwrap();
        let report = move_repo(&id, from.path(), to.path(), 0).unwrap();
        assert_eq!(report.blobs_copied, 1);
        let moved = to.path().join("models--acme--m");
        assert_eq!(fs::read(moved.join("snapshots/c1/m.bin")).unwrap(), b"weights");
        assert!(!from.path().join("models--acme--m").exists() && !staging.exists());
        assert!(!moved.join(".model-manager/moved-from").exists(), "the commit record goes once the move is done");
        // The same id in both folders, not from a move of ours: refused, both kept.
        repo(from.path(), b"weights");
        let err = move_repo(&id, from.path(), to.path(), 0).unwrap_err();
        assert_eq!(err.code, ErrorCode::Conflict);
        assert!(from.path().join("models--acme--m").exists() && moved.exists());
    }

    #[test]
    fn a_move_that_does_not_fit_the_target_disk_is_refused_before_a_byte() {
        let (from, to) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        repo(from.path(), b"weights");
        let err = move_repo(&RepoId::parse("acme/m").unwrap(), from.path(), to.path(), u64::MAX).unwrap_err();
        assert_eq!(err.code, ErrorCode::InsufficientSpace, "{err:?}");
        assert!(!to.path().join(".models--acme--m.moving/blobs").read_dir().unwrap().any(|_| true));
    }
}
