//! Invoking commands through Tauri's mock runtime, as the window would, without a window.

use crate::AppState;
use tauri::ipc::{CallbackFn, InvokeBody, InvokeResponseBody};
use tauri::test::{get_ipc_response, mock_builder, mock_context, noop_assets, MockRuntime, INVOKE_KEY};
use tauri::webview::InvokeRequest;
use tauri::{App, Manager, WebviewWindow, WebviewWindowBuilder};

pub struct TestApp {
    _app: App<MockRuntime>,
    window: WebviewWindow<MockRuntime>,
}

impl TestApp {
    pub fn new(state: AppState) -> TestApp {
        let app = crate::builder(mock_builder(), state).build(mock_context(noop_assets())).expect("the app builds");
        let window = WebviewWindowBuilder::new(&app, "main", Default::default()).build().unwrap();
        TestApp { _app: app, window }
    }

    pub fn handle(&self) -> &tauri::AppHandle<MockRuntime> {
        self.window.app_handle()
    }

    /// Calls `cmd` with JSON arguments; `Err` holds the command's error payload.
    pub fn invoke(&self, cmd: &str, args: serde_json::Value) -> Result<serde_json::Value, serde_json::Value> {
        let request = InvokeRequest {
            cmd: cmd.into(),
            callback: CallbackFn(0),
            error: CallbackFn(1),
            url: "tauri://localhost".parse().unwrap(),
            body: InvokeBody::Json(args),
            headers: Default::default(),
            invoke_key: INVOKE_KEY.to_string(),
        };
        get_ipc_response(&self.window, request).map(|body| match body {
            InvokeResponseBody::Json(json) => serde_json::from_str(&json).unwrap(),
            InvokeResponseBody::Raw(raw) => serde_json::from_slice(&raw).unwrap(),
        })
    }

    /// Runs an operation of the core's table through the window's `operation` command.
    pub fn operation(&self, name: &str, args: serde_json::Value) -> Result<serde_json::Value, serde_json::Value> {
        self.invoke("operation", serde_json::json!({ "name": name, "args": args }))
    }
}
