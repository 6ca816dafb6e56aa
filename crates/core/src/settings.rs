//! The user's intent, kept in one JSON file in the app's data folder (`settings.json`, a flat object as
//! tauri-plugin-store writes it): settings with defaults and validation, the model types the user assigned, and
//! the active model per type. The app and `mm` both read and write it through [`SettingsStore`], which changes it
//! under an `flock` with a read-modify-write and an atomic rename, so concurrent writers lose nothing. A file that
//! does not parse is set aside as `settings.json.corrupt-{time}` and replaced by defaults, with a warning.

use crate::error::{Coded, ErrorCode};
use crate::model::{ModelType, TypeOrigin};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use ts_rs::TS;

/// Everything kept in the settings file.
/// Connections one large file uses at most unless the settings say otherwise.
pub const DEFAULT_CONNECTIONS_PER_FILE: u32 = 16;

#[derive(Clone, PartialEq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase", default)]
pub struct Settings {
    /// The Hugging Face cache to use; empty for the one `HF_HUB_CACHE`/`HF_HOME` name.
    pub cache_dir: Option<String>,
    /// More Hugging Face caches to list, read-only (a shared or older cache).
    pub library_folders: Vec<String>,
    /// The hub endpoint; empty for `HF_ENDPOINT` or huggingface.co.
    pub endpoint: Option<String>,
    /// The hub token; empty for `HF_TOKEN` or `$HF_HOME/token`. Never logged, masked in the UI, never written to
    /// the settings file: it lives in the keyring or a private file ([`crate::secret`]). Read from the file only
    /// to move a token an older version kept there.
    #[serde(skip_serializing)]
    pub token: Option<String>,
    /// Downloads running at once (1 to 16).
    pub max_concurrent_downloads: u32,
    /// Download speed limit in bytes per second, for all downloads together; none for no limit.
    pub bandwidth_limit: Option<u64>,
    /// Connections one large file may use at once (1 to 64; 1 for a single stream).
    pub connections_per_file: u32,
    /// Fetch Xet-backed files from the Hub's Xet storage (`HF_HUB_DISABLE_XET=1` turns it off too).
    pub use_xet: bool,
    /// Check each file's hash while downloading (sizes are always checked).
    pub verify_on_download: bool,
    /// Closing the window keeps the app running in the system tray.
    pub keep_in_tray: bool,
    /// A desktop notification when a download finishes or fails.
    pub notify_downloads: bool,
    /// Files dropped on the window are copied into the app's models folder (else referenced where they are).
    pub copy_imports: bool,
    /// Model types the user chose, by model id; they win over inferred types.
    pub model_types: BTreeMap<String, String>,
    /// The active model per type (set by activation).
    pub active: BTreeMap<String, ActiveModel>,
    /// Model files and folders imported from elsewhere on disk (dropped on the window or `mm import`).
    pub imports: Vec<crate::model::ImportedModel>,
    /// Other machines' `mm serve` the window can drive (their tokens kept like the hub token).
    pub machines: Vec<MachineEntry>,
    /// The `llama-server` program that loads GGUF models; empty: the one on `PATH`.
    pub llama_server: Option<String>,
    /// The largest context a load chooses by itself (tokens); the model's own and the free memory may lower it.
    pub max_context: u64,
    /// Unload a model nobody sent a request for this many seconds; 0: never.
    pub idle_unload_seconds: u64,
    /// Models loaded at once; loading one more unloads the least recently used.
    pub max_loaded: u32,
    /// Times a runtime that died is started again (after 1, 2, 4... seconds) before it is left stopped.
    pub restart_attempts: u32,
    /// `mm serve` asks for its token on loopback too (for a machine other users share); the app and `mm` on this
    /// machine read it from its 0600 file.
    pub serve_require_token: bool,
}

