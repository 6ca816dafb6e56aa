//! What every command starts from: the settings file and the cache it names.

use mm_core::error::Coded;
use mm_core::settings::{Settings, SettingsStore};
use mm_core::ErrorPayload;
use std::path::PathBuf;

pub struct Context {
    pub store: SettingsStore,
    pub settings: Settings,
    pub cache_dir: PathBuf,
}

impl Context {
    /// Loads the settings (warning on stderr when the file had to be replaced) and picks the cache: the
    /// settings' cache folder, else the one `HF_HUB_CACHE`/`HF_HOME` name.
    pub fn load() -> Result<Context, ErrorPayload> {
        let store = SettingsStore::default_location();
        let (settings, warning) = store.load().map_err(|e| e.payload())?;
        if let Some(warning) = warning {
            esay!("warning: {warning}");
        }
        let cache_dir = settings.cache_dir.as_ref().map(PathBuf::from).unwrap_or_else(mm_core::cache::hub_cache_dir);
        Ok(Context { store, settings, cache_dir })
    }
}

/// A module error as the one wire shape.
pub fn payload<E: Coded>(err: E) -> ErrorPayload {
    err.payload()
}
