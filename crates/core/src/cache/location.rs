//! Where the hub cache is, found the way `huggingface_hub` finds it.

use std::path::PathBuf;

/// The hub cache folder from the process environment: `HF_HUB_CACHE`, else the legacy `HUGGINGFACE_HUB_CACHE`,
/// else `$HF_HOME/hub`, else `$XDG_CACHE_HOME/huggingface/hub`, else `~/.cache/huggingface/hub`.
pub fn hub_cache_dir() -> PathBuf {
    hub_cache_dir_with(|key| std::env::var(key).ok(), std::env::var_os("HOME").map(PathBuf::from))
}

/// [`hub_cache_dir`] with the environment and home folder given, so that tests need not touch the process's.
pub fn hub_cache_dir_with(var: impl Fn(&str) -> Option<String>, home: Option<PathBuf>) -> PathBuf {
    let set = |key: &str| var(key).filter(|value| !value.is_empty());
    let expand = |value: String| expand_home(&value, home.as_ref());
    if let Some(dir) = set("HF_HUB_CACHE").or_else(|| set("HUGGINGFACE_HUB_CACHE")) {
        return expand(dir);
    }
    let hf_home = match set("HF_HOME") {
        Some(dir) => expand(dir),
        None => {
            let cache_home = set("XDG_CACHE_HOME").map(&expand).unwrap_or_else(|| expand("~/.cache".into()));
            cache_home.join("huggingface")
        }
    };
    hf_home.join("hub")
}

/// `~` and `~/…` expanded against `home`, as Python's `os.path.expanduser` does; other paths unchanged.
fn expand_home(value: &str, home: Option<&PathBuf>) -> PathBuf {
    match (value.strip_prefix('~'), home) {
        (Some(""), Some(home)) => home.clone(),
        (Some(rest), Some(home)) if rest.starts_with('/') => home.join(rest.trim_start_matches('/')),
        _ => PathBuf::from(value),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn resolve(vars: &[(&str, &str)]) -> PathBuf {
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        hub_cache_dir_with(|key| map.get(key).cloned(), Some(PathBuf::from("/home/ada")))
    }

    #[test]
    fn follows_huggingface_hub_precedence() {
        assert_eq!(resolve(&[]), PathBuf::from("/home/ada/.cache/huggingface/hub"));
        assert_eq!(resolve(&[("XDG_CACHE_HOME", "/xdg")]), PathBuf::from("/xdg/huggingface/hub"));
        assert_eq!(resolve(&[("HF_HOME", "/hf"), ("XDG_CACHE_HOME", "/xdg")]), PathBuf::from("/hf/hub"));
        assert_eq!(resolve(&[("HUGGINGFACE_HUB_CACHE", "/legacy"), ("HF_HOME", "/hf")]), PathBuf::from("/legacy"));
        assert_eq!(
            resolve(&[("HF_HUB_CACHE", "/c"), ("HUGGINGFACE_HUB_CACHE", "/legacy"), ("HF_HOME", "/hf")]),
            PathBuf::from("/c")
        );
    }

    #[test]
    fn expands_tilde_and_ignores_empty_values() {
        assert_eq!(resolve(&[("HF_HOME", "~/hf")]), PathBuf::from("/home/ada/hf/hub"));
        assert_eq!(resolve(&[("HF_HUB_CACHE", "~")]), PathBuf::from("/home/ada"));
        assert_eq!(resolve(&[("HF_HUB_CACHE", "")]), PathBuf::from("/home/ada/.cache/huggingface/hub"));
        assert_eq!(resolve(&[("HF_HUB_CACHE", "~other/x")]), PathBuf::from("~other/x"));
    }
}
