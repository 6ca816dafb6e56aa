//! The app's log file, as a bug report would read it: the download of a gated model leaves its story (the span
//! with repo and file, the retry after a cut, the completion) and never the token or a signed link's signature.
//! Its own test binary: a process sets its logger once.

use fake_hub::{noise, FakeHub, Fault, HubFile, CDN_SIGNATURE};
use mm_core::download::{DownloadOptions, DownloadRequest, DownloadState, Downloads};
use mm_core::hub::{HubClient, HubConfig, RetryPolicy};
use std::time::Duration;

const TOKEN: &str = "hf_log_test_token_0123456789";

#[tokio::test]
async fn a_gated_download_is_logged_without_its_token_or_signed_links() {
    let data = tempfile::tempdir().unwrap();
    let logs = mm_core::logs::log_dir(data.path());
    mm_core::logs::to_file(&logs).unwrap();

    let hub = FakeHub::start().await;
    hub.add_repo(
        "meta/gated",
        vec![HubFile::new("model.safetensors", noise(200_000, 7), true), HubFile::new("b.gguf", noise(1000, 8), true)],
    );
    hub.gate("meta/gated", TOKEN);
    hub.fault("model.safetensors", Fault::Cut { after: 50_000, times: 1 });
    // The CDN answering with an error: the message that names it must not carry its signed link.
    hub.fault("b.gguf", Fault::Status { code: 503, times: 1, retry_after: None });
    let cache = tempfile::tempdir().unwrap();
    let retry = RetryPolicy { attempts: 4, base: Duration::from_millis(10), max: Duration::from_millis(50) };
    let config = HubConfig { endpoint: hub.endpoint(), token: Some(TOKEN.into()), ..HubConfig::default() };
    let downloads =
        Downloads::new(HubClient::with_retry(config, retry).unwrap(), cache.path().into(), DownloadOptions::default());
    let id = downloads.start(DownloadRequest { repo: "meta/gated".into(), ..Default::default() }).unwrap();
    let done = tokio::time::timeout(Duration::from_secs(60), downloads.wait(id)).await.unwrap().unwrap();
    assert_eq!(done.state, DownloadState::Completed);

    // A request the hub refuses (no token) is logged with its code too.
    let anonymous = Downloads::new(
        HubClient::with_retry(HubConfig { endpoint: hub.endpoint(), ..HubConfig::default() }, retry).unwrap(),
        cache.path().join("other"),
        DownloadOptions::default(),
    );
    let id = anonymous.start(DownloadRequest { repo: "meta/gated".into(), ..Default::default() }).unwrap();
    assert!(anonymous.wait(id).await.is_err());

    let log = mm_core::logs::tail(&logs, 10_000);
    for expected in [
        "download{id=1 repo=meta/gated revision=main}",
        "file{path=model.safetensors size=200000}",
        "transport=\"http\"",
        "answered 503",
        "interrupted; trying again",
        "attempt=1",
        "completed",
        "code=auth",
    ] {
        assert!(log.contains(expected), "{expected:?} is not in the log:\n{log}");
    }
    assert!(log.contains("?…"), "the CDN hop is logged, without its query:\n{log}");
    assert!(!log.contains(TOKEN), "the token is in the log:\n{log}");
    assert!(!log.contains(CDN_SIGNATURE), "a signed link is in the log:\n{log}");
}
