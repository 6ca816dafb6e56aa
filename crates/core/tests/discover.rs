//! Discover against the fake hub's search API: filters, sorting, pagination, gated entries, an error page,
//! stale searches cancelled, the short cache, offline; repo details with quantisations and a safe card; the
//! starter catalog file.

use fake_hub::{gguf_model, FakeHub, HubFile, RepoMeta};
use mm_core::discover::{catalog, Discover, DiscoverError, SearchQuery, SearchSort};
use mm_core::download::{DownloadOptions, DownloadRequest, Downloads};
use mm_core::error::Coded;
use mm_core::hub::{HubClient, HubConfig, RetryPolicy};
use mm_core::library::ModelType;
use mm_core::ErrorCode;
use std::time::Duration;

fn client(hub: &FakeHub, offline: bool) -> HubClient {
    let retry = RetryPolicy { attempts: 2, base: Duration::from_millis(10), max: Duration::from_millis(20) };
    HubClient::with_retry(HubConfig { endpoint: hub.endpoint(), token: None, offline, ..HubConfig::default() }, retry)
        .unwrap()
}

fn meta(downloads: u64, likes: u64, task: &str, library: &str, date: &str) -> RepoMeta {
    RepoMeta {
        downloads,
        likes,
        trending: likes * 2,
        pipeline_tag: Some(task.into()),
        library_name: Some(library.into()),
        tags: vec![library.into(), "en".into()],
        last_modified: date.into(),
        card_data: None,
    }
}

/// Six repos: llama GGUF ones by two authors, a gated one, an embedding model, a speech model.
async fn hub() -> FakeHub {
    let hub = FakeHub::start().await;
    let small = |name: &str| vec![HubFile::new(name, b"{}".to_vec(), false)];
    let repos = [
        ("acme/tiny-llama-GGUF", meta(500, 10, "text-generation", "gguf", "2026-03-01T00:00:00.000Z")),
        ("acme/big-llama-GGUF", meta(900, 5, "text-generation", "gguf", "2026-01-01T00:00:00.000Z")),
        ("other/llama-chat", meta(100, 50, "text-generation", "transformers", "2026-05-01T00:00:00.000Z")),
        ("meta/llama-gated", meta(5000, 1, "text-generation", "transformers", "2025-01-01T00:00:00.000Z")),
        ("acme/embedder", meta(300, 3, "feature-extraction", "sentence-transformers", "2026-02-01T00:00:00.000Z")),
        ("acme/whisper-small", meta(200, 2, "automatic-speech-recognition", "transformers", "2026-04-01T00:00:00Z")),
    ];
    for (id, m) in repos {
        hub.add_repo(id, small("config.json"));
        hub.set_meta(id, m);
    }
    hub.gate("meta/llama-gated", "hf_secret");
    hub
}

fn ids(page: &mm_core::discover::SearchPage) -> Vec<&str> {
    page.models.iter().map(|m| m.id.as_str()).collect()
}

#[tokio::test]
async fn search_filters_sorts_and_marks_gated_results() {
    let hub = hub().await;
    let cache = tempfile::tempdir().unwrap();
    let d = Discover::new(client(&hub, false), cache.path().to_path_buf());

    let page = d.search(&SearchQuery::text("llama"), None).await.unwrap();
    assert_eq!(ids(&page), ["meta/llama-gated", "acme/big-llama-GGUF", "acme/tiny-llama-GGUF", "other/llama-chat"]);
    let gated = &page.models[0];
    assert!(gated.gated && gated.downloads == 5000, "{gated:?}");
    assert_eq!(gated.task.as_deref(), Some("text-generation"));
    assert_eq!(gated.last_modified.as_deref(), Some("2025-01-01T00:00:00.000Z"));
    assert!(page.models[1..].iter().all(|m| !m.gated));
    assert_eq!(page.next, None);

    let gguf = SearchQuery { library: Some("gguf".into()), sort: SearchSort::Likes, ..SearchQuery::text("llama") };
    assert_eq!(ids(&d.search(&gguf, None).await.unwrap()), ["acme/tiny-llama-GGUF", "acme/big-llama-GGUF"]);
    let by_date = SearchQuery { sort: SearchSort::Updated, ..SearchQuery::text("") };
    assert_eq!(ids(&d.search(&by_date, None).await.unwrap())[0], "other/llama-chat");
    let speech = SearchQuery { task: Some("automatic-speech-recognition".into()), ..SearchQuery::default() };
    assert_eq!(ids(&d.search(&speech, None).await.unwrap()), ["acme/whisper-small"]);
    let author = SearchQuery { author: Some("acme".into()), ..SearchQuery::text("llama") };
    assert_eq!(ids(&d.search(&author, None).await.unwrap()).len(), 2);

    // What was sent: the filters, the sort by the hub's name, the fields wanted.
    let sent = hub.requests().into_iter().map(|r| r.path).find(|p| p.contains("filter=gguf")).unwrap();
    assert!(sent.contains("search=llama") && sent.contains("sort=likes") && sent.contains("expand=gated"), "{sent}");
}

