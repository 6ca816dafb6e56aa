//! `mm search` and `mm catalog` as real processes against the fake hub.

use fake_hub::{FakeHub, HubFile, RepoMeta};
use std::path::Path;
use std::process::Command;

mod common;
use common::run;

fn mm(hub: &FakeHub, home: &Path) -> Command {
    let mut cmd = common::mm(&home.join("hub"), home);
    cmd.env("HF_ENDPOINT", hub.endpoint());
    cmd
}

async fn hub() -> FakeHub {
    let hub = FakeHub::start().await;
    for (id, downloads, library) in [
        ("acme/llama-GGUF", 1_234_567, "gguf"),
        ("acme/llama-hf", 999, "transformers"),
        ("x/whisper", 5, "ctranslate2"),
    ] {
        hub.add_repo(id, vec![HubFile::new("config.json", b"{}".to_vec(), false)]);
        hub.set_meta(
            id,
            RepoMeta {
                downloads,
                likes: 12_500,
                pipeline_tag: Some("text-generation".into()),
                library_name: Some(library.into()),
                tags: vec![library.into()],
                last_modified: "2026-06-30T12:00:00.000Z".into(),
                ..RepoMeta::default()
            },
        );
    }
    hub.gate("acme/llama-hf", "t");
    hub
}

#[tokio::test]
async fn search_prints_a_table_or_json_and_filters_by_library() {
    let hub = hub().await;
    let home = tempfile::tempdir().unwrap();
    let mut cmd = mm(&hub, home.path());
    cmd.args(["search", "llama"]);
    let out = run(cmd).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("MODEL") && lines[0].contains("DOWNLOADS"), "{text}");
    assert!(lines[1].starts_with("acme/llama-GGUF") && lines[1].contains("1.2M") && lines[1].contains("12.5k"));
    assert!(lines[1].contains("2026-06-30"), "{text}");
    assert!(lines[2].starts_with("acme/llama-hf") && lines[2].ends_with("gated"), "{text}");
    assert_eq!(lines.len(), 3, "{text}");

    let mut cmd = mm(&hub, home.path());
    cmd.args(["search", "--library", "gguf", "--limit", "1", "--json"]);
    let out = run(cmd).await;
    let page: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(page["models"].as_array().unwrap().len(), 1);
    assert_eq!(page["models"][0]["id"], "acme/llama-GGUF");
    assert_eq!(page["next"], serde_json::Value::Null);
    let mut cmd = mm(&hub, home.path());
    cmd.args(["search", "--limit", "2"]);
    let text = String::from_utf8_lossy(&run(cmd).await.stdout).to_string();
    assert!(
        text.lines().last().unwrap().starts_with(&format!("More results: add --next '{}/api/models?", hub.endpoint())),
        "{text}"
    );
    let mut cmd = mm(&hub, home.path());
    cmd.args(["search", "--limit", "2", "--json"]);
    let page: serde_json::Value = serde_json::from_slice(&run(cmd).await.stdout).unwrap();
    let next = page["next"].as_str().expect("a next page").to_string();
    let mut cmd = mm(&hub, home.path());
    cmd.args(["search", "--limit", "2", "--json", "--next", &next]);
    let page: serde_json::Value = serde_json::from_slice(&run(cmd).await.stdout).unwrap();
    assert_eq!(page["models"][0]["id"], "x/whisper");
}

#[tokio::test]
async fn search_failures_exit_with_the_error_code() {
    let hub = hub().await;
    let home = tempfile::tempdir().unwrap();
    let mut cmd = mm(&hub, home.path());
    cmd.args(["search", "x", "--sort", "best"]);
    let out = run(cmd).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("error[invalid-input]: --sort best is not one of"));

    let mut cmd = mm(&hub, home.path());
    cmd.args(["search", "x", "--json"]).env("HF_HUB_OFFLINE", "1");
    let out = run(cmd).await;
    assert_eq!(out.status.code(), Some(5));
    let err: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(err["error"]["code"], "network");
    assert!(err["error"]["message"].as_str().unwrap().contains("HF_HUB_OFFLINE is set"));

    hub.fail_search(Some(500));
    let mut cmd = mm(&hub, home.path());
    cmd.args(["search", "x"]);
    let out = run(cmd).await;
    assert_eq!(out.status.code(), Some(5));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("the hub's model search failed") && stderr.contains("500 Internal Server Error"),
        "{stderr}"
    );
}

#[tokio::test]
async fn catalog_lists_the_starter_models_offline() {
    let hub = hub().await;
    let home = tempfile::tempdir().unwrap();
    let mut cmd = mm(&hub, home.path());
    cmd.args(["catalog", "--json"]).env("HF_HUB_OFFLINE", "1");
    let out = run(cmd).await;
    assert!(out.status.success());
    let catalog: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(catalog["offline"], true);
    let entries = catalog["entries"].as_array().unwrap();
    assert!(entries.len() >= 10);
    assert!(entries.iter().all(|e| e["installed"] == false && e["size"].as_u64().unwrap() > 0));
    let mut cmd = mm(&hub, home.path());
    cmd.arg("catalog");
    let text = String::from_utf8_lossy(&run(cmd).await.stdout).to_string();
    assert!(text.contains("Qwen/Qwen2.5-0.5B-Instruct-GGUF") && text.contains("Speech to text"), "{text}");
}
