//! Scanning the cache: every repo, revision and file it holds, with sizes on disk and a completeness status.
//!
//! A revision is `complete` when every file of its snapshot links to a blob that exists and, where this app
//! recorded the commit's full file list ([`super::layout::TreeRecord`]), every listed file is there. A repo is
//! `partial` when any revision is, when a `.incomplete` blob is left, or when a ref names a missing snapshot.
//! Folders that are not valid cache entries are reported as [`ScanProblem`]s, never as a failed scan.

use super::layout::{self, parse_folder_name, RepoKind, TreeRecord, PIECES_SUFFIX};
use crate::error::{Coded, ErrorCode};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs;
use std::io;
use std::path::{Component, Path, PathBuf};
use std::time::UNIX_EPOCH;
use ts_rs::TS;

/// Everything found in one hub cache folder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CacheScan {
    /// The folder that was scanned.
    pub cache_dir: String,
    /// False when the folder does not exist yet (nothing was ever downloaded): not an error.
    pub exists: bool,
    /// Repos, sorted by kind then id.
    pub repos: Vec<CachedRepo>,
    /// Entries that could not be read as cache entries, each with what is wrong.
    pub problems: Vec<ScanProblem>,
    /// Bytes of every blob of every repo, each blob counted once.
    pub size_on_disk: u64,
}

/// One `models--org--name` (or dataset, space) folder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CachedRepo {
    pub repo_id: String,
    pub kind: RepoKind,
    pub path: String,
    pub status: CacheStatus,
    /// Bytes of all blobs of this repo, shared blobs counted once, `.incomplete` files included.
    pub size_on_disk: u64,
    /// Latest modification time of any blob, in Unix seconds.
    pub last_modified: Option<u64>,
    /// Cached revisions: those named by a ref first (in ref order), then the rest, newest first.
    pub revisions: Vec<CachedRevision>,
    /// Downloads in progress or interrupted: blob name and bytes so far.
    pub incomplete: Vec<IncompleteBlob>,
}

/// One commit under `snapshots/`, or one a ref names.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CachedRevision {
    pub commit: String,
    /// Branches, tags or pull-request refs (`main`, `v1.0`, `pr/3`) that point at this commit.
    pub refs: Vec<String>,
    pub status: CacheStatus,
    pub files: Vec<CachedFile>,
    /// Files this revision should have that are not there: dangling links and files its tree record lists.
    pub missing: Vec<String>,
    /// Bytes of the distinct blobs this revision's files use.
    pub size_on_disk: u64,
    pub last_modified: Option<u64>,
}

/// One file of a snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CachedFile {
    /// Path inside the repo, `/`-separated.
    pub path: String,
    pub size: u64,
    /// The blob it links to (sha256 or git sha1), when it links into `blobs/`.
    pub blob: Option<String>,
}

/// A `blobs/{hash}.incomplete` file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct IncompleteBlob {
    pub blob: String,
    pub bytes: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum CacheStatus {
    Complete,
    Partial,
}

/// A cache entry that could not be read as one, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS, utoipa::ToSchema)]
pub struct ScanProblem {
    pub path: String,
    pub message: String,
}

/// Why the cache as a whole could not be scanned.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("the model cache {} is a file, not a folder: point HF_HUB_CACHE at a folder", .path.display())]
    NotADirectory { path: PathBuf },
    #[error("cannot read the model cache {}: {source}", .path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("the cache scan stopped unexpectedly: {0}")]
    Internal(String),
}

impl Coded for CacheError {
    fn code(&self) -> ErrorCode {
        match self {
            CacheError::NotADirectory { .. } => ErrorCode::InvalidInput,
            CacheError::Read { source, .. } => ErrorCode::of_io(source),
            CacheError::Internal(_) => ErrorCode::Internal,
        }
    }
}

/// Names `huggingface_hub` keeps at the top of the cache that are not repos.
const NOT_REPOS: [&str; 2] = ["CACHEDIR.TAG", "version.txt"];
/// Snapshots nest folders as the repo does; deeper than this is a loop or an attack, not a model.
const MAX_DEPTH: usize = 64;

/// Scans `cache_dir` on a blocking thread.
pub async fn scan(cache_dir: PathBuf) -> Result<CacheScan, CacheError> {
    tokio::task::spawn_blocking(move || scan_blocking(&cache_dir))
        .await
        .map_err(|err| CacheError::Internal(err.to_string()))?
}

