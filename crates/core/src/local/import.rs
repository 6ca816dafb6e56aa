//! Importing files and folders (dropped on the window, or `mm import`): each is detected by content, hashed
//! with progress, checked against what the library already holds, and then referenced in place (the default) or
//! copied into the models folder. A batch reports per path; one bad file never stops the others.

use super::{detect, models_dir, sanitize_file_name, ImportedModel, LocalError, LOCAL_PREFIX};
use crate::error::{Coded, ErrorPayload};
use crate::library::ModelType;
use crate::settings::SettingsStore;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use ts_rs::TS;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase", default)]
pub struct ImportOptions {
    /// Copy into the app's models folder instead of referencing the file where it is.
    pub copy: bool,
    /// The type to give every imported model, instead of the guessed one.
    pub model_type: Option<ModelType>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "kebab-case")]
pub enum ImportStatus {
    Imported,
    /// The same content (sha256) is already in the library.
    Duplicate,
    Failed,
}

/// What happened to one path of a batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct ImportOutcome {
    pub path: String,
    pub status: ImportStatus,
    /// The model's id: the new one, or the one it duplicates.
    pub id: Option<String>,
    /// For `duplicate` and `failed`: what to tell the user.
    pub error: Option<ErrorPayload>,
}

/// Hashing progress of one path of a batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct ImportProgress {
    pub path: String,
    pub bytes_done: u64,
    pub bytes_total: u64,
    /// 1-based position in the batch, and the batch's size.
    pub index: u32,
    pub count: u32,
}

/// Imports each of `paths`, in order. `data_dir` holds the models folder copies go to.
pub fn import_paths(
    paths: &[PathBuf],
    options: &ImportOptions,
    store: &SettingsStore,
    data_dir: &Path,
    mut progress: impl FnMut(&ImportProgress),
) -> Vec<ImportOutcome> {
    let count = paths.len() as u32;
    let mut out = Vec::new();
    for (i, path) in paths.iter().enumerate() {
        let shown = path.display().to_string();
        let result = import_one(path, options, store, data_dir, &mut |done, total| {
            progress(&ImportProgress {
                path: shown.clone(),
                bytes_done: done,
                bytes_total: total,
                index: i as u32 + 1,
                count,
            })
        });
        out.push(match result {
            Ok(id) => ImportOutcome { path: shown, status: ImportStatus::Imported, id: Some(id), error: None },
            Err(LocalError::Duplicate { path, id }) => {
                let e = LocalError::Duplicate { path: path.clone(), id: id.clone() };
                ImportOutcome { path, status: ImportStatus::Duplicate, id: Some(id), error: Some(e.payload()) }
            }
            Err(e) => ImportOutcome { path: shown, status: ImportStatus::Failed, id: None, error: Some(e.payload()) },
        });
    }
    out
}

fn import_one(
    path: &Path,
    options: &ImportOptions,
    store: &SettingsStore,
    data_dir: &Path,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<String, LocalError> {
    let path = std::path::absolute(path).map_err(|e| LocalError::io(format!("resolve {}", path.display()), e))?;
    let found = detect(&path, true)?;
    let total = found.size;
    // A folder's identity is the hash of its weight files' hashes, in path order.
    let mut done = 0;
    let sha256 = if found.is_folder {
        use sha2::Digest;
        let mut all = sha2::Sha256::new();
        for w in &found.weights {
            let before = done;
            let h = super::sha256_file(w, |n| progress(before + n, total))?;
            done += std::fs::metadata(w).map(|m| m.len()).unwrap_or(0);
            all.update(h.as_bytes());
        }
        crate::format::hex(&all.finalize())
    } else {
        super::sha256_file(&path, |n| progress(n, total))?
    };
    let (settings, _) = store.load()?;
    if let Some(existing) = settings.imports.iter().find(|m| m.sha256 == sha256) {
        return Err(LocalError::Duplicate { path: path.display().to_string(), id: existing.id.clone() });
    }
    let models = models_dir(data_dir);
    if let Some(id) =
        super::list::models_dir_files(&models).into_iter().find(|(_, r)| r.sha256 == sha256).map(|(n, _)| n)
    {
        return Err(LocalError::Duplicate { path: path.display().to_string(), id: format!("{LOCAL_PREFIX}{id}") });
    }
    let name = sanitize_file_name(&path.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default())
        .unwrap_or_else(|| "model".into());
    let stored = if options.copy { copy_into(&path, &models, &name, total)? } else { path.clone() };
    let guessed = options.model_type.unwrap_or_else(|| found.guessed_type());
    let (_, id) = store.update(|s| {
        let id = unique_id(&s.imports, &name);
        s.imports.push(ImportedModel {
            id: id.clone(),
            path: stored.display().to_string(),
            sha256: sha256.clone(),
            size: total,
            format: found.format,
            guessed_type: guessed,
            added_at: crate::format::now_unix(),
            copied: options.copy,
        });
        if let Some(t) = options.model_type {
            s.model_types.insert(id.clone(), t.as_str().to_string());
        }
        Ok(id)
    })?;
    Ok(id)
}

/// `local/{name}`, with `-2`, `-3`... when taken.
fn unique_id(imports: &[ImportedModel], name: &str) -> String {
    let base = format!("{LOCAL_PREFIX}{name}");
    let mut id = base.clone();
    let mut n = 2;
    while imports.iter().any(|m| m.id == id) {
        id = format!("{base}-{n}");
        n += 1;
    }
    id
}

/// Copies a file or folder into the models folder: into a hidden temporary name first, renamed when complete,
/// so that a failed copy leaves nothing half-written in view.
fn copy_into(src: &Path, models: &Path, name: &str, bytes: u64) -> Result<PathBuf, LocalError> {
    std::fs::create_dir_all(models).map_err(|e| LocalError::io(format!("create {}", models.display()), e))?;
    let free = crate::disk::free_space(models).unwrap_or(u64::MAX);
    if free < bytes {
        return Err(LocalError::NoSpace {
            dir: models.display().to_string(),
            path: src.display().to_string(),
            needed: bytes,
            free,
        });
    }
    let mut target = models.join(name);
    let mut n = 2;
    while target.exists() {
        target = models.join(format!("{n}-{name}"));
        n += 1;
    }
    let temp = models.join(format!(".{name}.copying"));
    let copied = copy_tree(src, &temp);
    if let Err(e) = copied.and_then(|_| std::fs::rename(&temp, &target)) {
        let _ = std::fs::remove_dir_all(&temp).or_else(|_| std::fs::remove_file(&temp));
        return Err(LocalError::io(format!("copy {} into {}", src.display(), models.display()), e));
    }
    Ok(target)
}

/// Copies plain files and real folders; a symbolic link inside a folder is copied only when it is to a file (a
/// link to a folder could loop).
fn copy_tree(src: &Path, dst: &Path) -> std::io::Result<()> {
    let meta = std::fs::metadata(src)?;
    if meta.is_dir() {
        std::fs::create_dir_all(dst)?;
        for entry in std::fs::read_dir(src)? {
            let entry = entry?;
            let link = entry.file_type()?.is_symlink();
            if link && !std::fs::metadata(entry.path()).is_ok_and(|m| m.is_file()) {
                continue;
            }
            copy_tree(&entry.path(), &dst.join(entry.file_name()))?;
        }
        Ok(())
    } else {
        std::fs::copy(src, dst).map(|_| ())
    }
}
