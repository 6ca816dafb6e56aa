//! `mm serve` as a Hugging Face Hub mirror, used as the ecosystem uses one: the real Python `huggingface_hub`
//! (target/py-venv, from `scripts/setup test`) and another `mm` with `HF_ENDPOINT` pointed at it and nothing of
//! ours on their side; a `Range` resume; and pull-through with two clients at once and one upstream fetch,
//! counted at the fake hub.

use fake_hub::{noise, FakeHub, Host, HubFile};
use serde_json::Value;
use sha2::Digest as _;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

mod common;

/// A running `mm serve` over `home`'s cache, killed when dropped.
struct Mirror {
    child: Child,
    url: String,
}

impl Mirror {
    fn start(hub: &FakeHub, home: &Path, args: &[&str]) -> Mirror {
        Mirror::start_with(hub, home, args, &[])
    }

    fn start_with(hub: &FakeHub, home: &Path, args: &[&str], env: &[(&str, &str)]) -> Mirror {
        let mut cmd = common::mm(&home.join("cache"), home);
        cmd.env("HF_ENDPOINT", hub.endpoint()).args(["serve", "--json", "--listen", "127.0.0.1:0"]).args(args);
        cmd.envs(env.iter().copied());
        let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().unwrap();
        let mut first = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut first).unwrap();
        let ready: Value = serde_json::from_str(&first).unwrap_or_else(|e| panic!("{e}: {first:?}"));
        Mirror { child, url: ready["listening"].as_str().unwrap().to_string() }
    }
}

