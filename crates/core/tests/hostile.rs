//! Lying, stalling and hostile servers on loopback, each scripted byte for byte (`fake_hub::raw`): a commit id
//! that is a path, a resume answered with the wrong bytes, a file that changes between attempts, a body cut with
//! no length, a hub that never answers, answers without end, file lists that leave the endpoint, a header read one
//! byte at a time, an Ollama progress line without end. Each names the problem and loses nothing.

use fake_hub::raw::{answer, json, RawReply, RawServer};
use fake_hub::{noise, FakeHub, HubFile};
use mm_core::download::url::UrlSource;
use mm_core::download::{DownloadOptions, DownloadRequest, Downloads};
use mm_core::hub::{HubClient, HubConfig, RetryPolicy};
use mm_core::{ErrorCode, ErrorPayload};
use sha2::Digest;
use std::fs;
use std::path::Path;
use std::time::Duration;

fn fast_retry() -> RetryPolicy {
    RetryPolicy { attempts: 4, base: Duration::from_millis(10), max: Duration::from_millis(50) }
}

fn client(endpoint: &str) -> HubClient {
    let config = HubConfig { endpoint: endpoint.into(), timeout: Duration::from_millis(500), ..HubConfig::default() };
    HubClient::with_retry(config, fast_retry()).unwrap()
}

fn queue(endpoint: &str, cache: &Path, models: &Path) -> Downloads {
    let options = DownloadOptions {
        models_dir: Some(models.to_path_buf()),
        stall_timeout: Duration::from_millis(500),
        ..DownloadOptions::default()
    };
    Downloads::new(client(endpoint), cache.to_path_buf(), options)
}

async fn run(d: &Downloads, request: DownloadRequest) -> Result<mm_core::download::DownloadProgress, ErrorPayload> {
    let id = d.start(request).map_err(|e| mm_core::error::Coded::payload(&e))?;
    tokio::time::timeout(Duration::from_secs(60), d.wait(id)).await.expect("the download ends")
}

fn url_request(url: String, sha256: Option<String>) -> DownloadRequest {
    let source = UrlSource { url, sha256, name: Some("model.gguf".into()), md5: None };
    DownloadRequest { url: Some(source), ..DownloadRequest::default() }
}

fn sha256(bytes: &[u8]) -> String {
    fake_hub::hex(&sha2::Sha256::digest(bytes))
}

/// The whole file with its length and a strong validator.
fn whole(content: &[u8], etag: &str) -> RawReply {
    answer(200, &[("Content-Length", content.len().to_string()), ("ETag", etag.into())], content)
}

/// Says the whole length, then sends only the first `n` bytes and closes: a cut.
fn cut(content: &[u8], n: usize, etag: &str) -> RawReply {
    answer(200, &[("Content-Length", content.len().to_string()), ("ETag", etag.into())], &content[..n])
}

#[tokio::test]
async fn a_commit_id_that_is_a_path_is_refused_before_anything_is_written() {
    let blob = "a".repeat(40);
    let hub = RawServer::start(move |r| {
        if r.target.starts_with("/api/models/acme/m/revision/main") {
            json(
                200,
                &serde_json::json!({
                    "sha": "../../../../somewhere/pwned",
                    "siblings": [{"rfilename": "a.txt", "size": 1, "blobId": blob}],
                }),
            )
        } else {
            answer(404, &[("Content-Length", "0".into())], b"")
        }
    })
    .await;
    let root = tempfile::tempdir().unwrap();
    let cache = root.path().join("a/b/c/cache");
    let d = queue(&hub.url(""), &cache, &root.path().join("models"));
    let err = run(&d, DownloadRequest { repo: "acme/m".into(), ..Default::default() }).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::Network);
    assert!(err.message.contains("is not 40 hexadecimal digits"), "{}", err.message);
    assert!(!root.path().join("a/somewhere").exists() && !root.path().join("somewhere").exists());
    let everything: Vec<_> = fake_hub::walk(root.path());
    assert!(everything.iter().all(|p| !p.to_string_lossy().contains("pwned")), "{everything:?}");
}

