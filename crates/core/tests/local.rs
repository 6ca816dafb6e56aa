//! Local sources on real files and a real (fake) Ollama server: detection by content and hostile files, imports
//! by reference and by copy with hashing progress and duplicates, library folders' loose files, activation of an
//! imported file, and Ollama's list, streamed pull (with an error mid-stream) and delete.

use fake_hub::gguf_model;
use fake_hub::ollama::FakeOllama;
use mm_core::activation::Activation;
use mm_core::error::Coded;
use mm_core::library::{ModelFormat, ModelSource, ModelStatus, ModelType};
use mm_core::local::{detect, import_paths, ImportOptions, ImportPhase, ImportStatus, LocalError};
use mm_core::ollama::{Ollama, OllamaError};
use mm_core::settings::SettingsStore;
use mm_core::ErrorCode;
use sha2::Digest;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

fn safetensors_bytes() -> Vec<u8> {
    let header = br#"{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}"#;
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(header);
    out.extend([0u8; 16]);
    out
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, bytes).unwrap();
    p
}

/// Runs `f` on a thread of its own and fails if it has not returned within 30 s: a hang, never a slow machine.
fn at_once<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(30)).expect("it returned instead of hanging")
}

#[test]
fn formats_are_told_by_content_not_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cases: Vec<(PathBuf, ModelFormat)> = vec![
        (write(d, "weights.bin", &gguf_model("llama", 2, 4096, 1)), ModelFormat::Gguf),
        (write(d, "model.dat", &safetensors_bytes()), ModelFormat::Safetensors),
        (write(d, "net", &[0x08, 0x07, 0x12, 0x07, b'p', b'y', b't', b'o', b'r', b'c', b'h']), ModelFormat::Onnx),
        (write(d, "ckpt.zip", b"PK\x03\x04\x14\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x10\x00\x00\x00archive/data.pkl"), ModelFormat::Pytorch),
        (write(d, "old.pt", &[0x80, 0x02, b'}', b'q']), ModelFormat::Pytorch),
    ];
    for (path, format) in cases {
        assert_eq!(detect(&path, true).unwrap().format, format, "{}", path.display());
    }
    let gguf = detect(&d.join("weights.bin"), false).unwrap();
    assert_eq!((gguf.architecture.as_deref(), gguf.guessed_type()), (Some("llama"), ModelType::TextGeneration));
    let bert = write(d, "e.gguf", &gguf_model("nomic-bert", 2, 1024, 2));
    assert_eq!(detect(&bert, false).unwrap().guessed_type(), ModelType::Embedding);

    let text = write(d, "notes.gguf", b"just some notes, named like a model");
    let err = detect(&text, true).unwrap_err();
    assert_eq!(err.code(), ErrorCode::InvalidInput);
    assert!(
        err.to_string()
            .ends_with("is not a model: it is not a model file this app knows (GGUF, safetensors, ONNX or PyTorch)"),
        "{err}"
    );
    let zip = write(d, "photos.zip", b"PK\x03\x04\x14\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x07\x00\x00\x00cat.jpg");
    assert!(detect(&zip, true).unwrap_err().to_string().contains("a zip archive, not a PyTorch checkpoint"));
    assert!(detect(&write(d, "empty.gguf", b""), true).unwrap_err().to_string().contains("it is empty"));
}

