//! Downloads against the fake hub (a real HTTP server on loopback): the cache layout, verification, retries,
//! resume, auth and the token's reach, hostile listings, free space, and the queue.

use fake_hub::{noise, FakeHub, Fault, Host, HubFile};
use mm_core::cache::{scan_blocking, CacheStatus};
use mm_core::download::{DownloadEvent, DownloadOptions, DownloadRequest, DownloadState, Downloads, LifecycleKind};
use mm_core::hub::{HubClient, HubConfig, RetryPolicy};
use mm_core::{ErrorCode, ErrorPayload};
use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

const TOKEN: &str = "hf_test_token";

struct Setup {
    hub: FakeHub,
    cache: tempfile::TempDir,
    downloads: Downloads,
}

fn fast_retry() -> RetryPolicy {
    RetryPolicy { attempts: 6, base: Duration::from_millis(10), max: Duration::from_secs(3) }
}

fn downloads(hub: &FakeHub, cache: &Path, token: Option<&str>, options: DownloadOptions) -> Downloads {
    let config =
        HubConfig { endpoint: hub.endpoint(), token: token.map(str::to_owned), offline: false, ..HubConfig::default() };
    Downloads::new(HubClient::with_retry(config, fast_retry()).unwrap(), cache.to_path_buf(), options)
}

async fn setup_with(token: Option<&str>, options: DownloadOptions) -> Setup {
    let hub = FakeHub::start().await;
    let cache = tempfile::tempdir().unwrap();
    let downloads = downloads(&hub, cache.path(), token, options);
    Setup { hub, cache, downloads }
}

async fn setup() -> Setup {
    setup_with(None, DownloadOptions { stall_timeout: Duration::from_millis(500), ..Default::default() }).await
}

/// config.json (small, served directly) and two LFS files (served through the CDN redirect).
fn model_files() -> Vec<HubFile> {
    vec![
        HubFile::new("config.json", br#"{"architectures":["LlamaForCausalLM"],"model_type":"llama"}"#.to_vec(), false),
        HubFile::new("model.safetensors", noise(300_000, 1), true),
        HubFile::new("onnx/model.onnx", noise(120_000, 2), true),
    ]
}

fn request(repo: &str) -> DownloadRequest {
    DownloadRequest { repo: repo.into(), ..Default::default() }
}

async fn download(d: &Downloads, req: DownloadRequest) -> Result<mm_core::download::DownloadProgress, ErrorPayload> {
    let id = d.start(req).map_err(|e| mm_core::error::Coded::payload(&e))?;
    tokio::time::timeout(Duration::from_secs(60), d.wait(id)).await.expect("the download finishes")
}

fn snapshot(cache: &Path, repo: &str, commit: &str, path: &str) -> std::path::PathBuf {
    cache.join(format!("models--{}", repo.replace('/', "--"))).join("snapshots").join(commit).join(path)
}

fn no_partial_files(cache: &Path) -> bool {
    fake_hub::walk(cache).iter().all(|p| !p.to_string_lossy().ends_with(".incomplete"))
}

#[tokio::test]
async fn downloads_a_repo_into_the_huggingface_cache_layout() {
    let s = setup().await;
    let files = model_files();
    let commit = s.hub.add_repo("acme/tiny", files.clone());

    let done = download(&s.downloads, request("acme/tiny")).await.unwrap();
    assert_eq!(done.state, DownloadState::Completed);
    assert_eq!(done.commit.as_deref(), Some(commit.as_str()));
    assert_eq!((done.files_done, done.files_total), (3, 3));
    assert_eq!(done.bytes_done, done.bytes_total);
    assert_eq!(done.bytes_total, files.iter().map(|f| f.content.len() as u64).sum::<u64>());

    let repo_dir = s.cache.path().join("models--acme--tiny");
    assert_eq!(fs::read_to_string(repo_dir.join("refs/main")).unwrap(), commit);
    for f in &files {
        let link = snapshot(s.cache.path(), "acme/tiny", &commit, &f.path);
        let target = fs::read_link(&link).unwrap();
        assert!(target.is_relative(), "{target:?}");
        assert!(target.ends_with(Path::new("blobs").join(f.etag())), "{target:?}");
        assert_eq!(fs::read(&link).unwrap(), *f.content, "{}", f.path);
    }
    assert!(no_partial_files(s.cache.path()));

    let scan = scan_blocking(s.cache.path()).unwrap();
    assert_eq!(scan.repos[0].status, CacheStatus::Complete);
    assert_eq!(scan.repos[0].revisions[0].files.len(), 3);
    assert_eq!(scan.repos[0].revisions[0].refs, ["main"]);

    // LFS bytes came from the CDN host, small files from the hub.
    let log = s.hub.requests();
    assert!(log.iter().any(|r| r.host == Host::Cdn && r.status == 200));
    assert_eq!(log.iter().filter(|r| r.host == Host::Cdn).count(), 2);
}

#[tokio::test]
async fn blobs_already_in_the_cache_are_reused_not_fetched() {
    let s = setup().await;
    let files = model_files();
    s.hub.add_repo("acme/tiny", files.clone());
    download(&s.downloads, request("acme/tiny")).await.unwrap();
    s.hub.clear_requests();
    // A second repo shares the big blob: only its other files travel.
    let mut other = vec![HubFile::new("README.md", b"# other".to_vec(), false), files[1].clone()];
    other[1].path = "weights.safetensors".into();
    s.hub.add_repo("acme/other", other);
    // Placing the shared blob where huggingface_hub would have put it for the other repo.
    let blobs = s.cache.path().join("models--acme--other/blobs");
    fs::create_dir_all(&blobs).unwrap();
    fs::copy(s.cache.path().join("models--acme--tiny/blobs").join(&files[1].sha256), blobs.join(&files[1].sha256))
        .unwrap();
    download(&s.downloads, request("acme/other")).await.unwrap();
    let fetched: Vec<_> =
        s.hub.requests().into_iter().filter(|r| r.path.contains("/resolve/")).map(|r| r.path).collect();
    assert_eq!(fetched.len(), 1, "{fetched:?}");
    assert!(fetched[0].ends_with("README.md"));
}

#[tokio::test]
async fn include_and_exclude_select_files_and_the_selection_is_complete() {
    let s = setup().await;
    let commit = s.hub.add_repo("acme/tiny", model_files());
    let req = DownloadRequest {
        repo: "acme/tiny".into(),
        include: vec!["*.json".into(), "onnx/".into()],
        ..Default::default()
    };
    let done = download(&s.downloads, req).await.unwrap();
    assert_eq!(done.files_total, 2);
    assert!(snapshot(s.cache.path(), "acme/tiny", &commit, "onnx/model.onnx").exists());
    assert!(!snapshot(s.cache.path(), "acme/tiny", &commit, "model.safetensors").exists());
    assert_eq!(scan_blocking(s.cache.path()).unwrap().repos[0].status, CacheStatus::Complete);

    let none = DownloadRequest { repo: "acme/tiny".into(), include: vec!["*.gguf".into()], ..Default::default() };
    let err = download(&s.downloads, none).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::NotFound);
    assert!(err.message.contains("no file of acme/tiny at main matches"), "{}", err.message);
}