#[tokio::test]
async fn a_refused_resume_is_never_taken_for_a_complete_file() {
    let content = noise(1 << 20, 41);
    let served = content.clone();
    let server = RawServer::start(move |r| match (r.index, r.range_start()) {
        (0, _) => cut(&served, 400_000, "\"v1\""),
        // A 416 that does not say the file is what the client has (here: no Content-Range at all).
        (_, Some(_)) => answer(416, &[("Content-Length", "0".into())], b""),
        (_, None) => whole(&served, "\"v1\""),
    })
    .await;
    let tmp = tempfile::tempdir().unwrap();
    let models = tmp.path().join("models");
    let d = queue("http://127.0.0.1:9", tmp.path(), &models);
    let done = run(&d, url_request(server.url("/model.gguf"), None)).await.unwrap();
    assert_eq!(done.bytes_done, 1 << 20);
    assert_eq!(fs::read(models.join("model.gguf")).unwrap(), content, "the whole file, not the 40% before the cut");
}

#[tokio::test]
async fn a_part_from_another_offset_is_never_appended() {
    let content = noise(1 << 20, 42);
    let served = content.clone();
    let server = RawServer::start(move |r| match (r.index, r.range_start()) {
        (0, _) => cut(&served, 400_000, "\"v1\""),
        // Asked for the rest, it sends the file from byte 0 as a 206.
        (_, Some(_)) => answer(
            206,
            &[
                ("Content-Range", format!("bytes 0-{}/{}", served.len() - 1, served.len())),
                ("Content-Length", served.len().to_string()),
                ("ETag", "\"v1\"".into()),
            ],
            &served,
        ),
        (_, None) => whole(&served, "\"v1\""),
    })
    .await;
    let tmp = tempfile::tempdir().unwrap();
    let models = tmp.path().join("models");
    let d = queue("http://127.0.0.1:9", tmp.path(), &models);
    run(&d, url_request(server.url("/model.gguf"), None)).await.unwrap();
    assert_eq!(fs::read(models.join("model.gguf")).unwrap(), content, "not 400 kB + 1 MiB spliced");
}

#[tokio::test]
async fn a_file_that_changed_between_attempts_starts_over_instead_of_being_spliced() {
    let (old, new) = (noise(1 << 20, 43), noise(1 << 20, 44));
    let served_new = new.clone();
    let server = RawServer::start(move |r| match (r.index, r.range_start()) {
        // The first request asks for one byte: the length (too short for pieces) and the version.
        (0, _) => answer(
            206,
            &[
                ("Content-Range", format!("bytes 0-0/{}", old.len())),
                ("Content-Length", "1".into()),
                ("ETag", "\"old\"".into()),
            ],
            &old[..1],
        ),
        (1, _) => cut(&old, 400_000, "\"old\""),
        // A server that ignores If-Range and sends the rest of the new file.
        (_, Some(from)) => answer(
            206,
            &[
                ("Content-Range", format!("bytes {from}-{}/{}", served_new.len() - 1, served_new.len())),
                ("Content-Length", (served_new.len() as u64 - from).to_string()),
                ("ETag", "\"new\"".into()),
            ],
            &served_new[from as usize..],
        ),
        (_, None) => whole(&served_new, "\"new\""),
    })
    .await;
    let tmp = tempfile::tempdir().unwrap();
    let models = tmp.path().join("models");
    let d = queue("http://127.0.0.1:9", tmp.path(), &models);
    run(&d, url_request(server.url("/model.gguf"), None)).await.unwrap();
    assert_eq!(fs::read(models.join("model.gguf")).unwrap(), new, "the new file whole, no old prefix");
    let resume = server.requests().into_iter().find(|r| r.range_start() > Some(0)).expect("a resume was asked");
    assert_eq!(resume.header("if-range"), Some("\"old\""), "the resume names the version it continues");
}

