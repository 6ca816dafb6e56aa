//! What the library takes on disk: the cache in total and per model, the disk's free and total space, and what
//! can be reclaimed: orphan blobs (no snapshot links to them), partial downloads no one is writing, and detached
//! revisions (no ref points to them, while another revision of the repo has one), as `hf cache prune` removes.

use super::LibraryError;
use crate::cache::layout::PIECES_SUFFIX;
use crate::cache::{lock, scan_blocking, RepoKind};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use ts_rs::TS;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StorageReport {
    pub cache_dir: String,
    pub cache_bytes: u64,
    pub disk_free: u64,
    pub disk_total: u64,
    /// Every repo, largest first.
    pub models: Vec<ModelUsage>,
    pub orphan_blobs: Vec<LooseFile>,
    /// `.incomplete` files of downloads that are not running and were last written over a day ago.
    pub partial_downloads: Vec<LooseFile>,
    /// Revisions no branch or tag points to, of repos where another revision has one.
    #[serde(default)]
    pub detached_revisions: Vec<DetachedRevision>,
    pub reclaimable_bytes: u64,
}

/// A partial download untouched this long, that nothing resumes, is taken for abandoned.
const STALE_AFTER: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ModelUsage {
    pub id: String,
    pub kind: RepoKind,
    pub bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LooseFile {
    pub repo: String,
    pub path: String,
    pub bytes: u64,
}

/// A revision nothing names any more.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DetachedRevision {
    pub repo: String,
    pub commit: String,
    /// What removing it frees: the blobs no other revision uses.
    pub bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CleanReport {
    pub files_removed: u32,
    pub bytes_freed: u64,
    /// Detached revisions removed.
    #[serde(default)]
    pub revisions_removed: u32,
}

pub fn report(cache_dir: &Path) -> Result<StorageReport, LibraryError> {
    let scan = scan_blocking(cache_dir)?;
    let (disk_free, disk_total) =
        crate::disk::usage(cache_dir).map_err(|e| LibraryError::io("reading the disk's size", e))?;
    let mut models: Vec<ModelUsage> =
        scan.repos.iter().map(|r| ModelUsage { id: r.repo_id.clone(), kind: r.kind, bytes: r.size_on_disk }).collect();
    models.sort_by(|a, b| b.bytes.cmp(&a.bytes).then_with(|| a.id.cmp(&b.id)));
    let mut orphan_blobs = Vec::new();
    let mut partial_downloads = Vec::new();
    let mut detached_revisions = Vec::new();
    for repo in &scan.repos {
        if repo.revisions.iter().any(|r| !r.refs.is_empty()) {
            for r in repo.revisions.iter().filter(|r| r.refs.is_empty()) {
                let others: HashSet<&str> = repo
                    .revisions
                    .iter()
                    .filter(|o| o.commit != r.commit)
                    .flat_map(|o| o.files.iter().filter_map(|f| f.blob.as_deref()))
                    .collect();
                let mut own: Vec<(&str, u64)> = r
                    .files
                    .iter()
                    .filter_map(|f| Some((f.blob.as_deref()?, f.size)))
                    .filter(|(b, _)| !others.contains(b))
                    .collect();
                own.sort();
                own.dedup();
                let bytes = own.iter().map(|(_, size)| size).sum();
                detached_revisions.push(DetachedRevision {
                    repo: repo.repo_id.clone(),
                    commit: r.commit.clone(),
                    bytes,
                });
            }
        }
        let used: HashSet<&str> =
            repo.revisions.iter().flat_map(|r| r.files.iter().filter_map(|f| f.blob.as_deref())).collect();
        let folder = Path::new(&repo.path).file_name().unwrap_or_default().to_string_lossy().to_string();
        let Ok(entries) = fs::read_dir(Path::new(&repo.path).join("blobs")) else { continue };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().to_string();
            // A partial blob's record of its pieces goes with the partial blob.
            if name.ends_with(PIECES_SUFFIX) {
                continue;
            }
            // What a partial blob holds is what is allocated: one fetched in pieces is sparse.
            let bytes = entry.metadata().map(|m| m.len().min(m.blocks() * 512)).unwrap_or(0);
            let file = LooseFile { repo: repo.repo_id.clone(), path: entry.path().display().to_string(), bytes };
            match name.strip_suffix(".incomplete") {
                // Held by a running download, or written within a day (work to resume): not loose.
                Some(blob) => {
                    let stale = entry
                        .metadata()
                        .and_then(|m| m.modified())
                        .is_ok_and(|t| t.elapsed().is_ok_and(|age| age >= STALE_AFTER));
                    if stale && matches!(lock::try_lock(cache_dir, &folder, blob), Ok(Some(_))) {
                        partial_downloads.push(file);
                    }
                }
                None if !used.contains(name.as_str()) => orphan_blobs.push(file),
                None => {}
            }
        }
    }
    let reclaimable_bytes = orphan_blobs.iter().chain(&partial_downloads).map(|f| f.bytes).sum::<u64>()
        + detached_revisions.iter().map(|r| r.bytes).sum::<u64>();
    Ok(StorageReport {
        cache_dir: scan.cache_dir,
        cache_bytes: scan.size_on_disk,
        disk_free,
        disk_total,
        models,
        orphan_blobs,
        partial_downloads,
        detached_revisions,
        reclaimable_bytes,
    })
}

/// Deletes the orphan blobs and the partial downloads no one is writing.
pub fn clean(cache_dir: &Path, pending: &[String]) -> Result<CleanReport, LibraryError> {
    let report = report(cache_dir)?;
    let mut done = CleanReport { files_removed: 0, bytes_freed: 0, revisions_removed: 0 };
    // The folders of repos with a download still to finish (paused, or queued in a process not running now).
    let kept: std::collections::HashSet<String> = pending
        .iter()
        .filter_map(|repo| crate::hub::parse_repo_reference(repo).ok().map(|(id, _)| id))
        .map(|repo| repo.folder_name(crate::cache::RepoKind::Model))
        .collect();
    for file in report.orphan_blobs.iter().chain(&report.partial_downloads) {
        let path = Path::new(&file.path);
        let repo_folder = path.parent().and_then(Path::parent).and_then(Path::file_name).unwrap_or_default();
        if kept.contains(repo_folder.to_string_lossy().as_ref()) {
            continue;
        }
        // Partial files are re-checked under their lock, in case a download started meanwhile.
        let _held = match path.file_name().and_then(|n| n.to_str()).and_then(|n| n.strip_suffix(".incomplete")) {
            Some(blob) => {
                let folder = path
                    .parent()
                    .and_then(Path::parent)
                    .and_then(Path::file_name)
                    .unwrap_or_default()
                    .to_string_lossy()
                    .to_string();
                match lock::try_lock(cache_dir, &folder, blob) {
                    Ok(Some(held)) => Some(held),
                    _ => continue,
                }
            }
            None => None,
        };
        if fs::remove_file(path).is_ok() {
            let _ = fs::remove_file(format!("{}{PIECES_SUFFIX}", path.display()));
            done.files_removed += 1;
            done.bytes_freed += file.bytes;
        }
    }
    Ok(done)
}