#[tokio::test]
async fn a_revision_can_be_a_branch_or_a_commit() {
    let s = setup().await;
    let old = s.hub.add_repo("acme/tiny", vec![HubFile::new("a.txt", b"v1".to_vec(), false)]);
    let new = s.hub.add_repo("acme/tiny", vec![HubFile::new("a.txt", b"v2".to_vec(), false)]);
    s.hub.set_ref("acme/tiny", "v1.0", &old);
    let req =
        |rev: &str| DownloadRequest { repo: "acme/tiny".into(), revision: Some(rev.into()), ..Default::default() };
    download(&s.downloads, req("v1.0")).await.unwrap();
    download(&s.downloads, req(&new)).await.unwrap();
    let repo = s.cache.path().join("models--acme--tiny");
    assert_eq!(fs::read_to_string(repo.join("refs/v1.0")).unwrap(), old);
    assert!(!repo.join("refs").join(&new).exists(), "a commit needs no ref");
    assert_eq!(fs::read(snapshot(s.cache.path(), "acme/tiny", &old, "a.txt")).unwrap(), b"v1");
    assert_eq!(fs::read(snapshot(s.cache.path(), "acme/tiny", &new, "a.txt")).unwrap(), b"v2");
}

#[tokio::test]
async fn a_flipped_byte_fails_verification_and_leaves_nothing_behind() {
    let s = setup().await;
    let files = model_files();
    let commit = s.hub.add_repo("acme/tiny", files.clone());
    s.hub.fault("model.safetensors", Fault::Flip { offset: 123_456 });
    let err = download(&s.downloads, request("acme/tiny")).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::ChecksumMismatch);
    assert!(err.message.contains("model.safetensors of acme/tiny failed verification"), "{}", err.message);
    assert!(err.message.contains(&files[1].sha256), "names the expected hash: {}", err.message);
    assert!(!snapshot(s.cache.path(), "acme/tiny", &commit, "model.safetensors").exists());
    assert!(!s.cache.path().join("models--acme--tiny/blobs").join(&files[1].sha256).exists());
    assert!(no_partial_files(s.cache.path()));

    // A byte flipped in a small file fails its git sha1.
    s.hub.add_repo("acme/small", vec![HubFile::new("tokenizer.json", b"{\"vocab\":{}}".to_vec(), false)]);
    s.hub.fault("tokenizer.json", Fault::Flip { offset: 3 });
    let err = download(&s.downloads, request("acme/small")).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::ChecksumMismatch);
    assert!(err.message.contains("git-sha1"), "{}", err.message);
}

#[tokio::test]
async fn server_errors_are_retried_and_retry_after_is_honoured() {
    let s = setup().await;
    s.hub.add_repo("acme/tiny", model_files());
    s.hub.fault("model.safetensors", Fault::Status { code: 503, times: 2, retry_after: None });
    s.hub.fault("config.json", Fault::Status { code: 429, times: 1, retry_after: Some(1) });
    let started = Instant::now();
    download(&s.downloads, request("acme/tiny")).await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(950), "waited for Retry-After: {:?}", started.elapsed());
    let statuses: Vec<u16> = s
        .hub
        .requests()
        .iter()
        .filter(|r| r.path.contains("safetensors") && r.host == Host::Cdn)
        .map(|r| r.status)
        .collect();
    assert_eq!(statuses, [503, 503, 200]);
}

#[tokio::test]
async fn a_body_cut_short_resumes_with_range_from_the_bytes_on_disk() {
    let s = setup().await;
    let files = model_files();
    s.hub.add_repo("acme/tiny", files.clone());
    s.hub.fault("model.safetensors", Fault::Cut { after: 100_000, times: 2 });
    download(&s.downloads, request("acme/tiny")).await.unwrap();
    let cdn: Vec<_> = s.hub.requests().into_iter().filter(|r| r.path.contains(&files[1].sha256)).collect();
    let ranges: Vec<_> = cdn.iter().map(|r| r.range.clone()).collect();
    assert_eq!(ranges, [None, Some("bytes=100000-".into()), Some("bytes=200000-".into())]);
    let sent: u64 = cdn.iter().map(|r| r.sent).sum();
    assert_eq!(sent, 300_000, "every byte crossed the wire once");
}

#[tokio::test]
async fn a_stalled_transfer_is_retried() {
    let s = setup().await;
    s.hub.add_repo("acme/tiny", model_files());
    // A stall far longer than the download takes otherwise: waiting it out would show.
    s.hub.fault("onnx/model.onnx", Fault::Stall { after: 50_000, secs: 60, times: 1 });
    let started = Instant::now();
    download(&s.downloads, request("acme/tiny")).await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(40), "did not wait out the stall: {:?}", started.elapsed());
    let ranges: Vec<_> = s
        .hub
        .requests()
        .into_iter()
        .filter(|r| r.path.contains("onnx") || r.host == Host::Cdn)
        .filter_map(|r| r.range)
        .collect();
    assert!(ranges.contains(&"bytes=50000-".to_string()), "{ranges:?}");
}

