//! Commands about the library: the list, details, delete, verify and repair, types, storage, opening a folder.

use crate::{events, AppState};
use mm_core::error::Coded;
use mm_core::library::delete::DeleteReport;
use mm_core::library::storage::{CleanReport, StorageReport};
use mm_core::library::verify::VerifyReport;
use mm_core::library::{delete, list, storage, verify, LibraryError, LibraryModel, LibraryQuery, ModelDetails};
use mm_core::{ErrorCode, ErrorPayload};
use tauri::{AppHandle, Emitter, Runtime, State};

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, LibraryError> + Send + 'static,
) -> Result<T, ErrorPayload> {
    tauri::async_runtime::spawn_blocking(f)
        .await
        .map_err(|e| ErrorPayload { code: ErrorCode::Internal, message: e.to_string() })?
        .map_err(|e| e.payload())
}

/// Every model, merged with the download queue, filtered and sorted by `query`.
#[tauri::command]
pub async fn list_library(
    state: State<'_, AppState>,
    query: Option<LibraryQuery>,
) -> Result<Vec<LibraryModel>, ErrorPayload> {
    let (cache_dir, settings, queue) = (state.cache_dir.clone(), state.settings(), state.downloads.list());
    let data_dir = state.activation.data_dir.clone();
    let mut models = list::list_async(cache_dir, data_dir, settings, queue).await.map_err(|e| e.payload())?;
    models.extend(state.ollama.models(&state.settings()).await);
    Ok(query.unwrap_or_default().apply(models))
}

#[tauri::command]
pub async fn model_details(state: State<'_, AppState>, id: String) -> Result<ModelDetails, ErrorPayload> {
    if id.starts_with(mm_core::ollama::OLLAMA_PREFIX) {
        let models = state.ollama.models(&state.settings()).await;
        let model = models.into_iter().find(|m| m.id == id).ok_or_else(|| ErrorPayload {
            code: ErrorCode::NotFound,
            message: format!("{id} is not on the Ollama server at {}", state.ollama.host()),
        })?;
        return Ok(ModelDetails { model, revisions: Vec::new(), card: None });
    }
    let (cache_dir, settings, data_dir) =
        (state.cache_dir.clone(), state.settings(), state.activation.data_dir.clone());
    blocking(move || list::details_any(&cache_dir, &data_dir, &settings, &id)).await
}

/// Deletes a model or one revision; with `dryRun`, says what would be freed.
#[tauri::command]
pub async fn delete_model<R: Runtime>(
    app: AppHandle<R>,
    state: State<'_, AppState>,
    id: String,
    revision: Option<String>,
    dry_run: Option<bool>,
) -> Result<DeleteReport, ErrorPayload> {
    let (cache_dir, settings, queue) = (state.cache_dir.clone(), state.settings(), state.downloads.list());
    let dry_run = dry_run.unwrap_or(false);
    let data_dir = state.activation.data_dir.clone();
    let report = if let Some(name) = id.strip_prefix(mm_core::ollama::OLLAMA_PREFIX) {
        let size = state.ollama.models(&settings).await.into_iter().find(|m| m.id == id).map(|m| m.size).unwrap_or(0);
        if !dry_run {
            state.ollama.delete(name).await.map_err(|e| e.payload())?;
        }
        local_report(&id, size, dry_run)
    } else if mm_core::local::list::find(&settings, &data_dir, &id).is_some() {
        let local = mm_core::local::list::find(&settings, &data_dir, &id).expect("just found");
        let size = if local.owned { local.model.size } else { 0 };
        if !dry_run {
            let (store, data_dir, id) = (state.store.clone(), data_dir.clone(), id.clone());
            tauri::async_runtime::spawn_blocking(move || mm_core::local::list::delete(&store, &data_dir, &id))
                .await
                .map_err(|e| ErrorPayload { code: ErrorCode::Internal, message: e.to_string() })?
                .map_err(|e| e.payload())?;
        }
        local_report(&id, size, dry_run)
    } else {
        blocking(move || delete::delete(&cache_dir, &settings, &queue, &id, revision.as_deref(), dry_run)).await?
    };
    if !report.dry_run {
        let _ = app.emit(events::MODEL_LIFECYCLE, events::deleted(&report));
        crate::tray::refresh(&app);
    }
    Ok(report)
}

