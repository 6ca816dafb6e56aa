//! Commands about the models on this machine.

use crate::AppState;
use mm_core::cache::CacheScan;
use mm_core::ErrorPayload;
use tauri::State;

/// Every repo in the Hugging Face cache, with revisions, files, sizes and status.
#[tauri::command]
pub async fn list_models(state: State<'_, AppState>) -> Result<CacheScan, ErrorPayload> {
    state.manager.scan_cache().await
}

#[cfg(test)]
mod tests {
    use crate::commands::test_support::TestApp;
    use crate::AppState;
    use mm_core::hub::HubConfig;
    use mm_core::settings::SettingsStore;
    use serde_json::json;
    use std::path::Path;

    fn app(cache_dir: &Path) -> TestApp {
        let offline =
            HubConfig { endpoint: "http://127.0.0.1:9".into(), token: None, offline: true, ..HubConfig::default() };
        TestApp::new(AppState::with(
            SettingsStore::new(cache_dir.with_extension("settings.json")),
            Some(cache_dir.to_path_buf()),
            Some(offline),
            None,
            cache_dir.with_extension("data"),
        ))
    }

    #[test]
    fn list_models_returns_the_scan_as_camel_case_json() {
        let tmp = tempfile::tempdir().unwrap();
        let repo = tmp.path().join("models--acme--tiny");
        let commit = "ab".repeat(20);
        std::fs::create_dir_all(repo.join("blobs")).unwrap();
        std::fs::write(repo.join("blobs/f00d"), b"{}").unwrap();
        mm_core::cache::write::link_snapshot(&repo, &commit, "config.json", "f00d").unwrap();
        mm_core::cache::write::write_ref(&repo, "main", &commit).unwrap();

        let scan = app(tmp.path()).invoke("list_models", json!({})).expect("the command succeeds");
        assert_eq!(scan["repos"][0]["repoId"], "acme/tiny");
        assert_eq!(scan["repos"][0]["status"], "complete");
        assert_eq!(scan["repos"][0]["revisions"][0]["commit"], commit);
        assert_eq!(scan["sizeOnDisk"], 2);
    }

    #[test]
    fn list_models_errors_carry_a_code_and_a_message() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("not-a-folder");
        std::fs::write(&file, b"x").unwrap();
        let err = app(&file).invoke("list_models", json!({})).expect_err("a file is not a cache");
        assert_eq!(err["code"], "invalid-input");
        assert!(err["message"].as_str().unwrap().contains("is a file, not a folder"));
    }
}