#[tokio::test]
async fn the_token_goes_to_the_hub_and_never_to_the_cdn() {
    let s = setup_with(Some(TOKEN), DownloadOptions::default()).await;
    s.hub.add_repo("acme/gated", model_files());
    s.hub.gate("acme/gated", TOKEN);
    download(&s.downloads, request("acme/gated")).await.unwrap();
    let log = s.hub.requests();
    let bearer = format!("Bearer {TOKEN}");
    assert!(log.iter().filter(|r| r.host == Host::Hub).all(|r| r.authorization.as_deref() == Some(bearer.as_str())));
    let cdn: Vec<_> = log.iter().filter(|r| r.host == Host::Cdn).collect();
    assert_eq!(cdn.len(), 2);
    assert!(cdn.iter().all(|r| r.authorization.is_none()), "the token leaked to the CDN: {cdn:?}");
}

#[tokio::test]
async fn auth_and_missing_things_fail_fast_with_distinct_errors() {
    let s = setup().await;
    let commit = s.hub.add_repo("acme/gated", model_files());
    s.hub.gate("acme/gated", TOKEN);
    s.hub.add_repo("acme/open", model_files());

    let err = download(&s.downloads, request("acme/gated")).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::Auth);
    assert_eq!(err.message, "acme/gated is gated and needs a token with access: set HF_TOKEN or add one in Settings");

    let wrong = downloads(&s.hub, s.cache.path(), Some("hf_wrong"), DownloadOptions::default());
    let err = download(&wrong, request("acme/gated")).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::Auth);
    assert!(err.message.starts_with("your token has no access to acme/gated"), "{}", err.message);

    let err = download(&s.downloads, request("acme/missing")).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::NotFound);
    assert!(err.message.starts_with("acme/missing was not found on http://127.0.0.1"), "{}", err.message);

    let req = DownloadRequest { repo: "acme/open".into(), revision: Some("nope".into()), ..Default::default() };
    let err = download(&s.downloads, req).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::NotFound);
    assert!(err.message.contains("has no revision \"nope\""), "{}", err.message);

    // Fail fast: one request each, no retries.
    let info_requests = s.hub.requests().iter().filter(|r| r.path.starts_with("/api/")).count();
    assert_eq!(info_requests, 4);

    let err = s.downloads.start(request("not a repo")).unwrap_err();
    assert_eq!(mm_core::error::Coded::code(&err), ErrorCode::InvalidInput);
    assert!(err.to_string().contains("\"not a repo\" is not a valid repo id"));
    assert!(!snapshot(s.cache.path(), "acme/gated", &commit, "config.json").exists());
}

#[tokio::test]
async fn hostile_paths_are_refused_before_any_file_request() {
    for hostile in ["../../escape.txt", "/etc/evil", "a/./b", "a//b", "a\\b", "sub/../../x"] {
        let s = setup().await;
        s.hub.add_repo("acme/evil", model_files());
        s.hub.list_hostile("acme/evil", hostile, b"pwned".to_vec());
        let err = download(&s.downloads, request("acme/evil")).await.unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidInput, "{hostile}");
        assert!(err.message.contains("unsafe path"), "{}", err.message);
        assert!(s.hub.requests().iter().all(|r| !r.path.contains("/resolve/")), "{hostile}: a file was requested");
        let outside = fake_hub::walk(s.cache.path().parent().unwrap());
        assert!(outside.iter().all(|p| !p.ends_with("escape.txt") && !p.ends_with("x")), "{hostile}");
    }
}

#[tokio::test]
async fn a_download_larger_than_the_free_space_is_refused_before_the_first_byte() {
    let s = setup().await;
    s.hub.add_repo("acme/huge", vec![HubFile::new("model.gguf", noise(1000, 3), true).listed_size(1 << 50)]);
    let err = download(&s.downloads, request("acme/huge")).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::InsufficientSpace);
    assert!(
        err.message.starts_with("not enough disk space for acme/huge: it needs 1.13 PB more but"),
        "{}",
        err.message
    );
    assert!(s.hub.requests().iter().all(|r| !r.path.contains("/resolve/")));
}

#[tokio::test]
async fn the_queue_runs_at_most_n_at_once_in_order_and_joins_duplicates() {
    let s = setup_with(None, DownloadOptions { max_concurrent: 1, ..Default::default() }).await;
    s.hub.add_repo("acme/a", vec![HubFile::new("w.bin", noise(200_000, 4), true)]);
    s.hub.add_repo("acme/b", vec![HubFile::new("w.bin", noise(200_000, 5), true)]);
    s.hub.throttle(Some(1_000_000));
    let mut events = s.downloads.subscribe();
    let a = s.downloads.start(request("acme/a")).unwrap();
    let b = s.downloads.start(request("acme/b")).unwrap();
    assert_eq!(s.downloads.start(request("acme/a")).unwrap(), a, "a second request joins the first");
    assert_eq!(s.downloads.progress(b).unwrap().state, DownloadState::Queued);
    s.downloads.wait(a).await.unwrap();
    s.downloads.wait(b).await.unwrap();

    let mut order = Vec::new();
    let mut running = 0i32;
    while let Ok(event) = events.try_recv() {
        if let DownloadEvent::Lifecycle(l) = event {
            match l.kind {
                LifecycleKind::Started => running += 1,
                LifecycleKind::Completed => running -= 1,
                _ => {}
            }
            assert!(running <= 1, "two ran at once");
            order.push((l.kind, l.repo));
        }
    }
    let started: Vec<_> = order.iter().filter(|(k, _)| *k == LifecycleKind::Started).map(|(_, r)| r.as_str()).collect();
    assert_eq!(started, ["acme/a", "acme/b"]);
    assert_eq!(s.downloads.list().len(), 2);
}

