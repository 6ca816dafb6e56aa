//! The operations of the core's table ([`mm_core::operations!`]) as one command, `operation`, that runs a row by
//! name on the machine the window drives: `invoke('operation', { name: 'models', args: { query } })`, the
//! arguments named as the row names them (camelCase). An operation that reports progress sends it to the window
//! as the row's event.

use crate::AppState;
use mm_core::machine::Machine;
use mm_core::{ErrorCode, ErrorPayload, Operations};
use serde_json::Value;
use tauri::{AppHandle, Emitter, Runtime, State};

/// Runs the operation `name` with `args` on the machine the window drives: its answer, as JSON.
#[tauri::command]
pub async fn operation<R: Runtime>(
    app: AppHandle<R>,
    state: State<'_, AppState>,
    name: String,
    args: Value,
) -> Result<Value, ErrorPayload> {
    run(&app, &state.machine(), &name, args).await
}

fn unreadable(name: &str, err: serde_json::Error) -> ErrorPayload {
    ErrorPayload::new(ErrorCode::InvalidInput, format!("the arguments of `{name}` are not what it takes: {err}"))
}

macro_rules! by_name {
    ([] $(
        $(#[$meta:meta])*
        $name:ident $method:ident $path:literal $tag:literal
        path[$( $(#[$pmeta:meta])* $p:ident: $pt:ty ),*]
        query[$($q:ident: $qt:ty)?]
        body[$($b:ident: $bt:ty)?]
        progress[$($prt:ty, $event:literal)?]
        answer[$answer:ty] ok[$($ok:literal),+] errors[$($err:literal),*];
    )*) => {
        async fn run<R: Runtime>(app: &AppHandle<R>, machine: &Machine, name: &str, args: Value) -> Result<Value, ErrorPayload> {
            match name {
                $(stringify!($name) => {
                    #[derive(serde::Deserialize)]
                    #[serde(rename_all = "camelCase", deny_unknown_fields)]
                    struct Args {
                        $($p: $pt,)*
                        $($q: $qt,)?
                        $($b: $bt,)?
                    }
                    let Args { $($p,)* $($q,)? $($b,)? } =
                        serde_json::from_value(args).map_err(|e| unreadable(name, e))?;
                    let answer = Operations::$name(machine, $($p,)* $($q,)? $($b,)? $({
                        let app = app.clone();
                        move |progress: $prt| { let _ = app.emit($event, progress); }
                    },)?).await?;
                    serde_json::to_value(answer)
                        .map_err(|e| ErrorPayload::new(ErrorCode::Internal, format!("`{name}` answered badly: {e}")))
                })*
                _ => Err(ErrorPayload::new(ErrorCode::InvalidInput, format!("there is no operation `{name}`"))),
            }
        }
    };
}

mm_core::operations!(by_name);

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
        let preview = app.operation("preview", request.clone()).unwrap();
        assert_eq!(preview["repo"], "acme/tiny");
        assert_eq!(preview["commit"], commit);
        assert_eq!(preview["bytesTotal"], 100_002);
        assert_eq!(preview["bytesToDownload"], 100_002);
        assert_eq!(preview["files"].as_array().unwrap().len(), 2);
        assert!(preview["freeSpace"].as_u64().unwrap() > 0);
        assert!(!cache.path().join("models--acme--tiny").exists(), "a preview writes nothing");

        let id = app.operation("start", request).unwrap()["id"].clone();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let list = app.operation("downloads", json!({})).unwrap();
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

        let err = app.operation("start", json!({ "request": { "repo": "bad id" } })).unwrap_err();
        assert_eq!(err["code"], "invalid-input");
        // The checked queue, as on another machine: a repo the hub does not have is refused before anything is
        // queued, not queued to fail later.
        let queued = app.operation("downloads", json!({})).unwrap().as_array().unwrap().len();
        let err = app.operation("start", json!({ "request": { "repo": "acme/none" } })).unwrap_err();
        assert_eq!(err["code"], "not-found", "{err}");
        assert_eq!(app.operation("downloads", json!({})).unwrap().as_array().unwrap().len(), queued);
        let err = app.operation("cancel", json!({ "id": 999 })).unwrap_err();
        assert_eq!(err["code"], "not-found");
        // A name that is no row, and arguments a row does not take, are refused with what was wrong.
        let err = app.operation("format_disk", json!({})).unwrap_err();
        assert_eq!(
            (err["code"].as_str(), err["message"].as_str()),
            (Some("invalid-input"), Some("there is no operation `format_disk`"))
        );
        for bad in [json!({ "id": "seven" }), json!({}), json!({ "id": 1, "extra": true })] {
            let err = app.operation("cancel", bad.clone()).unwrap_err();
            assert_eq!(err["code"], "invalid-input", "{bad}");
            assert!(
                err["message"].as_str().unwrap().starts_with("the arguments of `cancel` are not what it takes"),
                "{err}"
            );
        }
    }
}
