//! The cache we write is the one `huggingface_hub` reads, and the reverse: its `snapshot_download` (offline) and
//! `scan_cache_dir` accept what `mm download` placed, and `mm download` reuses what it placed. Uses the real
//! Python client that `scripts/setup test` installs into target/py-venv (or MM_TEST_PYTHON).

use fake_hub::{noise, FakeHub, HubFile};
use std::path::Path;
use std::process::Command;

fn files() -> Vec<HubFile> {
    vec![
        HubFile::new("config.json", br#"{"model_type":"llama"}"#.to_vec(), false),
        HubFile::new("model.safetensors", noise(400_000, 11), true),
        HubFile::new("tokenizer/tokenizer.json", b"{\"vocab\":{}}".to_vec(), false),
    ]
}

async fn run(mut cmd: Command) -> std::process::Output {
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap()).await.unwrap();
    assert!(out.status.success(), "{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    out
}

mod common;

fn mm(hub: &FakeHub, cache: &Path, args: &[&str]) -> Command {
    // The home is beside the cache, not in it: huggingface_hub reads every folder of a cache as an entry.
    let mut cmd = common::mm(cache, &cache.with_extension("home"));
    cmd.args(args).env("HF_ENDPOINT", hub.endpoint());
    cmd
}

const READ_BACK: &str = r#"
import json, os, sys
from huggingface_hub import scan_cache_dir, snapshot_download
cache = sys.argv[1]
path = snapshot_download("acme/tiny", cache_dir=cache, local_files_only=True)
info = scan_cache_dir(cache)
files = {}
for root, _, names in os.walk(path):
    for n in names:
        p = os.path.join(root, n)
        files[os.path.relpath(p, path)] = len(open(p, "rb").read())
print(json.dumps({
    "path": path,
    "files": files,
    "warnings": [str(w) for w in info.warnings],
    "repos": [{"id": r.repo_id, "files": r.nb_files, "size": r.size_on_disk, "refs": sorted(r.refs)} for r in info.repos],
}))
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huggingface_hub_reads_what_mm_downloads_offline() {
    let hub = FakeHub::start().await;
    let cache = tempfile::tempdir().unwrap();
    let commit = hub.add_repo("acme/tiny", files());
    run(mm(&hub, cache.path(), &["download", "acme/tiny"])).await;

    let mut py = Command::new(common::python());
    py.args(["-c", READ_BACK]).arg(cache.path()).env("HF_HUB_OFFLINE", "1").env_remove("HF_ENDPOINT");
    let out = run(py).await;
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let expected_path = cache.path().join("models--acme--tiny/snapshots").join(&commit);
    assert_eq!(report["path"], expected_path.to_str().unwrap());
    assert_eq!(report["files"]["model.safetensors"], 400_000);
    assert_eq!(report["files"]["tokenizer/tokenizer.json"], 12);
    assert_eq!(report["warnings"], serde_json::json!([]), "scan_cache_dir found problems");
    assert_eq!(report["repos"][0]["id"], "acme/tiny");
    assert_eq!(report["repos"][0]["files"], 3);
    assert_eq!(report["repos"][0]["refs"], serde_json::json!(["main"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mm_reuses_what_huggingface_hub_downloaded() {
    let hub = FakeHub::start().await;
    let cache = tempfile::tempdir().unwrap();
    hub.add_repo("acme/tiny", files());
    let mut py = Command::new(common::python());
    py.args(["-c", "import sys; from huggingface_hub import snapshot_download; snapshot_download('acme/tiny', cache_dir=sys.argv[1])"])
        .arg(cache.path())
        .env("HF_ENDPOINT", hub.endpoint())
        .env("HF_HUB_DISABLE_TELEMETRY", "1")
        .env_remove("HF_HUB_OFFLINE")
        .env_remove("HF_TOKEN");
    run(py).await;
    assert!(
        hub.requests().iter().any(|r| r.path.contains("/resolve/")),
        "huggingface_hub downloaded from the fake hub"
    );

    hub.clear_requests();
    run(mm(&hub, cache.path(), &["download", "acme/tiny"])).await;
    let fetched: Vec<_> =
        hub.requests().into_iter().filter(|r| r.method == "GET" && r.path.contains("/resolve/")).collect();
    assert!(fetched.is_empty(), "mm fetched files huggingface_hub already had: {fetched:?}");

    let out = run(mm(&hub, cache.path(), &["list", "--json"])).await;
    let listed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(listed["models"][0]["status"], "available");
    assert_eq!(listed["models"][0]["files"], 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cache_written_by_huggingface_hub_is_listed_and_stays_valid_after_mm_rm() {
    let hub = FakeHub::start().await;
    let cache = tempfile::tempdir().unwrap();
    let shared = HubFile::new("model.safetensors", noise(200_000, 12), true);
    let old = hub.add_repo(
        "acme/tiny",
        vec![HubFile::new("config.json", br#"{"architectures":["BertModel"]}"#.to_vec(), false), shared.clone()],
    );
    hub.set_ref("acme/tiny", "v1", &old);
    let new = hub.add_repo(
        "acme/tiny",
        vec![HubFile::new("config.json", br#"{"architectures":["BertModel"],"v":2}"#.to_vec(), false), shared.clone()],
    );
    let mut py = Command::new(common::python());
    py.args([
        "-c",
        "import sys; from huggingface_hub import snapshot_download as d; d('acme/tiny', revision='v1', cache_dir=sys.argv[1]); d('acme/tiny', cache_dir=sys.argv[1])",
    ])
    .arg(cache.path())
    .env("HF_ENDPOINT", hub.endpoint())
    .env("HF_HUB_DISABLE_TELEMETRY", "1")
    .env_remove("HF_HUB_OFFLINE")
    .env_remove("HF_TOKEN");
    run(py).await;

    let out = run(mm(&hub, cache.path(), &["list", "--json"])).await;
    let listed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let model = &listed["models"][0];
    assert_eq!(
        (model["id"].as_str(), model["status"].as_str(), model["revisions"].as_u64()),
        (Some("acme/tiny"), Some("available"), Some(2))
    );
    assert_eq!(model["modelType"], "embedding", "inferred from config.json");
    assert_eq!(model["commit"], new, "main first");

    let out = run(mm(&hub, cache.path(), &["rm", "acme/tiny", "--revision", "v1", "--json"])).await;
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["bytesFreed"], 31, "only the old config goes; the shared weights stay");

    let mut scan = Command::new(common::python());
    scan.args([
        "-c",
        "import json, sys; from huggingface_hub import scan_cache_dir; i = scan_cache_dir(sys.argv[1]); \
         print(json.dumps({'warnings': [str(w) for w in i.warnings], 'revisions': [sorted(r.commit_hash for r in repo.revisions) for repo in i.repos], 'refs': [sorted(repo.refs) for repo in i.repos]}))",
    ])
    .arg(cache.path());
    let out = run(scan).await;
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["warnings"], serde_json::json!([]), "huggingface_hub still reads the cache without errors");
    assert_eq!(report["revisions"], serde_json::json!([[new]]));
    assert_eq!(report["refs"], serde_json::json!([["main"]]));
    let blob = cache.path().join("models--acme--tiny/blobs").join(&shared.sha256);
    assert_eq!(std::fs::read(blob).unwrap(), *shared.content);
}
