//! Opening a model's folder in the file manager; and the library's operations as the window runs them (the
//! commands themselves are `operations.rs`).

use crate::AppState;
use mm_core::ErrorPayload;
use tauri::State;

/// Opens a model's folder in the file manager. Only folders inside the library's caches are opened.
#[tauri::command]
pub async fn open_folder(state: State<'_, AppState>, path: String) -> Result<(), ErrorPayload> {
    if !state.is_local() {
        return Err(ErrorPayload::new(
            mm_core::ErrorCode::InvalidInput,
            format!("{path} is on {}: open it there", state.machine().name()),
        ));
    }
    super::open_in_file_manager(&state.manager.model_folder(&path)?)
}

#[cfg(test)]
mod tests {
    use crate::commands::test_support::TestApp;
    use crate::AppState;
    use mm_core::cache::write::{link_snapshot, write_ref};
    use mm_core::hub::HubConfig;
    use mm_core::settings::SettingsStore;
    use serde_json::json;

    #[test]
    fn library_settings_and_storage_through_the_commands() {
        let cache = tempfile::tempdir().unwrap();
        let data = tempfile::tempdir().unwrap();
        let repo = cache.path().join("models--acme--m");
        std::fs::create_dir_all(repo.join("blobs")).unwrap();
        let commit = "c".repeat(40);
        // A blob named by the sha256 of its content, so that verify passes.
        let blob = "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9"; // sha256("hello world")
        std::fs::write(repo.join("blobs").join(blob), b"hello world").unwrap();
        link_snapshot(&repo, &commit, "model.gguf", blob).unwrap();
        write_ref(&repo, "main", &commit).unwrap();
        let store = SettingsStore::new(data.path().join("settings.json"));
        let offline =
            HubConfig { endpoint: "http://127.0.0.1:9".into(), token: None, offline: true, ..HubConfig::default() };
        let app = TestApp::new(AppState::with(
            store,
            Some(cache.path().into()),
            Some(offline),
            None,
            data.path().join("app"),
        ));

        let models = app.operation("models", json!({ "query": {} })).unwrap();
        assert_eq!(models[0]["id"], "acme/m");
        assert_eq!(models[0]["modelType"], "text-generation");
        let none = app.operation("models", json!({ "query": { "modelType": "embedding" } })).unwrap();
        assert_eq!(none, json!([]));

        app.operation("set_type", json!({ "id": "acme/m", "change": { "modelType": "embedding" } })).unwrap();
        assert_eq!(app.operation("models", json!({ "query": {} })).unwrap()[0]["typeOrigin"], "user");
        let err = app.operation("set_type", json!({ "id": "acme/m", "change": { "modelType": "robot" } })).unwrap_err();
        assert_eq!(err["code"], "invalid-input");

        let details = app.operation("model", json!({ "id": "acme/m" })).unwrap();
        assert_eq!(details["revisions"][0]["files"][0]["blob"], blob);
        let report = app.operation("verify", json!({ "id": "acme/m", "options": {} })).unwrap();
        assert_eq!(report["ok"], true);

        let view = app
            .invoke(
                "update_settings",
                json!({ "patch": { "maxConcurrentDownloads": 2, "token": "hf_0123456789abcd" } }),
            )
            .unwrap();
        assert_eq!(view["maxConcurrentDownloads"], 2);
        assert_eq!(view["tokenHint"], "hf_…abcd");
        assert!(view.get("token").is_none(), "the token itself never crosses to the UI");
        let err = app.invoke("update_settings", json!({ "patch": { "endpoint": "not a url" } })).unwrap_err();
        assert_eq!(err["code"], "invalid-input");
        assert_eq!(app.invoke("get_settings", json!({})).unwrap()["maxConcurrentDownloads"], 2);

        let dry = app.operation("delete", json!({ "id": "acme/m", "options": { "dryRun": true } })).unwrap();
        assert_eq!(dry["bytesFreed"], 11);
        let usage = app.operation("storage", json!({})).unwrap();
        assert_eq!(usage["cacheBytes"], 11);
        let err = app.invoke("open_folder", json!({ "path": "/etc" })).unwrap_err();
        assert_eq!(err["code"], "invalid-input");
        // A path that starts with the cache's but climbs out of it is not in the cache.
        let escape = format!("{}/models--acme--m/../../../../../../etc", cache.path().display());
        let err = app.invoke("open_folder", json!({ "path": escape })).unwrap_err();
        assert_eq!(err["code"], "invalid-input", "{err}");
        // Activation through the commands: the manifest is written, and an active model is guarded.
        let entry =
            app.operation("activate", json!({ "ask": { "id": "acme/m", "modelType": "text-generation" } })).unwrap();
        assert_eq!(entry["modelType"], "text-generation");
        let manifest: serde_json::Value =
            serde_json::from_slice(&std::fs::read(data.path().join("app/active.json")).unwrap()).unwrap();
        assert_eq!(manifest["text-generation"]["id"], "acme/m");
        assert_eq!(app.operation("models", json!({ "query": {} })).unwrap()[0]["status"], "active");
        let err = app.operation("delete", json!({ "id": "acme/m", "options": {} })).unwrap_err();
        assert_eq!(err["code"], "conflict");
        assert_eq!(app.operation("active", json!({})).unwrap()["text-generation"]["id"], "acme/m");
        app.operation("deactivate", json!({ "modelType": "text-generation" })).unwrap();
        let err = app.operation("deactivate", json!({ "modelType": "text-generation" })).unwrap_err();
        assert_eq!(err["code"], "not-found");

        app.operation("delete", json!({ "id": "acme/m", "options": {} })).unwrap();
        assert_eq!(app.operation("models", json!({ "query": {} })).unwrap(), json!([]));
    }
}
