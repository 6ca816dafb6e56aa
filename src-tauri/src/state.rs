//! What the shell keeps for the lifetime of the app.

use mm_core::download::{DownloadOptions, Downloads};
use mm_core::hub::{HubClient, HubConfig};
use std::path::PathBuf;

/// Shared by every command through Tauri's managed state.
pub struct AppState {
    /// The Hugging Face hub cache this app reads and writes.
    pub cache_dir: PathBuf,
    /// The download queue, over the same cache.
    pub downloads: Downloads,
}

impl AppState {
    /// The state the environment asks for: the hub cache found the way `huggingface_hub` finds it, and the hub
    /// at `HF_ENDPOINT` with `HF_TOKEN` (or `$HF_HOME/token`).
    /// `journal` is where unfinished downloads are kept across restarts.
    pub fn from_env(journal: Option<PathBuf>) -> AppState {
        AppState::new(mm_core::cache::hub_cache_dir(), HubConfig::from_env(), journal)
    }

    pub fn new(cache_dir: PathBuf, hub: HubConfig, journal: Option<PathBuf>) -> AppState {
        // An endpoint that does not parse fails each download with a message; the app still starts.
        let hub = HubClient::new(hub.clone()).unwrap_or_else(|_| {
            HubClient::new(HubConfig { endpoint: mm_core::hub::config::DEFAULT_ENDPOINT.into(), ..hub })
                .expect("the default endpoint parses")
        });
        let options = DownloadOptions::default();
        let downloads = match journal {
            Some(journal) => Downloads::with_journal(hub, cache_dir.clone(), options, journal),
            None => Downloads::new(hub, cache_dir.clone(), options),
        };
        AppState { cache_dir, downloads }
    }
}