#[tokio::test]
async fn progress_is_throttled_monotonic_and_ends_at_the_total() {
    let s = setup().await;
    s.hub.add_repo("acme/slow", vec![HubFile::new("w.bin", noise(1_500_000, 6), true)]);
    s.hub.throttle(Some(1_500_000));
    let mut events = s.downloads.subscribe();
    let started = Instant::now();
    let done = download(&s.downloads, request("acme/slow")).await.unwrap();
    let seconds = started.elapsed().as_secs_f64();
    let mut updates = Vec::new();
    while let Ok(event) = events.try_recv() {
        if let DownloadEvent::Progress(p) = event {
            updates.push(p);
        }
    }
    let moving: Vec<_> = updates.iter().filter(|p| p.state == DownloadState::Downloading).collect();
    assert!(moving.len() as f64 <= seconds * 10.0 + 6.0, "{} updates in {seconds:.1} s", moving.len());
    assert!(moving.len() >= 3, "progress was reported while bytes moved");
    assert!(moving.windows(2).all(|w| w[0].bytes_done <= w[1].bytes_done));
    assert!(moving.iter().any(|p| p.bytes_per_second > 0 && p.eta_seconds.is_some()));
    assert_eq!(done.bytes_done, 1_500_000);
}

#[tokio::test]
async fn pause_keeps_partial_bytes_resume_continues_and_cancel_deletes_them() {
    let s = setup().await;
    let file = HubFile::new("w.bin", noise(2_000_000, 7), true);
    s.hub.add_repo("acme/p", vec![file.clone()]);
    s.hub.throttle(Some(2_000_000));
    let partial = s.cache.path().join("models--acme--p/blobs").join(format!("{}.incomplete", file.sha256));

    let id = s.downloads.start(request("acme/p")).unwrap();
    wait_for(|| fs::metadata(&partial).map(|m| m.len() > 200_000).unwrap_or(false)).await;
    s.downloads.pause(id).unwrap();
    wait_for(|| s.downloads.progress(id).unwrap().state == DownloadState::Paused).await;
    let kept = fs::metadata(&partial).unwrap().len();
    assert!(kept > 200_000);

    s.hub.throttle(None);
    s.downloads.resume(id).unwrap();
    s.downloads.wait(id).await.unwrap();
    let ranges: Vec<_> = s.hub.requests().into_iter().filter(|r| r.host == Host::Cdn).map(|r| r.range).collect();
    assert_eq!(ranges.len(), 2);
    let resumed_at: u64 =
        ranges[1].as_ref().unwrap().trim_start_matches("bytes=").trim_end_matches('-').parse().unwrap();
    assert!(resumed_at >= kept, "resumed at {resumed_at}, {kept} were on disk");

    // Resumed at once after a pause (before the transfer has stopped): it goes on, never left paused.
    let quick = HubFile::new("w.bin", noise(2_000_000, 9), true);
    s.hub.add_repo("acme/q", vec![quick.clone()]);
    s.hub.throttle(Some(2_000_000));
    let partial_q = s.cache.path().join("models--acme--q/blobs").join(format!("{}.incomplete", quick.sha256));
    let id = s.downloads.start(request("acme/q")).unwrap();
    wait_for(|| fs::metadata(&partial_q).map(|m| m.len() > 100_000).unwrap_or(false)).await;
    s.downloads.pause(id).unwrap();
    s.downloads.resume(id).unwrap();
    s.hub.throttle(None);
    s.downloads.wait(id).await.unwrap();
    assert_eq!(s.downloads.progress(id).unwrap().state, DownloadState::Completed);

    // Cancel mid-way deletes the partial file.
    let other = HubFile::new("w.bin", noise(2_000_000, 8), true);
    s.hub.add_repo("acme/c", vec![other.clone()]);
    s.hub.throttle(Some(2_000_000));
    let partial = s.cache.path().join("models--acme--c/blobs").join(format!("{}.incomplete", other.sha256));
    let id = s.downloads.start(request("acme/c")).unwrap();
    wait_for(|| fs::metadata(&partial).map(|m| m.len() > 100_000).unwrap_or(false)).await;
    s.downloads.cancel(id).unwrap();
    let err = s.downloads.wait(id).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::Cancelled);
    assert!(!partial.exists(), "cancel removes partial files");
}

async fn wait_for(mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn the_tree_api_is_followed_across_pages() {
    let hub = FakeHub::start().await;
    let files: Vec<_> = (0..5).map(|i| HubFile::new(&format!("f{i}.txt"), vec![i as u8; 10], i % 2 == 0)).collect();
    let commit = hub.add_repo("acme/paged", files.clone());
    hub.tree_page_size(2);
    let client =
        HubClient::new(HubConfig { endpoint: hub.endpoint(), token: None, offline: false, ..HubConfig::default() })
            .unwrap();
    let listed = client.list_tree(&mm_core::cache::RepoId::parse("acme/paged").unwrap(), &commit).await.unwrap();
    assert_eq!(listed.len(), 5);
    for (l, f) in listed.iter().zip(&files) {
        assert_eq!((l.path.as_str(), l.size, l.blob.as_str(), l.lfs), (f.path.as_str(), 10, f.etag(), f.lfs));
    }
    assert_eq!(hub.requests().len(), 3, "three pages");
}

#[tokio::test]
async fn offline_mode_never_touches_the_network() {
    let hub = FakeHub::start().await;
    hub.add_repo("acme/tiny", model_files());
    let cache = tempfile::tempdir().unwrap();
    let config = HubConfig { endpoint: hub.endpoint(), token: None, offline: true, ..HubConfig::default() };
    let d = Downloads::new(HubClient::new(config).unwrap(), cache.path().into(), DownloadOptions::default());
    let err = download(&d, request("acme/tiny")).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::Network);
    assert!(err.message.starts_with("HF_HUB_OFFLINE is set"), "{}", err.message);
    assert!(hub.requests().is_empty());
}

