//! `mm load`, `mm unload`, `mm ps` with the real runtimes: tiny llama models in llama.cpp's `llama-server`, and
//! Ollama's loading API (the fake Ollama). The endpoint in `active.json` answers completions, a switch of model
//! under a stream of requests refuses none, a crashed runtime comes back, a failed load leaves the old model
//! serving, and unloading stops the processes.

mod common;

use common::{llama_server, mm, run, tiny_llama};
use fake_hub::ollama::FakeOllama;
use serde_json::Value;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A test's own machine: a cache, a home, models, and llama-server in the settings; everything it loaded is
/// unloaded when it ends, pass or fail.
struct Machine {
    cache: tempfile::TempDir,
    home: tempfile::TempDir,
    ollama: Option<String>,
}

impl Machine {
    async fn new(ollama: Option<String>) -> Machine {
        let machine = Machine { cache: tempfile::tempdir().unwrap(), home: tempfile::tempdir().unwrap(), ollama };
        let server = llama_server();
        machine.ok(&["config", "set", "llamaServer", server.to_str().unwrap()]).await;
        machine
    }

    fn cmd(&self, args: &[&str]) -> std::process::Command {
        let mut cmd = mm(self.cache.path(), self.home.path());
        cmd.args(args);
        if let Some(host) = &self.ollama {
            cmd.env("OLLAMA_HOST", host);
        }
        cmd
    }

    async fn ok(&self, args: &[&str]) -> String {
        let out = run(self.cmd(args)).await;
        assert!(out.status.success(), "mm {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).to_string()
    }

    async fn json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.push("--json");
        serde_json::from_str(&self.ok(&all).await).unwrap()
    }

    fn data(&self) -> PathBuf {
        self.home.path().join(".mm-data/dev.model-manager.app")
    }

    fn model(&self, name: &str, seed: u32, broken: bool) -> PathBuf {
        let path = self.home.path().join(name);
        tiny_llama(&path, seed, broken);
        path
    }

    /// `mm ps --json` until `done` says so (or fails after `secs`).
    async fn ps_until(&self, secs: u64, what: &str, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let ps = self.json(&["ps"]).await;
            let list = ps.as_array().unwrap().clone();
            if done(&list) {
                return list;
            }
            assert!(Instant::now() < deadline, "{what} within {secs} s: {ps:#}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    fn active_endpoint(&self) -> Option<String> {
        let manifest: Value = serde_json::from_slice(&std::fs::read(self.data().join("active.json")).unwrap()).unwrap();
        manifest["text-generation"]["endpoint"].as_str().map(str::to_string)
    }
}

impl Drop for Machine {
    fn drop(&mut self) {
        let _ = self.cmd(&["unload"]).output();
    }
}

fn alive(pid: u64) -> bool {
    // A zombie is gone for our purposes: its memory is freed.
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| !s.contains(") Z "))
}

