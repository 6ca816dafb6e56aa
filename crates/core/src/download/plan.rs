//! Before the first byte: resolve the revision to a commit, refuse unsafe paths and hashes, apply the globs,
//! record the commit's selected file list beside the snapshot, and check that the disk has room.

use super::filter;
use super::{DownloadError, DownloadRequest};
use crate::cache::layout::{
    is_blob_name, tree_record_path, HubInfoRecord, RepoKind, TreeRecord, TreeRecordFile, HUB_INFO_RECORD,
};
use crate::cache::write::{self, check_repo_path};
use crate::cache::RepoId;
use crate::hub::{HubClient, RemoteFile};
use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};

/// A download resolved to one commit and the files it will fetch.
#[derive(Debug, Clone)]
pub struct Plan {
    pub repo: RepoId,
    pub revision: String,
    pub commit: String,
    pub repo_dir: PathBuf,
    pub files: Vec<RemoteFile>,
    /// What the hub said about the repo.
    pub info: HubInfoRecord,
}

impl Plan {
    pub fn bytes_total(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }

    pub fn blob_path(&self, file: &RemoteFile) -> PathBuf {
        self.repo_dir.join("blobs").join(&file.blob)
    }

    pub fn incomplete_path(&self, file: &RemoteFile) -> PathBuf {
        self.repo_dir.join("blobs").join(format!("{}.incomplete", file.blob))
    }

    /// Whether the blob is already in the cache with the right size (ours or `huggingface_hub`'s).
    pub fn is_present(&self, file: &RemoteFile) -> bool {
        fs::metadata(self.blob_path(file)).map(|m| m.len() == file.size).unwrap_or(false)
    }

    /// Bytes still to fetch: files whose blob is missing, less what their `.incomplete` files hold.
    pub fn bytes_remaining(&self) -> u64 {
        let mut seen = HashSet::new();
        self.files
            .iter()
            .filter(|f| seen.insert(&f.blob) && !self.is_present(f))
            .map(|f| f.size.saturating_sub(fs::metadata(self.incomplete_path(f)).map(|m| m.len()).unwrap_or(0)))
            .sum()
    }
}

/// Resolves `request` against the hub.
pub async fn resolve(hub: &HubClient, cache_dir: &Path, request: &DownloadRequest) -> Result<Plan, DownloadError> {
    let repo = RepoId::parse(request.repo.trim())?;
    let revision = request.revision().to_string();
    let info = hub.repo_info(&repo, &revision).await?;
    for file in &info.files {
        if let Err(reason) = check_repo_path(&file.path) {
            return Err(DownloadError::UnsafePath { repo: repo.to_string(), path: file.path.clone(), reason });
        }
        if !is_blob_name(&file.blob, file.lfs) {
            return Err(DownloadError::UnsafeBlob {
                repo: repo.to_string(),
                path: file.path.clone(),
                blob: file.blob.clone(),
            });
        }
    }
    if let Some(missing) = request.files.iter().find(|p| !info.files.iter().any(|f| &f.path == *p)) {
        return Err(DownloadError::Hub(crate::hub::HubError::FileNotFound {
            repo: repo.to_string(),
            revision,
            path: missing.clone(),
        }));
    }
    let hub_info = HubInfoRecord {
        pipeline_tag: info.pipeline_tag.clone(),
        tags: info.tags.clone(),
        library_name: info.library_name.clone(),
        gated: info.gated,
        private: Some(info.private),
        card_data: info.card_data.clone(),
        downloaded_at: Some(crate::format::now_unix()),
    };
    let files: Vec<RemoteFile> = info
        .files
        .into_iter()
        .filter(|f| request.files.is_empty() || request.files.contains(&f.path))
        .filter(|f| filter::selected(&f.path, &request.include, &request.exclude))
        .collect();
    if files.is_empty() {
        return Err(DownloadError::NothingSelected { repo: repo.to_string(), revision });
    }
    let repo_dir = repo.folder(cache_dir, RepoKind::Model);
    Ok(Plan { repo, revision, commit: info.commit, repo_dir, files, info: hub_info })
}

/// What a download would fetch, without fetching or writing anything: shown before the user commits.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, ts_rs::TS, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DownloadPreview {
    pub repo: String,
    pub revision: String,
    pub commit: String,
    pub files: Vec<PreviewFile>,
    pub bytes_total: u64,
    /// What is not in the cache yet.
    pub bytes_to_download: u64,
    /// Free space on the cache's disk.
    pub free_space: u64,
    /// When the storage limit, the free-space floor or the disk asks room for it: what would be removed.
    #[serde(default)]
    pub room: Option<crate::library::evict::Room>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, ts_rs::TS, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PreviewFile {
    pub path: String,
    pub size: u64,
    /// Already in the cache (downloaded before, or shared with another revision).
    pub present: bool,
}

