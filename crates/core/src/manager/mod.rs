//! The one facade the app's three faces call: the window (Tauri), `mm` and `mm serve`. A [`Manager`] owns the
//! settings store, the download queue, activation, discover, the other sources (local imports, the Ollama server
//! and its pulls) and one event stream, and offers each operation once, with the one error shape
//! ([`ErrorPayload`]) every face maps to its own (an exit code, an HTTP status, a rejected promise).

mod loading;
mod machines;
mod operations;
mod pulls;
mod room;
mod runtimes;
mod serving;
mod stats;

pub use serving::ServedModel;
pub use stats::{FolderBytes, Statistics};

use crate::activation::{parse_type, Activation, ActiveEntry};
use crate::cache::CacheScan;
use crate::compat::local::ModelFit;
use crate::compat::{hardware, local, remote, CompatReport, HardwareInfo};
use crate::discover::{catalog, Discover, RepoDetails, SearchPage, SearchQuery, StarterCatalog};
use crate::download::{
    DownloadEvent, DownloadOptions, DownloadPreview, DownloadProgress, DownloadRequest, DownloadState, Downloads,
    LifecycleKind, ModelLifecycle,
};
use crate::error::{Coded, ErrorCode, ErrorPayload};
use crate::hub::{HubClient, HubConfig};
use crate::library::delete::DeleteReport;
use crate::library::index::{Folders, LibraryIndex, Listed, MAX_SETTLE, SETTLE, UNWATCHED};
use crate::library::storage::{CleanReport, StorageReport};
use crate::library::verify::{VerifyProgress, VerifyReport};
use crate::library::{delete, fit, list, storage, verify, LibraryQuery, ModelDetails};
use crate::local::{ImportOptions, ImportOutcome, ImportProgress, ImportStatus};
use crate::model::{LibraryModel, ModelType};
use crate::ollama::{Ollama, OllamaStatus, OLLAMA_PREFIX};
use crate::operations::RepoCancelled;
use crate::remote::Remote;
use crate::runtime::host::HostConfig;
use crate::runtime::{LoadedModel, RuntimeChange, RuntimeClient};
use crate::settings::{MachineEntry, Settings, SettingsPatch, SettingsStore, SettingsView};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

/// What a [`Manager`] is opened over. Every field but `store` and `data_dir` may be left to the settings and the
/// environment.
pub struct ManagerConfig {
    /// The settings file (shared by the app, `mm` and `mm serve`).
    pub store: SettingsStore,
    /// The app's data folder: the active links and manifest, the models folder, the log.
    pub data_dir: PathBuf,
    /// The Hugging Face cache; default: the settings' one, else the one `huggingface_hub` finds.
    pub cache_dir: Option<PathBuf>,
    /// The hub; default: the settings' endpoint and token, else `HF_ENDPOINT` and `HF_TOKEN`.
    pub hub: Option<HubConfig>,
    /// Where unfinished downloads are kept across restarts; none: they end with the process.
    pub journal: Option<PathBuf>,
    /// The Ollama server; default: `OLLAMA_HOST`.
    pub ollama: Option<Ollama>,
    pub download_options: DownloadOptions,
    /// Who this face is to the runtime host: "app" and "serve" unload what they loaded when they quit; "mm"'s
    /// loads stay.
    pub runtime_owner: &'static str,
}

impl ManagerConfig {
    /// The settings file and data folder of this user, everything else from them and the environment.
    pub fn from_env() -> ManagerConfig {
        ManagerConfig::new(SettingsStore::default_location(), crate::paths::app_data_dir())
    }

    pub fn new(store: SettingsStore, data_dir: PathBuf) -> ManagerConfig {
        ManagerConfig {
            store,
            data_dir,
            cache_dir: None,
            hub: None,
            journal: None,
            ollama: None,
            download_options: DownloadOptions::default(),
            runtime_owner: "mm",
        }
    }
}

/// The app's core, opened once per process and shared (cheaply cloned) by every request of a face.
#[derive(Clone)]
pub struct Manager {
    inner: Arc<Inner>,
}

struct Inner {
    cache_dir: PathBuf,
    /// The hub the config named, over what the settings say (tests, `mm serve --upstream`).
    hub_override: Option<HubConfig>,
    store: SettingsStore,
    /// The settings as last read or written, and the warning of a recovered file.
    settings: Mutex<(Settings, Option<String>)>,
    downloads: Downloads,
    activation: Activation,
    discover: Discover,
    ollama: Ollama,
    pulls: pulls::Pulls,
    /// What stops the imports running now (all of them: a face has one Cancel); renewed once used.
    imports: Mutex<CancellationToken>,
    runtime: RuntimeClient,
    runtime_owner: &'static str,
    /// The runtime host's changes, relayed while someone listens ([`Manager::watch_runtime`]).
    runtime_changes: broadcast::Sender<RuntimeChange>,
    /// The loaded models as last heard, for what must not wait on the host (the tray's menu).
    last_loaded: Mutex<Vec<LoadedModel>>,
    /// Wakes [`Manager::watch_runtime`] when this process has just started a host (a load).
    runtime_started: tokio::sync::Notify,
    /// Model names the endpoint resolved, with their models ([`Manager::resolve`]).
    resolved: Mutex<std::collections::HashMap<String, (crate::runtime::Target, Option<String>)>>,
    /// Held while models are removed to make room: one eviction at a time.
    evicting: tokio::sync::Mutex<()>,
    /// Files the Hub mirror of this process served.
    mirror_hits: std::sync::atomic::AtomicU64,
    /// The settings file as last read (its time and length): read again only when it changed.
    settings_stamp: Mutex<Option<(std::time::SystemTime, u64)>>,
    /// The library as last listed, while it is what the disk holds.
    library: Arc<LibraryIndex>,
    /// Told each time what the library lists changed on disk ([`Manager::keep_library_current`]).
    library_changes: broadcast::Sender<()>,
    /// The last answer of [`Manager::models`], with what it was made of: a client that polls the list is answered
    /// without a copy while none of it changed.
    models_memo: Mutex<Option<ModelsMemo>>,
}

/// An answer of [`Manager::models`] and what it was made of.
struct ModelsMemo {
    /// Held, so that no later listing can take its address.
    listed: Arc<Listed>,
    downloads: Vec<crate::download::DownloadProgress>,
    ollama: Vec<LibraryModel>,
    query: LibraryQuery,
    answer: Arc<Vec<LibraryModel>>,
}