/// Scans `cache_dir` on the calling thread. A missing folder is an empty cache.
pub fn scan_blocking(cache_dir: &Path) -> Result<CacheScan, CacheError> {
    let mut scan = CacheScan {
        cache_dir: cache_dir.display().to_string(),
        exists: true,
        repos: Vec::new(),
        problems: Vec::new(),
        size_on_disk: 0,
    };
    let entries = match fs::read_dir(cache_dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == io::ErrorKind::NotFound => {
            scan.exists = false;
            return Ok(scan);
        }
        Err(err) if err.kind() == io::ErrorKind::NotADirectory => {
            return Err(CacheError::NotADirectory { path: cache_dir.to_path_buf() })
        }
        Err(source) => return Err(CacheError::Read { path: cache_dir.to_path_buf(), source }),
    };
    for entry in entries {
        let entry = match entry {
            Ok(entry) => entry,
            Err(err) => {
                scan.problems.push(problem(cache_dir, format!("cannot list the cache: {err}")));
                continue;
            }
        };
        let path = entry.path();
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            scan.problems.push(problem(&path, "the name is not valid UTF-8, so it is not a cache entry".into()));
            continue;
        };
        if name.starts_with('.') || NOT_REPOS.contains(&name.as_str()) {
            continue;
        }
        let Some((kind, id)) = parse_folder_name(&name) else {
            scan.problems.push(problem(&path, "not a Hugging Face cache entry (expected models--org--name)".into()));
            continue;
        };
        if !entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            scan.problems.push(problem(&path, "a file where a repo folder should be".into()));
            continue;
        }
        let repo = scan_repo(&path, kind, id.to_string(), &mut scan.problems);
        scan.size_on_disk += repo.size_on_disk;
        scan.repos.push(repo);
    }
    scan.repos.sort_by(|a, b| (a.kind as u8, &a.repo_id).cmp(&(b.kind as u8, &b.repo_id)));
    scan.problems.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(scan)
}

fn problem(path: &Path, message: String) -> ScanProblem {
    ScanProblem { path: path.display().to_string(), message }
}

struct Blob {
    size: u64,
    modified: Option<u64>,
}

/// What one repo folder's `blobs/` holds.
struct Blobs {
    dir: PathBuf,
    complete: HashMap<String, Blob>,
    incomplete: Vec<IncompleteBlob>,
}

/// Scans one repo folder of the cache (the same reading [`scan_blocking`] does for each), or `None` when the
/// folder is not there.
pub fn scan_repo_blocking(cache_dir: &Path, kind: RepoKind, repo_id: &super::RepoId) -> Option<CachedRepo> {
    let dir = repo_id.folder(cache_dir, kind);
    dir.is_dir().then(|| scan_repo(&dir, kind, repo_id.to_string(), &mut Vec::new()))
}

fn scan_repo(dir: &Path, kind: RepoKind, repo_id: String, problems: &mut Vec<ScanProblem>) -> CachedRepo {
    let blobs = read_blobs(dir, problems);
    let refs = read_refs(dir, problems);

    let mut revisions: Vec<CachedRevision> = Vec::new();
    let snapshots_dir = dir.join("snapshots");
    match fs::read_dir(&snapshots_dir) {
        Ok(entries) => {
            for entry in entries.flatten() {
                let path = entry.path();
                let is_dir = entry.file_type().map(|t| t.is_dir()).unwrap_or(false);
                match entry.file_name().to_str() {
                    Some(commit) if is_dir => revisions.push(scan_revision(dir, &path, commit, &blobs, problems)),
                    _ => problems.push(problem(&path, "not a snapshot folder".into())),
                }
            }
        }
        Err(err) if err.kind() == io::ErrorKind::NotFound => {}
        Err(err) => problems.push(problem(&snapshots_dir, format!("cannot read snapshots: {err}"))),
    }

    // Attach refs; a ref whose commit has no snapshot is a revision with nothing in it yet.
    for (name, commit) in &refs {
        match revisions.iter_mut().find(|r| &r.commit == commit) {
            Some(revision) => revision.refs.push(name.clone()),
            None => revisions.push(CachedRevision {
                commit: commit.clone(),
                refs: vec![name.clone()],
                status: CacheStatus::Partial,
                files: Vec::new(),
                missing: read_tree_record(dir, commit)
                    .map(|t| t.files.into_iter().map(|f| f.path).collect())
                    .unwrap_or_default(),
                size_on_disk: 0,
                last_modified: None,
            }),
        }
    }
    let ref_rank = |r: &CachedRevision| r.refs.iter().map(|name| if name == "main" { 0 } else { 1 }).min().unwrap_or(2);
    revisions.sort_by(|a, b| {
        ref_rank(a).cmp(&ref_rank(b)).then(b.last_modified.cmp(&a.last_modified)).then(a.commit.cmp(&b.commit))
    });

    let size_on_disk =
        blobs.complete.values().map(|b| b.size).sum::<u64>() + blobs.incomplete.iter().map(|b| b.bytes).sum::<u64>();
    let last_modified = blobs.complete.values().filter_map(|b| b.modified).max();
    let partial = revisions.is_empty()
        || !blobs.incomplete.is_empty()
        || revisions.iter().any(|r| r.status == CacheStatus::Partial);
    CachedRepo {
        repo_id,
        kind,
        path: dir.display().to_string(),
        status: if partial { CacheStatus::Partial } else { CacheStatus::Complete },
        size_on_disk,
        last_modified,
        revisions,
        incomplete: blobs.incomplete,
    }
}