#[tokio::test]
async fn pages_follow_the_link_header_to_the_end() {
    let hub = hub().await;
    let cache = tempfile::tempdir().unwrap();
    let d = Discover::new(client(&hub, false), cache.path().to_path_buf());
    let query = SearchQuery { limit: Some(4), ..SearchQuery::default() };
    let first = d.search(&query, None).await.unwrap();
    assert_eq!(first.models.len(), 4);
    let next = first.next.clone().expect("a second page");
    let second = d.search(&query, Some(&next)).await.unwrap();
    assert_eq!(ids(&second), ["acme/whisper-small", "other/llama-chat"]);
    assert_eq!(second.next, None);
    let mut all: Vec<&str> = ids(&first);
    all.extend(ids(&second));
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 6, "no result twice, none lost");

    // A cursor that points off the hub is refused, not followed.
    let err = d.search(&query, Some("http://evil.test/api/models?cursor=1")).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::Network);
    assert!(err.to_string().contains("is not on"), "{err}");
}

#[tokio::test]
async fn answers_are_cached_for_a_short_time_and_settings_changes_drop_them() {
    let hub = hub().await;
    let cache = tempfile::tempdir().unwrap();
    let d = Discover::new(client(&hub, false), cache.path().to_path_buf());
    let q = SearchQuery::text("embed");
    d.search(&q, None).await.unwrap();
    d.search(&q, None).await.unwrap();
    let searches = || hub.requests().iter().filter(|r| r.path.starts_with("/api/models?")).count();
    assert_eq!(searches(), 1, "the second answer came from the cache");
    d.set_hub(client(&hub, false));
    d.search(&q, None).await.unwrap();
    assert_eq!(searches(), 2);
}

#[tokio::test]
async fn a_newer_search_cancels_the_one_in_flight() {
    let hub = hub().await;
    let cache = tempfile::tempdir().unwrap();
    let d = std::sync::Arc::new(Discover::new(client(&hub, false), cache.path().to_path_buf()));
    // The stale search is held at the hub far longer than anything else here takes.
    hub.search_delay(Some(Duration::from_secs(30)));
    let slow = {
        let d = d.clone();
        tokio::spawn(async move { d.search(&SearchQuery::text("ll"), None).await })
    };
    // The fresh one starts once the stale one has reached the hub.
    while hub.searches_arrived() == 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    hub.search_delay(None);
    let started = std::time::Instant::now();
    let fresh = d.search(&SearchQuery::text("llama-chat"), None).await.unwrap();
    assert_eq!(ids(&fresh), ["other/llama-chat"]);
    let stale = slow.await.unwrap().unwrap_err();
    assert!(matches!(stale, DiscoverError::Cancelled), "{stale}");
    assert_eq!(stale.code(), ErrorCode::Cancelled);
    assert!(started.elapsed() < Duration::from_secs(20), "the stale one (held 30 s) did not hold up the fresh one");
}

