//! `mm download URL`, `mm import` and `mm ollama` as real processes against local servers and real files.

use fake_hub::ollama::FakeOllama;
use fake_hub::{gguf_model, FakeHub, Fault, Host, HubFile};
use md5::Digest as _;
use std::path::Path;
use std::process::Command;

mod common;
use common::run;

fn mm(home: &Path) -> Command {
    common::mm(&home.join("hub"), home)
}

fn models_dir(home: &Path) -> std::path::PathBuf {
    home.join(".mm-data/dev.model-manager.app/models")
}

#[tokio::test]
async fn url_downloads_resume_after_a_cut_verify_checksums_and_join_the_library() {
    let hub = FakeHub::start().await;
    let model = gguf_model("llama", 2, 300_000, 9);
    hub.add_repo("files/x", vec![HubFile::new("tiny.gguf", model.clone(), true)]);
    let sha = fake_hub::hex(&sha2::Sha256::digest(&model));
    let url = format!("{}/{sha}?file=tiny.gguf", hub.cdn_base());
    // The first request asks for one byte (the file's length: too small for pieces); the second is cut.
    hub.fault("tiny.gguf", Fault::Cut { after: 100_000, times: 2 });
    let home = tempfile::tempdir().unwrap();

    let mut cmd = mm(home.path());
    cmd.args(["download", &url, "--sha256", &sha, "--name", "tiny.gguf"]);
    let out = run(cmd).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(std::fs::read(models_dir(home.path()).join("tiny.gguf")).unwrap(), model);
    let cdn: Vec<_> = hub.requests().into_iter().filter(|r| r.host == Host::Cdn).collect();
    assert_eq!(cdn.len(), 3, "its length, cut once, then resumed");
    assert_eq!(cdn[0].range.as_deref(), Some("bytes=0-0"));
    assert_eq!(cdn[2].range.as_deref(), Some("bytes=100000-"), "only the missing bytes were asked for");
    assert!(cdn.iter().all(|r| r.authorization.is_none()));
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(models_dir(home.path()).join(".model-manager/tiny.gguf.json")).unwrap())
            .unwrap();
    assert_eq!(record["sha256"], sha.as_str());

    let mut cmd = mm(home.path());
    cmd.args(["list", "--json"]);
    let list: serde_json::Value = serde_json::from_slice(&run(cmd).await.stdout).unwrap();
    let m = &list["models"][0];
    assert_eq!(
        (m["id"].as_str(), m["source"].as_str(), m["format"].as_str()),
        (Some("local/tiny.gguf"), Some("url"), Some("gguf")),
        "a URL download says where it came from"
    );
    let mut cmd = mm(home.path());
    cmd.args(["list", "--source", "imported", "--json"]);
    let list: serde_json::Value = serde_json::from_slice(&run(cmd).await.stdout).unwrap();
    assert_eq!(list["models"].as_array().unwrap().len(), 0, "{list}");

    // A wrong checksum: exit 8, nothing placed, the partial bytes deleted.
    let mut cmd = mm(home.path());
    cmd.args(["download", &url, "--md5", &"0".repeat(32), "--name", "other.gguf"]);
    let out = run(cmd).await;
    assert_eq!(out.status.code(), Some(8), "{}", String::from_utf8_lossy(&out.stderr));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with("error[checksum-mismatch]: other.gguf of") && stderr.contains("expected md5 0000"),
        "{stderr}"
    );
    assert!(!models_dir(home.path()).join("other.gguf").exists());
    let partial: Vec<_> = std::fs::read_dir(models_dir(home.path()).join(".partial"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.ends_with(".lock"))
        .collect();
    assert!(partial.is_empty(), "only the (empty) lock file stays: {partial:?}");
    // The right md5 passes; a dead link says so.
    let md5 = fake_hub::hex(&md5::Md5::digest(&model));
    let mut cmd = mm(home.path());
    cmd.args(["download", &url, "--md5", &md5, "--name", "same.gguf", "--json"]);
    assert!(run(cmd).await.status.success());
    let mut cmd = mm(home.path());
    cmd.args(["download", &format!("{}/nothing-here", hub.cdn_base())]);
    let out = run(cmd).await;
    assert_eq!(out.status.code(), Some(5));
    assert!(String::from_utf8_lossy(&out.stderr).contains("there is no file at this URL"));
}

#[tokio::test]
async fn import_reports_each_path_and_refuses_what_is_not_a_model() {
    let home = tempfile::tempdir().unwrap();
    let files = tempfile::tempdir().unwrap();
    let gguf = files.path().join("m.gguf");
    std::fs::write(&gguf, gguf_model("llama", 2, 2048, 4)).unwrap();
    let text = files.path().join("notes.txt");
    std::fs::write(&text, "hello").unwrap();
    let mut cmd = mm(home.path());
    cmd.arg("import").args([&gguf, &text, &gguf]);
    let out = run(cmd).await;
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[0], format!("imported   {} as local/m.gguf", gguf.display()));
    assert!(lines[1].starts_with("failed") && lines[1].contains("notes.txt is not a model"), "{stdout}");
    assert!(lines[2].starts_with("duplicate") && lines[2].contains("already in the library as local/m.gguf"));

    let mut cmd = mm(home.path());
    cmd.args(["import", "--json"]).arg(&text);
    let out = run(cmd).await;
    assert_eq!(out.status.code(), Some(2));

    let mut cmd = mm(home.path());
    cmd.args(["rm", "local/m.gguf"]);
    let out = run(cmd).await;
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("Forgot (the file stays where it is) local/m.gguf"));
    assert!(gguf.exists());
}

