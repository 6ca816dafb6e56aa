//! Activation rules on real folders: one active model per type, an atomic switch, refusals that change nothing,
//! the link and manifest other programs read, persistence, and marks dropped when a model vanishes from disk.

use mm_core::activation::{read_manifest, Activation};
use mm_core::cache::write::{link_snapshot, write_ref};
use mm_core::download::LifecycleKind;
use mm_core::error::Coded;
use mm_core::library::{ModelFormat, ModelType};
use mm_core::settings::SettingsStore;
use mm_core::ErrorCode;
use sha2::Digest;
use std::fs;
use std::path::Path;

const C1: &str = "1111111111111111111111111111111111111111";
const C2: &str = "2222222222222222222222222222222222222222";

struct Env {
    _tmp: tempfile::TempDir,
    activation: Activation,
}

fn env() -> Env {
    let tmp = tempfile::tempdir().unwrap();
    let activation = Activation {
        cache_dir: tmp.path().join("cache"),
        data_dir: tmp.path().join("data"),
        store: SettingsStore::new(tmp.path().join("data/settings.json")),
    };
    Env { _tmp: tmp, activation }
}

fn put(cache: &Path, repo: &str, commit: &str, path: &str, content: &[u8]) {
    let dir = cache.join(format!("models--{}", repo.replace('/', "--")));
    let blob: String = sha2::Sha256::digest(content).iter().map(|b| format!("{b:02x}")).collect();
    fs::create_dir_all(dir.join("blobs")).unwrap();
    fs::write(dir.join("blobs").join(&blob), content).unwrap();
    link_snapshot(&dir, commit, path, &blob).unwrap();
    write_ref(&dir, "main", commit).unwrap();
}

