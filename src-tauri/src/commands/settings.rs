//! Commands about settings, kept in the file the CLI shares.

use crate::AppState;
use mm_core::settings::{SettingsPatch, SettingsView};
use mm_core::ErrorPayload;
use tauri::State;

/// The settings, the token masked, with a warning if the file had to be replaced by defaults.
#[tauri::command]
pub async fn get_settings(state: State<'_, AppState>) -> Result<SettingsView, ErrorPayload> {
    Ok(state.manager.settings_view())
}

/// Validates and saves a change; the download queue takes it at once (the cache folder at the next start).
#[tauri::command]
pub async fn update_settings(state: State<'_, AppState>, patch: SettingsPatch) -> Result<SettingsView, ErrorPayload> {
    let view = state.manager.update_settings(patch)?;
    state.local_server.apply(&state.manager);
    Ok(view)
}

/// The app's local server (`mm serve`'s API and model endpoint): its address while it serves, none while the
/// `localServer` setting is off, or why it does not serve.
#[tauri::command]
pub fn local_server(state: State<'_, AppState>) -> Result<Option<String>, ErrorPayload> {
    state.local_server.address()
}

#[cfg(test)]
mod tests {
    use crate::commands::test_support::TestApp;
    use crate::AppState;
    use mm_core::hub::HubConfig;
    use mm_core::settings::SettingsStore;
    use serde_json::json;
    use std::time::{Duration, Instant};

    /// The local server's answer to `GET /v1/models` on `address`, as a raw HTTP/1.0 exchange.
    fn get_models(address: &str) -> std::io::Result<String> {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(address.trim_start_matches("http://"))?;
        stream.write_all(b"GET /v1/models HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")?;
        let mut answer = String::new();
        stream.read_to_string(&mut answer)?;
        Ok(answer)
    }

    fn until<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(v) = f() {
                return v;
            }
            assert!(Instant::now() < deadline, "{what} within 10 s");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    #[test]
    fn the_local_server_follows_its_setting_and_serves_the_model_endpoint() {
        let tmp = tempfile::tempdir().unwrap();
        let offline =
            HubConfig { endpoint: "http://127.0.0.1:9".into(), token: None, offline: true, ..HubConfig::default() };
        let app = TestApp::new(AppState::with(
            SettingsStore::new(tmp.path().join("settings.json")),
            Some(tmp.path().join("hub")),
            Some(offline),
            None,
            tmp.path().join("data"),
        ));
        assert_eq!(app.invoke("local_server", json!({})).unwrap(), json!(null), "off by default");
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        app.invoke("update_settings", json!({"patch": {"localServer": true, "localServerPort": port}})).unwrap();
        let address = until("the local server serves", || {
            app.invoke("local_server", json!({})).unwrap().as_str().map(str::to_string)
        });
        assert_eq!(address, format!("http://127.0.0.1:{port}"));
        let answer = get_models(&address).unwrap();
        assert!(answer.starts_with("HTTP/1.0 200") && answer.contains("\"object\":\"list\""), "{answer}");

        // Off again: the port is closed.
        app.invoke("update_settings", json!({"patch": {"localServer": false}})).unwrap();
        until("the local server stopped", || get_models(&address).is_err().then_some(()));
        assert_eq!(app.invoke("local_server", json!({})).unwrap(), json!(null));

        // A port another program holds: the window says so.
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = taken.local_addr().unwrap().port();
        app.invoke("update_settings", json!({"patch": {"localServer": true, "localServerPort": port}})).unwrap();
        let why = until("the refusal", || app.invoke("local_server", json!({})).err());
        assert!(why["message"].as_str().unwrap().contains(&format!("cannot serve on 127.0.0.1:{port}")), "{why}");
    }
}
