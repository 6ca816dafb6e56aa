//! Adding another machine: checked against its real `mm serve` (in-process, over loopback HTTP) before it is kept,
//! its token kept like the hub token (a 0600 file here, the keyring being off) and never in the settings file;
//! then driven through `Machine::Remote` as the window and `mm --remote` drive it.

use mm_core::machine::Machine;
use mm_core::settings::SettingsStore;
use mm_core::{ErrorCode, Manager, ManagerConfig, Operations};
use std::os::unix::fs::PermissionsExt;

fn manager(dir: &std::path::Path) -> Manager {
    let offline =
        mm_core::hub::HubConfig { endpoint: "http://127.0.0.1:9".into(), offline: true, ..Default::default() };
    Manager::open(ManagerConfig {
        cache_dir: Some(dir.join("cache")),
        hub: Some(offline),
        ollama: Some(mm_core::ollama::Ollama::new("127.0.0.1:9")),
        ..ManagerConfig::new(SettingsStore::new(dir.join("config/settings.json")), dir.join("data"))
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_machine_is_kept_only_once_it_answers_with_its_token_which_stays_out_of_the_settings() {
    std::env::set_var("MM_KEYRING", "0");
    let (server_dir, laptop_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let server = manager(server_dir.path());
    let access = mm_server::Access { token: Some("machine-token-0123456789".into()), ..Default::default() };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let app = mm_server::router(server.clone(), access, tokio_util::sync::CancellationToken::new());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let laptop = manager(laptop_dir.path());
    let err = laptop.add_machine("gpu", &url, Some("wrong")).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::Auth, "{err:?}");
    let err = laptop.add_machine("gpu", "http://127.0.0.1:9", None).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::Network, "{err:?}");
    assert!(laptop.settings().machines.is_empty(), "nothing kept that did not answer");

    let entry = laptop.add_machine("gpu", &url, Some("machine-token-0123456789")).await.unwrap();
    assert_eq!((entry.name.as_str(), entry.url.as_str()), ("gpu", url.as_str()));
    let settings_file = std::fs::read_to_string(laptop_dir.path().join("config/settings.json")).unwrap();
    assert!(settings_file.contains(&url) && !settings_file.contains("machine-token"), "{settings_file}");
    let token_files: Vec<_> = std::fs::read_dir(laptop_dir.path().join("config"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("machine-"))
        .collect();
    assert_eq!(token_files.len(), 1, "{token_files:?}");
    assert_eq!(std::fs::metadata(&token_files[0]).unwrap().permissions().mode() & 0o777, 0o600);

    // Driven as the window drives it: the kept token opens it.
    let machine = Machine::Remote(laptop.remote(&url).unwrap());
    assert_eq!(*machine.models(Default::default()).await.unwrap(), Vec::<mm_core::model::LibraryModel>::new());
    assert!(machine.system().await.unwrap().ram_total > 0);
    let err = machine.download(999).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::NotFound, "the other machine's own error code comes through");

    laptop.remove_machine(&url).unwrap();
    assert!(laptop.settings().machines.is_empty());
    assert!(!token_files[0].exists(), "its token went with it");
    assert_eq!(laptop.remote(&url).err().map(|e| e.code), Some(ErrorCode::NotFound));
}

/// Serves `manager` on `listener` until the task is aborted; the token ends its event streams.
fn serve(
    manager: &Manager,
    listener: tokio::net::TcpListener,
) -> (tokio::task::JoinHandle<()>, tokio_util::sync::CancellationToken) {
    let stop = tokio_util::sync::CancellationToken::new();
    let app = mm_server::router(manager.clone(), mm_server::Access::default(), stop.clone());
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (task, stop)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_machine_that_restarted_tells_its_remote_subscribers_to_read_the_state_again() {
    use mm_core::download::DownloadEvent;
    let dir = tempfile::tempdir().unwrap();
    let server = manager(dir.path());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (running, stop) = serve(&server, listener);
    let remote = mm_core::remote::Remote::new(&format!("http://{address}"), None).unwrap();
    let mut events = remote.subscribe();
    let model = dir.path().join("tiny.gguf");
    std::fs::write(&model, fake_hub::gguf_model("llama", 1, 4096, 1)).unwrap();
    let next = |events: &mut tokio::sync::broadcast::Receiver<DownloadEvent>| {
        let mut events = events.resubscribe();
        async move { tokio::time::timeout(std::time::Duration::from_secs(20), events.recv()).await.unwrap().unwrap() }
    };
    // An event arrives as itself (the stream is open once one has come through).
    let mut seen = None;
    for _ in 0..100 {
        let waiting = tokio::spawn(next(&mut events));
        server.import(vec![model.clone()], None, |_| {}).await;
        let _ = server.delete("local/tiny.gguf", None, false).await;
        if let Ok(Ok(event)) = tokio::time::timeout(std::time::Duration::from_secs(2), waiting).await {
            seen = Some(event);
            break;
        }
    }
    assert!(matches!(seen, Some(DownloadEvent::Lifecycle(_))), "{seen:?}");
    // The machine restarts (a new run of its server, on the same address): the stream comes back with a reset,
    // which reaches the subscriber as word that what it shows is stale.
    stop.cancel();
    running.abort();
    let _ = running.await;
    let listener = tokio::net::TcpListener::bind(address).await.unwrap();
    let _again = serve(&server, listener);
    loop {
        match tokio::time::timeout(std::time::Duration::from_secs(20), events.recv()).await.unwrap().unwrap() {
            DownloadEvent::Stale => break,
            _ => continue,
        }
    }
}
