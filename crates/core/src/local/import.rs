//! Importing files and folders (dropped on the window, or `mm import`): each is detected by content, hashed
//! with progress, checked against what the library already holds, and then referenced in place (the default) or
//! copied into the models folder. A batch reports per path; one bad file never stops the others.

use super::{detect, models_dir, sanitize_file_name, ImportedModel, LocalError, LOCAL_PREFIX};
use crate::error::{Coded, ErrorPayload};
use crate::model::ModelType;
use crate::settings::SettingsStore;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use tokio_util::sync::CancellationToken;
use ts_rs::TS;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, TS, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct ImportOptions {
    /// Copy into the app's models folder instead of referencing the file where it is.
    pub copy: bool,
    /// The type to give every imported model, instead of the guessed one.
    pub model_type: Option<ModelType>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ImportStatus {
    Imported,
    /// The same content (sha256) is already in the library.
    Duplicate,
    Failed,
    /// The batch was cancelled before or while this path was imported; nothing of it was added.
    Cancelled,
}

/// What happened to one path of a batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImportOutcome {
    pub path: String,
    pub status: ImportStatus,
    /// The model's id: the new one, or the one it duplicates.
    pub id: Option<String>,
    /// For `duplicate` and `failed`: what to tell the user.
    pub error: Option<ErrorPayload>,
}

/// What an import is doing with a path's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ImportPhase {
    /// Reading it to know its sha256 (a file kept where it is, or a folder's weights).
    Hashing,
    /// Copying it into the models folder (a single file is hashed in the same pass).
    Copying,
}

/// Progress of one path of a batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImportProgress {
    pub path: String,
    pub phase: ImportPhase,
    pub bytes_done: u64,
    pub bytes_total: u64,
    /// 1-based position in the batch, and the batch's size.
    pub index: u32,
    pub count: u32,
}