fn llm(cache: &Path, repo: &str, commit: &str) {
    put(cache, repo, commit, "config.json", br#"{"architectures":["LlamaForCausalLM"]}"#);
    put(cache, repo, commit, "model-q4.gguf", &vec![3u8; 3000]);
}

#[test]
fn activating_links_the_snapshot_and_writes_the_manifest() {
    let e = env();
    let a = &e.activation;
    llm(&a.cache_dir, "acme/llm", C1);
    let (entry, events) = a.activate("acme/llm", None, None).unwrap();
    assert_eq!(
        (entry.model_type, entry.id.as_str(), entry.revision.as_str(), entry.format),
        (ModelType::TextGeneration, "acme/llm", C1, ModelFormat::Gguf)
    );
    assert_eq!(events.iter().map(|e| e.kind).collect::<Vec<_>>(), [LifecycleKind::Activated]);
    let link = a.link_path(ModelType::TextGeneration);
    assert_eq!(fs::read_link(&link).unwrap(), a.cache_dir.join("models--acme--llm/snapshots").join(C1));
    assert_eq!(
        fs::read(link.join("model-q4.gguf")).unwrap(),
        vec![3u8; 3000],
        "other programs read the model through the link"
    );
    assert!(entry.primary_file.unwrap().ends_with("model-q4.gguf"));
    let manifest = read_manifest(&a.data_dir);
    assert_eq!(manifest["text-generation"].id, "acme/llm");
    assert!(
        a.activate("acme/llm", Some(ModelType::Embedding), None).is_ok(),
        "a model may serve another type when the user says so"
    );
    assert_eq!(read_manifest(&a.data_dir).len(), 2);
}

#[test]
fn switching_replaces_the_previous_model_of_that_type_in_one_step() {
    let e = env();
    let a = &e.activation;
    llm(&a.cache_dir, "acme/one", C1);
    llm(&a.cache_dir, "acme/two", C2);
    a.activate("acme/one", None, None).unwrap();
    let (_, events) = a.activate("acme/two", None, None).unwrap();
    let kinds: Vec<_> = events.iter().map(|e| (e.kind, e.repo.as_str())).collect();
    assert_eq!(kinds, [(LifecycleKind::Deactivated, "acme/one"), (LifecycleKind::Activated, "acme/two")]);
    let (settings, _) = a.store.load().unwrap();
    assert_eq!(settings.active.len(), 1);
    assert_eq!(settings.active["text-generation"].id, "acme/two");
    assert!(fs::read_link(a.link_path(ModelType::TextGeneration)).unwrap().ends_with(C2));
}

#[test]
fn incomplete_missing_and_unknown_models_are_refused_and_nothing_changes() {
    let e = env();
    let a = &e.activation;
    llm(&a.cache_dir, "acme/good", C1);
    a.activate("acme/good", None, None).unwrap();
    // A model with a snapshot link whose blob is gone.
    llm(&a.cache_dir, "acme/broken", C2);
    link_snapshot(&a.cache_dir.join("models--acme--broken"), C2, "model-2.gguf", &"f".repeat(64)).unwrap();
    let err = a.activate("acme/broken", None, None).unwrap_err();
    assert_eq!(err.code(), ErrorCode::InvalidInput);
    assert_eq!(err.to_string(), "acme/broken cannot be activated: it is incomplete (1 of its files are missing, e.g. model-2.gguf): finish the download or repair it first");
    let err = a.activate("acme/nowhere", None, None).unwrap_err();
    assert_eq!(err.code(), ErrorCode::NotFound);
    let err = a.activate("acme/good", None, Some("v9")).unwrap_err();
    assert!(err.to_string().contains("has no revision \"v9\""), "{err}");
    assert_eq!(mm_core::activation::parse_type("robot").unwrap_err().code(), ErrorCode::InvalidInput);
    assert_eq!(read_manifest(&a.data_dir)["text-generation"].id, "acme/good", "the active model stayed");
    let err = a.deactivate(ModelType::Embedding).unwrap_err();
    assert_eq!(err.to_string(), "no embedding model is active");
}

#[test]
fn the_choice_survives_a_restart_and_deactivation_removes_the_link() {
    let e = env();
    llm(&e.activation.cache_dir, "acme/llm", C1);
    e.activation.activate("acme/llm", None, None).unwrap();
    let again = Activation {
        cache_dir: e.activation.cache_dir.clone(),
        data_dir: e.activation.data_dir.clone(),
        store: SettingsStore::new(e.activation.store.path().to_path_buf()),
    };
    assert!(again.reconcile().unwrap().is_empty());
    assert_eq!(read_manifest(&again.data_dir)["text-generation"].id, "acme/llm");
    let events = again.deactivate(ModelType::TextGeneration).unwrap();
    assert_eq!(events[0].kind, LifecycleKind::Deactivated);
    assert!(fs::symlink_metadata(again.link_path(ModelType::TextGeneration)).is_err());
    assert!(read_manifest(&again.data_dir).is_empty());
}

#[test]
fn a_model_deleted_outside_the_app_loses_its_mark_at_the_next_scan() {
    let e = env();
    let a = &e.activation;
    llm(&a.cache_dir, "acme/llm", C1);
    a.activate("acme/llm", None, None).unwrap();
    fs::remove_dir_all(a.cache_dir.join("models--acme--llm")).unwrap();
    let events = a.reconcile().unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!((events[0].kind, events[0].repo.as_str()), (LifecycleKind::Deactivated, "acme/llm"));
    assert!(a.store.load().unwrap().0.active.is_empty());
    assert!(fs::symlink_metadata(a.link_path(ModelType::TextGeneration)).is_err());
    assert!(read_manifest(&a.data_dir).is_empty());
}

#[test]
fn concurrent_activations_and_settings_writes_lose_nothing() {
    let e = env();
    let a = e.activation.clone();
    put(&a.cache_dir, "acme/m", C1, "model.gguf", b"weights");
    let types = [ModelType::TextGeneration, ModelType::Embedding, ModelType::Classification, ModelType::Other];
    let handles: Vec<_> = types
        .into_iter()
        .map(|t| {
            let a = a.clone();
            std::thread::spawn(move || {
                for _ in 0..10 {
                    a.activate("acme/m", Some(t), None).unwrap();
                }
            })
        })
        .chain((0..2).map(|i| {
            let store = a.store.clone();
            std::thread::spawn(move || {
                for j in 0..20 {
                    store.update(|s| Ok(s.model_types.insert(format!("x/{i}-{j}"), "other".into()))).unwrap();
                }
            })
        }))
        .collect();
    handles.into_iter().for_each(|h| h.join().unwrap());
    let (settings, _) = a.store.load().unwrap();
    assert_eq!(settings.active.len(), 4);
    assert_eq!(settings.model_types.len(), 40);
    assert_eq!(read_manifest(&a.data_dir).len(), 4);
}