#[tokio::test]
async fn unfinished_downloads_survive_a_restart_paused_and_resume_from_disk() {
    let hub = FakeHub::start().await;
    let file = HubFile::new("w.bin", noise(2_000_000, 9), true);
    hub.add_repo("acme/r", vec![file.clone()]);
    hub.throttle(Some(2_000_000));
    let cache = tempfile::tempdir().unwrap();
    let journal = cache.path().join("app/downloads.json");
    let config = || HubConfig { endpoint: hub.endpoint(), token: None, offline: false, ..HubConfig::default() };
    let partial = cache.path().join("models--acme--r/blobs").join(format!("{}.incomplete", file.sha256));

    let first = Downloads::with_journal(
        HubClient::new(config()).unwrap(),
        cache.path().into(),
        DownloadOptions::default(),
        journal.clone(),
    );
    first.start(request("acme/r")).unwrap();
    wait_for(|| fs::metadata(&partial).map(|m| m.len() > 300_000).unwrap_or(false)).await;
    first.shutdown().await; // the app quits mid-download
    assert_eq!(first.list()[0].state, DownloadState::Paused);
    drop(first);
    let kept = fs::metadata(&partial).unwrap().len();

    hub.throttle(None);
    let second = Downloads::with_journal(
        HubClient::new(config()).unwrap(),
        cache.path().into(),
        DownloadOptions::default(),
        journal.clone(),
    );
    let restored = second.list();
    assert_eq!(restored.len(), 1);
    assert_eq!((restored[0].repo.as_str(), restored[0].state), ("acme/r", DownloadState::Paused));
    second.resume(restored[0].id).unwrap();
    second.wait(restored[0].id).await.unwrap();
    let ranges: Vec<_> = hub.requests().into_iter().filter(|r| r.host == Host::Cdn).filter_map(|r| r.range).collect();
    let resumed_at: u64 = ranges.last().unwrap().trim_start_matches("bytes=").trim_end_matches('-').parse().unwrap();
    assert!(resumed_at >= kept.min(300_000), "resumed at {resumed_at}");
    assert_eq!(fs::read_to_string(&journal).unwrap().trim(), "[]", "finished downloads leave the journal");

    // A corrupt journal is set aside, not fatal.
    fs::write(&journal, "{not json").unwrap();
    let third = Downloads::with_journal(
        HubClient::new(config()).unwrap(),
        cache.path().into(),
        DownloadOptions::default(),
        journal.clone(),
    );
    assert!(third.list().is_empty());
    assert!(journal.with_extension("corrupt").exists());
}

#[tokio::test]
async fn the_bandwidth_limit_is_shared_by_all_transfers_and_changes_at_once() {
    let s = setup().await;
    s.hub.add_repo(
        "acme/a",
        vec![HubFile::new("a.bin", noise(300_000, 21), true), HubFile::new("b.bin", noise(300_000, 22), true)],
    );
    let mut settings = mm_core::settings::Settings { bandwidth_limit: Some(1_000_000), ..Default::default() };
    s.downloads.apply_settings(&settings);
    let started = Instant::now();
    download(&s.downloads, request("acme/a")).await.unwrap();
    let took = started.elapsed();
    // 600 kB at 1 MB/s, both files together: about 0.6 s, never much less.
    assert!(took >= Duration::from_millis(500), "{took:?}");
    // A limit lifted during a download frees it at once: under 100 kB/s, 600 kB would take 6 s. Lifted once the
    // first bytes arrived, the rest comes in far less than the 5 s the old limit would still need.
    settings.bandwidth_limit = Some(100_000);
    s.downloads.apply_settings(&settings);
    s.hub.add_repo("acme/b", vec![HubFile::new("c.bin", noise(600_000, 23), true)]);
    let mut events = s.downloads.subscribe();
    let id = s.downloads.start(request("acme/b")).unwrap();
    loop {
        let event = tokio::time::timeout(Duration::from_secs(30), events.recv()).await.unwrap().unwrap();
        if matches!(event, DownloadEvent::Progress(p) if p.id == id && p.bytes_done > 0) {
            break;
        }
    }
    let before = s.downloads.progress(id).unwrap().bytes_done;
    assert!(before < 300_000, "the limit held the start back: {before} bytes at the first progress");
    settings.bandwidth_limit = None;
    s.downloads.apply_settings(&settings);
    let lifted = Instant::now();
    tokio::time::timeout(Duration::from_secs(60), s.downloads.wait(id)).await.unwrap().unwrap();
    assert!(lifted.elapsed() < Duration::from_secs(3), "the lifted limit still held: {:?}", lifted.elapsed());
}

#[tokio::test]
async fn with_verification_off_sizes_are_still_checked() {
    let s = setup().await;
    s.hub.add_repo("acme/tiny", model_files());
    s.hub.fault("model.safetensors", Fault::Flip { offset: 10 });
    let settings = mm_core::settings::Settings { verify_on_download: false, ..Default::default() };
    s.downloads.apply_settings(&settings);
    download(&s.downloads, request("acme/tiny")).await.expect("the flipped byte goes unnoticed, as asked");
    s.hub.add_repo("acme/huge", vec![HubFile::new("big.bin", noise(1000, 3), true).listed_size(2000)]);
    let err = download(&s.downloads, request("acme/huge")).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::ChecksumMismatch);
    assert!(err.message.contains("should be 2000 bytes but the server sent 1000"), "{}", err.message);
}

#[tokio::test]
async fn a_server_that_keeps_cutting_at_the_same_place_fails_instead_of_looping() {
    let s = setup().await;
    s.hub.add_repo("acme/tiny", model_files());
    // Cut at 100 kB every time: restarts re-send the same prefix, which is no progress.
    s.hub.fault("model.safetensors", Fault::Cut { after: 100_000, times: 1000 });
    s.hub.fault_ignores_range("model.safetensors");
    let err = download(&s.downloads, request("acme/tiny")).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::Network);
    assert!(err.message.contains("model.safetensors of acme/tiny stopped arriving"), "{}", err.message);
}

