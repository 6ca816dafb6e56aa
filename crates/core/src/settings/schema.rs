//! Every setting, declared once, in the table at the bottom of this file: its field, type and default, its key,
//! its kind (which also holds its bounds), whether `mm serve`'s API may change it, and its label and help. From
//! that one row come the field of [`Settings`], [`SettingsView`] and [`SettingsPatch`]; its validation
//! ([`Settings::apply`]); `mm config get` and `set` ([`Settings::get`], [`Settings::patch_from_text`]); its `MM_*`
//! environment override ([`Settings::overridden_by`]); the API's refusal ([`SettingsPatch::machine_only`]); the
//! bounds the window checks ([`table`], exported to the UI's bindings); and the README's settings table
//! ([`readme_table`]). Adding a setting is adding a row (and where the window shows it).

use super::{ActiveModel, MachineEntry, SettingsError};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;
use ts_rs::TS;

/// Connections one large file uses at most unless the settings say otherwise.
pub const DEFAULT_CONNECTIONS_PER_FILE: u32 = 16;

/// What a setting holds, with its bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, TS)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Kind {
    /// `true` or `false`.
    Flag,
    /// A whole number from `min` to `max`.
    Count { min: u64, max: u64 },
    /// A whole number of at least `min`, or 0 for none.
    Limit { min: u64 },
    /// An absolute path, or empty for the default.
    Path,
    /// Absolute paths (comma-separated as text).
    Paths,
    /// An http(s) URL, or empty for the default.
    Url,
}

/// One setting as `mm config`, the window and the README describe it.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct SettingInfo {
    #[ts(type = "string")]
    pub key: &'static str,
    pub kind: Kind,
    /// The default, as `mm config get` shows it (empty: none, or what the environment says).
    pub default: String,
    /// Whether `mm serve`'s API may change it: not one that names a program, a folder or an address (over the API
    /// it would run a client's program, or send the hub token or the models anywhere), nor one that guards the
    /// server itself.
    pub api: bool,
    #[ts(type = "string")]
    pub label: &'static str,
    #[ts(type = "string")]
    pub help: &'static str,
}

impl SettingInfo {
    /// The environment variable that overrides it for one process: `MM_` and the key in capitals
    /// (`maxConcurrentDownloads`: `MM_MAX_CONCURRENT_DOWNLOADS`).
    pub fn env_var(&self) -> String {
        let mut name = String::from("MM_");
        for c in self.key.chars() {
            if c.is_ascii_uppercase() {
                name.push('_');
            }
            name.push(c.to_ascii_uppercase());
        }
        name
    }
}

fn invalid(key: &'static str, problem: impl Into<String>) -> SettingsError {
    SettingsError::Invalid { key, problem: problem.into() }
}

fn number(key: &'static str, text: &str) -> Result<u64, SettingsError> {
    text.trim().parse::<u64>().map_err(|_| invalid(key, format!("must be a whole number, not \"{text}\"")))
}