/// Imports each of `paths`, in order. `data_dir` holds the models folder copies go to. Cancelling `cancel` stops
/// the path being read or copied (its partial copy removed) and skips the rest: each says `cancelled`.
pub fn import_paths(
    paths: &[PathBuf],
    options: &ImportOptions,
    store: &SettingsStore,
    data_dir: &Path,
    cancel: &CancellationToken,
    mut progress: impl FnMut(&ImportProgress),
) -> Vec<ImportOutcome> {
    let count = paths.len() as u32;
    let mut out = Vec::new();
    for (i, path) in paths.iter().enumerate() {
        let shown = path.display().to_string();
        let result = if cancel.is_cancelled() {
            Err(LocalError::Cancelled(shown.clone()))
        } else {
            import_one(path, options, store, data_dir, &mut |phase, done, total| {
                if cancel.is_cancelled() {
                    return Err(std::io::Error::new(std::io::ErrorKind::Interrupted, "cancelled"));
                }
                progress(&ImportProgress {
                    path: shown.clone(),
                    phase,
                    bytes_done: done,
                    bytes_total: total,
                    index: i as u32 + 1,
                    count,
                });
                Ok(())
            })
        };
        // Whatever a cancelled read failed with, the user asked for it: say so.
        let result = match result {
            Err(_) if cancel.is_cancelled() => Err(LocalError::Cancelled(shown.clone())),
            other => other,
        };
        out.push(match result {
            Ok(id) => ImportOutcome { path: shown, status: ImportStatus::Imported, id: Some(id), error: None },
            Err(LocalError::Duplicate { path, id }) => {
                let e = LocalError::Duplicate { path: path.clone(), id: id.clone() };
                ImportOutcome { path, status: ImportStatus::Duplicate, id: Some(id), error: Some(e.payload()) }
            }
            Err(e @ LocalError::Cancelled(_)) => {
                ImportOutcome { path: shown, status: ImportStatus::Cancelled, id: None, error: Some(e.payload()) }
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
    progress: &mut dyn FnMut(ImportPhase, u64, u64) -> std::io::Result<()>,
) -> Result<String, LocalError> {
    let path = std::path::absolute(path).map_err(|e| LocalError::io(format!("resolve {}", path.display()), e))?;
    let found = detect(&path, true)?;
    let total = found.size;
    let models = models_dir(data_dir);
    let name = sanitize_file_name(&path.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default())
        .unwrap_or_else(|| "model".into());
    let mut staged = None;
    let sha256 = if found.is_folder {
        // A folder's identity is the hash of its weight files' hashes, in path order.
        use sha2::Digest;
        let mut all = sha2::Sha256::new();
        let mut done = 0;
        for w in &found.weights {
            let before = done;
            let h = super::sha256_file(w, |n| progress(ImportPhase::Hashing, before + n, total))?;
            done += std::fs::metadata(w).map(|m| m.len()).unwrap_or(0);
            all.update(h.as_bytes());
        }
        crate::format::hex(&all.finalize())
    } else if options.copy {
        // One read: copied to a hidden name and hashed on the way; a duplicate's copy is removed unseen.
        let target = staging(&models, &name, total, &path)?;
        let temp = Staged(Some(target.clone()));
        let h = super::copy_hashing(&path, &target, |n| progress(ImportPhase::Copying, n, total))
            .map_err(|e| LocalError::io(format!("copy {} into {}", path.display(), models.display()), e))?;
        staged = Some(temp);
        h
    } else {
        super::sha256_file(&path, |n| progress(ImportPhase::Hashing, n, total))?
    };
    let (settings, _) = store.load()?;
    if let Some(existing) = settings.imports.iter().find(|m| m.sha256 == sha256) {
        return Err(LocalError::Duplicate { path: path.display().to_string(), id: existing.id.clone() });
    }
    if let Some(id) =
        super::list::models_dir_files(&models).into_iter().find(|(_, r)| r.sha256 == sha256).map(|(n, _)| n)
    {
        return Err(LocalError::Duplicate { path: path.display().to_string(), id: format!("{LOCAL_PREFIX}{id}") });
    }
    let stored = match staged {
        Some(temp) => temp.place(&models, &name)?,
        None if options.copy => copy_folder(&path, &models, &name, progress)?,
        None => path.clone(),
    };
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

/// A copy under a hidden name in the models folder, removed when dropped unless it was placed.
struct Staged(Option<PathBuf>);

impl Staged {
    /// Renames the copy to a free visible name (`name`, `2-name`, ...): only a complete copy is ever in view, and
    /// a name is taken in one step, so another import that saw the same name free never replaces this one.
    fn place(self, models: &Path, name: &str) -> Result<PathBuf, LocalError> {
        let temp = self.0.as_ref().expect("a staged copy");
        for n in 1.. {
            let target = if n == 1 { models.join(name) } else { models.join(format!("{n}-{name}")) };
            match crate::disk::place_new(temp, &target) {
                Ok(true) => {
                    let mut placed = self;
                    placed.0 = None;
                    return Ok(target);
                }
                Ok(false) => continue,
                Err(e) => return Err(LocalError::io(format!("move the copy into {}", target.display()), e)),
            }
        }
        unreachable!("some numbered name is free")
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if let Some(temp) = self.0.take() {
            let _ = std::fs::remove_dir_all(&temp).or_else(|_| std::fs::remove_file(&temp));
        }
    }
}

/// Makes the models folder, checks it has room for `bytes`, and names a hidden copy of `name` that no other
/// import (this process's or another's) is writing.
fn staging(models: &Path, name: &str, bytes: u64, src: &Path) -> Result<PathBuf, LocalError> {
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
    sweep_stale_copies(models);
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    Ok(models.join(format!(".{name}.{}-{n}.copying", std::process::id())))
}

/// Removes hidden copies left by an import that died (a crash, a power cut): those untouched for a day.
fn sweep_stale_copies(models: &Path) {
    let day = std::time::Duration::from_secs(24 * 3600);
    for entry in std::fs::read_dir(models).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        let stale = entry.metadata().and_then(|m| m.modified()).is_ok_and(|t| t.elapsed().is_ok_and(|age| age > day));
        if name.starts_with('.') && name.ends_with(".copying") && stale {
            drop(Staged(Some(entry.path())));
        }
    }
}

/// Copies a model folder into the models folder with progress, under a hidden name until it is complete.
fn copy_folder(
    src: &Path,
    models: &Path,
    name: &str,
    progress: &mut dyn FnMut(ImportPhase, u64, u64) -> std::io::Result<()>,
) -> Result<PathBuf, LocalError> {
    let what = || format!("copy {} into {}", src.display(), models.display());
    let mut files = Vec::new();
    plan_tree(src, Path::new(""), &mut files).map_err(|e| LocalError::io(what(), e))?;
    let total = files.iter().map(|(_, size)| size).sum();
    let root = staging(models, name, total, src)?;
    let temp = Staged(Some(root.clone()));
    let mut done = 0;
    for (relative, size) in &files {
        let to = root.join(relative);
        let copied = to.parent().map_or(Ok(()), std::fs::create_dir_all).and_then(|_| {
            let before = done;
            super::copy_hashing(&src.join(relative), &to, |n| progress(ImportPhase::Copying, before + n, total))
        });
        copied.map_err(|e| LocalError::io(what(), e))?;
        done += size;
    }
    std::fs::create_dir_all(&root).map_err(|e| LocalError::io(what(), e))?;
    temp.place(models, name)
}

/// The plain files under `dir` (relative to the folder being copied, with sizes): a symbolic link is followed
/// only when it is to a file (a link to a folder could loop).
fn plan_tree(dir: &Path, relative: &Path, out: &mut Vec<(PathBuf, u64)>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir.join(relative))? {
        let entry = entry?;
        let link = entry.file_type()?.is_symlink();
        let meta = match std::fs::metadata(entry.path()) {
            Ok(meta) => meta,
            Err(_) if link => continue, // a dangling link
            Err(e) => return Err(e),
        };
        let path = relative.join(entry.file_name());
        if meta.is_dir() && !link {
            plan_tree(dir, &path, out)?;
        } else if meta.is_file() {
            out.push((path, meta.len()));
        }
    }
    Ok(())
}
