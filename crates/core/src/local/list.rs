//! Local models as library entries: imports (from the settings), files in the app's models folder (URL
//! downloads), and loose model files in the library folders, each read from the disk as it is now.

use super::{detect, models_dir, read_record, FileRecord, ImportedModel, FOLDER_PREFIX, LOCAL_PREFIX};
use crate::cache::{CacheStatus, CachedFile, CachedRevision};
use crate::error::{ErrorCode, ErrorPayload};
use crate::model::{LibraryModel, ModelFormat, ModelSource, ModelStatus, ModelType, TypeOrigin};
use crate::settings::Settings;
use std::path::{Path, PathBuf};

/// How deep library folders are walked for loose model files.
const MAX_DEPTH: usize = 4;

/// Files in the models folder with their records (files without one, such as a copy in progress, are skipped).
pub fn models_dir_files(models: &Path) -> Vec<(String, FileRecord)> {
    let Ok(entries) = std::fs::read_dir(models) else { return Vec::new() };
    let mut out: Vec<(String, FileRecord)> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().to_string();
            if name.starts_with('.') {
                return None;
            }
            read_record(models, &name).map(|r| (name, r))
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// A local model and where its files are.
#[derive(Debug, Clone)]
pub struct LocalModel {
    pub model: LibraryModel,
    pub path: PathBuf,
    /// Its sha256 when known (imports and downloads).
    pub sha256: Option<String>,
    /// Deleting removes the file (the app's copy) rather than only forgetting a reference.
    pub owned: bool,
}

/// Every local model: imports, then the models folder, then the library folders' loose files.
pub fn local_models(settings: &Settings, data_dir: &Path) -> Vec<LocalModel> {
    let mut out: Vec<LocalModel> = settings.imports.iter().map(|m| imported(m, settings)).collect();
    let models = models_dir(data_dir);
    for (name, record) in models_dir_files(&models) {
        let path = models.join(&name);
        if settings.imports.iter().any(|m| Path::new(&m.path) == path) {
            continue;
        }
        let id = format!("{LOCAL_PREFIX}{name}");
        let found = detect(&path, false);
        let (format, guessed, size) = match &found {
            Ok(d) => (d.format, d.guessed_type(), d.size),
            Err(_) => (ModelFormat::Other, ModelType::Other, std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0)),
        };
        let source = if record.url.is_some() { ModelSource::Url } else { ModelSource::Imported };
        let mut model = entry(&id, &name, source, &path, format, guessed, size, settings);
        model.downloaded_at = Some(record.added_at);
        if let Err(e) = found {
            model.status = ModelStatus::Error;
            model.error = Some(crate::error::Coded::payload(&e));
        }
        out.push(LocalModel { model, path, sha256: Some(record.sha256), owned: true });
    }
    for folder in &settings.library_folders {
        out.extend(folder_models(Path::new(folder), settings));
    }
    out
}

fn imported(m: &ImportedModel, settings: &Settings) -> LocalModel {
    let path = PathBuf::from(&m.path);
    let name = m.id.strip_prefix(LOCAL_PREFIX).unwrap_or(&m.id).to_string();
    let mut model = entry(&m.id, &name, ModelSource::Imported, &path, m.format, m.guessed_type, m.size, settings);
    model.downloaded_at = Some(m.added_at);
    if std::fs::metadata(&path).is_err() {
        model.status = ModelStatus::Error;
        model.error = Some(ErrorPayload::new(
            ErrorCode::NotFound,
            format!("{} was moved or deleted: import it again from where it is now", m.path),
        ));
    }
    LocalModel { model, path, sha256: Some(m.sha256.clone()), owned: m.copied }
}

/// Loose model files under a library folder (Hugging Face cache entries there are listed by the cache scan).
fn folder_models(folder: &Path, settings: &Settings) -> Vec<LocalModel> {
    let label = folder.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_else(|| "folder".into());
    let mut out = Vec::new();
    let mut stack = vec![(folder.to_path_buf(), 0)];
    while let Some((dir, depth)) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            if name.starts_with('.') || name.starts_with("models--") || name.starts_with("datasets--") {
                continue;
            }
            let path = e.path();
            // Never follow links to folders (a loop would never end); links to files are fine.
            let Ok(ft) = e.file_type() else { continue };
            let Ok(meta) = std::fs::metadata(&path) else { continue };
            if meta.is_dir() {
                if !ft.is_symlink() && depth < MAX_DEPTH {
                    stack.push((path, depth + 1));
                }
                continue;
            }
            if !meta.is_file() || !is_model_name(&name) {
                continue;
            }
            let Ok(found) = detect(&path, false) else { continue };
            let rel = path.strip_prefix(folder).unwrap_or(&path).to_string_lossy().to_string();
            let id = format!("{FOLDER_PREFIX}{label}/{rel}");
            let model =
                entry(&id, &name, ModelSource::Folder, &path, found.format, found.guessed_type(), found.size, settings);
            out.push(LocalModel { model, path, sha256: None, owned: false });
        }
    }
    out.sort_by(|a, b| a.model.id.cmp(&b.model.id));
    out
}