/// Another machine's `mm serve`, as the user added it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MachineEntry {
    /// What the user calls it ("gpu-server").
    pub name: String,
    /// `http://host:8765`.
    pub url: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct ActiveModel {
    pub id: String,
    /// The commit that was activated.
    pub revision: String,
    /// When it was activated, in Unix seconds.
    #[serde(default)]
    pub activated_at: Option<u64>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            cache_dir: None,
            library_folders: Vec::new(),
            endpoint: None,
            token: None,
            max_concurrent_downloads: 3,
            bandwidth_limit: None,
            connections_per_file: DEFAULT_CONNECTIONS_PER_FILE,
            use_xet: true,
            verify_on_download: true,
            keep_in_tray: true,
            notify_downloads: true,
            copy_imports: false,
            model_types: BTreeMap::new(),
            active: BTreeMap::new(),
            imports: Vec::new(),
            machines: Vec::new(),
            llama_server: None,
            max_context: 8192,
            idle_unload_seconds: 0,
            max_loaded: 2,
            restart_attempts: 3,
            serve_require_token: false,
        }
    }
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("cache_dir", &self.cache_dir)
            .field("library_folders", &self.library_folders)
            .field("endpoint", &self.endpoint)
            .field("token", &self.token.as_ref().map(|_| "<set>"))
            .field("max_concurrent_downloads", &self.max_concurrent_downloads)
            .field("bandwidth_limit", &self.bandwidth_limit)
            .field("connections_per_file", &self.connections_per_file)
            .field("use_xet", &self.use_xet)
            .field("verify_on_download", &self.verify_on_download)
            .finish_non_exhaustive()
    }
}

/// The settings as the UI sees them: the token masked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SettingsView {
    pub cache_dir: Option<String>,
    pub library_folders: Vec<String>,
    pub endpoint: Option<String>,
    /// `hf_…wxyz`, or none when no token is set here.
    pub token_hint: Option<String>,
    pub max_concurrent_downloads: u32,
    pub bandwidth_limit: Option<u64>,
    pub connections_per_file: u32,
    pub use_xet: bool,
    pub verify_on_download: bool,
    pub keep_in_tray: bool,
    pub notify_downloads: bool,
    pub copy_imports: bool,
    /// Other machines the window can drive.
    pub machines: Vec<MachineEntry>,
    pub llama_server: Option<String>,
    pub max_context: u64,
    pub idle_unload_seconds: u64,
    pub max_loaded: u32,
    pub restart_attempts: u32,
    pub serve_require_token: bool,
    /// Set when the file was unreadable and was replaced by defaults.
    pub warning: Option<String>,
}

/// A change to some settings; absent fields stay. `token: ""` clears the token.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, TS, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct SettingsPatch {
    pub cache_dir: Option<String>,
    pub library_folders: Option<Vec<String>>,
    pub endpoint: Option<String>,
    pub token: Option<String>,
    pub max_concurrent_downloads: Option<u32>,
    pub bandwidth_limit: Option<u64>,
    pub connections_per_file: Option<u32>,
    pub use_xet: Option<bool>,
    pub verify_on_download: Option<bool>,
    pub keep_in_tray: Option<bool>,
    pub notify_downloads: Option<bool>,
    pub copy_imports: Option<bool>,
    /// "" for the one on `PATH`.
    pub llama_server: Option<String>,
    pub max_context: Option<u64>,
    pub idle_unload_seconds: Option<u64>,
    pub max_loaded: Option<u32>,
    pub restart_attempts: Option<u32>,
    pub serve_require_token: Option<bool>,
}

