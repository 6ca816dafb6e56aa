//! Commands and events of the other sources: files dropped on the window (and the same import as a command), and
//! the local Ollama server (status, pulls with progress in the downloads list, cancel).

use crate::AppState;
use mm_core::local::ImportOutcome;
use mm_core::{ErrorCode, ErrorPayload};
use std::path::PathBuf;
use tauri::{AppHandle, Emitter, Manager, Runtime, State};

/// Hashing or copying progress of a dropped or imported batch. Payload: `ImportProgress`.
pub const IMPORT_PROGRESS: &str = "import-progress";
/// A batch finished: one outcome per path. Payload: `ImportOutcome[]`.
pub const IMPORT_FINISHED: &str = "import-finished";
/// Files are being dragged over the window (`true`) or left it (`false`). Payload: boolean.
pub const DROP_HOVER: &str = "drop-hover";

/// Imports `paths` with progress and outcome events (the core publishes a lifecycle event per model): the one
/// path both a drop on the window and the `import_paths` command take.
pub async fn import<R: Runtime>(app: &AppHandle<R>, paths: Vec<PathBuf>) -> Vec<ImportOutcome> {
    let emitter = app.clone();
    let on_progress = move |p: &mm_core::local::ImportProgress| {
        let _ = emitter.emit(IMPORT_PROGRESS, p);
    };
    let outcomes = app.state::<AppState>().manager.import(paths, None, on_progress).await;
    let _ = app.emit(IMPORT_FINISHED, &outcomes);
    outcomes
}

/// Imports files or folders by path (what a drop does, for a path typed or pasted).
#[tauri::command]
pub async fn import_paths<R: Runtime>(
    app: AppHandle<R>,
    paths: Vec<String>,
) -> Result<Vec<ImportOutcome>, ErrorPayload> {
    if paths.is_empty() {
        return Err(ErrorPayload::new(ErrorCode::InvalidInput, "no path to import"));
    }
    Ok(import(&app, paths.into_iter().map(PathBuf::from).collect()).await)
}

/// Stops the imports running now: the file being read or copied (its partial copy removed) and the rest of each
/// batch, which report `cancelled`.
#[tauri::command]
pub fn cancel_imports(state: State<'_, AppState>) {
    state.manager.cancel_imports();
}