#[test]
fn hostile_files_get_a_clear_error_and_never_hang() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let good = gguf_model("llama", 2, 4096, 1);
    let truncated = write(d, "cut.gguf", &good[..40]);
    let err = detect(&truncated, true).unwrap_err();
    assert!(matches!(err, LocalError::Invalid { .. }), "{err}");
    assert!(err.to_string().starts_with(&format!("{} is a damaged model file", truncated.display())), "{err}");

    // A header whose last field would end past the file (no tensor data, no padding): refused, not read forever.
    let mut short = b"GGUF".to_vec();
    short.extend(3u32.to_le_bytes());
    short.extend(0u64.to_le_bytes());
    short.extend(1u64.to_le_bytes());
    short.extend((20u64).to_le_bytes());
    short.extend(b"general.architecture");
    short.extend(8u32.to_le_bytes());
    short.extend(5u64.to_le_bytes());
    short.extend(b"llama");
    let short = write(d, "short.gguf", &short);
    let result = at_once(move || detect(&short, true));
    if let Err(e) = &result {
        assert!(matches!(e, LocalError::Invalid { .. }), "{e}");
    }

    // A header that claims 2^60 metadata entries: refused at once, nothing allocated.
    let mut huge = b"GGUF".to_vec();
    huge.extend(3u32.to_le_bytes());
    huge.extend(0u64.to_le_bytes());
    huge.extend((1u64 << 60).to_le_bytes());
    huge.extend([0u8; 64]);
    let huge = write(d, "huge.gguf", &huge);
    assert!(matches!(at_once(move || detect(&huge, true)), Err(LocalError::Invalid { .. })));

    std::os::unix::fs::symlink(d.join("loop-b"), d.join("loop-a")).unwrap();
    std::os::unix::fs::symlink(d.join("loop-a"), d.join("loop-b")).unwrap();
    let err = detect(&d.join("loop-a"), true).unwrap_err();
    assert_eq!(err.code(), ErrorCode::Permission);
    assert!(err.to_string().contains("a symbolic link that loops back on itself"), "{err}");
    std::os::unix::fs::symlink(d.join("gone"), d.join("dangling")).unwrap();
    assert!(detect(&d.join("dangling"), true).unwrap_err().to_string().contains("a symbolic link to nothing"));

    let fifo = d.join("pipe.gguf");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
    // A FIFO is never opened: that would wait for a writer forever.
    let err = at_once(move || detect(&fifo, true)).unwrap_err();
    assert!(err.to_string().contains("it is a named pipe (FIFO), not a file"), "{err}");

    let folder = d.join("no-config");
    std::fs::create_dir(&folder).unwrap();
    assert!(detect(&folder, true).unwrap_err().to_string().contains("a folder without config.json"));
    assert_eq!(detect(&d.join("nope.gguf"), true).unwrap_err().code(), ErrorCode::NotFound);
}

struct Setup {
    _dirs: Vec<tempfile::TempDir>,
    files: PathBuf,
    data: PathBuf,
    store: SettingsStore,
}

fn setup() -> Setup {
    let (files, data) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let store = SettingsStore::new(data.path().join("settings.json"));
    Setup { files: files.path().into(), data: data.path().into(), store, _dirs: vec![files, data] }
}

