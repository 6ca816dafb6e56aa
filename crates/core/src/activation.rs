//! One active model per model type, and how other programs find it without talking to the app.
//!
//! The choice lives in the settings file (`active`: type → id and commit), so it survives restarts and the app
//! and `mm` share it. Beside it, in the app's data folder, this module keeps what other programs read:
//!
//! ```text
//! active/{type}   a symlink to the model's snapshot folder, replaced atomically (a new link, then a rename)
//! active.json     {type: {id, revision, path, format, primaryFile, endpoint}} for every active type
//! ```
//!
//! `endpoint` is there while the type is loaded: the runtime host ([`crate::runtime`]) names it through
//! [`Activation::set_endpoints`], which keeps it in `runtime/endpoints.json`.
//!
//! A switch is one step: the new model is checked first (complete, on disk), and only then does one settings
//! write replace the old choice. A model deleted outside the app loses its mark at the next [`reconcile`].

use crate::cache::RepoKind;
use crate::download::{LifecycleKind, ModelLifecycle};
use crate::error::{Coded, ErrorCode};
use crate::library::list::{find_repo, model_of};
use crate::library::{ModelFormat, ModelStatus, ModelType};
use crate::settings::{ActiveModel, Settings, SettingsError, SettingsStore};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use ts_rs::TS;