/// A blocking task's panic as an internal error.
fn joined<T>(result: Result<T, tokio::task::JoinError>) -> Result<T, ErrorPayload> {
    result.map_err(|e| ErrorPayload::new(ErrorCode::Internal, e.to_string()))
}

/// Runs `f` on a blocking thread and maps its module error to the wire shape.
async fn blocking<T: Send + 'static, E: Coded + Send + 'static>(
    f: impl FnOnce() -> Result<T, E> + Send + 'static,
) -> Result<T, ErrorPayload> {
    joined(tokio::task::spawn_blocking(f).await)?.map_err(|e| e.payload())
}

fn payload<E: Coded>(err: E) -> ErrorPayload {
    err.payload()
}

/// A hub client; an endpoint that does not parse falls back to the default one (each request then says so).
fn client(config: HubConfig) -> HubClient {
    HubClient::new(config.clone()).unwrap_or_else(|_| {
        HubClient::new(HubConfig { endpoint: crate::hub::config::DEFAULT_ENDPOINT.into(), ..config })
            .expect("the default endpoint parses")
    })
}

impl Manager {
    /// Opens the core over `config`. A settings file that cannot be read is replaced by defaults, and the
    /// warning kept for [`Manager::settings_view`].
    pub fn open(config: ManagerConfig) -> Manager {
        let loaded = config.store.load().unwrap_or_else(|e| (Settings::default(), Some(e.to_string())));
        Manager::with_settings(config, loaded)
    }

    /// The same, failing when the settings file cannot be read at all (`mm` stops rather than run on defaults).
    pub fn try_open(config: ManagerConfig) -> Result<Manager, ErrorPayload> {
        let loaded = config.store.load().map_err(payload)?;
        Ok(Manager::with_settings(config, loaded))
    }

    /// Over settings already read, with the warning of a file that had to be replaced.
    fn with_settings(config: ManagerConfig, (settings, warning): (Settings, Option<String>)) -> Manager {
        let ManagerConfig { store, data_dir, cache_dir, hub, journal, ollama, download_options, runtime_owner } =
            config;
        let cache_dir = cache_dir
            .or_else(|| settings.cache_dir.as_ref().map(PathBuf::from))
            .unwrap_or_else(crate::cache::hub_cache_dir);
        let hub_override = hub;
        let hub = client(hub_override.clone().unwrap_or_else(|| HubConfig::from_settings(&settings)));
        let discover = Discover::new(hub.clone(), cache_dir.clone());
        let downloads = match journal {
            Some(journal) => Downloads::with_journal(hub, cache_dir.clone(), download_options, journal),
            None => Downloads::new(hub, cache_dir.clone(), download_options),
        };
        downloads.apply_settings(&settings);
        let ollama = ollama.unwrap_or_else(Ollama::from_env);
        let runtime = RuntimeClient::new(HostConfig {
            data_dir: data_dir.clone(),
            settings: store.path().to_path_buf(),
            cache_dir: cache_dir.clone(),
            ollama: ollama.host().to_string(),
        });
        let activation = Activation { cache_dir: cache_dir.clone(), data_dir, store: store.clone() };
        Manager {
            inner: Arc::new(Inner {
                cache_dir,
                hub_override,
                store,
                settings: Mutex::new((settings, warning)),
                downloads,
                activation,
                discover,
                ollama,
                pulls: pulls::Pulls::default(),
                imports: Mutex::new(CancellationToken::new()),
                runtime,
                runtime_owner,
                runtime_changes: broadcast::channel(64).0,
                last_loaded: Mutex::new(Vec::new()),
                runtime_started: tokio::sync::Notify::new(),
                resolved: Mutex::default(),
                mirror_hits: Default::default(),
                evicting: Default::default(),
                settings_stamp: Mutex::default(),
                library: Arc::default(),
                library_changes: broadcast::channel(16).0,
                models_memo: Mutex::new(None),
            }),
        }
    }

    // --- Where things are ---

    /// The Hugging Face cache this core reads and writes (fixed for its lifetime).
    pub fn cache_dir(&self) -> &Path {
        &self.inner.cache_dir
    }

    /// The app's data folder.
    pub fn data_dir(&self) -> &Path {
        &self.inner.activation.data_dir
    }

    pub fn store(&self) -> &SettingsStore {
        &self.inner.store
    }

    /// Where the app writes its log.
    pub fn log_dir(&self) -> PathBuf {
        crate::logs::log_dir(self.data_dir())
    }

    pub fn ollama(&self) -> &Ollama {
        &self.inner.ollama
    }

    // --- Events ---

    /// Every download's progress (throttled at the source to ~10 a second while bytes move, and on each state
    /// change) and every model's lifecycle (queued, started, completed, failed, cancelled, deleted, imported,
    /// activated, deactivated), Ollama pulls included. A receiver that falls behind misses events; it never
    /// slows a download.
    pub fn subscribe(&self) -> broadcast::Receiver<DownloadEvent> {
        self.inner.downloads.subscribe()
    }

    fn publish_lifecycle(&self, changes: Vec<ModelLifecycle>) {
        if !changes.is_empty() {
            self.inner.library.touch();
            self.inner.resolved.lock().expect("resolved").clear();
        }
        for change in changes {
            self.inner.downloads.publish(DownloadEvent::Lifecycle(change));
        }
    }