impl SettingsPatch {
    /// The keys this patch would change that name a program, a folder or an address, or guard the server itself:
    /// those are changed on the machine only (the window, `mm config set`), never over `mm serve`'s API, whose
    /// clients could otherwise make this machine run a program of their choosing, send the hub token or the
    /// models elsewhere, or open the server.
    pub fn machine_only(&self) -> Vec<&'static str> {
        [
            ("cacheDir", self.cache_dir.is_some()),
            ("libraryFolders", self.library_folders.is_some()),
            ("endpoint", self.endpoint.is_some()),
            ("llamaServer", self.llama_server.is_some()),
            ("serveRequireToken", self.serve_require_token.is_some()),
        ]
        .into_iter()
        .filter_map(|(key, set)| set.then_some(key))
        .collect()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("{key} {problem}")]
    Invalid { key: &'static str, problem: String },
    #[error("unknown setting \"{0}\": known are cacheDir, libraryFolders, endpoint, token, maxConcurrentDownloads, bandwidthLimit, connectionsPerFile, useXet, verifyOnDownload, keepInTray, notifyDownloads, copyImports, llamaServer, maxContext, idleUnloadSeconds, maxLoaded, restartAttempts, serveRequireToken")]
    UnknownKey(String),
    #[error("cannot {what} the settings file {}: {source}", .path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

impl Coded for SettingsError {
    fn code(&self) -> ErrorCode {
        match self {
            SettingsError::Invalid { .. } | SettingsError::UnknownKey(_) => ErrorCode::InvalidInput,
            SettingsError::Io { source, .. } => ErrorCode::of_io(source),
        }
    }
}

fn invalid(key: &'static str, problem: impl Into<String>) -> SettingsError {
    SettingsError::Invalid { key, problem: problem.into() }
}

impl Settings {
    /// What the settings say about a model: the user's type over the inferred one, whether it is active, and
    /// when it was last activated.
    pub fn user_view(&self, id: &str, inferred: (ModelType, TypeOrigin)) -> (ModelType, TypeOrigin, bool, Option<u64>) {
        let (model_type, type_origin) = match self.model_types.get(id).and_then(|t| ModelType::parse(t)) {
            Some(chosen) => (chosen, TypeOrigin::User),
            None => inferred,
        };
        let active = self.active.values().any(|a| a.id == id);
        let last_used = self.active.values().filter(|a| a.id == id).filter_map(|a| a.activated_at).max();
        (model_type, type_origin, active, last_used)
    }

    /// The masked view for the UI, with the recovery warning if any.
    pub fn view(&self, warning: Option<String>) -> SettingsView {
        SettingsView {
            cache_dir: self.cache_dir.clone(),
            library_folders: self.library_folders.clone(),
            endpoint: self.endpoint.clone(),
            token_hint: self.token.as_deref().map(mask_token),
            max_concurrent_downloads: self.max_concurrent_downloads,
            bandwidth_limit: self.bandwidth_limit,
            connections_per_file: self.connections_per_file,
            use_xet: self.use_xet,
            verify_on_download: self.verify_on_download,
            keep_in_tray: self.keep_in_tray,
            notify_downloads: self.notify_downloads,
            copy_imports: self.copy_imports,
            machines: self.machines.clone(),
            llama_server: self.llama_server.clone(),
            max_context: self.max_context,
            idle_unload_seconds: self.idle_unload_seconds,
            max_loaded: self.max_loaded,
            restart_attempts: self.restart_attempts,
            serve_require_token: self.serve_require_token,
            warning,
        }
    }

    /// Applies `patch` after validating every field; nothing changes when any field is invalid.
    pub fn apply(&mut self, patch: SettingsPatch) -> Result<(), SettingsError> {
        let mut next = self.clone();
        let blank = |s: String| Some(s.trim().to_string()).filter(|s| !s.is_empty());
        if let Some(dir) = patch.cache_dir {
            next.cache_dir = blank(dir);
            if let Some(dir) = &next.cache_dir {
                if !Path::new(dir).is_absolute() {
                    return Err(invalid("cacheDir", format!("must be an absolute path, not \"{dir}\"")));
                }
            }
        }
        if let Some(folders) = patch.library_folders {
            let folders: Vec<String> = folders.into_iter().filter_map(blank).collect();
            if let Some(bad) = folders.iter().find(|f| !Path::new(f).is_absolute()) {
                return Err(invalid("libraryFolders", format!("must hold absolute paths, not \"{bad}\"")));
            }
            next.library_folders = folders;
        }
        if let Some(endpoint) = patch.endpoint {
            next.endpoint = blank(endpoint).map(|e| e.trim_end_matches('/').to_string());
            if let Some(e) = &next.endpoint {
                let ok = reqwest::Url::parse(e)
                    .map(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
                    .unwrap_or(false);
                if !ok {
                    return Err(invalid(
                        "endpoint",
                        format!("must be an http(s) URL such as https://huggingface.co, not \"{e}\""),
                    ));
                }
            }
        }
        if let Some(token) = patch.token {
            next.token = blank(token);
            if next.token.as_deref().is_some_and(|t| t.chars().any(char::is_whitespace)) {
                return Err(invalid("token", "must not contain spaces"));
            }
        }
        if let Some(n) = patch.max_concurrent_downloads {
            if !(1..=16).contains(&n) {
                return Err(invalid("maxConcurrentDownloads", format!("must be from 1 to 16, not {n}")));
            }
            next.max_concurrent_downloads = n;
        }
        if let Some(limit) = patch.bandwidth_limit {
            next.bandwidth_limit = (limit > 0).then_some(limit);
            if limit > 0 && limit < 10_000 {
                return Err(invalid(
                    "bandwidthLimit",
                    format!("must be at least 10000 bytes per second (or 0 for none), not {limit}"),
                ));
            }
        }
        if let Some(n) = patch.connections_per_file {
            if !(1..=64).contains(&n) {
                return Err(invalid("connectionsPerFile", format!("must be from 1 to 64, not {n}")));
            }
            next.connections_per_file = n;
        }
        if let Some(xet) = patch.use_xet {
            next.use_xet = xet;
        }
        if let Some(verify) = patch.verify_on_download {
            next.verify_on_download = verify;
        }
        if let Some(keep) = patch.keep_in_tray {
            next.keep_in_tray = keep;
        }
        if let Some(notify) = patch.notify_downloads {
            next.notify_downloads = notify;
        }
        if let Some(copy) = patch.copy_imports {
            next.copy_imports = copy;
        }
        if let Some(path) = patch.llama_server {
            next.llama_server = blank(path);
            if let Some(p) = next.llama_server.as_deref().filter(|p| !Path::new(p).is_absolute()) {
                return Err(invalid("llamaServer", format!("must be an absolute path, not \"{p}\"")));
            }
        }
        if let Some(n) = patch.max_context {
            if !(256..=1 << 24).contains(&n) {
                return Err(invalid("maxContext", format!("must be from 256 to 16777216 tokens, not {n}")));
            }
            next.max_context = n;
        }
        if let Some(n) = patch.idle_unload_seconds {
            next.idle_unload_seconds = n;
        }
        if let Some(n) = patch.max_loaded {
            if !(1..=16).contains(&n) {
                return Err(invalid("maxLoaded", format!("must be from 1 to 16, not {n}")));
            }
            next.max_loaded = n;
        }
        if let Some(n) = patch.restart_attempts {
            if n > 100 {
                return Err(invalid("restartAttempts", format!("must be from 0 to 100, not {n}")));
            }
            next.restart_attempts = n;
        }
        if let Some(required) = patch.serve_require_token {
            next.serve_require_token = required;
        }
        *self = next;
        Ok(())
    }

    /// One setting as text, for `mm config get KEY` (the token masked).
    pub fn get(&self, key: &str) -> Result<String, SettingsError> {
        let opt = |v: &Option<String>| v.clone().unwrap_or_default();
        Ok(match key {
            "cacheDir" => opt(&self.cache_dir),
            "libraryFolders" => self.library_folders.join(","),
            "endpoint" => opt(&self.endpoint),
            "token" => self.token.as_deref().map(mask_token).unwrap_or_default(),
            "maxConcurrentDownloads" => self.max_concurrent_downloads.to_string(),
            "bandwidthLimit" => self.bandwidth_limit.map(|b| b.to_string()).unwrap_or_default(),
            "connectionsPerFile" => self.connections_per_file.to_string(),
            "useXet" => self.use_xet.to_string(),
            "verifyOnDownload" => self.verify_on_download.to_string(),
            "keepInTray" => self.keep_in_tray.to_string(),
            "notifyDownloads" => self.notify_downloads.to_string(),
            "copyImports" => self.copy_imports.to_string(),
            "llamaServer" => opt(&self.llama_server),
            "maxContext" => self.max_context.to_string(),
            "idleUnloadSeconds" => self.idle_unload_seconds.to_string(),
            "maxLoaded" => self.max_loaded.to_string(),
            "restartAttempts" => self.restart_attempts.to_string(),
            "serveRequireToken" => self.serve_require_token.to_string(),
            other => return Err(SettingsError::UnknownKey(other.to_string())),
        })
    }

    /// A patch that sets one key from text, for `mm config set KEY VALUE`.
    pub fn patch_from_text(key: &str, value: &str) -> Result<SettingsPatch, SettingsError> {
        let number = |key: &'static str| {
            value.trim().parse::<u64>().map_err(|_| invalid(key, format!("must be a whole number, not \"{value}\"")))
        };
        let mut patch = SettingsPatch::default();
        match key {
            "cacheDir" => patch.cache_dir = Some(value.into()),
            "libraryFolders" => patch.library_folders = Some(value.split(',').map(str::to_owned).collect()),
            "endpoint" => patch.endpoint = Some(value.into()),
            "token" => patch.token = Some(value.into()),
            "maxConcurrentDownloads" => {
                patch.max_concurrent_downloads = Some(number("maxConcurrentDownloads")?.min(u32::MAX as u64) as u32)
            }
            "bandwidthLimit" => {
                patch.bandwidth_limit = Some(if value.trim().is_empty() { 0 } else { number("bandwidthLimit")? })
            }
            "connectionsPerFile" => {
                patch.connections_per_file = Some(number("connectionsPerFile")?.min(u32::MAX as u64) as u32)
            }
            "useXet" => patch.use_xet = Some(boolean("useXet", value)?),
            "verifyOnDownload" => patch.verify_on_download = Some(boolean("verifyOnDownload", value)?),
            "keepInTray" => patch.keep_in_tray = Some(boolean("keepInTray", value)?),
            "notifyDownloads" => patch.notify_downloads = Some(boolean("notifyDownloads", value)?),
            "copyImports" => patch.copy_imports = Some(boolean("copyImports", value)?),
            "llamaServer" => patch.llama_server = Some(value.into()),
            "maxContext" => patch.max_context = Some(number("maxContext")?),
            "idleUnloadSeconds" => patch.idle_unload_seconds = Some(number("idleUnloadSeconds")?),
            "maxLoaded" => patch.max_loaded = Some(number("maxLoaded")?.min(u32::MAX as u64) as u32),
            "restartAttempts" => patch.restart_attempts = Some(number("restartAttempts")?.min(u32::MAX as u64) as u32),
            "serveRequireToken" => patch.serve_require_token = Some(boolean("serveRequireToken", value)?),
            other => return Err(SettingsError::UnknownKey(other.to_string())),
        }
        Ok(patch)
    }
}

fn boolean(key: &'static str, value: &str) -> Result<bool, SettingsError> {
    match value.trim() {
        "true" | "on" | "yes" | "1" => Ok(true),
        "false" | "off" | "no" | "0" => Ok(false),
        _ => Err(invalid(key, format!("must be true or false, not \"{value}\""))),
    }
}

/// `hf_…wxyz`: enough to tell tokens apart, never enough to use one.
pub fn mask_token(token: &str) -> String {
    let tail: String = token.chars().rev().take(4).collect::<Vec<_>>().into_iter().rev().collect();
    let head: String = token.chars().take(3).collect();
    if token.chars().count() <= 8 {
        "…".into()
    } else {
        format!("{head}…{tail}")
    }
}

/// The settings file, shared by the app and `mm`.
#[derive(Debug, Clone)]
pub struct SettingsStore {
    path: PathBuf,
}

impl SettingsStore {
    pub fn new(path: PathBuf) -> SettingsStore {
        SettingsStore { path }
    }

    /// `settings.json` in the app's data folder, which is made private to this user (0700) on the way: it holds
    /// the user's intent, the journal of downloads and, with no keyring, the token.
    pub fn default_location() -> SettingsStore {
        let dir = crate::paths::app_data_dir();
        if let Err(e) = crate::paths::private_dir(&dir) {
            eprintln!("warning: could not make {} private to this user: {e}", dir.display());
        }
        SettingsStore::new(dir.join("settings.json"))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The settings, and a warning when the file was unreadable and has been set aside for defaults.
    pub fn load(&self) -> Result<(Settings, Option<String>), SettingsError> {
        let _lock = self.lock()?;
        self.read_locked()
    }

    /// Where this settings file's token is kept.
    pub fn tokens(&self) -> crate::secret::TokenStore {
        crate::secret::TokenStore::beside(&self.path)
    }

    fn token(&self) -> Result<Option<String>, SettingsError> {
        self.tokens().get().map_err(|source| SettingsError::Io {
            what: "read the token of",
            path: self.path.clone(),
            source,
        })
    }

    /// Takes the settings file's lock (a read-modify-write at a time, across processes), creating its folder
    /// private to this user (0700) when missing.
    fn lock(&self) -> Result<crate::cache::lock::BlobLock, SettingsError> {
        let io = |source| SettingsError::Io { what: "lock", path: self.path.clone(), source };
        if let Some(folder) = self.path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::DirBuilder::new().recursive(true).mode(0o700).create(folder).map_err(io)?;
        }
        let lock = crate::cache::lock::lock_file_blocking(&self.path.with_extension("json.lock")).map_err(io)?;
        // A file an older version wrote with the default umask.
        crate::paths::restrict(&self.path, 0o600).map_err(io)?;
        Ok(lock)
    }

    fn read_locked(&self) -> Result<(Settings, Option<String>), SettingsError> {
        let bytes = match fs::read(&self.path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Ok((Settings { token: self.token()?, ..Settings::default() }, None))
            }
            Err(source) => return Err(SettingsError::Io { what: "read", path: self.path.clone(), source }),
        };
        match serde_json::from_slice::<Settings>(&bytes) {
            Ok(mut settings) => {
                // A token an older version kept in the file moves to the keyring (or its private file), and out.
                if let Some(legacy) = settings.token.take() {
                    let io = |what| move |source| SettingsError::Io { what, path: self.path.clone(), source };
                    self.tokens().set(Some(&legacy)).map_err(io("keep the token of"))?;
                    let bytes = serde_json::to_vec_pretty(&settings).expect("settings serialise");
                    crate::disk::write_atomic(&self.path, &bytes, 0o600).map_err(io("write"))?;
                }
                settings.token = self.token()?;
                Ok((settings, None))
            }
            Err(err) => {
                let backup = self.path.with_extension(format!("json.corrupt-{}", crate::format::now_unix()));
                fs::rename(&self.path, &backup).map_err(|source| SettingsError::Io {
                    what: "set aside",
                    path: self.path.clone(),
                    source,
                })?;
                let warning = format!(
                    "The settings file could not be read ({err}); it was saved as {} and the defaults are in use.",
                    backup.display()
                );
                Ok((Settings { token: self.token()?, ..Settings::default() }, Some(warning)))
            }
        }
    }

    /// Reads, changes and writes the settings as one step under the lock; returns the new settings. The file is
    /// not rewritten when nothing changed.
    pub fn update<T>(
        &self,
        change: impl FnOnce(&mut Settings) -> Result<T, SettingsError>,
    ) -> Result<(Settings, T), SettingsError> {
        self.update_then(change, |_| ()).map(|(settings, out, ())| (settings, out))
    }

    /// [`SettingsStore::update`], then `then` with the new settings while the lock is still held, so that what it
    /// derives from them (links, a manifest) is written in the same order as the settings.
    /// Forgets the hub token in every store it could be in, under the settings lock.
    pub fn forget_token(&self) -> Result<(), SettingsError> {
        let _lock = self.lock()?;
        self.tokens().set(None).map(|_| ()).map_err(|source| SettingsError::Io {
            what: "forget the token of",
            path: self.path.clone(),
            source,
        })
    }

    pub fn update_then<T, U>(
        &self,
        change: impl FnOnce(&mut Settings) -> Result<T, SettingsError>,
        then: impl FnOnce(&Settings) -> U,
    ) -> Result<(Settings, T, U), SettingsError> {
        let _lock = self.lock()?;
        let (mut settings, _) = self.read_locked()?;
        let before = settings.clone();
        let out = change(&mut settings)?;
        if settings.token != before.token {
            self.tokens().set(settings.token.as_deref()).map_err(|source| SettingsError::Io {
                what: "keep the token of",
                path: self.path.clone(),
                source,
            })?;
        }
        if settings != before || !self.path.exists() {
            let bytes = serde_json::to_vec_pretty(&settings).expect("settings serialise");
            crate::disk::write_atomic(&self.path, &bytes, 0o600).map_err(|source| SettingsError::Io {
                what: "write",
                path: self.path.clone(),
                source,
            })?;
        }
        let derived = then(&settings);
        Ok((settings, out, derived))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, SettingsStore) {
        let tmp = tempfile::tempdir().unwrap();
        let store = SettingsStore::new(tmp.path().join("app/settings.json"));
        (tmp, store)
    }

    #[test]
    fn defaults_when_there_is_no_file() {
        let (_tmp, store) = store();
        let (s, warning) = store.load().unwrap();
        assert_eq!(s, Settings::default());
        assert_eq!(s.max_concurrent_downloads, 3);
        assert!(s.verify_on_download && warning.is_none());
    }

    #[test]
    fn patches_are_validated_as_a_whole() {
        let mut s = Settings::default();
        let err = s
            .apply(SettingsPatch {
                max_concurrent_downloads: Some(5),
                endpoint: Some("ftp://x".into()),
                ..Default::default()
            })
            .unwrap_err();
        assert!(err.to_string().starts_with("endpoint must be an http(s) URL"), "{err}");
        assert_eq!(s.max_concurrent_downloads, 3, "nothing changed");
        for (patch, message) in [
            (
                SettingsPatch { max_concurrent_downloads: Some(0), ..Default::default() },
                "maxConcurrentDownloads must be from 1 to 16",
            ),
            (
                SettingsPatch { cache_dir: Some("relative/dir".into()), ..Default::default() },
                "cacheDir must be an absolute path",
            ),
            (
                SettingsPatch { library_folders: Some(vec!["/ok".into(), "rel".into()]), ..Default::default() },
                "libraryFolders must hold absolute paths",
            ),
            (SettingsPatch { bandwidth_limit: Some(5), ..Default::default() }, "bandwidthLimit must be at least"),
            (SettingsPatch { token: Some("hf abc".into()), ..Default::default() }, "token must not contain spaces"),
        ] {
            let err = s.clone().apply(patch).unwrap_err();
            assert!(err.to_string().starts_with(message), "{err}");
            assert_eq!(err.code(), ErrorCode::InvalidInput);
        }
        s.apply(SettingsPatch {
            endpoint: Some("http://127.0.0.1:8080/".into()),
            token: Some(" hf_abcdefgh1234 ".into()),
            bandwidth_limit: Some(0),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(s.endpoint.as_deref(), Some("http://127.0.0.1:8080"));
        assert_eq!(s.token.as_deref(), Some("hf_abcdefgh1234"));
        assert_eq!(s.bandwidth_limit, None);
        s.apply(SettingsPatch { token: Some(String::new()), ..Default::default() }).unwrap();
        assert_eq!(s.token, None, "an empty token clears it");
    }

    #[test]
    fn connections_per_file_are_one_to_sixty_four() {
        let mut s = Settings::default();
        assert_eq!(s.connections_per_file, 16);
        s.apply(Settings::patch_from_text("connectionsPerFile", "1").unwrap()).unwrap();
        assert_eq!(s.get("connectionsPerFile").unwrap(), "1");
        for bad in ["0", "65"] {
            let err = s.apply(Settings::patch_from_text("connectionsPerFile", bad).unwrap()).unwrap_err();
            assert!(err.to_string().contains("connectionsPerFile must be from 1 to 64"), "{err}");
        }
        assert_eq!(s.connections_per_file, 1);
    }

    #[test]
    fn the_token_is_masked_in_views_text_and_debug() {
        let mut s = Settings::default();
        s.apply(SettingsPatch { token: Some("hf_SECRETSECRETwxyz".into()), ..Default::default() }).unwrap();
        assert_eq!(s.view(None).token_hint.as_deref(), Some("hf_…wxyz"));
        assert_eq!(s.get("token").unwrap(), "hf_…wxyz");
        assert!(!format!("{s:?}").contains("SECRET"));
        assert!(!serde_json::to_string(&s.view(None)).unwrap().contains("SECRET"));
        assert_eq!(mask_token("short"), "…");
    }

    #[test]
    fn text_keys_round_trip_and_unknown_keys_say_what_is_known() {
        let mut s = Settings::default();
        s.apply(Settings::patch_from_text("maxConcurrentDownloads", "7").unwrap()).unwrap();
        s.apply(Settings::patch_from_text("verifyOnDownload", "off").unwrap()).unwrap();
        s.apply(Settings::patch_from_text("libraryFolders", "/a,/b").unwrap()).unwrap();
        assert_eq!(s.get("maxConcurrentDownloads").unwrap(), "7");
        assert_eq!(s.get("verifyOnDownload").unwrap(), "false");
        assert_eq!(s.get("libraryFolders").unwrap(), "/a,/b");
        assert!(Settings::patch_from_text("maxConcurrentDownloads", "many")
            .unwrap_err()
            .to_string()
            .contains("whole number"));
        assert!(s.get("colour").unwrap_err().to_string().contains("known are cacheDir"));
    }

    #[test]
    fn a_file_cut_in_half_is_set_aside_and_defaults_are_used() {
        let (_tmp, store) = store();
        store.update(|s| s.apply(SettingsPatch { max_concurrent_downloads: Some(9), ..Default::default() })).unwrap();
        let text = fs::read(store.path()).unwrap();
        fs::write(store.path(), &text[..text.len() / 2]).unwrap();
        let (s, warning) = store.load().unwrap();
        assert_eq!(s, Settings::default());
        let warning = warning.expect("a warning");
        assert!(warning.starts_with("The settings file could not be read"), "{warning}");
        let backups: Vec<_> = fs::read_dir(store.path().parent().unwrap())
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().contains(".corrupt-"))
            .collect();
        assert_eq!(backups.len(), 1);
        assert_eq!(fs::read(backups[0].path()).unwrap(), text[..text.len() / 2], "the broken file is kept");
        // Writing again works, and the next load has no warning.
        store.update(|s| s.apply(SettingsPatch { verify_on_download: Some(false), ..Default::default() })).unwrap();
        assert!(store.load().unwrap().1.is_none());
    }

    #[test]
    fn the_settings_file_is_private_to_its_user_and_an_older_readable_one_is_tightened() {
        use std::os::unix::fs::PermissionsExt;
        let (tmp, store) = store();
        store
            .update(|s| s.apply(SettingsPatch { token: Some("hf_SECRETSECRET".into()), ..Default::default() }))
            .unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(store.path()), 0o600);
        assert_eq!(mode(store.path().parent().unwrap()), 0o700, "a folder it creates is private too");
        // A file an older version left readable by everyone is tightened on the next read, and so is what a
        // broken one is set aside as.
        fs::set_permissions(store.path(), fs::Permissions::from_mode(0o644)).unwrap();
        store.load().unwrap();
        assert_eq!(mode(store.path()), 0o600);
        fs::write(store.path(), b"{broken").unwrap();
        fs::set_permissions(store.path(), fs::Permissions::from_mode(0o644)).unwrap();
        store.load().unwrap();
        let leftovers: Vec<_> = fs::read_dir(tmp.path().join("app")).unwrap().flatten().map(|e| e.path()).collect();
        for path in leftovers.iter().filter(|p| !p.to_string_lossy().ends_with(".lock")) {
            assert_eq!(mode(path), 0o600, "{}", path.display());
        }
    }

    #[test]
    fn the_token_never_reaches_the_settings_file_and_an_old_one_there_is_moved_out() {
        use std::os::unix::fs::PermissionsExt;
        let (tmp, store) = store();
        let token_file = tmp.path().join("app/settings.token");
        store
            .update(|s| s.apply(SettingsPatch { token: Some("hf_SECRETSECRETwxyz".into()), ..Default::default() }))
            .unwrap();
        assert!(!fs::read_to_string(store.path()).unwrap().contains("SECRET"));
        assert_eq!(store.load().unwrap().0.token.as_deref(), Some("hf_SECRETSECRETwxyz"), "it comes back");
        if token_file.exists() {
            // No keyring answered here: the private file holds it.
            assert_eq!(fs::metadata(&token_file).unwrap().permissions().mode() & 0o777, 0o600);
        }
        store.update(|s| s.apply(SettingsPatch { token: Some(String::new()), ..Default::default() })).unwrap();
        assert_eq!(store.load().unwrap().0.token, None);
        // Nothing behind; with no keyring to confirm the clear, an empty file says it is cleared.
        assert!(fs::read(&token_file).map_or(true, |t| t.is_empty()), "a cleared token leaves nothing behind");

        // A settings file from before: the token moves out of it on the first read.
        fs::write(store.path(), r#"{"token": "hf_OLDOLDOLDabcd", "maxConcurrentDownloads": 4}"#).unwrap();
        let (s, _) = store.load().unwrap();
        assert_eq!((s.token.as_deref(), s.max_concurrent_downloads), (Some("hf_OLDOLDOLDabcd"), 4));
        let text = fs::read_to_string(store.path()).unwrap();
        assert!(!text.contains("OLDOLD") && text.contains("\"maxConcurrentDownloads\": 4"), "{text}");
        assert_eq!(store.load().unwrap().0.token.as_deref(), Some("hf_OLDOLDOLDabcd"));
        store.tokens().set(None).unwrap();
    }

    #[test]
    fn concurrent_writers_lose_nothing() {
        let (_tmp, store) = store();
        let threads: Vec<_> = (0..8)
            .map(|i| {
                let store = store.clone();
                std::thread::spawn(move || {
                    for j in 0..25 {
                        store
                            .update(|s| {
                                s.model_types.insert(format!("org/m{i}-{j}"), "embedding".into());
                                Ok(())
                            })
                            .unwrap();
                    }
                })
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        assert_eq!(store.load().unwrap().0.model_types.len(), 200);
    }

    #[test]
    fn unknown_fields_and_missing_fields_are_tolerated() {
        let (_tmp, store) = store();
        fs::create_dir_all(store.path().parent().unwrap()).unwrap();
        fs::write(store.path(), r#"{"maxConcurrentDownloads": 5, "someFutureKey": true}"#).unwrap();
        let (s, warning) = store.load().unwrap();
        assert!(warning.is_none());
        assert_eq!(s.max_concurrent_downloads, 5);
        assert!(s.verify_on_download, "missing fields take defaults");
    }
}