#[test]
fn a_dropped_batch_is_imported_in_place_with_progress_and_each_problem_reported() {
    let s = setup();
    let model = gguf_model("llama", 4, 3 << 20, 7);
    let gguf = write(&s.files, "tiny-llama.Q4_K_M.gguf", &model);
    let copy = write(&s.files, "copy-of-tiny.gguf", &model);
    let notes = write(&s.files, "README.txt", b"hello");
    let folder = s.files.join("bert-model");
    write(&folder, "config.json", br#"{"architectures":["BertModel"]}"#);
    write(&folder, "model.safetensors", &safetensors_bytes());
    let paths = vec![gguf.clone(), copy, notes, folder.clone(), s.files.join("missing.gguf")];

    let mut seen = Vec::new();
    let outcomes = import_paths(&paths, &ImportOptions::default(), &s.store, &s.data, &CancellationToken::new(), |p| {
        seen.push(p.clone())
    });
    let statuses: Vec<ImportStatus> = outcomes.iter().map(|o| o.status).collect();
    assert_eq!(
        statuses,
        [
            ImportStatus::Imported,
            ImportStatus::Duplicate,
            ImportStatus::Failed,
            ImportStatus::Imported,
            ImportStatus::Failed
        ]
    );
    assert_eq!(outcomes[0].id.as_deref(), Some("local/tiny-llama.Q4_K_M.gguf"));
    assert_eq!(outcomes[1].id.as_deref(), Some("local/tiny-llama.Q4_K_M.gguf"), "names what it duplicates");
    assert!(outcomes[1]
        .error
        .as_ref()
        .unwrap()
        .message
        .contains("is already in the library as local/tiny-llama.Q4_K_M.gguf (same sha256)"));
    assert!(outcomes[2].error.as_ref().unwrap().message.contains("README.txt is not a model"));
    assert_eq!(outcomes[4].error.as_ref().unwrap().code, ErrorCode::NotFound);
    // Hashing reported progress up to the whole file, for the first path of a batch of five.
    let first: Vec<_> = seen.iter().filter(|p| p.index == 1).collect();
    assert_eq!(first.last().unwrap().bytes_done, model.len() as u64);
    assert!(first.iter().all(|p| p.count == 5 && p.bytes_total == model.len() as u64));
    assert!(seen.iter().all(|p| p.phase == ImportPhase::Hashing), "kept in place: read once, to hash");

    let (settings, _) = s.store.load().unwrap();
    let imported = &settings.imports[0];
    assert_eq!(imported.sha256, fake_hub::hex(&sha2::Sha256::digest(&model)));
    assert_eq!((imported.path.as_str(), imported.copied), (gguf.to_str().unwrap(), false));
    let models = mm_core::library::list::list_all(&s.files.join("hf"), &s.data, &settings, &[]).unwrap();
    let ids: Vec<(&str, ModelSource, ModelType, ModelFormat)> =
        models.iter().map(|m| (m.id.as_str(), m.source, m.model_type, m.format)).collect();
    assert_eq!(
        ids,
        [
            ("local/tiny-llama.Q4_K_M.gguf", ModelSource::Imported, ModelType::TextGeneration, ModelFormat::Gguf),
            ("local/bert-model", ModelSource::Imported, ModelType::Other, ModelFormat::Safetensors),
        ]
    );
    assert_eq!(models[0].size, model.len() as u64);

    // The type is the user's to change; a moved file shows as an error that says so.
    mm_core::library::list::set_type(&s.store, "local/bert-model", Some("embedding")).unwrap();
    std::fs::rename(&gguf, s.files.join("moved.gguf")).unwrap();
    let (settings, _) = s.store.load().unwrap();
    let models = mm_core::library::list::list_all(&s.files.join("hf"), &s.data, &settings, &[]).unwrap();
    assert_eq!(models[1].model_type, ModelType::Embedding);
    assert_eq!(models[0].status, ModelStatus::Error);
    assert!(models[0].error.as_ref().unwrap().message.contains("was moved or deleted"));

    // Forgetting a reference leaves the user's file alone.
    mm_core::local::list::delete(&s.store, &s.data, "local/bert-model").unwrap();
    assert!(folder.join("model.safetensors").exists());
    assert_eq!(s.store.load().unwrap().0.imports.len(), 1);
}

#[test]
fn copies_go_into_the_models_folder_and_deleting_one_removes_it() {
    let s = setup();
    let original = write(&s.files, "emb.gguf", &gguf_model("bert", 2, 8192, 3));
    let size = std::fs::metadata(&original).unwrap().len();
    let options = ImportOptions { copy: true, model_type: Some(ModelType::Embedding) };
    let mut seen = Vec::new();
    let outcomes =
        import_paths(std::slice::from_ref(&original), &options, &s.store, &s.data, &CancellationToken::new(), |p| {
            seen.push(p.clone())
        });
    assert_eq!(outcomes[0].status, ImportStatus::Imported, "{:?}", outcomes[0].error);
    let copy = s.data.join("models/emb.gguf");
    assert_eq!(std::fs::read(&copy).unwrap(), std::fs::read(&original).unwrap());
    // One pass: the file is hashed while it is copied, and the progress says copying, up to the whole file.
    assert!(seen.iter().all(|p| p.phase == ImportPhase::Copying && p.bytes_total == size), "{seen:?}");
    assert_eq!(seen.last().unwrap().bytes_done, size);
    let models_dir = |s: &Setup| -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(s.data.join("models"))
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().to_string())
            .collect();
        names.sort();
        names
    };
    assert_eq!(models_dir(&s), ["emb.gguf"]);

    // The same bytes under another name: a duplicate, whose copy is removed before anyone sees it.
    let again = write(&s.files, "emb-again.gguf", &std::fs::read(&original).unwrap());
    let outcomes =
        import_paths(std::slice::from_ref(&again), &options, &s.store, &s.data, &CancellationToken::new(), |_| {});
    assert_eq!(outcomes[0].status, ImportStatus::Duplicate);
    assert_eq!(models_dir(&s), ["emb.gguf"]);

    // A folder: its weights are hashed, then the whole tree is copied with progress over every byte; a dangling
    // link is skipped, nothing is visible until the copy is complete.
    let folder = s.files.join("bert");
    let (config, vocab) = (br#"{"architectures":["BertModel"]}"#, b"[PAD]\n[UNK]\n");
    write(&folder, "config.json", config);
    write(&folder, "model.safetensors", &safetensors_bytes());
    write(&folder.join("tokenizer"), "vocab.txt", vocab);
    std::os::unix::fs::symlink(folder.join("gone"), folder.join("dangling")).unwrap();
    let mut seen = Vec::new();
    let outcomes =
        import_paths(std::slice::from_ref(&folder), &options, &s.store, &s.data, &CancellationToken::new(), |p| {
            seen.push(p.clone())
        });
    assert_eq!(outcomes[0].status, ImportStatus::Imported, "{:?}", outcomes[0].error);
    let phases: Vec<ImportPhase> = seen.iter().map(|p| p.phase).collect();
    let switch = phases.iter().position(|p| *p == ImportPhase::Copying).expect("a copying phase");
    assert!(phases[..switch].iter().all(|p| *p == ImportPhase::Hashing) && switch > 0, "{phases:?}");
    let tree = (safetensors_bytes().len() + config.len() + vocab.len()) as u64;
    assert_eq!((seen.last().unwrap().bytes_done, seen.last().unwrap().bytes_total), (tree, tree));
    assert_eq!(std::fs::read(s.data.join("models/bert/tokenizer/vocab.txt")).unwrap(), vocab);
    assert!(!s.data.join("models/bert/dangling").exists());
    assert_eq!(models_dir(&s), ["bert", "emb.gguf"]);
    mm_core::local::list::delete(&s.store, &s.data, "local/bert").unwrap();

    // What a crashed import left (untouched for two days) is swept by the next copy; one in progress is not.
    let old = write(&s.data.join("models"), ".gone.gguf.1-0.copying", b"half");
    let two_days = std::time::SystemTime::now() - Duration::from_secs(2 * 24 * 3600);
    std::fs::File::options().write(true).open(&old).unwrap().set_modified(two_days).unwrap();
    write(&s.data.join("models"), ".busy.gguf.2-0.copying", b"half");
    let other = write(&s.files, "other.gguf", &gguf_model("llama", 2, 4096, 9));
    let outcomes =
        import_paths(std::slice::from_ref(&other), &options, &s.store, &s.data, &CancellationToken::new(), |_| {});
    assert_eq!(outcomes[0].status, ImportStatus::Imported);
    assert_eq!(models_dir(&s), [".busy.gguf.2-0.copying", "emb.gguf", "other.gguf"]);
    let (settings, _) = s.store.load().unwrap();
    let m = mm_core::local::list::find(&settings, &s.data, "local/emb.gguf").unwrap();
    assert_eq!((m.model.model_type, m.owned), (ModelType::Embedding, true));

    // Activation points the type's link at the file itself.
    let activation = Activation { cache_dir: s.files.join("hf"), data_dir: s.data.clone(), store: s.store.clone() };
    let (entry, _) = activation.activate("local/emb.gguf", None, None).unwrap();
    assert_eq!(entry.model_type, ModelType::Embedding);
    assert_eq!(std::fs::read_link(s.data.join("active/embedding")).unwrap(), copy);
    assert_eq!(entry.primary_file.as_deref(), Some(copy.to_str().unwrap()));

    // Active, it is not deleted from under active.json; once deactivated, it is.
    let err = mm_core::local::list::delete(&s.store, &s.data, "local/emb.gguf").unwrap_err();
    assert_eq!(
        err.to_string(),
        "local/emb.gguf is the active embedding model: activate another one or deactivate it first"
    );
    assert!(copy.exists());
    activation.deactivate(ModelType::Embedding).unwrap();
    mm_core::local::list::delete(&s.store, &s.data, "local/emb.gguf").unwrap();
    assert!(!copy.exists() && original.exists());
}

