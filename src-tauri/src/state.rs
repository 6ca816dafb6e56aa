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
    pub fn from_env() -> AppState {
        AppState::new(mm_core::cache::hub_cache_dir(), HubConfig::from_env())
    }

    pub fn new(cache_dir: PathBuf, hub: HubConfig) -> AppState {
        // An endpoint that does not parse fails each download with a message; the app still starts.
        let hub = HubClient::new(hub.clone()).unwrap_or_else(|_| {
            HubClient::new(HubConfig { endpoint: mm_core::hub::config::DEFAULT_ENDPOINT.into(), ..hub })
                .expect("the default endpoint parses")
        });
        let downloads = Downloads::new(hub, cache_dir.clone(), DownloadOptions::default());
        AppState { cache_dir, downloads }
    }
}