#[tokio::test]
async fn url_downloads_pause_resume_with_range_and_cancel_deletes_the_partial_file() {
    let hub = FakeHub::start().await;
    let file = HubFile::new("big.gguf", noise(2_000_000, 21), true);
    hub.add_repo("files/u", vec![file.clone()]);
    hub.throttle(Some(2_000_000));
    let (cache, data) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let options = DownloadOptions { models_dir: Some(data.path().join("models")), ..DownloadOptions::default() };
    let d = downloads(&hub, cache.path(), Some(TOKEN), options);
    let source = mm_core::download::url::UrlSource {
        url: format!("{}/{}?file=big.gguf", hub.cdn_base(), file.sha256),
        sha256: Some(file.sha256.clone()),
        name: Some("big.gguf".into()),
        md5: None,
    };
    let part = source.part_path(&data.path().join("models"));
    let request = DownloadRequest { url: Some(source.clone()), ..DownloadRequest::default() };

    let id = d.start(request.clone()).unwrap();
    assert_eq!(d.progress(id).unwrap().repo, "local/big.gguf");
    wait_for(|| fs::metadata(&part).map(|m| m.len() > 200_000).unwrap_or(false)).await;
    d.pause(id).unwrap();
    wait_for(|| d.progress(id).unwrap().state == DownloadState::Paused).await;
    let kept = fs::metadata(&part).unwrap().len();
    hub.throttle(None);
    d.resume(id).unwrap();
    let done = d.wait(id).await.unwrap();
    assert_eq!((done.bytes_done, done.bytes_total, done.files_done), (2_000_000, 2_000_000, 1));
    assert_eq!(fs::read(data.path().join("models/big.gguf")).unwrap(), *file.content);
    assert!(!part.exists());
    let cdn: Vec<_> = hub.requests().into_iter().filter(|r| r.host == Host::Cdn).collect();
    // (The first request asks for byte 0 only: how long the file is, and whether it can come in pieces.)
    let resumed_at: u64 = cdn
        .iter()
        .filter_map(|r| r.range.as_deref()?.strip_prefix("bytes=")?.strip_suffix('-')?.parse().ok())
        .find(|from| *from > 0)
        .expect("a resumed request");
    assert!(resumed_at >= kept, "resumed at {resumed_at}, {kept} were on disk");
    assert!(cdn.iter().all(|r| r.authorization.is_none()), "the hub token never goes to a URL");

    // The same URL again is the same file: nothing is added.
    d.wait(d.start(request).unwrap()).await.unwrap();
    let names: Vec<_> = fs::read_dir(data.path().join("models")).unwrap().flatten().map(|e| e.file_name()).collect();
    assert_eq!(names.len(), 3, "big.gguf, .partial and .model-manager: {names:?}");

    // Cancel mid-way deletes the partial bytes and places nothing.
    let other = HubFile::new("other.gguf", noise(2_000_000, 22), true);
    hub.add_repo("files/v", vec![other.clone()]);
    hub.throttle(Some(2_000_000));
    let source = mm_core::download::url::UrlSource {
        url: format!("{}/{}?file=other.gguf", hub.cdn_base(), other.sha256),
        ..Default::default()
    };
    let part = source.part_path(&data.path().join("models"));
    let id = d.start(DownloadRequest { url: Some(source), ..DownloadRequest::default() }).unwrap();
    wait_for(|| fs::metadata(&part).map(|m| m.len() > 100_000).unwrap_or(false)).await;
    d.cancel(id).unwrap();
    assert_eq!(d.wait(id).await.unwrap_err().code, ErrorCode::Cancelled);
    assert!(!part.exists(), "cancel removes the partial file");
    assert!(!data.path().join("models").join(&other.sha256).exists());
}

/// A file large enough to come in pieces (over 16 MiB).
fn large(path: &str, seed: u64) -> HubFile {
    HubFile::new(path, noise(40 << 20, seed), true)
}

