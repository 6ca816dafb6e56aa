//! The library on real cache folders: what the list says of each model, delete that keeps shared blobs,
//! verify and repair against the fake hub, and storage with its clean-up.

use fake_hub::{noise, FakeHub, Fault, Host, HubFile};
use mm_core::cache::write::{link_snapshot, write_ref};
use mm_core::download::{DownloadOptions, DownloadProgress, DownloadRequest, DownloadState, Downloads};
use mm_core::error::Coded;
use mm_core::hub::{HubClient, HubConfig};
use mm_core::library::verify::FileStatus;
use mm_core::library::{
    delete, list, storage, verify, LibraryQuery, ModelFormat, ModelSource, ModelStatus, ModelType, SortKey, TypeOrigin,
};
use mm_core::settings::{ActiveModel, Settings};
use mm_core::ErrorCode;
use sha2::Digest;
use std::fs;
use std::path::Path;

const C1: &str = "1111111111111111111111111111111111111111";
const C2: &str = "2222222222222222222222222222222222222222";

fn sha256(content: &[u8]) -> String {
    sha2::Sha256::digest(content).iter().map(|b| format!("{b:02x}")).collect()
}

/// Places `content` as a blob named by its sha256 and links it, as a download would.
fn put(cache: &Path, repo: &str, commit: &str, path: &str, content: &[u8]) -> String {
    let dir = cache.join(format!("models--{}", repo.replace('/', "--")));
    let blob = sha256(content);
    fs::create_dir_all(dir.join("blobs")).unwrap();
    fs::write(dir.join("blobs").join(&blob), content).unwrap();
    link_snapshot(&dir, commit, path, &blob).unwrap();
    blob
}

fn main_ref(cache: &Path, repo: &str, commit: &str) {
    write_ref(&cache.join(format!("models--{}", repo.replace('/', "--"))), "main", commit).unwrap();
}

fn model<'a>(models: &'a [mm_core::library::LibraryModel], id: &str) -> &'a mm_core::library::LibraryModel {
    models.iter().find(|m| m.id == id).unwrap_or_else(|| panic!("{id} not listed"))
}

#[test]
fn the_list_infers_types_formats_and_statuses() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path();
    put(cache, "acme/llm", C1, "config.json", br#"{"architectures":["LlamaForCausalLM"]}"#);
    put(cache, "acme/llm", C1, "model.safetensors", &noise(5000, 1));
    main_ref(cache, "acme/llm", C1);
    put(cache, "acme/embed", C1, "modules.json", b"[]");
    put(cache, "acme/embed", C1, "onnx/model.onnx", &noise(3000, 2));
    put(cache, "acme/gguf", C1, "model-Q4_K_M.gguf", &noise(4000, 3));
    // What the hub said, recorded at download time, wins over the files.
    put(cache, "acme/whisper", C1, "model.bin", &noise(2000, 4));
    fs::create_dir_all(cache.join("models--acme--whisper/.model-manager")).unwrap();
    fs::write(
        cache.join("models--acme--whisper/.model-manager/info.json"),
        r#"{"pipelineTag":"automatic-speech-recognition","downloadedAt":1700000000}"#,
    )
    .unwrap();
    // A partial one: a link without its blob.
    put(cache, "acme/half", C1, "a.gguf", b"x");
    link_snapshot(&cache.join("models--acme--half"), C1, "b.gguf", &"f".repeat(64)).unwrap();

    let mut settings = Settings::default();
    settings.model_types.insert("acme/gguf".into(), "embedding".into());
    settings.active.insert(
        "text-generation".into(),
        ActiveModel { id: "acme/llm".into(), revision: C1.into(), activated_at: Some(1_700_000_500) },
    );
    let queue = vec![DownloadProgress {
        id: 7,
        repo: "acme/new".into(),
        revision: "main".into(),
        commit: None,
        state: DownloadState::Downloading,
        bytes_done: 10,
        bytes_total: 100,
        files_done: 0,
        files_total: 2,
        bytes_per_second: 5,
        eta_seconds: Some(18),
        error: None,
        transport: None,
    }];
    let models = list::list(cache, &settings, &queue).unwrap();
    assert_eq!(models.len(), 6);

    let llm = model(&models, "acme/llm");
    assert_eq!(
        (llm.model_type, llm.type_origin, llm.format, llm.status),
        (ModelType::TextGeneration, TypeOrigin::Config, ModelFormat::Safetensors, ModelStatus::Active)
    );
    assert_eq!(
        (llm.revision.as_deref(), llm.commit.as_deref(), llm.files, llm.display_name.as_str()),
        (Some("main"), Some(C1), 2, "llm")
    );
    assert_eq!(llm.architectures, ["LlamaForCausalLM"]);
    let embed = model(&models, "acme/embed");
    assert_eq!(
        (embed.model_type, embed.type_origin, embed.format),
        (ModelType::Embedding, TypeOrigin::Files, ModelFormat::Onnx)
    );
    let gguf = model(&models, "acme/gguf");
    assert_eq!(
        (gguf.model_type, gguf.type_origin, gguf.format),
        (ModelType::Embedding, TypeOrigin::User, ModelFormat::Gguf)
    );
    let whisper = model(&models, "acme/whisper");
    assert_eq!(
        (whisper.model_type, whisper.type_origin, whisper.format),
        (ModelType::AudioToText, TypeOrigin::Hub, ModelFormat::Pytorch)
    );
    assert_eq!(whisper.downloaded_at, Some(1_700_000_000));
    assert_eq!(model(&models, "acme/half").status, ModelStatus::Partial);
    let new = model(&models, "acme/new");
    assert_eq!(
        (new.status, new.download_id, new.source),
        (ModelStatus::Downloading, Some(7), ModelSource::HuggingFace)
    );
}

