//! Building the list: each cached repo becomes a [`LibraryModel`] with its type, format, status and sizes;
//! downloads not in the cache yet join as queued or downloading; filters and sorting apply on top.

use super::LibraryError;
use crate::cache::layout::HubInfoRecord;
use crate::cache::{scan_blocking, CacheStatus, CachedRepo, CachedRevision, RepoKind};
use crate::download::{DownloadProgress, DownloadState};
use crate::model::kind::{infer_type, TypeEvidence};
use crate::model::{LibraryModel, ModelFormat, ModelSource, ModelStatus, ModelType, TypeOrigin};
use crate::settings::Settings;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use ts_rs::TS;

/// Everything about one model: the list entry, each cached revision with its files and hashes, and the card.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ModelDetails {
    pub model: LibraryModel,
    pub revisions: Vec<CachedRevision>,
    /// The model card's metadata (license, language, base_model, ...) when the hub gave it.
    #[ts(type = "Record<string, unknown> | null")]
    pub card: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, TS, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SortKey {
    #[default]
    Name,
    Size,
    Date,
    /// When it was last used (activated, loaded, asked for, served, downloaded).
    Used,
}

/// Filters (all optional) and the order of the list.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, TS, utoipa::ToSchema, utoipa::IntoParams)]
#[serde(rename_all = "camelCase", default)]
#[into_params(parameter_in = Query)]
pub struct LibraryQuery {
    pub model_type: Option<ModelType>,
    pub status: Option<ModelStatus>,
    pub source: Option<ModelSource>,
    /// Matches the id, the pipeline tag, the library and the architectures, case-insensitively.
    pub text: Option<String>,
    pub sort: SortKey,
    pub descending: bool,
}

impl LibraryQuery {
    pub fn matches(&self, m: &LibraryModel) -> bool {
        let text = self.text.as_deref().map(str::trim).filter(|t| !t.is_empty()).map(str::to_lowercase);
        self.model_type.is_none_or(|t| m.model_type == t)
            && self.status.is_none_or(|s| m.status == s)
            && self.source.is_none_or(|s| m.source == s)
            && text.is_none_or(|t| {
                m.id.to_lowercase().contains(&t)
                    || m.pipeline_tag.as_deref().is_some_and(|p| p.contains(&t))
                    || m.library_name.as_deref().is_some_and(|l| l.to_lowercase().contains(&t))
                    || m.architectures.iter().any(|a| a.to_lowercase().contains(&t))
                    || m.model_type.as_str().contains(&t)
            })
    }

    /// Filters and sorts `models`.
    pub fn apply(&self, mut models: Vec<LibraryModel>) -> Vec<LibraryModel> {
        models.retain(|m| self.matches(m));
        match self.sort {
            // Lowered as compared, without a copy.
            SortKey::Name => models.sort_by(|a, b| by_name(&a.id, &b.id)),
            SortKey::Size => models.sort_by(|a, b| a.size.cmp(&b.size).then_with(|| a.id.cmp(&b.id))),
            SortKey::Date => models.sort_by(|a, b| a.downloaded_at.cmp(&b.downloaded_at).then_with(|| a.id.cmp(&b.id))),
            SortKey::Used => models.sort_by(|a, b| a.last_used.cmp(&b.last_used).then_with(|| a.id.cmp(&b.id))),
        }
        if self.descending {
            models.reverse();
        }
        models
    }
}

/// Ids in the order of their lowercase letters, then as they are.
fn by_name(a: &str, b: &str) -> std::cmp::Ordering {
    match a.chars().flat_map(char::to_lowercase).cmp(b.chars().flat_map(char::to_lowercase)) {
        std::cmp::Ordering::Equal => a.cmp(b),
        order => order,
    }
}

/// The caches the library reads: the main one, then the read-only library folders.
pub fn sources(cache_dir: &Path, settings: &Settings) -> Vec<(PathBuf, ModelSource)> {
    let mut out = vec![(cache_dir.to_path_buf(), ModelSource::HuggingFace)];
    out.extend(settings.library_folders.iter().map(|f| (PathBuf::from(f), ModelSource::Folder)));
    out
}

/// Every model: each source scanned, merged with the download queue and the settings.
pub fn list(
    cache_dir: &Path,
    settings: &Settings,
    downloads: &[DownloadProgress],
) -> Result<Vec<LibraryModel>, LibraryError> {
    let mut models = Vec::new();
    cached_models(cache_dir, settings, &mut models, &mut HashMap::new())?;
    merge_downloads(&mut models, downloads, cache_dir, settings);
    Ok(models)
}

/// The models on this machine's disks, before the download queue is laid over them (what
/// [`super::index::LibraryIndex`] keeps).
#[derive(Debug, Default)]
pub struct OnDisk {
    pub models: Vec<LibraryModel>,
    /// The files (path, size) of each cached GGUF model's newest revision, by id: its quantisations.
    pub gguf_files: HashMap<String, Vec<(String, u64)>>,
}