fn is_model_name(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    [".gguf", ".safetensors", ".onnx", ".pt", ".pth", ".bin"].iter().any(|ext| n.ends_with(ext))
}

#[allow(clippy::too_many_arguments)]
fn entry(
    id: &str,
    name: &str,
    source: ModelSource,
    path: &Path,
    format: ModelFormat,
    guessed: ModelType,
    size: u64,
    settings: &Settings,
) -> LibraryModel {
    let origin = if guessed == ModelType::Other { TypeOrigin::Unknown } else { TypeOrigin::Files };
    let (model_type, type_origin, active, last_used) = settings.user_view(id, (guessed, origin));
    let modified = std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_secs());
    LibraryModel {
        id: id.to_string(),
        display_name: name.to_string(),
        source,
        model_type,
        type_origin,
        status: if active { ModelStatus::Active } else { ModelStatus::Available },
        revision: None,
        commit: None,
        revisions: 1,
        files: 1,
        size,
        format,
        downloaded_at: modified,
        last_used,
        path: path.display().to_string(),
        pipeline_tag: None,
        library_name: None,
        architectures: Vec::new(),
        tags: Vec::new(),
        gated: false,
        error: None,
        download_id: None,
        adapter: None,
        adapters: Vec::new(),
        pinned: false,
    }
}

/// The local model with this id.
pub fn find(settings: &Settings, data_dir: &Path, id: &str) -> Option<LocalModel> {
    if !id.starts_with(LOCAL_PREFIX) && !id.starts_with(FOLDER_PREFIX) {
        return None;
    }
    local_models(settings, data_dir).into_iter().find(|m| m.model.id == id)
}

/// A local model's files as one revision (for the details view and verification).
pub fn revision_of(m: &LocalModel) -> CachedRevision {
    let mut files = Vec::new();
    if m.path.is_dir() {
        let mut stack = vec![m.path.clone()];
        while let Some(dir) = stack.pop() {
            for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                let p = e.path();
                match e.file_type() {
                    Ok(t) if t.is_dir() => stack.push(p),
                    Ok(_) => files.push(CachedFile {
                        path: p.strip_prefix(&m.path).unwrap_or(&p).to_string_lossy().to_string(),
                        size: std::fs::metadata(&p).map(|m| m.len()).unwrap_or(0),
                        blob: None,
                    }),
                    Err(_) => {}
                }
            }
        }
        files.sort_by(|a, b| a.path.cmp(&b.path));
    } else {
        files.push(CachedFile {
            path: m.path.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default(),
            size: m.model.size,
            blob: m.sha256.clone(),
        });
    }
    CachedRevision {
        commit: m.sha256.clone().unwrap_or_default(),
        refs: Vec::new(),
        status: if m.model.status == ModelStatus::Error { CacheStatus::Partial } else { CacheStatus::Complete },
        files,
        missing: Vec::new(),
        size_on_disk: m.model.size,
        last_modified: m.model.downloaded_at,
    }
}

/// Deletes a local model: the app's own copy is removed from disk, a reference is only forgotten, and a file in
/// a library folder is refused (that folder belongs to another program).
pub fn delete(store: &crate::settings::SettingsStore, data_dir: &Path, id: &str) -> Result<u64, super::LocalError> {
    let (settings, _) = store.load()?;
    let m = find(&settings, data_dir, id).ok_or_else(|| super::LocalError::NotFound(id.to_string()))?;
    if m.model.source == ModelSource::Folder {
        return Err(super::LocalError::ReadOnly(id.to_string()));
    }
    if let Some((model_type, _)) = settings.active.iter().find(|(_, a)| a.id == id) {
        return Err(super::LocalError::InUse { id: id.to_string(), model_type: model_type.clone() });
    }
    let mut freed = 0;
    if m.owned {
        freed = m.model.size;
        let removed = if m.path.is_dir() { std::fs::remove_dir_all(&m.path) } else { std::fs::remove_file(&m.path) };
        match removed {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(super::LocalError::io(format!("delete {}", m.path.display()), e))
            }
            _ => {}
        }
        if let Some(name) = m.path.file_name() {
            let _ = std::fs::remove_file(super::record_path(&models_dir(data_dir), &name.to_string_lossy()));
        }
    }
    store.update(|s| {
        s.imports.retain(|i| i.id != id);
        s.model_types.remove(id);
        Ok(())
    })?;
    Ok(freed)
}