/// Resolves `request` and says what downloading it would take.
pub async fn preview(
    hub: &HubClient,
    cache_dir: &Path,
    request: &DownloadRequest,
) -> Result<DownloadPreview, DownloadError> {
    let plan = resolve(hub, cache_dir, request).await?;
    let free_space =
        crate::disk::free_space(cache_dir).map_err(|e| DownloadError::io("checking free disk space", e))?;
    Ok(DownloadPreview {
        repo: plan.repo.to_string(),
        revision: plan.revision.clone(),
        commit: plan.commit.clone(),
        files: plan
            .files
            .iter()
            .map(|f| PreviewFile { path: f.path.clone(), size: f.size, present: plan.is_present(f) })
            .collect(),
        bytes_total: plan.bytes_total(),
        bytes_to_download: plan.bytes_remaining(),
        free_space,
        room: None,
    })
}

/// Adds the plan's files to the commit's tree record (a selection made earlier stays). Two downloads of one repo,
/// in this process or another, take turns on the record, so neither loses the other's files.
pub fn record_tree(plan: &Plan) -> Result<(), DownloadError> {
    let what = || format!("writing the file list of {}", plan.repo);
    write::check_commit(&plan.commit).map_err(|e| DownloadError::io(what(), e))?;
    let path = tree_record_path(&plan.repo_dir, &plan.commit);
    let _turn = crate::cache::lock::lock_file_blocking(&path.with_extension("lock"))
        .map_err(|e| DownloadError::io(what(), e))?;
    let mut record = fs::read(&path)
        .ok()
        .and_then(|b| serde_json::from_slice::<TreeRecord>(&b).ok())
        .filter(|r| r.commit == plan.commit)
        .unwrap_or(TreeRecord { commit: plan.commit.clone(), files: Vec::new() });
    let known: HashSet<String> = record.files.iter().map(|f| f.path.clone()).collect();
    for f in plan.files.iter().filter(|f| !known.contains(&f.path)) {
        record.files.push(TreeRecordFile { path: f.path.clone(), size: f.size, blob: f.blob.clone() });
    }
    record.files.sort_by(|a, b| a.path.cmp(&b.path));
    crate::disk::write_atomic(&path, &serde_json::to_vec_pretty(&record).unwrap(), 0o644)
        .map_err(|e| DownloadError::io(what(), e))
}

/// Keeps what the hub said about the repo beside its snapshots.
pub fn record_hub_info(plan: &Plan) -> Result<(), DownloadError> {
    let path = plan.repo_dir.join(HUB_INFO_RECORD);
    crate::disk::write_atomic(&path, &serde_json::to_vec_pretty(&plan.info).unwrap(), 0o644)
        .map_err(|e| DownloadError::io(format!("writing the hub info of {}", plan.repo), e))
}

/// Refuses the download before the first byte when the cache's disk cannot hold what remains.
pub fn preflight(plan: &Plan, cache_dir: &Path) -> Result<(), DownloadError> {
    let needed = plan.bytes_remaining();
    if needed == 0 {
        return Ok(());
    }
    let free = crate::disk::free_space(cache_dir).map_err(|e| DownloadError::io("checking free disk space", e))?;
    if needed > free {
        return Err(DownloadError::InsufficientSpace {
            repo: plan.repo.to_string(),
            path: cache_dir.display().to_string(),
            needed,
            free,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_downloads_of_one_commit_recording_at_once_lose_neither_file_list() {
        let tmp = tempfile::tempdir().unwrap();
        let commit = "c".repeat(40);
        let plan = |paths: Vec<String>| Plan {
            repo: RepoId::parse("acme/m").unwrap(),
            revision: "main".into(),
            commit: commit.clone(),
            repo_dir: tmp.path().join("models--acme--m"),
            files: paths
                .into_iter()
                .map(|path| RemoteFile { path, size: 1, blob: "a".repeat(40), lfs: false })
                .collect(),
            info: HubInfoRecord::default(),
        };
        let writers: Vec<_> = (0..8)
            .map(|i| {
                let plan = plan((0..20).map(|j| format!("w{i}/f{j}")).collect());
                std::thread::spawn(move || record_tree(&plan).unwrap())
            })
            .collect();
        writers.into_iter().for_each(|w| w.join().unwrap());
        let record: TreeRecord =
            serde_json::from_slice(&fs::read(tree_record_path(&tmp.path().join("models--acme--m"), &commit)).unwrap())
                .unwrap();
        assert_eq!(record.files.len(), 160, "every writer's files are in the record");
    }

    #[test]
    fn blob_names_must_be_hashes() {
        assert!(super::is_blob_name(&"a".repeat(64), true));
        assert!(super::is_blob_name(&"0".repeat(40), false));
        assert!(!super::is_blob_name(&"a".repeat(40), true));
        assert!(!super::is_blob_name("../../etc/passwd", false));
        assert!(!super::is_blob_name(&format!("{}/", "a".repeat(39)), false));
    }
}
