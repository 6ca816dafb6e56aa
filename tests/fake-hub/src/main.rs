//! `fake-hub`: the test hub as a process, for benchmarks and for trying the app against a local hub.
//!
//! Usage: fake-hub [--port N] [--repo ORG/NAME] [--files N] [--file-mb M] [--throttle BYTES_PER_SEC]
//! Serves one generated repo of N files of M MiB each (LFS, through the CDN redirect) plus a config.json, and
//! prints the endpoint on its first line.

use fake_hub::{noise, FakeHub, HubFile};

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned();
    let port: u16 = arg("--port").and_then(|p| p.parse().ok()).unwrap_or(0);
    let repo = arg("--repo").unwrap_or_else(|| "bench/model".into());
    let files: usize = arg("--files").and_then(|n| n.parse().ok()).unwrap_or(8);
    let file_mb: usize = arg("--file-mb").and_then(|n| n.parse().ok()).unwrap_or(128);

    let hub = FakeHub::start_on(port).await;
    let mut list = vec![HubFile::new("config.json", br#"{"architectures":["LlamaForCausalLM"]}"#.to_vec(), false)];
    for i in 0..files {
        list.push(HubFile::new(
            &format!("model-{i:05}-of-{files:05}.safetensors"),
            safetensors(file_mb << 20, i as u64 + 7),
            true,
        ));
    }
    hub.add_repo(&repo, list);
    if let Some(rate) = arg("--throttle").and_then(|r| r.parse().ok()) {
        hub.throttle(Some(rate));
    }
    println!("{}", hub.endpoint());
    tokio::signal::ctrl_c().await.ok();
}

/// A valid safetensors file of about `size` bytes: one F16 tensor over random data, so headers parse.
fn safetensors(size: usize, seed: u64) -> Vec<u8> {
    let data = (size.saturating_sub(256) / 2) * 2;
    let mut header = format!(r#"{{"weight":{{"dtype":"F16","shape":[{}],"data_offsets":[0,{data}]}}}}"#, data / 2);
    while (8 + header.len()) % 8 != 0 {
        header.push(' ');
    }
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(header.as_bytes());
    out.extend(noise(data, seed));
    out
}