async fn wait_gone(pid: u64, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while alive(pid) {
        assert!(Instant::now() < deadline, "{what} (pid {pid}) is still running");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn complete(http: &reqwest::Client, endpoint: &str) -> Result<String, String> {
    let body = serde_json::json!({"prompt": "hello world", "max_tokens": 4});
    let res = http.post(format!("{endpoint}/completions")).json(&body).send().await.map_err(|e| e.to_string())?;
    let status = res.status();
    let answer: Value = res.json().await.map_err(|e| e.to_string())?;
    if !status.is_success() {
        return Err(format!("{status}: {answer}"));
    }
    assert!(answer["choices"][0]["text"].is_string(), "{answer}");
    Ok(answer["model"].as_str().unwrap_or_default().to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn load_switch_crash_and_unload_with_the_real_llama_server() {
    let m = Machine::new(None).await;
    let (a, b, broken) = (m.model("a.gguf", 1, false), m.model("b.gguf", 2, false), m.model("bad.gguf", 3, true));
    for file in [&a, &b, &broken] {
        m.ok(&["import", file.to_str().unwrap()]).await;
    }

    // Loading activates the model, starts llama-server sized by the estimate, and answers once it is ready.
    let loaded = m.json(&["load", "local/a.gguf"]).await;
    assert_eq!(loaded["state"], "ready", "{loaded:#}");
    assert_eq!(loaded["runtime"], "llama-server");
    assert_eq!(loaded["plan"]["context"], 2048, "the tiny model's own context fits: {loaded:#}");
    assert_eq!(loaded["plan"]["gpuLayers"], 0, "no GPU here");
    let command = loaded["command"].as_str().unwrap();
    assert!(command.contains("--ctx-size 2048") && command.contains(a.to_str().unwrap()), "{command}");
    let endpoint = loaded["endpoint"].as_str().unwrap().to_string();
    assert_eq!(m.active_endpoint().as_deref(), Some(endpoint.as_str()), "active.json names the endpoint");
    let first_pid = loaded["pid"].as_u64().unwrap();
    assert!(alive(first_pid));

    let http = reqwest::Client::new();
    assert_eq!(complete(&http, &endpoint).await.unwrap(), "local/a.gguf");
    // Programs of this machine only: a page of another site or a rebound name is refused, and the runtime's own
    // CORS answer (llama-server echoes any Origin, credentials allowed) never reaches a browser.
    let models = format!("{endpoint}/models");
    let address = endpoint.trim_start_matches("http://").split('/').next().unwrap().to_string();
    let page = http.get(&models).header("origin", "http://evil.example").send().await.unwrap();
    assert_eq!(page.status().as_u16(), 403);
    let port = address.rsplit(':').next().unwrap();
    let rebound = http.get(&models).header("host", format!("127.0.0.1.nip.io:{port}")).send().await.unwrap();
    assert_eq!(rebound.status().as_u16(), 403);
    let img = http.get(&models).header("sec-fetch-site", "cross-site").header("sec-fetch-mode", "no-cors");
    assert_eq!(img.send().await.unwrap().status().as_u16(), 403);
    let own_page = http.get(&models).header("origin", format!("http://{address}")).send().await.unwrap();
    assert_eq!(own_page.status().as_u16(), 200, "llama-server's own web page, on the endpoint's origin");
    assert!(own_page.headers().keys().all(|k| !k.as_str().starts_with("access-control-")), "{:?}", own_page.headers());
    // 300 connections that never finish their request keep nobody else from an answer.
    let held = common::half_sent(&address, 300, "POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ").await;
    assert_eq!(complete(&http, &endpoint).await.unwrap(), "local/a.gguf");
    drop(held);
    let again = m.json(&["load"]).await;
    assert_eq!(again["pid"], loaded["pid"], "loading what is loaded changes nothing");

    // A switch under a stream of requests: every one is answered, by the old model or the new.
    let stop = Arc::new(AtomicBool::new(false));
    let failures = Arc::new(Mutex::new(Vec::new()));
    let answered = Arc::new(AtomicU64::new(0));
    let seen = Arc::new(Mutex::new(std::collections::BTreeSet::new()));
    let mut clients = Vec::new();
    for _ in 0..3 {
        let (stop, failures, answered, seen) = (stop.clone(), failures.clone(), answered.clone(), seen.clone());
        let (http, endpoint) = (http.clone(), endpoint.clone());
        clients.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                match complete(&http, &endpoint).await {
                    Ok(model) => {
                        answered.fetch_add(1, Ordering::Relaxed);
                        seen.lock().unwrap().insert(model);
                    }
                    Err(e) => failures.lock().unwrap().push(e),
                }
            }
        }));
    }
    // The switch comes once requests are flowing.
    while answered.load(Ordering::Relaxed) < 3 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    m.ok(&["activate", "local/b.gguf"]).await;
    let ps = m.ps_until(60, "local/b.gguf serves", |l| l[0]["id"] == "local/b.gguf" && l[0]["state"] == "ready").await;
    let before = answered.load(Ordering::Relaxed);
    while answered.load(Ordering::Relaxed) < before + 20 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.await.unwrap();
    }
    assert!(failures.lock().unwrap().is_empty(), "requests failed during the switch: {:?}", failures.lock().unwrap());
    assert_eq!(
        *seen.lock().unwrap(),
        ["local/a.gguf".to_string(), "local/b.gguf".to_string()].into(),
        "answered by both"
    );
    assert_eq!(ps[0]["endpoint"], endpoint.as_str(), "the same endpoint after the switch");
    wait_gone(first_pid, "the old llama-server").await;

    // What it really takes is measured and kept beside the estimate.
    let ps = m.ps_until(15, "memory measured", |l| l[0]["measured"]["ram"].as_u64().is_some_and(|r| r > 0)).await;
    assert!(ps[0]["requests"].as_u64().unwrap() >= 20, "b answered at least the 20 after the switch: {ps:?}");
    let kept: Value = serde_json::from_slice(&std::fs::read(m.data().join("runtime/measured.json")).unwrap()).unwrap();
    let b_measured = kept.as_array().unwrap().iter().find(|x| x["id"] == "local/b.gguf").expect("b measured");
    assert!(b_measured["estimateBytes"].as_u64().unwrap() > 0 && b_measured["measured"]["ram"].as_u64().unwrap() > 0);

    // A runtime that dies is reported and started again.
    let pid = ps[0]["pid"].as_u64().unwrap();
    unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    let ps =
        m.ps_until(30, "the crashed runtime restarted", |l| l[0]["restarts"] == 1 && l[0]["state"] == "ready").await;
    assert_ne!(ps[0]["pid"].as_u64().unwrap(), pid);
    assert_eq!(complete(&http, &endpoint).await.unwrap(), "local/b.gguf");

    // A model llama.cpp refuses: the load fails, says why, and the old model keeps serving.
    let out = run(m.cmd(&["load", "local/bad.gguf"])).await;
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("llama-server exited") && stderr.contains("local/b.gguf keeps serving"), "{stderr}");
    assert_eq!(complete(&http, &endpoint).await.unwrap(), "local/b.gguf");

    // Unloading stops the runtime and the host, and takes the endpoint out of active.json.
    let pid = m.json(&["ps"]).await[0]["pid"].as_u64().unwrap();
    let unloaded = m.json(&["unload"]).await;
    assert_eq!(unloaded[0]["id"], "local/b.gguf");
    wait_gone(pid, "the unloaded llama-server").await;
    assert_eq!(m.active_endpoint(), None);
    assert!(complete(&http, &endpoint).await.is_err(), "nothing answers on the endpoint");
    let deadline = Instant::now() + Duration::from_secs(10);
    while m.data().join("runtime/host.sock").exists() {
        assert!(Instant::now() < deadline, "the runtime host stays after everything was unloaded");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(m.ok(&["ps"]).await, "Nothing is loaded. Load the active model with `mm load`.\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_most_n_loaded_and_idle_models_unload() {
    let m = Machine::new(None).await;
    let (a, b) = (m.model("a.gguf", 1, false), m.model("b.gguf", 2, false));
    m.ok(&["import", a.to_str().unwrap(), b.to_str().unwrap()]).await;
    m.ok(&["config", "set", "maxLoaded", "1"]).await;
    m.ok(&["activate", "local/b.gguf", "--type", "embedding"]).await;
    let first = m.json(&["load", "local/a.gguf"]).await;
    let second = m.json(&["load", "embedding"]).await;
    assert_eq!(second["id"], "local/b.gguf");
    let ps = m.json(&["ps"]).await;
    assert_eq!(ps.as_array().unwrap().len(), 1, "the least recently used was unloaded: {ps:#}");
    assert_eq!(ps[0]["modelType"], "embedding");
    wait_gone(first["pid"].as_u64().unwrap(), "the evicted llama-server").await;

    m.ok(&["config", "set", "idleUnloadSeconds", "2"]).await;
    m.ps_until(20, "the idle model unloaded", |l| l.is_empty()).await;
    wait_gone(second["pid"].as_u64().unwrap(), "the idle llama-server").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runtime_that_dies_with_no_restarts_left_is_stopped_and_its_endpoint_says_why() {
    let m = Machine::new(None).await;
    let a = m.model("a.gguf", 1, false);
    m.ok(&["import", a.to_str().unwrap()]).await;
    m.ok(&["config", "set", "restartAttempts", "0"]).await;
    let loaded = m.json(&["load", "local/a.gguf"]).await;
    unsafe { libc::kill(loaded["pid"].as_u64().unwrap() as i32, libc::SIGKILL) };
    let ps = m.ps_until(15, "the runtime reported stopped", |l| l[0]["state"] == "stopped").await;
    let error = ps[0]["error"].as_str().unwrap();
    assert!(error.contains("llama-server exited") && error.contains("no more attempts"), "{error}");
    // A request is answered at once, with the reason, rather than left waiting for a restart that will not come.
    let started = Instant::now();
    let res = reqwest::Client::new()
        .post(format!("{}/completions", loaded["endpoint"].as_str().unwrap()))
        .json(&serde_json::json!({"prompt": "hi", "max_tokens": 2}))
        .send()
        .await;
    match res {
        Ok(res) => {
            assert_eq!(res.status(), 503);
            let body: Value = res.json().await.unwrap();
            assert!(body["error"]["message"].as_str().unwrap().contains("no more attempts"), "{body}");
        }
        // The endpoint closed with the runtime: refused outright, which is as prompt.
        Err(e) => assert!(e.is_connect(), "{e}"),
    }
    assert!(started.elapsed() < Duration::from_secs(5));
    // `mm load` starts it again.
    let again = m.json(&["load"]).await;
    assert_eq!(again["state"], "ready");
    assert_ne!(again["pid"], loaded["pid"]);
}

#[tokio::test]
async fn ollama_models_load_with_keep_alive_and_answer_on_the_endpoint() {
    let ollama = FakeOllama::start().await;
    ollama.add("llama3.2:1b", 1_300_000, "llama");
    let m = Machine::new(Some(ollama.host())).await;
    // Activation reads the file the server names.
    let blobs = m.home.path().join("blobs");
    std::fs::create_dir_all(&blobs).unwrap();
    ollama.blobs_dir(&blobs);
    std::fs::copy(m.model("o.gguf", 4, false), blobs.join(FakeOllama::blob_name(1_300_000))).unwrap();

    let loaded = m.json(&["load", "ollama/llama3.2:1b"]).await;
    assert_eq!(loaded["runtime"], "ollama");
    assert_eq!(ollama.loaded(), vec![("llama3.2:1b".to_string(), serde_json::json!(-1))], "kept loaded for good");
    let endpoint = loaded["endpoint"].as_str().unwrap();
    // Whatever model a request names, the endpoint's is the one asked of Ollama.
    let answer: Value = reqwest::Client::new()
        .post(format!("{endpoint}/chat/completions"))
        .json(&serde_json::json!({"model": "whatever", "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer["model"], "llama3.2:1b", "{answer}");
    let ps = m.ps_until(15, "Ollama's report read", |l| l[0]["measured"]["ram"].as_u64().is_some()).await;
    assert_eq!(ps[0]["measured"]["ram"], 101_300_000, "the size /api/ps reports");

    m.ok(&["unload", "ollama/llama3.2:1b"]).await;
    assert!(ollama.loaded().is_empty(), "keep_alive 0 unloaded it");
}

#[tokio::test]
async fn load_errors_name_the_problem() {
    let m = Machine::new(None).await;
    let out = run(m.cmd(&["load"])).await;
    assert_eq!(out.status.code(), Some(3), "not-found");
    assert!(String::from_utf8_lossy(&out.stderr).contains("no text-generation model is active: activate one first"));
    let a = m.model("a.gguf", 1, false);
    m.ok(&["import", a.to_str().unwrap()]).await;
    m.ok(&["config", "set", "llamaServer", "/nonexistent/llama-server"]).await;
    let out = run(m.cmd(&["load", "local/a.gguf"])).await;
    assert!(String::from_utf8_lossy(&out.stderr).contains("llama-server is not at /nonexistent/llama-server"));
    m.ok(&["config", "set", "llamaServer", llama_server().to_str().unwrap()]).await;
    let out = run(m.cmd(&["load", "--context", "999999"])).await;
    assert!(String::from_utf8_lossy(&out.stderr).contains("outside what the model takes (1 to 2048)"));
    let out = run(m.cmd(&["unload", "local/nothing"])).await;
    assert!(String::from_utf8_lossy(&out.stderr).contains("local/nothing is not loaded"));
}

/// A model's load settings change its command line, its estimate and the memory it takes (a q8_0 KV cache about
/// halves the cache's share), and a loaded model runs with new ones from its next request; the app's own flags are
/// refused when set, a flag the runtime lacks when loading.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn load_settings_change_the_command_the_estimate_and_the_memory() {
    let m = Machine::new(None).await;
    // 16 layers with a large KV cache per token beside 40 MB of weights, so that the cache's type shows in memory.
    let big = m.home.path().join("big.gguf");
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/tiny_llama.py");
    let out = std::process::Command::new(common::python())
        .arg(script)
        .arg(&big)
        .args(["1", "", "--embd", "256", "--layers", "16"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    m.ok(&["import", big.to_str().unwrap()]).await;
    let id = "local/big.gguf";
    m.ok(&["load-settings", "set", id, "context=2048", "threads=2"]).await;

    let measured = |ps: &[Value]| ps.iter().find(|l| l["id"] == id && l["measured"]["ram"].as_u64().is_some()).cloned();
    let f16 = m.json(&["load", id]).await;
    let command = f16["command"].as_str().unwrap();
    assert!(command.contains("--ctx-size 2048") && command.contains("--threads 2"), "{command}");
    assert!(!command.contains("--cache-type-k"), "{command}");
    let f16 = measured(&m.ps_until(30, "its memory measured", |ps| measured(ps).is_some()).await).unwrap();

    // The estimate follows the settings before anything is loaded again.
    let show = m.json(&["load-settings", "set", id, "kvCacheType=q8_0"]).await;
    assert_eq!(show["settings"]["kvCacheType"], "q8_0", "{show:#}");
    let q8_kv = show["estimate"]["entries"][0]["requirements"]["kvCacheBytes"].as_u64().unwrap();
    let f16_kv = 2 * 16 * 2048 * 2 * 64 * 2;
    assert_eq!(q8_kv, f16_kv / 64 * 34, "{show:#}");

    // The next request runs on a runtime started with them, once the one before has answered.
    let endpoint = f16["endpoint"].as_str().unwrap().to_string();
    assert_eq!(complete(&reqwest::Client::new(), &endpoint).await.unwrap(), id);
    let ps = m.json(&["ps"]).await;
    let q8 = ps.as_array().unwrap().iter().find(|l| l["id"] == id).unwrap().clone();
    assert_ne!(q8["pid"], f16["pid"], "started again: {ps:#}");
    wait_gone(f16["pid"].as_u64().unwrap(), "the runtime with the settings before").await;
    let command = q8["command"].as_str().unwrap();
    assert!(
        command.contains("--cache-type-k q8_0 --cache-type-v q8_0") && command.contains("--ctx-size 2048"),
        "{command}"
    );
    assert!(q8["plan"]["estimateBytes"].as_u64() < f16["plan"]["estimateBytes"].as_u64(), "{q8:#} {f16:#}");
    let q8 = measured(&m.ps_until(30, "its memory measured", |ps| measured(ps).is_some()).await).unwrap();
    let (before, after) = (f16["measured"]["ram"].as_u64().unwrap(), q8["measured"]["ram"].as_u64().unwrap());
    assert!(after < before, "a q8_0 cache takes less memory: {after} after, {before} before");

    // A quantised cache on heads llama.cpp cannot split in blocks of 32 (the tiny model's are 16 wide) is refused
    // before llama-server is started, with what to set instead.
    let narrow = m.model("narrow.gguf", 5, false);
    m.ok(&["import", narrow.to_str().unwrap()]).await;
    m.ok(&["load-settings", "set", "local/narrow.gguf", "kvCacheType=q4_0"]).await;
    let out = run(m.cmd(&["load", "local/narrow.gguf"])).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    let why =
        "a q4_0 KV cache needs heads whose width is a multiple of 32, and this model's are 16 wide: set kvCacheType";
    assert!(stderr.contains(why), "{stderr}");

    // The app's own flags are refused with why; a flag this llama-server does not have, when it loads.
    let out = run(m.cmd(&["load-settings", "set", id, "extraArgs=--port 9"])).await;
    assert_eq!(out.status.code(), Some(2), "invalid input");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--port is set by the app (the app chooses where the runtime listens)"), "{stderr}");
    m.ok(&["load-settings", "set", id, "extraArgs=--no-such-flag"]).await;
    m.ok(&["unload"]).await;
    let out = run(m.cmd(&["load", id])).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("has no flag --no-such-flag"), "{stderr}");
    m.ok(&["load-settings", "reset", id]).await;
    assert_eq!(m.json(&["load-settings", "show", id]).await["settings"]["threads"], Value::Null);
}

/// A fresh machine (no llama-server anywhere) says where to get one, gets llama.cpp from a release server in
/// GitHub's shape (the real llama-server in an archive), loads with it, refuses a wrong digest and a build that fails
/// its try without changing the default, rolls back, and says what to do offline.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_fresh_machine_gets_llama_cpp_and_rolls_back() {
    let hub = fake_hub::FakeHub::start().await;
    let program = std::fs::read(llama_server()).unwrap();
    hub.add_llama_cpp_release("b100", &program, None);
    let (cache, home) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mm = |args: &[&str]| {
        let mut cmd = common::mm(cache.path(), home.path());
        cmd.args(args).env("PATH", "/usr/bin:/bin");
        cmd
    };
    let ok = |args: &'static [&'static str]| {
        let cmd = mm(args);
        async move {
            let out = run(cmd).await;
            assert!(out.status.success(), "mm {args:?}: {}", String::from_utf8_lossy(&out.stderr));
            String::from_utf8_lossy(&out.stdout).to_string()
        }
    };
    let json = |text: String| serde_json::from_str::<Value>(&text).unwrap();
    let a = home.path().join("a.gguf");
    tiny_llama(&a, 1, false);
    assert!(run(mm(&["import", a.to_str().unwrap()])).await.status.success());

    let out = run(mm(&["load", "local/a.gguf"])).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no llama-server on this machine: get llama.cpp (mm runtime get"), "{stderr}");
    assert!(ok(&["runtime", "list"]).await.contains("no llama-server on this machine"));

    let releases = hub.releases_url();
    assert!(run(mm(&["config", "set", "llamaCppReleases", &releases])).await.status.success());
    let got = json(ok(&["runtime", "get", "--json"]).await);
    assert_eq!((got["name"].as_str(), got["origin"].as_str()), (Some("b100-cpu"), Some("managed")), "{got:#}");
    assert!(got["version"].as_str().is_some_and(|v| !v.is_empty()), "{got:#}");
    let first = got["path"].as_str().unwrap().to_string();
    assert!(first.starts_with(home.path().to_str().unwrap()), "in the data folder: {first}");
    let list = json(ok(&["runtime", "list", "--json"]).await);
    assert_eq!(list["default"], first.as_str(), "{list:#}");
    let loaded = json(ok(&["load", "local/a.gguf", "--json"]).await);
    assert!(loaded["command"].as_str().unwrap().starts_with(&first), "{loaded:#}");
    ok(&["unload"]).await;

    // A wrong digest and a build that fails its try change nothing.
    hub.add_llama_cpp_release("b101", &program, Some(format!("sha256:{}", "0".repeat(64))));
    let out = run(mm(&["runtime", "get", "--release", "b101"])).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("checksum-mismatch"), "{stderr}");
    hub.add_llama_cpp_release("b102", b"#!/bin/sh\nexit 1\n", None);
    let out = run(mm(&["runtime", "get", "--release", "b102"])).await;
    assert!(!out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let list = json(ok(&["runtime", "list", "--json"]).await);
    assert_eq!(list["default"], first.as_str(), "{list:#}");
    let names: Vec<_> =
        list["builds"].as_array().unwrap().iter().map(|b| b["name"].as_str().unwrap().to_string()).collect();
    assert_eq!(names, ["b100-cpu"], "nothing else kept");

    // A newer build becomes the default; a rollback goes back; the default cannot be removed, another can.
    hub.add_llama_cpp_release("b103", &program, None);
    let newer = json(ok(&["runtime", "get", "--json"]).await);
    assert_eq!(newer["name"], "b103-cpu");
    let back = json(ok(&["runtime", "rollback", "--json"]).await);
    assert_eq!(back["default"], first.as_str(), "{back:#}");
    let used = json(ok(&["runtime", "use", "b103-cpu", "--json"]).await);
    assert_eq!(used["default"], newer["path"], "{used:#}");
    let used = json(ok(&["runtime", "use", "b100-cpu", "--json"]).await);
    assert_eq!(used["default"], first.as_str(), "{used:#}");
    let out = run(mm(&["runtime", "remove", "b100-cpu"])).await;
    assert!(String::from_utf8_lossy(&out.stderr).contains("loads models here"), "{out:?}");
    let removed = json(ok(&["runtime", "remove", "b103-cpu", "--json"]).await);
    assert!(removed["bytesFreed"].as_u64().unwrap() > 1_000_000, "{removed:#}");

    // Offline: what to do.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    assert!(run(mm(&["config", "set", "llamaCppReleases", &format!("http://{closed}/releases")]))
        .await
        .status
        .success());
    let out = run(mm(&["runtime", "get"])).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("offline or the release source is unreachable"), "{stderr}");
}
