//! Commands about the models on this machine.

use crate::AppState;
use mm_core::cache::{self, CacheScan};
use mm_core::error::Coded;
use mm_core::ErrorPayload;
use tauri::{Runtime, State};

/// Every repo in the Hugging Face cache, with revisions, files, sizes and status.
#[tauri::command]
pub async fn list_models<R: Runtime>(
    _app: tauri::AppHandle<R>,
    state: State<'_, AppState>,
) -> Result<CacheScan, ErrorPayload> {
    cache::scan(state.cache_dir.clone()).await.map_err(|err| err.payload())
}

#[cfg(test)]
mod tests {
    use crate::AppState;
    use std::path::Path;
    use tauri::ipc::{CallbackFn, InvokeBody, InvokeResponseBody};
    use tauri::test::{get_ipc_response, mock_builder, mock_context, noop_assets, INVOKE_KEY};
    use tauri::webview::InvokeRequest;
    use tauri::WebviewWindowBuilder;

    fn invoke(cache_dir: &Path, cmd: &str) -> Result<serde_json::Value, serde_json::Value> {
        let app = crate::builder(mock_builder(), AppState { cache_dir: cache_dir.to_path_buf() })
            .build(mock_context(noop_assets()))
            .expect("the app builds");
        let window = WebviewWindowBuilder::new(&app, "main", Default::default()).build().unwrap();
        let request = InvokeRequest {
            cmd: cmd.into(),
            callback: CallbackFn(0),
            error: CallbackFn(1),
            url: "tauri://localhost".parse().unwrap(),
            body: InvokeBody::default(),
            headers: Default::default(),
            invoke_key: INVOKE_KEY.to_string(),
        };
        get_ipc_response(&window, request).map(|body| match body {
            InvokeResponseBody::Json(json) => serde_json::from_str(&json).unwrap(),
            InvokeResponseBody::Raw(raw) => serde_json::from_slice(&raw).unwrap(),
        })
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

        let scan = invoke(tmp.path(), "list_models").expect("the command succeeds");
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
        let err = invoke(&file, "list_models").expect_err("a file is not a cache");
        assert_eq!(err["code"], "invalid-input");
        assert!(err["message"].as_str().unwrap().contains("is a file, not a folder"));
    }
}