impl OnDisk {
    /// The models with the download queue laid over them.
    pub fn with_downloads(
        &self,
        downloads: &[DownloadProgress],
        cache_dir: &Path,
        settings: &Settings,
    ) -> Vec<LibraryModel> {
        let mut models = self.models.clone();
        merge_downloads(&mut models, downloads, cache_dir, settings);
        models
    }
}

/// Each cache's models (the main one, then the library folders), and the files of the GGUF ones.
fn cached_models(
    cache_dir: &Path,
    settings: &Settings,
    models: &mut Vec<LibraryModel>,
    gguf_files: &mut HashMap<String, Vec<(String, u64)>>,
) -> Result<(), LibraryError> {
    for (dir, source) in sources(cache_dir, settings) {
        let scan = match scan_blocking(&dir) {
            Ok(scan) => scan,
            // A library folder that is gone or unreadable is skipped; the main cache's failure is the caller's.
            Err(_) if source == ModelSource::Folder => continue,
            Err(e) => return Err(e.into()),
        };
        for repo in scan.repos.iter().filter(|r| r.kind == RepoKind::Model) {
            let model = model_of(repo, source, settings);
            if let (ModelFormat::Gguf, Some(main)) = (model.format, repo.revisions.first()) {
                let files = || main.files.iter().map(|f| (f.path.clone(), f.size)).collect();
                gguf_files.entry(model.id.clone()).or_insert_with(files);
            }
            models.push(model);
        }
    }
    Ok(())
}

/// What the disks hold: the caches, the local models (imports, URL downloads, library folders' loose files) of
/// `data_dir`, adapters linked to their bases, and when each was last used.
pub fn on_disk(cache_dir: &Path, data_dir: &Path, settings: &Settings) -> Result<OnDisk, LibraryError> {
    let mut disk = OnDisk::default();
    cached_models(cache_dir, settings, &mut disk.models, &mut disk.gguf_files)?;
    let models = &mut disk.models;
    models.extend(crate::local::list::local_models(settings, data_dir).into_iter().map(|m| m.model));
    super::adapters::link(models, settings);
    // Last used: the latest of its activation, the uses recorded, and its download.
    let used = super::usage::read(data_dir);
    for m in models.iter_mut() {
        m.last_used = [m.last_used, used.get(&m.id).copied(), m.downloaded_at].into_iter().flatten().max();
        m.pinned = settings.storage_pins.contains(&m.id);
    }
    Ok(disk)
}

/// [`on_disk`] with the download queue laid over it.
pub fn list_all(
    cache_dir: &Path,
    data_dir: &Path,
    settings: &Settings,
    downloads: &[DownloadProgress],
) -> Result<Vec<LibraryModel>, LibraryError> {
    Ok(on_disk(cache_dir, data_dir, settings)?.with_downloads(downloads, cache_dir, settings))
}

/// [`details`] for any model: a local one by its id, else one of the caches.
pub fn details_any(
    cache_dir: &Path,
    data_dir: &Path,
    settings: &Settings,
    id: &str,
) -> Result<ModelDetails, LibraryError> {
    if let Some(local) = crate::local::list::find(settings, data_dir, id) {
        let revision = crate::local::list::revision_of(&local);
        return Ok(ModelDetails { model: local.model, revisions: vec![revision], card: None });
    }
    details(cache_dir, settings, id)
}

/// `config.json`'s architectures in a snapshot, if it has one.
fn architectures(snapshot: &Path) -> Vec<String> {
    let Ok(text) = std::fs::read(snapshot.join("config.json")) else { return Vec::new() };
    #[derive(Deserialize)]
    struct Config {
        #[serde(default)]
        architectures: Vec<String>,
    }
    serde_json::from_slice::<Config>(&text).map(|c| c.architectures).unwrap_or_default()
}

pub(crate) fn hub_info(repo_path: &Path) -> HubInfoRecord {
    crate::cache::layout::read_hub_info(repo_path).unwrap_or_default()
}

