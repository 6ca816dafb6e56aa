//! The client and the server can never drift: a real `mm serve` (the fake hub, a fake Ollama and the real
//! llama-server behind it) is driven through every operation of the core's table by the same `Remote` the window
//! and `mm --remote` use, and its OpenAPI document is walked to show it offers exactly the table's rows and the
//! few routes of its own.
//!
//! The calls are one `match` over an enum the table generates: a new row does not compile here until it is called.

use fake_hub::ollama::FakeOllama;
use fake_hub::{FakeHub, HubFile};
use mm_core::download::{DownloadEvent, DownloadRequest, LifecycleKind};
use mm_core::library::{LibraryQuery, ModelSource, ModelType, SortKey};
use mm_core::operations::*;
use mm_core::remote::Remote;
use mm_core::{ErrorCode, ErrorPayload};
use serde_json::Value;
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::Duration;

mod common;

/// The routes of `mm serve`'s API that are not rows of the table: each guarded as only that face needs.
const OWN_ROUTES: &[(&str, &str)] = &[
    ("get", "/mm/v1/health"),
    ("get", "/mm/v1/events"),
    ("get", "/mm/v1/settings"),
    ("patch", "/mm/v1/settings"),
    ("post", "/mm/v1/imports"),
    ("post", "/mm/v1/imports/cancel"),
];

