//! What every command starts from: the core's facade over the settings file and the cache it names, or, with
//! `--remote`, another machine's `mm serve`.

use mm_core::download::DownloadOptions;
use mm_core::error::Coded;
use mm_core::machine::Machine;
use mm_core::remote::Remote;
use mm_core::{ErrorCode, ErrorPayload, Manager, ManagerConfig};
use std::sync::OnceLock;

/// The machine `--remote` (or `MM_REMOTE`) named, for this process.
static REMOTE: OnceLock<Remote> = OnceLock::new();

/// Takes `--remote` and its token (`--remote-token-file`, else `MM_REMOTE_TOKEN`) for the command about to run.
pub fn choose_remote(url: Option<&str>, token_file: Option<&std::path::Path>) -> Result<(), ErrorPayload> {
    let Some(url) = url.filter(|u| !u.trim().is_empty()) else { return Ok(()) };
    let token = match token_file {
        Some(file) => Some(std::fs::read_to_string(file).map_err(|e| {
            ErrorPayload::new(
                ErrorCode::of_io(&e),
                format!("cannot read the remote token from {}: {e}", file.display()),
            )
        })?),
        None => std::env::var("MM_REMOTE_TOKEN").ok(),
    };
    let _ = REMOTE.set(Remote::new(url, token)?);
    Ok(())
}

/// The other machine `--remote` named, if any.
pub fn remote() -> Option<Remote> {
    REMOTE.get().cloned()
}

/// The machine a command acts on: the remote one, else this one.
pub fn machine() -> Result<Machine, ErrorPayload> {
    match REMOTE.get() {
        Some(remote) => Ok(Machine::Remote(remote.clone())),
        None => Ok(Machine::Local(load()?)),
    }
}

/// This machine's core over this user's settings (a warning on stderr when the file had to be replaced) and the
/// cache they name, else the one `HF_HUB_CACHE`/`HF_HOME` name.
pub fn load() -> Result<Manager, ErrorPayload> {
    with(DownloadOptions::default())
}

/// The same, with the download queue's options (`mm download --parallel`).
pub fn with(download_options: DownloadOptions) -> Result<Manager, ErrorPayload> {
    open(ManagerConfig { download_options, ..ManagerConfig::from_env() })
}

/// Over `config`; a settings file that cannot be read stops the command (the app would replace it). A command that
/// only runs on this machine says so when `--remote` was given.
pub fn open(config: ManagerConfig) -> Result<Manager, ErrorPayload> {
    if let Some(remote) = REMOTE.get() {
        return Err(ErrorPayload::new(
            ErrorCode::InvalidInput,
            format!("this command runs on this machine only, not on {}: drop --remote", remote.url()),
        ));
    }
    let manager = Manager::try_open(config)?;
    if let Some(warning) = manager.settings_view().warning {
        esay!("warning: {warning}");
    }
    Ok(manager)
}

/// A module error as the one wire shape.
pub fn payload<E: Coded>(err: E) -> ErrorPayload {
    err.payload()
}
