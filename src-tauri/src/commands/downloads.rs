//! Commands about downloads: preview, start, pause, resume, cancel, list; on the machine the window drives.

use crate::AppState;
use mm_core::download::{DownloadPreview, DownloadProgress, DownloadRequest};
use mm_core::ErrorPayload;
use tauri::State;

/// What downloading would fetch: files, sizes, what is already cached, and free space.
#[tauri::command]
pub async fn preview_download(
    state: State<'_, AppState>,
    request: DownloadRequest,
) -> Result<DownloadPreview, ErrorPayload> {
    state.machine().preview(request).await
}

/// Queues a download and returns its id (the existing one when the same download is already queued or running).
#[tauri::command]
pub async fn start_download(state: State<'_, AppState>, request: DownloadRequest) -> Result<u64, ErrorPayload> {
    state.machine().start(request).await
}

#[tauri::command]
pub async fn pause_download(state: State<'_, AppState>, id: u64) -> Result<(), ErrorPayload> {
    state.machine().pause(id).await
}

#[tauri::command]
pub async fn resume_download(state: State<'_, AppState>, id: u64) -> Result<(), ErrorPayload> {
    state.machine().resume(id).await
}

#[tauri::command]
pub async fn cancel_download(state: State<'_, AppState>, id: u64) -> Result<(), ErrorPayload> {
    state.machine().cancel(id).await
}

#[tauri::command]
pub async fn list_downloads(state: State<'_, AppState>) -> Result<Vec<DownloadProgress>, ErrorPayload> {
    state.machine().downloads().await
}

#[cfg(test)]
mod tests {
    use crate::commands::test_support::TestApp;
    use crate::AppState;
    use fake_hub::{noise, FakeHub, HubFile};
    use mm_core::hub::HubConfig;
    use mm_core::settings::SettingsStore;
    use serde_json::json;
    use std::time::{Duration, Instant};

    #[test]
    fn preview_then_download_through_the_commands() {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let hub = runtime.block_on(FakeHub::start());
        let commit = hub.add_repo(
            "acme/tiny",
            vec![
                HubFile::new("config.json", b"{}".to_vec(), false),
                HubFile::new("model.gguf", noise(100_000, 1), true),
            ],
        );
        let cache = tempfile::tempdir().unwrap();
        let config = HubConfig { endpoint: hub.endpoint(), token: None, offline: false, ..HubConfig::default() };
        let settings = tempfile::tempdir().unwrap();
        let store = SettingsStore::new(settings.path().join("settings.json"));
        let app = TestApp::new(AppState::with(
            store,
            Some(cache.path().to_path_buf()),
            Some(config),
            None,
            settings.path().join("data"),
        ));

        let request = json!({ "request": { "repo": format!("{}/acme/tiny/tree/main", hub.endpoint()) } });
        let preview = app.invoke("preview_download", request.clone()).unwrap();
        assert_eq!(preview["repo"], "acme/tiny");
        assert_eq!(preview["commit"], commit);
        assert_eq!(preview["bytesTotal"], 100_002);
        assert_eq!(preview["bytesToDownload"], 100_002);
        assert_eq!(preview["files"].as_array().unwrap().len(), 2);
        assert!(preview["freeSpace"].as_u64().unwrap() > 0);
        assert!(!cache.path().join("models--acme--tiny").exists(), "a preview writes nothing");

        let id = app.invoke("start_download", request).unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let list = app.invoke("list_downloads", json!({})).unwrap();
            let state = list[0]["state"].as_str().unwrap().to_string();
            assert_eq!(list[0]["id"], id);
            if state == "completed" {
                assert_eq!(list[0]["bytesDone"], 100_002);
                break;
            }
            assert!(state != "failed", "{list}");
            assert!(Instant::now() < deadline, "the download did not finish");
            std::thread::sleep(Duration::from_millis(20));
        }
        let scan = app.invoke("list_models", json!({})).unwrap();
        assert_eq!(scan["repos"][0]["status"], "complete");

        let err = app.invoke("start_download", json!({ "request": { "repo": "bad id" } })).unwrap_err();
        assert_eq!(err["code"], "invalid-input");
        // The checked queue, as on another machine: a repo the hub does not have is refused before anything is
        // queued, not queued to fail later.
        let queued = app.invoke("list_downloads", json!({})).unwrap().as_array().unwrap().len();
        let err = app.invoke("start_download", json!({ "request": { "repo": "acme/none" } })).unwrap_err();
        assert_eq!(err["code"], "not-found", "{err}");
        assert_eq!(app.invoke("list_downloads", json!({})).unwrap().as_array().unwrap().len(), queued);
        let err = app.invoke("cancel_download", json!({ "id": 999 })).unwrap_err();
        assert_eq!(err["code"], "not-found");
    }
}