macro_rules! names {
    ([] $(
        $(#[$meta:meta])*
        $name:ident $method:ident $path:literal $tag:literal
        path[$( $(#[$pmeta:meta])* $p:ident: $pt:ty ),*]
        query[$($q:ident: $qt:ty)?]
        body[$($b:ident: $bt:ty)?]
        progress[$($prt:ty, $event:literal)?]
        answer[$answer:ty] ok[$($ok:literal),+] errors[$($err:literal),*];
    )*) => {
        /// One variant per row.
        #[allow(non_camel_case_types)]
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
        enum Op { $($name),* }
    };
}

mm_core::operations!(names);

/// Every row, in the order this test calls them (a download first, so that the rest have a model to work on).
const ORDER: &[Op] = &[
    Op::preview,
    Op::start,
    Op::downloads,
    Op::download,
    Op::pause,
    Op::resume,
    Op::cancel,
    Op::cancel_repo,
    Op::models,
    Op::model,
    Op::set_type,
    Op::link_adapter,
    Op::pin_model,
    Op::verify,
    Op::compat,
    Op::fit,
    Op::system,
    Op::active,
    Op::activate,
    Op::active_of,
    Op::activate_as,
    Op::load,
    Op::loaded,
    Op::pin,
    Op::set_load_settings,
    Op::load_settings,
    Op::unload,
    Op::deactivate,
    Op::runtimes,
    Op::get_runtime,
    Op::use_runtime,
    Op::rollback_runtime,
    Op::remove_runtime,
    Op::search,
    Op::repo,
    Op::catalog,
    Op::storage,
    Op::move_model,
    Op::stats,
    Op::clean,
    Op::ollama,
    Op::ollama_pull,
    Op::delete,
];

/// The answer, or the machine's domain error `expected`; never a sign that client and server disagree on the
/// route, the path, the query or the body.
fn reached<T>(op: Op, result: Result<T, ErrorPayload>, expected: Option<ErrorCode>) -> Option<T> {
    match result {
        Ok(answer) => {
            assert!(expected.is_none(), "{op:?} succeeded where {expected:?} was expected");
            Some(answer)
        }
        Err(err) => {
            let disagree = ["is not what this endpoint takes", "is not an endpoint of this API", "cannot read"];
            assert!(
                !disagree.iter().any(|d| err.message.contains(d)),
                "{op:?}: the client and server disagree: {err:?}"
            );
            assert_eq!(Some(err.code), expected, "{op:?}: {err:?}");
            None
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_operation_of_the_table_answers_the_remote_client_and_the_document_lists_exactly_them() {
    let (cache, home) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let model = home.path().join("tiny.gguf");
    common::tiny_llama(&model, 1, false);
    let hub = FakeHub::start().await;
    hub.add_repo(
        "acme/tiny",
        vec![
            HubFile::new("config.json", b"{}".to_vec(), false),
            HubFile::new("tiny.gguf", std::fs::read(&model).unwrap(), true),
        ],
    );
    hub.add_llama_cpp_release("b1", &std::fs::read(common::llama_server()).unwrap(), None);
    let ollama = FakeOllama::start().await;
    for (key, value) in [
        ("llamaServer", common::llama_server().to_str().unwrap().to_string()),
        ("llamaCppReleases", hub.releases_url()),
    ] {
        let mut set = common::mm(cache.path(), home.path());
        set.args(["config", "set", key, &value]);
        assert!(common::run(set).await.status.success());
    }
    let mut serve = common::mm(cache.path(), home.path());
    serve.env("HF_ENDPOINT", hub.endpoint()).env("OLLAMA_HOST", ollama.host()).args(["serve", "--json"]);
    let mut child = Serving(serve.stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().unwrap());
    let mut first = String::new();
    BufReader::new(child.0.stdout.take().unwrap()).read_line(&mut first).unwrap();
    let ready: Value = serde_json::from_str(&first).unwrap_or_else(|e| panic!("{e}: {first:?}"));
    let url = ready["listening"].as_str().unwrap().to_string();
    let remote = Remote::new(&url, None).unwrap();

    // The document offers exactly the table's rows (each under its name) and the server's own routes.
    let doc: Value = reqwest::get(format!("{url}/openapi.json")).await.unwrap().json().await.unwrap();
    let mut offered = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            offered.insert((method.clone(), path.clone(), operation["operationId"].as_str().unwrap().to_string()));
        }
    }
    let mut declared: BTreeSet<_> =
        OPERATIONS.iter().map(|o| (o.method.to_string(), o.path.to_string(), o.name.to_string())).collect();
    for (method, path) in OWN_ROUTES {
        let own = offered.iter().find(|(m, p, _)| m == method && p == path).unwrap_or_else(|| panic!("{path}"));
        declared.insert(own.clone());
    }
    assert_eq!(offered, declared);

    // Every row, called once through the client.
    assert_eq!(ORDER.len(), OPERATIONS.len(), "ORDER lists every row once");
    assert_eq!(ORDER.iter().collect::<BTreeSet<_>>().len(), ORDER.len());
    let mut events = remote.subscribe();
    let request = DownloadRequest { repo: "acme/tiny".into(), ..DownloadRequest::default() };
    let mut id = 0;
    let tg = ModelType::TextGeneration;
    for &op in ORDER {
        match op {
            Op::preview => {
                let p = reached(op, remote.preview(request.clone()).await, None).unwrap();
                assert_eq!((p.repo.as_str(), p.files.len()), ("acme/tiny", 2));
            }
            Op::start => {
                let started = reached(op, remote.start(request.clone()).await, None).unwrap();
                id = started.id;
                assert!(!started.joined);
            }
            Op::downloads => assert!(reached(op, remote.downloads().await, None).unwrap().iter().any(|d| d.id == id)),
            Op::download => {
                // Waits for the download to end, as its lifecycle event says.
                let done = tokio::time::timeout(Duration::from_secs(60), async {
                    loop {
                        if let Ok(DownloadEvent::Lifecycle(l)) = events.recv().await {
                            if l.download_id == Some(id) && l.kind == LifecycleKind::Completed {
                                break;
                            }
                        }
                    }
                });
                done.await.expect("the download completes within a minute");
                assert_eq!(reached(op, remote.download(id).await, None).unwrap().bytes_done, 2 + model_size(&model));
            }
            // A finished download has nothing to pause, resume or cancel: the machine found it, and says so.
            Op::pause => drop(reached(op, remote.pause(id).await, Some(ErrorCode::Conflict))),
            Op::resume => drop(reached(op, remote.resume(id).await, Some(ErrorCode::Conflict))),
            Op::cancel => drop(reached(op, remote.cancel(id).await, Some(ErrorCode::Conflict))),
            Op::cancel_repo => {
                let none = reached(op, remote.cancel_repo(CancelRepo { repo: "acme/tiny".into() }).await, None);
                assert_eq!(none.unwrap().cancelled, Vec::<u64>::new());
            }
            Op::models => {
                let query = LibraryQuery {
                    model_type: Some(tg),
                    source: Some(ModelSource::HuggingFace),
                    text: Some("tiny".into()),
                    sort: SortKey::Size,
                    descending: true,
                    ..LibraryQuery::default()
                };
                let listed = reached(op, remote.models(query).await, None).unwrap();
                assert_eq!(listed.iter().map(|m| m.id.as_str()).collect::<Vec<_>>(), ["acme/tiny"]);
                let other = LibraryQuery { model_type: Some(ModelType::Embedding), ..LibraryQuery::default() };
                assert!(remote.models(other).await.unwrap().is_empty(), "the query travelled");
            }
            Op::model => {
                assert_eq!(reached(op, remote.model("acme/tiny".into()).await, None).unwrap().model.id, "acme/tiny")
            }
            Op::set_type => {
                let change = TypeChange { model_type: Some(ModelType::Embedding) };
                reached(op, remote.set_type("acme/tiny".into(), change).await, None).unwrap();
                let query = LibraryQuery { model_type: Some(ModelType::Embedding), ..LibraryQuery::default() };
                assert_eq!(remote.models(query).await.unwrap().len(), 1, "the type travelled in the body");
                remote.set_type("acme/tiny".into(), TypeChange { model_type: None }).await.unwrap();
            }
            Op::pin_model => {
                reached(op, remote.pin_model("acme/tiny".into(), Pin { pinned: true }).await, None).unwrap();
                let models = remote.models(LibraryQuery::default()).await.unwrap();
                assert!(models.iter().any(|m| m.id == "acme/tiny" && m.pinned), "pinned for storage");
                remote.pin_model("acme/tiny".into(), Pin { pinned: false }).await.unwrap();
                reached(
                    op,
                    remote.pin_model("nobody/nothing".into(), Pin { pinned: true }).await,
                    Some(ErrorCode::NotFound),
                );
            }
            Op::link_adapter => {
                // acme/tiny is a model, not an adapter: the machine says so; an unknown one is not found.
                let link = AdapterLink { base: Some("acme/tiny".into()) };
                reached(op, remote.link_adapter("acme/tiny".into(), link.clone()).await, Some(ErrorCode::InvalidInput));
                reached(op, remote.link_adapter("nobody/nothing".into(), link).await, Some(ErrorCode::NotFound));
            }
            Op::verify => {
                let options = VerifyOptions { revision: Some("main".into()), repair: true };
                let report = reached(op, remote.verify("acme/tiny".into(), options, |_| {}).await, None).unwrap();
                assert!(report.ok && report.repaired.is_empty(), "{report:?}");
            }
            Op::compat => {
                let ask =
                    CompatAsk { target: "acme/tiny".into(), revision: None, context: Some(1024), load_settings: None };
                assert_eq!(reached(op, remote.compat(ask).await, None).unwrap().model, "acme/tiny");
            }
            Op::fit => assert!(reached(op, remote.fit().await, None).unwrap().contains_key("acme/tiny")),
            Op::system => assert!(reached(op, remote.system().await, None).unwrap().ram_total > 0),
            Op::active => assert!(reached(op, remote.active().await, None).unwrap().is_empty()),
            Op::activate => {
                let ask = Activate { id: "acme/tiny".into(), ..Activate::default() };
                assert_eq!(reached(op, remote.activate(ask).await, None).unwrap().model_type, tg);
            }
            Op::active_of => assert_eq!(reached(op, remote.active_of(tg).await, None).unwrap().id, "acme/tiny"),
            Op::activate_as => {
                let ask = Activate { id: "acme/tiny".into(), revision: Some("main".into()), model_type: None };
                let entry = reached(op, remote.activate_as(ModelType::Embedding, ask).await, None).unwrap();
                assert_eq!(entry.model_type, ModelType::Embedding, "the type travelled in the path");
            }
            Op::load => {
                let ask = Load { target: Some("text-generation".into()), context: Some(512), pin: false };
                assert_eq!(reached(op, remote.load(ask).await, None).unwrap().plan.unwrap().context, 512);
            }
            Op::loaded => assert_eq!(reached(op, remote.loaded().await, None).unwrap().len(), 1),
            Op::pin => {
                reached(op, remote.pin("acme/tiny".into(), Pin { pinned: true }).await, None).unwrap();
                assert!(remote.loaded().await.unwrap()[0].pinned, "the loaded model is pinned");
                let unknown = remote.pin("nobody/nothing".into(), Pin { pinned: true }).await;
                reached(op, unknown, Some(ErrorCode::NotFound));
            }
            Op::set_load_settings => {
                let set = mm_core::settings::LoadSettings { parallel: Some(2), top_k: Some(5), ..Default::default() };
                let kept = reached(op, remote.set_load_settings("acme/tiny".into(), set.clone()).await, None);
                assert_eq!(kept.unwrap(), set);
                // Extra runtime arguments can name files and programs: the machine's to change, not the API's.
                let extra = mm_core::settings::LoadSettings { extra_args: vec!["--no-webui".into()], ..set };
                let refused =
                    reached(op, remote.set_load_settings("acme/tiny".into(), extra).await, Some(ErrorCode::Permission));
                assert!(refused.is_none());
                let bad = mm_core::settings::LoadSettings { parallel: Some(0), ..Default::default() };
                reached(op, remote.set_load_settings("acme/tiny".into(), bad).await, Some(ErrorCode::InvalidInput));
                let unknown = remote.set_load_settings("nobody/nothing".into(), Default::default()).await;
                reached(op, unknown, Some(ErrorCode::NotFound));
            }
            Op::load_settings => {
                let kept = reached(op, remote.load_settings("acme/tiny".into()).await, None).unwrap();
                assert_eq!((kept.parallel, kept.top_k), (Some(2), Some(5)));
                remote.set_load_settings("acme/tiny".into(), Default::default()).await.unwrap();
                reached(op, remote.load_settings("nobody/nothing".into()).await, Some(ErrorCode::NotFound));
            }
            Op::unload => assert_eq!(reached(op, remote.unload(Unload { target: None }).await, None).unwrap().len(), 1),
            Op::deactivate => {
                for model_type in [ModelType::Embedding, tg] {
                    reached(op, remote.deactivate(model_type).await, None).unwrap();
                    assert_eq!(remote.active_of(model_type).await.unwrap_err().code, ErrorCode::NotFound);
                }
            }
            Op::runtimes => {
                let runtimes = reached(op, remote.runtimes().await, None).unwrap();
                assert_eq!(runtimes.default.as_deref(), common::llama_server().to_str(), "{runtimes:?}");
            }
            Op::get_runtime => {
                let build = reached(op, remote.get_runtime(GetRuntime::default(), |_| {}).await, None).unwrap();
                assert_eq!(build.name, "b1-cpu");
                assert_eq!(remote.runtimes().await.unwrap().default, Some(build.path));
                // An older release may carry bugs fixed since: pinning one is the machine's own choice.
                let pinned = remote.get_runtime(GetRuntime { release: Some("b1".into()), backend: None }, |_| {}).await;
                reached(op, pinned, Some(ErrorCode::Permission));
            }
            // Which build loads models is the machine owner's to choose (mm runtime use, rollback, the window).
            Op::use_runtime => {
                let refused = remote.use_runtime(UseRuntime { name: "b1-cpu".into() }).await;
                reached(op, refused, Some(ErrorCode::Permission));
            }
            Op::rollback_runtime => drop(reached(op, remote.rollback_runtime().await, Some(ErrorCode::Permission))),
            Op::remove_runtime => {
                // The default is not removed; an unknown build is not found.
                reached(op, remote.remove_runtime("b1-cpu".into()).await, Some(ErrorCode::Conflict));
                reached(op, remote.remove_runtime("b0-cpu".into()).await, Some(ErrorCode::NotFound));
            }
            Op::search => {
                let query = mm_core::discover::SearchQuery { text: "tiny".into(), ..Default::default() };
                let page = reached(op, remote.search(SearchAsk { query, next: None }).await, None).unwrap();
                assert!(page.models.iter().any(|m| m.id == "acme/tiny"), "{page:?}");
            }
            Op::repo => {
                let at = Revision { revision: Some("main".into()) };
                let details = reached(op, remote.repo("acme/tiny".into(), at).await, None).unwrap();
                assert_eq!(details.files.len(), 2);
            }
            Op::catalog => assert!(!reached(op, remote.catalog().await, None).unwrap().entries.is_empty()),
            Op::storage => assert!(reached(op, remote.storage().await, None).unwrap().cache_bytes > 0),
            Op::move_model => {
                // No library folder here: the machine says which folders there are.
                let to = MoveTo { folder: "/tmp/elsewhere".into() };
                reached(op, remote.move_model("acme/tiny".into(), to.clone()).await, Some(ErrorCode::InvalidInput));
                reached(op, remote.move_model("nobody/nothing".into(), to).await, Some(ErrorCode::NotFound));
            }
            Op::stats => {
                let stats = reached(op, remote.stats().await, None).unwrap();
                assert!(stats.models >= 1 && stats.by_source.contains_key("hugging-face"), "{stats:?}");
                assert!(stats.folders.iter().any(|f| f.bytes > 0), "{stats:?}");
            }
            Op::clean => drop(reached(op, remote.clean().await, None).unwrap()),
            Op::ollama => assert!(reached(op, remote.ollama().await, None).unwrap().available),
            Op::ollama_pull => {
                let started = reached(op, remote.ollama_pull(Pull { name: "qwen:0.5b".into() }).await, None).unwrap();
                assert!(started.id != id && !started.joined);
            }
            Op::delete => {
                let options = DeleteOptions { revision: Some("main".into()), dry_run: true };
                let report = reached(op, remote.delete("acme/tiny".into(), options).await, None).unwrap();
                assert!(report.dry_run && report.bytes_freed > 0, "{report:?}");
            }
        }
    }
    unsafe { libc::kill(child.0.id() as i32, libc::SIGTERM) };
    assert!(child.0.wait().unwrap().success(), "mm serve stops cleanly on SIGTERM");
}

/// `mm serve`, killed if the test ends before it stops it.
struct Serving(std::process::Child);

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn model_size(path: &std::path::Path) -> u64 {
    std::fs::metadata(path).unwrap().len()
}