pub(crate) fn model_of(repo: &CachedRepo, source: ModelSource, settings: &Settings) -> LibraryModel {
    let path = Path::new(&repo.path);
    let info = hub_info(path);
    let main = repo.revisions.first();
    let paths: Vec<&str> = main.map(|r| r.files.iter().map(|f| f.path.as_str()).collect()).unwrap_or_default();
    let architectures = main.map(|r| architectures(&path.join("snapshots").join(&r.commit))).unwrap_or_default();
    let (inferred, origin) = infer_type(&TypeEvidence {
        pipeline_tag: info.pipeline_tag.as_deref(),
        tags: &info.tags,
        library_name: info.library_name.as_deref(),
        architectures: &architectures,
        file_paths: &paths,
    });
    let (model_type, type_origin, active, last_used) = settings.user_view(&repo.repo_id, (inferred, origin));
    let status = match repo.status {
        _ if active => ModelStatus::Active,
        CacheStatus::Complete => ModelStatus::Available,
        CacheStatus::Partial => ModelStatus::Partial,
    };
    LibraryModel {
        id: repo.repo_id.clone(),
        display_name: repo.repo_id.rsplit('/').next().unwrap_or(&repo.repo_id).to_string(),
        source,
        model_type,
        type_origin,
        status,
        revision: main.and_then(|r| r.refs.first().cloned()),
        commit: main.map(|r| r.commit.clone()),
        revisions: repo.revisions.len() as u32,
        files: main.map(|r| r.files.len() as u32).unwrap_or(0),
        size: repo.size_on_disk,
        format: ModelFormat::dominant(main.into_iter().flat_map(|r| r.files.iter().map(|f| (f.path.as_str(), f.size)))),
        downloaded_at: info.downloaded_at.or(repo.last_modified),
        last_used,
        path: repo.path.clone(),
        pipeline_tag: info.pipeline_tag,
        library_name: info.library_name,
        architectures,
        tags: info.tags,
        gated: info.gated,
        error: None,
        download_id: None,
        adapter: None,
        adapters: Vec::new(),
        pinned: false,
    }
}

/// Downloads in the queue set the status of their model, or add it when nothing is cached yet.
fn merge_downloads(
    models: &mut Vec<LibraryModel>,
    downloads: &[DownloadProgress],
    cache_dir: &Path,
    settings: &Settings,
) {
    for d in downloads {
        let status = match d.state {
            DownloadState::Queued | DownloadState::Paused => ModelStatus::Queued,
            DownloadState::Downloading | DownloadState::Verifying => ModelStatus::Downloading,
            DownloadState::Failed => ModelStatus::Error,
            DownloadState::Completed | DownloadState::Cancelled => continue,
        };
        match models.iter_mut().find(|m| m.id == d.repo && m.source == ModelSource::HuggingFace) {
            // A failed download of a model that is complete leaves it usable.
            Some(m)
                if status == ModelStatus::Error && matches!(m.status, ModelStatus::Available | ModelStatus::Active) => {
            }
            Some(m) => {
                m.status = status;
                m.error = d.error.clone();
                m.download_id = Some(d.id);
            }
            None => {
                let folder = crate::cache::RepoId::parse(&d.repo).map(|r| r.folder(cache_dir, RepoKind::Model));
                models.push(LibraryModel {
                    id: d.repo.clone(),
                    display_name: d.repo.rsplit('/').next().unwrap_or(&d.repo).to_string(),
                    source: ModelSource::HuggingFace,
                    model_type: ModelType::Other,
                    type_origin: TypeOrigin::Unknown,
                    status,
                    revision: Some(d.revision.clone()),
                    commit: d.commit.clone(),
                    revisions: 0,
                    files: d.files_total,
                    size: d.bytes_done,
                    format: ModelFormat::Other,
                    downloaded_at: None,
                    last_used: None,
                    path: folder.map(|f| f.display().to_string()).unwrap_or_default(),
                    pipeline_tag: None,
                    library_name: None,
                    architectures: Vec::new(),
                    tags: Vec::new(),
                    gated: false,
                    error: d.error.clone(),
                    download_id: Some(d.id),
                    adapter: None,
                    adapters: Vec::new(),
                    pinned: settings.storage_pins.contains(&d.repo),
                });
            }
        }
    }
}

/// Finds a model's cache entry (main cache first, then library folders).
pub(crate) fn find_repo(
    cache_dir: &Path,
    settings: &Settings,
    id: &str,
) -> Result<(CachedRepo, ModelSource, PathBuf), LibraryError> {
    let repo_id = crate::hub::parse_repo_reference(id).map_err(|_| LibraryError::NotFound(id.to_string()))?.0;
    // Only the repo's own folder is read: callers such as library_fit do this once per model.
    for (dir, source) in sources(cache_dir, settings) {
        if let Some(repo) = crate::cache::scan::scan_repo_blocking(&dir, RepoKind::Model, &repo_id) {
            return Ok((repo, source, dir));
        }
    }
    Err(LibraryError::NotFound(id.to_string()))
}

/// Everything about one model.
pub fn details(cache_dir: &Path, settings: &Settings, id: &str) -> Result<ModelDetails, LibraryError> {
    let (repo, source, _) = find_repo(cache_dir, settings, id)?;
    let model = model_of(&repo, source, settings);
    let card = hub_info(Path::new(&repo.path)).card_data;
    Ok(ModelDetails { model, revisions: repo.revisions, card })
}

/// Remembers the user's type for a model (`None` goes back to the inferred one).
pub fn set_type(
    store: &crate::settings::SettingsStore,
    id: &str,
    model_type: Option<&str>,
) -> Result<(), LibraryError> {
    let chosen = match model_type {
        Some(t) => Some(t.parse::<ModelType>()?),
        None => None,
    };
    store.update(|s| {
        match chosen {
            Some(t) => s.model_types.insert(id.to_string(), t.as_str().to_string()),
            None => s.model_types.remove(id),
        };
        Ok(())
    })?;
    Ok(())
}