#[tokio::test]
async fn a_body_cut_without_a_length_is_not_a_file_unless_a_checksum_vouches_for_it() {
    let content = noise(600_000, 45);
    let served = content.clone();
    // No Content-Length, not chunked: the end of the body is only the connection closing.
    let server = RawServer::start(move |r| {
        answer(200, &[], if r.target.contains("cut") { &served[..250_000] } else { &served })
    })
    .await;
    let tmp = tempfile::tempdir().unwrap();
    let models = tmp.path().join("models");
    let d = queue("http://127.0.0.1:9", tmp.path(), &models);
    let err = run(&d, url_request(server.url("/cut.gguf"), None)).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::Network);
    assert!(err.message.contains("without saying how long the file is"), "{}", err.message);
    assert!(!models.join("model.gguf").exists());

    let done = run(&d, url_request(server.url("/whole.gguf"), Some(sha256(&content)))).await.unwrap();
    assert_eq!(done.bytes_done, 600_000, "{done:?}");
    assert_eq!(fs::read(models.join("model.gguf")).unwrap(), content);
    let err = run(&d, url_request(server.url("/cut.gguf"), Some(sha256(&content)))).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::ChecksumMismatch, "{}", err.message);
}

#[tokio::test]
async fn two_queues_downloading_one_url_take_turns_on_its_partial_file() {
    let hub = FakeHub::start().await;
    let file = HubFile::new("big.gguf", noise(1_500_000, 46), true);
    hub.add_repo("files/u", vec![file.clone()]);
    hub.throttle(Some(3_000_000));
    let tmp = tempfile::tempdir().unwrap();
    let models = tmp.path().join("models");
    // The app and `mm`: two queues over the same models folder.
    let (a, b) = (queue(&hub.endpoint(), tmp.path(), &models), queue(&hub.endpoint(), tmp.path(), &models));
    let url = format!("{}/{}?file=big.gguf", hub.cdn_base(), file.sha256);
    let (ra, rb) = tokio::join!(run(&a, url_request(url.clone(), None)), run(&b, url_request(url, None)));
    ra.unwrap();
    rb.unwrap();
    assert_eq!(fs::read(models.join("model.gguf")).unwrap(), *file.content);
    assert!(!models.join("2-model.gguf").exists(), "the same content is one file");
}

