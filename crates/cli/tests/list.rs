//! `mm list` as a real process against a real cache folder.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;

mod common;

const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";

fn mm(cache: &Path, args: &[&str]) -> std::process::Output {
    let home = tempfile::tempdir().unwrap();
    common::mm(cache, home.path()).args(args).output().expect("mm runs")
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
    let row: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(&row[..7], ["acme/tiny-llm", "text-generation", "gguf", "2.05", "kB", "available", "main"], "{stdout}");
    assert!(lines[1].contains("(0123456)"), "{stdout}");
    assert!(stdout.contains("1 model, 2.05 kB on disk"), "{stdout}");

    let json = mm(tmp.path(), &["list", "--json"]);
    assert!(json.status.success());
    let doc: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let model = &doc["models"][0];
    assert_eq!(
        (model["id"].as_str(), model["status"].as_str(), model["format"].as_str()),
        (Some("acme/tiny-llm"), Some("available"), Some("gguf"))
    );
    assert_eq!(model["revision"], "main");
    assert_eq!(model["size"], 2048);
}

#[test]
fn revisions_shows_each_cached_revision() {
    let tmp = tempfile::tempdir().unwrap();
    cache_with_one_model(tmp.path());
    let out = mm(tmp.path(), &["list", "--revisions"]);
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.lines().nth(1).unwrap().contains("main (0123456)"), "{stdout}");
    assert!(stdout.contains("1 repo, 2.05 kB on disk"), "{stdout}");
    let json = mm(tmp.path(), &["list", "--revisions", "--json"]);
    let doc: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(doc["repos"][0]["repoId"], "acme/tiny-llm");
    assert_eq!(doc["repos"][0]["revisions"][0]["files"][0]["size"], 2048);
}

#[test]
fn filters_narrow_the_list_and_bad_filters_name_the_choices() {
    let tmp = tempfile::tempdir().unwrap();
    cache_with_one_model(tmp.path());
    let none = mm(tmp.path(), &["list", "--type", "embedding"]);
    assert!(String::from_utf8_lossy(&none.stdout).starts_with("No models"));
    let some = mm(tmp.path(), &["list", "--search", "TINY", "--status", "available", "--sort", "size", "--desc"]);
    assert!(String::from_utf8_lossy(&some.stdout).contains("acme/tiny-llm"));
    let bad = mm(tmp.path(), &["list", "--type", "robot"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("\"robot\" is not a model type: use one of text-generation"));
}

#[test]
fn says_plainly_when_the_cache_is_empty_or_missing() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("never-created");
    let out = mm(&missing, &["list", "--revisions"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("does not exist yet"));
    let out = mm(tmp.path(), &["list", "--revisions"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("is empty"));
    let out = mm(tmp.path(), &["list"]);
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("No models (cache: "));
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
