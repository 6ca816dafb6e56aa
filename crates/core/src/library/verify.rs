//! Verifying a model: every blob of a revision re-hashed against its name (the sha256 of an LFS file, the git
//! blob sha1 of a small one), so no network is needed; files that are missing are reported too. Repair deletes
//! what is bad and downloads exactly those files again.

use super::delete::find_revision;
use super::list::find_repo;
use super::LibraryError;
use crate::download::{DownloadProgress, DownloadRequest, Downloads};
use crate::settings::Settings;
use serde::{Deserialize, Serialize};
use sha1::Digest as _;
use std::fs;
use std::path::Path;
use ts_rs::TS;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum FileStatus {
    Ok,
    Corrupt,
    Missing,
    /// Not a blob named by its hash (a plain file), so there is nothing to check against.
    Unverified,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FileCheck {
    pub path: String,
    pub blob: Option<String>,
    pub size: u64,
    pub status: FileStatus,
    /// For corrupt files: the hash the bytes have now.
    pub actual: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct VerifyReport {
    pub id: String,
    pub commit: String,
    pub files: Vec<FileCheck>,
    pub bytes_checked: u64,
    /// No file is corrupt or missing.
    pub ok: bool,
    /// The files this check downloaded again (a repair): they were corrupt or missing, and the report is of after.
    #[serde(default)]
    pub repaired: Vec<String>,
}

impl VerifyReport {
    pub fn bad(&self) -> impl Iterator<Item = &FileCheck> {
        self.files.iter().filter(|f| matches!(f.status, FileStatus::Corrupt | FileStatus::Missing))
    }
}

/// Where a verification stands; sent about every 64 MiB and at the end.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct VerifyProgress {
    pub id: String,
    pub bytes_done: u64,
    pub bytes_total: u64,
    pub files_done: u32,
    pub files_total: u32,
}

/// The hash a blob is named by, of the file at `path`: sha256 for 64-character names, git sha1 for 40.
pub(crate) fn hash_file(path: &Path, blob: &str, size: u64, mut on_bytes: impl FnMut(u64)) -> std::io::Result<String> {
    let mut sha256 = sha2::Sha256::new();
    let mut sha1 = sha1::Sha1::new();
    let git = blob.len() == 40;
    if git {
        sha1.update(format!("blob {size}\0").as_bytes());
    }
    crate::disk::read_chunks(std::fs::File::open(path)?, |chunk| {
        if git {
            sha1.update(chunk);
        } else {
            sha256.update(chunk);
        }
        on_bytes(chunk.len() as u64);
        Ok(())
    })?;
    let digest: Vec<u8> = if git { sha1.finalize().to_vec() } else { sha256.finalize().to_vec() };
    Ok(crate::format::hex(&digest))
}

/// Re-hashes every file of a revision (default: the main one) of `id`.
pub fn verify(
    cache_dir: &Path,
    settings: &Settings,
    id: &str,
    revision: Option<&str>,
    mut progress: impl FnMut(VerifyProgress),
) -> Result<VerifyReport, LibraryError> {
    let (repo, _, _) = find_repo(cache_dir, settings, id)?;
    let target = match revision {
        Some(r) => find_revision(&repo.revisions, r)
            .ok_or_else(|| LibraryError::RevisionNotFound { id: repo.repo_id.clone(), revision: r.into() })?,
        None => repo.revisions.first().ok_or_else(|| LibraryError::NotFound(id.to_string()))?,
    };
    let blobs = Path::new(&repo.path).join("blobs");
    let mut state = VerifyProgress {
        id: repo.repo_id.clone(),
        bytes_done: 0,
        bytes_total: target.files.iter().map(|f| f.size).sum(),
        files_done: 0,
        files_total: (target.files.len() + target.missing.len()) as u32,
    };
    let mut last_sent = 0u64;
    let mut files = Vec::new();
    for file in &target.files {
        let check = match &file.blob {
            Some(blob) if blob.len() == 64 || blob.len() == 40 => {
                let result = hash_file(&blobs.join(blob), blob, file.size, |n| {
                    state.bytes_done += n;
                    if state.bytes_done - last_sent >= 64 << 20 {
                        last_sent = state.bytes_done;
                        progress(state.clone());
                    }
                });
                match result {
                    Ok(actual) if &actual == blob => FileCheck {
                        path: file.path.clone(),
                        blob: Some(blob.clone()),
                        size: file.size,
                        status: FileStatus::Ok,
                        actual: None,
                    },
                    Ok(actual) => FileCheck {
                        path: file.path.clone(),
                        blob: Some(blob.clone()),
                        size: file.size,
                        status: FileStatus::Corrupt,
                        actual: Some(actual),
                    },
                    Err(_) => FileCheck {
                        path: file.path.clone(),
                        blob: Some(blob.clone()),
                        size: file.size,
                        status: FileStatus::Missing,
                        actual: None,
                    },
                }
            }
            _ => FileCheck {
                path: file.path.clone(),
                blob: file.blob.clone(),
                size: file.size,
                status: FileStatus::Unverified,
                actual: None,
            },
        };
        files.push(check);
        state.files_done += 1;
    }
    for path in &target.missing {
        files.push(FileCheck { path: path.clone(), blob: None, size: 0, status: FileStatus::Missing, actual: None });
        state.files_done += 1;
    }
    progress(state.clone());
    let ok = !files.iter().any(|f| matches!(f.status, FileStatus::Corrupt | FileStatus::Missing));
    Ok(VerifyReport {
        id: repo.repo_id.clone(),
        commit: target.commit.clone(),
        files,
        bytes_checked: state.bytes_done,
        ok,
        repaired: Vec::new(),
    })
}

/// Deletes the corrupt blobs of `report` (and their links) and downloads exactly the bad files again at the same
/// commit. Returns the download's final progress, or `None` when nothing was bad.
pub async fn repair(
    cache_dir: &Path,
    downloads: &Downloads,
    report: &VerifyReport,
) -> Result<Option<DownloadProgress>, LibraryError> {
    let bad: Vec<&super::verify::FileCheck> = report.bad().collect();
    if bad.is_empty() {
        return Ok(None);
    }
    let repo_id = crate::cache::RepoId::parse(&report.id).map_err(|_| LibraryError::NotFound(report.id.clone()))?;
    let repo_dir = repo_id.folder(cache_dir, crate::cache::RepoKind::Model);
    for file in &bad {
        if let (FileStatus::Corrupt, Some(blob)) = (file.status, &file.blob) {
            let _ = fs::remove_file(repo_dir.join("blobs").join(blob));
            let _ = fs::remove_file(repo_dir.join("snapshots").join(&report.commit).join(&file.path));
        }
    }
    let request = DownloadRequest {
        repo: report.id.clone(),
        revision: Some(report.commit.clone()),
        files: bad.iter().map(|f| f.path.clone()).collect(),
        ..Default::default()
    };
    let id = downloads.start(request)?;
    let done = downloads.wait(id).await.map_err(|error| LibraryError::RepairFailed { id: report.id.clone(), error })?;
    Ok(Some(done))
}