#[test]
fn queries_filter_and_sort() {
    let tmp = tempfile::tempdir().unwrap();
    put(tmp.path(), "b/small", C1, "m.gguf", &noise(100, 1));
    put(tmp.path(), "a/large", C1, "m.gguf", &noise(900, 2));
    put(tmp.path(), "c/embed", C1, "modules.json", b"[]");
    let models = list::list(tmp.path(), &Settings::default(), &[]).unwrap();
    let ids = |q: LibraryQuery| q.apply(models.clone()).into_iter().map(|m| m.id).collect::<Vec<_>>();
    assert_eq!(ids(LibraryQuery::default()), ["a/large", "b/small", "c/embed"]);
    assert_eq!(
        ids(LibraryQuery { sort: SortKey::Size, descending: true, ..Default::default() }),
        ["a/large", "b/small", "c/embed"]
    );
    assert_eq!(ids(LibraryQuery { sort: SortKey::Size, ..Default::default() }), ["c/embed", "b/small", "a/large"]);
    assert_eq!(ids(LibraryQuery { model_type: Some(ModelType::Embedding), ..Default::default() }), ["c/embed"]);
    assert_eq!(ids(LibraryQuery { text: Some("SMALL".into()), ..Default::default() }), ["b/small"]);
    assert_eq!(ids(LibraryQuery { text: Some("text-gen".into()), ..Default::default() }), ["a/large", "b/small"]);
    assert!(ids(LibraryQuery { status: Some(ModelStatus::Partial), ..Default::default() }).is_empty());
    assert!(ids(LibraryQuery { source: Some(ModelSource::Folder), ..Default::default() }).is_empty());
}

#[test]
fn read_only_library_folders_are_listed_and_protected() {
    let main = tempfile::tempdir().unwrap();
    let shared = tempfile::tempdir().unwrap();
    put(shared.path(), "team/model", C1, "m.gguf", &noise(100, 1));
    let mut settings = Settings::default();
    settings.library_folders.push(shared.path().display().to_string());
    settings.library_folders.push("/does/not/exist".into());
    let models = list::list(main.path(), &settings, &[]).unwrap();
    assert_eq!(models.len(), 1);
    assert_eq!(models[0].source, ModelSource::Folder);
    let err = delete::delete(main.path(), &settings, &[], "team/model", None, false).unwrap_err();
    assert_eq!(err.code(), ErrorCode::Permission);
    assert!(err.to_string().contains("read-only library folder"), "{err}");
    assert!(shared.path().join("models--team--model").exists());
}

