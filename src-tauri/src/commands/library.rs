//! Commands about the library: the list, details, delete, verify and repair, types, storage, opening a folder.

use crate::{events, AppState};
use mm_core::library::delete::DeleteReport;
use mm_core::library::storage::{CleanReport, StorageReport};
use mm_core::library::verify::VerifyReport;
use mm_core::library::{LibraryModel, LibraryQuery, ModelDetails};
use mm_core::machine::Machine;
use mm_core::ErrorPayload;
use tauri::{AppHandle, Emitter, Runtime, State};

/// Every model, merged with the download queue, filtered and sorted by `query`.
#[tauri::command]
pub async fn list_library(
    state: State<'_, AppState>,
    query: Option<LibraryQuery>,
) -> Result<Vec<LibraryModel>, ErrorPayload> {
    state.machine().models(query.unwrap_or_default()).await
}

#[tauri::command]
pub async fn model_details(state: State<'_, AppState>, id: String) -> Result<ModelDetails, ErrorPayload> {
    state.machine().model(&id).await
}

/// Deletes a model or one revision; with `dryRun`, says what would be freed.
#[tauri::command]
pub async fn delete_model(
    state: State<'_, AppState>,
    id: String,
    revision: Option<String>,
    dry_run: Option<bool>,
) -> Result<DeleteReport, ErrorPayload> {
    state.machine().delete(&id, revision.as_deref(), dry_run.unwrap_or(false)).await
}

/// Re-hashes a model's files (with `verify-progress` events); with `repair`, downloads the bad ones again.
#[tauri::command]
pub async fn verify_model<R: Runtime>(
    app: AppHandle<R>,
    state: State<'_, AppState>,
    id: String,
    revision: Option<String>,
    repair: Option<bool>,
) -> Result<VerifyReport, ErrorPayload> {
    let manager = match state.machine() {
        Machine::Local(manager) => manager,
        // Another machine verifies there, without progress events.
        remote => return remote.verify(&id, revision.as_deref(), repair.unwrap_or(false)).await,
    };
    let on_progress = move |progress| {
        let _ = app.emit(events::VERIFY_PROGRESS, progress);
    };
    manager.verify_and_repair(&id, revision.as_deref(), repair.unwrap_or(false), on_progress).await
}

/// Remembers the type the user chose (`null` goes back to the inferred one).
#[tauri::command]
pub async fn set_model_type(
    state: State<'_, AppState>,
    id: String,
    model_type: Option<String>,
) -> Result<(), ErrorPayload> {
    state.machine().set_type(&id, model_type.as_deref()).await
}

#[tauri::command]
pub async fn storage_report(state: State<'_, AppState>) -> Result<StorageReport, ErrorPayload> {
    state.machine().storage().await
}

/// Deletes orphan blobs and partial downloads no one is resuming.
#[tauri::command]
pub async fn clean_storage(state: State<'_, AppState>) -> Result<CleanReport, ErrorPayload> {
    state.machine().clean().await
}

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

        let models = app.invoke("list_library", json!({})).unwrap();
        assert_eq!(models[0]["id"], "acme/m");
        assert_eq!(models[0]["modelType"], "text-generation");
        let none = app.invoke("list_library", json!({ "query": { "modelType": "embedding" } })).unwrap();
        assert_eq!(none, json!([]));

        app.invoke("set_model_type", json!({ "id": "acme/m", "modelType": "embedding" })).unwrap();
        assert_eq!(app.invoke("list_library", json!({})).unwrap()[0]["typeOrigin"], "user");
        let err = app.invoke("set_model_type", json!({ "id": "acme/m", "modelType": "robot" })).unwrap_err();
        assert_eq!(err["code"], "invalid-input");

        let details = app.invoke("model_details", json!({ "id": "acme/m" })).unwrap();
        assert_eq!(details["revisions"][0]["files"][0]["blob"], blob);
        let report = app.invoke("verify_model", json!({ "id": "acme/m" })).unwrap();
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

        let dry = app.invoke("delete_model", json!({ "id": "acme/m", "dryRun": true })).unwrap();
        assert_eq!(dry["bytesFreed"], 11);
        let usage = app.invoke("storage_report", json!({})).unwrap();
        assert_eq!(usage["cacheBytes"], 11);
        let err = app.invoke("open_folder", json!({ "path": "/etc" })).unwrap_err();
        assert_eq!(err["code"], "invalid-input");
        // A path that starts with the cache's but climbs out of it is not in the cache.
        let escape = format!("{}/models--acme--m/../../../../../../etc", cache.path().display());
        let err = app.invoke("open_folder", json!({ "path": escape })).unwrap_err();
        assert_eq!(err["code"], "invalid-input", "{err}");
        // Activation through the commands: the manifest is written, and an active model is guarded.
        let entry = app.invoke("activate_model", json!({ "id": "acme/m", "modelType": "text-generation" })).unwrap();
        assert_eq!(entry["modelType"], "text-generation");
        let manifest: serde_json::Value =
            serde_json::from_slice(&std::fs::read(data.path().join("app/active.json")).unwrap()).unwrap();
        assert_eq!(manifest["text-generation"]["id"], "acme/m");
        assert_eq!(app.invoke("list_library", json!({})).unwrap()[0]["status"], "active");
        let err = app.invoke("delete_model", json!({ "id": "acme/m" })).unwrap_err();
        assert_eq!(err["code"], "conflict");
        assert_eq!(app.invoke("active_models", json!({})).unwrap()["text-generation"]["id"], "acme/m");
        app.invoke("deactivate_type", json!({ "modelType": "text-generation" })).unwrap();
        let err = app.invoke("deactivate_type", json!({ "modelType": "text-generation" })).unwrap_err();
        assert_eq!(err["code"], "not-found");

        app.invoke("delete_model", json!({ "id": "acme/m" })).unwrap();
        assert_eq!(app.invoke("list_library", json!({})).unwrap(), json!([]));
    }
}
