//! What the shell keeps for the lifetime of the app: the settings (from the file the CLI shares), the cache they
//! name, and the download queue over it.

use mm_core::activation::Activation;
use mm_core::discover::Discover;
use mm_core::download::{DownloadOptions, Downloads};
use mm_core::hub::{HubClient, HubConfig};
use mm_core::settings::{Settings, SettingsStore};
use std::path::PathBuf;
use std::sync::Mutex;

/// Shared by every command through Tauri's managed state.
pub struct AppState {
    /// The Hugging Face hub cache this app reads and writes (fixed for the session).
    pub cache_dir: PathBuf,
    pub store: SettingsStore,
    /// The settings as last read or written, and the warning of a recovered file.
    pub settings: Mutex<(Settings, Option<String>)>,
    /// The download queue, over the same cache.
    pub downloads: Downloads,
    /// The active model per type, and the links and manifest other programs read.
    pub activation: Activation,
    /// The hub's search and repo details, with their short cache.
    pub discover: Discover,
    /// The local Ollama server (`OLLAMA_HOST`), a source of models when it runs.
    pub ollama: mm_core::ollama::Ollama,
    /// Ollama pulls in progress: their progress and how to stop them.
    pub pulls: Mutex<Vec<(mm_core::download::DownloadProgress, tokio_util::sync::CancellationToken)>>,
    /// What stops the imports running now (all of them: the window has one Cancel); renewed once used.
    pub imports: Mutex<tokio_util::sync::CancellationToken>,
    /// Files the app was started with, imported once the window is ready to show it.
    pub opened_files: Mutex<Vec<PathBuf>>,
}

impl AppState {
    /// The state the environment asks for: the settings file in the app's data folder; the cache it names, else
    /// the one `huggingface_hub` finds; its hub endpoint and token, else `HF_ENDPOINT` and `HF_TOKEN`. `journal`
    /// keeps unfinished downloads across restarts.
    pub fn from_env(journal: Option<PathBuf>) -> AppState {
        AppState::with(SettingsStore::default_location(), None, None, journal, mm_core::paths::app_data_dir())
    }

    /// With a given settings file; `cache_dir` and `hub` override what the settings and environment say (tests).
    /// `data_dir` is where the active links and manifest go.
    pub fn with(
        store: SettingsStore,
        cache_dir: Option<PathBuf>,
        hub: Option<HubConfig>,
        journal: Option<PathBuf>,
        data_dir: PathBuf,
    ) -> AppState {
        let (settings, warning) = store.load().unwrap_or_else(|e| (Settings::default(), Some(e.to_string())));
        let cache_dir = cache_dir
            .or_else(|| settings.cache_dir.as_ref().map(PathBuf::from))
            .unwrap_or_else(mm_core::cache::hub_cache_dir);
        let hub = client(hub.unwrap_or_else(|| HubConfig::from_settings(&settings)));
        let discover = Discover::new(hub.clone(), cache_dir.clone());
        let downloads = match journal {
            Some(journal) => Downloads::with_journal(hub, cache_dir.clone(), DownloadOptions::default(), journal),
            None => Downloads::new(hub, cache_dir.clone(), DownloadOptions::default()),
        };
        downloads.apply_settings(&settings);
        let activation = Activation { cache_dir: cache_dir.clone(), data_dir, store: store.clone() };
        AppState {
            cache_dir,
            store,
            settings: Mutex::new((settings, warning)),
            downloads,
            activation,
            discover,
            ollama: mm_core::ollama::Ollama::from_env(),
            pulls: Mutex::new(Vec::new()),
            imports: Mutex::new(tokio_util::sync::CancellationToken::new()),
            opened_files: Mutex::new(Vec::new()),
        }
    }

    /// Where the app's log is written (in its data folder).
    pub fn log_dir(&self) -> PathBuf {
        mm_core::logs::log_dir(&self.activation.data_dir)
    }

    /// The same state with another Ollama server (tests start their own).
    pub fn with_ollama(mut self, ollama: mm_core::ollama::Ollama) -> AppState {
        self.ollama = ollama;
        self
    }

    pub fn settings(&self) -> Settings {
        self.settings.lock().unwrap().0.clone()
    }

    /// After the settings changed: keep them, and give the queue the new limits, endpoint and token.
    pub fn settings_changed(&self, settings: Settings) {
        self.downloads.apply_settings(&settings);
        self.downloads.set_hub(client(HubConfig::from_settings(&settings)));
        self.discover.set_hub(client(HubConfig::from_settings(&settings)));
        *self.settings.lock().unwrap() = (settings, None);
    }
}

/// A hub client; an endpoint that does not parse falls back to the default one (each request then says so).
fn client(config: HubConfig) -> HubClient {
    HubClient::new(config.clone()).unwrap_or_else(|_| {
        HubClient::new(HubConfig { endpoint: mm_core::hub::config::DEFAULT_ENDPOINT.into(), ..config })
            .expect("the default endpoint parses")
    })
}