#[test]
fn deleting_a_revision_keeps_blobs_other_revisions_use() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path();
    let shared = noise(10_000, 1);
    let shared_blob = put(cache, "acme/m", C1, "model.gguf", &shared);
    let old_only = put(cache, "acme/m", C1, "old.json", b"old");
    put(cache, "acme/m", C2, "model.gguf", &shared);
    let new_only = put(cache, "acme/m", C2, "new.json", b"new!");
    main_ref(cache, "acme/m", C2);
    write_ref(&cache.join("models--acme--m"), "v1", C1).unwrap();

    let dry = delete::delete(cache, &Settings::default(), &[], "acme/m", Some("v1"), true).unwrap();
    assert_eq!((dry.bytes_freed, dry.blobs_removed, dry.whole_model), (3, 1, false));
    assert!(cache.join("models--acme--m/blobs").join(&old_only).exists(), "a dry run deletes nothing");

    let report = delete::delete(cache, &Settings::default(), &[], "acme/m", Some("v1"), false).unwrap();
    assert_eq!((report.bytes_before, report.bytes_after, report.bytes_freed), (10_007, 10_004, 3));
    assert_eq!(report.commit.as_deref(), Some(C1));
    let repo = cache.join("models--acme--m");
    assert!(!repo.join("snapshots").join(C1).exists());
    assert!(!repo.join("refs/v1").exists(), "the ref to the removed commit goes too");
    assert!(!repo.join("blobs").join(&old_only).exists());
    assert!(repo.join("blobs").join(&shared_blob).exists(), "the shared blob stays");
    assert!(repo.join("blobs").join(&new_only).exists());
    assert_eq!(fs::read(repo.join("snapshots").join(C2).join("model.gguf")).unwrap(), shared);

    let err = delete::delete(cache, &Settings::default(), &[], "acme/m", Some("nope"), false).unwrap_err();
    assert_eq!(err.code(), ErrorCode::NotFound);
    let whole = delete::delete(cache, &Settings::default(), &[], "acme/m", None, false).unwrap();
    assert!(whole.whole_model && whole.bytes_freed == 10_004 && !repo.exists());
    let err = delete::delete(cache, &Settings::default(), &[], "acme/m", None, false).unwrap_err();
    assert_eq!(err.code(), ErrorCode::NotFound);
}

#[test]
fn active_and_downloading_models_are_guarded() {
    let tmp = tempfile::tempdir().unwrap();
    put(tmp.path(), "acme/m", C1, "m.gguf", b"weights");
    main_ref(tmp.path(), "acme/m", C1);
    let mut settings = Settings::default();
    settings.active.insert(
        "text-generation".into(),
        ActiveModel { id: "acme/m".into(), revision: "main".into(), activated_at: None },
    );
    let err = delete::delete(tmp.path(), &settings, &[], "acme/m", None, false).unwrap_err();
    assert_eq!(
        err.to_string(),
        "acme/m is the active text-generation model: activate another one or deactivate it first"
    );
    let busy = DownloadProgress {
        id: 1,
        repo: "acme/m".into(),
        revision: "main".into(),
        commit: None,
        state: DownloadState::Queued,
        bytes_done: 0,
        bytes_total: 0,
        files_done: 0,
        files_total: 0,
        bytes_per_second: 0,
        eta_seconds: None,
        error: None,
        transport: None,
    };
    let err = delete::delete(tmp.path(), &Settings::default(), &[busy], "acme/m", None, false).unwrap_err();
    assert!(err.to_string().contains("is being downloaded"));
    assert!(tmp.path().join("models--acme--m").exists());
}

#[tokio::test]
async fn verify_finds_a_flipped_byte_and_repair_fetches_only_that_file() {
    let hub = FakeHub::start().await;
    let cache = tempfile::tempdir().unwrap();
    let big = HubFile::new("model.safetensors", noise(300_000, 5), true);
    let commit = hub.add_repo(
        "acme/v",
        vec![
            HubFile::new("config.json", b"{}".to_vec(), false),
            big.clone(),
            HubFile::new("other.bin", noise(1000, 6), true),
        ],
    );
    let config = HubConfig { endpoint: hub.endpoint(), token: None, offline: false, ..HubConfig::default() };
    let downloads = Downloads::new(HubClient::new(config).unwrap(), cache.path().into(), DownloadOptions::default());
    let id = downloads.start(DownloadRequest { repo: "acme/v".into(), ..Default::default() }).unwrap();
    downloads.wait(id).await.unwrap();

    let clean = verify::verify(cache.path(), &Settings::default(), "acme/v", None, |_| {}).unwrap();
    assert!(clean.ok);
    assert_eq!(clean.bytes_checked, 301_002);
    assert!(clean.files.iter().all(|f| f.status == FileStatus::Ok));

    // Flip one byte of the big blob on disk.
    let blob = cache.path().join("models--acme--v/blobs").join(&big.sha256);
    let mut bytes = fs::read(&blob).unwrap();
    bytes[12_345] ^= 1;
    fs::write(&blob, bytes).unwrap();
    let mut updates = Vec::new();
    let report =
        verify::verify(cache.path(), &Settings::default(), "acme/v", Some("main"), |p| updates.push(p)).unwrap();
    assert!(!report.ok);
    let bad: Vec<_> = report.bad().map(|f| (f.path.as_str(), f.status)).collect();
    assert_eq!(bad, [("model.safetensors", FileStatus::Corrupt)]);
    assert_eq!(updates.last().unwrap().files_done, 3);

    hub.clear_requests();
    let done = verify::repair(cache.path(), &downloads, &report).await.unwrap().expect("something was repaired");
    assert_eq!(done.state, DownloadState::Completed);
    let fetched: Vec<_> = hub
        .requests()
        .into_iter()
        .filter(|r| r.method == "GET" && (r.host == Host::Cdn || r.path.contains("/resolve/")))
        .map(|r| r.path)
        .collect();
    assert_eq!(fetched.len(), 2, "one resolve and its redirect: {fetched:?}");
    assert!(fetched.iter().all(|p| p.contains("model.safetensors") || p.contains(&big.sha256)));
    assert!(verify::verify(cache.path(), &Settings::default(), "acme/v", None, |_| {}).unwrap().ok);
    assert_eq!(
        fs::read(cache.path().join("models--acme--v/snapshots").join(&commit).join("model.safetensors")).unwrap(),
        *big.content
    );

    // A repair that cannot succeed says why, with the download's code.
    let mut bytes = fs::read(&blob).unwrap();
    bytes[0] ^= 1;
    fs::write(&blob, bytes).unwrap();
    hub.fault("model.safetensors", Fault::Flip { offset: 7 });
    let report = verify::verify(cache.path(), &Settings::default(), "acme/v", None, |_| {}).unwrap();
    let err = verify::repair(cache.path(), &downloads, &report).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::ChecksumMismatch);
    assert!(
        err.to_string().starts_with("repairing acme/v failed: model.safetensors of acme/v failed verification"),
        "{err}"
    );
}

