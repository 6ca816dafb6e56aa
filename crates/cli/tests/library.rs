//! `mm info`, `mm rm`, `mm verify`, `mm du`, `mm type` and `mm config` as real processes on a real cache.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::Output;

mod common;

const C1: &str = "1111111111111111111111111111111111111111";
const C2: &str = "2222222222222222222222222222222222222222";

struct Env {
    cache: tempfile::TempDir,
    data: tempfile::TempDir,
}

impl Env {
    fn new() -> Env {
        Env { cache: tempfile::tempdir().unwrap(), data: tempfile::tempdir().unwrap() }
    }

    fn mm(&self, args: &[&str]) -> Output {
        common::mm(self.cache.path(), self.data.path())
            .args(args)
            .env("XDG_DATA_HOME", self.data.path())
            .env("HF_HUB_OFFLINE", "1")
            .output()
            .unwrap()
    }

    fn json(&self, args: &[&str]) -> serde_json::Value {
        let out = self.mm(args);
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// A blob named by the sha256 of `content`, linked at `path` in `commit`.
    fn put(&self, commit: &str, path: &str, content: &[u8]) -> String {
        use sha2::Digest;
        let repo = self.cache.path().join("models--acme--m");
        let blob: String = sha2::Sha256::digest(content).iter().map(|b| format!("{b:02x}")).collect();
        fs::create_dir_all(repo.join("blobs")).unwrap();
        fs::write(repo.join("blobs").join(&blob), content).unwrap();
        let link = repo.join("snapshots").join(commit).join(path);
        fs::create_dir_all(link.parent().unwrap()).unwrap();
        symlink(Path::new("../..").join("blobs").join(&blob), link).unwrap();
        blob
    }
}

fn two_revisions(env: &Env) -> String {
    let shared = env.put(C1, "model.gguf", &[7u8; 4000]);
    env.put(C1, "old.json", b"{}");
    env.put(C2, "model.gguf", &[7u8; 4000]);
    let repo = env.cache.path().join("models--acme--m");
    fs::create_dir_all(repo.join("refs")).unwrap();
    fs::write(repo.join("refs/main"), C2).unwrap();
    fs::write(repo.join("refs/v1"), C1).unwrap();
    shared
}

#[test]
fn info_rm_and_dry_runs() {
    let env = Env::new();
    let shared = two_revisions(&env);
    let info = env.json(&["info", "acme/m", "--json"]);
    assert_eq!(info["model"]["id"], "acme/m");
    assert_eq!(info["revisions"].as_array().unwrap().len(), 2);
    assert_eq!(info["revisions"][0]["refs"][0], "main");
    let text = String::from_utf8(env.mm(&["info", "acme/m"]).stdout).unwrap();
    assert!(text.contains(&shared), "hashes are shown: {text}");

    let dry = env.json(&["rm", "acme/m", "--revision", "v1", "--dry-run", "--json"]);
    assert_eq!((dry["bytesFreed"].as_u64(), dry["dryRun"].as_bool()), (Some(2), Some(true)));
    let out = env.mm(&["rm", "acme/m", "--revision", "v1"]);
    assert!(String::from_utf8_lossy(&out.stdout)
        .starts_with("Freed 2 B (1 blob) by deleting acme/m revision v1: 4.00 kB before, 4.00 kB after"));
    assert!(env.cache.path().join("models--acme--m/blobs").join(&shared).exists());
    let out = env.mm(&["rm", "acme/m"]);
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("Freed 4.00 kB"));
    let out = env.mm(&["rm", "acme/m"]);
    assert_eq!(out.status.code(), Some(3), "not-found");
    assert_eq!(String::from_utf8_lossy(&out.stderr).trim(), "error[not-found]: no model \"acme/m\" in the library");
}

#[test]
fn verify_reports_a_corrupt_file_with_the_checksum_status() {
    let env = Env::new();
    let shared = two_revisions(&env);
    let ok = env.mm(&["verify", "acme/m"]);
    assert!(ok.status.success());
    assert!(String::from_utf8_lossy(&ok.stdout).contains("all 1 files match their hashes"));
    let blob = env.cache.path().join("models--acme--m/blobs").join(&shared);
    let mut bytes = fs::read(&blob).unwrap();
    bytes[100] ^= 0x40;
    fs::write(&blob, bytes).unwrap();
    let bad = env.mm(&["verify", "acme/m"]);
    assert_eq!(bad.status.code(), Some(8));
    let stdout = String::from_utf8_lossy(&bad.stdout);
    assert!(stdout.starts_with(&format!("model.gguf: corrupt: expected {shared}, got ")), "{stdout}");
    assert!(stdout.contains("run `mm verify acme/m --repair`"));
}

