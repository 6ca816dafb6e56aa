//! Opening a Discover card's link in the system browser (the hub's search, a repo's details and the starter catalog
//! are operations: `operations.rs`).

use mm_core::{ErrorCode, ErrorPayload};

/// Opens an http(s) link in the system browser; anything else is refused.
#[tauri::command]
pub async fn open_url(url: String) -> Result<(), ErrorPayload> {
    let parsed = reqwest_url(&url)?;
    std::process::Command::new("xdg-open").arg(parsed.as_str()).spawn().map(|_| ()).map_err(|e| {
        ErrorPayload::new(ErrorCode::of_io(&e), format!("cannot open {url}: {e} (is xdg-open installed?)"))
    })
}

fn reqwest_url(url: &str) -> Result<tauri::Url, ErrorPayload> {
    let refused = || {
        ErrorPayload::new(ErrorCode::InvalidInput, format!("{url} is not a web link (only http and https links open)"))
    };
    let parsed = tauri::Url::parse(url).map_err(|_| refused())?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(refused());
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use crate::commands::test_support::TestApp;
    use crate::AppState;
    use fake_hub::{FakeHub, HubFile, RepoMeta};
    use mm_core::hub::HubConfig;
    use mm_core::settings::SettingsStore;
    use serde_json::json;

    #[tokio::test(flavor = "multi_thread")]
    async fn search_details_and_catalog_through_the_commands() {
        let hub = FakeHub::start().await;
        hub.add_repo(
            "acme/tiny-GGUF",
            vec![
                HubFile::new("README.md", b"# Tiny\n<script>x()</script>[a](javascript:x())".to_vec(), false),
                HubFile::new("tiny.Q4_K_M.gguf", fake_hub::gguf_model("llama", 2, 2048, 1), true),
            ],
        );
        hub.set_meta(
            "acme/tiny-GGUF",
            RepoMeta { downloads: 7, library_name: Some("gguf".into()), ..Default::default() },
        );
        let cache = tempfile::tempdir().unwrap();
        let data = tempfile::tempdir().unwrap();
        let config = HubConfig { endpoint: hub.endpoint(), token: None, offline: false, ..HubConfig::default() };
        let app = TestApp::new(AppState::with(
            SettingsStore::new(data.path().join("settings.json")),
            Some(cache.path().into()),
            Some(config),
            None,
            data.path().join("app"),
        ));
        let query = json!({ "text": "tiny", "author": null, "task": null, "library": "gguf", "tags": [],
                            "sort": "downloads", "limit": 10 });
        let page = app.operation("search", json!({ "ask": { "query": query } })).unwrap();
        assert_eq!(page["models"][0]["id"], "acme/tiny-GGUF");
        assert_eq!(page["models"][0]["downloads"], 7);
        let err = app.operation("search", json!({ "ask": { "query": { "text": "x", "limit": 0 } } })).unwrap_err();
        assert_eq!(err["code"], "invalid-input");

        let details = app.operation("repo", json!({ "repo": "acme/tiny-GGUF", "at": {} })).unwrap();
        assert_eq!(details["quantisations"][0]["name"], "Q4_K_M");
        let card = details["cardHtml"].as_str().unwrap();
        assert!(card.contains("<h1>Tiny</h1>") && !card.contains("<script") && !card.contains("href"), "{card}");
        let err = app.operation("repo", json!({ "repo": "no such/repo", "at": {} })).unwrap_err();
        assert_eq!(err["code"], "invalid-input");

        let catalog = app.operation("catalog", json!({})).unwrap();
        assert_eq!(catalog["offline"], false);
        assert!(catalog["entries"].as_array().unwrap().len() >= 10);

        for bad in ["javascript:alert(1)", "file:///etc/passwd", "data:text/html,x", "not a url"] {
            let err = app.invoke("open_url", json!({ "url": bad })).unwrap_err();
            assert_eq!(err["code"], "invalid-input", "{bad}");
        }
    }
}
