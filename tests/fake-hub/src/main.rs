//! `fake-hub`: the test hub as a process, for benchmarks and for trying the app against a local hub.
//!
//! Usage: fake-hub [--port N] [--repo ORG/NAME] [--files N] [--file-mb M] [--throttle BYTES_PER_SEC] [--xet]
//!                 [--discover] [--ollama]
//! Serves one generated repo of N files of M MiB each (LFS, through the CDN redirect) plus a config.json, and
//! prints the endpoint on its first line. `--xet` stores the LFS files in a local Xet CAS too, as today's Hub does. `--discover` adds searchable repos for the Discover view: a GGUF repo
//! with two quantisations and a hostile model card, a gated repo, and a few more with download counts.

use fake_hub::{gguf_model, noise, FakeHub, HubFile, RepoMeta};

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
    if args.iter().any(|a| a == "--xet") {
        hub.add_xet_repo(&repo, list).await;
    } else {
        hub.add_repo(&repo, list);
    }
    if args.iter().any(|a| a == "--discover") {
        discover_repos(&hub);
    }
    if let Some(rate) = arg("--throttle").and_then(|r| r.parse().ok()) {
        hub.throttle(Some(rate));
    }
    println!("{}", hub.endpoint());
    // A local Ollama too, with one model: its host on the second line.
    let _ollama = if args.iter().any(|a| a == "--ollama") {
        let ollama = fake_hub::ollama::FakeOllama::start().await;
        ollama.add("llama3.2:1b", 1_300_000_000, "llama");
        println!("ollama {}", ollama.host());
        Some(ollama)
    } else {
        None
    };
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

/// A model card that tries to run a script and to link to `javascript:`; the app must show neither.
const HOSTILE_CARD: &str = "---\nlicense: apache-2.0\n---\n# Tiny Llama GGUF\n\n\
    A small model for trying things out.\n\n\
    <script>window.__pwned = true; document.title = 'pwned';</script>\n\n\
    <img src=x onerror=\"window.__pwned = true\">\n\n\
    [Click me](javascript:window.__pwned=true) or read [the guide](https://example.org/guide).\n\n\
    | quant | use |\n|---|---|\n| Q4_K_M | most people |\n| Q8_0 | best quality |\n";

fn discover_repos(hub: &FakeHub) {
    let meta = |downloads: u64, task: &str, library: &str| RepoMeta {
        downloads,
        likes: downloads / 100,
        trending: downloads / 10,
        pipeline_tag: Some(task.into()),
        library_name: Some(library.into()),
        tags: vec![library.into()],
        last_modified: "2026-06-30T12:00:00.000Z".into(),
        card_data: None,
    };
    hub.add_repo(
        "acme/tiny-llama-GGUF",
        vec![
            HubFile::new("README.md", HOSTILE_CARD.as_bytes().to_vec(), false),
            HubFile::new("tiny-llama.Q4_K_M.gguf", gguf_model("llama", 8, 3 << 20, 11), true),
            HubFile::new("tiny-llama.Q8_0.gguf", gguf_model("llama", 8, 6 << 20, 12), true),
        ],
    );
    hub.set_meta("acme/tiny-llama-GGUF", meta(1_234_567, "text-generation", "gguf"));
    hub.add_repo("meta/llama-gated", vec![HubFile::new("config.json", b"{}".to_vec(), false)]);
    hub.set_meta("meta/llama-gated", meta(9_000_000, "text-generation", "transformers"));
    hub.gate("meta/llama-gated", "hf_secret");
    for (i, (id, task, library)) in [
        ("acme/llama-embed", "feature-extraction", "sentence-transformers"),
        ("acme/whisper-llama", "automatic-speech-recognition", "transformers"),
        ("other/llama-chat", "text-generation", "transformers"),
    ]
    .into_iter()
    .enumerate()
    {
        hub.add_repo(
            id,
            vec![HubFile::new("config.json", br#"{"architectures":["LlamaForCausalLM"]}"#.to_vec(), false)],
        );
        hub.set_meta(id, meta(1000 * (i as u64 + 1), task, library));
    }
}
