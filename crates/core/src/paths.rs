//! The app's own folders, known without Tauri so that the CLI and the app agree on them.

use std::path::PathBuf;

/// The app identifier, as in `tauri.conf.json` (a test in the shell keeps the two equal).
pub const APP_ID: &str = "dev.model-manager.app";

/// Where the app keeps its data: `$XDG_DATA_HOME/{APP_ID}`, else `~/.local/share/{APP_ID}` (the folder Tauri's
/// `app_data_dir` gives on Linux).
pub fn app_data_dir() -> PathBuf {
    app_data_dir_with(std::env::var_os("XDG_DATA_HOME").map(PathBuf::from), std::env::var_os("HOME").map(PathBuf::from))
}

pub fn app_data_dir_with(xdg_data_home: Option<PathBuf>, home: Option<PathBuf>) -> PathBuf {
    let base = xdg_data_home
        .filter(|p| p.is_absolute())
        .or_else(|| home.map(|h| h.join(".local/share")))
        .unwrap_or_else(|| PathBuf::from(".local/share"));
    base.join(APP_ID)
}

/// The file that keeps unfinished downloads across restarts.
pub fn download_journal() -> PathBuf {
    app_data_dir().join("downloads.json")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_xdg_then_home() {
        let home = Some(PathBuf::from("/home/ada"));
        assert_eq!(app_data_dir_with(None, home.clone()), PathBuf::from("/home/ada/.local/share").join(APP_ID));
        assert_eq!(app_data_dir_with(Some("/xdg".into()), home.clone()), PathBuf::from("/xdg").join(APP_ID));
        assert_eq!(
            app_data_dir_with(Some("relative".into()), home),
            PathBuf::from("/home/ada/.local/share").join(APP_ID)
        );
    }
}
