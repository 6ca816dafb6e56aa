//! Deleting a model or one revision. Only blobs that no remaining snapshot links to are removed, and refs that
//! pointed at a removed commit go with it, so the cache stays valid for `huggingface_hub`. Active models,
//! models being downloaded and models in read-only library folders are refused.

use super::list::find_repo;
use super::LibraryError;
use crate::cache::layout::tree_record_path;
use crate::cache::CachedRevision;
use crate::download::DownloadProgress;
use crate::model::ModelSource;
use crate::settings::Settings;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::fs;
use std::path::Path;
use ts_rs::TS;

/// What a delete frees (or would free, for a dry run).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeleteReport {
    pub id: String,
    /// The revision removed, or none for the whole model.
    pub revision: Option<String>,
    pub commit: Option<String>,
    /// The model's bytes on disk before and after.
    pub bytes_before: u64,
    pub bytes_after: u64,
    pub bytes_freed: u64,
    pub blobs_removed: u32,
    /// True when nothing of the model is left.
    pub whole_model: bool,
    pub dry_run: bool,
    /// The adapters linked to it, which have no base once it is deleted whole.
    #[serde(default)]
    pub adapters: Vec<String>,
}

/// Finds the cached revision `revision` names: a commit, a short commit (7+ characters) or a ref.
pub(crate) fn find_revision<'a>(revisions: &'a [CachedRevision], revision: &str) -> Option<&'a CachedRevision> {
    revisions
        .iter()
        .find(|r| r.commit == revision || r.refs.iter().any(|n| n == revision))
        .or_else(|| (revision.len() >= 7).then(|| revisions.iter().find(|r| r.commit.starts_with(revision))).flatten())
}

/// Deletes `id` (every revision) or one `revision` of it; with `dry_run`, only says what would be freed.
pub fn delete(
    cache_dir: &Path,
    settings: &Settings,
    downloads: &[DownloadProgress],
    id: &str,
    revision: Option<&str>,
    dry_run: bool,
) -> Result<DeleteReport, LibraryError> {
    let (repo, source, dir) = find_repo(cache_dir, settings, id)?;
    if source == ModelSource::Folder {
        return Err(LibraryError::ReadOnly { id: repo.repo_id.clone(), folder: dir.display().to_string() });
    }
    // This process's queue, and any other process downloading into the same cache: `mm download` (its marker),
    // the app, `mm serve` or `huggingface_hub` (a blob lock held).
    let elsewhere = || {
        crate::cache::RepoId::parse(&repo.repo_id)
            .is_ok_and(|id| !crate::download::marker::running(&dir, &id).is_empty())
            || crate::cache::lock::any_held(&dir, Path::new(&repo.path).file_name().unwrap_or_default())
    };
    if downloads.iter().any(|d| d.repo == repo.repo_id && !d.state.is_finished()) || elsewhere() {
        return Err(LibraryError::Downloading { id: repo.repo_id.clone() });
    }
    let target = match revision {
        Some(r) => Some(
            find_revision(&repo.revisions, r)
                .ok_or_else(|| LibraryError::RevisionNotFound { id: repo.repo_id.clone(), revision: r.to_string() })?,
        ),
        None => None,
    };
    for (model_type, active) in &settings.active {
        let hit = active.id == repo.repo_id
            && target.is_none_or(|t| active.revision == t.commit || t.refs.contains(&active.revision));
        if hit {
            return Err(LibraryError::InUse { id: repo.repo_id.clone(), model_type: model_type.clone() });
        }
    }
    let repo_path = Path::new(&repo.path);
    let whole = target.is_none() || repo.revisions.len() <= 1;
    let mut report = DeleteReport {
        id: repo.repo_id.clone(),
        revision: revision.map(str::to_owned),
        commit: target.map(|t| t.commit.clone()),
        bytes_before: repo.size_on_disk,
        bytes_after: repo.size_on_disk,
        bytes_freed: 0,
        blobs_removed: 0,
        whole_model: whole,
        dry_run,
        adapters: Vec::new(),
    };
    if whole {
        report.bytes_freed = repo.size_on_disk;
        report.bytes_after = 0;
        report.blobs_removed = count_blobs(repo_path);
        if !dry_run {
            fs::remove_dir_all(repo_path)
                .map_err(|e| LibraryError::io(format!("deleting {}", repo_path.display()), e))?;
            let folder = repo_path.file_name().unwrap_or_default();
            let _ = fs::remove_dir_all(dir.join(".locks").join(folder));
        }
        return Ok(report);
    }
    let target = target.expect("a revision when not whole");
    let keep: HashSet<&str> = repo
        .revisions
        .iter()
        .filter(|r| r.commit != target.commit)
        .flat_map(|r| r.files.iter().filter_map(|f| f.blob.as_deref()))
        .collect();
    let mut freed = HashSet::new();
    for file in &target.files {
        if let Some(blob) = file.blob.as_deref() {
            if !keep.contains(blob) && freed.insert(blob) {
                report.bytes_freed += file.size;
                report.blobs_removed += 1;
            }
        }
    }
    report.bytes_after = repo.size_on_disk - report.bytes_freed;
    if dry_run {
        return Ok(report);
    }
    let io = |what: String| move |e| LibraryError::io(what, e);
    // The snapshot first: from then on nothing links to the blobs about to go.
    let snapshot = repo_path.join("snapshots").join(&target.commit);
    fs::remove_dir_all(&snapshot).map_err(io(format!("deleting {}", snapshot.display())))?;
    for name in &target.refs {
        let _ = fs::remove_file(repo_path.join("refs").join(name));
    }
    let _ = fs::remove_file(tree_record_path(repo_path, &target.commit));
    for blob in freed {
        let path = repo_path.join("blobs").join(blob);
        fs::remove_file(&path).map_err(io(format!("deleting {}", path.display())))?;
    }
    Ok(report)
}

fn count_blobs(repo: &Path) -> u32 {
    fs::read_dir(repo.join("blobs")).map(|d| d.flatten().count() as u32).unwrap_or(0)
}
