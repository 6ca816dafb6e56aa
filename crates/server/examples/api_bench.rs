//! `mm serve`'s benchmark (`scripts/bench --serve` runs it in release): requests per second for the model lists
//! (`/mm/v1/models`, `/v1/models`) with 1,000 cached GGUF models, over real HTTP with concurrent clients; and the latency of a download's progress
//! event from the core's queue to a Server-Sent Events client.
//!
//! Usage: api_bench [--models N] [--seconds S] [--clients C]

use fake_hub::{noise, FakeHub, HubFile};
use mm_core::download::DownloadEvent;
use mm_core::settings::SettingsStore;
use mm_core::{Manager, ManagerConfig};
use std::path::Path;
use std::time::{Duration, Instant};

/// A cache of `n` small complete GGUF models of two files each, as the Hub's cache layout has them.
fn fill_cache(cache: &Path, n: usize) {
    for i in 0..n {
        let repo = cache.join(format!("models--bench--model-{i:04}-GGUF"));
        let commit = format!("{i:040x}");
        std::fs::create_dir_all(repo.join("blobs")).unwrap();
        let files: [(&str, &[u8]); 2] =
            [("config.json", br#"{"architectures":["LlamaForCausalLM"]}"#), ("model-Q4_K_M.gguf", b"GGUF\x03\0\0\0")];
        for (k, (name, bytes)) in files.into_iter().enumerate() {
            let blob = format!("{:064x}", i * 2 + k + 1);
            std::fs::write(repo.join("blobs").join(&blob), bytes).unwrap();
            mm_core::cache::write::link_snapshot(&repo, &commit, name, &blob).unwrap();
        }
        mm_core::cache::write::write_ref(&repo, "main", &commit).unwrap();
    }
}

/// `clients` clients asking for `url` in a loop for `seconds`: requests a second, latency median and p99 (ms).
async fn hammer(http: &reqwest::Client, url: &str, clients: u64, seconds: u64) -> (f64, f64, f64) {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (http, url) = (http.clone(), url.to_string());
        tasks.push(tokio::spawn(async move {
            let mut times = Vec::new();
            while Instant::now() < deadline {
                let started = Instant::now();
                let body = http.get(&url).send().await.unwrap().bytes().await.unwrap();
                assert!(body.len() > 1000);
                times.push(started.elapsed().as_secs_f64() * 1000.0);
            }
            times
        }));
    }
    let mut times: Vec<f64> = Vec::new();
    for task in tasks {
        times.extend(task.await.unwrap());
    }
    times.sort_by(|a, b| a.partial_cmp(b).unwrap());
    (times.len() as f64 / seconds as f64, percentile(&times, 0.5), percentile(&times, 0.99))
}

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

#[tokio::main]
async fn main() {
    let (models, seconds, clients) = (arg("--models", 1000) as usize, arg("--seconds", 5), arg("--clients", 4));
    let dir = tempfile::tempdir().unwrap();
    fill_cache(&dir.path().join("cache"), models);
    let hub = FakeHub::start().await;
    let config = ManagerConfig {
        cache_dir: Some(dir.path().join("cache")),
        hub: Some(mm_core::hub::HubConfig { endpoint: hub.endpoint(), ..Default::default() }),
        ollama: Some(mm_core::ollama::Ollama::new("127.0.0.1:9")),
        ..ManagerConfig::new(SettingsStore::new(dir.path().join("settings.json")), dir.path().join("data"))
    };
    let manager = Manager::open(config);
    // As `mm serve` does.
    manager.keep_library_current();
    let stop = tokio_util::sync::CancellationToken::new();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let app = mm_server::router(manager.clone(), mm_server::Access::default(), stop.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let http = reqwest::Client::new();

    // The lists: C clients asking in a loop for S seconds, each list in turn.
    let listed: serde_json::Value = http.get(format!("{url}/mm/v1/models")).send().await.unwrap().json().await.unwrap();
    assert_eq!(listed.as_array().unwrap().len(), models);
    let served: serde_json::Value = http.get(format!("{url}/v1/models")).send().await.unwrap().json().await.unwrap();
    assert_eq!(served["data"].as_array().unwrap().len(), models);
    for path in ["/mm/v1/models", "/v1/models"] {
        let size = http.get(format!("{url}{path}")).send().await.unwrap().bytes().await.unwrap().len();
        let (rate, median, p99) = hammer(&http, &format!("{url}{path}"), clients, seconds).await;
        println!(
            "GET {path}, {models} models ({} KiB), {clients} clients: {rate:.0} requests/s; latency median {median:.1} ms, p99 {p99:.1} ms",
            size / 1024
        );
    }

    // Progress events: when the core's queue publishes one, and when an SSE client reads it.
    hub.add_repo("bench/stream", vec![HubFile::new("model.safetensors", noise(8 << 20, 1), true)]);
    hub.throttle(Some(4 << 20));
    let mut core_events = manager.subscribe();
    let mut sse = http.get(format!("{url}/mm/v1/events")).send().await.unwrap();
    let published = std::sync::Arc::new(std::sync::Mutex::new(std::collections::HashMap::new()));
    let sink = published.clone();
    tokio::spawn(async move {
        while let Ok(event) = core_events.recv().await {
            if let DownloadEvent::Progress(p) = event {
                sink.lock().unwrap().insert(p.bytes_done, Instant::now());
            }
        }
    });
    let started = http.post(format!("{url}/mm/v1/downloads")).json(&serde_json::json!({ "repo": "bench/stream" }));
    assert_eq!(started.send().await.unwrap().status(), 202);
    let mut latencies = Vec::new();
    let mut buffer = String::new();
    'read: while let Some(chunk) = sse.chunk().await.unwrap() {
        let now = Instant::now();
        buffer.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            let Some(data) = block.lines().find_map(|l| l.strip_prefix("data:")) else { continue };
            let event: serde_json::Value = serde_json::from_str(data.trim()).unwrap_or_default();
            if block.contains("event: download-progress") {
                let done = event["bytesDone"].as_u64().unwrap_or(0);
                if let Some(at) = published.lock().unwrap().get(&done) {
                    latencies.push(now.duration_since(*at).as_secs_f64() * 1000.0);
                }
                if event["state"] == "completed" {
                    break 'read;
                }
            }
        }
    }
    latencies.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!(
        "progress event, queue to SSE client: {} events, latency median {:.2} ms, p99 {:.2} ms",
        latencies.len(),
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99)
    );
    stop.cancel();
}
