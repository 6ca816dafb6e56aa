//! `mm list` as a real process against a real cache folder.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::Command;

const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";

fn mm(cache: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_mm"))
        .args(args)
        .env("HF_HUB_CACHE", cache)
        .env_remove("HF_HOME")
        .output()
        .expect("mm runs")
}

fn cache_with_one_model(root: &Path) {
    let repo = root.join("models--acme--tiny-llm");
    fs::create_dir_all(repo.join("blobs")).unwrap();
    fs::write(repo.join("blobs/aaaa"), vec![1u8; 2048]).unwrap();
    fs::create_dir_all(repo.join("snapshots").join(COMMIT)).unwrap();
    symlink("../../blobs/aaaa", repo.join("snapshots").join(COMMIT).join("model.gguf")).unwrap();
    fs::create_dir_all(repo.join("refs")).unwrap();
    fs::write(repo.join("refs/main"), COMMIT).unwrap();
}

#[test]
fn lists_a_model_as_a_table_and_as_json() {
    let tmp = tempfile::tempdir().unwrap();
    cache_with_one_model(tmp.path());

    let text = mm(tmp.path(), &["list"]);
    assert!(text.status.success());
    let stdout = String::from_utf8(text.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(lines[0].starts_with("MODEL"), "{stdout}");
    assert!(lines[1].starts_with("acme/tiny-llm"), "{stdout}");
    assert!(lines[1].contains("main (0123456)"), "{stdout}");
    assert!(lines[1].contains("2.05 kB") && lines[1].contains("complete"), "{stdout}");
    assert!(stdout.contains("1 repo, 2.05 kB on disk"), "{stdout}");

    let json = mm(tmp.path(), &["list", "--json"]);
    assert!(json.status.success());
    let doc: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(doc["repos"][0]["repoId"], "acme/tiny-llm");
    assert_eq!(doc["repos"][0]["status"], "complete");
    assert_eq!(doc["repos"][0]["revisions"][0]["refs"][0], "main");
    assert_eq!(doc["repos"][0]["revisions"][0]["files"][0]["size"], 2048);
}

#[test]
fn says_plainly_when_the_cache_is_empty_or_missing() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("never-created");
    let out = mm(&missing, &["list"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("does not exist yet"));
    let out = mm(tmp.path(), &["list"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("is empty"));
}

#[test]
fn fails_with_a_stable_code_when_the_cache_is_a_file() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("cache-file");
    fs::write(&file, "x").unwrap();

    let out = mm(&file, &["list"]);
    assert_eq!(out.status.code(), Some(2), "invalid-input exits 2");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.starts_with("error[invalid-input]: the model cache"), "{stderr}");

    let out = mm(&file, &["list", "--json"]);
    assert_eq!(out.status.code(), Some(2));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["error"]["code"], "invalid-input");
    assert!(doc["error"]["message"].as_str().unwrap().contains("is a file, not a folder"));
}
