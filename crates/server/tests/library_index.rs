//! The library served from memory stays what the disk holds: a model another program adds to the cache, or
//! removes from it, shows in `GET /mm/v1/models` and `GET /v1/models` within a second, and the change is told to
//! event listeners (`library-changed`).

use mm_core::settings::SettingsStore;
use mm_core::{Manager, ManagerConfig};
use std::path::Path;
use std::time::{Duration, Instant};

/// A complete GGUF model in the cache's layout, as huggingface_hub would leave it.
fn place(cache: &Path, repo: &str, seed: u8) {
    let dir = cache.join(format!("models--{}", repo.replace('/', "--")));
    let commit = format!("{seed:040x}");
    let blob = format!("{seed:064x}");
    std::fs::create_dir_all(dir.join("blobs")).unwrap();
    std::fs::write(dir.join("blobs").join(&blob), b"GGUF\x03\0\0\0").unwrap();
    mm_core::cache::write::link_snapshot(&dir, &commit, "model-Q4_K_M.gguf", &blob).unwrap();
    mm_core::cache::write::write_ref(&dir, "main", &commit).unwrap();
}

async fn ids(http: &reqwest::Client, url: &str) -> (Vec<String>, Vec<String>) {
    let listed: serde_json::Value = http.get(format!("{url}/mm/v1/models")).send().await.unwrap().json().await.unwrap();
    let served: serde_json::Value = http.get(format!("{url}/v1/models")).send().await.unwrap().json().await.unwrap();
    let of =
        |v: &serde_json::Value| v.as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap().to_string()).collect();
    (of(&listed), of(&served["data"]))
}

/// Asks until both lists are `want`; how long that took.
async fn until(http: &reqwest::Client, url: &str, want: &[&str]) -> Duration {
    let started = Instant::now();
    loop {
        let (listed, served) = ids(http, url).await;
        if listed == want && served == want {
            return started.elapsed();
        }
        assert!(started.elapsed() < Duration::from_secs(10), "still {listed:?} / {served:?}, not {want:?}");
        tokio::task::yield_now().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_another_program_adds_or_removes_shows_within_a_second_and_is_told() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    place(&cache, "org/first-GGUF", 1);
    let manager = Manager::open(ManagerConfig {
        cache_dir: Some(cache.clone()),
        hub: Some(mm_core::hub::HubConfig {
            endpoint: "http://127.0.0.1:9".into(),
            offline: true,
            ..Default::default()
        }),
        ollama: Some(mm_core::ollama::Ollama::new("127.0.0.1:9")),
        ..ManagerConfig::new(SettingsStore::new(dir.path().join("settings.json")), dir.path().join("data"))
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let options = mm_server::ServeOptions {
        listen: listener.local_addr().unwrap(),
        access: Default::default(),
        owns_manager: false,
    };
    drop(listener);
    let served = manager.clone();
    tokio::spawn(async move {
        mm_server::serve(
            served,
            options,
            |_| {
                let _ = ready_tx.send(());
            },
            std::future::pending(),
        )
        .await
        .unwrap()
    });
    ready_rx.await.unwrap();
    let http = reqwest::Client::new();
    let mut changes = manager.subscribe_library();
    until(&http, &url, &["org/first-GGUF"]).await;

    // Another program adds a model: it shows within a second, and listeners are told.
    place(&cache, "org/second-GGUF", 2);
    let took = until(&http, &url, &["org/first-GGUF", "org/second-GGUF"]).await;
    assert!(took < Duration::from_secs(1), "the added model took {took:?} to show");
    tokio::time::timeout(Duration::from_secs(5), changes.recv()).await.expect("library-changed told").unwrap();

    // And removes one.
    std::fs::remove_dir_all(cache.join("models--org--first-GGUF")).unwrap();
    let took = until(&http, &url, &["org/second-GGUF"]).await;
    assert!(took < Duration::from_secs(1), "the removed model took {took:?} to go");
    tokio::time::timeout(Duration::from_secs(5), changes.recv()).await.expect("library-changed told").unwrap();

    // A library folder that does not exist yet is not watched: a model placed once it does shows within a second
    // of being listed again all the same.
    let folder = dir.path().join("later");
    manager
        .update_settings(mm_core::settings::SettingsPatch {
            library_folders: Some(vec![folder.display().to_string()]),
            ..Default::default()
        })
        .unwrap();
    until(&http, &url, &["org/second-GGUF"]).await;
    place(&folder, "org/third-GGUF", 3);
    let took = until(&http, &url, &["org/second-GGUF", "org/third-GGUF"]).await;
    assert!(took < Duration::from_secs(2), "the model in a folder made later took {took:?} to show");
}
