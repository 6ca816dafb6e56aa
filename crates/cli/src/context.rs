//! What every command starts from: the core's facade over the settings file and the cache it names.

use mm_core::download::DownloadOptions;
use mm_core::error::Coded;
use mm_core::{ErrorPayload, Manager, ManagerConfig};

pub struct Context {
    pub manager: Manager,
}

impl Context {
    /// Opens the core over this user's settings (warning on stderr when the file had to be replaced) and the
    /// cache they name, else the one `HF_HUB_CACHE`/`HF_HOME` name.
    pub fn load() -> Result<Context, ErrorPayload> {
        Context::with(DownloadOptions::default())
    }

    /// The same, with the download queue's options (`mm download --parallel`).
    pub fn with(download_options: DownloadOptions) -> Result<Context, ErrorPayload> {
        Context::open(ManagerConfig { download_options, ..ManagerConfig::from_env() })
    }

    /// Over `config`; a settings file that cannot be read stops the command (the app would replace it).
    pub fn open(config: ManagerConfig) -> Result<Context, ErrorPayload> {
        if let (_, Some(warning)) = config.store.load().map_err(|e| e.payload())? {
            esay!("warning: {warning}");
        }
        Ok(Context { manager: Manager::open(config) })
    }
}

/// A module error as the one wire shape.
pub fn payload<E: Coded>(err: E) -> ErrorPayload {
    err.payload()
}