#[tokio::test]
async fn a_hub_that_never_answers_ends_in_a_network_error_that_says_so() {
    let hub = RawServer::start(|_| RawReply::Hang(Vec::new(), Duration::from_secs(60))).await;
    let repo = mm_core::cache::RepoId::parse("acme/m").unwrap();
    let started = std::time::Instant::now();
    let err = tokio::time::timeout(Duration::from_secs(20), client(&hub.url("")).repo_info(&repo, "main"))
        .await
        .expect("a silent hub is given up on")
        .unwrap_err();
    assert_eq!(mm_core::error::Coded::code(&err), ErrorCode::Network);
    assert!(err.to_string().contains("did not answer for 0.5 s"), "{err}");
    assert_eq!(hub.requests().len(), 4, "every attempt of the retry policy was made");
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[tokio::test]
async fn metadata_answers_past_the_cap_are_refused_without_being_held() {
    let hub = RawServer::start(|r| {
        if r.target.contains("/revision/") {
            // Close-delimited, no length said: 65 MiB of JSON whitespace.
            answer(200, &[], &vec![b' '; (64 << 20) + 1024])
        } else {
            answer(200, &[("Content-Length", "100000000000".into())], b"[]")
        }
    })
    .await;
    let repo = mm_core::cache::RepoId::parse("acme/m").unwrap();
    let c = client(&hub.url(""));
    let err = c.repo_info(&repo, "main").await.unwrap_err();
    assert!(err.to_string().contains("larger than 67108864 bytes"), "{err}");
    let err = c.list_tree(&repo, "main").await.unwrap_err();
    assert!(err.to_string().contains("larger than"), "{err}");
}

#[tokio::test]
async fn a_file_list_whose_next_page_is_on_another_host_is_refused() {
    let hub = RawServer::start(|r| {
        if r.target.contains("/tree/") {
            let body = br#"[{"type":"file","path":"a.txt","size":1,"oid":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}]"#;
            answer(
                200,
                &[
                    ("Content-Length", body.len().to_string()),
                    ("Link", "<http://127.0.0.2:1/api/models/acme/m/tree/main?cursor=x>; rel=\"next\"".into()),
                ],
                body,
            )
        } else {
            answer(404, &[("Content-Length", "0".into())], b"")
        }
    })
    .await;
    let repo = mm_core::cache::RepoId::parse("acme/m").unwrap();
    let err = client(&hub.url("")).list_tree(&repo, "main").await.unwrap_err();
    assert!(err.to_string().contains("its next page is not on"), "{err}");
    assert_eq!(hub.requests().len(), 1);
}

#[tokio::test]
async fn a_header_sent_one_byte_at_a_time_costs_one_request_not_thousands() {
    let hub = RawServer::start(|r| {
        if r.target.starts_with("/api/models/acme/g/revision/") {
            json(
                200,
                &serde_json::json!({
                    "sha": "b".repeat(40),
                    "siblings": [{"rfilename": "m.gguf", "size": 10_000_000, "lfs": {"sha256": "c".repeat(64), "size": 10_000_000}}],
                }),
            )
        } else {
            // Every range, answered with its first byte only.
            let from = r.range_start().unwrap_or(0);
            answer(
                206,
                &[("Content-Range", format!("bytes {from}-{from}/10000000")), ("Content-Length", "1".into())],
                b"G",
            )
        }
    })
    .await;
    let hw = mm_core::compat::hardware::probe(Path::new("/"));
    let cache = tempfile::tempdir().unwrap();
    let err = mm_core::compat::remote::assess_repo(&client(&hub.url("")), cache.path(), "acme/g", None, None, &hw)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("sent 1 of the"), "{err}");
    assert!(hub.requests().len() <= 2, "{} requests", hub.requests().len());
}

#[tokio::test]
async fn an_ollama_progress_line_without_end_is_refused() {
    let ollama = RawServer::start(|_| {
        // A chunked stream of one line that never ends (2 MiB of it, then the server stops).
        let mut body = Vec::new();
        for _ in 0..32 {
            body.extend_from_slice(format!("{:x}\r\n", 64 << 10).as_bytes());
            body.extend(std::iter::repeat_n(b'x', 64 << 10));
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(b"0\r\n\r\n");
        answer(200, &[("Transfer-Encoding", "chunked".into())], &body)
    })
    .await;
    let o = mm_core::ollama::Ollama::new(&ollama.url(""));
    let err = o.pull("llama3.2:1b", |_| {}, tokio_util::sync::CancellationToken::new()).await.unwrap_err();
    assert!(err.to_string().contains("a progress line is longer than"), "{err}");
}

#[tokio::test]
async fn an_ollama_that_never_answers_a_question_is_given_up_on() {
    let ollama = RawServer::start(|_| RawReply::Hang(Vec::new(), Duration::from_secs(60))).await;
    let o = mm_core::ollama::Ollama::new(&ollama.url(""));
    let started = std::time::Instant::now();
    let err = tokio::time::timeout(Duration::from_secs(40), o.model_file("llama3.2:1b"))
        .await
        .expect("a silent Ollama is given up on")
        .unwrap_err();
    assert!(err.to_string().contains("Ollama is not running at"), "{err}");
    let err =
        tokio::time::timeout(Duration::from_secs(40), o.delete("llama3.2:1b")).await.expect("given up on").unwrap_err();
    assert!(err.to_string().contains("timed out") || err.to_string().contains("not running"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(35), "{:?}", started.elapsed());
}
