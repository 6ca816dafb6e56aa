//! What the shell keeps for the lifetime of the app.

use std::path::PathBuf;

/// Shared by every command through Tauri's managed state.
pub struct AppState {
    /// The Hugging Face hub cache this app reads and writes.
    pub cache_dir: PathBuf,
}

impl AppState {
    /// The state the environment asks for: the hub cache found the way `huggingface_hub` finds it.
    pub fn from_env() -> AppState {
        AppState { cache_dir: mm_core::cache::hub_cache_dir() }
    }
}