/// What `active.json` says of one type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ActiveEntry {
    pub model_type: ModelType,
    pub id: String,
    /// The commit.
    pub revision: String,
    /// The model's snapshot folder.
    pub path: String,
    /// The stable link other programs can use: `{data}/active/{type}`.
    pub link: String,
    pub format: ModelFormat,
    /// The largest weight file (the one to load for single-file formats such as GGUF), if any.
    pub primary_file: Option<String>,
    pub activated_at: Option<u64>,
    /// While it is loaded: the OpenAI-compatible endpoint serving this type (`http://127.0.0.1:PORT/v1`), the
    /// same across switches of the type's model.
    pub endpoint: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ActivationError {
    #[error("{id} cannot be activated: {reason}")]
    NotActivatable { id: String, reason: String },
    #[error("no {0} model is active")]
    NothingActive(String),
    #[error(transparent)]
    UnknownType(#[from] crate::model::UnknownType),
    #[error(transparent)]
    Library(#[from] crate::library::LibraryError),
    #[error(transparent)]
    Settings(#[from] SettingsError),
    #[error(transparent)]
    Ollama(#[from] crate::ollama::OllamaError),
    #[error("cannot update {}: {source}", .path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

impl Coded for ActivationError {
    fn code(&self) -> ErrorCode {
        match self {
            ActivationError::NotActivatable { .. } | ActivationError::UnknownType(_) => ErrorCode::InvalidInput,
            ActivationError::NothingActive(_) => ErrorCode::NotFound,
            ActivationError::Library(e) => e.code(),
            ActivationError::Settings(e) => e.code(),
            ActivationError::Ollama(e) => e.code(),
            ActivationError::Io { source, .. } => ErrorCode::of_io(source),
        }
    }
}

/// Where activation writes: the app's data folder, and the cache and settings it reads.
#[derive(Debug, Clone)]
pub struct Activation {
    pub cache_dir: PathBuf,
    pub data_dir: PathBuf,
    pub store: SettingsStore,
}

pub fn parse_type(s: &str) -> Result<ModelType, ActivationError> {
    Ok(s.parse::<ModelType>()?)
}

impl Activation {
    pub fn manifest_path(&self) -> PathBuf {
        self.data_dir.join("active.json")
    }

    pub fn link_path(&self, model_type: ModelType) -> PathBuf {
        self.data_dir.join("active").join(model_type.as_str())
    }

    /// Makes `id` the active model of its type (or of `model_type`), replacing the one before in one step.
    /// Returns the entry and the lifecycle events (the old one deactivated, the new one activated).
    pub fn activate(
        &self,
        id: &str,
        model_type: Option<ModelType>,
        revision: Option<&str>,
    ) -> Result<(ActiveEntry, Vec<ModelLifecycle>), ActivationError> {
        let (settings, _) = self.store.load()?;
        if let Some(local) = crate::local::list::find(&settings, &self.data_dir, id) {
            return self.activate_local(local, model_type);
        }
        let (repo, _, _) = find_repo(&self.cache_dir, &settings, id)?;
        let model = model_of(&repo, crate::library::ModelSource::HuggingFace, &settings);
        let not = |reason: String| ActivationError::NotActivatable { id: repo.repo_id.clone(), reason };
        let target = match revision {
            Some(r) => crate::library::delete::find_revision(&repo.revisions, r)
                .ok_or_else(|| not(format!("it has no revision \"{r}\" on this machine")))?,
            None => repo.revisions.first().ok_or_else(|| not("nothing of it is on disk yet".into()))?,
        };
        if !target.missing.is_empty() {
            return Err(not(format!(
                "it is incomplete ({} of its files are missing, e.g. {}): finish the download or repair it first",
                target.missing.len(),
                target.missing[0]
            )));
        }
        if model.status == ModelStatus::Partial && !repo.incomplete.is_empty() {
            return Err(not("a download of it is unfinished: finish or cancel it first".into()));
        }
        let snapshot = Path::new(&repo.path).join("snapshots").join(&target.commit);
        if !snapshot.is_dir() || target.files.is_empty() {
            return Err(not("its snapshot folder is empty or missing".into()));
        }
        let model_type = model_type.unwrap_or(model.model_type);
        let chosen = ActiveModel {
            id: repo.repo_id.clone(),
            revision: target.commit.clone(),
            activated_at: Some(crate::format::now_unix()),
        };
        self.switch_to(model_type, chosen)
    }

    /// An imported, downloaded-by-URL or library-folder model: its file (or folder) is what the link points at.
    fn activate_local(
        &self,
        local: crate::local::list::LocalModel,
        model_type: Option<ModelType>,
    ) -> Result<(ActiveEntry, Vec<ModelLifecycle>), ActivationError> {
        if let Some(err) = &local.model.error {
            return Err(ActivationError::NotActivatable { id: local.model.id.clone(), reason: err.message.clone() });
        }
        let chosen = ActiveModel {
            id: local.model.id.clone(),
            revision: local.sha256.clone().unwrap_or_else(|| "local".into()),
            activated_at: Some(crate::format::now_unix()),
        };
        self.switch_to(model_type.unwrap_or(local.model.model_type), chosen)
    }

    /// [`Activation::activate`] for any model: an Ollama model is asked of the server for its file first.
    pub async fn activate_any(
        &self,
        ollama: &crate::ollama::Ollama,
        id: &str,
        model_type: Option<ModelType>,
        revision: Option<&str>,
    ) -> Result<(ActiveEntry, Vec<ModelLifecycle>), ActivationError> {
        let Some(name) = id.strip_prefix(crate::ollama::OLLAMA_PREFIX) else {
            return self.activate(id, model_type, revision);
        };
        let file = ollama.model_file(name).await?;
        let model_type = match model_type {
            Some(t) => t,
            None => {
                let (settings, _) = self.store.load()?;
                let listed = ollama.models(&settings).await.into_iter().find(|m| m.id == id);
                listed.map(|m| m.model_type).unwrap_or(ModelType::TextGeneration)
            }
        };
        self.activate_file(id, model_type, &file)
    }

    /// A model whose file another program keeps (an Ollama model): `file` is what the link points at, and is
    /// remembered with the mark so that no server is asked when the links are rewritten.
    pub fn activate_file(
        &self,
        id: &str,
        model_type: ModelType,
        file: &Path,
    ) -> Result<(ActiveEntry, Vec<ModelLifecycle>), ActivationError> {
        if !file.is_file() {
            return Err(ActivationError::NotActivatable {
                id: id.to_string(),
                reason: format!("its file {} is not readable from here", file.display()),
            });
        }
        let chosen = ActiveModel {
            id: id.to_string(),
            revision: file.display().to_string(),
            activated_at: Some(crate::format::now_unix()),
        };
        self.switch_to(model_type, chosen)
    }

    fn switch_to(
        &self,
        model_type: ModelType,
        chosen: ActiveModel,
    ) -> Result<(ActiveEntry, Vec<ModelLifecycle>), ActivationError> {
        let (settings, previous, published) = self.store.update_then(
            |s| Ok(s.active.insert(model_type.as_str().to_string(), chosen.clone())),
            |s| self.publish(s),
        )?;
        published?;
        let mut events = Vec::new();
        if let Some(old) = previous.filter(|old| old.id != chosen.id || old.revision != chosen.revision) {
            events.push(lifecycle(LifecycleKind::Deactivated, &old.id, &old.revision));
        }
        events.push(lifecycle(LifecycleKind::Activated, &chosen.id, &chosen.revision));
        let entry = self.entries(&settings).remove(&model_type).expect("just activated");
        Ok((entry, events))
    }

    /// Clears the active model of `model_type`.
    pub fn deactivate(&self, model_type: ModelType) -> Result<Vec<ModelLifecycle>, ActivationError> {
        let (_, old, published) =
            self.store.update_then(|s| Ok(s.active.remove(model_type.as_str())), |s| self.publish(s))?;
        let old = old.ok_or_else(|| ActivationError::NothingActive(model_type.to_string()))?;
        published?;
        Ok(vec![lifecycle(LifecycleKind::Deactivated, &old.id, &old.revision)])
    }

    /// Drops active marks whose model is no longer on disk (deleted outside the app), and rewrites the links and
    /// manifest from the settings. Returns a deactivation event for each mark dropped.
    pub fn reconcile(&self) -> Result<Vec<ModelLifecycle>, ActivationError> {
        let (_, removed, published) = self.store.update_then(
            |s| {
                let gone: Vec<String> =
                    s.active.iter().filter(|(_, a)| self.snapshot_of(s, a).is_none()).map(|(t, _)| t.clone()).collect();
                Ok(gone.iter().filter_map(|t| s.active.remove(t)).collect::<Vec<_>>())
            },
            |s| self.publish(s),
        )?;
        published?;
        Ok(removed.iter().map(|a| lifecycle(LifecycleKind::Deactivated, &a.id, &a.revision)).collect())
    }

    /// Records the endpoint of each loaded type and rewrites `active.json` with them.
    pub fn set_endpoints(&self, endpoints: &BTreeMap<ModelType, String>) -> Result<(), ActivationError> {
        let path = self.endpoints_path();
        let (_, (), published) = self.store.update_then(
            |_| Ok(()),
            |s| {
                let bytes = serde_json::to_vec_pretty(endpoints).expect("endpoints serialise");
                crate::disk::write_atomic(&path, &bytes, 0o644)
                    .map_err(|source| ActivationError::Io { path: path.clone(), source })?;
                self.publish(s)
            },
        )?;
        published
    }

    fn endpoints_path(&self) -> PathBuf {
        self.data_dir.join("runtime").join("endpoints.json")
    }

    /// The entries of every active type, as `active.json` holds them.
    pub fn entries(&self, settings: &Settings) -> BTreeMap<ModelType, ActiveEntry> {
        let mut endpoints: BTreeMap<ModelType, String> =
            fs::read(self.endpoints_path()).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default();
        let mut out = BTreeMap::new();
        for (t, active) in &settings.active {
            let (Some(model_type), Some(snapshot)) = (t.parse::<ModelType>().ok(), self.snapshot_of(settings, active))
            else {
                continue;
            };
            // A local model may be one file: it is its own primary file.
            let single = fs::metadata(&snapshot).ok().filter(|m| m.is_file()).map(|m| m.len());
            let files = match single {
                Some(len) => vec![(snapshot.file_name().unwrap_or_default().to_string_lossy().to_string(), len)],
                None => weight_files(&snapshot),
            };
            out.insert(
                model_type,
                ActiveEntry {
                    model_type,
                    id: active.id.clone(),
                    revision: active.revision.clone(),
                    path: snapshot.display().to_string(),
                    link: self.link_path(model_type).display().to_string(),
                    format: ModelFormat::dominant(files.iter().map(|(p, s)| (p.as_str(), *s))),
                    primary_file: match single {
                        Some(_) => Some(snapshot.display().to_string()),
                        None => files
                            .iter()
                            .filter(|(p, _)| ModelFormat::of_path(p).is_some())
                            .max_by_key(|(_, s)| *s)
                            .map(|(p, _)| snapshot.join(p).display().to_string()),
                    },
                    activated_at: active.activated_at,
                    endpoint: endpoints.remove(&model_type),
                },
            );
        }
        out
    }

    fn snapshot_of(&self, settings: &Settings, active: &ActiveModel) -> Option<PathBuf> {
        if active.id.starts_with(crate::ollama::OLLAMA_PREFIX) {
            let file = PathBuf::from(&active.revision);
            return file.is_file().then_some(file);
        }
        if let Some(local) = crate::local::list::find(settings, &self.data_dir, &active.id) {
            return local.path.exists().then_some(local.path);
        }
        // The cache, then the library folders (a model moved to another disk).
        let repo = crate::cache::RepoId::parse(&active.id).ok()?;
        std::iter::once(self.cache_dir.clone())
            .chain(settings.library_folders.iter().map(PathBuf::from))
            .map(|cache| repo.folder(&cache, RepoKind::Model).join("snapshots").join(&active.revision))
            .find(|dir| fs::read_dir(dir).ok().and_then(|mut d| d.next()).is_some())
    }

    /// Writes the links and `active.json` to match `settings` (called under the settings lock): each link replaced
    /// atomically, stale ones removed, the manifest written atomically and durably.
    fn publish(&self, settings: &Settings) -> Result<(), ActivationError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| ActivationError::Io { path, source }
        };
        let entries = self.entries(settings);
        let links = self.data_dir.join("active");
        fs::create_dir_all(&links).map_err(io(&links))?;
        for (t, entry) in &entries {
            let link = self.link_path(*t);
            if fs::read_link(&link).ok().as_deref() == Some(Path::new(&entry.path)) {
                continue;
            }
            crate::disk::symlink_atomic(Path::new(&entry.path), &link).map_err(io(&link))?;
        }
        for t in ModelType::ALL.into_iter().filter(|t| !entries.contains_key(t)) {
            let _ = fs::remove_file(self.link_path(t));
        }
        let manifest: BTreeMap<&str, &ActiveEntry> = entries.iter().map(|(t, e)| (t.as_str(), e)).collect();
        let path = self.manifest_path();
        let bytes = serde_json::to_vec_pretty(&manifest).expect("the manifest serialises");
        crate::disk::write_atomic(&path, &bytes, 0o644).map_err(io(&path))
    }
}

/// Every file of a snapshot with its size (following links), paths relative and `/`-separated.
fn weight_files(snapshot: &Path) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    let mut stack = vec![(snapshot.to_path_buf(), String::new(), 0)];
    while let Some((dir, prefix, depth)) = stack.pop() {
        let Ok(entries) = fs::read_dir(&dir) else { continue };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().to_string();
            let rel = if prefix.is_empty() { name } else { format!("{prefix}/{name}") };
            match fs::metadata(entry.path()) {
                Ok(m) if m.is_dir() && depth < 16 => stack.push((entry.path(), rel, depth + 1)),
                Ok(m) if m.is_file() => out.push((rel, m.len())),
                _ => {}
            }
        }
    }
    out
}

fn lifecycle(kind: LifecycleKind, id: &str, revision: &str) -> ModelLifecycle {
    ModelLifecycle { kind, repo: id.to_string(), revision: revision.to_string(), download_id: None, error: None }
}

/// Reads `active.json` (what other programs read), for `mm active`.
pub fn read_manifest(data_dir: &Path) -> BTreeMap<String, ActiveEntry> {
    fs::read(data_dir.join("active.json")).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default()
}