/// How a setting's value is given (in a patch, or as text) and checked against its kind.
pub(crate) trait Value: Sized {
    /// What a patch gives.
    type Given;
    fn check(key: &'static str, kind: Kind, given: Self::Given) -> Result<Self, SettingsError>;
    fn text(&self) -> String;
    fn parse(key: &'static str, text: &str) -> Result<Self::Given, SettingsError>;
}

impl Value for bool {
    type Given = bool;
    fn check(_: &'static str, _: Kind, given: bool) -> Result<bool, SettingsError> {
        Ok(given)
    }
    fn text(&self) -> String {
        self.to_string()
    }
    fn parse(key: &'static str, text: &str) -> Result<bool, SettingsError> {
        match text.trim() {
            "true" | "on" | "yes" | "1" => Ok(true),
            "false" | "off" | "no" | "0" => Ok(false),
            _ => Err(invalid(key, format!("must be true or false, not \"{text}\""))),
        }
    }
}

fn in_bounds(key: &'static str, kind: Kind, n: u64) -> Result<u64, SettingsError> {
    match kind {
        Kind::Count { min, max } if !(min..=max).contains(&n) => {
            Err(invalid(key, format!("must be from {min} to {max}, not {n}")))
        }
        _ => Ok(n),
    }
}

impl Value for u64 {
    type Given = u64;
    fn check(key: &'static str, kind: Kind, given: u64) -> Result<u64, SettingsError> {
        in_bounds(key, kind, given)
    }
    fn text(&self) -> String {
        self.to_string()
    }
    fn parse(key: &'static str, text: &str) -> Result<u64, SettingsError> {
        number(key, text)
    }
}

impl Value for u32 {
    type Given = u32;
    fn check(key: &'static str, kind: Kind, given: u32) -> Result<u32, SettingsError> {
        in_bounds(key, kind, u64::from(given)).map(|_| given)
    }
    fn text(&self) -> String {
        self.to_string()
    }
    fn parse(key: &'static str, text: &str) -> Result<u32, SettingsError> {
        number(key, text).map(|n| n.min(u64::from(u32::MAX)) as u32)
    }
}

/// A limit: 0 (or empty text) for none.
impl Value for Option<u64> {
    type Given = u64;
    fn check(key: &'static str, kind: Kind, given: u64) -> Result<Option<u64>, SettingsError> {
        match kind {
            Kind::Limit { min } if given > 0 && given < min => {
                Err(invalid(key, format!("must be at least {min} (or 0 for none), not {given}")))
            }
            _ => Ok((given > 0).then_some(given)),
        }
    }
    fn text(&self) -> String {
        self.map(|n| n.to_string()).unwrap_or_default()
    }
    fn parse(key: &'static str, text: &str) -> Result<u64, SettingsError> {
        if text.trim().is_empty() {
            Ok(0)
        } else {
            crate::format::parse_bytes(text).ok_or_else(|| {
                invalid(key, format!("must be a number of bytes such as 200GB or 500MiB (0: none), not \"{text}\""))
            })
        }
    }
}

fn blank(s: String) -> Option<String> {
    Some(s.trim().to_string()).filter(|s| !s.is_empty())
}

/// A path or URL: empty for the default.
impl Value for Option<String> {
    type Given = String;
    fn check(key: &'static str, kind: Kind, given: String) -> Result<Option<String>, SettingsError> {
        let Some(value) = blank(given) else { return Ok(None) };
        match kind {
            Kind::Path if !Path::new(&value).is_absolute() => {
                Err(invalid(key, format!("must be an absolute path, not \"{value}\"")))
            }
            Kind::Url => {
                let value = value.trim_end_matches('/').to_string();
                let ok = reqwest::Url::parse(&value)
                    .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some());
                if !ok {
                    // A proxy's password given in it stays out of the message (and the log it may reach).
                    let shown = value.rsplit_once('@').map_or(value.clone(), |(_, host)| format!("…@{host}"));
                    return Err(invalid(
                        key,
                        format!("must be an http(s) URL such as https://huggingface.co, not \"{shown}\""),
                    ));
                }
                Ok(Some(value))
            }
            _ => Ok(Some(value)),
        }
    }
    fn text(&self) -> String {
        self.clone().unwrap_or_default()
    }
    fn parse(_: &'static str, text: &str) -> Result<String, SettingsError> {
        Ok(text.to_string())
    }
}

/// Folders: every one absolute.
impl Value for Vec<String> {
    type Given = Vec<String>;
    fn check(key: &'static str, _: Kind, given: Vec<String>) -> Result<Vec<String>, SettingsError> {
        let folders: Vec<String> = given.into_iter().filter_map(blank).collect();
        if let Some(bad) = folders.iter().find(|f| !Path::new(f).is_absolute()) {
            return Err(invalid(key, format!("must hold absolute paths, not \"{bad}\"")));
        }
        Ok(folders)
    }
    fn text(&self) -> String {
        self.join(",")
    }
    fn parse(_: &'static str, text: &str) -> Result<Vec<String>, SettingsError> {
        Ok(text.split(',').map(str::to_owned).collect())
    }
}

/// Whether a row's access word lets the API change it.
macro_rules! api_may {
    (api) => {
        true
    };
    (machine) => {
        false
    };
}

macro_rules! settings {
    ($(
        $(#[doc = $doc:literal])*
        $field:ident: $ty:ty [$given:ty] = $default:expr;
            $key:literal, $kind:expr, $access:ident, $label:literal, $help:literal;
    )*) => {
        /// Everything kept in the settings file: the settings, and the user's intent the app records (types,
        /// active models, imports, machines).
        #[derive(Clone, PartialEq, Serialize, Deserialize, TS)]
        #[serde(rename_all = "camelCase", default)]
        pub struct Settings {
            $( $(#[doc = $doc])* pub $field: $ty, )*
            /// The hub token; empty for `HF_TOKEN` or `$HF_HOME/token`. Never logged, masked in the UI, never
            /// written to the settings file: it lives in the keyring or a private file ([`crate::secret`]). Read
            /// from the file only to move a token an older version kept there.
            #[serde(skip_serializing)]
            pub token: Option<String>,
            /// The proxy's `USER:PASSWORD`, kept like the token ([`SettingsStore::proxy_credentials`]); never in the
            /// settings file.
            #[serde(skip)]
            pub proxy_credentials: Option<String>,
            /// Model types the user chose, by model id; they win over inferred types.
            pub model_types: BTreeMap<String, String>,
            /// The active model per type (set by activation).
            pub active: BTreeMap<String, ActiveModel>,
            /// Models never unloaded for another (`mm load --pin`; unloading one unpins it).
            pub pinned: Vec<String>,
            /// Models never removed to make room (`mm pin`).
            pub storage_pins: Vec<String>,
            /// The `llamaServer` setting before the last build was made the default (what a rollback goes back to;
            /// empty: none was set).
            pub previous_llama_server: Option<String>,
            /// The base the user linked each adapter to, by adapter id (`mm link`); others are linked by what
            /// they name or fit.
            pub adapter_bases: BTreeMap<String, String>,
            /// How each model is run, by model id ([`super::load`]); a model with none set is not listed.
            pub load_settings: BTreeMap<String, super::LoadSettings>,
            /// Model files and folders imported from elsewhere on disk (dropped on the window or `mm import`).
            pub imports: Vec<crate::model::ImportedModel>,
            /// Other machines' `mm serve` the window can drive (their tokens kept like the hub token).
            pub machines: Vec<MachineEntry>,
        }

        impl Default for Settings {
            fn default() -> Self {
                Settings {
                    $( $field: $default, )*
                    token: None,
                    proxy_credentials: None,
                    model_types: BTreeMap::new(),
                    active: BTreeMap::new(),
                    pinned: Vec::new(),
                    storage_pins: Vec::new(),
                    previous_llama_server: None,
                    adapter_bases: BTreeMap::new(),
                    load_settings: BTreeMap::new(),
                    imports: Vec::new(),
                    machines: Vec::new(),
                }
            }
        }

        impl std::fmt::Debug for Settings {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct("Settings")
                    $( .field(stringify!($field), &self.$field) )*
                    .field("token", &self.token.as_ref().map(|_| "<set>"))
                    .field("proxy_credentials", &self.proxy_credentials.as_ref().map(|_| "<set>"))
                    .finish_non_exhaustive()
            }
        }

        /// The settings as the UI sees them: the token masked.
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS, utoipa::ToSchema)]
        #[serde(rename_all = "camelCase")]
        pub struct SettingsView {
            $( $(#[doc = $doc])* pub $field: $ty, )*
            /// `hf_…wxyz`, or none when no token is set here.
            pub token_hint: Option<String>,
            /// Other machines the window can drive.
            pub machines: Vec<MachineEntry>,
            /// Set when the file was unreadable and was replaced by defaults.
            pub warning: Option<String>,
        }

        /// A change to some settings; absent fields stay, an empty text or 0 limit resets. `token: ""` clears the
        /// token.
        #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, TS, utoipa::ToSchema)]
        #[serde(rename_all = "camelCase", default)]
        pub struct SettingsPatch {
            $( pub $field: Option<$given>, )*
            pub token: Option<String>,
        }

        impl SettingsPatch {
            /// The keys this patch would change that `mm serve`'s API may not (see [`SettingInfo::api`]).
            pub fn machine_only(&self) -> Vec<&'static str> {
                let mut keys = Vec::new();
                $( if !api_may!($access) && self.$field.is_some() { keys.push($key); } )*
                keys
            }
        }

        /// Every setting, in the table's order.
        pub fn table() -> Vec<SettingInfo> {
            let defaults = Settings::default();
            vec![$( SettingInfo {
                key: $key,
                kind: $kind,
                default: Value::text(&defaults.$field),
                api: api_may!($access),
                label: $label,
                help: $help,
            }, )*]
        }

        impl Settings {
            /// The masked view for the UI, with the recovery warning if any.
            pub fn view(&self, warning: Option<String>) -> SettingsView {
                SettingsView {
                    $( $field: self.$field.clone(), )*
                    token_hint: self.token.as_deref().map(super::mask_token),
                    machines: self.machines.clone(),
                    warning,
                }
            }

            /// Applies `patch` after validating every field; nothing changes when any field is invalid.
            pub fn apply(&mut self, patch: SettingsPatch) -> Result<(), SettingsError> {
                let mut next = self.clone();
                $( if let Some(given) = patch.$field { next.$field = <$ty as Value>::check($key, $kind, given)?; } )*
                if let Some(token) = patch.token {
                    next.token = blank(token);
                    if next.token.as_deref().is_some_and(|t| t.chars().any(char::is_whitespace)) {
                        return Err(invalid("token", "must not contain spaces"));
                    }
                }
                *self = next;
                Ok(())
            }

            /// One setting as text, for `mm config get KEY` (the token masked).
            pub fn get(&self, key: &str) -> Result<String, SettingsError> {
                Ok(match key {
                    $( $key => Value::text(&self.$field), )*
                    "token" => self.token.as_deref().map(super::mask_token).unwrap_or_default(),
                    other => return Err(SettingsError::UnknownKey(other.to_string())),
                })
            }

            /// A patch that sets one key from text, for `mm config set KEY VALUE` and the environment.
            pub fn patch_from_text(key: &str, value: &str) -> Result<SettingsPatch, SettingsError> {
                let mut patch = SettingsPatch::default();
                match key {
                    $( $key => patch.$field = Some(<$ty as Value>::parse($key, value)?), )*
                    "token" => patch.token = Some(value.into()),
                    other => return Err(SettingsError::UnknownKey(other.to_string())),
                }
                Ok(patch)
            }
        }
    };
}

settings! {
    /// The Hugging Face cache to use; empty for the one `HF_HUB_CACHE`/`HF_HOME` name.
    cache_dir: Option<String> [String] = None;
        "cacheDir", Kind::Path, machine, "Cache folder", "the Hugging Face cache (default: HF_HUB_CACHE, HF_HOME)";
    /// More Hugging Face caches to list, read-only (a shared or older cache).
    library_folders: Vec<String> [Vec<String>] = Vec::new();
        "libraryFolders", Kind::Paths, machine, "Library folders", "more caches and model folders, read-only";
    /// The hub endpoint; empty for `HF_ENDPOINT` or huggingface.co.
    endpoint: Option<String> [String] = None;
        "endpoint", Kind::Url, machine, "Hub endpoint", "the hub (default: HF_ENDPOINT, else huggingface.co)";
    /// The HTTP proxy every download goes through (the hub, its CDN, Xet, URLs, the mirror's pull-through); empty
    /// for `HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY`. `NO_PROXY` applies either way. A user and password given in it
    /// are kept as the token is, never in the settings file ([`crate::proxy`]).
    proxy: Option<String> [String] = None;
        "proxy", Kind::Url, machine, "Proxy", "the HTTP proxy downloads go through, as http://USER:PASSWORD@HOST:PORT (default: HTTPS_PROXY, HTTP_PROXY, ALL_PROXY)";
    /// Downloads running at once.
    max_concurrent_downloads: u32 [u32] = 3;
        "maxConcurrentDownloads", Kind::Count { min: 1, max: 16 }, api, "Downloads at once", "downloads running at once";
    /// Download speed limit in bytes per second, for all downloads together; none for no limit.
    bandwidth_limit: Option<u64> [u64] = None;
        "bandwidthLimit", Kind::Limit { min: 10_000 }, api, "Speed limit", "bytes per second for all downloads together (0: none)";
    /// Connections one large file may use at once (1 for a single stream).
    connections_per_file: u32 [u32] = DEFAULT_CONNECTIONS_PER_FILE;
        "connectionsPerFile", Kind::Count { min: 1, max: 64 }, api, "Connections per large file", "connections one large file uses at most";
    /// Fetch Xet-backed files from the Hub's Xet storage (`HF_HUB_DISABLE_XET=1` turns it off too).
    use_xet: bool [bool] = true;
        "useXet", Kind::Flag, api, "Download from the Hub's Xet storage", "fetch Xet-backed files from the Hub's Xet storage";
    /// The most the cache and the app's models folder take together, in bytes; a download past it removes the
    /// least recently used models nobody uses, once the user agrees. None: no limit.
    storage_limit: Option<u64> [u64] = None;
        "storageLimit", Kind::Limit { min: 1 << 20 }, api, "Storage limit", "the most the cache and the models folder take (such as 200GB; 0: none)";
    /// Disk space a download leaves free, in bytes; past it, as past the limit.
    min_free_space: Option<u64> [u64] = None;
        "minFreeSpace", Kind::Limit { min: 1 << 20 }, api, "Free space kept", "disk space downloads leave free (such as 20GB; 0: none)";
    /// Check each file's hash while downloading (sizes are always checked).
    verify_on_download: bool [bool] = true;
        "verifyOnDownload", Kind::Flag, api, "Verify while downloading", "hash each file as it arrives";
    /// Closing the window keeps the app running in the system tray.
    keep_in_tray: bool [bool] = true;
        "keepInTray", Kind::Flag, api, "Keep running in the tray", "closing the window keeps the app in the tray";
    /// A desktop notification when a download finishes or fails.
    notify_downloads: bool [bool] = true;
        "notifyDownloads", Kind::Flag, api, "Notify when a download ends", "a desktop notification when a download finishes or fails";
    /// Files dropped on the window are copied into the app's models folder (else referenced where they are).
    copy_imports: bool [bool] = false;
        "copyImports", Kind::Flag, api, "Copy dropped files", "dropped files are copied into the library, else used where they are";
    /// The `llama-server` program that loads GGUF models; empty: the one on `PATH`.
    llama_server: Option<String> [String] = None;
        "llamaServer", Kind::Path, machine, "llama-server program", "the program that loads GGUF models (default: llama-server on PATH)";
    /// Where "Get llama.cpp" finds llama.cpp's releases: a releases API in GitHub's shape; empty for llama.cpp's own.
    llama_cpp_releases: Option<String> [String] = None;
        "llamaCppReleases", Kind::Url, machine, "llama.cpp releases", "where Get llama.cpp looks (default: github.com/ggml-org/llama.cpp's releases)";
    /// The largest context a load chooses by itself (tokens); the model's own and the free memory may lower it.
    max_context: u64 [u64] = 8192;
        "maxContext", Kind::Count { min: 256, max: 1 << 24 }, api, "Largest context (tokens)", "the largest context a load picks by itself";
    /// Unload a model nobody sent a request for this many seconds; 0: never.
    idle_unload_seconds: u64 [u64] = 0;
        "idleUnloadSeconds", Kind::Count { min: 0, max: u64::MAX }, api, "Unload after idle (seconds)", "unload a model idle this long (0: never)";
    /// Models loaded at once at most; memory decides first (one that does not fit unloads the least recently used
    /// idle ones).
    max_loaded: u32 [u32] = 4;
        "maxLoaded", Kind::Count { min: 1, max: 16 }, api, "Models loaded at once", "models loaded at once at most; memory decides first";
    /// Memory (RAM and GPU) loaded models leave free for everything else, in bytes.
    memory_reserve: u64 [u64] = 1 << 30;
        "memoryReserve", Kind::Count { min: 0, max: u64::MAX }, api, "Memory kept free (bytes)", "RAM and GPU memory loaded models leave for everything else";
    /// The most memory loaded models may take together, in bytes; none: what the machine has free.
    memory_limit: Option<u64> [u64] = None;
        "memoryLimit", Kind::Limit { min: 1 << 20 }, api, "Memory for models (bytes)", "the most loaded models take together (0: what is free)";
    /// Times a runtime that died is started again (after 1, 2, 4... seconds) before it is left stopped.
    restart_attempts: u32 [u32] = 3;
        "restartAttempts", Kind::Count { min: 0, max: 100 }, api, "Restarts after a crash", "restarts of a runtime that died";
    /// The window runs `mm serve`'s API and model endpoint while the app runs (on this machine's loopback only).
    local_server: bool [bool] = false;
        "localServer", Kind::Flag, machine, "Local server", "the app serves the model endpoint (/v1, /api) on this machine while it runs";
    /// The port of the app's local server.
    local_server_port: u32 [u32] = 8765;
        "localServerPort", Kind::Count { min: 1, max: 65535 }, machine, "Local server port", "the port of the app's local server";
    /// `mm serve` asks for its token on loopback too (for a machine other users share); the app and `mm` on this
    /// machine read it from its 0600 file.
    serve_require_token: bool [bool] = false;
        "serveRequireToken", Kind::Flag, machine, "mm serve asks for its token on this machine too", "mm serve needs its token on loopback too";
}

impl Settings {
    /// These settings with the `MM_*` environment overrides applied (one process's, never written to the file),
    /// as `env` reads them; an override that does not parse or validate is skipped, and said.
    pub fn overridden_by(mut self, env: impl Fn(&str) -> Option<String>) -> (Settings, Vec<String>) {
        let mut problems = Vec::new();
        for setting in table() {
            let Some(value) = env(&setting.env_var()) else { continue };
            let applied = Settings::patch_from_text(setting.key, &value).and_then(|patch| self.apply(patch));
            if let Err(e) = applied {
                problems.push(format!("{} is ignored: {e}", setting.env_var()));
            }
        }
        (self, problems)
    }
}

/// The README's settings table, as the table declares it.
pub fn readme_table() -> String {
    let mut out = String::from(
        "| key | environment | default | what | over `mm serve`'s API |\n| --- | --- | --- | --- | --- |\n",
    );
    for s in table() {
        let bounds = match s.kind {
            Kind::Count { min, max } if max < u64::MAX => format!(" ({min}-{max})"),
            Kind::Limit { min } => format!(" (at least {min})"),
            _ => String::new(),
        };
        let default = if s.default.is_empty() { "none".to_string() } else { format!("`{}`", s.default) };
        let api = if s.api { "yes" } else { "no" };
        out.push_str(&format!("| `{}` | `{}` | {default} | {}{bounds} | {api} |\n", s.key, s.env_var(), s.help));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_has_its_environment_variable_and_round_trips_as_text() {
        let keys: Vec<_> = table().iter().map(|s| s.env_var()).collect();
        assert!(keys.contains(&"MM_MAX_CONCURRENT_DOWNLOADS".to_string()), "{keys:?}");
        let defaults = Settings::default();
        for s in table() {
            let text = defaults.get(s.key).unwrap();
            let patch = Settings::patch_from_text(s.key, &text).unwrap();
            let mut again = defaults.clone();
            again.apply(patch).unwrap_or_else(|e| panic!("{}: {e}", s.key));
            assert_eq!(again.get(s.key).unwrap(), text, "{}", s.key);
        }
    }

    #[test]
    fn the_environment_overrides_a_setting_for_one_process_and_a_bad_value_is_said() {
        let env = |name: &str| match name {
            "MM_MAX_CONCURRENT_DOWNLOADS" => Some("5".to_string()),
            "MM_MAX_LOADED" => Some("99".to_string()),
            _ => None,
        };
        let (settings, problems) = Settings::default().overridden_by(env);
        assert_eq!((settings.max_concurrent_downloads, settings.max_loaded), (5, 4));
        assert_eq!(problems, ["MM_MAX_LOADED is ignored: maxLoaded must be from 1 to 16, not 99"]);
    }

    #[test]
    fn the_api_may_change_no_program_folder_or_address() {
        let machine: Vec<_> = table().into_iter().filter(|s| !s.api).map(|s| s.key).collect();
        assert_eq!(
            machine,
            [
                "cacheDir",
                "libraryFolders",
                "endpoint",
                "proxy",
                "llamaServer",
                "llamaCppReleases",
                "localServer",
                "localServerPort",
                "serveRequireToken"
            ]
        );
        let patch = SettingsPatch { llama_server: Some("/x".into()), max_loaded: Some(3), ..Default::default() };
        assert_eq!(patch.machine_only(), ["llamaServer"]);
    }
}