fn read_blobs(repo_dir: &Path, problems: &mut Vec<ScanProblem>) -> Blobs {
    let dir = repo_dir.join("blobs");
    let mut blobs = Blobs { dir: normalize(&dir), complete: HashMap::new(), incomplete: Vec::new() };
    let entries = match fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return blobs,
        Err(err) => {
            problems.push(problem(&dir, format!("cannot read blobs: {err}")));
            return blobs;
        }
    };
    for entry in entries.flatten() {
        let Ok(meta) = entry.metadata() else { continue };
        if !meta.is_file() {
            continue;
        }
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else { continue };
        // The record of which pieces of a partial blob are on disk belongs to that partial blob.
        if name.ends_with(PIECES_SUFFIX) {
            continue;
        }
        match name.strip_suffix(".incomplete") {
            // A partial blob fetched in pieces is sparse: what it holds is what is allocated.
            Some(blob) => blobs.incomplete.push(IncompleteBlob {
                blob: blob.to_string(),
                bytes: meta.len().min(std::os::unix::fs::MetadataExt::blocks(&meta) * 512),
            }),
            None => {
                let modified =
                    meta.modified().ok().and_then(|t| t.duration_since(UNIX_EPOCH).ok()).map(|d| d.as_secs());
                blobs.complete.insert(name, Blob { size: meta.len(), modified });
            }
        }
    }
    blobs.incomplete.sort_by(|a, b| a.blob.cmp(&b.blob));
    blobs
}

/// `refs/` as ref name → commit; refs may nest (`refs/pr/1`).
fn read_refs(repo_dir: &Path, problems: &mut Vec<ScanProblem>) -> BTreeMap<String, String> {
    let mut refs = BTreeMap::new();
    let root = repo_dir.join("refs");
    let mut stack = vec![(root.clone(), 0usize)];
    while let Some((dir, depth)) = stack.pop() {
        let Ok(entries) = fs::read_dir(&dir) else { continue };
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(file_type) = entry.file_type() else { continue };
            if file_type.is_dir() {
                if depth < MAX_DEPTH {
                    stack.push((path, depth + 1));
                }
                continue;
            }
            if crate::disk::is_temp_name(&entry.file_name().to_string_lossy()) {
                continue;
            }
            let name = path.strip_prefix(&root).unwrap_or(&path).to_string_lossy().replace('\\', "/");
            match fs::read_to_string(&path) {
                Ok(text) if layout::is_commit_hash(text.trim()) => {
                    refs.insert(name, text.trim().to_string());
                }
                Ok(_) => problems.push(problem(&path, format!("ref \"{name}\" does not hold a commit hash"))),
                Err(err) => problems.push(problem(&path, format!("cannot read ref \"{name}\": {err}"))),
            }
        }
    }
    refs
}

fn read_tree_record(repo_dir: &Path, commit: &str) -> Option<TreeRecord> {
    let text = fs::read(layout::tree_record_path(repo_dir, commit)).ok()?;
    serde_json::from_slice::<TreeRecord>(&text).ok().filter(|t| t.commit == commit)
}

