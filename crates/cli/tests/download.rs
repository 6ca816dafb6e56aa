//! `mm download` and `mm cancel` as real processes against the fake hub, including a `kill -9` mid-download
//! followed by a resume that asks only for the missing bytes.

use fake_hub::{noise, FakeHub, Host, HubFile};
use std::fs;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::run as output;

fn mm(hub: &FakeHub, cache: &Path) -> Command {
    let mut cmd = common::mm(cache, cache);
    cmd.env("HF_ENDPOINT", hub.endpoint());
    cmd
}

async fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn exit_of(child: &mut Child) -> std::process::ExitStatus {
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn downloads_with_json_progress_lines_and_lists_the_result() {
    let hub = FakeHub::start().await;
    let cache = tempfile::tempdir().unwrap();
    let commit = hub.add_repo(
        "acme/tiny",
        vec![
            HubFile::new("config.json", b"{}".to_vec(), false),
            HubFile::new("model.safetensors", noise(500_000, 1), true),
        ],
    );
    let mut cmd = mm(&hub, cache.path());
    cmd.args(["download", "https://huggingface.co/acme/tiny", "--json"]);
    let out = output(cmd).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<serde_json::Value> =
        String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let last = lines.last().unwrap();
    assert_eq!(last["event"], "done");
    assert_eq!(last["progress"]["state"], "completed");
    assert_eq!(last["progress"]["commit"], commit);
    assert_eq!(last["progress"]["bytesDone"], 500_002);
    assert!(lines.iter().all(|l| l["event"] == "progress" || l["event"] == "done"));

    let mut list = mm(&hub, cache.path());
    list.args(["list", "--json"]);
    let listed: serde_json::Value = serde_json::from_slice(&output(list).await.stdout).unwrap();
    assert_eq!(listed["models"][0]["id"], "acme/tiny");
    assert_eq!(listed["models"][0]["status"], "available");
    assert_eq!(listed["models"][0]["pipelineTag"], "text-generation", "what the hub said was recorded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_download_killed_mid_way_resumes_from_its_partial_file() {
    let hub = FakeHub::start().await;
    let cache = tempfile::tempdir().unwrap();
    let big = HubFile::new("model.safetensors", noise(4_000_000, 2), true);
    hub.add_repo("acme/big", vec![big.clone()]);
    hub.throttle(Some(2_000_000));
    let partial = cache.path().join("models--acme--big/blobs").join(format!("{}.incomplete", big.sha256));

    let mut cmd = mm(&hub, cache.path());
    cmd.args(["download", "acme/big", "--json"]).stdout(Stdio::null()).stderr(Stdio::null());
    let mut child = cmd.spawn().unwrap();
    wait_until("a megabyte on disk", || fs::metadata(&partial).map(|m| m.len() >= 1_000_000).unwrap_or(false)).await;
    child.kill().unwrap(); // SIGKILL: no clean-up runs
    exit_of(&mut child).await;
    let kept = fs::metadata(&partial).unwrap().len();
    assert!((1_000_000..4_000_000).contains(&kept), "{kept} bytes kept");

    // The server logs a request when it stops writing it: wait for the killed transfer's entry before clearing.
    wait_until("the killed transfer to be logged", || hub.requests().iter().any(|r| r.host == Host::Cdn)).await;
    hub.throttle(None);
    hub.clear_requests();
    let mut again = mm(&hub, cache.path());
    again.args(["download", "acme/big"]);
    let out = output(again).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let cdn: Vec<_> = hub.requests().into_iter().filter(|r| r.host == Host::Cdn).collect();
    assert_eq!(cdn.len(), 1, "{cdn:?}");
    assert_eq!(cdn[0].range.as_deref(), Some(format!("bytes={kept}-").as_str()), "resumed where the file ended");
    assert_eq!(cdn[0].sent, 4_000_000 - kept, "only the missing bytes were sent");
    let blob = cache.path().join("models--acme--big/blobs").join(&big.sha256);
    assert_eq!(fs::read(blob).unwrap(), *big.content);
    assert!(!partial.exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_download_in_pieces_killed_mid_way_fetches_only_the_missing_pieces() {
    let hub = FakeHub::start().await;
    let cache = tempfile::tempdir().unwrap();
    let size = 24u64 << 20;
    let big = HubFile::new("model.safetensors", noise(size as usize, 4), true);
    hub.add_repo("acme/pieces", vec![big.clone()]);
    hub.throttle(Some(1_000_000));
    let blobs = cache.path().join("models--acme--pieces/blobs");
    let partial = blobs.join(format!("{}.incomplete", big.sha256));
    let record = blobs.join(format!("{}.incomplete.ranges", big.sha256));
    // The ranges on disk, as the record beside the partial file says.
    let recorded = || -> Vec<(u64, u64)> {
        let Ok(text) = fs::read(&record) else { return Vec::new() };
        let doc: serde_json::Value = serde_json::from_slice(&text).unwrap_or_default();
        doc["done"].as_array().into_iter().flatten().map(|r| (r[0].as_u64().unwrap(), r[1].as_u64().unwrap())).collect()
    };
    let bytes = |ranges: &[(u64, u64)]| ranges.iter().map(|(a, b)| b - a).sum::<u64>();

    let mut cmd = mm(&hub, cache.path());
    cmd.args(["download", "acme/pieces", "--json"]).stdout(Stdio::null()).stderr(Stdio::null());
    let mut child = cmd.spawn().unwrap();
    wait_until("3 MB recorded in pieces", || bytes(&recorded()) >= 3_000_000 && recorded().len() > 1).await;
    child.kill().unwrap(); // SIGKILL: no clean-up runs
    exit_of(&mut child).await;
    let kept = recorded();
    assert_eq!(fs::metadata(&partial).unwrap().len(), size, "the partial file has the file's size, with holes");
    assert!(bytes(&kept) < size);

    // The server logs a request when it stops writing it: wait until the killed transfers are all logged.
    let mut logged = 0;
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = hub.requests().len();
        if now == logged {
            break;
        }
        logged = now;
    }
    hub.throttle(None);
    hub.clear_requests();
    let mut again = mm(&hub, cache.path());
    again.args(["download", "acme/pieces"]);
    let out = output(again).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // Only what the record did not hold was asked for and sent; nothing it held was asked again.
    let cdn: Vec<_> = hub.requests().into_iter().filter(|r| r.host == Host::Cdn).collect();
    assert_eq!(cdn.iter().map(|r| r.sent).sum::<u64>(), size - bytes(&kept), "{cdn:?}");
    for r in &cdn {
        let (a, b) = r.range.as_deref().unwrap().strip_prefix("bytes=").unwrap().split_once('-').unwrap();
        let (a, b): (u64, u64) = (a.parse().unwrap(), b.parse::<u64>().unwrap() + 1);
        assert!(kept.iter().all(|&(s, e)| b <= s || a >= e), "{a}..{b} was on disk already: {kept:?}");
    }
    assert_eq!(fs::read(blobs.join(&big.sha256)).unwrap(), *big.content);
    assert!(!partial.exists() && !record.exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mm_cancel_stops_a_running_download_and_deletes_its_partial_files() {
    let hub = FakeHub::start().await;
    let cache = tempfile::tempdir().unwrap();
    let big = HubFile::new("model.gguf", noise(4_000_000, 3), true);
    hub.add_repo("acme/big", vec![big.clone()]);
    hub.throttle(Some(1_000_000));
    let partial = cache.path().join("models--acme--big/blobs").join(format!("{}.incomplete", big.sha256));

    let mut cmd = mm(&hub, cache.path());
    cmd.args(["download", "acme/big"]).stdout(Stdio::null()).stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    wait_until("bytes on disk", || fs::metadata(&partial).map(|m| m.len() > 100_000).unwrap_or(false)).await;

    let mut cancel = mm(&hub, cache.path());
    cancel.args(["cancel", "acme/big", "--json"]);
    let out = output(cancel).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["stoppedPid"], child.id());
    let status = exit_of(&mut child).await;
    assert_eq!(status.code(), Some(9), "the download exits with the cancelled status");
    assert!(!partial.exists(), "partial file deleted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mm_cancel_never_signals_a_process_that_only_reuses_a_dead_downloads_pid() {
    let hub = FakeHub::start().await;
    let cache = tempfile::tempdir().unwrap();
    // A download killed with -9 left its marker; its pid now belongs to another program (here: a sleep).
    let mut stranger = Command::new("sleep").arg("30").spawn().unwrap();
    let markers = cache.path().join(".locks/model-manager");
    fs::create_dir_all(&markers).unwrap();
    let stale = markers.join(format!("models--acme--big.{}-0.pid", stranger.id()));
    fs::write(&stale, b"").unwrap();

    let mut cancel = mm(&hub, cache.path());
    cancel.args(["cancel", "acme/big", "--json"]);
    let out = output(cancel).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["stoppedPids"], serde_json::json!([]), "{report}");
    assert!(stranger.try_wait().unwrap().is_none(), "the stranger still runs");
    assert!(!stale.exists(), "the dead download's marker is swept");
    stranger.kill().unwrap();
    stranger.wait().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hub_that_answers_a_path_for_a_commit_gets_nothing_written_outside_the_cache() {
    let blob = "a".repeat(40);
    let hub = fake_hub::raw::RawServer::start(move |r| {
        if r.target.starts_with("/api/models/acme/m/revision/main") {
            fake_hub::raw::json(
                200,
                &serde_json::json!({
                    "sha": "../../../../settings",
                    "siblings": [{"rfilename": "a.txt", "size": 1, "blobId": blob}],
                }),
            )
        } else {
            fake_hub::raw::answer(404, &[("Content-Length", "0".into())], b"")
        }
    })
    .await;
    let root = tempfile::tempdir().unwrap();
    let cache = root.path().join("hf/hub");
    let mut cmd = common::mm(&cache, root.path());
    cmd.env("HF_ENDPOINT", hub.url("")).args(["download", "acme/m"]);
    let out = output(cmd).await;
    assert_eq!(out.status.code(), Some(5), "a network (protocol) error");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("is not 40 hexadecimal digits"), "{stderr}");
    assert!(!root.path().join("settings.json").exists() && !root.path().join("hf/settings.json").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_a_hub_chose_print_as_text_not_as_terminal_escapes() {
    let hub = FakeHub::start().await;
    hub.add_repo("acme/evil\x1b]0;owned\x07\x1b[2J", vec![HubFile::new("a.txt", b"a".to_vec(), false)]);
    let cache = tempfile::tempdir().unwrap();
    let mut search = mm(&hub, cache.path());
    search.args(["search", "evil"]);
    let out = output(search).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("acme/evil\\u{1b}]0;owned\\u{7}"), "{stdout}");
    assert!(!out.stdout.contains(&0x1b) && !out.stdout.contains(&0x07), "no raw control bytes reach the terminal");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_exit_with_the_codes_status_and_a_message_that_names_the_fix() {
    let hub = FakeHub::start().await;
    let cache = tempfile::tempdir().unwrap();
    hub.add_repo("acme/gated", vec![HubFile::new("a.txt", b"a".to_vec(), false)]);
    hub.gate("acme/gated", "hf_secret");

    let mut bad = mm(&hub, cache.path());
    bad.args(["download", "no way/bad"]);
    let out = output(bad).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("error[invalid-input]: \"no way/bad\" is not a valid repo id")
    );

    let mut gated = mm(&hub, cache.path());
    gated.args(["download", "acme/gated", "--json"]);
    let out = output(gated).await;
    assert_eq!(out.status.code(), Some(4));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let doc: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(doc["error"]["code"], "auth");
    assert!(doc["error"]["message"].as_str().unwrap().contains("set HF_TOKEN"));

    let mut with_token = mm(&hub, cache.path());
    with_token.args(["download", "acme/gated"]).env("HF_TOKEN", "hf_secret");
    let out = output(with_token).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("Downloaded acme/gated (1 file, "));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verbose_logs_tell_the_story_on_stderr_without_the_token() {
    let hub = FakeHub::start().await;
    let cache = tempfile::tempdir().unwrap();
    hub.add_repo("acme/gated", vec![HubFile::new("w.safetensors", noise(64_000, 3), true)]);
    hub.gate("acme/gated", "hf_secret_for_logs");

    let mut quiet = mm(&hub, cache.path());
    quiet.args(["download", "acme/gated"]).env("HF_TOKEN", "hf_secret_for_logs");
    let out = output(quiet).await;
    assert!(out.status.success());
    assert!(out.stderr.is_empty(), "no logs unless asked: {}", String::from_utf8_lossy(&out.stderr));

    let fresh = tempfile::tempdir().unwrap();
    let mut verbose = mm(&hub, fresh.path());
    verbose.args(["-v", "download", "acme/gated", "--revision", "main"]).env("HF_TOKEN", "hf_secret_for_logs");
    let out = output(verbose).await;
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    for expected in ["download{id=", "repo=acme/gated", "file{path=w.safetensors", "hub GET", "completed"] {
        assert!(stderr.contains(expected), "{expected:?} is not in:\n{stderr}");
    }

    // Everything every library logs, at the finest level: still no token, no signed link.
    let fresh = tempfile::tempdir().unwrap();
    let mut trace = mm(&hub, fresh.path());
    trace.args(["download", "acme/gated"]).env("HF_TOKEN", "hf_secret_for_logs").env("MM_LOG", "trace");
    let out = output(trace).await;
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.lines().count() > 20, "trace logs are written:\n{stderr}");
    assert!(!stderr.contains("hf_secret_for_logs"), "the token is in the log:\n{stderr}");
    assert!(!stderr.contains(fake_hub::CDN_SIGNATURE), "a signed link is in the log:\n{stderr}");
}

/// Adapters from the hub link to the base they name: a PEFT folder (`adapter_config.json`), a repo whose card says
/// `base_model_relation: adapter`, and a GGUF LoRA whose base repo is in the cache; one whose base is missing says
/// which to get.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hub_adapters_link_to_the_base_they_name() {
    let hub = FakeHub::start().await;
    let cache = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (base, lora) = (dir.path().join("base.gguf"), dir.path().join("lora.gguf"));
    common::tiny_llama(&base, 1, false);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/tiny_lora.py");
    let made = Command::new(common::python())
        .arg(script)
        .arg(&lora)
        .args(["3", "--base-repo", "acme/tiny-base"])
        .output()
        .unwrap();
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    hub.add_repo("acme/tiny-base", vec![HubFile::new("model.gguf", fs::read(&base).unwrap(), true)]);
    hub.add_repo("acme/tiny-lora-gguf", vec![HubFile::new("lora.gguf", fs::read(&lora).unwrap(), true)]);
    let peft = br#"{"base_model_name_or_path": "acme/tiny-base", "r": 8, "lora_alpha": 16, "peft_type": "LORA", "target_modules": ["q_proj"]}"#;
    hub.add_repo(
        "acme/tiny-lora-peft",
        vec![
            HubFile::new("adapter_config.json", peft.to_vec(), false),
            HubFile::new("adapter_model.safetensors", noise(2000, 2), true),
        ],
    );
    hub.add_repo("acme/card-lora", vec![HubFile::new("adapter_model.safetensors", noise(2000, 3), true)]);
    let card = serde_json::json!({"base_model": ["acme/other-base"], "base_model_relation": "adapter"});
    hub.set_meta("acme/card-lora", fake_hub::RepoMeta { card_data: Some(card), ..Default::default() });
    for repo in ["acme/tiny-base", "acme/tiny-lora-gguf", "acme/tiny-lora-peft", "acme/card-lora"] {
        let mut cmd = mm(&hub, cache.path());
        cmd.args(["download", repo]);
        let out = output(cmd).await;
        assert!(out.status.success(), "{repo}: {}", String::from_utf8_lossy(&out.stderr));
    }
    let mut list = mm(&hub, cache.path());
    list.args(["list", "--json"]);
    let listed: serde_json::Value = serde_json::from_slice(&output(list).await.stdout).unwrap();
    let model = |id: &str| listed["models"].as_array().unwrap().iter().find(|m| m["id"] == id).cloned().unwrap();
    let gguf = model("acme/tiny-lora-gguf")["adapter"].clone();
    assert_eq!(
        (gguf["base"].as_str(), gguf["linkedBy"].as_str(), gguf["format"].as_str()),
        (Some("acme/tiny-base"), Some("named"), Some("gguf")),
        "{gguf:#}"
    );
    let peft = model("acme/tiny-lora-peft")["adapter"].clone();
    assert_eq!(
        (peft["base"].as_str(), peft["format"].as_str(), peft["rank"].as_u64()),
        (Some("acme/tiny-base"), Some("peft"), Some(8)),
        "{peft:#}"
    );
    let card = model("acme/card-lora")["adapter"].clone();
    assert_eq!(card["baseNamed"], "acme/other-base", "{card:#}");
    assert!(
        card["problem"]
            .as_str()
            .unwrap()
            .contains("its base acme/other-base is not installed: get it (mm download acme/other-base)"),
        "{card:#}"
    );
    let mut base_adapters: Vec<String> = serde_json::from_value(model("acme/tiny-base")["adapters"].clone()).unwrap();
    base_adapters.sort();
    assert_eq!(base_adapters, ["acme/tiny-lora-gguf", "acme/tiny-lora-peft"]);
}

/// Sets when a repo of `cache` was downloaded, as a model downloaded long ago would say.
fn downloaded_at(cache: &Path, repo: &str, at: u64) {
    let record = cache.join(format!("models--{}", repo.replace('/', "--"))).join(".model-manager/info.json");
    let mut info: serde_json::Value = serde_json::from_slice(&fs::read(&record).unwrap()).unwrap();
    info["downloadedAt"] = serde_json::json!(at);
    fs::write(&record, serde_json::to_vec(&info).unwrap()).unwrap();
}

/// Under a storage limit, a download that would pass it names the least recently used models nobody uses (never a
/// pinned or active one), is refused without consent with nothing removed, and with `--evict` removes exactly them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storage_limit_removes_the_least_recently_used_model_nobody_uses_once_agreed() {
    let hub = FakeHub::start().await;
    let cache = tempfile::tempdir().unwrap();
    for (i, repo) in ["acme/old", "acme/older", "acme/pinned", "acme/active", "acme/new"].iter().enumerate() {
        hub.add_repo(repo, vec![HubFile::new("model.safetensors", noise(400_000, i as u64 + 10), true)]);
    }
    let run = |args: &[&str]| {
        let mut cmd = mm(&hub, cache.path());
        cmd.args(args);
        output(cmd)
    };
    for repo in ["acme/old", "acme/older", "acme/pinned", "acme/active"] {
        let out = run(&["download", repo]).await;
        assert!(out.status.success(), "{repo}: {}", String::from_utf8_lossy(&out.stderr));
    }
    // Used long ago, in this order: the pinned and the active model the longest ago of all.
    for (repo, at) in [("acme/pinned", 100), ("acme/active", 200), ("acme/older", 1000), ("acme/old", 2000)] {
        downloaded_at(cache.path(), repo, at);
    }
    assert!(run(&["pin", "acme/pinned"]).await.status.success());
    assert!(run(&["activate", "acme/active"]).await.status.success());
    // Room for the four and a half of a fifth.
    assert!(run(&["config", "set", "storageLimit", "1.8MB"]).await.status.success());

    let out = run(&["download", "acme/new"]).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(6), "insufficient-space: {stderr}");
    assert!(stderr.contains("removing the least recently used acme/older (400 kB) would make it"), "{stderr}");
    assert!(stderr.contains("storageLimit") && stderr.contains("--evict"), "{stderr}");
    let list = |out: Output| -> Vec<String> {
        let listed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        listed["models"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap().to_string()).collect()
    };
    assert_eq!(list(run(&["list", "--json"]).await).len(), 4, "refused: nothing removed");

    let out = run(&["download", "acme/new", "--evict"]).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut ids = list(run(&["list", "--json", "--sort", "used"]).await);
    ids.sort();
    assert_eq!(ids, ["acme/active", "acme/new", "acme/old", "acme/pinned"], "exactly the least recently used went");
}

const SCAN: &str = r#"
import json, sys
from huggingface_hub import scan_cache_dir
info = scan_cache_dir(sys.argv[1])
print(json.dumps({"repos": sorted(r.repo_id for r in info.repos), "warnings": [str(w) for w in info.warnings]}))
"#;

/// `huggingface_hub`'s own scan of a cache folder: its repos, and what it found wrong.
async fn scan(dir: &Path) -> serde_json::Value {
    let mut py = Command::new(common::python());
    py.args(["-c", SCAN, dir.to_str().unwrap()]);
    let out = output(py).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// A model moves to a library folder on another disk and back: every byte kept (`mm verify`), huggingface_hub
/// reads both folders cleanly, its activation follows it; a move killed midway leaves one whole copy that
/// verifies, and the same command finishes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_moves_to_another_folder_and_back_and_a_killed_move_leaves_one_whole_copy() {
    let hub = FakeHub::start().await;
    let cache = tempfile::tempdir().unwrap();
    let slow = tempfile::tempdir().unwrap();
    hub.add_repo(
        "acme/big",
        vec![
            HubFile::new("config.json", b"{}".to_vec(), false),
            HubFile::new("model.safetensors", noise(300 << 20, 77), true),
        ],
    );
    // A home of its own, so that the cache folder holds only the cache (huggingface_hub scans it whole).
    let home = tempfile::tempdir().unwrap();
    let mm = |hub: &FakeHub, cache: &Path| {
        let mut cmd = common::mm(cache, home.path());
        cmd.env("HF_ENDPOINT", hub.endpoint());
        cmd
    };
    let run = |args: &[&str]| {
        let mut cmd = mm(&hub, cache.path());
        cmd.args(args);
        output(cmd)
    };
    let ok = |out: Output| {
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    ok(run(&["download", "acme/big"]).await);
    ok(run(&["config", "set", "libraryFolders", slow.path().to_str().unwrap()]).await);
    ok(run(&["activate", "acme/big"]).await);
    let source_of = |text: String| -> String {
        let listed: serde_json::Value = serde_json::from_str(&text).unwrap();
        listed["models"][0]["source"].as_str().unwrap().to_string()
    };

    // Killed midway, once its copy has begun: the old copy is whole, and the same command finishes the move.
    let mut cmd = mm(&hub, cache.path());
    cmd.args(["move", "acme/big", slow.path().to_str().unwrap()]).stdout(Stdio::null()).stderr(Stdio::null());
    let mut child = cmd.spawn().unwrap();
    let staging = slow.path().join(".models--acme--big.moving");
    wait_until("the copy to begin", || staging.join("blobs").is_dir()).await;
    child.kill().unwrap();
    exit_of(&mut child).await;
    if !slow.path().join("models--acme--big").exists() {
        assert!(staging.exists());
        ok(run(&["verify", "acme/big"]).await);
        assert_eq!(source_of(ok(run(&["list", "--json"]).await)), "hugging-face", "still where it was, whole");
    }
    let moved: serde_json::Value =
        serde_json::from_str(&ok(run(&["move", "acme/big", slow.path().to_str().unwrap(), "--json"]).await)).unwrap();
    assert!(moved["to"].as_str().unwrap().starts_with(slow.path().to_str().unwrap()), "{moved:#}");
    assert!(!cache.path().join("models--acme--big").exists() && !staging.exists());
    assert_eq!(source_of(ok(run(&["list", "--json"]).await)), "folder");
    ok(run(&["verify", "acme/big"]).await);
    let active: serde_json::Value = serde_json::from_str(&ok(run(&["active", "--json"]).await)).unwrap();
    let entry = active.as_object().and_then(|a| a.values().next()).cloned().unwrap_or_else(|| panic!("{active:#}"));
    assert!(entry["path"].as_str().unwrap().starts_with(slow.path().to_str().unwrap()), "{active:#}");
    let there = scan(slow.path()).await;
    assert_eq!(
        (there["repos"].clone(), there["warnings"].clone()),
        (serde_json::json!(["acme/big"]), serde_json::json!([]))
    );

    // And back.
    ok(run(&["move", "acme/big", cache.path().to_str().unwrap()]).await);
    assert_eq!(source_of(ok(run(&["list", "--json"]).await)), "hugging-face");
    ok(run(&["verify", "acme/big"]).await);
    let back = scan(cache.path()).await;
    assert_eq!(
        (back["repos"].clone(), back["warnings"].clone()),
        (serde_json::json!(["acme/big"]), serde_json::json!([]))
    );
    assert_eq!(scan(slow.path()).await["repos"], serde_json::json!([]));
}