    /// Records that a model was used now (activated, loaded, asked for, served): what a storage limit goes by.
    pub fn used(&self, id: &str) {
        let (dir, id, now) = (self.data_dir().to_path_buf(), id.to_string(), crate::format::now_unix());
        // Off the async threads: a write takes the record's lock.
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => drop(handle.spawn_blocking(move || crate::library::usage::record(&dir, &id, now))),
            Err(_) => crate::library::usage::record(&dir, &id, now),
        }
    }

    // --- Settings ---

    pub fn settings(&self) -> Settings {
        self.inner.settings.lock().unwrap().0.clone()
    }

    /// The settings, the token masked, with the warning of a file that had to be replaced by defaults.
    pub fn settings_view(&self) -> SettingsView {
        let (settings, warning) = self.inner.settings.lock().unwrap().clone();
        settings.view(warning)
    }

    /// Validates and saves a change; the queue and the hub clients take it at once (the cache folder at the next
    /// start).
    pub fn update_settings(&self, patch: SettingsPatch) -> Result<SettingsView, ErrorPayload> {
        let clearing = patch.token.as_deref().is_some_and(|t| t.trim().is_empty());
        let (settings, ()) = self.inner.store.update(|s| s.apply(patch)).map_err(payload)?;
        if clearing {
            // Even when no token was seen: a keyring that did not answer may hold one, which must not come back.
            self.inner.store.forget_token().map_err(payload)?;
        }
        self.settings_changed(settings.clone());
        Ok(settings.view(None))
    }

    /// Reads the settings file again (another process changed it); returns the settings before and after.
    pub fn reload_settings(&self) -> Result<(Settings, Settings), ErrorPayload> {
        let (settings, _) = self.inner.store.load().map_err(payload)?;
        let before = self.settings();
        self.settings_changed(settings.clone());
        Ok((before, settings))
    }

    /// The hub to use under `settings`: the one the config named, else the settings' own.
    fn hub_config(&self, settings: &Settings) -> HubConfig {
        self.inner.hub_override.clone().unwrap_or_else(|| HubConfig::from_settings(settings))
    }

    fn settings_changed(&self, settings: Settings) {
        let inner = &self.inner;
        inner.downloads.apply_settings(&settings);
        inner.downloads.set_hub(client(self.hub_config(&settings)));
        inner.discover.set_hub(client(self.hub_config(&settings)));
        *inner.settings.lock().unwrap() = (settings, None);
        // Names may mean other models now (an import, a type, an adapter linked).
        inner.resolved.lock().expect("resolved").clear();
    }

    /// After this core changed the settings file itself (activation, types, imports): keep the new settings and
    /// publish what changed.
    fn changed(&self, changes: Vec<ModelLifecycle>) {
        self.inner.library.touch();
        if let Ok((settings, _)) = self.inner.store.load() {
            self.settings_changed(settings);
        }
        self.publish_lifecycle(changes);
    }

    // --- The library ---

    /// Every repo in the Hugging Face cache, with revisions, files, sizes and status.
    pub async fn scan_cache(&self) -> Result<CacheScan, ErrorPayload> {
        crate::cache::scan(self.inner.cache_dir.clone()).await.map_err(payload)
    }

    /// Every model (the cache, library folders, imports, URL downloads, Ollama), merged with the download queue,
    /// filtered and sorted by `query`.
    pub async fn models(&self, query: LibraryQuery) -> Result<Arc<Vec<LibraryModel>>, ErrorPayload> {
        let settings = self.settings();
        // The library's key holds the settings, so the same listing means the same settings.
        let listed = self.library(&settings).await?;
        let downloads = self.inner.downloads.list();
        let ollama = self.inner.ollama.models(&settings).await;
        let mut memo = self.inner.models_memo.lock().expect("models memo");
        if let Some(m) = memo.as_ref().filter(|m| {
            Arc::ptr_eq(&m.listed, &listed) && m.downloads == downloads && m.ollama == ollama && m.query == query
        }) {
            return Ok(m.answer.clone());
        }
        let mut models = listed.disk.with_downloads(&downloads, self.cache_dir(), &settings);
        models.extend(ollama.iter().cloned());
        let answer = Arc::new(query.apply(models));
        *memo = Some(ModelsMemo { listed, downloads, ollama, query, answer: answer.clone() });
        Ok(answer)
    }

    /// The models whose files are on this machine's disks (no Ollama), merged with the queue.
    pub async fn models_on_disk(&self, settings: Settings) -> Result<Vec<LibraryModel>, ErrorPayload> {
        let listed = self.library(&settings).await?;
        Ok(listed.disk.with_downloads(&self.inner.downloads.list(), self.cache_dir(), &settings))
    }

    /// What the disks hold for `settings`: kept in memory while it is current ([`LibraryIndex`]).
    pub(crate) async fn library(&self, settings: &Settings) -> Result<Arc<Listed>, ErrorPayload> {
        let (cache_dir, data_dir, owned) =
            (self.inner.cache_dir.clone(), self.data_dir().to_path_buf(), settings.clone());
        let list = move || list::on_disk(&cache_dir, &data_dir, &owned);
        let changes = self.inner.downloads.state_changes();
        self.inner.library.read(|| self.library_folders(settings), settings, changes, list).await.map_err(payload)
    }

    /// The library as last listed, without reading any disk or server again beyond the cache's folders (the
    /// tray's menu).
    pub fn models_now(&self) -> Vec<LibraryModel> {
        let settings = self.settings();
        let (cache_dir, data_dir) = (self.cache_dir(), self.data_dir());
        let changes = self.inner.downloads.state_changes();
        let listed = self.inner.library.read_blocking(
            || self.library_folders(&settings),
            &settings,
            changes,
            || list::on_disk(cache_dir, data_dir, &settings),
        );
        let mut models = listed
            .map(|l| l.disk.with_downloads(&self.inner.downloads.list(), cache_dir, &settings))
            .unwrap_or_default();
        models.extend(self.inner.ollama.cached_models());
        models
    }

    /// What a listing for `settings` reads.
    fn library_folders(&self, settings: &Settings) -> Folders {
        let mut trees = vec![self.cache_dir().to_path_buf(), crate::local::models_dir(self.data_dir())];
        trees.extend(settings.library_folders.iter().map(PathBuf::from));
        let files = settings.imports.iter().map(|m| PathBuf::from(&m.path)).collect();
        Folders { trees, files, data_dir: self.data_dir().to_path_buf() }
    }

    /// Keeps the library in memory from now on, for a face that lives (the window, `mm serve`): the folders it
    /// comes from are watched, and [`Manager::subscribe_library`] hears each change in what it lists.
    pub fn keep_library_current(&self) {
        if !self.inner.library.keep_current() {
            return;
        }
        // Made now, so that they are watched before anything lands in them.
        for dir in [self.cache_dir().to_path_buf(), crate::local::models_dir(self.data_dir())] {
            if let Err(err) = std::fs::create_dir_all(&dir) {
                tracing::warn!(%err, dir = %dir.display(), "cannot make a library folder");
            }
        }
        let (index, inner) = (self.inner.library.clone(), Arc::downgrade(&self.inner));
        tokio::spawn(async move {
            let listed = |inner: &Arc<Inner>| {
                let manager = Manager { inner: inner.clone() };
                async move { manager.models_on_disk(manager.settings()).await.ok() }
            };
            let Some(mut last) = (match inner.upgrade() {
                Some(inner) => listed(&inner).await,
                None => return,
            }) else {
                return;
            };
            loop {
                // A change is told once the changes pause (a copy writes many times), or at most MAX_SETTLE after
                // the first; without a watcher on every folder, the library is listed again every second.
                if index.watching_all() {
                    index.noticed().await;
                    let deadline = tokio::time::Instant::now() + MAX_SETTLE;
                    loop {
                        let settle = tokio::time::sleep(SETTLE);
                        tokio::select! {
                            _ = index.noticed() => if tokio::time::Instant::now() >= deadline { break },
                            _ = settle => break,
                        }
                    }
                } else {
                    tokio::time::sleep(UNWATCHED).await;
                }
                let Some(inner) = inner.upgrade() else { return };
                let Some(now) = listed(&inner).await else { continue };
                if now != last {
                    last = now;
                    let _ = inner.library_changes.send(());
                }
            }
        });
    }

    /// Each change in what the library lists, once [`Manager::keep_library_current`] was called.
    pub fn subscribe_library(&self) -> broadcast::Receiver<()> {
        self.inner.library_changes.subscribe()
    }

    /// Everything about one model: revisions, files and hashes, card.
    pub async fn model(&self, id: &str) -> Result<ModelDetails, ErrorPayload> {
        if id.starts_with(OLLAMA_PREFIX) {
            let models = self.inner.ollama.models(&self.settings()).await;
            let model = models.into_iter().find(|m| m.id == id).ok_or_else(|| {
                ErrorPayload::new(
                    ErrorCode::NotFound,
                    format!("{id} is not on the Ollama server at {}", self.inner.ollama.host()),
                )
            })?;
            return Ok(ModelDetails { model, revisions: Vec::new(), card: None });
        }
        let (cache_dir, data_dir, settings, id) =
            (self.inner.cache_dir.clone(), self.data_dir().to_path_buf(), self.settings(), id.to_string());
        blocking(move || list::details_any(&cache_dir, &data_dir, &settings, &id)).await
    }

    /// Deletes a model or one revision (blobs other revisions use are kept); with `dry_run`, says what would be
    /// freed. An imported model referenced in place is only forgotten; an Ollama model is deleted by its server.
    /// The report names the adapters that lose their base when a whole model goes.
    pub async fn delete(&self, id: &str, revision: Option<&str>, dry_run: bool) -> Result<DeleteReport, ErrorPayload> {
        let settings = self.settings();
        let data_dir = self.data_dir().to_path_buf();
        let adapters = match id.starts_with(OLLAMA_PREFIX) {
            true => Vec::new(),
            false => self
                .models_on_disk(settings.clone())
                .await
                .ok()
                .and_then(|all| all.into_iter().find(|m| m.id == id))
                .map(|m| m.adapters)
                .unwrap_or_default(),
        };
        let mut report = if let Some(name) = id.strip_prefix(OLLAMA_PREFIX) {
            let models = self.inner.ollama.models(&settings).await;
            let size = models.into_iter().find(|m| m.id == id).map(|m| m.size).unwrap_or(0);
            if !dry_run {
                self.inner.ollama.delete(name).await.map_err(payload)?;
            }
            whole_model_report(id, size, dry_run)
        } else if let Some(local) = crate::local::list::find(&settings, &data_dir, id) {
            let size = if local.owned { local.model.size } else { 0 };
            if !dry_run {
                let (store, id) = (self.inner.store.clone(), id.to_string());
                blocking(move || crate::local::list::delete(&store, &data_dir, &id)).await?;
            }
            whole_model_report(id, size, dry_run)
        } else {
            let (cache_dir, queue) = (self.inner.cache_dir.clone(), self.inner.downloads.list());
            let (id, revision) = (id.to_string(), revision.map(str::to_string));
            blocking(move || delete::delete(&cache_dir, &settings, &queue, &id, revision.as_deref(), dry_run)).await?
        };
        if report.whole_model {
            report.adapters = adapters;
            if !report.dry_run {
                crate::library::usage::forget(self.data_dir(), &report.id);
            }
        }
        if !report.dry_run {
            self.publish_lifecycle(vec![ModelLifecycle {
                kind: LifecycleKind::Deleted,
                repo: report.id.clone(),
                revision: report.revision.clone().unwrap_or_default(),
                download_id: None,
                error: None,
            }]);
        }
        Ok(report)
    }

    /// Re-hashes a model's files against their hashes, with `progress` per file.
    pub async fn verify(
        &self,
        id: &str,
        revision: Option<&str>,
        progress: impl FnMut(VerifyProgress) + Send + 'static,
    ) -> Result<VerifyReport, ErrorPayload> {
        let (cache_dir, settings) = (self.inner.cache_dir.clone(), self.settings());
        let (id, revision) = (id.to_string(), revision.map(str::to_string));
        blocking(move || verify::verify(&cache_dir, &settings, &id, revision.as_deref(), progress)).await
    }

    /// Downloads the bad files of a verification again, and verifies once more: the repair's download (none when
    /// nothing was bad) and the new report.
    async fn repair(&self, report: &VerifyReport) -> Result<VerifyReport, ErrorPayload> {
        verify::repair(&self.inner.cache_dir, &self.inner.downloads, report).await.map_err(payload)?;
        let mut after = self.verify(&report.id, Some(&report.commit), |_| {}).await?;
        after.repaired = report.bad().map(|f| f.path.clone()).collect();
        Ok(after)
    }

    /// Verifies a model (with `progress`) and, with `repair` and something bad, downloads exactly the bad files
    /// again and verifies once more: the one verify-then-repair every face offers. The report is of after, and
    /// names what was fetched again.
    pub async fn verify_and_repair(
        &self,
        id: &str,
        revision: Option<&str>,
        repair: bool,
        progress: impl FnMut(VerifyProgress) + Send + 'static,
    ) -> Result<VerifyReport, ErrorPayload> {
        let report = self.verify(id, revision, progress).await?;
        match repair && !report.ok {
            true => self.repair(&report).await,
            false => Ok(report),
        }
    }

    /// Remembers the type the user chose (`None` goes back to the inferred one).
    pub fn set_type(&self, id: &str, model_type: Option<&str>) -> Result<(), ErrorPayload> {
        list::set_type(&self.inner.store, id, model_type).map_err(payload)?;
        self.changed(Vec::new());
        Ok(())
    }

    /// Disk use per model, free space, and what can be reclaimed.
    pub async fn storage(&self) -> Result<StorageReport, ErrorPayload> {
        let cache_dir = self.inner.cache_dir.clone();
        blocking(move || storage::report(&cache_dir)).await
    }

    /// Deletes orphan blobs and partial downloads no one is resuming.
    pub async fn clean(&self) -> Result<CleanReport, ErrorPayload> {
        let cache_dir = self.inner.cache_dir.clone();
        // A paused download's partial files are work to resume, in this process or another (its journal).
        let mut pending: Vec<String> =
            self.inner.downloads.list().into_iter().filter(|d| !d.state.is_finished()).map(|d| d.repo).collect();
        for journal in crate::paths::download_journals(self.data_dir()) {
            pending.extend(crate::download::queue::read_journal(&journal).into_iter().flatten().map(|r| r.repo));
        }
        let (dir, kept) = (cache_dir.clone(), pending.clone());
        let mut done = blocking(move || storage::clean(&dir, &kept)).await?;
        // Then the revisions nothing names (of repos no download is still filling), but an active one and one
        // fetched within a day (a download by commit names no ref).
        let report = blocking(move || storage::report(&cache_dir)).await?;
        let active = self.active();
        let recent = |r: &crate::library::storage::DetachedRevision| {
            let repo = crate::cache::RepoId::parse(&r.repo).ok();
            repo.map(|repo| {
                repo.folder(&self.inner.cache_dir, crate::cache::RepoKind::Model).join("snapshots").join(&r.commit)
            })
            .and_then(|snapshot| std::fs::metadata(snapshot).and_then(|m| m.modified()).ok())
            .is_some_and(|t| t.elapsed().is_ok_and(|age| age < std::time::Duration::from_secs(24 * 3600)))
        };
        for r in report.detached_revisions.iter().filter(|r| !pending.contains(&r.repo)) {
            if active.values().any(|a| a.id == r.repo && a.revision == r.commit) || recent(r) {
                continue;
            }
            match self.delete(&r.repo, Some(&r.commit), false).await {
                Ok(removed) => {
                    tracing::info!(repo = %r.repo, commit = %r.commit, bytes = removed.bytes_freed, "pruned a detached revision");
                    done.revisions_removed += 1;
                    done.bytes_freed += removed.bytes_freed;
                }
                Err(e) => {
                    tracing::warn!(repo = %r.repo, commit = %r.commit, "a detached revision was kept: {}", e.message)
                }
            }
        }
        Ok(done)
    }

    /// `path` when it is a model's folder (or file) of this library, as a real path; else why not. What a face
    /// may open in a file manager.
    pub fn model_folder(&self, path: &str) -> Result<PathBuf, ErrorPayload> {
        let settings = self.settings();
        // Compared as real paths: `..` and links are resolved first, so `{cache}/../etc` is not in the cache.
        let real = |p: &Path| std::fs::canonicalize(p).ok();
        let asked = real(Path::new(path));
        // A local model may be one file: its folder opens.
        let local = crate::local::list::local_models(&settings, self.data_dir());
        let is_model = |asked: &Path| local.iter().any(|m| real(Path::new(&m.path)).as_deref() == Some(asked));
        let inside_source = |asked: &Path| {
            list::sources(self.cache_dir(), &settings)
                .iter()
                .any(|(dir, _)| real(dir).is_some_and(|d| asked.starts_with(d)))
        };
        let folder = asked.as_deref().filter(|a| is_model(a) || inside_source(a)).map(|a| {
            if a.is_file() {
                a.parent().unwrap_or(a).to_path_buf()
            } else {
                a.to_path_buf()
            }
        });
        folder.filter(|f| f.is_dir()).ok_or_else(|| {
            ErrorPayload::new(ErrorCode::InvalidInput, format!("{path} is not a model folder of this library"))
        })
    }

    // --- Activation ---

    /// Makes a model the active one of its type (or of `model_type`), switching from the one before in one step;
    /// with the changes published (the model that left, the one that came).
    pub async fn activate(
        &self,
        id: &str,
        model_type: Option<&str>,
        revision: Option<&str>,
    ) -> Result<(ActiveEntry, Vec<ModelLifecycle>), ErrorPayload> {
        let model_type = model_type.map(parse_type).transpose().map_err(payload)?;
        // An adapter runs on its base: the endpoint names it `BASE+ADAPTER`; a type's endpoint serves a model.
        if !id.starts_with(OLLAMA_PREFIX) {
            let models = self.models_on_disk(self.settings()).await.unwrap_or_default();
            if let Some(adapter) = models.iter().find(|m| m.id == id).and_then(|m| m.adapter.as_ref()) {
                let how = match &adapter.base {
                    Some(base) => format!("activate {base}, and name it {base}+{id} on the model endpoint"),
                    None => adapter.problem.clone().unwrap_or_else(|| "link it to its base first".into()),
                };
                return Err(ErrorPayload::new(
                    ErrorCode::InvalidInput,
                    format!("{id} is an adapter, which runs on a base: {how}"),
                ));
            }
        }
        let (entry, changes) =
            self.inner.activation.activate_any(&self.inner.ollama, id, model_type, revision).await.map_err(payload)?;
        self.used(id);
        self.changed(changes.clone());
        self.inner.runtime.sync().await;
        Ok((entry, changes))
    }

    /// Clears the active model of a type; the change published.
    pub async fn deactivate(&self, model_type: &str) -> Result<Vec<ModelLifecycle>, ErrorPayload> {
        let model_type = parse_type(model_type).map_err(payload)?;
        let changes = self.inner.activation.deactivate(model_type).map_err(payload)?;
        self.changed(changes.clone());
        self.inner.runtime.sync().await;
        Ok(changes)
    }

    /// Forgets active models whose files are gone (deleted outside the app).
    pub fn reconcile_activation(&self) -> Result<(), ErrorPayload> {
        let changes = self.inner.activation.reconcile().map_err(payload)?;
        if !changes.is_empty() {
            self.changed(changes);
        }
        Ok(())
    }

    /// The active model of each type, as `active.json` says.
    pub fn active(&self) -> BTreeMap<ModelType, ActiveEntry> {
        self.inner.activation.entries(&self.settings())
    }

    /// Where a type's active-model link is.
    pub fn active_link(&self, model_type: ModelType) -> PathBuf {
        self.inner.activation.link_path(model_type)
    }

    // --- Compatibility ---

    /// This machine: GPUs and VRAM, RAM, CPU and its features, OS, free disk where the cache is.
    pub async fn system(&self) -> Result<HardwareInfo, ErrorPayload> {
        let cache_dir = self.inner.cache_dir.clone();
        joined(tokio::task::spawn_blocking(move || hardware::probe(&cache_dir)).await)
    }

    /// Will a model run here: a local or Ollama model of the library, a file or folder on this machine (an
    /// absolute path), a model in the cache, else a hub repo (its headers read remotely).
    /// Sized for `load` (the settings a form holds), else for the model's kept load settings.
    pub async fn compat(
        &self,
        target: &str,
        revision: Option<&str>,
        context: Option<u64>,
        load: Option<crate::settings::LoadSettings>,
    ) -> Result<CompatReport, ErrorPayload> {
        let hw = self.system().await?;
        let settings = self.settings();
        // An adapter is assessed as its base with the adapters loaded beside it.
        let models = self.models_on_disk(settings.clone()).await.unwrap_or_default();
        let (subject, extra) = crate::library::adapters::runs_as(&models, target).unwrap_or((target.to_string(), 0));
        let sizing = crate::compat::estimate::Sizing {
            extra_weights: extra,
            ..load.unwrap_or_else(|| settings.load_of(&subject)).sizing()
        };
        let report = self.compat_as_is(&subject, revision, context, &hw, &settings).await?;
        Ok(crate::compat::estimate::resized(CompatReport { model: target.to_string(), ..report }, sizing, context, &hw))
    }

    async fn compat_as_is(
        &self,
        target: &str,
        revision: Option<&str>,
        context: Option<u64>,
        hw: &HardwareInfo,
        settings: &Settings,
    ) -> Result<CompatReport, ErrorPayload> {
        let (hw, settings) = (hw.clone(), settings.clone());
        if let Some(m) = crate::local::list::find(&settings, self.data_dir(), target) {
            let (path, target) = (m.path.clone(), target.to_string());
            return blocking(move || local::assess_path(&path, context, &hw))
                .await
                .map(|r| CompatReport { model: target, ..r });
        }
        if let Some(name) = target.strip_prefix(OLLAMA_PREFIX) {
            return local::assess_ollama(&self.inner.ollama, name, context, &hw).await.map_err(payload);
        }
        if target.starts_with('/') {
            let path = crate::paths::checked_input_path(target)?;
            return blocking(move || local::assess_path(&path, context, &hw)).await;
        }
        if revision.is_none() {
            if let Ok(report) = fit::assess_model(&self.inner.cache_dir, &settings, target, context, &hw) {
                return Ok(report);
            }
        }
        let hub = HubClient::new(self.hub_config(&settings)).map_err(payload)?;
        remote::assess_repo(&hub, &self.inner.cache_dir, target, revision, context, &hw).await.map_err(payload)
    }

    /// The fit of every model in the library, from one hardware probe; Ollama's from the files the server names.
    pub async fn fit(&self) -> Result<BTreeMap<String, ModelFit>, ErrorPayload> {
        let settings = self.settings();
        let models = self.models_on_disk(settings.clone()).await.unwrap_or_default();
        let cache_dir = self.inner.cache_dir.clone();
        let (mut fits, hw) = joined(
            tokio::task::spawn_blocking(move || {
                let hw = hardware::probe(&cache_dir);
                (fit::library_fit(&cache_dir, &settings, &models, &hw), hw)
            })
            .await,
        )?;
        let ollama_models = self.inner.ollama.models(&self.settings()).await;
        fits.extend(local::ollama_fit(&self.inner.ollama, &ollama_models, &hw).await);
        // How far the estimate was off for the models loaded here before.
        let mut latest: BTreeMap<String, crate::compat::measured::Measurement> = BTreeMap::new();
        for m in crate::compat::measured::read_all(self.data_dir()) {
            if latest.get(&m.id).is_none_or(|o| o.at < m.at) {
                latest.insert(m.id.clone(), m);
            }
        }
        for (id, m) in latest {
            if let Some(fit) = fits.get_mut(&id) {
                fit.summary = format!("{}. {}", fit.summary.trim_end_matches('.'), m.summary());
                fit.measured = Some(m);
            }
        }
        Ok(fits)
    }

    // --- Discover ---

    /// One page of the hub's search; a newer search cancels this one (it then fails with `cancelled`).
    pub async fn search(&self, query: &SearchQuery, next: Option<&str>) -> Result<SearchPage, ErrorPayload> {
        self.inner.discover.search(query, next).await.map_err(payload)
    }

    /// A repo's files, quantisations and card, without downloading it.
    pub async fn repo_details(&self, repo: &str, revision: Option<&str>) -> Result<RepoDetails, ErrorPayload> {
        self.inner.discover.details(repo, revision).await.map_err(payload)
    }

    /// The starter catalog, marked with what is installed; it needs no network.
    pub async fn catalog(&self) -> Result<StarterCatalog, ErrorPayload> {
        let (cache_dir, offline) = (self.inner.cache_dir.clone(), self.inner.discover.offline());
        joined(tokio::task::spawn_blocking(move || catalog::starter(&cache_dir, offline)).await)
    }

    // --- Downloads ---

    /// What downloading would fetch: files, sizes, what is already cached, and free space.
    /// Past the storage limit or the free-space floor, its `room` says what would be removed.
    pub async fn preview(&self, request: DownloadRequest) -> Result<DownloadPreview, ErrorPayload> {
        let mut preview = self.inner.downloads.preview(request).await.map_err(payload)?;
        preview.room = self.room_for(&preview).await?;
        Ok(preview)
    }

    /// Queues a download without the checks of [`Manager::queue`], and returns its id: the existing one when the
    /// same download is already queued or running. For a caller that has checked already (the mirror's
    /// pull-through).
    pub fn enqueue(&self, request: DownloadRequest) -> Result<u64, ErrorPayload> {
        self.inner.downloads.start(request).map_err(payload)
    }

    /// Queues a download after checking it can happen: the repo, revision and files exist (else `not-found`) and
    /// fit on the disk (else `insufficient-space`), so a caller learns that now rather than from a failed job. The
    /// same download already queued or running is joined: its id, and `true`.
    pub async fn queue(&self, request: DownloadRequest) -> Result<(u64, bool), ErrorPayload> {
        let running: Vec<DownloadProgress> =
            self.inner.downloads.list().into_iter().filter(|d| !d.state.is_finished()).collect();
        if request.url.is_none() {
            let preview = self.preview(request.clone()).await?;
            // A download of this repo under way has its bytes on disk already: the queue sorts that out.
            let underway = running.iter().any(|d| d.repo == preview.repo);
            if let Some(room) = preview.room.as_ref().filter(|_| !underway) {
                self.make_room(&preview.repo, room, request.evict).await?;
            }
        }
        let id = self.enqueue(DownloadRequest { evict: false, ..request })?;
        Ok((id, running.iter().any(|d| d.id == id)))
    }

    /// The hub downloads come from, with the owner's hub token or without it (what a mirror asks for a caller the
    /// owner's token is not for).
    fn upstream(&self, with_token: bool) -> crate::hub::HubClient {
        let hub = self.inner.downloads.hub();
        if with_token {
            hub
        } else {
            hub.without_token()
        }
    }

    /// A repo's revision as the hub (the one downloads come from) lists it: its commit and files with sizes and
    /// hashes. What a pull-through mirror offers before it has the files; the hub's own error when it has not.
    /// With the owner's hub token only when `with_token` says so.
    pub async fn hub_listing(
        &self,
        repo: &str,
        revision: &str,
        with_token: bool,
    ) -> Result<crate::hub::RepoInfo, crate::hub::HubError> {
        let repo = upstream_repo(repo)?;
        let hub = self.upstream(with_token);
        hub.repo_info(&repo, revision).await
    }

    /// A repo's branches, tags and pull requests as the hub (the one downloads come from) lists them; with the
    /// owner's hub token only when `with_token` says so.
    pub async fn hub_refs(&self, repo: &str, with_token: bool) -> Result<crate::hub::GitRefs, crate::hub::HubError> {
        let repo = upstream_repo(repo)?;
        let hub = self.upstream(with_token);
        hub.refs(&repo).await
    }

    /// One page of the hub's model search with the parameters as given (`search`, `author`, `filter`, `sort`,
    /// `cursor`, ...): the entries, and the query of the next page if there is one. `with_token` says whether the
    /// owner's hub token goes with it (only for a caller holding this machine's own token).
    pub async fn hub_search(
        &self,
        params: &[(&str, String)],
        with_token: bool,
    ) -> Result<(Vec<serde_json::Value>, Option<String>), crate::hub::HubError> {
        let hub = self.upstream(with_token);
        let (entries, next) = hub.list_models(params, None).await?;
        let next = next.and_then(|n| reqwest::Url::parse(&n).ok()).and_then(|u| u.query().map(str::to_owned));
        Ok((entries, next))
    }

    /// Whether this machine is told not to use the network for the hub (`HF_HUB_OFFLINE`).
    pub fn hub_offline(&self) -> bool {
        self.inner.discover.offline()
    }

    /// The bytes `[start, end)` of a file of `repo` at `revision` as the upstream hub sends them, not stored: what a
    /// mirror forwards for a ranged read of a file it has not got (a header reader never makes it fetch 40 GB).
    pub async fn hub_range(
        &self,
        repo: &str,
        revision: &str,
        path: &str,
        start: u64,
        end: u64,
    ) -> Result<crate::hub::RangeBody, crate::hub::HubError> {
        let repo = upstream_repo(repo)?;
        self.upstream(true).open_range(&repo, revision, path, start, end).await
    }

    /// The downloads of this session (and those the journal brought back), Ollama pulls included.
    pub fn downloads(&self) -> Vec<DownloadProgress> {
        let mut list = self.inner.downloads.list();
        list.extend(self.inner.pulls.list());
        list
    }

    pub fn download(&self, id: u64) -> Result<DownloadProgress, ErrorPayload> {
        match self.inner.pulls.get(id) {
            Some(pull) => Ok(pull),
            None => self.inner.downloads.progress(id).map_err(payload),
        }
    }

    /// Stops a queued or running download, keeping its partial files for [`Manager::resume`].
    pub fn pause(&self, id: u64) -> Result<(), ErrorPayload> {
        self.refuse_finished(id, "pause")?;
        if self.inner.pulls.get(id).is_some() {
            return Err(ErrorPayload::new(
                ErrorCode::InvalidInput,
                "an Ollama pull cannot pause: cancel it, and pull again later (Ollama keeps what it has)",
            ));
        }
        self.inner.downloads.pause(id).map_err(payload)
    }

    /// Puts a paused or failed download back in the queue; it resumes from the bytes on disk.
    pub fn resume(&self, id: u64) -> Result<(), ErrorPayload> {
        self.refuse_finished(id, "resume")?;
        self.inner.downloads.resume(id).map_err(payload)
    }

    /// A `conflict` for an action on a download that has ended (completed or cancelled): there is nothing left
    /// to act on. A failed download may still be resumed or cancelled.
    fn refuse_finished(&self, id: u64, action: &str) -> Result<(), ErrorPayload> {
        let download = self.download(id)?;
        match download.state {
            DownloadState::Completed | DownloadState::Cancelled => Err(ErrorPayload::new(
                ErrorCode::Conflict,
                format!(
                    "cannot {action} download {id} of {}: it is {}",
                    download.repo,
                    if download.state == DownloadState::Completed { "complete" } else { "cancelled" }
                ),
            )),
            _ => Ok(()),
        }
    }

    /// Stops a download and deletes its partial files (an Ollama pull: Ollama keeps what it has).
    pub fn cancel(&self, id: u64) -> Result<(), ErrorPayload> {
        self.refuse_finished(id, "cancel")?;
        if self.inner.pulls.cancel(id) {
            return Ok(());
        }
        self.inner.downloads.cancel(id).map_err(payload)
    }

    /// Waits for a download to end: its last progress, or its error.
    pub async fn wait(&self, id: u64) -> Result<DownloadProgress, ErrorPayload> {
        self.inner.downloads.wait(id).await
    }

    /// Stops transfers cleanly: partial files (and the journal) stay for the next start.
    pub async fn shutdown(&self) {
        self.inner.downloads.shutdown().await;
        // The app and `mm serve` stop the runtimes they started; `mm load`'s stay, as `lms load`'s do.
        if self.inner.runtime_owner != "mm" {
            let unload = self.inner.runtime.unload(None, None, Some(self.inner.runtime_owner));
            // Quitting never hangs on the host: if it does not answer, it notices this process is gone.
            let _ = tokio::time::timeout(std::time::Duration::from_secs(10), unload).await;
        }
    }

    // --- Other sources ---

    /// Imports files or folders from elsewhere on disk (referenced in place, or copied when `options` or the
    /// settings say so), with `progress` while hashing or copying; one outcome per path.
    pub async fn import(
        &self,
        paths: Vec<PathBuf>,
        options: Option<ImportOptions>,
        progress: impl FnMut(&ImportProgress) + Send + 'static,
    ) -> Vec<ImportOutcome> {
        tracing::info!(paths = paths.len(), "importing");
        let options = options.unwrap_or(ImportOptions { copy: self.settings().copy_imports, model_type: None });
        let (store, data_dir) = (self.inner.store.clone(), self.data_dir().to_path_buf());
        let cancel = {
            let mut current = self.inner.imports.lock().unwrap();
            if current.is_cancelled() {
                *current = CancellationToken::new();
            }
            current.clone()
        };
        let outcomes = tokio::task::spawn_blocking(move || {
            crate::local::import_paths(&paths, &options, &store, &data_dir, &cancel, progress)
        })
        .await
        .unwrap_or_default();
        for outcome in &outcomes {
            tracing::info!(path = %outcome.path, status = ?outcome.status, error = outcome.error.as_ref().map(|e| e.message.as_str()), "imported");
        }
        let imported = outcomes
            .iter()
            .filter(|o| o.status == ImportStatus::Imported)
            .map(|o| ModelLifecycle {
                kind: LifecycleKind::Imported,
                repo: o.id.clone().unwrap_or_default(),
                revision: String::new(),
                download_id: None,
                error: None,
            })
            .collect::<Vec<_>>();
        if !imported.is_empty() {
            self.changed(imported);
        }
        outcomes
    }

    /// Stops every download of `repo` into this cache, in this process and in any `mm download` (through its
    /// marker), and deletes the partial files they leave: what `mm cancel REPO` does.
    pub async fn cancel_repo(&self, repo: &str) -> Result<RepoCancelled, ErrorPayload> {
        let (repo, _) = crate::hub::parse_repo_reference(repo)
            .map_err(|e| ErrorPayload::new(ErrorCode::InvalidInput, e.to_string()))?;
        let mut cancelled = Vec::new();
        for download in self.inner.downloads.list() {
            if download.repo == repo.as_str()
                && !download.state.is_finished()
                && self.inner.downloads.cancel(download.id).is_ok()
            {
                cancelled.push(download.id);
            }
        }
        let cache_dir = self.inner.cache_dir.clone();
        let stopped = crate::download::marker::stop(&cache_dir, &repo, std::time::Duration::from_secs(10)).await;
        let freed = crate::download::marker::discard_partials(&cache_dir, &repo).map_err(|e| {
            ErrorPayload::new(ErrorCode::of_io(&e), format!("cannot delete the partial files of {repo}: {e}"))
        })?;
        Ok(RepoCancelled { repo: repo.to_string(), stopped, cancelled, bytes_freed: freed })
    }

    /// Stops the imports running now: the file being read or copied (its partial copy removed) and the rest of
    /// each batch, which report `cancelled`.
    pub fn cancel_imports(&self) {
        self.inner.imports.lock().unwrap().cancel();
    }

    pub async fn ollama_status(&self) -> OllamaStatus {
        let available = self.inner.ollama.tags().await.is_ok();
        OllamaStatus { host: self.inner.ollama.host().to_string(), available }
    }

    /// Starts pulling a model into Ollama; it shows among the downloads, with its layer's bytes as progress.
    pub fn ollama_pull(&self, name: &str) -> Result<u64, ErrorPayload> {
        pulls::start(self, name)
    }

    // --- The app itself ---

    /// The text of a bug report: versions, system, folders, settings without the token, the end of the log.
    pub async fn diagnostics(&self, app: &'static str) -> Result<String, ErrorPayload> {
        let (settings, cache_dir, data_dir, log_dir) =
            (self.settings(), self.inner.cache_dir.clone(), self.data_dir().to_path_buf(), self.log_dir());
        joined(
            tokio::task::spawn_blocking(move || {
                let hardware = hardware::probe(&cache_dir);
                let places =
                    crate::diagnostics::Places { cache_dir: &cache_dir, data_dir: &data_dir, log_dir: &log_dir };
                crate::diagnostics::report(app, &hardware, &settings, &places)
            })
            .await,
        )
    }
}

/// What deleting a model outside the Hugging Face cache frees: its bytes when the app owns them, else nothing
/// (a reference is only forgotten).
fn whole_model_report(id: &str, size: u64, dry_run: bool) -> DeleteReport {
    DeleteReport {
        id: id.to_string(),
        revision: None,
        commit: None,
        bytes_before: size,
        bytes_after: 0,
        bytes_freed: size,
        blobs_removed: 0,
        whole_model: true,
        dry_run,
        adapters: Vec::new(),
    }
}

/// The repo id a mirror's caller named, for the upstream: one that is not an id is a repo the hub has not got.
fn upstream_repo(repo: &str) -> Result<crate::cache::RepoId, crate::hub::HubError> {
    crate::hub::parse_repo_reference(repo)
        .map(|(repo, _)| repo)
        .map_err(|_| crate::hub::HubError::RepoNotFound { repo: repo.to_string(), endpoint: String::new() })
}