impl Drop for Mirror {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn run(mut cmd: Command) -> std::process::Output {
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap()).await.unwrap();
    assert!(out.status.success(), "{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    out
}

fn files() -> Vec<HubFile> {
    vec![
        HubFile::new("config.json", br#"{"model_type":"llama"}"#.to_vec(), false),
        HubFile::new("model.safetensors", noise(3_000_000, 21), true),
        HubFile::new("tokenizer/tokenizer.json", b"{\"vocab\":{}}".to_vec(), false),
    ]
}

/// snapshot_download from `endpoint` into `cache`, then the same offline; the files and their sizes.
const DOWNLOAD: &str = r#"
import json, os, sys
from huggingface_hub import snapshot_download
endpoint, cache = sys.argv[1], sys.argv[2]
path = snapshot_download("acme/tiny", cache_dir=cache, endpoint=endpoint)
offline = snapshot_download("acme/tiny", cache_dir=cache, local_files_only=True)
files = {}
for root, _, names in os.walk(offline):
    for n in names:
        p = os.path.join(root, n)
        files[os.path.relpath(p, offline)] = open(p, "rb").read().hex()
print(json.dumps({"path": path, "offline": offline, "files": files}))
"#;

/// The same repo through `/tree` and a ranged read of the big file: what a resuming client asks.
const TREE_AND_RANGE: &str = r#"
import json, sys
from huggingface_hub import HfApi, hf_hub_url, get_hf_file_metadata
import urllib.request
endpoint = sys.argv[1]
api = HfApi(endpoint=endpoint)
tree = sorted(f.path for f in api.list_repo_tree("acme/tiny", recursive=True))
url = hf_hub_url("acme/tiny", "model.safetensors", endpoint=endpoint)
meta = get_hf_file_metadata(url)
tail = urllib.request.urlopen(urllib.request.Request(url, headers={"Range": "bytes=2999990-"}))
print(json.dumps({"tree": tree, "etag": meta.etag, "size": meta.size, "commit": meta.commit_hash,
                  "status": tail.status, "range": tail.headers.get("content-range"), "tail": tail.read().hex()}))
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huggingface_hub_downloads_from_the_mirror_and_reads_it_offline() {
    let hub = FakeHub::start().await;
    let commit = hub.add_repo("acme/tiny", files());
    let server = tempfile::tempdir().unwrap();
    // The first machine has the model (downloaded by mm), and serves it with no upstream at all.
    let mut download = common::mm(&server.path().join("cache"), server.path());
    download.env("HF_ENDPOINT", hub.endpoint()).args(["download", "acme/tiny"]);
    run(download).await;
    let mirror = Mirror::start(&hub, server.path(), &["--no-upstream"]);
    hub.clear_requests();

    // The second machine: huggingface_hub with the mirror as its endpoint.
    let client = tempfile::tempdir().unwrap();
    let mut py = Command::new(common::python());
    py.args(["-c", DOWNLOAD, &mirror.url, client.path().join("hf").to_str().unwrap()])
        .env("HF_HUB_DISABLE_TELEMETRY", "1")
        .env_remove("HF_TOKEN");
    let out: Value = serde_json::from_slice(&run(py).await.stdout).unwrap();
    assert!(out["path"].as_str().unwrap().ends_with(&commit), "{out}");
    for f in files() {
        assert_eq!(out["files"][&f.path], fake_hub::hex(&f.content), "{} arrived whole", f.path);
    }
    assert!(hub.requests().is_empty(), "the upstream hub was never asked: {:?}", hub.requests());

    // The tree API and a Range read (a resume), as huggingface_hub makes them.
    let mut py = Command::new(common::python());
    py.args(["-c", TREE_AND_RANGE, &mirror.url]).env("HF_HUB_DISABLE_TELEMETRY", "1");
    let out: Value = serde_json::from_slice(&run(py).await.stdout).unwrap();
    assert_eq!(
        out["tree"],
        serde_json::json!(["config.json", "model.safetensors", "tokenizer", "tokenizer/tokenizer.json"])
    );
    let big = &files()[1];
    assert_eq!(out["etag"], big.sha256.as_str(), "an LFS file's etag is its sha256");
    assert_eq!((out["size"].as_u64(), out["commit"].as_str()), (Some(3_000_000), Some(commit.as_str())));
    assert_eq!((out["status"].as_u64(), out["range"].as_str()), (Some(206), Some("bytes 2999990-2999999/3000000")));
    assert_eq!(out["tail"], fake_hub::hex(&big.content[2_999_990..]));

    // Another Model Manager downloads from it too, verified, into its own cache.
    let other = tempfile::tempdir().unwrap();
    let mut mm = common::mm(&other.path().join("cache"), other.path());
    mm.env("HF_ENDPOINT", &mirror.url).args(["download", "acme/tiny", "--json"]);
    run(mm).await;
    let blob = other.path().join("cache/models--acme--tiny/blobs").join(&big.sha256);
    assert_eq!(std::fs::read(blob).unwrap(), *big.content);

    // What it has not got is the Hub's own "not found", which huggingface_hub names.
    let http = reqwest::Client::new();
    let missing = http.get(format!("{}/api/models/acme/none/revision/main", mirror.url)).send().await.unwrap();
    assert_eq!((missing.status().as_u16(), missing.headers()["x-error-code"].to_str().unwrap()), (404, "RepoNotFound"));
    let revision = http.get(format!("{}/api/models/acme/tiny/revision/v9", mirror.url)).send().await.unwrap();
    assert_eq!(
        (revision.status().as_u16(), revision.headers()["x-error-code"].to_str().unwrap()),
        (404, "RevisionNotFound")
    );
    let entry = http.get(format!("{}/acme/tiny/resolve/main/nothing.bin", mirror.url)).send().await.unwrap();
    assert_eq!((entry.status().as_u16(), entry.headers()["x-error-code"].to_str().unwrap()), (404, "EntryNotFound"));
    let outside = http.get(format!("{}/acme/tiny/resolve/main/..%2F..%2Fsecrets", mirror.url)).send().await.unwrap();
    assert_eq!(outside.status().as_u16(), 404, "only a listed file is ever opened");

    // What it served shows in its figures, and serving the model was using it.
    let stats: Value = http.get(format!("{}/mm/v1/stats", mirror.url)).send().await.unwrap().json().await.unwrap();
    assert!(stats["mirrorHits"].as_u64().unwrap() >= 4, "{stats:#}");
    assert_eq!(stats["bySource"]["hugging-face"], 1, "{stats:#}");
    let used: Value = serde_json::from_slice(
        &std::fs::read(server.path().join(".mm-data/dev.model-manager.app/usage.json")).unwrap(),
    )
    .unwrap();
    assert!(used["acme/tiny"].as_u64().is_some(), "{used}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_through_fetches_once_for_two_clients_at_once() {
    let hub = FakeHub::start().await;
    let big = HubFile::new("model.safetensors", noise(4_000_000, 22), true);
    let commit = hub.add_repo("acme/pulled", vec![HubFile::new("config.json", b"{}".to_vec(), false), big.clone()]);
    hub.throttle(Some(4_000_000));
    let server = tempfile::tempdir().unwrap();
    let mirror = Mirror::start(&hub, server.path(), &[]);
    let url = format!("{}/acme/pulled/resolve/main/model.safetensors", mirror.url);

    // Its repo info comes from upstream before any file is here.
    let http = reqwest::Client::new();
    let info: Value =
        http.get(format!("{}/api/models/acme/pulled", mirror.url)).send().await.unwrap().json().await.unwrap();
    assert_eq!(info["sha"], commit);
    // Two clients at once; one of them gives up half-way and the fill carries on for the other.
    let quitter = {
        let (http, url) = (http.clone(), url.clone());
        tokio::spawn(async move {
            let _ = tokio::time::timeout(std::time::Duration::from_millis(300), http.get(url).send()).await;
        })
    };
    let stored = server.path().join("cache/models--acme--pulled/blobs").join(&big.sha256);
    let patient = tokio::spawn({
        let (http, url, stored) = (http.clone(), url.clone(), stored.clone());
        async move {
            let mut response = http.get(url).send().await.unwrap();
            let first = response.chunk().await.unwrap().unwrap();
            // Streamed as it arrives: bytes come before the whole file is fetched, verified and placed.
            let streaming = !stored.exists();
            let mut body = first.to_vec();
            while let Some(chunk) = response.chunk().await.unwrap() {
                body.extend_from_slice(&chunk);
            }
            (streaming, body)
        }
    });
    quitter.await.unwrap();
    let (streaming, body) = patient.await.unwrap();
    assert!(streaming, "the first bytes came while the fill was under way");
    assert_eq!(body, *big.content);
    let again = http.get(&url).send().await.unwrap();
    assert_eq!(again.headers()["x-repo-commit"], commit.as_str());
    assert_eq!(again.bytes().await.unwrap().as_ref(), big.content.as_slice(), "served from the cache now");
    // An upstream listing a path out of the snapshot gets nothing served, from anywhere.
    hub.add_repo("acme/hostile", vec![HubFile::new("config.json", b"{}".to_vec(), false)]);
    hub.list_hostile("acme/hostile", "../../../../etc/passwd", b"x".to_vec());
    let hostile = http.get(format!("{}/api/models/acme/hostile", mirror.url)).send().await.unwrap();
    assert_eq!(hostile.status().as_u16(), 502);
    let hostile = http.get(format!("{}/acme/hostile/resolve/main/..%2F..%2F..%2F..%2Fetc%2Fpasswd", mirror.url));
    assert_eq!(hostile.send().await.unwrap().status().as_u16(), 502);
    hub.cdn_settled().await;
    let fetched: Vec<_> = hub.requests().into_iter().filter(|r| r.host == Host::Cdn).collect();
    assert_eq!(fetched.len(), 1, "one upstream fetch for three requests: {fetched:?}");
    assert_eq!(std::fs::read(&stored).unwrap(), *big.content, "stored, verified, in the cache");

    // A file large enough to come in pieces (not in order on disk) is served once placed, whole.
    let huge = HubFile::new("model-2.safetensors", noise(20 << 20, 23), true);
    hub.add_repo("acme/pieces", vec![huge.clone()]);
    hub.throttle(None);
    let body = http.get(format!("{}/acme/pieces/resolve/main/model-2.safetensors", mirror.url)).send().await.unwrap();
    assert_eq!(body.bytes().await.unwrap().as_ref(), huge.content.as_slice());
}

/// The mirror behind an office's proxy: its pull-through goes through an authenticated tinyproxy (the hub's API,
/// the CDN redirect), while huggingface_hub on the LAN reaches the mirror directly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_through_goes_through_the_proxy_the_mirror_is_behind() {
    let hub = FakeHub::start().await;
    let commit = hub.add_repo("acme/tiny", files());
    let proxy = common::Tinyproxy::start(Some(("mirror", "pa55")));
    let server = tempfile::tempdir().unwrap();
    let mirror = Mirror::start_with(&hub, server.path(), &[], &[("HTTP_PROXY", &proxy.url(Some(("mirror", "pa55"))))]);
    let client = tempfile::tempdir().unwrap();
    let mut py = Command::new(common::python());
    py.args(["-c", DOWNLOAD, &mirror.url, client.path().join("hf").to_str().unwrap()])
        .env("HF_HUB_DISABLE_TELEMETRY", "1")
        .env_remove("HF_TOKEN")
        .env_remove("HTTP_PROXY")
        .env_remove("http_proxy");
    let out: Value = serde_json::from_slice(&run(py).await.stdout).unwrap();
    assert!(out["path"].as_str().unwrap().ends_with(&commit), "{out}");
    for f in files() {
        assert_eq!(out["files"][&f.path], fake_hub::hex(&f.content), "{} arrived whole", f.path);
    }
    let upstream = hub.requests();
    assert!(upstream.iter().any(|r| r.host == Host::Cdn), "the big file came from the CDN: {upstream:?}");
    for r in &upstream {
        assert!(r.via.as_deref().is_some_and(|v| v.contains("tinyproxy")), "around the proxy: {r:?}");
    }
    let forwarded = proxy.forwarded();
    assert!(forwarded.iter().any(|r| r.contains(&hub.cdn_base())), "{forwarded:?}");
    assert!(forwarded.iter().all(|r| !r.contains(&mirror.url)), "the client reached the mirror directly");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mirror_keeps_the_servers_token_unless_it_is_an_open_lan_mirror_and_gated_models_stay_closed() {
    let hub = FakeHub::start().await;
    hub.add_repo("acme/tiny", files());
    hub.add_repo("acme/gated", vec![HubFile::new("config.json", b"{}".to_vec(), false)]);
    hub.gate("acme/gated", "hf_upstream_token");
    let server = tempfile::tempdir().unwrap();
    // The server machine has the gated model, downloaded with its owner's hub token.
    let mut download = common::mm(&server.path().join("cache"), server.path());
    download.env("HF_ENDPOINT", hub.endpoint()).env("HF_TOKEN", "hf_upstream_token").args(["download", "acme/gated"]);
    run(download).await;
    let token_file = server.path().join("token");
    std::fs::write(&token_file, "mirror-token-0123456789").unwrap();
    let http = reqwest::Client::new();
    let get = |url: String, token: Option<&'static str>| {
        let mut request = http.get(url);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        async move { request.send().await.unwrap().status().as_u16() }
    };

    let closed = Mirror::start(&hub, server.path(), &["--token-file", token_file.to_str().unwrap()]);
    let info = format!("{}/api/models/acme/tiny", closed.url);
    assert_eq!(get(info.clone(), None).await, 401, "no token, no models");
    assert_eq!(get(info.clone(), Some("wrong")).await, 401);
    assert_eq!(get(info, Some("mirror-token-0123456789")).await, 200, "HF_TOKEN=<the server's token> opens it");
    drop(closed);

    let open = Mirror::start(&hub, server.path(), &["--token-file", token_file.to_str().unwrap(), "--open-mirror"]);
    assert_eq!(get(format!("{}/api/models/acme/tiny", open.url), None).await, 200, "open to the LAN");
    assert_eq!(get(format!("{}/acme/tiny/resolve/main/config.json", open.url), None).await, 200);
    assert_eq!(get(format!("{}/mm/v1/models", open.url), None).await, 401, "the API is not");
    // A model fetched by another tool (no word from the hub on whether it is gated) is not handed out either.
    let unknown = server.path().join("cache/models--acme--tiny/.model-manager");
    std::fs::rename(&unknown, server.path().join("record-aside")).unwrap();
    assert_eq!(get(format!("{}/api/models/acme/tiny", open.url), None).await, 404, "as a repo that is not there");
    std::fs::rename(server.path().join("record-aside"), &unknown).unwrap();
    let gated = format!("{}/api/models/acme/gated", open.url);
    assert_eq!(get(gated.clone(), None).await, 401, "a gated model still needs the token");
    assert_eq!(get(gated, Some("mirror-token-0123456789")).await, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_the_mirror_serves_what_it_has_and_the_hubs_not_found_for_the_rest() {
    let hub = FakeHub::start().await;
    hub.add_repo("acme/tiny", files());
    hub.add_repo("acme/elsewhere", files());
    let server = tempfile::tempdir().unwrap();
    let mut download = common::mm(&server.path().join("cache"), server.path());
    download.env("HF_ENDPOINT", hub.endpoint()).args(["download", "acme/tiny", "--include", "config.json"]);
    run(download).await;
    let mirror = Mirror::start_with(&hub, server.path(), &[], &[("HF_HUB_OFFLINE", "1")]);
    hub.clear_requests();
    let http = reqwest::Client::new();
    let code = |r: &reqwest::Response| r.headers().get("x-error-code").map(|v| v.to_str().unwrap().to_string());
    let have = http.get(format!("{}/acme/tiny/resolve/main/config.json", mirror.url)).send().await.unwrap();
    assert_eq!(have.status().as_u16(), 200);
    let other = http.get(format!("{}/api/models/acme/elsewhere", mirror.url)).send().await.unwrap();
    assert_eq!((other.status().as_u16(), code(&other).as_deref()), (404, Some("RepoNotFound")));
    // A file the listing has but the cache has not (only config.json was downloaded).
    let file = http.get(format!("{}/acme/tiny/resolve/main/model.safetensors", mirror.url)).send().await.unwrap();
    assert_eq!((file.status().as_u16(), code(&file).as_deref()), (404, Some("EntryNotFound")));
    assert!(hub.requests().is_empty(), "offline: the upstream was never asked");
    drop(mirror);

    // Online, the same missing file of a partly cached revision is pulled through.
    let mirror = Mirror::start(&hub, server.path(), &[]);
    let file = http.get(format!("{}/acme/tiny/resolve/main/model.safetensors", mirror.url)).send().await.unwrap();
    assert_eq!(file.status().as_u16(), 200);
    assert_eq!(file.bytes().await.unwrap().as_ref(), files()[1].content.as_slice());
}

/// `hf_hub_download` of each repo in turn through `endpoint`; the sha256 of each file got.
const PULL_EACH: &str = r#"
import hashlib, json, sys
from huggingface_hub import hf_hub_download
endpoint, cache, repos = sys.argv[1], sys.argv[2], sys.argv[3:]
got = {}
for repo in repos:
    path = hf_hub_download(repo, "model.safetensors", cache_dir=cache, endpoint=endpoint)
    got[repo] = hashlib.sha256(open(path, "rb").read()).hexdigest()
print(json.dumps(got))
"#;

/// Under `--cache-limit`, a mirror that pulls through more than fits removes the least recently used models on its
/// own and stays under its limit, while huggingface_hub gets every file whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mirror_under_its_cache_limit_removes_the_least_recently_used_as_it_fills() {
    let hub = FakeHub::start().await;
    let repos = ["acme/one", "acme/two", "acme/three"];
    let mut sums = serde_json::Map::new();
    for (i, repo) in repos.iter().enumerate() {
        let content = noise(400_000, 40 + i as u64);
        sums.insert(repo.to_string(), Value::String(fake_hub::hex(&sha2::Sha256::digest(&content))));
        hub.add_repo(repo, vec![HubFile::new("model.safetensors", content, true)]);
    }
    let server = tempfile::tempdir().unwrap();
    let mirror = Mirror::start(&hub, server.path(), &["--cache-limit", "1MB"]);
    let client = tempfile::tempdir().unwrap();
    let mut py = Command::new(common::python());
    py.args(["-c", PULL_EACH, &mirror.url, client.path().join("hf").to_str().unwrap()])
        .args(repos)
        .env("HF_HUB_DISABLE_TELEMETRY", "1")
        .env_remove("HF_TOKEN");
    let got: Value = serde_json::from_slice(&run(py).await.stdout).unwrap();
    assert_eq!(got, Value::Object(sums), "every file arrived whole");
    let http = reqwest::Client::new();
    let storage: Value = http.get(format!("{}/mm/v1/storage", mirror.url)).send().await.unwrap().json().await.unwrap();
    let kept: Vec<&str> = storage["models"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap()).collect();
    assert!(!kept.contains(&"acme/one") && kept.contains(&"acme/three"), "the least recently used went: {kept:?}");
    assert!(storage["cacheBytes"].as_u64().unwrap() <= 1_000_000, "under its limit: {storage:#}");
}

/// The rest of the Hub's read API as `huggingface_hub` calls it, against `endpoint` with `token` (or none):
/// paths-info, refs, the model search, repo info with file metadata, file and repo checks, whoami.
const READ_CALLS: &str = r#"
import json, sys
from huggingface_hub import HfApi
from huggingface_hub.errors import HfHubHTTPError
endpoint, token = sys.argv[1], sys.argv[2] or False
api = HfApi(endpoint=endpoint, token=token)
def outcome(call):
    try:
        return call()
    except HfHubHTTPError as e:
        return [type(e).__name__, e.response.status_code]
out = {}
paths = api.get_paths_info("acme/tiny", ["config.json", "tokenizer", "nothing.bin", "model.safetensors"])
out["paths"] = [[type(p).__name__, p.path, getattr(p, "size", None), p.lfs.sha256 if getattr(p, "lfs", None) else None] for p in paths]
refs = api.list_repo_refs("acme/tiny", include_pull_requests=True)
out["refs"] = {kind: sorted([r.name, r.target_commit] for r in getattr(refs, kind)) for kind in ["branches", "tags", "pull_requests"]}
out["models"] = outcome(lambda: sorted(m.id for m in api.list_models(search="acme")))
out["gguf"] = outcome(lambda: [m.id for m in api.list_models(author="acme", filter="gguf", expand=["downloads"])])
info = api.model_info("acme/tiny", files_metadata=True)
out["info"] = {"sha": info.sha, "files": {s.rfilename: [s.size, s.lfs.sha256 if s.lfs else None] for s in info.siblings}}
out["file_exists"] = [api.file_exists("acme/tiny", "config.json"), api.file_exists("acme/tiny", "nothing.bin")]
out["repo_exists"] = [api.repo_exists("acme/tiny"), api.repo_exists("acme/none"), api.repo_exists("acme/tiny", repo_type="dataset")]
out["whoami"] = outcome(lambda: api.whoami(token=token or "a-token-of-nobody")["name"])
out["write"] = outcome(lambda: api.create_repo("acme/new"))
print(json.dumps(out))
"#;

fn read_calls(url: &str, token: &str) -> Command {
    let mut py = Command::new(common::python());
    py.args(["-c", READ_CALLS, url, token]).env("HF_HUB_DISABLE_TELEMETRY", "1").env_remove("HF_TOKEN");
    py
}

/// `get_paths_info`, `list_repo_refs`, `list_models`, `whoami`, `model_info(files_metadata=True)`, `file_exists`
/// and `repo_exists` through a mirror: online, with the mirror's token (the owner's hub token then goes upstream,
/// so the owner's private repo is found) and on an open mirror without one (the upstream is asked without it);
/// then offline, from what the machine has. Another `mm` pages through the search on the mirror.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huggingface_hubs_other_read_calls_work_through_the_mirror_online_and_offline() {
    let hub = FakeHub::start().await;
    let mut tiny = files();
    tiny.push(HubFile::new("weights/model.gguf", b"GGUF....".to_vec(), true));
    let commit = hub.add_repo("acme/tiny", tiny.clone());
    hub.set_meta("acme/tiny", fake_hub::RepoMeta { library_name: Some("gguf".into()), ..Default::default() });
    hub.set_tag("acme/tiny", "v1", &commit);
    hub.set_ref("acme/tiny", "refs/pr/1", &commit);
    hub.add_repo("acme/remote", vec![HubFile::new("config.json", b"{}".to_vec(), false)]);
    hub.add_repo("acme/secret", vec![HubFile::new("config.json", b"{}".to_vec(), false)]);
    hub.make_private("acme/secret", "hf_owner");
    let server = tempfile::tempdir().unwrap();
    let mut download = common::mm(&server.path().join("cache"), server.path());
    download.env("HF_ENDPOINT", hub.endpoint()).args(["download", "acme/tiny"]);
    run(download).await;
    // Upstream, `dev` now points at a newer commit; the cache keeps main where it was.
    let newer = hub.add_repo("acme/tiny", files());
    hub.set_ref("acme/tiny", "dev", &newer);
    hub.set_ref("acme/tiny", "main", &commit);
    let (token, mirror_token) = (server.path().join("token"), server.path().join("mirror-token"));
    std::fs::write(&token, "server-token-0123456789").unwrap();
    std::fs::write(&mirror_token, "mirror-token-0123456789").unwrap();
    let tokens = ["--token-file", token.to_str().unwrap(), "--mirror-token-file", mirror_token.to_str().unwrap()];
    let big = &tiny[1];
    let expected_paths = serde_json::json!([
        ["RepoFile", "config.json", 22, null],
        ["RepoFolder", "tokenizer", null, null],
        ["RepoFile", "model.safetensors", 3_000_000, big.sha256],
    ]);

    let online = Mirror::start_with(&hub, server.path(), &tokens, &[("HF_TOKEN", "hf_owner")]);
    hub.clear_requests();
    let out: Value =
        serde_json::from_slice(&run(read_calls(&online.url, "mirror-token-0123456789")).await.stdout).unwrap();
    assert_eq!(out["paths"], expected_paths);
    assert_eq!(out["refs"]["branches"], serde_json::json!([["dev", newer], ["main", commit]]), "{out:#}");
    assert_eq!(out["refs"]["tags"], serde_json::json!([["v1", commit]]));
    assert_eq!(out["refs"]["pull_requests"], serde_json::json!([["refs/pr/1", commit]]));
    assert_eq!(
        out["models"],
        serde_json::json!(["acme/remote", "acme/secret", "acme/tiny"]),
        "the owner's token went upstream"
    );
    assert_eq!(out["gguf"], serde_json::json!(["acme/tiny"]));
    assert_eq!(out["info"]["sha"], commit.as_str());
    assert_eq!(out["info"]["files"]["model.safetensors"], serde_json::json!([3_000_000, big.sha256]));
    assert_eq!(out["info"]["files"]["config.json"], serde_json::json!([22, null]));
    assert_eq!(out["file_exists"], serde_json::json!([true, false]));
    assert_eq!(out["repo_exists"], serde_json::json!([true, false, false]));
    assert_eq!(out["whoami"], "model-manager-mirror");
    assert_eq!(out["write"], serde_json::json!(["HfHubHTTPError", 405]), "the mirror is read-only");
    let searches: Vec<_> = hub.requests().into_iter().filter(|r| r.path.starts_with("/api/models?")).collect();
    assert!(searches.iter().all(|r| r.authorization.as_deref() == Some("Bearer hf_owner")), "{searches:?}");
    // Without a token, a closed mirror says so in the Hub's words.
    let out: Value = serde_json::from_slice(&run(read_calls_expecting_refusal(&online.url)).await.stdout).unwrap();
    assert_eq!(out, serde_json::json!({"models": ["HfHubHTTPError", 401], "whoami": ["HfHubHTTPError", 401]}));

    // Another Model Manager whose hub is the mirror searches through it, page by page on the mirror.
    let other = tempfile::tempdir().unwrap();
    let search = |next: Option<&str>| {
        let mut mm = common::mm(&other.path().join("cache"), other.path());
        mm.env("HF_ENDPOINT", &online.url).env("HF_TOKEN", "mirror-token-0123456789");
        mm.args(["search", "acme", "--limit", "2", "--json"]);
        if let Some(next) = next {
            mm.args(["--next", next]);
        }
        mm
    };
    let first: Value = serde_json::from_slice(&run(search(None)).await.stdout).unwrap();
    let next = first["next"].as_str().expect("a second page").to_string();
    assert!(next.starts_with(&format!("{}/api/models?", online.url)), "the next page is the mirror's: {next}");
    let second: Value = serde_json::from_slice(&run(search(Some(&next))).await.stdout).unwrap();
    let ids = |page: &Value| -> Vec<String> {
        page["models"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap().to_string()).collect()
    };
    let (mut all, more) = (ids(&first), ids(&second));
    all.extend(more);
    all.sort();
    assert_eq!(all, ["acme/remote", "acme/secret", "acme/tiny"]);
    drop(online);

    // An open mirror asks the upstream without the owner's token for a caller who holds none.
    let open = Mirror::start_with(
        &hub,
        server.path(),
        &[&tokens[..], &["--open-mirror"]].concat(),
        &[("HF_TOKEN", "hf_owner")],
    );
    hub.clear_requests();
    let out: Value = serde_json::from_slice(&run(read_calls(&open.url, "")).await.stdout).unwrap();
    assert_eq!(out["models"], serde_json::json!(["acme/remote", "acme/tiny"]), "the private repo stays the owner's");
    assert_eq!(out["refs"]["branches"], serde_json::json!([["dev", newer], ["main", commit]]));
    assert_eq!(out["whoami"], serde_json::json!(["HfHubHTTPError", 401]));
    let searches: Vec<_> = hub.requests().into_iter().filter(|r| r.path.starts_with("/api/models?")).collect();
    assert!(!searches.is_empty() && searches.iter().all(|r| r.authorization.is_none()), "{searches:?}");
    // Nor can such a caller probe the owner's private repo for its revisions through the owner's token.
    hub.clear_requests();
    let http = reqwest::Client::new();
    let probe = |repo: &str, revision: &str| {
        http.post(format!("{}/api/models/{repo}/paths-info/{revision}", open.url))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("paths=config.json")
            .send()
    };
    for (repo, revision) in [("acme/secret", "main"), ("acme/secret", "nope"), ("acme/none", "nope")] {
        let answer = probe(repo, revision).await.unwrap();
        let code = answer.headers().get("x-error-code").map(|c| c.to_str().unwrap().to_string());
        assert_eq!((answer.status().as_u16(), code.as_deref()), (404, Some("RepoNotFound")), "{repo}@{revision}");
    }
    assert!(hub.requests().iter().all(|r| r.authorization.is_none()), "{:?}", hub.requests());
    // Bad input is the Hub's 400, naming what is wrong.
    let bad = [
        (
            http.post(format!("{}/api/models/acme/tiny/paths-info/main", open.url))
                .header("content-type", "application/json")
                .body("{\"paths\": 3}"),
            "the body is not",
        ),
        (
            http.post(format!("{}/api/models/acme/tiny/paths-info/main", open.url))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(vec!["paths=a"; 10_001].join("&")),
            "more than 10000 paths",
        ),
        (http.get(format!("{}/api/models?search={}", open.url, "x".repeat(9000))), "at most 8192"),
    ];
    for (request, says) in bad {
        let answer = request.send().await.unwrap();
        let code = answer.headers().get("x-error-code").map(|c| c.to_str().unwrap().to_string());
        assert_eq!((answer.status().as_u16(), code.as_deref()), (400, Some("BadRequest")));
        let body: Value = answer.json().await.unwrap();
        assert!(body["error"].as_str().unwrap().contains(says), "{body}");
    }

    drop(open);

    // A closed mirror answers every repo alike to a caller without its token, held or not.
    let closed = Mirror::start(&hub, server.path(), &tokens);
    for repo in ["acme/tiny", "acme/none"] {
        let answer = http.get(format!("{}/api/models/{repo}/refs", closed.url)).send().await.unwrap();
        assert_eq!(answer.status().as_u16(), 401, "{repo}");
    }
    drop(closed);

    // Behind a reverse proxy, the next pages are at the address given, not at the Host the proxy sent.
    let proxied = Mirror::start(&hub, server.path(), &["--public-url", "https://models.example/"]);
    let page = http.get(format!("{}/api/models?search=acme&limit=1", proxied.url)).send().await.unwrap();
    let link = page.headers()["link"].to_str().unwrap().to_string();
    assert!(link.starts_with("<https://models.example/api/models?search=acme&limit=1&cursor=1>"), "{link}");
    drop(proxied);

    // Offline, what this machine has: its own search, the cache's refs (main, and nothing it cannot know).
    let offline = Mirror::start_with(&hub, server.path(), &[], &[("HF_HUB_OFFLINE", "1")]);
    hub.clear_requests();
    let out: Value = serde_json::from_slice(&run(read_calls(&offline.url, "")).await.stdout).unwrap();
    assert_eq!(out["paths"], expected_paths);
    assert_eq!(out["refs"]["branches"], serde_json::json!([["main", commit]]));
    assert_eq!(out["models"], serde_json::json!(["acme/tiny"]));
    assert_eq!(out["gguf"], serde_json::json!(["acme/tiny"]));
    assert_eq!(out["info"]["files"]["model.safetensors"], serde_json::json!([3_000_000, big.sha256]));
    assert_eq!(out["file_exists"], serde_json::json!([true, false]));
    assert_eq!(out["repo_exists"], serde_json::json!([true, false, false]));
    assert_eq!(out["whoami"], "model-manager-local");
    assert!(hub.requests().is_empty(), "offline: the upstream was never asked");
}

/// A search and a whoami without a token.
fn read_calls_expecting_refusal(url: &str) -> Command {
    let script = r#"
import json, sys
from huggingface_hub import HfApi
from huggingface_hub.errors import HfHubHTTPError
api = HfApi(endpoint=sys.argv[1], token=False)
out = {}
for name, call in [("models", lambda: list(api.list_models(search="acme"))), ("whoami", lambda: api.whoami(token="nobody"))]:
    try:
        call()
        out[name] = "answered"
    except HfHubHTTPError as e:
        out[name] = [type(e).__name__, e.response.status_code]
print(json.dumps(out))
"#;
    let mut py = Command::new(common::python());
    py.args(["-c", script, url]).env("HF_HUB_DISABLE_TELEMETRY", "1").env_remove("HF_TOKEN");
    py
}

/// olah, the mirror people deploy, killed when dropped.
struct Olah(Child);

impl Drop for Olah {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A team's olah with this mirror as its upstream: `snapshot_download` through olah gets every file byte for byte,
/// the mirror pulling each through from the hub once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn olah_chains_on_top_of_the_mirror() {
    let hub = FakeHub::start().await;
    let commit = hub.add_repo("acme/tiny", files());
    let server = tempfile::tempdir().unwrap();
    let mirror = Mirror::start(&hub, server.path(), &[]);
    let upstream = mirror.url.trim_start_matches("http://").to_string();
    let port = common::free_port();
    let work = tempfile::tempdir().unwrap();
    let olah_cli = common::python().with_file_name("olah-cli");
    let mut olah = Command::new(&olah_cli);
    olah.args(["--host", "127.0.0.1", "--port", &port.to_string(), "--hf-scheme", "http"])
        .args(["--hf-netloc", &upstream, "--hf-lfs-netloc", &upstream])
        .arg("--repos-path")
        .arg(work.path().join("repos"))
        .arg("--log-path")
        .arg(work.path().join("logs"))
        .current_dir(work.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let _olah =
        Olah(olah.spawn().unwrap_or_else(|e| panic!("{}: {e} (scripts/setup test installs olah)", olah_cli.display())));
    // Up once it answers anything.
    let olah_url = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while http.get(format!("{olah_url}/api/models/acme/tiny")).send().await.is_err() {
        assert!(std::time::Instant::now() < deadline, "olah did not start");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    hub.clear_requests();

    let client = tempfile::tempdir().unwrap();
    let mut py = Command::new(common::python());
    py.args(["-c", DOWNLOAD, &olah_url, client.path().join("hf").to_str().unwrap()])
        .env("HF_HUB_DISABLE_TELEMETRY", "1")
        .env_remove("HF_TOKEN");
    let out: Value = serde_json::from_slice(&run(py).await.stdout).unwrap();
    assert!(out["path"].as_str().unwrap().ends_with(&commit), "{out}");
    for f in files() {
        assert_eq!(out["files"][&f.path], fake_hub::hex(&f.content), "{} arrived whole through olah", f.path);
    }
    // The mirror fetched each file from the hub once, and keeps it.
    let fetched: Vec<_> = hub
        .requests()
        .into_iter()
        .filter(|r| r.method == "GET" && r.path.contains("/resolve/") && r.status < 300)
        .collect();
    for f in files() {
        let times = fetched.iter().filter(|r| r.path.ends_with(&f.path)).count();
        assert!(times <= 1, "{} fetched from the hub {times} times: {fetched:?}", f.path);
    }
    let blob = server.path().join("cache/models--acme--tiny/blobs").join(&files()[1].sha256);
    assert_eq!(std::fs::read(blob).unwrap(), files()[1].content.as_slice());
}

/// The requests Dragonfly makes of a mirror in front of which it sits (read from dragonflyoss/client's backends:
/// `hugging_face.rs` for `dfget hf://… --hf-base-url`, `http.rs` for its dfdaemon proxy's back-to-source), answered
/// exactly, for a file the mirror has and one it pulls through: the existence `HEAD` of `/api/models/{repo}`; the
/// listing `GET /api/models/{repo}?revision=…` (`siblings[].rfilename`); the stat, a `GET` with `Range: bytes=0-0`
/// answered 206 with the total in `Content-Range`; `Range: bytes=0-` (its "exists"); pieces of 4 MiB fetched 8 at
/// a time with `Range: bytes=a-b` and `User-Agent: dragonfly/…`, no `If-Range`; and a signed URL's query
/// parameters, which its proxy keeps on the URL it fetches, changing nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mirror_answers_the_requests_dragonfly_makes_in_front_of_it() {
    let hub = FakeHub::start().await;
    let held = HubFile::new("held.safetensors", noise(10 << 20, 51), true);
    let pulled = HubFile::new("pulled.safetensors", noise(9 << 20, 52), true);
    hub.add_repo("acme/p2p", vec![HubFile::new("config.json", b"{}".to_vec(), false), held.clone(), pulled.clone()]);
    let server = tempfile::tempdir().unwrap();
    let mut download = common::mm(&server.path().join("cache"), server.path());
    download.env("HF_ENDPOINT", hub.endpoint()).args(["download", "acme/p2p", "--include", "held.safetensors"]);
    run(download).await;
    let mirror = Mirror::start(&hub, server.path(), &[]);
    let http = reqwest::Client::builder().user_agent("dragonfly/v2.1.0").build().unwrap();

    let exists = http.head(format!("{}/api/models/acme/p2p", mirror.url)).send().await.unwrap();
    assert_eq!(exists.status().as_u16(), 200);
    let info: Value = http
        .get(format!("{}/api/models/acme/p2p?revision=main", mirror.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let names: Vec<&str> =
        info["siblings"].as_array().unwrap().iter().filter_map(|s| s["rfilename"].as_str()).collect();
    assert_eq!(names, ["config.json", "held.safetensors", "pulled.safetensors"]);

    for file in [&held, &pulled] {
        let len = file.content.len() as u64;
        let url = format!("{}/acme/p2p/resolve/main/{}", mirror.url, file.path);
        let signed = format!(
            "{url}?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=x&X-Amz-Date=1&X-Amz-Expires=3600\
             &X-Amz-SignedHeaders=host&X-Amz-Signature=abc&Expires=1&Policy=p&Key-Pair-Id=k"
        );
        for target in [&url, &signed] {
            // The stat: one byte, and the total.
            let stat = http.get(target.as_str()).header("range", "bytes=0-0").send().await.unwrap();
            assert_eq!(stat.status().as_u16(), 206, "{target}");
            assert_eq!(stat.headers()["content-range"], format!("bytes 0-0/{len}").as_str());
            let etag = stat.headers()["etag"].to_str().unwrap().to_string();
            assert_eq!(stat.bytes().await.unwrap().as_ref(), &file.content[..1]);
            // Its "exists" probe.
            let open = http.get(target.as_str()).header("range", "bytes=0-").send().await.unwrap();
            assert!(matches!(open.status().as_u16(), 200 | 206), "{}", open.status());
            drop(open);
            // The pieces, eight at a time, put back together.
            const PIECE: u64 = 4 << 20;
            let pieces: Vec<_> = (0..len.div_ceil(PIECE))
                .map(|i| {
                    let (http, target) = (http.clone(), target.clone());
                    let (start, end) = (i * PIECE, ((i + 1) * PIECE).min(len) - 1);
                    tokio::spawn(async move {
                        let piece =
                            http.get(target).header("range", format!("bytes={start}-{end}")).send().await.unwrap();
                        assert_eq!(piece.status().as_u16(), 206);
                        let range = piece.headers()["content-range"].to_str().unwrap().to_string();
                        assert_eq!(range, format!("bytes {start}-{end}/{len}"));
                        let tag = piece.headers()["etag"].to_str().unwrap().to_string();
                        (tag, piece.bytes().await.unwrap())
                    })
                })
                .collect();
            let mut whole = Vec::new();
            for piece in pieces {
                let (tag, bytes) = piece.await.unwrap();
                assert_eq!(tag, etag, "every piece names the same file");
                whole.extend_from_slice(&bytes);
            }
            assert_eq!(whole, *file.content, "{} whole from its pieces", file.path);
        }
    }
}
