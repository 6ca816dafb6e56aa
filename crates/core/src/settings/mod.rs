//! The user's intent, kept in one JSON file in the app's data folder (`settings.json`, a flat object): the
//! settings, each declared once in [`schema`] with its default, bounds and help, the model types the user
//! assigned, and the active model per type. The app and `mm` both read and write it through [`SettingsStore`], which changes it
//! under an `flock` with a read-modify-write and an atomic rename, so concurrent writers lose nothing. A file that
//! does not parse is set aside as `settings.json.corrupt-{time}` and replaced by defaults, with a warning.

use crate::error::{Coded, ErrorCode};
use crate::model::{ModelType, TypeOrigin};
use serde::{Deserialize, Serialize};
use std::fs;
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use ts_rs::TS;

pub mod load;
pub mod schema;
pub use load::{load_table, LoadSettingInfo, LoadSettings};
pub use schema::{
    readme_table, table, Kind, SettingInfo, Settings, SettingsPatch, SettingsView, DEFAULT_CONNECTIONS_PER_FILE,
};

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

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("{key} {problem}")]
    Invalid { key: &'static str, problem: String },
    #[error("unknown setting \"{0}\": known are {known}, token", known = schema::table().iter().map(|s| s.key).collect::<Vec<_>>().join(", "))]
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

impl Settings {
    /// What the settings say about a model: the user's type over the inferred one, whether it is active, and
    /// when it was last activated.
    pub fn user_view(&self, id: &str, inferred: (ModelType, TypeOrigin)) -> (ModelType, TypeOrigin, bool, Option<u64>) {
        let (model_type, type_origin) = match self.model_types.get(id).and_then(|t| t.parse::<ModelType>().ok()) {
            Some(chosen) => (chosen, TypeOrigin::User),
            None => inferred,
        };
        let active = self.active.values().any(|a| a.id == id);
        let last_used = self.active.values().filter(|a| a.id == id).filter_map(|a| a.activated_at).max();
        (model_type, type_origin, active, last_used)
    }

    /// A model's load settings (none set: the defaults).
    pub fn load_of(&self, id: &str) -> LoadSettings {
        self.load_settings.get(id).cloned().unwrap_or_default()
    }
}

/// `settings` with this process's `MM_*` overrides (never written to the file); one that does not apply is logged.
fn in_effect(settings: Settings) -> Settings {
    let file = settings.clone();
    let (mut settings, problems) = settings.overridden_by(|name| std::env::var(name).ok());
    // `MM_PROXY=http://USER:PASSWORD@HOST:PORT`: its credentials held apart as the file's are (never shown), and the
    // file's own never sent to another proxy.
    keep_proxy_credentials_apart(&mut settings, &file);
    for problem in problems {
        tracing::warn!("{problem}");
    }
    settings
}

/// A proxy given with a user and password keeps the address in the settings and the credentials apart; a proxy
/// changed to another address without them drops the old ones, and so does clearing it. The same address given
/// again (as the window's form sends it back) keeps them.
fn keep_proxy_credentials_apart(settings: &mut Settings, before: &Settings) {
    match settings.proxy.as_deref().map(crate::proxy::split_credentials) {
        None => settings.proxy_credentials = None,
        Some((address, Some(credentials))) => {
            settings.proxy = Some(address);
            settings.proxy_credentials = Some(credentials);
        }
        Some((address, None)) if !same_proxy(Some(&address), before.proxy.as_deref()) => {
            settings.proxy_credentials = None
        }
        Some(_) => {}
    }
}

/// Whether two proxy addresses name the same proxy (as URLs, so a trailing `/` or a host's capitals do not count).
fn same_proxy(a: Option<&str>, b: Option<&str>) -> bool {
    a.map(crate::proxy::shown) == b.map(crate::proxy::shown)
}

/// The proxy credentials kept for `proxy`: the secret store holds the address they were given for on its first
/// line, so credentials never go to another proxy than theirs (after a hand edit of the settings file, say).
fn credentials_for(kept: Option<String>, proxy: Option<&str>) -> Option<String> {
    let (address, credentials) = kept?.split_once('\n').map(|(a, c)| (a.to_string(), c.to_string()))?;
    same_proxy(Some(&address), proxy).then_some(credentials).filter(|c| !c.is_empty())
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

    /// The settings in effect (the file's, with this process's `MM_*` overrides), and a warning when the file was
    /// unreadable and has been set aside for defaults.
    pub fn load(&self) -> Result<(Settings, Option<String>), SettingsError> {
        let _lock = self.lock()?;
        let (settings, warning) = self.read_locked()?;
        Ok((in_effect(settings), warning))
    }

    /// Where this settings file's token is kept.
    pub fn tokens(&self) -> crate::secret::TokenStore {
        crate::secret::TokenStore::beside(&self.path)
    }

    /// Where the proxy's user and password are kept.
    pub fn proxy_credentials(&self) -> crate::secret::TokenStore {
        crate::secret::TokenStore::for_proxy(&self.path)
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
                if settings.proxy.is_some() {
                    let kept = self.proxy_credentials().get().map_err(|source| SettingsError::Io {
                        what: "read the proxy's credentials of",
                        path: self.path.clone(),
                        source,
                    })?;
                    settings.proxy_credentials = credentials_for(kept, settings.proxy.as_deref());
                }
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
        keep_proxy_credentials_apart(&mut settings, &before);
        if settings.proxy_credentials != before.proxy_credentials || settings.proxy != before.proxy {
            let kept =
                settings.proxy_credentials.as_ref().zip(settings.proxy.as_ref()).map(|(c, p)| format!("{p}\n{c}"));
            self.proxy_credentials().set(kept.as_deref()).map_err(|source| SettingsError::Io {
                what: "keep the proxy's credentials of",
                path: self.path.clone(),
                source,
            })?;
        }
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
        Ok((in_effect(settings), out, derived))
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