/// What deleting a model outside the Hugging Face cache frees: its bytes when the app owns them, else nothing
/// (a reference is only forgotten).
fn local_report(id: &str, size: u64, dry_run: bool) -> DeleteReport {
    DeleteReport {
        id: id.to_string(),
        revision: None,
        commit: None,
        bytes_before: size,
        bytes_after: 0,
        bytes_freed: size,
        blobs_removed: 0,
        whole_model: true,
        dry_run,
    }
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
    let (cache_dir, settings) = (state.cache_dir.clone(), state.settings());
    let emitter = app.clone();
    let report = blocking(move || {
        verify::verify(&cache_dir, &settings, &id, revision.as_deref(), |progress| {
            let _ = emitter.emit(events::VERIFY_PROGRESS, progress);
        })
    })
    .await?;
    if repair.unwrap_or(false) && !report.ok {
        verify::repair(&state.cache_dir, &state.downloads, &report).await.map_err(|e| e.payload())?;
        let (cache_dir, settings, id) = (state.cache_dir.clone(), state.settings(), report.id.clone());
        let commit = report.commit.clone();
        return blocking(move || verify::verify(&cache_dir, &settings, &id, Some(&commit), |_| {})).await;
    }
    Ok(report)
}

/// Remembers the type the user chose (`null` goes back to the inferred one).
#[tauri::command]
pub async fn set_model_type(
    state: State<'_, AppState>,
    id: String,
    model_type: Option<String>,
) -> Result<(), ErrorPayload> {
    list::set_type(&state.store, &id, model_type.as_deref()).map_err(|e| e.payload())?;
    let (settings, _) = state.store.load().map_err(|e| e.payload())?;
    state.settings_changed(settings);
    Ok(())
}

#[tauri::command]
pub async fn storage_report(state: State<'_, AppState>) -> Result<StorageReport, ErrorPayload> {
    let cache_dir = state.cache_dir.clone();
    blocking(move || storage::report(&cache_dir)).await
}

/// Deletes orphan blobs and partial downloads no one is resuming.
#[tauri::command]
pub async fn clean_storage(state: State<'_, AppState>) -> Result<CleanReport, ErrorPayload> {
    let cache_dir = state.cache_dir.clone();
    blocking(move || storage::clean(&cache_dir)).await
}

/// Opens a model's folder in the file manager. Only folders inside the library's caches are opened.
#[tauri::command]
pub async fn open_folder(state: State<'_, AppState>, path: String) -> Result<(), ErrorPayload> {
    let settings = state.settings();
    // Compared as real paths: `..` and links are resolved first, so `{cache}/../etc` is not in the cache.
    let real = |p: &std::path::Path| std::fs::canonicalize(p).ok();
    let asked = real(std::path::Path::new(&path));
    // A local model may be one file: its folder opens.
    let local = mm_core::local::list::local_models(&settings, &state.activation.data_dir);
    let is_model =
        |asked: &std::path::Path| local.iter().any(|m| real(std::path::Path::new(&m.path)).as_deref() == Some(asked));
    let inside_source = |asked: &std::path::Path| {
        list::sources(&state.cache_dir, &settings)
            .iter()
            .any(|(dir, _)| real(dir).is_some_and(|d| asked.starts_with(d)))
    };
    let folder = asked.as_deref().filter(|a| is_model(a) || inside_source(a)).map(|a| {
        if a.is_file() {
            a.parent().unwrap_or(a).to_path_buf()
        } else {
            a.to_path_buf()
        }
    });
    let Some(folder) = folder.filter(|f| f.is_dir()) else {
        return Err(ErrorPayload {
            code: ErrorCode::InvalidInput,
            message: format!("{path} is not a model folder of this library"),
        });
    };
    super::open_in_file_manager(&folder)
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
        assert_eq!(err["code"], "invalid-input");
        assert_eq!(app.invoke("active_models", json!({})).unwrap()["text-generation"]["id"], "acme/m");
        app.invoke("deactivate_type", json!({ "modelType": "text-generation" })).unwrap();
        let err = app.invoke("deactivate_type", json!({ "modelType": "text-generation" })).unwrap_err();
        assert_eq!(err["code"], "not-found");

        app.invoke("delete_model", json!({ "id": "acme/m" })).unwrap();
        assert_eq!(app.invoke("list_library", json!({})).unwrap(), json!([]));
    }
}