#[tokio::test]
async fn an_error_page_offline_and_a_dead_hub_each_say_what_happened() {
    let hub = hub().await;
    let cache = tempfile::tempdir().unwrap();
    let d = Discover::new(client(&hub, false), cache.path().to_path_buf());
    hub.fail_search(Some(503));
    let err = d.search(&SearchQuery::text("x"), None).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::Network);
    assert_eq!(
        err.to_string(),
        format!(
            "the hub's model search failed: {} answered 503 Service Unavailable; try again in a moment",
            hub.endpoint()
        )
    );
    let tries = hub.requests().iter().filter(|r| r.path.starts_with("/api/models?")).count();
    assert_eq!(tries, 2, "one quick retry, then the error");

    let offline = Discover::new(client(&hub, true), cache.path().to_path_buf());
    let err = offline.search(&SearchQuery::text("x"), None).await.unwrap_err();
    assert!(matches!(err, DiscoverError::Offline));
    assert!(err.to_string().contains("HF_HUB_OFFLINE is set") && err.to_string().contains("library works offline"));
    assert!(offline.offline());

    let endpoint = hub.endpoint();
    drop(hub);
    let dead = HubClient::with_retry(
        HubConfig { endpoint: endpoint.clone(), token: None, offline: false, ..HubConfig::default() },
        RetryPolicy { attempts: 1, ..RetryPolicy::default() },
    )
    .unwrap();
    let err = Discover::new(dead, cache.path().to_path_buf()).search(&SearchQuery::text("y"), None).await.unwrap_err();
    assert!(err.to_string().starts_with(&format!("the hub at {endpoint} cannot be reached")), "{err}");
}

const CARD: &str = "---\nlicense: apache-2.0\n---\n# Tiny llama\n\n<script>window.pwned = 1</script>\n\n\
                    [Run it](javascript:alert(1)) or read [the guide](docs/guide.md).\n";

#[tokio::test]
async fn details_list_quantisations_sizes_and_a_safe_card_and_know_what_is_installed() {
    let hub = hub().await;
    let q4 = gguf_model("llama", 4, 40_000, 1);
    let q8 = gguf_model("llama", 4, 80_000, 2);
    hub.add_repo(
        "acme/tiny-llama-GGUF",
        vec![
            HubFile::new("README.md", CARD.as_bytes().to_vec(), false),
            HubFile::new("tiny-llama.Q4_K_M.gguf", q4.clone(), true),
            HubFile::new("tiny-llama.Q8_0.gguf", q8.clone(), true),
        ],
    );
    let cache = tempfile::tempdir().unwrap();
    let d = Discover::new(client(&hub, false), cache.path().to_path_buf());
    let details = d.details("acme/tiny-llama-GGUF", None).await.unwrap();
    assert_eq!(details.task.as_deref(), Some("text-generation"));
    assert_eq!(details.library.as_deref(), Some("gguf"));
    let quants: Vec<(&str, u64)> = details.quantisations.iter().map(|q| (q.name.as_str(), q.size)).collect();
    assert_eq!(quants, [("Q4_K_M", q4.len() as u64), ("Q8_0", q8.len() as u64)]);
    assert_eq!(details.total_size, (CARD.len() + q4.len() + q8.len()) as u64);
    let card = details.card_html.as_deref().unwrap();
    assert!(card.contains("<h1>Tiny llama</h1>"), "{card}");
    assert!(!card.contains("<script") && !card.contains("pwned") && !card.contains("javascript"), "{card}");
    let blob = format!("href=\"{}/acme/tiny-llama-GGUF/blob/{}/docs/guide.md\"", hub.endpoint(), details.commit);
    assert!(card.contains(&blob), "{card}");
    assert!(!details.installed && details.files.iter().all(|f| !f.installed));
    assert!(details.disk_free > 0);

    // After downloading one quantisation, that file (and only it) shows as installed.
    let downloads = Downloads::new(client(&hub, false), cache.path().to_path_buf(), DownloadOptions::default());
    let id = downloads
        .start(DownloadRequest {
            repo: "acme/tiny-llama-GGUF".into(),
            files: vec!["tiny-llama.Q4_K_M.gguf".into()],
            ..DownloadRequest::default()
        })
        .unwrap();
    downloads.wait(id).await.unwrap();
    let details = d.details("acme/tiny-llama-GGUF", None).await.unwrap();
    let installed: Vec<&str> = details.files.iter().filter(|f| f.installed).map(|f| f.path.as_str()).collect();
    assert_eq!(installed, ["tiny-llama.Q4_K_M.gguf"]);
    assert!(!details.installed);
    let page = d.search(&SearchQuery::text("tiny-llama"), None).await.unwrap();
    assert!(page.models[0].installed, "a complete snapshot counts as installed");

    let err = d.details("acme/../etc", None).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::InvalidInput);
    let err = d.details("meta/llama-gated", None).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::Auth);
    assert!(err.to_string().contains("needs a token"), "{err}");
}