#[test]
fn du_reports_and_cleans_orphans() {
    let env = Env::new();
    two_revisions(&env);
    fs::write(env.cache.path().join("models--acme--m/blobs").join("e".repeat(64)), [1u8; 500]).unwrap();
    let report = env.json(&["du", "--json"]);
    assert_eq!(report["storage"]["reclaimableBytes"], 500);
    assert_eq!(report["storage"]["models"][0]["id"], "acme/m");
    let out = env.mm(&["du", "--clean"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("Cleaned up 1 file and 0 detached revisions, freed 500 B"));
    assert_eq!(env.json(&["du", "--json"])["storage"]["reclaimableBytes"], 0);
}

/// A revision no ref names any more (its tag was deleted) is shown, then pruned, as `hf cache prune` does: its own
/// blobs go, those the named revision shares stay, and the named revision is whole.
#[test]
fn du_prunes_a_revision_nothing_names() {
    let env = Env::new();
    two_revisions(&env);
    fs::remove_file(env.cache.path().join("models--acme--m/refs/v1")).unwrap();
    // Fetched two days ago (one fetched within a day is kept: a download by commit names no ref).
    let snapshot = env.cache.path().join(format!("models--acme--m/snapshots/{C1}"));
    let two_days_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(2 * 24 * 3600);
    fs::File::open(&snapshot).unwrap().set_modified(two_days_ago).unwrap();
    let report = env.json(&["du", "--json"]);
    let detached = &report["storage"]["detachedRevisions"];
    assert_eq!(detached.as_array().unwrap().len(), 1, "{report:#}");
    assert_eq!(
        (detached[0]["commit"].as_str(), detached[0]["bytes"].as_u64()),
        (Some(C1), Some(2)),
        "only old.json is its own"
    );
    assert!(String::from_utf8_lossy(&env.mm(&["du"]).stdout).contains("(no branch or tag names it): 2 B"));
    let out = env.mm(&["du", "--clean"]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("1 detached revision, freed 2 B"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let info = env.json(&["info", "acme/m", "--json"]);
    let revisions = info["revisions"].as_array().unwrap();
    assert_eq!((revisions.len(), revisions[0]["commit"].as_str()), (1, Some(C2)), "{info:#}");
    assert!(
        env.cache.path().join(format!("models--acme--m/snapshots/{C2}/model.gguf")).exists(),
        "the shared blob stays"
    );
    assert!(env.mm(&["verify", "acme/m"]).status.success());
}

#[test]
fn config_and_types_persist_in_the_shared_settings_file() {
    let env = Env::new();
    two_revisions(&env);
    assert_eq!(String::from_utf8(env.mm(&["config", "get", "maxConcurrentDownloads"]).stdout).unwrap().trim(), "3");
    assert!(env.mm(&["config", "set", "maxConcurrentDownloads", "5"]).status.success());
    assert!(env.mm(&["config", "set", "token", "hf_abcdefghijklmnop"]).status.success());
    let all = env.json(&["config", "get", "--json"]);
    assert_eq!(all["maxConcurrentDownloads"], 5);
    assert_eq!(all["tokenHint"], "hf_…mnop");
    let stored = fs::read_to_string(env.data.path().join("dev.model-manager.app/settings.json")).unwrap();
    assert!(stored.contains("\"maxConcurrentDownloads\": 5"));

    let bad = env.mm(&["config", "set", "maxConcurrentDownloads", "99"]);
    assert_eq!(bad.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&bad.stderr).trim(),
        "error[invalid-input]: maxConcurrentDownloads must be from 1 to 16, not 99"
    );
    let unknown = env.mm(&["config", "get", "colour"]);
    assert_eq!(unknown.status.code(), Some(2));
    // Every setting is listed, with what it is and its environment variable.
    let listed = String::from_utf8(env.mm(&["config", "get"]).stdout).unwrap();
    for setting in mm_core::settings::table() {
        assert!(listed.contains(&format!("{} = ", setting.key)) && listed.contains(&setting.env_var()), "{listed}");
    }
    // The environment overrides a setting for one process, and the file keeps what was set.
    let overridden = common::mm(env.cache.path(), env.data.path())
        .args(["config", "get", "maxConcurrentDownloads"])
        .env("XDG_DATA_HOME", env.data.path())
        .env("MM_MAX_CONCURRENT_DOWNLOADS", "7")
        .output()
        .unwrap();
    assert_eq!(String::from_utf8(overridden.stdout).unwrap().trim(), "7");
    assert_eq!(String::from_utf8(env.mm(&["config", "get", "maxConcurrentDownloads"]).stdout).unwrap().trim(), "5");

    assert!(env.mm(&["type", "acme/m", "embedding"]).status.success());
    let listed = env.json(&["list", "--json"]);
    assert_eq!(
        (listed["models"][0]["modelType"].as_str(), listed["models"][0]["typeOrigin"].as_str()),
        (Some("embedding"), Some("user"))
    );
    let bad = env.mm(&["type", "acme/m", "robot"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(env.mm(&["type", "acme/m", "auto"]).status.success());
    assert_eq!(env.json(&["list", "--json"])["models"][0]["modelType"], "text-generation");

    // A settings file cut in half: the command still works, warns, and keeps the broken file aside.
    let path = env.data.path().join("dev.model-manager.app/settings.json");
    let text = fs::read(&path).unwrap();
    fs::write(&path, &text[..text.len() / 2]).unwrap();
    let out = env.mm(&["config", "get", "maxConcurrentDownloads"]);
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "3");
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("warning: The settings file could not be read"));
}

#[test]
fn activate_switch_and_find_the_active_model_from_another_program() {
    let env = Env::new();
    two_revisions(&env);
    let out = env.mm(&["activate", "acme/m", "--type", "text-generation"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("acme/m is the active text-generation model"));

    // Another program needs nothing but the path or the manifest.
    let path = String::from_utf8(env.mm(&["active", "text-generation", "--path"]).stdout).unwrap();
    let snapshot = env.cache.path().join("models--acme--m/snapshots").join(C2);
    assert_eq!(path.trim(), snapshot.to_str().unwrap());
    let link = env.data.path().join("dev.model-manager.app/active/text-generation");
    assert_eq!(fs::read(link.join("model.gguf")).unwrap(), vec![7u8; 4000]);
    let manifest: serde_json::Value =
        serde_json::from_slice(&fs::read(env.data.path().join("dev.model-manager.app/active.json")).unwrap()).unwrap();
    assert_eq!(manifest["text-generation"]["id"], "acme/m");
    assert_eq!(manifest["text-generation"]["format"], "gguf");

    // The old revision can be chosen; the listing marks the model active.
    let out = env.json(&["activate", "acme/m", "--type", "text-generation", "--revision", "v1", "--json"]);
    assert_eq!(out["active"]["revision"], C1);
    assert_eq!(env.json(&["list", "--json"])["models"][0]["status"], "active");
    let err = env.mm(&["rm", "acme/m"]);
    assert_eq!(err.status.code(), Some(11), "an active model is guarded");

    let out = env.mm(&["deactivate", "text-generation"]);
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("No text-generation model is active now (was acme/m)"));
    let none = env.mm(&["active", "text-generation"]);
    assert_eq!(none.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&none.stderr).contains("no text-generation model is active"));
    let bad = env.mm(&["activate", "acme/m", "--type", "robot"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(!link.exists());
}

#[test]
fn system_and_compat_describe_the_machine_and_judge_a_file() {
    let env = Env::new();
    let sys = env.json(&["system", "--json"]);
    assert!(sys["ramTotal"].as_u64().unwrap() > 0);
    assert!(sys["cpu"]["threads"].as_u64().unwrap() >= 1);
    assert!(sys["gpus"].is_array());
    // The bug-report text, as the app's "Copy diagnostics" makes it: the app's log tail, never the token.
    let logs = env.data.path().join("dev.model-manager.app/logs");
    fs::create_dir_all(&logs).unwrap();
    fs::write(logs.join("model-manager.2026-12-01.log"), "WARN download{id=3}: failed code=network\n").unwrap();
    let out = env.mm(&["config", "set", "token", "hf_diagnostics_secret"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = env.mm(&["system", "--diagnostics"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    for expected in ["mm 0.1.0 (core 0.1.0)", "Hub token: set", "failed code=network", &logs.display().to_string()] {
        assert!(text.contains(expected), "{expected} is not in:\n{text}");
    }
    assert!(!text.contains("hf_diagnostics_secret"));
    let doc = env.json(&["system", "--diagnostics", "--json"]);
    assert!(doc["diagnostics"].as_str().unwrap().contains("Hub token: set"));

    // A hand-made safetensors file: 1000 F16 parameters.
    let header = br#"{"w":{"dtype":"F16","shape":[10,100],"data_offsets":[0,2000]}}"#;
    let mut file = (header.len() as u64).to_le_bytes().to_vec();
    file.extend_from_slice(header);
    file.extend(vec![0u8; 2000]);
    let path = env.cache.path().join("tiny.safetensors");
    fs::write(&path, &file).unwrap();
    let report = env.json(&["compat", path.to_str().unwrap(), "--json"]);
    let entry = &report["report"]["entries"][0];
    assert_eq!(entry["requirements"]["parameters"], 1000);
    assert_eq!(entry["requirements"]["weightsBytes"], 2000);
    assert!(["fits-gpu", "cpu-only"].contains(&entry["now"]["fit"].as_str().unwrap()));

    fs::write(&path, b"\xff\xff\xff\xff\xff\xff\xff\xffjunk").unwrap();
    let bad = env.mm(&["compat", path.to_str().unwrap()]);
    assert_eq!(bad.status.code(), Some(2));
    let said = String::from_utf8_lossy(&bad.stderr);
    assert!(said.starts_with("error[invalid-input]: not a valid safetensors file: "), "{said}");
    assert!(said.contains("not a safetensors file"), "{said}");
    // A file that is no model (a key, say): nothing of its first bytes is echoed back.
    fs::write(&path, b"-----BEGIN OPENSSH PRIVATE KEY-----").unwrap();
    let key = env.mm(&["compat", path.to_str().unwrap()]);
    let said = String::from_utf8_lossy(&key.stderr);
    let as_number = u64::from_le_bytes(*b"-----BEG").to_string();
    assert!(said.contains("not a safetensors file") && !said.contains(&as_number), "{said}");
}