/// A window's drag-and-drop: the drop target shows while files hover, and a drop imports them.
pub fn on_drag_drop<R: Runtime>(app: &AppHandle<R>, event: &tauri::DragDropEvent) {
    match event {
        // `Over` comes with every pointer move; the window needs to hear only that files arrived.
        tauri::DragDropEvent::Enter { .. } => {
            let _ = app.emit(DROP_HOVER, true);
        }
        tauri::DragDropEvent::Leave => {
            let _ = app.emit(DROP_HOVER, false);
        }
        tauri::DragDropEvent::Drop { paths, .. } => {
            let _ = app.emit(DROP_HOVER, false);
            let (app, paths) = (app.clone(), paths.clone());
            tauri::async_runtime::spawn(async move {
                import(&app, paths).await;
            });
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use crate::commands::test_support::TestApp;
    use crate::AppState;
    use fake_hub::ollama::FakeOllama;
    use mm_core::hub::HubConfig;
    use mm_core::settings::SettingsStore;
    use serde_json::json;
    use tauri::{Listener, Manager};

    #[tokio::test(flavor = "multi_thread")]
    async fn a_drop_imports_each_file_and_reports_each_problem_and_ollama_pulls_show_as_downloads() {
        let (files, data) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let model = files.path().join("tiny.gguf");
        std::fs::write(&model, fake_hub::gguf_model("llama", 2, 4096, 1)).unwrap();
        let text = files.path().join("notes.txt");
        std::fs::write(&text, "not a model").unwrap();
        let ollama = FakeOllama::start().await;
        let offline =
            HubConfig { endpoint: "http://127.0.0.1:9".into(), token: None, offline: true, ..HubConfig::default() };
        let state = AppState::open(mm_core::ManagerConfig {
            cache_dir: Some(data.path().join("hub")),
            hub: Some(offline),
            ollama: Some(mm_core::ollama::Ollama::new(&ollama.host())),
            ..mm_core::ManagerConfig::new(
                SettingsStore::new(data.path().join("settings.json")),
                data.path().join("app"),
            )
        });
        let app = TestApp::new(state);
        let finished = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = finished.clone();
        app.handle().listen(super::IMPORT_FINISHED, move |e| sink.lock().unwrap().push(e.payload().to_string()));

        // Hovering shows the drop target once, not on every move; leaving hides it.
        let hover = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let hover_sink = hover.clone();
        app.handle().listen(super::DROP_HOVER, move |e| hover_sink.lock().unwrap().push(e.payload().to_string()));
        let at = tauri::PhysicalPosition::new(5.0, 5.0);
        super::on_drag_drop(app.handle(), &tauri::DragDropEvent::Enter { paths: vec![model.clone()], position: at });
        super::on_drag_drop(app.handle(), &tauri::DragDropEvent::Over { position: at });
        super::on_drag_drop(app.handle(), &tauri::DragDropEvent::Leave);
        assert_eq!(*hover.lock().unwrap(), ["true", "false"]);

        // The window's drop goes through on_drag_drop, as the real event does.
        let drop = tauri::DragDropEvent::Drop {
            paths: vec![model.clone(), text.clone(), model.clone()],
            position: tauri::PhysicalPosition::new(10.0, 10.0),
        };
        super::on_drag_drop(app.handle(), &drop);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while finished.lock().unwrap().is_empty() {
            assert!(std::time::Instant::now() < deadline, "the import finished");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let outcomes: serde_json::Value = serde_json::from_str(&finished.lock().unwrap()[0]).unwrap();
        let statuses: Vec<&str> = outcomes.as_array().unwrap().iter().map(|o| o["status"].as_str().unwrap()).collect();
        assert_eq!(statuses, ["imported", "failed", "duplicate"]);
        assert!(outcomes[1]["error"]["message"].as_str().unwrap().contains("notes.txt is not a model"));
        let models = app.operation("models", json!({ "query": {} })).unwrap();
        assert_eq!(models[0]["id"], "local/tiny.gguf");
        assert_eq!(models[0]["source"], "imported");
        let details = app.operation("model", json!({ "id": "local/tiny.gguf" })).unwrap();
        assert_eq!(details["revisions"][0]["files"][0]["path"], "tiny.gguf");
        let err = app.invoke("import_paths", json!({ "paths": [] })).unwrap_err();
        assert_eq!(err["code"], "invalid-input");

        // Ollama: a pull shows in the downloads list and completes; its model joins the library.
        assert_eq!(app.operation("ollama", json!({})).unwrap()["available"], true);
        let id =
            app.operation("ollama_pull", json!({ "pull": { "name": "qwen:0.5b" } })).unwrap()["id"].as_u64().unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let list = app.operation("downloads", json!({})).unwrap();
            let pull = list.as_array().unwrap().iter().find(|d| d["id"].as_u64() == Some(id)).cloned().unwrap();
            if pull["state"] == "completed" {
                assert_eq!(pull["bytesDone"], 4_000_000);
                break;
            }
            assert!(std::time::Instant::now() < deadline, "{pull}");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let models = app.operation("models", json!({ "query": { "source": "ollama" } })).unwrap();
        assert_eq!(models[0]["id"], "ollama/qwen:0.5b");
        // The tray's menu has it too, from the last listing, and its click parses back to the model.
        let cached = app.handle().state::<AppState>().manager.ollama().cached_models();
        let tray = crate::tray::model(&cached, &Default::default(), &[], &[]);
        let item = &tray.groups[0].items[0];
        assert_eq!(item.id, "activate:text-generation:ollama/qwen:0.5b");
        assert_eq!(
            crate::tray::activation_target(&item.id),
            Some((mm_core::library::ModelType::TextGeneration, "ollama/qwen:0.5b"))
        );
        // Activation asks Ollama for its file and points the type's link at it.
        let blobs = files.path().join("blobs");
        std::fs::create_dir_all(&blobs).unwrap();
        ollama.blobs_dir(&blobs);
        let blob = blobs.join(FakeOllama::blob_name(4_000_000));
        let err = app.operation("activate", json!({ "ask": { "id": "ollama/qwen:0.5b" } })).unwrap_err();
        assert!(err["message"].as_str().unwrap().contains("is not readable from here"), "{err}");
        std::fs::write(&blob, b"GGUF").unwrap();
        let entry = app.operation("activate", json!({ "ask": { "id": "ollama/qwen:0.5b" } })).unwrap();
        assert_eq!(entry["modelType"], "text-generation");
        assert_eq!(entry["primaryFile"], blob.to_str().unwrap());
        assert_eq!(std::fs::read_link(data.path().join("app/active/text-generation")).unwrap(), blob);
        let listed = app.operation("models", json!({ "query": { "source": "ollama" } })).unwrap();
        assert_eq!(listed[0]["status"], "active");
        // Its fit badge and its compatibility report come from that file, as for a model on disk.
        std::fs::write(&blob, fake_hub::gguf_model("qwen2", 3, 1 << 20, 5)).unwrap();
        let fits = app.operation("fit", json!({})).unwrap();
        assert!(fits["ollama/qwen:0.5b"]["summary"].as_str().unwrap().contains("needs"), "{fits}");
        let report = app.operation("compat", json!({ "ask": { "target": "ollama/qwen:0.5b" } })).unwrap();
        assert_eq!(report["model"], "ollama/qwen:0.5b");
        assert_eq!(report["entries"][0]["requirements"]["layers"], 3);
        app.operation("deactivate", json!({ "modelType": "text-generation" })).unwrap();
        app.operation("delete", json!({ "id": "ollama/qwen:0.5b", "options": {} })).unwrap();
        assert!(ollama.names().is_empty());
        let err = app.operation("ollama_pull", json!({ "pull": { "name": "../x" } })).unwrap_err();
        assert_eq!(err["code"], "invalid-input");
    }
}