/// The ranges the CDN served, once it has logged every one.
async fn cdn_ranges(hub: &FakeHub) -> Vec<(u64, u64)> {
    hub.cdn_settled().await;
    hub.requests()
        .into_iter()
        .filter(|r| r.host == Host::Cdn && r.status == 206)
        .map(|r| {
            let (a, b) = r.range.as_deref().unwrap().strip_prefix("bytes=").unwrap().split_once('-').unwrap();
            (a.parse().unwrap(), b.parse::<u64>().expect("a closed range") + 1)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_file_comes_in_pieces_over_several_connections_through_one_redirect() {
    let s = setup().await;
    let file = large("model.safetensors", 31);
    s.hub.add_repo("acme/large", vec![file.clone()]);
    // Each connection is held to 8 MB/s, as a CDN far away would: only more connections make it faster.
    s.hub.throttle(Some(8_000_000));
    let done = download(&s.downloads, request("acme/large")).await.unwrap();
    assert_eq!(done.bytes_done, 40 << 20);
    assert!(s.hub.max_cdn_streams() >= 4, "{} connections at most", s.hub.max_cdn_streams());
    // Every byte asked for once, in pieces that tile the file.
    let mut ranges = cdn_ranges(&s.hub).await;
    ranges.sort_unstable();
    assert!(ranges.len() > 4);
    assert_eq!(ranges.first().unwrap().0, 0);
    assert!(ranges.windows(2).all(|w| w[0].1 == w[1].0), "{ranges:?}");
    assert_eq!(ranges.last().unwrap().1, 40 << 20);
    // The hub was asked once for the bytes (besides a HEAD: is it in Xet?): the signed link it redirected to served
    // every piece.
    let resolves = s
        .hub
        .requests()
        .iter()
        .filter(|r| r.host == Host::Hub && r.method == "GET" && r.path.contains("/resolve/"))
        .count();
    assert_eq!(resolves, 1);
    assert!(s.hub.requests().iter().filter(|r| r.host == Host::Cdn).all(|r| r.authorization.is_none()));
    let blob = s.cache.path().join("models--acme--large/blobs").join(&file.sha256);
    assert_eq!(fs::read(&blob).unwrap(), *file.content);
    assert!(fake_hub::walk(s.cache.path()).iter().all(|p| !p.to_string_lossy().contains(".incomplete")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_link_is_resolved_again_and_a_corrupt_piece_is_caught() {
    let s = setup().await;
    let file = large("model.safetensors", 32);
    s.hub.add_repo("acme/large", vec![file.clone()]);
    s.hub.expire_links_after(Some(3));
    download(&s.downloads, request("acme/large")).await.unwrap();
    let log = s.hub.requests();
    assert!(log.iter().any(|r| r.host == Host::Cdn && r.status == 403), "links expired");
    let resolves =
        log.iter().filter(|r| r.host == Host::Hub && r.method == "GET" && r.path.contains("/resolve/")).count();
    assert!(resolves > 1, "the file was resolved again after its link expired");
    let blob = s.cache.path().join("models--acme--large/blobs").join(&file.sha256);
    assert_eq!(fs::read(&blob).unwrap(), *file.content);

    // One flipped byte in the middle of one piece: the sha256 of the whole refuses the file.
    s.hub.expire_links_after(None);
    let other = large("other.safetensors", 33);
    s.hub.add_repo("acme/corrupt", vec![other.clone()]);
    s.hub.fault("other.safetensors", Fault::Flip { offset: 25 << 20 });
    let err = download(&s.downloads, request("acme/corrupt")).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::ChecksumMismatch, "{}", err.message);
    let dir = s.cache.path().join("models--acme--corrupt/blobs");
    assert!(fs::read_dir(&dir).unwrap().next().is_none(), "nothing of it is left");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_answers_ranges_with_the_whole_file_gets_one_stream() {
    let s = setup().await;
    let file = large("model.safetensors", 34);
    s.hub.add_repo("acme/large", vec![file.clone()]);
    s.hub.fault_ignores_range("model.safetensors");
    download(&s.downloads, request("acme/large")).await.unwrap();
    let blob = s.cache.path().join("models--acme--large/blobs").join(&file.sha256);
    assert_eq!(fs::read(&blob).unwrap(), *file.content);
    let whole = s.hub.requests().iter().filter(|r| r.host == Host::Cdn && r.status == 200).count();
    assert!(whole >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_url_comes_in_pieces_after_one_byte_tells_its_length() {
    let hub = FakeHub::start().await;
    let file = large("big.gguf", 35);
    hub.add_repo("files/u", vec![file.clone()]);
    let (cache, data) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let options = DownloadOptions { models_dir: Some(data.path().join("models")), ..DownloadOptions::default() };
    let d = downloads(&hub, cache.path(), None, options);
    let source = mm_core::download::url::UrlSource {
        url: format!("{}/{}?file=big.gguf", hub.cdn_base(), file.sha256),
        sha256: Some(file.sha256.clone()),
        name: Some("big.gguf".into()),
        ..Default::default()
    };
    let done = d.wait(d.start(DownloadRequest { url: Some(source), ..Default::default() }).unwrap()).await.unwrap();
    assert_eq!((done.bytes_done, done.bytes_total), (40 << 20, 40 << 20));
    assert_eq!(hub.requests()[0].range.as_deref(), Some("bytes=0-0"));
    assert!(cdn_ranges(&hub).await.len() > 4);
    assert_eq!(fs::read(data.path().join("models/big.gguf")).unwrap(), *file.content);
}

/// A repo stored in the fake hub's local Xet CAS: a config (not in Xet) and two weights files.
async fn xet_repo(hub: &FakeHub, repo: &str) -> Vec<HubFile> {
    let files = vec![
        HubFile::new("config.json", br#"{"model_type":"llama"}"#.to_vec(), false),
        HubFile::new("model.safetensors", noise(3_000_000, 41), true),
        HubFile::new("other.safetensors", noise(1_000_000, 42), true),
    ];
    hub.add_xet_repo(repo, files.clone()).await;
    files
}

fn blob(cache: &Path, repo: &str, file: &HubFile) -> Vec<u8> {
    fs::read(cache.join(format!("models--{}", repo.replace('/', "--"))).join("blobs").join(file.etag())).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xet_backed_files_come_from_the_cas_with_a_token_from_the_hub_and_are_verified() {
    let s = setup_with(Some(TOKEN), DownloadOptions::default()).await;
    let files = xet_repo(&s.hub, "acme/xet").await;
    s.hub.gate("acme/xet", TOKEN);
    let done = download(&s.downloads, request("acme/xet")).await.unwrap();
    assert_eq!(done.transport.as_deref(), Some("Xet; HTTP"), "weights over Xet, the config over HTTP");
    for file in &files {
        assert_eq!(blob(s.cache.path(), "acme/xet", file), *file.content);
    }
    let log = s.hub.requests();
    // No weights went over the CDN; the read token was asked of the hub, with the hub token.
    assert!(log.iter().all(|r| r.host == Host::Hub), "{log:?}");
    let tokens: Vec<_> = log.iter().filter(|r| r.path.contains("/xet-read-token/")).collect();
    assert_eq!(tokens.len(), 2, "one read token per file");
    assert!(tokens.iter().all(|r| r.authorization.as_deref() == Some(&format!("Bearer {TOKEN}")[..])));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_xet_read_token_about_to_expire_is_refreshed_from_the_hub() {
    let s = setup_with(Some(TOKEN), DownloadOptions::default()).await;
    let files = xet_repo(&s.hub, "acme/xet").await;
    s.hub.gate("acme/xet", TOKEN);
    // The engine refreshes a token 30 s before it expires: one of 20 s is refreshed before its first use.
    s.hub.xet_token_ttl(20);
    let done = download(&s.downloads, request("acme/xet")).await.unwrap();
    assert_eq!(done.transport.as_deref(), Some("Xet; HTTP"));
    assert_eq!(blob(s.cache.path(), "acme/xet", &files[1]), *files[1].content);
    let tokens: Vec<_> = s.hub.requests().into_iter().filter(|r| r.path.contains("/xet-read-token/")).collect();
    assert!(tokens.len() > 2, "refreshed: {} token requests", tokens.len());
    assert!(tokens.iter().all(|r| r.authorization.as_deref() == Some(&format!("Bearer {TOKEN}")[..])));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_cas_or_a_reconstruction_of_another_length_falls_back_to_http_and_says_so() {
    let s = setup().await;
    let files = xet_repo(&s.hub, "acme/xet").await;
    s.hub.xet_cas_url("http://127.0.0.1:9");
    let done = download(&s.downloads, request("acme/xet")).await.unwrap();
    let transport = done.transport.unwrap();
    assert!(transport.starts_with("HTTP; HTTP, as Xet failed: "), "{transport}");
    assert!(!transport.contains("Xet;"), "{transport}");
    assert_eq!(blob(s.cache.path(), "acme/xet", &files[1]), *files[1].content);

    // The hub names, for one file, a Xet file of another length than it lists.
    let s = setup().await;
    let files = xet_repo(&s.hub, "acme/xet").await;
    let other = s.hub.xet_hash_of("acme/xet", "other.safetensors").unwrap();
    s.hub.set_xet_hash("acme/xet", "model.safetensors", &other);
    let done = download(&s.downloads, request("acme/xet")).await.unwrap();
    let transport = done.transport.unwrap();
    assert!(
        transport.contains("HTTP, as Xet failed: the Xet CAS stopped after 1000000 of 3000000 bytes"),
        "{transport}"
    );
    assert_eq!(blob(s.cache.path(), "acme/xet", &files[1]), *files[1].content);

    // Only the weights (nothing else of the repo made its folders first).
    let s = setup().await;
    let files = xet_repo(&s.hub, "acme/xet").await;
    let only = DownloadRequest { include: vec!["model.*".into()], ..request("acme/xet") };
    assert_eq!(download(&s.downloads, only).await.unwrap().transport.as_deref(), Some("Xet"));
    assert_eq!(blob(s.cache.path(), "acme/xet", &files[1]), *files[1].content);

    // Xet off (the setting, or HF_HUB_DISABLE_XET): plain HTTP, no token asked.
    let s = setup_with(None, DownloadOptions { use_xet: false, ..DownloadOptions::default() }).await;
    xet_repo(&s.hub, "acme/xet").await;
    let done = download(&s.downloads, request("acme/xet")).await.unwrap();
    assert_eq!(done.transport.as_deref(), Some("HTTP"));
    assert!(s.hub.requests().iter().all(|r| !r.path.contains("/xet-read-token/")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_file_behind_a_slow_cas_goes_on_over_http_in_pieces() {
    let s = setup_with(None, DownloadOptions::default()).await;
    let weights = HubFile::new("model.safetensors", noise(200_000_000, 43), true);
    s.hub.add_xet_repo("acme/far", vec![weights.clone()]).await;
    // Each connection, to the CAS and to the hub's bridge alike, is held to 2 MB/s.
    s.hub.throttle(Some(2_000_000));
    let done = download(&s.downloads, request("acme/far")).await.unwrap();
    let transport = done.transport.unwrap();
    assert!(transport.contains("HTTP in pieces, as Xet was slow: "), "{transport}");
    assert_eq!(blob(s.cache.path(), "acme/far", &weights), *weights.content);
    assert_eq!(done.bytes_done, 200_000_000, "every byte counted once");
    // Pieces went to the bridge beside what the CAS gave: several connections at once.
    let ranged = s.hub.requests().into_iter().filter(|r| r.range.is_some() && r.path.contains("model")).count();
    assert!(ranged > 4, "{ranged} ranged requests");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_xet_download_resumes_from_the_bytes_on_disk() {
    let s = setup().await;
    let files = xet_repo(&s.hub, "acme/xet").await;
    let weights = &files[1];
    // What a cut or a kill leaves: the first bytes, right.
    let blobs = s.cache.path().join("models--acme--xet/blobs");
    fs::create_dir_all(&blobs).unwrap();
    let partial = blobs.join(format!("{}.incomplete", weights.sha256));
    fs::write(&partial, &weights.content[..1_234_567]).unwrap();
    let done = download(&s.downloads, request("acme/xet")).await.unwrap();
    assert_eq!(done.transport.as_deref(), Some("Xet; HTTP"));
    assert_eq!(blob(s.cache.path(), "acme/xet", weights), *weights.content, "the rest came from byte 1234567 on");

    // Bytes on disk that are not the file's beginning are caught by the sha256 of the whole.
    let s = setup().await;
    let files = xet_repo(&s.hub, "acme/xet").await;
    let blobs = s.cache.path().join("models--acme--xet/blobs");
    fs::create_dir_all(&blobs).unwrap();
    fs::write(blobs.join(format!("{}.incomplete", files[1].sha256)), vec![0u8; 1000]).unwrap();
    let err = download(&s.downloads, request("acme/xet")).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::ChecksumMismatch);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cas_connection_cut_mid_file_does_not_lose_the_download() {
    let s =
        setup_with(None, DownloadOptions { stall_timeout: Duration::from_secs(5), ..DownloadOptions::default() }).await;
    let files = xet_repo(&s.hub, "acme/xet").await;
    // The first answer that carries the weights' bytes is cut after 256 KiB.
    s.hub.cut_cas(256 * 1024, 1);
    let done = download(&s.downloads, request("acme/xet")).await.unwrap();
    assert_eq!(s.hub.cas_cuts(), 1, "the CAS connection was cut");
    // The engine fetches the cut range again, or the file continues over HTTP from the bytes on disk: either way
    // it is whole and verified.
    let transport = done.transport.unwrap();
    assert!(transport.contains("Xet") || transport.contains("as Xet failed"), "{transport}");
    for file in &files {
        assert_eq!(blob(s.cache.path(), "acme/xet", file), *file.content);
    }
}
