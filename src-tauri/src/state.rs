//! What the shell keeps for the lifetime of the app: the core's facade, and the files the app was started with.

use mm_core::hub::HubConfig;
use mm_core::settings::SettingsStore;
use mm_core::{Manager, ManagerConfig};
use std::path::PathBuf;
use std::sync::Mutex;

/// Shared by every command through Tauri's managed state.
pub struct AppState {
    /// Everything the app does that is not a window's: the same core `mm` and `mm serve` open.
    pub manager: Manager,
    /// Files the app was started with, imported once the window is ready to show it.
    pub opened_files: Mutex<Vec<PathBuf>>,
}

impl AppState {
    /// The state the environment asks for: the settings file in the app's data folder; the cache it names, else
    /// the one `huggingface_hub` finds; its hub endpoint and token, else `HF_ENDPOINT` and `HF_TOKEN`. `journal`
    /// keeps unfinished downloads across restarts.
    pub fn from_env(journal: Option<PathBuf>) -> AppState {
        AppState::open(ManagerConfig { journal, ..ManagerConfig::from_env() })
    }

    pub fn open(config: ManagerConfig) -> AppState {
        AppState { manager: Manager::open(config), opened_files: Mutex::new(Vec::new()) }
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
        AppState::open(ManagerConfig { cache_dir, hub, journal, ..ManagerConfig::new(store, data_dir) })
    }
}