#[test]
fn a_cancelled_import_stops_the_copy_removes_it_and_skips_the_rest() {
    let s = setup();
    // Big enough to be read in several chunks, so the cancel lands mid-copy.
    let big = write(&s.files, "big.gguf", &gguf_model("llama", 2, 12 << 20, 4));
    let small = write(&s.files, "small.gguf", &gguf_model("llama", 2, 4096, 5));
    let options = ImportOptions { copy: true, model_type: None };
    let cancel = CancellationToken::new();
    let mut calls = 0;
    let outcomes = import_paths(&[big, small], &options, &s.store, &s.data, &cancel, |p| {
        calls += 1;
        assert_eq!(p.index, 1, "the second path never starts");
        cancel.cancel(); // as the window's Cancel does, from another thread, while bytes move
    });
    assert!(calls >= 1);
    let statuses: Vec<ImportStatus> = outcomes.iter().map(|o| o.status).collect();
    assert_eq!(statuses, [ImportStatus::Cancelled, ImportStatus::Cancelled]);
    let error = outcomes[0].error.as_ref().unwrap();
    assert_eq!(error.code, ErrorCode::Cancelled);
    assert!(error.message.contains("big.gguf was cancelled: nothing of it was added"), "{}", error.message);
    let left: Vec<_> = std::fs::read_dir(s.data.join("models")).unwrap().flatten().map(|e| e.file_name()).collect();
    assert!(left.is_empty(), "the partial copy is gone: {left:?}");
    assert!(s.store.load().unwrap().0.imports.is_empty());
}