fn scan_revision(
    repo_dir: &Path,
    snapshot_dir: &Path,
    commit: &str,
    blobs: &Blobs,
    problems: &mut Vec<ScanProblem>,
) -> CachedRevision {
    let mut files = Vec::new();
    let mut missing = Vec::new();
    walk_snapshot(snapshot_dir, "", 0, blobs, &mut files, &mut missing, problems);
    if let Some(record) = read_tree_record(repo_dir, commit) {
        // A file is there only at the size the hub listed: a blob cut short (a power cut before its bytes reached
        // the disk) counts as missing, so the revision is partial and a repair fetches it again.
        let present: HashMap<&str, u64> = files.iter().map(|f: &CachedFile| (f.path.as_str(), f.size)).collect();
        let listed_missing: Vec<String> = record
            .files
            .into_iter()
            .filter(|f| present.get(f.path.as_str()) != Some(&f.size) && !missing.contains(&f.path))
            .map(|f| f.path)
            .collect();
        missing.extend(listed_missing);
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    missing.sort();

    let mut seen = HashSet::new();
    let mut size_on_disk = 0;
    let mut last_modified = None;
    for file in &files {
        match &file.blob {
            Some(blob) if seen.insert(blob.as_str()) => {
                size_on_disk += file.size;
                last_modified = last_modified.max(blobs.complete.get(blob).and_then(|b| b.modified));
            }
            Some(_) => {}
            None => size_on_disk += file.size,
        }
    }
    CachedRevision {
        commit: commit.to_string(),
        refs: Vec::new(),
        status: if missing.is_empty() { CacheStatus::Complete } else { CacheStatus::Partial },
        files,
        missing,
        size_on_disk,
        last_modified,
    }
}

#[allow(clippy::too_many_arguments)]
fn walk_snapshot(
    dir: &Path,
    prefix: &str,
    depth: usize,
    blobs: &Blobs,
    files: &mut Vec<CachedFile>,
    missing: &mut Vec<String>,
    problems: &mut Vec<ScanProblem>,
) {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) => {
            problems.push(problem(dir, format!("cannot read snapshot folder: {err}")));
            return;
        }
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            problems.push(problem(&path, "file name is not valid UTF-8".into()));
            continue;
        };
        // A link being placed, or one a crash left half placed: not a file of the snapshot.
        if crate::disk::is_temp_name(&name) {
            continue;
        }
        let rel = if prefix.is_empty() { name } else { format!("{prefix}/{name}") };
        let Ok(file_type) = entry.file_type() else { continue };
        if file_type.is_dir() {
            if depth + 1 >= MAX_DEPTH {
                problems.push(problem(&path, format!("folders nest deeper than {MAX_DEPTH} levels")));
            } else {
                walk_snapshot(&path, &rel, depth + 1, blobs, files, missing, problems);
            }
        } else if file_type.is_symlink() {
            let Ok(target) = fs::read_link(&path) else { continue };
            let resolved = normalize(&dir.join(&target));
            let blob_name = (resolved.parent() == Some(blobs.dir.as_path()))
                .then(|| resolved.file_name().and_then(|n| n.to_str()).map(str::to_owned))
                .flatten();
            match blob_name {
                Some(blob) => match blobs.complete.get(&blob) {
                    Some(b) => files.push(CachedFile { path: rel, size: b.size, blob: Some(blob) }),
                    None => missing.push(rel),
                },
                // A link that points anywhere but this repo's blobs (planted in a shared cache or a library
                // folder: `notes.txt -> ~/.ssh/id_ed25519`) is never taken for a file of the model.
                None => problems.push(problem(
                    &path,
                    format!("a link out of the repo's blobs (to {}): not a file of this model", target.display()),
                )),
            }
        } else if file_type.is_file() {
            let size = entry.metadata().map(|m| m.len()).unwrap_or(0);
            files.push(CachedFile { path: rel, size, blob: None });
        }
    }
}

/// `path` with `.` and `..` resolved lexically, without touching the disk.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_resolves_dots_lexically() {
        assert_eq!(normalize(Path::new("/c/m/snapshots/abc/sub/../../../blobs/x")), PathBuf::from("/c/m/blobs/x"));
        assert_eq!(normalize(Path::new("a/./b/../c")), PathBuf::from("a/c"));
        assert_eq!(normalize(Path::new("../x")), PathBuf::from("../x"));
    }

    #[test]
    fn a_missing_cache_folder_is_an_empty_cache() {
        let tmp = tempfile::tempdir().unwrap();
        let scan = scan_blocking(&tmp.path().join("nope")).unwrap();
        assert!(!scan.exists);
        assert!(scan.repos.is_empty());
    }

    #[test]
    fn a_file_as_cache_folder_is_invalid_input() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("file");
        fs::write(&file, b"x").unwrap();
        let err = scan_blocking(&file).unwrap_err();
        assert_eq!(err.code(), ErrorCode::InvalidInput);
        assert!(err.to_string().contains("is a file, not a folder"));
    }
}