#[tokio::test]
async fn ctrl_c_stops_an_import_and_leaves_no_partial_copy() {
    let home = tempfile::tempdir().unwrap();
    let files = tempfile::tempdir().unwrap();
    // A GGUF header before a hole of up to 2 GiB: a second or more of copying and hashing. The hole is at most a
    // third of the free space, so the copy fits on a nearly full disk (the import checks the room first).
    let free = mm_core::disk::free_space(home.path()).unwrap();
    let hole = (free / 3).min(2 << 30);
    assert!(hole >= 64 << 20, "this test needs 200 MB free in {}, has {free} bytes", home.path().display());
    let big = files.path().join("big.gguf");
    std::fs::write(&big, gguf_model("llama", 2, 4096, 4)).unwrap();
    std::fs::File::options().write(true).open(&big).unwrap().set_len(hole).unwrap();
    let mut cmd = mm(home.path());
    cmd.args(["import", "--copy"]).arg(&big).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    // Once the hidden copy exists, the copy is under way: interrupt it as a terminal's Ctrl-C does.
    let models = models_dir(home.path());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let copying = || {
        std::fs::read_dir(&models)
            .map(|d| d.flatten().any(|e| e.file_name().to_string_lossy().ends_with(".copying")))
            .unwrap_or(false)
    };
    while !copying() {
        if child.try_wait().unwrap().is_some() {
            let out = child.wait_with_output().unwrap();
            panic!("mm import ended before it was interrupted: {}", String::from_utf8_lossy(&out.stderr));
        }
        assert!(std::time::Instant::now() < deadline, "the copy never started");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let killed = Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(killed.success());
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap()).await.unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(9), "exit status of cancelled: {stderr}");
    assert!(stderr.contains("the import was cancelled: 0 imported before it stopped, 1 not imported"), "{stderr}");
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("cancelled  the import of"));
    let left: Vec<_> = std::fs::read_dir(&models).unwrap().flatten().map(|e| e.file_name()).collect();
    assert!(left.is_empty(), "no partial copy is left: {left:?}");
}

#[tokio::test]
async fn ollama_list_pull_and_rm() {
    let server = FakeOllama::start().await;
    server.add("llama3.2:1b", 1_300_000_000, "llama");
    let home = tempfile::tempdir().unwrap();
    let with_host = |args: &[&str]| {
        let mut cmd = mm(home.path());
        cmd.args(args).env("OLLAMA_HOST", server.host());
        cmd
    };
    let out = run(with_host(&["ollama", "list"])).await;
    assert_eq!(String::from_utf8_lossy(&out.stdout), "ollama/llama3.2:1b  1.30 GB\n");
    let out = run(with_host(&["ollama", "pull", "qwen:0.5b", "--json"])).await;
    assert!(out.status.success());
    let last = String::from_utf8_lossy(&out.stdout).lines().last().unwrap().to_string();
    assert!(last.contains("\"status\":\"success\""), "{last}");
    let out = run(with_host(&["ollama", "pull", "broken"])).await;
    assert_eq!(out.status.code(), Some(5));
    assert!(String::from_utf8_lossy(&out.stderr).contains("Ollama could not pull broken: max retries exceeded"));
    let out = run(with_host(&["list", "--json", "--source", "ollama"])).await;
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list["models"].as_array().unwrap().len(), 2);
    // `mm activate` asks Ollama which file the model runs from and links the type to it.
    let blobs = home.path().join("ollama-blobs");
    std::fs::create_dir_all(&blobs).unwrap();
    std::fs::write(blobs.join(FakeOllama::blob_name(1_300_000_000)), b"GGUF").unwrap();
    server.blobs_dir(&blobs);
    let out = run(with_host(&["activate", "ollama/llama3.2:1b"])).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = run(with_host(&["active", "text-generation", "--path"])).await;
    let link = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert_eq!(std::fs::canonicalize(&link).unwrap(), blobs.join(FakeOllama::blob_name(1_300_000_000)));
    // `mm compat ollama/NAME` reads the same file's header.
    std::fs::write(blobs.join(FakeOllama::blob_name(1_300_000_000)), fake_hub::gguf_model("llama", 5, 1 << 20, 3))
        .unwrap();
    let out = run(with_host(&["compat", "ollama/llama3.2:1b", "--json"])).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let report = &report["report"];
    assert_eq!(report["model"], "ollama/llama3.2:1b");
    assert_eq!(report["entries"][0]["requirements"]["layers"], 5);
    let out = run(with_host(&["compat", "ollama/qwen:0.5b"])).await;
    assert_eq!(out.status.code(), Some(7), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not readable from here"));
    assert!(run(with_host(&["ollama", "rm", "qwen:0.5b"])).await.status.success());
    assert_eq!(server.names(), ["llama3.2:1b"]);

    // No server: a plain message, exit 5; `mm list` still works.
    let mut cmd = mm(home.path());
    cmd.args(["ollama", "list"]);
    let out = run(cmd).await;
    assert_eq!(out.status.code(), Some(5));
    assert!(String::from_utf8_lossy(&out.stderr).contains("Ollama is not running at http://127.0.0.1:9"));
    let mut cmd = mm(home.path());
    cmd.arg("list");
    assert!(run(cmd).await.status.success());
}