#[test]
fn library_folders_list_loose_model_files_read_only() {
    let s = setup();
    // An LM Studio folder: publisher/repo/file.gguf, plus things that are not models.
    let lms = s.files.join("lmstudio-models");
    write(&lms, "bartowski/Qwen-GGUF/qwen.Q4_K_M.gguf", &gguf_model("qwen2", 2, 4096, 5));
    write(&lms, "bartowski/Qwen-GGUF/notes.bin", b"not a model at all");
    write(&lms, "bartowski/Qwen-GGUF/README.md", b"# hi");
    std::os::unix::fs::symlink(&lms, lms.join("bartowski/loop")).unwrap();
    s.store
        .update(|st| {
            st.library_folders.push(lms.display().to_string());
            Ok(())
        })
        .unwrap();
    let (settings, _) = s.store.load().unwrap();
    let models = mm_core::library::list::list_all(&s.files.join("hf"), &s.data, &settings, &[]).unwrap();
    let ids: Vec<&str> = models.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(ids, ["folder/lmstudio-models/bartowski/Qwen-GGUF/qwen.Q4_K_M.gguf"]);
    assert_eq!(models[0].source, ModelSource::Folder);
    let err = mm_core::local::list::delete(&s.store, &s.data, ids[0]).unwrap_err();
    assert!(err.to_string().contains("read-only"), "{err}");
}