#[test]
fn the_starter_catalog_file_is_valid_and_covers_every_type() {
    let entries = catalog::parse(catalog::STARTER_CATALOG_JSON).unwrap();
    for t in catalog::CATALOG_TYPES {
        let n = entries.iter().filter(|e| e.model_type == t).count();
        assert!(n >= 2, "{} has {n} entries", t.as_str());
    }
    for e in &entries {
        assert!(mm_core::cache::RepoId::parse(&e.id).is_ok(), "{}", e.id);
        assert!(e.size > 1_000_000, "{} has a size", e.id);
        assert!(e.size < 8_000_000_000, "{} is a starter model, not a big one", e.id);
        assert!(e.license.is_some(), "{} names its licence", e.id);
        assert!(e.purpose.len() <= 120, "{}: purpose fits a line", e.id);
    }
    // The checks bite: a bad id, an unknown type, no size, an escaping path, a repeat.
    let bad = [
        r#"{"entries":[{"id":"a//b","name":"n","type":"embedding","size":1,"purpose":"p"}]}"#,
        r#"{"entries":[{"id":"a/b","name":"n","type":"telepathy","size":1,"purpose":"p"}]}"#,
        r#"{"entries":[{"id":"a/b","name":"n","type":"other","size":1,"purpose":"p"}]}"#,
        r#"{"entries":[{"id":"a/b","name":"n","type":"embedding","size":0,"purpose":"p"}]}"#,
        r#"{"entries":[{"id":"a/b","name":"n","type":"embedding","purpose":"p"}]}"#,
        r#"{"entries":[{"id":"a/b","name":"n","type":"embedding","size":1,"purpose":"p","files":["../x"]}]}"#,
        r#"{"entries":[{"id":"a/b","name":"n","type":"embedding","size":1,"purpose":"p"},
                       {"id":"a/b","name":"n","type":"embedding","size":1,"purpose":"p"}]}"#,
    ];
    for json in bad {
        assert!(catalog::parse(json).is_err(), "{json}");
    }
}

#[tokio::test]
async fn catalog_entries_are_marked_installed_once_their_files_are_cached() {
    let entry = catalog::starter(std::path::Path::new("/nonexistent"), false).entries.remove(0);
    assert_eq!(entry.model_type, ModelType::TextGeneration);
    assert!(!entry.installed);
    let hub = FakeHub::start().await;
    let mut files: Vec<HubFile> =
        entry.files.iter().map(|f| HubFile::new(f, gguf_model("qwen2", 2, 4096, 3), true)).collect();
    files.push(HubFile::new("README.md", b"# card".to_vec(), false));
    hub.add_repo(&entry.id, files);
    let cache = tempfile::tempdir().unwrap();
    let downloads = Downloads::new(client(&hub, false), cache.path().to_path_buf(), DownloadOptions::default());
    downloads.wait(downloads.start(entry.request()).unwrap()).await.unwrap();
    let catalog = catalog::starter(cache.path(), false);
    let marked: Vec<&str> = catalog.entries.iter().filter(|e| e.installed).map(|e| e.id.as_str()).collect();
    assert_eq!(marked, [entry.id.as_str()], "only its files were fetched (not the README), and that is enough");
}
