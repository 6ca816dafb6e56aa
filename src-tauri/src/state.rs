//! What the shell keeps for the lifetime of the app: the core's facade, and the files the app was started with.

use mm_core::hub::HubConfig;
use mm_core::machine::Machine;
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
    /// The machine the window drives: this one, or another one's `mm serve`.
    pub current: Mutex<Machine>,
    /// What forwards the other machine's events to the window, while one is driven.
    pub remote_events: Mutex<Option<tauri::async_runtime::JoinHandle<()>>>,
    /// `mm serve`'s API and model endpoint in the app, while the `localServer` setting is on.
    pub local_server: crate::local_server::LocalServer,
}

impl AppState {
    /// The state the environment asks for: the settings file in the app's data folder; the cache it names, else
    /// the one `huggingface_hub` finds; its hub endpoint and token, else `HF_ENDPOINT` and `HF_TOKEN`. `journal`
    /// keeps unfinished downloads across restarts.
    pub fn from_env(journal: Option<PathBuf>) -> AppState {
        AppState::open(ManagerConfig { journal, runtime_owner: "app", ..ManagerConfig::from_env() })
    }

    pub fn open(config: ManagerConfig) -> AppState {
        let manager = Manager::open(config);
        AppState {
            current: Mutex::new(Machine::Local(manager.clone())),
            manager,
            opened_files: Mutex::new(Vec::new()),
            remote_events: Mutex::new(None),
            local_server: Default::default(),
        }
    }

    /// The machine the window drives now.
    pub fn machine(&self) -> Machine {
        self.current.lock().unwrap().clone()
    }

    /// Whether the window drives this machine (its events then go to the window).
    pub fn is_local(&self) -> bool {
        matches!(*self.current.lock().unwrap(), Machine::Local(_))
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
