//! Where the hub is and who we are there, read the way `huggingface_hub` reads it.

use std::path::PathBuf;
use std::time::Duration;

/// The hub endpoint, the token, and whether the network may be used at all.
#[derive(Clone)]
pub struct HubConfig {
    /// `HF_ENDPOINT`, default `https://huggingface.co`, without a trailing slash.
    pub endpoint: String,
    pub token: Option<String>,
    /// `HF_HUB_OFFLINE=1`: never touch the network.
    pub offline: bool,
    /// How long a connection may stay silent (no answer, no byte) before the request fails and is retried:
    /// `HF_HUB_DOWNLOAD_TIMEOUT` in seconds, as `huggingface_hub` reads it; 30 s by default.
    pub timeout: Duration,
    /// The proxies requests go through (the `proxy` setting, else `HTTPS_PROXY` and the rest).
    pub proxies: crate::proxy::Proxies,
}

impl Default for HubConfig {
    fn default() -> Self {
        HubConfig {
            endpoint: DEFAULT_ENDPOINT.into(),
            token: None,
            offline: false,
            timeout: DEFAULT_TIMEOUT,
            proxies: crate::proxy::Proxies::from_env(),
        }
    }
}

impl std::fmt::Debug for HubConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The token is never printed.
        f.debug_struct("HubConfig")
            .field("endpoint", &self.endpoint)
            .field("token", &self.token.as_ref().map(|_| "<set>"))
            .field("offline", &self.offline)
            .field("timeout", &self.timeout)
            .field("proxies", &self.proxies)
            .finish()
    }
}

pub const DEFAULT_ENDPOINT: &str = "https://huggingface.co";
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

impl HubConfig {
    /// From the process environment: `HF_ENDPOINT`; the proxies (`HTTPS_PROXY` and the rest); `HF_TOKEN` (or the legacy `HUGGING_FACE_HUB_TOKEN`), else the
    /// file `$HF_HOME/token`; `HF_HUB_OFFLINE`; `HF_HUB_DOWNLOAD_TIMEOUT`.
    pub fn from_env() -> HubConfig {
        HubConfig::from_vars(|key| std::env::var(key).ok(), std::env::var_os("HOME").map(PathBuf::from))
    }

    /// The environment's config, with the endpoint, token and proxy of the app's settings first where they are set.
    pub fn from_settings(settings: &crate::settings::Settings) -> HubConfig {
        let mut config = HubConfig::from_env();
        if let Some(endpoint) = &settings.endpoint {
            config.endpoint = endpoint.trim_end_matches('/').to_string();
        }
        if let Some(token) = &settings.token {
            config.token = Some(token.clone());
        }
        if let Some(proxy) = &settings.proxy {
            config.proxies = crate::proxy::Proxies::from_setting(proxy, settings.proxy_credentials.as_deref());
        }
        config
    }

    /// [`HubConfig::from_env`] with the environment given.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>, home: Option<PathBuf>) -> HubConfig {
        let set = |key: &str| var(key).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
        let endpoint = set("HF_ENDPOINT").unwrap_or_else(|| DEFAULT_ENDPOINT.into()).trim_end_matches('/').to_string();
        let token = set("HF_TOKEN").or_else(|| set("HUGGING_FACE_HUB_TOKEN")).or_else(|| {
            let hf_home = set("HF_HOME").map(PathBuf::from).or_else(|| {
                let cache = set("XDG_CACHE_HOME").map(PathBuf::from).or_else(|| home.map(|h| h.join(".cache")))?;
                Some(cache.join("huggingface"))
            })?;
            let text = std::fs::read_to_string(hf_home.join("token")).ok()?;
            Some(text.trim().to_string()).filter(|t| !t.is_empty())
        });
        let offline = set("HF_HUB_OFFLINE")
            .is_some_and(|v| matches!(v.to_ascii_lowercase().as_str(), "1" | "true" | "yes" | "on"));
        let timeout = set("HF_HUB_DOWNLOAD_TIMEOUT")
            .and_then(|v| v.parse::<f64>().ok())
            .filter(|s| s.is_finite() && *s > 0.0)
            .map_or(DEFAULT_TIMEOUT, |s| Duration::from_secs_f64(s.min(86_400.0)));
        HubConfig { endpoint, token, offline, timeout, proxies: crate::proxy::Proxies::from_vars(&var) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)], home: Option<PathBuf>) -> HubConfig {
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        HubConfig::from_vars(|k| map.get(k).cloned(), home)
    }

    #[test]
    fn endpoint_token_and_offline_come_from_the_environment() {
        let c = config(&[], None);
        assert_eq!(c.endpoint, "https://huggingface.co");
        assert!(c.token.is_none() && !c.offline);
        let c =
            config(&[("HF_ENDPOINT", "http://127.0.0.1:9/"), ("HF_TOKEN", " hf_abc\n"), ("HF_HUB_OFFLINE", "1")], None);
        assert_eq!(c.endpoint, "http://127.0.0.1:9");
        assert_eq!(c.token.as_deref(), Some("hf_abc"));
        assert!(c.offline);
        assert_eq!(config(&[("HUGGING_FACE_HUB_TOKEN", "legacy")], None).token.as_deref(), Some("legacy"));
        assert!(!config(&[("HF_HUB_OFFLINE", "0")], None).offline);
        assert_eq!(c.timeout, DEFAULT_TIMEOUT);
        assert_eq!(config(&[("HF_HUB_DOWNLOAD_TIMEOUT", "2.5")], None).timeout, Duration::from_millis(2500));
        for bad in ["0", "-1", "soon", "NaN"] {
            assert_eq!(config(&[("HF_HUB_DOWNLOAD_TIMEOUT", bad)], None).timeout, DEFAULT_TIMEOUT, "{bad}");
        }
    }

    #[test]
    fn the_token_file_under_hf_home_is_read_when_no_variable_is_set() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(tmp.path().join(".cache/huggingface")).unwrap();
        std::fs::write(tmp.path().join(".cache/huggingface/token"), "hf_from_file\n").unwrap();
        assert_eq!(config(&[], Some(tmp.path().into())).token.as_deref(), Some("hf_from_file"));
        let hf_home = tmp.path().join("hf");
        std::fs::create_dir_all(&hf_home).unwrap();
        std::fs::write(hf_home.join("token"), "hf_home_token").unwrap();
        let c = config(&[("HF_HOME", hf_home.to_str().unwrap())], None);
        assert_eq!(c.token.as_deref(), Some("hf_home_token"));
        let c = config(&[("HF_HOME", hf_home.to_str().unwrap()), ("HF_TOKEN", "env")], None);
        assert_eq!(c.token.as_deref(), Some("env"), "the variable wins over the file");
        assert!(!format!("{c:?}").contains("env"), "Debug never shows the token");
    }
}
