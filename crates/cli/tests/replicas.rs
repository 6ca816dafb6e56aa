//! Replicas: two `mm serve` over one shared cache folder behind a real load balancer (Debian's haproxy, round
//! robin, health-checked), serving the real `huggingface_hub`. Each replica keeps its own journal (its own data
//! folder); the cache's blob locks work across the processes, so a file several clients pull through both
//! replicas at once is fetched upstream once; a replica killed mid-pull-through leaves nothing partial visible,
//! and the client's retry through the other replica ends with the right bytes.

use fake_hub::{noise, FakeHub, Host, HubFile};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::Haproxy;

/// One replica: `mm serve` over the shared cache, with a data folder (and so a journal) of its own.
struct Replica {
    child: Option<Child>,
    url: String,
    _home: tempfile::TempDir,
}

impl Replica {
    fn start(hub: &FakeHub, cache: &Path) -> Replica {
        let home = tempfile::tempdir().unwrap();
        let mut cmd = common::mm(cache, home.path());
        cmd.env("HF_ENDPOINT", hub.endpoint()).args(["serve", "--json", "--listen", "127.0.0.1:0"]);
        let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().unwrap();
        let mut first = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut first).unwrap();
        let ready: Value = serde_json::from_str(&first).unwrap_or_else(|e| panic!("{e}: {first:?}"));
        Replica { child: Some(child), url: ready["listening"].as_str().unwrap().to_string(), _home: home }
    }

    fn address(&self) -> &str {
        self.url.trim_start_matches("http://")
    }

    /// Whether it is pulling something through now.
    async fn fetching(&self) -> bool {
        let downloads: Value =
            reqwest::get(format!("{}/mm/v1/downloads", self.url)).await.unwrap().json().await.unwrap();
        downloads.as_array().is_some_and(|d| d.iter().any(|d| d["state"] == "downloading"))
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        self.kill();
    }
}

/// hf_hub_download of one file through `endpoint`: prints its sha256.
const ONE_FILE: &str = r#"
import hashlib, sys
from huggingface_hub import hf_hub_download
path = hf_hub_download(sys.argv[3], sys.argv[4], endpoint=sys.argv[1], cache_dir=sys.argv[2])
print(hashlib.sha256(open(path, "rb").read()).hexdigest())
"#;

fn client(endpoint: &str, cache: &Path, repo: &str, file: &str) -> tokio::process::Command {
    let mut py = tokio::process::Command::new(common::python());
    py.args(["-c", ONE_FILE, endpoint, cache.to_str().unwrap(), repo, file])
        .env("HF_HUB_DISABLE_TELEMETRY", "1")
        .env("HF_HUB_DOWNLOAD_TIMEOUT", "20")
        .env_remove("HF_TOKEN")
        .env_remove("HTTP_PROXY")
        .env_remove("http_proxy")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    py
}

async fn sha_of(py: tokio::process::Child) -> String {
    let out = py.wait_with_output().await.unwrap();
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "the client failed: {said}");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn snapshot_file(cache: &Path, repo: &str, commit: &str, file: &str) -> PathBuf {
    cache.join(format!("models--{}", repo.replace('/', "--"))).join("snapshots").join(commit).join(file)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_behind_haproxy_fetch_each_file_upstream_once_for_many_clients() {
    let hub = FakeHub::start().await;
    let big = HubFile::new("model.safetensors", noise(8 << 20, 41), true);
    let commit = hub.add_repo("acme/shared", vec![HubFile::new("config.json", b"{}".to_vec(), false), big.clone()]);
    // Slow enough that every client asks while the first fetch is under way.
    hub.throttle(Some(4 << 20));
    let cache = tempfile::tempdir().unwrap();
    let replicas = [Replica::start(&hub, cache.path()), Replica::start(&hub, cache.path())];
    let balancer = Haproxy::start(&[replicas[0].address(), replicas[1].address()]);

    let homes: Vec<_> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
    let clients: Vec<_> = homes
        .iter()
        .map(|home| client(&balancer.url, home.path(), "acme/shared", "model.safetensors").spawn().unwrap())
        .collect();
    for py in clients {
        assert_eq!(sha_of(py).await, big.sha256, "every client got the file whole");
    }
    for replica in &replicas {
        let stats: Value = reqwest::get(format!("{}/mm/v1/stats", replica.url)).await.unwrap().json().await.unwrap();
        assert!(stats["mirrorHits"].as_u64() > Some(0), "both replicas served clients: {stats}");
    }
    hub.cdn_settled().await;
    let fetched: Vec<_> = hub.requests().into_iter().filter(|r| r.host == Host::Cdn && r.method == "GET").collect();
    assert_eq!(fetched.len(), 1, "one upstream fetch for four clients through two replicas: {fetched:#?}");
    let placed = snapshot_file(cache.path(), "acme/shared", &commit, "model.safetensors");
    assert_eq!(std::fs::read(placed).unwrap(), *big.content, "in the shared cache once, verified");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_killed_mid_pull_through_leaves_nothing_partial_and_the_client_finishes_through_the_other() {
    let hub = FakeHub::start().await;
    let big = HubFile::new("big.safetensors", noise(12 << 20, 42), true);
    let commit = hub.add_repo("acme/dying", vec![big.clone()]);
    hub.throttle(Some(2 << 20));
    let cache = tempfile::tempdir().unwrap();
    let mut replicas = [Replica::start(&hub, cache.path()), Replica::start(&hub, cache.path())];
    let balancer = Haproxy::start(&[replicas[0].address(), replicas[1].address()]);
    let home = tempfile::tempdir().unwrap();
    let py = client(&balancer.url, home.path(), "acme/dying", "big.safetensors").spawn().unwrap();

    // Once a few MB of it are in the shared cache's partial file, the replica fetching it dies.
    let partial = cache.path().join("models--acme--dying/blobs").join(format!("{}.incomplete", big.sha256));
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::fs::metadata(&partial).map_or(0, |m| m.len()) < 3 << 20 {
        assert!(Instant::now() < deadline, "the pull-through never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let fetching = if replicas[0].fetching().await { 0 } else { 1 };
    assert!(replicas[fetching].fetching().await, "one replica is pulling it through");
    replicas[fetching].kill();
    let visible = snapshot_file(cache.path(), "acme/dying", &commit, "big.safetensors");
    assert!(!visible.exists(), "a killed pull-through left its file visible");

    // The client's retry goes to the other replica (haproxy redispatches) and ends with the right bytes.
    assert_eq!(sha_of(py).await, big.sha256);
    // The survivor serves it whole to a new client, and the shared cache ends with it placed and verified.
    let other = tempfile::tempdir().unwrap();
    let again = client(&balancer.url, other.path(), "acme/dying", "big.safetensors").spawn().unwrap();
    assert_eq!(sha_of(again).await, big.sha256);
    let deadline = Instant::now() + Duration::from_secs(60);
    while !visible.exists() {
        assert!(Instant::now() < deadline, "the survivor never placed the file");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(std::fs::read(&visible).unwrap(), *big.content);
}