#[tokio::test]
async fn ollama_models_list_pull_with_progress_fail_mid_stream_and_delete() {
    let server = FakeOllama::start().await;
    server.add("llama3.2:1b", 1_300_000_000, "llama");
    server.add("nomic-embed-text:latest", 274_000_000, "nomic-bert");
    let ollama = Ollama::new(&server.host());
    let models = ollama.models(&Default::default()).await;
    let listed: Vec<(&str, ModelType, u64)> = models.iter().map(|m| (m.id.as_str(), m.model_type, m.size)).collect();
    assert_eq!(
        listed,
        [
            ("ollama/llama3.2:1b", ModelType::TextGeneration, 1_300_000_000),
            ("ollama/nomic-embed-text:latest", ModelType::Embedding, 274_000_000)
        ]
    );
    assert_eq!(ollama.available(), Some(true));
    assert_eq!(models[0].downloaded_at, Some(1_782_820_800), "from modified_at");

    let mut lines = Vec::new();
    ollama.pull("qwen2.5:0.5b", |p| lines.push(p.clone()), Default::default()).await.unwrap();
    assert_eq!(lines.first().unwrap().status, "pulling manifest");
    assert_eq!(lines.last().unwrap().status, "success");
    let bytes: Vec<u64> = lines.iter().filter(|p| p.total > 0).map(|p| p.completed).collect();
    assert_eq!(bytes, [1_000_000, 2_000_000, 3_000_000, 4_000_000]);
    assert!(server.names().contains(&"qwen2.5:0.5b".to_string()));

    let mut seen = 0;
    let err = ollama.pull("broken-model", |_| seen += 1, Default::default()).await.unwrap_err();
    assert_eq!(err.to_string(), "Ollama could not pull broken-model: max retries exceeded: unexpected EOF");
    assert!(seen >= 2, "progress came before the error");
    let err = ollama.pull("missing/model", |_| {}, Default::default()).await.unwrap_err();
    assert!(matches!(err, OllamaError::NotFound(_)), "{err}");
    assert!(matches!(ollama.pull("../etc", |_| {}, Default::default()).await, Err(OllamaError::InvalidName(_))));

    let blobs = tempfile::tempdir().unwrap();
    server.blobs_dir(blobs.path());
    let file = ollama.model_file("llama3.2:1b").await.unwrap();
    assert_eq!(file, blobs.path().join(FakeOllama::blob_name(1_300_000_000)));
    assert!(matches!(ollama.model_file("nope:1b").await, Err(OllamaError::NotFound(_))));

    // Compatibility reads the GGUF the server names, as for any model on disk; a file not readable from here (a
    // server on another machine) is said so, and the library's badges simply leave that model out.
    let hw = mm_core::compat::hardware::probe(blobs.path());
    let weights = gguf_model("llama", 4, 3 << 20, 11);
    std::fs::write(&file, &weights).unwrap();
    let report = mm_core::compat::local::assess_ollama(&ollama, "llama3.2:1b", None, &hw).await.unwrap();
    assert_eq!(report.model, "ollama/llama3.2:1b");
    let direct = mm_core::compat::local::assess_path(&file, None, &hw).unwrap();
    assert_eq!(report.entries, direct.entries, "the same estimate as the file itself");
    assert_eq!(report.entries[0].requirements.layers, Some(4));
    let err = mm_core::compat::local::assess_ollama(&ollama, "nomic-embed-text:latest", None, &hw).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::Permission);
    assert!(err.to_string().contains("which is not readable from here: Ollama may be on another machine"), "{err}");
    let err = mm_core::compat::local::assess_ollama(&ollama, "nope:1b", None, &hw).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::NotFound, "{err}");
    let models = ollama.models(&Default::default()).await;
    let fits = mm_core::compat::local::ollama_fit(&ollama, &models, &hw).await;
    assert_eq!(fits.keys().collect::<Vec<_>>(), ["ollama/llama3.2:1b"]);
    assert_eq!(fits["ollama/llama3.2:1b"].summary, direct.entries[0].now.summary);

    ollama.delete("llama3.2:1b").await.unwrap();
    assert!(!server.names().contains(&"llama3.2:1b".to_string()));
    assert_eq!(ollama.delete("llama3.2:1b").await.unwrap_err().code(), ErrorCode::NotFound);

    // A server that is not running: nothing listed, no error, and it is known to be down.
    let port = server.host();
    drop(server);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let gone = Ollama::new(&port);
    assert!(gone.models(&Default::default()).await.is_empty());
    assert_eq!(gone.available(), Some(false));
    let err = gone.pull("x", |_| {}, Default::default()).await.unwrap_err();
    assert!(err.to_string().starts_with(&format!("Ollama is not running at http://{port}")), "{err}");

    // A host that takes connections and never answers: the first listing waits for the timeout, the next ones
    // within a while do not wait at all.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let host = silent.local_addr().unwrap().to_string();
    let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = accepted.clone();
    let _hold = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((s, _)) = silent.accept().await {
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            open.push(s);
        }
    });
    let hung = Ollama::new(&host);
    let started = Instant::now();
    assert!(hung.models(&Default::default()).await.is_empty());
    assert!(started.elapsed() >= Duration::from_secs(1), "it did wait the first time");
    let asked = accepted.load(std::sync::atomic::Ordering::SeqCst);
    assert!(asked > 0, "the first listing asked the host");
    assert!(hung.models(&Default::default()).await.is_empty());
    assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), asked, "the second did not ask again");
    assert_eq!(hung.available(), Some(false));
}