#[test]
fn storage_reports_usage_and_cleans_orphans_and_stale_partials() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path();
    put(cache, "acme/m", C1, "m.gguf", &noise(5000, 1));
    let blobs = cache.join("models--acme--m/blobs");
    fs::write(blobs.join("a".repeat(64)), noise(700, 2)).unwrap(); // an orphan
    let stale = blobs.join(format!("{}.incomplete", "b".repeat(64)));
    fs::write(&stale, noise(300, 3)).unwrap(); // a stale partial: written two days ago, nothing resumes it
    let two_days_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(2 * 24 * 3600);
    fs::File::options().write(true).open(&stale).unwrap().set_modified(two_days_ago).unwrap();
    let fresh = blobs.join(format!("{}.incomplete", "d".repeat(64)));
    fs::write(&fresh, noise(20, 6)).unwrap(); // written today: a download to resume, kept
    let busy = format!("{}.incomplete", "c".repeat(64));
    fs::write(blobs.join(&busy), noise(50, 4)).unwrap(); // a partial someone is writing
    let _held = mm_core::cache::lock::try_lock(cache, "models--acme--m", &"c".repeat(64)).unwrap().unwrap();
    put(cache, "acme/other", C1, "x.bin", &noise(100, 5));

    let report = storage::report(cache).unwrap();
    assert_eq!(report.cache_bytes, 5000 + 700 + 300 + 50 + 20 + 100);
    assert_eq!(
        report.models.iter().map(|m| (m.id.as_str(), m.bytes)).collect::<Vec<_>>(),
        [("acme/m", 6070), ("acme/other", 100)]
    );
    assert_eq!(report.orphan_blobs.len(), 1);
    assert_eq!(report.partial_downloads.len(), 1, "neither the held partial nor today's is loose");
    assert_eq!(report.reclaimable_bytes, 1000);
    assert!(report.disk_total >= report.disk_free && report.disk_free > 0);

    let cleaned = storage::clean(cache, &[]).unwrap();
    assert_eq!((cleaned.files_removed, cleaned.bytes_freed), (2, 1000));
    assert!(blobs.join(&busy).exists() && fresh.exists() && !stale.exists());
    assert_eq!(storage::report(cache).unwrap().reclaimable_bytes, 0);
    assert_eq!(fs::read(cache.join("models--acme--m/snapshots").join(C1).join("m.gguf")).unwrap(), noise(5000, 1));
}

#[test]
fn details_show_revisions_files_hashes_and_the_card() {
    let tmp = tempfile::tempdir().unwrap();
    let blob = put(tmp.path(), "acme/m", C1, "weights/m.gguf", b"weights");
    main_ref(tmp.path(), "acme/m", C1);
    fs::create_dir_all(tmp.path().join("models--acme--m/.model-manager")).unwrap();
    fs::write(
        tmp.path().join("models--acme--m/.model-manager/info.json"),
        r#"{"cardData":{"license":"apache-2.0","language":["en"]}}"#,
    )
    .unwrap();
    let d = list::details(tmp.path(), &Settings::default(), "acme/m").unwrap();
    assert_eq!(d.model.id, "acme/m");
    assert_eq!(d.revisions[0].files[0].path, "weights/m.gguf");
    assert_eq!(d.revisions[0].files[0].blob.as_deref(), Some(blob.as_str()));
    assert_eq!(d.card.unwrap()["license"], "apache-2.0");
    assert_eq!(list::details(tmp.path(), &Settings::default(), "acme/none").unwrap_err().code(), ErrorCode::NotFound);
}
